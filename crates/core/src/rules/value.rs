//! AWS IoT SQL values and the conversions between them.
//!
//! A value is a `serde_json::Value`, or Undefined (`None`): a missing field, a function given
//! arguments it cannot use, an operator given types it does not accept. Undefined propagates
//! through operators and functions and is left out when the result is serialized. Numbers
//! follow SQL version 2016-03-23: a whole-valued Decimal is an Int.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// A value or Undefined.
pub type V = Option<Value>;

/// A number as arithmetic sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Decimal(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Decimal(d) => d,
        }
    }

    pub fn into_value(self) -> V {
        match self {
            Num::Int(i) => Some(Value::from(i)),
            Num::Decimal(d) => decimal(d),
        }
    }
}

/// A Decimal as a value: whole values within Int's range become Ints (SQL 2016-03-23);
/// NaN and infinities are Undefined, since JSON cannot carry them.
pub fn decimal(d: f64) -> V {
    if !d.is_finite() {
        return None;
    }
    if d.fract() == 0.0 && d.abs() < 9.0e15 {
        return Some(Value::from(d as i64));
    }
    Number::from_f64(d).map(Value::Number)
}

/// A JSON number as a [`Num`].
pub fn json_num(n: &Number) -> Option<Num> {
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i))
    } else {
        n.as_f64().map(Num::Decimal)
    }
}

/// A value as a number: numbers as they are, strings that parse as numbers, anything else
/// Undefined (AWS's "to Decimal" conversion; Booleans need an explicit cast).
pub fn to_num(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => json_num(n),
        Value::String(s) => parse_num(s.trim()),
        _ => None,
    }
}

pub fn parse_num(s: &str) -> Option<Num> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Num::Int(i));
    }
    s.parse::<f64>()
        .ok()
        .filter(|d| d.is_finite())
        .map(Num::Decimal)
}

/// A value as a Boolean: Booleans, and the strings "true"/"false" in any case.
pub fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A value as a String for functions that want one: strings as they are, numbers and
/// Booleans as their text; arrays, objects and Null are not converted.
pub fn to_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// How a value reads inside a substitution template: strings bare, everything else as
/// JSON, Undefined empty.
pub fn template_text(v: &V) -> String {
    match v {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `=`: numbers compare by value, other values of the same type structurally; values of
/// different types are unequal. Undefined on either side gives Undefined.
pub fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (json_num(x), json_num(y)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
            (Some(x), Some(y)) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equals(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equals(v, w)))
        }
        _ => a == b,
    }
}

/// `<`, `>`, …: numbers, and strings that convert to numbers, compare numerically; any
/// other pair has no order (Undefined), as AWS's operator tables say.
pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
    compare_nums(to_num(a)?, to_num(b)?)
}

fn compare_nums(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    }
}
