//! Policy documents: reading the JSON AWS IoT accepts into a typed form, and rejecting the rest
//! with a message that names the offending element (the API returns it as
//! `MalformedPolicyException`).
//!
//! The typed form keeps what evaluation needs, already parsed: effects and operators are
//! enums, actions and resources are compiled patterns. The original text is kept by the caller
//! (GetPolicy returns it verbatim), not here.

use std::fmt;

use serde_json::{Map, Value};

use super::pattern::{Pattern, Token, Variable};

/// AWS IoT: a policy document is at most 2048 characters, not counting whitespace.
pub const MAX_POLICY_DOCUMENT_CHARS: usize = 2048;

/// A document AWS IoT would reject, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Where in the document, as a JSON path (`Statement[1].Action[0]`); empty for the whole
    /// document.
    pub path: String,
    pub message: String,
}

impl PolicyError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

/// The policy language version. Only 2012-10-17 substitutes policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)] // the names are the dates AWS uses
pub enum PolicyVersion {
    V2012_10_17,
    V2008_10_17,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: PolicyVersion,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Actions,
    pub resources: Resources,
    /// All must hold for the statement to apply (IAM ANDs operators and keys).
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` (the statement covers these) or `NotAction` (it covers everything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actions {
    Action(Vec<ActionPattern>),
    NotAction(Vec<ActionPattern>),
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resources {
    Resource(Vec<Pattern>),
    NotResource(Vec<Pattern>),
}

/// An action name with optional wildcards (`iot:Publish`, `iot:Pub*`, `iot:*`, `*`), matched
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    pub source: String,
    /// Lowercased, so matching lowercases only the request's action.
    pub(crate) tokens: Vec<Token>,
}

/// One `operator: { key: values }` test of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: ConditionOperator,
    /// The condition key (`iot:Connection.Thing.IsAttached`); keys drover cannot resolve are
    /// kept as `Variable::Unknown` and are always absent.
    pub key: Variable,
    /// Any one may match (IAM ORs the values of one key).
    pub values: Vec<Pattern>,
}

/// A condition operator: a test, optionally prefixed with a set qualifier and suffixed with
/// `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionOperator {
    pub qualifier: Option<SetQualifier>,
    pub test: ConditionTest,
    /// `...IfExists`: the condition holds when the key is absent.
    pub if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// `ForAnyValue:`: some value of the key passes the test.
    ForAnyValue,
    /// `ForAllValues:`: every value of the key passes (vacuously true when it has none).
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionTest {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    Bool,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

impl ConditionTest {
    const ALL: [ConditionTest; 18] = [
        ConditionTest::StringEquals,
        ConditionTest::StringNotEquals,
        ConditionTest::StringEqualsIgnoreCase,
        ConditionTest::StringNotEqualsIgnoreCase,
        ConditionTest::StringLike,
        ConditionTest::StringNotLike,
        ConditionTest::NumericEquals,
        ConditionTest::NumericNotEquals,
        ConditionTest::NumericLessThan,
        ConditionTest::NumericLessThanEquals,
        ConditionTest::NumericGreaterThan,
        ConditionTest::NumericGreaterThanEquals,
        ConditionTest::Bool,
        ConditionTest::ArnEquals,
        ConditionTest::ArnNotEquals,
        ConditionTest::ArnLike,
        ConditionTest::ArnNotLike,
        ConditionTest::Null,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConditionTest::StringEquals => "StringEquals",
            ConditionTest::StringNotEquals => "StringNotEquals",
            ConditionTest::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            ConditionTest::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            ConditionTest::StringLike => "StringLike",
            ConditionTest::StringNotLike => "StringNotLike",
            ConditionTest::NumericEquals => "NumericEquals",
            ConditionTest::NumericNotEquals => "NumericNotEquals",
            ConditionTest::NumericLessThan => "NumericLessThan",
            ConditionTest::NumericLessThanEquals => "NumericLessThanEquals",
            ConditionTest::NumericGreaterThan => "NumericGreaterThan",
            ConditionTest::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            ConditionTest::Bool => "Bool",
            ConditionTest::ArnEquals => "ArnEquals",
            ConditionTest::ArnNotEquals => "ArnNotEquals",
            ConditionTest::ArnLike => "ArnLike",
            ConditionTest::ArnNotLike => "ArnNotLike",
            ConditionTest::Null => "Null",
        }
    }

    /// Whether the test is the negation of another (`StringNotEquals` of `StringEquals`).
    /// IAM evaluates a negated test as "no value matches", and treats an absent key as passing.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            ConditionTest::StringNotEquals
                | ConditionTest::StringNotEqualsIgnoreCase
                | ConditionTest::StringNotLike
                | ConditionTest::NumericNotEquals
                | ConditionTest::ArnNotEquals
                | ConditionTest::ArnNotLike
        )
    }
}

