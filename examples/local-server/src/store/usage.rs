//! Usage counters: requests per API key in fixed windows, for the rate
//! limits and `GET /usage`. Kept in the database so that a restart does not
//! hand every key a fresh window.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Store, StoreResult};

/// What counting one request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Whether the request was admitted (and counted).
    pub allowed: bool,
    /// Requests counted in the window, this one included when admitted.
    pub used: u64,
}

/// Counts one request for `principal_id` in the window starting at
/// `window_start` (Unix seconds), if fewer than `limit` were counted.
/// Atomic: of two concurrent requests for the last slot, one is refused.
/// Older windows of the key are dropped on the way.
pub fn hit(conn: &mut Connection, principal_id: &str, window_start: u64, limit: u64) -> StoreResult<Count> {
    let start = i64::try_from(window_start).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM usage_counters WHERE principal_id = ?1 AND window_start < ?2",
        params![principal_id, start],
    )?;
    let used = current(&tx, principal_id, start)?;
    let count = if used >= limit {
        Count { allowed: false, used }
    } else {
        tx.execute(
            "INSERT INTO usage_counters (principal_id, window_start, used) VALUES (?1, ?2, 1)
             ON CONFLICT (principal_id, window_start) DO UPDATE SET used = used + 1",
            params![principal_id, start],
        )?;
        Count { allowed: true, used: used + 1 }
    };
    tx.commit()?;
    Ok(count)
}

fn current(conn: &Connection, principal_id: &str, start: i64) -> StoreResult<u64> {
    let used: Option<i64> = conn
        .query_row(
            "SELECT used FROM usage_counters WHERE principal_id = ?1 AND window_start = ?2",
            params![principal_id, start],
            |r| r.get(0),
        )
        .optional()?;
    Ok(used.map_or(0, |u| u64::try_from(u).unwrap_or(0)))
}

/// The requests counted for `principal_id` in the window starting at
/// `window_start`, without counting one.
pub fn peek(conn: &Connection, principal_id: &str, window_start: u64) -> StoreResult<u64> {
    current(conn, principal_id, i64::try_from(window_start).unwrap_or(i64::MAX))
}

impl Store {
    /// Counts a request against a key's window.
    pub async fn hit_usage(&self, principal_id: &str, window_start: u64, limit: u64) -> StoreResult<Count> {
        let principal_id = principal_id.to_owned();
        self.call(move |c| hit(c, &principal_id, window_start, limit)).await
    }

    /// Reads a key's count in a window.
    pub async fn peek_usage(&self, principal_id: &str, window_start: u64) -> StoreResult<u64> {
        let principal_id = principal_id.to_owned();
        self.call(move |c| peek(c, &principal_id, window_start)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[test]
    fn counts_up_to_the_limit_per_window_and_survives_restart() {
        let (store, _dir, location) = temp_store();
        for expected in 1..=3 {
            let count = store.call_blocking(|c| hit(c, "key_a", 3600, 3)).unwrap();
            assert_eq!(count, Count { allowed: true, used: expected });
        }
        let refused = store.call_blocking(|c| hit(c, "key_a", 3600, 3)).unwrap();
        assert_eq!(refused, Count { allowed: false, used: 3 });
        // Another key has its own window.
        assert!(store.call_blocking(|c| hit(c, "key_b", 3600, 3)).unwrap().allowed);
        drop(store);

        let store = Store::open(&location).unwrap();
        assert_eq!(store.call_blocking(|c| peek(c, "key_a", 3600)).unwrap(), 3);
        // The next window starts from zero and drops the old one.
        let next = store.call_blocking(|c| hit(c, "key_a", 7200, 3)).unwrap();
        assert_eq!(next.used, 1);
        assert_eq!(store.call_blocking(|c| peek(c, "key_a", 3600)).unwrap(), 0);
    }

    #[tokio::test]
    async fn concurrent_hits_never_exceed_the_limit() {
        let (store, _dir, _) = temp_store();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.hit_usage("key_c", 0, 7).await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap().allowed);
        }
        assert_eq!(allowed, 7);
        assert_eq!(store.peek_usage("key_c", 0).await.unwrap(), 7);
    }
}
