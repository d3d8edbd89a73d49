//! The generator's own model of an API, between parsing and emitting.
//!
//! Everything here is already resolved: no `$ref`s, names sanitized and
//! deduplicated, maps sorted. The emitters read only these types and never
//! see openapiv3's, which is what lets the front end change (OpenAPI 3.1,
//! say) without touching them.

use serde_json::Value;
use std::collections::BTreeMap;

/// A whole API.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
    /// `info.description`, Markdown.
    pub description: Option<String>,
    /// The servers, in spec order.
    pub servers: Vec<Server>,
    /// The tags, in spec order, plus any used by operations but not declared.
    pub tags: Vec<Tag>,
    /// Every named type, keyed by its Rust name.
    pub types: BTreeMap<String, TypeDef>,
    /// Every operation, in spec order (paths, then methods in a fixed order).
    pub operations: Vec<Operation>,
    /// The security schemes, keyed by their spec name.
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// The conventions the spec follows, found once after lowering and read
    /// by every emitter (none of them re-derives one).
    pub conventions: Conventions,
    /// Requests the API sends to its users' servers on its own (OpenAPI 3.1
    /// `webhooks`, by name): documented and typed, with no client method.
    pub webhooks: Vec<Callback>,
    /// What the spec's Markdown prose says that the docs need as data, read
    /// once after lowering so that no emitter parses Markdown.
    pub prose: Prose,
}

/// What the spec's prose says, as data (see `lower/prose.rs`). Only what is
/// written in Markdown lives here; what the spec's shape says is in
/// [`Conventions`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prose {
    /// The text of `info.description` before its first top-level heading
    /// (Markdown, trimmed; empty when there is none).
    pub preamble: String,
    /// The top-level (`#` or `##`) sections of `info.description`, in order.
    pub sections: Vec<ProseSection>,
    /// What the prose says about each code of the error convention's code
    /// enum, in enum order; empty when the envelope's code is a plain string
    /// or there is no envelope.
    pub error_codes: Vec<ErrorCodeProse>,
}

/// One top-level section of `info.description`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProseSection {
    /// The heading's text, without its `#`s.
    pub heading: String,
    /// The Markdown under the heading, its own headings as written.
    pub body: String,
    /// What the section is about, judged by its heading; each topic goes to
    /// the first section about it only.
    pub topic: Option<ProseTopic>,
}

/// A subject an API overview covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProseTopic {
    /// Credentials.
    Authentication,
    /// The bodies every response is wrapped in.
    Envelopes,
    /// Error codes and the error envelope.
    Errors,
    /// Rate limits and their headers.
    RateLimits,
    /// Paged lists.
    Pagination,
    /// Idempotency keys.
    Idempotency,
    /// Long-running operations.
    LongRunning,
    /// Server-Sent Events.
    Streaming,
    /// Batch operations.
    Batch,
    /// Versions and deprecation.
    Versioning,
}

impl ProseTopic {
    /// Every topic, in the order an overview presents them.
    pub const ALL: [ProseTopic; 10] = [
        ProseTopic::Authentication,
        ProseTopic::Envelopes,
        ProseTopic::Errors,
        ProseTopic::RateLimits,
        ProseTopic::Pagination,
        ProseTopic::Idempotency,
        ProseTopic::LongRunning,
        ProseTopic::Streaming,
        ProseTopic::Batch,
        ProseTopic::Versioning,
    ];
}

/// What the prose says about one error code.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorCodeProse {
    /// The code on the wire.
    pub code: String,
    /// The HTTP statuses it comes with, as written (`404`, `4XX`): from a
    /// Markdown table's status column, else the statuses the error
    /// convention maps to it and those of responses whose description names
    /// it in backticks.
    pub statuses: Vec<String>,
    /// Its meaning, from a Markdown table row (one line of Markdown).
    pub meaning: Option<String>,
    /// Whether the section of `info.description` about errors names it (in
    /// backticks) already, so a table of codes would repeat it.
    pub in_overview: bool,
}