/// IAM operators drover recognises but cannot evaluate (no clock or peer address reaches the
/// core); a policy using them is rejected rather than silently misjudged.
const UNSUPPORTED_OPERATORS: [&str; 9] = [
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "IpAddress",
    "NotIpAddress",
    "BinaryEquals",
];

impl ConditionOperator {
    /// Reads `[ForAnyValue:|ForAllValues:]Test[IfExists]`.
    pub fn parse(text: &str) -> Result<ConditionOperator, String> {
        let (qualifier, rest) = if let Some(rest) = text.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = text.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, text)
        };
        let (name, if_exists) = match rest.strip_suffix("IfExists") {
            Some(name) => (name, true),
            None => (rest, false),
        };
        let Some(test) = ConditionTest::ALL.into_iter().find(|t| t.name() == name) else {
            if UNSUPPORTED_OPERATORS.contains(&name) {
                return Err(format!(
                    "the condition operator '{text}' is not supported by drover"
                ));
            }
            return Err(format!("unknown condition operator '{text}'"));
        };
        if test == ConditionTest::Null && (if_exists || qualifier.is_some()) {
            return Err(format!(
                "the condition operator '{text}' is invalid: Null takes no IfExists or set qualifier"
            ));
        }
        Ok(ConditionOperator {
            qualifier,
            test,
            if_exists,
        })
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.test.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// Service prefixes an AWS IoT policy may name. `iotjobsdata:` is how AWS's guide names the
/// jobs data-plane actions a device calls over HTTPS. `greengrass:` actions appear in the
/// policies AWS documents for Greengrass core devices; drover accepts them so such documents
/// load, and no drover request ever matches them.
const ACTION_SERVICES: [&str; 3] = ["iot", "iotjobsdata", "greengrass"];

impl PolicyDocument {
    /// Parses and validates a policy document.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        let counted = text.chars().filter(|c| !c.is_whitespace()).count();
        if counted > MAX_POLICY_DOCUMENT_CHARS {
            return Err(PolicyError::new(
                "",
                format!(
                    "the policy document is {counted} characters long, not counting whitespace; \
                     the maximum is {MAX_POLICY_DOCUMENT_CHARS}"
                ),
            ));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            PolicyError::new("", format!("the policy document is not valid JSON: {e}"))
        })?;
        let Value::Object(root) = value else {
            return Err(PolicyError::new(
                "",
                "the policy document must be a JSON object",
            ));
        };
        for key in root.keys() {
            if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
                return Err(PolicyError::new(
                    key.as_str(),
                    "unknown element; a policy document has Version, Statement and Id",
                ));
            }
        }
        let version = match root.get("Version") {
            // IAM's rule: without a Version, the 2008 language applies.
            None => PolicyVersion::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
            Some(other) => {
                return Err(PolicyError::new(
                    "Version",
                    format!("{other} is not a policy version; use \"2012-10-17\""),
                ));
            }
        };
        if root.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(PolicyError::new("Id", "must be a string"));
        }
        let statements = match root.get("Statement") {
            None => return Err(PolicyError::new("", "the policy document has no Statement")),
            Some(Value::Object(statement)) => {
                vec![parse_statement("Statement", statement, version)?]
            }
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(PolicyError::new("Statement", "must not be empty"));
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("Statement[{i}]");
                    match item {
                        Value::Object(statement) => parse_statement(&path, statement, version),
                        _ => Err(PolicyError::new(path, "a statement must be a JSON object")),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(PolicyError::new(
                    "Statement",
                    "must be a statement object or an array of them",
                ));
            }
        };
        Ok(PolicyDocument {
            version,
            statements,
        })
    }
}

