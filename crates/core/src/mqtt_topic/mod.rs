//! MQTT topic names and topic filters: what a valid one is (MQTT 3.1.1 / 5 plus AWS IoT's
//! limits) and whether a filter matches a topic. The broker, the policy engine's callers and the
//! rules engine all ask here, so the `$`-topic and `#`-parent rules live once.
//!
//! This module checks and matches text only; it does not know sessions, subscriptions or which
//! `$aws/...` topics drover answers.

/// AWS IoT: a topic name or filter is at most 256 bytes of UTF-8.
pub const MAX_TOPIC_BYTES: usize = 256;
/// AWS IoT: a topic name or filter has at most 7 forward slashes (8 levels).
pub const MAX_TOPIC_SLASHES: usize = 7;
/// AWS Basic Ingest topics: `$aws/rules/{ruleName}/...`. AWS leaves this prefix (its three
/// slashes and their bytes) out of both limits, so a device can use the full depth after it.
const BASIC_INGEST_PREFIX: &str = "$aws/rules/";

/// A topic name or filter that MQTT or AWS IoT rejects. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} '{text}' is invalid: {reason}")]
pub struct TopicError {
    kind: &'static str,
    text: String,
    pub reason: String,
}

impl TopicError {
    fn new(kind: &'static str, text: &str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.to_string(),
            reason: reason.into(),
        }
    }
}

/// Checks a topic name (what PUBLISH carries): non-empty, no NUL, no `+` or `#`, and within
/// AWS's size and depth limits. Empty levels (`a//b`, `/a`) are valid MQTT and allowed.
pub fn check_topic_name(topic: &str) -> Result<(), TopicError> {
    check_common("topic name", topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::new(
            "topic name",
            topic,
            "a topic name cannot contain the wildcards '+' or '#'",
        ));
    }
    Ok(())
}

/// Checks a topic filter (what SUBSCRIBE carries): as a topic name, except that `+` may fill a
/// whole level and `#` may fill the last level.
pub fn check_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common("topic filter", filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != last) {
            return Err(TopicError::new(
                "topic filter",
                filter,
                "'#' must be the whole of the last level",
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(TopicError::new(
                "topic filter",
                filter,
                "'+' must be the whole of its level",
            ));
        }
    }
    Ok(())
}

fn check_common(kind: &'static str, text: &str) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(TopicError::new(kind, text, "it is empty"));
    }
    if text.contains('\0') {
        return Err(TopicError::new(
            kind,
            text,
            "it contains the null character U+0000",
        ));
    }
    let counted = text.strip_prefix(BASIC_INGEST_PREFIX).map_or(text, |rest| {
        // The rule name is the third level; it belongs to the uncounted prefix too.
        rest.split_once('/').map_or("", |(_, after)| after)
    });
    if counted.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::new(
            kind,
            text,
            format!(
                "it is {} bytes long; the maximum is {MAX_TOPIC_BYTES}",
                counted.len()
            ),
        ));
    }
    let slashes = counted.matches('/').count();
    if slashes > MAX_TOPIC_SLASHES {
        return Err(TopicError::new(
            kind,
            text,
            format!("it has {slashes} forward slashes; the maximum is {MAX_TOPIC_SLASHES}"),
        ));
    }
    Ok(())
}

/// Whether `topic` (a valid topic name) matches `filter` (a valid topic filter) under MQTT's
/// rules: `+` matches exactly one level (possibly empty), `#` matches the rest of the topic
/// including its parent (`a/#` matches `a`), and neither wildcard matches a first level that
/// starts with `$`, so `#` never delivers `$aws/...` traffic by accident.
pub fn topic_matches_filter(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