/// The conventions an API follows beyond plain OpenAPI, each found by the
/// shape of the spec where possible (see `lower/conventions.rs`) and each
/// carrying the JSON pointer that proves it. A convention the spec does not
/// follow is `None`, and the features built on it degrade: no envelope
/// gives a generic error, no operation endpoints no `wait()`, no rate-limit
/// headers no rate limiting.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conventions {
    /// The error envelope answered with every failure.
    pub error: Option<ErrorConvention>,
    /// Long-running operations: a 202 handle, polled and cancelled through
    /// operations of the API.
    pub long_running: Option<LongRunning>,
    /// `X-RateLimit-Limit`/`-Remaining`/`-Reset` response headers.
    pub rate_limit: Option<Evidence>,
    /// A request-id response header (e.g. `X-Request-Id`).
    pub request_id: Option<Evidence>,
    /// An idempotency-key request header (e.g. `Idempotency-Key`).
    pub idempotency_key: Option<Evidence>,
    /// An HTTP bearer security scheme.
    pub bearer: Option<Evidence>,
}

/// A convention's wire name and where the spec shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The name on the wire (a header name) or in the spec (a scheme name).
    pub name: String,
    /// A JSON pointer to where the spec declares it.
    pub pointer: String,
}

/// The error envelope: the body every error response shares, with a code
/// and a message, maybe nested one level (`{"error": {"code", "message"}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorConvention {
    /// The envelope type's pointer (the schema used by the most error responses).
    pub pointer: String,
    /// The envelope's Rust type name.
    pub envelope: String,
    /// Rust field names from the envelope to the error object; empty when
    /// the code and message are fields of the envelope itself.
    pub error_path: Vec<String>,
    /// The Rust type name of the object holding code and message.
    pub error_type: String,
    /// The Rust name of the code field (required, a string or string enum).
    pub code_field: String,
    /// The code's enum type (Rust name), or `None` when the code is a plain string.
    pub code_enum: Option<String>,
    /// The Rust name of the message field (a required string).
    pub message_field: String,
    /// The optional details object beside code and message.
    pub details: Option<ErrorDetails>,
    /// Required fields of the envelope or the error object that can hold
    /// one value only (a single-value enum such as `status: error`), so a
    /// server can build the envelope.
    pub constants: Vec<EnvelopeConstant>,
    /// The code each HTTP status implies, for bodies that are not the
    /// envelope and for a server's own rejections: from the error
    /// responses' examples first, then from a code named after the status's
    /// reason phrase (`404` → `NOT_FOUND`). Values are the codes' wire names.
    pub status_codes: BTreeMap<u16, String>,
}

/// The details object of an error.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetails {
    /// The Rust name of the details field in the error object.
    pub field: String,
    /// Whether the field is required.
    pub required: bool,
    /// Whether the field is nullable.
    pub nullable: bool,
    /// The details' Rust type name.
    pub type_name: String,
    /// The Rust name of an optional string field naming the culprit (`field`).
    pub field_field: Option<String>,
    /// The Rust name of an optional string field with a short reason (`reason`).
    pub reason_field: Option<String>,
    /// Whether the details keep other properties (`additionalProperties`).
    pub open: bool,
}

/// A required field with one possible value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeConstant {
    /// The Rust type holding the field.
    pub owner: String,
    /// The field's Rust name.
    pub field: String,
    /// The field's enum type (Rust name).
    pub enum_type: String,
    /// The enum's only variant (Rust name).
    pub variant: String,
}

/// Long-running operations: a `202 Accepted` body naming an operation,
/// an operation that fetches it by id, and maybe one that cancels it.
#[derive(Debug, Clone, PartialEq)]
pub struct LongRunning {
    /// The accepted body type's pointer.
    pub pointer: String,
    /// The `202` body's Rust type name.
    pub accepted: String,
    /// The Rust name of the id field in the accepted body.
    pub id_field: String,
    /// The Rust name of the accepted body's poll-URL field, if any (`check_url`).
    pub check_url_field: Option<String>,
    /// The Rust method name of the operation that fetches one operation.
    pub poll: String,
    /// That operation's success body type (Rust name).
    pub poll_body: String,
    /// Rust field names from the poll body to the operation record; empty
    /// when the body is the record.
    pub record_path: Vec<String>,
    /// The record's Rust type name.
    pub record: String,
    /// The Rust name of the record's status field.
    pub status_field: String,
    /// The status enum's Rust type name.
    pub status_enum: String,
    /// The status variant that means success (Rust name).
    pub succeeded: String,
    /// The status variant that means failure, if any.
    pub failed: Option<String>,
    /// The status variant that means cancelled, if any.
    pub cancelled: Option<String>,
    /// The record field holding the error convention's error object, if any.
    pub error_field: Option<RecordError>,
    /// The Rust method name of the operation that cancels one, if any.
    pub cancel: Option<String>,
}

