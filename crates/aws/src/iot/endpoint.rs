//! DescribeEndpoint: where devices and data-plane clients connect.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::json;

use super::ApiState;
use crate::error::ApiError;
use crate::wire::{Params, ok};

pub async fn describe(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let endpoints = &state.endpoints;
    let address = match params.string("endpointType").as_deref() {
        None | Some("iot:Data") | Some("iot:Data-ATS") => &endpoints.data,
        Some("iot:Jobs") => &endpoints.jobs,
        Some("iot:CredentialProvider") => &endpoints.credential_provider,
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "Endpoint type {other} is not valid; use iot:Data-ATS, iot:Data, iot:Jobs or iot:CredentialProvider"
            )));
        }
    };
    Ok(ok(json!({ "endpointAddress": address })))
}
