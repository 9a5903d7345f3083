//! The fleet index service: the indexing configuration, SearchIndex, GetStatistics and
//! GetCardinality over the `AWS_Things` index.
//!
//! There is no separate index to keep in sync: a search plans a candidate scan from the query
//! (`drover_core::query::plan`), which the store answers from its own indexes, and tests each
//! candidate with the compiled query. Results are therefore always current (read-your-writes),
//! on one node or many.

use std::collections::HashSet;

use drover_core::indexing::IndexingConfiguration;
use drover_core::query::{
    self, CandidateScan, Field, FieldType, IndexedThing, Matcher, QUERY_VERSION, Schema,
    Statistics, StatisticsBuilder, THINGS_INDEX,
};
use drover_store::SharedStore;

use crate::membership::DynamicMembership;
use crate::{ServiceError, ServiceResult, pagination};

/// Candidate names read per store round trip.
const SCAN_BATCH: usize = 1_000;
/// SearchIndex page size when the caller gives none, and the largest it may ask for.
pub const DEFAULT_SEARCH_RESULTS: usize = 100;
pub const MAX_SEARCH_RESULTS: usize = 500;

/// What SearchIndex, GetStatistics and GetCardinality share.
#[derive(Debug, Clone, Default)]
pub struct IndexQuery {
    pub index_name: Option<String>,
    pub query_string: String,
    pub query_version: Option<String>,
}

/// One SearchIndex page.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub things: Vec<IndexedThing>,
    pub next_token: Option<String>,
    /// Whether connectivity is indexed, so documents carry `connectivity`.
    pub connectivity_indexed: bool,
}

#[derive(Clone)]
pub struct FleetIndex {
    store: SharedStore,
    membership: DynamicMembership,
}

/// The error AWS gives for a search while thing indexing is off, or for an unknown index.
pub(crate) fn index_missing(name: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "Index {name} does not exist. Please enable index by calling UpdateIndexingConfiguration"
    ))
}

/// Checks the index name and query version a request names, as CreateDynamicThingGroup and
/// the search operations accept them.
pub(crate) fn check_index_and_version(
    index_name: Option<&str>,
    query_version: Option<&str>,
    configuration: &IndexingConfiguration,
) -> ServiceResult<()> {
    let index = index_name.unwrap_or(THINGS_INDEX);
    if index != THINGS_INDEX || !configuration.thing_indexing_enabled() {
        return Err(index_missing(index));
    }
    if let Some(version) = query_version
        && version != QUERY_VERSION
    {
        return Err(ServiceError::InvalidRequest(format!(
            "Unsupported queryVersion {version}; the supported version is {QUERY_VERSION}"
        )));
    }
    Ok(())
}

impl FleetIndex {
    pub fn new(store: SharedStore, membership: DynamicMembership) -> Self {
        Self { store, membership }
    }

    pub async fn configuration(&self) -> ServiceResult<IndexingConfiguration> {
        self.membership.configuration().await
    }

    /// UpdateIndexingConfiguration. Turning thing indexing off is refused while dynamic groups
    /// exist (they need the index, as on AWS); a change of field typing rebuilds every dynamic
    /// group before the call returns.
    pub async fn update_configuration(
        &self,
        requested: IndexingConfiguration,
    ) -> ServiceResult<()> {
        let next = requested.validated()?;
        let _exclusive = self.membership.exclusive().await;
        let current = self.membership.configuration().await?;
        let groups = self.store.list_dynamic_groups().await?;
        if !next.thing_indexing_enabled() && !groups.is_empty() {
            return Err(ServiceError::InvalidRequest(format!(
                "Thing indexing cannot be turned off while dynamic thing groups exist ({} of them, e.g. {})",
                groups.len(),
                groups[0].name
            )));
        }
        self.membership.store_configuration(&next).await?;
        if next.schema() != current.schema() && !groups.is_empty() {
            for group in &groups {
                self.membership.set_status(group, "REBUILDING").await?;
            }
            self.membership.rebuild(&groups, &next.schema()).await?;
        }
        Ok(())
    }

    /// Parses and checks a query against the current configuration.
    async fn prepare(
        &self,
        request: &IndexQuery,
    ) -> ServiceResult<(Schema, CandidateScan, Matcher)> {
        let configuration = self.membership.configuration().await?;
        check_index_and_version(
            request.index_name.as_deref(),
            request.query_version.as_deref(),
            &configuration,
        )?;
        let schema = configuration.schema();
        let (query, matcher) = query::compile(&request.query_string, &schema)?;
        let scan = query::plan(&query, &schema);
        Ok((schema, scan, matcher))
    }

