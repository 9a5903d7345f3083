//! The scale-out storage backend: artifacts in an external S3-compatible store (AWS S3, MinIO,
//! another drover), through `object_store`, so several drover nodes serve the same objects.
//!
//! Selected by `--artifacts-url s3://BUCKET[/PREFIX]?endpoint=URL&region=R&ca_bundle=PATH`
//! (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`). Layout under PREFIX:
//!
//! ```text
//! buckets/<bucket>                 marker; creation time as JSON
//! objects/<bucket>/<key>           the bytes; the key is one percent-encoded path segment
//! uploads/<id>/upload.json         an open multipart upload
//! uploads/<id>/<00001>             its parts
//! ```
//!
//! Metadata travels as the store's own object metadata: Content-Type and the standard headers
//! as themselves, user metadata as `x-amz-meta-*`, and drover's ETag, SHA-256 and part count as
//! `x-amz-meta-drover-*`. Bodies are verified on the node (the same temp-file ingestion as the
//! local engine) before they are uploaded; an upload is acknowledged once the external store has
//! acknowledged it. Differences from the local engine: listings read the bucket's whole key list
//! from the store (keys are encoded, so the store's order is not S3's), and objects assembled
//! from a multipart upload carry no whole-object SHA-256 (the store's metadata is fixed when the
//! final upload starts, before the hash is known).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::{Path, PathPart};
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload,
};

use super::file::ObjectMeta;
use super::{IndexEntry, MIN_PART_SIZE, PendingObject, StorageError, StorageResult, UploadMeta};

/// Parts larger than this are sent to the store in several requests.
const REMOTE_PART: usize = 8 * 1024 * 1024;
const META_ETAG: &str = "drover-etag";
const META_SHA256: &str = "drover-sha256";
const META_PARTS: &str = "drover-parts";

/// Where the external store is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub ca_bundle: Option<String>,
}

impl RemoteConfig {
    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&ca_bundle=PATH]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("--artifacts-url must start with s3://, not '{url}'"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(format!("--artifacts-url names no bucket: '{url}'"));
        }
        let mut config = RemoteConfig {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: None,
            region: None,
            ca_bundle: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            match k {
                "endpoint" => config.endpoint = Some(v),
                "region" => config.region = Some(v),
                "ca_bundle" => config.ca_bundle = Some(v),
                other => return Err(format!("--artifacts-url: unknown parameter '{other}'")),
            }
        }
        Ok(config)
    }
}

/// The external store.
#[derive(Clone)]
pub struct RemoteStorage {
    store: Arc<AmazonS3>,
    prefix: Path,
}

