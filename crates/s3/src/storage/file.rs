//! The object file: one file holds an object's metadata and its bytes, so replacing an object
//! is one `rename` and a reader can never pair new bytes with old metadata.
//!
//! Layout: `DRVOBJ01`, the data offset (u64 LE), the header length (u32 LE), the header (JSON
//! [`ObjectMeta`]), zero padding, then the body from the data offset (a multiple of 4 KiB, so
//! body reads are page-aligned). The header is written last, once the body's digests are known;
//! the space for it is reserved from the largest header the known fields can produce.
//!
//! A [`PendingObject`] is a temp file in the store's `tmp/` (same filesystem as the objects):
//! body bytes stream in and are hashed on the way; `seal` writes the header and fsyncs. The
//! caller then renames it into place and fsyncs the directory. Dropping an unsealed or
//! uncommitted `PendingObject` deletes the temp file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use md5::Digest;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"DRVOBJ01";
const PREFIX: usize = 8 + 8 + 4;
const ALIGN: u64 = 4096;

/// Everything S3 reports about an object besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Without quotes: MD5 hex, or `md5-of-md5s-N` for multipart objects.
    pub etag: String,
    /// SHA-256 of the whole body, base64 (as S3's `x-amz-checksum-sha256`).
    pub sha256: String,
    /// CRC32 of the whole body, base64, when the client supplied one for a single PUT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    pub content_type: String,
    /// Stored standard headers (Cache-Control, Content-Disposition, ...), names lower-case.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` without the prefix, names lower-case.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
}

impl ObjectMeta {
    /// The header size this object's fields can grow to once digests and sizes are filled in.
    fn reserve(&self) -> u64 {
        let mut widest = self.clone();
        widest.size = u64::MAX;
        widest.etag = "f".repeat(48);
        widest.sha256 = "A".repeat(44);
        widest.crc32 = Some("A".repeat(12));
        widest.last_modified_ms = i64::MIN;
        widest.parts = Some(u32::MAX);
        let len = serde_json::to_vec(&widest).map(|v| v.len()).unwrap_or(0) as u64;
        (PREFIX as u64 + len).div_ceil(ALIGN) * ALIGN
    }
}

/// Digests computed while a body streams in.
pub struct Digests {
    pub md5: Option<[u8; 16]>,
    pub sha256: [u8; 32],
    pub crc32: u32,
    pub size: u64,
}

/// An object being written to a temp file.
pub struct PendingObject {
    file: File,
    path: PathBuf,
    data_offset: u64,
    md5: Option<md5::Md5>,
    sha256: digest::Context,
    crc32: crc32fast::Hasher,
    size: u64,
    keep: bool,
}

