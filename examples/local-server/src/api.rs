//! The generated server trait, implemented over the [`Service`].
//!
//! Requests arrive parsed and validated; each method turns its input into a
//! service call and the outcome into the generated response type. Response
//! bodies are written as JSON documents shaped like the spec's schemas and
//! then read into the generated types, which keeps this file independent of
//! how the generator spells optional and nullable fields, and checks every
//! body against the generated types on the way out.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http::StatusCode;
use runagent_server::types::{self, ErrorCode, ErrorDetails};
use runagent_server::{
    ApiFailure, BatchInvokeParams, BatchInvokeResponse, CancelOperationParams, CancelOperationResponse,
    CreateAgentParams, CreateAgentResponse, DeleteAgentParams, DeleteAgentResponse, DeployAgentParams,
    DeployAgentResponse, EventStream, GetAgentHealthParams, GetAgentHealthResponse, GetAgentParams, GetAgentResponse,
    GetAgentStatusParams, GetAgentStatusResponse, GetHealthParams, GetHealthResponse, GetOperationParams,
    GetOperationResponse, GetUsageParams, GetUsageResponse, InvokeAgentParams, InvokeAgentResponse, ListAgentsParams,
    ListAgentsResponse, RequestContext, RunAgentApi, SseItem, StreamAgentEvent, StreamAgentGetEvent,
    StreamAgentGetParams, StreamAgentGetResponse, StreamAgentParams, StreamAgentResponse, UpdateAgentParams,
    UpdateAgentResponse,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::service::{self, Failure, InvokeInput, Service, invoke_result_json};
use crate::store::{AgentFields, AgentRecord, AgentStatus, Framework, OperationRecord};

/// How often a quiet stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay suggested to clients in the `start` event.
const RETRY: Duration = Duration::from_secs(3);

/// The API over a service.
#[derive(Debug, Clone)]
pub struct LocalApi {
    service: Arc<Service>,
    /// The path prefix the routes are mounted under, for `check_url`s.
    prefix: String,
}

impl LocalApi {
    /// The API over `service`, mounted under `prefix` (`/v1`).
    pub fn new(service: Arc<Service>, prefix: impl Into<String>) -> Self {
        LocalApi { service, prefix: prefix.into().trim_end_matches('/').to_owned() }
    }

    fn check_url(&self, operation_id: &str) -> String {
        format!("{}/operations/{operation_id}", self.prefix)
    }

    fn operation_json(&self, operation: &OperationRecord) -> Value {
        let mut data = json!({
            "operation_id": operation.id,
            "kind": operation.kind.as_str(),
            "status": operation.status.as_str(),
            "check_url": self.check_url(&operation.id),
            "agent_id": operation.agent_id,
            "created_at": operation.created_at,
            "updated_at": operation.updated_at,
        });
        if let Some(result) = &operation.result {
            data["result"] = result.clone();
        }
        if let Some(error) = &operation.error {
            data["error"] = error.clone();
        }
        data
    }

    fn accepted(&self, operation: &OperationRecord) -> Result<types::OperationAccepted, ApiFailure> {
        typed(json!({
            "operation_id": operation.id,
            "status": operation.status.as_str(),
            "check_url": self.check_url(&operation.id),
        }))
    }
}

/// Reads a JSON document into a generated type; a mismatch is a bug of
/// this server, answered `500`.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiFailure> {
    serde_json::from_value(value).map_err(|error| {
        tracing::error!(%error, "a response body does not fit its schema");
        ApiFailure::internal("The server built a response that does not fit the API schema.")
    })
}

/// Writes a generated type as a JSON document.
fn untyped<T: serde::Serialize>(value: &T) -> Result<Value, ApiFailure> {
    serde_json::to_value(value).map_err(|error| {
        tracing::error!(%error, "a request body did not serialize");
        ApiFailure::internal("The server could not read its own request type.")
    })
}

/// A success envelope around `data`.
fn success<T: DeserializeOwned>(data: Value) -> Result<T, ApiFailure> {
    typed(json!({"status": "success", "data": data}))
}

