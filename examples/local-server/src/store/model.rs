//! The records the store keeps, and the small enums stored as text.

use serde_json::Value;

/// Declares an enum stored as a lowercase word, with `as_str` and `parse`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $text, "`")] $variant),+
        }

        impl $name {
            /// The word stored in the database and used by the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The value named by `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// An API key's rate-limit tier.
    Tier { Free => "free", Pro => "pro", Enterprise => "enterprise" }
}

text_enum! {
    /// How an agent runs.
    Framework { Echo => "echo", Command => "command" }
}

text_enum! {
    /// An agent's lifecycle status.
    AgentStatus { Created => "created", Deploying => "deploying", Deployed => "deployed", Failed => "failed" }
}

text_enum! {
    /// What an operation does.
    OperationKind { Deploy => "deploy", Invoke => "invoke" }
}

text_enum! {
    /// An operation's status; the last three are final.
    OperationStatus {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// How an invocation was asked for.
    InvocationMode { Sync => "sync", Async => "async", Stream => "stream", Batch => "batch" }
}

impl OperationStatus {
    /// Whether the status is final (`succeeded`, `failed`, `cancelled`).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A stored API key (the key itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// `key_...`: the principal id used for rate limits and idempotency.
    pub id: String,
    /// The key's tier.
    pub tier: Tier,
    /// Where the key came from (`dev`, `cli`).
    pub label: String,
    /// When the key was stored.
    pub created_at: String,
}

/// An agent as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    /// `agt_...`.
    pub id: String,
    /// The agent's name.
    pub name: String,
    /// What the agent does, if anything.
    pub description: Option<String>,
    /// How it runs.
    pub framework: Framework,
    /// A `command` agent's program, relative to the agents directory.
    pub entrypoint: Option<String>,
    /// Free-form configuration (a JSON object).
    pub config: Value,
    /// Labels.
    pub tags: Vec<String>,
    /// Lifecycle status.
    pub status: AgentStatus,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// The fields of a new agent, or of an agent's replacement settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFields {
    /// The agent's name.
    pub name: String,
    /// What the agent does, if anything.
    pub description: Option<String>,
    /// A `command` agent's program.
    pub entrypoint: Option<String>,
    /// Free-form configuration (a JSON object).
    pub config: Value,
    /// Labels.
    pub tags: Vec<String>,
}

/// An asynchronous operation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    /// `op_...`.
    pub id: String,
    /// Deploy or invoke.
    pub kind: OperationKind,
    /// Where it is.
    pub status: OperationStatus,
    /// The agent it is about.
    pub agent_id: String,
    /// The outcome once succeeded (a DeploymentResult or an InvokeResult).
    pub result: Option<Value>,
    /// The reason once failed (an ApiError).
    pub error: Option<Value>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// How an operation or invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It succeeded with this result document.
    Succeeded(Value),
    /// It failed with this error document (an ApiError).
    Failed(Value),
}

/// An invocation as stored: one run of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// `inv_...`.
    pub id: String,
    /// The agent that ran.
    pub agent_id: String,
    /// The async operation that ran it, if any.
    pub operation_id: Option<String>,
    /// The caller's key id.
    pub principal_id: Option<String>,
    /// How it was asked for.
    pub mode: InvocationMode,
    /// The request (query, parameters, session id) as JSON.
    pub request: Value,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// The InvokeResult, once succeeded.
    pub result: Option<Value>,
    /// The ApiError, once failed.
    pub error: Option<Value>,
    /// Seconds the agent ran.
    pub execution_time: Option<f64>,
    /// Tokens the agent reported.
    pub tokens_used: Option<i64>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: Option<String>,
}

/// A stored response to replay for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The fingerprint of the request that produced it.
    pub fingerprint: String,
    /// When it was stored, in Unix milliseconds.
    pub created_at_ms: i64,
}

/// What the store found when a request with an idempotency key arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyStart {
    /// The key was free (or expired) and is now reserved: run the request.
    Started,
    /// A response is stored for the same request.
    Replay(IdempotentResponse),
    /// The key was used for another request.
    Mismatch,
    /// The first request with the key is still running.
    InProgress,
}