/// The field of an operation record that holds its error.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// Its Rust name.
    pub field: String,
    /// Whether it is required.
    pub required: bool,
    /// Whether it is nullable.
    pub nullable: bool,
}

/// A server URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// The URL, e.g. `https://api.run-agent.ai/v1`.
    pub url: String,
    /// What the server is for.
    pub description: Option<String>,
}

/// A tag grouping operations.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// The tag as written in the spec.
    pub name: String,
    /// A sanitized snake-case name, for file names and anchors.
    pub slug: String,
    /// What the group is about.
    pub description: Option<String>,
}

/// How a request proves who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum SecurityScheme {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The scheme's description.
        description: Option<String>,
        /// `bearerFormat`: a hint such as `JWT`.
        format: Option<String>,
    },
    /// `Authorization: Basic <base64 of user:password>`.
    Basic {
        /// The scheme's description.
        description: Option<String>,
    },
    /// A key in a header, a query parameter or a cookie.
    ApiKey {
        /// The scheme's description.
        description: Option<String>,
        /// Where the key goes.
        location: ApiKeyLocation,
        /// The header, parameter or cookie name.
        name: String,
    },
    /// OAuth 2: a bearer access token got from one of the flows.
    OAuth2 {
        /// The scheme's description.
        description: Option<String>,
        /// The flows, in a fixed order (implicit, password, client
        /// credentials, authorization code).
        flows: Vec<OAuthFlow>,
    },
    /// OpenID Connect: a bearer token from the provider at `url`.
    OpenIdConnect {
        /// The scheme's description.
        description: Option<String>,
        /// The discovery URL.
        url: String,
    },
}

impl SecurityScheme {
    /// The scheme's description.
    pub fn description(&self) -> Option<&str> {
        match self {
            SecurityScheme::Bearer { description, .. }
            | SecurityScheme::Basic { description }
            | SecurityScheme::ApiKey { description, .. }
            | SecurityScheme::OAuth2 { description, .. }
            | SecurityScheme::OpenIdConnect { description, .. } => description.as_deref(),
        }
    }

    /// Whether the credential is sent as `Authorization: Bearer <token>`
    /// (HTTP bearer, OAuth 2 and OpenID Connect all are).
    pub fn is_bearer_token(&self) -> bool {
        matches!(
            self,
            SecurityScheme::Bearer { .. } | SecurityScheme::OAuth2 { .. } | SecurityScheme::OpenIdConnect { .. }
        )
    }
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
    /// A cookie.
    Cookie,
}

/// One OAuth 2 flow.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthFlow {
    /// `implicit`, `password`, `clientCredentials` or `authorizationCode`.
    pub kind: String,
    /// Where the user authorizes (implicit and authorization code).
    pub authorization_url: Option<String>,
    /// Where tokens are got (every flow but implicit).
    pub token_url: Option<String>,
    /// Where tokens are refreshed.
    pub refresh_url: Option<String>,
    /// Scope names and what they allow, in spec order.
    pub scopes: Vec<(String, String)>,
}

/// One way to satisfy an operation's security: every scheme listed (by its
/// spec name, with the scopes it needs) together. An empty requirement
/// means no credentials are needed.
pub type SecurityRequirement = Vec<(String, Vec<String>)>;

/// A named type from `components/schemas`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// The Rust name (UpperCamelCase, unique).
    pub name: String,
    /// The schema's name in the spec.
    pub api_name: String,
    /// Where it is defined, as a JSON pointer.
    pub pointer: String,
    /// The schema's description.
    pub description: Option<String>,
    /// The schema's example, if any.
    pub example: Option<Value>,
    /// Whether `null` is a valid value wherever this type is used.
    pub nullable: bool,
    /// What kind of type it is.
    pub kind: TypeKind,
}

