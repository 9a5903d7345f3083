//! The AWS IoT SQL functions that depend only on their arguments: math, strings, type tests,
//! `get`, `cast`. Functions that read the message or the moment (`topic()`, `clientid()`,
//! `timestamp()`, `newuuid()`, `principal()`, `encode(*, …)`) are evaluated in `eval.rs`.
//!
//! As AWS documents, a function given an argument it cannot use returns Undefined rather
//! than failing the rule; only the name and the number of arguments are checked when the
//! statement is parsed.

use serde_json::Value;

use super::ast::CastType;
use super::value::*;

/// (name, fewest arguments, most arguments)
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("abs", 1, 1),
    ("ceil", 1, 1),
    ("floor", 1, 1),
    ("round", 1, 1),
    ("sign", 1, 1),
    ("sqrt", 1, 1),
    ("power", 2, 2),
    ("mod", 2, 2),
    ("ln", 1, 1),
    ("log", 1, 1),
    ("exp", 1, 1),
    ("trunc", 2, 2),
    ("concat", 2, 16),
    ("lower", 1, 1),
    ("upper", 1, 1),
    ("trim", 1, 1),
    ("ltrim", 1, 1),
    ("rtrim", 1, 1),
    ("lpad", 2, 2),
    ("rpad", 2, 2),
    ("substring", 2, 3),
    ("length", 1, 1),
    ("strlen", 1, 1),
    ("startswith", 2, 2),
    ("endswith", 2, 2),
    ("replace", 3, 3),
    ("indexof", 2, 2),
    ("regexp_matches", 2, 2),
    ("regexp_replace", 3, 3),
    ("regexp_substr", 2, 2),
    ("isundefined", 1, 1),
    ("isnull", 1, 1),
    ("isboolean", 1, 1),
    ("isnumber", 1, 1),
    ("isstring", 1, 1),
    ("isarray", 1, 1),
    ("isobject", 1, 1),
    ("get", 2, 2),
    ("nanvl", 2, 2),
    ("encode", 2, 2),
    ("topic", 0, 1),
    ("clientid", 0, 0),
    ("principal", 0, 0),
    ("timestamp", 0, 0),
    ("newuuid", 0, 0),
];

pub fn is_known(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, _, _)| *n == name)
}

pub fn check_arity(name: &str, count: usize) -> Result<(), String> {
    let Some(&(_, min, max)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("unknown function '{name}'"));
    };
    if count < min || count > max {
        let expected = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "{name}() takes {expected} argument(s), {count} given"
        ));
    }
    Ok(())
}

fn arg(args: &[V], i: usize) -> Option<&Value> {
    args.get(i).and_then(Option::as_ref)
}

fn num_arg(args: &[V], i: usize) -> Option<Num> {
    to_num(arg(args, i)?)
}

fn text_arg(args: &[V], i: usize) -> Option<String> {
    to_text(arg(args, i)?)
}

fn int_arg(args: &[V], i: usize) -> Option<i64> {
    match num_arg(args, i)? {
        Num::Int(i) => Some(i),
        Num::Decimal(d) if d.fract() == 0.0 => Some(d as i64),
        Num::Decimal(_) => None,
    }
}

fn unary_math(args: &[V], int: fn(i64) -> Option<i64>, dec: fn(f64) -> f64) -> V {
    match num_arg(args, 0)? {
        Num::Int(i) => int(i).map(Value::from),
        Num::Decimal(d) => decimal(dec(d)),
    }
}

fn float_math(args: &[V], f: fn(f64) -> f64) -> V {
    decimal(f(num_arg(args, 0)?.as_f64()))
}

fn string_fn(args: &[V], f: impl Fn(&str) -> String) -> V {
    Some(Value::String(f(&text_arg(args, 0)?)))
}

fn regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .ok()
}

