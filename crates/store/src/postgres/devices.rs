//! The SQL behind the device-identity part of [`crate::Store`] for PostgreSQL. It answers as
//! SQLite's `devices.rs` does; `queries.rs` delegates here.
//!
//! Concurrency: a conditional write locks the row it hinges on (`FOR UPDATE`) before checking,
//! so a concurrent attach (whose foreign key takes a share lock on the same row) waits for it,
//! and the check and the change hold together as they do under SQLite's single writer.

use deadpool_postgres::GenericClient;
use drover_core::presence::Presence;
use drover_core::time::Timestamp;
use tokio_postgres::Row;

use super::{PostgresStore, backend, constraint};
use crate::*;

const CERT_COLUMNS: &str = "id, pem, status, ca_certificate_id, mode, not_before, not_after, \
                            created_at, updated_at, version, generation_id";
const CA_COLUMNS: &str = "id, pem, subject, status, auto_registration, registration_config, mode, \
                          not_before, not_after, created_at, updated_at, version, generation_id";
const PRINCIPAL_COLUMNS: &str = "thing_name, certificate_id, exclusive, attached_at";

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

fn certificate_from_row(row: &Row) -> StoreResult<CertificateRecord> {
    let get = |e| backend(e);
    Ok(CertificateRecord {
        id: row.try_get(0).map_err(get)?,
        pem: row.try_get(1).map_err(get)?,
        status: row.try_get(2).map_err(get)?,
        ca_certificate_id: row.try_get(3).map_err(get)?,
        mode: row.try_get(4).map_err(get)?,
        not_before: Timestamp(row.try_get(5).map_err(get)?),
        not_after: Timestamp(row.try_get(6).map_err(get)?),
        created_at: Timestamp(row.try_get(7).map_err(get)?),
        updated_at: Timestamp(row.try_get(8).map_err(get)?),
        version: row.try_get(9).map_err(get)?,
        generation_id: row.try_get(10).map_err(get)?,
    })
}

fn ca_from_row(row: &Row) -> StoreResult<CaCertificateRecord> {
    let get = |e| backend(e);
    Ok(CaCertificateRecord {
        id: row.try_get(0).map_err(get)?,
        pem: row.try_get(1).map_err(get)?,
        subject: row.try_get(2).map_err(get)?,
        status: row.try_get(3).map_err(get)?,
        auto_registration: row.try_get(4).map_err(get)?,
        registration_config: row.try_get(5).map_err(get)?,
        mode: row.try_get(6).map_err(get)?,
        not_before: Timestamp(row.try_get(7).map_err(get)?),
        not_after: Timestamp(row.try_get(8).map_err(get)?),
        created_at: Timestamp(row.try_get(9).map_err(get)?),
        updated_at: Timestamp(row.try_get(10).map_err(get)?),
        version: row.try_get(11).map_err(get)?,
        generation_id: row.try_get(12).map_err(get)?,
    })
}

fn principal_from_row(row: &Row) -> StoreResult<ThingPrincipal> {
    Ok(ThingPrincipal {
        thing_name: row.try_get(0).map_err(backend)?,
        certificate_id: row.try_get(1).map_err(backend)?,
        exclusive: row.try_get(2).map_err(backend)?,
        attached_at: Timestamp(row.try_get(3).map_err(backend)?),
    })
}

fn presence_from_row(row: &Row) -> StoreResult<Presence> {
    Ok(Presence {
        client_id: row.try_get(0).map_err(backend)?,
        connected: row.try_get(1).map_err(backend)?,
        timestamp_ms: row.try_get(2).map_err(backend)?,
        disconnect_reason: row.try_get(3).map_err(backend)?,
        session_identifier: row.try_get(4).map_err(backend)?,
        version: row.try_get(5).map_err(backend)?,
    })
}

fn string_from_row(row: &Row) -> StoreResult<String> {
    row.try_get(0).map_err(backend)
}

