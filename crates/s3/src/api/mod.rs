//! The S3 API's front door: path-style addressing (`/bucket/key`), SigV4, and the mapping of
//! method + sub-resource query to one operation. Operations live one family per file:
//! `bucket.rs`, `object.rs`, `multipart.rs`, `list.rs`.
//!
//! Handlers parse, call the storage engine (blocking work on the blocking pool) and render;
//! storage errors become S3 codes in [`storage_error`] only.

mod bucket;
mod list;
mod multipart;
mod object;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use drover_services::AccessKeys;

use crate::auth::{self, Payload};
use crate::error::{S3Error, S3Result};
use crate::storage::{Backend, StorageError, names};

/// Everything the S3 API needs.
#[derive(Clone)]
pub struct S3State {
    pub storage: Backend,
    pub keys: AccessKeys,
    pub region: String,
}

/// The axum router serving the S3 API (every path goes through [`handle`]).
pub fn router(state: S3State) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// One parsed request, as the operations see it.
pub(crate) struct Ctx {
    pub state: S3State,
    pub method: Method,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: axum::http::HeaderMap,
    pub access_key_id: String,
}

/// A request body and the protection its signature claims for it.
pub(crate) struct Incoming {
    pub body: Body,
    pub payload: Payload,
}

impl Ctx {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().expect("routed with a bucket")
    }
    pub fn key(&self) -> &str {
        self.key.as_deref().expect("routed with a key")
    }
}

async fn handle(State(state): State<S3State>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
    let head = request.method() == Method::HEAD;
    let resource = percent_encoding::percent_decode_str(request.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let mut response = match dispatch(state, request).await {
        Ok(r) => r,
        Err(mut e) => {
            e.request_id = request_id.clone();
            e.resource = resource;
            e.head = head;
            if e.status.is_server_error() {
                tracing::warn!(code = e.code, message = %e.message, "S3 request failed");
            } else {
                tracing::debug!(code = e.code, message = %e.message, "S3 request refused");
            }
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", v);
    }
    metrics::histogram!("drover_s3_request_seconds", "method" => method.to_string())
        .record(started.elapsed().as_secs_f64());
    response
}

async fn dispatch(state: S3State, request: Request) -> S3Result<Response> {
    let (parts, body) = request.into_parts();
    let (bucket, key) = split_path(parts.uri.path())?;
    let auth = auth::authenticate(&state.keys, &state.region, &parts).await?;
    let query = drover_aws::sigv4::query_pairs(parts.uri.query().unwrap_or(""));
    if let Some(b) = bucket.as_deref()
        && let Err(why) = names::check_bucket_name(b)
    {
        // An unknown invalid name can only be a create; others would just be NoSuchBucket.
        if parts.method == Method::PUT && key.is_none() {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "InvalidBucketName",
                why,
            ));
        }
        return Err(S3Error::no_such_bucket());
    }
    if let Some(k) = key.as_deref()
        && let Err(why) = names::check_key(k)
    {
        let code = if k.len() > names::MAX_KEY_BYTES {
            "KeyTooLongError"
        } else {
            "InvalidArgument"
        };
        return Err(S3Error::new(StatusCode::BAD_REQUEST, code, why));
    }
    let ctx = Ctx {
        state,
        method: parts.method.clone(),
        bucket,
        key,
        query,
        headers: parts.headers,
        access_key_id: auth.access_key_id,
    };
    let body = Incoming {
        body,
        payload: auth.payload,
    };
    let m = &ctx.method;
    match (ctx.bucket.is_some(), ctx.key.is_some()) {
        (false, _) if *m == Method::GET => bucket::list_buckets(&ctx).await,
        (false, _) => Err(S3Error::method_not_allowed()),
        (true, false) => match *m {
            Method::PUT => bucket::create(&ctx, body).await,
            Method::DELETE => bucket::delete(&ctx).await,
            Method::HEAD => bucket::head(&ctx).await,
            Method::GET if ctx.has("location") => bucket::location(&ctx).await,
            Method::GET if ctx.has("uploads") => multipart::list_uploads(&ctx).await,
            Method::GET if ctx.has("versioning") => bucket::versioning(&ctx).await,
            Method::GET => list::list_objects(&ctx).await,
            Method::POST if ctx.has("delete") => object::delete_many(&ctx, body).await,
            _ => Err(S3Error::method_not_allowed()),
        },
        (true, true) => match *m {
            Method::PUT if ctx.has("uploadId") && ctx.header("x-amz-copy-source").is_some() => {
                Err(S3Error::not_implemented("UploadPartCopy"))
            }
            Method::PUT if ctx.has("uploadId") => multipart::upload_part(ctx, body).await,
            Method::PUT if ctx.header("x-amz-copy-source").is_some() => {
                object::copy(&ctx, body).await
            }
            Method::PUT => object::put(ctx, body).await,
            Method::GET if ctx.has("uploadId") => multipart::list_parts(&ctx).await,
            Method::GET => object::get(&ctx, false).await,
            Method::HEAD => object::get(&ctx, true).await,
            Method::DELETE if ctx.has("uploadId") => multipart::abort(&ctx).await,
            Method::DELETE => object::delete(&ctx).await,
            Method::POST if ctx.has("uploads") => multipart::create(&ctx, body).await,
            Method::POST if ctx.has("uploadId") => multipart::complete(&ctx, body).await,
            _ => Err(S3Error::method_not_allowed()),
        },
    }
}

