//! Object operations: PutObject, GetObject (with Range and conditional headers), HeadObject,
//! DeleteObject, DeleteObjects, CopyObject.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::bucket::bucket_exists;
use super::{Ctx, Incoming, empty, http_date, iso8601, now_ms, storage_error, xml_response};
use crate::body::{FileBody, receive_object, receive_small};
use crate::error::{S3Error, S3Result};
use crate::range::{RangeSpec, content_range, resolve};
use crate::storage::{ObjectBody, ObjectMeta, PendingObject, base64_encode, names};
use crate::xml::{self, Doc};

/// S3's limit on user metadata (names and values of `x-amz-meta-*`).
const MAX_METADATA_BYTES: usize = 2 * 1024;
/// Standard headers S3 stores with an object and returns on GET/HEAD.
const STORED_HEADERS: [&str; 5] = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// The metadata a PUT or CreateMultipartUpload carries in its headers.
pub(crate) struct HeaderMeta {
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub metadata: BTreeMap<String, String>,
}

pub(crate) fn header_meta(headers: &HeaderMap) -> S3Result<HeaderMeta> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let content_type = get("content-type")
        .unwrap_or("binary/octet-stream")
        .to_string();
    let mut stored = Vec::new();
    for name in STORED_HEADERS {
        let Some(value) = get(name) else { continue };
        // `aws-chunked` describes the transfer, not the object.
        let value = if name == "content-encoding" {
            let kept: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.eq_ignore_ascii_case("aws-chunked") && !v.is_empty())
                .collect();
            if kept.is_empty() {
                continue;
            }
            kept.join(",")
        } else {
            value.to_string()
        };
        stored.push((name.to_string(), value));
    }
    let mut metadata = BTreeMap::new();
    let mut size = 0;
    for (name, value) in headers {
        if let Some(short) = name.as_str().strip_prefix("x-amz-meta-") {
            let value = value.to_str().unwrap_or_default().to_string();
            size += short.len() + value.len();
            metadata.insert(short.to_string(), value);
        }
    }
    if size > MAX_METADATA_BYTES {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(HeaderMeta {
        content_type,
        headers: stored,
        metadata,
    })
}

fn proto(key: &str, meta: HeaderMeta) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: 0,
        etag: String::new(),
        sha256: String::new(),
        crc32: None,
        content_type: meta.content_type,
        headers: meta.headers,
        metadata: meta.metadata,
        last_modified_ms: 0,
        parts: None,
    }
}

