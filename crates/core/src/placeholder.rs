//! Presigned-URL placeholders in job documents: finding them, parsing the S3 URL inside, and
//! substituting each with the URL the caller makes.
//!
//! AWS IoT Jobs replaces `${aws:iot:s3-presigned-url:URL}` with a presigned GET URL for the
//! object URL names, at each delivery (`presignedUrlConfig.expiresInSec`, 60..=3600, default
//! 3600). drover accepts the S3 URL forms AWS documents:
//!
//! - `https://s3.<region>.amazonaws.com/<bucket>/<key>` and `https://s3.amazonaws.com/<bucket>/<key>`
//! - `https://<bucket>.s3.<region>.amazonaws.com/<key>` and `https://<bucket>.s3.amazonaws.com/<key>`
//! - `s3://<bucket>/<key>` (a drover convenience: the bucket and key without a host)
//!
//! and, as a drover extension, `${drover:s3-presigned-put-url:URL}` for a presigned PUT (a
//! device uploading its configuration), where the key may contain `${iot:ThingName}`, replaced
//! by the thing the job is delivered to (`configs/${iot:ThingName}.json`).
//!
//! The host only selects the bucket: every URL points at drover's own S3 endpoint. Pure
//! functions; the presigning itself lives in the artifact store (`drover_s3::presign`).

use std::fmt;

/// `presignedUrlConfig.expiresInSec` bounds (AWS IoT Jobs).
pub const MIN_PRESIGN_EXPIRES_SECS: i64 = 60;
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 3600;
pub const DEFAULT_PRESIGN_EXPIRES_SECS: i64 = 3600;

const GET_PREFIX: &str = "${aws:iot:s3-presigned-url:";
const PUT_PREFIX: &str = "${drover:s3-presigned-put-url:";
const THING_NAME: &str = "${iot:ThingName}";

/// What a placeholder asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Get,
    Put,
}

/// A bucket and key named by an S3 URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Percent-decoded; may still contain `${iot:ThingName}`.
    pub key: String,
}

/// One placeholder found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Byte range of the whole `${...}` in the document.
    pub start: usize,
    pub end: usize,
    pub access: Access,
    pub location: S3Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceholderError {
    /// `${aws:iot:s3-presigned-url:` without its closing `}`.
    Unterminated {
        at: usize,
    },
    /// The URL inside is not one of the accepted S3 URL forms.
    BadUrl(String),
    ExpiresOutOfRange(i64),
}

impl fmt::Display for PlaceholderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated { at } => {
                write!(
                    f,
                    "presigned-URL placeholder at byte {at} has no closing '}}'"
                )
            }
            Self::BadUrl(url) => write!(
                f,
                "'{url}' is not an S3 URL (https://s3.<region>.amazonaws.com/<bucket>/<key>, \
                 https://<bucket>.s3.<region>.amazonaws.com/<key> or s3://<bucket>/<key>)"
            ),
            Self::ExpiresOutOfRange(v) => write!(
                f,
                "expiresInSec must be between {MIN_PRESIGN_EXPIRES_SECS} and {MAX_PRESIGN_EXPIRES_SECS}, not {v}"
            ),
        }
    }
}

impl std::error::Error for PlaceholderError {}

/// Checks `presignedUrlConfig.expiresInSec`, defaulting to 3600.
pub fn presign_expiry(expires_in_sec: Option<i64>) -> Result<i64, PlaceholderError> {
    match expires_in_sec {
        None => Ok(DEFAULT_PRESIGN_EXPIRES_SECS),
        Some(v) if (MIN_PRESIGN_EXPIRES_SECS..=MAX_PRESIGN_EXPIRES_SECS).contains(&v) => Ok(v),
        Some(v) => Err(PlaceholderError::ExpiresOutOfRange(v)),
    }
}

/// Every placeholder in `document`, in order.
pub fn find(document: &str) -> Result<Vec<Placeholder>, PlaceholderError> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < document.len() {
        let rest = &document[pos..];
        let next = [(GET_PREFIX, Access::Get), (PUT_PREFIX, Access::Put)]
            .into_iter()
            .filter_map(|(p, a)| rest.find(p).map(|i| (i, p, a)))
            .min_by_key(|(i, _, _)| *i);
        let Some((offset, prefix, access)) = next else {
            break;
        };
        let start = pos + offset;
        let body_start = start + prefix.len();
        let end = closing_brace(document, body_start)
            .ok_or(PlaceholderError::Unterminated { at: start })?;
        let url = &document[body_start..end];
        found.push(Placeholder {
            start,
            end: end + 1,
            access,
            location: parse_s3_url(url)?,
        });
        pos = end + 1;
    }
    Ok(found)
}

