//! The AWS IoT policy engine: policy documents (`document.rs`), policy variables and
//! wildcards (`pattern.rs`), requests and connection facts (`context.rs`), and the decision
//! (`eval.rs`). The broker asks it on CONNECT, SUBSCRIBE, PUBLISH and delivery; the AWS API
//! asks it to validate CreatePolicy and CreatePolicyVersion documents.
//!
//! It decides; it does not look anything up. Which policies are attached to a certificate,
//! which thing a client id names and whether the certificate is attached to it are the
//! services' business, handed in as plain data.

mod context;
mod document;
mod eval;
mod pattern;

pub use context::{
    AuthzContext, AuthzRequest, CertificateFacts, ConnectionThing, DistinguishedName, DnAttribute,
};
pub use document::{
    ActionPattern, Actions, Condition, ConditionOperator, ConditionTest, Effect,
    MAX_POLICY_DOCUMENT_CHARS, PolicyDocument, PolicyError, PolicyVersion, Resources, SetQualifier,
    Statement,
};
pub use eval::{Decision, Outcome, StatementRef, evaluate};
pub use pattern::{Pattern, Variable};

#[cfg(test)]
mod tests;
