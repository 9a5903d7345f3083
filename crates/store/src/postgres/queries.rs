//! The SQL behind [`crate::Store`] for PostgreSQL. It answers exactly as the SQLite store does
//! (the conformance suite holds both to that); where the SQL differs, a comment says why.
//!
//! Concurrency: unlike SQLite's single writer, several nodes write at once, so every
//! compare-and-swap is one conditional `UPDATE`/`DELETE` (PostgreSQL re-checks its `WHERE`
//! against a row another transaction just changed), and a write that spans rows (a thing and
//! its `thing_attributes`) runs in one transaction.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use drover_core::presence::Presence;
use drover_core::query::{CandidateScan, Connectivity, IndexedThing};
use drover_core::registry::{DynamicGroupQuery, Thing, ThingGroup, ThingType};
use drover_core::time::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, backend, constraint, devices};
use crate::codec::{self, to_json};
use crate::index_sql;
use crate::*;

const THING_COLUMNS: &str = "name, id, type_name, attributes, version, created_at, updated_at";
const TYPE_COLUMNS: &str = "name, id, description, searchable_attributes, mqtt5_configuration, \
                            deprecated, deprecation_date, created_at, tags";
const GROUP_COLUMNS: &str = "name, id, parent_name, description, attributes, version, created_at, \
                             tags, query_string, query_version, index_name, status";

type Param<'a> = &'a (dyn ToSql + Sync);

fn thing_from_row(row: &Row) -> StoreResult<Thing> {
    Ok(Thing {
        name: row.try_get(0).map_err(backend)?,
        id: row.try_get(1).map_err(backend)?,
        type_name: row.try_get(2).map_err(backend)?,
        attributes: codec::attributes(row.try_get(3).map_err(backend)?)?,
        version: row.try_get(4).map_err(backend)?,
        created_at: Timestamp(row.try_get(5).map_err(backend)?),
        updated_at: Timestamp(row.try_get(6).map_err(backend)?),
    })
}

fn type_from_row(row: &Row) -> StoreResult<ThingType> {
    Ok(ThingType {
        name: row.try_get(0).map_err(backend)?,
        id: row.try_get(1).map_err(backend)?,
        description: row.try_get(2).map_err(backend)?,
        searchable_attributes: codec::strings(row.try_get(3).map_err(backend)?)?,
        mqtt5_configuration: codec::value(row.try_get(4).map_err(backend)?)?,
        deprecated: row.try_get(5).map_err(backend)?,
        deprecation_date: row
            .try_get::<_, Option<i64>>(6)
            .map_err(backend)?
            .map(Timestamp),
        created_at: Timestamp(row.try_get(7).map_err(backend)?),
        tags: codec::tags(row.try_get(8).map_err(backend)?)?,
    })
}

fn group_from_row(row: &Row) -> StoreResult<ThingGroup> {
    let query_string: Option<String> = row.try_get(8).map_err(backend)?;
    let optional = |index: usize| -> StoreResult<String> {
        Ok(row
            .try_get::<_, Option<String>>(index)
            .map_err(backend)?
            .unwrap_or_default())
    };
    let dynamic = match query_string {
        Some(query_string) => Some(DynamicGroupQuery {
            query_string,
            query_version: optional(9)?,
            index_name: optional(10)?,
            status: optional(11)?,
        }),
        None => None,
    };
    Ok(ThingGroup {
        name: row.try_get(0).map_err(backend)?,
        id: row.try_get(1).map_err(backend)?,
        parent: row.try_get(2).map_err(backend)?,
        description: row.try_get(3).map_err(backend)?,
        attributes: codec::attributes(row.try_get(4).map_err(backend)?)?,
        version: row.try_get(5).map_err(backend)?,
        created_at: Timestamp(row.try_get(6).map_err(backend)?),
        tags: codec::tags(row.try_get(7).map_err(backend)?)?,
        dynamic,
    })
}

fn access_key_from_row(row: &Row) -> StoreResult<AccessKey> {
    Ok(AccessKey {
        access_key_id: row.try_get(0).map_err(backend)?,
        secret_access_key: row.try_get(1).map_err(backend)?,
        description: row.try_get(2).map_err(backend)?,
        created_at: Timestamp(row.try_get(3).map_err(backend)?),
    })
}

