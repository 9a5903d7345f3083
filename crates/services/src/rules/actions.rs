//! Running a matched message's actions: `republish` through the broker, `http` POSTs with
//! retries and exponential backoff, and drover's thing-attributes action through the
//! registry (so dynamic groups follow at once). A failed action runs the rule's error
//! action with AWS's error message shape.
//!
//! An http action delivers only when an `ENABLED` topic rule destination covers its URL (the
//! destination's confirmation URL is a prefix of it, and is the action's `confirmationUrl`
//! when it names one); otherwise nothing is sent and the action fails, as on AWS.
//!
//! The engine's per-action workers call [`ActionRunner::execute`] for each match.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use drover_core::registry::{AttributePayload, ThingUpdate};
use drover_core::rules::actions::{ActionSpec, thing_name_of};
use drover_core::rules::{Context, Payload, Template};
use drover_mqtt::{Broker, Message};
use drover_store::TopicRuleDestinationRecord;
use serde_json::json;

use super::engine::{CompiledRule, EngineConfig};
use crate::Registry;

/// A message a rule matched, shared by its actions.
pub(crate) struct Matched {
    pub topic: Arc<str>,
    pub client_id: Option<Arc<str>>,
    pub original: Bytes,
    pub payload: Payload,
    /// The SELECT result as the actions send it.
    pub selected: Vec<u8>,
    pub timestamp_ms: i64,
}

impl Matched {
    fn render(&self, template: &Template) -> String {
        template.render(&self.context(), &self.payload)
    }

    fn render_defined(&self, template: &Template) -> Option<String> {
        template.render_defined(&self.context(), &self.payload)
    }

    fn context(&self) -> Context<'_> {
        Context {
            topic: &self.topic,
            client_id: self.client_id.as_deref(),
            principal: None,
            timestamp_ms: self.timestamp_ms,
            new_uuid: &new_uuid,
        }
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Why an action failed: the resource it was acting on, and what happened.
struct Failure {
    resource: String,
    message: String,
}

pub(crate) struct ActionRunner {
    broker: Broker,
    /// Every topic rule destination, as last read from the store.
    destinations: RwLock<Vec<TopicRuleDestinationRecord>>,
    registry: Registry,
    http: reqwest::Client,
    attempts: u32,
    first_backoff: Duration,
}

impl ActionRunner {
    pub fn new(broker: Broker, registry: Registry, config: &EngineConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the http action client: {e}"))?;
        Ok(Self {
            broker,
            destinations: RwLock::default(),
            registry,
            http,
            attempts: config.http_attempts.max(1),
            first_backoff: config.http_first_backoff,
        })
    }

    pub fn set_destinations(&self, all: Vec<TopicRuleDestinationRecord>) {
        *self
            .destinations
            .write()
            .expect("the destinations lock is never poisoned") = all;
    }

    /// Whether an `ENABLED` destination lets `url` be delivered to: its confirmation URL is
    /// a prefix of `url`, and is `confirmation_url` when the action names one.
    fn check_destination(&self, url: &str, confirmation_url: Option<&str>) -> Result<(), String> {
        let all = self
            .destinations
            .read()
            .expect("the destinations lock is never poisoned");
        let covering = all.iter().filter(|d| {
            url.starts_with(d.confirmation_url.as_str())
                && confirmation_url.is_none_or(|c| c == d.confirmation_url)
        });
        let mut seen = None;
        for d in covering {
            if d.status == super::ENABLED {
                return Ok(());
            }
            seen.get_or_insert(d);
        }
        Err(match seen {
            Some(d) => format!(
                "the topic rule destination {} ({}) is {}, not ENABLED; nothing was sent",
                d.arn, d.confirmation_url, d.status
            ),
            None => format!(
                "no topic rule destination covers {}; nothing was sent",
                confirmation_url.unwrap_or(url)
            ),
        })
    }

