//! Request authentication for the AWS APIs: a request carries a valid SigV4 signature (header
//! or presigned query) by a known access key, scoped to this server's region and to a service
//! this endpoint serves — or, for the jobs data plane only, no signature but the device's
//! client certificate from the TLS handshake (AWS's "Jobs device HTTP API").
//!
//! A device request is authenticated through the device directory (certificate registered and
//! ACTIVE, its CA ACTIVE, within validity) and authorized here with the device's AWS IoT
//! policies (`iotjobsdata:*` on `thing/{thingName}`), before any handler runs: the operation
//! is known from the method and path alone, and anything that is not one of the four jobs
//! data-plane operations is refused, so a certificate never reaches the control plane.
//!
//! The verified caller and the service it stands for travel on as a request extension, so the
//! router can tell `iot` from `iot-jobs-data` on the paths the two share.
//!
//! One exception, as on AWS: `GET /confirmdestination/{token}` (ConfirmTopicRuleDestination)
//! is the `enableUrl` a topic rule destination's endpoint is sent, which its owner visits
//! with no AWS credentials; the unguessable token is the authorization. A request to it that
//! does carry a signature is still verified.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drover_core::policy::{self, AuthzRequest};
use drover_services::{AccessKeys, DeviceDirectory};

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
    /// Authenticates devices calling the jobs data plane with a client certificate; `None`
    /// serves SigV4 callers only.
    pub devices: Option<DeviceDirectory>,
}

/// The end-entity certificate (DER) the client presented in the TLS handshake. The HTTPS
/// listener puts it on every request of that connection; a connection without one has none.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<[u8]>);

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A SigV4 signature by this access key.
    AccessKey(String),
    /// A device's client certificate (its AWS certificate id); jobs data plane only.
    Certificate(String),
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The service the request is for: the SigV4 scope's, or `iot-jobs-data` for a device.
    pub service: String,
}

const JOBS_DATA: &str = "iot-jobs-data";

/// Whether an unsigned request is a visit to an `enableUrl`: a GET under the path the rules
/// service builds them with.
fn is_destination_confirmation(parts: &axum::http::request::Parts) -> bool {
    parts.method == Method::GET
        && parts
            .uri
            .path()
            .starts_with(drover_services::rules::ENABLE_URL_PATH)
}

