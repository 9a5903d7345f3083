//! The SQL behind the device-identity part of [`crate::Store`] for SQLite: certificates, CA
//! certificates, thing principals, policies and presence. `queries.rs` delegates here.
//!
//! Every conditional write (delete only if unattached, at most N versions or policies) runs in
//! one write job, so the single writer makes its checks and its change atomic.

use drover_core::presence::Presence;
use drover_core::time::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{SqliteStore, backend, constraint};
use crate::*;

const CERT_COLUMNS: &str = "id, pem, status, ca_certificate_id, mode, not_before, not_after, \
                            created_at, updated_at, version, generation_id";
const CA_COLUMNS: &str = "id, pem, subject, status, auto_registration, registration_config, mode, \
                          not_before, not_after, created_at, updated_at, version, generation_id";

fn certificate_from_row(row: &Row) -> rusqlite::Result<CertificateRecord> {
    Ok(CertificateRecord {
        id: row.get(0)?,
        pem: row.get(1)?,
        status: row.get(2)?,
        ca_certificate_id: row.get(3)?,
        mode: row.get(4)?,
        not_before: Timestamp(row.get(5)?),
        not_after: Timestamp(row.get(6)?),
        created_at: Timestamp(row.get(7)?),
        updated_at: Timestamp(row.get(8)?),
        version: row.get(9)?,
        generation_id: row.get(10)?,
    })
}

fn ca_from_row(row: &Row) -> rusqlite::Result<CaCertificateRecord> {
    Ok(CaCertificateRecord {
        id: row.get(0)?,
        pem: row.get(1)?,
        subject: row.get(2)?,
        status: row.get(3)?,
        auto_registration: row.get(4)?,
        registration_config: row.get(5)?,
        mode: row.get(6)?,
        not_before: Timestamp(row.get(7)?),
        not_after: Timestamp(row.get(8)?),
        created_at: Timestamp(row.get(9)?),
        updated_at: Timestamp(row.get(10)?),
        version: row.get(11)?,
        generation_id: row.get(12)?,
    })
}

fn principal_from_row(row: &Row) -> rusqlite::Result<ThingPrincipal> {
    Ok(ThingPrincipal {
        thing_name: row.get(0)?,
        certificate_id: row.get(1)?,
        exclusive: row.get(2)?,
        attached_at: Timestamp(row.get(3)?),
    })
}

fn presence_from_row(row: &Row) -> rusqlite::Result<Presence> {
    Ok(Presence {
        client_id: row.get(0)?,
        connected: row.get(1)?,
        timestamp_ms: row.get(2)?,
        disconnect_reason: row.get(3)?,
        session_identifier: row.get(4)?,
        version: row.get(5)?,
    })
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    args: Vec<Value>,
    map: impl Fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params_from_iter(args), map)
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

fn limit_arg(page: &PageRequest) -> Value {
    Value::Integer(
        i64::try_from(page.limit)
            .unwrap_or(i64::MAX - 1)
            .min(i64::MAX - 1)
            + 1,
    )
}

