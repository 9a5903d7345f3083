//! Evaluation: which statement of which attached policy decides a request, by IAM's rule —
//! an explicit Deny anywhere wins, else any Allow allows, else the request is implicitly
//! denied (no policy, or no matching statement, means deny).
//!
//! Unresolvable policy variables (AWS: "this variable won't be resolved and will result in an
//! access denied error") make the policy narrower, never wider:
//! - in `Resource`, a pattern holding one matches no resource; the statement's other patterns
//!   still count (IAM's behaviour);
//! - in `NotResource` or a condition value, the statement does not apply at all, since reading
//!   the pattern as "matches nothing" would widen an Allow to every resource.
//!
//! So an Allow never grants through an unresolved variable, and a Deny never denies through
//! one (as in AWS). The denial's log line names the variables that did not resolve.

use std::fmt;

use super::context::{AuthzContext, AuthzRequest};
use super::document::{
    ActionPattern, Actions, Condition, ConditionTest, Effect, PolicyDocument, Resources,
    SetQualifier, Statement,
};
use super::pattern::{Pattern, Token, Variable, glob};

/// The statement that decided a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: String,
    /// Position in the policy's `Statement` array (0 for a single statement object).
    pub index: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy '{}' statement {}", self.policy, self.index)?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {sid})")?;
        }
        Ok(())
    }
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allowed(StatementRef),
    ExplicitDeny(StatementRef),
    /// No statement allowed the request. `unresolved` lists the policy variables and
    /// condition keys that could not be resolved in statements naming this action, the
    /// usual reason a policy the operator expected to match did not.
    ImplicitDeny {
        unresolved: Vec<String>,
    },
}

/// The answer to one request, with enough context for a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: &'static str,
    pub resource: String,
    pub outcome: Outcome,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allowed(_))
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.is_allowed() {
            "allowed"
        } else {
            "denied"
        };
        // Topics and client ids are chosen by devices: escape them so one cannot forge log lines.
        write!(
            f,
            "{verb} {} on {}: ",
            self.action,
            self.resource.escape_debug()
        )?;
        match &self.outcome {
            Outcome::Allowed(by) => write!(f, "{by}"),
            Outcome::ExplicitDeny(by) => write!(f, "explicitly denied by {by}"),
            Outcome::ImplicitDeny { unresolved } if unresolved.is_empty() => {
                f.write_str("no policy allows it")
            }
            Outcome::ImplicitDeny { unresolved } => write!(
                f,
                "no policy allows it (unresolved policy variables: {})",
                unresolved.join(", ").escape_debug()
            ),
        }
    }
}

/// Decides `request` under the policies attached to the caller, given as `(name, document)`.
pub fn evaluate(
    policies: &[(&str, &PolicyDocument)],
    request: &AuthzRequest,
    context: &AuthzContext,
) -> Decision {
    let action = request.action();
    let resource = request.resource_arn(&context.scope);
    let lower = |name: &str| -> Vec<char> { name.to_ascii_lowercase().chars().collect() };
    let action_chars: Vec<Vec<char>> = std::iter::once(action)
        .chain(request.action_alias())
        .map(lower)
        .collect();
    let resource_chars: Vec<char> = resource.chars().collect();
    let mut allowed_by = None;
    let mut unresolved = Vec::new();
    for (policy, document) in policies {
        for (index, statement) in document.statements.iter().enumerate() {
            if !applies(
                statement,
                &action_chars,
                &resource_chars,
                context,
                &mut unresolved,
            ) {
                continue;
            }
            let by = || StatementRef {
                policy: policy.to_string(),
                index,
                sid: statement.sid.clone(),
            };
            match statement.effect {
                Effect::Deny => {
                    return Decision {
                        action,
                        resource,
                        outcome: Outcome::ExplicitDeny(by()),
                    };
                }
                Effect::Allow => {
                    if allowed_by.is_none() {
                        allowed_by = Some(by());
                    }
                }
            }
        }
    }
    let outcome = match allowed_by {
        Some(by) => Outcome::Allowed(by),
        None => {
            unresolved.sort();
            unresolved.dedup();
            Outcome::ImplicitDeny { unresolved }
        }
    };
    Decision {
        action,
        resource,
        outcome,
    }
}

