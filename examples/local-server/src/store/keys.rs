//! API keys, stored as SHA-256 digests: the database never holds a key
//! that could be used if the file leaked.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{ApiKeyRecord, StoreResult, Tier, parse_enum};
use crate::store::Store;

/// The hex SHA-256 of a key, as stored. A plain digest (no salt, no slow
/// hash) is enough because keys are long random strings, not passwords:
/// there is no dictionary to try.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn row_to_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_record((id, tier, label, created_at): (String, String, String, String)) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord { id, tier: parse_enum("api_keys.tier", tier, Tier::parse)?, label, created_at })
}

/// Stores `key` with `tier` and `label`, or updates the tier and label of
/// the key if it is already stored (a restart with the same `--api-key`).
pub fn upsert(conn: &mut Connection, key: &str, tier: Tier, label: &str) -> StoreResult<ApiKeyRecord> {
    let hash = hash_key(key);
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO api_keys (id, key_hash, tier, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key_hash) DO UPDATE SET tier = excluded.tier, label = excluded.label",
        params![crate::ids::new_id("key_"), hash, tier.as_str(), label, crate::time::now_rfc3339()],
    )?;
    let record =
        tx.query_row("SELECT id, tier, label, created_at FROM api_keys WHERE key_hash = ?1", [&hash], row_to_key)?;
    tx.commit()?;
    to_record(record)
}

/// The stored key whose digest is `hash`, if any.
pub fn find_by_hash(conn: &Connection, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
    conn.query_row("SELECT id, tier, label, created_at FROM api_keys WHERE key_hash = ?1", [hash], row_to_key)
        .optional()?
        .map(to_record)
        .transpose()
}

/// The number of stored keys.
pub fn count(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0))?)
}

impl Store {
    /// Stores (or re-tiers) an API key.
    pub async fn upsert_key(&self, key: String, tier: Tier, label: String) -> StoreResult<ApiKeyRecord> {
        self.call(move |c| upsert(c, &key, tier, &label)).await
    }

    /// The stored key matching `key`, if any.
    pub async fn find_key(&self, key: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let hash = hash_key(key);
        self.call(move |c| find_by_hash(c, &hash)).await
    }

    /// The number of stored keys.
    pub async fn count_keys(&self) -> StoreResult<i64> {
        self.call(|c| count(c)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::test_support::temp_store;

    #[test]
    fn keys_are_stored_hashed_and_found() {
        let (store, _dir, location) = temp_store();
        let record = store.call_blocking(|c| upsert(c, "secret-key", Tier::Pro, "cli")).unwrap();
        assert!(record.id.starts_with("key_"));
        assert_eq!(record.tier, Tier::Pro);
        let stored: String =
            store.call_blocking(|c| Ok(c.query_row("SELECT key_hash FROM api_keys", [], |r| r.get(0))?)).unwrap();
        assert_eq!(stored, hash_key("secret-key"));
        assert!(!stored.contains("secret"));

        // Same key again: same id, new tier.
        let again = store.call_blocking(|c| upsert(c, "secret-key", Tier::Free, "cli")).unwrap();
        assert_eq!(again.id, record.id);
        assert_eq!(again.tier, Tier::Free);
        drop(store);

        let reopened = Store::open(&location).unwrap();
        let found = reopened.call_blocking(|c| find_by_hash(c, &hash_key("secret-key"))).unwrap().unwrap();
        assert_eq!(found.id, record.id);
        assert_eq!(reopened.call_blocking(|c| find_by_hash(c, &hash_key("other"))).unwrap(), None);
        assert_eq!(reopened.call_blocking(|c| count(c)).unwrap(), 1);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
