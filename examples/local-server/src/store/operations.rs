//! Asynchronous operations (deployments and async invocations) and their
//! state machine: `pending` → `running` → `succeeded` | `failed`, or
//! `cancelled` from either open state.
//!
//! Every transition is a conditional update (`WHERE status IN (...)`), so
//! when a cancel races with the work finishing, exactly one of them wins
//! and the other sees that it lost.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Value, json};

use super::{
    AgentRecord, AgentStatus, InvocationMode, OperationKind, OperationRecord, OperationStatus, Outcome, Store,
    StoreResult, agents, parse_enum, parse_json_opt,
};
use crate::time::now_rfc3339;

/// Why operations still open at startup failed.
pub const INTERRUPTED_REASON: &str = "The server stopped before the operation finished.";

const COLUMNS: &str = "id, kind, status, agent_id, result, error, created_at, updated_at";

/// What asking for a deployment did.
// Short-lived return values; boxing the record too buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DeployStart {
    /// The operation was created (pending) and the agent is `deploying`.
    Started {
        /// The new operation.
        operation: OperationRecord,
        /// The agent, as it was before the deployment started (boxed: it is
        /// much larger than the other variants).
        agent: Box<AgentRecord>,
    },
    /// No such agent.
    NotFound,
    /// A deployment of the agent is already in progress.
    InProgress,
}

/// What asking for an async invocation did.
// Short-lived return values; boxing the record too buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeStart {
    /// The operation (pending) and its invocation were created.
    Started {
        /// The new operation.
        operation: OperationRecord,
        /// The invocation it runs.
        invocation_id: String,
        /// The agent (boxed: it is much larger than the other variants).
        agent: Box<AgentRecord>,
    },
    /// No such agent.
    NotFound,
    /// The agent is not deployed; its status.
    NotDeployed(AgentStatus),
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// The operation is now cancelled.
    Cancelled(OperationRecord),
    /// The operation had already finished; as it is.
    AlreadyFinished(OperationRecord),
    /// No such operation.
    NotFound,
}

/// What startup recovery changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Operations marked failed.
    pub operations: usize,
    /// Agents moved from `deploying` to `failed`.
    pub agents: usize,
    /// Invocations marked failed.
    pub invocations: usize,
    /// In-progress idempotency reservations released.
    pub idempotency: usize,
}

type RawOperation = (String, String, String, String, Option<String>, Option<String>, String, String);

fn row_to_operation(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawOperation> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

fn to_record(raw: RawOperation) -> StoreResult<OperationRecord> {
    let (id, kind, status, agent_id, result, error, created_at, updated_at) = raw;
    Ok(OperationRecord {
        id,
        kind: parse_enum("operations.kind", kind, OperationKind::parse)?,
        status: parse_enum("operations.status", status, OperationStatus::parse)?,
        agent_id,
        result: parse_json_opt(result)?,
        error: parse_json_opt(error)?,
        created_at,
        updated_at,
    })
}

/// The operation `id`, if any (operations of deleted agents included).
pub fn get(conn: &Connection, id: &str) -> StoreResult<Option<OperationRecord>> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM operations WHERE id = ?1"), [id], row_to_operation)
        .optional()?
        .map(to_record)
        .transpose()
}

fn insert(
    conn: &Connection,
    kind: OperationKind,
    agent_id: &str,
    principal_id: Option<&str>,
) -> StoreResult<OperationRecord> {
    let now = now_rfc3339();
    let record = OperationRecord {
        id: crate::ids::new_id("op_"),
        kind,
        status: OperationStatus::Pending,
        agent_id: agent_id.to_owned(),
        result: None,
        error: None,
        created_at: now.clone(),
        updated_at: now,
    };
    conn.execute(
        "INSERT INTO operations (id, kind, status, agent_id, principal_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            record.id,
            kind.as_str(),
            record.status.as_str(),
            agent_id,
            principal_id,
            record.created_at,
            record.updated_at
        ],
    )?;
    Ok(record)
}

/// Starts deploying agent `agent_id`: a pending operation, and the agent
/// `deploying`, in one transaction.
pub fn start_deploy(conn: &mut Connection, agent_id: &str, principal_id: Option<&str>) -> StoreResult<DeployStart> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(agent) = agents::get(&tx, agent_id)? else {
        return Ok(DeployStart::NotFound);
    };
    if agent.status == AgentStatus::Deploying {
        return Ok(DeployStart::InProgress);
    }
    let operation = insert(&tx, OperationKind::Deploy, agent_id, principal_id)?;
    tx.execute(
        "UPDATE agents SET status = 'deploying', updated_at = ?2 WHERE id = ?1",
        params![agent_id, operation.created_at],
    )?;
    tx.commit()?;
    Ok(DeployStart::Started { operation, agent: Box::new(agent) })
}

