//! Evaluating a query against a thing: the index schema (which fields are typed how), the
//! document a thing is indexed as, and the compiled [`Matcher`].
//!
//! Typing follows AWS: registry attributes are strings and compare lexically, unless the
//! indexing configuration declares them as custom fields of type Number or Boolean; drover adds
//! Version (see `version`). All matching is case-insensitive. A thing whose value does not fit
//! its field's type (`abc` in a Number field) has no value for that field, as AWS leaves such a
//! value out of the index. Compiling checks each term against its field's type and reports the
//! offending term's position; a stored query compiled after the configuration changed is
//! compiled leniently instead, so a term that no longer fits matches nothing.

use std::collections::BTreeMap;

use super::ast::*;
use super::parser::{Parsed, QueryError};
use super::version::Version;
use crate::registry::Attributes;

/// The type of an indexed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Boolean,
    /// drover extension: release versions (`1.9 < 1.10`).
    Version,
}

/// What evaluation needs from the indexing configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Custom field types by full field name (`attributes.app_version`).
    pub custom_fields: BTreeMap<String, FieldType>,
    /// Whether `connectivity.*` fields are indexed (thingConnectivityIndexingMode STATUS).
    pub connectivity: bool,
}

impl Schema {
    pub fn field_type(&self, field: &Field) -> FieldType {
        match field {
            Field::ThingName
            | Field::ThingId
            | Field::ThingTypeName
            | Field::ThingGroupNames
            | Field::ConnectivityDisconnectReason
            | Field::Shadow(_) => FieldType::String,
            Field::RegistryVersion | Field::ConnectivityTimestamp => FieldType::Number,
            Field::ConnectivityConnected => FieldType::Boolean,
            Field::Attribute(_) => self
                .custom_fields
                .get(&field.name())
                .copied()
                .unwrap_or(FieldType::String),
        }
    }
}

/// A thing's connection state, as the device gateway records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connectivity {
    pub connected: bool,
    /// Epoch milliseconds of the last connect or disconnect.
    pub timestamp: i64,
    pub disconnect_reason: Option<String>,
}

/// Everything the `AWS_Things` index knows about one thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedThing {
    pub name: String,
    pub id: String,
    pub type_name: Option<String>,
    pub attributes: Attributes,
    /// Names of the groups the thing is a direct member of, sorted.
    pub group_names: Vec<String>,
    pub version: i64,
    /// `None` until the thing first connects.
    pub connectivity: Option<Connectivity>,
}

/// A query compiled against a schema, ready to test many things quickly.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    All,
    Nothing,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Leaf(Source, Test),
}

/// Where a term's values come from.
#[derive(Debug, Clone)]
enum Source {
    Name,
    Id,
    TypeName,
    GroupNames,
    Attribute(String),
    RegistryVersion,
    Connected,
    Timestamp,
    DisconnectReason,
    /// A bare term: every registry string field and every attribute value.
    Anything,
}

#[derive(Debug, Clone)]
enum Test {
    Exists,
    Text(TextTest),
    Number(Interval<f64>),
    Boolean(bool),
    Version(VersionTest),
}

/// Tests on case-folded text.
#[derive(Debug, Clone)]
enum TextTest {
    Equals(String),
    Pattern(Vec<Piece>),
    Range(Interval<String>),
}

#[derive(Debug, Clone)]
enum VersionTest {
    Pattern(Vec<Piece>),
    Range(Interval<Version>),
}

/// A set of values between two optional ends; equality is a closed interval of one value.
#[derive(Debug, Clone)]
struct Interval<T> {
    lower: Option<(T, bool)>,
    upper: Option<(T, bool)>,
}

impl<T: PartialOrd> Interval<T> {
    fn point(value: T) -> Self
    where
        T: Clone,
    {
        Interval {
            lower: Some((value.clone(), true)),
            upper: Some((value, true)),
        }
    }

