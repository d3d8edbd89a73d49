//! Asynchronous operations (deployments and async invocations): the jobs
//! any instance can run, their leases and their state machine: `pending`
//! → `running` → `succeeded` | `failed`, or `cancelled` from either open
//! state.
//!
//! Every transition is a conditional update (`WHERE status IN (...)`), so
//! when a cancel races with the work finishing, exactly one of them wins
//! and the other sees that it lost. Every write of the instance running a
//! job is also fenced by its lease (`AND lease_owner = $me`): once another
//! instance took the job over, the first one can no longer record anything.
//!
//! The lease: the instance that accepted a job holds it from the start
//! (`lease_owner`, `lease_until` on the database's clock) and renews it
//! while the job runs. A job whose lease ran out belongs to an instance
//! that died (or lost the database for longer than a lease); any instance
//! then takes it over ([`Store::reap_expired`]) and, by its kind, runs it
//! again or fails it with a reason naming the lost instance.

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{
    AgentRecord, AgentStatus, Backend, InvocationMode, OperationKind, OperationRecord, OperationStatus, Outcome, Store,
    StoreResult, agents, col, parse_enum, parse_json_opt,
};
use crate::time::now_rfc3339;

/// Why operations an instance could not finish before it stopped failed.
pub const INTERRUPTED_REASON: &str = "The server stopped before the operation finished.";

/// How often a deployment is started before a lost instance makes it fail
/// for good: a deployment that kills every instance running it must not
/// go round forever.
pub const MAX_DEPLOY_ATTEMPTS: i64 = 3;

/// The PostgreSQL notification channel cancels are announced on; the
/// payload is the operation id.
pub const CANCEL_CHANNEL: &str = "runagent_cancel";

const COLUMNS: &str = "id, kind, status, agent_id, result, error, created_at, updated_at";

/// What kind of work a job is.
pub type JobKind = OperationKind;

/// What asking for a deployment did.
// Short-lived return values; boxing the record too buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DeployStart {
    /// The operation was created (pending, leased to the caller) and the
    /// agent is `deploying`.
    Started {
        /// The new operation.
        operation: OperationRecord,
        /// The agent, now `deploying`.
        agent: Box<AgentRecord>,
    },
    /// No such agent.
    NotFound,
    /// A deployment of the agent is already in progress.
    InProgress,
}

/// What asking for an async invocation did.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeStart {
    /// The operation (pending, leased to the caller) and its invocation
    /// were created.
    Started {
        /// The new operation.
        operation: OperationRecord,
        /// The invocation it runs.
        invocation_id: String,
        /// The agent.
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

/// Whether an instance still holds a job's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Renewed: the job is still open and still ours.
    Held,
    /// The job was cancelled, finished, or taken over: stop working on it.
    Lost,
}

/// A job this instance has just claimed and must run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    /// The operation.
    pub operation: OperationRecord,
    /// Its agent.
    pub agent: AgentRecord,
    /// For an invocation: the request as recorded (query, parameters,
    /// session id).
    pub request: Option<Value>,
    /// How many times the job has been started, this one included.
    pub attempts: i64,
}

/// What a pass over expired leases did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reaped {
    /// Jobs taken over to run again here.
    pub retried: Vec<ClaimedJob>,
    /// Operations failed because the instance running them was lost.
    pub failed: Vec<String>,
}

fn to_record(row: &AnyRow) -> StoreResult<OperationRecord> {
    Ok(OperationRecord {
        id: col(row, 0)?,
        kind: parse_enum("operations.kind", col(row, 1)?, OperationKind::parse)?,
        status: parse_enum("operations.status", col(row, 2)?, OperationStatus::parse)?,
        agent_id: col(row, 3)?,
        result: parse_json_opt(col(row, 4)?)?,
        error: parse_json_opt(col(row, 5)?)?,
        created_at: col(row, 6)?,
        updated_at: col(row, 7)?,
    })
}

/// The operation `id`, if any (operations of deleted agents included).
async fn get(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<OperationRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM operations WHERE id = $1");
    sqlx::query(&sql).bind(id).fetch_optional(conn).await?.as_ref().map(to_record).transpose()
}

