//! Small helpers shared by the REST/JSON handlers: reading JSON bodies and query parameters
//! the way botocore sends them, and rendering JSON the way it expects (absent members omitted,
//! timestamps as epoch seconds).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drover_core::time::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::sigv4::query_pairs;

/// Parses a JSON request body; an empty body means `{}` (botocore sends none for requests
/// without body members).
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        ApiError::invalid_request(format!(
            "Request body is not valid JSON for this operation: {e}"
        ))
    })
}

/// Query-string parameters, percent-decoded.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Params(query_pairs(raw.unwrap_or("")))
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.string(name).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid_request(format!(
                "Query parameter {name} must be true or false, not '{other}'"
            ))),
        }
    }

    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.string(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid_request(format!(
                        "Query parameter {name} must be an integer, not '{v}'"
                    ))
                })
            })
            .transpose()
    }
}

/// Epoch seconds, the rest-json timestamp encoding.
pub fn timestamp(t: Timestamp) -> Value {
    serde_json::json!(t.epoch_seconds())
}

/// A 200 response with `value` as JSON, null members removed (AWS omits absent members).
pub fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(strip_nulls(value))).into_response()
}

/// A 200 response with an empty JSON object, for operations without output members.
pub fn empty() -> Response {
    ok(serde_json::json!({}))
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_omitted_and_empty_bodies_are_objects() {
        let v = strip_nulls(
            serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]}),
        );
        assert_eq!(v, serde_json::json!({"b": {"d": 1}, "e": [{}]}));
        let parsed: serde_json::Map<String, Value> = body(&Bytes::from_static(b"")).unwrap();
        assert!(parsed.is_empty());
        assert!(body::<serde_json::Map<String, Value>>(&Bytes::from_static(b"{bad")).is_err());
    }

    #[test]
    fn query_parameters() {
        let p = Params::parse(Some("maxResults=5&recursive=true&name=a%3Ab&bad=maybe"));
        assert_eq!(p.i64("maxResults").unwrap(), Some(5));
        assert_eq!(p.bool("recursive").unwrap(), Some(true));
        assert_eq!(p.string("name").as_deref(), Some("a:b"));
        assert!(p.bool("bad").is_err());
        assert!(p.i64("name").is_err());
    }
}
