//! Handles on long-running operations: polling, waiting and cancelling.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use http::Method;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::client::{Client, RequestOptions};
use crate::error::Error;
use crate::model::ApiModel;
use crate::response::{ApiResponse, ResponseMeta};
use crate::retry::server_retry_after;

/// How an API runs long-running operations: a `202 Accepted` body naming
/// one, and an operation (or the accepted body's check URL) that fetches
/// its record. The generator implements it when the spec has them.
pub trait LongRunning: ApiModel {
    /// The `202 Accepted` body.
    type Accepted: DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The body of the answer that carries a record.
    type PollBody: DeserializeOwned + Send + 'static;

    /// The operation's id, from the accepted body.
    fn accepted_id(accepted: &Self::Accepted) -> &str;

    /// Where to poll the operation, if the accepted body says.
    fn check_url(accepted: &Self::Accepted) -> Option<&str>;

    /// Fetches the operation by id (the spec's operation for it).
    fn poll(
        client: &Client<Self>,
        id: &str,
    ) -> impl Future<Output = Result<ApiResponse<Self::PollBody>, Error<Self>>> + Send;

    /// The record in a poll's body.
    fn into_record(body: Self::PollBody) -> Self::Operation;

    /// Where the operation stands.
    fn state(operation: &Self::Operation) -> OperationState;
}

/// An API whose long-running operations can be cancelled.
pub trait CancelOperation: LongRunning {
    /// Asks for the operation to be cancelled (the spec's operation for it).
    fn cancel(
        client: &Client<Self>,
        id: &str,
    ) -> impl Future<Output = Result<ApiResponse<Self::PollBody>, Error<Self>>> + Send;
}

/// Where a long-running operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationState {
    /// Not finished: waiting keeps polling. Statuses a client does not know
    /// count as this.
    Running,
    /// Finished with success.
    Succeeded,
    /// Finished with a failure.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// How `OperationHandle::wait_with` polls.
///
/// Polls start `initial_interval` apart and the interval doubles after each
/// poll up to `max_interval`; a `Retry-After` header on a poll's response
/// sets the next delay instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct WaitOptions {
    /// How long to wait in total before giving up with
    /// `Error::WaitTimeout`; `None` waits as long as the operation runs.
    /// Default `None`.
    pub timeout: Option<Duration>,
    /// The delay after the first poll. Default 250 ms.
    pub initial_interval: Duration,
    /// The longest delay between polls. Default 5 s.
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self { timeout: None, initial_interval: Duration::from_millis(250), max_interval: Duration::from_secs(5) }
    }
}

impl WaitOptions {
    /// The defaults: no deadline, polls from 250 ms up to 5 s apart.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives up after `timeout` in total.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the delay after the first poll.
    pub fn initial_interval(mut self, interval: Duration) -> Self {
        self.initial_interval = interval;
        self
    }

    /// Sets the longest delay between polls.
    pub fn max_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }
}

/// A long-running operation the API accepted (a `202 Accepted` answer);
/// the generated crate names it `OperationHandle`.
pub struct OperationHandle<M: LongRunning> {
    client: Client<M>,
    accepted: M::Accepted,
    meta: ResponseMeta,
}

impl<M: LongRunning> Clone for OperationHandle<M> {
    fn clone(&self) -> Self {
        Self { client: self.client.clone(), accepted: self.accepted.clone(), meta: self.meta.clone() }
    }
}

impl<M: LongRunning> fmt::Debug for OperationHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationHandle")
            .field("client", &self.client)
            .field("accepted", &self.accepted)
            .field("meta", &self.meta)
            .finish()
    }
}

impl<M: LongRunning> OperationHandle<M> {
    /// Wraps an accepted operation.
    // Called by the generated operations that answer 202.
    #[allow(dead_code)]
    pub(crate) fn new(client: Client<M>, accepted: M::Accepted, meta: ResponseMeta) -> Self {
        Self { client, accepted, meta }
    }

    /// The operation's id.
    pub fn id(&self) -> &str {
        M::accepted_id(&self.accepted)
    }

    /// Where the operation is polled, e.g. `/v1/operations/op_123abc`;
    /// empty when the API sent none (it is then fetched by id).
    pub fn check_url(&self) -> &str {
        M::check_url(&self.accepted).unwrap_or_default()
    }

