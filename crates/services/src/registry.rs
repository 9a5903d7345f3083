//! The thing registry service: things, thing types, thing groups and group membership.
//!
//! Writes follow one pattern: validate the request (core), read the current record, apply the
//! core rule, and write back with compare-and-swap on the version read. When the caller gave
//! no `expectedVersion`, a lost race is retried rather than reported: the caller asked for the
//! change regardless of what else happened.

use std::sync::Arc;

use drover_core::arn::{ArnScope, ResourceKind};
use drover_core::limits::{MAX_GROUP_DEPTH, MAX_GROUPS_PER_THING};
use drover_core::names::check_name;
use drover_core::registry::*;
use drover_store::{
    CasOutcome, Page, PageRequest, SharedStore, StoreError, ThingFilter, ThingGroupFilter,
};

use crate::membership::DynamicMembership;
use crate::pagination;
use crate::{Clock, ServiceError, ServiceResult};

/// A listing page as the API returns it: items plus the token for the next page.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

impl<T> From<Page<T>> for Listing<T> {
    fn from(page: Page<T>) -> Self {
        Listing {
            items: page.items,
            next_token: page.next_after.as_deref().map(pagination::encode),
        }
    }
}

/// A group with the chain of its ancestors, root first (DescribeThingGroup's
/// `rootToParentThingGroups`).
#[derive(Debug, Clone)]
pub struct GroupWithAncestors {
    pub group: ThingGroup,
    pub ancestors: Vec<String>,
}

/// A reference to a resource by name or by ARN, as several operations accept either.
#[derive(Debug, Clone, Default)]
pub struct NameOrArn {
    pub name: Option<String>,
    pub arn: Option<String>,
}

