//! Dynamic thing-group membership: keeping each dynamic group's stored members equal to the
//! things its query selects, and announcing every change.
//!
//! Maintenance is incremental. A thing's create, update, delete or static-membership change
//! re-evaluates that thing against every dynamic group ([`DynamicMembership::thing_changed`]);
//! a new or changed query, or a new indexing configuration, rebuilds the groups concerned over
//! all things ([`DynamicMembership::rebuild`]). Both run before the API call that caused them
//! returns, so the next call sees the result (AWS is only eventually consistent here).
//!
//! Ordering: thing writes hold the shared side of one lock and rebuilds the exclusive side, so
//! a rebuild never reads a thing while a write to it is half applied. The lock is per process;
//! nodes sharing PostgreSQL converge because every start reconciles all dynamic groups
//! ([`DynamicMembership::reconcile_all`]), which also repairs the one gap a crash can leave
//! (a thing written, its membership change not yet).
//!
//! In a dynamic group's query `thingGroupNames` sees the thing's static groups only, so one
//! dynamic group's membership never depends on another's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use drover_core::indexing::IndexingConfiguration;
use drover_core::limits::MAX_GROUPS_PER_THING;
use drover_core::query::{self, CandidateScan, IndexedThing, Matcher, Query, Schema};
use drover_core::registry::ThingGroup;
use drover_store::{MembershipChange, SharedStore};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, broadcast};

use crate::{Clock, ServiceError, ServiceResult};

/// The settings key under which the indexing configuration is stored.
const CONFIGURATION_KEY: &str = "indexing_configuration";
/// Documents read per store round trip during a rebuild.
const DOCUMENT_BATCH: usize = 2_000;
/// Membership changes written per transaction during a rebuild.
const CHANGE_BATCH: usize = 50_000;
/// Events a slow subscriber may fall behind by before it sees `Lagged` and must reconcile.
const EVENT_BUFFER: usize = 65_536;

/// A thing joined or left a dynamic group. The jobs service consumes these for CONTINUOUS
/// jobs; a subscriber that lags (`broadcast::error::RecvError::Lagged`) must re-read the
/// group's members instead of relying on the events it missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipEvent {
    pub group: String,
    pub thing: String,
    pub joined: bool,
}

/// Counts of one rebuild, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildSummary {
    pub things_evaluated: usize,
    pub joined: usize,
    pub left: usize,
    /// Reading and evaluating the candidates.
    pub evaluate_time: std::time::Duration,
    /// Storing the changes (durably) and announcing them.
    pub store_time: std::time::Duration,
}

/// Parsed queries by group name, with the query string each was parsed from.
type QueryCache = HashMap<String, (String, Arc<Query>)>;

#[derive(Clone)]
pub struct DynamicMembership {
    store: SharedStore,
    clock: Arc<dyn Clock>,
    lock: Arc<RwLock<()>>,
    events: broadcast::Sender<MembershipEvent>,
    deletions: broadcast::Sender<String>,
    parsed: Arc<Mutex<QueryCache>>,
}