    fn contains(&self, value: &T) -> bool {
        let above = match &self.lower {
            None => true,
            Some((bound, true)) => value >= bound,
            Some((bound, false)) => value > bound,
        };
        let below = match &self.upper {
            None => true,
            Some((bound, true)) => value <= bound,
            Some((bound, false)) => value < bound,
        };
        above && below
    }
}

/// Case folding for matching. Registry names and attribute values are ASCII by AWS's patterns,
/// and the store's SQL `lower()` folds ASCII only, so both sides must agree on ASCII folding.
pub fn fold(text: &str) -> String {
    text.to_ascii_lowercase()
}

fn fold_pieces(pieces: &[Piece]) -> Vec<Piece> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(s) => Piece::Literal(fold(s)),
            other => other.clone(),
        })
        .collect()
}

/// Wildcard matching: `?` is one character, `*` any run. The classic greedy algorithm with
/// one backtrack point: linear in practice, never recursive, so hostile patterns are harmless.
pub(crate) fn wildcard_match(pieces: &[Piece], text: &str) -> bool {
    enum Token {
        Char(char),
        One,
        Star,
    }
    let mut pattern = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Literal(s) => pattern.extend(s.chars().map(Token::Char)),
            Piece::AnyChar => pattern.push(Token::One),
            Piece::AnyChars => pattern.push(Token::Star),
        }
    }
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0usize, 0usize);
    let mut last_star: Option<usize> = None;
    let mut resume = 0usize;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Star) => {
                last_star = Some(p);
                resume = t;
                p += 1;
            }
            _ => match last_star {
                Some(star) => {
                    p = star + 1;
                    resume += 1;
                    t = resume;
                }
                None => return false,
            },
        }
    }
    while let Some(Token::Star) = pattern.get(p) {
        p += 1;
    }
    p == pattern.len()
}

impl Matcher {
    /// Compiles a freshly parsed query, rejecting terms whose values do not fit their field.
    pub fn compile(parsed: &Parsed, schema: &Schema) -> Result<Matcher, QueryError> {
        let root = compile(&parsed.query, schema, &mut 0, Some(&parsed.term_offsets))?;
        Ok(Matcher { root })
    }

    /// Compiles a stored query: a term that no longer fits its field matches nothing.
    pub fn compile_lenient(query: &Query, schema: &Schema) -> Matcher {
        let root = compile(query, schema, &mut 0, None).expect("lenient compilation never fails");
        Matcher { root }
    }

    pub fn matches(&self, thing: &IndexedThing, schema: &Schema) -> bool {
        eval(&self.root, thing, schema)
    }
}

/// Compiles `query`. `next_term` counts terms in depth-first order, the order of the parser's
/// `term_offsets`; with `offsets` a term that does not fit its field is an error at its
/// position, without them it becomes a node that matches nothing.
fn compile(
    query: &Query,
    schema: &Schema,
    next_term: &mut usize,
    offsets: Option<&[usize]>,
) -> Result<Node, QueryError> {
    let all = |clauses: &[Query], next_term: &mut usize| -> Result<Vec<Node>, QueryError> {
        clauses
            .iter()
            .map(|c| compile(c, schema, next_term, offsets))
            .collect()
    };
    Ok(match query {
        Query::And(clauses) => Node::And(all(clauses, next_term)?),
        Query::Or(clauses) => Node::Or(all(clauses, next_term)?),
        Query::Not(inner) => Node::Not(Box::new(compile(inner, schema, next_term, offsets)?)),
        Query::Term(term) => {
            let index = *next_term;
            *next_term += 1;
            match (compile_term(term, schema), offsets) {
                (Ok(node), _) => node,
                (Err(message), Some(offsets)) => {
                    return Err(QueryError::new(
                        offsets.get(index).copied().unwrap_or(0),
                        message,
                    ));
                }
                (Err(_), None) => Node::Nothing,
            }
        }
    })
}

