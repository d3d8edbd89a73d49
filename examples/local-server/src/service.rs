//! What the server does, independent of HTTP: the agents' lifecycle, the
//! background work of operations, invocations in every mode, and streams.
//!
//! The HTTP layer (`api.rs`) turns requests into calls here and the
//! results into the generated response types; everything that must hold
//! whatever the transport (state transitions, cancellation, recording)
//! lives here, where it is tested directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::runner::{Program, RunError, RunOutput, RunRequest, Runner};
use crate::store::{
    self, AgentFields, AgentPage, AgentRecord, AgentStatus, CancelOutcome, ClaimedJob, DeleteOutcome, DeployStart,
    Framework, InvocationMode, InvokeStart, LeaseState, OperationKind, OperationRecord, Outcome, Store, StoreError,
};
use runagent_server::{InMemoryStreamLog, StreamLog, StreamLogConfig, StreamLogError};

use crate::streams::ResumeError;
use crate::time::now_rfc3339;

/// A failed request, as the API reports it: an HTTP status, an error code
/// and message, and optional details.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// The error code (`NOT_FOUND`, `CONFLICT`, ...).
    pub code: &'static str,
    /// What to tell people.
    pub message: String,
    /// The `details` object, if any.
    pub details: Option<Value>,
    /// Seconds after which a retry may succeed (`Retry-After`), for a
    /// failure that goes away by itself.
    pub retry_after: Option<u16>,
}

/// The message of every unexpected failure; the cause goes to the log.
const INTERNAL_MESSAGE: &str = "An unexpected error occurred. Quote the X-Request-Id when reporting it.";

impl Failure {
    fn new(status: u16, code: &'static str, message: impl Into<String>, details: Value) -> Self {
        Failure { status, code, message: message.into(), details: Some(details), retry_after: None }
    }

    /// `503`: the database cannot be reached right now (it is restarting,
    /// or the network to it is down). Nothing was done; the request can be
    /// repeated after `Retry-After`. The spec has no error code of its own
    /// for this, so the code is `INTERNAL_ERROR` and `details.reason` says
    /// `database_unavailable`.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "the database is unavailable");
        Failure {
            status: 503,
            code: "INTERNAL_ERROR",
            message: "The database is unavailable right now; retry after the Retry-After delay.".to_owned(),
            details: Some(json!({"reason": "database_unavailable"})),
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
        }
    }

    /// `404 NOT_FOUND` for an agent.
    pub fn agent_not_found(id: &str) -> Self {
        Self::new(
            404,
            "NOT_FOUND",
            format!("Agent {id} not found."),
            json!({"field": "agent_id", "reason": "not_found"}),
        )
    }

    /// `404 NOT_FOUND` for an operation.
    pub fn operation_not_found(id: &str) -> Self {
        Self::new(
            404,
            "NOT_FOUND",
            format!("Operation {id} not found."),
            json!({"field": "operation_id", "reason": "not_found"}),
        )
    }

    /// `404 NOT_FOUND` for a stream that cannot be resumed.
    pub fn stream_not_found(last_event_id: &str, error: ResumeError) -> Self {
        let stream = last_event_id.rsplit_once(':').map_or(last_event_id, |(s, _)| s);
        let message = match error {
            ResumeError::NotInBuffer => {
                format!("Event {last_event_id} is no longer in the replay buffer.")
            }
            ResumeError::Malformed | ResumeError::UnknownStream => {
                format!("Stream {stream} is unknown or has expired.")
            }
        };
        Self::new(404, "NOT_FOUND", message, json!({"field": "Last-Event-ID", "reason": "not_found"}))
    }

    /// What a stream log's refusal means for a request naming
    /// `last_event_id` (or starting a stream, for `None`): `404` for a
    /// stream or event the log does not have, `503` with `Retry-After`
    /// while the log is unreachable, as the runtime answers for its other
    /// stores (code `INTERNAL_ERROR`, the one the envelope has for `503`,
    /// and `details.reason` `unavailable`).
    pub fn from_stream_log(last_event_id: Option<&str>, error: StreamLogError) -> Self {
        match (error, last_event_id) {
            (StreamLogError::Unknown, Some(id)) => Self::stream_not_found(id, ResumeError::UnknownStream),
            (StreamLogError::NotInLog, Some(id)) => Self::stream_not_found(id, ResumeError::NotInBuffer),
            (StreamLogError::Unavailable(unavailable), _) => {
                tracing::warn!(cause = %unavailable, "the stream log is unavailable");
                let seconds = unavailable.retry_after.as_secs_f64().ceil().max(1.0);
                Failure {
                    status: 503,
                    code: "INTERNAL_ERROR",
                    message: format!("The service is temporarily unavailable; retry after {seconds} seconds."),
                    details: Some(json!({"reason": "unavailable"})),
                    retry_after: Some(u16::try_from(seconds as u64).unwrap_or(u16::MAX)),
                }
            }
            (error, _) => Self::internal(format!("the stream log refused: {error}")),
        }
    }

    /// `409 CONFLICT`: the agent is not deployed.
    pub fn not_deployed(id: &str, status: AgentStatus) -> Self {
        Self::new(
            409,
            "CONFLICT",
            format!("Agent {id} is not deployed (status {status})."),
            json!({"field": "agent_id", "reason": "not_deployed", "agent_status": status.as_str()}),
        )
    }

    /// `500 INTERNAL_ERROR`, logging the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Failure {
            status: 500,
            code: "INTERNAL_ERROR",
            message: INTERNAL_MESSAGE.to_owned(),
            details: None,
            retry_after: None,
        }
    }

    /// `500 AGENT_ERROR` or `AGENT_TIMEOUT` for a failed run.
    pub fn from_run(error: &RunError, field_prefix: &str) -> Self {
        Failure {
            status: 500,
            code: error.code(),
            message: error.to_string(),
            details: Some(error.details(field_prefix)),
            retry_after: None,
        }
    }

    /// The `ApiError` document (`code`, `message`, `details`).
    pub fn to_api_error(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        error
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() { Failure::unavailable(error) } else { Failure::internal(error) }
    }
}

