//! The embedded artifact storage engine: buckets, objects and multipart uploads as files under
//! `DATA_DIR/artifacts`, durable before any reply.
//!
//! ```text
//! artifacts/buckets/<bucket>/bucket.json           creation date
//! artifacts/buckets/<bucket>/objects/ab/ab12...    one object file per key (see file.rs)
//! artifacts/uploads/<upload-id>/upload.json        an open multipart upload
//! artifacts/uploads/<upload-id>/00001              its parts (object files)
//! artifacts/tmp/                                   bodies being received; emptied at start
//! ```
//!
//! Why files, not the Store: artifacts are large and streamed, metadata travels with the bytes
//! in the same file (one rename publishes both), and neither backend of the `Store` trait had to
//! grow. A scale-out deployment keeps artifacts in an external S3 service instead.
//!
//! Every write goes temp file → fsync → rename → fsync directory. A kill at any point leaves
//! either the old object or the new one, never a mix; leftovers in `tmp/` are deleted at start.
//!
//! An in-memory index (key → size, ETag, date per bucket), rebuilt from the object headers at
//! start, serves listings; reads of one object go to its file, whose header is authoritative.
//! The blocking file work runs on tokio's blocking pool; locks are std locks never held across
//! an await.

pub mod backend;
pub mod file;
pub mod names;
pub mod remote;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

pub use backend::{Backend, ObjectBody, Opened};
pub use file::{ObjectMeta, OpenObject, PendingObject};

/// What a listing needs of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
}

#[derive(Debug, Default)]
struct BucketIndex {
    created_ms: i64,
    objects: BTreeMap<String, IndexEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BucketFile {
    created_ms: i64,
}

/// An open multipart upload's fixed facts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub initiated_ms: i64,
}

/// Storage-level failures; `api` maps them to S3 error codes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("parts not in ascending order")]
    InvalidPartOrder,
    #[error("part too small")]
    EntityTooSmall,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// S3's minimum size for every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The filesystem artifact store. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    index: RwLock<BTreeMap<String, BucketIndex>>,
    /// Serializes the publish step (rename + index update) so the index order matches the
    /// file system's.
    publish: Mutex<()>,
}

