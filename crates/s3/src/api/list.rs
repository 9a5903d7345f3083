//! ListObjectsV2 and ListObjects (v1): prefix, delimiter (common prefixes), max-keys, and
//! pagination by continuation token / marker, over the storage engine's sorted key index.
//!
//! The continuation token is opaque to clients: base64url of the last key or common prefix
//! returned, tagged so a resumed listing skips the rest of a common prefix it already reported.

use axum::response::Response;
use base64::Engine;
use drover_aws::sigv4::uri_encode;

use super::{Ctx, iso8601, storage_error, xml_response};
use crate::error::{S3Error, S3Result};
use crate::storage::IndexEntry;
use crate::xml::Doc;

const MAX_KEYS: usize = 1000;

/// Where the previous page stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Marker {
    Key(String),
    Prefix(String),
}

impl Marker {
    fn token(&self) -> String {
        let raw = match self {
            Marker::Key(k) => format!("k{k}"),
            Marker::Prefix(p) => format!("p{p}"),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    fn from_token(token: &str) -> S3Result<Self> {
        let bad = || S3Error::invalid_argument("The continuation token provided is incorrect");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        match raw.split_at_checked(1) {
            Some(("k", k)) => Ok(Marker::Key(k.to_string())),
            Some(("p", p)) => Ok(Marker::Prefix(p.to_string())),
            _ => Err(bad()),
        }
    }

    fn text(&self) -> &str {
        match self {
            Marker::Key(s) | Marker::Prefix(s) => s,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub contents: Vec<(String, IndexEntry)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    pub last: Option<Marker>,
}

/// Builds one page of a listing from keys visited in order.
pub(crate) struct Pager<'a> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    after: Option<&'a Marker>,
    max: usize,
    count: usize,
    out: Page,
}

impl<'a> Pager<'a> {
    pub fn new(
        prefix: &'a str,
        delimiter: Option<&'a str>,
        after: Option<&'a Marker>,
        max: usize,
    ) -> Self {
        Self {
            prefix,
            delimiter: delimiter.filter(|d| !d.is_empty()),
            after,
            max,
            count: 0,
            out: Page::default(),
        }
    }

    /// The first key worth visiting.
    pub fn from(&self) -> String {
        match self.after {
            Some(m) if m.text() > self.prefix => m.text().to_string(),
            _ => self.prefix.to_string(),
        }
    }

    /// Takes the next key; false when the page is full or past the prefix.
    pub fn visit(&mut self, key: &str, entry: &IndexEntry) -> bool {
        let prefix = self.prefix;
        if !key.starts_with(prefix) {
            return key <= prefix;
        }
        match self.after {
            Some(Marker::Key(k)) if key <= k.as_str() => return true,
            Some(Marker::Prefix(p)) if key.starts_with(p.as_str()) => return true,
            _ => {}
        }
        if let Some(d) = self.delimiter
            && let Some(i) = key[prefix.len()..].find(d)
        {
            let common = &key[..prefix.len() + i + d.len()];
            if self.out.prefixes.last().map(String::as_str) == Some(common) {
                return true;
            }
            if self.count == self.max {
                self.out.truncated = true;
                return false;
            }
            self.out.prefixes.push(common.to_string());
            self.out.last = Some(Marker::Prefix(common.to_string()));
            self.count += 1;
            return true;
        }
        if self.count == self.max {
            self.out.truncated = true;
            return false;
        }
        self.out.contents.push((key.to_string(), entry.clone()));
        self.out.last = Some(Marker::Key(key.to_string()));
        self.count += 1;
        true
    }

    pub fn finish(self) -> Page {
        self.out
    }
}

pub async fn list_objects(ctx: &Ctx) -> S3Result<Response> {
    let v2 = ctx.param("list-type") == Some("2");
    let prefix = ctx.param("prefix").unwrap_or_default().to_string();
    let delimiter = ctx.param("delimiter").filter(|d| !d.is_empty());
    let url = match ctx.param("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
            ));
        }
    };
    let max: usize = match ctx.param("max-keys") {
        None => MAX_KEYS,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| {
                S3Error::invalid_argument(
                    "Provided max-keys not an integer or within integer range",
                )
            })?
            .min(MAX_KEYS),
    };
    let token = ctx.param("continuation-token");
    let after = if v2 {
        match token {
            Some(t) => Some(Marker::from_token(t)?),
            None => ctx.param("start-after").map(|s| Marker::Key(s.to_string())),
        }
    } else {
        ctx.param("marker").map(|m| Marker::Key(m.to_string()))
    };
    let bucket = ctx.bucket();
    let mut pager = Pager::new(&prefix, delimiter, after.as_ref(), max);
    let from = pager.from();
    ctx.state
        .storage
        .scan(bucket, Some(&from), &mut |k, e| pager.visit(k, e))
        .await
        .map_err(storage_error)?;
    let result = pager.finish();
    let enc = |s: &str| {
        if url {
            uri_encode(s, false)
        } else {
            s.to_string()
        }
    };
    let mut doc = Doc::new("ListBucketResult");
    doc.elem("Name", bucket).elem("Prefix", &enc(&prefix));
    if let Some(d) = delimiter {
        doc.elem("Delimiter", &enc(d));
    }
    doc.elem("MaxKeys", &max.to_string());
    if url {
        doc.elem("EncodingType", "url");
    }
    doc.elem(
        "IsTruncated",
        if result.truncated { "true" } else { "false" },
    );
    if v2 {
        doc.elem(
            "KeyCount",
            &(result.contents.len() + result.prefixes.len()).to_string(),
        );
        if let Some(t) = token {
            doc.elem("ContinuationToken", t);
        }
        if let Some(s) = ctx.param("start-after") {
            doc.elem("StartAfter", &enc(s));
        }
        if result.truncated
            && let Some(last) = &result.last
        {
            doc.elem("NextContinuationToken", &last.token());
        }
    } else {
        doc.elem("Marker", &enc(ctx.param("marker").unwrap_or_default()));
        if result.truncated
            && let Some(last) = &result.last
        {
            doc.elem("NextMarker", &enc(last.text()));
        }
    }
    for (key, entry) in &result.contents {
        doc.open("Contents")
            .elem("Key", &enc(key))
            .elem("LastModified", &iso8601(entry.last_modified_ms))
            .elem("ETag", &format!("\"{}\"", entry.etag))
            .elem("Size", &entry.size.to_string())
            .elem("StorageClass", "STANDARD")
            .close();
    }
    for p in &result.prefixes {
        doc.open("CommonPrefixes").elem("Prefix", &enc(p)).close();
    }
    Ok(xml_response(doc.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn index(keys: &[&str]) -> BTreeMap<String, IndexEntry> {
        keys.iter()
            .map(|k| {
                (
                    k.to_string(),
                    IndexEntry {
                        size: 1,
                        etag: "e".into(),
                        last_modified_ms: 0,
                    },
                )
            })
            .collect()
    }

    fn run(
        idx: &BTreeMap<String, IndexEntry>,
        prefix: &str,
        delim: Option<&str>,
        after: Option<&Marker>,
        max: usize,
    ) -> Page {
        let mut pager = Pager::new(prefix, delim, after, max);
        for (k, e) in idx.range(pager.from()..) {
            if !pager.visit(k, e) {
                break;
            }
        }
        pager.finish()
    }

    fn names(p: &Page) -> (Vec<&str>, Vec<&str>) {
        (
            p.contents.iter().map(|(k, _)| k.as_str()).collect(),
            p.prefixes.iter().map(String::as_str).collect(),
        )
    }

    #[test]
    fn delimiter_groups_and_pages_resume() {
        let idx = index(&["a.txt", "fw/1/a", "fw/1/b", "fw/2/a", "fw/x", "z"]);
        let p = run(&idx, "", Some("/"), None, 1000);
        assert_eq!(names(&p), (vec!["a.txt", "z"], vec!["fw/"]));
        let p = run(&idx, "fw/", Some("/"), None, 1000);
        assert_eq!(names(&p), (vec!["fw/x"], vec!["fw/1/", "fw/2/"]));

        // Page through two at a time; a common prefix is never split across pages.
        let mut seen = (vec![], vec![]);
        let mut after = None;
        loop {
            let p = run(&idx, "fw/", Some("/"), after.as_ref(), 2);
            let (c, ps) = names(&p);
            seen.0.extend(c.iter().map(|s| s.to_string()));
            seen.1.extend(ps.iter().map(|s| s.to_string()));
            if !p.truncated {
                break;
            }
            let token = p.last.unwrap().token();
            after = Some(Marker::from_token(&token).unwrap());
        }
        assert_eq!(seen.0, vec!["fw/x"]);
        assert_eq!(seen.1, vec!["fw/1/", "fw/2/"]);
    }

    #[test]
    fn plain_pagination_and_prefix_end() {
        let idx = index(&["a", "b", "c", "d"]);
        let p = run(&idx, "", None, None, 3);
        assert!(p.truncated);
        assert_eq!(names(&p).0, vec!["a", "b", "c"]);
        let p = run(&idx, "", None, p.last.as_ref(), 3);
        assert!(!p.truncated);
        assert_eq!(names(&p).0, vec!["d"]);
        let p = run(&idx, "b", None, None, 10);
        assert_eq!(names(&p).0, vec!["b"]);
        assert!(Marker::from_token("!!").is_err());
    }
}