/// `/bucket/key...` → (bucket, key), percent-decoded. A key must be UTF-8.
fn split_path(raw: &str) -> S3Result<(Option<String>, Option<String>)> {
    let trimmed = raw.strip_prefix('/').unwrap_or(raw);
    if trimmed.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (trimmed, None),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                S3Error::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidURI",
                    "Couldn't parse the specified URI.",
                )
            })
    };
    let bucket = decode(bucket)?;
    let key = match key {
        Some(k) if !k.is_empty() => Some(decode(k)?),
        _ => None,
    };
    Ok((Some(bucket), key))
}

/// The one mapping from storage errors to S3 errors.
pub(crate) fn storage_error(e: StorageError) -> S3Error {
    match e {
        StorageError::NoSuchBucket => S3Error::no_such_bucket(),
        StorageError::NoSuchKey => S3Error::no_such_key(),
        StorageError::NoSuchUpload => S3Error::no_such_upload(),
        StorageError::BucketExists => S3Error::new(
            StatusCode::CONFLICT,
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        ),
        StorageError::BucketNotEmpty => S3Error::new(
            StatusCode::CONFLICT,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        ),
        StorageError::InvalidPart(m) => S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidPart",
            format!("One or more of the specified parts could not be found or did not match: {m}"),
        ),
        StorageError::InvalidPartOrder => S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
        ),
        StorageError::EntityTooSmall => S3Error::new(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed object size.",
        ),
        StorageError::Io(e) => e.into(),
    }
}

/// A 200 with an XML body.
pub(crate) fn xml_response(body: String) -> Response {
    ([(http::header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// An empty response with a status.
pub(crate) fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

pub(crate) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

/// S3's XML timestamp: `2009-10-12T17:50:30.000Z`.
pub(crate) fn iso8601(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(format).expect("a UTC time always formats")
}

/// The HTTP date of `Last-Modified`.
pub(crate) fn http_date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_bucket_and_key() {
        assert_eq!(split_path("/").unwrap(), (None, None));
        assert_eq!(split_path("/fw").unwrap(), (Some("fw".into()), None));
        assert_eq!(split_path("/fw/").unwrap(), (Some("fw".into()), None));
        assert_eq!(
            split_path("/fw/a/b%20c/..%2Fd").unwrap(),
            (Some("fw".into()), Some("a/b c/../d".into()))
        );
        assert!(split_path("/fw/%ff").is_err());
    }

    #[test]
    fn timestamps_render_as_s3_does() {
        assert_eq!(iso8601(1_255_369_830_000), "2009-10-12T17:50:30.000Z");
        assert_eq!(
            http_date(1_255_369_830_000),
            "Mon, 12 Oct 2009 17:50:30 GMT"
        );
    }
}
