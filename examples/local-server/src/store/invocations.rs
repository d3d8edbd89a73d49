//! Invocations: one record per run of an agent, whatever asked for it
//! (sync, async, stream, batch), with its request, outcome and timings.

use serde_json::Value;
use sqlx::AnyConnection;

use super::{InvocationMode, InvocationRecord, Outcome, Store, StoreResult, col, parse_enum, parse_json_opt};
use crate::time::now_rfc3339;

/// Records a running invocation; returns its id (`inv_...`).
pub(super) async fn insert(
    conn: &mut AnyConnection,
    agent_id: &str,
    operation_id: Option<&str>,
    principal_id: Option<&str>,
    mode: InvocationMode,
    request: &Value,
) -> StoreResult<String> {
    let id = crate::ids::new_id("inv_");
    sqlx::query(
        "INSERT INTO invocations (id, agent_id, operation_id, principal_id, mode, request, status,
                                  started_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'running', $7)",
    )
    .bind(&id)
    .bind(agent_id)
    .bind(operation_id)
    .bind(principal_id)
    .bind(mode.as_str())
    .bind(serde_json::to_string(request)?)
    .bind(now_rfc3339())
    .execute(conn)
    .await?;
    Ok(id)
}

fn outcome_columns(outcome: &Outcome) -> StoreResult<(&'static str, Option<String>, Option<String>)> {
    Ok(match outcome {
        Outcome::Succeeded(result) => ("succeeded", Some(serde_json::to_string(result)?), None),
        Outcome::Failed(error) => ("failed", None, Some(serde_json::to_string(error)?)),
    })
}

/// Finishes the invocation run by operation `operation_id`.
pub(super) async fn finish_for_operation(
    conn: &mut AnyConnection,
    operation_id: &str,
    outcome: &Outcome,
    metrics: Option<(f64, i64)>,
    now: &str,
) -> StoreResult<()> {
    let (status, result, error) = outcome_columns(outcome)?;
    let (time, tokens) = metrics.unzip();
    sqlx::query(
        "UPDATE invocations SET status = $2, result = $3, error = $4, execution_time = $5,
                                tokens_used = $6, finished_at = $7
         WHERE operation_id = $1 AND status = 'running'",
    )
    .bind(operation_id)
    .bind(status)
    .bind(result)
    .bind(error)
    .bind(time)
    .bind(tokens)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records a running invocation (sync, stream or batch).
    pub async fn start_invocation(
        &self,
        agent_id: &str,
        principal_id: Option<String>,
        mode: InvocationMode,
        request: Value,
    ) -> StoreResult<String> {
        let mut conn = self.pool().acquire().await?;
        insert(&mut conn, agent_id, None, principal_id.as_deref(), mode, &request).await
    }

    /// Finishes invocation `id`, unless it already finished (was cancelled).
    pub async fn finish_invocation(
        &self,
        id: &str,
        outcome: Outcome,
        metrics: Option<(f64, i64)>,
    ) -> StoreResult<bool> {
        let (status, result, error) = outcome_columns(&outcome)?;
        let (time, tokens) = metrics.unzip();
        let changed = sqlx::query(
            "UPDATE invocations SET status = $2, result = $3, error = $4, execution_time = $5,
                                    tokens_used = $6, finished_at = $7
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(status)
        .bind(result)
        .bind(error)
        .bind(time)
        .bind(tokens)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Marks invocation `id` cancelled (its caller went away), unless it
    /// already finished.
    pub async fn cancel_invocation(&self, id: &str) -> StoreResult<bool> {
        let changed = sqlx::query(
            "UPDATE invocations SET status = 'cancelled', finished_at = $2
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Reads an invocation.
    pub async fn get_invocation(&self, id: &str) -> StoreResult<Option<InvocationRecord>> {
        let row = sqlx::query(
            "SELECT id, agent_id, operation_id, principal_id, mode, request, status, result, error,
                    execution_time, tokens_used, started_at, finished_at
             FROM invocations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(InvocationRecord {
            id: col(&row, 0)?,
            agent_id: col(&row, 1)?,
            operation_id: col(&row, 2)?,
            principal_id: col(&row, 3)?,
            mode: parse_enum("invocations.mode", col(&row, 4)?, InvocationMode::parse)?,
            request: serde_json::from_str(&col::<String>(&row, 5)?)?,
            status: col(&row, 6)?,
            result: parse_json_opt(col(&row, 7)?)?,
            error: parse_json_opt(col(&row, 8)?)?,
            execution_time: col(&row, 9)?,
            tokens_used: col(&row, 10)?,
            started_at: col(&row, 11)?,
            finished_at: col(&row, 12)?,
        }))
    }

    /// The invocation of async operation `operation_id`, if any.
    pub async fn invocation_of_operation(&self, operation_id: &str) -> StoreResult<Option<InvocationRecord>> {
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM invocations WHERE operation_id = $1")
            .bind(operation_id)
            .fetch_optional(self.pool())
            .await?;
        match id {
            Some(id) => self.get_invocation(&id).await,
            None => Ok(None),
        }
    }

    /// The number of invocations of a status, for tests and diagnostics.
    pub async fn count_invocations(&self, status: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM invocations WHERE status = $1")
            .bind(status)
            .fetch_one(self.pool())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::backends;
    use crate::store::{AgentFields, Framework};
    use serde_json::json;

    #[tokio::test]
    async fn invocation_round_trip() {
        for (name, store, _guard) in backends().await {
            let agent = store
                .create_agent(
                    Framework::Echo,
                    AgentFields {
                        name: "a".into(),
                        description: None,
                        entrypoint: None,
                        config: json!({}),
                        tags: vec![],
                    },
                )
                .await
                .unwrap();
            let request = json!({"query": "hello there"});
            let id = store
                .start_invocation(&agent.id, Some("key_1".into()), InvocationMode::Sync, request.clone())
                .await
                .unwrap();
            let error = json!({"code": "AGENT_ERROR", "message": "boom"});
            assert!(store.finish_invocation(&id, Outcome::Failed(error.clone()), Some((0.25, 0))).await.unwrap());
            let read = store.get_invocation(&id).await.unwrap().unwrap();
            assert_eq!(read.mode, InvocationMode::Sync, "{name}");
            assert_eq!(read.request, request);
            assert_eq!(read.status, "failed");
            assert_eq!(read.error, Some(error));
            assert_eq!(read.execution_time, Some(0.25));
            assert_eq!(read.tokens_used, Some(0));
            assert!(read.finished_at.is_some());
            assert_eq!(store.count_invocations("failed").await.unwrap(), 1);
            // A second finish is ignored.
            assert!(!store.finish_invocation(&id, Outcome::Succeeded(json!({})), None).await.unwrap());
            let cancelled =
                store.start_invocation(&agent.id, None, InvocationMode::Stream, json!({"query": "x"})).await.unwrap();
            assert!(store.cancel_invocation(&cancelled).await.unwrap());
            assert!(!store.cancel_invocation(&cancelled).await.unwrap());
        }
    }
}