fn compile_term(term: &Term, schema: &Schema) -> Result<Node, String> {
    let Some(field) = &term.field else {
        return Ok(match &term.predicate {
            Predicate::Exists => Node::All,
            Predicate::Matches(text) => Node::Leaf(Source::Anything, Test::Text(text_test(text))),
            Predicate::Range { .. } | Predicate::Compare(..) => {
                return Err("a range or comparison needs a field".into());
            }
        });
    };
    let source = match field {
        Field::ThingName => Source::Name,
        Field::ThingId => Source::Id,
        Field::ThingTypeName => Source::TypeName,
        Field::ThingGroupNames => Source::GroupNames,
        Field::Attribute(key) => Source::Attribute(key.clone()),
        Field::RegistryVersion => Source::RegistryVersion,
        Field::ConnectivityConnected => Source::Connected,
        Field::ConnectivityTimestamp => Source::Timestamp,
        Field::ConnectivityDisconnectReason => Source::DisconnectReason,
        Field::Shadow(_) => return Ok(Node::Nothing),
    };
    let name = field.name();
    let (lower, upper) = match &term.predicate {
        Predicate::Exists => return Ok(Node::Leaf(source, Test::Exists)),
        Predicate::Range { lower, upper } => (lower.clone(), upper.clone()),
        Predicate::Compare(op, value) => op.bounds(value),
        Predicate::Matches(text) => {
            let test = match schema.field_type(field) {
                FieldType::String => Test::Text(text_test(text)),
                FieldType::Number => {
                    let literal = text.as_literal().ok_or_else(|| {
                        format!("{name} is a Number field; wildcards do not apply")
                    })?;
                    Test::Number(Interval::point(number(&name, &literal)?))
                }
                FieldType::Boolean => {
                    let literal = text.as_literal().unwrap_or_default();
                    Test::Boolean(boolean(&name, &literal)?)
                }
                FieldType::Version => match text.as_literal() {
                    Some(literal) => Test::Version(VersionTest::Range(Interval::point(version(
                        &name, &literal,
                    )?))),
                    None => Test::Version(VersionTest::Pattern(fold_pieces(&text.0))),
                },
            };
            return Ok(Node::Leaf(source, test));
        }
    };
    let test = match schema.field_type(field) {
        FieldType::String => Test::Text(TextTest::Range(interval(lower, upper, |v| Ok(fold(v)))?)),
        FieldType::Number => Test::Number(interval(lower, upper, |v| number(&name, v))?),
        FieldType::Version => Test::Version(VersionTest::Range(interval(lower, upper, |v| {
            version(&name, v)
        })?)),
        FieldType::Boolean => {
            return Err(format!(
                "{name} is a Boolean field; ranges and comparisons do not apply"
            ));
        }
    };
    Ok(Node::Leaf(source, test))
}

fn text_test(text: &Text) -> TextTest {
    match text.as_literal() {
        Some(literal) => TextTest::Equals(fold(&literal)),
        None => TextTest::Pattern(fold_pieces(&text.0)),
    }
}

fn interval<T>(
    lower: Bound,
    upper: Bound,
    convert: impl Fn(&str) -> Result<T, String>,
) -> Result<Interval<T>, String> {
    let end = |bound: Bound| -> Result<Option<(T, bool)>, String> {
        Ok(match bound {
            Bound::Unbounded => None,
            Bound::Inclusive(v) => Some((convert(&v)?, true)),
            Bound::Exclusive(v) => Some((convert(&v)?, false)),
        })
    };
    Ok(Interval {
        lower: end(lower)?,
        upper: end(upper)?,
    })
}

/// Parses a number as the index stores it: finite decimal, no hex, no `inf`/`nan`.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let plausible = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    plausible
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .filter(|n| n.is_finite())
}

fn number(field: &str, text: &str) -> Result<f64, String> {
    parse_number(text)
        .ok_or_else(|| format!("'{text}' is not a number, and {field} is a Number field"))
}