fn parse_statement(
    path: &str,
    statement: &Map<String, Value>,
    version: PolicyVersion,
) -> Result<Statement, PolicyError> {
    for key in statement.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
            | "Condition" => {}
            "Principal" | "NotPrincipal" => {
                return Err(PolicyError::new(
                    format!("{path}.{key}"),
                    "an AWS IoT policy names no principal; attach the policy to one instead",
                ));
            }
            _ => {
                return Err(PolicyError::new(
                    format!("{path}.{key}"),
                    "unknown statement element",
                ));
            }
        }
    }
    let sid = match statement.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(PolicyError::new(format!("{path}.Sid"), "must be a string")),
    };
    let effect = match statement.get("Effect") {
        None => return Err(PolicyError::new(path, "the statement has no Effect")),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::new(
                format!("{path}.Effect"),
                format!("{other} is not an effect; use \"Allow\" or \"Deny\""),
            ));
        }
    };
    let (name, value, negated) = one_of(path, statement, "Action", "NotAction")?;
    let patterns = strings(&format!("{path}.{name}"), value)?
        .into_iter()
        .map(|(p, s)| parse_action(&p, s))
        .collect::<Result<Vec<_>, _>>()?;
    let actions = if negated {
        Actions::NotAction(patterns)
    } else {
        Actions::Action(patterns)
    };
    let (name, value, negated) = one_of(path, statement, "Resource", "NotResource")?;
    let patterns = strings(&format!("{path}.{name}"), value)?
        .into_iter()
        .map(|(p, s)| parse_resource(&p, s, version))
        .collect::<Result<Vec<_>, _>>()?;
    let resources = if negated {
        Resources::NotResource(patterns)
    } else {
        Resources::Resource(patterns)
    };
    let conditions = match statement.get("Condition") {
        None => Vec::new(),
        Some(value) => parse_conditions(&format!("{path}.Condition"), value, version)?,
    };
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        conditions,
    })
}

/// Exactly one of `positive` and `negative` must be present; returns which, its value, and
/// whether it was the negative one.
fn one_of<'a>(
    path: &str,
    statement: &'a Map<String, Value>,
    positive: &'static str,
    negative: &'static str,
) -> Result<(&'static str, &'a Value, bool), PolicyError> {
    match (statement.get(positive), statement.get(negative)) {
        (Some(value), None) => Ok((positive, value, false)),
        (None, Some(value)) => Ok((negative, value, true)),
        (Some(_), Some(_)) => Err(PolicyError::new(
            path,
            format!("the statement has both {positive} and {negative}; use one"),
        )),
        (None, None) => Err(PolicyError::new(
            path,
            format!("the statement has no {positive} (or {negative})"),
        )),
    }
}

/// A string or a non-empty array of strings, each with its path.
fn strings<'a>(path: &str, value: &'a Value) -> Result<Vec<(String, &'a str)>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![(path.to_string(), s.as_str())]),
        Value::Array(items) if items.is_empty() => {
            Err(PolicyError::new(path, "must not be an empty array"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{path}[{i}]");
                match item {
                    Value::String(s) => Ok((path, s.as_str())),
                    other => Err(PolicyError::new(path, format!("{other} is not a string"))),
                }
            })
            .collect(),
        other => Err(PolicyError::new(
            path,
            format!("must be a string or an array of strings, not {other}"),
        )),
    }
}

fn parse_action(path: &str, text: &str) -> Result<ActionPattern, PolicyError> {
    let valid = text == "*"
        || text.split_once(':').is_some_and(|(service, name)| {
            ACTION_SERVICES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(service))
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        });
    if !valid {
        return Err(PolicyError::new(
            path,
            format!(
                "'{text}' is not an action; write iot:Name (wildcards * and ? allowed, as in iot:*)"
            ),
        ));
    }
    let tokens = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            '*' => Token::Star,
            '?' => Token::One,
            c => Token::Char(c),
        })
        .collect();
    Ok(ActionPattern {
        source: text.to_string(),
        tokens,
    })
}

