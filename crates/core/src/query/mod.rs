//! The AWS fleet-indexing query language (query version 2017-09-30): parse a query string into
//! a typed tree, print it back, check it against the index schema, evaluate it against things,
//! and plan which things a store must read.
//!
//! Syntax (a Lucene subset, as AWS documents it): `field:value` terms and bare terms, `AND`,
//! `OR`, `NOT` and `-term`, implicit `AND` between adjacent clauses, parentheses, field groups
//! `field:(a OR b*)`, quoted phrases with `\` escapes, wildcards `*` and `?`, ranges
//! `field:[a TO b]` / `{a TO b}` (mixed ends allowed, `*` for an open end), comparisons
//! `field < v`, `<=`, `>`, `>=`, and `field:*`. At most 12 terms; only one term may start
//! with a wildcard, and then the query may be at most 100 characters (AWS's limits).

mod aggregate;
mod ast;
mod eval;
mod parser;
mod plan;
mod version;

pub use aggregate::{Statistics, StatisticsBuilder, cardinality_key, field_values};
pub use ast::{Bound, CompareOp, Field, Piece, Predicate, Query, Term, Text};
pub use eval::{Connectivity, FieldType, IndexedThing, Matcher, Schema, fold};
pub use parser::{Parsed, QueryError, field_named, parse};
pub use plan::{CandidateScan, ValueRange, plan};
pub use version::Version;

/// The query version AWS defines and drover speaks.
pub const QUERY_VERSION: &str = "2017-09-30";
/// The one thing index.
pub const THINGS_INDEX: &str = "AWS_Things";

pub(crate) mod limits {
    /// Terms per query (AWS).
    pub const MAX_QUERY_TERMS: usize = 12;
    /// Terms that may start with a wildcard (AWS).
    pub const MAX_LEADING_WILDCARD_TERMS: usize = 1;
    /// Query length when a term starts with a wildcard (AWS).
    pub const MAX_LEADING_WILDCARD_QUERY_CHARS: usize = 100;
    /// Query length otherwise. AWS documents no number; twelve terms of the longest attribute
    /// names and values fit comfortably.
    pub const MAX_QUERY_CHARS: usize = 4096;
}

/// Parses `text` and checks it against `schema`: the one entry point for a query a caller
/// just sent (SearchIndex, dynamic groups).
pub fn compile(text: &str, schema: &Schema) -> Result<(Query, Matcher), QueryError> {
    let parsed = parse(text)?;
    let matcher = Matcher::compile(&parsed, schema)?;
    Ok((parsed.query, matcher))
}

#[cfg(test)]
mod tests;
