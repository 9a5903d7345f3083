//! The rules of AWS IoT policy resources (as opposed to evaluating them, which is
//! [`crate::policy`]): policy names and version ids, the five-version limit, the ten-policies-
//! per-target limit, and which targets a policy can be attached to.

use crate::ValidationError;
use crate::arn::ArnScope;

/// A policy keeps at most five versions (AWS; not adjustable).
pub const MAX_POLICY_VERSIONS: usize = 5;
/// At most ten policies may be attached to one certificate or thing group (AWS's quota).
pub const MAX_POLICIES_PER_TARGET: usize = 10;
/// `pageSize` of ListPolicies and friends.
pub const MAX_PAGE_SIZE: i64 = 250;

/// `PolicyName`: 1..=128 chars of `[\w+=,.@-]+` (`\w` being ASCII word characters).
pub fn check_policy_name(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().count() > 128 {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at 'policyName' failed to satisfy \
             constraint: Member must have length between 1 and 128"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at 'policyName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(())
}

/// `PolicyVersionId`: `[0-9]+`, as a number.
pub fn parse_version_id(value: &str) -> Result<i64, ValidationError> {
    let invalid = || {
        ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at 'policyVersionId' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [0-9]+"
        ))
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    value.parse().map_err(|_| invalid())
}

/// `pageSize` of the marker-paginated listings: 1..=250, default 250.
pub fn check_page_size(value: Option<i64>) -> Result<usize, ValidationError> {
    match value {
        None => Ok(MAX_PAGE_SIZE as usize),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n as usize),
        Some(n) => Err(ValidationError::new(format!(
            "1 validation error detected: Value '{n}' at 'pageSize' failed to satisfy \
             constraint: Member must have value between 1 and {MAX_PAGE_SIZE}"
        ))),
    }
}

/// What a policy target or principal ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    /// `arn:aws:iot:{region}:{account}:cert/{id}` (the id lower-cased).
    Certificate(String),
    /// `arn:aws:iot:{region}:{account}:thinggroup/{name}`.
    ThingGroup(String),
    /// A well-formed IoT ARN of another region or account: it names nothing drover holds.
    Foreign,
}

/// Reads a policy target (AttachPolicy's `target`, a principal header). Certificates and
/// thing groups are the targets drover knows; anything else is refused as AWS refuses what it
/// cannot parse.
pub fn parse_target(scope: &ArnScope, value: &str) -> Result<TargetRef, ValidationError> {
    let invalid = || {
        ValidationError::new(format!(
            "Invalid target '{value}': expected a certificate ARN \
             (arn:aws:iot:{}:{}:cert/ID) or a thing group ARN",
            scope.region, scope.account_id
        ))
    };
    let rest = value.strip_prefix("arn:aws:iot:").ok_or_else(invalid)?;
    let mut parts = rest.splitn(3, ':');
    let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let target = if let Some(id) = resource.strip_prefix("cert/") {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        TargetRef::Certificate(id.to_ascii_lowercase())
    } else if let Some(name) = resource.strip_prefix("thinggroup/") {
        crate::names::check_name("thingGroupName", name).map_err(|_| invalid())?;
        TargetRef::ThingGroup(name.to_string())
    } else {
        return Err(invalid());
    };
    if region != scope.region || account != scope.account_id {
        return Ok(TargetRef::Foreign);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_and_version_ids() {
        assert!(check_policy_name("dev_policy+v=1,a.b@c-d").is_ok());
        assert!(check_policy_name("").is_err());
        assert!(check_policy_name("has space").is_err());
        assert!(check_policy_name("a/b").is_err());
        assert!(check_policy_name(&"p".repeat(128)).is_ok());
        assert!(check_policy_name(&"p".repeat(129)).is_err());
        assert_eq!(parse_version_id("12"), Ok(12));
        assert!(parse_version_id("").is_err());
        assert!(parse_version_id("1a").is_err());
        assert!(parse_version_id("99999999999999999999999").is_err());
        assert_eq!(check_page_size(None), Ok(250));
        assert!(check_page_size(Some(0)).is_err());
    }

    #[test]
    fn targets_are_certificates_or_thing_groups_of_this_account() {
        let scope = ArnScope::new("us-east-1", "123456789012");
        let id = "A".repeat(64);
        assert_eq!(
            parse_target(
                &scope,
                &format!("arn:aws:iot:us-east-1:123456789012:cert/{id}")
            ),
            Ok(TargetRef::Certificate("a".repeat(64)))
        );
        assert_eq!(
            parse_target(&scope, "arn:aws:iot:us-east-1:123456789012:thinggroup/g1"),
            Ok(TargetRef::ThingGroup("g1".into()))
        );
        assert_eq!(
            parse_target(
                &scope,
                &format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}")
            ),
            Ok(TargetRef::Foreign)
        );
        assert!(parse_target(&scope, "arn:aws:iot:us-east-1:123456789012:cert/short").is_err());
        assert!(parse_target(&scope, "arn:aws:iot:us-east-1:123456789012:thing/t").is_err());
        assert!(parse_target(&scope, "us-east-1:1234-abcd").is_err());
    }
}
