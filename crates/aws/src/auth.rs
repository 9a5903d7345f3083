//! Request authentication for the AWS APIs: every request must carry a valid SigV4 signature
//! (header or presigned query) by a known access key, scoped to this server's region and to a
//! service this endpoint serves.
//!
//! The verified caller and the service it signed for travel on as a request extension, so the
//! router can tell `iot` from `iot-jobs-data` on the paths the two share.
//!
//! One exception, as on AWS: `GET /confirmdestination/{token}` (ConfirmTopicRuleDestination)
//! is the `enableUrl` a topic rule destination's endpoint is sent, which its owner visits
//! with no AWS credentials; the unguessable token is the authorization. A request to it that
//! does carry a signature is still verified.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drover_services::AccessKeys;

use crate::error::ApiError;
use crate::sigv4::{self, SigV4Error, SignedRequest};

/// Largest request body accepted on the AWS APIs. AWS IoT's largest documents (job documents,
/// policies) are tens of KB; 1 MiB leaves room without letting a client exhaust memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the authentication layer needs.
#[derive(Clone)]
pub struct AuthState {
    pub keys: AccessKeys,
    pub region: String,
    /// SigV4 service names this endpoint accepts (`iot`, `iot-jobs-data`).
    pub services: Arc<Vec<&'static str>>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    /// The SigV4 service the request was signed for.
    pub service: String,
}

/// The path prefix of ConfirmTopicRuleDestination, reachable unsigned.
pub const CONFIRM_DESTINATION_PREFIX: &str = "/confirmdestination/";

/// Whether a request is an unsigned visit to an `enableUrl`: a GET under
/// [`CONFIRM_DESTINATION_PREFIX`] with neither an `Authorization` header nor a presigned query.
fn unsigned_confirmation(request: &Request) -> bool {
    *request.method() == axum::http::Method::GET
        && request.uri().path().starts_with(CONFIRM_DESTINATION_PREFIX)
        && !request
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
        && !request
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature=") || q.contains("X-Amz-Credential="))
}

/// Axum middleware: verifies SigV4 and attaches a [`Caller`], or answers with the AWS error.
pub async fn require_sigv4(
    State(auth): State<AuthState>,
    request: Request,
    next: Next,
) -> Response {
    if unsigned_confirmation(&request) {
        // Nothing to verify: the handler reads only the token in the path.
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!("Request body exceeds {MAX_BODY_BYTES} bytes"),
            )
            .into_response();
        }
    };
    match authenticate(&auth, &parts, &body).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(e) => {
            tracing::info!(path = %parts.uri.path(), error = %e.message, "request refused by SigV4");
            metrics::counter!("drover_api_auth_failures_total", "reason" => e.name).increment(1);
            e.into_response()
        }
    }
}

async fn authenticate(
    auth: &AuthState,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> Result<Caller, ApiError> {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    // HTTP/2 carries the host in the :authority pseudo-header, which hyper exposes in the URI.
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
        body,
    };
    let credential = sigv4::parse(&request)?;
    if !auth.services.iter().any(|s| *s == credential.service) {
        return Err(SigV4Error::WrongService(auth.services.join("' or '")).into());
    }
    let key = auth
        .keys
        .get(&credential.access_key_id)
        .await
        .map_err(ApiError::from)?
        .ok_or(SigV4Error::UnknownAccessKey)?;
    sigv4::verify(
        &request,
        &credential,
        &key.secret_access_key,
        &auth.region,
        time::OffsetDateTime::now_utc(),
        true,
    )?;
    Ok(Caller {
        access_key_id: credential.access_key_id,
        service: credential.service,
    })
}
