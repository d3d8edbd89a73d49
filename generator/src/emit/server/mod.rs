//! The server-stub crate: models, one trait with a method per operation,
//! typed inputs and response enums, and a router that validates, applies
//! auth, rate limits and idempotency, and answers every failure in the
//! error envelope. Runtime support is copied from the
//! `runagent-runtime-server` crate (`runtime/server/src`); what depends on
//! the spec is read from `api.conventions` and the crate's [`Names`]:
//!
//! - the error envelope (`envelope.rs`, see [`envelope`]): the spec's
//!   envelope, else RFC 9457 problem details;
//! - authentication: only when an operation is secured (the router then
//!   takes an `Authenticator`);
//! - rate limits: on the secured routes, by default only when the spec
//!   documents `X-RateLimit-*` headers (`RouterBuilder::rate_limiting`);
//! - idempotent replays: on secured POSTs when the spec has an
//!   `Idempotency-Key` header;
//! - request ids: when the spec documents a request-id response header.

mod envelope;

use super::doc_text::doc_attrs;
use super::models::{self, Mode, ident, rust_type, shape_check};
use super::{EmitError, Files, bodies, versions};
use crate::config::Names;
use crate::ir::{
    Api, ApiKeyLocation, Encoding, Method, ObjectStyle, Operation, ParamLocation, Parameter, ResponseBody,
    SecurityScheme, Shape, StatusCode, TypeKind,
};
use crate::naming::{Case, sanitize};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Runtime files copied into `src/`: every file of `runtime/server/src`
/// but its `lib.rs`, and the files shared with the client. The
/// `runtime_files_are_all_copied` test keeps the list complete.
pub const RUNTIME: &[(&str, &str)] = &[
    ("auth.rs", include_str!("../../../../runtime/server/src/auth.rs")),
    ("bodies.rs", include_str!("../../../../runtime/server/src/bodies.rs")),
    ("config.rs", include_str!("../../../../runtime/server/src/config.rs")),
    ("context.rs", include_str!("../../../../runtime/server/src/context.rs")),
    ("error.rs", include_str!("../../../../runtime/server/src/error.rs")),
    ("extract.rs", include_str!("../../../../runtime/server/src/extract.rs")),
    ("fake.rs", include_str!("../../../../runtime/server/src/fake.rs")),
    ("fallback.rs", include_str!("../../../../runtime/server/src/fallback.rs")),
    ("gate.rs", include_str!("../../../../runtime/server/src/gate.rs")),
    ("idempotency.rs", include_str!("../../../../runtime/server/src/idempotency.rs")),
    ("rate_limit.rs", include_str!("../../../../runtime/server/src/rate_limit.rs")),
    ("request_id.rs", include_str!("../../../../runtime/server/src/request_id.rs")),
    ("sse.rs", include_str!("../../../../runtime/server/src/sse.rs")),
    ("store.rs", include_str!("../../../../runtime/server/src/store.rs")),
    ("stream_log.rs", include_str!("../../../../runtime/server/src/stream_log.rs")),
    ("redis_store.rs", include_str!("../../../../runtime/server/src/redis_store.rs")),
    ("testing.rs", include_str!("../../../../runtime/server/src/testing.rs")),
    ("form.rs", include_str!("../../../../runtime/common/form.rs")),
    ("nullable.rs", include_str!("../../../../runtime/common/nullable.rs")),
    ("validate.rs", include_str!("../../../../runtime/common/validate.rs")),
];

/// The runtime crate's name as its doc examples spell it; the copies name
/// the generated crate instead.
const RUNTIME_CRATE: &str = "runagent_runtime_server";

/// How `lib.rs` declares a runtime module.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ModuleUse {
    /// `mod m; pub use m::*;`
    Reexported,
    /// `mod m;`, used by the generated code.
    Private,
    /// `#[allow(dead_code)] mod m;`: which of its items the generated code
    /// uses depends on the spec (a spec without query parameters needs no
    /// query reader).
    PrivateSpecDependent,
    /// `#[cfg(test)] mod m;`
    Test,
    /// `#[cfg(feature = "...")] mod m; #[cfg(feature = "...")] pub use m::*;`:
    /// behind one of the crate's cargo features (see `versions::SERVER_OPTIONAL`).
    Feature(&'static str),
}

fn module_use(module: &str) -> ModuleUse {
    match module {
        "extract" | "nullable" | "bodies" => ModuleUse::PrivateSpecDependent,
        "fallback" => ModuleUse::Private,
        "testing" => ModuleUse::Test,
        "redis_store" => ModuleUse::Feature("redis"),
        _ => ModuleUse::Reexported,
    }
}

/// Names the generated handlers use next to parameters (the context, the
/// state, the request and its parts, the body and its bytes, the readers'
/// results, the inputs), so no parameter may take them. Keep in step with
/// `handler`, `read_params` and `params_struct`.
pub const RESERVED_PARAMS: &[&str] = &[
    "ctx",
    "state",
    "params",
    "request",
    "parts",
    "body",
    "bytes",
    "path_params",
    "query_string",
    "admission",
    "respond",
];

/// Response headers the runtime layers set, so implementations never do.
const MANAGED_HEADERS: &[&str] = &[
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "x-request-id",
    "www-authenticate",
    "deprecation",
    "sunset",
];

/// What the router does beyond routing, decided once from the spec's
/// conventions.
#[derive(Debug, Clone, Copy)]
struct Features {
    /// Some operation is secured: the router takes an `Authenticator`.
    auth: bool,
    /// The rate limiter is on by default (the spec documents its headers).
    rate_limits: bool,
    /// Secured POSTs replay retries with an `Idempotency-Key`.
    idempotency: bool,
    /// Every response gets a request id.
    request_id: bool,
}

impl Features {
    fn of(api: &Api) -> Self {
        let c = &api.conventions;
        let auth = api.operations.iter().any(guarded);
        Features {
            auth,
            rate_limits: auth && c.rate_limit.is_some(),
            idempotency: auth && c.idempotency_key.is_some(),
            request_id: c.request_id.is_some(),
        }
    }
}

pub fn emit(api: &Api, names: &Names, files: &mut Files) -> Result<(), EmitError> {
    let dir = "server";
    files.toml(format!("{dir}/Cargo.toml"), cargo_toml(api, names));
    files.markdown(format!("{dir}/README.md"), readme(api, names));
    files.rust(format!("{dir}/src/lib.rs"), lib_rs(), "server lib")?;
    files.rust(format!("{dir}/src/types.rs"), models::emit_types(api, Mode::Server), "server models")?;
    files.rust(format!("{dir}/src/api.rs"), api_rs(api), "server trait")?;
    files.rust(format!("{dir}/src/router.rs"), router_rs(api, names), "server router")?;
    files.rust(format!("{dir}/src/envelope.rs"), envelope::envelope_rs(api, names), "server envelope")?;
    let lib = names.server_lib();
    for (name, source) in RUNTIME {
        files.verbatim(format!("{dir}/src/{name}"), &source.replace(RUNTIME_CRATE, &lib));
    }
    Ok(())
}

/// The trait's name, from the API's title: `RunAgent API` → `RunAgentApi`.
pub fn trait_name(api: &Api) -> String {
    let name = sanitize(&api.title, Case::UpperCamel);
    if name.ends_with("Api") { name } else { format!("{name}Api") }
}

/// A crates.io keyword for the API: the crate name without `-server`, when
/// it is a valid keyword (letters, digits, `-` and `_`, at most 20).
fn api_keyword(names: &Names) -> Option<String> {
    let stem = names.server_crate.strip_suffix("-server").unwrap_or(&names.server_crate);
    let valid = !stem.is_empty()
        && stem.len() <= 20
        && stem.starts_with(|c: char| c.is_ascii_alphabetic())
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !["axum", "server", "openapi"].contains(&stem);
    valid.then(|| stem.to_owned())
}