/// Rewrites the attribute index rows of `thing`; one statement for all of them.
async fn write_thing_attributes(client: &impl GenericClient, thing: &Thing) -> StoreResult<()> {
    let delete = client
        .prepare_cached("DELETE FROM thing_attributes WHERE thing_name = $1")
        .await
        .map_err(backend)?;
    client
        .execute(&delete, &[&thing.name])
        .await
        .map_err(backend)?;
    if thing.attributes.is_empty() {
        return Ok(());
    }
    let (keys, values): (Vec<&str>, Vec<&str>) = thing
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .unzip();
    let insert = client
        .prepare_cached(
            "INSERT INTO thing_attributes (thing_name, key, value)
             SELECT $1, key, value FROM UNNEST($2::TEXT[], $3::TEXT[]) AS a (key, value)",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&insert, &[&thing.name, &keys, &values])
        .await
        .map_err(backend)?;
    Ok(())
}

async fn current_version(
    client: &impl GenericClient,
    table: &str,
    name: &str,
) -> StoreResult<Option<i64>> {
    let stmt = client
        .prepare_cached(&format!("SELECT version FROM {table} WHERE name = $1"))
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&name])
        .await
        .map_err(backend)?
        .map(|row| row.try_get(0).map_err(backend))
        .transpose()
}

/// The outcome of a compare-and-swap write that changed no row: the record is gone, or its
/// version moved on.
async fn missed(client: &impl GenericClient, table: &str, name: &str) -> StoreResult<CasOutcome> {
    Ok(match current_version(client, table, name).await? {
        None => CasOutcome::NotFound,
        Some(_) => CasOutcome::VersionMismatch,
    })
}

/// Runs the conditional delete `DELETE FROM {table} WHERE name = $1 AND ($2 IS NULL OR version
/// = $2)` and says what happened, as SQLite's read-then-delete does.
async fn delete_versioned(
    client: &impl GenericClient,
    table: &str,
    name: &str,
    expected_version: Option<i64>,
) -> StoreResult<CasOutcome> {
    let stmt = client
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE name = $1 AND ($2::BIGINT IS NULL OR version = $2)"
        ))
        .await
        .map_err(backend)?;
    let n = client
        .execute(&stmt, &[&name, &expected_version])
        .await
        .map_err(|e| constraint(e, name))?;
    if n > 0 {
        return Ok(CasOutcome::Done);
    }
    if expected_version.is_none() {
        // Nothing matched on name alone, so it was absent; a second look could see a thing
        // created since and wrongly report a version mismatch.
        return Ok(CasOutcome::NotFound);
    }
    missed(client, table, name).await
}

/// `LIMIT` for a page: one row past the page says whether more follow.
fn fetch_limit(page: &PageRequest) -> i64 {
    i64::try_from(page.limit)
        .unwrap_or(i64::MAX)
        .saturating_add(1)
}

/// Fetches up to `page.limit + 1` rows of `sql`, whose last parameter must be the `LIMIT`.
async fn page_rows<T>(
    client: &impl GenericClient,
    sql: &str,
    args: &[Param<'_>],
    page: &PageRequest,
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let limit = fetch_limit(page);
    let mut params: Vec<Param<'_>> = args.to_vec();
    params.push(&limit);
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &params).await.map_err(backend)?;
    rows.iter().map(map).collect()
}

/// The row `sql` finds for `key` (its only parameter), mapped with `map`.
async fn fetch_one<T>(
    client: &impl GenericClient,
    sql: &str,
    key: &str,
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let stmt = client.prepare_cached(sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&key])
        .await
        .map_err(backend)?
        .as_ref()
        .map(map)
        .transpose()
}

