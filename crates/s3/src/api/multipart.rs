//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads (always empty: drover does not index
//! uploads by bucket; the SDKs only call it for cleanup).

use axum::http::StatusCode;
use axum::response::Response;

use super::bucket::bucket_exists;
use super::object::header_meta;
use super::{Ctx, Incoming, empty, iso8601, now_ms, storage_error, xml_response};
use crate::body::{receive_object, receive_small};
use crate::error::{S3Error, S3Result};
use crate::storage::{ObjectMeta, UploadMeta, base64_encode};
use crate::xml::{self, Doc};

const MAX_PART_NUMBER: u32 = 10_000;

pub async fn create(ctx: &Ctx, body: Incoming) -> S3Result<Response> {
    let _ = receive_small(body.body, body.payload, &ctx.headers, 0).await?;
    let meta = header_meta(&ctx.headers)?;
    let upload = UploadMeta {
        bucket: ctx.bucket().to_string(),
        key: ctx.key().to_string(),
        content_type: meta.content_type,
        headers: meta.headers,
        metadata: meta.metadata,
        initiated_ms: now_ms(),
    };
    let id = ctx
        .state
        .storage
        .create_upload(&upload)
        .await
        .map_err(storage_error)?;
    let mut doc = Doc::new("InitiateMultipartUploadResult");
    doc.elem("Bucket", ctx.bucket())
        .elem("Key", ctx.key())
        .elem("UploadId", &id);
    Ok(xml_response(doc.finish()))
}

fn upload_id(ctx: &Ctx) -> String {
    ctx.param("uploadId").unwrap_or_default().to_string()
}

pub async fn upload_part(ctx: Ctx, body: Incoming) -> S3Result<Response> {
    let part_number: u32 = ctx
        .param("partNumber")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })?;
    let id = upload_id(&ctx);
    let storage = &ctx.state.storage;
    storage
        .upload(ctx.bucket(), ctx.key(), &id)
        .await
        .map_err(storage_error)?;
    let proto = ObjectMeta {
        key: String::new(),
        size: 0,
        etag: String::new(),
        sha256: String::new(),
        crc32: None,
        content_type: String::new(),
        headers: vec![],
        metadata: Default::default(),
        last_modified_ms: 0,
        parts: None,
    };
    let pending = storage.pending(&proto, true).await.map_err(storage_error)?;
    let (pending, digests, verified) =
        receive_object(body.body, body.payload, &ctx.headers, pending).await?;
    let meta = ObjectMeta {
        key: String::new(),
        size: digests.size,
        etag: hex::encode(digests.md5.expect("md5 requested")),
        sha256: base64_encode(&digests.sha256),
        crc32: Some(base64_encode(&digests.crc32.to_be_bytes())),
        content_type: String::new(),
        headers: vec![],
        metadata: Default::default(),
        last_modified_ms: now_ms(),
        parts: None,
    };
    storage
        .publish_part(&id, part_number, pending, &meta)
        .await
        .map_err(storage_error)?;
    let mut response = empty(StatusCode::OK);
    let h = response.headers_mut();
    if let Ok(v) = format!("\"{}\"", meta.etag).parse() {
        h.insert("etag", v);
    }
    if let Some(c) = verified.crc32.and_then(|c| c.parse().ok()) {
        h.insert("x-amz-checksum-crc32", c);
    }
    if let Some(s) = verified.sha256.and_then(|s| s.parse().ok()) {
        h.insert("x-amz-checksum-sha256", s);
    }
    Ok(response)
}

pub async fn complete(ctx: &Ctx, body: Incoming) -> S3Result<Response> {
    let xml_body = receive_small(body.body, body.payload, &ctx.headers, 4 * 1024 * 1024).await?;
    let parts: Vec<(u32, String)> = xml::parse_complete_multipart(&xml_body)?
        .into_iter()
        .map(|p| (p.part_number, p.etag))
        .collect();
    let id = upload_id(ctx);
    let storage = &ctx.state.storage;
    let meta = async {
        let upload = storage.upload(ctx.bucket(), ctx.key(), &id).await?;
        storage
            .complete_upload(&id, &upload, &parts, now_ms())
            .await
    }
    .await
    .map_err(storage_error)?;
    let mut doc = Doc::new("CompleteMultipartUploadResult");
    doc.elem("Location", &format!("/{}/{}", ctx.bucket(), ctx.key()))
        .elem("Bucket", ctx.bucket())
        .elem("Key", ctx.key())
        .elem("ETag", &format!("\"{}\"", meta.etag));
    Ok(xml_response(doc.finish()))
}

pub async fn abort(ctx: &Ctx) -> S3Result<Response> {
    let id = upload_id(ctx);
    let storage = &ctx.state.storage;
    async {
        storage.upload(ctx.bucket(), ctx.key(), &id).await?;
        storage.abort_upload(&id).await
    }
    .await
    .map_err(storage_error)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn list_parts(ctx: &Ctx) -> S3Result<Response> {
    let id = upload_id(ctx);
    let storage = &ctx.state.storage;
    let parts = async {
        storage.upload(ctx.bucket(), ctx.key(), &id).await?;
        storage.list_parts(&id).await
    }
    .await
    .map_err(storage_error)?;
    let mut doc = Doc::new("ListPartsResult");
    doc.elem("Bucket", ctx.bucket())
        .elem("Key", ctx.key())
        .elem("UploadId", &id)
        .elem("MaxParts", "10000")
        .elem("IsTruncated", "false");
    for (n, meta) in parts {
        doc.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &iso8601(meta.last_modified_ms))
            .elem("ETag", &format!("\"{}\"", meta.etag))
            .elem("Size", &meta.size.to_string())
            .close();
    }
    Ok(xml_response(doc.finish()))
}

pub async fn list_uploads(ctx: &Ctx) -> S3Result<Response> {
    if !bucket_exists(ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    let mut doc = Doc::new("ListMultipartUploadsResult");
    doc.elem("Bucket", ctx.bucket())
        .elem("MaxUploads", "1000")
        .elem("IsTruncated", "false");
    Ok(xml_response(doc.finish()))
}