fn cargo_toml(api: &Api, names: &Names) -> String {
    let mut deps: Vec<(&str, String)> =
        versions::SERVER.iter().map(|(name, spec)| (*name, format!("{name} = {spec}\n"))).collect();
    for (_, name, spec) in versions::SERVER_OPTIONAL {
        let spec = spec.strip_suffix(" }").unwrap_or(spec);
        deps.push((*name, format!("{name} = {spec}, optional = true }}\n")));
    }
    deps.sort();
    let deps: String = deps.into_iter().map(|(_, line)| line).collect();
    let cargo_features: String =
        versions::SERVER_OPTIONAL.iter().map(|(feature, name, _)| format!("{feature} = [\"dep:{name}\"]\n")).collect();
    let keywords: Vec<String> = api_keyword(names)
        .into_iter()
        .chain(["axum", "server", "openapi"].map(str::to_owned))
        .map(|k| format!("\"{k}\""))
        .collect();
    let features = Features::of(api);
    let mut what = vec!["validation"];
    if features.auth {
        what.push("auth");
    }
    if features.auth {
        what.push("rate limits");
    }
    if features.idempotency {
        what.push("idempotency");
    }
    if api.operations.iter().any(Operation::is_stream) {
        what.push("SSE");
    }
    let what = match what.as_slice() {
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    };
    // TOML basic strings escape `"` and `\`.
    let title = api.title.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"[package]
name = "{name}"
version = "{version}"
description = "axum server stubs for the {title}: implement one trait, get {what}"
edition = "2024"
rust-version = "1.88"
license = "MIT OR Apache-2.0"
readme = "README.md"
keywords = [{keywords}]
categories = ["web-programming::http-server"]

[dependencies]
{deps}
[features]
# Stores shared by several instances of the server, in Redis: rate-limit
# counters, idempotency records and stream logs (`src/redis_store.rs`).
{cargo_features}
[dev-dependencies]
tokio = {{ version = "1.54.1", features = ["macros", "rt-multi-thread", "net"] }}
"#,
        name = names.server_crate,
        version = names.crate_version,
        keywords = keywords.join(", "),
    )
}

/// A type as the README's example spells it, with the crate's types under
/// `types::`.
fn doc_type(shape: &Shape) -> String {
    match shape {
        Shape::Named(n) => format!("types::{n}"),
        Shape::String(_) => "String".into(),
        Shape::Integer(i) if i.int32 => "i32".into(),
        Shape::Integer(_) => "i64".into(),
        Shape::Number(_) => "f64".into(),
        Shape::Boolean => "bool".into(),
        Shape::Array(a) => format!("Vec<{}>", doc_type(&a.items)),
        Shape::Map(v) => format!("std::collections::BTreeMap<String, {}>", doc_type(v)),
        Shape::Any => "serde_json::Value".into(),
        Shape::Binary => "FilePart".into(),
    }
}

