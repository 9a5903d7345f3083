//! SigV4 for the S3 API: header or presigned-query signatures by an access key the `iot` API
//! also accepts, scoped to service `s3` and this server's region.
//!
//! S3 signs headers, not bodies: the body's hash is the claim in `x-amz-content-sha256`
//! (a hex SHA-256, `UNSIGNED-PAYLOAD`, or a `STREAMING-...` mode), checked here against the
//! signature and later against the bytes as they stream in (see `body.rs`). Verification
//! itself is `drover_aws::sigv4`, the same code the `iot` API uses, in its S3 canonical form.

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
    Chunked(Option<ChunkSigner>),
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
        ) => Payload::Chunked(Some(ChunkSigner {
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
        })),
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
