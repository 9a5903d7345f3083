//! drover's persistence: the [`Store`] trait every service talks to, with an SQLite
//! implementation (the embedded default) and a PostgreSQL implementation (scale-out).
//!
//! The store is deliberately dumb: it keeps records and answers queries, and offers
//! compare-and-swap writes (`expected_version`) so the services can apply the domain rules
//! from `drover-core` without holding locks. Both implementations pass the same
//! [`conformance`] suite. A write returns only after it is durable (fsync'd).

pub mod conformance;
pub mod devices;
pub mod jobs;
pub mod postgres;
pub mod rules;
pub mod sessions;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use drover_core::presence::Presence;
use drover_core::query::{CandidateScan, IndexedThing};
use drover_core::registry::{Thing, ThingGroup, ThingType};
use drover_core::time::Timestamp;

pub use devices::*;
pub use jobs::{
    EXECUTION_BATCH, ExecutionFilter, ExecutionWrite, JobFilter, JobStore, ReleaseBudget,
};
pub use postgres::PostgresStore;
pub use rules::{RuleStore, TopicRuleDestinationRecord, TopicRuleFilter, TopicRuleRecord};
pub use sessions::{MqttQueuedMessage, MqttSessionRecord, RetainedMessage, SessionStore};
pub use sqlite::SqliteStore;

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with this key already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A record this write refers to does not exist (a foreign key failed).
    #[error("missing referenced record: {0}")]
    MissingReference(String),
    /// The database failed; the message is for logs, not for API callers.
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An API access key pair (SigV4 credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub description: String,
    pub created_at: Timestamp,
}

/// One page of a listing, in name order. `after` is the key of the last item returned so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: usize,
}

/// One page of results. `next_after` is set when more items follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only signals that more follow.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_after = if more { rows.last().map(&key) } else { None };
        Page {
            items: rows,
            next_after,
        }
    }
}

/// ListThings filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingFilter {
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    /// Match `attribute_value` as a prefix.
    pub attribute_value_prefix: bool,
    pub type_name: Option<String>,
}

/// ListThingGroups filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingGroupFilter {
    /// `Some(None)`: root groups only; `Some(Some(p))`: direct children of `p`; `None`: all.
    pub parent: Option<Option<String>>,
    pub name_prefix: Option<String>,
}

/// The outcome of a compare-and-swap write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    Done,
    NotFound,
    VersionMismatch,
}

/// One change to a thing's membership of a group, as dynamic-group maintenance computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub group: String,
    pub thing: String,
    /// `true` to add the membership, `false` to remove it.
    pub join: bool,
}