/// The `Retry-After` of a `503` for an unavailable database, in seconds.
pub const UNAVAILABLE_RETRY_AFTER: u16 = 2;

/// The result of the service.
pub type ServiceResult<T> = Result<T, Failure>;

/// An invocation's input, as `InvokeRequest` carries it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvokeInput {
    /// The query.
    pub query: String,
    /// Free-form parameters (`timeout_seconds` among them).
    pub parameters: Map<String, Value>,
    /// The conversation id.
    pub session_id: Option<String>,
    /// Whether the caller asked for `async`.
    pub run_async: bool,
}

impl InvokeInput {
    /// An input with just a query.
    pub fn new(query: impl Into<String>) -> Self {
        InvokeInput { query: query.into(), ..InvokeInput::default() }
    }

    fn run_request(&self) -> RunRequest {
        RunRequest {
            query: self.query.clone(),
            parameters: self.parameters.clone(),
            session_id: self.session_id.clone(),
        }
    }

    /// The input an invocation was recorded with ([`InvokeInput::to_json`]),
    /// to run it again on another instance.
    pub fn from_json(request: &Value) -> Self {
        InvokeInput {
            query: request.get("query").and_then(Value::as_str).unwrap_or_default().to_owned(),
            parameters: request.get("parameters").and_then(Value::as_object).cloned().unwrap_or_default(),
            session_id: request.get("session_id").and_then(Value::as_str).map(str::to_owned),
            run_async: request.get("async").and_then(Value::as_bool).unwrap_or(false),
        }
    }

    /// The request as recorded with the invocation.
    pub fn to_json(&self) -> Value {
        let mut request = json!({"query": self.query});
        if !self.parameters.is_empty() {
            request["parameters"] = Value::Object(self.parameters.clone());
        }
        if let Some(session) = &self.session_id {
            request["session_id"] = json!(session);
        }
        if self.run_async {
            request["async"] = json!(true);
        }
        request
    }
}

/// An `InvokeResult` document: the answer and its metadata.
pub fn invoke_result_json(output: &RunOutput) -> Value {
    json!({
        "result": output.result,
        "metadata": {
            "execution_time": output.execution_time,
            "tokens_used": output.tokens_used,
        },
    })
}

/// One event of a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The first event, naming the stream.
    Start {
        /// `str_...`.
        stream_id: String,
        /// The agent that answers.
        agent_id: String,
        /// When the stream started.
        created_at: String,
    },
    /// A piece of the answer.
    Chunk {
        /// The chunk's position among the chunks, from 0.
        index: u64,
        /// The text.
        text: String,
    },
    /// The end of a successful stream.
    Done(RunOutput),
    /// The end of a failed stream.
    Error {
        /// The error code.
        code: &'static str,
        /// What to tell people.
        message: String,
    },
}

/// A stream's events with their SSE ids, as a response sends them.
pub type EventStream = futures::stream::BoxStream<'static, (String, StreamEvent)>;

/// An agent's health.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentHealth {
    /// The agent.
    pub agent: AgentRecord,
    /// Whether it is deployed and its program is available.
    pub healthy: bool,
    /// When the check was made.
    pub checked_at: String,
}