pub(crate) fn parse_boolean(text: &str) -> Option<bool> {
    match fold(text).as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn boolean(field: &str, text: &str) -> Result<bool, String> {
    parse_boolean(text)
        .ok_or_else(|| format!("'{text}' is not true or false, and {field} is a Boolean field"))
}

fn version(field: &str, text: &str) -> Result<Version, String> {
    Version::parse(text)
        .ok_or_else(|| format!("'{text}' is not a release version, and {field} is a Version field"))
}

fn eval(node: &Node, thing: &IndexedThing, schema: &Schema) -> bool {
    match node {
        Node::All => true,
        Node::Nothing => false,
        Node::And(nodes) => nodes.iter().all(|n| eval(n, thing, schema)),
        Node::Or(nodes) => nodes.iter().any(|n| eval(n, thing, schema)),
        Node::Not(inner) => !eval(inner, thing, schema),
        Node::Leaf(source, test) => leaf(source, test, thing, schema),
    }
}

fn leaf(source: &Source, test: &Test, thing: &IndexedThing, schema: &Schema) -> bool {
    let connectivity = if schema.connectivity {
        Some(thing.connectivity.as_ref())
    } else {
        None
    };
    match source {
        Source::Name => text(test, Some(thing.name.as_str())),
        Source::Id => text(test, Some(thing.id.as_str())),
        Source::TypeName => text(test, thing.type_name.as_deref()),
        Source::GroupNames => thing.group_names.iter().any(|g| text(test, Some(g))),
        Source::DisconnectReason => text(
            test,
            connectivity
                .flatten()
                .and_then(|c| c.disconnect_reason.as_deref()),
        ),
        Source::Anything => {
            let strings = [
                Some(thing.name.as_str()),
                Some(thing.id.as_str()),
                thing.type_name.as_deref(),
            ];
            strings.into_iter().flatten().any(|s| text(test, Some(s)))
                || thing.group_names.iter().any(|g| text(test, Some(g)))
                || thing.attributes.values().any(|v| text(test, Some(v)))
        }
        Source::Attribute(key) => {
            let value = thing.attributes.get(key).map(String::as_str);
            match test {
                Test::Number(interval) => value
                    .and_then(parse_number)
                    .is_some_and(|n| interval.contains(&n)),
                Test::Boolean(wanted) => value.and_then(parse_boolean) == Some(*wanted),
                Test::Version(version) => value.is_some_and(|v| version_test(version, v)),
                Test::Exists => match schema.field_type(&Field::Attribute(key.clone())) {
                    FieldType::String => value.is_some(),
                    FieldType::Number => value.and_then(parse_number).is_some(),
                    FieldType::Boolean => value.and_then(parse_boolean).is_some(),
                    FieldType::Version => value.and_then(Version::parse).is_some(),
                },
                Test::Text(_) => text(test, value),
            }
        }
        Source::RegistryVersion => numeric(test, Some(thing.version as f64)),
        Source::Timestamp => numeric(test, connectivity.flatten().map(|c| c.timestamp as f64)),
        Source::Connected => match (test, connectivity) {
            (_, None) => false,
            (Test::Exists, Some(_)) => true,
            // A thing that never connected counts as disconnected.
            (Test::Boolean(wanted), Some(c)) => c.is_some_and(|c| c.connected) == *wanted,
            _ => false,
        },
    }
}

fn text(test: &Test, value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    match test {
        Test::Exists => true,
        Test::Text(TextTest::Equals(wanted)) => value.eq_ignore_ascii_case(wanted),
        Test::Text(TextTest::Pattern(pieces)) => wildcard_match(pieces, &fold(value)),
        Test::Text(TextTest::Range(interval)) => interval.contains(&fold(value)),
        _ => false,
    }
}

fn numeric(test: &Test, value: Option<f64>) -> bool {
    let Some(value) = value else { return false };
    match test {
        Test::Exists => true,
        Test::Number(interval) => interval.contains(&value),
        _ => false,
    }
}

fn version_test(test: &VersionTest, value: &str) -> bool {
    match test {
        VersionTest::Pattern(pieces) => wildcard_match(pieces, &fold(value)),
        VersionTest::Range(interval) => {
            Version::parse(value).is_some_and(|v| interval.contains(&v))
        }
    }
}
