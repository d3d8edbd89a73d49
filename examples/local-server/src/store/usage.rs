//! Usage counters: requests per API key in fixed windows, for the rate
//! limits and `GET /usage`. Kept in the database so that a restart does not
//! hand every key a fresh window, and so that every instance on one
//! database counts against the same limit.

use super::{Store, StoreResult};

/// What counting one request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Whether the request was admitted (and counted).
    pub allowed: bool,
    /// Requests counted in the window, this one included when admitted.
    pub used: u64,
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Counts one request for `principal_id` in the window starting at
    /// `window_start` (Unix seconds), if fewer than `limit` were counted.
    ///
    /// One statement decides and counts: an upsert whose update only
    /// happens while the count is below the limit. The database runs it
    /// atomically on the row (SQLite has one writer; PostgreSQL locks the
    /// row and re-checks the condition on its latest version), so of any
    /// number of concurrent requests, on any number of instances, exactly
    /// `limit` are admitted. The key's older windows are dropped when a new
    /// one starts.
    pub async fn hit_usage(&self, principal_id: &str, window_start: u64, limit: u64) -> StoreResult<Count> {
        let start = to_i64(window_start);
        if limit == 0 {
            return Ok(Count { allowed: false, used: self.peek_usage(principal_id, window_start).await? });
        }
        let counted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO usage_counters (principal_id, window_start, used) VALUES ($1, $2, 1)
             ON CONFLICT (principal_id, window_start) DO UPDATE SET used = usage_counters.used + 1
             WHERE usage_counters.used < $3
             RETURNING used",
        )
        .bind(principal_id)
        .bind(start)
        .bind(to_i64(limit))
        .fetch_optional(self.pool())
        .await?;
        match counted {
            Some(used) => {
                if used == 1 {
                    sqlx::query("DELETE FROM usage_counters WHERE principal_id = $1 AND window_start < $2")
                        .bind(principal_id)
                        .bind(start)
                        .execute(self.pool())
                        .await?;
                }
                Ok(Count { allowed: true, used: u64::try_from(used).unwrap_or(0) })
            }
            None => Ok(Count { allowed: false, used: self.peek_usage(principal_id, window_start).await? }),
        }
    }

    /// The requests counted for `principal_id` in the window starting at
    /// `window_start`, without counting one.
    pub async fn peek_usage(&self, principal_id: &str, window_start: u64) -> StoreResult<u64> {
        let used: Option<i64> =
            sqlx::query_scalar("SELECT used FROM usage_counters WHERE principal_id = $1 AND window_start = $2")
                .bind(principal_id)
                .bind(to_i64(window_start))
                .fetch_optional(self.pool())
                .await?;
        Ok(used.map_or(0, |u| u64::try_from(u).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{backends, reopen};

    #[tokio::test]
    async fn counts_up_to_the_limit_per_window_and_survives_restart() {
        for (name, store, _guard) in backends().await {
            for expected in 1..=3 {
                let count = store.hit_usage("key_a", 3600, 3).await.unwrap();
                assert_eq!(count, Count { allowed: true, used: expected }, "{name}");
            }
            let refused = store.hit_usage("key_a", 3600, 3).await.unwrap();
            assert_eq!(refused, Count { allowed: false, used: 3 });
            // Another key has its own window.
            assert!(store.hit_usage("key_b", 3600, 3).await.unwrap().allowed);
            assert!(!store.hit_usage("key_z", 3600, 0).await.unwrap().allowed);
            store.close().await;

            let store = reopen(&store).await;
            assert_eq!(store.peek_usage("key_a", 3600).await.unwrap(), 3);
            // The next window starts from zero and drops the old one.
            let next = store.hit_usage("key_a", 7200, 3).await.unwrap();
            assert_eq!(next.used, 1);
            assert_eq!(store.peek_usage("key_a", 3600).await.unwrap(), 0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hits_never_exceed_the_limit() {
        for (name, store, _guard) in backends().await {
            // Two handles on one database, as two instances would have.
            let other = reopen(&store).await;
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    let store = if i % 2 == 0 { store.clone() } else { other.clone() };
                    tokio::spawn(async move { store.hit_usage("key_c", 0, 7).await.unwrap() })
                })
                .collect();
            let mut allowed = 0;
            for task in tasks {
                allowed += usize::from(task.await.unwrap().allowed);
            }
            assert_eq!(allowed, 7, "{name}");
            assert_eq!(store.peek_usage("key_c", 0).await.unwrap(), 7);
        }
    }
}
