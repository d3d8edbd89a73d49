//! API keys, stored as SHA-256 digests: the database never holds a key
//! that could be used if it leaked.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;

use super::{ApiKeyRecord, StoreResult, Tier, col, parse_enum};
use crate::store::Store;

/// The hex SHA-256 of a key, as stored. A plain digest (no salt, no slow
/// hash) is enough because keys are long random strings, not passwords:
/// there is no dictionary to try.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn to_record(row: &AnyRow) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: col(row, 0)?,
        tier: parse_enum("api_keys.tier", col(row, 1)?, Tier::parse)?,
        label: col(row, 2)?,
        created_at: col(row, 3)?,
    })
}

impl Store {
    /// Stores `key` with `tier` and `label`, or updates the tier and label
    /// of the key if it is already stored (a restart with the same
    /// `--api-key`, or another instance started with it). One statement, so
    /// instances registering one key at once agree on its id.
    pub async fn upsert_key(&self, key: String, tier: Tier, label: String) -> StoreResult<ApiKeyRecord> {
        let row = sqlx::query(
            "INSERT INTO api_keys (id, key_hash, tier, label, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_hash) DO UPDATE SET tier = excluded.tier, label = excluded.label
             RETURNING id, tier, label, created_at",
        )
        .bind(crate::ids::new_id("key_"))
        .bind(hash_key(&key))
        .bind(tier.as_str())
        .bind(&label)
        .bind(crate::time::now_rfc3339())
        .fetch_one(self.pool())
        .await?;
        to_record(&row)
    }

    /// The stored key matching `key`, if any.
    pub async fn find_key(&self, key: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.find_key_by_hash(&hash_key(key)).await
    }

    /// The stored key whose digest is `hash`, if any.
    pub async fn find_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        sqlx::query("SELECT id, tier, label, created_at FROM api_keys WHERE key_hash = $1")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(to_record)
            .transpose()
    }

    /// The number of stored keys.
    pub async fn count_keys(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(self.pool()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{backends, reopen};

    #[tokio::test]
    async fn keys_are_stored_hashed_and_found() {
        for (name, store, _guard) in backends().await {
            let record = store.upsert_key("secret-key".into(), Tier::Pro, "cli".into()).await.unwrap();
            assert!(record.id.starts_with("key_"));
            assert_eq!(record.tier, Tier::Pro);
            let stored: String =
                sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(store.pool()).await.unwrap();
            assert_eq!(stored, hash_key("secret-key"));
            assert!(!stored.contains("secret"));

            // Same key again: same id, new tier.
            let again = store.upsert_key("secret-key".into(), Tier::Free, "cli".into()).await.unwrap();
            assert_eq!(again.id, record.id, "{name}");
            assert_eq!(again.tier, Tier::Free);
            store.close().await;

            let reopened = reopen(&store).await;
            let found = reopened.find_key("secret-key").await.unwrap().unwrap();
            assert_eq!(found.id, record.id);
            assert_eq!(reopened.find_key("other").await.unwrap(), None);
            assert_eq!(reopened.count_keys().await.unwrap(), 1);
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
