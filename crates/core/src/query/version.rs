//! Release-version ordering for drover's `Version` custom-field type (an extension to AWS's
//! String, Number and Boolean): `1.9 < 1.10 < 2.0`, which neither lexical nor numeric order
//! gets right.
//!
//! A version is an optional `v`, dot-separated decimal components, and an optional `-` with
//! pre-release identifiers, as in semantic versioning: trailing zero components do not count
//! (`2` = `2.0` = `2.0.0`), a pre-release sorts before its release (`2.0-rc1 < 2.0`), and
//! pre-release identifiers compare numerically when both are numbers, otherwise as text, with
//! numbers first. Build metadata (`+…`) cannot occur: attribute values may not contain `+`.

use std::cmp::Ordering;

/// A parsed release version.
#[derive(Debug, Clone)]
pub struct Version {
    release: Vec<u64>,
    pre_release: Vec<String>,
}

impl Version {
    /// Parses `text`, or `None` when it is not a version (then it is not indexed as one).
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let (release, pre_release) = match text.split_once('-') {
            Some((release, pre)) => (release, Some(pre)),
            None => (text, None),
        };
        let mut components = release
            .split('.')
            .map(|c| {
                if c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    c.parse::<u64>().ok()
                }
            })
            .collect::<Option<Vec<u64>>>()?;
        while components.len() > 1 && components.last() == Some(&0) {
            components.pop();
        }
        let pre_release = match pre_release {
            None => Vec::new(),
            Some(pre) => {
                let identifiers: Vec<String> =
                    pre.split('.').map(|s| s.to_ascii_lowercase()).collect();
                if identifiers.iter().any(|s| s.is_empty()) {
                    return None;
                }
                identifiers
            }
        };
        Some(Version {
            release: components,
            pre_release,
        })
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => {
            // Compare digit strings as numbers of any length: shorter (after zeros) is smaller.
            let a = a.trim_start_matches('0');
            let b = b.trim_start_matches('0');
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let width = self.release.len().max(other.release.len());
        for i in 0..width {
            let a = self.release.get(i).copied().unwrap_or(0);
            let b = other.release.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (self.pre_release.is_empty(), other.pre_release.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in self.pre_release.iter().zip(&other.pre_release) {
                    match compare_identifier(a, b) {
                        Ordering::Equal => {}
                        unequal => return unequal,
                    }
                }
                self.pre_release.len().cmp(&other.pre_release.len())
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect("valid version")
    }

    #[test]
    fn orders_as_releases_do() {
        let ordered = [
            "0.9",
            "1.0-alpha",
            "1.0-alpha.1",
            "1.0-alpha.beta",
            "1.0-beta",
            "1.0-beta.2",
            "1.0-beta.11",
            "1.0-rc.1",
            "1.0",
            "1.0.1",
            "1.2",
            "1.9",
            "1.10",
            "2.0",
            "10.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn trailing_zeros_and_prefix_do_not_count() {
        assert_eq!(v("2"), v("2.0.0"));
        assert_eq!(v("v1.2"), v("1.2"));
        assert_eq!(v("1.0-RC1"), v("1.0-rc1"));
    }

    #[test]
    fn rejects_non_versions() {
        for text in ["", "abc", "1..2", "1.x", "1.0-", "1.0-a..b", ".1"] {
            assert!(Version::parse(text).is_none(), "{text}");
        }
    }
}