/// Calls a pure function with evaluated arguments. The parser has checked name and arity.
pub fn call(name: &str, args: &[V]) -> V {
    match name {
        "abs" => unary_math(args, i64::checked_abs, f64::abs),
        "ceil" => unary_math(args, Some, f64::ceil),
        "floor" => unary_math(args, Some, f64::floor),
        "round" => unary_math(args, Some, f64::round),
        "sign" => unary_math(args, |i| Some(i.signum()), f64::signum),
        "sqrt" => float_math(args, f64::sqrt),
        "ln" => float_math(args, f64::ln),
        "log" => float_math(args, f64::log10),
        "exp" => float_math(args, f64::exp),
        "power" => {
            let (base, exp) = (num_arg(args, 0)?, num_arg(args, 1)?);
            if let (Num::Int(b), Num::Int(e)) = (base, exp)
                && let Ok(e) = u32::try_from(e)
                && let Some(p) = b.checked_pow(e)
            {
                return Some(Value::from(p));
            }
            decimal(base.as_f64().powf(exp.as_f64()))
        }
        "mod" => arithmetic_rem(num_arg(args, 0)?, num_arg(args, 1)?),
        "trunc" => {
            let places = int_arg(args, 1)?.clamp(0, 15) as i32;
            let scale = 10f64.powi(places);
            decimal((num_arg(args, 0)?.as_f64() * scale).trunc() / scale)
        }
        "nanvl" => match arg(args, 0) {
            Some(v @ Value::Number(_)) => Some(v.clone()),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("nan") => args[1].clone(),
            Some(other) => Some(other.clone()),
            None => args[1].clone(),
        },
        "concat" => concat(args),
        "lower" => string_fn(args, str::to_lowercase),
        "upper" => string_fn(args, str::to_uppercase),
        "trim" => string_fn(args, |s| s.trim().to_string()),
        "ltrim" => string_fn(args, |s| s.trim_start().to_string()),
        "rtrim" => string_fn(args, |s| s.trim_end().to_string()),
        "lpad" | "rpad" => {
            let s = text_arg(args, 0)?;
            let n = usize::try_from(int_arg(args, 1)?).ok()?.min(4096);
            let pad = " ".repeat(n);
            Some(Value::String(if name == "lpad" {
                pad + &s
            } else {
                s + &pad
            }))
        }
        "substring" => {
            let chars: Vec<char> = text_arg(args, 0)?.chars().collect();
            let len = chars.len() as i64;
            let start = int_arg(args, 1)?.clamp(0, len);
            let end = match args.get(2) {
                Some(_) => int_arg(args, 2)?.clamp(start, len),
                None => len,
            };
            Some(Value::String(
                chars[start as usize..end as usize].iter().collect(),
            ))
        }
        "length" | "strlen" => match arg(args, 0)? {
            Value::Array(a) => Some(Value::from(a.len())),
            other => Some(Value::from(to_text(other)?.chars().count())),
        },
        "startswith" => Some(Value::Bool(
            text_arg(args, 0)?.starts_with(&text_arg(args, 1)?),
        )),
        "endswith" => Some(Value::Bool(
            text_arg(args, 0)?.ends_with(&text_arg(args, 1)?),
        )),
        "replace" => Some(Value::String(
            text_arg(args, 0)?.replace(&text_arg(args, 1)?, &text_arg(args, 2)?),
        )),
        "indexof" => {
            let (s, sub) = (text_arg(args, 0)?, text_arg(args, 1)?);
            Some(Value::from(
                s.find(&sub)
                    .map_or(-1, |byte| s[..byte].chars().count() as i64),
            ))
        }
        "regexp_matches" => Some(Value::Bool(
            regex(&text_arg(args, 1)?)?.is_match(&text_arg(args, 0)?),
        )),
        "regexp_replace" => {
            let re = regex(&text_arg(args, 1)?)?;
            Some(Value::String(
                re.replace_all(&text_arg(args, 0)?, text_arg(args, 2)?.as_str())
                    .into_owned(),
            ))
        }
        "regexp_substr" => {
            let re = regex(&text_arg(args, 1)?)?;
            let s = text_arg(args, 0)?;
            Some(Value::String(
                re.find(&s)
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
            ))
        }
        "isundefined" => Some(Value::Bool(args[0].is_none())),
        "isnull" => Some(Value::Bool(matches!(args[0], Some(Value::Null)))),
        "isboolean" => Some(Value::Bool(matches!(args[0], Some(Value::Bool(_))))),
        "isnumber" => Some(Value::Bool(matches!(args[0], Some(Value::Number(_))))),
        "isstring" => Some(Value::Bool(matches!(args[0], Some(Value::String(_))))),
        "isarray" => Some(Value::Bool(matches!(args[0], Some(Value::Array(_))))),
        "isobject" => Some(Value::Bool(matches!(args[0], Some(Value::Object(_))))),
        "get" => get(arg(args, 0)?, arg(args, 1)?),
        _ => None,
    }
}

/// `get(array, index)` or `get(object, key)`.
pub fn get(container: &Value, key: &Value) -> V {
    match container {
        Value::Array(items) => {
            let i = match to_num(key)? {
                Num::Int(i) => i,
                Num::Decimal(d) if d.fract() == 0.0 => d as i64,
                Num::Decimal(_) => return None,
            };
            items.get(usize::try_from(i).ok()?).cloned()
        }
        Value::Object(members) => members.get(&to_text(key)?).cloned(),
        _ => None,
    }
}

/// `concat`: arrays concatenate (other values join them as elements); otherwise every
/// argument converts to a string.
fn concat(args: &[V]) -> V {
    if args.iter().any(|a| matches!(a, Some(Value::Array(_)))) {
        let mut out = Vec::new();
        for a in args {
            match a.as_ref()? {
                Value::Array(items) => out.extend(items.iter().cloned()),
                other => out.push(other.clone()),
            }
        }
        return Some(Value::Array(out));
    }
    let mut out = String::new();
    for a in args {
        out.push_str(&to_text(a.as_ref()?)?);
    }
    Some(Value::String(out))
}

/// `%` and `mod()`: Int for Ints (sign of the dividend), Decimal otherwise; by zero,
/// Undefined.
pub fn arithmetic_rem(a: Num, b: Num) -> V {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.checked_rem(y).map(Value::from),
        _ if b.as_f64() == 0.0 => None,
        _ => decimal(a.as_f64() % b.as_f64()),
    }
}

/// `cast(value AS type)`.
pub fn cast(v: &Value, ty: CastType) -> V {
    match ty {
        CastType::Int => match v {
            Value::Bool(b) => Some(Value::from(i64::from(*b))),
            _ => match to_num(v)? {
                Num::Int(i) => Some(Value::from(i)),
                Num::Decimal(d) => {
                    let t = d.trunc();
                    (t.abs() < 9.2e18).then(|| Value::from(t as i64))
                }
            },
        },
        CastType::Decimal => match v {
            Value::Bool(b) => Some(Value::from(i64::from(*b))),
            _ => to_num(v)?.into_value(),
        },
        CastType::Boolean => match v {
            Value::Number(_) => Some(Value::Bool(to_num(v)?.as_f64() != 0.0)),
            _ => to_bool(v).map(Value::Bool),
        },
        CastType::String => match v {
            Value::Null => None,
            Value::String(s) => Some(Value::String(s.clone())),
            other => Some(Value::String(other.to_string())),
        },
    }
}
