//! The storage the S3 API talks to: the embedded filesystem engine, or an external
//! S3-compatible store for scale-out. One async interface over both, so the API's handlers
//! do not care which; the local engine's blocking calls run on the blocking pool here.

use std::path::PathBuf;

use super::remote::RemoteStorage;
use super::{
    IndexEntry, ObjectMeta, PendingObject, Storage, StorageError, StorageResult, UploadMeta,
};

/// Where artifacts are kept.
#[derive(Clone)]
pub enum Backend {
    Local(Storage),
    /// The external store, and the local directory for bodies being received.
    Remote(RemoteStorage, PathBuf),
}

/// An object opened for reading.
pub struct Opened {
    pub meta: ObjectMeta,
    pub body: ObjectBody,
}

/// Where an opened object's bytes come from.
pub enum ObjectBody {
    File {
        file: std::fs::File,
        data_offset: u64,
    },
    Remote {
        storage: RemoteStorage,
        bucket: String,
    },
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
}

impl Backend {
    pub async fn bucket_exists(&self, bucket: &str) -> StorageResult<bool> {
        match self {
            Backend::Local(s) => Ok(s.bucket_exists(bucket)),
            Backend::Remote(r, _) => r.bucket_exists(bucket).await,
        }
    }

    pub async fn list_buckets(&self) -> StorageResult<Vec<(String, i64)>> {
        match self {
            Backend::Local(s) => Ok(s.list_buckets()),
            Backend::Remote(r, _) => r.list_buckets().await,
        }
    }

    pub async fn create_bucket(&self, bucket: &str, now_ms: i64) -> StorageResult<()> {
        match self {
            Backend::Local(s) => {
                let (s, b) = (s.clone(), bucket.to_string());
                blocking(move || s.create_bucket(&b, now_ms)).await
            }
            Backend::Remote(r, _) => r.create_bucket(bucket, now_ms).await,
        }
    }

    pub async fn delete_bucket(&self, bucket: &str) -> StorageResult<()> {
        match self {
            Backend::Local(s) => {
                let (s, b) = (s.clone(), bucket.to_string());
                blocking(move || s.delete_bucket(&b)).await
            }
            Backend::Remote(r, _) => r.delete_bucket(bucket).await,
        }
    }

    /// Visits the bucket's keys in order from `from` (inclusive) until `visit` says stop.
    pub async fn scan(
        &self,
        bucket: &str,
        from: Option<&str>,
        visit: &mut (dyn FnMut(&str, &IndexEntry) -> bool + Send),
    ) -> StorageResult<()> {
        match self {
            Backend::Local(s) => s.scan(bucket, from, visit),
            Backend::Remote(r, _) => {
                let index = r.index(bucket).await?;
                for (k, e) in index.range(from.unwrap_or("").to_string()..) {
                    if !visit(k, e) {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    pub async fn open(&self, bucket: &str, key: &str) -> StorageResult<Opened> {
        match self {
            Backend::Local(s) => {
                let (s, b, k) = (s.clone(), bucket.to_string(), key.to_string());
                let o = blocking(move || s.open_object(&b, &k)).await?;
                Ok(Opened {
                    meta: o.meta,
                    body: ObjectBody::File {
                        file: o.file,
                        data_offset: o.data_offset,
                    },
                })
            }
            Backend::Remote(r, _) => Ok(Opened {
                meta: r.head_object(bucket, key).await?,
                body: ObjectBody::Remote {
                    storage: r.clone(),
                    bucket: bucket.to_string(),
                },
            }),
        }
    }

    /// A temp file (always local) for a body being received.
    pub async fn pending(
        &self,
        proto: &ObjectMeta,
        want_md5: bool,
    ) -> StorageResult<PendingObject> {
        let tmp = match self {
            Backend::Local(s) => s.tmp_dir(),
            Backend::Remote(_, tmp) => tmp.clone(),
        };
        let proto = proto.clone();
        blocking(move || Ok(PendingObject::create(&tmp, &proto, want_md5)?)).await
    }

    pub async fn publish(
        &self,
        bucket: &str,
        pending: PendingObject,
        meta: &ObjectMeta,
    ) -> StorageResult<()> {
        match self {
            Backend::Local(s) => {
                let (s, b, m) = (s.clone(), bucket.to_string(), meta.clone());
                blocking(move || s.publish(&b, pending, &m)).await
            }
            Backend::Remote(r, _) => r.publish(bucket, pending, meta).await,
        }
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        match self {
            Backend::Local(s) => {
                let (s, b, k) = (s.clone(), bucket.to_string(), key.to_string());
                blocking(move || s.delete_object(&b, &k)).await
            }
            Backend::Remote(r, _) => r.delete_object(bucket, key).await,
        }
    }

    pub async fn create_upload(&self, meta: &UploadMeta) -> StorageResult<String> {
        match self {
            Backend::Local(s) => {
                let (s, m) = (s.clone(), meta.clone());
                blocking(move || s.create_upload(&m)).await
            }
            Backend::Remote(r, _) => r.create_upload(meta).await,
        }
    }

    pub async fn upload(&self, bucket: &str, key: &str, id: &str) -> StorageResult<UploadMeta> {
        match self {
            Backend::Local(s) => {
                let (s, b, k, i) = (
                    s.clone(),
                    bucket.to_string(),
                    key.to_string(),
                    id.to_string(),
                );
                blocking(move || s.upload(&b, &k, &i)).await
            }
            Backend::Remote(r, _) => r.upload(bucket, key, id).await,
        }
    }

    pub async fn publish_part(
        &self,
        id: &str,
        part_number: u32,
        pending: PendingObject,
        meta: &ObjectMeta,
    ) -> StorageResult<()> {
        match self {
            Backend::Local(s) => {
                let (s, i, m) = (s.clone(), id.to_string(), meta.clone());
                blocking(move || s.publish_part(&i, part_number, pending, &m)).await
            }
            Backend::Remote(r, _) => r.publish_part(id, part_number, pending, meta).await,
        }
    }

    pub async fn list_parts(&self, id: &str) -> StorageResult<Vec<(u32, ObjectMeta)>> {
        match self {
            Backend::Local(s) => {
                let (s, i) = (s.clone(), id.to_string());
                blocking(move || s.list_parts(&i)).await
            }
            Backend::Remote(r, _) => r.list_parts(id).await,
        }
    }

    pub async fn complete_upload(
        &self,
        id: &str,
        upload: &UploadMeta,
        parts: &[(u32, String)],
        now_ms: i64,
    ) -> StorageResult<ObjectMeta> {
        match self {
            Backend::Local(s) => {
                let (s, i, u, p) = (s.clone(), id.to_string(), upload.clone(), parts.to_vec());
                blocking(move || s.complete_upload(&i, &u, &p, now_ms)).await
            }
            Backend::Remote(r, _) => r.complete_upload(id, upload, parts, now_ms).await,
        }
    }

    pub async fn abort_upload(&self, id: &str) -> StorageResult<()> {
        match self {
            Backend::Local(s) => {
                let (s, i) = (s.clone(), id.to_string());
                blocking(move || s.abort_upload(&i)).await
            }
            Backend::Remote(r, _) => r.abort_upload(id).await,
        }
    }
}