/// The service's failure as the generated error.
fn failure(failure: Failure) -> ApiFailure {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code: ErrorCode = serde_json::from_value(json!(failure.code)).unwrap_or(ErrorCode::InternalError);
    let mut api = ApiFailure::new(status, code, failure.message);
    if let Some(details) = failure.details.and_then(|d| serde_json::from_value::<ErrorDetails>(d).ok()) {
        api = api.with_details(details);
    }
    if let Some(seconds) = failure.retry_after {
        api = api.with_header(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    api
}

fn agent_json(agent: &AgentRecord) -> Value {
    json!({
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "framework": agent.framework.as_str(),
        "entrypoint": agent.entrypoint,
        "config": agent.config,
        "tags": agent.tags,
        "status": agent.status.as_str(),
        "created_at": agent.created_at,
        "updated_at": agent.updated_at,
    })
}

/// Reads a generated enum (serialized as its spec word) into a store enum.
fn word<T: serde::Serialize, U>(value: &T, parse: impl Fn(&str) -> Option<U>) -> Result<U, ApiFailure> {
    untyped(value)?
        .as_str()
        .and_then(parse)
        .ok_or_else(|| ApiFailure::internal("The server met an enum value it does not know."))
}

/// The caller's key id; every secured operation has one.
fn principal_id(ctx: &RequestContext) -> Result<String, ApiFailure> {
    ctx.principal
        .as_ref()
        .map(|p| p.id.clone())
        .ok_or_else(|| ApiFailure::internal("A secured operation ran without a principal."))
}

/// An `InvokeRequest` as the service's input.
fn invoke_input(body: &types::InvokeRequest) -> Result<InvokeInput, ApiFailure> {
    let parameters = match body.parameters.as_ref().map(untyped).transpose()? {
        Some(Value::Object(map)) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    };
    Ok(InvokeInput {
        query: body.query.clone(),
        parameters,
        session_id: body.session_id.clone(),
        run_async: body.async_.unwrap_or(false),
    })
}

/// The mutable fields of an agent from a create or update body, as JSON.
fn agent_fields(body: &Value) -> AgentFields {
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    AgentFields {
        name: text("name").unwrap_or_default(),
        description: text("description"),
        entrypoint: text("entrypoint"),
        config: body.get("config").filter(|c| c.is_object()).cloned().unwrap_or_else(|| json!({})),
        tags: body
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    }
}

fn health_json(health: &service::AgentHealth) -> Value {
    json!({
        "agent_id": health.agent.id,
        "status": health.agent.status.as_str(),
        "healthy": health.healthy,
        "checked_at": health.checked_at,
    })
}

/// The four payloads of a stream event, as the generated types.
enum Payload {
    Start(types::StreamStart),
    Chunk(types::StreamChunk),
    Done(types::StreamDone),
    Error(types::StreamError),
}

fn payload(event: service::StreamEvent) -> Result<Payload, ApiFailure> {
    Ok(match event {
        service::StreamEvent::Start { stream_id, agent_id, created_at } => Payload::Start(typed(json!({
            "stream_id": stream_id,
            "agent_id": agent_id,
            "created_at": created_at,
        }))?),
        service::StreamEvent::Chunk { index, text } => Payload::Chunk(typed(json!({"index": index, "text": text}))?),
        service::StreamEvent::Done(output) => Payload::Done(typed(invoke_result_json(&output))?),
        service::StreamEvent::Error { code, message } => {
            Payload::Error(typed(json!({"code": code, "message": message}))?)
        }
    })
}

/// The SSE response of a stream, with `E` one of the two generated event
/// enums (they have the same variants).
fn event_stream<E: runagent_server::SseEventData + Send + 'static>(
    events: service::EventStream,
    wrap: fn(Payload) -> E,
) -> EventStream<E> {
    let items = events.filter_map(move |(id, event)| async move {
        let is_start = matches!(event, service::StreamEvent::Start { .. });
        match payload(event) {
            Ok(payload) => {
                let item = SseItem::new(id, wrap(payload));
                Some(if is_start { item.with_retry(RETRY) } else { item })
            }
            Err(error) => {
                tracing::error!(%error, "dropped a stream event that does not fit its schema");
                None
            }
        }
    });
    EventStream::new(items).keep_alive(KEEP_ALIVE)
}

fn post_event(payload: Payload) -> StreamAgentEvent {
    match payload {
        Payload::Start(data) => StreamAgentEvent::Start(data),
        Payload::Chunk(data) => StreamAgentEvent::Chunk(data),
        Payload::Done(data) => StreamAgentEvent::Done(data),
        Payload::Error(data) => StreamAgentEvent::Error(data),
    }
}

fn get_event(payload: Payload) -> StreamAgentGetEvent {
    match payload {
        Payload::Start(data) => StreamAgentGetEvent::Start(data),
        Payload::Chunk(data) => StreamAgentGetEvent::Chunk(data),
        Payload::Done(data) => StreamAgentGetEvent::Done(data),
        Payload::Error(data) => StreamAgentGetEvent::Error(data),
    }
}

impl LocalApi {
    /// A new stream, or a resumed one when `Last-Event-ID` is set (then the
    /// query is not run again).
    async fn open_stream(
        &self,
        ctx: &RequestContext,
        agent_id: &str,
        last_event_id: Option<&str>,
        input: InvokeInput,
    ) -> Result<service::EventStream, ApiFailure> {
        let principal = principal_id(ctx)?;
        match last_event_id {
            Some(last) => self.service.resume(agent_id, &principal, last).await,
            None => self.service.stream(agent_id, &principal, input).await,
        }
        .map_err(failure)
    }
}

impl RunAgentApi for LocalApi {
    async fn list_agents(
        &self,
        _ctx: RequestContext,
        params: ListAgentsParams,
    ) -> Result<ListAgentsResponse, ApiFailure> {
        let status = params.status.as_ref().map(|s| word(s, AgentStatus::parse)).transpose()?;
        // The router validated page >= 1 and limit in 1..=100.
        let page = u32::try_from(params.page).unwrap_or(1).max(1);
        let limit = u32::try_from(params.limit).unwrap_or(20).clamp(1, 100);
        let found = self.service.list_agents(page, limit, status).await.map_err(failure)?;
        let pages = (found.total + i64::from(limit) - 1) / i64::from(limit);
        Ok(ListAgentsResponse::Ok(typed(json!({
            "status": "success",
            "data": found.agents.iter().map(agent_json).collect::<Vec<_>>(),
            "pagination": {"page": page, "limit": limit, "total": found.total, "pages": pages},
        }))?))
    }

    async fn create_agent(
        &self,
        _ctx: RequestContext,
        _params: CreateAgentParams,
        body: types::CreateAgentRequest,
    ) -> Result<CreateAgentResponse, ApiFailure> {
        let framework = word(&body.framework, Framework::parse)?;
        let fields = agent_fields(&untyped(&body)?);
        let agent = self.service.create_agent(framework, fields).await.map_err(failure)?;
        Ok(CreateAgentResponse::Created(success(agent_json(&agent))?))
    }

    async fn get_agent(&self, _ctx: RequestContext, params: GetAgentParams) -> Result<GetAgentResponse, ApiFailure> {
        let agent = self.service.get_agent(&params.agent_id).await.map_err(failure)?;
        Ok(GetAgentResponse::Ok(success(agent_json(&agent))?))
    }

    async fn update_agent(
        &self,
        _ctx: RequestContext,
        params: UpdateAgentParams,
        body: types::UpdateAgentRequest,
    ) -> Result<UpdateAgentResponse, ApiFailure> {
        let fields = agent_fields(&untyped(&body)?);
        let agent = self.service.update_agent(&params.agent_id, fields).await.map_err(failure)?;
        Ok(UpdateAgentResponse::Ok(success(agent_json(&agent))?))
    }

    async fn delete_agent(
        &self,
        _ctx: RequestContext,
        params: DeleteAgentParams,
    ) -> Result<DeleteAgentResponse, ApiFailure> {
        self.service.delete_agent(&params.agent_id).await.map_err(failure)?;
        Ok(DeleteAgentResponse::Ok(success(json!({"id": params.agent_id, "deleted": true}))?))
    }

    async fn batch_invoke(
        &self,
        ctx: RequestContext,
        params: BatchInvokeParams,
        body: types::BatchRequest,
    ) -> Result<BatchInvokeResponse, ApiFailure> {
        let items = body.batch.iter().map(invoke_input).collect::<Result<Vec<_>, _>>()?;
        let outcomes = self.service.batch(&params.agent_id, Some(principal_id(&ctx)?), items).await.map_err(failure)?;
        let data: Vec<Value> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(output) => json!({"status": "success", "data": invoke_result_json(output)}),
                Err(error) => json!({"status": "error", "error": error.to_api_error()}),
            })
            .collect();
        Ok(BatchInvokeResponse::Ok(success(Value::Array(data))?))
    }

    async fn deploy_agent(
        &self,
        ctx: RequestContext,
        params: DeployAgentParams,
    ) -> Result<DeployAgentResponse, ApiFailure> {
        let operation = self.service.deploy(&params.agent_id, Some(principal_id(&ctx)?)).await.map_err(failure)?;
        Ok(DeployAgentResponse::Accepted(self.accepted(&operation)?))
    }

    async fn get_agent_health(
        &self,
        _ctx: RequestContext,
        params: GetAgentHealthParams,
    ) -> Result<GetAgentHealthResponse, ApiFailure> {
        let health = self.service.agent_health(&params.agent_id).await.map_err(failure)?;
        Ok(GetAgentHealthResponse::Ok(success(health_json(&health))?))
    }

    async fn invoke_agent(
        &self,
        ctx: RequestContext,
        params: InvokeAgentParams,
        body: types::InvokeRequest,
    ) -> Result<InvokeAgentResponse, ApiFailure> {
        let input = invoke_input(&body)?;
        let principal = Some(principal_id(&ctx)?);
        if input.run_async {
            let operation = self.service.invoke_async(&params.agent_id, principal, input).await.map_err(failure)?;
            return Ok(InvokeAgentResponse::Accepted(self.accepted(&operation)?));
        }
        let output = self.service.invoke(&params.agent_id, principal, input).await.map_err(failure)?;
        Ok(InvokeAgentResponse::Ok(success(invoke_result_json(&output))?))
    }

    #[allow(deprecated)]
    async fn get_agent_status(
        &self,
        _ctx: RequestContext,
        params: GetAgentStatusParams,
    ) -> Result<GetAgentStatusResponse, ApiFailure> {
        let health = self.service.agent_health(&params.agent_id).await.map_err(failure)?;
        // The router's deprecation layer writes `Deprecation` and `Sunset`.
        Ok(GetAgentStatusResponse::Ok(success(health_json(&health))?))
    }

    async fn stream_agent_get(
        &self,
        ctx: RequestContext,
        params: StreamAgentGetParams,
    ) -> Result<StreamAgentGetResponse, ApiFailure> {
        let input = InvokeInput {
            query: params.query.clone(),
            session_id: params.session_id.clone(),
            ..InvokeInput::default()
        };
        let events = self.open_stream(&ctx, &params.agent_id, params.last_event_id.as_deref(), input).await?;
        Ok(StreamAgentGetResponse::Ok(event_stream(events, get_event)))
    }

    async fn stream_agent(
        &self,
        ctx: RequestContext,
        params: StreamAgentParams,
        body: types::InvokeRequest,
    ) -> Result<StreamAgentResponse, ApiFailure> {
        let input = invoke_input(&body)?;
        let events = self.open_stream(&ctx, &params.agent_id, params.last_event_id.as_deref(), input).await?;
        Ok(StreamAgentResponse::Ok(event_stream(events, post_event)))
    }

    async fn get_health(
        &self,
        _ctx: RequestContext,
        _params: GetHealthParams,
    ) -> Result<GetHealthResponse, ApiFailure> {
        Ok(GetHealthResponse::Ok(success(json!({
            "healthy": true,
            "version": env!("CARGO_PKG_VERSION"),
        }))?))
    }

    async fn get_operation(
        &self,
        _ctx: RequestContext,
        params: GetOperationParams,
    ) -> Result<GetOperationResponse, ApiFailure> {
        let operation = self.service.get_operation(&params.operation_id).await.map_err(failure)?;
        Ok(GetOperationResponse::Ok(success(self.operation_json(&operation))?))
    }

    async fn cancel_operation(
        &self,
        _ctx: RequestContext,
        params: CancelOperationParams,
    ) -> Result<CancelOperationResponse, ApiFailure> {
        let operation = self.service.cancel_operation(&params.operation_id).await.map_err(failure)?;
        Ok(CancelOperationResponse::Ok(success(self.operation_json(&operation))?))
    }

    async fn get_usage(&self, ctx: RequestContext, _params: GetUsageParams) -> Result<GetUsageResponse, ApiFailure> {
        // The rate-limit layer counted this request and left the window's
        // state here: the same numbers as the X-RateLimit-* headers.
        let usage = ctx.rate_limit.ok_or_else(|| ApiFailure::internal("The rate-limit state is missing."))?;
        Ok(GetUsageResponse::Ok(success(json!({
            "tier": usage.tier.as_str(),
            "limit": usage.limit,
            "used": usage.used,
            "remaining": usage.remaining,
            "reset": usage.reset,
            "window_seconds": usage.window_seconds,
        }))?))
    }
}
