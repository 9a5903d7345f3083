//! The PostgreSQL store (scale-out): a connection pool, connecting and migrating, the schema
//! helpers tests use to isolate runs, and the mapping from PostgreSQL errors to [`StoreError`].
//!
//! Why no writer thread or group commit as in SQLite: PostgreSQL takes concurrent writers and
//! its WAL already group-commits across sessions, so every call simply borrows a pooled
//! connection. A write returns after its commit, which is durable under the server's default
//! `synchronous_commit=on`; drover never changes that setting.
//!
//! The schema is chosen with the standard `options=-c search_path=<schema>` URL parameter
//! (tokio-postgres forwards `options` in the startup packet, so every pooled connection gets
//! it); [`PostgresStore::url_with_schema`] writes it. Without it the server's default
//! search path applies (normally `public`).

mod devices;
mod jobs;
mod queries;
mod schema;
mod sessions;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::{StoreError, StoreResult};

/// Connections per node: enough to keep several API and MQTT calls in flight; the database's
/// `max_connections` (100 by default) is shared by every node.
const POOL_SIZE: usize = 16;

/// How long to wait for the server to accept a connection when the URL does not say
/// (`connect_timeout=`): an unreachable server should fail start-up, not hang it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL implementation of [`crate::Store`].
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Opens a pool to the database at `url` (a `postgres://` URL) and brings its schema up to
    /// date. Fails if the server is unreachable or the URL's search path names no existing
    /// schema.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut config = parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("drover");
        }
        // NoTls: drover talks to PostgreSQL on a local or private network (trust or password
        // auth). TLS to the database would need tokio-postgres-rustls; add it before pointing
        // drover at a server across an untrusted network.
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A broken connection shows up as an error on its next query; checking each
                // one with a round trip before every use would double the latency of reads.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        let store = Self { pool };
        {
            let mut client = store.client().await?;
            require_schema(&client).await?;
            schema::migrate(&mut client).await?;
        }
        Ok(store)
    }

    /// Creates the schema `schema` in the database at `base_url`; fails with
    /// [`StoreError::AlreadyExists`] if it exists.
    pub async fn create_schema(base_url: &str, schema: &str) -> StoreResult<()> {
        let client = connect_once(base_url).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA {}", quote_ident(schema)))
            .await
            .map_err(|e| match e.code() {
                Some(code) if *code == SqlState::DUPLICATE_SCHEMA => {
                    StoreError::AlreadyExists(schema.to_string())
                }
                _ => backend(e),
            })
    }

    /// Drops the schema `schema` and everything in it, if it exists.
    pub async fn drop_schema(base_url: &str, schema: &str) -> StoreResult<()> {
        let client = connect_once(base_url).await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(schema)
            ))
            .await
            .map_err(backend)
    }

    /// `base_url` (a `postgres://` URL) with its search path set to `schema` alone. Replaces
    /// any `options` parameter `base_url` had: tokio-postgres keeps the last one.
    pub fn url_with_schema(base_url: &str, schema: &str) -> String {
        // Two layers of quoting: the schema is a quoted identifier in the setting's value, and
        // the server splits `options` on whitespace unless a backslash escapes it.
        let setting = format!("search_path={}", quote_ident(schema));
        let mut option = String::from("-c ");
        for c in setting.chars() {
            if c == '\\' || c.is_whitespace() {
                option.push('\\');
            }
            option.push(c);
        }
        let separator = if base_url.contains('?') { '&' } else { '?' };
        format!("{base_url}{separator}options={}", percent_encode(&option))
    }

    /// Borrows a pooled connection.
    pub(crate) async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("no database connection: {}", describe(&e))))
    }
}

fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {}", describe(&e))))
}

/// Fails with a clear message when the search path names no existing schema: otherwise the
/// first `CREATE TABLE` of the migrations fails with "no schema has been selected".
async fn require_schema(client: &tokio_postgres::Client) -> StoreResult<()> {
    let row = client
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(backend)?;
    let current: Option<String> = row.try_get(0).map_err(backend)?;
    match current {
        Some(_) => Ok(()),
        None => Err(StoreError::Backend(
            "the search_path names no existing schema: create the schema first".into(),
        )),
    }
}

/// One unpooled connection for the schema helpers, which run outside any store.
async fn connect_once(url: &str) -> StoreResult<tokio_postgres::Client> {
    let config = parse_url(url)?;
    let (client, connection) = config.connect(NoTls).await.map_err(backend)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %describe(&e), "PostgreSQL connection failed");
        }
    });
    Ok(client)
}

/// `name` as a quoted SQL identifier, so any schema name is taken literally.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An error and its causes on one line: tokio-postgres's own message for a server error is
/// just "db error", with the server's message in the cause.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

pub(crate) fn backend(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

/// Maps a constraint failure to the store's error kinds.
pub(crate) fn constraint(e: tokio_postgres::Error, what: &str) -> StoreError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            StoreError::AlreadyExists(what.to_string())
        }
        Some(code) if *code == SqlState::FOREIGN_KEY_VIOLATION => {
            StoreError::MissingReference(what.to_string())
        }
        _ => backend(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_schema_sets_the_search_path_option() {
        let url = PostgresStore::url_with_schema("postgres://u@h:5432/db", "drover_1");
        assert_eq!(
            url,
            "postgres://u@h:5432/db?options=-c%20search_path%3D%22drover_1%22"
        );
        let config = parse_url(&url).expect("the URL stays a valid postgres URL");
        assert_eq!(config.get_options(), Some("-c search_path=\"drover_1\""));
    }

    #[test]
    fn url_with_schema_keeps_other_parameters_and_escapes_odd_names() {
        let url = PostgresStore::url_with_schema(
            "postgres://u@h/db?application_name=x",
            "My \"odd\" schema",
        );
        assert!(url.starts_with("postgres://u@h/db?application_name=x&options="));
        let config = parse_url(&url).expect("the URL stays a valid postgres URL");
        assert_eq!(config.get_application_name(), Some("x"));
        assert_eq!(
            config.get_options(),
            Some(r#"-c search_path="My\ ""odd""\ schema""#)
        );
    }
}
