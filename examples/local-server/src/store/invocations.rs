//! Invocations: one record per run of an agent, whatever asked for it
//! (sync, async, stream, batch), with its request, outcome and timings.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{InvocationMode, InvocationRecord, Outcome, Store, StoreResult, parse_enum, parse_json_opt};
use crate::time::now_rfc3339;

/// Records a running invocation; returns its id (`inv_...`).
pub fn insert(
    conn: &Connection,
    agent_id: &str,
    operation_id: Option<&str>,
    principal_id: Option<&str>,
    mode: InvocationMode,
    request: &Value,
) -> StoreResult<String> {
    let id = crate::ids::new_id("inv_");
    conn.execute(
        "INSERT INTO invocations (id, agent_id, operation_id, principal_id, mode, request, status,
                                  started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
        params![
            id,
            agent_id,
            operation_id,
            principal_id,
            mode.as_str(),
            serde_json::to_string(request)?,
            now_rfc3339()
        ],
    )?;
    Ok(id)
}

fn outcome_columns(outcome: &Outcome) -> StoreResult<(&'static str, Option<String>, Option<String>)> {
    Ok(match outcome {
        Outcome::Succeeded(result) => ("succeeded", Some(serde_json::to_string(result)?), None),
        Outcome::Failed(error) => ("failed", None, Some(serde_json::to_string(error)?)),
    })
}

/// Finishes invocation `id`, unless it already finished (was cancelled).
pub fn finish(conn: &Connection, id: &str, outcome: &Outcome, metrics: Option<(f64, i64)>) -> StoreResult<bool> {
    let (status, result, error) = outcome_columns(outcome)?;
    let (time, tokens) = metrics.unzip();
    Ok(conn.execute(
        "UPDATE invocations SET status = ?2, result = ?3, error = ?4, execution_time = ?5,
                                tokens_used = ?6, finished_at = ?7
         WHERE id = ?1 AND status = 'running'",
        params![id, status, result, error, time, tokens, now_rfc3339()],
    )? == 1)
}

/// Marks invocation `id` cancelled (its caller went away), unless it
/// already finished.
pub fn cancel(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn.execute(
        "UPDATE invocations SET status = 'cancelled', finished_at = ?2
         WHERE id = ?1 AND status = 'running'",
        params![id, now_rfc3339()],
    )? == 1)
}

/// Finishes the invocation run by operation `operation_id`.
pub(super) fn finish_for_operation(
    conn: &Connection,
    operation_id: &str,
    outcome: &Outcome,
    metrics: Option<(f64, i64)>,
    now: &str,
) -> StoreResult<()> {
    let (status, result, error) = outcome_columns(outcome)?;
    let (time, tokens) = metrics.unzip();
    conn.execute(
        "UPDATE invocations SET status = ?2, result = ?3, error = ?4, execution_time = ?5,
                                tokens_used = ?6, finished_at = ?7
         WHERE operation_id = ?1 AND status = 'running'",
        params![operation_id, status, result, error, time, tokens, now],
    )?;
    Ok(())
}

/// The invocation `id`, if any.
pub fn get(conn: &Connection, id: &str) -> StoreResult<Option<InvocationRecord>> {
    let raw = conn
        .query_row(
            "SELECT id, agent_id, operation_id, principal_id, mode, request, status, result, error,
                    execution_time, tokens_used, started_at, finished_at
             FROM invocations WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ),
                    (
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, Option<f64>>(9)?,
                        r.get::<_, Option<i64>>(10)?,
                        r.get::<_, String>(11)?,
                        r.get::<_, Option<String>>(12)?,
                    ),
                ))
            },
        )
        .optional()?;
    let Some((
        (id, agent_id, operation_id, principal_id, mode, request, status),
        (result, error, execution_time, tokens_used, started_at, finished_at),
    )) = raw
    else {
        return Ok(None);
    };
    Ok(Some(InvocationRecord {
        id,
        agent_id,
        operation_id,
        principal_id,
        mode: parse_enum("invocations.mode", mode, InvocationMode::parse)?,
        request: serde_json::from_str(&request)?,
        status,
        result: parse_json_opt(result)?,
        error: parse_json_opt(error)?,
        execution_time,
        tokens_used,
        started_at,
        finished_at,
    }))
}

/// The number of invocations of each status, for tests and diagnostics.
pub fn count_by_status(conn: &Connection, status: &str) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM invocations WHERE status = ?1", [status], |r| r.get(0))?)
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
        let agent_id = agent_id.to_owned();
        self.call(move |c| insert(c, &agent_id, None, principal_id.as_deref(), mode, &request)).await
    }

    /// Finishes an invocation.
    pub async fn finish_invocation(
        &self,
        id: &str,
        outcome: Outcome,
        metrics: Option<(f64, i64)>,
    ) -> StoreResult<bool> {
        let id = id.to_owned();
        self.call(move |c| finish(c, &id, &outcome, metrics)).await
    }

    /// Marks an invocation cancelled.
    pub async fn cancel_invocation(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.call(move |c| cancel(c, &id)).await
    }

    /// Reads an invocation.
    pub async fn get_invocation(&self, id: &str) -> StoreResult<Option<InvocationRecord>> {
        let id = id.to_owned();
        self.call(move |c| get(c, &id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use crate::store::{AgentFields, Framework, agents};
    use serde_json::json;

    #[test]
    fn invocation_round_trip() {
        let (store, _dir, _) = temp_store();
        let agent = store
            .call_blocking(|c| {
                agents::create(
                    c,
                    Framework::Echo,
                    &AgentFields {
                        name: "a".into(),
                        description: None,
                        entrypoint: None,
                        config: json!({}),
                        tags: vec![],
                    },
                )
            })
            .unwrap();
        let request = json!({"query": "hello there"});
        let id =
            store.call_blocking(|c| insert(c, &agent.id, None, Some("key_1"), InvocationMode::Sync, &request)).unwrap();
        let error = json!({"code": "AGENT_ERROR", "message": "boom"});
        assert!(store.call_blocking(|c| finish(c, &id, &Outcome::Failed(error.clone()), Some((0.25, 0)))).unwrap());
        let read = store.call_blocking(|c| get(c, &id)).unwrap().unwrap();
        assert_eq!(read.mode, InvocationMode::Sync);
        assert_eq!(read.request, request);
        assert_eq!(read.status, "failed");
        assert_eq!(read.error, Some(error));
        assert_eq!(read.execution_time, Some(0.25));
        assert!(read.finished_at.is_some());
        assert_eq!(store.call_blocking(|c| count_by_status(c, "failed")).unwrap(), 1);
        // A second finish is ignored.
        assert!(!store.call_blocking(|c| finish(c, &id, &Outcome::Succeeded(json!({})), None)).unwrap());
    }
}