    /// The `202 Accepted` body.
    pub fn accepted(&self) -> &M::Accepted {
        &self.accepted
    }

    /// The metadata of the `202 Accepted` response.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// Fetches the operation once.
    pub async fn status(&self) -> Result<M::Operation, Error<M>> {
        Ok(M::into_record(self.poll().await?.body))
    }

    /// Polls until the operation finishes: `Ok` when it succeeded,
    /// `Error::OperationFailed` or `Error::OperationCancelled` otherwise.
    /// Waits without a deadline; see `OperationHandle::wait_with`.
    pub async fn wait(&self) -> Result<M::Operation, Error<M>> {
        self.wait_with(WaitOptions::default()).await
    }

    /// Polls as `options` say until the operation finishes or the timeout
    /// passes (`Error::WaitTimeout`). A poll that fails after the client's
    /// retries ends the wait with that error.
    pub async fn wait_with(&self, options: WaitOptions) -> Result<M::Operation, Error<M>> {
        let deadline = options.timeout.map(|timeout| Instant::now() + timeout);
        let timed_out = || Error::WaitTimeout { operation_id: self.id().to_owned() };
        let max_hint = self.client.retry_policy().max_retry_after;
        let mut interval = options.initial_interval;
        loop {
            let response = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, self.poll()).await.map_err(|_| timed_out())??,
                None => self.poll().await?,
            };
            let hint = server_retry_after(response.meta.status, &response.meta.headers, SystemTime::now());
            let operation = M::into_record(response.body);
            match M::state(&operation) {
                OperationState::Succeeded => return Ok(operation),
                OperationState::Failed => return Err(Error::OperationFailed(Box::new(operation))),
                OperationState::Cancelled => return Err(Error::OperationCancelled(Box::new(operation))),
                // Pending, running, and states this client does not know yet
                // (which an API only adds as non-final ones) keep polling.
                OperationState::Running => {}
            }
            let delay = hint.map_or(interval, |hint| hint.min(max_hint));
            tracing::info!(
                operation_id = self.id(),
                status = response.meta.status.as_u16(),
                delay_ms = delay.as_millis() as u64,
                "the operation is still running; polling again"
            );
            match deadline {
                Some(deadline) if Instant::now() + delay >= deadline => {
                    tokio::time::sleep_until(deadline).await;
                    return Err(timed_out());
                }
                _ => tokio::time::sleep(delay).await,
            }
            interval = interval.saturating_mul(2).min(options.max_interval);
        }
    }

    /// One GET of the check URL (or, if the API sent none, of the operation
    /// by id).
    async fn poll(&self) -> Result<ApiResponse<M::PollBody>, Error<M>> {
        match M::check_url(&self.accepted).filter(|url| !url.is_empty()) {
            Some(url) => self.client.execute_url(Method::GET, url, &RequestOptions::default()).await?.json(),
            None => M::poll(&self.client, self.id()).await,
        }
    }
}