/// The shape of a named type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    /// An object with named properties.
    Struct(StructType),
    /// A string enumeration.
    Enum(EnumType),
    /// A value that matches exactly one of several named types.
    OneOf(OneOfType),
    /// A name for another shape (an array, a string with constraints...).
    Alias(Shape),
}

/// An object type.
#[derive(Debug, Clone, PartialEq)]
pub struct StructType {
    /// The properties, in spec order.
    pub fields: Vec<Field>,
    /// `additionalProperties`: `None` when false, so unknown fields are
    /// rejected; otherwise the shape of the extra values, kept in a map.
    pub additional: Option<Shape>,
    /// Whether `additionalProperties: false` was written, so unknown fields
    /// are an error rather than ignored.
    pub deny_unknown: bool,
}

/// One property of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The Rust field name.
    pub name: String,
    /// The property name on the wire.
    pub api_name: String,
    /// The property's description.
    pub description: Option<String>,
    /// Its shape.
    pub shape: Shape,
    /// Listed in `required`.
    pub required: bool,
    /// `null` is allowed (the property's schema or its named type is nullable).
    pub nullable: bool,
    /// The default value, if the spec gives one.
    pub default: Option<Value>,
    /// An example value, if the spec gives one.
    pub example: Option<Value>,
    /// Marked deprecated.
    pub deprecated: bool,
    /// Whether the field must be boxed because its type contains this one.
    pub boxed: bool,
}

/// A string enumeration.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumType {
    /// The variants, in spec order.
    pub variants: Vec<EnumVariant>,
}

/// One enum value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumVariant {
    /// The Rust variant name.
    pub name: String,
    /// The value on the wire.
    pub api_name: String,
}

/// A `oneOf` (or `anyOf`) of named types; inline alternatives got names
/// of their own while lowering.
#[derive(Debug, Clone, PartialEq)]
pub struct OneOfType {
    /// The alternatives, tried in order.
    pub variants: Vec<OneOfVariant>,
    /// Written as `anyOf`: a value may match several alternatives, and the
    /// first that fits is used.
    pub any_of: bool,
    /// The property whose value names the alternative (`discriminator`);
    /// `None` decodes untagged, trying each alternative in order.
    pub discriminator: Option<Discriminator>,
}

/// A `discriminator`: the property that tells the alternatives apart and
/// which value names which alternative.
#[derive(Debug, Clone, PartialEq)]
pub struct Discriminator {
    /// The property's name on the wire.
    pub property: String,
    /// Each value and the Rust name of the variant it selects, in spec order:
    /// `mapping` first, then, for a `$ref` alternative no mapping names, the
    /// referenced schema's name (OpenAPI's implicit mapping) and the single
    /// value its schema allows the property, when that differs.
    pub mapping: Vec<(String, String)>,
}

/// One alternative of a `oneOf`.
#[derive(Debug, Clone, PartialEq)]
pub struct OneOfVariant {
    /// The Rust variant name.
    pub name: String,
    /// The named type (its Rust name).
    pub type_name: String,
}

/// An anonymous use of a type: a property, a parameter, an array item.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A named type (its Rust name).
    Named(String),
    /// A string.
    String(StringShape),
    /// An integer.
    Integer(IntegerShape),
    /// A floating-point number.
    Number(NumberShape),
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array(ArrayShape),
    /// An object with arbitrary keys, values of one shape.
    Map(Box<Shape>),
    /// Any JSON value (a schema with no type).
    Any,
    /// Raw bytes (`type: string, format: binary`): a file in a multipart
    /// body, text in JSON.
    Binary,
}

/// A string and its constraints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StringShape {
    /// `format`, if any (`date-time`, `uri`...). Informational only.
    pub format: Option<String>,
    /// `minLength`, in characters.
    pub min_length: Option<u64>,
    /// `maxLength`, in characters.
    pub max_length: Option<u64>,
    /// `pattern`, an ECMA regular expression.
    pub pattern: Option<String>,
}

