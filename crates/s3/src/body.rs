//! Request bodies in, response bodies out.
//!
//! In: the body streams (decoded from aws-chunked when needed) into a [`PendingObject`] in
//! 1 MiB writes on the blocking pool, or into memory for the small XML bodies; then every
//! integrity claim the client made is checked: the signed SHA-256, `Content-MD5`,
//! `x-amz-checksum-sha256` / `-crc32` (header or trailer), the decoded length. Any mismatch
//! drops the temp file, so nothing is stored.
//!
//! Out: [`FileBody`] streams an object file range from disk in 256 KiB reads on the blocking
//! pool, one read ahead of the socket, so a 1 GB download never sits in memory.

use std::fs::File;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::HeaderMap;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::task::JoinHandle;

use crate::auth::Payload;
use crate::chunked::{Decoder, Step};
use crate::error::{S3Error, S3Result};
use crate::storage::PendingObject;
use crate::storage::file::{Digests, read_chunk};

const WRITE_BATCH: usize = 1 << 20;
const READ_CHUNK: usize = 256 * 1024;
/// S3's largest single PUT (and part).
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Checksums the client sent, verified.
#[derive(Debug, Default)]
pub struct Verified {
    /// base64 CRC32 when the client sent one.
    pub crc32: Option<String>,
    /// base64 SHA-256 when the client sent `x-amz-checksum-sha256`.
    pub sha256: Option<String>,
}

enum Sink {
    Memory(Vec<u8>, usize),
    File(Option<Box<PendingObject>>, BytesMut),
}

impl Sink {
    async fn put(&mut self, data: Bytes) -> S3Result<()> {
        match self {
            Sink::Memory(buf, limit) => {
                if buf.len() + data.len() > *limit {
                    return Err(S3Error::new(
                        http::StatusCode::BAD_REQUEST,
                        "MaxMessageLengthExceeded",
                        "Your request was too big.",
                    ));
                }
                buf.extend_from_slice(&data);
                Ok(())
            }
            Sink::File(pending, batch) => {
                batch.extend_from_slice(&data);
                if batch.len() >= WRITE_BATCH {
                    flush(pending, batch).await?;
                }
                Ok(())
            }
        }
    }
}

async fn flush(pending: &mut Option<Box<PendingObject>>, batch: &mut BytesMut) -> S3Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let data = batch.split().freeze();
    let mut p = pending
        .take()
        .expect("a pending object is present between writes");
    let (p, result) = tokio::task::spawn_blocking(move || {
        let r = p.write(&data);
        (p, r)
    })
    .await
    .map_err(|_| S3Error::internal())?;
    *pending = Some(p);
    result.map_err(S3Error::from)
}

async fn drain(
    body: Body,
    payload: &mut Payload,
    sink: &mut Sink,
) -> S3Result<(u64, Vec<(String, String)>)> {
    let mut body = body;
    let mut decoder = match payload {
        Payload::Chunked(signer) => Some(Decoder::new(signer.take())),
        _ => None,
    };
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| S3Error::incomplete_body())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match decoder.as_mut() {
            None => {
                total += data.len() as u64;
                if total > MAX_PUT_BYTES {
                    return Err(too_large());
                }
                sink.put(data).await?;
            }
            Some(d) => {
                d.push(&data);
                while let Step::Data(chunk) = d.step()? {
                    if d.decoded_len > MAX_PUT_BYTES {
                        return Err(too_large());
                    }
                    sink.put(chunk).await?
                }
            }
        }
    }
    match decoder {
        Some(mut d) => {
            d.finish()?;
            Ok((d.decoded_len, d.trailers))
        }
        None => Ok((total, Vec::new())),
    }
}

fn too_large() -> S3Error {
    S3Error::new(
        http::StatusCode::BAD_REQUEST,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed object size.",
    )
}

/// Streams the body into `pending` and verifies every claim about it.
pub async fn receive_object(
    body: Body,
    mut payload: Payload,
    headers: &HeaderMap,
    pending: PendingObject,
) -> S3Result<(PendingObject, Digests, Verified)> {
    let mut sink = Sink::File(
        Some(Box::new(pending)),
        BytesMut::with_capacity(WRITE_BATCH),
    );
    let (len, trailers) = drain(body, &mut payload, &mut sink).await?;
    let Sink::File(mut pending, mut batch) = sink else {
        unreachable!("the sink is a file sink")
    };
    flush(&mut pending, &mut batch).await?;
    let pending = *pending.expect("a pending object is present after the last write");
    let digests = pending.digests();
    let verified = verify(&payload, headers, &trailers, len, &digests)?;
    Ok((pending, digests, verified))
}