/// Whether `statement` covers the request, whose action is named by any of `action` (its
/// spellings, see [`AuthzRequest::action_alias`]). Unresolved variables met on the way are added
/// to `unresolved` (only once the action matched, so the list stays about this request).
fn applies(
    statement: &Statement,
    action: &[Vec<char>],
    resource: &[char],
    context: &AuthzContext,
    unresolved: &mut Vec<String>,
) -> bool {
    let action_listed = |patterns: &[ActionPattern]| {
        patterns
            .iter()
            .any(|p| action.iter().any(|name| glob(&p.tokens, name)))
    };
    let action_covered = match &statement.actions {
        Actions::Action(patterns) => action_listed(patterns),
        Actions::NotAction(patterns) => !action_listed(patterns),
    };
    if !action_covered {
        return false;
    }
    let mut note = |variable: &Variable| unresolved.push(variable.to_string());
    let resource_covered = match &statement.resources {
        Resources::Resource(patterns) => {
            let mut hit = false;
            for pattern in patterns {
                match pattern.tokens(context) {
                    Ok(tokens) if glob(&tokens, resource) => {
                        hit = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(variable) => note(variable),
                }
            }
            hit
        }
        Resources::NotResource(patterns) => {
            let mut covered = true;
            for pattern in patterns {
                match pattern.tokens(context) {
                    Ok(tokens) if glob(&tokens, resource) => covered = false,
                    Ok(_) => {}
                    Err(variable) => {
                        note(variable);
                        covered = false;
                    }
                }
            }
            covered
        }
    };
    if !resource_covered {
        return false;
    }
    for condition in &statement.conditions {
        match condition_holds(condition, context) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(variable) => {
                note(variable);
                return false;
            }
        }
    }
    true
}

/// One condition test, under IAM's rules for absent keys: `...IfExists` and `ForAllValues:`
/// pass, `ForAnyValue:` fails, a negated test passes and a positive one fails; `Null` tests
/// presence itself. An unresolvable variable in a value is an `Err`.
fn condition_holds<'a>(
    condition: &'a Condition,
    context: &AuthzContext,
) -> Result<bool, &'a Variable> {
    let operator = condition.operator;
    let test = operator.test;
    let value = condition.key.resolve(context);
    if test == ConditionTest::Null {
        let mut any = false;
        for expected in &condition.values {
            let absent = expected.text(context)?.eq_ignore_ascii_case("true");
            any |= absent == value.is_none();
        }
        return Ok(any);
    }
    let Some(value) = value else {
        return Ok(operator.if_exists
            || match operator.qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => test.is_negated(),
            });
    };
    // Every key drover resolves is single-valued, so both set qualifiers reduce to testing
    // that one value.
    let mut matched = false;
    for expected in &condition.values {
        if value_matches(test, value, expected, context)? {
            matched = true;
            break;
        }
    }
    Ok(matched != test.is_negated())
}

/// Whether the context value passes the positive form of `test` against one policy value.
fn value_matches<'a>(
    test: ConditionTest,
    value: &str,
    expected: &'a Pattern,
    context: &AuthzContext,
) -> Result<bool, &'a Variable> {
    use ConditionTest::*;
    Ok(match test {
        StringEquals | StringNotEquals => value == expected.text(context)?,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
            value.to_lowercase() == expected.text(context)?.to_lowercase()
        }
        StringLike | StringNotLike => {
            let value: Vec<char> = value.chars().collect();
            glob(&expected.tokens(context)?, &value)
        }
        Bool => value.eq_ignore_ascii_case(&expected.text(context)?),
        ArnEquals | ArnNotEquals | ArnLike | ArnNotLike => {
            arn_like(&expected.tokens(context)?, value)
        }
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => {
            let expected = expected.text(context)?;
            match (value.trim().parse::<f64>(), expected.trim().parse::<f64>()) {
                (Ok(v), Ok(e)) => match test {
                    NumericLessThan => v < e,
                    NumericLessThanEquals => v <= e,
                    NumericGreaterThan => v > e,
                    NumericGreaterThanEquals => v >= e,
                    _ => v == e,
                },
                // A value that is not a number equals no number and orders against none.
                _ => false,
            }
        }
        // Decided in condition_holds before any value is compared.
        Null => false,
    })
}

/// IAM's ARN comparison (`ArnEquals` and `ArnLike` behave alike): both sides split into the six
/// colon-separated parts, each part matched on its own, so a wildcard never spans a colon
/// before the resource part.
fn arn_like(pattern: &[Token], value: &str) -> bool {
    let value_parts: Vec<Vec<char>> = value.splitn(6, ':').map(|p| p.chars().collect()).collect();
    let mut pattern_parts: Vec<&[Token]> = Vec::with_capacity(6);
    let mut rest = pattern;
    while pattern_parts.len() < 5 {
        match rest.iter().position(|t| *t == Token::Char(':')) {
            Some(colon) => {
                pattern_parts.push(&rest[..colon]);
                rest = &rest[colon + 1..];
            }
            None => break,
        }
    }
    pattern_parts.push(rest);
    pattern_parts.len() == 6
        && value_parts.len() == 6
        && pattern_parts
            .iter()
            .zip(&value_parts)
            .all(|(p, v)| glob(p, v))
}
