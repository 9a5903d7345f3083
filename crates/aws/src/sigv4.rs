//! AWS Signature Version 4 verification, for the Authorization header and presigned-URL forms.
//!
//! Why hand-written: no maintained crate verifies SigV4 (aws-sigv4 only signs, s3s keeps its
//! verifier private). The canonical request is rebuilt from the request as received and the
//! signature recomputed with the secret of the claimed access key; HMAC and SHA-256 come from
//! aws-lc-rs, the crypto library rustls already brings. The unit tests include vectors from
//! AWS's published SigV4 test suite.

use aws_lc_rs::{digest, hmac};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// How far a request's signing time may be from the server's clock (AWS: 15 minutes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// Presigned URLs live at most 7 days (AWS).
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 7 * 24 * 3600;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The SHA-256 of an empty payload, hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The payload hash S3 presigned URLs (and clients that skip body hashing) sign.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// How a service builds the canonical URI and payload hash. S3 differs from every other
/// service: its canonical URI is the path encoded once and never normalized (a key may hold
/// `..` or `//`), and its payload hash comes from `x-amz-content-sha256` (or is
/// `UNSIGNED-PAYLOAD` in presigned URLs), because S3 bodies are streamed, not buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonicalization {
    /// `iot`, `iot-jobs-data`, ...: normalized path, encoded twice; body hashed.
    Standard,
    /// `s3`: path as sent (decoded, then encoded once); payload hash as claimed.
    S3,
}

/// Why a request's signature was refused. The transport maps these to AWS error names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Malformed(String),
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your \
         AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    #[error("{0}")]
    Expired(String),
    #[error("Credential should be scoped to a valid region. ")]
    WrongRegion,
    #[error("Credential should be scoped to correct service: '{0}'. ")]
    WrongService(String),
}

/// A request as received, in the parts SigV4 signs.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as received (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as received, without the `?`.
    pub raw_query: &'a str,
    /// Header names lower-case; repeated headers appear once per value.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// What a signature claims, parsed from the header or the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub amz_date: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Expires` of a presigned URL; `None` for the header form.
    pub expires_secs: Option<i64>,
}

/// Parses the claimed credential, without checking it.
pub fn parse(request: &SignedRequest) -> Result<Credential, SigV4Error> {
    if let Some(auth) = header(request.headers, "authorization") {
        return parse_authorization_header(auth, request.headers);
    }
    let query = query_pairs(request.raw_query);
    if query
        .iter()
        .any(|(k, _)| k == "X-Amz-Signature" || k == "X-Amz-Credential")
    {
        return parse_presigned(&query);
    }
    Err(SigV4Error::Missing)
}

fn parse_authorization_header(
    auth: &str,
    headers: &[(String, String)],
) -> Result<Credential, SigV4Error> {
    let rest = auth.strip_prefix(ALGORITHM).ok_or_else(|| {
        SigV4Error::Malformed(format!(
            "Authorization header requires the {ALGORITHM} algorithm"
        ))
    })?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        SigV4Error::Malformed(format!(
            "Authorization header requires '{what}' parameter. Authorization={auth}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let amz_date = header(headers, "x-amz-date")
        .map(str::to_string)
        .or_else(|| header(headers, "date").and_then(http_date_to_amz))
        .ok_or_else(|| {
            SigV4Error::Malformed(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
    build_credential(credential, signed_headers, signature, amz_date, None)
}

fn parse_presigned(query: &[(String, String)]) -> Result<Credential, SigV4Error> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                SigV4Error::Malformed(format!(
                    "AWS query-string parameters must include '{name}'."
                ))
            })
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(SigV4Error::Malformed(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}'"
        )));
    }
    let expires: i64 = get("X-Amz-Expires")?
        .parse()
        .map_err(|_| SigV4Error::Malformed("X-Amz-Expires should be a number".into()))?;
    if !(1..=MAX_PRESIGN_EXPIRES_SECS).contains(&expires) {
        return Err(SigV4Error::Malformed(format!(
            "X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES_SECS} seconds"
        )));
    }
    build_credential(
        get("X-Amz-Credential")?,
        get("X-Amz-SignedHeaders")?,
        get("X-Amz-Signature")?,
        get("X-Amz-Date")?.to_string(),
        Some(expires),
    )
}

