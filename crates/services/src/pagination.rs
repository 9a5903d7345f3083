//! Opaque `nextToken`s for List* operations: the key of the last item returned.
//!
//! Tokens are base64url text so clients treat them as opaque; a token that does not decode is
//! refused with InvalidRequestException rather than silently restarting the listing.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use drover_store::PageRequest;

use crate::{ServiceError, ServiceResult};

const PREFIX: &str = "drover1:";

pub fn encode(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{after}"))
}

pub fn decode(token: &str) -> ServiceResult<String> {
    let invalid = || ServiceError::InvalidRequest(format!("Invalid nextToken: {token}"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(PREFIX)
        .map(str::to_string)
        .ok_or_else(invalid)
}

/// Builds the store page request from the API's `nextToken` and `maxResults`.
pub fn request(next_token: Option<&str>, max_results: Option<i64>) -> ServiceResult<PageRequest> {
    let limit = drover_core::names::check_max_results(max_results)?;
    let after = next_token
        .filter(|t| !t.is_empty())
        .map(decode)
        .transpose()?;
    Ok(PageRequest { after, limit })
}

/// A `marker` (the certificate and policy listings' token): standard base64, the alphabet
/// AWS's `Marker` pattern `[A-Za-z0-9+/]+={0,2}` allows.
pub fn encode_marker(after: &str) -> String {
    STANDARD.encode(format!("{PREFIX}{after}"))
}

pub fn decode_marker(marker: &str) -> ServiceResult<String> {
    let invalid = || ServiceError::InvalidRequest(format!("Invalid marker: {marker}"));
    let bytes = STANDARD.decode(marker).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(PREFIX)
        .map(str::to_string)
        .ok_or_else(invalid)
}

/// Builds the store page request from a `marker` and `pageSize`.
pub fn marker_request(marker: Option<&str>, page_size: Option<i64>) -> ServiceResult<PageRequest> {
    let limit = drover_core::iot_policies::check_page_size(page_size)?;
    let after = marker
        .filter(|m| !m.is_empty())
        .map(decode_marker)
        .transpose()?;
    Ok(PageRequest { after, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode(&encode("dev:42")).unwrap(), "dev:42");
        assert!(decode("not a token!").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("other")).is_err());
        let page = request(Some(&encode("a")), Some(5)).unwrap();
        assert_eq!(
            page,
            PageRequest {
                after: Some("a".into()),
                limit: 5
            }
        );
        assert!(request(None, Some(0)).is_err());
        let marker = encode_marker("1700000000000:abc");
        assert!(
            marker
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        );
        assert_eq!(decode_marker(&marker).unwrap(), "1700000000000:abc");
        assert!(decode_marker("@@").is_err());
    }
}