/// A keyset page in creation order over `table`: `(created_at, id)` after the page key, in
/// the direction asked. `filter` is an extra condition on parameter `?1` when given.
fn created_page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    filter: Option<(&str, String)>,
    page: &PageRequest,
    ascending: bool,
    map: impl Fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut args: Vec<Value> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some((condition, value)) = filter {
        args.push(Value::Text(value));
        conditions.push(format!("{condition} = ?{}", args.len()));
    }
    if let Some((at, id)) = page.after.as_deref().and_then(parse_created_key) {
        args.push(Value::Integer(at));
        args.push(Value::Text(id));
        let op = if ascending { ">" } else { "<" };
        conditions.push(format!(
            "(created_at, id) {op} (?{}, ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    let order = if ascending { "ASC" } else { "DESC" };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    args.push(limit_arg(page));
    let sql = format!(
        "SELECT {columns} FROM {table}{filter} ORDER BY created_at {order}, id {order} LIMIT ?{}",
        args.len()
    );
    collect(conn, &sql, args, map)
}

fn version_of(conn: &Connection, table: &str, id: &str) -> StoreResult<Option<i64>> {
    conn.query_row(
        &format!("SELECT version FROM {table} WHERE id = ?1"),
        [id],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)
}

fn exists(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<bool> {
    conn.prepare_cached(sql)
        .map_err(backend)?
        .exists(args)
        .map_err(backend)
}

pub async fn insert_certificate(store: &SqliteStore, c: &CertificateRecord) -> StoreResult<()> {
    let c = c.clone();
    store
        .write(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO certificates ({CERT_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    c.id,
                    c.pem,
                    c.status,
                    c.ca_certificate_id,
                    c.mode,
                    c.not_before.0,
                    c.not_after.0,
                    c.created_at.0,
                    c.updated_at.0,
                    c.version,
                    c.generation_id
                ],
            )
            .map_err(|e| constraint(e, &c.id))?;
            Ok(())
        })
        .await
}

pub async fn get_certificate(
    store: &SqliteStore,
    id: &str,
) -> StoreResult<Option<CertificateRecord>> {
    let id = id.to_string();
    store
        .read(move |conn| {
            conn.query_row(
                &format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = ?1"),
                [&id],
                certificate_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub async fn replace_certificate(
    store: &SqliteStore,
    c: &CertificateRecord,
    expected_version: i64,
) -> StoreResult<CasOutcome> {
    let c = c.clone();
    store
        .write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE certificates SET status = ?2, ca_certificate_id = ?3, mode = ?4,
                        updated_at = ?5, version = ?6, generation_id = ?7
                     WHERE id = ?1 AND version = ?8",
                    params![
                        c.id,
                        c.status,
                        c.ca_certificate_id,
                        c.mode,
                        c.updated_at.0,
                        c.version,
                        c.generation_id,
                        expected_version
                    ],
                )
                .map_err(backend)?;
            if n > 0 {
                return Ok(CasOutcome::Done);
            }
            Ok(match version_of(conn, "certificates", &c.id)? {
                None => CasOutcome::NotFound,
                Some(_) => CasOutcome::VersionMismatch,
            })
        })
        .await
}

pub async fn delete_certificate(
    store: &SqliteStore,
    id: &str,
    expected_version: i64,
    detach_policies: bool,
) -> StoreResult<DeleteOutcome> {
    let id = id.to_string();
    store
        .write(move |conn| {
            match version_of(conn, "certificates", &id)? {
                None => return Ok(DeleteOutcome::NotFound),
                Some(v) if v != expected_version => return Ok(DeleteOutcome::VersionMismatch),
                Some(_) => {}
            }
            if exists(
                conn,
                "SELECT 1 FROM thing_principals WHERE certificate_id = ?1",
                [&id],
            )? {
                return Ok(DeleteOutcome::AttachedToThing);
            }
            if detach_policies {
                conn.execute(
                    "DELETE FROM policy_targets WHERE certificate_id = ?1",
                    [&id],
                )
                .map_err(backend)?;
            } else if exists(
                conn,
                "SELECT 1 FROM policy_targets WHERE certificate_id = ?1",
                [&id],
            )? {
                return Ok(DeleteOutcome::PoliciesAttached);
            }
            conn.execute("DELETE FROM certificates WHERE id = ?1", [&id])
                .map_err(backend)?;
            Ok(DeleteOutcome::Done)
        })
        .await
}

pub async fn list_certificates(
    store: &SqliteStore,
    ca_certificate_id: Option<&str>,
    page: &PageRequest,
    ascending: bool,
) -> StoreResult<Page<CertificateRecord>> {
    let (ca, page) = (ca_certificate_id.map(str::to_string), page.clone());
    store
        .read(move |conn| {
            let rows = created_page(
                conn,
                "certificates",
                CERT_COLUMNS,
                ca.map(|ca| ("ca_certificate_id", ca)),
                &page,
                ascending,
                certificate_from_row,
            )?;
            Ok(Page::from_rows(rows, page.limit, |c| {
                created_key(c.created_at, &c.id)
            }))
        })
        .await
}

pub async fn insert_ca_certificate(
    store: &SqliteStore,
    c: &CaCertificateRecord,
) -> StoreResult<()> {
    let c = c.clone();
    store
        .write(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO ca_certificates ({CA_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    c.id,
                    c.pem,
                    c.subject,
                    c.status,
                    c.auto_registration,
                    c.registration_config,
                    c.mode,
                    c.not_before.0,
                    c.not_after.0,
                    c.created_at.0,
                    c.updated_at.0,
                    c.version,
                    c.generation_id
                ],
            )
            .map_err(|e| constraint(e, &c.id))?;
            Ok(())
        })
        .await
}

pub async fn get_ca_certificate(
    store: &SqliteStore,
    id: &str,
) -> StoreResult<Option<CaCertificateRecord>> {
    let id = id.to_string();
    store
        .read(move |conn| {
            conn.query_row(
                &format!("SELECT {CA_COLUMNS} FROM ca_certificates WHERE id = ?1"),
                [&id],
                ca_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub async fn find_ca_certificates(
    store: &SqliteStore,
    subject: &str,
) -> StoreResult<Vec<CaCertificateRecord>> {
    let subject = subject.to_string();
    store
        .read(move |conn| {
            collect(
                conn,
                &format!(
                    "SELECT {CA_COLUMNS} FROM ca_certificates WHERE subject = ?1 ORDER BY created_at, id"
                ),
                vec![Value::Text(subject)],
                ca_from_row,
            )
        })
        .await
}

pub async fn replace_ca_certificate(
    store: &SqliteStore,
    c: &CaCertificateRecord,
    expected_version: i64,
) -> StoreResult<CasOutcome> {
    let c = c.clone();
    store
        .write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE ca_certificates SET status = ?2, auto_registration = ?3,
                        registration_config = ?4, updated_at = ?5, version = ?6, generation_id = ?7
                     WHERE id = ?1 AND version = ?8",
                    params![
                        c.id,
                        c.status,
                        c.auto_registration,
                        c.registration_config,
                        c.updated_at.0,
                        c.version,
                        c.generation_id,
                        expected_version
                    ],
                )
                .map_err(backend)?;
            if n > 0 {
                return Ok(CasOutcome::Done);
            }
            Ok(match version_of(conn, "ca_certificates", &c.id)? {
                None => CasOutcome::NotFound,
                Some(_) => CasOutcome::VersionMismatch,
            })
        })
        .await
}

pub async fn delete_ca_certificate(
    store: &SqliteStore,
    id: &str,
    expected_version: i64,
) -> StoreResult<CasOutcome> {
    let id = id.to_string();
    store
        .write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM ca_certificates WHERE id = ?1 AND version = ?2",
                    params![id, expected_version],
                )
                .map_err(backend)?;
            if n > 0 {
                return Ok(CasOutcome::Done);
            }
            Ok(match version_of(conn, "ca_certificates", &id)? {
                None => CasOutcome::NotFound,
                Some(_) => CasOutcome::VersionMismatch,
            })
        })
        .await
}