/// Starts an async invocation of agent `agent_id` (which must be
/// deployed): a pending operation and its running invocation record.
pub fn start_invoke(
    conn: &mut Connection,
    agent_id: &str,
    principal_id: Option<&str>,
    request: &Value,
) -> StoreResult<InvokeStart> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(agent) = agents::get(&tx, agent_id)? else {
        return Ok(InvokeStart::NotFound);
    };
    if agent.status != AgentStatus::Deployed {
        return Ok(InvokeStart::NotDeployed(agent.status));
    }
    let operation = insert(&tx, OperationKind::Invoke, agent_id, principal_id)?;
    let invocation_id =
        super::invocations::insert(&tx, agent_id, Some(&operation.id), principal_id, InvocationMode::Async, request)?;
    tx.commit()?;
    Ok(InvokeStart::Started { operation, invocation_id, agent: Box::new(agent) })
}

/// Moves operation `id` from `pending` to `running`; false when it is no
/// longer pending (it was cancelled).
pub fn mark_running(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn.execute(
        "UPDATE operations SET status = 'running', updated_at = ?2
         WHERE id = ?1 AND status = 'pending'",
        params![id, now_rfc3339()],
    )? == 1)
}

/// Finishes operation `id` with `outcome`, unless it already finished
/// (was cancelled): a deployment sets its agent `deployed` or `failed`,
/// an invocation finishes its invocation record (with `metrics`, the
/// execution time and tokens, when the agent ran to the end). Returns
/// whether this call finished it.
pub fn finish(conn: &mut Connection, id: &str, outcome: &Outcome, metrics: Option<(f64, i64)>) -> StoreResult<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_rfc3339();
    let (status, result, error) = match outcome {
        Outcome::Succeeded(result) => (OperationStatus::Succeeded, Some(serde_json::to_string(result)?), None),
        Outcome::Failed(error) => (OperationStatus::Failed, None, Some(serde_json::to_string(error)?)),
    };
    let mut stmt = tx.prepare(
        "UPDATE operations SET status = ?2, result = ?3, error = ?4, updated_at = ?5
         WHERE id = ?1 AND status IN ('pending', 'running') RETURNING kind, agent_id",
    )?;
    let finished: Option<(String, String)> =
        stmt.query_row(params![id, status.as_str(), result, error, now], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    drop(stmt);
    let Some((kind, agent_id)) = finished else {
        return Ok(false);
    };
    match parse_enum("operations.kind", kind, OperationKind::parse)? {
        OperationKind::Deploy => {
            let agent_status =
                if status == OperationStatus::Succeeded { AgentStatus::Deployed } else { AgentStatus::Failed };
            tx.execute(
                "UPDATE agents SET status = ?2, updated_at = ?3
                 WHERE id = ?1 AND deleted_at IS NULL",
                params![agent_id, agent_status.as_str(), now],
            )?;
        }
        OperationKind::Invoke => {
            super::invocations::finish_for_operation(&tx, id, outcome, metrics, &now)?;
        }
    }
    tx.commit()?;
    Ok(true)
}

/// Cancels operation `id` if it is still open; a cancelled deployment
/// leaves its agent `failed`.
pub fn cancel(conn: &mut Connection, id: &str) -> StoreResult<CancelOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(operation) = get(&tx, id)? else {
        return Ok(CancelOutcome::NotFound);
    };
    if operation.status.is_final() {
        return Ok(CancelOutcome::AlreadyFinished(operation));
    }
    let now = now_rfc3339();
    tx.execute("UPDATE operations SET status = 'cancelled', updated_at = ?2 WHERE id = ?1", params![id, now])?;
    match operation.kind {
        OperationKind::Deploy => {
            tx.execute(
                "UPDATE agents SET status = 'failed', updated_at = ?2
                 WHERE id = ?1 AND deleted_at IS NULL AND status = 'deploying'",
                params![operation.agent_id, now],
            )?;
        }
        OperationKind::Invoke => {
            tx.execute(
                "UPDATE invocations SET status = 'cancelled', finished_at = ?2
                 WHERE operation_id = ?1 AND status = 'running'",
                params![id, now],
            )?;
        }
    }
    let cancelled = get(&tx, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    tx.commit()?;
    Ok(CancelOutcome::Cancelled(cancelled))
}

