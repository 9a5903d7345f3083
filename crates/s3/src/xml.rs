//! S3's XML: rendering of responses (escaped by hand, the documents are small and flat) and
//! parsing of the two request bodies drover reads, CompleteMultipartUpload and DeleteObjects
//! (with quick-xml, which handles entities, CDATA and namespaces for us).

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::{S3Error, S3Result};

pub const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Escapes text for an XML element body or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed raw in XML 1.0; S3 sends them as references.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A small builder for S3's flat response documents.
pub struct Doc {
    out: String,
    stack: Vec<&'static str>,
}

impl Doc {
    /// Starts a document whose root element carries S3's namespace.
    pub fn new(root: &'static str) -> Self {
        let mut out = String::with_capacity(512);
        out.push_str(DECL);
        out.push_str(&format!("<{root} xmlns=\"{XMLNS}\">"));
        Self {
            out,
            stack: vec![root],
        }
    }

    pub fn open(&mut self, name: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.stack.push(name);
        self
    }

    pub fn close(&mut self) -> &mut Self {
        let name = self.stack.pop().expect("close matches an open element");
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.out
            .push_str(&format!("<{name}>{}</{name}>", escape(text)));
        self
    }

    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        self.out
    }
}

/// S3's error document.
pub fn error(code: &str, message: &str, resource: &str, request_id: &str) -> String {
    format!(
        "{DECL}<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
        escape(code),
        escape(message),
        escape(resource),
        escape(request_id)
    )
}

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// As sent, usually quoted.
    pub etag: String,
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>...`.
pub fn parse_complete_multipart(body: &[u8]) -> S3Result<Vec<CompletedPart>> {
    let mut parts = Vec::new();
    let mut current: Option<(Option<u32>, Option<String>)> = None;
    for_each_text(body, |path, text| {
        match path {
            [.., "Part"] if text.is_none() => {
                if let Some((Some(n), Some(e))) = current.take() {
                    parts.push(CompletedPart {
                        part_number: n,
                        etag: e,
                    });
                }
                current = Some((None, None));
            }
            [.., "Part", "PartNumber"] if text.is_some() => {
                let n = text
                    .unwrap_or_default()
                    .trim()
                    .parse()
                    .map_err(|_| S3Error::malformed_xml())?;
                if let Some(c) = current.as_mut() {
                    c.0 = Some(n);
                }
            }
            [.., "Part", "ETag"] if text.is_some() => {
                if let Some(c) = current.as_mut() {
                    c.1 = Some(text.unwrap_or_default().trim().to_string());
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    match current {
        Some((Some(n), Some(e))) => parts.push(CompletedPart {
            part_number: n,
            etag: e,
        }),
        Some(_) => return Err(S3Error::malformed_xml()),
        None => {}
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok(parts)
}

/// Parses DeleteObjects' `<Delete><Object><Key/></Object>...<Quiet/></Delete>`: the keys and
/// whether the reply should list only errors.
pub fn parse_delete(body: &[u8]) -> S3Result<(Vec<String>, bool)> {
    let mut keys = Vec::new();
    let mut quiet = false;
    for_each_text(body, |path, text| {
        match (path, text) {
            ([.., "Object", "Key"], Some(t)) => keys.push(t),
            ([.., "Quiet"], Some(t)) => quiet = t.trim() == "true",
            _ => {}
        }
        Ok(())
    })?;
    Ok((keys, quiet))
}

/// Walks the document, calling `f(path, None)` at each element start and
/// `f(path, Some(text))` at each element end with the element's text.
fn for_each_text(
    body: &[u8],
    mut f: impl FnMut(&[&str], Option<String>) -> S3Result<()>,
) -> S3Result<()> {
    let mut reader = Reader::from_reader(body);
    let mut names: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|_| S3Error::malformed_xml())?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                names.push(name);
                text.clear();
                let path: Vec<&str> = names.iter().map(String::as_str).collect();
                f(&path, None)?;
            }
            // Entity references arrive as their own events, between text events.
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let entity = format!("&{};", r.into_inner());
                let unescaped =
                    quick_xml::escape::unescape(&entity).map_err(|_| S3Error::malformed_xml())?;
                text.push_str(&unescaped);
            }
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::End(_) => {
                {
                    let path: Vec<&str> = names.iter().map(String::as_str).collect();
                    f(&path, Some(std::mem::take(&mut text)))?;
                }
                names.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !names.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_escaped() {
        let x = error("NoSuchKey", "a<b & c", "/b/k\"'", "r1");
        assert!(x.starts_with(DECL));
        assert!(x.contains("<Code>NoSuchKey</Code>"));
        assert!(x.contains("<Message>a&lt;b &amp; c</Message>"));
        assert!(x.contains("<Resource>/b/k&quot;&apos;</Resource>"));
        assert!(x.contains("<RequestId>r1</RequestId>"));
        assert_eq!(escape("\u{1}x"), "&#x1;x");
    }

    #[test]
    fn documents_nest_and_close() {
        let mut d = Doc::new("ListAllMyBucketsResult");
        d.open("Buckets").open("Bucket").elem("Name", "a&b");
        let x = d.finish();
        assert!(x.ends_with(
            "<Buckets><Bucket><Name>a&amp;b</Name></Bucket></Buckets></ListAllMyBucketsResult>"
        ));
    }

    #[test]
    fn complete_multipart_parses() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"aaa"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>x==</ChecksumCRC32></Part>
  <Part><PartNumber>2</PartNumber><ETag>&quot;bbb&quot;</ETag></Part>
</CompleteMultipartUpload>"#;
        let parts = parse_complete_multipart(body).unwrap();
        assert_eq!(
            parts,
            vec![
                CompletedPart {
                    part_number: 1,
                    etag: "\"aaa\"".into()
                },
                CompletedPart {
                    part_number: 2,
                    etag: "\"bbb\"".into()
                },
            ]
        );
        assert!(parse_complete_multipart(b"<CompleteMultipartUpload/>").is_err());
        assert!(parse_complete_multipart(b"<CompleteMultipartUpload><Part>").is_err());
        assert!(
            parse_complete_multipart(b"<C><Part><PartNumber>x</PartNumber></Part></C>").is_err()
        );
    }

    #[test]
    fn delete_parses() {
        let body = b"<Delete><Object><Key>a &amp; b</Key></Object><Object><Key>c</Key></Object><Quiet>true</Quiet></Delete>";
        assert_eq!(
            parse_delete(body).unwrap(),
            (vec!["a & b".to_string(), "c".to_string()], true)
        );
    }
}