pub async fn put(ctx: Ctx, body: Incoming) -> S3Result<Response> {
    if !bucket_exists(&ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    let mut meta = proto(ctx.key(), header_meta(&ctx.headers)?);
    let storage = &ctx.state.storage;
    let pending = storage.pending(&meta, true).await.map_err(storage_error)?;
    let (pending, digests, verified) =
        receive_object(body.body, body.payload, &ctx.headers, pending).await?;
    meta.size = digests.size;
    meta.etag = hex::encode(digests.md5.expect("md5 requested"));
    meta.sha256 = base64_encode(&digests.sha256);
    meta.crc32 = Some(base64_encode(&digests.crc32.to_be_bytes()));
    meta.last_modified_ms = now_ms();
    storage
        .publish(ctx.bucket(), pending, &meta)
        .await
        .map_err(storage_error)?;
    metrics::counter!("drover_s3_bytes_received_total").increment(meta.size);
    let mut response = empty(StatusCode::OK);
    let h = response.headers_mut();
    set(h, "etag", &format!("\"{}\"", meta.etag));
    if let Some(c) = verified.crc32 {
        set(h, "x-amz-checksum-crc32", &c);
    }
    if let Some(s) = verified.sha256 {
        set(h, "x-amz-checksum-sha256", &s);
    }
    Ok(response)
}

pub async fn get(ctx: &Ctx, head: bool) -> S3Result<Response> {
    let object = ctx
        .state
        .storage
        .open(ctx.bucket(), ctx.key())
        .await
        .map_err(storage_error)?;
    let meta = &object.meta;
    let etag = format!("\"{}\"", meta.etag);

    if let Some(m) = ctx.header("if-match")
        && !etag_matches(m, &meta.etag)
    {
        return Err(S3Error::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    // RFC 9110 precedence: If-Match, else If-Unmodified-Since; If-None-Match, else
    // If-Modified-Since. HTTP dates have whole seconds.
    let modified_secs = meta.last_modified_ms.div_euclid(1000);
    let since = |name: &str| {
        ctx.header(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
    };
    if ctx.header("if-match").is_none()
        && since("if-unmodified-since").is_some_and(|t| modified_secs > t)
    {
        return Err(S3Error::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    let not_modified = match ctx.header("if-none-match") {
        Some(m) => etag_matches(m, &meta.etag),
        None => since("if-modified-since").is_some_and(|t| modified_secs <= t),
    };
    if not_modified {
        let mut r = empty(StatusCode::NOT_MODIFIED);
        set(r.headers_mut(), "etag", &etag);
        set(
            r.headers_mut(),
            "last-modified",
            &http_date(meta.last_modified_ms),
        );
        return Ok(r);
    }

    let range = match ctx.param("partNumber") {
        Some(_) => RangeSpec::Full,
        None => resolve(ctx.header("range"), meta.size),
    };
    let (status, start, end) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, meta.size),
        RangeSpec::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeSpec::Unsatisfiable => {
            return Err(S3Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            )
            .with_header("content-range", format!("bytes */{}", meta.size)));
        }
    };

    let mut headers = HeaderMap::new();
    set(&mut headers, "content-length", &(end - start).to_string());
    set(&mut headers, "content-type", &meta.content_type);
    set(&mut headers, "etag", &etag);
    set(
        &mut headers,
        "last-modified",
        &http_date(meta.last_modified_ms),
    );
    set(&mut headers, "accept-ranges", "bytes");
    for (name, value) in &meta.headers {
        set(&mut headers, name, value);
    }
    for (name, value) in &meta.metadata {
        set(&mut headers, &format!("x-amz-meta-{name}"), value);
    }
    if let Some(parts) = meta.parts {
        set(&mut headers, "x-amz-mp-parts-count", &parts.to_string());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut headers,
            "content-range",
            &content_range(start, end, meta.size),
        );
    } else {
        // A checksum describes the whole object; clients verify it against what they read,
        // so it is only sent with the whole object (as S3 does).
        set(&mut headers, "x-amz-checksum-sha256", &meta.sha256);
    }
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-disposition", "content-disposition"),
        ("response-cache-control", "cache-control"),
        ("response-content-encoding", "content-encoding"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
    ] {
        if let Some(v) = ctx.param(param) {
            set(&mut headers, header, v);
        }
    }
    if head {
        return Ok((status, headers, Body::empty()).into_response());
    }
    metrics::counter!("drover_s3_bytes_sent_total").increment(end - start);
    let body = match object.body {
        ObjectBody::File { file, data_offset } => {
            Body::new(FileBody::new(file, data_offset + start, end - start))
        }
        ObjectBody::Remote { storage, bucket } => Body::from_stream(
            storage
                .read(&bucket, &meta.key, start, end)
                .await
                .map_err(storage_error)?,
        ),
    };
    Ok((status, headers, body).into_response())
}

/// Copies a source object's bytes into a temp file (hashing them on the way).
async fn copy_body(
    source: ObjectBody,
    meta: &ObjectMeta,
    mut pending: PendingObject,
) -> S3Result<PendingObject> {
    match source {
        ObjectBody::File { file, data_offset } => {
            let size = meta.size;
            let (pending, r) = tokio::task::spawn_blocking(move || {
                let r = pending.copy_from(&file, data_offset, size);
                (pending, r)
            })
            .await
            .map_err(|_| S3Error::internal())?;
            r?;
            Ok(pending)
        }
        ObjectBody::Remote { storage, bucket } => {
            use futures_util::StreamExt;
            let mut stream = storage
                .read(&bucket, &meta.key, 0, meta.size)
                .await
                .map_err(storage_error)?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| S3Error::from(std::io::Error::other(e)))?;
                let (p, r) = tokio::task::spawn_blocking(move || {
                    let r = pending.write(&chunk);
                    (pending, r)
                })
                .await
                .map_err(|_| S3Error::internal())?;
                pending = p;
                r?;
            }
            Ok(pending)
        }
    }
}

fn etag_matches(condition: &str, etag: &str) -> bool {
    condition
        .split(',')
        .map(|c| c.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|c| c == "*" || c == etag)
}

fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

pub async fn delete(ctx: &Ctx) -> S3Result<Response> {
    ctx.state
        .storage
        .delete_object(ctx.bucket(), ctx.key())
        .await
        .map_err(storage_error)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// DeleteObjects: up to 1000 keys in one request (`aws s3 rm --recursive`).
pub async fn delete_many(ctx: &Ctx, body: Incoming) -> S3Result<Response> {
    let xml_body = receive_small(body.body, body.payload, &ctx.headers, 2 * 1024 * 1024).await?;
    let (keys, quiet) = xml::parse_delete(&xml_body)?;
    if keys.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    if !bucket_exists(ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    let mut results = Vec::with_capacity(keys.len());
    for k in keys {
        let r = match names::check_key(&k) {
            Ok(()) => ctx
                .state
                .storage
                .delete_object(ctx.bucket(), &k)
                .await
                .map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        results.push((k, r));
    }
    let mut doc = Doc::new("DeleteResult");
    for (key, result) in results {
        match result {
            Ok(()) if quiet => {}
            Ok(()) => {
                doc.open("Deleted").elem("Key", &key).close();
            }
            Err(message) => {
                doc.open("Error")
                    .elem("Key", &key)
                    .elem("Code", "InternalError")
                    .elem("Message", &message)
                    .close();
            }
        }
    }
    Ok(xml_response(doc.finish()))
}

/// CopyObject: `x-amz-copy-source: /bucket/key` (URL-encoded), metadata copied or replaced.
pub async fn copy(ctx: &Ctx, body: Incoming) -> S3Result<Response> {
    let _ = receive_small(body.body, body.payload, &ctx.headers, 0).await?;
    let source = ctx.header("x-amz-copy-source").unwrap_or_default();
    let source = source.split_once("?versionId=").map_or(source, |(s, _)| s);
    let decoded = percent_encoding::percent_decode_str(source.trim_start_matches('/'))
        .decode_utf8()
        .map_err(|_| S3Error::invalid_argument("Invalid copy source encoding"))?
        .into_owned();
    let (src_bucket, src_key) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        })?;
    let (src_bucket, src_key) = (src_bucket.to_string(), src_key.to_string());
    let replace = ctx
        .header("x-amz-metadata-directive")
        .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let new_meta = header_meta(&ctx.headers)?;
    if !bucket_exists(ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    let storage = &ctx.state.storage;
    let source = storage
        .open(&src_bucket, &src_key)
        .await
        .map_err(storage_error)?;
    let mut meta = if replace {
        proto(ctx.key(), new_meta)
    } else {
        ObjectMeta {
            key: ctx.key().to_string(),
            ..source.meta.clone()
        }
    };
    meta.parts = None;
    let pending = storage.pending(&meta, true).await.map_err(storage_error)?;
    let pending = copy_body(source.body, &source.meta, pending).await?;
    let d = pending.digests();
    meta.size = d.size;
    meta.etag = hex::encode(d.md5.expect("md5 requested"));
    meta.sha256 = base64_encode(&d.sha256);
    meta.crc32 = Some(base64_encode(&d.crc32.to_be_bytes()));
    meta.last_modified_ms = now_ms();
    storage
        .publish(ctx.bucket(), pending, &meta)
        .await
        .map_err(storage_error)?;
    let mut doc = Doc::new("CopyObjectResult");
    doc.elem("ETag", &format!("\"{}\"", meta.etag))
        .elem("LastModified", &iso8601(meta.last_modified_ms));
    Ok(xml_response(doc.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_conditions() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }

    #[test]
    fn header_metadata_is_collected_and_limited() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
        h.insert("cache-control", HeaderValue::from_static("no-cache"));
        h.insert("x-amz-meta-version", HeaderValue::from_static("2.0"));
        let m = header_meta(&h).unwrap();
        assert_eq!(m.content_type, "text/plain");
        assert_eq!(
            m.headers,
            vec![("cache-control".to_string(), "no-cache".to_string())]
        );
        assert_eq!(m.metadata.get("version").map(String::as_str), Some("2.0"));
        h.insert(
            "x-amz-meta-big",
            HeaderValue::from_str(&"x".repeat(2100)).unwrap(),
        );
        assert_eq!(header_meta(&h).err().unwrap().code, "MetadataTooLarge");
    }
}
