//! The data directory: every file drover keeps, where it lives, and how it is written.
//!
//! Layout: `drover.db` (SQLite), `credentials` and `config` (AWS CLI files for the admin key
//! and region), `root-ca.pem` + `ca-key.pem` (the CA), `server-cert.pem` + `server-key.pem`,
//! `server.json` (what the last `drover serve` used, read by `drover info`), `artifacts/` (the
//! S3 artifact store, see `drover_s3::storage`). Files are written
//! atomically (temp file, fsync, rename) so a crash never leaves half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Paths inside one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the directory (owner-only permissions) if it does not exist.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating the data directory {}", self.root.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("drover.db")
    }
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials")
    }
    pub fn aws_config(&self) -> PathBuf {
        self.root.join("config")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("root-ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca-key.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server-cert.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server-key.pem")
    }
    pub fn server_info(&self) -> PathBuf {
        self.root.join("server.json")
    }
    /// The artifact store (S3 buckets and objects, multipart uploads).
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
}

/// What `drover serve` last ran with; `drover info` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub account_id: String,
    pub region: String,
    pub http_addr: String,
    pub mqtt_addr: String,
    pub s3_addr: String,
    pub database: String,
}

/// Writes `contents` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_with_mode(path, contents, 0o644)
}

/// Like [`write_atomic`], readable by the owner only (keys, credentials).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    write_with_mode(path, contents, 0o600)
}

fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .context("a data-dir file has a parent directory")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    let _ = mode;
    Ok(())
}

/// The `[default]` key pair of an AWS shared-credentials file.
pub fn read_credentials(path: &Path) -> Result<Option<(String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut in_default = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
        } else if in_default && let Some((key, value)) = line.split_once('=') {
            match key.trim() {
                "aws_access_key_id" => id = Some(value.trim().to_string()),
                "aws_secret_access_key" => secret = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => anyhow::bail!(
            "{} has no [default] aws_access_key_id/aws_secret_access_key",
            path.display()
        ),
    }
}

pub fn write_credentials(path: &Path, access_key_id: &str, secret: &str) -> Result<()> {
    let text = format!(
        "# drover admin credentials; use with AWS_SHARED_CREDENTIALS_FILE={}\n[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n",
        path.display()
    );
    write_private(path, text.as_bytes())
}

pub fn write_aws_config(path: &Path, region: &str) -> Result<()> {
    let text = format!(
        "# drover: use with AWS_CONFIG_FILE={}\n[default]\nregion = {region}\noutput = json\n\
         # drover serves S3 path-style (https://host:port/bucket/key): bucket.localhost names\n\
         # neither resolve nor match the server certificate.\n\
         s3 =\n    addressing_style = path\n",
        path.display()
    );
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        assert_eq!(read_credentials(&path).unwrap(), None);
        write_credentials(&path, "AKIAX", "s3cr3t").unwrap();
        assert_eq!(
            read_credentials(&path).unwrap(),
            Some(("AKIAX".into(), "s3cr3t".into()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&path, "[other]\naws_access_key_id = x\n").unwrap();
        assert!(read_credentials(&path).is_err());
    }
}
