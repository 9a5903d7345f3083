//! The store conformance suite: one set of behaviours every [`Store`] implementation must show.
//!
//! `tests/conformance.rs` runs it against SQLite (in a temp dir) and PostgreSQL (in a fresh
//! schema). Each check starts from an empty store.

// Test code that lives in the library so the integration tests of both backends can share it:
// a failing call must panic, and unwrap's panic location names the check that failed.
#![allow(clippy::unwrap_used)]

use drover_core::registry::{Attributes, DynamicGroupQuery, Tag, Thing, ThingGroup, ThingType};
use drover_core::time::Timestamp;

use crate::*;

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn thing(name: &str, pairs: &[(&str, &str)]) -> Thing {
    Thing {
        name: name.into(),
        id: format!("id-{name}"),
        type_name: None,
        attributes: attrs(pairs),
        version: 1,
        created_at: Timestamp(1_700_000_000_000),
        updated_at: Timestamp(1_700_000_000_000),
    }
}

fn group(name: &str, parent: Option<&str>) -> ThingGroup {
    ThingGroup {
        name: name.into(),
        id: format!("id-{name}"),
        parent: parent.map(str::to_string),
        description: Some("a group".into()),
        attributes: attrs(&[("line", "a")]),
        version: 1,
        created_at: Timestamp(1_700_000_000_123),
        tags: vec![Tag {
            key: "team".into(),
            value: "ops".into(),
        }],
        dynamic: None,
    }
}

fn page(after: Option<&str>, limit: usize) -> PageRequest {
    PageRequest {
        after: after.map(str::to_string),
        limit,
    }
}

/// Runs every check; panics with a message naming the first one that fails.
pub async fn run_all(store: &dyn Store) {
    settings_and_keys(store).await;
    things_round_trip_and_cas(store).await;
    list_things_filters_and_pages(store).await;
    thing_types(store).await;
    groups_and_membership(store).await;
    settings_overwrite(store).await;
    fleet_index(store).await;
    mqtt_sessions(store).await;
    certificates(store).await;
    thing_principals(store).await;
    policies(store).await;
    presence(store).await;
    jobs(store).await;
    job_executions(store).await;
    execution_retried_in_the_same_write(store).await;
    release_within_a_budget(store).await;
    job_templates(store).await;
    topic_rules(store).await;
    topic_rule_destinations(store).await;
}

