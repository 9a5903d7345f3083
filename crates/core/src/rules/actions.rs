//! Topic rule actions as drover runs them, parsed from their AWS JSON (`Action` in the IoT
//! API): `republish`, `http`, and drover's thing-attributes extension, which travels as an
//! `http` action whose URL starts with [`THING_ATTRIBUTES_URL`] so that unmodified AWS
//! clients (which validate every member against botocore's model) can send it.
//!
//! Every substitution template is parsed here, so a rule with a bad template is refused
//! before it is stored. Running the actions is the services' work.

use serde_json::Value;

use super::Template;
use crate::ValidationError;

/// AWS IoT: at most 10 actions per rule.
pub const MAX_ACTIONS: usize = 10;
/// AWS IoT's pattern for rule names.
pub const MAX_RULE_NAME: usize = 128;
/// ListTopicRules' `maxResults` range (botocore's `TopicRuleMaxResults`).
pub const MAX_RULES_PAGE: i64 = 10_000;
/// How many rules a ListTopicRules page holds when the caller does not say.
pub const DEFAULT_RULES_PAGE: i64 = 1_000;

/// An `http` action with this URL prefix sets attributes of the thing the rest of the URL
/// names (a thing name or thing ARN, usually a template such as `${thingArn}`); each header
/// is an attribute: its key the attribute name, its value a template.
pub const THING_ATTRIBUTES_URL: &str = "drover:thing-attributes/";

/// One action of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionSpec {
    Republish {
        topic: Template,
        qos: u8,
    },
    Http {
        url: Template,
        /// The action's `confirmationUrl`: the destination it delivers through. `None` means
        /// the URL itself, as AWS uses it.
        confirmation_url: Option<Template>,
        headers: Vec<(String, Template)>,
    },
    ThingAttributes {
        thing: Template,
        attributes: Vec<(String, Template)>,
    },
}

impl ActionSpec {
    /// The action's name in AWS's error-action message (`failedAction`).
    pub fn aws_name(&self) -> &'static str {
        match self {
            ActionSpec::Republish { .. } => "RepublishAction",
            ActionSpec::Http { .. } => "HttpAction",
            ActionSpec::ThingAttributes { .. } => "DroverThingAttributesAction",
        }
    }

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ActionSpec::Republish { .. } => "republish",
            ActionSpec::Http { .. } => "http",
            ActionSpec::ThingAttributes { .. } => "thing_attributes",
        }
    }
}

/// Checks a rule name: `^[a-zA-Z0-9_]+$`, 1 to 128 characters.
pub fn check_rule_name(name: &str) -> Result<(), ValidationError> {
    if name.is_empty()
        || name.len() > MAX_RULE_NAME
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{name}' at 'ruleName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$ \
             and have length between 1 and {MAX_RULE_NAME}"
        )));
    }
    Ok(())
}

/// Checks ListTopicRules' `maxResults` and gives the page size.
pub fn check_rules_page_size(value: Option<i64>) -> Result<usize, ValidationError> {
    match value {
        None => Ok(DEFAULT_RULES_PAGE as usize),
        Some(n) if (1..=MAX_RULES_PAGE).contains(&n) => Ok(n as usize),
        Some(n) => Err(ValidationError::new(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
             constraint: Member must have value between 1 and {MAX_RULES_PAGE}"
        ))),
    }
}

/// Parses a rule's `actions` list.
pub fn parse_actions(actions: &[Value]) -> Result<Vec<ActionSpec>, ValidationError> {
    if actions.len() > MAX_ACTIONS {
        return Err(ValidationError::new(format!(
            "A rule can have at most {MAX_ACTIONS} actions; {} given",
            actions.len()
        )));
    }
    actions.iter().map(parse_action).collect()
}

/// Parses one `Action` object: exactly one supported member.
pub fn parse_action(action: &Value) -> Result<ActionSpec, ValidationError> {
    let Some(members) = action.as_object() else {
        return Err(ValidationError::new("An action must be a JSON object"));
    };
    let mut present = members.iter().filter(|(_, v)| !v.is_null());
    let (Some((kind, body)), None) = (present.next(), present.next()) else {
        return Err(ValidationError::new(
            "An action must set exactly one action type, such as republish or http",
        ));
    };
    match kind.as_str() {
        "republish" => republish(body),
        "http" => http(body),
        other => Err(ValidationError::new(format!(
            "drover does not support the {other} action; supported actions are republish and \
             http (including drover's thing-attributes form)"
        ))),
    }
}