fn build_credential(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: String,
    expires_secs: Option<i64>,
) -> Result<Credential, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(SigV4Error::Malformed(format!(
            "Credential should have 5 parts (key/date/region/service/aws4_request): {credential}"
        )));
    };
    if terminator != "aws4_request" {
        return Err(SigV4Error::Malformed(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .filter(|h| !h.is_empty())
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Malformed(
            "The 'host' header must be signed".into(),
        ));
    }
    Ok(Credential {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        amz_date,
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        expires_secs,
    })
}

/// Checks scope, time and signature of `credential` against `secret`.
///
/// `double_encode_path` is true for every service except S3, whose canonical URI is the path
/// encoded once.
pub fn verify(
    request: &SignedRequest,
    credential: &Credential,
    secret: &str,
    region: &str,
    now: OffsetDateTime,
    double_encode_path: bool,
) -> Result<(), SigV4Error> {
    let mode = if double_encode_path {
        Canonicalization::Standard
    } else {
        Canonicalization::S3
    };
    verify_with(request, credential, secret, region, now, mode)
}

/// [`verify`] with an explicit canonicalization (S3 needs [`Canonicalization::S3`]).
pub fn verify_with(
    request: &SignedRequest,
    credential: &Credential,
    secret: &str,
    region: &str,
    now: OffsetDateTime,
    mode: Canonicalization,
) -> Result<(), SigV4Error> {
    if credential.region != region {
        return Err(SigV4Error::WrongRegion);
    }
    let signed_at = parse_amz_date(&credential.amz_date)?;
    if !credential.amz_date.starts_with(&credential.date) {
        return Err(SigV4Error::Malformed(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{}' != '{}'",
            credential.date,
            &credential.amz_date[..credential.amz_date.len().min(8)]
        )));
    }
    let stamp = |t: OffsetDateTime| format_amz_date(t);
    match credential.expires_secs {
        None => {
            let skew = (now - signed_at).whole_seconds();
            if skew > MAX_CLOCK_SKEW_SECS {
                return Err(SigV4Error::Expired(format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    credential.amz_date,
                    stamp(now - time::Duration::seconds(MAX_CLOCK_SKEW_SECS)),
                    stamp(now)
                )));
            }
            if -skew > MAX_CLOCK_SKEW_SECS {
                return Err(SigV4Error::Expired(format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    credential.amz_date,
                    stamp(now + time::Duration::seconds(MAX_CLOCK_SKEW_SECS)),
                    stamp(now)
                )));
            }
        }
        Some(expires) => {
            let expires_at = signed_at + time::Duration::seconds(expires);
            if now > expires_at {
                return Err(SigV4Error::Expired(format!(
                    "Signature expired: {} is now earlier than {}",
                    stamp(expires_at),
                    stamp(now)
                )));
            }
            if (signed_at - now).whole_seconds() > MAX_CLOCK_SKEW_SECS {
                return Err(SigV4Error::Expired(format!(
                    "Signature not yet current: {} is still later than {}",
                    credential.amz_date,
                    stamp(now + time::Duration::seconds(MAX_CLOCK_SKEW_SECS))
                )));
            }
        }
    }
    let expected = signature_with(request, credential, secret, mode)?;
    if constant_time_eq(expected.as_bytes(), credential.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

/// The hex signature a correct client computes for `request`.
pub fn signature(
    request: &SignedRequest,
    credential: &Credential,
    secret: &str,
    double_encode_path: bool,
) -> Result<String, SigV4Error> {
    let mode = if double_encode_path {
        Canonicalization::Standard
    } else {
        Canonicalization::S3
    };
    signature_with(request, credential, secret, mode)
}

/// [`signature`] with an explicit canonicalization.
pub fn signature_with(
    request: &SignedRequest,
    credential: &Credential,
    secret: &str,
    mode: Canonicalization,
) -> Result<String, SigV4Error> {
    let canonical = canonical_request_with(request, credential, mode)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        credential.date, credential.region, credential.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        credential.amz_date,
        hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    );
    let key = signing_key(
        secret,
        &credential.date,
        &credential.region,
        &credential.service,
    );
    Ok(hex::encode(hmac::sign(&key, string_to_sign.as_bytes())))
}

/// The derived SigV4 signing key for one day, region and service (also signs the chunks of
/// S3's streaming uploads).
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(&k_date, region);
    let k_service = step(&k_region, service);
    let k_signing = step(&k_service, "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, &k_signing)
}