/// Axum middleware: verifies SigV4 (or, on the jobs data plane, a device's client certificate)
/// and attaches a [`Caller`], or answers with the AWS error.
pub async fn require_sigv4(
    State(auth): State<AuthState>,
    request: Request,
    next: Next,
) -> Response {
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
    let outcome = match authenticate(&auth, &parts, &body).await {
        Ok(Some(caller)) => Ok(caller),
        // Nothing to verify: the handler reads only the token in the path.
        Ok(None) if is_destination_confirmation(&parts) => {
            return next.run(Request::from_parts(parts, Body::from(body))).await;
        }
        // No signature at all: a device's client certificate may stand in (jobs data plane).
        Ok(None) => match parts.extensions.get::<ClientCertificate>() {
            Some(certificate) => authenticate_device(&auth, &parts, certificate).await,
            None => Err(SigV4Error::Missing.into()),
        },
        Err(e) => Err(e),
    };
    match outcome {
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

/// The SigV4 caller; `None` when the request carries no signature at all.
async fn authenticate(
    auth: &AuthState,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> Result<Option<Caller>, ApiError> {
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
    let credential = match sigv4::parse(&request) {
        Ok(credential) => credential,
        Err(SigV4Error::Missing) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
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
    Ok(Some(Caller {
        principal: Principal::AccessKey(credential.access_key_id),
        service: credential.service,
    }))
}

/// The jobs data-plane operation a device request names, by method and path shape
/// (`/things/{thingName}/jobs[/{jobId}]`); `None` for everything else.
fn device_operation(method: &Method, path: &str) -> Option<(String, AuthzRequest)> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let (thing, job) = match segments.as_slice() {
        ["things", thing, "jobs"] => (decode(thing)?, None),
        ["things", thing, "jobs", job] => (decode(thing)?, Some(decode(job)?)),
        _ => return None,
    };
    let thing_name = thing.clone();
    let request = match (method, job.as_deref()) {
        (&Method::GET, None) => AuthzRequest::GetPendingJobExecutions { thing_name },
        (&Method::GET, Some(_)) => AuthzRequest::DescribeJobExecution { thing_name },
        (&Method::POST, Some(_)) => AuthzRequest::UpdateJobExecution { thing_name },
        (&Method::PUT, Some("$next")) => AuthzRequest::StartNextPendingJobExecution { thing_name },
        _ => return None,
    };
    Some((thing, request))
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "ForbiddenException", message)
}

/// A request with no signature but a client certificate: a device on the jobs data plane.
/// Every refusal is the same 403 to the device (as AWS IoT's gateway answers), with the reason
/// in drover's log.
async fn authenticate_device(
    auth: &AuthState,
    parts: &axum::http::request::Parts,
    certificate: &ClientCertificate,
) -> Result<Caller, ApiError> {
    let Some(devices) = &auth.devices else {
        return Err(SigV4Error::Missing.into());
    };
    let Some((thing_name, request)) = device_operation(&parts.method, parts.uri.path()) else {
        tracing::info!(method = %parts.method, path = %parts.uri.path(), "a client certificate authorizes only the jobs data plane");
        return Err(forbidden(
            "A device certificate authorizes only the jobs data plane (iot-jobs-data); sign other requests with SigV4",
        ));
    };
    let credentials = devices
        .authenticate_https(&certificate.0, &thing_name)
        .await
        .map_err(|refusal| {
            tracing::info!(reason = %refusal, "device certificate refused on the jobs data plane");
            match refusal {
                drover_services::DeviceRefusal::Internal(_) => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerException",
                    "An internal error occurred",
                ),
                _ => forbidden("Forbidden"),
            }
        })?;
    let policies: Vec<(&str, &policy::PolicyDocument)> = credentials
        .policies
        .iter()
        .map(|(name, document)| (name.as_str(), document.as_ref()))
        .collect();
    let decision = policy::evaluate(&policies, &request, &credentials.context);
    if !decision.is_allowed() {
        tracing::info!(certificate_id = %credentials.certificate_id, %decision, "device request refused by policy");
        return Err(forbidden("Forbidden"));
    }
    Ok(Caller {
        principal: Principal::Certificate(credentials.certificate_id),
        service: JOBS_DATA.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Option<(String, &'static str)> {
        device_operation(&method, path).map(|(thing, request)| (thing, request.action()))
    }

    #[test]
    fn only_the_four_jobs_data_plane_operations_are_device_operations() {
        let thing = |t: &str, a| Some((t.to_string(), a));
        assert_eq!(
            op(Method::GET, "/things/t1/jobs"),
            thing("t1", "iotjobsdata:GetPendingJobExecutions")
        );
        assert_eq!(
            op(Method::GET, "/things/t1/jobs/j1"),
            thing("t1", "iotjobsdata:DescribeJobExecution")
        );
        assert_eq!(
            op(Method::GET, "/things/t1/jobs/$next"),
            thing("t1", "iotjobsdata:DescribeJobExecution")
        );
        assert_eq!(
            op(Method::POST, "/things/t1/jobs/j1"),
            thing("t1", "iotjobsdata:UpdateJobExecution")
        );
        // SDKs percent-encode `$`; thing names are decoded as the router decodes them.
        for next in ["/things/a%3Ab/jobs/$next", "/things/a%3Ab/jobs/%24next"] {
            assert_eq!(
                op(Method::PUT, next),
                thing("a:b", "iotjobsdata:StartNextPendingJobExecution")
            );
        }
        for (method, path) in [
            (Method::PUT, "/things/t1/jobs/j1"),
            (Method::DELETE, "/things/t1/jobs/j1"),
            (Method::POST, "/things/t1/jobs"),
            (Method::PUT, "/things/t1/jobs/j1/cancel"),
            (Method::DELETE, "/things/t1/jobs/j1/executionNumber/1"),
            (Method::GET, "/things/t1"),
            (Method::GET, "/things"),
            (Method::PUT, "/jobs/j1"),
            (Method::GET, "/jobs/j1/things"),
            (Method::GET, "things/t1/jobs"),
            (Method::GET, "/things/%FF/jobs"),
        ] {
            assert_eq!(op(method.clone(), path), None, "{method} {path}");
        }
    }
}
