//! Timestamps as the domain sees them: milliseconds since the Unix epoch.
//!
//! The core never reads a clock; callers pass `Timestamp`s in. The AWS control plane renders
//! them as fractional epoch seconds.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Epoch seconds with millisecond precision, the AWS REST/JSON timestamp encoding.
    pub fn epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}
