//! AWS-shaped errors: HTTP status, `x-amzn-ErrorType` header and a JSON body
//! `{"__type": name, "message": ...}`, so botocore and the Rust SDK raise the exception class
//! they would raise against AWS. The mapping from service and signature errors lives here
//! and nowhere else.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use drover_services::ServiceError;
use serde_json::json;

use crate::sigv4::SigV4Error;

/// An error as the AWS APIs return it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
    /// Extra modeled members (e.g. `resourceId`, `resourceArn`).
    pub members: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            name,
            message: message.into(),
            members: Vec::new(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    /// An unknown path: AWS's API front end answers 404 with this name.
    pub fn unknown_operation(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("No operation matches {method} {path}"),
        )
    }

    /// A known path with a method it does not support.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            format!("The method {method} is not allowed for {path}"),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            "An internal error occurred",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidRequest(m) => ApiError::invalid_request(m),
            ServiceError::NotFound(m) => ApiError::not_found(m),
            ServiceError::AlreadyExists {
                message,
                resource_id,
                resource_arn,
            } => ApiError {
                status: StatusCode::CONFLICT,
                name: "ResourceAlreadyExistsException",
                message,
                members: vec![("resourceId", resource_id), ("resourceArn", resource_arn)],
            },
            ServiceError::InvalidQuery(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidQueryException", m)
            }
            ServiceError::InvalidAggregation(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidAggregationException", m)
            }
            // AWS IoT answers LimitExceededException with 410 Gone.
            ServiceError::LimitExceeded(m) => {
                ApiError::new(StatusCode::GONE, "LimitExceededException", m)
            }
            ServiceError::VersionConflict(m) => {
                ApiError::new(StatusCode::CONFLICT, "VersionConflictException", m)
            }
            // AWS IoT answers CertificateStateException with 406 Not Acceptable.
            ServiceError::CertificateState(m) => {
                ApiError::new(StatusCode::NOT_ACCEPTABLE, "CertificateStateException", m)
            }
            ServiceError::CertificateValidation(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "CertificateValidationException", m)
            }
            ServiceError::RegistrationCodeValidation(m) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "RegistrationCodeValidationException",
                m,
            ),
            ServiceError::DeleteConflict(m) => {
                ApiError::new(StatusCode::CONFLICT, "DeleteConflictException", m)
            }
            ServiceError::VersionsLimitExceeded(m) => {
                ApiError::new(StatusCode::CONFLICT, "VersionsLimitExceededException", m)
            }
            ServiceError::MalformedPolicy(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "MalformedPolicyException", m)
            }
            ServiceError::InvalidStateTransition(m) => {
                ApiError::new(StatusCode::CONFLICT, "InvalidStateTransitionException", m)
            }
            ServiceError::Conflict(m) => {
                ApiError::new(StatusCode::CONFLICT, "ConflictException", m)
            }
            ServiceError::Internal(_) => ApiError::internal(),
        }
    }
}

impl From<SigV4Error> for ApiError {
    fn from(e: SigV4Error) -> Self {
        let name = match &e {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::UnknownAccessKey => "UnrecognizedClientException",
            SigV4Error::Malformed(_) => "IncompleteSignatureException",
            SigV4Error::SignatureMismatch
            | SigV4Error::Expired(_)
            | SigV4Error::WrongRegion
            | SigV4Error::WrongService(_) => "InvalidSignatureException",
        };
        let status = match &e {
            SigV4Error::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, name, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "__type": self.name, "message": self.message });
        for (key, value) in self.members {
            body[key] = json!(value);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.name));
        response
    }
}