/// An integer and its constraints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntegerShape {
    /// `format: int32` gives `i32`; everything else `i64`.
    pub int32: bool,
    /// `minimum` (already adjusted for `exclusiveMinimum`).
    pub minimum: Option<i64>,
    /// `maximum` (already adjusted for `exclusiveMaximum`).
    pub maximum: Option<i64>,
    /// `enum`: the values allowed, in spec order; empty when any is.
    pub allowed: Vec<i64>,
}

/// A number and its constraints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NumberShape {
    /// `minimum`.
    pub minimum: Option<f64>,
    /// Whether `minimum` itself is excluded.
    pub exclusive_minimum: bool,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// Whether `maximum` itself is excluded.
    pub exclusive_maximum: bool,
}

/// A list and its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayShape {
    /// The items.
    pub items: Box<Shape>,
    /// `minItems`.
    pub min_items: Option<u64>,
    /// `maxItems`.
    pub max_items: Option<u64>,
    /// `uniqueItems: true`.
    pub unique: bool,
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// GET
    Get,
    /// PUT
    Put,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
}

impl Method {
    /// The upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The operationId as written.
    pub id: String,
    /// The Rust method name (snake case, unique).
    pub name: String,
    /// A type-name prefix (UpperCamelCase, unique), e.g. `ListAgents`.
    pub type_prefix: String,
    /// Where it is defined.
    pub pointer: String,
    /// The HTTP method.
    pub method: Method,
    /// The path template as written, e.g. `/agents/{agent_id}`.
    pub path: String,
    /// The path split into literal text and parameters.
    pub segments: Vec<PathSegment>,
    /// The one-line summary.
    pub summary: Option<String>,
    /// The description, Markdown.
    pub description: Option<String>,
    /// Tags, in spec order.
    pub tags: Vec<String>,
    /// `deprecated: true`.
    pub deprecated: bool,
    /// `x-sunset`: the date after which a deprecated operation is removed.
    pub sunset: Option<String>,
    /// `x-deprecated-at`: the date the operation was deprecated, sent as the
    /// RFC 9745 `Deprecation` header.
    pub deprecated_at: Option<String>,
    /// The parameters: path first (in template order), then query, then
    /// header, each in spec order.
    pub parameters: Vec<Parameter>,
    /// The request body, if any.
    pub body: Option<RequestBody>,
    /// The responses, sorted by status (codes, then ranges, then default).
    pub responses: Vec<Response>,
    /// Whether the operation needs credentials (a non-empty security
    /// requirement applies).
    pub secured: bool,
    /// The security requirements that apply (the operation's or the
    /// document's), alternatives in spec order; an empty requirement among
    /// them makes credentials optional.
    pub security: Vec<SecurityRequirement>,
    /// Derived: this is a paged list.
    pub pagination: Option<Pagination>,
    /// Requests the API makes to the caller after this operation
    /// (`callbacks`): documented and typed, with no client method.
    pub callbacks: Vec<Callback>,
    /// The operation's `x-cli-*` extensions, by name without the prefix
    /// (`x-cli-command` is `command`), for the command-line emitter.
    pub cli_hints: BTreeMap<String, Value>,
}

/// A request the API sends to a URL the caller gave (an OpenAPI callback).
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// The callback's name in the spec (`onData`).
    pub name: String,
    /// The runtime expression of the URL (`{$request.query.callbackUrl}/data`).
    pub expression: String,
    /// The method the API uses.
    pub method: Method,
    /// Where it is defined.
    pub pointer: String,
    /// The one-line summary.
    pub summary: Option<String>,
    /// The description, Markdown.
    pub description: Option<String>,
    /// The body the API sends.
    pub body: Option<RequestBody>,
    /// The answers the API expects from the caller.
    pub responses: Vec<Response>,
}

impl Operation {
    /// The 2xx responses.
    pub fn successes(&self) -> impl Iterator<Item = &Response> {
        self.responses.iter().filter(|r| r.status.is_success())
    }

    /// The parameters in one location.
    pub fn params_in(&self, location: ParamLocation) -> impl Iterator<Item = &Parameter> {
        self.parameters.iter().filter(move |p| p.location == location)
    }

    /// Whether the (single) success response is an event stream.
    pub fn is_stream(&self) -> bool {
        self.event_stream().is_some()
    }