fn fetch_limit(page: &PageRequest) -> i64 {
    i64::try_from(page.limit)
        .unwrap_or(i64::MAX)
        .saturating_add(1)
}

async fn query<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    let rows = client.query(&stmt, params).await.map_err(backend)?;
    rows.iter().map(map).collect()
}

async fn query_opt<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, params)
        .await
        .map_err(backend)?
        .as_ref()
        .map(map)
        .transpose()
}

async fn execute(client: &impl GenericClient, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    client.execute(&stmt, params).await.map_err(backend)
}

async fn exists(client: &impl GenericClient, sql: &str, params: &[Param<'_>]) -> StoreResult<bool> {
    Ok(query_opt(client, sql, params, |_| Ok(())).await?.is_some())
}

fn bigint(row: &Row) -> StoreResult<i64> {
    row.try_get(0).map_err(backend)
}

/// A keyset page in creation order, as SQLite's `created_page`.
async fn created_page<T>(
    client: &impl GenericClient,
    table: &str,
    columns: &str,
    filter: Option<(&str, &str)>,
    page: &PageRequest,
    ascending: bool,
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let after = page.after.as_deref().and_then(parse_created_key);
    let limit = fetch_limit(page);
    let mut params: Vec<Param<'_>> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some((column, value)) = &filter {
        params.push(value);
        conditions.push(format!("{column} = ${}", params.len()));
    }
    if let Some((at, id)) = &after {
        params.push(at);
        params.push(id);
        let op = if ascending { ">" } else { "<" };
        conditions.push(format!(
            "(created_at, id) {op} (${}, ${})",
            params.len() - 1,
            params.len()
        ));
    }
    let order = if ascending { "ASC" } else { "DESC" };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    params.push(&limit);
    let sql = format!(
        "SELECT {columns} FROM {table}{filter} ORDER BY created_at {order}, id {order} LIMIT ${}",
        params.len()
    );
    query(client, &sql, &params, map).await
}

async fn version_of(
    client: &impl GenericClient,
    table: &str,
    id: &str,
) -> StoreResult<Option<i64>> {
    query_opt(
        client,
        &format!("SELECT version FROM {table} WHERE id = $1"),
        &[&id],
        bigint,
    )
    .await
}

pub async fn insert_certificate(store: &PostgresStore, c: &CertificateRecord) -> StoreResult<()> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO certificates ({CERT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .await
        .map_err(backend)?;
    client
        .execute(
            &stmt,
            &[
                &c.id,
                &c.pem,
                &c.status,
                &c.ca_certificate_id,
                &c.mode,
                &c.not_before.0,
                &c.not_after.0,
                &c.created_at.0,
                &c.updated_at.0,
                &c.version,
                &c.generation_id,
            ],
        )
        .await
        .map_err(|e| constraint(e, &c.id))?;
    Ok(())
}

pub async fn get_certificate(
    store: &PostgresStore,
    id: &str,
) -> StoreResult<Option<CertificateRecord>> {
    let client = store.client().await?;
    query_opt(
        &client,
        &format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1"),
        &[&id],
        certificate_from_row,
    )
    .await
}

pub async fn replace_certificate(
    store: &PostgresStore,
    c: &CertificateRecord,
    expected_version: i64,
) -> StoreResult<CasOutcome> {
    let client = store.client().await?;
    let n = execute(
        &client,
        "UPDATE certificates SET status = $2, ca_certificate_id = $3, mode = $4,
            updated_at = $5, version = $6, generation_id = $7
         WHERE id = $1 AND version = $8",
        &[
            &c.id,
            &c.status,
            &c.ca_certificate_id,
            &c.mode,
            &c.updated_at.0,
            &c.version,
            &c.generation_id,
            &expected_version,
        ],
    )
    .await?;
    if n > 0 {
        return Ok(CasOutcome::Done);
    }
    Ok(match version_of(&client, "certificates", &c.id).await? {
        None => CasOutcome::NotFound,
        Some(_) => CasOutcome::VersionMismatch,
    })
}

pub async fn delete_certificate(
    store: &PostgresStore,
    id: &str,
    expected_version: i64,
    detach_policies: bool,
) -> StoreResult<DeleteOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let version = query_opt(
        &tx,
        "SELECT version FROM certificates WHERE id = $1 FOR UPDATE",
        &[&id],
        bigint,
    )
    .await?;
    match version {
        None => return Ok(DeleteOutcome::NotFound),
        Some(v) if v != expected_version => return Ok(DeleteOutcome::VersionMismatch),
        Some(_) => {}
    }
    if exists(
        &tx,
        "SELECT 1 FROM thing_principals WHERE certificate_id = $1 LIMIT 1",
        &[&id],
    )
    .await?
    {
        return Ok(DeleteOutcome::AttachedToThing);
    }
    if detach_policies {
        execute(
            &tx,
            "DELETE FROM policy_targets WHERE certificate_id = $1",
            &[&id],
        )
        .await?;
    } else if exists(
        &tx,
        "SELECT 1 FROM policy_targets WHERE certificate_id = $1 LIMIT 1",
        &[&id],
    )
    .await?
    {
        return Ok(DeleteOutcome::PoliciesAttached);
    }
    execute(&tx, "DELETE FROM certificates WHERE id = $1", &[&id]).await?;
    tx.commit().await.map_err(backend)?;
    Ok(DeleteOutcome::Done)
}

