//! The PostgreSQL store (scale-out): being written.
use crate::{StoreError, StoreResult};
pub struct PostgresStore;
impl PostgresStore {
    pub async fn connect(_url: &str) -> StoreResult<Self> {
        Err(StoreError::Backend(
            "PostgreSQL support is being written".into(),
        ))
    }
    pub async fn create_schema(_base: &str, _schema: &str) -> StoreResult<()> {
        Ok(())
    }
    pub async fn drop_schema(_base: &str, _schema: &str) -> StoreResult<()> {
        Ok(())
    }
    pub fn url_with_schema(base: &str, _schema: &str) -> String {
        base.to_string()
    }
}