/// Inserts a pending operation leased to `owner`.
async fn insert(
    conn: &mut AnyConnection,
    backend: Backend,
    kind: OperationKind,
    agent_id: &str,
    principal_id: Option<&str>,
    owner: &str,
    lease_ms: i64,
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
    let sql = format!(
        "INSERT INTO operations (id, kind, status, agent_id, principal_id, created_at, updated_at,
                                 lease_owner, lease_until, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {} + $9, 1)",
        backend.now_ms()
    );
    sqlx::query(&sql)
        .bind(&record.id)
        .bind(kind.as_str())
        .bind(record.status.as_str())
        .bind(agent_id)
        .bind(principal_id)
        .bind(&record.created_at)
        .bind(&record.updated_at)
        .bind(owner)
        .bind(lease_ms)
        .execute(conn)
        .await?;
    Ok(record)
}

/// Announces that operation `id` was cancelled, to the instance running
/// it (PostgreSQL delivers it when the transaction commits). On SQLite
/// there is one instance, which cancels its own work directly.
pub(super) async fn notify_cancel(conn: &mut AnyConnection, backend: Backend, id: &str) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CANCEL_CHANNEL).bind(id).execute(conn).await?;
    }
    Ok(())
}

/// The error document of an operation that the server stopped under.
pub fn interrupted_error() -> Value {
    json!({
        "code": "INTERNAL_ERROR",
        "message": INTERRUPTED_REASON,
        "details": {"reason": "server_stopped"},
    })
}

/// The error document of an operation whose instance was lost (its lease
/// ran out) and that is not run again: an invocation, because its agent's
/// program may have had side effects already; a deployment that was
/// started [`MAX_DEPLOY_ATTEMPTS`] times.
pub fn lost_instance_error(kind: OperationKind, instance: &str, attempts: i64) -> Value {
    let message = match kind {
        OperationKind::Invoke => format!(
            "Server instance {instance} stopped (or lost the database for longer than its lease) while running \
             this invocation. It is not run again, because the agent's program may already have had side \
             effects; invoke the agent again if that is safe."
        ),
        OperationKind::Deploy => format!(
            "Server instance {instance} stopped (or lost the database for longer than its lease) while running \
             this deployment, which was started {attempts} times; giving up."
        ),
    };
    json!({
        "code": "INTERNAL_ERROR",
        "message": message,
        "details": {"reason": "instance_lost", "instance_id": instance, "attempts": attempts},
    })
}