/// The canonical request of SigV4's task 1.
pub fn canonical_request(
    request: &SignedRequest,
    credential: &Credential,
    double_encode_path: bool,
) -> Result<String, SigV4Error> {
    let mode = if double_encode_path {
        Canonicalization::Standard
    } else {
        Canonicalization::S3
    };
    canonical_request_with(request, credential, mode)
}

/// [`canonical_request`] with an explicit canonicalization.
pub fn canonical_request_with(
    request: &SignedRequest,
    credential: &Credential,
    mode: Canonicalization,
) -> Result<String, SigV4Error> {
    let canonical_uri = match mode {
        Canonicalization::Standard => uri_encode(&normalize_path(request.raw_path), false),
        Canonicalization::S3 => {
            let decoded =
                percent_encoding::percent_decode_str(request.raw_path).collect::<Vec<u8>>();
            let encoded = uri_encode_bytes(&decoded, false);
            if encoded.is_empty() {
                "/".to_string()
            } else {
                encoded
            }
        }
    };

    let mut query: Vec<(String, String)> = query_pairs(request.raw_query)
        .into_iter()
        .filter(|(k, _)| !(credential.expires_secs.is_some() && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k, true), uri_encode(&v, true)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let mut canonical_headers = String::new();
    for name in &credential.signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| collapse_whitespace(v))
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::Malformed(format!(
                "Header '{name}' is listed in SignedHeaders but missing from the request"
            )));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }

    let payload_hash = match (header(request.headers, "x-amz-content-sha256"), mode) {
        (Some(hash), _) => hash.to_string(),
        (None, Canonicalization::S3) if credential.expires_secs.is_some() => {
            UNSIGNED_PAYLOAD.into()
        }
        (None, Canonicalization::S3) => {
            return Err(SigV4Error::Malformed(
                "Missing required header for this request: x-amz-content-sha256".into(),
            ));
        }
        (None, Canonicalization::Standard)
            if credential.expires_secs.is_some() && request.body.is_empty() =>
        {
            EMPTY_SHA256.into()
        }
        (None, Canonicalization::Standard) => {
            hex::encode(digest::digest(&digest::SHA256, request.body))
        }
    };
    Ok(format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
        request.method,
        credential.signed_headers.join(";")
    ))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Splits a raw query string into percent-decoded pairs (a key without `=` has value "").
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    // `+` means space in form encoding; SigV4 clients encode spaces as %20, but some send `+`.
    let s = s.replace('+', "%20");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-._~` is percent-encoded (upper-case hex);
/// `/` is kept unless `encode_slash`.
pub fn uri_encode(input: &str, encode_slash: bool) -> String {
    uri_encode_bytes(input.as_bytes(), encode_slash)
}

/// [`uri_encode`] over raw bytes (a decoded S3 key need not be UTF-8).
pub fn uri_encode_bytes(input: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for &byte in input {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Removes `.` and `..` segments, as the SDKs do before signing. Empty becomes `/`.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash = path.ends_with('/') && path.len() > 1;
    for segment in path.split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            "" => {}
            s => segments.push(s),
        }
    }
    let mut normalized = format!("/{}", segments.join("/"));
    if trailing_slash && normalized.len() > 1 {
        normalized.push('/');
    }
    normalized
}

fn collapse_whitespace(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_amz_date(value: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            SigV4Error::Malformed(format!(
                "Invalid X-Amz-Date '{value}': expected YYYYMMDDTHHMMSSZ"
            ))
        })
}

/// Formats a time as SigV4's `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(format).expect("a UTC time always formats")
}

