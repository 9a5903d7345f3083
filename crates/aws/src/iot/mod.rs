//! The AWS IoT control plane (`iot`, API version 2015-05-28) over REST/JSON: the route table
//! and the state handlers share. One file per operation family.

mod certificates;
mod endpoint;
mod groups;
mod index;
mod jobs;
mod policies;
mod principals;
mod rules;
mod thing_types;
mod things;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use drover_services::{Certificates, FleetIndex, Jobs, Policies, Registry, TopicRules};

use crate::auth::{AuthState, require_sigv4};
use crate::error::ApiError;

/// Addresses DescribeEndpoint hands out (host:port, no scheme).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// MQTT over TLS (`iot:Data-ATS`, `iot:Data`).
    pub data: String,
    /// HTTPS jobs data plane (`iot:Jobs`).
    pub jobs: String,
    /// HTTPS (`iot:CredentialProvider`).
    pub credential_provider: String,
}

/// What the control-plane handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub registry: Registry,
    pub index: FleetIndex,
    pub certificates: Certificates,
    pub policies: Policies,
    pub jobs: Jobs,
    pub rules: TopicRules,
    pub endpoints: Arc<Endpoints>,
}

/// The AWS IoT control-plane router, SigV4-authenticated, with AWS-shaped 404/405 answers.
pub fn router(state: ApiState, auth: AuthState) -> Router {
    Router::new()
        .route("/things", get(things::list))
        .route(
            "/things/{thing_name}",
            post(things::create)
                .get(things::describe)
                .patch(things::update)
                .delete(things::delete),
        )
        .route(
            "/things/{thing_name}/thing-groups",
            get(groups::list_for_thing),
        )
        .route("/thing-types", get(thing_types::list))
        .route(
            "/thing-types/{thing_type_name}",
            post(thing_types::create)
                .get(thing_types::describe)
                .delete(thing_types::delete),
        )
        .route(
            "/thing-types/{thing_type_name}/deprecate",
            post(thing_types::deprecate),
        )
        .route("/thing-groups", get(groups::list))
        .route("/thing-groups/addThingToThingGroup", put(groups::add_thing))
        .route(
            "/thing-groups/removeThingFromThingGroup",
            put(groups::remove_thing),
        )
        .route(
            "/thing-groups/updateThingGroupsForThing",
            put(groups::update_groups_for_thing),
        )
        .route(
            "/thing-groups/{thing_group_name}",
            post(groups::create)
                .get(groups::describe)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/thing-groups/{thing_group_name}/things",
            get(groups::list_things),
        )
        .route(
            "/dynamic-thing-groups/{thing_group_name}",
            post(index::create_dynamic_group)
                .patch(index::update_dynamic_group)
                .delete(index::delete_dynamic_group),
        )
        .route(
            "/indexing/config",
            get(index::get_configuration).post(index::update_configuration),
        )
        .route("/indices/search", post(index::search))
        .route("/indices/statistics", post(index::statistics))
        .route("/indices/cardinality", post(index::cardinality))
        .route("/endpoint", get(endpoint::describe))
        .route(
            "/keys-and-certificate",
            post(certificates::create_keys_and_certificate),
        )
        .route(
            "/certificates",
            get(certificates::list).post(certificates::create_from_csr),
        )
        .route(
            "/certificates/{certificate_id}",
            get(certificates::describe)
                .put(certificates::update)
                .delete(certificates::delete),
        )
        .route(
            "/certificates-by-ca/{ca_certificate_id}",
            get(certificates::list_by_ca),
        )
        .route("/certificate/register", post(certificates::register))
        .route(
            "/certificate/register-no-ca",
            post(certificates::register_without_ca),
        )
        .route("/registrationcode", get(certificates::registration_code))
        .route("/cacertificate", post(certificates::register_ca))
        .route("/cacertificates", get(certificates::list_ca))
        .route(
            "/cacertificate/{ca_certificate_id}",
            get(certificates::describe_ca)
                .put(certificates::update_ca)
                .delete(certificates::delete_ca),
        )
        .route(
            "/things/{thing_name}/principals",
            get(principals::list_for_thing)
                .put(principals::attach)
                .delete(principals::detach),
        )
        .route(
            "/things/{thing_name}/principals-v2",
            get(principals::list_for_thing_v2),
        )
        .route("/principals/things", get(principals::list_things))
        .route("/principals/things-v2", get(principals::list_things_v2))
        .route("/policies", get(policies::list))
        .route(
            "/policies/{policy_name}",
            post(policies::create)
                .get(policies::get)
                .delete(policies::delete),
        )
        .route(
            "/policies/{policy_name}/version",
            post(policies::create_version).get(policies::list_versions),
        )
        .route(
            "/policies/{policy_name}/version/{policy_version_id}",
            get(policies::get_version)
                .patch(policies::set_default_version)
                .delete(policies::delete_version),
        )
        .route(
            "/target-policies/{policy_name}",
            put(policies::attach).post(policies::detach),
        )
        .route("/attached-policies/{target}", post(policies::list_attached))
        .route(
            "/policy-targets/{policy_name}",
            post(policies::list_targets),
        )
        .route(
            "/principal-policies",
            get(policies::list_principal_policies),
        )
        .route(
            "/principal-policies/{policy_name}",
            put(policies::attach_principal).delete(policies::detach_principal),
        )
        .route("/policy-principals", get(policies::list_policy_principals))
        .route("/jobs", get(jobs::list))
        .route(
            "/jobs/{job_id}",
            put(jobs::create)
                .get(jobs::describe)
                .patch(jobs::update)
                .delete(jobs::delete),
        )
        .route("/jobs/{job_id}/cancel", put(jobs::cancel))
        .route("/jobs/{job_id}/job-document", get(jobs::document))
        .route("/jobs/{job_id}/things", get(jobs::list_executions_for_job))
        .route("/things/{thing_name}/jobs", get(jobs::thing_jobs))
        .route(
            "/things/{thing_name}/jobs/{job_id}",
            get(jobs::thing_job)
                .post(jobs::thing_job_update)
                .put(jobs::thing_job_start_next),
        )
        .route(
            "/things/{thing_name}/jobs/{job_id}/cancel",
            put(jobs::cancel_execution),
        )
        .route(
            "/things/{thing_name}/jobs/{job_id}/executionNumber/{execution_number}",
            delete(jobs::delete_execution),
        )
        .route("/job-templates", get(jobs::list_templates))
        .route(
            "/job-templates/{job_template_id}",
            put(jobs::create_template)
                .get(jobs::describe_template)
                .delete(jobs::delete_template),
        )
        .route(
            "/event-configurations",
            get(jobs::describe_event_configurations).patch(jobs::update_event_configurations),
        )
        .route("/rules", get(rules::list))
        .route(
            "/rules/{rule_name}",
            post(rules::create)
                .get(rules::get)
                .patch(rules::replace)
                .delete(rules::delete),
        )
        .route("/rules/{rule_name}/enable", post(rules::enable))
        .route("/rules/{rule_name}/disable", post(rules::disable))
        .route(
            "/destinations",
            get(rules::list_destinations)
                .post(rules::create_destination)
                .patch(rules::update_destination),
        )
        .route(
            "/destinations/{*arn}",
            get(rules::get_destination).delete(rules::delete_destination),
        )
        .route(
            "/confirmdestination/{*token}",
            get(rules::confirm_destination),
        )
        .route_layer(middleware::from_fn(http_metrics))
        .fallback(unknown_operation)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(auth, require_sigv4))
        .layer(middleware::from_fn(request_id))
}

async fn unknown_operation(request: Request) -> ApiError {
    ApiError::unknown_operation(request.method().as_str(), request.uri().path())
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::method_not_allowed(request.method().as_str(), request.uri().path())
}

/// Stamps every response with `x-amzn-RequestId`, which botocore surfaces as the request id.
async fn request_id(request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let mut response = next.run(request).await.into_response();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

/// Counts requests and observes their latency by method, route template and status.
async fn http_metrics(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await.into_response();
    let status = response.status().as_u16().to_string();
    metrics::counter!("drover_api_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("drover_api_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
