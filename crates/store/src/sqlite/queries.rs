//! The SQL behind [`crate::Store`] for SQLite.

use async_trait::async_trait;
use drover_core::presence::Presence;
use drover_core::query::{CandidateScan, Connectivity, IndexedThing};
use drover_core::registry::{DynamicGroupQuery, Thing, ThingGroup, ThingType};
use drover_core::time::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{SqliteStore, backend, constraint, devices};
use crate::codec::{self, to_json};
use crate::index_sql;
use crate::*;

const THING_COLUMNS: &str = "name, id, type_name, attributes, version, created_at, updated_at";
const INDEX_DOCUMENT_COLUMNS: &str = "t.name, t.id, t.type_name, t.attributes, t.version";
const TYPE_COLUMNS: &str = "name, id, description, searchable_attributes, mqtt5_configuration, \
                            deprecated, deprecation_date, created_at, tags";
const GROUP_COLUMNS: &str = "name, id, parent_name, description, attributes, version, created_at, \
                             tags, query_string, query_version, index_name, status";

fn thing_from_row(row: &Row) -> rusqlite::Result<(Thing, String)> {
    Ok((
        Thing {
            name: row.get(0)?,
            id: row.get(1)?,
            type_name: row.get(2)?,
            attributes: Default::default(),
            version: row.get(4)?,
            created_at: Timestamp(row.get(5)?),
            updated_at: Timestamp(row.get(6)?),
        },
        row.get(3)?,
    ))
}

fn finish_thing((mut thing, attributes): (Thing, String)) -> StoreResult<Thing> {
    thing.attributes = codec::attributes(&attributes)?;
    Ok(thing)
}

type TypeRow = (ThingType, String, Option<String>, String);

fn type_from_row(row: &Row) -> rusqlite::Result<TypeRow> {
    Ok((
        ThingType {
            name: row.get(0)?,
            id: row.get(1)?,
            description: row.get(2)?,
            searchable_attributes: Vec::new(),
            mqtt5_configuration: None,
            deprecated: row.get(5)?,
            deprecation_date: row.get::<_, Option<i64>>(6)?.map(Timestamp),
            created_at: Timestamp(row.get(7)?),
            tags: Vec::new(),
        },
        row.get(3)?,
        row.get(4)?,
        row.get(8)?,
    ))
}

fn finish_type((mut thing_type, searchable, mqtt5, tags): TypeRow) -> StoreResult<ThingType> {
    thing_type.searchable_attributes = codec::strings(&searchable)?;
    thing_type.mqtt5_configuration = codec::value(mqtt5)?;
    thing_type.tags = codec::tags(&tags)?;
    Ok(thing_type)
}

type GroupRow = (ThingGroup, String, String, Option<DynamicGroupQuery>);

