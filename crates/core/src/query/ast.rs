//! The typed syntax tree of a fleet-index query, and its canonical printer.
//!
//! The printer writes a query that parses back to the same tree (a property test holds it to
//! that), so a query can be normalised, logged or shown in the console without losing meaning.
//! The tree is untyped with respect to values: whether `2.0` is a string, a number or a release
//! version depends on the indexing configuration, which evaluation applies (see `eval`).

use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Term(Term),
    Not(Box<Query>),
    /// Two or more clauses that must all match (explicit `AND` or the implicit default).
    And(Vec<Query>),
    /// Two or more clauses of which one must match.
    Or(Vec<Query>),
}

impl Query {
    /// Whether any term reads a `connectivity.*` field, so a connect or disconnect can change
    /// what the query selects.
    pub fn uses_connectivity(&self) -> bool {
        match self {
            Query::Term(term) => matches!(
                term.field,
                Some(
                    Field::ConnectivityConnected
                        | Field::ConnectivityTimestamp
                        | Field::ConnectivityDisconnectReason
                )
            ),
            Query::Not(inner) => inner.uses_connectivity(),
            Query::And(clauses) | Query::Or(clauses) => {
                clauses.iter().any(Query::uses_connectivity)
            }
        }
    }
}

/// One search term: a predicate on a field, or on every registry field when `field` is `None`
/// (a bare term such as `sensor-1` or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: Option<Field>,
    pub predicate: Predicate,
}

/// The fields of the `AWS_Things` index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    ThingName,
    ThingId,
    ThingTypeName,
    ThingGroupNames,
    /// `attributes.NAME`: a registry attribute.
    Attribute(String),
    /// `registry.version`.
    RegistryVersion,
    ConnectivityConnected,
    ConnectivityTimestamp,
    ConnectivityDisconnectReason,
    /// `shadow.…`: accepted, as AWS accepts it, but drover keeps no device shadows, so such a
    /// term matches no thing.
    Shadow(String),
}

impl Field {
    /// The field's name as written in a query.
    pub fn name(&self) -> String {
        match self {
            Field::ThingName => "thingName".into(),
            Field::ThingId => "thingId".into(),
            Field::ThingTypeName => "thingTypeName".into(),
            Field::ThingGroupNames => "thingGroupNames".into(),
            Field::Attribute(key) => format!("attributes.{key}"),
            Field::RegistryVersion => "registry.version".into(),
            Field::ConnectivityConnected => "connectivity.connected".into(),
            Field::ConnectivityTimestamp => "connectivity.timestamp".into(),
            Field::ConnectivityDisconnectReason => "connectivity.disconnectReason".into(),
            Field::Shadow(path) => format!("shadow.{path}"),
        }
    }
}

/// What a term asks of a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `field:value`, where the value may hold wildcards.
    Matches(Text),
    /// `field:*`: the field has a value.
    Exists,
    /// `field:[a TO b]`, `{a TO b}` or mixed; `*` leaves a side open.
    Range { lower: Bound, upper: Bound },
    /// `field < value` and friends.
    Compare(CompareOp, String),
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Unbounded,
    Inclusive(String),
    Exclusive(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The range `field OP value` selects.
    pub fn bounds(self, value: &str) -> (Bound, Bound) {
        let value = value.to_string();
        match self {
            CompareOp::Lt => (Bound::Unbounded, Bound::Exclusive(value)),
            CompareOp::Le => (Bound::Unbounded, Bound::Inclusive(value)),
            CompareOp::Gt => (Bound::Exclusive(value), Bound::Unbounded),
            CompareOp::Ge => (Bound::Inclusive(value), Bound::Unbounded),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A term's value: literal characters and wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Characters matched literally (never empty; adjacent literals are merged).
    Literal(String),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters, including none.
    AnyChars,
}

impl Text {
    pub fn literal(value: impl Into<String>) -> Self {
        let value = value.into();
        if value.is_empty() {
            Text(Vec::new())
        } else {
            Text(vec![Piece::Literal(value)])
        }
    }

    /// The literal value when the text has no wildcards.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// The literal prefix when the text is `prefix*` (the one wildcard shape an index serves).
    pub fn as_prefix(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Piece::Literal(prefix), Piece::AnyChars] => Some(prefix),
            _ => None,
        }
    }

    pub fn starts_with_wildcard(&self) -> bool {
        matches!(self.0.first(), Some(Piece::AnyChar | Piece::AnyChars))
    }
}