pub async fn list_certificates(
    store: &PostgresStore,
    ca_certificate_id: Option<&str>,
    page: &PageRequest,
    ascending: bool,
) -> StoreResult<Page<CertificateRecord>> {
    let client = store.client().await?;
    let rows = created_page(
        &client,
        "certificates",
        CERT_COLUMNS,
        ca_certificate_id.map(|ca| ("ca_certificate_id", ca)),
        page,
        ascending,
        certificate_from_row,
    )
    .await?;
    Ok(Page::from_rows(rows, page.limit, |c| {
        created_key(c.created_at, &c.id)
    }))
}

pub async fn insert_ca_certificate(
    store: &PostgresStore,
    c: &CaCertificateRecord,
) -> StoreResult<()> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO ca_certificates ({CA_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .await
        .map_err(backend)?;
    client
        .execute(
            &stmt,
            &[
                &c.id,
                &c.pem,
                &c.subject,
                &c.status,
                &c.auto_registration,
                &c.registration_config,
                &c.mode,
                &c.not_before.0,
                &c.not_after.0,
                &c.created_at.0,
                &c.updated_at.0,
                &c.version,
                &c.generation_id,
            ],
        )
        .await
        .map_err(|e| constraint(e, &c.id))?;
    Ok(())
}

pub async fn get_ca_certificate(
    store: &PostgresStore,
    id: &str,
) -> StoreResult<Option<CaCertificateRecord>> {
    let client = store.client().await?;
    query_opt(
        &client,
        &format!("SELECT {CA_COLUMNS} FROM ca_certificates WHERE id = $1"),
        &[&id],
        ca_from_row,
    )
    .await
}

pub async fn find_ca_certificates(
    store: &PostgresStore,
    subject: &str,
) -> StoreResult<Vec<CaCertificateRecord>> {
    let client = store.client().await?;
    query(
        &client,
        &format!(
            "SELECT {CA_COLUMNS} FROM ca_certificates WHERE subject = $1 ORDER BY created_at, id"
        ),
        &[&subject],
        ca_from_row,
    )
    .await
}

pub async fn replace_ca_certificate(
    store: &PostgresStore,
    c: &CaCertificateRecord,
    expected_version: i64,
) -> StoreResult<CasOutcome> {
    let client = store.client().await?;
    let n = execute(
        &client,
        "UPDATE ca_certificates SET status = $2, auto_registration = $3,
            registration_config = $4, updated_at = $5, version = $6, generation_id = $7
         WHERE id = $1 AND version = $8",
        &[
            &c.id,
            &c.status,
            &c.auto_registration,
            &c.registration_config,
            &c.updated_at.0,
            &c.version,
            &c.generation_id,
            &expected_version,
        ],
    )
    .await?;
    if n > 0 {
        return Ok(CasOutcome::Done);
    }
    Ok(match version_of(&client, "ca_certificates", &c.id).await? {
        None => CasOutcome::NotFound,
        Some(_) => CasOutcome::VersionMismatch,
    })
}

pub async fn delete_ca_certificate(
    store: &PostgresStore,
    id: &str,
    expected_version: i64,
) -> StoreResult<CasOutcome> {
    let client = store.client().await?;
    let n = execute(
        &client,
        "DELETE FROM ca_certificates WHERE id = $1 AND version = $2",
        &[&id, &expected_version],
    )
    .await?;
    if n > 0 {
        return Ok(CasOutcome::Done);
    }
    Ok(match version_of(&client, "ca_certificates", id).await? {
        None => CasOutcome::NotFound,
        Some(_) => CasOutcome::VersionMismatch,
    })
}

pub async fn list_ca_certificates(
    store: &PostgresStore,
    page: &PageRequest,
    ascending: bool,
) -> StoreResult<Page<CaCertificateRecord>> {
    let client = store.client().await?;
    let rows = created_page(
        &client,
        "ca_certificates",
        CA_COLUMNS,
        None,
        page,
        ascending,
        ca_from_row,
    )
    .await?;
    Ok(Page::from_rows(rows, page.limit, |c| {
        created_key(c.created_at, &c.id)
    }))
}

pub async fn attach_thing_principal(
    store: &PostgresStore,
    thing: &str,
    certificate_id: &str,
    exclusive: bool,
    at: Timestamp,
) -> StoreResult<AttachOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    // The certificate row's lock orders attaches of one certificate, so exclusivity holds.
    let certificate = exists(
        &tx,
        "SELECT 1 FROM certificates WHERE id = $1 FOR UPDATE",
        &[&certificate_id],
    )
    .await?;
    if !certificate || !exists(&tx, "SELECT 1 FROM things WHERE name = $1", &[&thing]).await? {
        return Ok(AttachOutcome::NotFound);
    }
    let others = query(
        &tx,
        &format!("SELECT {PRINCIPAL_COLUMNS} FROM thing_principals WHERE certificate_id = $1"),
        &[&certificate_id],
        principal_from_row,
    )
    .await?;
    let mine = others.iter().find(|p| p.thing_name == thing);
    let elsewhere = others.iter().filter(|p| p.thing_name != thing);
    if elsewhere.clone().any(|p| p.exclusive) || (exclusive && elsewhere.count() > 0) {
        return Ok(AttachOutcome::ExclusiveConflict);
    }
    if mine.is_some_and(|m| m.exclusive == exclusive) {
        return Ok(AttachOutcome::AlreadyAttached);
    }
    let inserted = tx
        .execute(
            "INSERT INTO thing_principals (thing_name, certificate_id, exclusive, attached_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (thing_name, certificate_id) DO UPDATE SET exclusive = excluded.exclusive",
            &[&thing, &certificate_id, &exclusive, &at.0],
        )
        .await;
    match inserted.map_err(|e| constraint(e, thing)) {
        Ok(_) => {}
        // The thing was deleted since we looked.
        Err(StoreError::MissingReference(_)) => return Ok(AttachOutcome::NotFound),
        Err(e) => return Err(e),
    }
    tx.commit().await.map_err(backend)?;
    Ok(AttachOutcome::Attached)
}