impl DynamicMembership {
    pub fn new(store: SharedStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            lock: Arc::default(),
            events: broadcast::channel(EVENT_BUFFER).0,
            deletions: broadcast::channel(EVENT_BUFFER).0,
            parsed: Arc::default(),
        }
    }

    /// Membership changes from now on: dynamic groups' joins and leaves, and static groups'
    /// (AddThingToThingGroup, RemoveThingFromThingGroup, a deleted thing leaving its groups).
    pub fn subscribe(&self) -> broadcast::Receiver<MembershipEvent> {
        self.events.subscribe()
    }

    /// Names of things deleted from now on (the jobs service marks their executions REMOVED).
    pub fn subscribe_deletions(&self) -> broadcast::Receiver<String> {
        self.deletions.subscribe()
    }

    pub(crate) fn announce_deleted(&self, thing: &str) {
        let _ = self.deletions.send(thing.to_string());
    }

    pub(crate) fn announce_joined(&self, group: &str, things: impl IntoIterator<Item = String>) {
        for thing in things {
            let _ = self.events.send(MembershipEvent {
                group: group.to_string(),
                thing,
                joined: true,
            });
        }
    }

    /// Held by every write that changes what a thing's index document says.
    pub(crate) async fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.lock.read().await
    }

    /// Held while dynamic groups are created, changed or rebuilt.
    pub(crate) async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock.write().await
    }

    /// The stored indexing configuration, or AWS's default (indexing off).
    pub async fn configuration(&self) -> ServiceResult<IndexingConfiguration> {
        match self.store.get_setting(CONFIGURATION_KEY).await? {
            None => Ok(IndexingConfiguration::default()),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                ServiceError::Internal(format!("stored indexing configuration is corrupt: {e}"))
            }),
        }
    }

    pub(crate) async fn store_configuration(
        &self,
        configuration: &IndexingConfiguration,
    ) -> ServiceResult<()> {
        let json = serde_json::to_string(configuration)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(self.store.put_setting(CONFIGURATION_KEY, &json).await?)
    }

    /// The compiled query of a dynamic group.
    fn matcher(&self, group: &ThingGroup, schema: &Schema) -> Option<Matcher> {
        let query = self.parsed_query(group)?;
        Some(Matcher::compile_lenient(&query, schema))
    }

    /// A dynamic group's parsed query, parsing only when its query string changed.
    fn parsed_query(&self, group: &ThingGroup) -> Option<Arc<Query>> {
        let query_string = &group.dynamic.as_ref()?.query_string;
        let mut parsed = self
            .parsed
            .lock()
            .expect("query cache lock is never poisoned");
        let cached = parsed
            .get(&group.name)
            .filter(|(text, _)| text == query_string)
            .map(|(_, query)| query.clone());
        let query = match cached {
            Some(query) => query,
            None => {
                // Stored queries were checked when stored; one that no longer parses (a newer
                // drover tightened the grammar) selects nothing rather than failing writes.
                let query = Arc::new(match query::parse(query_string) {
                    Ok(parsed) => parsed.query,
                    Err(e) => {
                        tracing::warn!(group = %group.name, error = %e, "stored dynamic-group query no longer parses");
                        Query::Not(Box::new(Query::Term(query::Term {
                            field: None,
                            predicate: query::Predicate::Exists,
                        })))
                    }
                });
                parsed.insert(group.name.clone(), (query_string.clone(), query.clone()));
                query
            }
        };
        Some(query)
    }

    /// Re-evaluates one thing against every dynamic group. The registry calls this after each
    /// write while holding [`Self::shared`]; it is public for benchmarks and repair tools.
    pub async fn thing_changed(&self, thing: &str) -> ServiceResult<()> {
        let groups = self.store.list_dynamic_groups().await?;
        if groups.is_empty() {
            return Ok(());
        }
        let Some(document) = self
            .store
            .index_documents(&[thing.to_string()])
            .await?
            .pop()
        else {
            return Ok(());
        };
        let schema = self.configuration().await?.schema();
        let matchers: Vec<(String, Matcher)> = groups
            .iter()
            .filter_map(|g| Some((g.name.clone(), self.matcher(g, &schema)?)))
            .collect();
        let changes = changes_for(&document, &matchers, &schema);
        self.apply(changes).await?;
        Ok(())
    }

    /// A client's connection state changed: re-evaluates the thing of that name, but only when
    /// some dynamic group's query reads `connectivity.*` (otherwise nothing can change).
    pub async fn connectivity_changed(&self, thing: &str) -> ServiceResult<()> {
        let groups = self.store.list_dynamic_groups().await?;
        let uses_connectivity = groups
            .iter()
            .filter_map(|g| self.parsed_query(g))
            .any(|q| q.uses_connectivity());
        if !uses_connectivity {
            return Ok(());
        }
        let _shared = self.shared().await;
        self.thing_changed(thing).await
    }

    /// Announces that `things` left `group` because it (or they) were deleted.
    pub(crate) fn announce_left(&self, group: &str, things: impl IntoIterator<Item = String>) {
        for thing in things {
            let _ = self.events.send(MembershipEvent {
                group: group.to_string(),
                thing,
                joined: false,
            });
        }
    }

    /// Recomputes the members of `groups` over all things, stores the difference and marks
    /// the groups ACTIVE. The caller holds [`Self::exclusive`].
    pub(crate) async fn rebuild(
        &self,
        groups: &[ThingGroup],
        schema: &Schema,
    ) -> ServiceResult<RebuildSummary> {
        let started = std::time::Instant::now();
        let all_dynamic = self.store.list_dynamic_groups().await?;
        let matchers: Vec<(String, Matcher)> = groups
            .iter()
            .filter_map(|g| Some((g.name.clone(), self.matcher(g, schema)?)))
            .collect();
        if matchers.is_empty() {
            return Ok(RebuildSummary::default());
        }
        // One group can narrow its scan with an index; several share one pass over all things.
        let scan = match groups {
            [group] => self
                .parsed_query(group)
                .map_or(CandidateScan::All, |q| query::plan(&q, schema)),
            _ => CandidateScan::All,
        };
        let candidates = self.store.index_candidates(&scan, None, None).await?;
        let mut summary = RebuildSummary::default();
        let mut changes = Vec::new();
        let dynamic_names: HashSet<&str> = all_dynamic.iter().map(|g| g.name.as_str()).collect();
        for names in candidates.chunks(DOCUMENT_BATCH) {
            for document in self.store.index_documents(names).await? {
                summary.things_evaluated += 1;
                changes.extend(changes_for_subset(
                    &document,
                    &matchers,
                    schema,
                    &dynamic_names,
                ));
            }
        }
        if scan != CandidateScan::All {
            // Members outside the narrowed scan no longer match.
            let candidates: HashSet<&str> = candidates.iter().map(String::as_str).collect();
            let group = &matchers[0].0;
            for member in self.all_members(group).await? {
                if !candidates.contains(member.as_str()) {
                    changes.push(MembershipChange {
                        group: group.clone(),
                        thing: member,
                        join: false,
                    });
                }
            }
        }
        summary.joined = changes.iter().filter(|c| c.join).count();
        summary.left = changes.len() - summary.joined;
        summary.evaluate_time = started.elapsed();
        for batch in changes.chunks(CHANGE_BATCH) {
            self.apply(batch.to_vec()).await?;
        }
        summary.store_time = started.elapsed() - summary.evaluate_time;
        for group in groups {
            self.set_status(group, "ACTIVE").await?;
        }
        metrics::histogram!("drover_dynamic_group_rebuild_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::info!(
            groups = matchers.len(),
            things = summary.things_evaluated,
            joined = summary.joined,
            left = summary.left,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rebuilt dynamic thing groups"
        );
        Ok(summary)
    }

    /// Rebuilds one dynamic group now (a repair tool; also how benchmarks time a build's
    /// phases). Not found when the group does not exist or is static.
    pub async fn rebuild_group(&self, name: &str) -> ServiceResult<RebuildSummary> {
        let _exclusive = self.exclusive().await;
        let group = self
            .store
            .get_thing_group(name)
            .await?
            .filter(|g| g.dynamic.is_some())
            .ok_or_else(|| {
                ServiceError::NotFound(format!("Dynamic thing group {name} cannot be found."))
            })?;
        let schema = self.configuration().await?.schema();
        self.rebuild(std::slice::from_ref(&group), &schema).await
    }

    /// Rebuilds every dynamic group; run at start (see the module comment).
    pub async fn reconcile_all(&self) -> ServiceResult<RebuildSummary> {
        let _exclusive = self.exclusive().await;
        let groups = self.store.list_dynamic_groups().await?;
        if groups.is_empty() {
            return Ok(RebuildSummary::default());
        }
        let schema = self.configuration().await?.schema();
        self.rebuild(&groups, &schema).await
    }

    /// Sets a dynamic group's status (BUILDING, REBUILDING, ACTIVE) without a new version.
    pub(crate) async fn set_status(&self, group: &ThingGroup, status: &str) -> ServiceResult<()> {
        let Some(mut current) = self.store.get_thing_group(&group.name).await? else {
            return Ok(());
        };
        let Some(dynamic) = current.dynamic.as_mut() else {
            return Ok(());
        };
        if dynamic.status == status {
            return Ok(());
        }
        dynamic.status = status.to_string();
        let version = current.version;
        self.store.replace_thing_group(&current, version).await?;
        Ok(())
    }

    /// Every member of `group`, in name order.
    pub async fn all_members(&self, group: &str) -> ServiceResult<Vec<String>> {
        let mut members = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_things_in_groups(
                    &[group.to_string()],
                    &drover_store::PageRequest {
                        after,
                        limit: 10_000,
                    },
                )
                .await?;
            members.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(members),
            }
        }
    }

    async fn apply(&self, changes: Vec<MembershipChange>) -> ServiceResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.store
            .apply_memberships(&changes, self.clock.now())
            .await?;
        metrics::counter!("drover_dynamic_group_membership_changes_total")
            .increment(changes.len() as u64);
        for change in changes {
            let _ = self.events.send(MembershipEvent {
                group: change.group,
                thing: change.thing,
                joined: change.join,
            });
        }
        Ok(())
    }
}

