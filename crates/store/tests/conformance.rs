//! Runs the store conformance suite against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `DROVER_TEST_POSTGRES_URL` (default: the local test server at
//! `postgres://postgres@127.0.0.1:5432/test`); each run creates its own schema and drops it.

use drover_store::{PostgresStore, SqliteStore, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("drover.db")).unwrap();
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reopens_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        use drover_store::Store;
        store.setting_or_insert("account_id", "123").await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    use drover_store::Store;
    assert_eq!(
        store.setting_or_insert("account_id", "456").await.unwrap(),
        "123"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let base = std::env::var("DROVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("drover_conformance_{}", uuid::Uuid::new_v4().simple());
    PostgresStore::create_schema(&base, &schema)
        .await
        .expect("PostgreSQL must be reachable");
    let url = PostgresStore::url_with_schema(&base, &schema);
    let store = PostgresStore::connect(&url).await.unwrap();
    conformance::run_all(&store).await;
    drop(store);
    PostgresStore::drop_schema(&base, &schema).await.unwrap();
}