/// The index of the `}` closing a placeholder whose body starts at `from`, skipping nested
/// `${...}` (the thing-name variable).
fn closing_brace(document: &str, from: usize) -> Option<usize> {
    let bytes = document.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses one of the accepted S3 URL forms into bucket and (percent-decoded) key.
pub fn parse_s3_url(url: &str) -> Result<S3Location, PlaceholderError> {
    let bad = || PlaceholderError::BadUrl(url.to_string());
    let (bucket, raw_key) = if let Some(rest) = url.strip_prefix("s3://") {
        rest.split_once('/').ok_or_else(bad)?
    } else {
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let (host, path) = rest.split_once('/').ok_or_else(bad)?;
        let host = host.to_ascii_lowercase();
        let is_s3_host = |h: &str| {
            h == "s3.amazonaws.com"
                || h.strip_prefix("s3.")
                    .and_then(|r| r.strip_suffix(".amazonaws.com"))
                    .is_some_and(|region| {
                        !region.is_empty()
                            && region
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    })
        };
        if is_s3_host(&host) {
            path.split_once('/').ok_or_else(bad)?
        } else if let Some((bucket, service)) = host.split_once(".s3")
            && is_s3_host(&format!("s3{service}"))
        {
            // Virtual-hosted style: the bucket is the host's first labels.
            let bucket_len = bucket.len();
            (&rest[..bucket_len], path)
        } else {
            return Err(bad());
        }
    };
    let key = percent_decode(raw_key).ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() || bucket.contains(['?', '#']) {
        return Err(bad());
    }
    Ok(S3Location {
        bucket: bucket.to_string(),
        key,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Replaces every placeholder with `presign(access, bucket, key)`, after substituting
/// `${iot:ThingName}` in the key with `thing_name`.
pub fn substitute<E>(
    document: &str,
    thing_name: &str,
    mut presign: impl FnMut(Access, &str, &str) -> Result<String, E>,
) -> Result<String, SubstituteError<E>> {
    let found = find(document).map_err(SubstituteError::Placeholder)?;
    let mut out = String::with_capacity(document.len());
    let mut pos = 0;
    for p in found {
        out.push_str(&document[pos..p.start]);
        let key = p.location.key.replace(THING_NAME, thing_name);
        out.push_str(
            &presign(p.access, &p.location.bucket, &key).map_err(SubstituteError::Presign)?,
        );
        pos = p.end;
    }
    out.push_str(&document[pos..]);
    Ok(out)
}

/// Why [`substitute`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstituteError<E> {
    Placeholder(PlaceholderError),
    Presign(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(bucket: &str, key: &str) -> S3Location {
        S3Location {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn every_documented_url_form_parses() {
        for url in [
            "https://s3.us-west-2.amazonaws.com/fw/app/2.0.bin",
            "https://fw.s3.us-west-2.amazonaws.com/app/2.0.bin",
            "https://s3.amazonaws.com/fw/app/2.0.bin",
            "https://fw.s3.amazonaws.com/app/2.0.bin",
            "s3://fw/app/2.0.bin",
        ] {
            assert_eq!(parse_s3_url(url), Ok(loc("fw", "app/2.0.bin")), "{url}");
        }
        assert_eq!(
            parse_s3_url("https://my.bucket.s3.eu-west-1.amazonaws.com/a%20b%2Bc"),
            Ok(loc("my.bucket", "a b+c"))
        );
        for bad in [
            "http://s3.amazonaws.com/fw/k",
            "https://example.com/fw/k",
            "https://s3.amazonaws.com/fw",
            "https://s3.amazonaws.com/fw/",
            "s3://fw",
            "https://s3.amazonaws.com/fw/%zz",
            "ftp://fw/k",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placeholders_are_found_and_substituted() {
        let doc = r#"{"operation":"install","url":"${aws:iot:s3-presigned-url:https://s3.us-east-1.amazonaws.com/fw/app-2.0.bin}","config":"${drover:s3-presigned-put-url:s3://cfg/configs/${iot:ThingName}.json}","note":"${other}"}"#;
        let found = find(doc).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].access, Access::Get);
        assert_eq!(found[1].access, Access::Put);
        assert_eq!(
            found[1].location,
            loc("cfg", "configs/${iot:ThingName}.json")
        );
        let out = substitute(doc, "dev1", |access, bucket, key| {
            Ok::<_, ()>(format!("<{access:?} {bucket} {key}>"))
        })
        .unwrap();
        assert_eq!(
            out,
            r#"{"operation":"install","url":"<Get fw app-2.0.bin>","config":"<Put cfg configs/dev1.json>","note":"${other}"}"#
        );
        assert_eq!(
            substitute(doc, "x", |_, _, _| Err::<String, _>("no")),
            Err(SubstituteError::Presign("no"))
        );
        assert_eq!(
            substitute("plain", "x", |_, _, _| Ok::<_, ()>(String::new())).unwrap(),
            "plain"
        );
    }

    #[test]
    fn broken_placeholders_are_errors() {
        assert_eq!(
            find("x ${aws:iot:s3-presigned-url:s3://fw/k"),
            Err(PlaceholderError::Unterminated { at: 2 })
        );
        assert!(matches!(
            find("${aws:iot:s3-presigned-url:https://example.com/x}"),
            Err(PlaceholderError::BadUrl(_))
        ));
        assert_eq!(presign_expiry(None), Ok(3600));
        assert_eq!(presign_expiry(Some(60)), Ok(60));
        assert!(presign_expiry(Some(59)).is_err());
        assert!(presign_expiry(Some(3601)).is_err());
    }
}