impl PendingObject {
    /// A new temp file in `tmp_dir` with room for a header like `proto`. `want_md5` is false
    /// for multipart assembly, whose ETag comes from the parts.
    pub fn create(tmp_dir: &Path, proto: &ObjectMeta, want_md5: bool) -> std::io::Result<Self> {
        let path = tmp_dir.join(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let data_offset = proto.reserve();
        file.seek(SeekFrom::Start(data_offset))?;
        Ok(Self {
            file,
            path,
            data_offset,
            md5: want_md5.then(md5::Md5::new),
            sha256: digest::Context::new(&digest::SHA256),
            crc32: crc32fast::Hasher::new(),
            size: 0,
            keep: false,
        })
    }

    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(m) = self.md5.as_mut() {
            m.update(data);
        }
        self.sha256.update(data);
        self.crc32.update(data);
        self.file.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Copies `len` body bytes of another object file into this one.
    pub fn copy_from(&mut self, source: &File, offset: u64, len: u64) -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let want = ((len - done) as usize).min(buf.len());
            let n = source.read_at(&mut buf[..want], offset + done)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "object file shorter than its header says",
                ));
            }
            self.write(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    pub fn digests(&self) -> Digests {
        Digests {
            md5: self.md5.clone().map(|m| m.finalize().into()),
            sha256: self
                .sha256
                .clone()
                .finish()
                .as_ref()
                .try_into()
                .expect("SHA-256 is 32 bytes"),
            crc32: self.crc32.clone().finalize(),
            size: self.size,
        }
    }

    /// Writes the header and fsyncs. Fails if the header outgrew its reserved space.
    pub fn seal(&mut self, meta: &ObjectMeta) -> std::io::Result<()> {
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        if (PREFIX + json.len()) as u64 > self.data_offset {
            return Err(std::io::Error::other(
                "object header outgrew its reservation",
            ));
        }
        let mut header = Vec::with_capacity(PREFIX + json.len());
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&self.data_offset.to_le_bytes());
        header.extend_from_slice(&(json.len() as u32).to_le_bytes());
        header.extend_from_slice(&json);
        self.file.write_all_at(&header, 0)?;
        self.file.sync_all()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the temp file and where its body starts, to read the body back
    /// (uploading it to an external store).
    pub fn reader(&self) -> std::io::Result<(File, u64)> {
        Ok((self.file.try_clone()?, self.data_offset))
    }

    /// The temp file now belongs to its final name; do not delete it on drop.
    pub fn committed(mut self) {
        self.keep = true;
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An open object file: its metadata and where the body starts.
pub struct OpenObject {
    pub file: File,
    pub meta: ObjectMeta,
    pub data_offset: u64,
}

/// Opens an object file and reads its header.
pub fn open(path: &Path) -> std::io::Result<OpenObject> {
    let file = File::open(path)?;
    let (meta, data_offset) = read_header(&file)?;
    Ok(OpenObject {
        file,
        meta,
        data_offset,
    })
}

fn read_header(file: &File) -> std::io::Result<(ObjectMeta, u64)> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut first = vec![0u8; ALIGN as usize];
    let n = read_full_at(file, &mut first, 0)?;
    if n < PREFIX || &first[..8] != MAGIC {
        return Err(bad("not a drover object file"));
    }
    let data_offset = u64::from_le_bytes(first[8..16].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(first[16..20].try_into().expect("4 bytes")) as usize;
    if (PREFIX + len) as u64 > data_offset {
        return Err(bad("object header longer than its reservation"));
    }
    let json = if PREFIX + len <= n {
        first[PREFIX..PREFIX + len].to_vec()
    } else {
        let mut rest = vec![0u8; len];
        if read_full_at(file, &mut rest, PREFIX as u64)? < len {
            return Err(bad("truncated object header"));
        }
        rest
    };
    let meta: ObjectMeta = serde_json::from_slice(&json).map_err(|_| bad("bad object header"))?;
    Ok((meta, data_offset))
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Reads up to `len` bytes at the file's current position (the caller seeks once, then reads
/// sequentially). No zero-filling: `read_to_end` fills spare capacity.
pub fn read_chunk(file: &File, len: usize) -> std::io::Result<bytes::Bytes> {
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(bytes::Bytes::from(buf))
}

/// fsyncs a directory, making a rename or unlink inside it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 0,
            etag: String::new(),
            sha256: String::new(),
            crc32: None,
            content_type: "application/octet-stream".into(),
            headers: vec![],
            metadata: BTreeMap::from([("a".to_string(), "b".repeat(2000))]),
            last_modified_ms: 0,
            parts: None,
        }
    }

    #[test]
    fn write_seal_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta(&"k".repeat(1024));
        let mut p = PendingObject::create(dir.path(), &m, true).unwrap();
        p.write(b"hello ").unwrap();
        p.write(b"world").unwrap();
        let d = p.digests();
        assert_eq!(d.size, 11);
        assert_eq!(
            hex::encode(d.md5.unwrap()),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        m.size = d.size;
        m.etag = hex::encode(d.md5.unwrap());
        m.sha256 = "x".into();
        m.last_modified_ms = 1_700_000_000_000;
        p.seal(&m).unwrap();
        let final_path = dir.path().join("obj");
        std::fs::rename(p.path(), &final_path).unwrap();
        p.committed();
        let o = open(&final_path).unwrap();
        assert_eq!(o.meta, m);
        assert_eq!(o.data_offset % ALIGN, 0);
        let mut f = &o.file;
        f.seek(SeekFrom::Start(o.data_offset)).unwrap();
        assert_eq!(&read_chunk(&o.file, 100).unwrap()[..], b"hello world");
    }

    #[test]
    fn dropped_pending_objects_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PendingObject::create(dir.path(), &meta("k"), true).unwrap();
        p.write(b"partial").unwrap();
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        std::fs::write(dir.path().join("junk"), b"not an object").unwrap();
        assert!(open(&dir.path().join("junk")).is_err());
    }
}