fn group_from_row(row: &Row) -> rusqlite::Result<GroupRow> {
    let query_string: Option<String> = row.get(8)?;
    let dynamic = match query_string {
        Some(query_string) => Some(DynamicGroupQuery {
            query_string,
            query_version: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
            index_name: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
            status: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok((
        ThingGroup {
            name: row.get(0)?,
            id: row.get(1)?,
            parent: row.get(2)?,
            description: row.get(3)?,
            attributes: Default::default(),
            version: row.get(5)?,
            created_at: Timestamp(row.get(6)?),
            tags: Vec::new(),
            dynamic: None,
        },
        row.get(4)?,
        row.get(7)?,
        dynamic,
    ))
}

fn finish_group((mut group, attributes, tags, dynamic): GroupRow) -> StoreResult<ThingGroup> {
    group.attributes = codec::attributes(&attributes)?;
    group.tags = codec::tags(&tags)?;
    group.dynamic = dynamic;
    Ok(group)
}

fn write_thing_attributes(conn: &Connection, thing: &Thing) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM thing_attributes WHERE thing_name = ?1",
        [&thing.name],
    )
    .map_err(backend)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO thing_attributes (thing_name, key, value) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    for (key, value) in &thing.attributes {
        insert
            .execute(params![thing.name, key, value])
            .map_err(backend)?;
    }
    Ok(())
}

fn current_version(conn: &Connection, table: &str, name: &str) -> StoreResult<Option<i64>> {
    conn.query_row(
        &format!("SELECT version FROM {table} WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)
}

/// Fetches up to `page.limit + 1` rows of `sql` (which must end in `ORDER BY ... LIMIT ?`).
fn page_rows<T>(
    conn: &Connection,
    sql: &str,
    mut args: Vec<Value>,
    page: &PageRequest,
    map: impl Fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let limit = i64::try_from(page.limit)
        .unwrap_or(i64::MAX - 1)
        .min(i64::MAX - 1);
    args.push(Value::Integer(limit + 1));
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params_from_iter(args), map)
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )
            .map_err(backend)?;
            conn.query_row("SELECT value FROM settings WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .map_err(backend)
        })
        .await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT value FROM settings WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn insert_access_key(&self, key: &AccessKey) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO access_keys (access_key_id, secret_access_key, description, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key.access_key_id, key.secret_access_key, key.description, key.created_at.0],
            )
            .map_err(|e| constraint(e, &key.access_key_id))?;
            Ok(())
        })
        .await
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKey>> {
        let id = access_key_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT access_key_id, secret_access_key, description, created_at
                 FROM access_keys WHERE access_key_id = ?1",
                [&id],
                access_key_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_access_keys(&self) -> StoreResult<Vec<AccessKey>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT access_key_id, secret_access_key, description, created_at
                     FROM access_keys ORDER BY created_at, access_key_id",
                )
                .map_err(backend)?;
            let rows = stmt.query_map([], access_key_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<bool> {
        let id = access_key_id.to_string();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM access_keys WHERE access_key_id = ?1", [&id])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn insert_thing(&self, thing: &Thing) -> StoreResult<()> {
        let thing = thing.clone();
        self.write(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO things ({THING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    thing.name,
                    thing.id,
                    thing.type_name,
                    to_json(&thing.attributes),
                    thing.version,
                    thing.created_at.0,
                    thing.updated_at.0
                ],
            )
            .map_err(|e| constraint(e, &thing.name))?;
            write_thing_attributes(conn, &thing)
        })
        .await
    }

    async fn get_thing(&self, name: &str) -> StoreResult<Option<Thing>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {THING_COLUMNS} FROM things WHERE name = ?1"),
                [&name],
                thing_from_row,
            )
            .optional()
            .map_err(backend)?
            .map(finish_thing)
            .transpose()
        })
        .await
    }

    async fn replace_thing(&self, thing: &Thing, expected_version: i64) -> StoreResult<CasOutcome> {
        let thing = thing.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE things SET type_name = ?2, attributes = ?3, version = ?4, updated_at = ?5
                     WHERE name = ?1 AND version = ?6",
                    params![
                        thing.name,
                        thing.type_name,
                        to_json(&thing.attributes),
                        thing.version,
                        thing.updated_at.0,
                        expected_version
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Ok(match current_version(conn, "things", &thing.name)? {
                    None => CasOutcome::NotFound,
                    Some(_) => CasOutcome::VersionMismatch,
                });
            }
            write_thing_attributes(conn, &thing)?;
            Ok(CasOutcome::Done)
        })
        .await
    }

    async fn delete_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<CasOutcome> {
        let name = name.to_string();
        self.write(move |conn| {
            match current_version(conn, "things", &name)? {
                None => return Ok(CasOutcome::NotFound),
                Some(v) if expected_version.is_some_and(|e| e != v) => {
                    return Ok(CasOutcome::VersionMismatch);
                }
                Some(_) => {}
            }
            // A principal still attached fails the foreign key: MissingReference.
            conn.execute("DELETE FROM things WHERE name = ?1", [&name])
                .map_err(|e| constraint(e, &name))?;
            Ok(CasOutcome::Done)
        })
        .await
    }

    async fn list_things(
        &self,
        filter: &ThingFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Thing>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| {
            let mut sql = format!("SELECT {THING_COLUMNS} FROM things t WHERE t.name > ?1");
            let mut args = vec![Value::Text(page.after.clone().unwrap_or_default())];
            if let Some(type_name) = &filter.type_name {
                args.push(Value::Text(type_name.clone()));
                sql += &format!(" AND t.type_name = ?{}", args.len());
            }
            if let Some(attribute) = &filter.attribute_name {
                args.push(Value::Text(attribute.clone()));
                let key_arg = args.len();
                match &filter.attribute_value {
                    Some(value) if filter.attribute_value_prefix => {
                        args.push(Value::Text(value.clone()));
                        args.push(Value::Text(codec::prefix_upper_bound(value)));
                        // A bytewise range: case-sensitive, as AWS matches, and index-friendly.
                        sql += &format!(
                            " AND t.name IN (SELECT thing_name FROM thing_attributes
                               WHERE key = ?{key_arg} AND value >= ?{} AND value < ?{})",
                            args.len() - 1,
                            args.len()
                        );
                    }
                    Some(value) => {
                        args.push(Value::Text(value.clone()));
                        sql += &format!(
                            " AND t.name IN (SELECT thing_name FROM thing_attributes
                               WHERE key = ?{key_arg} AND value = ?{})",
                            args.len()
                        );
                    }
                    None => {
                        sql += &format!(
                            " AND t.name IN (SELECT thing_name FROM thing_attributes WHERE key = ?{key_arg})"
                        );
                    }
                }
            }
            sql += &format!(" ORDER BY t.name LIMIT ?{}", args.len() + 1);
            let rows = page_rows(conn, &sql, args, &page, thing_from_row)?;
            let things = rows.into_iter().map(finish_thing).collect::<StoreResult<Vec<_>>>()?;
            Ok(Page::from_rows(things, page.limit, |t| t.name.clone()))
        })
        .await
    }

    async fn insert_thing_type(&self, thing_type: &ThingType) -> StoreResult<()> {
        let t = thing_type.clone();
        self.write(move |conn| {
            conn.execute(
                &format!("INSERT INTO thing_types ({TYPE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    t.name,
                    t.id,
                    t.description,
                    to_json(&t.searchable_attributes),
                    t.mqtt5_configuration.as_ref().map(to_json),
                    t.deprecated,
                    t.deprecation_date.map(|d| d.0),
                    t.created_at.0,
                    to_json(&t.tags)
                ],
            )
            .map_err(|e| constraint(e, &t.name))?;
            Ok(())
        })
        .await
    }

    async fn get_thing_type(&self, name: &str) -> StoreResult<Option<ThingType>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {TYPE_COLUMNS} FROM thing_types WHERE name = ?1"),
                [&name],
                type_from_row,
            )
            .optional()
            .map_err(backend)?
            .map(finish_type)
            .transpose()
        })
        .await
    }

    async fn replace_thing_type(&self, thing_type: &ThingType) -> StoreResult<CasOutcome> {
        let t = thing_type.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE thing_types SET deprecated = ?2, deprecation_date = ?3 WHERE name = ?1",
                    params![t.name, t.deprecated, t.deprecation_date.map(|d| d.0)],
                )
                .map_err(backend)?;
            Ok(if n == 0 {
                CasOutcome::NotFound
            } else {
                CasOutcome::Done
            })
        })
        .await
    }

    async fn delete_thing_type(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM thing_types WHERE name = ?1", [&name])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_thing_types(
        &self,
        name: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingType>> {
        let (name, page) = (name.map(str::to_string), page.clone());
        self.read(move |conn| {
            let mut args = vec![Value::Text(page.after.clone().unwrap_or_default())];
            let mut sql = format!("SELECT {TYPE_COLUMNS} FROM thing_types WHERE name > ?1");
            if let Some(name) = name {
                args.push(Value::Text(name));
                sql += " AND name = ?2";
            }
            sql += &format!(" ORDER BY name LIMIT ?{}", args.len() + 1);
            let rows = page_rows(conn, &sql, args, &page, type_from_row)?;
            let types = rows
                .into_iter()
                .map(finish_type)
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page::from_rows(types, page.limit, |t| t.name.clone()))
        })
        .await
    }

    async fn insert_thing_group(&self, group: &ThingGroup) -> StoreResult<()> {
        let g = group.clone();
        self.write(move |conn| {
            let dynamic = g.dynamic.as_ref();
            conn.execute(
                &format!(
                    "INSERT INTO thing_groups ({GROUP_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    g.name,
                    g.id,
                    g.parent,
                    g.description,
                    to_json(&g.attributes),
                    g.version,
                    g.created_at.0,
                    to_json(&g.tags),
                    dynamic.map(|d| &d.query_string),
                    dynamic.map(|d| &d.query_version),
                    dynamic.map(|d| &d.index_name),
                    dynamic.map(|d| &d.status)
                ],
            )
            .map_err(|e| constraint(e, &g.name))?;
            Ok(())
        })
        .await
    }

    async fn get_thing_group(&self, name: &str) -> StoreResult<Option<ThingGroup>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {GROUP_COLUMNS} FROM thing_groups WHERE name = ?1"),
                [&name],
                group_from_row,
            )
            .optional()
            .map_err(backend)?
            .map(finish_group)
            .transpose()
        })
        .await
    }

    async fn replace_thing_group(
        &self,
        group: &ThingGroup,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        let g = group.clone();
        self.write(move |conn| {
            let dynamic = g.dynamic.as_ref();
            let n = conn
                .execute(
                    "UPDATE thing_groups SET description = ?2, attributes = ?3, version = ?4, tags = ?5,
                        query_string = ?6, query_version = ?7, index_name = ?8, status = ?9
                     WHERE name = ?1 AND version = ?10",
                    params![
                        g.name,
                        g.description,
                        to_json(&g.attributes),
                        g.version,
                        to_json(&g.tags),
                        dynamic.map(|d| &d.query_string),
                        dynamic.map(|d| &d.query_version),
                        dynamic.map(|d| &d.index_name),
                        dynamic.map(|d| &d.status),
                        expected_version
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Ok(match current_version(conn, "thing_groups", &g.name)? {
                    None => CasOutcome::NotFound,
                    Some(_) => CasOutcome::VersionMismatch,
                });
            }
            Ok(CasOutcome::Done)
        })
        .await
    }

    async fn delete_thing_group(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<CasOutcome> {
        let name = name.to_string();
        self.write(move |conn| {
            match current_version(conn, "thing_groups", &name)? {
                None => return Ok(CasOutcome::NotFound),
                Some(v) if expected_version.is_some_and(|e| e != v) => {
                    return Ok(CasOutcome::VersionMismatch);
                }
                Some(_) => {}
            }
            conn.execute("DELETE FROM thing_groups WHERE name = ?1", [&name])
                .map_err(|e| constraint(e, &name))?;
            Ok(CasOutcome::Done)
        })
        .await
    }

    async fn list_thing_groups(
        &self,
        filter: &ThingGroupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingGroup>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| {
            let mut args = vec![Value::Text(page.after.clone().unwrap_or_default())];
            let mut sql = format!("SELECT {GROUP_COLUMNS} FROM thing_groups WHERE name > ?1");
            match &filter.parent {
                None => {}
                Some(None) => sql += " AND parent_name IS NULL",
                Some(Some(parent)) => {
                    args.push(Value::Text(parent.clone()));
                    sql += &format!(" AND parent_name = ?{}", args.len());
                }
            }
            if let Some(prefix) = &filter.name_prefix {
                args.push(Value::Text(prefix.clone()));
                args.push(Value::Text(codec::prefix_upper_bound(prefix)));
                sql += &format!(
                    " AND name >= ?{} AND name < ?{}",
                    args.len() - 1,
                    args.len()
                );
            }
            sql += &format!(" ORDER BY name LIMIT ?{}", args.len() + 1);
            let rows = page_rows(conn, &sql, args, &page, group_from_row)?;
            let groups = rows
                .into_iter()
                .map(finish_group)
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page::from_rows(groups, page.limit, |g| g.name.clone()))
        })
        .await
    }

    async fn add_thing_to_group(
        &self,
        group: &str,
        thing: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let (group, thing) = (group.to_string(), thing.to_string());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO thing_group_members (group_name, thing_name, added_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (group_name, thing_name) DO NOTHING",
                    params![group, thing, at.0],
                )
                .map_err(|e| constraint(e, &format!("{group}/{thing}")))?;
            Ok(n > 0)
        })
        .await
    }

    async fn remove_thing_from_group(&self, group: &str, thing: &str) -> StoreResult<bool> {
        let (group, thing) = (group.to_string(), thing.to_string());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM thing_group_members WHERE group_name = ?1 AND thing_name = ?2",
                    params![group, thing],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_things_in_groups(
        &self,
        groups: &[String],
        page: &PageRequest,
    ) -> StoreResult<Page<String>> {
        let (groups, page) = (groups.to_vec(), page.clone());
        if groups.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_after: None,
            });
        }
        self.read(move |conn| {
            let placeholders: Vec<String> =
                (0..groups.len()).map(|i| format!("?{}", i + 2)).collect();
            let sql = format!(
                "SELECT DISTINCT thing_name FROM thing_group_members
                 WHERE thing_name > ?1 AND group_name IN ({})
                 ORDER BY thing_name LIMIT ?{}",
                placeholders.join(", "),
                groups.len() + 2
            );
            let mut args = vec![Value::Text(page.after.clone().unwrap_or_default())];
            args.extend(groups.into_iter().map(Value::Text));
            let rows = page_rows(conn, &sql, args, &page, |r| r.get::<_, String>(0))?;
            Ok(Page::from_rows(rows, page.limit, String::clone))
        })
        .await
    }

    async fn list_groups_for_thing(
        &self,
        thing: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>> {
        let (thing, page) = (thing.to_string(), page.clone());
        self.read(move |conn| {
            let rows = page_rows(
                conn,
                "SELECT group_name FROM thing_group_members WHERE thing_name = ?2 AND group_name > ?1
                 ORDER BY group_name LIMIT ?3",
                vec![Value::Text(page.after.clone().unwrap_or_default()), Value::Text(thing)],
                &page,
                |r| r.get::<_, String>(0),
            )?;
            Ok(Page::from_rows(rows, page.limit, String::clone))
        })
        .await
    }

    async fn list_dynamic_groups(&self) -> StoreResult<Vec<ThingGroup>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {GROUP_COLUMNS} FROM thing_groups WHERE query_string IS NOT NULL ORDER BY name"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt.query_map([], group_from_row).map_err(backend)?;
            rows.map(|r| finish_group(r.map_err(backend)?)).collect()
        })
        .await
    }

    async fn apply_memberships(
        &self,
        changes: &[MembershipChange],
        at: Timestamp,
    ) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let changes = changes.to_vec();
        self.write(move |conn| {
            // A join whose thing or group vanished is skipped, where the foreign key would
            // fail the whole batch. The checks are separate lookups rather than
            // `INSERT … SELECT … WHERE EXISTS`, which SQLite runs far slower once the table is
            // large (measured: 4 s against 0.15 s for 33,000 joins beside 150,000 rows).
            let mut join = conn
                .prepare_cached(
                    "INSERT INTO thing_group_members (group_name, thing_name, added_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT (group_name, thing_name) DO NOTHING",
                )
                .map_err(backend)?;
            let mut leave = conn
                .prepare_cached(
                    "DELETE FROM thing_group_members WHERE group_name = ?1 AND thing_name = ?2",
                )
                .map_err(backend)?;
            let mut thing_exists = conn
                .prepare_cached("SELECT 1 FROM things WHERE name = ?1")
                .map_err(backend)?;
            let mut group_exists = conn
                .prepare_cached("SELECT 1 FROM thing_groups WHERE name = ?1")
                .map_err(backend)?;
            let mut groups: std::collections::HashMap<&str, bool> = Default::default();
            for change in &changes {
                if !change.join {
                    leave
                        .execute(params![change.group, change.thing])
                        .map_err(backend)?;
                    continue;
                }
                let group_there = match groups.get(change.group.as_str()) {
                    Some(there) => *there,
                    None => {
                        let there = group_exists.exists([&change.group]).map_err(backend)?;
                        groups.insert(&change.group, there);
                        there
                    }
                };
                if group_there && thing_exists.exists([&change.thing]).map_err(backend)? {
                    join.execute(params![change.group, change.thing, at.0])
                        .map_err(backend)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn index_candidates(
        &self,
        scan: &CandidateScan,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<Vec<String>> {
        let (sql, args) = index_sql::candidates(scan, after, limit, |n| format!("?{n}"));
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn index_documents(&self, names: &[String]) -> StoreResult<Vec<IndexedThing>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // One JSON array parameter instead of one placeholder per name: no parameter limit,
        // and one cached statement for every batch size.
        let names = to_json(&names);
        self.read(move |conn| {
            // One statement: each thing by primary key, its groups from the covering index.
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {INDEX_DOCUMENT_COLUMNS},
                        (SELECT group_concat(group_name, ',') FROM thing_group_members m
                         WHERE m.thing_name = t.name),
                        p.connected, p.timestamp_ms, p.disconnect_reason
                     FROM things t LEFT JOIN presence p ON p.client_id = t.name
                     WHERE t.name IN (SELECT value FROM json_each(?1)) ORDER BY t.name"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([&names], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        connectivity_from(r, 6)?,
                    ))
                })
                .map_err(backend)?;
            rows.map(|row| {
                let (name, id, type_name, attributes, version, groups, connectivity) =
                    row.map_err(backend)?;
                Ok(IndexedThing {
                    name,
                    id,
                    type_name,
                    attributes: codec::attributes(&attributes)?,
                    group_names: codec::group_list(groups.as_deref()),
                    version,
                    connectivity,
                })
            })
            .collect()
        })
        .await
    }

    // Device identity: the SQL lives in `devices.rs`.

    async fn insert_certificate(&self, certificate: &CertificateRecord) -> StoreResult<()> {
        devices::insert_certificate(self, certificate).await
    }

    async fn get_certificate(&self, id: &str) -> StoreResult<Option<CertificateRecord>> {
        devices::get_certificate(self, id).await
    }

    async fn replace_certificate(
        &self,
        certificate: &CertificateRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        devices::replace_certificate(self, certificate, expected_version).await
    }

    async fn delete_certificate(
        &self,
        id: &str,
        expected_version: i64,
        detach_policies: bool,
    ) -> StoreResult<DeleteOutcome> {
        devices::delete_certificate(self, id, expected_version, detach_policies).await
    }

    async fn list_certificates(
        &self,
        ca_certificate_id: Option<&str>,
        page: &PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<CertificateRecord>> {
        devices::list_certificates(self, ca_certificate_id, page, ascending).await
    }

    async fn insert_ca_certificate(&self, ca: &CaCertificateRecord) -> StoreResult<()> {
        devices::insert_ca_certificate(self, ca).await
    }

    async fn get_ca_certificate(&self, id: &str) -> StoreResult<Option<CaCertificateRecord>> {
        devices::get_ca_certificate(self, id).await
    }

    async fn find_ca_certificates(&self, subject: &str) -> StoreResult<Vec<CaCertificateRecord>> {
        devices::find_ca_certificates(self, subject).await
    }

    async fn replace_ca_certificate(
        &self,
        ca: &CaCertificateRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        devices::replace_ca_certificate(self, ca, expected_version).await
    }

    async fn delete_ca_certificate(
        &self,
        id: &str,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        devices::delete_ca_certificate(self, id, expected_version).await
    }

    async fn list_ca_certificates(
        &self,
        page: &PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<CaCertificateRecord>> {
        devices::list_ca_certificates(self, page, ascending).await
    }

    async fn attach_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
        exclusive: bool,
        at: Timestamp,
    ) -> StoreResult<AttachOutcome> {
        devices::attach_thing_principal(self, thing, certificate_id, exclusive, at).await
    }

    async fn detach_thing_principal(&self, thing: &str, certificate_id: &str) -> StoreResult<bool> {
        devices::detach_thing_principal(self, thing, certificate_id).await
    }

    async fn get_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
    ) -> StoreResult<Option<ThingPrincipal>> {
        devices::get_thing_principal(self, thing, certificate_id).await
    }

    async fn list_thing_principals(
        &self,
        thing: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingPrincipal>> {
        devices::list_thing_principals(self, thing, page).await
    }

    async fn list_principal_things(
        &self,
        certificate_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingPrincipal>> {
        devices::list_principal_things(self, certificate_id, page).await
    }

    async fn insert_policy(&self, policy: &PolicyRecord) -> StoreResult<()> {
        devices::insert_policy(self, policy).await
    }

    async fn get_policy(&self, name: &str) -> StoreResult<Option<PolicyRecord>> {
        devices::get_policy(self, name).await
    }

    async fn list_policies(
        &self,
        page: &PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<String>> {
        devices::list_policies(self, page, ascending).await
    }

    async fn delete_policy(&self, name: &str) -> StoreResult<DeleteOutcome> {
        devices::delete_policy(self, name).await
    }

    async fn insert_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
        at: Timestamp,
        max_versions: usize,
    ) -> StoreResult<VersionOutcome> {
        devices::insert_policy_version(self, name, document, set_as_default, at, max_versions).await
    }

    async fn list_policy_versions(
        &self,
        name: &str,
    ) -> StoreResult<Option<Vec<PolicyVersionRecord>>> {
        devices::list_policy_versions(self, name).await
    }

    async fn set_default_policy_version(
        &self,
        name: &str,
        version: i64,
        at: Timestamp,
    ) -> StoreResult<CasOutcome> {
        devices::set_default_policy_version(self, name, version, at).await
    }

    async fn delete_policy_version(&self, name: &str, version: i64) -> StoreResult<DeleteOutcome> {
        devices::delete_policy_version(self, name, version).await
    }

    async fn attach_policy(
        &self,
        name: &str,
        target: &PolicyTarget,
        at: Timestamp,
        max_per_target: usize,
    ) -> StoreResult<AttachOutcome> {
        devices::attach_policy(self, name, target, at, max_per_target).await
    }

    async fn detach_policy(&self, name: &str, target_arn: &str) -> StoreResult<bool> {
        devices::detach_policy(self, name, target_arn).await
    }

    async fn list_attached_policies(
        &self,
        target_arn: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>> {
        devices::list_attached_policies(self, target_arn, page).await
    }

    async fn list_policy_targets(
        &self,
        name: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>> {
        devices::list_policy_targets(self, name, page).await
    }

    async fn principal_policies(
        &self,
        certificate_id: &str,
        thing: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>> {
        devices::principal_policies(self, certificate_id, thing).await
    }

    async fn get_presence(&self, client_id: &str) -> StoreResult<Option<Presence>> {
        devices::get_presence(self, client_id).await
    }

    async fn put_presence(&self, presence: &Presence) -> StoreResult<CasOutcome> {
        devices::put_presence(self, presence).await
    }
}

/// The connectivity of an index document from the presence columns starting at `first`
/// (all NULL when the client never connected).
fn connectivity_from(row: &Row, first: usize) -> rusqlite::Result<Option<Connectivity>> {
    let connected: Option<bool> = row.get(first)?;
    Ok(match connected {
        None => None,
        Some(connected) => Some(Connectivity {
            connected,
            timestamp: row.get(first + 1)?,
            disconnect_reason: row.get(first + 2)?,
        }),
    })
}

fn access_key_from_row(row: &Row) -> rusqlite::Result<AccessKey> {
    Ok(AccessKey {
        access_key_id: row.get(0)?,
        secret_access_key: row.get(1)?,
        description: row.get(2)?,
        created_at: Timestamp(row.get(3)?),
    })
}