    /// The event stream a success response carries, if any.
    pub fn event_stream(&self) -> Option<&EventStream> {
        self.successes().find_map(|r| match &r.body {
            Some(ResponseBody::EventStream(s)) => Some(s),
            _ => None,
        })
    }
}

impl Api {
    /// The value shape of a free-form object (a map), looking through named
    /// aliases; `None` for any other shape.
    pub fn map_value<'s>(&'s self, shape: &'s Shape) -> Option<&'s Shape> {
        let mut shape = shape;
        for _ in 0..8 {
            match shape {
                Shape::Named(n) => match self.types.get(n).map(|t| &t.kind) {
                    Some(TypeKind::Alias(inner)) => shape = inner,
                    _ => return None,
                },
                Shape::Map(value) => return Some(value),
                _ => return None,
            }
        }
        None
    }
}

/// A piece of a path template.
#[derive(Debug, Clone, PartialEq)]
pub enum PathSegment {
    /// Literal text, e.g. `/agents/`.
    Literal(String),
    /// A parameter, by its `api_name`.
    Param(String),
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ParamLocation {
    /// In the path.
    Path,
    /// In the query string.
    Query,
    /// In a request header.
    Header,
}

impl ParamLocation {
    /// The OpenAPI name of the location.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
        }
    }
}

/// One parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The Rust name (snake case, unique within the operation).
    pub name: String,
    /// The name on the wire.
    pub api_name: String,
    /// Where it goes.
    pub location: ParamLocation,
    /// Whether it must be sent.
    pub required: bool,
    /// Its shape (a scalar, an enum, or an array of those for queries).
    pub shape: Shape,
    /// Its description.
    pub description: Option<String>,
    /// The schema's default.
    pub default: Option<Value>,
    /// An example value.
    pub example: Option<Value>,
    /// Marked deprecated.
    pub deprecated: bool,
    /// How an object-valued query parameter (a named struct of scalars) is
    /// spread over the query string; `None` for every other parameter.
    pub object_style: Option<ObjectStyle>,
}

/// How an object-valued query parameter is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStyle {
    /// `style: form`, `explode: true` (the default): one `key=value` pair
    /// per property, the parameter's own name unused.
    Form,
    /// `style: deepObject`: `name[key]=value`.
    DeepObject,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestBody {
    /// The media types the operation accepts, in spec order (at least one).
    /// The client sends the first unless told otherwise.
    pub contents: Vec<BodyContent>,
    /// With several media types, the name of the type (an enum, one
    /// variant per media type) that carries the body on both sides, e.g.
    /// `AddPetBody`; `None` with one.
    pub choice: Option<String>,
    /// Whether a body must be sent.
    pub required: bool,
    /// Its description.
    pub description: Option<String>,
}

impl RequestBody {
    /// The media type the client sends by default: the first.
    pub fn primary(&self) -> &BodyContent {
        &self.contents[0]
    }
}

/// One media type of a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyContent {
    /// The media type as written, e.g. `application/json`.
    pub media_type: String,
    /// How the value is written on the wire.
    pub encoding: Encoding,
    /// The value's shape: the schema's for JSON, form and multipart bodies;
    /// a string for text; [`Shape::Binary`] for bytes.
    pub shape: Shape,
    /// The variant of the body's enum when there are several media types
    /// (`Json`, `Form`, `Xml`...).
    pub variant: String,
    /// An example body.
    pub example: Option<Value>,
}

/// A media type's essence: lower case, without parameters
/// (`application/json; charset=utf-8` is `application/json`).
pub fn media_essence(media: &str) -> String {
    media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// How a body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON (`application/json`, `*+json`).
    Json,
    /// `application/x-www-form-urlencoded` fields of an object schema.
    Form,
    /// `multipart/form-data` parts of an object schema; binary properties
    /// are files.
    Multipart,
    /// Text as it is (`text/*`, XML).
    Text,
    /// Bytes as they are (`application/octet-stream`, images, anything
    /// else).
    Binary,
}

/// A response status key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusCode {
    /// One status, e.g. 200.
    Code(u16),
    /// A class, e.g. `4XX` is `Range(4)`.
    Range(u16),
    /// `default`.
    Default,
}