/// Characters that must be escaped (or quoted) to appear literally in an unquoted value.
pub(crate) fn is_special(c: char) -> bool {
    c.is_whitespace() || "()[]{}:\"<>=~^!&|+\\`@#%/';,*?".contains(c)
}

fn write_escaped(f: &mut fmt::Formatter<'_>, literal: &str, at_start: bool) -> fmt::Result {
    for (i, c) in literal.chars().enumerate() {
        if is_special(c) || (c == '-' && at_start && i == 0) {
            write!(f, "\\")?;
        }
        write!(f, "{c}")?;
    }
    Ok(())
}

/// Writes a literal value as a quoted phrase when it has characters that need it, else bare.
fn write_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let bare = !value.is_empty()
        && !value.starts_with('-')
        && !value.eq_ignore_ascii_case("and")
        && !value.eq_ignore_ascii_case("or")
        && !value.eq_ignore_ascii_case("not")
        && !value.eq_ignore_ascii_case("to")
        && !value.chars().any(is_special);
    if bare {
        return write!(f, "{value}");
    }
    write!(f, "\"")?;
    for c in value.chars() {
        if c == '"' || c == '\\' {
            write!(f, "\\")?;
        }
        write!(f, "{c}")?;
    }
    write!(f, "\"")
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(literal) = self.as_literal() {
            return write_value(f, &literal);
        }
        for (i, piece) in self.0.iter().enumerate() {
            match piece {
                Piece::Literal(s) => {
                    // Escaping keeps keywords from being read as operators too: `\AND*`.
                    if i == 0
                        && ["and", "or", "not", "to"].contains(&s.to_ascii_lowercase().as_str())
                    {
                        write!(f, "\\")?;
                    }
                    write_escaped(f, s, i == 0)?
                }
                Piece::AnyChar => write!(f, "?")?,
                Piece::AnyChars => write!(f, "*")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        for c in name.chars() {
            if is_special(c) {
                write!(f, "\\")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(field) = &self.field else {
            return match &self.predicate {
                Predicate::Exists => write!(f, "*"),
                Predicate::Matches(text) => write!(f, "{text}"),
                // The parser never builds these without a field.
                Predicate::Range { .. } | Predicate::Compare(..) => write!(f, "*"),
            };
        };
        match &self.predicate {
            Predicate::Matches(text) => write!(f, "{field}:{text}"),
            Predicate::Exists => write!(f, "{field}:*"),
            Predicate::Compare(op, value) => {
                write!(f, "{field} {} ", op.symbol())?;
                write_value(f, value)
            }
            Predicate::Range { lower, upper } => {
                write!(f, "{field}:")?;
                match lower {
                    Bound::Unbounded => write!(f, "[*")?,
                    Bound::Inclusive(v) => {
                        write!(f, "[")?;
                        write_value(f, v)?
                    }
                    Bound::Exclusive(v) => {
                        write!(f, "{{")?;
                        write_value(f, v)?
                    }
                }
                write!(f, " TO ")?;
                match upper {
                    Bound::Unbounded => write!(f, "*]"),
                    Bound::Inclusive(v) => {
                        write_value(f, v)?;
                        write!(f, "]")
                    }
                    Bound::Exclusive(v) => {
                        write_value(f, v)?;
                        write!(f, "}}")
                    }
                }
            }
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Term(term) => write!(f, "{term}"),
            Query::Not(inner) => match inner.as_ref() {
                Query::Term(_) | Query::Not(_) => write!(f, "NOT {inner}"),
                _ => write!(f, "NOT ({inner})"),
            },
            Query::And(clauses) => {
                for (i, clause) in clauses.iter().enumerate() {
                    if i > 0 {
                        write!(f, " AND ")?;
                    }
                    match clause {
                        Query::Or(_) | Query::And(_) => write!(f, "({clause})")?,
                        _ => write!(f, "{clause}")?,
                    }
                }
                Ok(())
            }
            Query::Or(clauses) => {
                for (i, clause) in clauses.iter().enumerate() {
                    if i > 0 {
                        write!(f, " OR ")?;
                    }
                    match clause {
                        Query::Or(_) => write!(f, "({clause})")?,
                        _ => write!(f, "{clause}")?,
                    }
                }
                Ok(())
            }
        }
    }
}
