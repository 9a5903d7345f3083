//! SigV4 for the S3 API: header or presigned-query signatures by an access key the `iot` API
//! also accepts, scoped to service `s3` and this server's region.
//!
//! S3 signs headers, not bodies: the body's hash is the claim in `x-amz-content-sha256`
//! (a hex SHA-256, `UNSIGNED-PAYLOAD`, or a `STREAMING-...` mode), checked here against the
//! signature and later against the bytes as they stream in (see `body.rs`). Verification
//! itself is `drover_aws::sigv4`, the same code the `iot` API uses, in its S3 canonical form.
//!
//! One legacy form is accepted too: SigV2 *presigned query* URLs (`AWSAccessKeyId`,
//! `Expires`, `Signature`), because boto3's `generate_presigned_url` still produces them for
//! S3 unless the client is configured for `s3v4`. Header-signed SigV2 is not accepted.

use axum::http::request::Parts;
use drover_aws::sigv4::{self, Canonicalization, SigV4Error, SignedRequest};
use drover_services::AccessKeys;

use crate::chunked::ChunkSigner;
use crate::error::{S3Error, S3Result};

/// How the request body is protected.
pub enum Payload {
    /// Not hashed by the client (`UNSIGNED-PAYLOAD`, presigned URLs): TLS protects it.
    Unsigned,
    /// The body must hash to this (lower-case hex SHA-256).
    Sha256(String),
    /// `aws-chunked`; `Some` signer when every chunk is signed.
    Chunked(Option<Box<ChunkSigner>>),
}

/// A verified request.
pub struct Auth {
    pub access_key_id: String,
    pub payload: Payload,
}

/// Verifies the request's signature against the access keys.
pub async fn authenticate(keys: &AccessKeys, region: &str, parts: &Parts) -> S3Result<Auth> {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    if !headers.iter().any(|(n, _)| n == "host")
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host".into(), authority.to_string()));
    }
    let raw_query = parts.uri.query().unwrap_or("");
    if raw_query.contains("AWSAccessKeyId=") && !raw_query.contains("X-Amz-Credential=") {
        return authenticate_v2_query(keys, parts, raw_query).await;
    }
    let request = SignedRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: b"",
    };
    let credential = sigv4::parse(&request)?;
    if credential.service != "s3" {
        return Err(SigV4Error::WrongService("s3".into()).into());
    }
    let key = keys
        .get(&credential.access_key_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "access key lookup failed");
            S3Error::internal()
        })?
        .ok_or(SigV4Error::UnknownAccessKey)?;
    sigv4::verify_with(
        &request,
        &credential,
        &key.secret_access_key,
        region,
        time::OffsetDateTime::now_utc(),
        Canonicalization::S3,
    )?;
    let claim = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    let payload = match claim {
        None | Some(sigv4::UNSIGNED_PAYLOAD) => Payload::Unsigned,
        Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER") => Payload::Chunked(None),
        Some(
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        ) => Payload::Chunked(Some(Box::new(ChunkSigner {
            key: sigv4::signing_key(
                &key.secret_access_key,
                &credential.date,
                &credential.region,
                &credential.service,
            ),
            amz_date: credential.amz_date.clone(),
            scope: format!(
                "{}/{}/{}/aws4_request",
                credential.date, credential.region, credential.service
            ),
            previous: credential.signature.clone(),
        }))),
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Sha256(h.to_ascii_lowercase())
        }
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING mode, or a valid sha256 value, not '{other}'"
            )));
        }
    };
    Ok(Auth {
        access_key_id: credential.access_key_id,
        payload,
    })
}

/// Sub-resources and response overrides that SigV2 signs as part of the resource
/// (botocore's `HmacV1Auth.QSAOfInterest`, the S3 ones drover serves).
const V2_SIGNED_PARAMS: [&str; 14] = [
    "delete",
    "location",
    "partNumber",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
];

/// Verifies a SigV2 presigned URL: `base64(HMAC-SHA1(secret, StringToSign))` where
/// StringToSign is method, Content-MD5, Content-Type, Expires, `x-amz-*` headers and the
/// resource (path plus signed sub-resources).
async fn authenticate_v2_query(
    keys: &AccessKeys,
    parts: &Parts,
    raw_query: &str,
) -> S3Result<Auth> {
    use aws_lc_rs::hmac;
    use base64::Engine;
    let query = sigv4::query_pairs(raw_query);
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or(SigV4Error::Missing)
    };
    let (access_key_id, signature, expires) =
        (get("AWSAccessKeyId")?, get("Signature")?, get("Expires")?);
    let expires: i64 = expires.parse().map_err(|_| {
        S3Error::invalid_argument("Expires must be a number of seconds since the epoch")
    })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now > expires || expires - now > sigv4::MAX_PRESIGN_EXPIRES_SECS {
        return Err(SigV4Error::Expired("Request has expired".into()).into());
    }
    let key = keys
        .get(access_key_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "access key lookup failed");
            S3Error::internal()
        })?
        .ok_or(SigV4Error::UnknownAccessKey)?;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut amz: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-amz-"))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                v.to_str().unwrap_or("").trim().to_string(),
            )
        })
        .collect();
    amz.sort();
    let mut signed_params: Vec<(String, String)> = raw_query
        .split('&')
        .filter_map(|p| {
            let (k, v) = p.split_once('=').map_or((p, None), |(k, v)| (k, Some(v)));
            V2_SIGNED_PARAMS.contains(&k).then(|| {
                let v = v.map(|v| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned()
                });
                (k.to_string(), v.map_or(String::new(), |v| format!("={v}")))
            })
        })
        .collect();
    signed_params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut string_to_sign = format!(
        "{}\n{}\n{}\n{expires}\n",
        parts.method.as_str(),
        header("content-md5"),
        header("content-type")
    );
    for (name, value) in amz {
        string_to_sign.push_str(&format!("{name}:{value}\n"));
    }
    string_to_sign.push_str(parts.uri.path());
    if !signed_params.is_empty() {
        string_to_sign.push('?');
        let joined: Vec<String> = signed_params
            .into_iter()
            .map(|(k, v)| format!("{k}{v}"))
            .collect();
        string_to_sign.push_str(&joined.join("&"));
    }
    let mac = hmac::sign(
        &hmac::Key::new(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            key.secret_access_key.as_bytes(),
        ),
        string_to_sign.as_bytes(),
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
    let ok = expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    if !ok {
        return Err(SigV4Error::SignatureMismatch.into());
    }
    Ok(Auth {
        access_key_id: access_key_id.to_string(),
        payload: Payload::Unsigned,
    })
}