/// The code a status is answered with, for the README (`400 INVALID_INPUT`),
/// or the bare status when the envelope has no code for it.
fn status_with_code(api: &Api, status: u16) -> String {
    match api.conventions.error.as_ref().and_then(|e| e.status_codes.get(&status)) {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

/// The README's example: one operation implemented from its response's
/// example, the router built and served.
fn readme_example(api: &Api, names: &Names, features: Features) -> String {
    let lib = names.server_lib();
    let trait_name = trait_name(api);
    // An open operation whose success is a named JSON body with an example
    // shows best; any operation will do.
    let example_of = |o: &Operation| {
        let r = o.successes().next()?;
        if !r.headers.iter().all(|h| managed(&h.api_name)) {
            return None;
        }
        match &r.body {
            Some(ResponseBody::Json { shape: Shape::Named(n), example: Some(example) }) => {
                Some((status_variant(r.status), n.clone(), example.clone()))
            }
            _ => None,
        }
    };
    let op = api
        .operations
        .iter()
        .find(|o| !o.secured && example_of(o).is_some())
        .or_else(|| api.operations.iter().find(|o| example_of(o).is_some()))
        .or_else(|| api.operations.iter().find(|o| !o.secured))
        .or(api.operations.first());
    let mut uses = vec!["ApiFailure".to_owned(), "RequestContext".to_owned()];
    if features.auth {
        uses.push("StaticKeys".into());
    }
    uses.push("ServerConfig".into());
    uses.push(trait_name.clone());
    let mut method = String::new();
    let mut extra_use = String::new();
    if let Some(op) = op {
        let prefix = &op.type_prefix;
        let body_ty = op.body.as_ref().map(|b| match (&b.choice, b.primary().encoding) {
            (Some(name), _) => name.clone(),
            (None, Encoding::Text) => "String".into(),
            (None, Encoding::Binary) => "bytes::Bytes".into(),
            (None, _) => doc_type(&b.primary().shape),
        });
        match op.body.as_ref().and_then(|b| b.choice.as_ref()) {
            Some(choice) => {
                extra_use.push_str(&format!("use {lib}::{{{prefix}Params, {prefix}Response, {choice}}};\n"))
            }
            None => extra_use.push_str(&format!("use {lib}::{{{prefix}Params, {prefix}Response}};\n")),
        }
        let body = op.body.as_ref().zip(body_ty.as_ref()).map(|(b, ty)| {
            let ty = if b.required { ty.clone() } else { format!("Option<{ty}>") };
            format!(", _body: {ty}")
        });
        let body = body.unwrap_or_default();
        let uses_types = body_ty.as_ref().is_some_and(|ty| ty.contains("types::"));
        let implementation = match example_of(op) {
            // Built with the constructor and setters where the example has
            // a plain Rust spelling, decoded from its JSON otherwise.
            Some((variant, ty, example)) => match super::builders::example_expr(api, "types::", &ty, &example) {
                Some(expr) => format!("        let body = {expr};\n        Ok({prefix}Response::{variant}(body))"),
                None => {
                    let example = serde_json::to_string(&example).unwrap_or_default();
                    format!(
                        "        let body: types::{ty} = serde_json::from_value(serde_json::json!({example})).expect(\"the example fits the schema\");\n        Ok({prefix}Response::{variant}(body))"
                    )
                }
            },
            None => format!("        Err(ApiFailure::not_implemented(\"{}\"))", op.id),
        };
        if uses_types || example_of(op).is_some() {
            extra_use.push_str(&format!("use {lib}::types;\n"));
        }
        method = format!(
            "    async fn {name}(&self, _ctx: RequestContext, _params: {prefix}Params{body}) -> Result<{prefix}Response, ApiFailure> {{\n{implementation}\n    }}\n    // Every other operation answers {not_implemented} until you write it.\n",
            name = op.name,
            not_implemented = status_with_code(api, 501),
        );
    }
    let keys = if features.auth {
        format!("StaticKeys::new().with_key(\"secret\", \"me\", {lib}::Tier::Pro), ")
    } else {
        String::new()
    };
    format!(
        r#"```rust
use {lib}::{{{uses}}};
{extra_use}
struct MyServer;

impl {trait_name} for MyServer {{
{method}}}

# async fn serve() -> std::io::Result<()> {{
let app = {lib}::router(MyServer, {keys}ServerConfig::default());
let listener = tokio::net::TcpListener::bind("127.0.0.1:8450").await?;
// `into_make_service` shares the route table between connections; given
// the router itself, axum rebuilds the table for every connection it accepts.
axum::serve(listener, app.into_make_service()).await
# }}
```"#,
        uses = uses.join(", "),
    )
}

fn readme(api: &Api, names: &Names) -> String {
    let features = Features::of(api);
    let trait_name = trait_name(api);
    let mut ops = String::new();
    for op in &api.operations {
        let auth = if op.security.is_empty() {
            "none".to_owned()
        } else {
            op.security
                .iter()
                .map(|r| {
                    if r.is_empty() {
                        "optional".to_owned()
                    } else {
                        r.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" + ")
                    }
                })
                .collect::<Vec<_>>()
                .join(" or ")
        };
        ops.push_str(&format!("| `{}` | `{} {}` | {auth} |\n", op.name, op.method.as_str(), op.path));
    }
    let mut does = Vec::new();
    match &api.conventions.error {
        Some(error) => {
            let named = error.details.as_ref().and_then(|d| {
                let wire = |rust: &Option<String>| {
                    let rust = rust.as_ref()?;
                    let fields = match &api.types.get(&d.type_name)?.kind {
                        crate::ir::TypeKind::Struct(s) => &s.fields,
                        _ => return None,
                    };
                    let f = fields.iter().find(|f| f.name == *rust)?;
                    Some(f.api_name.clone())
                };
                let details = api.types.get(&error.error_type).and_then(|t| match &t.kind {
                    crate::ir::TypeKind::Struct(s) => s.fields.iter().find(|f| f.name == d.field),
                    _ => None,
                });
                let details = details.map(|f| f.api_name.clone())?;
                Some((wire(&d.field_field)?, wire(&d.reason_field)?, details))
            });
            let naming = match named {
                Some((field, reason, details)) => format!(
                    ",\n  naming the field (`{details}.{field}`) and the reason (`{details}.{reason}`) — never a\n  `text/plain` answer, a 415 or a 422;"
                ),
                None => " — never a `text/plain` answer,\n  a 415 or a 422;".to_owned(),
            };
            does.push(format!(
                "- parses and validates path, query, header and body input against the spec and\n  answers anything invalid with `{}` in the API's error envelope{naming}",
                status_with_code(api, 400)
            ));
        }
        None => does.push(
            "- parses and validates path, query, header and body input against the spec and\n  answers anything invalid with `400` as RFC 9457 problem details\n  (`application/problem+json`, the spec declaring no error envelope of its own),\n  naming the field and the reason — never a `text/plain` answer, a 415 or a 422;"
                .to_owned(),
        ),
    }
    if features.auth {
        does.push("- authenticates the credentials each operation's security requirements\n  name (bearer, basic, API keys) with your `Authenticator` (401 with\n  `WWW-Authenticate` otherwise) on every operation the spec secures;".into());
        if features.rate_limits {
            does.push("- applies per-tier rate limits (free 100/hour, pro 1,000/hour, enterprise\n  configurable) with `X-RateLimit-*` headers and `429` + `Retry-After`;".into());
        } else {
            does.push("- can apply per-tier rate limits to the secured operations, with\n  `X-RateLimit-*` headers and `429` + `Retry-After`: off unless you ask for\n  them with `RouterBuilder::rate_limiting(true)`, as the spec documents no\n  rate-limit headers;".into());
        }
    }
    if features.idempotency {
        does.push("- replays POSTs that repeat an `Idempotency-Key` (409 when the body differs);".into());
    }
    does.push(if features.request_id {
        "- adds `X-Request-Id` to every response, `Deprecation`/`Sunset` to deprecated\n  operations, 404 for unknown paths, 405 with `Allow`, 413 over the body limit;".into()
    } else {
        "- adds `Deprecation`/`Sunset` to deprecated operations, 404 for unknown paths,\n  405 with `Allow`, 413 over the body limit;".into()
    });
    if api.operations.iter().any(Operation::is_stream) {
        does.push("- frames streaming responses as Server-Sent Events with ids.".into());
    }
    if let Some(last) = does.last_mut()
        && last.ends_with(';')
    {
        last.pop();
        last.push('.');
    }
    let mut shared = Vec::new();
    if features.auth {
        shared.push("rate-limit counters (`RedisCounterStore`, for `RouterBuilder::counter_store`)");
    }
    if features.idempotency {
        shared.push("idempotency records (`RedisIdempotencyStore`, for\n  `RouterBuilder::idempotency_store`)");
    }
    if api.operations.iter().any(Operation::is_stream) {
        shared.push("a log of streamed events to resume from `Last-Event-ID` on any instance\n  (`RedisStreamLog`, behind the `StreamLog` trait, with `follow` to serve it)");
    }
    let several = if shared.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = shared.iter().map(|s| format!("- {s};")).collect();
        format!(
            r#"
## Several instances

The stores behind the layers are traits with in-memory implementations, for
one process. The cargo feature `redis` adds Redis ones (Redis 7 or newer),
shared by every instance of the server:

{list}

Each call to Redis is bounded by a timeout and never panics. While Redis is
unreachable, each store follows its `FailurePolicy`: rate limits fail open
(counting in process memory meanwhile), idempotency and stream logs fail
closed with `503` and `Retry-After`; the connection reconnects by itself.
"#,
            list = list.join("\n").trim_end_matches(';').to_owned() + "."
        )
    };
    format!(
        r#"# {crate_name}

axum server stubs for the {title} (version {version}), generated from the
OpenAPI spec. You implement one trait, [`{trait_name}`]; the generated router
does everything else the spec says:

{does}

## Implement one operation at a time

Every trait method has a default that answers `{not_implemented}` in the error envelope, so a new
server compiles and runs before it does anything, and grows one method at a
time:

{example}
{fake}{several}
## Operations

| Method | HTTP | Auth |
|---|---|---|
{ops}
This crate is generated by `cargo xtask codegen` from {spec}; do not edit it by hand.
"#,
        crate_name = names.server_crate,
        title = api.title,
        version = api.version,
        does = does.join("\n"),
        not_implemented = status_with_code(api, 501),
        example = readme_example(api, names, features),
        several = several,
        fake = fake_section(api, names),
        spec = spec_named(&names.spec_path),
    )
}

/// The README's section on `spawn_fake`, the fake for tests of client code.
fn fake_section(api: &Api, names: &Names) -> String {
    let lib = names.server_lib();
    let client = names.client_crate.replace('-', "_");
    let trait_name = trait_name(api);
    format!(
        r#"
## A fake of the API for your client's tests

`spawn_fake` serves the router on an ephemeral loopback port until the
value it returns is dropped; it accepts any credential and rate-limits
nothing. A test implements only the operations it needs (the others answer
501) and points the real client (`{client}`) at `base_url()`:

```rust,no_run
struct Fake;

impl {lib}::{trait_name} for Fake {{
    // The operations the code under test calls.
}}

# async fn test() -> std::io::Result<()> {{
let server = {lib}::spawn_fake(Fake).await?;
// {client}::Client::builder().base_url(server.base_url()).api_key("any").build()
println!("serving on {{}}", server.base_url());
# Ok(())
# }}
```
"#
    )
}

/// `///` lines of hand-written documentation (unlike [`doc_attrs`], which
/// makes spec text safe, it keeps intra-doc links); each line of `text` may
/// start with the space that follows `///`.
pub(super) fn doc_lines(text: &str) -> TokenStream {
    let lines = text.lines().map(|line| {
        let line = format!(" {}", line.strip_prefix(' ').unwrap_or(line));
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}

/// The spec's path in backticks, or its description as it is.
fn spec_named(spec_path: &str) -> String {
    if spec_path.contains(' ') { spec_path.to_owned() } else { format!("`{spec_path}`") }
}

fn lib_rs() -> TokenStream {
    let mods = RUNTIME.iter().map(|(file, _)| {
        let name = file.trim_end_matches(".rs");
        let m = format_ident!("{}", name);
        match module_use(name) {
            ModuleUse::Reexported => quote!(mod #m; pub use #m::*;),
            ModuleUse::Private => quote!(mod #m;),
            ModuleUse::PrivateSpecDependent => quote!(#[allow(dead_code)] mod #m;),
            ModuleUse::Test => quote!(#[cfg(test)] mod #m;),
            ModuleUse::Feature(feature) => quote! {
                #[cfg(feature = #feature)]
                mod #m;
                #[cfg(feature = #feature)]
                pub use #m::*;
            },
        }
    });
    quote! {
        #![doc = include_str!("../README.md")]
        #![deny(missing_docs)]
        #![forbid(unsafe_code)]

        pub mod types;
        mod api;
        pub use api::*;
        mod router;
        pub use router::*;
        // The envelope's names shadow the runtime's generic ones re-exported
        // below (`ApiFailure` is `error::ApiFailure<ApiErrors>`).
        mod envelope;
        pub use envelope::{
            ApiErrors, ApiFailure, AuthLayer, AuthService, IdempotencyLayer, IdempotencyService, RateLimitLayer,
            RateLimitService, json_response,
        };
        #(#mods)*
    }
}

pub(crate) fn status_variant(status: StatusCode) -> String {
    match status {
        StatusCode::Code(c) => match c {
            200 => "Ok".into(),
            201 => "Created".into(),
            202 => "Accepted".into(),
            204 => "NoContent".into(),
            400 => "BadRequest".into(),
            401 => "Unauthorized".into(),
            403 => "Forbidden".into(),
            404 => "NotFound".into(),
            405 => "MethodNotAllowed".into(),
            409 => "Conflict".into(),
            413 => "PayloadTooLarge".into(),
            422 => "UnprocessableEntity".into(),
            429 => "TooManyRequests".into(),
            500 => "InternalServerError".into(),
            501 => "NotImplemented".into(),
            502 => "BadGateway".into(),
            503 => "ServiceUnavailable".into(),
            504 => "GatewayTimeout".into(),
            other => format!("Status{other}"),
        },
        StatusCode::Range(r) => format!("Status{r}xx"),
        StatusCode::Default => "Default".into(),
    }
}

fn params_struct(op: &Operation) -> TokenStream {
    let name = format_ident!("{}Params", op.type_prefix);
    let prefix = quote!(crate::types::);
    let fields = op.parameters.iter().map(|p| {
        let n = ident(&p.name);
        let ty = rust_type(&p.shape, &prefix);
        let ty = if p.required || p.default.is_some() { ty } else { quote!(::std::option::Option<#ty>) };
        let mut text =
            p.description.clone().unwrap_or_else(|| format!("The `{}` {} parameter.", p.api_name, p.location.as_str()));
        if let Some(d) = &p.default {
            text.push_str(&format!("\n\nSet to `{d}` when the request leaves it out."));
        }
        let docs = doc_attrs(Some(&text));
        quote!(#docs pub #n: #ty,)
    });
    let doc = format!(" The parameters of `{}`, parsed and validated.", op.id);
    quote! {
        #[doc = #doc]
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
        #[non_exhaustive]
        pub struct #name {
            #(#fields)*
        }
    }
}

fn managed(header: &str) -> bool {
    MANAGED_HEADERS.contains(&header.to_ascii_lowercase().as_str())
}

fn response_enum(op: &Operation) -> TokenStream {
    let name = format_ident!("{}Response", op.type_prefix);
    let prefix = quote!(crate::types::);
    let mut variants = Vec::new();
    let mut arms = Vec::new();
    let mut header_structs = Vec::new();
    for r in op.responses.iter().filter(|r| matches!(r.status, StatusCode::Code(_))) {
        let StatusCode::Code(code) = r.status else { continue };
        let v = format_ident!("{}", status_variant(r.status));
        let doc = doc_attrs(Some(&format!("{code}: {}", r.description)));
        let headers: Vec<_> = r.headers.iter().filter(|h| !managed(&h.api_name)).collect();
        let headers_ty =
            (!headers.is_empty()).then(|| format_ident!("{}{}Headers", op.type_prefix, status_variant(r.status)));
        if let Some(hty) = &headers_ty {
            let fields = headers.iter().map(|h| {
                let n = ident(&h.name);
                let ty = rust_type(&h.shape, &prefix);
                let ty = if h.required { ty } else { quote!(::std::option::Option<#ty>) };
                let docs = doc_attrs(Some(h.description.as_deref().unwrap_or("A response header.")));
                quote!(#docs pub #n: #ty,)
            });
            let sets = headers.iter().map(|h| {
                let n = ident(&h.name);
                let wire = h.api_name.to_ascii_lowercase();
                let value = match &h.shape {
                    Shape::Named(_) => quote!(v.as_str().to_owned()),
                    _ => quote!(::std::string::ToString::to_string(v)),
                };
                let insert = quote!(headers.insert(::http::HeaderName::from_static(#wire), value););
                if h.required {
                    quote! {
                        if let ::std::result::Result::Ok(value) = { let v = &self.#n; ::http::HeaderValue::from_str(&#value) } {
                            #insert
                        }
                    }
                } else {
                    quote! {
                        if let ::std::option::Option::Some(v) = &self.#n
                            && let ::std::result::Result::Ok(value) = ::http::HeaderValue::from_str(&#value)
                        {
                            #insert
                        }
                    }
                }
            });
            let sdoc = format!(" The headers of `{}`'s {code} response.", op.id);
            header_structs.push(quote! {
                #[doc = #sdoc]
                #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
                pub struct #hty { #(#fields)* }
                impl #hty {
                    fn apply(&self, headers: &mut ::http::HeaderMap) {
                        #(#sets)*
                    }
                }
            });
        }
        let status = quote!(::http::StatusCode::from_u16(#code).unwrap_or(::http::StatusCode::INTERNAL_SERVER_ERROR));
        let (payload, make) = match &r.body {
            Some(ResponseBody::Json { shape, .. }) => {
                let ty = rust_type(shape, &prefix);
                (Some(ty), quote!(crate::json_response(#status, &body)))
            }
            Some(ResponseBody::EventStream(_)) => {
                let ev = format_ident!("{}Event", op.type_prefix);
                (Some(quote!(crate::EventStream<#ev>)), quote!(::axum::response::IntoResponse::into_response(body)))
            }
            Some(ResponseBody::Text { media_type } | ResponseBody::Binary { media_type }) => {
                let ty = match &r.body {
                    Some(ResponseBody::Text { .. }) => quote!(::std::string::String),
                    _ => quote!(::bytes::Bytes),
                };
                // A range (`image/*`) is no content type; the implementation
                // may set a precise one through the headers it returns.
                let media = if media_type.contains('*') { "application/octet-stream" } else { media_type.as_str() };
                (
                    Some(ty),
                    quote!(::axum::response::IntoResponse::into_response((
                        #status,
                        [(::http::header::CONTENT_TYPE, ::http::HeaderValue::from_static(#media))],
                        body,
                    ))),
                )
            }
            None => (None, quote!(::axum::response::IntoResponse::into_response(#status))),
        };
        match (payload, &headers_ty) {
            (Some(ty), None) => {
                variants.push(quote!(#doc #v(#ty),));
                arms.push(quote!(Self::#v(body) => #make,));
            }
            (None, None) => {
                variants.push(quote!(#doc #v,));
                arms.push(quote!(Self::#v => #make,));
            }
            (Some(ty), Some(hty)) => {
                variants.push(quote!(#doc #v { /// The body.
                    body: #ty, /// The headers.
                    headers: #hty },));
                arms.push(quote!(Self::#v { body, headers } => { let mut response = #make; headers.apply(response.headers_mut()); response }));
            }
            (None, Some(hty)) => {
                variants.push(quote!(#doc #v { /// The headers.
                    headers: #hty },));
                arms.push(quote!(Self::#v { headers } => { let mut response = #make; headers.apply(response.headers_mut()); response }));
            }
        }
    }
    let doc = format!(" Every documented response of `{}`.", op.id);
    quote! {
        #(#header_structs)*
        #[doc = #doc]
        #[derive(::std::fmt::Debug)]
        pub enum #name {
            #(#variants)*
        }
        impl ::axum::response::IntoResponse for #name {
            fn into_response(self) -> ::axum::response::Response {
                match self {
                    #(#arms)*
                }
            }
        }
    }
}

fn event_enum(op: &Operation) -> TokenStream {
    let Some(stream) = op.event_stream() else {
        return TokenStream::new();
    };
    let name = format_ident!("{}Event", op.type_prefix);
    let variants = models::event_variants(
        stream,
        &quote!(crate::types::),
        " The `event:` field; `None` sends `message`, the default.",
    );
    let names = stream.events.iter().map(|e| {
        let v = ident(&e.name);
        let wire = &e.api_name;
        if e.any_name {
            quote!(Self::#v { event, .. } => event.as_deref().unwrap_or(#wire),)
        } else {
            quote!(Self::#v(_) => #wire,)
        }
    });
    let datas = stream.events.iter().map(|e| {
        let v = ident(&e.name);
        let pattern = if e.any_name { quote!(Self::#v { data, .. }) } else { quote!(Self::#v(data)) };
        quote!(#pattern => ::serde_json::to_string(data).unwrap_or_else(|_| ::std::string::String::from("null")),)
    });
    let doc = format!(" One event of the `{}` stream.", op.id);
    quote! {
        #[doc = #doc]
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
        pub enum #name {
            #(#variants)*
        }
        impl crate::SseEventData for #name {
            fn event_name(&self) -> &str {
                match self { #(#names)* }
            }
            fn data_json(&self) -> ::std::string::String {
                match self { #(#datas)* }
            }
        }
    }
}

fn trait_method(op: &Operation) -> TokenStream {
    let m = ident(&op.name);
    let params = format_ident!("{}Params", op.type_prefix);
    let response = format_ident!("{}Response", op.type_prefix);
    let body = op.body.as_ref().map(|b| {
        let ty = bodies::body_type(b, &quote!(crate::types::));
        if b.required { quote!(body: #ty,) } else { quote!(body: ::std::option::Option<#ty>,) }
    });
    let unused_body = op.body.as_ref().map(|_| quote!(let _ = body;));
    let mut text = String::new();
    if let Some(s) = &op.summary {
        text.push_str(s);
        text.push_str("\n\n");
    }
    text.push_str(&format!("`{} {}` (`{}`).", op.method.as_str(), op.path, op.id));
    if let Some(d) = &op.description {
        text.push_str("\n\n");
        text.push_str(d);
    }
    text.push_str("\n\nThe default answers `501 NOT_IMPLEMENTED` in the error envelope.");
    let docs = doc_attrs(Some(&text));
    let id = &op.id;
    let deprecated = op.deprecated.then(|| quote!(#[deprecated]));
    quote! {
        #docs
        #deprecated
        fn #m(&self, ctx: crate::RequestContext, params: #params, #body) -> impl ::std::future::Future<Output = ::std::result::Result<#response, crate::ApiFailure>> + ::std::marker::Send {
            let _ = (ctx, params);
            #unused_body
            async move { ::std::result::Result::Err(crate::ApiFailure::not_implemented(#id)) }
        }
    }
}

fn api_rs(api: &Api) -> TokenStream {
    let trait_name = format_ident!("{}", trait_name(api));
    let methods = api.operations.iter().map(trait_method);
    let params = api.operations.iter().map(params_struct);
    let responses = api.operations.iter().map(response_enum);
    let events = api.operations.iter().map(event_enum);
    let bodies = api
        .operations
        .iter()
        .filter_map(|op| op.body.as_ref().map(|b| bodies::choice_enum(&op.id, b, &quote!(crate::types::))));
    let doc = doc_attrs(Some(&format!(
        "The {}: one method per operation.\n\nImplement the methods your server supports; the others answer `501 NOT_IMPLEMENTED`. Inputs arrive parsed and validated against the spec; authentication, rate limits, idempotency and request ids are handled before a method is called. Pass the implementation to [`router`](crate::router).",
        api.title
    )));
    quote! {
        //! The API trait, the typed inputs and the typed responses of every
        //! operation.
        #![allow(deprecated, clippy::large_enum_variant)]

        #doc
        // Methods are named after operationIds, which may read like Rust's
        // conversion conventions (`from_env`, `to_csv`, `into_archive`).
        #[allow(clippy::wrong_self_convention)]
        pub trait #trait_name: ::std::marker::Send + ::std::marker::Sync + 'static {
            #(#methods)*
        }

        #(#params)*
        #(#responses)*
        #(#events)*
        #(#bodies)*
    }
}

/// The statements of a handler that read the parameters into the params
/// struct.
fn read_params(api: &Api, op: &Operation) -> TokenStream {
    let params = format_ident!("{}Params", op.type_prefix);
    let prefix = quote!(crate::types::);
    // Object-valued parameters are read on their own (`extract::query_object`).
    let query: Vec<&Parameter> = op.params_in(ParamLocation::Query).filter(|p| p.object_style.is_none()).collect();
    let query_struct = (!query.is_empty()).then(|| {
        let lists = query.iter().filter(|p| matches!(p.shape, Shape::Array(_))).map(|p| p.api_name.as_str());
        let fields = query.iter().map(|p| {
            let n = ident(&p.name);
            let ty = rust_type(&p.shape, &prefix);
            let wire = &p.api_name;
            quote!(#[serde(rename = #wire, default)] #n: ::std::option::Option<#ty>,)
        });
        quote! {
            #[derive(::serde::Deserialize)]
            struct Query { #(#fields)* }
            let query_string: Query = crate::extract::query(&parts.uri, &[#(#lists),*])?;
        }
    });
    let reads = op.parameters.iter().map(|p| {
        let n = ident(&p.name);
        let wire = &p.api_name;
        let raw = match p.location {
            ParamLocation::Path => quote!(::std::option::Option::Some(crate::extract::path_param(&path_params, #wire)?)),
            ParamLocation::Query => match (p.object_style, &p.shape) {
                (Some(style), shape) if api.map_value(shape).is_some() => {
                    let ty = rust_type(shape, &prefix);
                    let deep = style == ObjectStyle::DeepObject;
                    // A form-style map takes every pair no other parameter names.
                    let others: Vec<String> = op
                        .params_in(ParamLocation::Query)
                        .filter(|o| o.api_name != p.api_name)
                        .map(|o| match o.object_style {
                            Some(ObjectStyle::DeepObject) => format!("{}[", o.api_name),
                            _ => o.api_name.clone(),
                        })
                        .collect();
                    quote!(crate::extract::query_object::<#ty, _>(&parts.uri, #wire, #deep, crate::extract::Keys::Except(&[#(#others),*]))?)
                }
                (Some(style), Shape::Named(type_name)) => {
                    let ty = rust_type(&p.shape, &prefix);
                    let deep = style == ObjectStyle::DeepObject;
                    let keys: Vec<&str> = match api.types.get(type_name).map(|t| &t.kind) {
                        Some(TypeKind::Struct(s)) => s.fields.iter().map(|f| f.api_name.as_str()).collect(),
                        _ => Vec::new(),
                    };
                    quote!(crate::extract::query_object::<#ty, _>(&parts.uri, #wire, #deep, crate::extract::Keys::Only(&[#(#keys),*]))?)
                }
                _ => quote!(query_string.#n),
            },
            ParamLocation::Header => {
                let parse = parse_text(&p.shape, wire);
                let lookup = header_lookup(wire);
                quote! {
                    #lookup?
                        .map(|text| ::std::result::Result::<_, crate::ApiFailure>::Ok(#parse))
                        .transpose()?
                }
            }
        };
        let raw = if p.location == ParamLocation::Path {
            let parse = parse_text(&p.shape, wire);
            quote! { { let text = crate::extract::path_param(&path_params, #wire)?; ::std::option::Option::Some(#parse) } }
        } else {
            raw
        };
        let check = shape_check(api, &p.shape, &quote!(value), 0).map(|c| {
            quote! {
                if let ::std::option::Option::Some(value) = &#n {
                    let path = &mut crate::validate::FieldPath::field(#wire);
                    #c
                }
            }
        });
        let finish = if p.required {
            quote! {
                let #n = match #n {
                    ::std::option::Option::Some(v) => v,
                    ::std::option::Option::None => return ::std::result::Result::Err(crate::ApiFailure::invalid_input(#wire, "missing")),
                };
            }
        } else if let Some(d) = &p.default {
            let default = default_expr(&p.shape, d);
            if matches!(p.shape, Shape::Integer(_) | Shape::Number(_) | Shape::Boolean) {
                quote!(let #n = #n.unwrap_or(#default);)
            } else {
                quote!(let #n = #n.unwrap_or_else(|| #default);)
            }
        } else {
            TokenStream::new()
        };
        quote! {
            let #n = #raw;
            #check
            #finish
        }
    });
    let names = op.parameters.iter().map(|p| ident(&p.name));
    let path_params = op
        .params_in(ParamLocation::Path)
        .next()
        .map(|_| quote!(let path_params = crate::extract::path_params(&mut parts).await?;));
    quote! {
        #path_params
        #query_struct
        #(#reads)*
        let params = crate::#params { #(#names),* };
    }
}

/// Parses header or path text (`text: &str`) into a parameter's type.
/// Reads the header `wire` from `parts.headers`. A name that is a valid
/// header token is looked up as a `HeaderName` constant, which spares
/// parsing and lowercasing the text on every request; `from_static` in a
/// constant would fail the build on any other name, so those go as text.
fn header_lookup(wire: &str) -> TokenStream {
    let lower = wire.to_ascii_lowercase();
    let token = !lower.is_empty()
        && lower.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        quote! {
            crate::extract::header_named(&parts.headers, {
                const NAME: ::http::HeaderName = ::http::HeaderName::from_static(#lower);
                NAME
            }, #wire)
        }
    } else {
        quote!(crate::extract::header_str(&parts.headers, #wire))
    }
}

fn parse_text(shape: &Shape, wire: &str) -> TokenStream {
    match shape {
        Shape::String(_) => quote!(text.to_owned()),
        Shape::Named(_) => {
            quote!(text.parse().map_err(|reason: ::std::string::String| crate::ApiFailure::invalid_input(#wire, reason))?)
        }
        _ => {
            quote!(text.parse().map_err(|_| crate::ApiFailure::invalid_input(#wire, ::std::format!("`{text}` is not a valid value")))?)
        }
    }
}

fn default_expr(shape: &Shape, value: &serde_json::Value) -> TokenStream {
    match (shape, value) {
        (Shape::Integer(_), serde_json::Value::Number(n)) => {
            let l = proc_macro2::Literal::i64_unsuffixed(n.as_i64().unwrap_or_default());
            quote!(#l)
        }
        (Shape::Number(_), serde_json::Value::Number(n)) => {
            let l = proc_macro2::Literal::f64_unsuffixed(n.as_f64().unwrap_or_default());
            quote!(#l)
        }
        (Shape::Boolean, serde_json::Value::Bool(b)) => quote!(#b),
        (Shape::String(_), serde_json::Value::String(s)) => quote!(::std::string::String::from(#s)),
        (Shape::Named(n), serde_json::Value::String(s)) => {
            let n = ident(n);
            quote!(#s.parse::<crate::types::#n>().unwrap_or_else(|_| unreachable!("the generator checked the default")))
        }
        _ => quote!(::std::default::Default::default()),
    }
}

fn handler(api: &Api, op: &Operation, features: Features) -> TokenStream {
    let trait_name = format_ident!("{}", trait_name(api));
    let h = format_ident!("handle_{}", op.name);
    let m = ident(&op.name);
    let read = read_params(api, op);
    let body = op.body.as_ref().map(|b| {
        let read = bodies::server_read(api, b);
        if b.required {
            quote! {
                let bytes = crate::extract::read_body(body, state.config.body_limit).await?;
                let body = #read;
            }
        } else {
            quote! {
                let bytes = crate::extract::read_body(body, state.config.body_limit).await?;
                let body = if bytes.is_empty() { ::std::option::Option::None } else { ::std::option::Option::Some(#read) };
            }
        }
    });
    let body_arg = op.body.as_ref().map(|_| quote!(body,));
    let ignore_body = op.body.is_none().then(|| quote!(let _ = body;));
    let (au_bound, shared) = if features.auth {
        (quote!(, Au: crate::Authenticator), quote!(Shared<A, Au>))
    } else {
        (TokenStream::new(), quote!(Shared<A>))
    };
    let deprecation = deprecation(op);
    // What runs once the request is let through: read the inputs, move
    // the headers into the context, call the implementation.
    let respond = quote! {
        let respond = |admission: crate::Admission,
                       request_id: ::std::option::Option<crate::RequestId>,
                       #[allow(unused_mut)] mut parts: ::http::request::Parts,
                       body: ::axum::body::Body| async move {
            #ignore_body
            #read
            #body
            let ctx = crate::RequestContext::admitted(admission, request_id, &mut parts);
            state.api.#m(ctx, params, #body_arg).await
        };
    };
    // With request ids, `id` is the request's (see `crate::identified`).
    let id =
        if features.request_id { quote!(::std::option::Option::Some(id)) } else { quote!(::std::option::Option::None) };
    let run = if features.auth && (guarded(op) || op.secured || op.deprecated) {
        let requirements = requirements(api, op);
        let rate_limited = op.secured;
        let idempotent = op.method == Method::Post && op.secured && features.idempotency;
        let deprecation = match &deprecation {
            Some(d) => quote!(::std::option::Option::Some(#d)),
            None => quote!(::std::option::Option::None),
        };
        quote! {
            const POLICY: crate::RoutePolicy = crate::RoutePolicy {
                requirements: #requirements,
                rate_limited: #rate_limited,
                idempotent: #idempotent,
                deprecation: #deprecation,
            };
            state.gate.pass(&POLICY, request, move |admission, parts, body| respond(admission, #id, parts, body)).await
        }
    } else {
        match deprecation {
            Some(d) => quote! {
                let (parts, body) = request.into_parts();
                let mut response = crate::answer(respond(crate::Admission::default(), #id, parts, body).await);
                crate::mark_deprecated(&mut response, &#d);
                response
            },
            None => quote! {
                let (parts, body) = request.into_parts();
                crate::answer(respond(crate::Admission::default(), #id, parts, body).await)
            },
        }
    };
    let run = if features.request_id {
        quote!(crate::identified(request, |id, request| async move { #run }).await)
    } else {
        run
    };
    quote! {
        #[allow(deprecated)]
        async fn #h<A: crate::#trait_name #au_bound>(
            ::axum::extract::State(state): ::axum::extract::State<::std::sync::Arc<#shared>>,
            request: ::axum::extract::Request,
        ) -> ::axum::response::Response {
            let state = &*state;
            #respond
            #run
        }
    }
}

/// A deprecated operation's `crate::Deprecation`: RFC 9745 wants the date
/// of deprecation; without `x-deprecated-at` the older draft's `true` still
/// says "deprecated".
fn deprecation(op: &Operation) -> Option<TokenStream> {
    if !op.deprecated {
        return None;
    }
    let sunset = match op.sunset.as_deref().and_then(http_date) {
        Some(s) => quote!(::std::option::Option::Some(#s)),
        None => quote!(::std::option::Option::None),
    };
    let since = op.deprecated_at.as_deref().and_then(structured_date).unwrap_or_else(|| "true".to_owned());
    Some(quote!(crate::Deprecation { since: #since, sunset: #sunset }))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (the days-from-civil
/// algorithm, so the generator needs no date library), with the month.
fn days_from_civil(date: &str) -> Option<(i64, i64, u32, u32)> {
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.get(..2)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days, y, m, d))
}

/// `YYYY-MM-DD` → `@<unix seconds>`, the RFC 9745 `Deprecation` value.
fn structured_date(date: &str) -> Option<String> {
    days_from_civil(date).map(|(days, ..)| format!("@{}", days * 86_400))
}

/// `YYYY-MM-DD` → `Www, DD Mon YYYY 00:00:00 GMT`, the `Sunset` value.
fn http_date(date: &str) -> Option<String> {
    let (days, y, m, d) = days_from_civil(date)?;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][m as usize - 1];
    Some(format!("{weekday}, {d:02} {month} {y} 00:00:00 GMT"))
}

/// Whether an operation names a scheme, so its route gets the auth layer
/// (which lets a request without credentials through when a requirement
/// is empty).
fn guarded(op: &Operation) -> bool {
    op.security.iter().any(|requirement| !requirement.is_empty())
}

/// An operation's security requirements as `AuthLayer::requiring` takes them.
fn requirements(api: &Api, op: &Operation) -> TokenStream {
    let alternatives = op.security.iter().map(|requirement| {
        let schemes = requirement.iter().map(|(name, _)| {
            let kind = match api.security_schemes.get(name) {
                Some(SecurityScheme::Basic { .. }) => quote!(crate::SchemeKind::Basic),
                Some(SecurityScheme::ApiKey { location, name, .. }) => {
                    let location = match location {
                        ApiKeyLocation::Header => quote!(crate::KeyLocation::Header),
                        ApiKeyLocation::Query => quote!(crate::KeyLocation::Query),
                        ApiKeyLocation::Cookie => quote!(crate::KeyLocation::Cookie),
                    };
                    quote!(crate::SchemeKind::ApiKey { location: #location, name: #name })
                }
                _ => quote!(crate::SchemeKind::Bearer),
            };
            quote!(crate::Scheme { name: #name, kind: #kind })
        });
        quote!(&[#(#schemes),*])
    });
    quote!(&[#(#alternatives),*])
}

/// The path of a server URL (`https://api.example.com/v1/` → `/v1`): where
/// the routes are mounted unless the configuration says otherwise. Empty
/// for a URL without a path or with server variables in it.
fn server_path(url: &str) -> String {
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    let path = rest.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    if path.contains(['{', '}']) || !path.starts_with('/') { String::new() } else { path.to_owned() }
}

/// Routes per generated function: a router of a thousand operations is a
/// few dozen short functions rather than one chain, which rustfmt formats
/// in time and memory linear in the routes (a single chain is quadratic).
const ROUTES_PER_FUNCTION: usize = 32;

/// The statement mounting one path's operations under the prefix.
fn mount(path: &str, ops: &[&Operation], features: Features) -> TokenStream {
    let allow = ops.iter().map(|o| o.method.as_str()).collect::<Vec<_>>().join(", ");
    let generics = if features.auth { quote!(<A, Au>) } else { quote!(<A>) };
    let mut chain = quote!(::axum::routing::MethodRouter::new());
    for op in ops {
        let h = format_ident!("handle_{}", op.name);
        let method = match op.method {
            Method::Get => quote!(get),
            Method::Put => quote!(put),
            Method::Post => quote!(post),
            Method::Delete => quote!(delete),
            Method::Patch => quote!(patch),
        };
        chain = quote!(#chain.#method(#h::#generics));
    }
    let ids = features.request_id;
    let methods = quote!(#chain.fallback(crate::fallback::method_not_allowed::<crate::ApiErrors>(#allow, #ids)));
    if path == "/" {
        // The root answers with and without the slash after the prefix.
        quote! {
            let methods = #methods;
            router = if prefix.is_empty() {
                router.route("/", methods)
            } else {
                router.route(prefix, methods.clone()).route(&[prefix, "/"].concat(), methods)
            };
        }
    } else {
        quote!(router = router.route(&[prefix, #path].concat(), #methods);)
    }
}

fn router_rs(api: &Api, names: &Names) -> TokenStream {
    let features = Features::of(api);
    let lib = names.server_lib();
    let trait_name = format_ident!("{}", trait_name(api));
    let handlers = api.operations.iter().map(|op| handler(api, op, features));
    // Group operations by path, keeping spec order.
    let mut paths: Vec<(String, Vec<&Operation>)> = Vec::new();
    for op in &api.operations {
        match paths.iter_mut().find(|(p, _)| *p == op.path) {
            Some((_, ops)) => ops.push(op),
            None => paths.push((op.path.clone(), vec![op])),
        }
    }
    let (au_param, au_bound) =
        if features.auth { (quote!(, Au), quote!(, Au: crate::Authenticator)) } else { Default::default() };
    let state = quote!(::axum::Router<::std::sync::Arc<Shared<A #au_param>>>);
    let chunks: Vec<TokenStream> = paths
        .chunks(ROUTES_PER_FUNCTION)
        .enumerate()
        .map(|(i, chunk)| {
            let f = format_ident!("routes_{}", i);
            let mounts = chunk.iter().map(|(path, ops)| mount(path, ops, features));
            quote! {
                fn #f<A: crate::#trait_name #au_bound>(mut router: #state, prefix: &str) -> #state {
                    #(#mounts)*
                    router
                }
            }
        })
        .collect();
    let chunk_calls = (0..chunks.len()).map(|i| {
        let f = format_ident!("routes_{}", i);
        quote!(router = #f::<A #au_param>(router, prefix);)
    });
    let prefix = api.servers.first().map(|s| server_path(&s.url)).unwrap_or_default();
    let prefix_doc = match api.servers.first() {
        Some(server) => format!(
            " The path the routes are mounted under unless [`ServerConfig::prefix`](crate::ServerConfig::prefix)\n says otherwise: the path of the spec's first server URL, `{}`.",
            server.url
        ),
        None => " The path the routes are mounted under unless [`ServerConfig::prefix`](crate::ServerConfig::prefix)\n says otherwise: the root, as the spec names no server.".to_owned(),
    };

    // What the router is built from: the implementation, the authenticator
    // when an operation is secured, the stores the gate uses.
    let (au_arg, au_field, au_new_param, au_new_field) = if features.auth {
        (quote!(authenticator: Au,), quote!(authenticator: Au,), quote!(, authenticator: Au), quote!(authenticator,))
    } else {
        Default::default()
    };
    let router_args = if features.auth { quote!(api, authenticator) } else { quote!(api) };
    let rate_limit_default = features.rate_limits;
    let store_fields = features.auth.then(|| {
        let idempotency = features
            .idempotency
            .then(|| quote!(idempotency: ::std::option::Option<::std::sync::Arc<dyn crate::IdempotencyStore>>,));
        quote! {
            rate_limiting: bool,
            counters: ::std::option::Option<::std::sync::Arc<dyn crate::CounterStore>>,
            #idempotency
        }
    });
    let store_inits = features.auth.then(|| {
        let idempotency = features.idempotency.then(|| quote!(idempotency: ::std::option::Option::None,));
        quote! {
            rate_limiting: #rate_limit_default,
            counters: ::std::option::Option::None,
            #idempotency
        }
    });
    let rate_limiting_doc = if features.rate_limits {
        " Whether the secured routes are rate limited per caller, with\n `config.rate_limit` and `X-RateLimit-*` headers: on by default, as the\n spec documents those headers."
    } else {
        " Whether the secured routes are rate limited per caller, with\n `config.rate_limit` and `X-RateLimit-*` headers: off by default, as the\n spec documents no rate-limit headers; `true` adds the limiter (counting in\n memory unless [`RouterBuilder::counter_store`] gives a store)."
    };
    let rate_limiting_doc = doc_lines(rate_limiting_doc);
    let store_setters = features.auth.then(|| {
        let idempotency = features.idempotency.then(|| {
            quote! {
                /// Uses this store for idempotency records.
                pub fn idempotency_store(mut self, store: ::std::sync::Arc<dyn crate::IdempotencyStore>) -> Self {
                    self.idempotency = ::std::option::Option::Some(store);
                    self
                }
            }
        });
        quote! {
            #rate_limiting_doc
            pub fn rate_limiting(mut self, enabled: bool) -> Self {
                self.rate_limiting = enabled;
                self
            }
            /// Uses this store for rate-limit counters.
            pub fn counter_store(mut self, store: ::std::sync::Arc<dyn crate::CounterStore>) -> Self {
                self.counters = ::std::option::Option::Some(store);
                self
            }
            #idempotency
        }
    });
    let build_gate = features.auth.then(|| {
        let idempotency = features.idempotency.then(|| {
            quote! {
                let gate = gate.idempotency(
                    self.idempotency.unwrap_or_else(|| ::std::sync::Arc::new(crate::InMemoryIdempotencyStore::default())),
                    self.config.body_limit,
                );
            }
        });
        quote! {
            let mut gate = crate::Gate::new(self.authenticator);
            if self.rate_limiting {
                let counters = self.counters.unwrap_or_else(|| ::std::sync::Arc::new(crate::InMemoryCounterStore::default()));
                gate = gate.rate_limit(crate::RateLimitLayer::new(self.config.rate_limit.clone(), counters));
            }
            #idempotency
        }
    });
    let gate_field = features.auth.then(|| quote!(gate: crate::Gate<Au, crate::ApiErrors>,));
    let gate_init = features.auth.then(|| quote!(gate,));
    let ids = features.request_id;
    let builder_doc = match (features.auth, features.idempotency) {
        (true, true) => {
            " Builds a router, with pluggable stores for the rate-limit counters\n and the idempotency records (to share them between instances)."
        }
        (true, false) => {
            " Builds a router, with a pluggable store for the rate-limit counters\n (to share them between instances)."
        }
        (false, _) => " Builds a router.",
    };
    let router_doc = if features.auth {
        " Builds the router, with in-memory stores for the rate limits and\n idempotency records. See [`RouterBuilder`] to plug in shared stores."
    } else {
        " Builds the router. No operation of the spec is secured, so it takes no\n authenticator."
    };
    let new_doc = if features.auth {
        " Starts from an implementation and an authenticator."
    } else {
        " Starts from an implementation."
    };
    let config_doc = " Sets the configuration (prefix, body limit, rate limits).";
    let (prefix_doc, router_doc, builder_doc, new_doc, config_doc) = (
        doc_lines(&prefix_doc),
        doc_lines(router_doc),
        doc_lines(builder_doc),
        doc_lines(new_doc),
        doc_lines(config_doc),
    );
    // The handlers read the configuration only for the body limit.
    let reads_bodies = api.operations.iter().any(|op| op.body.is_some());
    let config_field = reads_bodies.then(|| quote!(config: crate::ServerConfig,));
    let config_init = reads_bodies.then(|| quote!(config: self.config,));
    // The fake accepts any credential and counts nothing: a test of client
    // code wants the operations' answers, not 401s and 429s.
    let fake_builder = if features.auth {
        quote!(RouterBuilder::new(api, crate::AnyCredential).rate_limiting(false))
    } else {
        quote!(RouterBuilder::new(api))
    };
    let fake_doc = doc_lines(&format!(
        " Serves `api` on an ephemeral loopback port, for the tests of code that\n uses the API's client: implement only the operations a test needs (the\n others answer 501), point the client at\n [`LoopbackServer::base_url`](crate::LoopbackServer::base_url), and drop\n the returned value to stop it. Any credential is accepted and nothing is\n rate limited. Call it inside a tokio runtime.\n\n ```no_run\n # async fn run() -> std::io::Result<()> {{\n struct Fake;\n impl {lib}::{trait_name} for Fake {{}}\n\n let server = {lib}::spawn_fake(Fake).await?;\n println!(\"serving on {{}}\", server.base_url());\n # Ok(())\n # }}\n ```"
    ));
    quote! {
        //! The router: every operation under the configured prefix, with
        //! validation, auth, rate limits, idempotency and the error envelope,
        //! as the spec asks for them.

        #prefix_doc
        pub const DEFAULT_PREFIX: &str = #prefix;

        /// What every handler reads: the implementation, the configuration
        /// and the gate of the secured operations.
        struct Shared<A #au_param> {
            api: A,
            #config_field
            #gate_field
        }

        #router_doc
        pub fn router<A: crate::#trait_name #au_bound>(api: A, #au_arg config: crate::ServerConfig) -> ::axum::Router {
            RouterBuilder::new(#router_args).config(config).build()
        }

        #fake_doc
        pub async fn spawn_fake<A: crate::#trait_name>(api: A) -> ::std::io::Result<crate::LoopbackServer> {
            let app = #fake_builder.build();
            crate::LoopbackServer::start(app, DEFAULT_PREFIX).await
        }

        #builder_doc
        pub struct RouterBuilder<A #au_param> {
            api: A,
            #au_field
            config: crate::ServerConfig,
            #store_fields
        }

        impl<A: crate::#trait_name #au_bound> RouterBuilder<A #au_param> {
            #new_doc
            pub fn new(api: A #au_new_param) -> Self {
                RouterBuilder { api, #au_new_field config: crate::ServerConfig::default(), #store_inits }
            }
            #config_doc
            pub fn config(mut self, config: crate::ServerConfig) -> Self {
                self.config = config;
                self
            }
            #store_setters
            /// Builds the axum router.
            pub fn build(self) -> ::axum::Router {
                #build_gate
                // Every route carries the prefix rather than being nested
                // under it: a nested router rewrites each request's URI.
                let prefix = self.config.prefix_or(DEFAULT_PREFIX).to_owned();
                let routes = routes::<A #au_param>(&prefix);
                let shared = ::std::sync::Arc::new(Shared { api: self.api, #config_init #gate_init });
                routes.with_state(shared).fallback(crate::fallback::not_found::<crate::ApiErrors>(#ids))
            }
        }

        fn routes<A: crate::#trait_name #au_bound>(prefix: &str) -> #state {
            #[allow(unused_mut)]
            let mut router = ::axum::Router::new();
            #(#chunk_calls)*
            router
        }

        #(#chunks)*

        #(#handlers)*
    }
}

#[cfg(test)]
mod tests {
    use super::{RUNTIME, RUNTIME_CRATE, http_date, server_path, structured_date};
    use crate::emit::FileKind;

    #[test]
    fn sunset_dates_become_http_dates() {
        assert_eq!(http_date("2027-06-30").as_deref(), Some("Wed, 30 Jun 2027 00:00:00 GMT"));
        assert_eq!(http_date("1970-01-01").as_deref(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert_eq!(http_date("2024-02-29").as_deref(), Some("Thu, 29 Feb 2024 00:00:00 GMT"));
        assert_eq!(http_date("junk"), None);
        assert_eq!(structured_date("2025-07-01").as_deref(), Some("@1751328000"));
    }

    #[test]
    fn routes_mount_under_the_first_servers_path() {
        assert_eq!(server_path("https://api.run-agent.ai/v1"), "/v1");
        assert_eq!(server_path("http://127.0.0.1:8450/v1/"), "/v1");
        assert_eq!(server_path("https://example.com"), "");
        assert_eq!(server_path("https://example.com/"), "");
        assert_eq!(server_path("/api/v2?x=1"), "/api/v2");
        assert_eq!(server_path("{scheme}://example.com/{version}"), "");
        assert_eq!(server_path("example.com"), "");
    }

    /// `RUNTIME` names every file of the runtime crate but its `lib.rs`, so
    /// a new runtime module cannot be left out of the generated crates.
    #[test]
    fn runtime_files_are_all_copied() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/server/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "lib.rs")
            .collect();
        on_disk.extend(["form.rs".to_owned(), "nullable.rs".to_owned(), "validate.rs".to_owned()]);
        on_disk.sort();
        let mut copied: Vec<String> = RUNTIME.iter().map(|(name, _)| (*name).to_owned()).collect();
        copied.sort();
        assert_eq!(copied, on_disk);
    }

    /// The copies of the runtime name the generated crate in their doc
    /// examples, and nothing generated for another spec names RunAgent.
    #[test]
    fn other_specs_get_their_own_names() {
        let spec = include_str!("../../../../tests/fixtures/minimal.yaml");
        let files = crate::generate(spec).unwrap();
        let server: Vec<_> = files.0.iter().filter(|(path, _)| path.starts_with("server/")).collect();
        assert!(server.len() > 10);
        for (path, file) in &server {
            assert!(!file.contents.contains(RUNTIME_CRATE), "{path} names the runtime crate");
            assert!(!file.contents.to_ascii_lowercase().contains("runagent"), "{path} says RunAgent");
        }
        let error = &files.0["server/src/error.rs"];
        assert_eq!(error.kind, FileKind::RustVerbatim);
        assert!(error.contents.contains("use minimal_server::ApiFailure;"));
        let cargo = &files.0["server/Cargo.toml"].contents;
        assert!(cargo.contains("name = \"minimal-server\"") && cargo.contains("keywords = [\"minimal\","), "{cargo}");
        let envelope = &files.0["server/src/envelope.rs"].contents;
        assert!(envelope.contains("crate::error::PROBLEM_JSON") && envelope.contains("\"minimal\""), "{envelope}");
        let router = &files.0["server/src/router.rs"].contents;
        assert!(!router.contains("Authenticator") && !router.contains("identified"), "{router}");
    }
}
