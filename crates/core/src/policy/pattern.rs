//! Policy strings with variables and wildcards: parsing `${...}` once when the document is
//! read, resolving the variables against a connection, and IAM's `*` / `?` wildcard match.
//!
//! Two rules keep substitution safe. A substituted value is always literal text: a client id
//! of `*` must not become a wildcard that grants every topic. And the escapes `${*}`, `${?}`,
//! `${$}` stand for the literal characters, so a policy can name a topic containing `*`.

use std::fmt;

use super::context::{AuthzContext, DnAttribute};
use super::document::PolicyVersion;

/// A string from a policy (a resource or a condition value), split into text, escapes and
/// variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Policy text, in which `*` and `?` are wildcards.
    Text(String),
    /// `${*}`, `${?}` or `${$}`: one literal character.
    Escaped(char),
    Variable(Variable),
}

/// A policy variable (`${name}`) or condition key (`name`) drover can resolve. Names compare
/// case-insensitively, as IAM's do; attribute names inside `[...]` are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    ClientId,
    ThingName,
    ThingTypeName,
    ThingAttribute(String),
    ThingIsAttached,
    CertificateSerialNumber,
    CertificateSubject(DnAttribute),
    CertificateIssuer(DnAttribute),
    /// A name drover does not know (another service's variable, or a typo). It never resolves;
    /// the decision's log line names it so the typo is easy to find.
    Unknown(String),
}

impl Variable {
    /// Reads a variable or condition-key name.
    pub fn parse(name: &str) -> Variable {
        let lower = name.to_ascii_lowercase();
        let attribute_prefix = "iot:connection.thing.attributes[";
        if lower.starts_with(attribute_prefix)
            && let Some(attribute) = name[attribute_prefix.len()..].strip_suffix(']')
            && !attribute.is_empty()
        {
            return Variable::ThingAttribute(attribute.to_string());
        }
        let dn = |rest: &str| {
            DnAttribute::ALL
                .into_iter()
                .find(|a| a.name().eq_ignore_ascii_case(rest))
        };
        if let Some(attribute) = lower.strip_prefix("iot:certificate.subject.").and_then(dn) {
            return Variable::CertificateSubject(attribute);
        }
        if let Some(attribute) = lower.strip_prefix("iot:certificate.issuer.").and_then(dn) {
            return Variable::CertificateIssuer(attribute);
        }
        match lower.as_str() {
            "iot:clientid" => Variable::ClientId,
            "iot:connection.thing.thingname" => Variable::ThingName,
            "iot:connection.thing.thingtypename" => Variable::ThingTypeName,
            "iot:connection.thing.isattached" => Variable::ThingIsAttached,
            "iot:certificate.serialnumber" => Variable::CertificateSerialNumber,
            _ => Variable::Unknown(name.to_string()),
        }
    }

    /// The variable's value for this connection, or `None` when it has none.
    pub fn resolve<'c>(&self, context: &'c AuthzContext) -> Option<&'c str> {
        // AWS resolves the thing variables only for a thing attached to the principal.
        let thing = context.thing.as_ref().filter(|t| t.is_attached);
        let certificate = context.certificate.as_ref();
        match self {
            Variable::ClientId => context.client_id.as_deref(),
            Variable::ThingName => thing.map(|t| t.name.as_str()),
            Variable::ThingTypeName => thing.and_then(|t| t.type_name.as_deref()),
            Variable::ThingAttribute(key) => {
                thing.and_then(|t| t.attributes.get(key).map(String::as_str))
            }
            Variable::ThingIsAttached => Some(if thing.is_some() { "true" } else { "false" }),
            Variable::CertificateSerialNumber => {
                certificate.and_then(|c| c.serial_number.as_deref())
            }
            Variable::CertificateSubject(a) => certificate.and_then(|c| c.subject.get(*a)),
            Variable::CertificateIssuer(a) => certificate.and_then(|c| c.issuer.get(*a)),
            Variable::Unknown(_) => None,
        }
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variable::ClientId => f.write_str("iot:ClientId"),
            Variable::ThingName => f.write_str("iot:Connection.Thing.ThingName"),
            Variable::ThingTypeName => f.write_str("iot:Connection.Thing.ThingTypeName"),
            Variable::ThingAttribute(k) => write!(f, "iot:Connection.Thing.Attributes[{k}]"),
            Variable::ThingIsAttached => f.write_str("iot:Connection.Thing.IsAttached"),
            Variable::CertificateSerialNumber => f.write_str("iot:Certificate.SerialNumber"),
            Variable::CertificateSubject(a) => write!(f, "iot:Certificate.Subject.{}", a.name()),
            Variable::CertificateIssuer(a) => write!(f, "iot:Certificate.Issuer.{}", a.name()),
            Variable::Unknown(name) => f.write_str(name),
        }
    }
}

/// One step of a resolved pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Char(char),
    /// `*`: any run of characters, `/` and `:` included.
    Star,
    /// `?`: exactly one character.
    One,
}

impl Pattern {
    /// Splits `source` into pieces. Under version 2008-10-17 IAM does not substitute
    /// variables, so `${...}` is plain text there.
    pub fn parse(source: &str, version: PolicyVersion) -> Result<Pattern, String> {
        let mut pieces = Vec::new();
        if version == PolicyVersion::V2008_10_17 {
            pieces.push(Piece::Text(source.to_string()));
            return Ok(Pattern {
                source: source.to_string(),
                pieces,
            });
        }
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!(
                    "the policy variable starting at '{}' has no closing '}}'",
                    &rest[start..]
                ));
            };
            let name = after[..end].trim();
            pieces.push(match name {
                "" => return Err("'${}' names no policy variable".to_string()),
                "*" => Piece::Escaped('*'),
                "?" => Piece::Escaped('?'),
                "$" => Piece::Escaped('$'),
                name => Piece::Variable(Variable::parse(name)),
            });
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Pattern {
            source: source.to_string(),
            pieces,
        })
    }

    /// The text as the policy wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether any piece is a variable.
    pub fn has_variables(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Variable(_)))
    }

    /// The pattern with variables substituted, as wildcard tokens; or the first variable that
    /// does not resolve.
    pub(crate) fn tokens(&self, context: &AuthzContext) -> Result<Vec<Token>, &Variable> {
        let mut tokens = Vec::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => tokens.extend(text.chars().map(|c| match c {
                    '*' => Token::Star,
                    '?' => Token::One,
                    c => Token::Char(c),
                })),
                Piece::Escaped(c) => tokens.push(Token::Char(*c)),
                Piece::Variable(v) => {
                    let value = v.resolve(context).ok_or(v)?;
                    tokens.extend(value.chars().map(Token::Char));
                }
            }
        }
        Ok(tokens)
    }

    /// The pattern with variables substituted, as plain text (for the equality operators,
    /// where `*` is not a wildcard).
    pub(crate) fn text(&self, context: &AuthzContext) -> Result<String, &Variable> {
        let mut text = String::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Escaped(c) => text.push(*c),
                Piece::Variable(v) => text.push_str(v.resolve(context).ok_or(v)?),
            }
        }
        Ok(text)
    }
}

/// Whether `pattern` matches all of `text`. Greedy with one backtrack point (the last `*`),
/// which is complete for `*`/`?` patterns and linear in practice.
pub(crate) fn glob(pattern: &[Token], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Star) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            // Let the last star swallow one more character and retry from there.
            Some((star, start)) => {
                backtrack = Some((star, start + 1));
                p = star + 1;
                t = start + 1;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|token| *token == Token::Star)
}
