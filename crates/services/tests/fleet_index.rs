//! The fleet index and dynamic groups against a real SQLite store: SearchIndex (planned store
//! scans) returns exactly what the query matcher selects over every thing, membership follows
//! writes at once, and every change is announced.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use drover_core::arn::ArnScope;
use drover_core::indexing::{IndexField, IndexingConfiguration};
use drover_core::query;
use drover_core::registry::*;
use drover_services::dynamic_groups::DynamicGroupSpec;
use drover_services::index::IndexQuery;
use drover_services::registry::NameOrArn;
use drover_services::{FleetIndex, MembershipEvent, Registry, ServiceError, SystemClock};
use drover_store::{SharedStore, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Fixture {
    registry: Registry,
    index: FleetIndex,
    store: SharedStore,
    _dir: tempfile::TempDir,
}

async fn fixture(custom: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
    let registry = Registry::new(
        store.clone(),
        ArnScope::new("us-east-1", "123456789012"),
        Arc::new(SystemClock),
    );
    let index = FleetIndex::new(store.clone(), registry.membership().clone());
    let mut configuration = IndexingConfiguration::default();
    configuration
        .thing_indexing_configuration
        .thing_indexing_mode = "REGISTRY".into();
    configuration.thing_indexing_configuration.custom_fields = custom
        .iter()
        .map(|(name, kind)| IndexField {
            name: Some(name.to_string()),
            field_type: Some(kind.to_string()),
        })
        .collect();
    index.update_configuration(configuration).await.unwrap();
    Fixture {
        registry,
        index,
        store,
        _dir: dir,
    }
}

fn spec(name: &str, pairs: &[(&str, &str)]) -> ThingSpec {
    ThingSpec {
        name: name.into(),
        type_name: None,
        attributes: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn dynamic(name: &str, query: &str) -> DynamicGroupSpec {
    DynamicGroupSpec {
        group: ThingGroupSpec {
            name: name.into(),
            ..Default::default()
        },
        query_string: query.into(),
        ..Default::default()
    }
}

async fn members(f: &Fixture, group: &str) -> Vec<String> {
    f.registry.membership().all_members(group).await.unwrap()
}

/// A random query over the fields and values the random things use.
fn random_query(rng: &mut StdRng, depth: u32) -> String {
    let values = [
        "1.0", "1.5", "2.0", "10.0", "abc", "ABC", "a", "b*", "*1", "t-1?", "1*",
    ];
    let fields = [
        "thingName",
        "attributes.app_version",
        "attributes.n",
        "attributes.colour",
        "thingGroupNames",
        "thingTypeName",
    ];
    if depth == 0 || rng.random_range(0..3) == 0 {
        let field = fields[rng.random_range(0..fields.len())];
        let value = values[rng.random_range(0..values.len())];
        let literal = value.trim_end_matches(['*', '?']).trim_start_matches('*');
        let literal = if literal.is_empty() { "1" } else { literal };
        return match rng.random_range(0..6) {
            0 => format!("{field}:{value}"),
            1 => format!("{field} < {literal}"),
            2 => format!("{field} >= {literal}"),
            3 => format!("{field}:[{literal} TO *]"),
            4 => format!("{field}:*"),
            _ => value.to_string(),
        };
    }
    let a = random_query(rng, depth - 1);
    let b = random_query(rng, depth - 1);
    match rng.random_range(0..4) {
        0 => format!("({a}) AND ({b})"),
        1 => format!("({a}) OR ({b})"),
        2 => format!("NOT ({a})"),
        _ => format!("({a}) ({b})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_index_agrees_with_the_matcher_over_every_thing() {
    let f = fixture(&[("attributes.n", "Number")]).await;
    let mut rng = StdRng::seed_from_u64(2026);
    f.registry
        .create_thing_type(ThingTypeSpec {
            name: "Pump".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    f.registry
        .create_thing_group(ThingGroupSpec {
            name: "g1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let values = ["1.0", "1.5", "2.0", "10.0", "abc", "ABC", "b2", "11"];
    for i in 0..60 {
        let mut pairs = Vec::new();
        for key in ["app_version", "n", "colour"] {
            if rng.random_range(0..4) != 0 {
                pairs.push((key, values[rng.random_range(0..values.len())]));
            }
        }
        let mut thing = spec(&format!("{}-{i}", ["t", "T", "b"][i % 3]), &pairs);
        if i % 4 == 0 {
            thing.type_name = Some("Pump".into());
        }
        f.registry.create_thing(thing).await.unwrap();
        if i % 5 == 0 {
            f.registry
                .add_thing_to_thing_group(
                    NameOrArn {
                        name: Some("g1".into()),
                        arn: None,
                    },
                    NameOrArn {
                        name: Some(format!("{}-{i}", ["t", "T", "b"][i % 3])),
                        arn: None,
                    },
                    false,
                )
                .await
                .unwrap();
        }
    }
    let schema = f.index.configuration().await.unwrap().schema();
    let all_names = f
        .store
        .index_candidates(&query::CandidateScan::All, None, None)
        .await
        .unwrap();
    let everything = f.store.index_documents(&all_names).await.unwrap();
    let mut checked = 0;
    for _ in 0..300 {
        let text = random_query(&mut rng, 3);
        let Ok((_, matcher)) = query::compile(&text, &schema) else {
            continue; // a typed value that does not fit; the parser tests cover errors
        };
        let expected: Vec<String> = everything
            .iter()
            .filter(|t| matcher.matches(t, &schema))
            .map(|t| t.name.clone())
            .collect();
        // Page through SearchIndex with small pages to exercise tokens too.
        let request = IndexQuery {
            query_string: text.clone(),
            ..Default::default()
        };
        let mut got = Vec::new();
        let mut token = None;
        loop {
            let page = f
                .index
                .search(&request, token.as_deref(), Some(7))
                .await
                .unwrap();
            got.extend(page.things.into_iter().map(|t| t.name));
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(got, expected, "query {text}");
        checked += 1;
    }
    assert!(checked > 200, "only {checked} random queries compiled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_follows_writes_and_is_announced() {
    let f = fixture(&[("attributes.app_version", "Version")]).await;
    let mut events = f.registry.membership().subscribe();
    for (name, version) in [("a", "1.9"), ("b", "1.10"), ("c", "2.0")] {
        f.registry
            .create_thing(spec(name, &[("app_version", version)]))
            .await
            .unwrap();
    }
    f.registry
        .create_dynamic_thing_group(dynamic("old", "attributes.app_version < 1.10"))
        .await
        .unwrap();
    assert_eq!(members(&f, "old").await, ["a"]);
    let group = f.registry.describe_thing_group("old").await.unwrap().group;
    assert_eq!(group.dynamic.unwrap().status, "ACTIVE");
    assert_eq!(
        events.recv().await.unwrap(),
        MembershipEvent {
            group: "old".into(),
            thing: "a".into(),
            joined: true
        }
    );

    f.registry
        .update_thing(
            "b",
            ThingUpdate {
                attribute_payload: Some(AttributePayload {
                    attributes: Some([("app_version".to_string(), "1.2".to_string())].into()),
                    merge: true,
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(members(&f, "old").await, ["a", "b"]);
    assert_eq!(
        events.recv().await.unwrap(),
        MembershipEvent {
            group: "old".into(),
            thing: "b".into(),
            joined: true
        }
    );
    f.registry.delete_thing("a", None).await.unwrap();
    assert_eq!(members(&f, "old").await, ["b"]);
    assert_eq!(
        events.recv().await.unwrap(),
        MembershipEvent {
            group: "old".into(),
            thing: "a".into(),
            joined: false
        }
    );

    // A bad query is refused with its position and creates nothing.
    let err = f
        .registry
        .create_dynamic_thing_group(dynamic("bad", "(attributes.app_version < 2"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::InvalidQuery(m) if m.contains("position 28")),
        "{err:?}"
    );
    assert!(f.registry.describe_thing_group("bad").await.is_err());

    // Deleting the group announces every member leaving.
    f.registry
        .delete_dynamic_thing_group("old", None)
        .await
        .unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        MembershipEvent {
            group: "old".into(),
            thing: "b".into(),
            joined: false
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_joins_respect_the_ten_group_limit() {
    let f = fixture(&[]).await;
    f.registry
        .create_thing(spec("busy", &[("k", "v")]))
        .await
        .unwrap();
    for g in 0..10 {
        let name = format!("static-{g}");
        f.registry
            .create_thing_group(ThingGroupSpec {
                name: name.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        f.registry
            .add_thing_to_thing_group(
                NameOrArn {
                    name: Some(name),
                    arn: None,
                },
                NameOrArn {
                    name: Some("busy".into()),
                    arn: None,
                },
                false,
            )
            .await
            .unwrap();
    }
    f.registry
        .create_thing(spec("free", &[("k", "v")]))
        .await
        .unwrap();
    f.registry
        .create_dynamic_thing_group(dynamic("by-k", "attributes.k:v"))
        .await
        .unwrap();
    assert_eq!(members(&f, "by-k").await, ["free"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reconciles_memberships_a_crash_missed() {
    let f = fixture(&[]).await;
    f.registry
        .create_thing(spec("x", &[("k", "1")]))
        .await
        .unwrap();
    f.registry
        .create_dynamic_thing_group(dynamic("k1", "attributes.k:1"))
        .await
        .unwrap();
    // Simulate a crash between a thing write and its membership change: write the thing
    // straight to the store, behind the registry's back.
    let mut thing = f.store.get_thing("x").await.unwrap().unwrap();
    thing.attributes.insert("k".into(), "2".into());
    thing.version += 1;
    f.store.replace_thing(&thing, 1).await.unwrap();
    assert_eq!(members(&f, "k1").await, ["x"]);
    let summary = f.registry.membership().reconcile_all().await.unwrap();
    assert_eq!(summary.left, 1);
    assert!(members(&f, "k1").await.is_empty());
}
