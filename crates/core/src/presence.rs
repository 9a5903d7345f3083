//! A client's connection state (what `connectivity.*` in the fleet index and the presence
//! events report), and how one connect or disconnect changes it.

/// The recorded connection state of one MQTT client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub client_id: String,
    pub connected: bool,
    /// Epoch milliseconds of the event that set this state.
    pub timestamp_ms: i64,
    pub disconnect_reason: Option<String>,
    /// The session the state belongs to (the broker's identifier of one connection).
    pub session_identifier: String,
    /// +1 on every recorded event; presence events carry it as `versionNumber`.
    pub version: i64,
}

/// One connect or disconnect as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    pub connected: bool,
    pub timestamp_ms: i64,
    pub session_identifier: String,
    pub disconnect_reason: Option<String>,
}

/// The state after `event`. Every event takes the next version. A disconnect of a session that
/// is no longer the current one (a client id taken over by a newer connection, whose old
/// session ends after the new one began) keeps the newer session's connected state: the client
/// is still connected.
pub fn next(client_id: &str, current: Option<&Presence>, event: &PresenceEvent) -> Presence {
    let version = current.map_or(1, |c| c.version + 1);
    if let Some(current) = current
        && !event.connected
        && current.connected
        && current.session_identifier != event.session_identifier
    {
        return Presence {
            version,
            ..current.clone()
        };
    }
    Presence {
        client_id: client_id.to_string(),
        connected: event.connected,
        timestamp_ms: event.timestamp_ms,
        disconnect_reason: if event.connected {
            None
        } else {
            event.disconnect_reason.clone()
        },
        session_identifier: event.session_identifier.clone(),
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(connected: bool, at: i64, session: &str) -> PresenceEvent {
        PresenceEvent {
            connected,
            timestamp_ms: at,
            session_identifier: session.into(),
            disconnect_reason: (!connected).then(|| "CLIENT_INITIATED_DISCONNECT".into()),
        }
    }

    #[test]
    fn versions_grow_and_state_follows_the_current_session() {
        let first = next("dev1", None, &event(true, 10, "s1"));
        assert_eq!((first.connected, first.version), (true, 1));
        assert_eq!(first.disconnect_reason, None);
        let off = next("dev1", Some(&first), &event(false, 20, "s1"));
        assert_eq!(
            (off.connected, off.version, off.timestamp_ms),
            (false, 2, 20)
        );
        assert_eq!(
            off.disconnect_reason.as_deref(),
            Some("CLIENT_INITIATED_DISCONNECT")
        );
        // s2 takes over; s1's late disconnect does not mark the client offline.
        let s2 = next("dev1", Some(&off), &event(true, 30, "s2"));
        let stale = next("dev1", Some(&s2), &event(false, 31, "s1"));
        assert!(stale.connected);
        assert_eq!(stale.session_identifier, "s2");
        assert_eq!(stale.version, 4);
    }
}
