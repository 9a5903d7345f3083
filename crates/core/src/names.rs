//! AWS's naming patterns and length limits, checked before anything is written.
//!
//! Each check mirrors one botocore shape (the pattern is quoted in the doc comment) and names
//! the offending member in its message, the way AWS's own validation messages do.

use crate::ValidationError;
use crate::limits::*;

/// `Name` shapes (thingName, thingGroupName, thingTypeName, billingGroupName): 1..=128 chars of
/// `[a-zA-Z0-9:_-]+`.
pub fn check_name(member: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().count() > MAX_NAME_LEN {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_NAME_LEN}"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
    {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"
        )));
    }
    Ok(())
}

/// Attribute keys: up to 128 chars of `[a-zA-Z0-9_.,@/:#-]+`.
pub fn check_attribute_key(key: &str) -> Result<(), ValidationError> {
    if key.is_empty() || key.chars().count() > MAX_ATTRIBUTE_KEY_LEN {
        return Err(ValidationError::new(format!(
            "Attribute name '{key}' must have length between 1 and {MAX_ATTRIBUTE_KEY_LEN}"
        )));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c))
    {
        return Err(ValidationError::new(format!(
            "Attribute name '{key}' failed to satisfy constraint: Member must satisfy regular \
             expression pattern: [a-zA-Z0-9_.,@/:#-]+"
        )));
    }
    Ok(())
}

/// Attribute values: up to 800 chars of `[a-zA-Z0-9_.,@/:#=\[\]-]*` (no spaces; empty allowed).
pub fn check_attribute_value(key: &str, value: &str) -> Result<(), ValidationError> {
    if value.chars().count() > MAX_ATTRIBUTE_VALUE_LEN {
        return Err(ValidationError::new(format!(
            "Value of attribute '{key}' must have length less than or equal to {MAX_ATTRIBUTE_VALUE_LEN}"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.,@/:#=[]-".contains(c))
    {
        return Err(ValidationError::new(format!(
            "Value '{value}' of attribute '{key}' failed to satisfy constraint: Member must satisfy \
             regular expression pattern: [a-zA-Z0-9_.,@/:#=\\[\\]-]*"
        )));
    }
    Ok(())
}

/// Thing type and thing group descriptions: up to 2028 chars of `[\p{Graph}\x20]*` (Java's
/// POSIX classes, so printable ASCII and space).
pub fn check_description(member: &str, value: &str) -> Result<(), ValidationError> {
    if value.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_DESCRIPTION_LEN}"
        )));
    }
    if !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [\\p{{Graph}}\\x20]*"
        )));
    }
    Ok(())
}

/// Tag keys: 1..=128 chars of `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, not starting with `aws:`;
/// values up to 256 chars.
pub fn check_tag(key: &str, value: &str) -> Result<(), ValidationError> {
    let key_ok = !key.is_empty()
        && key.chars().count() <= 128
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c));
    if !key_ok {
        return Err(ValidationError::new(format!("Tag key '{key}' is invalid")));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ValidationError::new(format!(
            "Tag key '{key}' uses the reserved prefix 'aws:'"
        )));
    }
    if value.chars().count() > 256 {
        return Err(ValidationError::new(format!(
            "Value of tag '{key}' must have length less than or equal to 256"
        )));
    }
    Ok(())
}

/// `maxResults` of the registry List* operations: 1..=250.
pub fn check_max_results(value: Option<i64>) -> Result<usize, ValidationError> {
    match value {
        None => Ok(DEFAULT_LIST_RESULTS as usize),
        Some(n) if (1..=MAX_LIST_RESULTS).contains(&n) => Ok(n as usize),
        Some(n) => Err(ValidationError::new(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
             constraint: Member must have value between 1 and {MAX_LIST_RESULTS}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_aws_pattern() {
        assert!(check_name("thingName", "dev-1:a_b").is_ok());
        assert!(check_name("thingName", "").is_err());
        assert!(check_name("thingName", "bad name").is_err());
        assert!(check_name("thingName", "a/b").is_err());
        assert!(check_name("thingName", &"x".repeat(128)).is_ok());
        assert!(check_name("thingName", &"x".repeat(129)).is_err());
    }

    #[test]
    fn attribute_values_forbid_spaces_but_allow_empty() {
        assert!(check_attribute_value("k", "").is_ok());
        assert!(check_attribute_value("k", "1.0,[x]=y@z#/:").is_ok());
        assert!(check_attribute_value("k", "a b").is_err());
        assert!(check_attribute_value("k", &"v".repeat(801)).is_err());
        assert!(check_attribute_key("app_version").is_ok());
        assert!(check_attribute_key("a=b").is_err());
        assert!(check_attribute_key("").is_err());
    }

    #[test]
    fn descriptions_are_printable_ascii() {
        assert!(check_description("d", "Firmware line A, rev 2").is_ok());
        assert!(check_description("d", "tab\there").is_err());
        assert!(check_description("d", &"d".repeat(2029)).is_err());
    }

    #[test]
    fn tags_and_max_results() {
        assert!(check_tag("team", "fleet ops").is_ok());
        assert!(check_tag("aws:owner", "x").is_err());
        assert!(check_tag("", "x").is_err());
        assert_eq!(check_max_results(None).unwrap(), 250);
        assert_eq!(check_max_results(Some(3)).unwrap(), 3);
        assert!(check_max_results(Some(0)).is_err());
        assert!(check_max_results(Some(251)).is_err());
    }
}
