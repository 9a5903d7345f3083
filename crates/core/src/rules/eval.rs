//! Evaluates a parsed statement against one message: the WHERE condition, then the SELECT
//! list, giving the payload a rule's actions receive.
//!
//! JSON payloads are parsed once per message ([`Payload::parse`]); anything else is binary:
//! `SELECT *` passes its bytes through unchanged, and every field of it is Undefined, as AWS
//! does. Evaluation never fails: what AWS treats as an error inside an expression is
//! Undefined, and a WHERE that is not exactly true does not match.

use base64::Engine;
use serde_json::{Map, Value};

use super::ast::*;
use super::functions;
use super::value::*;

/// A message's payload as the rules engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Value),
    Binary(Vec<u8>),
}

impl Payload {
    /// JSON when the bytes are a JSON document, binary otherwise.
    pub fn parse(bytes: &[u8]) -> Payload {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => Payload::Json(value),
            Err(_) => Payload::Binary(bytes.to_vec()),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Json(v) => v.to_string().into_bytes(),
            Payload::Binary(b) => b.clone(),
        }
    }

    fn root(&self) -> Option<&Value> {
        match self {
            Payload::Json(v) => Some(v),
            Payload::Binary(_) => None,
        }
    }
}

/// What a matched statement produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    Json(Value),
    /// `SELECT *` of a binary payload: its bytes.
    Binary(Vec<u8>),
    /// `SELECT VALUE` of something Undefined, or a SELECT list whose every item was
    /// Undefined: AWS sends an empty payload.
    Empty,
}

impl Selected {
    /// The bytes an action sends.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Selected::Json(v) => v.to_string().into_bytes(),
            Selected::Binary(b) => b.clone(),
            Selected::Empty => Vec::new(),
        }
    }
}

/// Facts about the message and the moment that functions read. The caller supplies them
/// (the core reads no clock and draws no random numbers).
pub struct Context<'a> {
    pub topic: &'a str,
    /// The publishing MQTT client; `None` for messages drover publishes itself
    /// (`clientid()` then reads "n/a", as AWS says for messages not sent over MQTT).
    pub client_id: Option<&'a str>,
    /// The certificate id of the publisher, when known.
    pub principal: Option<&'a str>,
    /// Milliseconds since the epoch, for `timestamp()`.
    pub timestamp_ms: i64,
    /// Makes `newuuid()`'s value.
    pub new_uuid: &'a dyn Fn() -> String,
}

struct Env<'a, 'c> {
    ctx: &'a Context<'c>,
    payload: &'a Payload,
}

/// Runs the statement: `None` when the WHERE condition does not hold.
pub fn evaluate(statement: &Statement, ctx: &Context, payload: &Payload) -> Option<Selected> {
    let env = Env { ctx, payload };
    let root = payload.root();
    if let Some(condition) = &statement.condition
        && !is_true(&eval(condition, root, &env))
    {
        return None;
    }
    if let (Payload::Binary(bytes), [Projection::Star]) =
        (payload, statement.select.items.as_slice())
    {
        return Some(Selected::Binary(bytes.clone()));
    }
    Some(match project(&statement.select, root, &env) {
        Some(v) => Selected::Json(v),
        None => Selected::Empty,
    })
}

/// Evaluates one expression against a message (substitution templates).
pub fn evaluate_expression(expr: &Expr, ctx: &Context, payload: &Payload) -> V {
    let env = Env { ctx, payload };
    eval(expr, payload.root(), &env)
}

/// Whether a WHERE value selects the message: a Boolean true, or the string "true".
fn is_true(v: &V) -> bool {
    v.as_ref().and_then(to_bool) == Some(true)
}