/// The error document of an operation that the server stopped under.
pub fn interrupted_error() -> Value {
    json!({
        "code": "INTERNAL_ERROR",
        "message": INTERRUPTED_REASON,
        "details": {"reason": "server_stopped"},
    })
}

/// Marks everything left open by a previous run as failed: operations
/// `pending` or `running`, agents `deploying`, invocations `running`, and
/// releases idempotency reservations of requests that never answered. Run
/// at startup, before serving, and at shutdown for work that did not
/// finish in time.
pub fn recover_interrupted(conn: &mut Connection) -> StoreResult<Recovered> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_rfc3339();
    let error = serde_json::to_string(&interrupted_error())?;
    let recovered = Recovered {
        operations: tx.execute(
            "UPDATE operations SET status = 'failed', error = ?1, updated_at = ?2
             WHERE status IN ('pending', 'running')",
            params![error, now],
        )?,
        agents: tx
            .execute("UPDATE agents SET status = 'failed', updated_at = ?1 WHERE status = 'deploying'", params![now])?,
        invocations: tx.execute(
            "UPDATE invocations SET status = 'failed', error = ?1, finished_at = ?2
             WHERE status = 'running'",
            params![error, now],
        )?,
        idempotency: tx.execute("DELETE FROM idempotency_records WHERE state = 'in_progress'", [])?,
    };
    tx.commit()?;
    Ok(recovered)
}

impl Store {
    /// Reads an operation.
    pub async fn get_operation(&self, id: &str) -> StoreResult<Option<OperationRecord>> {
        let id = id.to_owned();
        self.call(move |c| get(c, &id)).await
    }

    /// Starts a deployment.
    pub async fn start_deploy(&self, agent_id: &str, principal_id: Option<String>) -> StoreResult<DeployStart> {
        let agent_id = agent_id.to_owned();
        self.call(move |c| start_deploy(c, &agent_id, principal_id.as_deref())).await
    }

    /// Starts an async invocation.
    pub async fn start_invoke(
        &self,
        agent_id: &str,
        principal_id: Option<String>,
        request: Value,
    ) -> StoreResult<InvokeStart> {
        let agent_id = agent_id.to_owned();
        self.call(move |c| start_invoke(c, &agent_id, principal_id.as_deref(), &request)).await
    }

    /// Moves an operation to `running`.
    pub async fn mark_running(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.call(move |c| mark_running(c, &id)).await
    }

    /// Finishes an operation.
    pub async fn finish_operation(&self, id: &str, outcome: Outcome, metrics: Option<(f64, i64)>) -> StoreResult<bool> {
        let id = id.to_owned();
        self.call(move |c| finish(c, &id, &outcome, metrics)).await
    }

    /// Cancels an operation.
    pub async fn cancel_operation(&self, id: &str) -> StoreResult<CancelOutcome> {
        let id = id.to_owned();
        self.call(move |c| cancel(c, &id)).await
    }

