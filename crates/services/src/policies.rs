//! The policy service: AWS IoT policies and their versions, and their attachment to
//! certificates and thing groups.
//!
//! Documents are checked with the policy engine (`drover_core::policy`) before anything is
//! stored; the text is kept verbatim, as GetPolicy returns it. Every change to what an
//! attached policy allows is announced as a [`PrincipalChange`] so the broker re-authorizes.

use std::sync::Arc;

use drover_core::arn::ArnScope;
use drover_core::iot_policies::{
    self as rules, MAX_POLICIES_PER_TARGET, MAX_POLICY_VERSIONS, TargetRef,
};
use drover_core::policy::PolicyDocument;
use drover_store::{
    AttachOutcome, CasOutcome, DeleteOutcome, PolicyRecord, PolicyTarget, PolicyVersionRecord,
    SharedStore, StoreError, VersionOutcome,
};

use crate::devices::{PrincipalChange, PrincipalChanges};
use crate::pagination;
use crate::registry::{Listing, new_id};
use crate::{Clock, ServiceError, ServiceResult};

#[derive(Clone)]
pub struct Policies {
    store: SharedStore,
    scope: ArnScope,
    clock: Arc<dyn Clock>,
    changes: PrincipalChanges,
}

fn policy_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("Policy {name} cannot be found."))
}

fn version_not_found(name: &str, version: i64) -> ServiceError {
    ServiceError::NotFound(format!("Policy {name} has no version {version}."))
}

/// Checks a document with the policy engine (syntax, AWS's size limit).
fn check_document(document: &str) -> ServiceResult<()> {
    PolicyDocument::parse(document)
        .map(|_| ())
        .map_err(|e| ServiceError::MalformedPolicy(e.to_string()))
}

