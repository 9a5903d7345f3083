//! CreateDynamicThingGroup, UpdateDynamicThingGroup and DeleteDynamicThingGroup: the registry
//! operations whose effect on membership is a rebuild (see `membership`).
//!
//! Each holds the membership lock's exclusive side from the moment it reads the indexing
//! configuration until the group's members are stored, so no thing write slips between the
//! query check and the build.

use drover_core::names::check_name;
use drover_core::query::{self, QUERY_VERSION, THINGS_INDEX};
use drover_core::registry::{
    DynamicGroupQuery, ThingGroup, ThingGroupSpec, ThingGroupUpdate, version_matches,
};
use drover_store::{CasOutcome, StoreError};

use crate::index::check_index_and_version;
use crate::registry::{Registry, group_not_found, group_version_conflict, new_id};
use crate::{ServiceError, ServiceResult};

/// Dynamic thing groups per account (AWS's quota).
pub const MAX_DYNAMIC_GROUPS: usize = 100;

/// What CreateDynamicThingGroup asks for.
#[derive(Debug, Clone, Default)]
pub struct DynamicGroupSpec {
    /// Name, description, attributes and tags; `parent` and `dynamic` are ignored.
    pub group: ThingGroupSpec,
    pub query_string: String,
    pub index_name: Option<String>,
    pub query_version: Option<String>,
}

/// What UpdateDynamicThingGroup asks for.
#[derive(Debug, Clone, Default)]
pub struct DynamicGroupUpdate {
    pub properties: ThingGroupUpdate,
    pub query_string: Option<String>,
    pub index_name: Option<String>,
    pub query_version: Option<String>,
}

fn not_dynamic(name: &str) -> ServiceError {
    ServiceError::InvalidRequest(format!(
        "Thing group {name} is a static thing group; use the static thing group operations"
    ))
}

impl Registry {
    /// CreateDynamicThingGroup: checks the query, stores the group, and fills it before
    /// returning. Repeating an identical request returns the existing group.
    pub async fn create_dynamic_thing_group(
        &self,
        spec: DynamicGroupSpec,
    ) -> ServiceResult<ThingGroup> {
        let mut group_spec = spec.group;
        group_spec.parent = None;
        group_spec.validate()?;
        let _exclusive = self.membership.exclusive().await;
        let configuration = self.membership.configuration().await?;
        check_index_and_version(
            spec.index_name.as_deref(),
            spec.query_version.as_deref(),
            &configuration,
        )?;
        let schema = configuration.schema();
        query::compile(&spec.query_string, &schema)?;
        group_spec.dynamic = Some(DynamicGroupQuery {
            query_string: spec.query_string,
            query_version: QUERY_VERSION.into(),
            index_name: THINGS_INDEX.into(),
            status: "BUILDING".into(),
        });
        let existing = self.store.list_dynamic_groups().await?;
        if existing.len() >= MAX_DYNAMIC_GROUPS
            && !existing.iter().any(|g| g.name == group_spec.name)
        {
            return Err(ServiceError::LimitExceeded(format!(
                "An account may have at most {MAX_DYNAMIC_GROUPS} dynamic thing groups"
            )));
        }
        let group = group_spec.clone().into_group(new_id(), self.clock.now());
        match self.store.insert_thing_group(&group).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) => {
                return match self.store.get_thing_group(&group_spec.name).await? {
                    Some(existing) if group_spec.matches(&existing) => Ok(existing),
                    Some(existing) => Err(ServiceError::AlreadyExists {
                        message: format!(
                            "Thing Group {} already exists with a different definition",
                            group_spec.name
                        ),
                        resource_arn: self.scope.thing_group(&existing.name),
                        resource_id: existing.id,
                    }),
                    None => Err(ServiceError::Internal(
                        "thing group changed concurrently".into(),
                    )),
                };
            }
            Err(e) => return Err(e.into()),
        }
        self.membership
            .rebuild(std::slice::from_ref(&group), &schema)
            .await?;
        self.get_group(&group.name).await
    }

    /// UpdateDynamicThingGroup; returns the new version. A new query is checked, stored and
    /// built before the call returns.
    pub async fn update_dynamic_thing_group(
        &self,
        name: &str,
        update: DynamicGroupUpdate,
    ) -> ServiceResult<i64> {
        check_name("thingGroupName", name)?;
        update.properties.validate()?;
        let _exclusive = self.membership.exclusive().await;
        let configuration = self.membership.configuration().await?;
        let schema = configuration.schema();
        if update.query_string.is_some()
            || update.index_name.is_some()
            || update.query_version.is_some()
        {
            check_index_and_version(
                update.index_name.as_deref(),
                update.query_version.as_deref(),
                &configuration,
            )?;
        }
        if let Some(query_string) = &update.query_string {
            query::compile(query_string, &schema)?;
        }
        loop {
            let current = self.get_group(name).await?;
            let Some(dynamic) = &current.dynamic else {
                return Err(not_dynamic(name));
            };
            if !version_matches(update.properties.expected_version, current.version) {
                return Err(group_version_conflict(name));
            }
            let mut next = update.properties.apply(&current)?;
            let query_changed = update
                .query_string
                .as_ref()
                .is_some_and(|q| *q != dynamic.query_string);
            if let (Some(query_string), Some(next_dynamic)) =
                (&update.query_string, next.dynamic.as_mut())
            {
                next_dynamic.query_string = query_string.clone();
                if query_changed {
                    next_dynamic.status = "REBUILDING".into();
                }
            }
            match self
                .store
                .replace_thing_group(&next, current.version)
                .await?
            {
                CasOutcome::Done => {
                    if query_changed {
                        self.membership
                            .rebuild(std::slice::from_ref(&next), &schema)
                            .await?;
                    }
                    return Ok(next.version);
                }
                CasOutcome::NotFound => return Err(group_not_found(name)),
                CasOutcome::VersionMismatch if update.properties.expected_version.is_some() => {
                    return Err(group_version_conflict(name));
                }
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    /// DeleteDynamicThingGroup. Deleting a group that does not exist succeeds, as on AWS.
    pub async fn delete_dynamic_thing_group(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> ServiceResult<()> {
        check_name("thingGroupName", name)?;
        match self.store.get_thing_group(name).await? {
            None => Ok(()),
            Some(group) if group.dynamic.is_none() => Err(not_dynamic(name)),
            Some(_) => self.delete_thing_group(name, expected_version).await,
        }
    }
}
