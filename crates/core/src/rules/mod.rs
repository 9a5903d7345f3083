//! AWS IoT SQL, version 2016-03-23, as topic rules use it: the lexer and recursive-descent
//! parser with positioned errors (`lexer.rs`, `parser.rs`), the syntax tree (`ast.rs`), values
//! and their conversions (`value.rs`), functions (`functions.rs`), the evaluator over
//! `serde_json` values (`eval.rs`), substitution templates for action fields
//! (`template.rs`), and rule names and actions as drover runs them (`actions.rs`).
//!
//! Pure: the moment (`timestamp()`) and fresh UUIDs (`newuuid()`) come from the caller's
//! [`Context`]. Subscribing, running actions and storing rules belong to the services.

pub mod actions;
mod ast;
mod eval;
mod functions;
mod lexer;
mod parser;
mod template;
mod value;

#[cfg(test)]
mod tests;

pub use ast::*;
pub use eval::{Context, Payload, Selected, evaluate, evaluate_expression};
pub use parser::{MAX_SQL_BYTES, parse, parse_expression};
pub use template::Template;

/// The SQL versions AWS accepts in `awsIotSqlVersion`. drover evaluates every one with
/// 2016-03-23's semantics.
pub const SQL_VERSIONS: &[&str] = &["2015-10-08", "2016-03-23", "beta"];
/// What AWS assumes when a rule names no version.
pub const DEFAULT_SQL_VERSION: &str = "2015-10-08";

/// A statement or template that does not parse, with where: a byte offset and its 1-based
/// line and column (counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SqlError {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl SqlError {
    pub(crate) fn at(src: &str, offset: usize, message: impl Into<String>) -> SqlError {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SqlError {
            offset,
            line,
            column,
            message: message.into(),
        }
    }
}
