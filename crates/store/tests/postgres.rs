//! PostgreSQL-only behaviour the shared conformance suite cannot show: the URL selects the
//! schema, several nodes can start (and migrate) at once, and compare-and-swap holds when
//! writers race on separate connections.
//!
//! Uses the same server as `tests/conformance.rs` (`DROVER_TEST_POSTGRES_URL`, default the
//! local test server); each test works in its own schema and drops it.

use drover_core::registry::Thing;
use drover_core::time::Timestamp;
use drover_store::{CasOutcome, PostgresStore, Store, StoreError};

fn base_url() -> String {
    std::env::var("DROVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

async fn fresh_schema(prefix: &str) -> String {
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    PostgresStore::create_schema(&base_url(), &schema)
        .await
        .expect("PostgreSQL must be reachable");
    schema
}

async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must be reachable");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_selects_the_schema_even_with_an_odd_name() {
    // Upper case, a space and a quote: each needs its own layer of quoting to survive.
    let schema = fresh_schema("Drover \"Odd\"").await;
    let url = PostgresStore::url_with_schema(&base_url(), &schema);
    let store = PostgresStore::connect(&url).await.unwrap();
    store.setting_or_insert("account_id", "123").await.unwrap();
    drop(store);

    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    let row = raw_client()
        .await
        .query_one(
            &format!("SELECT value FROM {quoted}.settings WHERE key = 'account_id'"),
            &[],
        )
        .await
        .expect("the tables live in the selected schema");
    assert_eq!(row.get::<_, String>(0), "123");
    PostgresStore::drop_schema(&base_url(), &schema)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_clearly_when_the_schema_is_missing() {
    let url = PostgresStore::url_with_schema(&base_url(), "drover_no_such_schema");
    match PostgresStore::connect(&url).await {
        Err(StoreError::Backend(message)) => assert!(message.contains("no existing schema")),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("connect must fail when the schema does not exist"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let schema = fresh_schema("drover_migrate").await;
    let url = PostgresStore::url_with_schema(&base_url(), &schema);
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().unwrap();
    }
    let row = raw_client()
        .await
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT version), max(version) FROM {schema}.schema_migrations"
            ),
            &[],
        )
        .await
        .unwrap();
    // Each migration applied exactly once, and all of them.
    let (applied, distinct, latest) = (
        row.get::<_, i64>(0),
        row.get::<_, i64>(1),
        row.get::<_, i64>(2),
    );
    assert_eq!(applied, distinct);
    assert_eq!(applied, latest);
    assert!(latest >= 2);
    PostgresStore::drop_schema(&base_url(), &schema)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replacements_let_exactly_one_win() {
    let schema = fresh_schema("drover_cas").await;
    let url = PostgresStore::url_with_schema(&base_url(), &schema);
    let store = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
    let thing = Thing {
        name: "racer".into(),
        id: "id-racer".into(),
        type_name: None,
        attributes: [("round".to_string(), "0".to_string())].into(),
        version: 1,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    store.insert_thing(&thing).await.unwrap();

    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (store, mut next) = (store.clone(), thing.clone());
            next.version = 2;
            next.attributes = [("round".to_string(), i.to_string())].into();
            tokio::spawn(async move { (next.clone(), store.replace_thing(&next, 1).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        let (next, outcome) = writer.await.unwrap();
        match outcome.unwrap() {
            CasOutcome::Done => winners.push(next),
            CasOutcome::VersionMismatch => {}
            CasOutcome::NotFound => panic!("the thing exists"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer may win");
    let winner = winners.pop().expect("one winner");
    assert_eq!(
        store.get_thing("racer").await.unwrap().as_ref(),
        Some(&winner)
    );
    // The attribute index holds the winner's attributes alone, not a mix of rounds.
    let indexed = raw_client()
        .await
        .query(
            &format!("SELECT value FROM {schema}.thing_attributes WHERE thing_name = 'racer'"),
            &[],
        )
        .await
        .unwrap();
    let values: Vec<String> = indexed.iter().map(|r| r.get(0)).collect();
    assert_eq!(values, [winner.attributes["round"].clone()]);
    drop(store);
    PostgresStore::drop_schema(&base_url(), &schema)
        .await
        .unwrap();
}
