//! API access keys: the SigV4 credentials that admin clients (awscli, boto3, SDKs) sign with.

use drover_store::{AccessKey, SharedStore, StoreError};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::{Clock, ServiceError, ServiceResult};

/// Creates, looks up and deletes access keys.
#[derive(Clone)]
pub struct AccessKeys {
    store: SharedStore,
    clock: std::sync::Arc<dyn Clock>,
}

impl AccessKeys {
    pub fn new(store: SharedStore, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Generates a new key pair in AWS's format: `AKIA` + 16 upper-case alphanumerics, and a
    /// 40-character secret.
    pub async fn create(&self, description: &str) -> ServiceResult<AccessKey> {
        loop {
            let key = AccessKey {
                access_key_id: generate_access_key_id(),
                secret_access_key: generate_secret(),
                description: description.to_string(),
                created_at: self.clock.now(),
            };
            match self.store.insert_access_key(&key).await {
                Ok(()) => return Ok(key),
                // A collision in 36^16 ids is near impossible; draw again rather than fail.
                Err(StoreError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn get(&self, access_key_id: &str) -> ServiceResult<Option<AccessKey>> {
        Ok(self.store.get_access_key(access_key_id).await?)
    }

    pub async fn list(&self) -> ServiceResult<Vec<AccessKey>> {
        Ok(self.store.list_access_keys().await?)
    }

    pub async fn delete(&self, access_key_id: &str) -> ServiceResult<()> {
        if self.store.delete_access_key(access_key_id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "Access key {access_key_id} does not exist"
            )))
        }
    }
}

fn generate_access_key_id() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| {
            let c = rng.sample(Alphanumeric) as char;
            c.to_ascii_uppercase()
        })
        .collect();
    format!("AKIA{tail}")
}

fn generate_secret() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_aws_keys() {
        let id = generate_access_key_id();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(generate_secret().len(), 40);
        assert_ne!(generate_secret(), generate_secret());
    }
}