#[async_trait]
impl Store for PostgresStore {
    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        let client = self.client().await?;
        // Two statements, not one: a single statement's snapshot would miss a value another
        // node committed while this insert waited on it, and return no row.
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await
            .map_err(backend)?;
        client
            .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        fetch_one(
            &self.client().await?,
            "SELECT value FROM settings WHERE key = $1",
            key,
            |row| row.try_get(0).map_err(backend),
        )
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn insert_access_key(&self, key: &AccessKey) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO access_keys (access_key_id, secret_access_key, description, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &key.access_key_id,
                    &key.secret_access_key,
                    &key.description,
                    &key.created_at.0,
                ],
            )
            .await
            .map_err(|e| constraint(e, &key.access_key_id))?;
        Ok(())
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKey>> {
        let sql = "SELECT access_key_id, secret_access_key, description, created_at
                   FROM access_keys WHERE access_key_id = $1";
        fetch_one(
            &self.client().await?,
            sql,
            access_key_id,
            access_key_from_row,
        )
        .await
    }

    async fn list_access_keys(&self) -> StoreResult<Vec<AccessKey>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT access_key_id, secret_access_key, description, created_at
                 FROM access_keys ORDER BY created_at, access_key_id",
                &[],
            )
            .await
            .map_err(backend)?;
        rows.iter().map(access_key_from_row).collect()
    }

    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM access_keys WHERE access_key_id = $1",
                &[&access_key_id],
            )
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn insert_thing(&self, thing: &Thing) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO things ({THING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .await
            .map_err(backend)?;
        tx.execute(
            &stmt,
            &[
                &thing.name,
                &thing.id,
                &thing.type_name,
                &to_json(&thing.attributes),
                &thing.version,
                &thing.created_at.0,
                &thing.updated_at.0,
            ],
        )
        .await
        .map_err(|e| constraint(e, &thing.name))?;
        write_thing_attributes(&tx, thing).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_thing(&self, name: &str) -> StoreResult<Option<Thing>> {
        let sql = format!("SELECT {THING_COLUMNS} FROM things WHERE name = $1");
        fetch_one(&self.client().await?, &sql, name, thing_from_row).await
    }

    async fn replace_thing(&self, thing: &Thing, expected_version: i64) -> StoreResult<CasOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let stmt = tx
            .prepare_cached(
                "UPDATE things SET type_name = $2, attributes = $3, version = $4, updated_at = $5
                 WHERE name = $1 AND version = $6",
            )
            .await
            .map_err(backend)?;
        let n = tx
            .execute(
                &stmt,
                &[
                    &thing.name,
                    &thing.type_name,
                    &to_json(&thing.attributes),
                    &thing.version,
                    &thing.updated_at.0,
                    &expected_version,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return missed(&tx, "things", &thing.name).await;
        }
        // The UPDATE holds the thing's row lock until commit, so no other writer rewrites
        // these attribute rows in between.
        write_thing_attributes(&tx, thing).await?;
        tx.commit().await.map_err(backend)?;
        Ok(CasOutcome::Done)
    }

    async fn delete_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<CasOutcome> {
        let client = self.client().await?;
        // Attribute rows and memberships go with it (ON DELETE CASCADE).
        delete_versioned(&client, "things", name, expected_version).await
    }

    async fn list_things(
        &self,
        filter: &ThingFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Thing>> {
        let after = page.after.clone().unwrap_or_default();
        let mut args: Vec<String> = Vec::new();
        let mut sql = format!("SELECT {THING_COLUMNS} FROM things t WHERE t.name > $1");
        if let Some(type_name) = &filter.type_name {
            args.push(type_name.clone());
            sql += &format!(" AND t.type_name = ${}", args.len() + 1);
        }
        if let Some(attribute) = &filter.attribute_name {
            args.push(attribute.clone());
            let key_arg = args.len() + 1;
            match &filter.attribute_value {
                Some(value) if filter.attribute_value_prefix => {
                    args.push(value.clone());
                    args.push(codec::prefix_upper_bound(value));
                    // A bytewise range: case-sensitive, as AWS matches, and index-friendly.
                    sql += &format!(
                        " AND t.name IN (SELECT thing_name FROM thing_attributes
                           WHERE key = ${key_arg} AND value >= ${} AND value < ${})",
                        args.len(),
                        args.len() + 1
                    );
                }
                Some(value) => {
                    args.push(value.clone());
                    sql += &format!(
                        " AND t.name IN (SELECT thing_name FROM thing_attributes
                           WHERE key = ${key_arg} AND value = ${})",
                        args.len() + 1
                    );
                }
                None => {
                    sql += &format!(
                        " AND t.name IN (SELECT thing_name FROM thing_attributes WHERE key = ${key_arg})"
                    );
                }
            }
        }
        sql += &format!(" ORDER BY t.name LIMIT ${}", args.len() + 2);
        let mut params: Vec<Param<'_>> = vec![&after];
        params.extend(args.iter().map(|a| a as Param<'_>));
        let client = self.client().await?;
        let things = page_rows(&client, &sql, &params, page, thing_from_row).await?;
        Ok(Page::from_rows(things, page.limit, |t| t.name.clone()))
    }

    async fn insert_thing_type(&self, thing_type: &ThingType) -> StoreResult<()> {
        let t = thing_type;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "INSERT INTO thing_types ({TYPE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .await
            .map_err(backend)?;
        client
            .execute(
                &stmt,
                &[
                    &t.name,
                    &t.id,
                    &t.description,
                    &to_json(&t.searchable_attributes),
                    &t.mqtt5_configuration.as_ref().map(to_json),
                    &t.deprecated,
                    &t.deprecation_date.map(|d| d.0),
                    &t.created_at.0,
                    &to_json(&t.tags),
                ],
            )
            .await
            .map_err(|e| constraint(e, &t.name))?;
        Ok(())
    }

    async fn get_thing_type(&self, name: &str) -> StoreResult<Option<ThingType>> {
        let sql = format!("SELECT {TYPE_COLUMNS} FROM thing_types WHERE name = $1");
        fetch_one(&self.client().await?, &sql, name, type_from_row).await
    }

    async fn replace_thing_type(&self, thing_type: &ThingType) -> StoreResult<CasOutcome> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE thing_types SET deprecated = $2, deprecation_date = $3 WHERE name = $1",
                &[
                    &thing_type.name,
                    &thing_type.deprecated,
                    &thing_type.deprecation_date.map(|d| d.0),
                ],
            )
            .await
            .map_err(backend)?;
        Ok(if n == 0 {
            CasOutcome::NotFound
        } else {
            CasOutcome::Done
        })
    }

    async fn delete_thing_type(&self, name: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM thing_types WHERE name = $1", &[&name])
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn list_thing_types(
        &self,
        name: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingType>> {
        let after = page.after.clone().unwrap_or_default();
        let mut params: Vec<Param<'_>> = vec![&after];
        let mut sql = format!("SELECT {TYPE_COLUMNS} FROM thing_types WHERE name > $1");
        if let Some(name) = &name {
            params.push(name);
            sql += " AND name = $2";
        }
        sql += &format!(" ORDER BY name LIMIT ${}", params.len() + 1);
        let client = self.client().await?;
        let types = page_rows(&client, &sql, &params, page, type_from_row).await?;
        Ok(Page::from_rows(types, page.limit, |t| t.name.clone()))
    }

    async fn insert_thing_group(&self, group: &ThingGroup) -> StoreResult<()> {
        let g = group;
        let dynamic = g.dynamic.as_ref();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "INSERT INTO thing_groups ({GROUP_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .await
            .map_err(backend)?;
        client
            .execute(
                &stmt,
                &[
                    &g.name,
                    &g.id,
                    &g.parent,
                    &g.description,
                    &to_json(&g.attributes),
                    &g.version,
                    &g.created_at.0,
                    &to_json(&g.tags),
                    &dynamic.map(|d| &d.query_string),
                    &dynamic.map(|d| &d.query_version),
                    &dynamic.map(|d| &d.index_name),
                    &dynamic.map(|d| &d.status),
                ],
            )
            .await
            .map_err(|e| constraint(e, &g.name))?;
        Ok(())
    }

    async fn get_thing_group(&self, name: &str) -> StoreResult<Option<ThingGroup>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM thing_groups WHERE name = $1");
        fetch_one(&self.client().await?, &sql, name, group_from_row).await
    }

    async fn replace_thing_group(
        &self,
        group: &ThingGroup,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        let g = group;
        let dynamic = g.dynamic.as_ref();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE thing_groups SET description = $2, attributes = $3, version = $4, tags = $5,
                    query_string = $6, query_version = $7, index_name = $8, status = $9
                 WHERE name = $1 AND version = $10",
            )
            .await
            .map_err(backend)?;
        let n = client
            .execute(
                &stmt,
                &[
                    &g.name,
                    &g.description,
                    &to_json(&g.attributes),
                    &g.version,
                    &to_json(&g.tags),
                    &dynamic.map(|d| &d.query_string),
                    &dynamic.map(|d| &d.query_version),
                    &dynamic.map(|d| &d.index_name),
                    &dynamic.map(|d| &d.status),
                    &expected_version,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return missed(&client, "thing_groups", &g.name).await;
        }
        Ok(CasOutcome::Done)
    }

    async fn delete_thing_group(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<CasOutcome> {
        let client = self.client().await?;
        // Memberships go with it (ON DELETE CASCADE); a group that still has children fails
        // the parent_name foreign key: MissingReference, as in SQLite.
        delete_versioned(&client, "thing_groups", name, expected_version).await
    }

    async fn list_thing_groups(
        &self,
        filter: &ThingGroupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingGroup>> {
        let after = page.after.clone().unwrap_or_default();
        let bounds = filter
            .name_prefix
            .as_deref()
            .map(|p| (p.to_string(), codec::prefix_upper_bound(p)));
        let mut params: Vec<Param<'_>> = vec![&after];
        let mut sql = format!("SELECT {GROUP_COLUMNS} FROM thing_groups WHERE name > $1");
        match &filter.parent {
            None => {}
            Some(None) => sql += " AND parent_name IS NULL",
            Some(Some(parent)) => {
                params.push(parent);
                sql += &format!(" AND parent_name = ${}", params.len());
            }
        }
        if let Some((low, high)) = &bounds {
            params.push(low);
            params.push(high);
            // A bytewise range: case-sensitive, as AWS matches, and index-friendly.
            sql += &format!(
                " AND name >= ${} AND name < ${}",
                params.len() - 1,
                params.len()
            );
        }
        sql += &format!(" ORDER BY name LIMIT ${}", params.len() + 1);
        let client = self.client().await?;
        let groups = page_rows(&client, &sql, &params, page, group_from_row).await?;
        Ok(Page::from_rows(groups, page.limit, |g| g.name.clone()))
    }

    async fn add_thing_to_group(
        &self,
        group: &str,
        thing: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO thing_group_members (group_name, thing_name, added_at) VALUES ($1, $2, $3)
                 ON CONFLICT (group_name, thing_name) DO NOTHING",
                &[&group, &thing, &at.0],
            )
            .await
            .map_err(|e| constraint(e, &format!("{group}/{thing}")))?;
        Ok(n > 0)
    }

    async fn remove_thing_from_group(&self, group: &str, thing: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM thing_group_members WHERE group_name = $1 AND thing_name = $2",
                &[&group, &thing],
            )
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn list_things_in_groups(
        &self,
        groups: &[String],
        page: &PageRequest,
    ) -> StoreResult<Page<String>> {
        if groups.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_after: None,
            });
        }
        let after = page.after.clone().unwrap_or_default();
        // One array parameter instead of SQLite's `IN (?, ?, ...)`: one prepared statement
        // serves any number of groups.
        let client = self.client().await?;
        let rows = page_rows(
            &client,
            "SELECT DISTINCT thing_name FROM thing_group_members
             WHERE thing_name > $1 AND group_name = ANY($2)
             ORDER BY thing_name LIMIT $3",
            &[&after, &groups],
            page,
            |r| r.try_get::<_, String>(0).map_err(backend),
        )
        .await?;
        Ok(Page::from_rows(rows, page.limit, String::clone))
    }

    async fn list_groups_for_thing(
        &self,
        thing: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>> {
        let after = page.after.clone().unwrap_or_default();
        let client = self.client().await?;
        let rows = page_rows(
            &client,
            "SELECT group_name FROM thing_group_members WHERE thing_name = $2 AND group_name > $1
             ORDER BY group_name LIMIT $3",
            &[&after, &thing],
            page,
            |r| r.try_get::<_, String>(0).map_err(backend),
        )
        .await?;
        Ok(Page::from_rows(rows, page.limit, String::clone))
    }

    async fn list_dynamic_groups(&self) -> StoreResult<Vec<ThingGroup>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM thing_groups WHERE query_string IS NOT NULL ORDER BY name"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client.query(&stmt, &[]).await.map_err(backend)?;
        rows.iter().map(group_from_row).collect()
    }

    async fn apply_memberships(
        &self,
        changes: &[MembershipChange],
        at: Timestamp,
    ) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let (mut join_groups, mut join_things, mut leave_groups, mut leave_things) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for change in changes {
            if change.join {
                join_groups.push(change.group.as_str());
                join_things.push(change.thing.as_str());
            } else {
                leave_groups.push(change.group.as_str());
                leave_things.push(change.thing.as_str());
            }
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Whole arrays per statement: one round trip for a group build of any size. The joins
        // against things and thing_groups skip memberships whose thing or group vanished.
        tx.execute(
            "DELETE FROM thing_group_members m
             USING unnest($1::text[], $2::text[]) AS c(group_name, thing_name)
             WHERE m.group_name = c.group_name AND m.thing_name = c.thing_name",
            &[&leave_groups, &leave_things],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "INSERT INTO thing_group_members (group_name, thing_name, added_at)
             SELECT c.group_name, c.thing_name, $3
             FROM unnest($1::text[], $2::text[]) AS c(group_name, thing_name)
             JOIN things t ON t.name = c.thing_name
             JOIN thing_groups g ON g.name = c.group_name
             ON CONFLICT (group_name, thing_name) DO NOTHING",
            &[&join_groups, &join_things, &at.0],
        )
        .await
        .map_err(|e| constraint(e, "thing group membership"))?;
        tx.commit().await.map_err(backend)
    }

    async fn index_candidates(
        &self,
        scan: &CandidateScan,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<Vec<String>> {
        let (sql, args) = index_sql::candidates(scan, after, limit, |n| format!("${n}"));
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let params: Vec<Param<'_>> = args.iter().map(|a| a as Param<'_>).collect();
        let rows = client.query(&stmt, &params).await.map_err(backend)?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(backend))
            .collect()
    }

    async fn index_documents(&self, names: &[String]) -> StoreResult<Vec<IndexedThing>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT t.name, t.id, t.type_name, t.attributes, t.version,
                    (SELECT string_agg(group_name, ',') FROM thing_group_members m
                     WHERE m.thing_name = t.name),
                    p.connected, p.timestamp_ms, p.disconnect_reason
                 FROM things t LEFT JOIN presence p ON p.client_id = t.name
                 WHERE t.name = ANY($1) ORDER BY t.name",
            )
            .await
            .map_err(backend)?;
        client
            .query(&stmt, &[&names])
            .await
            .map_err(backend)?
            .iter()
            .map(|row| {
                Ok(IndexedThing {
                    name: row.try_get(0).map_err(backend)?,
                    id: row.try_get(1).map_err(backend)?,
                    type_name: row.try_get(2).map_err(backend)?,
                    attributes: codec::attributes(row.try_get(3).map_err(backend)?)?,
                    group_names: codec::group_list(row.try_get(5).map_err(backend)?),
                    version: row.try_get(4).map_err(backend)?,
                    connectivity: connectivity_from(row, 6)?,
                })
            })
            .collect()
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
fn connectivity_from(row: &Row, first: usize) -> StoreResult<Option<Connectivity>> {
    let connected: Option<bool> = row.try_get(first).map_err(backend)?;
    Ok(match connected {
        None => None,
        Some(connected) => Some(Connectivity {
            connected,
            timestamp: row.try_get(first + 1).map_err(backend)?,
            disconnect_reason: row.try_get(first + 2).map_err(backend)?,
        }),
    })
}
