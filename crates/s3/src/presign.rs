//! Presigned GET and PUT URLs for drover's own S3 endpoint, signed with a server-held access
//! key that the S3 API accepts. Jobs call this at each delivery to turn a job document's
//! `${aws:iot:s3-presigned-url:...}` placeholders into URLs a device fetches with plain HTTPS.
//!
//! The URL is exactly what boto3's `generate_presigned_url` would produce for the same key,
//! time and expiry (SigV4 query form, `UNSIGNED-PAYLOAD`, only `host` signed), so the S3 API
//! verifies it with the same code as any client's.

use drover_aws::sigv4::{self, Canonicalization, Credential, SignedRequest, uri_encode};
use drover_core::placeholder::{self, Access, PlaceholderError, SubstituteError};
use time::OffsetDateTime;

/// Which request the URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignMethod {
    Get,
    Put,
}

/// Makes presigned URLs for one endpoint and key.
#[derive(Clone)]
pub struct Presigner {
    /// `https://host:port`, as devices dial it.
    endpoint: String,
    host: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PresignError {
    #[error(
        "expiry must be between 1 and {} seconds",
        sigv4::MAX_PRESIGN_EXPIRES_SECS
    )]
    Expiry,
    #[error("endpoint must look like https://host[:port]")]
    Endpoint,
    #[error("{0}")]
    Placeholder(PlaceholderError),
}

impl Presigner {
    pub fn new(
        endpoint: &str,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, PresignError> {
        let endpoint = endpoint.trim_end_matches('/');
        let host = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .ok_or(PresignError::Endpoint)?;
        Ok(Self {
            endpoint: endpoint.to_string(),
            host: host.to_string(),
            region: region.to_string(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A URL allowing `method` on `bucket/key` for `expires_secs` from `now`.
    pub fn presign(
        &self,
        method: PresignMethod,
        bucket: &str,
        key: &str,
        expires_secs: i64,
        now: OffsetDateTime,
    ) -> Result<String, PresignError> {
        if !(1..=sigv4::MAX_PRESIGN_EXPIRES_SECS).contains(&expires_secs) {
            return Err(PresignError::Expiry);
        }
        let amz_date = sigv4::format_amz_date(now);
        let date = amz_date[..8].to_string();
        let path = format!("/{}/{}", uri_encode(bucket, true), uri_encode(key, false));
        let credential_scope = format!(
            "{}/{date}/{}/s3/aws4_request",
            self.access_key_id, self.region
        );
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders=host",
            uri_encode(&credential_scope, true)
        );
        let headers = vec![("host".to_string(), self.host.clone())];
        let method = match method {
            PresignMethod::Get => "GET",
            PresignMethod::Put => "PUT",
        };
        let request = SignedRequest {
            method,
            raw_path: &path,
            raw_query: &query,
            headers: &headers,
            body: b"",
        };
        let credential = Credential {
            access_key_id: self.access_key_id.clone(),
            date,
            region: self.region.clone(),
            service: "s3".into(),
            amz_date,
            signed_headers: vec!["host".into()],
            signature: String::new(),
            expires_secs: Some(expires_secs),
        };
        let signature = sigv4::signature_with(
            &request,
            &credential,
            &self.secret_access_key,
            Canonicalization::S3,
        )
        .map_err(|_| PresignError::Endpoint)?;
        Ok(format!(
            "{}{path}?{query}&X-Amz-Signature={signature}",
            self.endpoint
        ))
    }
}

impl Presigner {
    /// What Jobs calls at each delivery: `document` with every presigned-URL placeholder
    /// replaced by a URL for `thing_name`, valid for `expires_in_sec`
    /// (`presignedUrlConfig.expiresInSec`: 60..=3600, default 3600).
    pub fn presign_job_document(
        &self,
        document: &str,
        thing_name: &str,
        expires_in_sec: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<String, PresignError> {
        let expires =
            placeholder::presign_expiry(expires_in_sec).map_err(PresignError::Placeholder)?;
        placeholder::substitute(document, thing_name, |access, bucket, key| {
            let method = match access {
                Access::Get => PresignMethod::Get,
                Access::Put => PresignMethod::Put,
            };
            self.presign(method, bucket, key, expires, now)
        })
        .map_err(|e| match e {
            SubstituteError::Placeholder(p) => PresignError::Placeholder(p),
            SubstituteError::Presign(p) => p,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn urls_verify_with_the_s3_verifier_and_expire() {
        let p = Presigner::new(
            "https://localhost:9443",
            "us-east-1",
            "AKIDEXAMPLE",
            "secret",
        )
        .unwrap();
        let url = p
            .presign(
                PresignMethod::Get,
                "fw",
                "app 2.0/ü+x.bin",
                60,
                at(1_700_000_000),
            )
            .unwrap();
        let rest = url.strip_prefix("https://localhost:9443").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        assert_eq!(path, "/fw/app%202.0/%C3%BC%2Bx.bin");
        let headers = vec![("host".to_string(), "localhost:9443".to_string())];
        let req = SignedRequest {
            method: "GET",
            raw_path: path,
            raw_query: query,
            headers: &headers,
            body: b"",
        };
        let cred = sigv4::parse(&req).unwrap();
        let check = |now, method| {
            let req = SignedRequest { method, ..req };
            sigv4::verify_with(
                &req,
                &cred,
                "secret",
                "us-east-1",
                now,
                Canonicalization::S3,
            )
        };
        check(at(1_700_000_030), "GET").unwrap();
        assert!(check(at(1_700_000_061), "GET").is_err());
        assert!(check(at(1_700_000_030), "PUT").is_err());
        assert_eq!(
            p.presign(PresignMethod::Get, "fw", "k", 0, at(0)),
            Err(PresignError::Expiry)
        );
        assert!(Presigner::new("ftp://x", "r", "a", "s").is_err());
    }

    #[test]
    fn job_documents_get_urls_per_thing() {
        let p = Presigner::new(
            "https://iot.example.com:9443",
            "eu-west-1",
            "AKID",
            "secret",
        )
        .unwrap();
        let doc = r#"{"url":"${aws:iot:s3-presigned-url:https://s3.eu-west-1.amazonaws.com/fw/app.bin}","upload":"${drover:s3-presigned-put-url:s3://cfg/${iot:ThingName}.json}"}"#;
        let out = p
            .presign_job_document(doc, "dev-7", None, at(1_700_000_000))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let url = v["url"].as_str().unwrap();
        assert!(url.starts_with("https://iot.example.com:9443/fw/app.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20231114%2Feu-west-1%2Fs3%2Faws4_request&"));
        assert!(url.contains("X-Amz-Expires=3600&"));
        let upload = v["upload"].as_str().unwrap();
        assert!(upload.starts_with("https://iot.example.com:9443/cfg/dev-7.json?"));
        assert_eq!(
            p.presign(
                PresignMethod::Put,
                "cfg",
                "dev-7.json",
                3600,
                at(1_700_000_000)
            )
            .unwrap(),
            upload
        );
        assert!(matches!(
            p.presign_job_document(doc, "dev-7", Some(30), at(0)),
            Err(PresignError::Placeholder(
                PlaceholderError::ExpiresOutOfRange(30)
            ))
        ));
        let out = p
            .presign_job_document(doc, "dev-7", Some(60), at(1_700_000_000))
            .unwrap();
        assert!(out.contains("X-Amz-Expires=60&"));
    }
}