/// One item's outcome in a batch.
pub type BatchOutcome = Result<RunOutput, Failure>;

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The bounds of the in-memory stream log (the one a service gets
    /// from [`Service::new`]).
    pub streams: StreamLogConfig,
    /// How many items of one batch run at once.
    pub batch_concurrency: usize,
    /// This instance's id: the owner of the jobs it runs and of its
    /// idempotency reservations. Unique among the instances sharing a
    /// database.
    pub instance_id: String,
    /// How long a job's lease lasts without renewal: an instance that dies
    /// has its jobs taken over about this long after its last renewal. It
    /// renews every third of it.
    pub lease: Duration,
}

/// The default lease of jobs (`--lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            streams: StreamLogConfig::default(),
            batch_concurrency: 4,
            instance_id: crate::ids::new_id("inst_"),
            lease: DEFAULT_LEASE,
        }
    }
}

impl ServiceOptions {
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX).max(1)
    }

    /// How often leases and the heartbeat are renewed, and expired leases
    /// looked for: a third of the lease.
    pub fn renew_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(50))
    }
}

/// The server's state and work.
pub struct Service {
    store: Store,
    runner: Runner,
    /// Where streams' events are kept for `Last-Event-ID` resumes.
    streams: Arc<dyn StreamLog>,
    /// The same log when it is this process's memory, to drop expired
    /// streams from (Redis expires its keys by itself).
    memory_log: Option<Arc<InMemoryStreamLog>>,
    /// Every background task (operations, streams, runs), so that shutdown
    /// can wait for them.
    tasks: TaskTracker,
    /// The cancellation tokens of open operations, by operation id.
    operations: Mutex<HashMap<String, CancellationToken>>,
    /// Cancelled when the server stops waiting for work at shutdown; every
    /// run's token is a child of it.
    stopping: CancellationToken,
    options: ServiceOptions,
    /// The instance's own loops (heartbeat and takeovers, cancel
    /// notifications), stopped at shutdown.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Why a job's work stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// Cancelled by a user (the database already says `cancelled`), or
    /// its agent was deleted.
    Cancelled,
    /// The instance is shutting down.
    Shutdown,
    /// The lease is no longer ours: another instance took the job over, so
    /// this one records nothing.
    LeaseLost,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("runner", &self.runner).finish_non_exhaustive()
    }
}

/// Removes an operation's token when its task ends, however it ends.
struct Registration {
    service: Arc<Service>,
    operation_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.service.lock_operations().remove(&self.operation_id);
    }
}

impl Service {
    /// A service over `store`, running agents with `runner`.
    /// Streams are kept in this process's memory.
    pub fn new(store: Store, runner: Runner, options: ServiceOptions) -> Arc<Self> {
        let memory = Arc::new(InMemoryStreamLog::new(options.streams));
        Self::build(store, runner, options, Arc::clone(&memory) as Arc<dyn StreamLog>, Some(memory))
    }

    /// A service whose streams are kept in `log` (Redis, for several
    /// instances).
    pub fn with_stream_log(
        store: Store,
        runner: Runner,
        options: ServiceOptions,
        log: Arc<dyn StreamLog>,
    ) -> Arc<Self> {
        Self::build(store, runner, options, log, None)
    }

    fn build(
        store: Store,
        runner: Runner,
        options: ServiceOptions,
        streams: Arc<dyn StreamLog>,
        memory_log: Option<Arc<InMemoryStreamLog>>,
    ) -> Arc<Self> {
        Arc::new(Service {
            store,
            runner,
            streams,
            memory_log,
            tasks: TaskTracker::new(),
            operations: Mutex::new(HashMap::new()),
            stopping: CancellationToken::new(),
            options,
            background: Mutex::new(Vec::new()),
        })
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.options.instance_id
    }