impl<M: CancelOperation> OperationHandle<M> {
    /// Asks the API to cancel the operation and returns it as it is then.
    pub async fn cancel(&self) -> Result<M::Operation, Error<M>> {
        Ok(M::into_record(M::cancel(&self.client, self.id()).await?.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_server::{TestServer, json};
    use crate::testing::{ErrorCode, Model, OperationAccepted, OperationStatus};

    type OperationHandle = super::OperationHandle<Model>;

    fn operation(status: &str) -> String {
        let error = if status == "failed" { r#","error":{"code":"AGENT_ERROR","message":"boom"}"# } else { "" };
        format!(
            r#"{{"status":"success","data":{{"operation_id":"op_1","kind":"deploy","status":"{status}","check_url":"/v1/operations/op_1","agent_id":"agt_1","created_at":"2025-01-15T10:30:05Z","updated_at":"2025-01-15T10:30:06Z"{error}}}}}"#
        )
    }

    fn handle(server: &TestServer) -> OperationHandle {
        let accepted: OperationAccepted = serde_json::from_value(serde_json::json!({
            "operation_id": "op_1",
            "status": "pending",
            "check_url": "/v1/operations/op_1",
        }))
        .unwrap();
        let meta = ResponseMeta::from_parts(http::StatusCode::ACCEPTED, http::HeaderMap::new());
        OperationHandle::new(server.client(), accepted, meta)
    }

    fn fast() -> WaitOptions {
        WaitOptions::new().initial_interval(Duration::from_millis(10)).max_interval(Duration::from_millis(20))
    }

    #[test]
    fn wait_options_defaults() {
        let options = WaitOptions::default();
        assert_eq!(options.timeout, None);
        assert_eq!(options.initial_interval, Duration::from_millis(250));
        assert_eq!(options.max_interval, Duration::from_secs(5));
        assert_eq!(WaitOptions::new().timeout(Duration::from_secs(1)).timeout, Some(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn accessors() {
        let server = TestServer::start(Vec::new());
        let handle = handle(&server);
        assert_eq!(handle.id(), "op_1");
        assert_eq!(handle.check_url(), "/v1/operations/op_1");
        assert_eq!(handle.accepted().status, OperationStatus::Pending);
        assert_eq!(handle.meta().status, http::StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn wait_polls_until_succeeded() {
        let server = TestServer::start(vec![
            json(200, &[], &operation("pending")),
            json(200, &[], &operation("running")),
            json(200, &[], &operation("succeeded")),
        ]);
        let done = handle(&server).wait_with(fast()).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded);
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| r.method == "GET" && r.target == "/v1/operations/op_1"));
    }

    #[tokio::test]
    async fn wait_reports_failure() {
        let server =
            TestServer::start(vec![json(200, &[], &operation("running")), json(200, &[], &operation("failed"))]);
        let err = handle(&server).wait_with(fast()).await.unwrap_err();
        assert!(matches!(err, Error::OperationFailed(_)), "{err:?}");
        assert_eq!(err.code(), Some(&ErrorCode::AgentError));
        assert_eq!(err.operation().unwrap().operation_id, "op_1");
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[tokio::test]
    async fn wait_reports_cancellation() {
        let server = TestServer::start(vec![json(200, &[], &operation("cancelled"))]);
        let err = handle(&server).wait_with(fast()).await.unwrap_err();
        assert!(matches!(err, Error::OperationCancelled(_)), "{err:?}");
    }

    #[tokio::test]
    async fn wait_gives_up_at_the_deadline() {
        let server =
            TestServer::start(vec![json(200, &[], &operation("running")), json(200, &[], &operation("running"))]);
        let options =
            WaitOptions::new().initial_interval(Duration::from_millis(50)).timeout(Duration::from_millis(150));
        let started = std::time::Instant::now();
        let err = handle(&server).wait_with(options).await.unwrap_err();
        assert!(matches!(&err, Error::WaitTimeout { operation_id } if operation_id == "op_1"), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn wait_honours_retry_after() {
        let server = TestServer::start(vec![
            json(200, &[("Retry-After", "1")], &operation("running")),
            json(200, &[], &operation("succeeded")),
        ]);
        handle(&server).wait_with(fast()).await.unwrap();
        let requests = server.requests();
        let waited = requests[1].at - requests[0].at;
        assert!(waited >= Duration::from_millis(990), "polled again after {waited:?}");
    }

    #[tokio::test]
    async fn a_failed_poll_ends_the_wait() {
        let server = TestServer::start(vec![json(
            404,
            &[],
            r#"{"status":"error","error":{"code":"NOT_FOUND","message":"gone"}}"#,
        )]);
        let err = handle(&server).wait_with(fast()).await.unwrap_err();
        assert_eq!(err.code(), Some(&ErrorCode::NotFound));
    }

    #[tokio::test]
    async fn status_polls_once() {
        let server = TestServer::start(vec![json(200, &[], &operation("running"))]);
        let op = handle(&server).status().await.unwrap();
        assert_eq!(op.status, OperationStatus::Running);
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn cancel_posts_to_the_cancel_endpoint() {
        let server = TestServer::start(vec![json(200, &[], &operation("cancelled"))]);
        let op = handle(&server).cancel().await.unwrap();
        assert_eq!(op.status, OperationStatus::Cancelled);
        let request = &server.requests()[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/v1/operations/op_1/cancel");
        assert!(request.header("idempotency-key").is_some());
    }
}