pub async fn detach_thing_principal(
    store: &PostgresStore,
    thing: &str,
    certificate_id: &str,
) -> StoreResult<bool> {
    let client = store.client().await?;
    let n = execute(
        &client,
        "DELETE FROM thing_principals WHERE thing_name = $1 AND certificate_id = $2",
        &[&thing, &certificate_id],
    )
    .await?;
    Ok(n > 0)
}

pub async fn get_thing_principal(
    store: &PostgresStore,
    thing: &str,
    certificate_id: &str,
) -> StoreResult<Option<ThingPrincipal>> {
    let client = store.client().await?;
    query_opt(
        &client,
        &format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM thing_principals
             WHERE thing_name = $1 AND certificate_id = $2"
        ),
        &[&thing, &certificate_id],
        principal_from_row,
    )
    .await
}

async fn principal_page(
    store: &PostgresStore,
    key_column: &'static str,
    order_column: &'static str,
    key: &str,
    page: &PageRequest,
) -> StoreResult<Page<ThingPrincipal>> {
    let client = store.client().await?;
    let after = page.after.clone().unwrap_or_default();
    let limit = fetch_limit(page);
    let rows = query(
        &client,
        &format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM thing_principals
             WHERE {key_column} = $1 AND {order_column} > $2
             ORDER BY {order_column} LIMIT $3"
        ),
        &[&key, &after, &limit],
        principal_from_row,
    )
    .await?;
    Ok(Page::from_rows(rows, page.limit, |p| {
        if order_column == "thing_name" {
            p.thing_name.clone()
        } else {
            p.certificate_id.clone()
        }
    }))
}