impl RemoteStorage {
    pub fn new(config: &RemoteConfig) -> Result<Self, String> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        let mut options = ClientOptions::new();
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
            if endpoint.starts_with("http://") {
                options = options.with_allow_http(true);
            }
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(ca) = &config.ca_bundle {
            let pem = std::fs::read(ca).map_err(|e| format!("reading {ca}: {e}"))?;
            for cert in object_store::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{ca}: {e}"))?
            {
                options = options.with_root_certificate(cert);
            }
        }
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| format!("--artifacts-url: {e}"))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::from(config.prefix.as_str()),
        })
    }

    fn path<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Path {
        let mut p = self.prefix.clone();
        for part in parts {
            p = p.join(PathPart::from(part));
        }
        p
    }

    fn object_path(&self, bucket: &str, key: &str) -> Path {
        self.path(["objects", bucket, key])
    }

    pub fn store(&self) -> Arc<AmazonS3> {
        self.store.clone()
    }

    // ---- buckets ---------------------------------------------------------------------------

    pub async fn bucket_exists(&self, bucket: &str) -> StorageResult<bool> {
        match self.store.head(&self.path(["buckets", bucket])).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    pub async fn list_buckets(&self) -> StorageResult<Vec<(String, i64)>> {
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&self.path(["buckets"])));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(io)?;
            if let Some(name) = meta.location.filename() {
                out.push((decode(name), meta.last_modified.timestamp_millis()));
            }
        }
        out.sort();
        Ok(out)
    }

    pub async fn create_bucket(&self, bucket: &str, now_ms: i64) -> StorageResult<()> {
        if self.bucket_exists(bucket).await? {
            return Err(StorageError::BucketExists);
        }
        let body = format!("{{\"created_ms\":{now_ms}}}");
        self.store
            .put(&self.path(["buckets", bucket]), PutPayload::from(body))
            .await
            .map_err(io)?;
        Ok(())
    }

    pub async fn delete_bucket(&self, bucket: &str) -> StorageResult<()> {
        if !self.bucket_exists(bucket).await? {
            return Err(StorageError::NoSuchBucket);
        }
        let mut listing = self.store.list(Some(&self.path(["objects", bucket])));
        if listing.next().await.transpose().map_err(io)?.is_some() {
            return Err(StorageError::BucketNotEmpty);
        }
        self.store
            .delete(&self.path(["buckets", bucket]))
            .await
            .map_err(io)
    }

    /// Every key of the bucket, for a listing.
    pub async fn index(&self, bucket: &str) -> StorageResult<BTreeMap<String, IndexEntry>> {
        if !self.bucket_exists(bucket).await? {
            return Err(StorageError::NoSuchBucket);
        }
        let mut out = BTreeMap::new();
        let mut listing = self.store.list(Some(&self.path(["objects", bucket])));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(io)?;
            let Some(name) = meta.location.filename() else {
                continue;
            };
            out.insert(
                decode(name),
                IndexEntry {
                    size: meta.size,
                    etag: meta.e_tag.unwrap_or_default().trim_matches('"').to_string(),
                    last_modified_ms: meta.last_modified.timestamp_millis(),
                },
            );
        }
        Ok(out)
    }

    // ---- objects -----------------------------------------------------------------------------

    /// The object's metadata (a HEAD against the store).
    pub async fn head_object(&self, bucket: &str, key: &str) -> StorageResult<ObjectMeta> {
        if !self.bucket_exists(bucket).await? {
            return Err(StorageError::NoSuchBucket);
        }
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        let result = match self
            .store
            .get_opts(&self.object_path(bucket, key), options)
            .await
        {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(StorageError::NoSuchKey),
            Err(e) => return Err(io(e)),
        };
        Ok(meta_from(key, &result.meta, &result.attributes))
    }

    /// Streams bytes `start..end` of an object whose ETag is still `etag`.
    pub async fn read(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
    ) -> StorageResult<futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>> {
        if start == end {
            return Ok(futures_util::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some((start..end).into()),
            ..Default::default()
        };
        match self
            .store
            .get_opts(&self.object_path(bucket, key), options)
            .await
        {
            Ok(r) => Ok(r.into_stream()),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NoSuchKey),
            Err(e) => Err(io(e)),
        }
    }

    /// Uploads a received (verified) body as `bucket/meta.key`.
    pub async fn publish(
        &self,
        bucket: &str,
        pending: PendingObject,
        meta: &ObjectMeta,
    ) -> StorageResult<()> {
        if !self.bucket_exists(bucket).await? {
            return Err(StorageError::NoSuchBucket);
        }
        let path = self.object_path(bucket, &meta.key);
        self.upload_file(&path, pending, attributes_of(meta)).await
    }

    async fn upload_file(
        &self,
        path: &Path,
        pending: PendingObject,
        attributes: Attributes,
    ) -> StorageResult<()> {
        let (file, offset) = pending.reader()?;
        let size = pending.digests().size;
        let file = Arc::new(file);
        let read = |file: Arc<std::fs::File>, at: u64, len: usize| async move {
            tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
                use std::io::{Seek, SeekFrom};
                let mut f = &*file;
                f.seek(SeekFrom::Start(at))?;
                let mut buf = Vec::with_capacity(len);
                f.take(len as u64).read_to_end(&mut buf)?;
                Ok(Bytes::from(buf))
            })
            .await
            .map_err(std::io::Error::other)?
        };
        if size as usize <= REMOTE_PART {
            let body = read(file.clone(), offset, size as usize).await?;
            let options = PutOptions {
                attributes,
                ..Default::default()
            };
            self.store
                .put_opts(path, PutPayload::from(body), options)
                .await
                .map_err(io)?;
        } else {
            let options = PutMultipartOptions {
                attributes,
                ..Default::default()
            };
            let mut upload = self
                .store
                .put_multipart_opts(path, options)
                .await
                .map_err(io)?;
            let mut done = 0u64;
            while done < size {
                let n = ((size - done) as usize).min(REMOTE_PART);
                let chunk = read(file.clone(), offset + done, n).await?;
                if let Err(e) = upload.put_part(PutPayload::from(chunk)).await {
                    let _ = upload.abort().await;
                    return Err(io(e));
                }
                done += n as u64;
            }
            if let Err(e) = upload.complete().await {
                let _ = upload.abort().await;
                return Err(io(e));
            }
        }
        drop(pending);
        Ok(())
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        if !self.bucket_exists(bucket).await? {
            return Err(StorageError::NoSuchBucket);
        }
        match self.store.delete(&self.object_path(bucket, key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    // ---- multipart uploads -------------------------------------------------------------------

    pub async fn create_upload(&self, meta: &UploadMeta) -> StorageResult<String> {
        if !self.bucket_exists(&meta.bucket).await? {
            return Err(StorageError::NoSuchBucket);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        self.store
            .put(
                &self.path(["uploads", &id, "upload.json"]),
                PutPayload::from(json),
            )
            .await
            .map_err(io)?;
        Ok(id)
    }

    pub async fn upload(&self, bucket: &str, key: &str, id: &str) -> StorageResult<UploadMeta> {
        if !super::names::check_upload_id(id) {
            return Err(StorageError::NoSuchUpload);
        }
        let bytes = match self
            .store
            .get(&self.path(["uploads", id, "upload.json"]))
            .await
        {
            Ok(r) => r.bytes().await.map_err(io)?,
            Err(object_store::Error::NotFound { .. }) => return Err(StorageError::NoSuchUpload),
            Err(e) => return Err(io(e)),
        };
        let meta: UploadMeta = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        if meta.bucket != bucket || meta.key != key {
            return Err(StorageError::NoSuchUpload);
        }
        Ok(meta)
    }

    pub async fn publish_part(
        &self,
        id: &str,
        part_number: u32,
        pending: PendingObject,
        meta: &ObjectMeta,
    ) -> StorageResult<()> {
        let path = self.path(["uploads", id, &format!("{part_number:05}")]);
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(META_ETAG.into()),
            AttributeValue::from(meta.etag.clone()),
        );
        self.upload_file(&path, pending, attributes).await
    }

    pub async fn list_parts(&self, id: &str) -> StorageResult<Vec<(u32, ObjectMeta)>> {
        let mut numbers = Vec::new();
        let mut listing = self.store.list(Some(&self.path(["uploads", id])));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(io)?;
            if let Some(n) = meta.location.filename().and_then(|f| f.parse::<u32>().ok()) {
                numbers.push(n);
            }
        }
        numbers.sort();
        let mut parts = Vec::with_capacity(numbers.len());
        for n in numbers {
            parts.push((n, self.part_meta(id, n).await?));
        }
        Ok(parts)
    }

    async fn part_meta(&self, id: &str, n: u32) -> StorageResult<ObjectMeta> {
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        let path = self.path(["uploads", id, &format!("{n:05}")]);
        match self.store.get_opts(&path, options).await {
            Ok(r) => Ok(meta_from("", &r.meta, &r.attributes)),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::InvalidPart(format!(
                "part {n} was not uploaded"
            ))),
            Err(e) => Err(io(e)),
        }
    }

    pub async fn complete_upload(
        &self,
        id: &str,
        upload: &UploadMeta,
        parts: &[(u32, String)],
        now_ms: i64,
    ) -> StorageResult<ObjectMeta> {
        use md5::Digest;
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(StorageError::InvalidPartOrder);
        }
        let mut md5s = Vec::new();
        let mut size = 0;
        for (i, (n, etag)) in parts.iter().enumerate() {
            let part = self.part_meta(id, *n).await?;
            if etag.trim_matches('"') != part.etag {
                return Err(StorageError::InvalidPart(format!(
                    "part {n}'s ETag does not match"
                )));
            }
            if i + 1 < parts.len() && part.size < MIN_PART_SIZE {
                return Err(StorageError::EntityTooSmall);
            }
            md5s.extend_from_slice(
                &hex::decode(&part.etag)
                    .map_err(|_| std::io::Error::other("part ETag is not hex"))?,
            );
            size += part.size;
        }
        let meta = ObjectMeta {
            key: upload.key.clone(),
            size,
            etag: format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), parts.len()),
            sha256: String::new(),
            crc32: None,
            content_type: upload.content_type.clone(),
            headers: upload.headers.clone(),
            metadata: upload.metadata.clone(),
            last_modified_ms: now_ms,
            parts: Some(parts.len() as u32),
        };
        // Assemble: stream each part from the store into one multipart upload of the object.
        let path = self.object_path(&upload.bucket, &upload.key);
        let options = PutMultipartOptions {
            attributes: attributes_of(&meta),
            ..Default::default()
        };
        let mut target = self
            .store
            .put_multipart_opts(&path, options)
            .await
            .map_err(io)?;
        let mut buffer = Vec::with_capacity(REMOTE_PART);
        let result: StorageResult<()> = async {
            for (n, _) in parts {
                let part_path = self.path(["uploads", id, &format!("{n:05}")]);
                let mut stream = self.store.get(&part_path).await.map_err(io)?.into_stream();
                while let Some(chunk) = stream.next().await {
                    buffer.extend_from_slice(&chunk.map_err(io)?);
                    if buffer.len() >= REMOTE_PART {
                        let full = std::mem::replace(&mut buffer, Vec::with_capacity(REMOTE_PART));
                        target.put_part(PutPayload::from(full)).await.map_err(io)?;
                    }
                }
            }
            if !buffer.is_empty() {
                target
                    .put_part(PutPayload::from(std::mem::take(&mut buffer)))
                    .await
                    .map_err(io)?;
            }
            target.complete().await.map_err(io)?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = target.abort().await;
            return Err(e);
        }
        self.abort_upload(id).await?;
        Ok(meta)
    }

    pub async fn abort_upload(&self, id: &str) -> StorageResult<()> {
        if !super::names::check_upload_id(id) {
            return Err(StorageError::NoSuchUpload);
        }
        let marker = self.path(["uploads", id, "upload.json"]);
        match self.store.head(&marker).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Err(StorageError::NoSuchUpload),
            Err(e) => return Err(io(e)),
        }
        // upload.json last is not possible to guarantee across a crash here; parts first so a
        // surviving upload.json still lists what is left.
        let mut listing = self.store.list(Some(&self.path(["uploads", id])));
        let mut paths = Vec::new();
        while let Some(meta) = listing.next().await {
            paths.push(meta.map_err(io)?.location);
        }
        for p in paths.into_iter().filter(|p| *p != marker) {
            let _ = self.store.delete(&p).await;
        }
        self.store.delete(&marker).await.map_err(io)
    }
}