/// Reads a small body (XML) into memory, verifying it the same way.
pub async fn receive_small(
    body: Body,
    mut payload: Payload,
    headers: &HeaderMap,
    limit: usize,
) -> S3Result<Bytes> {
    let mut sink = Sink::Memory(Vec::new(), limit);
    let (len, trailers) = drain(body, &mut payload, &mut sink).await?;
    let Sink::Memory(buf, _) = sink else {
        unreachable!("the sink is a memory sink")
    };
    let digests = digests_of(&buf);
    verify(&payload, headers, &trailers, len, &digests)?;
    Ok(Bytes::from(buf))
}

fn digests_of(buf: &[u8]) -> Digests {
    use md5::Digest;
    Digests {
        md5: Some(md5::Md5::digest(buf).into()),
        sha256: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, buf)
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes"),
        crc32: crc32fast::hash(buf),
        size: buf.len() as u64,
    }
}

fn verify(
    payload: &Payload,
    headers: &HeaderMap,
    trailers: &[(String, String)],
    len: u64,
    digests: &Digests,
) -> S3Result<Verified> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Payload::Sha256(claimed) = payload
        && hex::encode(digests.sha256) != *claimed
    {
        return Err(S3Error::new(
            http::StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    if let Payload::Chunked(_) = payload
        && let Some(declared) = header("x-amz-decoded-content-length")
        && declared.parse::<u64>().ok() != Some(len)
    {
        return Err(S3Error::incomplete_body());
    }
    if let Some(md5) = header("content-md5") {
        let claimed = b64
            .decode(md5.trim())
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| {
                S3Error::new(
                    http::StatusCode::BAD_REQUEST,
                    "InvalidDigest",
                    "The Content-MD5 you specified was invalid.",
                )
            })?;
        if digests.md5.is_some_and(|m| m[..] != claimed[..]) {
            return Err(S3Error::bad_digest(
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let claim = |name: &str| {
        trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| header(name))
    };
    let mut verified = Verified::default();
    if let Some(sha) = claim("x-amz-checksum-sha256") {
        if b64.decode(sha.trim()).ok().as_deref() != Some(&digests.sha256[..]) {
            return Err(S3Error::bad_digest(
                "The SHA256 you specified did not match the calculated checksum.",
            ));
        }
        verified.sha256 = Some(sha.trim().to_string());
    }
    if let Some(crc) = claim("x-amz-checksum-crc32") {
        if b64.decode(crc.trim()).ok().as_deref() != Some(&digests.crc32.to_be_bytes()[..]) {
            return Err(S3Error::bad_digest(
                "The CRC32 you specified did not match the calculated checksum.",
            ));
        }
        verified.crc32 = Some(crc.trim().to_string());
    }
    Ok(verified)
}

/// A response body reading `len` bytes of `file` from `offset`.
pub struct FileBody {
    file: Arc<File>,
    remaining: u64,
    next: Option<JoinHandle<std::io::Result<Bytes>>>,
    started: bool,
    offset: u64,
}

impl FileBody {
    pub fn new(file: File, offset: u64, len: u64) -> Self {
        Self {
            file: Arc::new(file),
            remaining: len,
            next: None,
            started: false,
            offset,
        }
    }

    fn start_read(&mut self) {
        if self.remaining == 0 {
            return;
        }
        let want = (self.remaining as usize).min(READ_CHUNK);
        self.remaining -= want as u64;
        let file = self.file.clone();
        let seek_to = (!self.started).then_some(self.offset);
        self.started = true;
        self.next = Some(tokio::task::spawn_blocking(move || {
            if let Some(offset) = seek_to {
                use std::io::Seek;
                (&*file).seek(std::io::SeekFrom::Start(offset))?;
            }
            let chunk = read_chunk(&file, want)?;
            if chunk.len() < want {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "object file shorter than its header says",
                ));
            }
            Ok(chunk)
        }));
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.next.is_none() {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            self.start_read();
        }
        let handle = self.next.as_mut().expect("a read is in flight");
        match Pin::new(handle).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(joined) => {
                self.next = None;
                let chunk = joined.map_err(std::io::Error::other)??;
                // Read ahead while hyper encrypts and sends this chunk.
                self.start_read();
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.next.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        // Exact remaining length is not tracked once a read is in flight; Content-Length is
        // set by the handler.
        http_body::SizeHint::default()
    }
}

use std::future::Future;