/// ListThings input.
#[derive(Debug, Clone, Default)]
pub struct ListThingsQuery {
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub use_prefix_attribute_value: bool,
    pub thing_type_name: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// ListThingGroups input.
#[derive(Debug, Clone, Default)]
pub struct ListThingGroupsQuery {
    pub parent_group: Option<String>,
    pub name_prefix_filter: Option<String>,
    pub recursive: Option<bool>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// The registry service. Every write that changes what a thing's index document says (its
/// attributes, type, or static groups) re-evaluates the thing's dynamic-group memberships
/// before returning, holding the membership lock's shared side (see `membership`).
#[derive(Clone)]
pub struct Registry {
    pub(crate) store: SharedStore,
    pub(crate) scope: ArnScope,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) membership: DynamicMembership,
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Registry {
    pub fn new(store: SharedStore, scope: ArnScope, clock: Arc<dyn Clock>) -> Self {
        let membership = DynamicMembership::new(store.clone(), clock.clone());
        Self {
            store,
            scope,
            clock,
            membership,
        }
    }

    /// Dynamic-group maintenance, shared with the fleet index service.
    pub fn membership(&self) -> &DynamicMembership {
        &self.membership
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    // ---- things -------------------------------------------------------------------------

    /// CreateThing. Repeating an identical request returns the existing thing.
    pub async fn create_thing(&self, spec: ThingSpec) -> ServiceResult<Thing> {
        spec.validate()?;
        if let Some(type_name) = &spec.type_name {
            self.usable_thing_type(type_name).await?;
        }
        let thing = spec.clone().into_thing(new_id(), self.clock.now());
        let _shared = self.membership.shared().await;
        match self.store.insert_thing(&thing).await {
            Ok(()) => {
                self.membership.thing_changed(&thing.name).await?;
                Ok(thing)
            }
            Err(StoreError::AlreadyExists(_)) => {
                let existing = self.store.get_thing(&spec.name).await?;
                match existing {
                    Some(existing) if spec.matches(&existing) => Ok(existing),
                    Some(existing) => Err(ServiceError::AlreadyExists {
                        message: format!(
                            "Thing {} already exists in account with different attributes",
                            spec.name
                        ),
                        resource_arn: self.scope.thing(&existing.name),
                        resource_id: existing.id,
                    }),
                    // Deleted between our insert and read: the caller may simply retry.
                    None => Err(ServiceError::Internal("thing changed concurrently".into())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_thing(&self, name: &str) -> ServiceResult<Thing> {
        check_name("thingName", name)?;
        self.store
            .get_thing(name)
            .await?
            .ok_or_else(|| thing_not_found(name))
    }

    /// UpdateThing.
    pub async fn update_thing(&self, name: &str, update: ThingUpdate) -> ServiceResult<Thing> {
        check_name("thingName", name)?;
        update.validate()?;
        if let Some(type_name) = &update.type_name {
            self.usable_thing_type(type_name).await?;
        }
        let _shared = self.membership.shared().await;
        loop {
            let current = self
                .store
                .get_thing(name)
                .await?
                .ok_or_else(|| thing_not_found(name))?;
            if !version_matches(update.expected_version, current.version) {
                return Err(thing_version_conflict(name));
            }
            let next = update.apply(&current, self.clock.now())?;
            match self.store.replace_thing(&next, current.version).await? {
                CasOutcome::Done => {
                    self.membership.thing_changed(name).await?;
                    return Ok(next);
                }
                CasOutcome::NotFound => return Err(thing_not_found(name)),
                CasOutcome::VersionMismatch if update.expected_version.is_some() => {
                    return Err(thing_version_conflict(name));
                }
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    /// DeleteThing. Deleting a thing that does not exist succeeds, as on AWS; a thing with
    /// principals attached is refused until they are detached (AWS answers so too).
    pub async fn delete_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> ServiceResult<()> {
        check_name("thingName", name)?;
        let _shared = self.membership.shared().await;
        let dynamic_groups = self.dynamic_groups_of(name).await?;
        let all_groups = self.all_groups_for_thing(name).await?;
        let outcome = match self.store.delete_thing(name, expected_version).await {
            Err(StoreError::MissingReference(_)) => {
                return Err(ServiceError::InvalidRequest(format!(
                    "Cannot delete. Thing {name} is still attached to one or more principals"
                )));
            }
            other => other?,
        };
        match outcome {
            CasOutcome::Done => {
                for group in all_groups.iter().filter(|g| !dynamic_groups.contains(g)) {
                    self.membership.announce_left(group, [name.to_string()]);
                }
                for group in dynamic_groups {
                    self.membership.announce_left(&group, [name.to_string()]);
                }
                self.membership.announce_deleted(name);
                Ok(())
            }
            CasOutcome::NotFound => Ok(()),
            CasOutcome::VersionMismatch => Err(thing_version_conflict(name)),
        }
    }

    pub async fn list_things(&self, query: ListThingsQuery) -> ServiceResult<Listing<Thing>> {
        let page = pagination::request(query.next_token.as_deref(), query.max_results)?;
        if let Some(attribute) = &query.attribute_name {
            drover_core::names::check_attribute_key(attribute)?;
        }
        if let Some(value) = &query.attribute_value {
            if query.attribute_name.is_none() {
                return Err(ServiceError::InvalidRequest(
                    "attributeValue requires attributeName".into(),
                ));
            }
            drover_core::names::check_attribute_value(
                query.attribute_name.as_deref().unwrap_or_default(),
                value,
            )?;
        }
        if let Some(type_name) = &query.thing_type_name {
            check_name("thingTypeName", type_name)?;
        }
        let filter = ThingFilter {
            attribute_name: query.attribute_name,
            attribute_value: query.attribute_value,
            attribute_value_prefix: query.use_prefix_attribute_value,
            type_name: query.thing_type_name,
        };
        Ok(self.store.list_things(&filter, &page).await?.into())
    }

    // ---- thing types --------------------------------------------------------------------

    pub async fn create_thing_type(&self, spec: ThingTypeSpec) -> ServiceResult<ThingType> {
        spec.validate()?;
        let thing_type = spec.clone().into_thing_type(new_id(), self.clock.now());
        match self.store.insert_thing_type(&thing_type).await {
            Ok(()) => Ok(thing_type),
            Err(StoreError::AlreadyExists(_)) => match self.store.get_thing_type(&spec.name).await?
            {
                Some(existing) if spec.matches(&existing) => Ok(existing),
                Some(existing) => Err(ServiceError::AlreadyExists {
                    message: format!(
                        "Thing type {} already exists with a different definition",
                        spec.name
                    ),
                    resource_arn: self.scope.thing_type(&existing.name),
                    resource_id: existing.id,
                }),
                None => Err(ServiceError::Internal(
                    "thing type changed concurrently".into(),
                )),
            },
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_thing_type(&self, name: &str) -> ServiceResult<ThingType> {
        check_name("thingTypeName", name)?;
        self.store
            .get_thing_type(name)
            .await?
            .ok_or_else(|| thing_type_not_found(name))
    }

    pub async fn list_thing_types(
        &self,
        name: Option<&str>,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<ThingType>> {
        let page = pagination::request(next_token, max_results)?;
        if let Some(name) = name {
            check_name("thingTypeName", name)?;
        }
        Ok(self.store.list_thing_types(name, &page).await?.into())
    }

    /// DeprecateThingType, or its undo.
    pub async fn deprecate_thing_type(&self, name: &str, undo: bool) -> ServiceResult<()> {
        let mut thing_type = self.describe_thing_type(name).await?;
        thing_type.deprecated = !undo;
        thing_type.deprecation_date = if undo { None } else { Some(self.clock.now()) };
        match self.store.replace_thing_type(&thing_type).await? {
            CasOutcome::Done => Ok(()),
            _ => Err(thing_type_not_found(name)),
        }
    }

    /// DeleteThingType: only a deprecated type that no thing uses. AWS also makes callers wait
    /// five minutes after deprecating; drover does not, since nothing here needs the delay.
    pub async fn delete_thing_type(&self, name: &str) -> ServiceResult<()> {
        let thing_type = self.describe_thing_type(name).await?;
        if !thing_type.deprecated {
            return Err(ServiceError::InvalidRequest(format!(
                "Thing type {name} must be deprecated before it can be deleted"
            )));
        }
        let users = ThingFilter {
            type_name: Some(name.to_string()),
            ..Default::default()
        };
        let in_use = self
            .store
            .list_things(
                &users,
                &PageRequest {
                    after: None,
                    limit: 1,
                },
            )
            .await?;
        if !in_use.items.is_empty() {
            return Err(ServiceError::InvalidRequest(format!(
                "Thing type {name} cannot be deleted while things are associated with it"
            )));
        }
        self.store.delete_thing_type(name).await?;
        Ok(())
    }

    /// A thing type that exists and is not deprecated, as CreateThing/UpdateThing require.
    async fn usable_thing_type(&self, name: &str) -> ServiceResult<ThingType> {
        let thing_type = self
            .store
            .get_thing_type(name)
            .await?
            .ok_or_else(|| thing_type_not_found(name))?;
        if thing_type.deprecated {
            return Err(ServiceError::InvalidRequest(format!(
                "Thing type {name} is deprecated; things cannot be associated with it"
            )));
        }
        Ok(thing_type)
    }

    // ---- thing groups -------------------------------------------------------------------

    /// CreateThingGroup. Repeating an identical request returns the existing group.
    pub async fn create_thing_group(&self, spec: ThingGroupSpec) -> ServiceResult<ThingGroup> {
        spec.validate()?;
        if let Some(parent) = &spec.parent {
            let parent_group = self.store.get_thing_group(parent).await?.ok_or_else(|| {
                ServiceError::InvalidRequest(format!("Parent thing group {parent} does not exist"))
            })?;
            if parent_group.dynamic.is_some() {
                return Err(ServiceError::InvalidRequest(format!(
                    "Dynamic thing group {parent} cannot have child groups"
                )));
            }
            let depth = self.ancestors(&parent_group).await?.len() + 2;
            if depth > MAX_GROUP_DEPTH {
                return Err(ServiceError::InvalidRequest(format!(
                    "Thing group hierarchies are limited to {MAX_GROUP_DEPTH} levels"
                )));
            }
        }
        let group = spec.clone().into_group(new_id(), self.clock.now());
        match self.store.insert_thing_group(&group).await {
            Ok(()) => Ok(group),
            Err(StoreError::AlreadyExists(_)) => {
                match self.store.get_thing_group(&spec.name).await? {
                    Some(existing) if spec.matches(&existing) => Ok(existing),
                    Some(existing) => Err(ServiceError::AlreadyExists {
                        message: format!(
                            "Thing Group {} already exists with a different definition",
                            spec.name
                        ),
                        resource_arn: self.scope.thing_group(&existing.name),
                        resource_id: existing.id,
                    }),
                    None => Err(ServiceError::Internal(
                        "thing group changed concurrently".into(),
                    )),
                }
            }
            Err(StoreError::MissingReference(_)) => Err(ServiceError::InvalidRequest(format!(
                "Parent thing group {} does not exist",
                spec.parent.unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_thing_group(&self, name: &str) -> ServiceResult<GroupWithAncestors> {
        let group = self.get_group(name).await?;
        let ancestors = self.ancestors(&group).await?;
        Ok(GroupWithAncestors { group, ancestors })
    }

    /// UpdateThingGroup; returns the new version.
    pub async fn update_thing_group(
        &self,
        name: &str,
        update: ThingGroupUpdate,
    ) -> ServiceResult<i64> {
        check_name("thingGroupName", name)?;
        update.validate()?;
        loop {
            let current = self.get_group(name).await?;
            if !version_matches(update.expected_version, current.version) {
                return Err(group_version_conflict(name));
            }
            let next = update.apply(&current)?;
            match self
                .store
                .replace_thing_group(&next, current.version)
                .await?
            {
                CasOutcome::Done => return Ok(next.version),
                CasOutcome::NotFound => return Err(group_not_found(name)),
                CasOutcome::VersionMismatch if update.expected_version.is_some() => {
                    return Err(group_version_conflict(name));
                }
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    /// DeleteThingGroup. A missing group is not an error (AWS); a group with child groups
    /// cannot be deleted.
    pub async fn delete_thing_group(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> ServiceResult<()> {
        check_name("thingGroupName", name)?;
        let children = ThingGroupFilter {
            parent: Some(Some(name.to_string())),
            name_prefix: None,
        };
        let child = self
            .store
            .list_thing_groups(
                &children,
                &PageRequest {
                    after: None,
                    limit: 1,
                },
            )
            .await?;
        if let Some(child) = child.items.first() {
            return Err(ServiceError::InvalidRequest(format!(
                "Cannot delete thing group {name}: it has child group {}",
                child.name
            )));
        }
        let _shared = self.membership.shared().await;
        let group = self.store.get_thing_group(name).await?;
        let members = match &group {
            Some(_) => self.membership.all_members(name).await?,
            None => Vec::new(),
        };
        match self.store.delete_thing_group(name, expected_version).await {
            Ok(CasOutcome::Done) => {
                if group.is_some_and(|g| g.dynamic.is_some()) {
                    self.membership.announce_left(name, members);
                } else {
                    // The members' thingGroupNames changed; dynamic queries may see that.
                    for member in members {
                        self.membership.thing_changed(&member).await?;
                    }
                }
                Ok(())
            }
            Ok(CasOutcome::NotFound) => Ok(()),
            Ok(CasOutcome::VersionMismatch) => Err(group_version_conflict(name)),
            // A child group was created concurrently and the parent reference held.
            Err(StoreError::MissingReference(_)) | Err(StoreError::AlreadyExists(_)) => {
                Err(ServiceError::InvalidRequest(format!(
                    "Cannot delete thing group {name}: it has child groups"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// ListThingGroups. Without `parentGroup`, all groups (or only root groups when
    /// `recursive` is false); with it, its direct children (or all descendants when
    /// `recursive` is true).
    pub async fn list_thing_groups(
        &self,
        query: ListThingGroupsQuery,
    ) -> ServiceResult<Listing<ThingGroup>> {
        let page = pagination::request(query.next_token.as_deref(), query.max_results)?;
        if let Some(prefix) = &query.name_prefix_filter {
            check_name("namePrefixFilter", prefix)?;
        }
        match &query.parent_group {
            None => {
                let parent = (query.recursive == Some(false)).then_some(None);
                let filter = ThingGroupFilter {
                    parent,
                    name_prefix: query.name_prefix_filter,
                };
                Ok(self.store.list_thing_groups(&filter, &page).await?.into())
            }
            Some(parent) => {
                self.get_group(parent).await?;
                if query.recursive == Some(true) {
                    let mut names = self.descendants(parent).await?;
                    if let Some(prefix) = &query.name_prefix_filter {
                        names.retain(|n| n.starts_with(prefix.as_str()));
                    }
                    names.sort();
                    let start = page
                        .after
                        .as_ref()
                        .map_or(0, |a| names.partition_point(|n| n <= a));
                    let mut groups = Vec::new();
                    for name in names.iter().skip(start).take(page.limit + 1) {
                        if let Some(group) = self.store.get_thing_group(name).await? {
                            groups.push(group);
                        }
                    }
                    Ok(Page::from_rows(groups, page.limit, |g| g.name.clone()).into())
                } else {
                    let filter = ThingGroupFilter {
                        parent: Some(Some(parent.clone())),
                        name_prefix: query.name_prefix_filter,
                    };
                    Ok(self.store.list_thing_groups(&filter, &page).await?.into())
                }
            }
        }
    }

    /// AddThingToThingGroup.
    pub async fn add_thing_to_thing_group(
        &self,
        group: NameOrArn,
        thing: NameOrArn,
        override_dynamic_groups: bool,
    ) -> ServiceResult<()> {
        let _shared = self.membership.shared().await;
        let (group_name, thing_name) = self
            .add_thing_unguarded(group, thing, override_dynamic_groups)
            .await?;
        self.membership
            .announce_joined(&group_name, [thing_name.clone()]);
        self.membership.thing_changed(&thing_name).await
    }

    /// AddThingToThingGroup's work; the caller holds the membership lock's shared side.
    /// Returns the group's and the thing's names.
    async fn add_thing_unguarded(
        &self,
        group: NameOrArn,
        thing: NameOrArn,
        override_dynamic_groups: bool,
    ) -> ServiceResult<(String, String)> {
        let group_name = self.resolve(ResourceKind::ThingGroup, "thingGroup", group)?;
        let thing_name = self.resolve(ResourceKind::Thing, "thing", thing)?;
        let group = self.get_group(&group_name).await?;
        if group.dynamic.is_some() {
            return Err(ServiceError::InvalidRequest(format!(
                "Cannot add thing {thing_name} to dynamic thing group {group_name}: its members are chosen by its query"
            )));
        }
        self.describe_thing(&thing_name).await?;
        let current = self.all_groups_for_thing(&thing_name).await?;
        if current.iter().any(|g| g == &group_name) {
            return Ok((group_name, thing_name));
        }
        let root = self.root_of(&group).await?;
        for other in &current {
            let Some(other_group) = self.store.get_thing_group(other).await? else {
                continue;
            };
            if other_group.dynamic.is_none() && self.root_of(&other_group).await? == root {
                return Err(ServiceError::InvalidRequest(format!(
                    "Thing {thing_name} is already a member of thing group {other}, which is in the same \
                     hierarchy as {group_name}; a thing can belong to only one group of a hierarchy"
                )));
            }
        }
        if current.len() >= MAX_GROUPS_PER_THING {
            let evictable = if override_dynamic_groups {
                self.last_dynamic_group(&current).await?
            } else {
                None
            };
            match evictable {
                Some(dynamic) => {
                    self.store
                        .remove_thing_from_group(&dynamic, &thing_name)
                        .await?;
                    self.membership
                        .announce_left(&dynamic, [thing_name.clone()]);
                }
                None => {
                    return Err(ServiceError::InvalidRequest(format!(
                        "Thing {thing_name} already belongs to {MAX_GROUPS_PER_THING} thing groups, the maximum"
                    )));
                }
            }
        }
        match self
            .store
            .add_thing_to_group(&group_name, &thing_name, self.clock.now())
            .await
        {
            Ok(_) => Ok((group_name, thing_name)),
            Err(StoreError::MissingReference(_)) => Err(ServiceError::NotFound(format!(
                "Thing {thing_name} or thing group {group_name} was deleted concurrently"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// RemoveThingFromThingGroup. Removing a thing that is not a member succeeds.
    pub async fn remove_thing_from_thing_group(
        &self,
        group: NameOrArn,
        thing: NameOrArn,
    ) -> ServiceResult<()> {
        let group_name = self.resolve(ResourceKind::ThingGroup, "thingGroup", group)?;
        let thing_name = self.resolve(ResourceKind::Thing, "thing", thing)?;
        let group = self.get_group(&group_name).await?;
        if group.dynamic.is_some() {
            return Err(ServiceError::InvalidRequest(format!(
                "Cannot remove thing {thing_name} from dynamic thing group {group_name}: its members are chosen by its query"
            )));
        }
        self.describe_thing(&thing_name).await?;
        let _shared = self.membership.shared().await;
        if self
            .store
            .remove_thing_from_group(&group_name, &thing_name)
            .await?
        {
            self.membership
                .announce_left(&group_name, [thing_name.clone()]);
        }
        self.membership.thing_changed(&thing_name).await
    }

    /// UpdateThingGroupsForThing: removals first, then additions, so a thing can move between
    /// groups of one hierarchy in a single call. Every group is checked before anything changes.
    pub async fn update_thing_groups_for_thing(
        &self,
        thing_name: &str,
        to_add: &[String],
        to_remove: &[String],
        override_dynamic_groups: bool,
    ) -> ServiceResult<()> {
        check_name("thingName", thing_name)?;
        for name in to_add.iter().chain(to_remove) {
            check_name("thingGroupName", name)?;
            let group = self.get_group(name).await?;
            if group.dynamic.is_some() {
                return Err(ServiceError::InvalidRequest(format!(
                    "Thing group {name} is dynamic; its members are chosen by its query"
                )));
            }
        }
        self.describe_thing(thing_name).await?;
        let _shared = self.membership.shared().await;
        for name in to_remove {
            if self.store.remove_thing_from_group(name, thing_name).await? {
                self.membership
                    .announce_left(name, [thing_name.to_string()]);
            }
        }
        for name in to_add {
            self.add_thing_unguarded(
                NameOrArn {
                    name: Some(name.clone()),
                    arn: None,
                },
                NameOrArn {
                    name: Some(thing_name.to_string()),
                    arn: None,
                },
                override_dynamic_groups,
            )
            .await?;
            self.membership
                .announce_joined(name, [thing_name.to_string()]);
        }
        self.membership.thing_changed(thing_name).await
    }

    /// ListThingsInThingGroup; with `recursive`, things of descendant groups too.
    pub async fn list_things_in_thing_group(
        &self,
        group_name: &str,
        recursive: bool,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<String>> {
        let page = pagination::request(next_token, max_results)?;
        self.get_group(group_name).await?;
        let mut groups = vec![group_name.to_string()];
        if recursive {
            groups.extend(self.descendants(group_name).await?);
        }
        Ok(self
            .store
            .list_things_in_groups(&groups, &page)
            .await?
            .into())
    }

    /// ListThingGroupsForThing: (name, ARN) pairs of the groups the thing is a direct member of.
    pub async fn list_thing_groups_for_thing(
        &self,
        thing_name: &str,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<String>> {
        let page = pagination::request(next_token, max_results)?;
        self.describe_thing(thing_name).await?;
        Ok(self
            .store
            .list_groups_for_thing(thing_name, &page)
            .await?
            .into())
    }

    // ---- helpers ------------------------------------------------------------------------

    /// The dynamic groups `thing` is a member of.
    async fn dynamic_groups_of(&self, thing: &str) -> ServiceResult<Vec<String>> {
        let dynamic = self.store.list_dynamic_groups().await?;
        if dynamic.is_empty() {
            return Ok(Vec::new());
        }
        let mine = self.all_groups_for_thing(thing).await?;
        Ok(dynamic
            .into_iter()
            .map(|g| g.name)
            .filter(|g| mine.contains(g))
            .collect())
    }

    pub(crate) async fn get_group(&self, name: &str) -> ServiceResult<ThingGroup> {
        check_name("thingGroupName", name)?;
        self.store
            .get_thing_group(name)
            .await?
            .ok_or_else(|| group_not_found(name))
    }

    /// Names of `group`'s ancestors, root first.
    async fn ancestors(&self, group: &ThingGroup) -> ServiceResult<Vec<String>> {
        let mut chain = Vec::new();
        let mut parent = group.parent.clone();
        while let Some(name) = parent {
            if chain.len() > MAX_GROUP_DEPTH || chain.contains(&name) {
                return Err(ServiceError::Internal(format!(
                    "thing group hierarchy of {} is corrupt",
                    group.name
                )));
            }
            parent = self
                .store
                .get_thing_group(&name)
                .await?
                .and_then(|g| g.parent);
            chain.push(name);
        }
        chain.reverse();
        Ok(chain)
    }

    async fn root_of(&self, group: &ThingGroup) -> ServiceResult<String> {
        Ok(self
            .ancestors(group)
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| group.name.clone()))
    }

    /// Names of every descendant of `name` (breadth first; the hierarchy is at most 7 deep).
    /// Names of every group below `name` in its hierarchy.
    pub async fn descendants(&self, name: &str) -> ServiceResult<Vec<String>> {
        let mut found = Vec::new();
        let mut frontier = vec![name.to_string()];
        while let Some(parent) = frontier.pop() {
            let mut after = None;
            loop {
                let filter = ThingGroupFilter {
                    parent: Some(Some(parent.clone())),
                    name_prefix: None,
                };
                let page = self
                    .store
                    .list_thing_groups(&filter, &PageRequest { after, limit: 250 })
                    .await?;
                for child in page.items {
                    frontier.push(child.name.clone());
                    found.push(child.name);
                }
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(found)
    }

    async fn all_groups_for_thing(&self, thing: &str) -> ServiceResult<Vec<String>> {
        let page = PageRequest {
            after: None,
            limit: 250,
        };
        Ok(self.store.list_groups_for_thing(thing, &page).await?.items)
    }

    /// The dynamic group a static addition may evict under `overrideDynamicGroups`: the last
    /// one by name.
    async fn last_dynamic_group(&self, groups: &[String]) -> ServiceResult<Option<String>> {
        for name in groups.iter().rev() {
            if let Some(group) = self.store.get_thing_group(name).await?
                && group.dynamic.is_some()
            {
                return Ok(Some(group.name));
            }
        }
        Ok(None)
    }

    /// The name behind a name-or-ARN reference; exactly one must be given.
    fn resolve(
        &self,
        kind: ResourceKind,
        what: &str,
        reference: NameOrArn,
    ) -> ServiceResult<String> {
        let name = match (reference.name, reference.arn) {
            (Some(name), _) => name,
            (None, Some(arn)) => {
                if arn.len() > drover_core::limits::MAX_ARN_LEN {
                    return Err(ServiceError::InvalidRequest(format!(
                        "{what}Arn is too long"
                    )));
                }
                self.scope
                    .parse(kind, &arn)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ServiceError::InvalidRequest(format!("Invalid {what}Arn: {arn}"))
                    })?
            }
            (None, None) => {
                return Err(ServiceError::InvalidRequest(format!(
                    "Either {what}Name or {what}Arn must be specified"
                )));
            }
        };
        check_name(&format!("{what}Name"), &name)?;
        Ok(name)
    }
}

fn thing_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("Thing {name} cannot be found."))
}

fn thing_type_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("Thing type {name} cannot be found."))
}

pub(crate) fn group_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("Thing group {name} cannot be found."))
}

fn thing_version_conflict(name: &str) -> ServiceError {
    ServiceError::VersionConflict(format!(
        "The version for thing {name} does not match the expected version."
    ))
}

pub(crate) fn group_version_conflict(name: &str) -> ServiceError {
    ServiceError::VersionConflict(format!(
        "The version for thing group {name} does not match the expected version."
    ))
}