    /// The options the service runs with.
    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock_operations(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.operations.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // --- Agents -----------------------------------------------------------

    /// Creates an agent.
    pub async fn create_agent(&self, framework: Framework, fields: AgentFields) -> ServiceResult<AgentRecord> {
        Ok(self.store.guarded(self.store.create_agent(framework, fields)).await?)
    }

    /// Reads an agent.
    pub async fn get_agent(&self, id: &str) -> ServiceResult<AgentRecord> {
        self.store.guarded(self.store.get_agent(id)).await?.ok_or_else(|| Failure::agent_not_found(id))
    }

    /// Reads a page of agents.
    pub async fn list_agents(&self, page: u32, limit: u32, status: Option<AgentStatus>) -> ServiceResult<AgentPage> {
        Ok(self.store.guarded(self.store.list_agents(page, limit, status)).await?)
    }

    /// Replaces an agent's settings.
    pub async fn update_agent(&self, id: &str, fields: AgentFields) -> ServiceResult<AgentRecord> {
        self.store.guarded(self.store.update_agent(id, fields)).await?.ok_or_else(|| Failure::agent_not_found(id))
    }

    /// Deletes an agent, stopping its open operations.
    pub async fn delete_agent(&self, id: &str) -> ServiceResult<()> {
        match self.store.guarded(self.store.delete_agent(id)).await? {
            DeleteOutcome::NotFound => Err(Failure::agent_not_found(id)),
            DeleteOutcome::Deleted { cancelled_operations } => {
                let operations = self.lock_operations();
                for operation in cancelled_operations {
                    if let Some(token) = operations.get(&operation) {
                        token.cancel();
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether an agent can be invoked now.
    pub async fn agent_health(&self, id: &str) -> ServiceResult<AgentHealth> {
        let agent = self.get_agent(id).await?;
        let healthy = agent.status == AgentStatus::Deployed && {
            let runner = self.runner.clone();
            let program = Program::from(&agent);
            // The check touches the file system.
            tokio::task::spawn_blocking(move || runner.is_available(&program)).await.unwrap_or(false)
        };
        Ok(AgentHealth { agent, healthy, checked_at: now_rfc3339() })
    }

    // --- Operations -------------------------------------------------------

    /// Reads an operation.
    pub async fn get_operation(&self, id: &str) -> ServiceResult<OperationRecord> {
        self.store.guarded(self.store.get_operation(id)).await?.ok_or_else(|| Failure::operation_not_found(id))
    }

    /// Cancels a pending or running operation, stopping its work.
    pub async fn cancel_operation(&self, id: &str) -> ServiceResult<OperationRecord> {
        match self.store.guarded(self.store.cancel_operation(id)).await? {
            CancelOutcome::NotFound => Err(Failure::operation_not_found(id)),
            CancelOutcome::AlreadyFinished(operation) => Err(Failure::new(
                409,
                "CONFLICT",
                format!("Operation {id} has already finished (status {}).", operation.status),
                json!({
                    "field": "operation_id",
                    "reason": "already_finished",
                    "operation_status": operation.status.as_str(),
                }),
            )),
            CancelOutcome::Cancelled(operation) => {
                if let Some(token) = self.lock_operations().get(id) {
                    token.cancel();
                }
                Ok(operation)
            }
        }
    }

    /// Registers an open operation's token; the registration ends with the
    /// task that holds it.
    fn register(self: &Arc<Self>, operation_id: &str) -> (CancellationToken, Registration) {
        let token = self.stopping.child_token();
        self.lock_operations().insert(operation_id.to_owned(), token.clone());
        let registration = Registration { service: Arc::clone(self), operation_id: operation_id.to_owned() };
        (token, registration)
    }

    /// Starts deploying an agent; the deployment runs in the background,
    /// leased to this instance.
    pub async fn deploy(
        self: &Arc<Self>,
        agent_id: &str,
        principal_id: Option<String>,
    ) -> ServiceResult<OperationRecord> {
        let started = self
            .store
            .guarded(self.store.start_deploy(agent_id, principal_id, self.instance_id(), self.options.lease_ms()))
            .await?;
        let (operation, agent) = match started {
            DeployStart::NotFound => return Err(Failure::agent_not_found(agent_id)),
            DeployStart::InProgress => {
                return Err(Failure::new(
                    409,
                    "CONFLICT",
                    format!("A deployment of agent {agent_id} is already in progress."),
                    json!({
                        "field": "agent_id",
                        "reason": "deployment_in_progress",
                        "agent_status": "deploying",
                    }),
                ));
            }
            DeployStart::Started { operation, agent } => (operation, *agent),
        };
        self.spawn_job(ClaimedJob { operation: operation.clone(), agent, request: None, attempts: 1 });
        Ok(operation)
    }

    /// Runs a job this instance holds the lease of, on a task of its own,
    /// renewing the lease while it runs. The work stops when the job is
    /// cancelled (here, or on another instance: see
    /// [`Service::notice_cancel`] and the renewal), when the lease is lost,
    /// or at shutdown.
    fn spawn_job(self: &Arc<Self>, job: ClaimedJob) {
        let (token, registration) = self.register(&job.operation.id);
        let service = Arc::clone(self);
        self.tasks.spawn(async move {
            let _registration = registration;
            let id = job.operation.id.clone();
            let lease_lost = CancellationToken::new();
            let work = async {
                let recorded = match job.operation.kind {
                    OperationKind::Deploy => service.run_deploy(&id, &job.agent, &token, &lease_lost).await,
                    OperationKind::Invoke => {
                        let input = InvokeInput::from_json(job.request.as_ref().unwrap_or(&Value::Null));
                        service.run_invoke(&id, &job.agent, &input, &token, &lease_lost).await
                    }
                };
                if let Err(error) = recorded {
                    tracing::error!(%error, operation_id = id, "an operation failed to record");
                }
            };
            tokio::select! {
                () = work => {}
                () = service.keep_lease(&id, &token, &lease_lost) => {}
            }
        });
    }

    /// Renews the lease of job `id` every third of the lease, forever (the
    /// caller stops polling it when the work ends). When the job turns out
    /// to be cancelled, finished or taken over, or the lease could not be
    /// renewed for a whole lease period (the database was unreachable, so
    /// another instance may have taken the job over), the work is stopped.
    async fn keep_lease(&self, id: &str, token: &CancellationToken, lease_lost: &CancellationToken) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.options.renew_every()).await;
            match self.store.renew_lease(id, self.instance_id(), self.options.lease_ms()).await {
                Ok(LeaseState::Held) => renewed = Instant::now(),
                Ok(LeaseState::Lost) => {
                    // Cancelled (then the work records nothing that sticks)
                    // or taken over (then it must record nothing at all).
                    let cancelled = matches!(
                        self.store.get_operation(id).await,
                        Ok(Some(operation)) if operation.status == store::OperationStatus::Cancelled
                    );
                    if !cancelled {
                        lease_lost.cancel();
                    }
                    token.cancel();
                    return std::future::pending().await;
                }
                Err(error) => {
                    tracing::warn!(%error, operation_id = id, "could not renew a job's lease");
                    if renewed.elapsed() >= self.options.lease {
                        lease_lost.cancel();
                        token.cancel();
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    fn stopped(&self, lease_lost: &CancellationToken) -> Stopped {
        if lease_lost.is_cancelled() {
            Stopped::LeaseLost
        } else if self.stopping.is_cancelled() {
            Stopped::Shutdown
        } else {
            Stopped::Cancelled
        }
    }

    async fn run_deploy(
        &self,
        operation_id: &str,
        agent: &AgentRecord,
        token: &CancellationToken,
        lease_lost: &CancellationToken,
    ) -> Result<(), StoreError> {
        if !self.store.mark_running(operation_id, self.instance_id()).await? {
            return Ok(());
        }
        // `config.deploy_delay_ms` makes a deployment slow enough to watch,
        // cancel or interrupt.
        let delay = agent.config.get("deploy_delay_ms").and_then(Value::as_u64).unwrap_or(0).min(MAX_DEPLOY_DELAY_MS);
        let check = async {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            match agent.framework {
                Framework::Echo => Ok(()),
                Framework::Command => {
                    let runner = self.runner.clone();
                    let entrypoint = agent.entrypoint.clone();
                    tokio::task::spawn_blocking(move || runner.check_entrypoint(entrypoint.as_deref()).map(drop))
                        .await
                        .unwrap_or_else(|e| {
                            Err(crate::runner::EntrypointError {
                                reason: "check_failed",
                                message: format!("The entrypoint could not be checked: {e}."),
                            })
                        })
                }
            }
        };
        let outcome = tokio::select! {
            checked = check => match checked {
                Ok(()) => Outcome::Succeeded(json!({
                    "agent_id": agent.id,
                    "status": "deployed",
                    "deployed_at": now_rfc3339(),
                })),
                Err(error) => Outcome::Failed(json!({
                    "code": "AGENT_ERROR",
                    "message": error.message,
                    "details": {"field": "entrypoint", "reason": error.reason},
                })),
            },
            () = token.cancelled() => match self.stopped(lease_lost) {
                // A user's cancel already recorded `cancelled`, and this
                // finish will not overwrite it.
                Stopped::Cancelled => Outcome::Failed(store::interrupted_error()),
                // A deployment can run again from the start: another
                // instance (or this one's next start) takes it over.
                Stopped::Shutdown => {
                    self.store.release_job(operation_id, self.instance_id()).await?;
                    return Ok(());
                }
                Stopped::LeaseLost => return Ok(()),
            },
        };
        self.store.finish_operation(operation_id, self.instance_id(), outcome, None).await?;
        Ok(())
    }

    async fn run_invoke(
        &self,
        operation_id: &str,
        agent: &AgentRecord,
        input: &InvokeInput,
        token: &CancellationToken,
        lease_lost: &CancellationToken,
    ) -> Result<(), StoreError> {
        if !self.store.mark_running(operation_id, self.instance_id()).await? {
            return Ok(());
        }
        let run = self.runner.run(&Program::from(agent), &input.run_request(), token).await;
        let (outcome, metrics) = match &run {
            Ok(output) => (
                Outcome::Succeeded(invoke_result_json(output)),
                Some((output.execution_time, i64::try_from(output.tokens_used).unwrap_or(i64::MAX))),
            ),
            Err(RunError::Cancelled) => match self.stopped(lease_lost) {
                // Cancelled by the user: already recorded, and this does not
                // overwrite it. Cancelled at shutdown: say so; the program
                // may have had side effects, so it is not run again.
                Stopped::Cancelled | Stopped::Shutdown => (Outcome::Failed(store::interrupted_error()), None),
                Stopped::LeaseLost => return Ok(()),
            },
            Err(error) => (Outcome::Failed(error.to_api_error("")), None),
        };
        self.store.finish_operation(operation_id, self.instance_id(), outcome, metrics).await?;
        Ok(())
    }

    /// Stops the work of operation `id` if this instance runs it: another
    /// instance cancelled it (a PostgreSQL notification).
    pub fn notice_cancel(&self, id: &str) {
        if let Some(token) = self.lock_operations().get(id) {
            tracing::info!(operation_id = id, "cancelled on another instance; stopping its work");
            token.cancel();
        }
    }

    /// Whether this instance is running operation `id` now.
    pub fn is_running_here(&self, id: &str) -> bool {
        self.lock_operations().contains_key(id)
    }

    // --- Invocations ------------------------------------------------------

    /// The agent `agent_id`, if it may be invoked.
    async fn invocable(&self, agent_id: &str) -> ServiceResult<AgentRecord> {
        let agent = self.get_agent(agent_id).await?;
        if agent.status != AgentStatus::Deployed {
            return Err(Failure::not_deployed(agent_id, agent.status));
        }
        Ok(agent)
    }

    /// Runs an invocation on a task of its own and records it; cancelling
    /// `token` (or dropping the returned future, whose guard cancels it)
    /// stops the run and records it cancelled.
    async fn run_recorded(
        self: &Arc<Self>,
        agent: &AgentRecord,
        principal_id: Option<String>,
        mode: InvocationMode,
        input: &InvokeInput,
        field_prefix: String,
    ) -> BatchOutcome {
        let invocation_id =
            self.store.guarded(self.store.start_invocation(&agent.id, principal_id, mode, input.to_json())).await?;
        let token = self.stopping.child_token();
        let guard = token.clone().drop_guard();
        let service = Arc::clone(self);
        let program = Program::from(agent);
        let request = input.run_request();
        let task = self.tasks.spawn(async move {
            let run = service.runner.run(&program, &request, &token).await;
            service.record_run(&invocation_id, &run, &field_prefix).await;
            run.map_err(|e| Failure::from_run(&e, &field_prefix))
        });
        let outcome = task.await.map_err(Failure::internal)?;
        guard.disarm();
        outcome
    }

    /// Records how an invocation ended; a failure to record is logged, not
    /// reported (the caller has its answer).
    async fn record_run(&self, invocation_id: &str, run: &Result<RunOutput, RunError>, field_prefix: &str) {
        let (outcome, metrics) = match run {
            Err(RunError::Cancelled) => {
                if let Err(error) = self.store.cancel_invocation(invocation_id).await {
                    tracing::error!(%error, invocation_id, "could not record an invocation");
                }
                return;
            }
            Ok(output) => (
                Outcome::Succeeded(invoke_result_json(output)),
                Some((output.execution_time, i64::try_from(output.tokens_used).unwrap_or(i64::MAX))),
            ),
            Err(error) => (Outcome::Failed(error.to_api_error(field_prefix)), None),
        };
        if let Err(error) = self.store.finish_invocation(invocation_id, outcome, metrics).await {
            tracing::error!(%error, invocation_id, "could not record an invocation");
        }
    }

    /// Runs an agent and waits for its answer.
    pub async fn invoke(
        self: &Arc<Self>,
        agent_id: &str,
        principal_id: Option<String>,
        input: InvokeInput,
    ) -> ServiceResult<RunOutput> {
        let agent = self.invocable(agent_id).await?;
        self.run_recorded(&agent, principal_id, InvocationMode::Sync, &input, String::new()).await
    }

    /// Starts an invocation in the background, as an operation leased to
    /// this instance.
    pub async fn invoke_async(
        self: &Arc<Self>,
        agent_id: &str,
        principal_id: Option<String>,
        input: InvokeInput,
    ) -> ServiceResult<OperationRecord> {
        let request = input.to_json();
        let start = self.store.start_invoke(
            agent_id,
            principal_id,
            request.clone(),
            self.instance_id(),
            self.options.lease_ms(),
        );
        let started = self.store.guarded(start).await?;
        let (operation, agent) = match started {
            InvokeStart::NotFound => return Err(Failure::agent_not_found(agent_id)),
            InvokeStart::NotDeployed(status) => {
                return Err(Failure::not_deployed(agent_id, status));
            }
            InvokeStart::Started { operation, agent, .. } => (operation, *agent),
        };
        self.spawn_job(ClaimedJob { operation: operation.clone(), agent, request: Some(request), attempts: 1 });
        Ok(operation)
    }

    /// Runs up to 100 invocations, a few at a time, and answers one outcome
    /// per item in request order. Items asking for `async` are refused one
    /// by one; the agent must exist and be deployed before any item runs.
    pub async fn batch(
        self: &Arc<Self>,
        agent_id: &str,
        principal_id: Option<String>,
        items: Vec<InvokeInput>,
    ) -> ServiceResult<Vec<BatchOutcome>> {
        let agent = self.invocable(agent_id).await?;
        let agent = &agent;
        let principal_id = &principal_id;
        let outcomes = futures::stream::iter(items.into_iter().enumerate())
            .map(|(index, item)| async move {
                if item.run_async {
                    return Err(Failure::new(
                        400,
                        "INVALID_INPUT",
                        "Batch items always run synchronously; remove \"async\": true.",
                        json!({"field": format!("batch[{index}].async"), "reason": "not_allowed"}),
                    ));
                }
                self.run_recorded(agent, principal_id.clone(), InvocationMode::Batch, &item, format!("batch[{index}]."))
                    .await
            })
            // `buffered` runs a bounded number at once and yields in order.
            .buffered(self.options.batch_concurrency.max(1))
            .collect()
            .await;
        Ok(outcomes)
    }

    // --- Streams ------------------------------------------------------------

    /// Starts a streamed invocation and returns its events from the first.
    /// The run is independent of the connection: a client that drops it
    /// can resume from the stream log (on any instance sharing it) while
    /// the agent goes on.
    pub async fn stream(
        self: &Arc<Self>,
        agent_id: &str,
        principal_id: &str,
        input: InvokeInput,
    ) -> ServiceResult<EventStream> {
        let agent = self.invocable(agent_id).await?;
        let stream_id = crate::ids::new_id("str_");
        let key = crate::streams::log_key(principal_id, agent_id, &stream_id);
        // The first event creates the stream in the log; a log that cannot
        // take it refuses the request before anything runs.
        let start = StreamEvent::Start {
            stream_id: stream_id.clone(),
            agent_id: agent_id.to_owned(),
            created_at: now_rfc3339(),
        };
        self.streams
            .append(&key, 0, crate::streams::encode(&start))
            .await
            .map_err(|e| Failure::from_stream_log(None, e))?;
        // Subscribed before the run is recorded, so that a log that fails
        // here leaves no invocation behind that never ends.
        let events = crate::streams::follow(Arc::clone(&self.streams), key.clone(), stream_id, None)
            .await
            .map_err(|e| Failure::from_stream_log(None, e))?;
        let invocation_id = match self
            .store
            .start_invocation(agent_id, Some(principal_id.to_owned()), InvocationMode::Stream, input.to_json())
            .await
        {
            Ok(id) => id,
            Err(error) => {
                // Readers already subscribed see the stream end.
                let last = StreamEvent::Error {
                    code: "INTERNAL_ERROR",
                    message: "The invocation could not be recorded.".to_owned(),
                };
                if crate::streams::append_patiently(&*self.streams, &key, 1, &last).await {
                    crate::streams::close_patiently(&*self.streams, &key).await;
                }
                return Err(error.into());
            }
        };
        let service = Arc::clone(self);
        let token = self.stopping.child_token();
        let program = Program::from(&agent);
        let request = input.run_request();
        let (sender, writer) = crate::streams::spawn_writer(Arc::clone(&self.streams), key, 1);
        self.tasks.spawn(async move {
            let mut index = 0;
            let mut on_chunk = |text: String| {
                let _ = sender.send(StreamEvent::Chunk { index, text });
                index += 1;
            };
            let run = service.runner.run_streaming(&program, &request, &token, &mut on_chunk).await;
            let _ = sender.send(match &run {
                Ok(output) => StreamEvent::Done(output.clone()),
                Err(RunError::Cancelled) => StreamEvent::Error {
                    code: "INTERNAL_ERROR",
                    message: "The server stopped before the agent finished.".to_owned(),
                },
                Err(error) => StreamEvent::Error { code: error.code(), message: error.to_string() },
            });
            drop(sender);
            if let Err(error) = writer.await {
                tracing::error!(%error, "a stream's writer failed");
            }
            service.record_run(&invocation_id, &run, "").await;
        });
        Ok(events)
    }

    /// Resumes a stream after the event `last_event_id`, for the caller and
    /// agent that started it (another caller's stream is as unknown as a
    /// missing one).
    pub async fn resume(&self, agent_id: &str, principal_id: &str, last_event_id: &str) -> ServiceResult<EventStream> {
        let (stream_id, seq) = crate::streams::parse_event_id(last_event_id)
            .ok_or_else(|| Failure::stream_not_found(last_event_id, ResumeError::Malformed))?;
        let key = crate::streams::log_key(principal_id, agent_id, stream_id);
        crate::streams::follow(Arc::clone(&self.streams), key, stream_id.to_owned(), Some(seq))
            .await
            .map_err(|e| Failure::from_stream_log(Some(last_event_id), e))
    }

    /// Drops expired streams from an in-memory log (run it now and then);
    /// returns how many went.
    pub fn sweep_streams(&self) -> usize {
        self.memory_log.as_ref().map_or(0, |log| log.sweep())
    }

    // --- Instances ------------------------------------------------------------

    /// Starts the instance's own loops: every third of the lease it renews
    /// its heartbeat, takes over jobs whose lease ran out (running again
    /// those that may run again, failing the others with a reason) and
    /// releases the idempotency reservations of dead instances; on
    /// PostgreSQL it also listens for cancels made on other instances. The
    /// first pass runs at once, so work a dead instance left is picked up
    /// at startup.
    pub fn start_background(self: &Arc<Self>) {
        let service = Arc::clone(self);
        let maintain = tokio::spawn(async move {
            let mut tick = tokio::time::interval(service.options.renew_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_cleanup = Instant::now();
            loop {
                tick.tick().await;
                let maintained = service.maintain_once().await;
                service.store.note(&maintained);
                if let Err(error) = maintained {
                    tracing::warn!(%error, "instance maintenance failed; retrying at the next tick");
                }
                if last_cleanup.elapsed() >= CLEANUP_EVERY {
                    last_cleanup = Instant::now();
                    let now = crate::time::unix_millis(std::time::SystemTime::now());
                    if let Err(error) = service.store.delete_expired_idempotency(now).await {
                        tracing::warn!(%error, "could not drop expired idempotency records");
                    }
                }
            }
        });
        let mut background = self.background.lock().unwrap_or_else(PoisonError::into_inner);
        background.push(maintain);
        if let store::DbLocation::Postgres(url) = self.store.location() {
            let service = Arc::clone(self);
            let url = url.clone();
            background.push(tokio::spawn(async move { service.listen_for_cancels(&url).await }));
        }
    }

    /// One pass of the instance's maintenance: heartbeat, takeovers,
    /// orphaned reservations.
    pub async fn maintain_once(self: &Arc<Self>) -> Result<(), StoreError> {
        if self.stopping.is_cancelled() || self.tasks.is_closed() {
            return Ok(());
        }
        let lease_ms = self.options.lease_ms();
        self.store.heartbeat(self.instance_id(), lease_ms).await?;
        loop {
            let reaped = self.store.reap_expired(self.instance_id(), lease_ms, TAKEOVER_BATCH).await?;
            let more = reaped.retried.len() + reaped.failed.len() == usize::try_from(TAKEOVER_BATCH).unwrap_or(0);
            for job in reaped.retried {
                self.spawn_job(job);
            }
            if !more {
                break;
            }
        }
        let released = self.store.release_orphaned_reservations().await?;
        if released > 0 {
            tracing::warn!(released, "released idempotency reservations of instances that are gone");
        }
        Ok(())
    }

    /// Listens (PostgreSQL `LISTEN`) for operations cancelled on any
    /// instance and stops those running here. The connection is made
    /// again when it drops; a cancel missed meanwhile is still noticed at
    /// the job's next lease renewal.
    async fn listen_for_cancels(&self, url: &str) {
        loop {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect(url).await?;
                listener.listen(store::CANCEL_CHANNEL).await?;
                loop {
                    // `recv` reconnects by itself after a lost connection.
                    let notification = listener.recv().await?;
                    self.notice_cancel(notification.payload());
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            if let Err(error) = listener.await {
                tracing::warn!(%error, "lost the cancel notifications; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    // --- Shutdown -----------------------------------------------------------

    /// Lets background work finish for up to `grace`, then stops what is
    /// left (killing its programs), ends every stream, and settles this
    /// instance's open jobs (invocations fail, deployments are handed back
    /// for another instance to run), so that nothing is left half-recorded
    /// or waiting for a lease to run out.
    pub async fn shutdown(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            tracing::warn!(open = self.tasks.len(), "background work did not finish in time; stopping it");
            self.stopping.cancel();
            // Cancelled runs record themselves in moments.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
        }
        for task in self.background.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            task.abort();
        }
        match self.store.settle_own_jobs(self.instance_id()).await {
            Ok((failed, released)) if failed + released > 0 => {
                tracing::warn!(failed, released, "settled unfinished operations")
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "could not settle unfinished operations"),
        }
        if let Err(error) = self.store.deregister_instance(self.instance_id()).await {
            tracing::error!(%error, "could not deregister the instance");
        }
    }
}

/// The longest `config.deploy_delay_ms` honoured (an hour).
const MAX_DEPLOY_DELAY_MS: u64 = 3_600_000;

/// How many expired jobs one transaction takes over.
const TAKEOVER_BATCH: i64 = 16;

/// How often expired idempotency records are dropped.
const CLEANUP_EVERY: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests;