pub async fn list_thing_principals(
    store: &PostgresStore,
    thing: &str,
    page: &PageRequest,
) -> StoreResult<Page<ThingPrincipal>> {
    principal_page(store, "thing_name", "certificate_id", thing, page).await
}

pub async fn list_principal_things(
    store: &PostgresStore,
    certificate_id: &str,
    page: &PageRequest,
) -> StoreResult<Page<ThingPrincipal>> {
    principal_page(store, "certificate_id", "thing_name", certificate_id, page).await
}

const POLICY_SELECT: &str = "SELECT p.name, p.default_version, v.document, p.created_at, \
                             p.updated_at, p.generation_id FROM policies p \
                             JOIN policy_versions v ON v.policy_name = p.name AND v.version = p.default_version";

fn policy_from_row(row: &Row) -> StoreResult<PolicyRecord> {
    Ok(PolicyRecord {
        name: row.try_get(0).map_err(backend)?,
        default_version: row.try_get(1).map_err(backend)?,
        document: row.try_get(2).map_err(backend)?,
        created_at: Timestamp(row.try_get(3).map_err(backend)?),
        updated_at: Timestamp(row.try_get(4).map_err(backend)?),
        generation_id: row.try_get(5).map_err(backend)?,
    })
}

pub async fn insert_policy(store: &PostgresStore, p: &PolicyRecord) -> StoreResult<()> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute(
        "INSERT INTO policies (name, default_version, next_version, created_at, updated_at, generation_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &p.name,
            &p.default_version,
            &(p.default_version + 1),
            &p.created_at.0,
            &p.updated_at.0,
            &p.generation_id,
        ],
    )
    .await
    .map_err(|e| constraint(e, &p.name))?;
    tx.execute(
        "INSERT INTO policy_versions (policy_name, version, document, created_at)
         VALUES ($1, $2, $3, $4)",
        &[&p.name, &p.default_version, &p.document, &p.created_at.0],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub async fn get_policy(store: &PostgresStore, name: &str) -> StoreResult<Option<PolicyRecord>> {
    let client = store.client().await?;
    query_opt(
        &client,
        &format!("{POLICY_SELECT} WHERE p.name = $1"),
        &[&name],
        policy_from_row,
    )
    .await
}

pub async fn list_policies(
    store: &PostgresStore,
    page: &PageRequest,
    ascending: bool,
) -> StoreResult<Page<String>> {
    let client = store.client().await?;
    let (op, order) = if ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    let limit = fetch_limit(page);
    let rows =
        match &page.after {
            Some(after) => query(
                &client,
                &format!(
                    "SELECT name FROM policies WHERE name {op} $1 ORDER BY name {order} LIMIT $2"
                ),
                &[after, &limit],
                string_from_row,
            )
            .await?,
            None => {
                query(
                    &client,
                    &format!("SELECT name FROM policies ORDER BY name {order} LIMIT $1"),
                    &[&limit],
                    string_from_row,
                )
                .await?
            }
        };
    Ok(Page::from_rows(rows, page.limit, String::clone))
}

pub async fn delete_policy(store: &PostgresStore, name: &str) -> StoreResult<DeleteOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    if !exists(
        &tx,
        "SELECT 1 FROM policies WHERE name = $1 FOR UPDATE",
        &[&name],
    )
    .await?
    {
        return Ok(DeleteOutcome::NotFound);
    }
    if exists(
        &tx,
        "SELECT 1 FROM policy_targets WHERE policy_name = $1 LIMIT 1",
        &[&name],
    )
    .await?
    {
        return Ok(DeleteOutcome::PoliciesAttached);
    }
    let versions = query_opt(
        &tx,
        "SELECT count(*) FROM policy_versions WHERE policy_name = $1",
        &[&name],
        bigint,
    )
    .await?
    .unwrap_or(0);
    if versions > 1 {
        return Ok(DeleteOutcome::HasOtherVersions);
    }
    execute(&tx, "DELETE FROM policies WHERE name = $1", &[&name]).await?;
    tx.commit().await.map_err(backend)?;
    Ok(DeleteOutcome::Done)
}