pub async fn list_ca_certificates(
    store: &SqliteStore,
    page: &PageRequest,
    ascending: bool,
) -> StoreResult<Page<CaCertificateRecord>> {
    let page = page.clone();
    store
        .read(move |conn| {
            let rows = created_page(
                conn,
                "ca_certificates",
                CA_COLUMNS,
                None,
                &page,
                ascending,
                ca_from_row,
            )?;
            Ok(Page::from_rows(rows, page.limit, |c| {
                created_key(c.created_at, &c.id)
            }))
        })
        .await
}

pub async fn attach_thing_principal(
    store: &SqliteStore,
    thing: &str,
    certificate_id: &str,
    exclusive: bool,
    at: Timestamp,
) -> StoreResult<AttachOutcome> {
    let (thing, id) = (thing.to_string(), certificate_id.to_string());
    store
        .write(move |conn| {
            if !exists(conn, "SELECT 1 FROM things WHERE name = ?1", [&thing])?
                || !exists(conn, "SELECT 1 FROM certificates WHERE id = ?1", [&id])?
            {
                return Ok(AttachOutcome::NotFound);
            }
            let others = collect(
                conn,
                "SELECT thing_name, certificate_id, exclusive, attached_at FROM thing_principals
                 WHERE certificate_id = ?1",
                vec![Value::Text(id.clone())],
                principal_from_row,
            )?;
            let mine = others.iter().find(|p| p.thing_name == thing);
            let elsewhere = others.iter().filter(|p| p.thing_name != thing);
            if elsewhere.clone().any(|p| p.exclusive) || (exclusive && elsewhere.count() > 0) {
                return Ok(AttachOutcome::ExclusiveConflict);
            }
            if mine.is_some_and(|m| m.exclusive == exclusive) {
                return Ok(AttachOutcome::AlreadyAttached);
            }
            conn.execute(
                "INSERT INTO thing_principals (thing_name, certificate_id, exclusive, attached_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (thing_name, certificate_id) DO UPDATE SET exclusive = excluded.exclusive",
                params![thing, id, exclusive, at.0],
            )
            .map_err(|e| constraint(e, &format!("{thing}/{id}")))?;
            Ok(AttachOutcome::Attached)
        })
        .await
}

