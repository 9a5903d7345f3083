//! Topic rule destinations (http): CreateTopicRuleDestination … DeleteTopicRuleDestination,
//! the confirmation AWS sends to a destination's `confirmationUrl`, ConfirmTopicRuleDestination,
//! and the destinations CreateTopicRule/ReplaceTopicRule create for http actions that have none.
//!
//! The life of a destination, as AWS IoT runs it: created (or sent a new confirmation by
//! UpdateTopicRuleDestination to `IN_PROGRESS`) it is `IN_PROGRESS` and drover POSTs a
//! confirmation carrying a fresh token; a failed POST makes it `ERROR` with the reason.
//! Visiting the `enableUrl` (or ConfirmTopicRuleDestination with the token) confirms it, which
//! leaves it `DISABLED`; UpdateTopicRuleDestination then moves it between `ENABLED` and
//! `DISABLED`. Only an `ENABLED` destination lets http actions deliver (see `actions.rs`).

use std::time::Duration;

use drover_core::rules::actions::THING_ATTRIBUTES_URL;
use drover_store::{CasOutcome, PageRequest, SharedStore, StoreError, TopicRuleDestinationRecord};
use serde_json::{Value, json};

use super::TopicRules;
use crate::registry::Listing;
use crate::{ServiceError, ServiceResult, pagination};

pub const ENABLED: &str = "ENABLED";
pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const DISABLED: &str = "DISABLED";
pub const ERROR: &str = "ERROR";

/// The path of drover's AWS API under which a destination's `enableUrl` carries its token
/// (ConfirmTopicRuleDestination's `/confirmdestination/{confirmationToken+}`); the API lets
/// GETs under it through unsigned.
pub const ENABLE_URL_PATH: &str = "/confirmdestination/";

/// botocore's `Url`: at most 2000 characters.
const MAX_URL: usize = 2000;
/// botocore's `ConfirmationToken`: 1 to 2048 characters.
const MAX_TOKEN: usize = 2048;
/// botocore's `TopicRuleDestinationMaxResults`.
const MAX_PAGE: i64 = 1000;
/// How long drover waits for a confirmation endpoint to answer.
const CONFIRMATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends confirmations: the HTTP client and the base of the `enableUrl`s it hands out.
#[derive(Clone)]
pub(crate) struct Confirmer {
    http: reqwest::Client,
    /// `https://host:port` of drover's AWS API, which serves `/confirmdestination/{token}`.
    enable_base: String,
}

impl Confirmer {
    pub fn new(enable_base: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(CONFIRMATION_TIMEOUT)
            .connect_timeout(CONFIRMATION_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the destination confirmation client: {e}"))?;
        Ok(Self {
            http,
            enable_base: enable_base.trim_end_matches('/').to_string(),
        })
    }

    /// POSTs AWS's confirmation message; `Err` says why it was not delivered.
    async fn send(
        &self,
        destination: &TopicRuleDestinationRecord,
        token: &str,
    ) -> Result<(), String> {
        let mut url = reqwest::Url::parse(&destination.confirmation_url)
            .map_err(|e| format!("the confirmation URL is not valid: {e}"))?;
        url.query_pairs_mut()
            .append_pair("confirmationToken", token);
        let body = json!({
            "arn": destination.arn,
            "confirmationToken": token,
            "enableUrl": format!("{}{ENABLE_URL_PATH}{token}", self.enable_base),
            "messageType": "DestinationConfirmation",
        });
        let response = self
            .http
            .post(url)
            .header("x-amz-rules-engine-message-type", "DestinationConfirmation")
            .header(
                "x-amz-rules-engine-destination-arn",
                destination.arn.as_str(),
            )
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("the confirmation request failed: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the confirmation endpoint answered {}",
                response.status()
            ))
        }
    }
}

fn new_token() -> String {
    // Two version-4 UUIDs: 244 random bits, URL-safe, so the token can sit in the
    // enableUrl's path as it is.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn destination_not_found(arn: &str) -> ServiceError {
    // The operations' error lists have no not-found error; InvalidRequestException is the
    // one every destination operation declares for a request that cannot be served.
    ServiceError::InvalidRequest(format!("Topic rule destination {arn} does not exist"))
}

/// Checks a `confirmationUrl`: an absolute http(s) URL with a host, at most 2000 characters.
fn check_confirmation_url(url: &str) -> ServiceResult<()> {
    if url.chars().count() > MAX_URL {
        return Err(ServiceError::InvalidRequest(format!(
            "The confirmationUrl is longer than {MAX_URL} characters"
        )));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        ServiceError::InvalidRequest(format!("The confirmationUrl {url:?} is not a URL: {e}"))
    })?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(ServiceError::InvalidRequest(format!(
            "The confirmationUrl {url:?} must be an https:// (or http://) URL with a host"
        )));
    }
    Ok(())
}

impl TopicRules {
    pub fn destination_arn(&self, id: &str) -> String {
        self.scope.http_rule_destination(id)
    }

