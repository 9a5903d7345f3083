//! The errors services return. Each variant is a kind of outcome an API caller can act on;
//! every transport maps them to its own wire names in one place (`drover-aws`'s `error.rs`).

use drover_core::ValidationError;
use drover_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request breaks a rule; nothing was changed.
    #[error("{0}")]
    InvalidRequest(String),
    /// A named resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists with a different definition.
    #[error("{message}")]
    AlreadyExists {
        message: String,
        resource_id: String,
        resource_arn: String,
    },
    /// A fleet-index query that does not parse or does not fit the index; nothing changed.
    #[error("{0}")]
    InvalidQuery(String),
    /// An aggregation asked of a field that cannot provide it.
    #[error("{0}")]
    InvalidAggregation(String),
    /// An account-wide limit would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// `expectedVersion` did not match.
    #[error("{0}")]
    VersionConflict(String),
    /// A certificate's (or CA certificate's) status forbids the operation.
    #[error("{0}")]
    CertificateState(String),
    /// A certificate that is not valid: unparsable, expired, not a CA where one is needed, or
    /// not signed by the CA it claims.
    #[error("{0}")]
    CertificateValidation(String),
    /// A CA's verification certificate does not carry the registration code.
    #[error("{0}")]
    RegistrationCodeValidation(String),
    /// The resource is still in use (attached, or has other versions).
    #[error("{0}")]
    DeleteConflict(String),
    /// A policy already has the maximum number of versions.
    #[error("{0}")]
    VersionsLimitExceeded(String),
    /// A job or job execution is in a status that does not allow the operation.
    #[error("{0}")]
    InvalidStateTransition(String),
    /// A job-execution update conflicts with the execution's current state (jobs data plane).
    #[error("{0}")]
    Conflict(String),
    /// A policy document the policy engine refuses.
    #[error("{0}")]
    MalformedPolicy(String),
    /// The store failed; details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<ValidationError> for ServiceError {
    fn from(e: ValidationError) -> Self {
        ServiceError::InvalidRequest(e.0)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ServiceError::Internal(e.to_string())
    }
}

impl From<drover_core::query::QueryError> for ServiceError {
    fn from(e: drover_core::query::QueryError) -> Self {
        ServiceError::InvalidQuery(e.to_string())
    }
}