fn io(e: object_store::Error) -> StorageError {
    StorageError::Io(std::io::Error::other(e))
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn attributes_of(meta: &ObjectMeta) -> Attributes {
    let mut a = Attributes::new();
    a.insert(
        Attribute::ContentType,
        AttributeValue::from(meta.content_type.clone()),
    );
    for (name, value) in &meta.headers {
        let attribute = match name.as_str() {
            "cache-control" => Attribute::CacheControl,
            "content-disposition" => Attribute::ContentDisposition,
            "content-encoding" => Attribute::ContentEncoding,
            "content-language" => Attribute::ContentLanguage,
            _ => continue,
        };
        a.insert(attribute, AttributeValue::from(value.clone()));
    }
    for (name, value) in &meta.metadata {
        a.insert(
            Attribute::Metadata(name.clone().into()),
            AttributeValue::from(value.clone()),
        );
    }
    a.insert(
        Attribute::Metadata(META_ETAG.into()),
        AttributeValue::from(meta.etag.clone()),
    );
    if !meta.sha256.is_empty() {
        a.insert(
            Attribute::Metadata(META_SHA256.into()),
            AttributeValue::from(meta.sha256.clone()),
        );
    }
    if let Some(parts) = meta.parts {
        a.insert(
            Attribute::Metadata(META_PARTS.into()),
            AttributeValue::from(parts.to_string()),
        );
    }
    a
}

fn meta_from(key: &str, stored: &object_store::ObjectMeta, a: &Attributes) -> ObjectMeta {
    let get = |k: &Attribute| a.get(k).map(|v| v.as_ref().to_string());
    let mut headers = Vec::new();
    for (attribute, name) in [
        (Attribute::CacheControl, "cache-control"),
        (Attribute::ContentDisposition, "content-disposition"),
        (Attribute::ContentEncoding, "content-encoding"),
        (Attribute::ContentLanguage, "content-language"),
    ] {
        if let Some(v) = get(&attribute) {
            headers.push((name.to_string(), v));
        }
    }
    let mut metadata = BTreeMap::new();
    for (attribute, value) in a.iter() {
        if let Attribute::Metadata(name) = attribute
            && !name.starts_with("drover-")
        {
            metadata.insert(name.to_string(), value.as_ref().to_string());
        }
    }
    ObjectMeta {
        key: key.to_string(),
        size: stored.size,
        etag: get(&Attribute::Metadata(META_ETAG.into())).unwrap_or_else(|| {
            stored
                .e_tag
                .clone()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string()
        }),
        sha256: get(&Attribute::Metadata(META_SHA256.into())).unwrap_or_default(),
        crc32: None,
        content_type: get(&Attribute::ContentType)
            .unwrap_or_else(|| "binary/octet-stream".to_string()),
        headers,
        metadata,
        last_modified_ms: stored.last_modified.timestamp_millis(),
        parts: get(&Attribute::Metadata(META_PARTS.into())).and_then(|p| p.parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_urls_parse() {
        let c = RemoteConfig::parse(
            "s3://drover-artifacts/prod/eu?endpoint=https%3A%2F%2Fminio%3A9000&region=eu-west-1&ca_bundle=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(c.bucket, "drover-artifacts");
        assert_eq!(c.prefix, "prod/eu");
        assert_eq!(c.endpoint.as_deref(), Some("https://minio:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.ca_bundle.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(RemoteConfig::parse("s3://b").unwrap().prefix, "");
        assert!(RemoteConfig::parse("https://b").is_err());
        assert!(RemoteConfig::parse("s3:///x").is_err());
        assert!(RemoteConfig::parse("s3://b?bogus=1").is_err());
    }

    #[test]
    fn keys_become_one_safe_segment() {
        let cfg = RemoteConfig::parse("s3://b/pre").unwrap();
        let r = RemoteStorage::new(&RemoteConfig {
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("us-east-1".into()),
            ..cfg
        })
        .unwrap();
        for key in ["../x", "a/../../x", "/abs", "..", "a b%2F"] {
            let p = r.object_path("fw", key);
            let parts: Vec<_> = p.parts().collect();
            assert_eq!(parts.len(), 4, "{key} -> {p}");
            assert_eq!(decode(p.filename().unwrap()), key);
        }
    }
}