fn string_member<'a>(body: &'a Value, action: &str, key: &str) -> Result<&'a str, ValidationError> {
    body.get(key).and_then(Value::as_str).ok_or_else(|| {
        ValidationError::new(format!(
            "The {action} action requires the string member {key}"
        ))
    })
}

fn template(text: &str, what: &str) -> Result<Template, ValidationError> {
    Template::parse(text)
        .map_err(|e| ValidationError::new(format!("Invalid substitution template in {what}: {e}")))
}

fn republish(body: &Value) -> Result<ActionSpec, ValidationError> {
    let topic = string_member(body, "republish", "topic")?;
    if topic.is_empty() {
        return Err(ValidationError::new(
            "The republish action's topic is empty",
        ));
    }
    let qos = match body.get("qos") {
        None | Some(Value::Null) => 0,
        Some(q) => match q.as_u64() {
            Some(q @ 0..=1) => q as u8,
            _ => {
                return Err(ValidationError::new(
                    "The republish action's qos must be 0 or 1",
                ));
            }
        },
    };
    Ok(ActionSpec::Republish {
        topic: template(topic, "the republish topic")?,
        qos,
    })
}

fn http(body: &Value) -> Result<ActionSpec, ValidationError> {
    let url = string_member(body, "http", "url")?;
    let mut headers = Vec::new();
    if let Some(list) = body.get("headers").filter(|h| !h.is_null()) {
        let Some(list) = list.as_array() else {
            return Err(ValidationError::new(
                "The http action's headers must be a list",
            ));
        };
        for header in list {
            let key = string_member(header, "http header", "key")?;
            let value = string_member(header, "http header", "value")?;
            if key.is_empty() {
                return Err(ValidationError::new("An http header key is empty"));
            }
            headers.push((key.to_string(), template(value, &format!("header {key}"))?));
        }
    }
    if let Some(thing) = url.strip_prefix(THING_ATTRIBUTES_URL) {
        if thing.is_empty() {
            return Err(ValidationError::new(format!(
                "{THING_ATTRIBUTES_URL} must be followed by the thing: a name, an ARN or a \
                 template such as ${{thingArn}}"
            )));
        }
        if headers.is_empty() {
            return Err(ValidationError::new(
                "A thing-attributes action needs at least one header: attribute name and value template",
            ));
        }
        return Ok(ActionSpec::ThingAttributes {
            thing: template(thing, "the thing")?,
            attributes: headers,
        });
    }
    if !is_http_url(url) {
        return Err(ValidationError::new(format!(
            "The http action's url must start with https:// (or http:// for a local endpoint), \
             or with {THING_ATTRIBUTES_URL}: {url}"
        )));
    }
    let parsed_url = template(url, "the url")?;
    let confirmation_url = match body.get("confirmationUrl").filter(|c| !c.is_null()) {
        None => None,
        Some(c) => {
            let Some(c) = c.as_str().filter(|c| is_http_url(c)) else {
                return Err(ValidationError::new(
                    "The http action's confirmationUrl must be an https:// (or http://) URL",
                ));
            };
            let parsed = template(c, "the confirmationUrl")?;
            // AWS: the confirmation URL is a prefix of the endpoint URL.
            if parsed.is_literal() && parsed_url.is_literal() && !url.starts_with(c) {
                return Err(ValidationError::new(format!(
                    "The http action's confirmationUrl {c} is not a prefix of its url {url}"
                )));
            }
            Some(parsed)
        }
    };
    if confirmation_url.is_none() && !parsed_url.is_literal() {
        return Err(ValidationError::new(
            "An http action whose url has substitution templates needs a confirmationUrl",
        ));
    }
    Ok(ActionSpec::Http {
        url: parsed_url,
        confirmation_url,
        headers,
    })
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The thing an attributes action names: a thing ARN's name part, or the text itself.
pub fn thing_name_of(text: &str) -> &str {
    match text.rfind(":thing/") {
        Some(i) if text.starts_with("arn:") => &text[i + ":thing/".len()..],
        _ => text,
    }
}
