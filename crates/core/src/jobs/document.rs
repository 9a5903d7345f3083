//! Job documents: a JSON object of at most 32 KB, and the job-template parameters
//! `${aws:iot:parameter:NAME}` that `documentParameters` fill in at CreateJob.
//!
//! Presigned-URL placeholders are a different kind: they are replaced at each delivery (see
//! [`crate::placeholder`]); this module only checks that they parse.

use std::collections::BTreeMap;

use crate::ValidationError;
use crate::placeholder;

/// AWS's job document limit: 32,768 bytes.
pub const MAX_DOCUMENT_BYTES: usize = 32_768;
/// `documentParameters` values: 1..=30720 characters.
pub const MAX_PARAMETER_VALUE_LEN: usize = 30_720;

const PARAMETER_PREFIX: &str = "${aws:iot:parameter:";

/// Checks a job document: size, a JSON object, well-formed presigned-URL placeholders.
pub fn check(document: &str) -> Result<(), ValidationError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(ValidationError::new(format!(
            "The job document is {} bytes; the limit is {MAX_DOCUMENT_BYTES}",
            document.len()
        )));
    }
    match serde_json::from_str::<serde_json::Value>(document) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => {
            return Err(ValidationError::new(
                "The job document must be a JSON object",
            ));
        }
        Err(e) => {
            return Err(ValidationError::new(format!(
                "The job document is not valid JSON: {e}"
            )));
        }
    }
    placeholder::find(document)
        .map(|_| ())
        .map_err(|e| ValidationError::new(format!("The job document has a bad placeholder: {e}")))
}

/// Checks `documentParameters` names and values.
pub fn check_parameters(parameters: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    for (name, value) in parameters {
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(ValidationError::new(format!(
                "documentParameters name '{name}' must be 1 to 128 characters of [a-zA-Z0-9_-]"
            )));
        }
        if value.is_empty()
            || value.chars().count() > MAX_PARAMETER_VALUE_LEN
            || value.chars().any(char::is_control)
        {
            return Err(ValidationError::new(format!(
                "documentParameters value of '{name}' must be 1 to {MAX_PARAMETER_VALUE_LEN} \
                 characters without control characters"
            )));
        }
    }
    Ok(())
}

/// The names of the `${aws:iot:parameter:NAME}` placeholders in `document`, in order.
pub fn parameter_names(document: &str) -> Result<Vec<String>, ValidationError> {
    let mut names = Vec::new();
    let mut rest = document;
    while let Some(at) = rest.find(PARAMETER_PREFIX) {
        let after = &rest[at + PARAMETER_PREFIX.len()..];
        let end = after.find('}').ok_or_else(|| {
            ValidationError::new("A ${aws:iot:parameter:...} placeholder has no closing '}'")
        })?;
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// Fills every `${aws:iot:parameter:NAME}` with its value. Every placeholder needs a value
/// and every value a placeholder; the result is checked as a document. Values are inserted
/// as JSON string content (escaped), since placeholders sit inside JSON strings.
pub fn substitute_parameters(
    document: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<String, ValidationError> {
    check_parameters(parameters)?;
    let names = parameter_names(document)?;
    for name in &names {
        if !parameters.contains_key(name) {
            return Err(ValidationError::new(format!(
                "documentParameters has no value for the parameter '{name}'"
            )));
        }
    }
    for name in parameters.keys() {
        if !names.contains(name) {
            return Err(ValidationError::new(format!(
                "The job document has no parameter '{name}'"
            )));
        }
    }
    let mut out = document.to_string();
    for (name, value) in parameters {
        let escaped = serde_json::to_string(value).expect("strings always serialize");
        let escaped = &escaped[1..escaped.len() - 1];
        out = out.replace(&format!("{PARAMETER_PREFIX}{name}}}"), escaped);
    }
    check(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_json_objects_within_the_limit() {
        assert!(check(r#"{"operation":"install"}"#).is_ok());
        assert!(check("[1]").is_err());
        assert!(check("{bad").is_err());
        assert!(check("").is_err());
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(check(&big).is_err());
        let fits = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES - 8));
        assert_eq!(fits.len(), MAX_DOCUMENT_BYTES);
        assert!(check(&fits).is_ok());
        assert!(check(r#"{"url":"${aws:iot:s3-presigned-url:ftp://host/b/k}"}"#).is_err());
    }

    #[test]
    fn parameters_fill_placeholders() {
        let doc = r#"{"url":"${aws:iot:parameter:url}","v":"${aws:iot:parameter:version}"}"#;
        let params = BTreeMap::from([
            ("url".to_string(), "https://x/\"q\"".to_string()),
            ("version".to_string(), "2.0".to_string()),
        ]);
        let out = substitute_parameters(doc, &params).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["url"], "https://x/\"q\"");
        assert_eq!(v["v"], "2.0");
        let missing = BTreeMap::from([("url".to_string(), "u".to_string())]);
        assert!(substitute_parameters(doc, &missing).is_err());
        let mut extra = params.clone();
        extra.insert("other".into(), "x".into());
        assert!(substitute_parameters(doc, &extra).is_err());
        let bad_name = BTreeMap::from([("a b".to_string(), "x".to_string())]);
        assert!(check_parameters(&bad_name).is_err());
        assert!(parameter_names(r#""${aws:iot:parameter:x""#).is_err());
    }
}
