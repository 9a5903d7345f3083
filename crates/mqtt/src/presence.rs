//! AWS IoT lifecycle events: `$aws/events/presence/connected/{clientId}` and
//! `.../disconnected/{clientId}`, with AWS's payloads and disconnect reasons.

use serde_json::json;

/// AWS's `disconnectReason` values drover produces.
pub(crate) mod reason {
    pub const CLIENT_INITIATED_DISCONNECT: &str = "CLIENT_INITIATED_DISCONNECT";
    pub const CONNECTION_LOST: &str = "CONNECTION_LOST";
    pub const DUPLICATE_CLIENTID: &str = "DUPLICATE_CLIENTID";
    pub const MQTT_KEEP_ALIVE_TIMEOUT: &str = "MQTT_KEEP_ALIVE_TIMEOUT";
    pub const CLIENT_ERROR: &str = "CLIENT_ERROR";
    pub const FORBIDDEN_ACCESS: &str = "FORBIDDEN_ACCESS";
    pub const AUTH_ERROR: &str = "AUTH_ERROR";
    pub const SERVER_INITIATED_DISCONNECT: &str = "SERVER_INITIATED_DISCONNECT";
}

pub(crate) fn connected_topic(client_id: &str) -> String {
    format!("$aws/events/presence/connected/{client_id}")
}

pub(crate) fn disconnected_topic(client_id: &str) -> String {
    format!("$aws/events/presence/disconnected/{client_id}")
}

pub(crate) struct PresenceEvent<'a> {
    pub client_id: &'a str,
    pub timestamp_ms: i64,
    pub session_identifier: &'a str,
    pub principal_identifier: &'a str,
    pub ip_address: &'a str,
    pub version_number: i64,
}

pub(crate) fn connected_payload(e: &PresenceEvent<'_>) -> String {
    json!({
        "clientId": e.client_id,
        "timestamp": e.timestamp_ms,
        "eventType": "connected",
        "sessionIdentifier": e.session_identifier,
        "principalIdentifier": e.principal_identifier,
        "ipAddress": e.ip_address,
        "versionNumber": e.version_number,
    })
    .to_string()
}

pub(crate) fn disconnected_payload(e: &PresenceEvent<'_>, disconnect_reason: &str) -> String {
    json!({
        "clientId": e.client_id,
        "timestamp": e.timestamp_ms,
        "eventType": "disconnected",
        "clientInitiatedDisconnect": disconnect_reason == reason::CLIENT_INITIATED_DISCONNECT,
        "sessionIdentifier": e.session_identifier,
        "principalIdentifier": e.principal_identifier,
        "disconnectReason": disconnect_reason,
        "versionNumber": e.version_number,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_aws_fields() {
        let e = PresenceEvent {
            client_id: "d1",
            timestamp_ms: 1_700_000_000_123,
            session_identifier: "s",
            principal_identifier: "abc",
            ip_address: "127.0.0.1",
            version_number: 3,
        };
        let c: serde_json::Value = serde_json::from_str(&connected_payload(&e)).expect("json");
        assert_eq!(c["eventType"], "connected");
        assert_eq!(c["ipAddress"], "127.0.0.1");
        assert_eq!(c["versionNumber"], 3);
        let d: serde_json::Value = serde_json::from_str(&disconnected_payload(
            &e,
            reason::CLIENT_INITIATED_DISCONNECT,
        ))
        .expect("json");
        assert_eq!(d["clientInitiatedDisconnect"], true);
        assert_eq!(d["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
        assert!(d.get("ipAddress").is_none());
        assert_eq!(connected_topic("d1"), "$aws/events/presence/connected/d1");
    }
}