fn parse_resource(path: &str, text: &str, version: PolicyVersion) -> Result<Pattern, PolicyError> {
    // `arn:partition:service:region:account:resource`: six parts, so at least five colons,
    // unless a trailing `*` stands for the rest (`arn:aws:iot:*`, common in AWS examples).
    let arn_like =
        text.starts_with("arn:") && (text.matches(':').count() >= 5 || text.ends_with('*'));
    if text != "*" && !arn_like {
        return Err(PolicyError::new(
            path,
            format!(
                "'{text}' is not a resource; write * or an ARN such as \
                 arn:aws:iot:us-east-1:123456789012:topic/a/b"
            ),
        ));
    }
    Pattern::parse(text, version).map_err(|message| PolicyError::new(path, message))
}

fn parse_conditions(
    path: &str,
    value: &Value,
    version: PolicyVersion,
) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = value else {
        return Err(PolicyError::new(
            path,
            "must be an object of operators, as in {\"Bool\": {\"iot:Connection.Thing.IsAttached\": \"true\"}}",
        ));
    };
    let mut conditions = Vec::new();
    for (operator_text, tests) in operators {
        let operator_path = format!("{path}.{operator_text}");
        let operator = ConditionOperator::parse(operator_text)
            .map_err(|message| PolicyError::new(operator_path.as_str(), message))?;
        let Value::Object(keys) = tests else {
            return Err(PolicyError::new(
                operator_path,
                "must be an object of condition keys and values",
            ));
        };
        if keys.is_empty() {
            return Err(PolicyError::new(operator_path, "names no condition key"));
        }
        for (key, values) in keys {
            let key_path = format!("{operator_path}.{key}");
            let values = condition_values(&key_path, values)?
                .into_iter()
                .map(|(value_path, text)| {
                    check_condition_value(&value_path, operator, &text)?;
                    Pattern::parse(&text, version)
                        .map_err(|message| PolicyError::new(value_path, message))
                })
                .collect::<Result<Vec<_>, _>>()?;
            conditions.push(Condition {
                operator,
                key: Variable::parse(key),
                values,
            });
        }
    }
    Ok(conditions)
}

/// Condition values: a string, number or boolean, or a non-empty array of them. IAM compares
/// them as text, so numbers and booleans are kept as their JSON spelling.
fn condition_values(path: &str, value: &Value) -> Result<Vec<(String, String)>, PolicyError> {
    let scalar = |path: String, value: &Value| match value {
        Value::String(s) => Ok((path, s.clone())),
        Value::Number(n) => Ok((path, n.to_string())),
        Value::Bool(b) => Ok((path, b.to_string())),
        other => Err(PolicyError::new(
            path,
            format!("{other} is not a condition value; use a string, number or boolean"),
        )),
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Err(PolicyError::new(path, "must not be an empty array"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar(format!("{path}[{i}]"), item))
            .collect(),
        other => Ok(vec![scalar(path.to_string(), other)?]),
    }
}

/// Values a test can never use are errors now rather than silent non-matches later. A value
/// holding a variable is checked when it resolves.
fn check_condition_value(
    path: &str,
    operator: ConditionOperator,
    text: &str,
) -> Result<(), PolicyError> {
    if text.contains("${") {
        return Ok(());
    }
    let test = operator.test;
    let ok = match test {
        ConditionTest::Bool | ConditionTest::Null => {
            text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false")
        }
        ConditionTest::NumericEquals
        | ConditionTest::NumericNotEquals
        | ConditionTest::NumericLessThan
        | ConditionTest::NumericLessThanEquals
        | ConditionTest::NumericGreaterThan
        | ConditionTest::NumericGreaterThanEquals => text.trim().parse::<f64>().is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        let expected = match test {
            ConditionTest::Bool | ConditionTest::Null => "\"true\" or \"false\"",
            _ => "a number",
        };
        Err(PolicyError::new(
            path,
            format!("'{text}' is not a valid value for {operator}; expected {expected}"),
        ))
    }
}