/// Everything drover persists. Implementations must make each write durable before returning.
#[async_trait]
pub trait Store: SessionStore + JobStore + RuleStore + Send + Sync + 'static {
    /// A setting that must be identical on every node (e.g. the account id): returns the stored
    /// value, storing `value` first if there is none.
    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;

    async fn insert_access_key(&self, key: &AccessKey) -> StoreResult<()>;
    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKey>>;
    async fn list_access_keys(&self) -> StoreResult<Vec<AccessKey>>;
    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<bool>;

    /// Fails with [`StoreError::AlreadyExists`] when the name is taken.
    async fn insert_thing(&self, thing: &Thing) -> StoreResult<()>;
    async fn get_thing(&self, name: &str) -> StoreResult<Option<Thing>>;
    /// Replaces the thing if its stored version is still `expected_version`.
    async fn replace_thing(&self, thing: &Thing, expected_version: i64) -> StoreResult<CasOutcome>;
    /// Deletes the thing (and its group memberships) if its version matches when given. Fails
    /// with [`StoreError::MissingReference`] while a principal is attached to it.
    async fn delete_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<CasOutcome>;
    async fn list_things(
        &self,
        filter: &ThingFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Thing>>;

    async fn insert_thing_type(&self, thing_type: &ThingType) -> StoreResult<()>;
    async fn get_thing_type(&self, name: &str) -> StoreResult<Option<ThingType>>;
    /// Overwrites a thing type (deprecation flags); `NotFound` when it is gone.
    async fn replace_thing_type(&self, thing_type: &ThingType) -> StoreResult<CasOutcome>;
    async fn delete_thing_type(&self, name: &str) -> StoreResult<bool>;
    async fn list_thing_types(
        &self,
        name: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingType>>;

    /// Fails with [`StoreError::AlreadyExists`] when the name is taken and
    /// [`StoreError::MissingReference`] when the parent does not exist.
    async fn insert_thing_group(&self, group: &ThingGroup) -> StoreResult<()>;
    async fn get_thing_group(&self, name: &str) -> StoreResult<Option<ThingGroup>>;
    async fn replace_thing_group(
        &self,
        group: &ThingGroup,
        expected_version: i64,
    ) -> StoreResult<CasOutcome>;
    /// Deletes the group and its memberships if its version matches when given.
    async fn delete_thing_group(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<CasOutcome>;
    async fn list_thing_groups(
        &self,
        filter: &ThingGroupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingGroup>>;

    /// Adds a membership; `false` if it already existed. Fails with
    /// [`StoreError::MissingReference`] if the thing or group is gone.
    async fn add_thing_to_group(
        &self,
        group: &str,
        thing: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes a membership; `false` if there was none.
    async fn remove_thing_from_group(&self, group: &str, thing: &str) -> StoreResult<bool>;
    /// Distinct names of things in any of `groups`, in name order.
    async fn list_things_in_groups(
        &self,
        groups: &[String],
        page: &PageRequest,
    ) -> StoreResult<Page<String>>;
    /// Names of the groups `thing` is a direct member of, in name order.
    async fn list_groups_for_thing(
        &self,
        thing: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>>;

    /// Every dynamic thing group, in name order.
    async fn list_dynamic_groups(&self) -> StoreResult<Vec<ThingGroup>>;
    /// Applies membership changes in one durable transaction. A join whose thing or group no
    /// longer exists, or that exists already, is skipped; so is a leave that has nothing to
    /// remove.
    async fn apply_memberships(
        &self,
        changes: &[MembershipChange],
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Names of the things `scan` selects, in name order, after `after`, at most `limit`
    /// (`None`: all of them).
    async fn index_candidates(
        &self,
        scan: &CandidateScan,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> StoreResult<Vec<String>>;
    /// The index documents of the named things that exist, in name order, with the presence
    /// of the client id equal to each thing's name as their connectivity.
    async fn index_documents(&self, names: &[String]) -> StoreResult<Vec<IndexedThing>>;

    // ---- certificates (see `devices`) --------------------------------------------------

    /// Fails with [`StoreError::AlreadyExists`] when the id is registered.
    async fn insert_certificate(&self, certificate: &CertificateRecord) -> StoreResult<()>;
    async fn get_certificate(&self, id: &str) -> StoreResult<Option<CertificateRecord>>;
    /// Replaces the certificate if its stored version is still `expected_version`.
    async fn replace_certificate(
        &self,
        certificate: &CertificateRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome>;
    /// Deletes the certificate if its version is still `expected_version` and no thing has it
    /// attached. Its policy attachments are removed with it when `detach_policies`, and
    /// otherwise prevent the delete.
    async fn delete_certificate(
        &self,
        id: &str,
        expected_version: i64,
        detach_policies: bool,
    ) -> StoreResult<DeleteOutcome>;
    /// Certificates in creation order (newest first unless `ascending`), optionally only those
    /// of one CA; `page.after` is a [`created_key`].
    async fn list_certificates(
        &self,
        ca_certificate_id: Option<&str>,
        page: &PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<CertificateRecord>>;

    /// Fails with [`StoreError::AlreadyExists`] when the id is registered.
    async fn insert_ca_certificate(&self, ca: &CaCertificateRecord) -> StoreResult<()>;
    async fn get_ca_certificate(&self, id: &str) -> StoreResult<Option<CaCertificateRecord>>;
    /// The registered CA certificates whose subject is `subject`.
    async fn find_ca_certificates(&self, subject: &str) -> StoreResult<Vec<CaCertificateRecord>>;
    async fn replace_ca_certificate(
        &self,
        ca: &CaCertificateRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome>;
    async fn delete_ca_certificate(
        &self,
        id: &str,
        expected_version: i64,
    ) -> StoreResult<CasOutcome>;
    /// CA certificates in creation order, as [`Store::list_certificates`].
    async fn list_ca_certificates(
        &self,
        page: &PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<CaCertificateRecord>>;

    // ---- thing principals ---------------------------------------------------------------

    /// Attaches a certificate to a thing. `exclusive` fails with `ExclusiveConflict` when the
    /// certificate is attached to another thing; any attach fails so when the certificate is
    /// attached exclusively to another thing.
    async fn attach_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
        exclusive: bool,
        at: Timestamp,
    ) -> StoreResult<AttachOutcome>;
    /// Detaches; `false` if it was not attached.
    async fn detach_thing_principal(&self, thing: &str, certificate_id: &str) -> StoreResult<bool>;
    async fn get_thing_principal(
        &self,
        thing: &str,
        certificate_id: &str,
    ) -> StoreResult<Option<ThingPrincipal>>;
    /// The certificates attached to `thing`, in certificate-id order.
    async fn list_thing_principals(
        &self,
        thing: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingPrincipal>>;
    /// The things a certificate is attached to, in thing-name order.
    async fn list_principal_things(
        &self,
        certificate_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ThingPrincipal>>;

    // ---- policies -----------------------------------------------------------------------

    /// Creates the policy with `policy.document` as version `policy.default_version`. Fails
    /// with [`StoreError::AlreadyExists`] when the name is taken.
    async fn insert_policy(&self, policy: &PolicyRecord) -> StoreResult<()>;
    async fn get_policy(&self, name: &str) -> StoreResult<Option<PolicyRecord>>;
    /// Policy names in name order (descending unless `ascending`).
    async fn list_policies(&self, page: &PageRequest, ascending: bool)
    -> StoreResult<Page<String>>;
    /// Deletes a policy that is attached to nothing and has only its default version.
    async fn delete_policy(&self, name: &str) -> StoreResult<DeleteOutcome>;
    /// Adds the next version unless the policy already has `max_versions`; makes it the
    /// default when `set_as_default`.
    async fn insert_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
        at: Timestamp,
        max_versions: usize,
    ) -> StoreResult<VersionOutcome>;
    /// Every version of the policy in version order; `None` when the policy does not exist.
    async fn list_policy_versions(
        &self,
        name: &str,
    ) -> StoreResult<Option<Vec<PolicyVersionRecord>>>;
    /// `NotFound` when the policy or the version does not exist.
    async fn set_default_policy_version(
        &self,
        name: &str,
        version: i64,
        at: Timestamp,
    ) -> StoreResult<CasOutcome>;
    /// Deletes a version that is not the default.
    async fn delete_policy_version(&self, name: &str, version: i64) -> StoreResult<DeleteOutcome>;
    /// Attaches a policy unless the target already has `max_per_target` policies.
    async fn attach_policy(
        &self,
        name: &str,
        target: &PolicyTarget,
        at: Timestamp,
        max_per_target: usize,
    ) -> StoreResult<AttachOutcome>;
    /// Detaches; `false` if it was not attached.
    async fn detach_policy(&self, name: &str, target_arn: &str) -> StoreResult<bool>;
    /// Names of the policies attached to the target, in name order.
    async fn list_attached_policies(
        &self,
        target_arn: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>>;
    /// ARNs of the targets of a policy, in ARN order.
    async fn list_policy_targets(
        &self,
        name: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<String>>;
    /// `(policy name, default version document)` of every policy that applies to a
    /// certificate: those attached to it and, when `thing` is given, those attached to the
    /// thing's groups and their ancestors. In name order.
    async fn principal_policies(
        &self,
        certificate_id: &str,
        thing: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>>;

    // ---- presence -----------------------------------------------------------------------

    async fn get_presence(&self, client_id: &str) -> StoreResult<Option<Presence>>;
    /// Stores `presence` if the stored version is `presence.version - 1` (no record at all
    /// for version 1); `VersionMismatch` otherwise.
    async fn put_presence(&self, presence: &Presence) -> StoreResult<CasOutcome>;
}

/// The store type the services hold.
pub type SharedStore = Arc<dyn Store>;

/// Opens the store named by `database_url`: `postgres://...` for PostgreSQL, otherwise SQLite
/// at `sqlite_path`. Runs migrations.
pub async fn open(
    database_url: Option<&str>,
    sqlite_path: &std::path::Path,
) -> StoreResult<SharedStore> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStore::connect(url).await?))
        }
        Some(other) => Err(StoreError::Backend(format!(
            "unsupported --database-url '{other}': expected postgres://..."
        ))),
        None => Ok(Arc::new(SqliteStore::open(sqlite_path)?)),
    }
}

/// The SQL that selects candidate thing names for a [`CandidateScan`], shared by both backends:
/// only the placeholder syntax differs. Folded comparisons use `lower(…)`, which both backends
/// index (see the migrations) and which folds ASCII exactly as `drover_core::query::fold` does.
pub(crate) mod index_sql {
    use drover_core::query::{Bound, CandidateScan, ValueRange};

    use crate::codec::prefix_upper_bound;

    /// `(sql, args)`; `placeholder(n)` renders the n-th (1-based) parameter.
    pub fn candidates(
        scan: &CandidateScan,
        after: Option<&str>,
        limit: Option<usize>,
        placeholder: impl Fn(usize) -> String,
    ) -> (String, Vec<String>) {
        let mut args: Vec<String> = Vec::new();
        let mut arg = |value: String, args: &mut Vec<String>| {
            args.push(value);
            placeholder(args.len())
        };
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let sql = match scan {
            CandidateScan::Intersect(_) | CandidateScan::Union(_) => {
                let compound = select(scan, &mut args, &mut arg);
                let after = after
                    .map(|a| format!(" WHERE name > {}", arg(a.to_string(), &mut args)))
                    .unwrap_or_default();
                format!("SELECT name FROM ({compound}) AS candidates{after} ORDER BY name{limit}")
            }
            // A single range keeps `after` inside, where the index can start from it.
            _ => {
                let (table, column, mut conditions) = simple(scan, &mut args, &mut arg);
                if let Some(after) = after {
                    conditions.push(format!("{column} > {}", arg(after.to_string(), &mut args)));
                }
                format!(
                    "SELECT {column} FROM {table}{} ORDER BY {column}{limit}",
                    filter(&conditions)
                )
            }
        };
        (sql, args)
    }

    fn filter(conditions: &[String]) -> String {
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// The table, name column and conditions of a scan that is one index range.
    fn simple(
        scan: &CandidateScan,
        args: &mut Vec<String>,
        arg: &mut impl FnMut(String, &mut Vec<String>) -> String,
    ) -> (&'static str, &'static str, Vec<String>) {
        match scan {
            CandidateScan::Names(range) => (
                "things",
                "name",
                range_conditions("lower(name)", range, args, arg),
            ),
            CandidateScan::Attribute { key, values } => {
                let mut conditions = vec![format!("key = {}", arg(key.clone(), args))];
                conditions.extend(range_conditions("lower(value)", values, args, arg));
                ("thing_attributes", "thing_name", conditions)
            }
            // Compound scans are rendered by `select`; `All` has no conditions.
            _ => ("things", "name", Vec::new()),
        }
    }

    /// A `SELECT` of the names `scan` selects, as one column called `name`.
    fn select(
        scan: &CandidateScan,
        args: &mut Vec<String>,
        arg: &mut impl FnMut(String, &mut Vec<String>) -> String,
    ) -> String {
        let compound =
            |scans: &[CandidateScan], operator: &str, args: &mut Vec<String>, arg: &mut _| {
                scans
                    .iter()
                    .map(|s| select(s, args, arg))
                    .collect::<Vec<_>>()
                    .join(operator)
            };
        match scan {
            CandidateScan::Intersect(scans) => format!(
                "SELECT name FROM ({}) AS i",
                compound(scans, " INTERSECT ", args, arg)
            ),
            CandidateScan::Union(scans) => format!(
                "SELECT name FROM ({}) AS u",
                compound(scans, " UNION ", args, arg)
            ),
            _ => {
                let (table, column, conditions) = simple(scan, args, arg);
                format!(
                    "SELECT {column} AS name FROM {table}{}",
                    filter(&conditions)
                )
            }
        }
    }

    fn range_conditions(
        column: &str,
        range: &ValueRange,
        args: &mut Vec<String>,
        arg: &mut impl FnMut(String, &mut Vec<String>) -> String,
    ) -> Vec<String> {
        match range {
            ValueRange::Any => Vec::new(),
            ValueRange::Equals(value) => vec![format!("{column} = {}", arg(value.clone(), args))],
            ValueRange::Prefix(prefix) => vec![
                format!("{column} >= {}", arg(prefix.clone(), args)),
                format!("{column} < {}", arg(prefix_upper_bound(prefix), args)),
            ],
            ValueRange::Between { lower, upper } => {
                let mut conditions = Vec::new();
                match lower {
                    Bound::Unbounded => {}
                    Bound::Inclusive(v) => {
                        conditions.push(format!("{column} >= {}", arg(v.clone(), args)))
                    }
                    Bound::Exclusive(v) => {
                        conditions.push(format!("{column} > {}", arg(v.clone(), args)))
                    }
                }
                match upper {
                    Bound::Unbounded => {}
                    Bound::Inclusive(v) => {
                        conditions.push(format!("{column} <= {}", arg(v.clone(), args)))
                    }
                    Bound::Exclusive(v) => {
                        conditions.push(format!("{column} < {}", arg(v.clone(), args)))
                    }
                }
                conditions
            }
        }
    }
}

/// JSON encodings shared by both backends for the columns that hold structured values.
pub(crate) mod codec {
    use drover_core::registry::{Attributes, Tag};

    use crate::StoreError;

    pub fn to_json<T: serde::Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("registry values always serialize")
    }

    pub fn attributes(text: &str) -> Result<Attributes, StoreError> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Backend(format!("corrupt attributes: {e}")))
    }

    pub fn tags(text: &str) -> Result<Vec<Tag>, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("corrupt tags: {e}")))
    }

    pub fn strings(text: &str) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("corrupt list: {e}")))
    }

    /// A thing's group names from a comma-joined aggregate (group names cannot contain a
    /// comma), sorted.
    pub fn group_list(joined: Option<&str>) -> Vec<String> {
        let mut groups: Vec<String> = joined
            .filter(|j| !j.is_empty())
            .map(|j| j.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        groups.sort_unstable();
        groups
    }

    pub fn value(text: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Backend(format!("corrupt json: {e}")))
    }

    /// The smallest string above every string that starts with `prefix` (in bytewise order),
    /// so `value >= prefix AND value < bound` is a case-sensitive prefix match that can use an
    /// index. U+10FFFF encodes as the largest UTF-8 sequence.
    pub fn prefix_upper_bound(prefix: &str) -> String {
        format!("{prefix}\u{10FFFF}")
    }
}