pub async fn insert_policy_version(
    store: &PostgresStore,
    name: &str,
    document: &str,
    set_as_default: bool,
    at: Timestamp,
    max_versions: usize,
) -> StoreResult<VersionOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let next = query_opt(
        &tx,
        "SELECT next_version FROM policies WHERE name = $1 FOR UPDATE",
        &[&name],
        bigint,
    )
    .await?;
    let Some(version) = next else {
        return Ok(VersionOutcome::NotFound);
    };
    let count = query_opt(
        &tx,
        "SELECT count(*) FROM policy_versions WHERE policy_name = $1",
        &[&name],
        bigint,
    )
    .await?
    .unwrap_or(0);
    if count as usize >= max_versions {
        return Ok(VersionOutcome::LimitExceeded);
    }
    execute(
        &tx,
        "INSERT INTO policy_versions (policy_name, version, document, created_at)
         VALUES ($1, $2, $3, $4)",
        &[&name, &version, &document, &at.0],
    )
    .await?;
    execute(
        &tx,
        "UPDATE policies SET next_version = $2, updated_at = $3,
            default_version = CASE WHEN $4 THEN $5 ELSE default_version END
         WHERE name = $1",
        &[&name, &(version + 1), &at.0, &set_as_default, &version],
    )
    .await?;
    tx.commit().await.map_err(backend)?;
    Ok(VersionOutcome::Created(PolicyVersionRecord {
        policy_name: name.to_string(),
        version,
        document: document.to_string(),
        is_default: set_as_default,
        created_at: at,
    }))
}

pub async fn list_policy_versions(
    store: &PostgresStore,
    name: &str,
) -> StoreResult<Option<Vec<PolicyVersionRecord>>> {
    let mut client = store.client().await?;
    // One snapshot for the default and the versions.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    let Some(default) = query_opt(
        &tx,
        "SELECT default_version FROM policies WHERE name = $1",
        &[&name],
        bigint,
    )
    .await?
    else {
        return Ok(None);
    };
    let versions = query(
        &tx,
        "SELECT policy_name, version, document, created_at FROM policy_versions
         WHERE policy_name = $1 ORDER BY version",
        &[&name],
        |r| {
            let version: i64 = r.try_get(1).map_err(backend)?;
            Ok(PolicyVersionRecord {
                policy_name: r.try_get(0).map_err(backend)?,
                version,
                document: r.try_get(2).map_err(backend)?,
                is_default: version == default,
                created_at: Timestamp(r.try_get(3).map_err(backend)?),
            })
        },
    )
    .await?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(versions))
}