async fn settings_and_keys(store: &dyn Store) {
    assert_eq!(
        store.setting_or_insert("account_id", "111").await.unwrap(),
        "111"
    );
    assert_eq!(
        store.setting_or_insert("account_id", "222").await.unwrap(),
        "111"
    );

    let key = AccessKey {
        access_key_id: "AKIAEXAMPLE".into(),
        secret_access_key: "secret".into(),
        description: "admin".into(),
        created_at: Timestamp(5),
    };
    store.insert_access_key(&key).await.unwrap();
    assert!(matches!(
        store.insert_access_key(&key).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_access_key("AKIAEXAMPLE").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.list_access_keys().await.unwrap(), vec![key]);
    assert!(store.delete_access_key("AKIAEXAMPLE").await.unwrap());
    assert!(!store.delete_access_key("AKIAEXAMPLE").await.unwrap());
    assert_eq!(store.get_access_key("AKIAEXAMPLE").await.unwrap(), None);
}

async fn things_round_trip_and_cas(store: &dyn Store) {
    let t = thing("cas1", &[("app_version", "1.0")]);
    store.insert_thing(&t).await.unwrap();
    assert!(matches!(
        store.insert_thing(&t).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.get_thing("cas1").await.unwrap(), Some(t.clone()));
    assert_eq!(store.get_thing("nope").await.unwrap(), None);

    let mut next = t.clone();
    next.attributes = attrs(&[("app_version", "2.0"), ("site", "b")]);
    next.version = 2;
    next.updated_at = Timestamp(1_700_000_000_999);
    assert_eq!(
        store.replace_thing(&next, 1).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.replace_thing(&next, 1).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(store.get_thing("cas1").await.unwrap(), Some(next.clone()));
    let mut ghost = next.clone();
    ghost.name = "ghost".into();
    assert_eq!(
        store.replace_thing(&ghost, 1).await.unwrap(),
        CasOutcome::NotFound
    );

    assert_eq!(
        store.delete_thing("cas1", Some(1)).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert!(store.get_thing("cas1").await.unwrap().is_some());
    assert_eq!(
        store.delete_thing("cas1", Some(2)).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.delete_thing("cas1", None).await.unwrap(),
        CasOutcome::NotFound
    );
    // The attribute index follows the thing.
    let found = store
        .list_things(
            &ThingFilter {
                attribute_name: Some("site".into()),
                ..Default::default()
            },
            &page(None, 10),
        )
        .await
        .unwrap();
    assert!(
        found.items.is_empty(),
        "attribute rows of a deleted thing must go with it"
    );
}

async fn list_things_filters_and_pages(store: &dyn Store) {
    for (name, version) in [
        ("l1", "1.0"),
        ("l2", "1.5"),
        ("l3", "2.0"),
        ("l4", "10.0"),
        ("l5", "1.5"),
    ] {
        let mut t = thing(name, &[("app_version", version)]);
        if name == "l4" {
            t.type_name = Some("sensor".into());
        }
        store.insert_thing(&t).await.unwrap();
    }
    let first = store
        .list_things(&ThingFilter::default(), &page(None, 2))
        .await
        .unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["l1", "l2"]
    );
    assert_eq!(first.next_after.as_deref(), Some("l2"));
    let second = store
        .list_things(&ThingFilter::default(), &page(Some("l2"), 2))
        .await
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["l3", "l4"]
    );
    let last = store
        .list_things(&ThingFilter::default(), &page(Some("l4"), 2))
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_after, None);

    let exact = ThingFilter {
        attribute_name: Some("app_version".into()),
        attribute_value: Some("1.5".into()),
        ..Default::default()
    };
    let names = |p: Page<Thing>| p.items.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_things(&exact, &page(None, 10)).await.unwrap()),
        ["l2", "l5"]
    );
    let prefix = ThingFilter {
        attribute_name: Some("app_version".into()),
        attribute_value: Some("1".into()),
        attribute_value_prefix: true,
        ..Default::default()
    };
    assert_eq!(
        names(store.list_things(&prefix, &page(None, 10)).await.unwrap()),
        ["l1", "l2", "l4", "l5"]
    );
    let wildcard_is_literal = ThingFilter {
        attribute_name: Some("app_version".into()),
        attribute_value: Some("1_".into()),
        attribute_value_prefix: true,
        ..Default::default()
    };
    assert!(
        store
            .list_things(&wildcard_is_literal, &page(None, 10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let typed = ThingFilter {
        type_name: Some("sensor".into()),
        ..Default::default()
    };
    assert_eq!(
        names(store.list_things(&typed, &page(None, 10)).await.unwrap()),
        ["l4"]
    );
    for name in ["l1", "l2", "l3", "l4", "l5"] {
        store.delete_thing(name, None).await.unwrap();
    }
}

async fn thing_types(store: &dyn Store) {
    let mut t = ThingType {
        name: "sensor".into(),
        id: "tt-1".into(),
        description: Some("temperature sensor".into()),
        searchable_attributes: vec!["model".into()],
        mqtt5_configuration: Some(serde_json::json!({"propagatingAttributes": []})),
        deprecated: false,
        deprecation_date: None,
        created_at: Timestamp(9),
        tags: vec![Tag {
            key: "k".into(),
            value: "v".into(),
        }],
    };
    store.insert_thing_type(&t).await.unwrap();
    assert!(matches!(
        store.insert_thing_type(&t).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_thing_type("sensor").await.unwrap(),
        Some(t.clone())
    );
    t.deprecated = true;
    t.deprecation_date = Some(Timestamp(10));
    assert_eq!(
        store.replace_thing_type(&t).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.get_thing_type("sensor").await.unwrap(),
        Some(t.clone())
    );
    let mut other = t.clone();
    other.name = "camera".into();
    other.id = "tt-2".into();
    store.insert_thing_type(&other).await.unwrap();
    let all = store.list_thing_types(None, &page(None, 1)).await.unwrap();
    assert_eq!(all.items[0].name, "camera");
    assert_eq!(all.next_after.as_deref(), Some("camera"));
    let one = store
        .list_thing_types(Some("sensor"), &page(None, 10))
        .await
        .unwrap();
    assert_eq!(one.items, vec![t]);
    assert!(store.delete_thing_type("sensor").await.unwrap());
    assert!(store.delete_thing_type("camera").await.unwrap());
    assert!(!store.delete_thing_type("camera").await.unwrap());
}

async fn groups_and_membership(store: &dyn Store) {
    let root = group("root", None);
    let child = group("child", Some("root"));
    store.insert_thing_group(&root).await.unwrap();
    store.insert_thing_group(&child).await.unwrap();
    assert!(matches!(
        store.insert_thing_group(&root).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store
            .insert_thing_group(&group("orphan", Some("missing")))
            .await,
        Err(StoreError::MissingReference(_))
    ));
    assert_eq!(
        store.get_thing_group("child").await.unwrap(),
        Some(child.clone())
    );

    let mut dynamic = group("dyn", None);
    dynamic.dynamic = Some(DynamicGroupQuery {
        query_string: "attributes.app_version < 2.0".into(),
        query_version: "2017-09-30".into(),
        index_name: "AWS_Things".into(),
        status: "ACTIVE".into(),
    });
    store.insert_thing_group(&dynamic).await.unwrap();
    assert_eq!(store.get_thing_group("dyn").await.unwrap(), Some(dynamic));

    let mut updated = child.clone();
    updated.version = 2;
    updated.description = Some("changed".into());
    assert_eq!(
        store.replace_thing_group(&updated, 1).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.replace_thing_group(&updated, 1).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(store.get_thing_group("child").await.unwrap(), Some(updated));

    let groups = |p: Page<ThingGroup>| p.items.into_iter().map(|g| g.name).collect::<Vec<_>>();
    let roots = ThingGroupFilter {
        parent: Some(None),
        name_prefix: None,
    };
    assert_eq!(
        groups(
            store
                .list_thing_groups(&roots, &page(None, 10))
                .await
                .unwrap()
        ),
        ["dyn", "root"]
    );
    let children = ThingGroupFilter {
        parent: Some(Some("root".into())),
        name_prefix: None,
    };
    assert_eq!(
        groups(
            store
                .list_thing_groups(&children, &page(None, 10))
                .await
                .unwrap()
        ),
        ["child"]
    );
    let prefixed = ThingGroupFilter {
        parent: None,
        name_prefix: Some("ro".into()),
    };
    assert_eq!(
        groups(
            store
                .list_thing_groups(&prefixed, &page(None, 10))
                .await
                .unwrap()
        ),
        ["root"]
    );
    let all = store
        .list_thing_groups(&ThingGroupFilter::default(), &page(None, 2))
        .await
        .unwrap();
    assert_eq!(all.next_after.as_deref(), Some("dyn"));

    for name in ["m1", "m2", "m3"] {
        store.insert_thing(&thing(name, &[])).await.unwrap();
    }
    let at = Timestamp(1);
    assert!(store.add_thing_to_group("root", "m1", at).await.unwrap());
    assert!(!store.add_thing_to_group("root", "m1", at).await.unwrap());
    assert!(store.add_thing_to_group("child", "m1", at).await.unwrap());
    assert!(store.add_thing_to_group("child", "m2", at).await.unwrap());
    assert!(store.add_thing_to_group("root", "m3", at).await.unwrap());
    assert!(matches!(
        store.add_thing_to_group("root", "ghost", at).await,
        Err(StoreError::MissingReference(_))
    ));
    assert!(matches!(
        store.add_thing_to_group("ghost", "m1", at).await,
        Err(StoreError::MissingReference(_))
    ));

    let both = vec!["root".to_string(), "child".to_string()];
    let p = store
        .list_things_in_groups(&both, &page(None, 2))
        .await
        .unwrap();
    assert_eq!(p.items, ["m1", "m2"]);
    let p = store
        .list_things_in_groups(&both, &page(p.next_after.as_deref(), 2))
        .await
        .unwrap();
    assert_eq!(p.items, ["m3"]);
    assert_eq!(p.next_after, None);
    assert_eq!(
        store
            .list_groups_for_thing("m1", &page(None, 10))
            .await
            .unwrap()
            .items,
        ["child", "root"]
    );

    assert!(store.remove_thing_from_group("root", "m1").await.unwrap());
    assert!(!store.remove_thing_from_group("root", "m1").await.unwrap());
    assert_eq!(
        store
            .list_groups_for_thing("m1", &page(None, 10))
            .await
            .unwrap()
            .items,
        ["child"]
    );

    // Deleting a thing or a group removes its memberships.
    assert_eq!(
        store.delete_thing("m2", None).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store
            .list_things_in_groups(&["child".to_string()], &page(None, 10))
            .await
            .unwrap()
            .items,
        ["m1"]
    );
    assert_eq!(
        store.delete_thing_group("child", Some(1)).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(
        store.delete_thing_group("child", Some(2)).await.unwrap(),
        CasOutcome::Done
    );
    assert!(
        store
            .list_groups_for_thing("m1", &page(None, 10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store.delete_thing_group("child", None).await.unwrap(),
        CasOutcome::NotFound
    );
}

async fn settings_overwrite(store: &dyn Store) {
    assert_eq!(store.get_setting("indexing").await.unwrap(), None);
    store.put_setting("indexing", "one").await.unwrap();
    store.put_setting("indexing", "two").await.unwrap();
    assert_eq!(
        store.get_setting("indexing").await.unwrap().as_deref(),
        Some("two")
    );
}

async fn fleet_index(store: &dyn Store) {
    use drover_core::query::{Bound, CandidateScan, ValueRange};

    for (name, version) in [
        ("Idx-a", "1.0"),
        ("idx-B", "1.5"),
        ("idx-c", "2.0"),
        ("other", "10.0"),
    ] {
        store
            .insert_thing(&thing(name, &[("app_version", version), ("Colour", "Red")]))
            .await
            .unwrap();
    }
    store.insert_thing(&thing("idx-none", &[])).await.unwrap();
    let names = |scan: CandidateScan, after: Option<&'static str>, limit: Option<usize>| async move {
        store.index_candidates(&scan, after, limit).await.unwrap()
    };
    let all = names(CandidateScan::All, None, None).await;
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    assert!(all.contains(&"other".to_string()));
    // Case-folded thing-name ranges.
    assert_eq!(
        names(
            CandidateScan::Names(ValueRange::Prefix("idx-".into())),
            None,
            None
        )
        .await,
        ["Idx-a", "idx-B", "idx-c", "idx-none"]
    );
    assert_eq!(
        names(
            CandidateScan::Names(ValueRange::Prefix("idx-".into())),
            Some("idx-B"),
            Some(2)
        )
        .await,
        ["idx-c", "idx-none"]
    );
    assert_eq!(
        names(
            CandidateScan::Names(ValueRange::Equals("idx-b".into())),
            None,
            None
        )
        .await,
        ["idx-B"]
    );
    // Attribute ranges compare folded text.
    let attribute = |values| CandidateScan::Attribute {
        key: "app_version".into(),
        values,
    };
    assert_eq!(
        names(
            attribute(ValueRange::Between {
                lower: Bound::Unbounded,
                upper: Bound::Exclusive("2.0".into())
            }),
            None,
            None
        )
        .await,
        ["Idx-a", "idx-B", "other"]
    );
    assert_eq!(
        names(attribute(ValueRange::Any), None, Some(3)).await,
        ["Idx-a", "idx-B", "idx-c"]
    );
    let colour = CandidateScan::Attribute {
        key: "Colour".into(),
        values: ValueRange::Equals("red".into()),
    };
    assert_eq!(names(colour, Some("idx-c"), None).await, ["other"]);

    // Compound scans: intersections and unions of index ranges, paged by name.
    let red = || CandidateScan::Attribute {
        key: "Colour".into(),
        values: ValueRange::Equals("red".into()),
    };
    let low = || {
        attribute(ValueRange::Between {
            lower: Bound::Unbounded,
            upper: Bound::Exclusive("2.0".into()),
        })
    };
    assert_eq!(
        names(CandidateScan::Intersect(vec![red(), low()]), None, None).await,
        ["Idx-a", "idx-B", "other"]
    );
    assert_eq!(
        names(
            CandidateScan::Union(vec![
                CandidateScan::Names(ValueRange::Equals("idx-none".into())),
                CandidateScan::Intersect(vec![red(), low()]),
            ]),
            Some("Idx-a"),
            Some(5)
        )
        .await,
        ["idx-B", "idx-none", "other"]
    );

    // Memberships in bulk; vanished things and groups are skipped, not errors.
    let mut dynamic = group("idx-dyn", None);
    dynamic.dynamic = Some(DynamicGroupQuery {
        query_string: "attributes.app_version < 2.0".into(),
        query_version: "2017-09-30".into(),
        index_name: "AWS_Things".into(),
        status: "ACTIVE".into(),
    });
    store.insert_thing_group(&dynamic).await.unwrap();
    store
        .insert_thing_group(&group("idx-static", None))
        .await
        .unwrap();
    let change = |group: &str, thing: &str, join| MembershipChange {
        group: group.into(),
        thing: thing.into(),
        join,
    };
    store
        .apply_memberships(
            &[
                change("idx-dyn", "Idx-a", true),
                change("idx-dyn", "idx-B", true),
                change("idx-dyn", "idx-B", true),
                change("idx-dyn", "ghost", true),
                change("ghost-group", "idx-B", true),
                change("idx-static", "idx-B", true),
                change("idx-dyn", "idx-c", false),
            ],
            Timestamp(1_700_000_000_999),
        )
        .await
        .unwrap();
    let dynamic_groups = store.list_dynamic_groups().await.unwrap();
    assert!(dynamic_groups.windows(2).all(|w| w[0].name < w[1].name));
    assert!(dynamic_groups.iter().all(|g| g.dynamic.is_some()));
    assert!(dynamic_groups.contains(&dynamic));
    let docs = store
        .index_documents(&[
            "idx-B".into(),
            "ghost".into(),
            "Idx-a".into(),
            "idx-none".into(),
        ])
        .await
        .unwrap();
    let summary: Vec<(String, Vec<String>)> = docs
        .iter()
        .map(|d| (d.name.clone(), d.group_names.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("Idx-a".to_string(), vec!["idx-dyn".to_string()]),
            (
                "idx-B".to_string(),
                vec!["idx-dyn".to_string(), "idx-static".to_string()]
            ),
            ("idx-none".to_string(), vec![]),
        ]
    );
    assert_eq!(
        docs[0].attributes.get("Colour").map(String::as_str),
        Some("Red")
    );
    assert_eq!(docs[0].id, "id-Idx-a");
    store
        .apply_memberships(&[change("idx-dyn", "Idx-a", false)], Timestamp(1))
        .await
        .unwrap();
    let members = store
        .list_things_in_groups(&["idx-dyn".into()], &page(None, 10))
        .await
        .unwrap();
    assert_eq!(members.items, ["idx-B"]);
}

async fn mqtt_sessions(store: &dyn Store) {
    let session = MqttSessionRecord {
        client_id: "dev-1".into(),
        expiry_secs: 3600,
        subscriptions: r#"[{"filter":"a/#","qos":1}]"#.into(),
        disconnected_at: None,
    };
    store.put_mqtt_session(&session).await.unwrap();
    let mut updated = session.clone();
    updated.disconnected_at = Some(Timestamp(1_700_000_000_000));
    store.put_mqtt_session(&updated).await.unwrap();
    assert_eq!(
        store.get_mqtt_session("dev-1").await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(store.get_mqtt_session("nobody").await.unwrap(), None);
    assert_eq!(store.list_mqtt_sessions().await.unwrap(), vec![updated]);

    let message = |client: &str, payload: &[u8]| MqttQueuedMessage {
        id: 0,
        client_id: client.into(),
        topic: "a/b".into(),
        payload: payload.to_vec(),
        qos: 1,
        retain: false,
        properties: Some(r#"{"content_type":"text/plain"}"#.into()),
        enqueued_at: Timestamp(1_700_000_000_001),
    };
    let ids = store
        .enqueue_mqtt_messages(&[
            message("dev-1", b"one"),
            message("dev-2", b"other"),
            message("dev-1", &[0, 159, 255]),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "ids increase: {ids:?}");
    let queued = store.list_mqtt_queue("dev-1", 0, 10).await.unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].id, ids[0]);
    assert_eq!(queued[1].payload, vec![0, 159, 255], "binary payloads");
    assert_eq!(queued[0].properties, message("x", b"").properties);
    assert_eq!(
        store
            .list_mqtt_queue("dev-1", ids[0], 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.count_mqtt_queue("dev-1").await.unwrap(), 2);
    store
        .delete_mqtt_messages(&[ids[0], 999_999])
        .await
        .unwrap();
    assert_eq!(store.count_mqtt_queue("dev-1").await.unwrap(), 1);
    // Deleting a session drops its queue, and only its queue.
    store.delete_mqtt_session("dev-1").await.unwrap();
    assert_eq!(store.count_mqtt_queue("dev-1").await.unwrap(), 0);
    assert_eq!(store.count_mqtt_queue("dev-2").await.unwrap(), 1);
    assert!(store.list_mqtt_sessions().await.unwrap().is_empty());

    let retained = RetainedMessage {
        topic: "state/x".into(),
        payload: b"on".to_vec(),
        qos: 1,
        properties: None,
        updated_at: Timestamp(1_700_000_000_002),
    };
    store.put_retained_message(&retained).await.unwrap();
    let mut replaced = retained.clone();
    replaced.payload = b"off".to_vec();
    store.put_retained_message(&replaced).await.unwrap();
    assert_eq!(
        store.list_retained_messages().await.unwrap(),
        vec![replaced]
    );
    assert!(store.delete_retained_message("state/x").await.unwrap());
    assert!(!store.delete_retained_message("state/x").await.unwrap());
    assert!(store.list_retained_messages().await.unwrap().is_empty());
}

fn certificate(id: &str, created_at: i64, ca: Option<&str>) -> CertificateRecord {
    CertificateRecord {
        id: id.into(),
        pem: format!("-----BEGIN CERTIFICATE-----\n{id}\n-----END CERTIFICATE-----\n"),
        status: "ACTIVE".into(),
        ca_certificate_id: ca.map(str::to_string),
        mode: "DEFAULT".into(),
        not_before: Timestamp(1_000),
        not_after: Timestamp(2_000_000_000_000),
        created_at: Timestamp(created_at),
        updated_at: Timestamp(created_at),
        version: 1,
        generation_id: format!("gen-{id}"),
    }
}

fn ca_certificate(id: &str, subject: &str, created_at: i64) -> CaCertificateRecord {
    CaCertificateRecord {
        id: id.into(),
        pem: "pem".into(),
        subject: subject.into(),
        status: "ACTIVE".into(),
        auto_registration: "DISABLE".into(),
        registration_config: Some(r#"{"templateName":"t"}"#.into()),
        mode: "DEFAULT".into(),
        not_before: Timestamp(1),
        not_after: Timestamp(2),
        created_at: Timestamp(created_at),
        updated_at: Timestamp(created_at),
        version: 1,
        generation_id: "g".into(),
    }
}

fn ids<T>(page: &Page<T>, id: impl Fn(&T) -> &str) -> Vec<String> {
    page.items.iter().map(|i| id(i).to_string()).collect()
}

async fn certificates(store: &dyn Store) {
    // Two share a creation time: the id breaks the tie.
    let c1 = certificate("c1", 100, Some("ca1"));
    let c2 = certificate("c2", 200, None);
    let c3 = certificate("c3", 200, Some("ca1"));
    for c in [&c1, &c2, &c3] {
        store.insert_certificate(c).await.unwrap();
    }
    assert!(matches!(
        store.insert_certificate(&c1).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.get_certificate("c1").await.unwrap(), Some(c1.clone()));
    assert_eq!(store.get_certificate("nope").await.unwrap(), None);

    let newest_first = store
        .list_certificates(None, &page(None, 2), false)
        .await
        .unwrap();
    assert_eq!(ids(&newest_first, |c| &c.id), ["c3", "c2"]);
    let rest = store
        .list_certificates(None, &page(newest_first.next_after.as_deref(), 2), false)
        .await
        .unwrap();
    assert_eq!(ids(&rest, |c| &c.id), ["c1"]);
    assert_eq!(rest.next_after, None);
    let oldest_first = store
        .list_certificates(None, &page(None, 2), true)
        .await
        .unwrap();
    assert_eq!(ids(&oldest_first, |c| &c.id), ["c1", "c2"]);
    let rest = store
        .list_certificates(None, &page(oldest_first.next_after.as_deref(), 2), true)
        .await
        .unwrap();
    assert_eq!(ids(&rest, |c| &c.id), ["c3"]);
    let by_ca = store
        .list_certificates(Some("ca1"), &page(None, 10), true)
        .await
        .unwrap();
    assert_eq!(ids(&by_ca, |c| &c.id), ["c1", "c3"]);

    let mut inactive = c1.clone();
    inactive.status = "INACTIVE".into();
    inactive.version = 2;
    inactive.updated_at = Timestamp(300);
    assert_eq!(
        store.replace_certificate(&inactive, 1).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.replace_certificate(&inactive, 1).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(
        store
            .replace_certificate(&certificate("ghost", 1, None), 1)
            .await
            .unwrap(),
        CasOutcome::NotFound
    );
    assert_eq!(store.get_certificate("c1").await.unwrap(), Some(inactive));
    assert_eq!(
        store.delete_certificate("c1", 1, false).await.unwrap(),
        DeleteOutcome::VersionMismatch
    );
    assert_eq!(
        store.delete_certificate("ghost", 1, false).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert_eq!(
        store.delete_certificate("c1", 2, false).await.unwrap(),
        DeleteOutcome::Done
    );
    assert_eq!(store.get_certificate("c1").await.unwrap(), None);

    // CA certificates.
    let ca1 = ca_certificate("ca1", "CN=Fleet CA", 10);
    let ca2 = ca_certificate("ca2", "CN=Fleet CA", 20);
    let ca3 = ca_certificate("ca3", "CN=Other", 30);
    for ca in [&ca1, &ca2, &ca3] {
        store.insert_ca_certificate(ca).await.unwrap();
    }
    assert!(matches!(
        store.insert_ca_certificate(&ca1).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_ca_certificate("ca1").await.unwrap(),
        Some(ca1.clone())
    );
    let same_subject = store.find_ca_certificates("CN=Fleet CA").await.unwrap();
    assert_eq!(
        same_subject
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["ca1", "ca2"]
    );
    let listed = store
        .list_ca_certificates(&page(None, 2), false)
        .await
        .unwrap();
    assert_eq!(ids(&listed, |c| &c.id), ["ca3", "ca2"]);
    let rest = store
        .list_ca_certificates(&page(listed.next_after.as_deref(), 2), false)
        .await
        .unwrap();
    assert_eq!(ids(&rest, |c| &c.id), ["ca1"]);
    let mut off = ca1.clone();
    off.status = "INACTIVE".into();
    off.registration_config = None;
    off.version = 2;
    assert_eq!(
        store.replace_ca_certificate(&off, 1).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(store.get_ca_certificate("ca1").await.unwrap(), Some(off));
    assert_eq!(
        store.delete_ca_certificate("ca1", 1).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(
        store.delete_ca_certificate("ca1", 2).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.delete_ca_certificate("ca1", 2).await.unwrap(),
        CasOutcome::NotFound
    );
    for id in ["c2", "c3"] {
        assert_eq!(
            store.delete_certificate(id, 1, false).await.unwrap(),
            DeleteOutcome::Done
        );
    }
    for id in ["ca2", "ca3"] {
        store.delete_ca_certificate(id, 1).await.unwrap();
    }
}

async fn thing_principals(store: &dyn Store) {
    for name in ["p-thing1", "p-thing2"] {
        store.insert_thing(&thing(name, &[])).await.unwrap();
    }
    for id in ["pc1", "pc2"] {
        store
            .insert_certificate(&certificate(id, 1, None))
            .await
            .unwrap();
    }
    let at = Timestamp(5);
    assert_eq!(
        store
            .attach_thing_principal("p-thing1", "pc1", false, at)
            .await
            .unwrap(),
        AttachOutcome::Attached
    );
    assert_eq!(
        store
            .attach_thing_principal("p-thing1", "pc1", false, at)
            .await
            .unwrap(),
        AttachOutcome::AlreadyAttached
    );
    assert_eq!(
        store
            .attach_thing_principal("nope", "pc1", false, at)
            .await
            .unwrap(),
        AttachOutcome::NotFound
    );
    assert_eq!(
        store
            .attach_thing_principal("p-thing1", "nope", false, at)
            .await
            .unwrap(),
        AttachOutcome::NotFound
    );
    // Exclusivity: pc1 is on p-thing1, so it cannot go exclusively to p-thing2.
    assert_eq!(
        store
            .attach_thing_principal("p-thing2", "pc1", true, at)
            .await
            .unwrap(),
        AttachOutcome::ExclusiveConflict
    );
    assert_eq!(
        store
            .attach_thing_principal("p-thing2", "pc2", true, at)
            .await
            .unwrap(),
        AttachOutcome::Attached
    );
    assert_eq!(
        store
            .attach_thing_principal("p-thing1", "pc2", false, at)
            .await
            .unwrap(),
        AttachOutcome::ExclusiveConflict
    );
    assert_eq!(
        store
            .attach_thing_principal("p-thing2", "pc1", false, at)
            .await
            .unwrap(),
        AttachOutcome::Attached
    );
    let principals = store
        .list_thing_principals("p-thing2", &page(None, 1))
        .await
        .unwrap();
    assert_eq!(ids(&principals, |p| &p.certificate_id), ["pc1"]);
    let rest = store
        .list_thing_principals("p-thing2", &page(principals.next_after.as_deref(), 1))
        .await
        .unwrap();
    assert_eq!(ids(&rest, |p| &p.certificate_id), ["pc2"]);
    assert!(rest.items[0].exclusive);
    let things = store
        .list_principal_things("pc1", &page(None, 10))
        .await
        .unwrap();
    assert_eq!(ids(&things, |p| &p.thing_name), ["p-thing1", "p-thing2"]);
    assert!(
        store
            .get_thing_principal("p-thing1", "pc1")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_thing_principal("p-thing1", "pc2")
            .await
            .unwrap()
            .is_none()
    );

    // A thing with principals cannot be deleted; a certificate on a thing neither.
    assert!(matches!(
        store.delete_thing("p-thing1", None).await,
        Err(StoreError::MissingReference(_))
    ));
    assert!(store.get_thing("p-thing1").await.unwrap().is_some());
    assert_eq!(
        store.delete_certificate("pc1", 1, true).await.unwrap(),
        DeleteOutcome::AttachedToThing
    );
    assert!(
        store
            .detach_thing_principal("p-thing1", "pc1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .detach_thing_principal("p-thing1", "pc1")
            .await
            .unwrap()
    );
    assert_eq!(
        store.delete_thing("p-thing1", None).await.unwrap(),
        CasOutcome::Done
    );
    for id in ["pc1", "pc2"] {
        store.detach_thing_principal("p-thing2", id).await.unwrap();
        store.delete_certificate(id, 1, false).await.unwrap();
    }
    store.delete_thing("p-thing2", None).await.unwrap();
}

async fn policies(store: &dyn Store) {
    let policy = |name: &str| PolicyRecord {
        name: name.into(),
        default_version: 1,
        document: format!(r#"{{"Version":"2012-10-17","Statement":[],"name":"{name}"}}"#),
        created_at: Timestamp(10),
        updated_at: Timestamp(10),
        generation_id: "gen".into(),
    };
    for name in ["pol-a", "pol-b", "pol-c"] {
        store.insert_policy(&policy(name)).await.unwrap();
    }
    assert!(matches!(
        store.insert_policy(&policy("pol-a")).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_policy("pol-a").await.unwrap(),
        Some(policy("pol-a"))
    );
    assert_eq!(store.get_policy("nope").await.unwrap(), None);
    let listed = store.list_policies(&page(None, 2), true).await.unwrap();
    assert_eq!(listed.items, ["pol-a", "pol-b"]);
    let rest = store
        .list_policies(&page(listed.next_after.as_deref(), 2), true)
        .await
        .unwrap();
    assert_eq!(rest.items, ["pol-c"]);
    let descending = store.list_policies(&page(None, 2), false).await.unwrap();
    assert_eq!(descending.items, ["pol-c", "pol-b"]);

    // Versions: at most 5, the default follows setAsDefault, the default cannot be deleted.
    for n in 2..=5 {
        let created = store
            .insert_policy_version("pol-a", &format!("doc{n}"), n == 3, Timestamp(n), 5)
            .await
            .unwrap();
        let VersionOutcome::Created(version) = created else {
            panic!("version {n} not created: {created:?}");
        };
        assert_eq!(version.version, n);
    }
    assert_eq!(
        store
            .insert_policy_version("pol-a", "doc6", false, Timestamp(6), 5)
            .await
            .unwrap(),
        VersionOutcome::LimitExceeded
    );
    assert_eq!(
        store
            .insert_policy_version("nope", "doc", false, Timestamp(6), 5)
            .await
            .unwrap(),
        VersionOutcome::NotFound
    );
    let current = store.get_policy("pol-a").await.unwrap().unwrap();
    assert_eq!(
        (current.default_version, current.document.as_str()),
        (3, "doc3")
    );
    let versions = store.list_policy_versions("pol-a").await.unwrap().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.is_default))
            .collect::<Vec<_>>(),
        [(1, false), (2, false), (3, true), (4, false), (5, false)]
    );
    assert_eq!(store.list_policy_versions("nope").await.unwrap(), None);
    assert_eq!(
        store.delete_policy_version("pol-a", 3).await.unwrap(),
        DeleteOutcome::IsDefaultVersion
    );
    assert_eq!(
        store.delete_policy_version("pol-a", 9).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert_eq!(
        store
            .set_default_policy_version("pol-a", 9, Timestamp(7))
            .await
            .unwrap(),
        CasOutcome::NotFound
    );
    assert_eq!(
        store
            .set_default_policy_version("pol-a", 5, Timestamp(7))
            .await
            .unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.delete_policy("pol-a").await.unwrap(),
        DeleteOutcome::HasOtherVersions
    );
    for v in 1..=4 {
        assert_eq!(
            store.delete_policy_version("pol-a", v).await.unwrap(),
            DeleteOutcome::Done
        );
    }
    // Version numbers are never reused.
    let VersionOutcome::Created(v6) = store
        .insert_policy_version("pol-a", "doc6", false, Timestamp(8), 5)
        .await
        .unwrap()
    else {
        panic!("version 6 not created");
    };
    assert_eq!(v6.version, 6);
    store.delete_policy_version("pol-a", 6).await.unwrap();

    // Targets: certificates and thing groups, at most N per target.
    store
        .insert_certificate(&certificate("tc1", 1, None))
        .await
        .unwrap();
    store
        .insert_thing_group(&group("pg-root", None))
        .await
        .unwrap();
    store
        .insert_thing_group(&group("pg-child", Some("pg-root")))
        .await
        .unwrap();
    store.insert_thing(&thing("pt1", &[])).await.unwrap();
    store
        .add_thing_to_group("pg-child", "pt1", Timestamp(1))
        .await
        .unwrap();
    let cert_target = PolicyTarget {
        arn: "arn:cert/tc1".into(),
        certificate_id: Some("tc1".into()),
        thing_group: None,
    };
    let group_target = PolicyTarget {
        arn: "arn:thinggroup/pg-root".into(),
        certificate_id: None,
        thing_group: Some("pg-root".into()),
    };
    let missing_target = PolicyTarget {
        arn: "arn:cert/nope".into(),
        certificate_id: Some("nope".into()),
        thing_group: None,
    };
    let attach = |name: &'static str, target: PolicyTarget, max: usize| async move {
        store
            .attach_policy(name, &target, Timestamp(9), max)
            .await
            .unwrap()
    };
    assert_eq!(
        attach("pol-a", cert_target.clone(), 2).await,
        AttachOutcome::Attached
    );
    assert_eq!(
        attach("pol-a", cert_target.clone(), 2).await,
        AttachOutcome::AlreadyAttached
    );
    assert_eq!(
        attach("pol-b", cert_target.clone(), 2).await,
        AttachOutcome::Attached
    );
    assert_eq!(
        attach("pol-c", cert_target.clone(), 2).await,
        AttachOutcome::LimitExceeded
    );
    assert_eq!(
        attach("nope", cert_target.clone(), 2).await,
        AttachOutcome::NotFound
    );
    assert_eq!(
        attach("pol-c", missing_target, 2).await,
        AttachOutcome::NotFound
    );
    assert_eq!(
        attach("pol-c", group_target.clone(), 2).await,
        AttachOutcome::Attached
    );
    assert_eq!(
        store
            .list_attached_policies("arn:cert/tc1", &page(None, 1))
            .await
            .unwrap()
            .items,
        ["pol-a"]
    );
    assert_eq!(
        store
            .list_attached_policies("arn:cert/tc1", &page(Some("pol-a"), 5))
            .await
            .unwrap()
            .items,
        ["pol-b"]
    );
    assert_eq!(
        store
            .list_policy_targets("pol-c", &page(None, 5))
            .await
            .unwrap()
            .items,
        ["arn:thinggroup/pg-root"]
    );
    // The certificate's own policies, plus its thing's groups' and their ancestors'.
    let names =
        |policies: Vec<(String, String)>| policies.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(
        names(store.principal_policies("tc1", None).await.unwrap()),
        ["pol-a", "pol-b"]
    );
    let with_groups = store.principal_policies("tc1", Some("pt1")).await.unwrap();
    assert_eq!(names(with_groups.clone()), ["pol-a", "pol-b", "pol-c"]);
    assert_eq!(with_groups[0].1, "doc5", "the default version's document");

    assert_eq!(
        store.delete_policy("pol-b").await.unwrap(),
        DeleteOutcome::PoliciesAttached
    );
    assert_eq!(
        store.delete_certificate("tc1", 1, false).await.unwrap(),
        DeleteOutcome::PoliciesAttached
    );
    assert!(store.detach_policy("pol-b", "arn:cert/tc1").await.unwrap());
    assert!(!store.detach_policy("pol-b", "arn:cert/tc1").await.unwrap());
    assert_eq!(
        store.delete_policy("pol-b").await.unwrap(),
        DeleteOutcome::Done
    );
    assert_eq!(store.get_policy("pol-b").await.unwrap(), None);
    assert_eq!(
        store.delete_policy("pol-b").await.unwrap(),
        DeleteOutcome::NotFound
    );
    // Force-deleting the certificate takes its policy attachments along.
    assert_eq!(
        store.delete_certificate("tc1", 1, true).await.unwrap(),
        DeleteOutcome::Done
    );
    assert!(
        store
            .list_attached_policies("arn:cert/tc1", &page(None, 5))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Deleting a thing group takes its attachments along.
    store
        .remove_thing_from_group("pg-child", "pt1")
        .await
        .unwrap();
    store.delete_thing_group("pg-child", None).await.unwrap();
    store.delete_thing_group("pg-root", None).await.unwrap();
    assert!(
        store
            .list_policy_targets("pol-c", &page(None, 5))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    store.delete_thing("pt1", None).await.unwrap();
    for name in ["pol-a", "pol-c"] {
        assert_eq!(
            store.delete_policy(name).await.unwrap(),
            DeleteOutcome::Done
        );
    }
}

async fn presence(store: &dyn Store) {
    use drover_core::presence::Presence;

    let mut p = Presence {
        client_id: "presence-thing".into(),
        connected: true,
        timestamp_ms: 1_700_000_000_000,
        disconnect_reason: None,
        session_identifier: "s1".into(),
        version: 1,
    };
    assert_eq!(store.get_presence("presence-thing").await.unwrap(), None);
    assert_eq!(store.put_presence(&p).await.unwrap(), CasOutcome::Done);
    assert_eq!(
        store.put_presence(&p).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(
        store.get_presence("presence-thing").await.unwrap(),
        Some(p.clone())
    );
    p.connected = false;
    p.disconnect_reason = Some("CLIENT_INITIATED_DISCONNECT".into());
    p.version = 2;
    assert_eq!(store.put_presence(&p).await.unwrap(), CasOutcome::Done);
    p.version = 4;
    assert_eq!(
        store.put_presence(&p).await.unwrap(),
        CasOutcome::VersionMismatch
    );

    // The index document of the thing named by the client id carries its connectivity.
    store
        .insert_thing(&thing("presence-thing", &[]))
        .await
        .unwrap();
    store
        .insert_thing(&thing("presence-never", &[]))
        .await
        .unwrap();
    let docs = store
        .index_documents(&["presence-never".into(), "presence-thing".into()])
        .await
        .unwrap();
    assert_eq!(docs[0].connectivity, None);
    assert_eq!(
        docs[1].connectivity,
        Some(drover_core::query::Connectivity {
            connected: false,
            timestamp: 1_700_000_000_000,
            disconnect_reason: Some("CLIENT_INITIATED_DISCONNECT".into()),
        })
    );
    store.delete_thing("presence-thing", None).await.unwrap();
    store.delete_thing("presence-never", None).await.unwrap();
}

fn job(id: &str, status: drover_core::jobs::JobStatus) -> drover_core::jobs::Job {
    use drover_core::jobs::*;
    Job {
        job_id: id.into(),
        status,
        target_selection: TargetSelection::Snapshot,
        targets: vec!["arn:aws:iot:us-east-1:1:thinggroup/g_1".into()],
        document: r#"{"op":"install"}"#.into(),
        document_before_substitution: None,
        document_source: None,
        description: Some("update".into()),
        config: serde_json::from_str(r#"{"timeoutConfig":{"inProgressTimeoutInMinutes":5}}"#)
            .unwrap(),
        document_parameters: Default::default(),
        job_template_arn: None,
        namespace_id: None,
        tags: vec![Tag {
            key: "k".into(),
            value: "v".into(),
        }],
        force_canceled: false,
        reason_code: None,
        comment: None,
        created_at: Timestamp(1_000),
        last_updated_at: Timestamp(1_000),
        completed_at: None,
        version: 1,
        process: Default::default(),
    }
}

async fn jobs(store: &dyn Store) {
    use drover_core::jobs::*;
    let j = job("job-a", JobStatus::InProgress);
    store.insert_job(&j, &[]).await.unwrap();
    assert!(matches!(
        store.insert_job(&j, &[]).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.get_job("job-a").await.unwrap().unwrap(), j);
    assert!(store.get_job("nope").await.unwrap().is_none());

    let mut canceled = j.clone();
    canceled.status = JobStatus::Canceled;
    canceled.reason_code = Some("R".into());
    canceled.version = 2;
    assert_eq!(
        store.replace_job(&canceled, 7).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    assert_eq!(
        store.replace_job(&canceled, 1).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(store.get_job("job-a").await.unwrap().unwrap(), canceled);
    let mut ghost = j.clone();
    ghost.job_id = "ghost".into();
    assert_eq!(
        store.replace_job(&ghost, 1).await.unwrap(),
        CasOutcome::NotFound
    );

    let mut b = job("job-b", JobStatus::Scheduled);
    b.target_selection = TargetSelection::Continuous;
    b.targets = vec!["arn:aws:iot:us-east-1:1:thinggroup/g-1".into()];
    store.insert_job(&b, &[]).await.unwrap();
    store
        .insert_job(&job("job-c", JobStatus::Completed), &[])
        .await
        .unwrap();
    let all = store
        .list_jobs(&JobFilter::default(), &page(None, 2))
        .await
        .unwrap();
    assert_eq!(
        all.items
            .iter()
            .map(|j| j.job_id.as_str())
            .collect::<Vec<_>>(),
        ["job-a", "job-b"]
    );
    assert_eq!(all.next_after.as_deref(), Some("job-b"));
    let rest = store
        .list_jobs(&JobFilter::default(), &page(Some("job-b"), 2))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next_after.is_none());
    let by_status = |status| JobFilter {
        status: Some(status),
        ..JobFilter::default()
    };
    let listed = store
        .list_jobs(&by_status(JobStatus::Scheduled), &page(None, 10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].job_id, "job-b");
    let continuous = JobFilter {
        target_selection: Some(TargetSelection::Continuous),
        ..JobFilter::default()
    };
    assert_eq!(
        store
            .list_jobs(&continuous, &page(None, 10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // A target filter matches whole ARNs only: g_1 is not g-1, and g is neither.
    for (arn, expected) in [
        ("arn:aws:iot:us-east-1:1:thinggroup/g_1", 2),
        ("arn:aws:iot:us-east-1:1:thinggroup/g-1", 1),
        ("arn:aws:iot:us-east-1:1:thinggroup/g", 0),
    ] {
        let f = JobFilter {
            target: Some(arn.into()),
            ..JobFilter::default()
        };
        assert_eq!(
            store
                .list_jobs(&f, &page(None, 10))
                .await
                .unwrap()
                .items
                .len(),
            expected,
            "{arn}"
        );
    }
    let active: Vec<String> = store
        .list_active_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(active, ["job-b"]);
    for id in ["job-a", "job-b", "job-c"] {
        assert!(store.delete_job(id).await.unwrap());
    }
    assert!(!store.delete_job("job-a").await.unwrap());
}

async fn job_executions(store: &dyn Store) {
    use drover_core::jobs::*;
    let things: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    store
        .insert_job(&job("rollout", JobStatus::InProgress), &things)
        .await
        .unwrap();
    assert_eq!(store.count_pending_things("rollout").await.unwrap(), 5);
    assert_eq!(
        store
            .add_pending_things("rollout", &["t0".into(), "t9".into()])
            .await
            .unwrap(),
        1
    );
    assert!(store.remove_pending_thing("rollout", "t9").await.unwrap());
    assert!(!store.remove_pending_thing("rollout", "t9").await.unwrap());

    let first = store
        .release_pending_things("rollout", 2, Timestamp(5_000), None)
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|e| e.thing_name.as_str())
            .collect::<Vec<_>>(),
        ["t0", "t1"]
    );
    assert_eq!(
        first[0],
        JobExecution::queued("rollout", "t0", 1, 0, Timestamp(5_000))
    );
    assert_eq!(
        store.list_pending_things("rollout", 10).await.unwrap(),
        ["t2", "t3", "t4"]
    );
    // A thing with an execution is never pending again.
    assert_eq!(
        store
            .add_pending_things("rollout", &["t0".into()])
            .await
            .unwrap(),
        0
    );
    store
        .release_pending_things("rollout", 10, Timestamp(9_000), None)
        .await
        .unwrap();
    assert_eq!(store.count_pending_things("rollout").await.unwrap(), 0);
    let released_after = store
        .list_executions_for_job("rollout", None, &page(None, 10))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.queued_at >= Timestamp(6_000))
        .count();
    assert_eq!(released_after, 3);
    let j = store.get_job("rollout").await.unwrap().unwrap();
    assert_eq!(j.process.queued, 5);

    // Compare-and-swap updates keep the counters.
    let e = store
        .get_execution("rollout", "t0", None)
        .await
        .unwrap()
        .unwrap();
    let started = apply_device_update(
        &e,
        &DeviceUpdate {
            status: Some(ExecutionStatus::InProgress),
            step_timeout_in_minutes: Some(1),
            ..DeviceUpdate::default()
        },
        Some(5),
        Timestamp(10_000),
    )
    .unwrap();
    let refused = store.update_execution(&started, 2, None).await.unwrap();
    assert_eq!(refused.outcome, CasOutcome::VersionMismatch);
    assert!(refused.pending.is_empty());
    // A written change answers with the thing's pending executions as they are after it.
    let written = store.update_execution(&started, 1, None).await.unwrap();
    assert_eq!(written.outcome, CasOutcome::Done);
    assert_eq!(
        written.pending,
        store.pending_executions(&["t0".to_string()]).await.unwrap()
    );
    assert!(written.pending.contains(&started));
    assert_eq!(
        store
            .update_execution(&started, 1, None)
            .await
            .unwrap()
            .outcome,
        CasOutcome::VersionMismatch
    );
    let mut ghost = started.clone();
    ghost.thing_name = "nobody".into();
    assert_eq!(
        store
            .update_execution(&ghost, 1, None)
            .await
            .unwrap()
            .outcome,
        CasOutcome::NotFound
    );
    assert_eq!(
        store
            .get_execution("rollout", "t0", Some(1))
            .await
            .unwrap()
            .unwrap(),
        started
    );
    let j = store.get_job("rollout").await.unwrap().unwrap();
    assert_eq!((j.process.queued, j.process.in_progress), (4, 1));

    // Timers.
    assert_eq!(
        store.next_execution_timeout().await.unwrap(),
        Some(Timestamp(70_000))
    );
    assert!(
        store
            .due_executions(Timestamp(69_999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_executions(Timestamp(70_000), 10).await.unwrap();
    assert_eq!(due, vec![started.clone()]);

    // A failure and its retry: the thing counts once, by its latest execution.
    let failed = apply_device_update(
        &started,
        &DeviceUpdate {
            status: Some(ExecutionStatus::Failed),
            ..DeviceUpdate::default()
        },
        None,
        Timestamp(11_000),
    )
    .unwrap();
    let retry_exec = retry(&failed, Timestamp(11_000));
    let outcomes = store
        .update_executions(&[(failed.clone(), 2), (failed.clone(), 2)])
        .await
        .unwrap();
    assert_eq!(outcomes, [CasOutcome::Done, CasOutcome::VersionMismatch]);
    assert!(store.next_execution_timeout().await.unwrap().is_none());
    let j = store.get_job("rollout").await.unwrap().unwrap();
    assert_eq!((j.process.failed, j.process.in_progress), (1, 0));
    store.insert_execution(&retry_exec).await.unwrap();
    assert!(matches!(
        store.insert_execution(&retry_exec).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let j = store.get_job("rollout").await.unwrap().unwrap();
    assert_eq!((j.process.failed, j.process.queued), (0, 5));
    assert_eq!(j.process.total(), 5);
    assert_eq!(
        store
            .get_execution("rollout", "t0", None)
            .await
            .unwrap()
            .unwrap(),
        retry_exec
    );
    assert_eq!(
        store
            .get_execution("rollout", "t0", Some(1))
            .await
            .unwrap()
            .unwrap(),
        failed
    );

    // Listings show each thing's latest execution.
    let for_job = store
        .list_executions_for_job("rollout", None, &page(None, 3))
        .await
        .unwrap();
    assert_eq!(for_job.items.len(), 3);
    assert_eq!(for_job.items[0].execution_number, 2);
    assert_eq!(for_job.next_after.as_deref(), Some("t2"));
    let queued = store
        .list_executions_for_job(
            "rollout",
            Some(ExecutionStatus::Queued),
            &page(Some("t2"), 10),
        )
        .await
        .unwrap();
    assert_eq!(queued.items.len(), 2);
    store
        .insert_job(&job("other", JobStatus::InProgress), &["t0".into()])
        .await
        .unwrap();
    store
        .release_pending_things("other", 10, Timestamp(12_000), None)
        .await
        .unwrap();
    let for_thing = store
        .list_executions_for_thing("t0", &ExecutionFilter::default(), &page(None, 10))
        .await
        .unwrap();
    assert_eq!(
        for_thing
            .items
            .iter()
            .map(|e| e.job_id.as_str())
            .collect::<Vec<_>>(),
        ["other", "rollout"]
    );
    let only = ExecutionFilter {
        job_id: Some("rollout".into()),
        status: Some(ExecutionStatus::Queued),
    };
    assert_eq!(
        store
            .list_executions_for_thing("t0", &only, &page(None, 10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let pending = store
        .pending_executions(&["t0".into(), "t1".into()])
        .await
        .unwrap();
    assert_eq!(pending.len(), 3);
    let queued_now = store
        .executions_in_status(
            "rollout",
            &[ExecutionStatus::Queued, ExecutionStatus::InProgress],
            2,
        )
        .await
        .unwrap();
    assert_eq!(queued_now.len(), 2);

    // Deleting the latest execution brings back the one before it.
    assert!(store.delete_execution("rollout", "t0", 2).await.unwrap());
    assert!(!store.delete_execution("rollout", "t0", 2).await.unwrap());
    let j = store.get_job("rollout").await.unwrap().unwrap();
    assert_eq!((j.process.failed, j.process.queued), (1, 4));
    assert_eq!(
        store
            .get_execution("rollout", "t0", None)
            .await
            .unwrap()
            .unwrap(),
        failed
    );
    assert_eq!(store.clear_pending_things("rollout").await.unwrap(), 0);
    assert!(store.delete_job("rollout").await.unwrap());
    assert!(
        store
            .get_execution("rollout", "t1", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete_job("other").await.unwrap());
}
/// A FAILED change and the retry it earns are one write: the job never looks finished in
/// between, and a missed compare-and-swap queues nothing.
async fn execution_retried_in_the_same_write(store: &dyn Store) {
    use drover_core::jobs::*;
    let things: Vec<String> = ["r0", "r1"].iter().map(|t| t.to_string()).collect();
    store
        .insert_job(&job("retried", JobStatus::InProgress), &things)
        .await
        .unwrap();
    let released = store
        .release_pending_things("retried", 10, Timestamp(5_000), None)
        .await
        .unwrap();
    let fail = |e: &JobExecution| {
        apply_device_update(
            e,
            &DeviceUpdate {
                status: Some(ExecutionStatus::Failed),
                ..DeviceUpdate::default()
            },
            None,
            Timestamp(6_000),
        )
        .unwrap()
    };
    let failed = fail(&released[0]);
    let next = retry(&failed, Timestamp(6_000));

    let missed = store
        .update_execution(&failed, 7, Some(&next))
        .await
        .unwrap();
    assert_eq!(missed.outcome, CasOutcome::VersionMismatch);
    assert!(!missed.retried);
    assert_eq!(
        store.get_execution("retried", "r0", None).await.unwrap(),
        Some(released[0].clone()),
        "a missed compare-and-swap changes nothing and queues no retry"
    );

    let written = store
        .update_execution(&failed, 1, Some(&next))
        .await
        .unwrap();
    assert_eq!(written.outcome, CasOutcome::Done);
    assert!(written.retried);
    assert_eq!(written.pending, vec![next.clone()]);
    assert_eq!(
        store.get_execution("retried", "r0", None).await.unwrap(),
        Some(next.clone())
    );
    assert_eq!(
        store.get_execution("retried", "r0", Some(1)).await.unwrap(),
        Some(failed.clone())
    );
    let j = store.get_job("retried").await.unwrap().unwrap();
    assert_eq!(
        (j.process.queued, j.process.failed, j.process.pending()),
        (2, 0, 2),
        "the thing counts once, by its retry"
    );

    // A retry whose number is taken is not queued; the change itself is still written.
    let other_failed = fail(&released[1]);
    let mut taken = retry(&other_failed, Timestamp(6_000));
    taken.execution_number = 1;
    let written = store
        .update_execution(&other_failed, 1, Some(&taken))
        .await
        .unwrap();
    assert_eq!(written.outcome, CasOutcome::Done);
    assert!(!written.retried);
    assert!(written.pending.is_empty());
    assert_eq!(
        store.get_execution("retried", "r1", None).await.unwrap(),
        Some(other_failed)
    );
    let j = store.get_job("retried").await.unwrap().unwrap();
    assert_eq!((j.process.queued, j.process.failed), (1, 1));
    assert!(store.delete_job("retried").await.unwrap());
}

/// A budgeted release never queues more first executions in the window than the budget,
/// even when several releases of the job run at once (as on several nodes).
async fn release_within_a_budget(store: &dyn Store) {
    use drover_core::jobs::*;
    let things: Vec<String> = (0..40).map(|i| format!("b{i:02}")).collect();
    store
        .insert_job(&job("budgeted", JobStatus::InProgress), &things)
        .await
        .unwrap();
    let budget = |since: i64| {
        Some(crate::ReleaseBudget {
            since: Timestamp(since),
            per_minute: 5,
        })
    };
    let first = store
        .release_pending_things("budgeted", 3, Timestamp(1_000), budget(0))
        .await
        .unwrap();
    assert_eq!(first.len(), 3, "the limit applies within the budget");
    // Eight releases at once, each asking for ten: the window has room for two more.
    let release = || store.release_pending_things("budgeted", 10, Timestamp(2_000), budget(0));
    let racing = tokio::join!(
        release(),
        release(),
        release(),
        release(),
        release(),
        release(),
        release(),
        release()
    );
    let released: usize = [
        racing.0, racing.1, racing.2, racing.3, racing.4, racing.5, racing.6, racing.7,
    ]
    .into_iter()
    .map(|r| r.unwrap().len())
    .sum();
    assert_eq!(released, 2, "racing releases share one budget");
    assert_eq!(
        store
            .list_executions_for_job("budgeted", None, &page(None, 50))
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    assert!(
        store
            .release_pending_things("budgeted", 10, Timestamp(3_000), budget(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_pending_things("budgeted").await.unwrap(), 35);
    // A window that starts after the first three releases has room for three again.
    let later = store
        .release_pending_things("budgeted", 10, Timestamp(61_000), budget(1_001))
        .await
        .unwrap();
    assert_eq!(
        later.len(),
        3,
        "only the two released at 2,000 fall in the window"
    );
    let j = store.get_job("budgeted").await.unwrap().unwrap();
    assert_eq!(j.process.queued, 8);
    assert!(store.delete_job("budgeted").await.unwrap());
}

async fn job_templates(store: &dyn Store) {
    use drover_core::jobs::*;
    let t = JobTemplate {
        template_id: "tpl-1".into(),
        description: "firmware".into(),
        document: Some(r#"{"v":"${aws:iot:parameter:v}"}"#.into()),
        document_source: None,
        config: serde_json::from_str(r#"{"timeoutConfig":{"inProgressTimeoutInMinutes":5}}"#)
            .unwrap(),
        maintenance_windows: vec![MaintenanceWindow {
            start_time: "cron(0 0 ? * SUN *)".into(),
            duration_in_minutes: 60,
        }],
        source_job_arn: None,
        tags: Vec::new(),
        created_at: Timestamp(3),
    };
    store.insert_job_template(&t).await.unwrap();
    assert!(matches!(
        store.insert_job_template(&t).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let mut t2 = t.clone();
    t2.template_id = "tpl-2".into();
    store.insert_job_template(&t2).await.unwrap();
    assert_eq!(store.get_job_template("tpl-1").await.unwrap().unwrap(), t);
    let first = store.list_job_templates(&page(None, 1)).await.unwrap();
    assert_eq!(first.items, vec![t.clone()]);
    let second = store
        .list_job_templates(&page(first.next_after.as_deref(), 1))
        .await
        .unwrap();
    assert_eq!(second.items, vec![t2]);
    assert!(store.delete_job_template("tpl-1").await.unwrap());
    assert!(!store.delete_job_template("tpl-1").await.unwrap());
    assert!(store.delete_job_template("tpl-2").await.unwrap());
}

async fn topic_rules(store: &dyn Store) {
    use crate::{TopicRuleFilter, TopicRuleRecord};
    let rule = |name: &str, topic: &str, disabled: bool| TopicRuleRecord {
        name: name.to_string(),
        sql: format!("SELECT * FROM '{topic}'"),
        topic_pattern: topic.to_string(),
        description: Some("d".into()),
        aws_iot_sql_version: "2016-03-23".into(),
        disabled,
        actions: r#"[{"republish":{"topic":"x","roleArn":"r"}}]"#.into(),
        error_action: None,
        created_at: Timestamp(1_000),
        updated_at: Timestamp(1_000),
        version: 1,
    };
    let a = rule("rule_a", "a/+", false);
    store.insert_topic_rule(&a).await.unwrap();
    store
        .insert_topic_rule(&rule("rule_b", "b/#", true))
        .await
        .unwrap();
    store
        .insert_topic_rule(&rule("rule_c", "a/+", false))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_topic_rule(&a).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_topic_rule("rule_a").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.get_topic_rule("nope").await.unwrap(), None);

    let mut next = a.clone();
    next.sql = "SELECT x FROM 'a/+'".into();
    next.error_action = Some(r#"{"republish":{"topic":"err","roleArn":"r"}}"#.into());
    next.disabled = true;
    next.description = None;
    next.updated_at = Timestamp(2_000);
    next.version = 2;
    assert_eq!(
        store.replace_topic_rule(&next, 1).await.unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store.replace_topic_rule(&next, 1).await.unwrap(),
        CasOutcome::VersionMismatch
    );
    let mut ghost = next.clone();
    ghost.name = "ghost".into();
    assert_eq!(
        store.replace_topic_rule(&ghost, 1).await.unwrap(),
        CasOutcome::NotFound
    );
    assert_eq!(
        store.get_topic_rule("rule_a").await.unwrap(),
        Some(next.clone())
    );

    let names = |page: Page<TopicRuleRecord>| -> Vec<String> {
        page.items.into_iter().map(|r| r.name).collect()
    };
    let all = TopicRuleFilter::default();
    let first = store
        .list_topic_rules(
            &all,
            &PageRequest {
                after: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.next_after.as_deref(), Some("rule_b"));
    assert_eq!(names(first), vec!["rule_a", "rule_b"]);
    let rest = store
        .list_topic_rules(
            &all,
            &PageRequest {
                after: Some("rule_b".into()),
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.next_after, None);
    assert_eq!(names(rest), vec!["rule_c"]);
    let by_topic = TopicRuleFilter {
        topic: Some("a/+".into()),
        disabled: None,
    };
    let page = PageRequest {
        after: None,
        limit: 10,
    };
    assert_eq!(
        names(store.list_topic_rules(&by_topic, &page).await.unwrap()),
        vec!["rule_a", "rule_c"]
    );
    let enabled = TopicRuleFilter {
        topic: None,
        disabled: Some(false),
    };
    assert_eq!(
        names(store.list_topic_rules(&enabled, &page).await.unwrap()),
        vec!["rule_c"]
    );

    assert!(store.delete_topic_rule("rule_a").await.unwrap());
    assert!(!store.delete_topic_rule("rule_a").await.unwrap());
    assert!(store.delete_topic_rule("rule_b").await.unwrap());
    assert!(store.delete_topic_rule("rule_c").await.unwrap());
    assert!(
        store
            .list_topic_rules(&all, &page)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn topic_rule_destinations(store: &dyn Store) {
    use crate::TopicRuleDestinationRecord;
    let destination = |id: &str, url: &str| TopicRuleDestinationRecord {
        arn: format!("arn:aws:iot:us-east-1:123:ruledestination/http/{id}"),
        confirmation_url: url.to_string(),
        status: "IN_PROGRESS".into(),
        status_reason: None,
        confirmation_token: Some(format!("token-{id}")),
        created_at: Timestamp(1_000),
        updated_at: Timestamp(1_000),
        version: 1,
    };
    let a = destination("a", "https://a.example/");
    store.insert_topic_rule_destination(&a).await.unwrap();
    store
        .insert_topic_rule_destination(&destination("b", "https://b.example/hook"))
        .await
        .unwrap();
    store
        .insert_topic_rule_destination(&destination("c", "https://c.example/"))
        .await
        .unwrap();
    // The ARN, the confirmation URL and a pending token are each unique.
    assert!(matches!(
        store.insert_topic_rule_destination(&a).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let mut same_url = destination("d", "https://a.example/");
    same_url.confirmation_token = None;
    assert!(matches!(
        store.insert_topic_rule_destination(&same_url).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let mut same_token = destination("d", "https://d.example/");
    same_token.confirmation_token = Some("token-a".into());
    assert!(matches!(
        store.insert_topic_rule_destination(&same_token).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_topic_rule_destination(&a.arn).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.get_topic_rule_destination("nope").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_topic_rule_destination_by_token("token-a")
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store
            .find_topic_rule_destination_by_token("token-x")
            .await
            .unwrap(),
        None
    );

    // Confirmed: the token is gone, the status and reason change under compare-and-swap.
    let mut next = a.clone();
    next.status = "ERROR".into();
    next.status_reason = Some("the endpoint answered 500".into());
    next.confirmation_token = None;
    next.updated_at = Timestamp(2_000);
    next.version = 2;
    assert_eq!(
        store
            .replace_topic_rule_destination(&next, 1)
            .await
            .unwrap(),
        CasOutcome::Done
    );
    assert_eq!(
        store
            .replace_topic_rule_destination(&next, 1)
            .await
            .unwrap(),
        CasOutcome::VersionMismatch
    );
    let mut ghost = next.clone();
    ghost.arn = "ghost".into();
    assert_eq!(
        store
            .replace_topic_rule_destination(&ghost, 1)
            .await
            .unwrap(),
        CasOutcome::NotFound
    );
    assert_eq!(
        store.get_topic_rule_destination(&a.arn).await.unwrap(),
        Some(next.clone())
    );
    assert_eq!(
        store
            .find_topic_rule_destination_by_token("token-a")
            .await
            .unwrap(),
        None
    );
    // Two destinations may both be without a token.
    let mut c = destination("c", "https://c.example/");
    c.confirmation_token = None;
    c.version = 2;
    assert_eq!(
        store.replace_topic_rule_destination(&c, 1).await.unwrap(),
        CasOutcome::Done
    );

    let arns = |page: Page<TopicRuleDestinationRecord>| -> Vec<String> {
        page.items.into_iter().map(|d| d.arn).collect()
    };
    let first = store
        .list_topic_rule_destinations(&page(None, 2))
        .await
        .unwrap();
    assert_eq!(
        first.next_after.as_deref(),
        Some(destination("b", "").arn.as_str())
    );
    assert_eq!(arns(first), vec![a.arn.clone(), destination("b", "").arn]);
    let rest = store
        .list_topic_rule_destinations(&page(Some(&destination("b", "").arn), 2))
        .await
        .unwrap();
    assert_eq!(rest.next_after, None);
    assert_eq!(arns(rest), vec![c.arn.clone()]);

    assert!(store.delete_topic_rule_destination(&a.arn).await.unwrap());
    assert!(!store.delete_topic_rule_destination(&a.arn).await.unwrap());
    // A deleted destination's confirmation URL can be used again.
    store
        .insert_topic_rule_destination(&destination("e", "https://a.example/"))
        .await
        .unwrap();
    for id in ["b", "c", "e"] {
        assert!(
            store
                .delete_topic_rule_destination(&destination(id, "").arn)
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .list_topic_rule_destinations(&page(None, 10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