impl Policies {
    pub fn new(
        store: SharedStore,
        scope: ArnScope,
        clock: Arc<dyn Clock>,
        changes: PrincipalChanges,
    ) -> Self {
        Self {
            store,
            scope,
            clock,
            changes,
        }
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// CreatePolicy: version 1, the default.
    pub async fn create_policy(&self, name: &str, document: &str) -> ServiceResult<PolicyRecord> {
        rules::check_policy_name(name)?;
        check_document(document)?;
        let now = self.clock.now();
        let policy = PolicyRecord {
            name: name.to_string(),
            default_version: 1,
            document: document.to_string(),
            created_at: now,
            updated_at: now,
            generation_id: new_id(),
        };
        match self.store.insert_policy(&policy).await {
            Ok(()) => Ok(policy),
            Err(StoreError::AlreadyExists(_)) => Err(ServiceError::AlreadyExists {
                message: format!("Policy cannot be created - name already exists (name={name})"),
                resource_id: name.to_string(),
                resource_arn: self.scope.policy(name),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_policy(&self, name: &str) -> ServiceResult<PolicyRecord> {
        rules::check_policy_name(name)?;
        self.store
            .get_policy(name)
            .await?
            .ok_or_else(|| policy_not_found(name))
    }

    /// ListPolicies, in name order.
    pub async fn list_policies(
        &self,
        marker: Option<&str>,
        page_size: Option<i64>,
        ascending: bool,
    ) -> ServiceResult<Listing<String>> {
        let page = pagination::marker_request(marker, page_size)?;
        let page = self.store.list_policies(&page, ascending).await?;
        Ok(marker_listing(page))
    }

    /// DeletePolicy: only when it is attached to nothing and has no version besides the
    /// default.
    pub async fn delete_policy(&self, name: &str) -> ServiceResult<()> {
        rules::check_policy_name(name)?;
        match self.store.delete_policy(name).await? {
            DeleteOutcome::Done => Ok(()),
            DeleteOutcome::PoliciesAttached => Err(ServiceError::DeleteConflict(format!(
                "The policy cannot be deleted as the policy is attached to one or more \
                 principals (name={name})"
            ))),
            DeleteOutcome::HasOtherVersions => Err(ServiceError::DeleteConflict(format!(
                "Cannot delete the policy because it has one or more policy versions attached \
                 to it (name={name})"
            ))),
            _ => Err(policy_not_found(name)),
        }
    }

    /// CreatePolicyVersion.
    pub async fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
    ) -> ServiceResult<PolicyVersionRecord> {
        rules::check_policy_name(name)?;
        check_document(document)?;
        match self
            .store
            .insert_policy_version(
                name,
                document,
                set_as_default,
                self.clock.now(),
                MAX_POLICY_VERSIONS,
            )
            .await?
        {
            VersionOutcome::Created(version) => {
                if set_as_default {
                    self.changes.send(PrincipalChange::PermissionsChanged {
                        certificate_id: None,
                    });
                }
                Ok(version)
            }
            VersionOutcome::NotFound => Err(policy_not_found(name)),
            VersionOutcome::LimitExceeded => Err(ServiceError::VersionsLimitExceeded(format!(
                "The policy {name} already has the maximum number of versions \
                 ({MAX_POLICY_VERSIONS})"
            ))),
        }
    }

    async fn versions(&self, name: &str) -> ServiceResult<Vec<PolicyVersionRecord>> {
        rules::check_policy_name(name)?;
        self.store
            .list_policy_versions(name)
            .await?
            .ok_or_else(|| policy_not_found(name))
    }

    /// GetPolicyVersion, with the policy's dates (AWS reports the version's creation as both).
    pub async fn get_policy_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> ServiceResult<PolicyVersionRecord> {
        let version = rules::parse_version_id(version_id)?;
        self.versions(name)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| version_not_found(name, version))
    }

    pub async fn list_policy_versions(
        &self,
        name: &str,
    ) -> ServiceResult<Vec<PolicyVersionRecord>> {
        let mut versions = self.versions(name).await?;
        // Newest first, as AWS lists them.
        versions.reverse();
        Ok(versions)
    }

    pub async fn set_default_policy_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> ServiceResult<()> {
        rules::check_policy_name(name)?;
        let version = rules::parse_version_id(version_id)?;
        match self
            .store
            .set_default_policy_version(name, version, self.clock.now())
            .await?
        {
            CasOutcome::Done => {
                self.changes.send(PrincipalChange::PermissionsChanged {
                    certificate_id: None,
                });
                Ok(())
            }
            _ => match self.store.get_policy(name).await? {
                None => Err(policy_not_found(name)),
                Some(_) => Err(version_not_found(name, version)),
            },
        }
    }

    pub async fn delete_policy_version(&self, name: &str, version_id: &str) -> ServiceResult<()> {
        rules::check_policy_name(name)?;
        let version = rules::parse_version_id(version_id)?;
        match self.store.delete_policy_version(name, version).await? {
            DeleteOutcome::Done => Ok(()),
            DeleteOutcome::IsDefaultVersion => Err(ServiceError::DeleteConflict(format!(
                "Cannot delete the default version {version} of policy {name}; set another \
                 default version first or delete the policy"
            ))),
            _ => match self.store.get_policy(name).await? {
                None => Err(policy_not_found(name)),
                Some(_) => Err(version_not_found(name, version)),
            },
        }
    }

    // ---- targets ------------------------------------------------------------------------

    /// A target ARN as the store records it. Unknown kinds are InvalidRequest; targets of
    /// another account or region cannot exist here.
    fn target(&self, target: &str) -> ServiceResult<PolicyTarget> {
        let (certificate_id, thing_group) = match rules::parse_target(&self.scope, target)? {
            TargetRef::Certificate(id) => (Some(id), None),
            TargetRef::ThingGroup(name) => (None, Some(name)),
            TargetRef::Foreign => {
                return Err(ServiceError::NotFound(format!(
                    "Target {target} cannot be found."
                )));
            }
        };
        // Listings name targets by their canonical ARN (lower-case certificate ids).
        let arn = match (&certificate_id, &thing_group) {
            (Some(id), _) => self.scope.certificate(id),
            (_, Some(name)) => self.scope.thing_group(name),
            _ => target.to_string(),
        };
        Ok(PolicyTarget {
            arn,
            certificate_id,
            thing_group,
        })
    }

    fn announce(&self, target: &PolicyTarget) {
        self.changes.send(PrincipalChange::PermissionsChanged {
            certificate_id: target.certificate_id.clone(),
        });
    }

    /// AttachPolicy (and the legacy AttachPrincipalPolicy).
    pub async fn attach_policy(&self, name: &str, target: &str) -> ServiceResult<()> {
        rules::check_policy_name(name)?;
        let target = self.target(target)?;
        match self
            .store
            .attach_policy(name, &target, self.clock.now(), MAX_POLICIES_PER_TARGET)
            .await?
        {
            AttachOutcome::Attached => {
                self.announce(&target);
                Ok(())
            }
            AttachOutcome::AlreadyAttached => Ok(()),
            AttachOutcome::LimitExceeded => Err(ServiceError::LimitExceeded(format!(
                "Target {} already has the maximum number of policies \
                 ({MAX_POLICIES_PER_TARGET})",
                target.arn
            ))),
            _ => match self.store.get_policy(name).await? {
                None => Err(policy_not_found(name)),
                Some(_) => Err(ServiceError::NotFound(format!(
                    "Target {} cannot be found.",
                    target.arn
                ))),
            },
        }
    }

    /// DetachPolicy: detaching what is not attached succeeds (its model has no
    /// ResourceNotFoundException).
    pub async fn detach_policy(&self, name: &str, target: &str) -> ServiceResult<()> {
        rules::check_policy_name(name)?;
        let target = self.target(target)?;
        if self.store.detach_policy(name, &target.arn).await? {
            self.announce(&target);
        }
        Ok(())
    }

    /// DetachPrincipalPolicy: as DetachPolicy, but an unknown policy or a policy that is not
    /// attached is ResourceNotFound (its model lists that error).
    pub async fn detach_principal_policy(&self, name: &str, principal: &str) -> ServiceResult<()> {
        rules::check_policy_name(name)?;
        let target = self.target(principal)?;
        if self.store.detach_policy(name, &target.arn).await? {
            self.announce(&target);
            return Ok(());
        }
        Err(ServiceError::NotFound(format!(
            "Policy {name} is not attached to {principal}"
        )))
    }

    /// ListAttachedPolicies (and ListPrincipalPolicies). `recursive` adds, for a thing group,
    /// the policies of its ancestors.
    pub async fn list_attached_policies(
        &self,
        target: &str,
        recursive: bool,
        marker: Option<&str>,
        page_size: Option<i64>,
    ) -> ServiceResult<Listing<String>> {
        let target = self.target(target)?;
        let page = pagination::marker_request(marker, page_size)?;
        if let Some(id) = &target.certificate_id
            && self.store.get_certificate(id).await?.is_none()
        {
            return Err(ServiceError::NotFound(format!(
                "Certificate {id} cannot be found."
            )));
        }
        let Some(group) = target.thing_group.clone().filter(|_| recursive) else {
            return Ok(marker_listing(
                self.store
                    .list_attached_policies(&target.arn, &page)
                    .await?,
            ));
        };
        // A group and its ancestors hold at most 10 policies per level: list them whole and
        // page in memory.
        let mut names = Vec::new();
        let mut next = Some(group);
        let mut depth = 0;
        while let Some(name) = next.take() {
            let Some(g) = self.store.get_thing_group(&name).await? else {
                if depth == 0 {
                    return Err(ServiceError::NotFound(format!(
                        "Thing group {name} cannot be found."
                    )));
                }
                break;
            };
            let everything = drover_store::PageRequest {
                after: None,
                limit: MAX_POLICIES_PER_TARGET * 10,
            };
            names.extend(
                self.store
                    .list_attached_policies(&self.scope.thing_group(&name), &everything)
                    .await?
                    .items,
            );
            next = g.parent;
            depth += 1;
        }
        names.sort();
        names.dedup();
        let start = page
            .after
            .as_deref()
            .map_or(0, |after| names.partition_point(|n| n.as_str() <= after));
        let rest = &names[start..];
        let items: Vec<String> = rest.iter().take(page.limit).cloned().collect();
        let next_token = (rest.len() > page.limit)
            .then(|| items.last().map(|l| pagination::encode_marker(l)))
            .flatten();
        Ok(Listing { items, next_token })
    }

    /// ListTargetsForPolicy (and ListPolicyPrincipals).
    pub async fn list_targets_for_policy(
        &self,
        name: &str,
        marker: Option<&str>,
        page_size: Option<i64>,
    ) -> ServiceResult<Listing<String>> {
        rules::check_policy_name(name)?;
        let page = pagination::marker_request(marker, page_size)?;
        if self.store.get_policy(name).await?.is_none() {
            return Err(policy_not_found(name));
        }
        Ok(marker_listing(
            self.store.list_policy_targets(name, &page).await?,
        ))
    }
}

fn marker_listing(page: drover_store::Page<String>) -> Listing<String> {
    Listing {
        next_token: page.next_after.as_deref().map(pagination::encode_marker),
        items: page.items,
    }
}
