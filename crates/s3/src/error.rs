//! S3's error shape: an HTTP status plus `<Error><Code/><Message/><Resource/><RequestId/></Error>`.
//!
//! Every failure of the S3 API (storage, signature, input) becomes an [`S3Error`] here and
//! nowhere else, so botocore raises the same `ClientError` code it would against AWS.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use drover_aws::sigv4::SigV4Error;

use crate::xml;

/// One S3 error, rendered as S3 renders it.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The bucket or object the request named (`/bucket/key`), filled in by the router.
    pub resource: String,
    pub request_id: String,
    /// For HEAD requests S3 sends the status only.
    pub head: bool,
    /// Extra headers (e.g. `Content-Range` on InvalidRange).
    pub headers: Vec<(&'static str, String)>,
}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            resource: String::new(),
            request_id: String::new(),
            head: false,
            headers: Vec::new(),
        }
    }

    pub fn no_such_bucket() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    }
    pub fn no_such_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }
    pub fn no_such_upload() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }
    pub fn malformed_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }
    pub fn bad_digest(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadDigest", message)
    }
    pub fn incomplete_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }
    pub fn signature_mismatch() -> Self {
        SigV4Error::SignatureMismatch.into()
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "A header or query you provided implies functionality that is not implemented: {what}"
            ),
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<SigV4Error> for S3Error {
    fn from(e: SigV4Error) -> Self {
        let message = e.to_string();
        match e {
            SigV4Error::Missing => {
                Self::new(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied")
            }
            SigV4Error::UnknownAccessKey => Self::new(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            SigV4Error::SignatureMismatch => {
                Self::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", message)
            }
            // S3 answers an expired presigned URL or a skewed clock with AccessDenied /
            // RequestTimeTooSkewed, both 403.
            SigV4Error::Expired(m) if m.contains("not yet current") || m.contains("15 min") => {
                Self::new(
                    StatusCode::FORBIDDEN,
                    "RequestTimeTooSkewed",
                    format!(
                        "The difference between the request time and the current time is too large. {m}"
                    ),
                )
            }
            SigV4Error::Expired(_) => {
                Self::new(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
            }
            SigV4Error::WrongRegion => Self::new(
                StatusCode::BAD_REQUEST,
                "AuthorizationHeaderMalformed",
                "The authorization header is malformed; the region is wrong.",
            ),
            SigV4Error::WrongService(_) | SigV4Error::Malformed(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "AuthorizationHeaderMalformed",
                message,
            ),
        }
    }
}

impl From<std::io::Error> for S3Error {
    fn from(e: std::io::Error) -> Self {
        tracing::error!(error = %e, "artifact storage I/O error");
        Self::internal()
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        metrics::counter!("drover_s3_errors_total", "code" => self.code).increment(1);
        let body = if self.head {
            String::new()
        } else {
            xml::error(self.code, &self.message, &self.resource, &self.request_id)
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        if !self.head {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert("x-amz-request-id", v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_errors_map_to_s3_codes() {
        let e: S3Error = SigV4Error::SignatureMismatch.into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
        );
        let e: S3Error = SigV4Error::UnknownAccessKey.into();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::FORBIDDEN, "InvalidAccessKeyId")
        );
        let e: S3Error =
            SigV4Error::Expired("Signature expired: a is now earlier than b".into()).into();
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, "AccessDenied"));
    }
}
