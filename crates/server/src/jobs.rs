//! Wiring between the jobs service and the rest of the server: presigning job documents with
//! the artifact store's key, and reading a CreateJob `documentSource` from the artifact store.
//! No job rules live here.

use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::pin::Pin;

use drover_core::jobs::document::MAX_DOCUMENT_BYTES;
use drover_core::placeholder::parse_s3_url;
use drover_core::time::Timestamp;
use drover_s3::Presigner;
use drover_s3::storage::Backend;
use drover_s3::storage::backend::ObjectBody;
use drover_services::jobs::{DocumentFetcher, DocumentPresigner};

/// Presigns documents' `${aws:iot:s3-presigned-url:...}` placeholders for drover's S3 API.
pub struct JobDocumentPresigner(pub Presigner);

impl DocumentPresigner for JobDocumentPresigner {
    fn presign(
        &self,
        document: &str,
        thing: &str,
        expires_in_sec: Option<i64>,
        now: Timestamp,
    ) -> Result<String, String> {
        let at = time::OffsetDateTime::from_unix_timestamp(now.millis().div_euclid(1000))
            .map_err(|e| e.to_string())?;
        self.0
            .presign_job_document(document, thing, expires_in_sec, at)
            .map_err(|e| e.to_string())
    }
}

/// Reads `documentSource` objects from the artifact store. The URL names a bucket and key in
/// one of the forms job documents use (`s3://bucket/key`, `https://s3.<region>.amazonaws.com/
/// bucket/key`, `https://bucket.s3.<region>.amazonaws.com/key`); the host only selects the
/// bucket, as for presigned URLs.
pub struct ArtifactDocumentFetcher(pub Backend);

impl DocumentFetcher for ArtifactDocumentFetcher {
    fn fetch(
        &self,
        url: &str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        let url = url.to_string();
        Box::pin(async move {
            let location = parse_s3_url(&url).map_err(|e| e.to_string())?;
            let opened = self
                .0
                .open(&location.bucket, &location.key)
                .await
                .map_err(|e| format!("{e}"))?;
            if opened.meta.size > MAX_DOCUMENT_BYTES as u64 {
                return Err(format!(
                    "the object is {} bytes; a job document may have at most {MAX_DOCUMENT_BYTES}",
                    opened.meta.size
                ));
            }
            match opened.body {
                ObjectBody::File {
                    mut file,
                    data_offset,
                } => tokio::task::spawn_blocking(move || {
                    let mut text = String::new();
                    file.seek(SeekFrom::Start(data_offset))
                        .and_then(|_| {
                            file.take(MAX_DOCUMENT_BYTES as u64 + 1)
                                .read_to_string(&mut text)
                        })
                        .map_err(|e| format!("reading the object failed: {e}"))?;
                    Ok(text)
                })
                .await
                .map_err(|e| format!("reading the object failed: {e}"))?,
                _ => Err(
                    "documentSource objects in an external artifact store are not supported"
                        .to_string(),
                ),
            }
        })
    }
}
