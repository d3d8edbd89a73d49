//! Running server instances: each one registers itself and renews a
//! heartbeat (on the database's clock) while it runs. What an instance
//! leaves behind when it dies without a word (SIGKILL, a crash, a lost
//! machine) is recognized by its heartbeat running out: its idempotency
//! reservations are released. Its jobs have leases of their own
//! (`operations.rs`).

use super::{Store, StoreResult};
use crate::time::now_rfc3339;

/// How long after its heartbeat ran out an instance's row is kept, so that
/// operators can still see which instances there were.
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Registers instance `id` as alive for `lease_ms`. Reservations left
    /// under the same id belong to an earlier process (this one has made
    /// none yet), so they are released.
    pub async fn register_instance(&self, id: &str, lease_ms: i64) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO instances (id, started_at, heartbeat_until) VALUES ($1, $2, {now} + $3)
             ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at,
                 heartbeat_until = excluded.heartbeat_until",
            now = self.backend().now_ms()
        );
        sqlx::query(&sql).bind(id).bind(now_rfc3339()).bind(lease_ms).execute(self.pool()).await?;
        sqlx::query("DELETE FROM idempotency_records WHERE state = 'in_progress' AND owner = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Extends instance `id`'s heartbeat to `lease_ms` from now.
    pub async fn heartbeat(&self, id: &str, lease_ms: i64) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO instances (id, started_at, heartbeat_until) VALUES ($1, $2, {now} + $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_until = excluded.heartbeat_until",
            now = self.backend().now_ms()
        );
        sqlx::query(&sql).bind(id).bind(now_rfc3339()).bind(lease_ms).execute(self.pool()).await?;
        Ok(())
    }

    /// Instance `id` stops: its reservations are released (requests it
    /// still had in flight were cut off) and its heartbeat ends now.
    pub async fn deregister_instance(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_records WHERE state = 'in_progress' AND owner = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        let sql = format!("UPDATE instances SET heartbeat_until = {} - 1 WHERE id = $1", self.backend().now_ms());
        sqlx::query(&sql).bind(id).execute(self.pool()).await?;
        Ok(())
    }

    /// Releases the idempotency reservations of instances whose heartbeat
    /// ran out (and of none), and forgets instances gone for a day.
    /// Returns how many reservations were released.
    pub async fn release_orphaned_reservations(&self) -> StoreResult<u64> {
        let now = self.backend().now_ms();
        let sql = format!(
            "DELETE FROM idempotency_records WHERE state = 'in_progress' AND (owner IS NULL OR owner NOT IN
                 (SELECT id FROM instances WHERE heartbeat_until >= {now}))"
        );
        let released = sqlx::query(&sql).execute(self.pool()).await?.rows_affected();
        let sql = format!("DELETE FROM instances WHERE heartbeat_until < {now} - $1");
        sqlx::query(&sql).bind(FORGET_AFTER_MS).execute(self.pool()).await?;
        Ok(released)
    }

    /// The instances whose heartbeat is current, for tests and
    /// diagnostics.
    pub async fn live_instances(&self) -> StoreResult<Vec<String>> {
        let sql = format!("SELECT id FROM instances WHERE heartbeat_until >= {} ORDER BY id", self.backend().now_ms());
        Ok(sqlx::query_scalar(&sql).fetch_all(self.pool()).await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::IdempotencyStart;
    use crate::store::test_support::backends;

    #[tokio::test]
    async fn reservations_of_dead_instances_are_released() {
        for (name, store, _guard) in backends().await {
            store.register_instance("inst_alive", 60_000).await.unwrap();
            store.register_instance("inst_dying", 1).await.unwrap();
            let begin = |scope: &'static str, owner: &'static str| {
                let store = store.clone();
                async move { store.idempotency_begin(scope.into(), "fp".into(), 0, 60_000, owner.into()).await.unwrap() }
            };
            assert_eq!(begin("k\na", "inst_alive").await, IdempotencyStart::Started);
            assert_eq!(begin("k\nb", "inst_dying").await, IdempotencyStart::Started);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert_eq!(store.live_instances().await.unwrap(), vec!["inst_alive".to_owned()], "{name}");
            assert_eq!(store.release_orphaned_reservations().await.unwrap(), 1);
            assert_eq!(begin("k\na", "inst_alive").await, IdempotencyStart::InProgress);
            assert_eq!(begin("k\nb", "inst_alive").await, IdempotencyStart::Started);

            // A clean stop releases at once; a restart under the same id
            // releases what the previous process left.
            store.deregister_instance("inst_alive").await.unwrap();
            assert!(store.live_instances().await.unwrap().is_empty());
            assert_eq!(begin("k\na", "inst_x").await, IdempotencyStart::Started);
            store.register_instance("inst_x", 60_000).await.unwrap();
            assert_eq!(begin("k\na", "inst_y").await, IdempotencyStart::Started);
        }
    }
}