    /// CreateTopicRuleDestination: stored `IN_PROGRESS`, then the confirmation is sent.
    pub async fn create_topic_rule_destination(
        &self,
        confirmation_url: &str,
    ) -> ServiceResult<TopicRuleDestinationRecord> {
        check_confirmation_url(confirmation_url)?;
        let now = self.clock.now();
        let record = TopicRuleDestinationRecord {
            arn: self.destination_arn(&uuid::Uuid::new_v4().to_string()),
            confirmation_url: confirmation_url.to_string(),
            status: IN_PROGRESS.into(),
            status_reason: None,
            confirmation_token: Some(new_token()),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        match self.store.insert_topic_rule_destination(&record).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) => {
                let existing = self
                    .all_destinations()
                    .await?
                    .into_iter()
                    .find(|d| d.confirmation_url == confirmation_url);
                return Err(ServiceError::AlreadyExists {
                    message: format!(
                        "A topic rule destination with confirmationUrl {confirmation_url} already exists"
                    ),
                    resource_id: confirmation_url.to_string(),
                    resource_arn: existing.map(|d| d.arn).unwrap_or_default(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.destinations_changed().await;
        self.send_confirmation(&record);
        Ok(record)
    }

    /// GetTopicRuleDestination.
    pub async fn get_topic_rule_destination(
        &self,
        arn: &str,
    ) -> ServiceResult<TopicRuleDestinationRecord> {
        self.store
            .get_topic_rule_destination(arn)
            .await?
            .ok_or_else(|| destination_not_found(arn))
    }

    /// ListTopicRuleDestinations, in ARN order.
    pub async fn list_topic_rule_destinations(
        &self,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<TopicRuleDestinationRecord>> {
        let limit = match max_results {
            None => MAX_PAGE as usize,
            Some(n @ 1..=MAX_PAGE) => n as usize,
            Some(n) => {
                return Err(ServiceError::InvalidRequest(format!(
                    "maxResults must be between 1 and {MAX_PAGE}, not {n}"
                )));
            }
        };
        let page = PageRequest {
            after: next_token
                .filter(|t| !t.is_empty())
                .map(pagination::decode)
                .transpose()?,
            limit,
        };
        Ok(self.store.list_topic_rule_destinations(&page).await?.into())
    }

    /// UpdateTopicRuleDestination: `ENABLED` and `DISABLED` only once confirmed;
    /// `IN_PROGRESS` sends a new confirmation with a new token.
    pub async fn update_topic_rule_destination(
        &self,
        arn: &str,
        status: &str,
    ) -> ServiceResult<TopicRuleDestinationRecord> {
        if ![ENABLED, DISABLED, IN_PROGRESS].contains(&status) {
            return Err(ServiceError::InvalidRequest(format!(
                "status must be ENABLED, DISABLED or IN_PROGRESS, not {status}"
            )));
        }
        let updated = self
            .update_destination(arn, |current| {
                let mut next = current.clone();
                match status {
                    IN_PROGRESS => {
                        next.confirmation_token = Some(new_token());
                        next.status_reason = None;
                    }
                    _ if [IN_PROGRESS, ERROR].contains(&current.status.as_str()) => {
                        return Err(ServiceError::InvalidRequest(format!(
                            "Topic rule destination {arn} is {} and has not been confirmed; \
                             confirm it before setting it {status}",
                            current.status
                        )));
                    }
                    _ => {}
                }
                next.status = status.to_string();
                Ok(Some(next))
            })
            .await?
            .ok_or_else(|| destination_not_found(arn))?;
        if status == IN_PROGRESS {
            self.send_confirmation(&updated);
        }
        Ok(updated)
    }

    /// ConfirmTopicRuleDestination (the `enableUrl`): the pending confirmation with this
    /// token succeeds, leaving the destination `DISABLED` until it is enabled. A token that
    /// was never issued, was already used, or was replaced by a newer confirmation is refused.
    pub async fn confirm_topic_rule_destination(
        &self,
        token: &str,
    ) -> ServiceResult<TopicRuleDestinationRecord> {
        let invalid = || {
            ServiceError::InvalidRequest(
                "The confirmation token is not valid: it is unknown, already used, or was \
                 replaced by a newer confirmation"
                    .into(),
            )
        };
        if token.is_empty() || token.chars().count() > MAX_TOKEN {
            return Err(invalid());
        }
        let Some(found) = self
            .store
            .find_topic_rule_destination_by_token(token)
            .await?
        else {
            return Err(invalid());
        };
        let confirmed = self
            .update_destination(&found.arn, |current| {
                // A newer confirmation (or another visit) may have replaced the token since.
                if current.confirmation_token.as_deref() != Some(token) {
                    return Err(invalid());
                }
                let mut next = current.clone();
                next.status = DISABLED.into();
                next.status_reason = None;
                next.confirmation_token = None;
                Ok(Some(next))
            })
            .await?;
        confirmed.ok_or_else(invalid)
    }

    /// DeleteTopicRuleDestination. Rules whose http actions used it keep running; their
    /// actions fail (and run the error action) until a destination covers them again.
    pub async fn delete_topic_rule_destination(&self, arn: &str) -> ServiceResult<()> {
        if !self.store.delete_topic_rule_destination(arn).await? {
            return Err(destination_not_found(arn));
        }
        self.destinations_changed().await;
        Ok(())
    }

    /// Read, change, compare-and-swap, retried on a concurrent change. `change` returning
    /// `None` leaves the destination alone; the result is `None` when it does not exist.
    async fn update_destination(
        &self,
        arn: &str,
        change: impl Fn(
            &TopicRuleDestinationRecord,
        ) -> ServiceResult<Option<TopicRuleDestinationRecord>>,
    ) -> ServiceResult<Option<TopicRuleDestinationRecord>> {
        loop {
            let Some(current) = self.store.get_topic_rule_destination(arn).await? else {
                return Ok(None);
            };
            let Some(mut next) = change(&current)? else {
                return Ok(Some(current));
            };
            next.updated_at = self.clock.now();
            next.version = current.version + 1;
            match self
                .store
                .replace_topic_rule_destination(&next, current.version)
                .await?
            {
                CasOutcome::Done => {
                    self.destinations_changed().await;
                    return Ok(Some(next));
                }
                CasOutcome::NotFound => return Ok(None),
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    /// Every destination (there are few: one per endpoint base).
    pub(crate) async fn all_destinations(&self) -> ServiceResult<Vec<TopicRuleDestinationRecord>> {
        Ok(all_destinations(&self.store).await?)
    }

    async fn destinations_changed(&self) {
        if let Some(engine) = &self.engine
            && let Err(e) = engine.sync_destinations(&self.store).await
        {
            tracing::warn!(error = %e, "re-reading topic rule destinations failed");
        }
    }

    /// Sends the destination's pending confirmation in the background (as AWS does: the
    /// API call returns `IN_PROGRESS` at once); a failure makes it `ERROR` with the reason,
    /// unless a newer confirmation replaced this one meanwhile.
    fn send_confirmation(&self, destination: &TopicRuleDestinationRecord) {
        let Some(token) = destination.confirmation_token.clone() else {
            return;
        };
        let rules = self.clone();
        let destination = destination.clone();
        tokio::spawn(async move {
            let Err(reason) = rules.confirmer.send(&destination, &token).await else {
                return;
            };
            tracing::warn!(arn = %destination.arn, url = %destination.confirmation_url, error = %reason, "a topic rule destination's confirmation was not delivered");
            let outcome = rules
                .update_destination(&destination.arn, |current| {
                    if current.confirmation_token.as_deref() != Some(token.as_str()) {
                        return Ok(None);
                    }
                    let mut next = current.clone();
                    next.status = ERROR.into();
                    next.status_reason = Some(reason.clone());
                    next.confirmation_token = None;
                    Ok(Some(next))
                })
                .await;
            if let Err(e) = outcome {
                tracing::warn!(arn = %destination.arn, error = %e, "recording a failed confirmation failed");
            }
        });
    }

    /// AWS creates a destination for an http action whose URL no destination covers yet
    /// (when the URL it confirms has no substitution template). Called once the rule is
    /// stored; a failure here is logged, the rule stays.
    pub(crate) async fn ensure_destinations(
        &self,
        actions: &[Value],
        error_action: Option<&Value>,
    ) {
        let urls: Vec<String> = actions
            .iter()
            .chain(error_action)
            .filter_map(|action| {
                let http = action.get("http")?;
                let url = http.get("url")?.as_str()?;
                if url.starts_with(THING_ATTRIBUTES_URL) {
                    return None;
                }
                let confirm = http
                    .get("confirmationUrl")
                    .and_then(Value::as_str)
                    .unwrap_or(url);
                (!confirm.contains("${")).then(|| confirm.to_string())
            })
            .collect();
        if urls.is_empty() {
            return;
        }
        let existing = match self.all_destinations().await {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, "listing topic rule destinations failed");
                return;
            }
        };
        let mut covered: Vec<String> = existing.into_iter().map(|d| d.confirmation_url).collect();
        for url in urls {
            if covered.iter().any(|c| url.starts_with(c.as_str())) {
                continue;
            }
            match self.create_topic_rule_destination(&url).await {
                Ok(_) | Err(ServiceError::AlreadyExists { .. }) => covered.push(url),
                Err(e) => {
                    tracing::warn!(url, error = %e, "creating the destination of an http action failed");
                }
            }
        }
    }
}

/// Every destination in the store.
pub(crate) async fn all_destinations(
    store: &SharedStore,
) -> Result<Vec<TopicRuleDestinationRecord>, StoreError> {
    let mut all = Vec::new();
    let mut page = PageRequest {
        after: None,
        limit: 250,
    };
    loop {
        let batch = store.list_topic_rule_destinations(&page).await?;
        all.extend(batch.items);
        match batch.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(all),
        }
    }
}