/// The membership changes one thing needs against every dynamic group.
fn changes_for(
    document: &IndexedThing,
    matchers: &[(String, Matcher)],
    schema: &Schema,
) -> Vec<MembershipChange> {
    let dynamic: HashSet<&str> = matchers.iter().map(|(name, _)| name.as_str()).collect();
    changes_for_subset(document, matchers, schema, &dynamic)
}

/// The changes one thing needs against `matchers`, a subset of the dynamic groups
/// `dynamic`. Leaves come first so they free room under the 10-groups-per-thing limit; a join
/// that would exceed it is skipped and logged (AWS skips such a thing too).
fn changes_for_subset(
    document: &IndexedThing,
    matchers: &[(String, Matcher)],
    schema: &Schema,
    dynamic: &HashSet<&str>,
) -> Vec<MembershipChange> {
    let mut visible = document.clone();
    visible
        .group_names
        .retain(|g| !dynamic.contains(g.as_str()));
    let mut leaves = Vec::new();
    let mut joins = Vec::new();
    for (group, matcher) in matchers {
        let member = document.group_names.iter().any(|g| g == group);
        let wanted = matcher.matches(&visible, schema);
        if member && !wanted {
            leaves.push(group);
        } else if wanted && !member {
            joins.push(group);
        }
    }
    let mut count = document.group_names.len() - leaves.len();
    let mut changes: Vec<MembershipChange> = leaves
        .into_iter()
        .map(|group| MembershipChange {
            group: group.clone(),
            thing: document.name.clone(),
            join: false,
        })
        .collect();
    for group in joins {
        if count >= MAX_GROUPS_PER_THING {
            tracing::warn!(thing = %document.name, group = %group, "thing matches a dynamic group but already belongs to {MAX_GROUPS_PER_THING} groups; not added");
            metrics::counter!("drover_dynamic_group_joins_skipped_total").increment(1);
            continue;
        }
        count += 1;
        changes.push(MembershipChange {
            group: group.clone(),
            thing: document.name.clone(),
            join: true,
        });
    }
    changes
}
