//! The registry service's rules, exercised against a real SQLite store in a temp dir.

// Test helpers panic on setup failure by design: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use drover_core::arn::ArnScope;
use drover_core::registry::*;
use drover_services::registry::{ListThingGroupsQuery, ListThingsQuery, NameOrArn};
use drover_services::{Registry, ServiceError, SystemClock};
use drover_store::SqliteStore;

fn registry() -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
    let registry = Registry::new(
        store,
        ArnScope::new("us-east-1", "123456789012"),
        Arc::new(SystemClock),
    );
    (registry, dir)
}

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn spec(name: &str, pairs: &[(&str, &str)]) -> ThingSpec {
    ThingSpec {
        name: name.into(),
        type_name: None,
        attributes: attrs(pairs),
    }
}

fn group(name: &str, parent: Option<&str>) -> ThingGroupSpec {
    ThingGroupSpec {
        name: name.into(),
        parent: parent.map(str::to_string),
        ..Default::default()
    }
}

fn by_name(name: &str) -> NameOrArn {
    NameOrArn {
        name: Some(name.into()),
        arn: None,
    }
}

#[tokio::test]
async fn create_is_idempotent_only_for_identical_requests() {
    let (registry, _dir) = registry();
    let first = registry
        .create_thing(spec("dev1", &[("v", "1")]))
        .await
        .unwrap();
    let again = registry
        .create_thing(spec("dev1", &[("v", "1")]))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    let err = registry
        .create_thing(spec("dev1", &[("v", "2")]))
        .await
        .unwrap_err();
    match err {
        ServiceError::AlreadyExists {
            resource_id,
            resource_arn,
            ..
        } => {
            assert_eq!(resource_id, first.id);
            assert_eq!(
                resource_arn,
                "arn:aws:iot:us-east-1:123456789012:thing/dev1"
            );
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        registry.describe_thing("dev1").await.unwrap().attributes,
        attrs(&[("v", "1")])
    );
}

#[tokio::test]
async fn updates_check_expected_version_and_change_nothing_on_conflict() {
    let (registry, _dir) = registry();
    registry
        .create_thing(spec("dev1", &[("a", "1")]))
        .await
        .unwrap();
    let update = ThingUpdate {
        attribute_payload: Some(AttributePayload {
            attributes: Some(attrs(&[("b", "2")])),
            merge: true,
        }),
        expected_version: Some(1),
        ..Default::default()
    };
    let next = registry.update_thing("dev1", update.clone()).await.unwrap();
    assert_eq!(next.version, 2);
    assert_eq!(next.attributes, attrs(&[("a", "1"), ("b", "2")]));
    let stale = registry.update_thing("dev1", update).await.unwrap_err();
    assert!(matches!(stale, ServiceError::VersionConflict(_)));
    assert_eq!(registry.describe_thing("dev1").await.unwrap().version, 2);
    assert!(matches!(
        registry.delete_thing("dev1", Some(1)).await.unwrap_err(),
        ServiceError::VersionConflict(_)
    ));
    registry.delete_thing("dev1", Some(2)).await.unwrap();
    registry.delete_thing("dev1", None).await.unwrap();
    assert!(matches!(
        registry.describe_thing("dev1").await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
}

#[tokio::test]
async fn concurrent_updates_without_expected_version_all_apply() {
    let (registry, _dir) = registry();
    registry.create_thing(spec("dev1", &[])).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move {
            let update = ThingUpdate {
                attribute_payload: Some(AttributePayload {
                    attributes: Some(attrs(&[(&format!("k{i}"), "x")])),
                    merge: true,
                }),
                ..Default::default()
            };
            registry.update_thing("dev1", update).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let thing = registry.describe_thing("dev1").await.unwrap();
    assert_eq!(thing.version, 21, "every update bumps the version once");
    assert_eq!(thing.attributes.len(), 20, "no merge is lost to a race");
}

#[tokio::test]
async fn thing_types_gate_things() {
    let (registry, _dir) = registry();
    let missing = registry
        .create_thing(ThingSpec {
            type_name: Some("sensor".into()),
            ..spec("dev1", &[])
        })
        .await
        .unwrap_err();
    assert!(matches!(missing, ServiceError::NotFound(_)));
    registry
        .create_thing_type(ThingTypeSpec {
            name: "sensor".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    registry
        .create_thing(ThingSpec {
            type_name: Some("sensor".into()),
            ..spec("dev1", &[])
        })
        .await
        .unwrap();
    assert!(matches!(
        registry.delete_thing_type("sensor").await.unwrap_err(),
        ServiceError::InvalidRequest(_)
    ));
    registry
        .deprecate_thing_type("sensor", false)
        .await
        .unwrap();
    let deprecated = registry
        .create_thing(ThingSpec {
            type_name: Some("sensor".into()),
            ..spec("dev2", &[])
        })
        .await
        .unwrap_err();
    assert!(matches!(deprecated, ServiceError::InvalidRequest(_)));
    let in_use = registry.delete_thing_type("sensor").await.unwrap_err();
    assert!(matches!(in_use, ServiceError::InvalidRequest(m) if m.contains("associated")));
    registry
        .update_thing(
            "dev1",
            ThingUpdate {
                remove_thing_type: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    registry.delete_thing_type("sensor").await.unwrap();
}

#[tokio::test]
async fn a_thing_joins_one_group_per_hierarchy_and_at_most_ten() {
    let (registry, _dir) = registry();
    registry.create_thing(spec("dev1", &[])).await.unwrap();
    registry
        .create_thing_group(group("plant", None))
        .await
        .unwrap();
    registry
        .create_thing_group(group("line-a", Some("plant")))
        .await
        .unwrap();
    registry
        .create_thing_group(group("line-b", Some("plant")))
        .await
        .unwrap();
    registry
        .add_thing_to_thing_group(by_name("line-a"), by_name("dev1"), false)
        .await
        .unwrap();
    // Adding again is a no-op.
    registry
        .add_thing_to_thing_group(by_name("line-a"), by_name("dev1"), false)
        .await
        .unwrap();
    let same_hierarchy = registry
        .add_thing_to_thing_group(by_name("line-b"), by_name("dev1"), false)
        .await;
    assert!(
        matches!(same_hierarchy, Err(ServiceError::InvalidRequest(m)) if m.contains("hierarchy"))
    );
    // Moving within a hierarchy in one call works: removals go first.
    registry
        .update_thing_groups_for_thing("dev1", &["line-b".into()], &["line-a".into()], false)
        .await
        .unwrap();
    let groups = registry
        .list_thing_groups_for_thing("dev1", None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(groups, ["line-b"]);

    for i in 0..9 {
        registry
            .create_thing_group(group(&format!("g{i}"), None))
            .await
            .unwrap();
        registry
            .add_thing_to_thing_group(by_name(&format!("g{i}")), by_name("dev1"), false)
            .await
            .unwrap();
    }
    registry
        .create_thing_group(group("g9", None))
        .await
        .unwrap();
    let eleventh = registry
        .add_thing_to_thing_group(by_name("g9"), by_name("dev1"), false)
        .await;
    assert!(matches!(eleventh, Err(ServiceError::InvalidRequest(m)) if m.contains("10")));
    assert_eq!(
        registry
            .list_thing_groups_for_thing("dev1", None, None)
            .await
            .unwrap()
            .items
            .len(),
        10
    );
}

#[tokio::test]
async fn hierarchies_list_recursively_and_protect_parents() {
    let (registry, _dir) = registry();
    registry
        .create_thing_group(group("root", None))
        .await
        .unwrap();
    registry
        .create_thing_group(group("mid", Some("root")))
        .await
        .unwrap();
    registry
        .create_thing_group(group("leaf", Some("mid")))
        .await
        .unwrap();
    for (thing, group_name) in [("t1", "root"), ("t2", "mid"), ("t3", "leaf")] {
        registry.create_thing(spec(thing, &[])).await.unwrap();
        registry
            .add_thing_to_thing_group(by_name(group_name), by_name(thing), false)
            .await
            .unwrap();
    }
    let direct = registry
        .list_things_in_thing_group("root", false, None, None)
        .await
        .unwrap();
    assert_eq!(direct.items, ["t1"]);
    let all = registry
        .list_things_in_thing_group("root", true, None, None)
        .await
        .unwrap();
    assert_eq!(all.items, ["t1", "t2", "t3"]);
    let page = registry
        .list_things_in_thing_group("root", true, None, Some(2))
        .await
        .unwrap();
    assert_eq!(page.items, ["t1", "t2"]);
    let rest = registry
        .list_things_in_thing_group("root", true, page.next_token.as_deref(), Some(2))
        .await
        .unwrap();
    assert_eq!(rest.items, ["t3"]);
    assert!(rest.next_token.is_none());

    let described = registry.describe_thing_group("leaf").await.unwrap();
    assert_eq!(described.ancestors, ["root", "mid"]);
    let descendants = registry
        .list_thing_groups(ListThingGroupsQuery {
            parent_group: Some("root".into()),
            recursive: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        descendants
            .items
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["leaf", "mid"]
    );
    let roots = registry
        .list_thing_groups(ListThingGroupsQuery {
            recursive: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(roots.items.len(), 1);

    let refused = registry.delete_thing_group("mid", None).await.unwrap_err();
    assert!(matches!(refused, ServiceError::InvalidRequest(_)));
    assert!(registry.describe_thing_group("mid").await.is_ok());
    registry.delete_thing_group("leaf", None).await.unwrap();
    registry.delete_thing_group("mid", None).await.unwrap();
    registry.delete_thing_group("mid", None).await.unwrap();
}

#[tokio::test]
async fn hierarchy_depth_is_limited_to_seven() {
    let (registry, _dir) = registry();
    registry
        .create_thing_group(group("l1", None))
        .await
        .unwrap();
    for level in 2..=7 {
        let parent = format!("l{}", level - 1);
        registry
            .create_thing_group(group(&format!("l{level}"), Some(&parent)))
            .await
            .unwrap();
    }
    let too_deep = registry
        .create_thing_group(group("l8", Some("l7")))
        .await
        .unwrap_err();
    assert!(matches!(too_deep, ServiceError::InvalidRequest(_)));
    let orphan = registry
        .create_thing_group(group("x", Some("nope")))
        .await
        .unwrap_err();
    assert!(matches!(orphan, ServiceError::InvalidRequest(_)));
}

#[tokio::test]
async fn arns_resolve_only_in_this_account_and_tokens_are_checked() {
    let (registry, _dir) = registry();
    registry.create_thing(spec("dev1", &[])).await.unwrap();
    registry.create_thing_group(group("g", None)).await.unwrap();
    let group_arn = NameOrArn {
        name: None,
        arn: Some("arn:aws:iot:us-east-1:123456789012:thinggroup/g".into()),
    };
    let thing_arn = NameOrArn {
        name: None,
        arn: Some("arn:aws:iot:us-east-1:123456789012:thing/dev1".into()),
    };
    registry
        .add_thing_to_thing_group(group_arn, thing_arn, false)
        .await
        .unwrap();
    let foreign = NameOrArn {
        name: None,
        arn: Some("arn:aws:iot:us-east-1:999999999999:thing/dev1".into()),
    };
    assert!(matches!(
        registry
            .add_thing_to_thing_group(by_name("g"), foreign, false)
            .await,
        Err(ServiceError::InvalidRequest(_))
    ));
    let bad_token = registry
        .list_things(ListThingsQuery {
            next_token: Some("garbage!".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(bad_token, Err(ServiceError::InvalidRequest(_))));
}