pub async fn detach_thing_principal(
    store: &SqliteStore,
    thing: &str,
    certificate_id: &str,
) -> StoreResult<bool> {
    let (thing, id) = (thing.to_string(), certificate_id.to_string());
    store
        .write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM thing_principals WHERE thing_name = ?1 AND certificate_id = ?2",
                    params![thing, id],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
}

pub async fn get_thing_principal(
    store: &SqliteStore,
    thing: &str,
    certificate_id: &str,
) -> StoreResult<Option<ThingPrincipal>> {
    let (thing, id) = (thing.to_string(), certificate_id.to_string());
    store
        .read(move |conn| {
            conn.query_row(
                "SELECT thing_name, certificate_id, exclusive, attached_at FROM thing_principals
                 WHERE thing_name = ?1 AND certificate_id = ?2",
                params![thing, id],
                principal_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
}

/// One page of `thing_principals` where `key_column = key`, ordered by `order_column`.
async fn principal_page(
    store: &SqliteStore,
    key_column: &'static str,
    order_column: &'static str,
    key: &str,
    page: &PageRequest,
) -> StoreResult<Page<ThingPrincipal>> {
    let (key, page) = (key.to_string(), page.clone());
    store
        .read(move |conn| {
            let rows = collect(
                conn,
                &format!(
                    "SELECT thing_name, certificate_id, exclusive, attached_at FROM thing_principals
                     WHERE {key_column} = ?1 AND {order_column} > ?2
                     ORDER BY {order_column} LIMIT ?3"
                ),
                vec![
                    Value::Text(key),
                    Value::Text(page.after.clone().unwrap_or_default()),
                    limit_arg(&page),
                ],
                principal_from_row,
            )?;
            Ok(Page::from_rows(rows, page.limit, |p| {
                if order_column == "thing_name" {
                    p.thing_name.clone()
                } else {
                    p.certificate_id.clone()
                }
            }))
        })
        .await
}

pub async fn list_thing_principals(
    store: &SqliteStore,
    thing: &str,
    page: &PageRequest,
) -> StoreResult<Page<ThingPrincipal>> {
    principal_page(store, "thing_name", "certificate_id", thing, page).await
}

pub async fn list_principal_things(
    store: &SqliteStore,
    certificate_id: &str,
    page: &PageRequest,
) -> StoreResult<Page<ThingPrincipal>> {
    principal_page(store, "certificate_id", "thing_name", certificate_id, page).await
}

const POLICY_SELECT: &str = "SELECT p.name, p.default_version, v.document, p.created_at, \
                             p.updated_at, p.generation_id FROM policies p \
                             JOIN policy_versions v ON v.policy_name = p.name AND v.version = p.default_version";

fn policy_from_row(row: &Row) -> rusqlite::Result<PolicyRecord> {
    Ok(PolicyRecord {
        name: row.get(0)?,
        default_version: row.get(1)?,
        document: row.get(2)?,
        created_at: Timestamp(row.get(3)?),
        updated_at: Timestamp(row.get(4)?),
        generation_id: row.get(5)?,
    })
}

pub async fn insert_policy(store: &SqliteStore, p: &PolicyRecord) -> StoreResult<()> {
    let p = p.clone();
    store
        .write(move |conn| {
            conn.execute(
                "INSERT INTO policies (name, default_version, next_version, created_at, updated_at, generation_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    p.name,
                    p.default_version,
                    p.default_version + 1,
                    p.created_at.0,
                    p.updated_at.0,
                    p.generation_id
                ],
            )
            .map_err(|e| constraint(e, &p.name))?;
            conn.execute(
                "INSERT INTO policy_versions (policy_name, version, document, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![p.name, p.default_version, p.document, p.created_at.0],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub async fn get_policy(store: &SqliteStore, name: &str) -> StoreResult<Option<PolicyRecord>> {
    let name = name.to_string();
    store
        .read(move |conn| {
            conn.query_row(
                &format!("{POLICY_SELECT} WHERE p.name = ?1"),
                [&name],
                policy_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub async fn list_policies(
    store: &SqliteStore,
    page: &PageRequest,
    ascending: bool,
) -> StoreResult<Page<String>> {
    let page = page.clone();
    store
        .read(move |conn| {
            let (op, order) = if ascending {
                (">", "ASC")
            } else {
                ("<", "DESC")
            };
            let mut args = Vec::new();
            let mut sql = String::from("SELECT name FROM policies");
            if let Some(after) = &page.after {
                args.push(Value::Text(after.clone()));
                sql += &format!(" WHERE name {op} ?1");
            }
            args.push(limit_arg(&page));
            sql += &format!(" ORDER BY name {order} LIMIT ?{}", args.len());
            let rows = collect(conn, &sql, args, |r| r.get::<_, String>(0))?;
            Ok(Page::from_rows(rows, page.limit, String::clone))
        })
        .await
}

pub async fn delete_policy(store: &SqliteStore, name: &str) -> StoreResult<DeleteOutcome> {
    let name = name.to_string();
    store
        .write(move |conn| {
            if !exists(conn, "SELECT 1 FROM policies WHERE name = ?1", [&name])? {
                return Ok(DeleteOutcome::NotFound);
            }
            if exists(
                conn,
                "SELECT 1 FROM policy_targets WHERE policy_name = ?1",
                [&name],
            )? {
                return Ok(DeleteOutcome::PoliciesAttached);
            }
            let versions: i64 = conn
                .query_row(
                    "SELECT count(*) FROM policy_versions WHERE policy_name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if versions > 1 {
                return Ok(DeleteOutcome::HasOtherVersions);
            }
            conn.execute("DELETE FROM policies WHERE name = ?1", [&name])
                .map_err(backend)?;
            Ok(DeleteOutcome::Done)
        })
        .await
}

pub async fn insert_policy_version(
    store: &SqliteStore,
    name: &str,
    document: &str,
    set_as_default: bool,
    at: Timestamp,
    max_versions: usize,
) -> StoreResult<VersionOutcome> {
    let (name, document) = (name.to_string(), document.to_string());
    store
        .write(move |conn| {
            let next: Option<i64> = conn
                .query_row(
                    "SELECT next_version FROM policies WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(version) = next else {
                return Ok(VersionOutcome::NotFound);
            };
            let count: i64 = conn
                .query_row(
                    "SELECT count(*) FROM policy_versions WHERE policy_name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if count as usize >= max_versions {
                return Ok(VersionOutcome::LimitExceeded);
            }
            conn.execute(
                "INSERT INTO policy_versions (policy_name, version, document, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![name, version, document, at.0],
            )
            .map_err(backend)?;
            conn.execute(
                "UPDATE policies SET next_version = ?2, updated_at = ?3,
                    default_version = CASE WHEN ?4 THEN ?5 ELSE default_version END
                 WHERE name = ?1",
                params![name, version + 1, at.0, set_as_default, version],
            )
            .map_err(backend)?;
            Ok(VersionOutcome::Created(PolicyVersionRecord {
                policy_name: name,
                version,
                document,
                is_default: set_as_default,
                created_at: at,
            }))
        })
        .await
}

pub async fn list_policy_versions(
    store: &SqliteStore,
    name: &str,
) -> StoreResult<Option<Vec<PolicyVersionRecord>>> {
    let name = name.to_string();
    store
        .read(move |conn| {
            let default: Option<i64> = conn
                .query_row(
                    "SELECT default_version FROM policies WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(default) = default else {
                return Ok(None);
            };
            let versions = collect(
                conn,
                "SELECT policy_name, version, document, created_at FROM policy_versions
                 WHERE policy_name = ?1 ORDER BY version",
                vec![Value::Text(name)],
                |r| {
                    let version: i64 = r.get(1)?;
                    Ok(PolicyVersionRecord {
                        policy_name: r.get(0)?,
                        version,
                        document: r.get(2)?,
                        is_default: version == default,
                        created_at: Timestamp(r.get(3)?),
                    })
                },
            )?;
            Ok(Some(versions))
        })
        .await
}

pub async fn set_default_policy_version(
    store: &SqliteStore,
    name: &str,
    version: i64,
    at: Timestamp,
) -> StoreResult<CasOutcome> {
    let name = name.to_string();
    store
        .write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE policies SET default_version = ?2, updated_at = ?3
                     WHERE name = ?1 AND EXISTS (SELECT 1 FROM policy_versions
                        WHERE policy_name = ?1 AND version = ?2)",
                    params![name, version, at.0],
                )
                .map_err(backend)?;
            Ok(if n > 0 {
                CasOutcome::Done
            } else {
                CasOutcome::NotFound
            })
        })
        .await
}

pub async fn delete_policy_version(
    store: &SqliteStore,
    name: &str,
    version: i64,
) -> StoreResult<DeleteOutcome> {
    let name = name.to_string();
    store
        .write(move |conn| {
            let default: Option<i64> = conn
                .query_row(
                    "SELECT default_version FROM policies WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            match default {
                None => return Ok(DeleteOutcome::NotFound),
                Some(d) if d == version => return Ok(DeleteOutcome::IsDefaultVersion),
                Some(_) => {}
            }
            let n = conn
                .execute(
                    "DELETE FROM policy_versions WHERE policy_name = ?1 AND version = ?2",
                    params![name, version],
                )
                .map_err(backend)?;
            Ok(if n > 0 {
                DeleteOutcome::Done
            } else {
                DeleteOutcome::NotFound
            })
        })
        .await
}

pub async fn attach_policy(
    store: &SqliteStore,
    name: &str,
    target: &PolicyTarget,
    at: Timestamp,
    max_per_target: usize,
) -> StoreResult<AttachOutcome> {
    let (name, target) = (name.to_string(), target.clone());
    store
        .write(move |conn| {
            if !exists(conn, "SELECT 1 FROM policies WHERE name = ?1", [&name])? {
                return Ok(AttachOutcome::NotFound);
            }
            if exists(
                conn,
                "SELECT 1 FROM policy_targets WHERE policy_name = ?1 AND target = ?2",
                params![name, target.arn],
            )? {
                return Ok(AttachOutcome::AlreadyAttached);
            }
            let count: i64 = conn
                .query_row(
                    "SELECT count(*) FROM policy_targets WHERE target = ?1",
                    [&target.arn],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if count as usize >= max_per_target {
                return Ok(AttachOutcome::LimitExceeded);
            }
            let inserted = conn.execute(
                "INSERT INTO policy_targets (policy_name, target, certificate_id, thing_group_name, attached_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, target.arn, target.certificate_id, target.thing_group, at.0],
            );
            match inserted.map_err(|e| constraint(e, &target.arn)) {
                Ok(_) => Ok(AttachOutcome::Attached),
                Err(StoreError::MissingReference(_)) => Ok(AttachOutcome::NotFound),
                Err(e) => Err(e),
            }
        })
        .await
}

pub async fn detach_policy(store: &SqliteStore, name: &str, target_arn: &str) -> StoreResult<bool> {
    let (name, target) = (name.to_string(), target_arn.to_string());
    store
        .write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM policy_targets WHERE policy_name = ?1 AND target = ?2",
                    params![name, target],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
}

/// One page of one column of `policy_targets` where `key_column = key`.
async fn target_page(
    store: &SqliteStore,
    key_column: &'static str,
    value_column: &'static str,
    key: &str,
    page: &PageRequest,
) -> StoreResult<Page<String>> {
    let (key, page) = (key.to_string(), page.clone());
    store
        .read(move |conn| {
            let rows = collect(
                conn,
                &format!(
                    "SELECT {value_column} FROM policy_targets
                     WHERE {key_column} = ?1 AND {value_column} > ?2
                     ORDER BY {value_column} LIMIT ?3"
                ),
                vec![
                    Value::Text(key),
                    Value::Text(page.after.clone().unwrap_or_default()),
                    limit_arg(&page),
                ],
                |r| r.get::<_, String>(0),
            )?;
            Ok(Page::from_rows(rows, page.limit, String::clone))
        })
        .await
}

pub async fn list_attached_policies(
    store: &SqliteStore,
    target_arn: &str,
    page: &PageRequest,
) -> StoreResult<Page<String>> {
    target_page(store, "target", "policy_name", target_arn, page).await
}

pub async fn list_policy_targets(
    store: &SqliteStore,
    name: &str,
    page: &PageRequest,
) -> StoreResult<Page<String>> {
    target_page(store, "policy_name", "target", name, page).await
}

pub async fn principal_policies(
    store: &SqliteStore,
    certificate_id: &str,
    thing: Option<&str>,
) -> StoreResult<Vec<(String, String)>> {
    let (id, thing) = (certificate_id.to_string(), thing.map(str::to_string));
    store
        .read(move |conn| {
            // The thing's groups and every ancestor of them (UNION drops repeats and ends the
            // recursion at the roots).
            collect(
                conn,
                "WITH RECURSIVE ancestry (name) AS (
                    SELECT group_name FROM thing_group_members WHERE thing_name = ?2
                    UNION
                    SELECT g.parent_name FROM thing_groups g JOIN ancestry a ON g.name = a.name
                    WHERE g.parent_name IS NOT NULL)
                 SELECT DISTINCT p.name, v.document FROM policy_targets t
                 JOIN policies p ON p.name = t.policy_name
                 JOIN policy_versions v ON v.policy_name = p.name AND v.version = p.default_version
                 WHERE t.certificate_id = ?1
                    OR t.thing_group_name IN (SELECT name FROM ancestry)
                 ORDER BY p.name",
                vec![
                    Value::Text(id),
                    thing.map(Value::Text).unwrap_or(Value::Null),
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
        })
        .await
}

pub async fn get_presence(store: &SqliteStore, client_id: &str) -> StoreResult<Option<Presence>> {
    let client_id = client_id.to_string();
    store
        .read(move |conn| {
            conn.query_row(
                "SELECT client_id, connected, timestamp_ms, disconnect_reason, session_identifier, version
                 FROM presence WHERE client_id = ?1",
                [&client_id],
                presence_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub async fn put_presence(store: &SqliteStore, p: &Presence) -> StoreResult<CasOutcome> {
    let p = p.clone();
    store
        .write(move |conn| {
            let n = if p.version == 1 {
                conn.execute(
                    "INSERT INTO presence (client_id, connected, timestamp_ms, disconnect_reason,
                        session_identifier, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (client_id) DO NOTHING",
                    params![
                        p.client_id,
                        p.connected,
                        p.timestamp_ms,
                        p.disconnect_reason,
                        p.session_identifier,
                        p.version
                    ],
                )
            } else {
                conn.execute(
                    "UPDATE presence SET connected = ?2, timestamp_ms = ?3, disconnect_reason = ?4,
                        session_identifier = ?5, version = ?6
                     WHERE client_id = ?1 AND version = ?6 - 1",
                    params![
                        p.client_id,
                        p.connected,
                        p.timestamp_ms,
                        p.disconnect_reason,
                        p.session_identifier,
                        p.version
                    ],
                )
            }
            .map_err(backend)?;
            Ok(if n > 0 {
                CasOutcome::Done
            } else {
                CasOutcome::VersionMismatch
            })
        })
        .await
}
