//! Which things a store must read to answer a query: a superset of the matches, chosen so an
//! index can produce it (a thing-name range, or one attribute key with a value range).
//!
//! The plan only narrows the scan; every candidate is still tested by the [`super::Matcher`],
//! so a plan may be loose but never too tight. Values are case-folded, matching the stores'
//! `lower(…)` expression indexes.

use super::ast::*;
use super::eval::{FieldType, Schema, fold};

/// The candidate things for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateScan {
    /// Every thing.
    All,
    /// Things whose case-folded name falls in the range.
    Names(ValueRange),
    /// Things that have attribute `key`, with a case-folded value in the range.
    Attribute { key: String, values: ValueRange },
    /// Things in every one of the scans (two or more, none `All`).
    Intersect(Vec<CandidateScan>),
    /// Things in any of the scans (two or more, none `All`).
    Union(Vec<CandidateScan>),
}

/// How many conjuncts an intersection combines: beyond the narrowest few, another index
/// range costs more to read than it saves.
const MAX_INTERSECTED: usize = 3;

/// A range over case-folded strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRange {
    Any,
    Equals(String),
    Prefix(String),
    Between { lower: Bound, upper: Bound },
}

impl ValueRange {
    /// How narrow the range tends to be: higher is better.
    fn selectivity(&self) -> u8 {
        match self {
            ValueRange::Equals(_) => 4,
            ValueRange::Prefix(_) => 3,
            ValueRange::Between { .. } => 2,
            ValueRange::Any => 1,
        }
    }
}

impl CandidateScan {
    fn selectivity(&self) -> u8 {
        match self {
            CandidateScan::All => 0,
            CandidateScan::Names(range) | CandidateScan::Attribute { values: range, .. } => {
                range.selectivity()
            }
            CandidateScan::Intersect(scans) => {
                scans.iter().map(Self::selectivity).max().unwrap_or(0) + 1
            }
            CandidateScan::Union(scans) => scans.iter().map(Self::selectivity).min().unwrap_or(0),
        }
    }
}

/// Plans the scan for `query` under `schema`.
pub fn plan(query: &Query, schema: &Schema) -> CandidateScan {
    match query {
        Query::Term(term) => plan_term(term, schema),
        // Every conjunct's candidates contain every match: intersect the narrowest few.
        Query::And(clauses) => {
            let mut scans: Vec<CandidateScan> = clauses
                .iter()
                .map(|c| plan(c, schema))
                .filter(|s| *s != CandidateScan::All)
                .collect();
            scans.sort_by_key(|s| std::cmp::Reverse(s.selectivity()));
            scans.truncate(MAX_INTERSECTED);
            match scans.len() {
                0 => CandidateScan::All,
                1 => scans.pop().expect("one scan"),
                _ => CandidateScan::Intersect(scans),
            }
        }
        // A match satisfies some disjunct: the union, unless one disjunct needs everything.
        Query::Or(clauses) => {
            let scans: Vec<CandidateScan> = clauses.iter().map(|c| plan(c, schema)).collect();
            if scans.contains(&CandidateScan::All) {
                CandidateScan::All
            } else {
                CandidateScan::Union(scans)
            }
        }
        // A complement is not an index range.
        Query::Not(_) => CandidateScan::All,
    }
}

fn plan_term(term: &Term, schema: &Schema) -> CandidateScan {
    let Some(field) = &term.field else {
        return CandidateScan::All;
    };
    let string_range = || -> Option<ValueRange> {
        Some(match &term.predicate {
            Predicate::Exists => ValueRange::Any,
            Predicate::Matches(text) => match (text.as_literal(), text.as_prefix()) {
                (Some(literal), _) => ValueRange::Equals(fold(&literal)),
                (None, Some(prefix)) if !prefix.is_empty() => ValueRange::Prefix(fold(prefix)),
                _ => return None,
            },
            Predicate::Range { lower, upper } => ValueRange::Between {
                lower: fold_bound(lower),
                upper: fold_bound(upper),
            },
            Predicate::Compare(op, value) => {
                let (lower, upper) = op.bounds(&fold(value));
                ValueRange::Between { lower, upper }
            }
        })
    };
    match field {
        Field::ThingName => match string_range() {
            Some(ValueRange::Any) | None => CandidateScan::All,
            Some(range) => CandidateScan::Names(range),
        },
        Field::Attribute(key) => {
            let values = match schema.field_type(field) {
                FieldType::String => string_range().unwrap_or(ValueRange::Any),
                // Typed values do not order as text; any thing with the key may match.
                _ => ValueRange::Any,
            };
            CandidateScan::Attribute {
                key: key.clone(),
                values,
            }
        }
        _ => CandidateScan::All,
    }
}

fn fold_bound(bound: &Bound) -> Bound {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Inclusive(v) => Bound::Inclusive(fold(v)),
        Bound::Exclusive(v) => Bound::Exclusive(fold(v)),
    }
}
