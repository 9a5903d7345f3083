//! The one error the core raises: input that breaks an AWS pattern or limit.
//!
//! It carries a message written for the API caller; the transports map it to their own error
//! name (`InvalidRequestException` on the AWS APIs).

/// Input that does not satisfy AWS's documented constraints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
