//! Wiring between the jobs service and the rest of the server: presigning job documents with
//! the artifact store's key, and reading a CreateJob `documentSource` from the artifact store
//! (the data directory's, or the external one `--artifacts-url` names) or, for any other
//! http(s) URL, with a GET. No job rules live here.

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
/// bucket/key`, `https://bucket.s3.<region>.amazonaws.com/key`; the host only selects the
/// bucket, as for presigned URLs) or is a path-style URL of drover's own S3 endpoint
/// (`https://<one of s3_hosts>/bucket/key`), the URL a user has for an uploaded object. Any
/// other `http://` or `https://` URL is fetched with a GET, as AWS fetches documents from
/// wherever the URL points.
pub struct ArtifactDocumentFetcher {
    pub storage: Backend,
    /// `host:port` forms under which this server's S3 API is reached.
    pub s3_hosts: Vec<String>,
    pub http: reqwest::Client,
}

/// How long fetching a documentSource over http(s) may take, connection included.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl ArtifactDocumentFetcher {
    pub fn new(storage: Backend, s3_hosts: Vec<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()?;
        Ok(Self {
            storage,
            s3_hosts,
            http,
        })
    }

    /// GETs a document from a URL outside the artifact store, reading at most one byte more
    /// than a document may have, so a huge or endless body costs nothing.
    async fn fetch_url(&self, url: &str) -> Result<String, String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("the GET failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the GET answered {}", response.status()));
        }
        let too_big = || format!("a job document may have at most {MAX_DOCUMENT_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(too_big());
            }
        }
        String::from_utf8(body).map_err(|_| "the document is not UTF-8 text".to_string())
    }

    fn location(&self, url: &str) -> Result<drover_core::placeholder::S3Location, String> {
        if let Some(rest) = url.strip_prefix("https://")
            && let Some((host, path)) = rest.split_once('/')
            && self.s3_hosts.iter().any(|h| h == host)
        {
            // Rewritten to AWS's path-style form so the one parser decodes bucket and key.
            return parse_s3_url(&format!("https://s3.amazonaws.com/{path}"))
                .map_err(|e| e.to_string());
        }
        parse_s3_url(url).map_err(|e| e.to_string())
    }
}

impl DocumentFetcher for ArtifactDocumentFetcher {
    fn fetch(
        &self,
        url: &str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        let url = url.to_string();
        Box::pin(async move {
            let location = match self.location(&url) {
                Ok(location) => location,
                Err(_) if url.starts_with("http://") || url.starts_with("https://") => {
                    return self.fetch_url(&url).await;
                }
                Err(e) => return Err(e),
            };
            let opened = self
                .storage
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
                // `--artifacts-url`: the object lives in the external store; its size was
                // checked above, so reading it whole is bounded.
                ObjectBody::Remote { storage, bucket } => {
                    use futures_util::StreamExt;
                    let mut stream = storage
                        .read(&bucket, &location.key, 0, opened.meta.size)
                        .await
                        .map_err(|e| format!("reading the object failed: {e}"))?;
                    let mut body = Vec::with_capacity(opened.meta.size as usize);
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| format!("reading the object failed: {e}"))?;
                        body.extend_from_slice(&chunk);
                        if body.len() > MAX_DOCUMENT_BYTES {
                            return Err(format!(
                                "a job document may have at most {MAX_DOCUMENT_BYTES} bytes"
                            ));
                        }
                    }
                    String::from_utf8(body)
                        .map_err(|_| "the document is not UTF-8 text".to_string())
                }
            }
        })
    }
}