pub async fn set_default_policy_version(
    store: &PostgresStore,
    name: &str,
    version: i64,
    at: Timestamp,
) -> StoreResult<CasOutcome> {
    let client = store.client().await?;
    let n = execute(
        &client,
        "UPDATE policies SET default_version = $2, updated_at = $3
         WHERE name = $1 AND EXISTS (SELECT 1 FROM policy_versions
            WHERE policy_name = $1 AND version = $2)",
        &[&name, &version, &at.0],
    )
    .await?;
    Ok(if n > 0 {
        CasOutcome::Done
    } else {
        CasOutcome::NotFound
    })
}

pub async fn delete_policy_version(
    store: &PostgresStore,
    name: &str,
    version: i64,
) -> StoreResult<DeleteOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let default = query_opt(
        &tx,
        "SELECT default_version FROM policies WHERE name = $1 FOR UPDATE",
        &[&name],
        bigint,
    )
    .await?;
    match default {
        None => return Ok(DeleteOutcome::NotFound),
        Some(d) if d == version => return Ok(DeleteOutcome::IsDefaultVersion),
        Some(_) => {}
    }
    let n = execute(
        &tx,
        "DELETE FROM policy_versions WHERE policy_name = $1 AND version = $2",
        &[&name, &version],
    )
    .await?;
    tx.commit().await.map_err(backend)?;
    Ok(if n > 0 {
        DeleteOutcome::Done
    } else {
        DeleteOutcome::NotFound
    })
}

pub async fn attach_policy(
    store: &PostgresStore,
    name: &str,
    target: &PolicyTarget,
    at: Timestamp,
    max_per_target: usize,
) -> StoreResult<AttachOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    // Lock the target's row so concurrent attaches to it count one after another.
    let target_there = match (&target.certificate_id, &target.thing_group) {
        (Some(id), _) => {
            exists(
                &tx,
                "SELECT 1 FROM certificates WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?
        }
        (None, Some(group)) => {
            exists(
                &tx,
                "SELECT 1 FROM thing_groups WHERE name = $1 FOR UPDATE",
                &[group],
            )
            .await?
        }
        (None, None) => false,
    };
    if !target_there
        || !exists(
            &tx,
            "SELECT 1 FROM policies WHERE name = $1 FOR SHARE",
            &[&name],
        )
        .await?
    {
        return Ok(AttachOutcome::NotFound);
    }
    if exists(
        &tx,
        "SELECT 1 FROM policy_targets WHERE policy_name = $1 AND target = $2",
        &[&name, &target.arn],
    )
    .await?
    {
        return Ok(AttachOutcome::AlreadyAttached);
    }
    let count = query_opt(
        &tx,
        "SELECT count(*) FROM policy_targets WHERE target = $1",
        &[&target.arn],
        bigint,
    )
    .await?
    .unwrap_or(0);
    if count as usize >= max_per_target {
        return Ok(AttachOutcome::LimitExceeded);
    }
    tx.execute(
        "INSERT INTO policy_targets (policy_name, target, certificate_id, thing_group_name, attached_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &name,
            &target.arn,
            &target.certificate_id,
            &target.thing_group,
            &at.0,
        ],
    )
    .await
    .map_err(|e| constraint(e, &target.arn))?;
    tx.commit().await.map_err(backend)?;
    Ok(AttachOutcome::Attached)
}