/// The SELECT list over one scope; `None` for Undefined (SELECT VALUE of Undefined).
fn project(select: &Select, scope: Option<&Value>, env: &Env) -> V {
    if select.value {
        return match &select.items[0] {
            Projection::Expr { expr, .. } => eval(expr, scope, env),
            Projection::Star => scope.cloned(),
        };
    }
    let mut out = Map::new();
    for item in &select.items {
        match item {
            Projection::Star => {
                if let Some(Value::Object(members)) = scope {
                    for (k, v) in members {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Projection::Expr { expr, name } => {
                if let Some(value) = eval(expr, scope, env) {
                    insert_path(&mut out, name, value);
                }
            }
        }
    }
    Some(Value::Object(out))
}

/// Puts `value` at `a.b.c`, creating (or replacing non-object) members on the way.
fn insert_path(out: &mut Map<String, Value>, path: &[String], value: Value) {
    let (last, parents) = path
        .split_last()
        .expect("an output name has at least one part");
    let mut node = out;
    for part in parents {
        let entry = node
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        node = entry.as_object_mut().expect("made an object just above");
    }
    node.insert(last.clone(), value);
}

/// A field path (`a`, `a.b`, `a[0]` with a literal index) resolved by reference, so only
/// the value at its end is copied; `None` when `expr` is not such a path.
fn path<'v>(expr: &Expr, scope: Option<&'v Value>) -> Option<Option<&'v Value>> {
    match expr {
        Expr::Field(name) => Some(scope.and_then(Value::as_object).and_then(|m| m.get(name))),
        Expr::Member(base, name) => {
            let base = path(base, scope)?;
            Some(base.and_then(Value::as_object).and_then(|m| m.get(name)))
        }
        Expr::Index(base, index) => {
            let Expr::Literal(Value::Number(n)) = index.as_ref() else {
                return None;
            };
            let base = path(base, scope)?;
            let i = n.as_u64().and_then(|i| usize::try_from(i).ok());
            Some(base.and_then(Value::as_array).and_then(|a| a.get(i?)))
        }
        _ => None,
    }
}

fn eval(expr: &Expr, scope: Option<&Value>, env: &Env) -> V {
    if let Some(found) = path(expr, scope) {
        return found.cloned();
    }
    match expr {
        Expr::Literal(v) => Some(v.clone()),
        Expr::Field(name) => match scope? {
            Value::Object(members) => members.get(name).cloned(),
            _ => None,
        },
        Expr::Member(base, name) => match eval(base, scope, env)? {
            Value::Object(mut members) => members.remove(name),
            _ => None,
        },
        Expr::Index(base, index) => {
            let base = eval(base, scope, env)?;
            let index = eval(index, scope, env)?;
            match (&base, &index) {
                (Value::Array(_), Value::Number(_)) | (Value::Object(_), Value::String(_)) => {
                    functions::get(&base, &index)
                }
                _ => None,
            }
        }
        Expr::Payload => Some(Value::String(
            String::from_utf8_lossy(&env.payload.bytes()).into_owned(),
        )),
        Expr::Call(name, args) => call(name, args, scope, env),
        Expr::Unary(UnaryOp::Not, operand) => {
            Some(Value::Bool(!to_bool(&eval(operand, scope, env)?)?))
        }
        Expr::Unary(UnaryOp::Neg, operand) => match to_num(&eval(operand, scope, env)?)? {
            Num::Int(i) => i.checked_neg().map(Value::from),
            Num::Decimal(d) => decimal(-d),
        },
        Expr::Binary(op, left, right) => binary(*op, left, right, scope, env),
        Expr::Case {
            operand,
            arms,
            otherwise,
        } => {
            let subject = operand.as_ref().map(|e| eval(e, scope, env));
            for (when, then) in arms {
                let hit = match &subject {
                    Some(subject) => match (subject, eval(when, scope, env)) {
                        (Some(a), Some(b)) => equals(a, &b),
                        _ => false,
                    },
                    None => is_true(&eval(when, scope, env)),
                };
                if hit {
                    return eval(then, scope, env);
                }
            }
            otherwise.as_ref().and_then(|e| eval(e, scope, env))
        }
        Expr::Cast(value, ty) => functions::cast(&eval(value, scope, env)?, *ty),
        Expr::Object(members) => {
            let mut out = Map::new();
            for (k, e) in members {
                if let Some(v) = eval(e, scope, env) {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        Expr::Array(items) => Some(Value::Array(
            items.iter().filter_map(|e| eval(e, scope, env)).collect(),
        )),
        Expr::Subquery(sub) => {
            let Value::Array(elements) = eval(&sub.from, scope, env)? else {
                return None;
            };
            let mut out = Vec::new();
            for element in &elements {
                if let Some(condition) = &sub.condition
                    && !is_true(&eval(condition, Some(element), env))
                {
                    continue;
                }
                if let Some(v) = project(&sub.select, Some(element), env) {
                    out.push(v);
                }
            }
            Some(Value::Array(out))
        }
    }
}

fn call(name: &str, args: &[Expr], scope: Option<&Value>, env: &Env) -> V {
    let ctx = env.ctx;
    match name {
        "topic" => match args.first() {
            None => Some(Value::String(ctx.topic.to_string())),
            Some(e) => {
                let n = match to_num(&eval(e, scope, env)?)? {
                    Num::Int(n) => n,
                    Num::Decimal(_) => return None,
                };
                let index = usize::try_from(n).ok()?.checked_sub(1)?;
                ctx.topic
                    .split('/')
                    .nth(index)
                    .map(|level| Value::String(level.to_string()))
            }
        },
        "clientid" => Some(Value::String(ctx.client_id.unwrap_or("n/a").to_string())),
        "principal" => ctx.principal.map(|p| Value::String(p.to_string())),
        "timestamp" => Some(Value::from(ctx.timestamp_ms)),
        "newuuid" => Some(Value::String((ctx.new_uuid)())),
        "encode" => {
            let encoding = to_text(&eval(&args[1], scope, env)?)?;
            if !encoding.eq_ignore_ascii_case("base64") {
                return None;
            }
            let bytes = match &args[0] {
                Expr::Payload => env.payload.bytes(),
                other => match eval(other, scope, env)? {
                    Value::String(s) => s.into_bytes(),
                    v => v.to_string().into_bytes(),
                },
            };
            Some(Value::String(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ))
        }
        _ => {
            let values: Vec<V> = args.iter().map(|a| eval(a, scope, env)).collect();
            functions::call(name, &values)
        }
    }
}

fn binary(op: BinaryOp, left: &Expr, right: &Expr, scope: Option<&Value>, env: &Env) -> V {
    let a = eval(left, scope, env)?;
    let b = eval(right, scope, env)?;
    match op {
        BinaryOp::And => Some(Value::Bool(to_bool(&a)? && to_bool(&b)?)),
        BinaryOp::Or => Some(Value::Bool(to_bool(&a)? || to_bool(&b)?)),
        BinaryOp::Eq => Some(Value::Bool(equals(&a, &b))),
        BinaryOp::Ne => Some(Value::Bool(!equals(&a, &b))),
        BinaryOp::Lt => Some(Value::Bool(order(&a, &b)?.is_lt())),
        BinaryOp::Le => Some(Value::Bool(order(&a, &b)?.is_le())),
        BinaryOp::Gt => Some(Value::Bool(order(&a, &b)?.is_gt())),
        BinaryOp::Ge => Some(Value::Bool(order(&a, &b)?.is_ge())),
        BinaryOp::In => match &b {
            Value::Array(items) => Some(Value::Bool(items.iter().any(|x| equals(&a, x)))),
            _ => None,
        },
        BinaryOp::Contains => match (&a, &b) {
            (Value::Array(items), _) => Some(Value::Bool(items.iter().any(|x| equals(x, &b)))),
            (Value::String(s), _) => Some(Value::Bool(s.contains(&to_text(&b)?))),
            _ => None,
        },
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
            arithmetic(op, to_num(&a)?, to_num(&b)?)
        }
    }
}

/// Int with Int stays Int (falling back to Decimal on overflow); any Decimal makes a
/// Decimal. Division of Ints is exact when it can be, a Decimal otherwise; by zero it is
/// Undefined.
fn arithmetic(op: BinaryOp, a: Num, b: Num) -> V {
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let exact = match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            BinaryOp::Div if y != 0 && x.checked_rem(y) == Some(0) => x.checked_div(y),
            BinaryOp::Rem => return functions::arithmetic_rem(a, b),
            _ => None,
        };
        if let Some(v) = exact {
            return Some(Value::from(v));
        }
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    match op {
        BinaryOp::Add => decimal(x + y),
        BinaryOp::Sub => decimal(x - y),
        BinaryOp::Mul => decimal(x * y),
        BinaryOp::Div if y != 0.0 => decimal(x / y),
        BinaryOp::Rem => functions::arithmetic_rem(a, b),
        _ => None,
    }
}