impl Storage {
    /// Opens (creating if needed) the store at `root`, deletes leftover temp files and rebuilds
    /// the index. Blocking: call before serving, or from a blocking task.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        for dir in ["buckets", "uploads"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        prepare_tmp(root)?;
        let mut index = BTreeMap::new();
        for entry in std::fs::read_dir(root.join("buckets"))? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let bucket_json = entry.path().join("bucket.json");
            let Ok(bytes) = std::fs::read(&bucket_json) else {
                // A bucket directory without bucket.json is a half-created or half-deleted
                // bucket: finish deleting it.
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            };
            let created: BucketFile = serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", bucket_json.display()),
                )
            })?;
            let mut bucket = BucketIndex {
                created_ms: created.created_ms,
                objects: BTreeMap::new(),
            };
            let objects = entry.path().join("objects");
            if objects.is_dir() {
                for fan in std::fs::read_dir(&objects)? {
                    for obj in std::fs::read_dir(fan?.path())? {
                        let path = obj?.path();
                        match file::open(&path) {
                            Ok(o) => {
                                bucket.objects.insert(o.meta.key.clone(), entry_of(&o.meta));
                            }
                            Err(e) => {
                                tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable object file")
                            }
                        }
                    }
                }
            }
            index.insert(name, bucket);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                index: RwLock::new(index),
                publish: Mutex::new(()),
            }),
        })
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.inner.root.join("buckets").join(bucket)
    }

    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.bucket_dir(bucket)
            .join("objects")
            .join(names::key_path(key))
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.inner.root.join("uploads").join(upload_id)
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, BucketIndex>> {
        self.inner.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, BucketIndex>> {
        self.inner.index.write().unwrap_or_else(|e| e.into_inner())
    }

    // ---- buckets ---------------------------------------------------------------------------

    pub fn bucket_exists(&self, bucket: &str) -> bool {
        self.read_index().contains_key(bucket)
    }

    /// Buckets and their creation times, by name.
    pub fn list_buckets(&self) -> Vec<(String, i64)> {
        self.read_index()
            .iter()
            .map(|(name, b)| (name.clone(), b.created_ms))
            .collect()
    }

    pub fn create_bucket(&self, bucket: &str, now_ms: i64) -> StorageResult<()> {
        let _publish = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
        if self.bucket_exists(bucket) {
            return Err(StorageError::BucketExists);
        }
        let dir = self.bucket_dir(bucket);
        std::fs::create_dir_all(dir.join("objects"))?;
        let json = serde_json::to_vec(&BucketFile { created_ms: now_ms })
            .map_err(std::io::Error::other)?;
        write_small_atomic(&self.tmp_dir(), &dir.join("bucket.json"), &json)?;
        file::sync_dir(&dir)?;
        file::sync_dir(&self.inner.root.join("buckets"))?;
        self.write_index().insert(
            bucket.to_string(),
            BucketIndex {
                created_ms: now_ms,
                objects: BTreeMap::new(),
            },
        );
        Ok(())
    }

    pub fn delete_bucket(&self, bucket: &str) -> StorageResult<()> {
        let _publish = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
        {
            let index = self.read_index();
            let b = index.get(bucket).ok_or(StorageError::NoSuchBucket)?;
            if !b.objects.is_empty() {
                return Err(StorageError::BucketNotEmpty);
            }
        }
        let dir = self.bucket_dir(bucket);
        // bucket.json goes first: a crash mid-way leaves a directory that `open` finishes
        // deleting, never a bucket that is half there.
        std::fs::remove_file(dir.join("bucket.json"))?;
        file::sync_dir(&dir)?;
        std::fs::remove_dir_all(&dir)?;
        file::sync_dir(&self.inner.root.join("buckets"))?;
        self.write_index().remove(bucket);
        Ok(())
    }

    /// Keys of `bucket` in order, starting after `after` (exclusive), for listings.
    pub fn scan(
        &self,
        bucket: &str,
        from: Option<&str>,
        mut visit: impl FnMut(&str, &IndexEntry) -> bool,
    ) -> StorageResult<()> {
        use std::ops::Bound;
        let index = self.read_index();
        let b = index.get(bucket).ok_or(StorageError::NoSuchBucket)?;
        let range = match from {
            Some(f) => b
                .objects
                .range::<str, _>((Bound::Included(f), Bound::Unbounded)),
            None => b.objects.range::<str, _>(..),
        };
        for (k, e) in range {
            if !visit(k, e) {
                break;
            }
        }
        Ok(())
    }

    // ---- objects ---------------------------------------------------------------------------

    /// Opens an object for reading (blocking).
    pub fn open_object(&self, bucket: &str, key: &str) -> StorageResult<OpenObject> {
        if !self.bucket_exists(bucket) {
            return Err(StorageError::NoSuchBucket);
        }
        match file::open(&self.object_path(bucket, key)) {
            Ok(o) if o.meta.key == key => Ok(o),
            // Another key with the same SHA-256 is not a real possibility; treat it as absent.
            Ok(_) => Err(StorageError::NoSuchKey),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NoSuchKey),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a temp file for an object like `proto` (blocking).
    pub fn pending(&self, proto: &ObjectMeta, want_md5: bool) -> StorageResult<PendingObject> {
        Ok(PendingObject::create(&self.tmp_dir(), proto, want_md5)?)
    }

    /// Seals `pending` with `meta` and publishes it as `bucket/meta.key`, durably (blocking).
    pub fn publish(
        &self,
        bucket: &str,
        mut pending: PendingObject,
        meta: &ObjectMeta,
    ) -> StorageResult<()> {
        pending.seal(meta)?;
        let path = self.object_path(bucket, &meta.key);
        let dir = path.parent().expect("object paths have a fan-out parent");
        {
            let _publish = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
            if !self.bucket_exists(bucket) {
                return Err(StorageError::NoSuchBucket);
            }
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
                file::sync_dir(dir.parent().expect("fan-out dirs live in objects/"))?;
            }
            std::fs::rename(pending.path(), &path)?;
            pending.committed();
            if let Some(b) = self.write_index().get_mut(bucket) {
                b.objects.insert(meta.key.clone(), entry_of(meta));
            }
        }
        file::sync_dir(dir)?;
        Ok(())
    }

    /// Deletes an object; deleting an absent key succeeds, as in S3 (blocking).
    pub fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        let path = self.object_path(bucket, key);
        {
            let _publish = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
            if !self.bucket_exists(bucket) {
                return Err(StorageError::NoSuchBucket);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            if let Some(b) = self.write_index().get_mut(bucket) {
                b.objects.remove(key);
            }
        }
        if let Some(dir) = path.parent() {
            file::sync_dir(dir)?;
        }
        Ok(())
    }

    // ---- multipart uploads -------------------------------------------------------------------

    /// Records a new multipart upload and returns its id (blocking).
    pub fn create_upload(&self, meta: &UploadMeta) -> StorageResult<String> {
        if !self.bucket_exists(&meta.bucket) {
            return Err(StorageError::NoSuchBucket);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.upload_dir(&id);
        std::fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        write_small_atomic(&self.tmp_dir(), &dir.join("upload.json"), &json)?;
        file::sync_dir(&self.inner.root.join("uploads"))?;
        Ok(id)
    }

    /// The upload's facts, if `upload_id` names an open upload of `bucket/key` (blocking).
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> StorageResult<UploadMeta> {
        if !names::check_upload_id(upload_id) {
            return Err(StorageError::NoSuchUpload);
        }
        let bytes = match std::fs::read(self.upload_dir(upload_id).join("upload.json")) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NoSuchUpload);
            }
            Err(e) => return Err(e.into()),
        };
        let meta: UploadMeta = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        if meta.bucket != bucket || meta.key != key {
            return Err(StorageError::NoSuchUpload);
        }
        Ok(meta)
    }

    /// Seals and publishes one part of an upload (blocking).
    pub fn publish_part(
        &self,
        upload_id: &str,
        part_number: u32,
        mut pending: PendingObject,
        meta: &ObjectMeta,
    ) -> StorageResult<()> {
        pending.seal(meta)?;
        let dir = self.upload_dir(upload_id);
        std::fs::rename(pending.path(), dir.join(format!("{part_number:05}"))).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => StorageError::NoSuchUpload,
                _ => e.into(),
            },
        )?;
        pending.committed();
        file::sync_dir(&dir)?;
        Ok(())
    }

    /// The parts uploaded so far, by part number (blocking).
    pub fn list_parts(&self, upload_id: &str) -> StorageResult<Vec<(u32, ObjectMeta)>> {
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(self.upload_dir(upload_id))? {
            let entry = entry?;
            let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            parts.push((n, file::open(&entry.path())?.meta));
        }
        parts.sort_by_key(|(n, _)| *n);
        Ok(parts)
    }

    /// Assembles the listed parts into the object and publishes it, then forgets the upload
    /// (blocking). Returns the object's metadata.
    pub fn complete_upload(
        &self,
        upload_id: &str,
        upload: &UploadMeta,
        parts: &[(u32, String)],
        now_ms: i64,
    ) -> StorageResult<ObjectMeta> {
        let dir = self.upload_dir(upload_id);
        let mut opened = Vec::with_capacity(parts.len());
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(StorageError::InvalidPartOrder);
        }
        for (i, (number, etag)) in parts.iter().enumerate() {
            let part = match file::open(&dir.join(format!("{number:05}"))) {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StorageError::InvalidPart(format!(
                        "part {number} was not uploaded"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            if etag.trim_matches('"') != part.meta.etag {
                return Err(StorageError::InvalidPart(format!(
                    "part {number}'s ETag does not match"
                )));
            }
            if i + 1 < parts.len() && part.meta.size < MIN_PART_SIZE {
                return Err(StorageError::EntityTooSmall);
            }
            opened.push(part);
        }
        let mut meta = ObjectMeta {
            key: upload.key.clone(),
            size: 0,
            etag: String::new(),
            sha256: String::new(),
            crc32: None,
            content_type: upload.content_type.clone(),
            headers: upload.headers.clone(),
            metadata: upload.metadata.clone(),
            last_modified_ms: now_ms,
            parts: Some(parts.len() as u32),
        };
        let mut pending = self.pending(&meta, false)?;
        let mut md5s = Vec::with_capacity(16 * opened.len());
        for part in &opened {
            pending.copy_from(&part.file, part.data_offset, part.meta.size)?;
            md5s.extend_from_slice(
                &hex::decode(&part.meta.etag)
                    .map_err(|_| std::io::Error::other("stored part ETag is not hex"))?,
            );
        }
        let digests = pending.digests();
        {
            use md5::Digest;
            meta.etag = format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), opened.len());
        }
        meta.size = digests.size;
        meta.sha256 = base64_encode(&digests.sha256);
        self.publish(&upload.bucket, pending, &meta)?;
        self.abort_upload(upload_id)?;
        Ok(meta)
    }

    /// Forgets an upload and its parts (blocking).
    pub fn abort_upload(&self, upload_id: &str) -> StorageResult<()> {
        if !names::check_upload_id(upload_id) {
            return Err(StorageError::NoSuchUpload);
        }
        let dir = self.upload_dir(upload_id);
        // upload.json first, so a crash leaves no upload that looks open but lacks parts.
        match std::fs::remove_file(dir.join("upload.json")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NoSuchUpload);
            }
            Err(e) => return Err(e.into()),
        }
        std::fs::remove_dir_all(&dir)?;
        file::sync_dir(&self.inner.root.join("uploads"))?;
        Ok(())
    }
}