/// Finishes operation `id` inside `conn`'s transaction: its agent for a
/// deployment, its invocation record for an invocation.
async fn finish_side_effects(
    conn: &mut AnyConnection,
    id: &str,
    kind: OperationKind,
    agent_id: &str,
    outcome: &Outcome,
    metrics: Option<(f64, i64)>,
    now: &str,
) -> StoreResult<()> {
    match kind {
        OperationKind::Deploy => {
            let agent_status =
                if matches!(outcome, Outcome::Succeeded(_)) { AgentStatus::Deployed } else { AgentStatus::Failed };
            sqlx::query(
                "UPDATE agents SET status = $2, updated_at = $3
                 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(agent_id)
            .bind(agent_status.as_str())
            .bind(now)
            .execute(conn)
            .await?;
        }
        OperationKind::Invoke => {
            super::invocations::finish_for_operation(conn, id, outcome, metrics, now).await?;
        }
    }
    Ok(())
}

fn outcome_columns(outcome: &Outcome) -> StoreResult<(OperationStatus, Option<String>, Option<String>)> {
    Ok(match outcome {
        Outcome::Succeeded(result) => (OperationStatus::Succeeded, Some(serde_json::to_string(result)?), None),
        Outcome::Failed(error) => (OperationStatus::Failed, None, Some(serde_json::to_string(error)?)),
    })
}

impl Store {
    /// Reads an operation.
    pub async fn get_operation(&self, id: &str) -> StoreResult<Option<OperationRecord>> {
        let mut conn = self.pool().acquire().await?;
        get(&mut conn, id).await
    }

    /// Starts a deployment of agent `agent_id` (unless one is in
    /// progress): a pending operation leased to `owner` for `lease_ms`, and
    /// the agent `deploying`, in one transaction. The agent's status is
    /// set with a conditional update, so of two deployments asked for at
    /// once (on any instances) one starts and the other is told one is in
    /// progress.
    pub async fn start_deploy(
        &self,
        agent_id: &str,
        principal_id: Option<String>,
        owner: &str,
        lease_ms: i64,
    ) -> StoreResult<DeployStart> {
        let mut tx = self.begin().await?;
        let now = now_rfc3339();
        let sql = "UPDATE agents SET status = 'deploying', updated_at = $2
                   WHERE id = $1 AND deleted_at IS NULL AND status <> 'deploying' RETURNING id";
        let started = sqlx::query(sql).bind(agent_id).bind(&now).fetch_optional(&mut *tx).await?;
        if started.is_none() {
            return Ok(match agents::get(&mut tx, self.backend(), agent_id, false).await? {
                None => DeployStart::NotFound,
                Some(_) => DeployStart::InProgress,
            });
        }
        let Some(agent) = agents::get(&mut tx, self.backend(), agent_id, false).await? else {
            return Ok(DeployStart::NotFound);
        };
        let operation =
            insert(&mut tx, self.backend(), OperationKind::Deploy, agent_id, principal_id.as_deref(), owner, lease_ms)
                .await?;
        tx.commit().await?;
        Ok(DeployStart::Started { operation, agent: Box::new(agent) })
    }

    /// Starts an async invocation of agent `agent_id` (which must be
    /// deployed): a pending operation leased to `owner` and its running
    /// invocation record.
    pub async fn start_invoke(
        &self,
        agent_id: &str,
        principal_id: Option<String>,
        request: Value,
        owner: &str,
        lease_ms: i64,
    ) -> StoreResult<InvokeStart> {
        let mut tx = self.begin().await?;
        // Locked, so that a delete or redeploy on another instance waits
        // for this transaction.
        let Some(agent) = agents::get(&mut tx, self.backend(), agent_id, true).await? else {
            return Ok(InvokeStart::NotFound);
        };
        if agent.status != AgentStatus::Deployed {
            return Ok(InvokeStart::NotDeployed(agent.status));
        }
        let principal_id = principal_id.as_deref();
        let operation =
            insert(&mut tx, self.backend(), OperationKind::Invoke, agent_id, principal_id, owner, lease_ms).await?;
        let invocation_id = super::invocations::insert(
            &mut tx,
            agent_id,
            Some(&operation.id),
            principal_id,
            InvocationMode::Async,
            &request,
        )
        .await?;
        tx.commit().await?;
        Ok(InvokeStart::Started { operation, invocation_id, agent: Box::new(agent) })
    }

    /// Moves operation `id` from `pending` to `running`, if `owner` holds
    /// it; false when it is no longer pending (it was cancelled) or no
    /// longer ours.
    pub async fn mark_running(&self, id: &str, owner: &str) -> StoreResult<bool> {
        let changed = sqlx::query(
            "UPDATE operations SET status = 'running', updated_at = $2
             WHERE id = $1 AND status = 'pending' AND lease_owner = $3",
        )
        .bind(id)
        .bind(now_rfc3339())
        .bind(owner)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Extends `owner`'s lease of operation `id` to `lease_ms` from now;
    /// [`LeaseState::Lost`] when the job is no longer open or no longer
    /// ours (then its work must stop: it was cancelled, or another
    /// instance took it over).
    pub async fn renew_lease(&self, id: &str, owner: &str, lease_ms: i64) -> StoreResult<LeaseState> {
        let sql = format!(
            "UPDATE operations SET lease_until = {} + $3
             WHERE id = $1 AND lease_owner = $2 AND status IN ('pending', 'running')",
            self.backend().now_ms()
        );
        let changed = sqlx::query(&sql).bind(id).bind(owner).bind(lease_ms).execute(self.pool()).await?.rows_affected();
        Ok(if changed == 1 { LeaseState::Held } else { LeaseState::Lost })
    }

    /// Finishes operation `id` with `outcome`, unless it already finished
    /// (was cancelled) or `owner` no longer holds it: a deployment sets its
    /// agent `deployed` or `failed`, an invocation finishes its invocation
    /// record (with `metrics`, the execution time and tokens, when the
    /// agent ran to the end). Returns whether this call finished it.
    pub async fn finish_operation(
        &self,
        id: &str,
        owner: &str,
        outcome: Outcome,
        metrics: Option<(f64, i64)>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let now = now_rfc3339();
        let (status, result, error) = outcome_columns(&outcome)?;
        let finished = sqlx::query(
            "UPDATE operations SET status = $2, result = $3, error = $4, updated_at = $5, lease_until = NULL
             WHERE id = $1 AND status IN ('pending', 'running') AND lease_owner = $6
             RETURNING kind, agent_id",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(result)
        .bind(error)
        .bind(&now)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = finished else {
            return Ok(false);
        };
        let kind = parse_enum("operations.kind", row.try_get(0)?, OperationKind::parse)?;
        let agent_id: String = row.try_get(1)?;
        finish_side_effects(&mut tx, id, kind, &agent_id, &outcome, metrics, &now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives `owner`'s lease of a job back, so that another instance (or
    /// this one's next start) runs it from the beginning: for a deployment
    /// an instance stops before it finished (at shutdown).
    pub async fn release_job(&self, id: &str, owner: &str) -> StoreResult<bool> {
        let changed = sqlx::query(
            "UPDATE operations SET status = 'pending', lease_until = 0, updated_at = $3
             WHERE id = $1 AND lease_owner = $2 AND status IN ('pending', 'running')",
        )
        .bind(id)
        .bind(owner)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Cancels operation `id` if it is still open (a cancelled deployment
    /// leaves its agent `failed`) and announces it to the instance running
    /// it. The status is the flag: the running instance sees it when it
    /// is notified (PostgreSQL) or at its next lease renewal, whichever
    /// comes first, and stops the work.
    pub async fn cancel_operation(&self, id: &str) -> StoreResult<CancelOutcome> {
        let mut tx = self.begin().await?;
        let now = now_rfc3339();
        let cancelled = sqlx::query(
            "UPDATE operations SET status = 'cancelled', updated_at = $2, lease_until = NULL
             WHERE id = $1 AND status IN ('pending', 'running') RETURNING kind, agent_id",
        )
        .bind(id)
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = cancelled else {
            return Ok(match get(&mut tx, id).await? {
                None => CancelOutcome::NotFound,
                Some(operation) => CancelOutcome::AlreadyFinished(operation),
            });
        };
        let kind = parse_enum("operations.kind", row.try_get(0)?, OperationKind::parse)?;
        let agent_id: String = row.try_get(1)?;
        match kind {
            OperationKind::Deploy => {
                sqlx::query(
                    "UPDATE agents SET status = 'failed', updated_at = $2
                     WHERE id = $1 AND deleted_at IS NULL AND status = 'deploying'",
                )
                .bind(&agent_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
            OperationKind::Invoke => {
                sqlx::query(
                    "UPDATE invocations SET status = 'cancelled', finished_at = $2
                     WHERE operation_id = $1 AND status = 'running'",
                )
                .bind(id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
        }
        notify_cancel(&mut tx, self.backend(), id).await?;
        let operation = get(&mut tx, id).await?.ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        Ok(CancelOutcome::Cancelled(operation))
    }

    /// Takes over up to `limit` jobs whose lease ran out (their instance
    /// died, or lost the database for longer than a lease), passing over
    /// rows another instance is taking over at the same moment
    /// (`FOR UPDATE SKIP LOCKED`). By kind:
    ///
    /// - a deployment is run again, leased to `owner` (it is idempotent:
    ///   it checks the agent and marks it deployed), unless it was already
    ///   started [`MAX_DEPLOY_ATTEMPTS`] times: then it fails;
    /// - an invocation that had not started its program yet (`pending`) is
    ///   run again too;
    /// - an invocation that was `running` fails with a reason naming the
    ///   lost instance, because its program may have had side effects
    ///   that running it twice would repeat.
    pub async fn reap_expired(&self, owner: &str, lease_ms: i64, limit: i64) -> StoreResult<Reaped> {
        let backend = self.backend();
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT id, kind, status, agent_id, COALESCE(lease_owner, 'unknown'), attempts FROM operations
             WHERE status IN ('pending', 'running') AND (lease_until IS NULL OR lease_until < {})
             ORDER BY seq LIMIT $1{}",
            backend.now_ms(),
            backend.skip_locked()
        );
        let expired = sqlx::query(&sql).bind(limit).fetch_all(&mut *tx).await?;
        let mut reaped = Reaped::default();
        let now = now_rfc3339();
        for row in expired {
            let id: String = row.try_get(0)?;
            let kind = parse_enum("operations.kind", row.try_get(1)?, OperationKind::parse)?;
            let status = parse_enum("operations.status", row.try_get(2)?, OperationStatus::parse)?;
            let agent_id: String = row.try_get(3)?;
            let lost: String = row.try_get(4)?;
            let attempts: i64 = row.try_get(5)?;
            let retry = match kind {
                OperationKind::Deploy => attempts < MAX_DEPLOY_ATTEMPTS,
                OperationKind::Invoke => status == OperationStatus::Pending && attempts < MAX_DEPLOY_ATTEMPTS,
            };
            let agent = agents::get(&mut tx, backend, &agent_id, false).await?;
            match agent {
                Some(agent) if retry => {
                    let sql = format!(
                        "UPDATE operations SET status = 'pending', lease_owner = $2, lease_until = {} + $3,
                                               attempts = attempts + 1, updated_at = $4
                         WHERE id = $1",
                        backend.now_ms()
                    );
                    sqlx::query(&sql).bind(&id).bind(owner).bind(lease_ms).bind(&now).execute(&mut *tx).await?;
                    let request = match kind {
                        OperationKind::Deploy => None,
                        OperationKind::Invoke => {
                            let text: Option<String> =
                                sqlx::query_scalar("SELECT request FROM invocations WHERE operation_id = $1")
                                    .bind(&id)
                                    .fetch_optional(&mut *tx)
                                    .await?;
                            parse_json_opt(text)?
                        }
                    };
                    let operation = get(&mut tx, &id).await?.ok_or(sqlx::Error::RowNotFound)?;
                    tracing::warn!(
                        operation_id = id,
                        lost_instance = lost,
                        attempt = attempts + 1,
                        "taking over a job"
                    );
                    reaped.retried.push(ClaimedJob { operation, agent, request, attempts: attempts + 1 });
                }
                _ => {
                    let outcome = Outcome::Failed(lost_instance_error(kind, &lost, attempts));
                    let (status, _, error) = outcome_columns(&outcome)?;
                    sqlx::query(
                        "UPDATE operations SET status = $2, error = $3, updated_at = $4, lease_until = NULL,
                                               lease_owner = $5
                         WHERE id = $1",
                    )
                    .bind(&id)
                    .bind(status.as_str())
                    .bind(error)
                    .bind(&now)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                    finish_side_effects(&mut tx, &id, kind, &agent_id, &outcome, None, &now).await?;
                    tracing::warn!(operation_id = id, lost_instance = lost, "failed a job whose instance was lost");
                    reaped.failed.push(id);
                }
            }
        }
        tx.commit().await?;
        Ok(reaped)
    }

    /// At shutdown, after the grace period: what `owner` still holds is
    /// settled so that nothing stays open under a lease nobody renews.
    /// Invocations fail (their programs were stopped; running them again
    /// could repeat side effects) with [`interrupted_error`]; deployments
    /// are released for another instance, or this one's next start, to
    /// run. Returns (failed, released).
    pub async fn settle_own_jobs(&self, owner: &str) -> StoreResult<(usize, usize)> {
        let open: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, kind FROM operations WHERE lease_owner = $1 AND status IN ('pending', 'running')",
        )
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        let (mut failed, mut released) = (0, 0);
        for (id, kind) in open {
            if kind == OperationKind::Deploy.as_str() {
                released += usize::from(self.release_job(&id, owner).await?);
            } else {
                failed +=
                    usize::from(self.finish_operation(&id, owner, Outcome::Failed(interrupted_error()), None).await?);
            }
        }
        Ok((failed, released))
    }
}

#[cfg(test)]
mod tests;
