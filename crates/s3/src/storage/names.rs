//! Bucket-name and key rules, and the mapping of keys to file names.
//!
//! A key never becomes a path: the file holding an object is named by the SHA-256 of its key
//! (`objects/ab/ab12...`), so `../x`, `a/../../x`, `/etc/passwd` or a NUL byte cannot reach
//! outside the bucket's directory, and keys longer than a file name (S3 allows 1024 bytes) fit.
//! The key itself is kept inside the object file's header.

use aws_lc_rs::digest;

/// S3's key length limit, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a bucket name is refused: S3's bucket naming rules, except that names shorter than
/// S3's minimum of 3 are allowed (deliberately: short names like `fw` are common on a
/// self-hosted store, and no global namespace needs protecting).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let len_ok = (1..=63).contains(&name.len());
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let looks_like_ip = name.split('.').count() == 4
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !len_ok || !chars_ok || !ends_ok || name.contains("..") || looks_like_ip {
        return Err("The specified bucket is not valid.".into());
    }
    Ok(())
}

/// Why a key is refused. Any UTF-8 up to 1024 bytes is a key, except that drover refuses NUL,
/// which no XML listing could carry.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("Object key must not be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("Your key is too long".into());
    }
    if key.contains('\0') {
        return Err("Object key must not contain NUL".into());
    }
    Ok(())
}

/// The object file's path relative to the bucket's `objects/` directory: two hex characters of
/// fan-out, then the key's SHA-256 in hex. Only `[0-9a-f/]` can appear.
pub fn key_path(key: &str) -> String {
    let hash = hex::encode(digest::digest(&digest::SHA256, key.as_bytes()));
    format!("{}/{hash}", &hash[..2])
}

/// Multipart upload ids are 32 lower-case hex characters (drover makes them); anything else is
/// refused before it is used as a directory name.
pub fn check_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["fw", "f", "my-bucket", "a.b.c", "abc", "123"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Upper",
            "-lead",
            "trail-",
            "a..b",
            "192.168.1.1",
            "under_score",
            "../x",
            &"a".repeat(64),
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_keys_map_inside_the_bucket() {
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "..",
            ".",
            "a/./b",
            "x\\..\\..\\y",
            "%2e%2e/x",
        ] {
            let p = key_path(key);
            assert_eq!(p.len(), 2 + 1 + 64);
            assert!(p.bytes().all(|b| b.is_ascii_hexdigit() || b == b'/'));
            let path = std::path::Path::new("objects").join(&p);
            assert!(
                path.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
                "{key} -> {p}"
            );
        }
        assert_ne!(key_path("a"), key_path("b"));
        assert!(check_key("a\0b").is_err());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(check_key(&"k".repeat(1024)).is_ok());
        assert!(check_key("../x").is_ok());
    }

    #[test]
    fn upload_ids_are_hex() {
        assert!(check_upload_id("0123456789abcdef0123456789abcdef"));
        assert!(!check_upload_id("../../../../../../../../../../etc"));
        assert!(!check_upload_id("0123456789ABCDEF0123456789ABCDEF"));
    }
}