impl StatusCode {
    /// Whether this is a 2xx status or range.
    pub fn is_success(self) -> bool {
        match self {
            StatusCode::Code(c) => (200..300).contains(&c),
            StatusCode::Range(r) => r == 2,
            StatusCode::Default => false,
        }
    }

    /// The status as the spec writes it.
    pub fn as_spec(self) -> String {
        match self {
            StatusCode::Code(c) => c.to_string(),
            StatusCode::Range(r) => format!("{r}XX"),
            StatusCode::Default => "default".into(),
        }
    }
}

/// One documented response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The response's description.
    pub description: String,
    /// Documented headers, sorted by name.
    pub headers: Vec<Header>,
    /// The body, if any.
    pub body: Option<ResponseBody>,
    /// The operations this response leads to, in spec order (the order
    /// the author chose to present them).
    pub links: Vec<Link>,
}

/// An OpenAPI link: a value of this response that can be passed to another
/// operation. The target and its parameters were checked while lowering.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The link's name in the spec.
    pub name: String,
    /// The `operationId` of the operation it leads to.
    pub operation_id: String,
    /// Parameters of that operation (their `api_name`) and the runtime
    /// expressions or constants that fill them, in spec order.
    pub parameters: Vec<(String, serde_json::Value)>,
    /// What following the link is for.
    pub description: Option<String>,
}

/// A documented response header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The Rust name.
    pub name: String,
    /// The header name on the wire.
    pub api_name: String,
    /// What it carries.
    pub description: Option<String>,
    /// Its shape.
    pub shape: Shape,
    /// Whether it is always present.
    pub required: bool,
}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    /// `application/json` (or `*+json`): of several media types, the one
    /// the client asks for.
    Json {
        /// Its shape.
        shape: Shape,
        /// An example body.
        example: Option<Value>,
    },
    /// `text/event-stream`.
    EventStream(EventStream),
    /// Text as it is (`text/*`, XML), when the response offers no JSON.
    Text {
        /// The media type the client asks for and the server sends.
        media_type: String,
    },
    /// Bytes as they are (`application/octet-stream`, images...), when the
    /// response offers neither JSON nor text.
    Binary {
        /// The media type the client asks for and the server sends.
        media_type: String,
    },
}

/// A Server-Sent Events stream and its typed events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventStream {
    /// The schema of one parsed event (`{event, id, data, retry}`).
    pub frame: Shape,
    /// The events, in spec order, from `x-sse-events`; a stream described
    /// by its `schema` alone has one event, [`SseEvent::any_name`].
    pub events: Vec<SseEvent>,
}

/// One kind of event in a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` name on the wire.
    pub api_name: String,
    /// The Rust variant name.
    pub name: String,
    /// The shape of the event's JSON `data`.
    pub data: Shape,
    /// Whether the stream ends after this event (`done`, `end`, `error`, ...),
    /// so a client stops instead of resuming.
    pub terminal: bool,
    /// Whether this event reports a failure: its data is an object with a
    /// required code and message.
    pub failure: Option<EventFailure>,
    /// Whether this event stands for every event name (a stream whose
    /// `schema` describes the data of all its events, with no
    /// `x-sse-events`): its variant carries the name as sent, `None` when
    /// the frame had no `event:` field.
    pub any_name: bool,
}

/// How to read a failure event's code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFailure {
    /// The Rust name of the code field.
    pub code_field: String,
    /// Whether the code is the error convention's code enum (otherwise a string).
    pub typed_code: bool,
    /// The Rust name of the message field.
    pub message_field: String,
}

/// A paged list operation, derived from its shape: `page` and `limit` query
/// parameters and a success body with a `data` array and `pagination`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pagination {
    /// The Rust name of the page parameter.
    pub page_param: String,
    /// The Rust name of the list field in the body.
    pub items_field: String,
    /// The Rust name of the pagination field in the body.
    pub pagination_field: String,
    /// The Rust names of the current page, page count and total fields of
    /// the pagination object (integers).
    pub page_field: String,
    /// See `page_field`.
    pub pages_field: String,
    /// See `page_field`; `None` when the list does not report a total.
    pub total_field: Option<String>,
    /// The item shape.
    pub item: Shape,
}
