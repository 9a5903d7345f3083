//! drover's artifact store: an S3-compatible API for firmware images and device configuration,
//! served on `--s3-addr`, and the presigned URLs devices download and upload with.
//!
//! Why our own S3 subset instead of s3s: s3s ≥ 0.15 needs a newer Rust than drover's 1.95, and
//! its SigV4 verifier is private, while drover already has one (`drover_aws::sigv4`) shared
//! with the `iot` API. The subset is what awscli, boto3 and devices use: buckets, objects with
//! Range, copy, ListObjects(V2), multipart uploads, checksums, aws-chunked streaming uploads.
//!
//! Layers, top down: `api/` (routing and one file per operation family) → `auth.rs` (SigV4),
//! `body.rs` (streaming bodies in and out, integrity checks), `chunked.rs` (aws-chunked),
//! `range.rs`, `xml.rs`, `error.rs` (the only place S3 error codes are chosen) →
//! `storage/` (the filesystem engine, or an external S3 store through object_store for
//! scale-out; `storage/backend.rs` is the interface over both). `presign.rs` makes URLs for the
//! Jobs service.
//!
//! This crate does not know about things, jobs or the registry.

pub mod api;
pub mod auth;
pub mod body;
pub mod chunked;
pub mod error;
pub mod presign;
pub mod range;
pub mod storage;
pub mod xml;

pub use api::{S3State, router};
pub use presign::{PresignMethod, Presigner};
pub use storage::Storage;