    /// Fails what a previous run left open.
    pub async fn recover_interrupted(&self) -> StoreResult<Recovered> {
        self.call(recover_interrupted).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use crate::store::{AgentFields, Framework, Store};

    fn agent(store: &Store) -> AgentRecord {
        store
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
            .unwrap()
    }

    fn agent_status(store: &Store, id: &str) -> AgentStatus {
        store.call_blocking(|c| agents::get(c, id)).unwrap().unwrap().status
    }

    #[test]
    fn deploy_moves_through_its_states() {
        let (store, _dir, _) = temp_store();
        let agent = agent(&store);
        let DeployStart::Started { operation, .. } =
            store.call_blocking(|c| start_deploy(c, &agent.id, Some("key_1"))).unwrap()
        else {
            panic!("not started")
        };
        assert_eq!(operation.status, OperationStatus::Pending);
        assert_eq!(agent_status(&store, &agent.id), AgentStatus::Deploying);
        assert_eq!(store.call_blocking(|c| start_deploy(c, &agent.id, None)).unwrap(), DeployStart::InProgress);
        assert!(store.call_blocking(|c| mark_running(c, &operation.id)).unwrap());
        assert!(!store.call_blocking(|c| mark_running(c, &operation.id)).unwrap());
        let result = json!({"agent_id": agent.id, "status": "deployed", "deployed_at": "x"});
        assert!(store.call_blocking(|c| finish(c, &operation.id, &Outcome::Succeeded(result.clone()), None)).unwrap());
        assert_eq!(agent_status(&store, &agent.id), AgentStatus::Deployed);
        let read = store.call_blocking(|c| get(c, &operation.id)).unwrap().unwrap();
        assert_eq!(read.status, OperationStatus::Succeeded);
        assert_eq!(read.result, Some(result));
        // Finishing twice does nothing; cancelling a finished one is refused.
        assert!(!store.call_blocking(|c| finish(c, &operation.id, &Outcome::Failed(json!({})), None)).unwrap());
        assert!(matches!(
            store.call_blocking(|c| cancel(c, &operation.id)).unwrap(),
            CancelOutcome::AlreadyFinished(_)
        ));
        assert_eq!(store.call_blocking(|c| cancel(c, "op_nope")).unwrap(), CancelOutcome::NotFound);
    }

    #[test]
    fn cancelled_deploy_fails_the_agent_and_wins_over_finish() {
        let (store, _dir, _) = temp_store();
        let agent = agent(&store);
        let DeployStart::Started { operation, .. } = store.call_blocking(|c| start_deploy(c, &agent.id, None)).unwrap()
        else {
            panic!()
        };
        let CancelOutcome::Cancelled(cancelled) = store.call_blocking(|c| cancel(c, &operation.id)).unwrap() else {
            panic!()
        };
        assert_eq!(cancelled.status, OperationStatus::Cancelled);
        assert_eq!(agent_status(&store, &agent.id), AgentStatus::Failed);
        assert!(!store.call_blocking(|c| finish(c, &operation.id, &Outcome::Succeeded(json!({})), None)).unwrap());
        assert_eq!(agent_status(&store, &agent.id), AgentStatus::Failed);
    }

    #[test]
    fn async_invoke_needs_a_deployed_agent_and_records_the_invocation() {
        let (store, _dir, _) = temp_store();
        let agent = agent(&store);
        let request = json!({"query": "hi"});
        assert_eq!(
            store.call_blocking(|c| start_invoke(c, &agent.id, None, &request)).unwrap(),
            InvokeStart::NotDeployed(AgentStatus::Created)
        );
        store
            .call_blocking(|c| Ok(c.execute("UPDATE agents SET status = 'deployed' WHERE id = ?1", [&agent.id])?))
            .unwrap();
        let InvokeStart::Started { operation, invocation_id, .. } =
            store.call_blocking(|c| start_invoke(c, &agent.id, Some("key_1"), &request)).unwrap()
        else {
            panic!()
        };
        assert_eq!(operation.kind, OperationKind::Invoke);
        let result = json!({"result": "hi", "metadata": {"execution_time": 0.5, "tokens_used": 1}});
        store.call_blocking(|c| finish(c, &operation.id, &Outcome::Succeeded(result.clone()), Some((0.5, 1)))).unwrap();
        let invocation = store.call_blocking(|c| super::super::invocations::get(c, &invocation_id)).unwrap().unwrap();
        assert_eq!(invocation.status, "succeeded");
        assert_eq!(invocation.result, Some(result));
        assert_eq!(invocation.tokens_used, Some(1));
        assert_eq!(invocation.operation_id.as_deref(), Some(operation.id.as_str()));
    }

    #[test]
    fn recovery_fails_what_was_left_open_and_persists() {
        let (store, _dir, location) = temp_store();
        let agent = agent(&store);
        let DeployStart::Started { operation, .. } = store.call_blocking(|c| start_deploy(c, &agent.id, None)).unwrap()
        else {
            panic!()
        };
        store.call_blocking(|c| mark_running(c, &operation.id)).unwrap();
        drop(store);

        let store = Store::open(&location).unwrap();
        let recovered = store.call_blocking(recover_interrupted).unwrap();
        assert_eq!((recovered.operations, recovered.agents), (1, 1));
        let read = store.call_blocking(|c| get(c, &operation.id)).unwrap().unwrap();
        assert_eq!(read.status, OperationStatus::Failed);
        assert_eq!(read.error, Some(interrupted_error()));
        assert_eq!(agent_status(&store, &agent.id), AgentStatus::Failed);
        assert_eq!(store.call_blocking(recover_interrupted).unwrap(), Recovered::default());
    }

    #[test]
    fn deleting_an_agent_cancels_its_open_operations() {
        let (store, _dir, _) = temp_store();
        let agent = agent(&store);
        let DeployStart::Started { operation, .. } = store.call_blocking(|c| start_deploy(c, &agent.id, None)).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            store.call_blocking(|c| agents::delete(c, &agent.id)).unwrap(),
            agents::DeleteOutcome::Deleted { cancelled_operations: vec![operation.id.clone()] }
        );
        // The operation stays readable after its agent is gone.
        let read = store.call_blocking(|c| get(c, &operation.id)).unwrap().unwrap();
        assert_eq!(read.status, OperationStatus::Cancelled);
    }
}
