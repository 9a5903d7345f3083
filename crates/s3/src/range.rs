//! The `Range` request header as S3 reads it: one byte range (`bytes=a-b`, `a-`, `-n`), so an
//! interrupted device download can resume where it stopped.
//!
//! S3 ignores headers it cannot parse and multi-range requests (it serves the whole object), and
//! answers a well-formed range that starts past the end with 416 InvalidRange; so does drover.

/// What to serve for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable Range header: the whole object, 200.
    Full,
    /// Bytes `start..end` (end exclusive), 206.
    Partial { start: u64, end: u64 },
    /// A syntactically valid range that selects nothing: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value against an object of `size` bytes.
pub fn resolve(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(value) = header else {
        return RangeSpec::Full;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.is_empty(), last.is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if size == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Partial {
                start: size.saturating_sub(n),
                end: size,
            },
            None => RangeSpec::Full,
        },
        // `a-`: from a to the end.
        (false, true) => match parse(first) {
            Some(a) if a >= size => RangeSpec::Unsatisfiable,
            Some(a) => RangeSpec::Partial {
                start: a,
                end: size,
            },
            None => RangeSpec::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a > b => RangeSpec::Full,
            (Some(a), Some(_)) if a >= size => RangeSpec::Unsatisfiable,
            (Some(a), Some(b)) => RangeSpec::Partial {
                start: a,
                end: b.saturating_add(1).min(size),
            },
            _ => RangeSpec::Full,
        },
        (true, true) => RangeSpec::Full,
    }
}

/// The `Content-Range` value of a 206 for `start..end` of `size`.
pub fn content_range(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{}/{size}", end - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeSpec::*;

    #[test]
    fn single_ranges() {
        assert_eq!(
            resolve(Some("bytes=0-9"), 100),
            Partial { start: 0, end: 10 }
        );
        assert_eq!(
            resolve(Some("bytes=90-200"), 100),
            Partial {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            resolve(Some("bytes=50-"), 100),
            Partial {
                start: 50,
                end: 100
            }
        );
        assert_eq!(
            resolve(Some("bytes=-10"), 100),
            Partial {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            resolve(Some("bytes=-1000"), 100),
            Partial { start: 0, end: 100 }
        );
        assert_eq!(content_range(90, 100, 100), "bytes 90-99/100");
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(resolve(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(resolve(None, 100), Full);
        assert_eq!(resolve(Some("items=0-1"), 100), Full);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), 100), Full);
        assert_eq!(resolve(Some("bytes=9-1"), 100), Full);
        assert_eq!(resolve(Some("bytes=x-1"), 100), Full);
        assert_eq!(resolve(Some("bytes=-"), 100), Full);
        assert_eq!(resolve(Some("bytes=+1-2"), 100), Full);
    }

    /// Every `bytes=a-b` over a small object agrees with the definition: served bytes are
    /// `a..=min(b, size-1)`, and a start at or past the end is unsatisfiable.
    #[test]
    fn exhaustive_small_ranges_match_the_definition() {
        for size in 0u64..6 {
            for a in 0u64..8 {
                for b in a..8 {
                    let got = resolve(Some(&format!("bytes={a}-{b}")), size);
                    let want = if a >= size {
                        Unsatisfiable
                    } else {
                        Partial {
                            start: a,
                            end: (b + 1).min(size),
                        }
                    };
                    assert_eq!(got, want, "size {size} bytes={a}-{b}");
                }
                let suffix = resolve(Some(&format!("bytes=-{a}")), size);
                if a == 0 || size == 0 {
                    assert_eq!(suffix, Unsatisfiable);
                } else {
                    assert_eq!(
                        suffix,
                        Partial {
                            start: size.saturating_sub(a),
                            end: size
                        }
                    );
                }
            }
        }
    }
}
