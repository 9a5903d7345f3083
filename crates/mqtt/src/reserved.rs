//! The reserved `$aws/...` topics: which ones only drover may publish, and the handlers that
//! serve device requests on them (the jobs service registers one for
//! `$aws/things/{thing}/jobs/...`).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::authority::DeviceGrant;

/// A device's publish to a topic a handler serves. The broker has already checked the
/// device's `iot:Publish` permission on the topic.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub client_id: Arc<str>,
    pub topic: String,
    pub payload: Bytes,
    pub grant: Arc<DeviceGrant>,
}

/// Serves device requests on reserved topics. Replies go out through
/// [`crate::Broker::publish`], so they are routed (and `iot:Receive`-checked) like any message.
#[async_trait]
pub trait ReservedTopicHandler: Send + Sync + 'static {
    /// Whether this handler serves `topic`; a claimed publish is not routed to subscribers.
    fn claims(&self, topic: &str) -> bool;
    /// Serves one request. Requests from one connection are handled in order.
    async fn handle(&self, request: DeviceRequest);
}

/// Topics only drover publishes: lifecycle and registry events, and the replies and
/// notifications of the `$aws/things/...` services. A device publishing there could forge a
/// notification to another device, so it is refused whatever its policy says.
pub(crate) fn is_server_only(topic: &str) -> bool {
    if topic.starts_with("$aws/events/") || topic == "$aws/events" {
        return true;
    }
    match topic.strip_prefix("$aws/things/") {
        Some(rest) => {
            let last = rest.rsplit('/').next().unwrap_or_default();
            let service_reply = matches!(last, "accepted" | "rejected" | "notify" | "notify-next")
                || rest.ends_with("/shadow/update/delta")
                || rest.ends_with("/shadow/update/documents");
            service_reply && rest.contains('/')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_cannot_publish_what_drover_publishes() {
        for topic in [
            "$aws/events/presence/connected/d1",
            "$aws/events/job/j1/completed",
            "$aws/things/t1/jobs/notify-next",
            "$aws/things/t1/jobs/notify",
            "$aws/things/t1/jobs/get/accepted",
            "$aws/things/t1/jobs/j1/update/rejected",
        ] {
            assert!(is_server_only(topic), "{topic}");
        }
        for topic in [
            "$aws/things/t1/jobs/get",
            "$aws/things/t1/jobs/start-next",
            "$aws/things/t1/jobs/j1/update",
            "devices/t1/telemetry",
            "accepted",
        ] {
            assert!(!is_server_only(topic), "{topic}");
        }
    }
}