fn http_date_to_amz(value: &str) -> Option<String> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|t| format_amz_date(t.assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(amz: &str) -> OffsetDateTime {
        parse_amz_date(amz).unwrap()
    }

    /// AWS SigV4 test suite, "get-vanilla".
    #[test]
    fn aws_test_suite_get_vanilla() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ]);
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body: b"",
        };
        let cred = parse(&req).unwrap();
        assert_eq!(cred.access_key_id, "AKIDEXAMPLE");
        assert_eq!(cred.service, "service");
        verify(
            &req,
            &cred,
            SECRET,
            "us-east-1",
            at("20150830T123600Z"),
            true,
        )
        .unwrap();
        assert_eq!(
            verify(
                &req,
                &cred,
                "wrong",
                "us-east-1",
                at("20150830T123600Z"),
                true
            ),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    /// AWS SigV4 test suite, "get-vanilla-query-order-key-case" (sorting of parameters).
    #[test]
    fn aws_test_suite_query_order() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ]);
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "Param2=value2&Param1=value1",
            headers: &h,
            body: b"",
        };
        let cred = parse(&req).unwrap();
        verify(
            &req,
            &cred,
            SECRET,
            "us-east-1",
            at("20150830T123600Z"),
            true,
        )
        .unwrap();
    }

    /// AWS SigV4 test suite, "post-x-www-form-urlencoded" (body hash, extra signed header).
    #[test]
    fn aws_test_suite_post_with_body() {
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            ),
        ]);
        let req = SignedRequest {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body: b"Param1=value1",
        };
        let cred = parse(&req).unwrap();
        verify(
            &req,
            &cred,
            SECRET,
            "us-east-1",
            at("20150830T123600Z"),
            true,
        )
        .unwrap();
    }

    #[test]
    fn clock_skew_and_scope_are_checked() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ]);
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body: b"",
        };
        let cred = parse(&req).unwrap();
        let late = at("20150830T125200Z");
        assert!(
            matches!(verify(&req, &cred, SECRET, "us-east-1", late, true), Err(SigV4Error::Expired(m)) if m.starts_with("Signature expired"))
        );
        let early = at("20150830T122000Z");
        assert!(matches!(
            verify(&req, &cred, SECRET, "us-east-1", early, true),
            Err(SigV4Error::Expired(_))
        ));
        let within = at("20150830T125000Z");
        assert!(verify(&req, &cred, SECRET, "us-east-1", within, true).is_ok());
        assert_eq!(
            verify(
                &req,
                &cred,
                SECRET,
                "eu-west-1",
                at("20150830T123600Z"),
                true
            ),
            Err(SigV4Error::WrongRegion)
        );
    }

    #[test]
    fn presigned_urls_verify_and_expire() {
        // Sign a presigned GET ourselves with the documented algorithm, then verify it.
        let h = headers(&[("host", "localhost:8443")]);
        let base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiot%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host";
        let unsigned = SignedRequest {
            method: "GET",
            raw_path: "/things",
            raw_query: base,
            headers: &h,
            body: b"",
        };
        let mut cred = parse_presigned(
            &query_pairs(base)
                .into_iter()
                .chain([("X-Amz-Signature".to_string(), "00".to_string())])
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let sig = signature(&unsigned, &cred, SECRET, true).unwrap();
        cred.signature = sig.clone();
        let query = format!("{base}&X-Amz-Signature={sig}");
        let req = SignedRequest {
            method: "GET",
            raw_path: "/things",
            raw_query: &query,
            headers: &h,
            body: b"",
        };
        let parsed = parse(&req).unwrap();
        assert_eq!(parsed, cred);
        verify(
            &req,
            &parsed,
            SECRET,
            "us-east-1",
            at("20150830T123630Z"),
            true,
        )
        .unwrap();
        assert!(matches!(
            verify(
                &req,
                &parsed,
                SECRET,
                "us-east-1",
                at("20150830T123701Z"),
                true
            ),
            Err(SigV4Error::Expired(_))
        ));
        let tampered = query.replace("X-Amz-Expires=60", "X-Amz-Expires=600");
        let req = SignedRequest {
            method: "GET",
            raw_path: "/things",
            raw_query: &tampered,
            headers: &h,
            body: b"",
        };
        let parsed = parse(&req).unwrap();
        assert_eq!(
            verify(
                &req,
                &parsed,
                SECRET,
                "us-east-1",
                at("20150830T123630Z"),
                true
            ),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let h = headers(&[("host", "x")]);
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body: b"",
        };
        assert_eq!(parse(&req), Err(SigV4Error::Missing));
        let h = headers(&[
            ("host", "x"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=A/B"),
        ]);
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body: b"",
        };
        assert!(matches!(parse(&req), Err(SigV4Error::Malformed(_))));
    }

    #[test]
    fn paths_are_double_encoded_for_iot() {
        assert_eq!(
            uri_encode("/things/my%3Athing", false),
            "/things/my%253Athing"
        );
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path(""), "/");
    }
}