    /// Visits every matching thing in name order after `after`, until `visit` returns false.
    async fn scan(
        &self,
        schema: &Schema,
        scan: &CandidateScan,
        matcher: &Matcher,
        mut after: Option<String>,
        mut visit: impl FnMut(IndexedThing) -> bool,
    ) -> ServiceResult<()> {
        loop {
            let names = self
                .store
                .index_candidates(scan, after.as_deref(), Some(SCAN_BATCH))
                .await?;
            for document in self.store.index_documents(&names).await? {
                if matcher.matches(&document, schema) && !visit(document) {
                    return Ok(());
                }
            }
            if names.len() < SCAN_BATCH {
                return Ok(());
            }
            after = names.last().cloned();
        }
    }

    /// SearchIndex: matching things in name order, a page at a time.
    pub async fn search(
        &self,
        request: &IndexQuery,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<SearchPage> {
        let limit = match max_results {
            None => DEFAULT_SEARCH_RESULTS,
            Some(n) if (1..=MAX_SEARCH_RESULTS as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(ServiceError::InvalidRequest(format!(
                    "maxResults must be between 1 and {MAX_SEARCH_RESULTS}; got {n}"
                )));
            }
        };
        let after = next_token.map(pagination::decode).transpose()?;
        let (schema, scan, matcher) = self.prepare(request).await?;
        let mut found = Vec::new();
        let started = std::time::Instant::now();
        self.scan(&schema, &scan, &matcher, after, |document| {
            found.push(document);
            found.len() <= limit
        })
        .await?;
        metrics::histogram!("drover_index_search_seconds").record(started.elapsed().as_secs_f64());
        let page = drover_store::Page::from_rows(found, limit, |d| d.name.clone());
        Ok(SearchPage {
            things: page.items,
            next_token: page.next_after.as_deref().map(pagination::encode),
            connectivity_indexed: schema.connectivity,
        })
    }

    /// The field an aggregation names, checked against the index.
    fn aggregation_field(name: Option<&str>) -> ServiceResult<Option<Field>> {
        name.map(|name| {
            query::field_named(name).map_err(|message| {
                ServiceError::InvalidAggregation(format!(
                    "Invalid aggregationField {name}: {message}"
                ))
            })
        })
        .transpose()
    }

    /// GetStatistics: count, and for a Number field the numeric statistics of its values.
    pub async fn statistics(
        &self,
        request: &IndexQuery,
        aggregation_field: Option<&str>,
    ) -> ServiceResult<Statistics> {
        let field = Self::aggregation_field(aggregation_field)?;
        let (schema, scan, matcher) = self.prepare(request).await?;
        let numeric = field
            .as_ref()
            .is_some_and(|f| schema.field_type(f) == FieldType::Number);
        let mut builder = if numeric {
            StatisticsBuilder::numeric()
        } else {
            StatisticsBuilder::default()
        };
        self.scan(&schema, &scan, &matcher, None, |document| {
            match &field {
                None => builder.add_present(),
                Some(field) => {
                    let values = query::field_values(field, &document, &schema);
                    if numeric {
                        values.iter().for_each(|v| builder.add_number(v));
                    } else if !values.is_empty() {
                        builder.add_present();
                    }
                }
            }
            true
        })
        .await?;
        Ok(builder.finish())
    }

    /// GetCardinality: how many distinct values the field takes over the matching things
    /// (exact; AWS's is approximate). Without a field, the number of matching things.
    pub async fn cardinality(
        &self,
        request: &IndexQuery,
        aggregation_field: Option<&str>,
    ) -> ServiceResult<u64> {
        let field = Self::aggregation_field(aggregation_field)?;
        let (schema, scan, matcher) = self.prepare(request).await?;
        let mut distinct = HashSet::new();
        let mut count = 0u64;
        self.scan(&schema, &scan, &matcher, None, |document| {
            match &field {
                None => count += 1,
                Some(field) => {
                    for value in query::field_values(field, &document, &schema) {
                        distinct.insert(query::cardinality_key(&value));
                    }
                }
            }
            true
        })
        .await?;
        Ok(if field.is_some() {
            distinct.len() as u64
        } else {
            count
        })
    }
}