    /// Runs action `index` of `rule` for `matched`, counts the outcome, and runs the error
    /// action when it fails.
    pub async fn execute(&self, rule: &CompiledRule, index: usize, matched: &Matched) {
        let action = &rule.actions[index];
        let label = action.label();
        let Err(failure) = self.run(action, matched, &matched.selected).await else {
            metrics::counter!("drover_rule_action_total", "rule" => rule.name.to_string(), "action" => label, "outcome" => "success").increment(1);
            return;
        };
        metrics::counter!("drover_rule_action_total", "rule" => rule.name.to_string(), "action" => label, "outcome" => "failure").increment(1);
        tracing::warn!(rule = %rule.name, action = label, resource = %failure.resource, error = %failure.message, "a rule action failed");
        let Some(error_action) = &rule.error_action else {
            return;
        };
        let report = error_report(&rule.name, action, &failure, matched);
        let outcome = match self.run(error_action, matched, &report).await {
            Ok(()) => "success",
            Err(e) => {
                tracing::warn!(rule = %rule.name, error = %e.message, "the rule's error action failed too");
                "failure"
            }
        };
        metrics::counter!("drover_rule_error_action_total", "rule" => rule.name.to_string(), "outcome" => outcome).increment(1);
    }

    async fn run(
        &self,
        action: &ActionSpec,
        matched: &Matched,
        body: &[u8],
    ) -> Result<(), Failure> {
        match action {
            ActionSpec::Republish { topic, qos } => {
                let topic = matched.render(topic);
                let message = Message::system(topic.as_str(), body.to_vec(), *qos);
                self.broker
                    .publish(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure {
                        resource: topic,
                        message: e.to_string(),
                    })
            }
            ActionSpec::Http {
                url,
                confirmation_url,
                headers,
            } => {
                let url = matched.render(url);
                let confirmation_url = confirmation_url.as_ref().map(|c| matched.render(c));
                if let Err(message) = self.check_destination(&url, confirmation_url.as_deref()) {
                    return Err(Failure {
                        resource: url,
                        message,
                    });
                }
                let headers: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| (k.clone(), matched.render(v)))
                    .collect();
                self.post(&url, &headers, body)
                    .await
                    .map_err(|message| Failure {
                        resource: url,
                        message,
                    })
            }
            ActionSpec::ThingAttributes { thing, attributes } => {
                let rendered = matched.render(thing);
                let name = thing_name_of(&rendered).to_string();
                let fail = |message: String| Failure {
                    resource: rendered.clone(),
                    message,
                };
                if name.is_empty() {
                    return Err(fail("the thing template gave an empty name".into()));
                }
                let mut values = drover_core::registry::Attributes::new();
                for (key, template) in attributes {
                    let Some(value) = matched.render_defined(template) else {
                        return Err(fail(format!(
                            "the value template of attribute {key} is Undefined for this message"
                        )));
                    };
                    values.insert(key.clone(), value);
                }
                let update = ThingUpdate {
                    attribute_payload: Some(AttributePayload {
                        attributes: Some(values),
                        merge: true,
                    }),
                    ..ThingUpdate::default()
                };
                self.registry
                    .update_thing(&name, update)
                    .await
                    .map(|_| ())
                    .map_err(|e| fail(e.to_string()))
            }
        }
    }

    /// POSTs `body`, retrying connection failures, timeouts, 429 and 5xx answers with
    /// exponential backoff; any other non-2xx answer fails at once.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), String> {
        let mut backoff = self.first_backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let mut request = self.http.post(url).body(body.to_vec());
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                request = request.header("content-type", "application/json");
            }
            for (k, v) in headers {
                request = request.header(k.as_str(), v.as_str());
            }
            let retryable = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    last = format!("the endpoint answered {status}");
                    status.is_server_error() || status.as_u16() == 429
                }
                Err(e) if e.is_builder() => return Err(format!("invalid request: {e}")),
                Err(e) => {
                    last = format!("request failed: {e}");
                    true
                }
            };
            if !retryable {
                return Err(last);
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        Err(format!("{last} (after {} attempts)", self.attempts))
    }
}

/// AWS's error-action message: which rule, which message, which action failed and why.
fn error_report(rule: &str, action: &ActionSpec, failure: &Failure, matched: &Matched) -> Vec<u8> {
    json!({
        "ruleName": rule,
        "topic": &*matched.topic,
        "cloudwatchTraceId": uuid::Uuid::new_v4().to_string(),
        "clientId": matched.client_id.as_deref().unwrap_or("n/a"),
        "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(&matched.original),
        "failures": [{
            "failedAction": action.aws_name(),
            "failedResource": failure.resource,
            "errorMessage": failure.message,
        }]
    })
    .to_string()
    .into_bytes()
}
