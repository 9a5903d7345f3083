//! Fleet-index benchmark: 100,000 things with 5 attributes each in SQLite, 50 dynamic groups.
//!
//! Prints, for the goals: SearchIndex p50/p99 for selective and broad queries, the cost
//! of re-evaluating one thing's dynamic-group membership after an attribute update (and the
//! whole durable UpdateThing around it), and the time to build a new dynamic group over all
//! things. Run with `cargo bench -p drover-services --bench fleet_index`; set
//! `FLEET_BENCH_THINGS` for another fleet size. Figures go to BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_core::arn::ArnScope;
use drover_core::indexing::{IndexField, IndexingConfiguration};
use drover_core::registry::{AttributePayload, Attributes, Thing, ThingGroupSpec, ThingUpdate};
use drover_services::dynamic_groups::DynamicGroupSpec;
use drover_services::index::IndexQuery;
use drover_services::{Clock, FleetIndex, Registry, SystemClock};
use drover_store::{SharedStore, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const GROUPS: usize = 50;
const SEARCHES: usize = 200;
const UPDATES: usize = 500;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn report(label: &str, samples: &mut [Duration], goal: &str) {
    let p50 = percentile(samples, 0.50);
    let p99 = percentile(samples, 0.99);
    println!(
        "{label:<58} p50 {:>11}  p99 {:>11}  ({} runs; goal {goal})",
        ms(p50),
        ms(p99),
        samples.len()
    );
}

fn thing(i: usize, rng: &mut StdRng) -> Thing {
    let versions = ["1.0", "1.5", "1.9", "1.10", "2.0", "2.1", "10.0"];
    let mut attributes = Attributes::new();
    attributes.insert(
        "app_version".into(),
        versions[rng.random_range(0..versions.len())].into(),
    );
    attributes.insert("site".into(), format!("site-{}", rng.random_range(0..100)));
    attributes.insert("model".into(), format!("model-{}", rng.random_range(0..20)));
    attributes.insert("serial".into(), format!("SN-{i:07}"));
    attributes.insert("batch".into(), format!("{}", rng.random_range(0..1000)));
    Thing {
        name: format!("dev-{i:06}"),
        id: format!("00000000-0000-4000-8000-{i:012}"),
        type_name: None,
        attributes,
        version: 1,
        created_at: SystemClock.now(),
        updated_at: SystemClock.now(),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count: usize = std::env::var("FLEET_BENCH_THINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
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
    configuration.thing_indexing_configuration.custom_fields = vec![IndexField {
        name: Some("attributes.batch".into()),
        field_type: Some("Number".into()),
    }];
    index.update_configuration(configuration).await.unwrap();

    println!(
        "fleet index benchmark: {count} things x 5 attributes, SQLite (WAL, synchronous=FULL), {GROUPS} dynamic groups"
    );
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(42);
    let things: Vec<Thing> = (0..count).map(|i| thing(i, &mut rng)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in things.chunks(count.div_ceil(64)) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for thing in chunk {
                store.insert_thing(&thing).await.unwrap();
            }
        });
    }
    tasks.join_all().await;
    println!(
        "loaded {count} things in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 50 dynamic groups of assorted shapes; each build is timed.
    let mut builds = Vec::new();
    for g in 0..GROUPS {
        let query = match g % 5 {
            0 => format!("attributes.site:site-{g}"),
            1 => format!(
                "attributes.model:model-{} AND attributes.app_version < 2.0",
                g % 20
            ),
            2 => format!("attributes.batch < {}", g * 5),
            3 => format!("thingName:dev-0{g:02}*"),
            _ => format!(
                "attributes.site:site-{g} OR attributes.model:model-{}",
                g % 20
            ),
        };
        let t = Instant::now();
        registry
            .create_dynamic_thing_group(DynamicGroupSpec {
                group: ThingGroupSpec {
                    name: format!("dyn-{g:02}"),
                    ..Default::default()
                },
                query_string: query,
                ..Default::default()
            })
            .await
            .unwrap();
        builds.push(t.elapsed());
    }
    report(
        "build one dynamic group (the 50 setup groups)",
        &mut builds,
        "< 2 s",
    );
    // What every start does (see drover_services::membership): all groups in one pass.
    let t = Instant::now();
    let summary = registry.membership().reconcile_all().await.unwrap();
    println!(
        "{:<58} {:>11}  (read+evaluate {}; {} things; nothing to change)",
        format!("start-up reconcile of all {GROUPS} groups"),
        ms(t.elapsed()),
        ms(summary.evaluate_time),
        summary.things_evaluated
    );
    for (name, query) in [
        ("build-broad", "attributes.app_version < 2.0"),
        ("build-all-scan", "NOT attributes.site:site-7"),
        ("build-selective", "attributes.serial:SN-0004242"),
    ] {
        let t = Instant::now();
        registry
            .create_dynamic_thing_group(DynamicGroupSpec {
                group: ThingGroupSpec {
                    name: name.into(),
                    ..Default::default()
                },
                query_string: query.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let total = t.elapsed();
        let members = registry.membership().all_members(name).await.unwrap().len();
        // Rebuilding again changes nothing, so it times the read-and-evaluate phase alone.
        let again = registry.membership().rebuild_group(name).await.unwrap();
        println!(
            "{:<58} {:>11}  ({members} members; read+evaluate {}; goal < 2 s)",
            format!("build new group `{query}`"),
            ms(total),
            ms(again.evaluate_time)
        );
        registry
            .delete_dynamic_thing_group(name, None)
            .await
            .unwrap();
    }

    let search = |query: &'static str| {
        let index = index.clone();
        async move {
            let request = IndexQuery {
                query_string: query.into(),
                ..Default::default()
            };
            let mut samples = Vec::new();
            let mut found = 0;
            for _ in 0..SEARCHES {
                let t = Instant::now();
                let page = index.search(&request, None, Some(100)).await.unwrap();
                samples.push(t.elapsed());
                found = page.things.len();
            }
            (samples, found)
        }
    };
    for (label, query, goal) in [
        (
            "selective: attribute equality",
            "attributes.serial:SN-0042424",
            "p99 < 50 ms",
        ),
        (
            "selective: thing-name prefix",
            "thingName:dev-04242*",
            "p99 < 50 ms",
        ),
        (
            "selective: two attributes",
            "attributes.site:site-42 AND attributes.model:model-7",
            "p99 < 50 ms",
        ),
        (
            "broad: lexical range, first 100",
            "attributes.app_version < 2.0",
            "none",
        ),
        (
            "broad: negation (full scan), first 100",
            "NOT attributes.site:site-1",
            "none",
        ),
        (
            "OR of two attribute values (union)",
            "attributes.site:site-3 OR attributes.serial:SN-0000001",
            "none",
        ),
    ] {
        let (mut samples, found) = search(query).await;
        report(
            &format!("SearchIndex {label} [{found} hits]"),
            &mut samples,
            goal,
        );
    }

    // One attribute update: the membership re-evaluation alone, and the whole UpdateThing.
    let mut reevaluations = Vec::new();
    let mut updates = Vec::new();
    let mut rng = StdRng::seed_from_u64(7);
    let versions = ["1.0", "2.0", "1.5", "2.1"];
    for u in 0..UPDATES {
        let name = format!("dev-{:06}", rng.random_range(0..count));
        let t = Instant::now();
        registry
            .update_thing(
                &name,
                ThingUpdate {
                    attribute_payload: Some(AttributePayload {
                        attributes: Some(
                            [(
                                "app_version".to_string(),
                                versions[u % versions.len()].to_string(),
                            )]
                            .into(),
                        ),
                        merge: true,
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        updates.push(t.elapsed());
        let t = Instant::now();
        registry.membership().thing_changed(&name).await.unwrap();
        reevaluations.push(t.elapsed());
    }
    report(
        &format!("re-evaluate one thing against {GROUPS} dynamic groups"),
        &mut reevaluations,
        "< 1 ms",
    );
    report(
        "UpdateThing incl. re-evaluation and fsync'd membership change",
        &mut updates,
        "none",
    );
}
