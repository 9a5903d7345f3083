//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation,
//! GetBucketVersioning (always unversioned).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Ctx, Incoming, empty, iso8601, now_ms, storage_error, xml_response};
use crate::body::receive_small;
use crate::error::{S3Error, S3Result};
use crate::xml::Doc;

pub async fn list_buckets(ctx: &Ctx) -> S3Result<Response> {
    let mut doc = Doc::new("ListAllMyBucketsResult");
    doc.open("Owner")
        .elem("ID", &ctx.access_key_id)
        .elem("DisplayName", "drover")
        .close();
    doc.open("Buckets");
    for (name, created) in ctx
        .state
        .storage
        .list_buckets()
        .await
        .map_err(storage_error)?
    {
        doc.open("Bucket")
            .elem("Name", &name)
            .elem("CreationDate", &iso8601(created))
            .close();
    }
    doc.close();
    Ok(xml_response(doc.finish()))
}

pub async fn create(ctx: &Ctx, body: Incoming) -> S3Result<Response> {
    // The optional CreateBucketConfiguration names a region; drover has one, so it is read
    // (and its signature checked) but not interpreted.
    let _ = receive_small(body.body, body.payload, &ctx.headers, 64 * 1024).await?;
    ctx.state
        .storage
        .create_bucket(ctx.bucket(), now_ms())
        .await
        .map_err(storage_error)?;
    Ok((
        StatusCode::OK,
        [("location", format!("/{}", ctx.bucket()))],
        Body::empty(),
    )
        .into_response())
}

pub async fn delete(ctx: &Ctx) -> S3Result<Response> {
    ctx.state
        .storage
        .delete_bucket(ctx.bucket())
        .await
        .map_err(storage_error)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn head(ctx: &Ctx) -> S3Result<Response> {
    if !bucket_exists(ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    Ok((
        StatusCode::OK,
        [("x-amz-bucket-region", ctx.state.region.clone())],
        Body::empty(),
    )
        .into_response())
}

pub async fn location(ctx: &Ctx) -> S3Result<Response> {
    if !bucket_exists(ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    // S3 reports us-east-1 as an empty constraint.
    let region = if ctx.state.region == "us-east-1" {
        ""
    } else {
        ctx.state.region.as_str()
    };
    Ok(xml_response(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="{}">{}</LocationConstraint>"#,
        crate::xml::XMLNS,
        crate::xml::escape(region)
    )))
}

pub async fn versioning(ctx: &Ctx) -> S3Result<Response> {
    if !bucket_exists(ctx).await? {
        return Err(S3Error::no_such_bucket());
    }
    Ok(xml_response(Doc::new("VersioningConfiguration").finish()))
}

pub(crate) async fn bucket_exists(ctx: &Ctx) -> S3Result<bool> {
    ctx.state
        .storage
        .bucket_exists(ctx.bucket())
        .await
        .map_err(storage_error)
}
