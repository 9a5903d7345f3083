//! Substitution templates: action fields such as a republish topic `alerts/${topic(2)}` or a
//! header value `${statusDetails.appVersion}`. Each `${expression}` is any AWS IoT SQL
//! expression, evaluated against the original message (not the SELECT result, so aliases
//! are not visible), as AWS documents.

use super::eval::{Context, Payload, evaluate_expression};
use super::parser::parse_expression;
use super::value::{V, template_text};
use super::{Expr, SqlError};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; an expression that does not parse is an error whose position is an
    /// offset into `text`.
    pub fn parse(text: &str) -> Result<Template, SqlError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let body_start = start + 2;
            let Some(len) = closing_brace(&rest[body_start..]) else {
                return Err(SqlError::at(
                    text,
                    offset + start,
                    "unterminated '${' in template",
                ));
            };
            let body = &rest[body_start..body_start + len];
            let expr = parse_expression(body)
                .map_err(|e| SqlError::at(text, offset + body_start + e.offset, e.message))?;
            parts.push(Part::Expr(expr));
            let consumed = body_start + len + 1;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the template has any `${…}`.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The text with every expression replaced by its value (Undefined reads as empty).
    pub fn render(&self, ctx: &Context, payload: &Payload) -> String {
        self.values(ctx, payload)
            .iter()
            .map(|(text, value)| match value {
                Some(v) => template_text(v),
                None => text.clone(),
            })
            .collect()
    }

    /// As [`Template::render`], but `None` when any expression is Undefined: for fields
    /// where an empty substitution would do harm (a thing attribute).
    pub fn render_defined(&self, ctx: &Context, payload: &Payload) -> Option<String> {
        let mut out = String::new();
        for (text, value) in self.values(ctx, payload) {
            match value {
                Some(None) => return None,
                Some(v) => out.push_str(&template_text(&v)),
                None => out.push_str(&text),
            }
        }
        Some(out)
    }

    /// Each part: literal text with `None`, or an expression's value with `Some`.
    fn values(&self, ctx: &Context, payload: &Payload) -> Vec<(String, Option<V>)> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(t) => (t.clone(), None),
                Part::Expr(e) => (String::new(), Some(evaluate_expression(e, ctx, payload))),
            })
            .collect()
    }
}

/// The length of a template body up to its `}`, skipping braces inside strings and nested
/// object literals.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, ch) in s.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None => match ch {
                '\'' | '"' => quote = Some(ch),
                '{' => depth += 1,
                '}' if depth == 0 => return Some(i),
                '}' => depth -= 1,
                _ => {}
            },
        }
    }
    None
}