pub async fn detach_policy(
    store: &PostgresStore,
    name: &str,
    target_arn: &str,
) -> StoreResult<bool> {
    let client = store.client().await?;
    let n = execute(
        &client,
        "DELETE FROM policy_targets WHERE policy_name = $1 AND target = $2",
        &[&name, &target_arn],
    )
    .await?;
    Ok(n > 0)
}

async fn target_page(
    store: &PostgresStore,
    key_column: &'static str,
    value_column: &'static str,
    key: &str,
    page: &PageRequest,
) -> StoreResult<Page<String>> {
    let client = store.client().await?;
    let after = page.after.clone().unwrap_or_default();
    let limit = fetch_limit(page);
    let rows = query(
        &client,
        &format!(
            "SELECT {value_column} FROM policy_targets
             WHERE {key_column} = $1 AND {value_column} > $2
             ORDER BY {value_column} LIMIT $3"
        ),
        &[&key, &after, &limit],
        string_from_row,
    )
    .await?;
    Ok(Page::from_rows(rows, page.limit, String::clone))
}

pub async fn list_attached_policies(
    store: &PostgresStore,
    target_arn: &str,
    page: &PageRequest,
) -> StoreResult<Page<String>> {
    target_page(store, "target", "policy_name", target_arn, page).await
}

pub async fn list_policy_targets(
    store: &PostgresStore,
    name: &str,
    page: &PageRequest,
) -> StoreResult<Page<String>> {
    target_page(store, "policy_name", "target", name, page).await
}

pub async fn principal_policies(
    store: &PostgresStore,
    certificate_id: &str,
    thing: Option<&str>,
) -> StoreResult<Vec<(String, String)>> {
    let client = store.client().await?;
    query(
        &client,
        "WITH RECURSIVE ancestry (name) AS (
            SELECT group_name FROM thing_group_members WHERE thing_name = $2::TEXT
            UNION
            SELECT g.parent_name FROM thing_groups g JOIN ancestry a ON g.name = a.name
            WHERE g.parent_name IS NOT NULL)
         SELECT DISTINCT p.name, v.document FROM policy_targets t
         JOIN policies p ON p.name = t.policy_name
         JOIN policy_versions v ON v.policy_name = p.name AND v.version = p.default_version
         WHERE t.certificate_id = $1
            OR t.thing_group_name IN (SELECT name FROM ancestry)
         ORDER BY p.name",
        &[&certificate_id, &thing],
        |r| {
            Ok((
                r.try_get::<_, String>(0).map_err(backend)?,
                r.try_get::<_, String>(1).map_err(backend)?,
            ))
        },
    )
    .await
}

pub async fn get_presence(store: &PostgresStore, client_id: &str) -> StoreResult<Option<Presence>> {
    let client = store.client().await?;
    query_opt(
        &client,
        "SELECT client_id, connected, timestamp_ms, disconnect_reason, session_identifier, version
         FROM presence WHERE client_id = $1",
        &[&client_id],
        presence_from_row,
    )
    .await
}

pub async fn put_presence(store: &PostgresStore, p: &Presence) -> StoreResult<CasOutcome> {
    let client = store.client().await?;
    let params: [Param<'_>; 6] = [
        &p.client_id,
        &p.connected,
        &p.timestamp_ms,
        &p.disconnect_reason,
        &p.session_identifier,
        &p.version,
    ];
    let n = if p.version == 1 {
        execute(
            &client,
            "INSERT INTO presence (client_id, connected, timestamp_ms, disconnect_reason,
                session_identifier, version) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (client_id) DO NOTHING",
            &params,
        )
        .await?
    } else {
        execute(
            &client,
            "UPDATE presence SET connected = $2, timestamp_ms = $3, disconnect_reason = $4,
                session_identifier = $5, version = $6::BIGINT
             WHERE client_id = $1 AND version = $6::BIGINT - 1",
            &params,
        )
        .await?
    };
    Ok(if n > 0 {
        CasOutcome::Done
    } else {
        CasOutcome::VersionMismatch
    })
}