/// Creates `root/tmp` and deletes what an earlier run left in it (bodies whose upload never
/// finished). Both backends receive bodies there.
pub fn prepare_tmp(root: &Path) -> std::io::Result<PathBuf> {
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let mut removed = 0usize;
    for entry in std::fs::read_dir(&tmp)? {
        let entry = entry?;
        let _ = std::fs::remove_file(entry.path());
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(removed, "deleted unfinished uploads left by an earlier run");
    }
    Ok(tmp)
}

fn entry_of(meta: &ObjectMeta) -> IndexEntry {
    IndexEntry {
        size: meta.size,
        etag: meta.etag.clone(),
        last_modified_ms: meta.last_modified_ms,
    }
}

pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes a small file atomically and durably through `tmp_dir`.
fn write_small_atomic(tmp_dir: &Path, path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = tmp_dir.join(format!("{}.small", uuid::Uuid::new_v4().simple()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        file::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 0,
            etag: String::new(),
            sha256: String::new(),
            crc32: None,
            content_type: "application/octet-stream".into(),
            headers: vec![],
            metadata: BTreeMap::new(),
            last_modified_ms: 1,
            parts: None,
        }
    }

    fn put(s: &Storage, bucket: &str, key: &str, body: &[u8]) -> StorageResult<ObjectMeta> {
        let mut meta = proto(key);
        let mut p = s.pending(&meta, true)?;
        p.write(body)?;
        let d = p.digests();
        meta.size = d.size;
        meta.etag = hex::encode(d.md5.expect("md5 requested"));
        meta.sha256 = base64_encode(&d.sha256);
        s.publish(bucket, p, &meta)?;
        Ok(meta)
    }

    #[test]
    fn objects_survive_reopen_and_tmp_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        s.create_bucket("fw", 5).unwrap();
        assert!(matches!(
            s.create_bucket("fw", 6),
            Err(StorageError::BucketExists)
        ));
        put(&s, "fw", "a/../../x", b"one").unwrap();
        put(&s, "fw", "b", b"two").unwrap();
        // An upload killed half way: a temp file nobody published.
        let mut p = s.pending(&proto("c"), true).unwrap();
        p.write(b"partial").unwrap();
        std::mem::forget(p);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            1
        );

        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let mut keys = vec![];
        s.scan("fw", None, |k, _| {
            keys.push(k.to_string());
            true
        })
        .unwrap();
        assert_eq!(keys, vec!["a/../../x", "b"]);
        assert!(matches!(
            s.open_object("fw", "c"),
            Err(StorageError::NoSuchKey)
        ));
        assert_eq!(s.open_object("fw", "b").unwrap().meta.size, 3);
        // Nothing was written outside the bucket's objects directory.
        assert!(!dir.path().join("x").exists());
        assert!(!dir.path().join("buckets").join("x").exists());
        assert!(matches!(
            s.delete_bucket("fw"),
            Err(StorageError::BucketNotEmpty)
        ));
        s.delete_object("fw", "a/../../x").unwrap();
        s.delete_object("fw", "b").unwrap();
        s.delete_object("fw", "b").unwrap();
        s.delete_bucket("fw").unwrap();
        assert!(Storage::open(dir.path()).unwrap().list_buckets().is_empty());
    }

    #[test]
    fn multipart_etag_is_md5_of_md5s() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        s.create_bucket("fw", 5).unwrap();
        let up = UploadMeta {
            bucket: "fw".into(),
            key: "big".into(),
            content_type: "application/octet-stream".into(),
            headers: vec![],
            metadata: BTreeMap::new(),
            initiated_ms: 1,
        };
        let id = s.create_upload(&up).unwrap();
        let first = vec![b'a'; MIN_PART_SIZE as usize];
        let mut etags = vec![];
        for (n, body) in [(1u32, first.as_slice()), (2, b"tail".as_slice())] {
            let mut meta = proto("");
            let mut p = s.pending(&meta, true).unwrap();
            p.write(body).unwrap();
            let d = p.digests();
            meta.size = d.size;
            meta.etag = hex::encode(d.md5.unwrap());
            etags.push(meta.etag.clone());
            s.publish_part(&id, n, p, &meta).unwrap();
        }
        assert_eq!(s.list_parts(&id).unwrap().len(), 2);
        assert!(matches!(
            s.complete_upload(&id, &up, &[(2, etags[1].clone()), (1, etags[0].clone())], 9),
            Err(StorageError::InvalidPartOrder)
        ));
        assert!(matches!(
            s.complete_upload(&id, &up, &[(1, "\"00\"".into())], 9),
            Err(StorageError::InvalidPart(_))
        ));
        let meta = s
            .complete_upload(
                &id,
                &up,
                &[(1, format!("\"{}\"", etags[0])), (2, etags[1].clone())],
                9,
            )
            .unwrap();
        let mut cat = hex::decode(&etags[0]).unwrap();
        cat.extend(hex::decode(&etags[1]).unwrap());
        use md5::Digest;
        assert_eq!(
            meta.etag,
            format!("{}-2", hex::encode(md5::Md5::digest(&cat)))
        );
        assert_eq!(meta.size, MIN_PART_SIZE + 4);
        assert!(matches!(
            s.upload("fw", "big", &id),
            Err(StorageError::NoSuchUpload)
        ));
        assert_eq!(s.open_object("fw", "big").unwrap().meta, meta);
    }
}
