//! The client crate: `Cargo.toml`, `README.md`, `lib.rs`, the models, one
//! request builder per operation and `api.rs`, the type through which the
//! runtime learns the spec's conventions (the `ApiModel`, `LongRunning` and
//! `CancelOperation` impls), plus the runtime's files copied verbatim from
//! `runtime/client/src` (see `runtime/client/src/lib.rs`).
//!
//! Everything spec-dependent is read from the IR's conventions
//! (`api.conventions`, `SseEvent::terminal`/`failure`, `Pagination`); a
//! convention the spec does not follow turns its feature off instead of
//! producing code that names types the spec lacks.

use super::builders;
use super::doc_text::{doc_attrs, lines_to_attrs, lines_to_inner_attrs, rustdoc};
use super::models::{self, Mode, ident, rust_type, shape_check};
use super::{EmitError, Files, bodies, versions};
use crate::config::Names;
use crate::ir::{
    Api, ApiKeyLocation, Encoding, ErrorConvention, Field, LongRunning, Method, ObjectStyle, Operation, ParamLocation,
    Parameter, PathSegment, ResponseBody, SecurityScheme, Shape, StatusCode, TypeKind,
};
use crate::naming::{Case, sanitize};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

// The README, beside the code it shows (a child module sees this one's
// private plan and example helpers).
mod readme;

/// Runtime files copied into `src/`, by file name: every file of
/// `runtime/client/src` but its `lib.rs`, and the two shared with the
/// server. `lib.rs` declares each (see `runtime_mods`).
pub const RUNTIME: &[(&str, &str)] = &[
    ("client.rs", include_str!("../../../runtime/client/src/client.rs")),
    ("error.rs", include_str!("../../../runtime/client/src/error.rs")),
    ("events.rs", include_str!("../../../runtime/client/src/events.rs")),
    ("hooks.rs", include_str!("../../../runtime/client/src/hooks.rs")),
    ("model.rs", include_str!("../../../runtime/client/src/model.rs")),
    ("operation.rs", include_str!("../../../runtime/client/src/operation.rs")),
    ("pagination.rs", include_str!("../../../runtime/client/src/pagination.rs")),
    ("response.rs", include_str!("../../../runtime/client/src/response.rs")),
    ("retry.rs", include_str!("../../../runtime/client/src/retry.rs")),
    ("sse.rs", include_str!("../../../runtime/client/src/sse.rs")),
    ("testing.rs", include_str!("../../../runtime/client/src/testing.rs")),
    ("url.rs", include_str!("../../../runtime/client/src/url.rs")),
    ("form.rs", include_str!("../../../runtime/common/form.rs")),
    ("nullable.rs", include_str!("../../../runtime/common/nullable.rs")),
    ("validate.rs", include_str!("../../../runtime/common/validate.rs")),
];

/// The spec-derived files of `src/`; none may share a runtime file's name.
const GENERATED: &[&str] = &["lib.rs", "types.rs", "operations.rs", "api.rs"];

/// Names a builder uses itself (its methods and fields), so no parameter
/// may take them: a parameter becomes a field and a setter of the builder.
/// Keep in step with `operation` below; the `param-collision` fixture
/// compiles a parameter named after each.
pub const RESERVED_PARAMS: &[&str] = &["body", "client", "options", "send", "validate", "request", "into_stream"];

/// The methods the runtime defines on `Client` itself (public or not): an
/// operation's method must not take one of these names, or its inherent
/// impl would clash with the runtime's. The test below keeps the list
/// complete; lowering must avoid them when it names operations.
pub const RESERVED_METHODS: &[&str] = &[
    "apply_query_credentials",
    "assemble_headers",
    "attempt_timeout",
    "base_url",
    "builder",
    "chosen_credentials",
    "clone",
    "endpoint_url",
    "execute",
    "execute_stream",
    "execute_url",
    "fmt",
    "from_env",
    "request_headers",
    "resolve_url",
    "resume_policy",
    "retry_policy",
    "retry_policy_for",
    "send_with_retries",
    "timeout",
];

/// Runtime modules whose public items are re-exported at the crate root
/// (those of `error` all have an alias there instead).
const REEXPORTED: &[&str] =
    &["client", "events", "form", "hooks", "model", "operation", "pagination", "response", "retry", "sse", "validate"];

/// What the spec's conventions let the client do, decided once.
pub(crate) struct Plan<'a> {
    api: &'a Api,
    names: &'a Names,
    /// The error envelope, if the spec has one.
    error: Option<&'a ErrorConvention>,
    /// Long-running operations, if the client can poll them.
    long_running: Option<LongRunningPlan<'a>>,
    /// The idempotency-key header, if the spec takes one.
    idempotency_header: Option<&'a str>,
}

/// Long-running operations as the client runs them.
struct LongRunningPlan<'a> {
    convention: &'a LongRunning,
    /// The operation that fetches one by id, when it can be called with
    /// the id alone and answers the poll body.
    poll: Option<&'a Operation>,
    /// The operation that cancels one, under the same conditions.
    cancel: Option<&'a Operation>,
}

impl<'a> Plan<'a> {
    pub(crate) fn new(api: &'a Api, names: &'a Names) -> Self {
        let mut plan = Plan {
            api,
            names,
            error: api.conventions.error.as_ref(),
            long_running: None,
            idempotency_header: api.conventions.idempotency_key.as_ref().map(|e| e.name.as_str()),
        };
        plan.long_running = api.conventions.long_running.as_ref().and_then(|convention| {
            // Callable with the id alone, answering the poll body.
            let by_id = |name: &str| {
                let op = api.operations.iter().find(|o| o.name == name)?;
                let args: Vec<&Parameter> = op.parameters.iter().filter(|p| is_argument(&plan, p)).collect();
                let id_only = matches!(args.as_slice(), [p] if p.location == ParamLocation::Path && matches!(p.shape, Shape::String(_)));
                let body_ok = op.body.as_ref().is_none_or(|b| !b.required);
                let answers = matches!(
                    plan.success_kind(op),
                    Success::Single { shape: Some(Shape::Named(n)), handle: false } if *n == convention.poll_body
                );
                (id_only && body_ok && answers && !op.is_stream()).then_some(op)
            };
            let poll = by_id(&convention.poll);
            let cancel = convention.cancel.as_deref().and_then(by_id);
            // Without a way to poll, a 202 body is only a typed body.
            (poll.is_some() || convention.check_url_field.is_some()).then_some(LongRunningPlan {
                convention,
                poll,
                cancel,
            })
        });
        plan
    }

    /// The accepted body's type, when 202s become operation handles.
    fn accepted(&self) -> Option<&'a str> {
        self.long_running.as_ref().map(|l| l.convention.accepted.as_str())
    }

    /// Whether a success response becomes an operation handle: a `202`
    /// with the accepted body (the same type answered with another status,
    /// such as the record a poll returns, stays a plain body).
    pub(crate) fn is_handle(&self, status: StatusCode, shape: &Shape) -> bool {
        status == StatusCode::Code(202) && matches!((shape, self.accepted()), (Shape::Named(n), Some(a)) if n == a)
    }

    pub(crate) fn success_kind<'o>(&self, op: &'o Operation) -> Success<'o> {
        if op.is_stream() {
            return Success::Stream;
        }
        let successes: Vec<_> = op.successes().collect();
        if successes.len() > 1 {
            return Success::Several;
        }
        match successes.first().map(|r| (r.status, r.body.as_ref())) {
            Some((status, Some(ResponseBody::Json { shape, .. }))) => {
                Success::Single { shape: Some(shape), handle: self.is_handle(status, shape) }
            }
            Some((_, Some(body @ (ResponseBody::Text { .. } | ResponseBody::Binary { .. })))) => Success::Raw(body),
            _ => Success::Single { shape: None, handle: false },
        }
    }

    /// The crate as a Rust path, for examples (`runagent_client`).
    fn lib(&self) -> String {
        self.names.client_lib()
    }
}

pub fn emit(api: &Api, names: &Names, files: &mut Files) -> Result<(), EmitError> {
    debug_assert!(GENERATED.iter().all(|g| RUNTIME.iter().all(|(r, _)| r != g)));
    let plan = Plan::new(api, names);
    let dir = "client";
    files.toml(format!("{dir}/Cargo.toml"), cargo_toml(&plan));
    files.markdown(format!("{dir}/README.md"), readme::readme(&plan));
    files.rust(format!("{dir}/src/lib.rs"), lib_rs(&plan), "client lib")?;
    files.rust(format!("{dir}/src/api.rs"), api_rs(&plan), "client model")?;
    files.rust(format!("{dir}/src/types.rs"), models::emit_types(api, Mode::Client), "client models")?;
    files.rust(format!("{dir}/src/operations.rs"), operations(&plan), "client operations")?;
    for (name, source) in RUNTIME {
        files.verbatim(format!("{dir}/src/{name}"), source);
    }
    files.rust(format!("{dir}/examples/quickstart.rs"), example(&plan), "client example")?;
    Ok(())
}

/// crates.io keywords: the crate's stem, then generic ones (at most five,
/// each a letter then letters, digits, `-` or `_`, up to 20 characters).
fn keywords(names: &Names) -> Vec<String> {
    let stem = names.client_crate.strip_suffix("-client").unwrap_or(&names.client_crate).to_ascii_lowercase();
    let valid = |k: &str| {
        k.len() <= 20
            && k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let mut out: Vec<String> = Vec::new();
    for k in [stem.as_str(), "api", "client", "openapi", "rest"] {
        if valid(k) && !out.iter().any(|o| o == k) {
            out.push(k.to_owned());
        }
    }
    out
}

fn cargo_toml(plan: &Plan) -> String {
    let (api, names) = (plan.api, plan.names);
    let v = versions::CLIENT;
    let deps: String = v.iter().map(|(name, spec)| format!("{name} = {spec}\n")).collect();
    let keywords: Vec<String> = keywords(names).iter().map(|k| format!("{k:?}")).collect();
    let mut features = vec!["Typed", "retrying"];
    if api.operations.iter().any(|o| o.pagination.is_some()) {
        features.push("paginating");
    }
    if api.operations.iter().any(Operation::is_stream) {
        features.push("streaming");
    }
    let features = features.join(", ");
    let title = api.title.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"[package]
name = "{name}"
version = "{version}"
description = "{features} Rust client for the {title}"
edition = "2024"
rust-version = "1.88"
license = "MIT OR Apache-2.0"
readme = "README.md"
keywords = [{keywords}]
categories = ["api-bindings", "web-programming::http-client"]

[dependencies]
{deps}
[dev-dependencies]
tokio = {{ version = "1.54.1", features = ["macros", "rt-multi-thread"] }}
# For the README's test against the server crate's fake; a dev-dependency
# without a version is left out when the crate is published.
{server} = {{ path = "../server" }}
"#,
        server = names.server_crate,
        name = names.client_crate,
        version = names.crate_version,
        keywords = keywords.join(", "),
    )
}

/// A Rust literal for a required argument in a doc example, from the
/// parameter's example: `None` when its type has no simple literal.
fn arg_literal(plan: &Plan, p: &Parameter) -> Option<String> {
    let example = p.example.as_ref();
    match &p.shape {
        Shape::String(_) => Some(match example {
            Some(serde_json::Value::String(s)) => format!("{s:?}"),
            _ => "\"example\"".to_owned(),
        }),
        Shape::Integer(_) => Some(example.and_then(serde_json::Value::as_i64).unwrap_or(1).to_string()),
        Shape::Number(_) => Some(format!("{:?}", example.and_then(serde_json::Value::as_f64).unwrap_or(1.0))),
        Shape::Boolean => Some(example.and_then(serde_json::Value::as_bool).unwrap_or(true).to_string()),
        Shape::Named(n) => {
            let TypeKind::Enum(e) = &plan.api.types.get(n)?.kind else { return None };
            let wanted = example.and_then(serde_json::Value::as_str);
            let variant = e.variants.iter().find(|v| Some(v.api_name.as_str()) == wanted).or(e.variants.first())?;
            Some(format!("{}::types::{n}::{}", plan.lib(), variant.name))
        }
        _ => None,
    }
}

/// A call of an operation as doc-example text, `client.get_pet("pet_1")`,
/// with the lines that make its body first; `None` when an argument has no
/// simple literal.
fn example_call(plan: &Plan, op: &Operation) -> Option<(String, String)> {
    let mut args = op
        .parameters
        .iter()
        .filter(|p| is_argument(plan, p))
        .map(|p| arg_literal(plan, p))
        .collect::<Option<Vec<_>>>()?;
    let mut setup = String::new();
    if let Some(body) = op.body.as_ref().filter(|b| b.required) {
        let primary = body.primary();
        if matches!(primary.encoding, Encoding::Text | Encoding::Binary) {
            return None;
        }
        let example = primary.example.clone().unwrap_or(serde_json::json!({}));
        let types = format!("{}::types::", plan.lib());
        // A struct body is built with its constructor and setters; anything
        // they cannot spell (a `oneOf`, a file) is decoded from the example.
        let built = match &primary.shape {
            Shape::Named(n) => builders::example_expr(plan.api, &types, n, &example),
            _ => None,
        };
        match built {
            Some(expr) => setup.push_str(&format!("let body = {expr};\n")),
            None => {
                let ty = match &primary.shape {
                    Shape::Named(n) => format!("{types}{n}"),
                    _ => "_".into(),
                };
                setup.push_str(&format!(
                    "let body: {ty} = serde_json::from_value(serde_json::json!({}))?;\n",
                    serde_json::to_string(&example).unwrap_or_default()
                ));
            }
        }
        args.push("body".into());
    }
    Some((setup, format!("client.{}({})", op.name, args.join(", "))))
}

/// The operation the README and crate docs show first: a paged list, else
/// the first plain call, each only if its example can be written.
fn first_example<'o>(plan: &Plan, ops: &'o [Operation]) -> Option<(&'o Operation, String, String)> {
    let usable = |op: &&'o Operation| !op.deprecated && !op.is_stream();
    let with_call = |op: &'o Operation| example_call(plan, op).map(|(setup, call)| (op, setup, call));
    ops.iter()
        .filter(usable)
        // Shown twice (one page, then every item), so without a body to move.
        .filter(|o| pagination_fields(plan, o).is_some() && o.body.as_ref().is_none_or(|b| !b.required))
        .find_map(with_call)
        .or_else(|| ops.iter().filter(usable).find_map(with_call))
}

/// What the environment-variable comment of an example says.
fn env_comment(plan: &Plan) -> String {
    if plan.api.conventions.bearer.is_some() {
        format!("// Reads {} and {}.", plan.names.api_key_env(), plan.names.base_url_env())
    } else {
        format!("// Reads {} (and {}, if the API needs a key).", plan.names.base_url_env(), plan.names.api_key_env())
    }
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// The `mod` lines of the runtime files, in `RUNTIME` order.
fn runtime_mods() -> Vec<TokenStream> {
    RUNTIME
        .iter()
        .map(|(file, _)| {
            let name = file.trim_end_matches(".rs");
            let m = format_ident!("{}", name);
            match name {
                "testing" => quote!(#[cfg(test)] mod #m;),
                // Only models with nullable fields use it.
                "nullable" => quote!(#[allow(dead_code)] mod #m;),
                _ if REEXPORTED.contains(&name) => quote!(mod #m; pub use #m::*;),
                _ => quote!(mod #m;),
            }
        })
        .collect()
}

fn lib_rs(plan: &Plan) -> TokenStream {
    let (api, names) = (plan.api, plan.names);
    let lib = plan.lib();
    let mods = runtime_mods();
    let crate_doc = crate_docs(plan);
    let key_env = names.api_key_env();
    let url_env = names.base_url_env();
    let default_url = default_base_url(api).map(|url| {
        quote! {
            /// The API's server, used when no base URL is configured.
            pub const DEFAULT_BASE_URL: &str = #url;
        }
    });
    let key_line = if api.conventions.bearer.is_some() { "    .api_key(\"...\")\n" } else { "" };
    let url_line = if default_base_url(api).is_some() { "" } else { "    .base_url(\"https://api.example.com\")\n" };
    let client_doc = format!(
        "A client for the {title}: one method per operation, each returning a\nrequest builder. Cloning is cheap and clones share one connection pool.\n\n```no_run\n# fn main() -> Result<(), {lib}::Error> {{\nuse std::time::Duration;\n\nlet client = {lib}::Client::builder()\n{key_line}{url_line}    .timeout(Duration::from_secs(30))\n    .retry_policy({lib}::RetryPolicy::default().max_retries(4).jitter({lib}::Jitter::Full))\n    .build()?;\n# let _ = client;\n# Ok(())\n# }}\n```",
        title = api.title,
    );
    let client_doc = lines_to_attrs(&client_doc);
    let paginated = api.operations.iter().any(|o| pagination_fields(plan, o).is_some()).then(|| {
        let doc = lines_to_attrs(&format!(
            "Every item of a paged list, fetched page by page as they are used.\n\n```no_run\n# async fn run(items: {lib}::Paginated<String>) -> Result<(), {lib}::Error> {{\nuse futures::TryStreamExt;\nlet all: Vec<String> = items.try_collect().await?;\n# let _ = all;\n# Ok(())\n# }}\n```"
        ));
        quote! {
            #doc
            pub type Paginated<T> = pagination::Paginated<T, Api>;
        }
    });
    let handle = plan.long_running.as_ref().map(|_| {
        let doc = lines_to_attrs(&format!(
            "A long-running operation the API accepted (a `202 Accepted` answer).\n\n```no_run\n# async fn run(handle: {lib}::OperationHandle) -> Result<(), {lib}::Error> {{\nuse std::time::Duration;\n\nlet operation = handle.wait_with({lib}::WaitOptions::new().timeout(Duration::from_secs(600))).await?;\nprintln!(\"{{operation:?}}\");\n# Ok(())\n# }}\n```"
        ));
        quote! {
            #doc
            pub type OperationHandle = operation::OperationHandle<Api>;
        }
    });
    quote! {
        #crate_doc
        #![deny(missing_docs)]
        #![forbid(unsafe_code)]

        pub mod types;
        pub mod operations;
        mod api;
        pub use api::Api;
        #(#mods)*

        #client_doc
        pub type Client = client::Client<Api>;
        /// Configures and builds a [`Client`].
        pub type ClientBuilder = client::ClientBuilder<Api>;
        /// Everything that can go wrong when calling the API.
        pub type Error = error::Error<Api>;
        /// A non-success response from the API.
        pub type ApiFailure = error::ApiFailure<Api>;
        /// An event reporting a failure on an event stream.
        pub type StreamFailure = error::StreamFailure<Api>;
        #paginated
        #handle

        /// The environment variable `Client::from_env` reads the API key from.
        pub const API_KEY_ENV: &str = #key_env;
        /// The environment variable `Client::from_env` reads the base URL from.
        pub const BASE_URL_ENV: &str = #url_env;
        #default_url

        // The README's examples are compiled as doctests, so that what it
        // shows keeps building against the crate.
        #[cfg(doctest)]
        #[doc = include_str!("../README.md")]
        struct ReadmeDoctests;
    }
}

/// The first server whose URL is absolute http(s) without variables.
fn default_base_url(api: &Api) -> Option<&str> {
    api.servers
        .iter()
        .map(|s| s.url.as_str())
        .find(|u| (u.starts_with("https://") || u.starts_with("http://")) && !u.contains('{'))
}

fn crate_docs(plan: &Plan) -> TokenStream {
    let api = plan.api;
    let lib = plan.lib();
    let mut text = format!("The Rust client for the {} (version {}).\n\n", api.title, api.version);
    if let Some(d) = &api.description {
        let first_para = d.split("\n\n").next().unwrap_or("");
        text.push_str(&rustdoc(first_para));
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "# Example\n\n```no_run\n# async fn run() -> Result<(), Box<dyn std::error::Error>> {{\n{}\nlet client = {lib}::Client::from_env()?;\n",
        env_comment(plan)
    ));
    match first_example(plan, &api.operations) {
        Some((op, setup, call))
            if pagination_fields(plan, op).is_some() && op.body.as_ref().is_none_or(|b| !b.required) =>
        {
            text.push_str(&format!(
            "\n// One page, with the response metadata.\n{setup}let page = {call}.send().await?;\nprintln!(\"request id: {{:?}}\", page.meta.request_id);\n\n// Every item of every page, fetched lazily.\nuse futures::StreamExt;\nlet mut all = {call}.into_stream();\nwhile let Some(item) = all.next().await {{\n    println!(\"{{:?}}\", item?);\n}}\n"
            ))
        }
        Some((_, setup, call)) => text.push_str(&format!(
            "\n// The body, with the response metadata.\n{setup}let response = {call}.send().await?;\nprintln!(\"{{:?}} (request id {{:?}})\", response.body, response.meta.request_id);\n"
        )),
        None => text.push_str("# let _ = client;\n"),
    }
    text.push_str("# Ok(())\n# }\n```\n\nPer-call settings override the client's:\n\n```no_run\n");
    text.push_str(&format!(
        "# use std::time::Duration;\nlet options = {lib}::RequestOptions::new()\n    .timeout(Duration::from_secs(120))\n    .max_retries(0)\n    .header(\"x-trace\", \"abc\");\n# let _ = options;\n```\n"
    ));
    lines_to_inner_attrs(&text)
}

/// A named struct's field, by Rust name.
fn struct_field<'a>(api: &'a Api, type_name: &str, field: &str) -> Option<&'a Field> {
    match &api.types.get(type_name)?.kind {
        TypeKind::Struct(s) => s.fields.iter().find(|f| f.name == field),
        _ => None,
    }
}

/// `access` (a field of type `field`) as an owned `Option<T>`.
fn owned_option(field: Option<&Field>, access: TokenStream) -> TokenStream {
    let Some(f) = field else { return quote!(::std::option::Option::None) };
    let unbox = if f.boxed { quote!(.map(|b| *b)) } else { TokenStream::new() };
    match (f.required, f.nullable) {
        (true, false) if f.boxed => quote!(::std::option::Option::Some((*#access).clone())),
        (true, false) => quote!(::std::option::Option::Some(#access.clone())),
        (true, true) | (false, false) => quote!(#access.clone() #unbox),
        (false, true) => quote!(#access.clone().flatten() #unbox),
    }
}

/// `access` (a field of type `field`) as an `Option<&T>`.
fn ref_option(f: &Field, access: TokenStream) -> TokenStream {
    match (f.required, f.nullable, f.boxed) {
        (true, false, false) => quote!(::std::option::Option::Some(&#access)),
        (true, false, true) => quote!(::std::option::Option::Some(&*#access)),
        (true, true, false) | (false, false, false) => quote!(#access.as_ref()),
        (true, true, true) | (false, false, true) => quote!(#access.as_deref()),
        (false, true, false) => quote!(#access.as_ref().and_then(::std::option::Option::as_ref)),
        (false, true, true) => quote!(#access.as_ref().and_then(::std::option::Option::as_deref)),
    }
}

/// A string field `access` as a `&str`, empty when absent.
fn str_or_empty(f: &Field, access: TokenStream) -> TokenStream {
    match (f.required, f.nullable) {
        (true, false) => quote!(#access.as_str()),
        (true, true) | (false, false) => quote!(#access.as_deref().unwrap_or_default()),
        (false, true) => quote!(#access.as_ref().and_then(::std::option::Option::as_deref).unwrap_or_default()),
    }
}

/// A string field `access` as an `Option<&str>`.
fn str_option(f: &Field, access: TokenStream) -> TokenStream {
    match (f.required, f.nullable) {
        (true, false) => quote!(::std::option::Option::Some(#access.as_str())),
        (true, true) | (false, false) => quote!(#access.as_deref()),
        (false, true) => quote!(#access.as_ref().and_then(::std::option::Option::as_deref)),
    }
}

/// An operation's security requirements as `RequestSpec::security` takes
/// them: alternatives, each the names of the schemes it needs together.
fn security_requirements(op: &Operation) -> TokenStream {
    let alternatives = op.security.iter().map(|requirement| {
        let names = requirement.iter().map(|(name, _)| name.as_str());
        quote!(&[#(#names),*])
    });
    quote!(&[#(#alternatives),*])
}

/// `ApiModel::SECURITY_SCHEMES`: how each scheme of the spec carries its credential.
fn security_schemes(api: &Api) -> TokenStream {
    let schemes = api.security_schemes.iter().map(|(name, scheme)| {
        let kind = match scheme {
            SecurityScheme::Basic { .. } => quote!(crate::SchemeKind::Basic),
            SecurityScheme::ApiKey { location, name, .. } => {
                let location = match location {
                    ApiKeyLocation::Header => quote!(crate::KeyLocation::Header),
                    ApiKeyLocation::Query => quote!(crate::KeyLocation::Query),
                    ApiKeyLocation::Cookie => quote!(crate::KeyLocation::Cookie),
                };
                quote!(crate::SchemeKind::ApiKey { location: #location, name: #name })
            }
            SecurityScheme::Bearer { .. } | SecurityScheme::OAuth2 { .. } | SecurityScheme::OpenIdConnect { .. } => {
                quote!(crate::SchemeKind::Bearer)
            }
        };
        quote!(crate::Scheme { name: #name, kind: #kind })
    });
    quote!(&[#(#schemes),*])
}

/// `src/api.rs`: the `Api` type and its `ApiModel` (and, with long-running
/// operations, `LongRunning` and `CancelOperation`) impls, all read from the
/// conventions.
fn api_rs(plan: &Plan) -> TokenStream {
    let api = plan.api;
    let t = quote!(crate::types::);
    let default_url = match default_base_url(api) {
        Some(_) => quote!(::std::option::Option::Some(crate::DEFAULT_BASE_URL)),
        None => quote!(::std::option::Option::None),
    };
    // A key is required up front only when the API's one scheme is a bearer
    // key; with several schemes each operation sends what it can.
    let bearer = api.conventions.bearer.is_some() && api.security_schemes.len() == 1;
    let schemes = security_schemes(api);
    let idempotency = match plan.idempotency_header {
        Some(h) => quote!(::std::option::Option::Some(#h)),
        None => quote!(::std::option::Option::None),
    };

    // Errors: the envelope's types, or plain JSON.
    let (error_types, status_codes, error_fns) = match plan.error {
        Some(e) => {
            let code_ty = match &e.code_enum {
                Some(n) => {
                    let n = ident(n);
                    quote!(#t #n)
                }
                None => quote!(::std::string::String),
            };
            let details_ty = match &e.details {
                Some(d) => {
                    let n = ident(&d.type_name);
                    quote!(#t #n)
                }
                None => quote!(::std::convert::Infallible),
            };
            let envelope = ident(&e.envelope);
            let path = e.error_path.iter().map(|f| ident(f));
            let error = quote!(body #(. #path)*);
            let code = ident(&e.code_field);
            let message = ident(&e.message_field);
            let details = match &e.details {
                Some(d) => {
                    let field = ident(&d.field);
                    owned_option(struct_field(api, &e.error_type, &d.field), quote!(#error.#field))
                }
                None => quote!(::std::option::Option::None),
            };
            let error_code = match &e.code_enum {
                Some(n) => {
                    let n = ident(n);
                    quote! {
                        ::serde_json::from_value(::serde_json::Value::String(wire.to_owned()))
                            .unwrap_or_else(|_| #t #n::Unknown(wire.to_owned()))
                    }
                }
                None => quote!(wire.to_owned()),
            };
            let describe = match &e.details {
                Some(d) => {
                    let part =
                        |name: &Option<String>| match name.as_ref().and_then(|n| struct_field(api, &d.type_name, n)) {
                            Some(f) => {
                                let n = ident(&f.name);
                                str_option(f, quote!(details.#n))
                            }
                            None => quote!(::std::option::Option::None),
                        };
                    let (field, reason) = (part(&d.field_field), part(&d.reason_field));
                    quote!((#field, #reason))
                }
                None => quote!(match *details {}),
            };
            let pairs = e.status_codes.iter().map(|(status, code)| {
                let status = proc_macro2::Literal::u16_unsuffixed(*status);
                quote!((#status, #code))
            });
            (
                quote! {
                    type ErrorCode = #code_ty;
                    type ErrorDetails = #details_ty;
                    type ErrorBody = #t #envelope;
                },
                quote!(&[#(#pairs),*]),
                quote! {
                    fn split_error(body: &Self::ErrorBody) -> ::std::option::Option<crate::model::ErrorParts<Self>> {
                        ::std::option::Option::Some((
                            ::std::option::Option::Some(#error.#code.clone()),
                            #error.#message.clone(),
                            #details,
                        ))
                    }

                    fn error_code(wire: &str) -> Self::ErrorCode {
                        #error_code
                    }

                    fn describe_details(details: &Self::ErrorDetails) -> (::std::option::Option<&str>, ::std::option::Option<&str>) {
                        #describe
                    }
                },
            )
        }
        None => (
            quote! {
                type ErrorCode = ::std::string::String;
                type ErrorDetails = ::serde_json::Value;
                type ErrorBody = ::serde_json::Value;
            },
            quote!(&[]),
            quote! {
                fn split_error(body: &Self::ErrorBody) -> ::std::option::Option<crate::model::ErrorParts<Self>> {
                    crate::model::json_error_parts(body)
                }

                fn error_code(wire: &str) -> Self::ErrorCode {
                    wire.to_owned()
                }

                fn describe_details(details: &Self::ErrorDetails) -> (::std::option::Option<&str>, ::std::option::Option<&str>) {
                    crate::model::json_details_parts(details)
                }
            },
        ),
    };

    // Long-running operations.
    let (operation_ty, operation_fns, long_running_impls) = match &plan.long_running {
        Some(lr) => long_running_impls(plan, lr),
        None => (
            quote!(::std::convert::Infallible),
            quote! {
                fn operation_id(operation: &Self::Operation) -> &str {
                    match *operation {}
                }

                fn operation_error(operation: &Self::Operation) -> ::std::option::Option<(&Self::ErrorCode, &str)> {
                    match *operation {}
                }
            },
            TokenStream::new(),
        ),
    };

    let doc = lines_to_attrs(&format!(
        "The {} as the client's runtime sees it: its error envelope, its\nlong-running operations and the names the client introduces itself with,\nall read from the spec's conventions. The crate's [`Client`](crate::Client),\n[`Error`](crate::Error) and the other aliases fill it in.",
        api.title
    ));
    quote! {
        //! The spec's conventions, told to the runtime.
        #![allow(deprecated)]

        #doc
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::marker::Copy, ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash, ::std::default::Default)]
        pub struct Api;

        impl crate::model::ApiModel for Api {
            #error_types
            type Operation = #operation_ty;

            const API_KEY_ENV: &'static str = crate::API_KEY_ENV;
            const BASE_URL_ENV: &'static str = crate::BASE_URL_ENV;
            const DEFAULT_BASE_URL: ::std::option::Option<&'static str> = #default_url;
            const USER_AGENT: &'static str = ::std::concat!(::std::env!("CARGO_PKG_NAME"), "/", ::std::env!("CARGO_PKG_VERSION"), " (rust)");
            const BEARER_AUTH: bool = #bearer;
            const SECURITY_SCHEMES: &'static [crate::Scheme] = #schemes;
            const IDEMPOTENCY_KEY_HEADER: ::std::option::Option<&'static str> = #idempotency;
            const STATUS_CODES: &'static [(u16, &'static str)] = #status_codes;

            #error_fns
            #operation_fns
        }

        #long_running_impls
    }
}

/// The record type, the `operation_id`/`operation_error` functions of
/// `ApiModel`, and the `LongRunning` (and `CancelOperation`) impls.
fn long_running_impls(plan: &Plan, lr: &LongRunningPlan) -> (TokenStream, TokenStream, TokenStream) {
    let api = plan.api;
    let t = quote!(crate::types::);
    let c = lr.convention;
    let record = ident(&c.record);
    let accepted = ident(&c.accepted);
    let poll_body = ident(&c.poll_body);

    // The record's id: the field with the accepted id's wire name.
    let accepted_id = struct_field(api, &c.accepted, &c.id_field);
    let record_id = accepted_id.and_then(|a| match &api.types.get(&c.record)?.kind {
        TypeKind::Struct(s) => s.fields.iter().find(|f| f.api_name == a.api_name),
        _ => None,
    });
    let (operation_id_param, operation_id) = match record_id {
        Some(f) => {
            let n = ident(&f.name);
            (quote!(operation), str_or_empty(f, quote!(operation.#n)))
        }
        None => (quote!(_operation), quote!("")),
    };
    let error_field = match (&c.error_field, plan.error) {
        (Some(e), Some(conv)) => struct_field(api, &c.record, &e.field).map(|f| (f, conv)),
        _ => None,
    };
    let (operation_error_param, operation_error) = match error_field {
        Some((f, conv)) => {
            let field = ident(&f.name);
            let found = ref_option(f, quote!(operation.#field));
            let code = ident(&conv.code_field);
            let message = ident(&conv.message_field);
            (quote!(operation), quote!(#found.map(|e| (&e.#code, e.#message.as_str()))))
        }
        None => (quote!(_operation), quote!(::std::option::Option::None)),
    };
    let id_field = ident(&c.id_field);
    let (accepted_id_param, accepted_id_expr) = match accepted_id {
        Some(f) => (quote!(accepted), str_or_empty(f, quote!(accepted.#id_field))),
        None => (quote!(_accepted), quote!("")),
    };
    let (check_url_param, check_url) = match c.check_url_field.as_ref().and_then(|n| struct_field(api, &c.accepted, n))
    {
        Some(f) => {
            let n = ident(&f.name);
            (quote!(accepted), str_option(f, quote!(accepted.#n)))
        }
        None => (quote!(_accepted), quote!(::std::option::Option::None)),
    };
    let response = quote!(crate::ApiResponse<#t #poll_body>);
    let (client_param, poll) = match lr.poll {
        Some(op) => {
            let m = ident(&op.name);
            (quote!(client), quote!(client.#m(id).send()))
        }
        None => (
            quote!(_client),
            quote! {
                ::std::future::ready(::std::result::Result::Err(crate::Error::Config(::std::format!(
                    "operation {id} has no check URL, and the spec has no operation that fetches one by id alone"
                ))))
            },
        ),
    };
    let path = c.record_path.iter().map(|f| ident(f));
    let status = ident(&c.status_field);
    let status_enum = ident(&c.status_enum);
    let succeeded = ident(&c.succeeded);
    let mut arms = vec![quote!(#t #status_enum::#succeeded => crate::operation::OperationState::Succeeded,)];
    if let Some(v) = &c.failed {
        let v = ident(v);
        arms.push(quote!(#t #status_enum::#v => crate::operation::OperationState::Failed,));
    }
    if let Some(v) = &c.cancelled {
        let v = ident(v);
        arms.push(quote!(#t #status_enum::#v => crate::operation::OperationState::Cancelled,));
    }
    let cancel = lr.cancel.map(|op| {
        let m = ident(&op.name);
        quote! {
            impl crate::operation::CancelOperation for Api {
                fn cancel(
                    client: &crate::Client,
                    id: &str,
                ) -> impl ::std::future::Future<Output = ::std::result::Result<#response, crate::Error>> + ::std::marker::Send {
                    client.#m(id).send()
                }
            }
        }
    });
    (
        quote!(#t #record),
        quote! {
            fn operation_id(#operation_id_param: &Self::Operation) -> &str {
                #operation_id
            }

            fn operation_error(#operation_error_param: &Self::Operation) -> ::std::option::Option<(&Self::ErrorCode, &str)> {
                #operation_error
            }
        },
        quote! {
            impl crate::operation::LongRunning for Api {
                type Accepted = #t #accepted;
                type PollBody = #t #poll_body;

                fn accepted_id(#accepted_id_param: &Self::Accepted) -> &str {
                    #accepted_id_expr
                }

                fn check_url(#check_url_param: &Self::Accepted) -> ::std::option::Option<&str> {
                    #check_url
                }

                fn poll(
                    #client_param: &crate::Client,
                    id: &str,
                ) -> impl ::std::future::Future<Output = ::std::result::Result<#response, crate::Error>> + ::std::marker::Send {
                    #poll
                }

                fn into_record(body: Self::PollBody) -> Self::Operation {
                    body #(. #path)*
                }

                #[allow(unreachable_patterns)]
                fn state(operation: &Self::Operation) -> crate::operation::OperationState {
                    match operation.#status {
                        #(#arms)*
                        _ => crate::operation::OperationState::Running,
                    }
                }
            }

            #cancel
        },
    )
}
/// How the builder stores a parameter, and the setter's argument type.
fn param_type(p: &Parameter) -> TokenStream {
    rust_type(&p.shape, &quote!(crate::types::))
}

/// Required path parameters and required query/header parameters are
/// arguments of the method; the rest are builder setters.
pub(crate) fn is_argument(plan: &Plan, p: &Parameter) -> bool {
    p.location == ParamLocation::Path || (p.required && managed_header(plan, p).is_none())
}

/// A header the runtime sets itself, so its builder setter configures the
/// runtime instead of adding a header.
pub(crate) enum Managed {
    /// The spec's idempotency-key header (its convention).
    IdempotencyKey,
    /// `Last-Event-ID`, where a stream resumes (the SSE standard's name).
    LastEventId,
}

pub(crate) fn managed_header(plan: &Plan, p: &Parameter) -> Option<Managed> {
    if p.location != ParamLocation::Header {
        return None;
    }
    if p.api_name.eq_ignore_ascii_case("last-event-id") {
        return Some(Managed::LastEventId);
    }
    plan.idempotency_header.filter(|h| h.eq_ignore_ascii_case(&p.api_name)).map(|_| Managed::IdempotencyKey)
}

fn operations(plan: &Plan) -> TokenStream {
    let items = plan.api.operations.iter().map(|op| operation(plan, op));
    let conversions = failure_conversions(plan.api);
    quote! {
        //! One request builder per operation, the typed responses of operations
        //! with several success bodies, and the events of streaming operations.
        // Methods are named after operationIds, which may read like Rust's
        // conversion conventions (`from_env`, `to_csv`, `into_archive`).
        #![allow(clippy::too_many_arguments, clippy::wrong_self_convention, deprecated)]
        #(#items)*
        #(#conversions)*
    }
}

/// `From<T> for StreamFailure` for the data type `T` of every event that
/// reports a failure, once per type.
fn failure_conversions(api: &Api) -> Vec<TokenStream> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    let events = api.operations.iter().flat_map(|op| op.responses.iter()).filter_map(|r| match &r.body {
        Some(ResponseBody::EventStream(s)) => Some(s.events.iter()),
        _ => None,
    });
    for event in events.flatten() {
        let (Some(failure), Shape::Named(name)) = (&event.failure, &event.data) else { continue };
        if seen.contains(&name.as_str()) {
            continue;
        }
        seen.push(name);
        let ty = ident(name);
        let code = ident(&failure.code_field);
        let message = ident(&failure.message_field);
        let code = if failure.typed_code {
            quote!(event.#code)
        } else {
            quote!(<crate::Api as crate::model::ApiModel>::error_code(&event.#code))
        };
        let doc = format!(" The failure a `{name}` event reports.");
        out.push(quote! {
            impl ::std::convert::From<crate::types::#ty> for crate::StreamFailure {
                #[doc = #doc]
                fn from(event: crate::types::#ty) -> Self {
                    crate::StreamFailure::new(#code, event.#message)
                }
            }
        });
    }
    out
}

/// What a successful call gives back.
pub(crate) enum Success<'a> {
    /// One body type (or none).
    Single { shape: Option<&'a Shape>, handle: bool },
    /// Several 2xx statuses with different bodies: an enum.
    Several,
    /// An event stream.
    Stream,
    /// Text or bytes, not decoded.
    Raw(&'a ResponseBody),
}

pub(crate) fn status_variant(status: StatusCode) -> String {
    match status {
        StatusCode::Code(200) => "Ok".into(),
        StatusCode::Code(201) => "Created".into(),
        StatusCode::Code(202) => "Accepted".into(),
        StatusCode::Code(203) => "NonAuthoritative".into(),
        StatusCode::Code(204) => "NoContent".into(),
        StatusCode::Code(206) => "PartialContent".into(),
        StatusCode::Code(c) => format!("Status{c}"),
        StatusCode::Range(r) => format!("Status{r}xx"),
        StatusCode::Default => "Other".into(),
    }
}

fn op_docs(op: &Operation) -> String {
    let mut text = String::new();
    if let Some(s) = &op.summary {
        text.push_str(s.trim());
        text.push_str("\n\n");
    }
    text.push_str(&format!("`{} {}` (`{}`)", op.method.as_str(), op.path, op.id));
    if let Some(d) = &op.description {
        text.push_str("\n\n");
        text.push_str(d);
    }
    text
}

fn operation(plan: &Plan, op: &Operation) -> TokenStream {
    let security = security_requirements(op);
    let api = plan.api;
    let builder = format_ident!("{}", op.type_prefix);
    let method_name = ident(&op.name);
    let args: Vec<&Parameter> = op.parameters.iter().filter(|p| is_argument(plan, p)).collect();
    let optional: Vec<&Parameter> = op.parameters.iter().filter(|p| !is_argument(plan, p)).collect();
    let body_ty = op.body.as_ref().map(|b| bodies::body_type(b, &quote!(crate::types::)));
    let body_required = op.body.as_ref().is_some_and(|b| b.required);
    // A body of several media types, text or bytes is taken as anything
    // that converts into it (a plain value picks the first media type).
    let body_into = op
        .body
        .as_ref()
        .is_some_and(|b| b.choice.is_some() || matches!(b.primary().encoding, Encoding::Text | Encoding::Binary));
    let choice_enum = op.body.as_ref().map(|b| bodies::choice_enum(&op.id, b, &quote!(crate::types::)));

    // The method on Client.
    let arg_decls: Vec<TokenStream> = args
        .iter()
        .map(|p| {
            let n = ident(&p.name);
            match &p.shape {
                Shape::String(_) => quote!(#n: impl ::std::convert::Into<::std::string::String>),
                _ => {
                    let t = param_type(p);
                    quote!(#n: #t)
                }
            }
        })
        .collect();
    let arg_inits: Vec<TokenStream> = args
        .iter()
        .map(|p| {
            let n = ident(&p.name);
            match &p.shape {
                Shape::String(_) => quote!(#n: #n.into(),),
                _ => quote!(#n,),
            }
        })
        .collect();
    let opt_inits: Vec<TokenStream> = optional
        .iter()
        .map(|p| {
            let n = ident(&p.name);
            quote!(#n: ::std::option::Option::None,)
        })
        .collect();
    let (body_arg, body_init) = match (&body_ty, body_required) {
        (Some(t), true) if body_into => (
            Some(quote!(body: impl ::std::convert::Into<#t>)),
            Some(quote!(body: ::std::option::Option::Some(body.into()),)),
        ),
        (Some(t), true) => (Some(quote!(body: #t)), Some(quote!(body: ::std::option::Option::Some(body),))),
        (Some(_), false) => (None, Some(quote!(body: ::std::option::Option::None,))),
        (None, _) => (None, None),
    };
    let all_args = arg_decls.iter().cloned().chain(body_arg.clone());
    let mut method_doc = op_docs(op);
    method_doc.push_str("\n\nReturns a builder; set optional parameters on it and call `send()`.");
    let method_doc = doc_attrs(Some(&method_doc));
    let deprecated = op.deprecated.then(|| {
        let note = match &op.sunset {
            Some(date) => format!("{} is deprecated and will be removed after {date}", op.id),
            None => format!("{} is deprecated", op.id),
        };
        quote!(#[deprecated(note = #note)])
    });
    let example = operation_example(plan, op);

    // Builder fields.
    let arg_fields: Vec<TokenStream> = args
        .iter()
        .map(|p| {
            let n = ident(&p.name);
            let t = param_type(p);
            quote!(#n: #t,)
        })
        .collect();
    let opt_fields: Vec<TokenStream> = optional
        .iter()
        .map(|p| {
            let n = ident(&p.name);
            let t = param_type(p);
            quote!(#n: ::std::option::Option<#t>,)
        })
        .collect();
    let body_field = body_ty.as_ref().map(|t| quote!(body: ::std::option::Option<#t>,));
    let setters: Vec<TokenStream> = optional
        .iter()
        .map(|p| {
            let n = ident(&p.name);
            let mut text = p.description.clone().unwrap_or_else(|| format!("Sets `{}`.", p.api_name));
            if let Some(d) = &p.default {
                text.push_str(&format!("\n\nThe server uses `{d}` when it is not set."));
            }
            let docs = doc_attrs(Some(&text));
            let dep = p.deprecated.then(|| quote!(#[deprecated]));
            match &p.shape {
                Shape::String(_) => quote! {
                    #docs #dep
                    pub fn #n(mut self, value: impl ::std::convert::Into<::std::string::String>) -> Self {
                        self.#n = ::std::option::Option::Some(value.into());
                        self
                    }
                },
                _ => {
                    let t = param_type(p);
                    quote! {
                        #docs #dep
                        pub fn #n(mut self, value: #t) -> Self {
                            self.#n = ::std::option::Option::Some(value);
                            self
                        }
                    }
                }
            }
        })
        .collect();
    let body_setter = match (&body_ty, body_required) {
        (Some(t), false) if body_into => Some(quote! {
            /// Sets the request body.
            pub fn body(mut self, value: impl ::std::convert::Into<#t>) -> Self {
                self.body = ::std::option::Option::Some(value.into());
                self
            }
        }),
        (Some(t), false) => Some(quote! {
            /// Sets the request body.
            pub fn body(mut self, value: #t) -> Self {
                self.body = ::std::option::Option::Some(value);
                self
            }
        }),
        _ => None,
    };

    // Validation of what was set.
    let param_checks: Vec<TokenStream> = op
        .parameters
        .iter()
        .filter_map(|p| {
            let n = ident(&p.name);
            let wire = &p.api_name;
            let check = shape_check(api, &p.shape, &quote!(value), 0)?;
            let check = quote! {
                path.push_field(#wire);
                #check
                path.pop();
            };
            Some(if is_argument(plan, p) {
                quote! { { let value = &self.#n; #check } }
            } else {
                quote! { if let ::std::option::Option::Some(value) = &self.#n { #check } }
            })
        })
        .collect();
    // Through the shape, like the parameters: a body that is a map or a
    // list has no `Validate` impl of its own.
    let body_check = op.body.as_ref().and_then(|b| bodies::body_check(api, b)).map(|check| {
        quote! {
            if let ::std::option::Option::Some(body) = &self.body {
                #check
            }
        }
    });

    // One path for every check, sized once: each parameter steps in and
    // out of it, and the body starts from its top.
    let validation_path = (!param_checks.is_empty() || body_check.is_some())
        .then(|| quote!(let path = &mut crate::validate::FieldPath::with_capacity(64, 8);));

    // Building the request.
    let path_expr = path_expr(api, op);
    let query_pushes: Vec<TokenStream> = op
        .params_in(ParamLocation::Query)
        .map(|p| {
            let n = ident(&p.name);
            let wire = &p.api_name;
            let to_s = to_wire_string(api, &p.shape, quote!(value));
            let push = if let (Some(style), Some(value)) = (p.object_style, api.map_value(&p.shape)) {
                let item = to_wire_string(api, value, quote!(item));
                let key = match style {
                    ObjectStyle::Form => quote!(::std::clone::Clone::clone(key)),
                    ObjectStyle::DeepObject => quote!(::std::format!("{}[{}]", #wire, key)),
                };
                quote! { for (key, item) in value.iter() { free_query.push((#key, #item)); } }
            } else if let (Some(style), Shape::Named(n)) = (p.object_style, &p.shape) {
                object_pushes(api, n, wire, style)
            } else if let Shape::Array(a) = &p.shape {
                let item = to_wire_string(api, &a.items, quote!(item));
                quote! { for item in value.iter() { query.push((#wire, #item)); } }
            } else {
                quote!(query.push((#wire, #to_s));)
            };
            if is_argument(plan, p) {
                quote! { { let value = &self.#n; #push } }
            } else {
                quote! { if let ::std::option::Option::Some(value) = &self.#n { #push } }
            }
        })
        .collect();
    let header_pushes: Vec<TokenStream> = op
        .params_in(ParamLocation::Header)
        .filter(|p| managed_header(plan, p).is_none())
        .map(|p| {
            let n = ident(&p.name);
            let wire = &p.api_name;
            let to_s = to_wire_string(api, &p.shape, quote!(value));
            if is_argument(plan, p) {
                quote! { { let value = &self.#n; headers.push((#wire, #to_s)); } }
            } else {
                quote! { if let ::std::option::Option::Some(value) = &self.#n { headers.push((#wire, #to_s)); } }
            }
        })
        .collect();
    let managed_setters: Vec<TokenStream> = op
        .params_in(ParamLocation::Header)
        .filter_map(|p| {
            let n = ident(&p.name);
            let set = match managed_header(plan, p)? {
                Managed::IdempotencyKey => quote!(idempotency_key),
                Managed::LastEventId => quote!(last_event_id),
            };
            let value = to_wire_string(api, &p.shape, quote!(value));
            Some(quote! {
                if let ::std::option::Option::Some(value) = &self.#n {
                    options = options.#set(#value);
                }
            })
        })
        .collect();
    let body_bytes = bodies::client_body_bytes(op.body.as_ref());
    let op_id = &op.id;
    let path_template = &op.path;
    let accept = bodies::client_accept(&op.responses);
    let http_method = match op.method {
        Method::Get => quote!(::http::Method::GET),
        Method::Put => quote!(::http::Method::PUT),
        Method::Post => quote!(::http::Method::POST),
        Method::Delete => quote!(::http::Method::DELETE),
        Method::Patch => quote!(::http::Method::PATCH),
    };

    // Sending and decoding.
    let (extra_types, send) = send_fn(plan, op);
    let into_stream = pagination_stream(plan, op);
    let required_body_check = (body_ty.is_some() && body_required).then(|| quote! {
        if self.body.is_none() {
            return ::std::result::Result::Err(crate::Error::InvalidRequest(crate::validate::FieldPath::root().error("a request body is required")));
        }
    });
    let builder_doc = format!(" A `{}` request; made by `Client::{}`.", op.id, op.name);

    quote! {
        impl crate::Client {
            #method_doc
            #example
            #deprecated
            pub fn #method_name(&self, #(#all_args),*) -> #builder {
                #builder {
                    client: ::std::clone::Clone::clone(self),
                    #(#arg_inits)*
                    #(#opt_inits)*
                    #body_init
                    options: crate::RequestOptions::default(),
                }
            }
        }

        #[doc = #builder_doc]
        #[derive(::std::fmt::Debug, ::std::clone::Clone)]
        #[must_use = "a request does nothing until it is sent"]
        pub struct #builder {
            client: crate::Client,
            #(#arg_fields)*
            #(#opt_fields)*
            #body_field
            options: crate::RequestOptions,
        }

        impl #builder {
            #(#setters)*
            #body_setter

            /// Per-call options: retries, timeout, idempotency key, extra headers.
            pub fn options(mut self, options: crate::RequestOptions) -> Self {
                self.options = options;
                self
            }

            /// Checks the parameters and body against the spec's constraints.
            pub fn validate(&self) -> ::std::result::Result<(), crate::Error> {
                #required_body_check
                #validation_path
                #(#param_checks)*
                #body_check
                ::std::result::Result::Ok(())
            }

            fn request(&self) -> ::std::result::Result<(crate::RequestSpec, crate::RequestOptions), crate::Error> {
                self.validate()?;
                #[allow(unused_mut)]
                let mut query: ::std::vec::Vec<(&'static str, ::std::string::String)> = ::std::vec::Vec::new();
                #[allow(unused_mut)]
                let mut free_query: ::std::vec::Vec<(::std::string::String, ::std::string::String)> = ::std::vec::Vec::new();
                #(#query_pushes)*
                #[allow(unused_mut)]
                let mut headers: ::std::vec::Vec<(&'static str, ::std::string::String)> = ::std::vec::Vec::new();
                #(#header_pushes)*
                #[allow(unused_mut)]
                let mut options = self.options.clone();
                #(#managed_setters)*
                #body_bytes
                let spec = crate::RequestSpec {
                    method: #http_method,
                    path: #path_expr,
                    query,
                    free_query,
                    headers,
                    body,
                    content_type,
                    accept: #accept,
                    operation: #op_id,
                    path_template: #path_template,
                    security: ::std::option::Option::Some(#security),
                };
                ::std::result::Result::Ok((spec, options))
            }

            #send
            #into_stream
        }

        #extra_types
        #choice_enum
    }
}

fn path_expr(api: &Api, op: &Operation) -> TokenStream {
    // Literal pieces and encoded parameters are pushed into one buffer
    // sized for the literals plus a typical id, instead of `format!` over
    // an encoded `String` per parameter.
    let mut literal = String::new();
    let mut pushes = Vec::new();
    let mut capacity = 0;
    let mut params = 0;
    for seg in &op.segments {
        match seg {
            PathSegment::Literal(l) => literal.push_str(l),
            PathSegment::Param(api_name) => {
                let p = op.parameters.iter().find(|p| p.location == ParamLocation::Path && &p.api_name == api_name);
                if let Some(p) = p {
                    if !literal.is_empty() {
                        capacity += literal.len();
                        pushes.push(push_literal(&literal));
                        literal.clear();
                    }
                    let n = ident(&p.name);
                    let text = match wire_kind(api, &p.shape) {
                        WireKind::Text => quote!(&self.#n),
                        WireKind::Enum => quote!(self.#n.as_str()),
                        WireKind::Display => quote!(&::std::string::ToString::to_string(&self.#n)),
                    };
                    pushes.push(quote!(crate::url::push_segment(&mut path, #text);));
                    params += 1;
                }
            }
        }
    }
    if params == 0 {
        return quote!(::std::string::String::from(#literal));
    }
    if !literal.is_empty() {
        capacity += literal.len();
        pushes.push(push_literal(&literal));
    }
    let capacity = capacity + 32 * params;
    quote!({
        let mut path = ::std::string::String::with_capacity(#capacity);
        #(#pushes)*
        path
    })
}

/// Appends a literal piece of a path to `path`: a single character (`/`
/// between two parameters) as a `char`, as clippy asks.
fn push_literal(literal: &str) -> TokenStream {
    let mut chars = literal.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => quote!(path.push(#c);),
        _ => quote!(path.push_str(#literal);),
    }
}

/// How a parameter's value becomes its wire text.
enum WireKind {
    /// A string already.
    Text,
    /// A string enum: its `as_str()`.
    Enum,
    /// Anything else: its `Display`.
    Display,
}

fn wire_kind(api: &Api, shape: &Shape) -> WireKind {
    let mut shape = shape;
    // Follow aliases (bounded, as `shape_check` does).
    for _ in 0..8 {
        match shape {
            Shape::String(_) => return WireKind::Text,
            Shape::Named(n) => match api.types.get(n).map(|t| &t.kind) {
                Some(TypeKind::Enum(_)) => return WireKind::Enum,
                Some(TypeKind::Alias(inner)) => shape = inner,
                _ => return WireKind::Display,
            },
            _ => return WireKind::Display,
        }
    }
    WireKind::Display
}

/// An expression turning a parameter value (a reference) into its wire text.
/// The pairs of an object-valued query parameter: `key=value` for each
/// property present (`style: form`) or `name[key]=value` (`deepObject`).
fn object_pushes(api: &Api, type_name: &str, wire: &str, style: ObjectStyle) -> TokenStream {
    let Some(TypeKind::Struct(s)) = api.types.get(type_name).map(|t| &t.kind) else { return TokenStream::new() };
    let pushes = s.fields.iter().map(|f| {
        let fname = ident(&f.name);
        let key = match style {
            ObjectStyle::Form => f.api_name.clone(),
            ObjectStyle::DeepObject => format!("{wire}[{}]", f.api_name),
        };
        let to_s = to_wire_string(api, &f.shape, quote!(field));
        if f.required {
            quote! { { let field = &value.#fname; query.push((#key, #to_s)); } }
        } else {
            quote! { if let ::std::option::Option::Some(field) = &value.#fname { query.push((#key, #to_s)); } }
        }
    });
    quote! { #[allow(deprecated)] { #(#pushes)* } }
}

fn to_wire_string(api: &Api, shape: &Shape, value: TokenStream) -> TokenStream {
    match wire_kind(api, shape) {
        WireKind::Enum => quote!(#value.as_str().to_owned()),
        WireKind::Text | WireKind::Display => quote!(::std::string::ToString::to_string(#value)),
    }
}

/// The type and decoding (from `raw`) of a text or binary response.
fn raw_decode(body: &ResponseBody) -> (TokenStream, TokenStream) {
    match body {
        ResponseBody::Text { .. } => (quote!(::std::string::String), quote!(raw.text())),
        _ => (quote!(::bytes::Bytes), quote!(::std::result::Result::Ok(raw.bytes()))),
    }
}

/// The `send` method, and any type it needs (the response enum of an
/// operation with several success bodies, the event enum of a stream).
fn send_fn(plan: &Plan, op: &Operation) -> (TokenStream, TokenStream) {
    let prefix = quote!(crate::types::);
    let accepted = plan.accepted().map(|a| {
        let a = ident(a);
        quote!(crate::types::#a)
    });
    match plan.success_kind(op) {
        Success::Single { handle: true, .. } => (
            TokenStream::new(),
            quote! {
                /// Sends the request (retrying as configured) and returns a
                /// handle on the long-running operation it started.
                pub async fn send(self) -> ::std::result::Result<crate::ApiResponse<crate::OperationHandle>, crate::Error> {
                    let (spec, options) = self.request()?;
                    let raw = self.client.execute(spec, &options).await?;
                    let accepted = raw.json::<#accepted>()?;
                    let handle = crate::OperationHandle::new(self.client.clone(), accepted.body, accepted.meta.clone());
                    ::std::result::Result::Ok(crate::ApiResponse { body: handle, meta: accepted.meta })
                }
            },
        ),
        Success::Single { shape, .. } => {
            let ty = shape.map(|s| rust_type(s, &prefix)).unwrap_or_else(|| quote!(()));
            let decode = if shape.is_some() {
                quote!(raw.json::<#ty>())
            } else {
                quote!(::std::result::Result::Ok(raw.empty()))
            };
            (
                TokenStream::new(),
                quote! {
                    /// Sends the request (retrying as configured) and decodes the
                    /// response.
                    pub async fn send(self) -> ::std::result::Result<crate::ApiResponse<#ty>, crate::Error> {
                        let (spec, options) = self.request()?;
                        let raw = self.client.execute(spec, &options).await?;
                        #decode
                    }
                },
            )
        }
        Success::Raw(body) => {
            let (ty, decode) = raw_decode(body);
            (
                TokenStream::new(),
                quote! {
                    /// Sends the request (retrying as configured) and returns
                    /// the response body.
                    pub async fn send(self) -> ::std::result::Result<crate::ApiResponse<#ty>, crate::Error> {
                        let (spec, options) = self.request()?;
                        let raw = self.client.execute(spec, &options).await?;
                        #decode
                    }
                },
            )
        }
        Success::Several => {
            let enum_name = format_ident!("{}Response", op.type_prefix);
            let mut variants = Vec::new();
            let mut arms = Vec::new();
            for r in op.successes() {
                let v = format_ident!("{}", status_variant(r.status));
                let doc = format!(" {} — {}", r.status.as_spec(), r.description.trim().lines().next().unwrap_or(""));
                let code = match r.status {
                    StatusCode::Code(c) => c,
                    _ => continue,
                };
                match &r.body {
                    Some(ResponseBody::Json { shape, .. }) if plan.is_handle(r.status, shape) => {
                        variants.push(quote!(#[doc = #doc] #v(crate::OperationHandle),));
                        arms.push(quote! {
                            #code => {
                                let accepted = raw.json::<#accepted>()?;
                                let handle = crate::OperationHandle::new(self.client.clone(), accepted.body, accepted.meta.clone());
                                ::std::result::Result::Ok(crate::ApiResponse { body: #enum_name::#v(handle), meta: accepted.meta })
                            }
                        });
                    }
                    Some(ResponseBody::Json { shape, .. }) => {
                        let ty = rust_type(shape, &prefix);
                        variants.push(quote!(#[doc = #doc] #v(#ty),));
                        arms.push(quote!(#code => raw.json::<#ty>().map(|r| r.map(#enum_name::#v)),));
                    }
                    Some(body @ (ResponseBody::Text { .. } | ResponseBody::Binary { .. })) => {
                        let (ty, decode) = raw_decode(body);
                        variants.push(quote!(#[doc = #doc] #v(#ty),));
                        arms.push(quote!(#code => { let decoded: ::std::result::Result<crate::ApiResponse<#ty>, crate::Error> = #decode; decoded.map(|r| r.map(#enum_name::#v)) }));
                    }
                    _ => {
                        variants.push(quote!(#[doc = #doc] #v,));
                        arms.push(quote!(#code => ::std::result::Result::Ok(raw.empty().map(|()| #enum_name::#v)),));
                    }
                }
            }
            let doc = format!(" The success responses of `{}`.", op.id);
            (
                quote! {
                    #[doc = #doc]
                    #[derive(::std::fmt::Debug)]
                    pub enum #enum_name {
                        #(#variants)*
                    }
                },
                quote! {
                    /// Sends the request (retrying as configured) and decodes the
                    /// response, whichever success status it has.
                    pub async fn send(self) -> ::std::result::Result<crate::ApiResponse<#enum_name>, crate::Error> {
                        let (spec, options) = self.request()?;
                        let raw = self.client.execute(spec, &options).await?;
                        match raw.status().as_u16() {
                            #(#arms)*
                            _ => ::std::result::Result::Err(raw.unexpected_status()),
                        }
                    }
                },
            )
        }
        Success::Stream => {
            let stream = op.event_stream().expect("is_stream checked");
            let owner = event_enum_owner(plan, stream);
            let event_enum = format_ident!("{}Event", owner.type_prefix);
            let send = quote! {
                /// Opens the event stream. Nothing is sent until the stream is
                /// first polled; a dropped connection is resumed with
                /// `Last-Event-ID` as the client's resume policy allows.
                pub fn send(self) -> ::std::result::Result<crate::EventStream<#event_enum>, crate::Error> {
                    let (spec, options) = self.request()?;
                    ::std::result::Result::Ok(crate::EventStream::new(self.client.clone(), spec, options))
                }
            };
            if owner.id != op.id {
                // Another operation carries the same events (a GET and a POST
                // of one stream): one type serves both, and this name stays
                // for code written against it.
                let alias = format_ident!("{}Event", op.type_prefix);
                let doc = format!(" One event of the `{}` stream: the same events as [`{event_enum}`].", op.id);
                return (quote!(#[doc = #doc] pub type #alias = #event_enum;), send);
            }
            let mut variants =
                models::event_variants(stream, &prefix, " The `event:` field, `None` when the server sent none.");
            let decode_arms: Vec<TokenStream> = stream
                .events
                .iter()
                .filter(|e| !e.any_name)
                .map(|e| {
                    let v = ident(&e.name);
                    let wire = &e.api_name;
                    quote!(#wire => ::serde_json::from_str(data).map(Self::#v),)
                })
                .collect();
            // A stream described by its schema alone decodes every event
            // name the spec does not list as its one event; others refuse
            // a name they do not know.
            let decode = match stream.events.iter().find(|e| e.any_name) {
                Some(any) => {
                    let v = ident(&any.name);
                    let any_event = quote! {
                        ::serde_json::from_str(data).map(|data| Self::#v { event: event.map(::std::borrow::ToOwned::to_owned), data })
                    };
                    if decode_arms.is_empty() {
                        any_event
                    } else {
                        quote! {
                            match event.unwrap_or("message") {
                                #(#decode_arms)*
                                _ => #any_event,
                            }
                        }
                    }
                }
                // An event name this version of the client does not know
                // (one a newer server added) is kept with its raw data
                // instead of ending the stream.
                None => {
                    variants.push(quote! {
                        /// An event this version of the client does not know;
                        /// kept as sent so that a newer server does not break
                        /// the stream.
                        Unknown {
                            /// The `event:` field (`message` when the server sent none).
                            event: ::std::string::String,
                            /// The event's data, undecoded.
                            data: ::std::string::String,
                        },
                    });
                    quote! {
                        match event.unwrap_or("message") {
                            #(#decode_arms)*
                            other => ::std::result::Result::Ok(Self::Unknown {
                                event: ::std::borrow::ToOwned::to_owned(other),
                                data: ::std::borrow::ToOwned::to_owned(data),
                            }),
                        }
                    }
                }
            };
            let terminal: Vec<TokenStream> = stream
                .events
                .iter()
                .filter(|e| e.terminal)
                .map(|e| {
                    let v = ident(&e.name);
                    quote!(Self::#v(_))
                })
                .collect();
            let is_terminal = if terminal.is_empty() { quote!(false) } else { quote!(matches!(self, #(#terminal)|*)) };
            // Every event that reports a failure becomes the stream's error.
            let error_arms: Vec<TokenStream> = stream
                .events
                .iter()
                .filter_map(|e| {
                    let failure = e.failure.as_ref()?;
                    let v = ident(&e.name);
                    let code = ident(&failure.code_field);
                    let message = ident(&failure.message_field);
                    let code = if failure.typed_code {
                        quote!(e.#code.clone())
                    } else {
                        quote!(<crate::Api as crate::model::ApiModel>::error_code(&e.#code))
                    };
                    Some(quote! {
                        Self::#v(e) => ::std::option::Option::Some(crate::StreamFailure::new(#code, e.#message.clone())),
                    })
                })
                .collect();
            let stream_error = if error_arms.is_empty() {
                quote!(::std::option::Option::None)
            } else {
                quote! {
                    #[allow(unreachable_patterns)]
                    match self {
                        #(#error_arms)*
                        _ => ::std::option::Option::None,
                    }
                }
            };
            let doc = format!(" One event of the `{}` stream.", op.id);
            (
                quote! {
                    #[doc = #doc]
                    #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
                    pub enum #event_enum {
                        #(#variants)*
                    }
                    impl crate::StreamEvent for #event_enum {
                        type Model = crate::Api;

                        fn decode(event: ::std::option::Option<&str>, data: &str) -> ::std::result::Result<Self, ::serde_json::Error> {
                            #decode
                        }
                        fn is_terminal(&self) -> bool {
                            #is_terminal
                        }
                        fn stream_error(&self) -> ::std::option::Option<crate::StreamFailure> {
                            #stream_error
                        }
                    }
                },
                send,
            )
        }
    }
}

/// The operation whose name a stream's event enum takes: of the operations
/// carrying exactly these events, the one with the shortest type name (the
/// plain `streamAgent` rather than `streamAgentGet`), the first on a tie.
fn event_enum_owner<'a>(plan: &Plan<'a>, stream: &crate::ir::EventStream) -> &'a Operation {
    plan.api
        .operations
        .iter()
        .filter(|o| matches!(plan.success_kind(o), Success::Stream) && o.event_stream() == Some(stream))
        .min_by_key(|o| o.type_prefix.len())
        .expect("the operation itself carries the stream")
}

/// The pieces `into_stream` needs, when the paged list's shape lets it
/// walk pages: an integer page parameter, and a body whose items and
/// pagination fields are always present (the pagination object's page
/// fields the lowering checked).
fn pagination_fields<'o>(plan: &Plan, op: &'o Operation) -> Option<(&'o crate::ir::Pagination, &'o Parameter)> {
    let p = op.pagination.as_ref()?;
    let page = op.parameters.iter().find(|x| x.name == p.page_param && matches!(x.shape, Shape::Integer(_)))?;
    let Success::Single { shape: Some(Shape::Named(body)), handle: false } = plan.success_kind(op) else { return None };
    let plain = |name: &str| struct_field(plan.api, body, name).is_some_and(|f| f.required && !f.nullable);
    (plain(&p.items_field) && plain(&p.pagination_field)).then_some((p, page))
}

fn pagination_stream(plan: &Plan, op: &Operation) -> TokenStream {
    let Some((p, page_param)) = pagination_fields(plan, op) else { return TokenStream::new() };
    let page = ident(&p.page_param);
    let items = ident(&p.items_field);
    let pagination = ident(&p.pagination_field);
    let (page_field, pages_field) = (ident(&p.page_field), ident(&p.pages_field));
    let total = match &p.total_field {
        Some(t) => {
            let t = ident(t);
            quote!(u64::try_from(body.#pagination.#t).unwrap_or(0))
        }
        None => quote!(0),
    };
    let item = rust_type(&p.item, &quote!(crate::types::));
    // A required page parameter is a plain field of the builder.
    let (first, set) = if is_argument(plan, page_param) {
        (
            quote!(u64::try_from(self.#page).unwrap_or(1)),
            quote!(request.#page = i64::try_from(page).unwrap_or(i64::MAX) as _;),
        )
    } else {
        (
            quote!(self.#page.map_or(1, |p| u64::try_from(p).unwrap_or(1))),
            quote!(request.#page = ::std::option::Option::Some(i64::try_from(page).unwrap_or(i64::MAX) as _);),
        )
    };
    quote! {
        /// Every item of every page from the one set by `page` (or the
        /// first), fetching each page only when the previous one is used up.
        pub fn into_stream(self) -> crate::Paginated<#item> {
            let first = #first;
            crate::pagination::paginate(first, move |page| {
                let mut request = self.clone();
                #set
                async move {
                    let body = request.send().await?.body;
                    ::std::result::Result::Ok(crate::pagination::Page {
                        items: body.#items,
                        page: u64::try_from(body.#pagination.#page_field).unwrap_or(0),
                        pages: u64::try_from(body.#pagination.#pages_field).unwrap_or(0),
                        total: #total,
                    })
                }
            })
        }
    }
}

/// A compiled (not run) doc example for the operations people reach for
/// first: paged lists, streams and operations with several success bodies.
fn operation_example(plan: &Plan, op: &Operation) -> TokenStream {
    let paged = pagination_fields(plan, op).is_some();
    let interesting = paged || op.is_stream() || matches!(plan.success_kind(op), Success::Several);
    if !interesting || op.deprecated {
        return TokenStream::new();
    }
    let Some((setup, call)) = example_call(plan, op) else { return TokenStream::new() };
    let lib = plan.lib();
    let usage = if paged {
        format!(
            "use futures::StreamExt;\nlet mut items = {call}.into_stream();\nwhile let Some(item) = items.next().await {{\n    println!(\"{{:?}}\", item?);\n}}\n"
        )
    } else if op.is_stream() {
        format!(
            "use futures::StreamExt;\nlet mut events = {call}.send()?;\nwhile let Some(event) = events.next().await {{\n    println!(\"{{:?}}\", event?);\n}}\n"
        )
    } else {
        let enum_name = format!("{}Response", op.type_prefix);
        let mut arms = String::new();
        for r in op.successes() {
            let v = status_variant(r.status);
            match &r.body {
                Some(ResponseBody::Json { shape, .. }) if plan.is_handle(r.status, shape) => arms.push_str(&format!(
                    "    {lib}::operations::{enum_name}::{v}(operation) => println!(\"finished: {{:?}}\", operation.wait().await?),\n"
                )),
                Some(_) => arms.push_str(&format!("    {lib}::operations::{enum_name}::{v}(body) => println!(\"{{body:?}}\"),\n")),
                None => arms.push_str(&format!("    {lib}::operations::{enum_name}::{v} => {{}}\n")),
            }
        }
        format!("let response = {call}.send().await?;\nmatch response.body {{\n{arms}}}\n")
    };
    let text = format!(
        "# Example\n\n```no_run\n# async fn run() -> Result<(), Box<dyn std::error::Error>> {{\nlet client = {lib}::Client::from_env()?;\n{setup}{usage}# Ok(())\n# }}\n```"
    );
    let text = format!("\n{text}");
    lines_to_attrs(&text)
}

/// `examples/quickstart.rs`: a paged list, an operation with several
/// success bodies and a stream, those the spec has, or else one plain call.
fn example(plan: &Plan) -> TokenStream {
    let (api, names) = (plan.api, plan.names);
    let lib = format_ident!("{}", plan.lib());
    let usable = |op: &&Operation| !op.deprecated && (op.secured || api.conventions.bearer.is_none());
    // Arguments come from `<PREFIX>_<NAME>` variables (e.g. RUNAGENT_AGENT_ID),
    // falling back to the spec's example; bodies are the spec's examples.
    let arg = |p: &Parameter| -> Option<TokenStream> {
        let var = format!("{}_{}", names.env_prefix, sanitize(&p.api_name, Case::ScreamingSnake));
        match &p.shape {
            Shape::String(_) => {
                let fallback = match &p.example {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "example".into(),
                };
                Some(quote!(::std::env::var(#var).unwrap_or_else(|_| #fallback.to_owned())))
            }
            Shape::Integer(_) | Shape::Number(_) | Shape::Boolean | Shape::Named(_) => {
                let literal: TokenStream = arg_literal(plan, p)?.parse().ok()?;
                Some(quote!(::std::env::var(#var).ok().and_then(|v| v.parse().ok()).unwrap_or(#literal)))
            }
            _ => None,
        }
    };
    let call = |op: &Operation| -> Option<(TokenStream, Vec<String>)> {
        let m = ident(&op.name);
        let params: Vec<&Parameter> = op.parameters.iter().filter(|p| is_argument(plan, p)).collect();
        let mut args = params.iter().map(|p| arg(p)).collect::<Option<Vec<_>>>()?;
        // An enum parameter parses from its variable only if it has `FromStr`;
        // give it its literal instead.
        for (a, p) in args.iter_mut().zip(&params) {
            if matches!(p.shape, Shape::Named(_)) {
                let literal: TokenStream = arg_literal(plan, p)?.parse().ok()?;
                *a = literal;
            }
        }
        if let Some(b) = op.body.as_ref().filter(|b| b.required) {
            let primary = b.primary();
            if matches!(primary.encoding, Encoding::Text | Encoding::Binary) {
                return None;
            }
            let example = primary.example.clone().unwrap_or(serde_json::json!({}));
            let types = format!("{}::types::", plan.lib());
            let built = match &primary.shape {
                Shape::Named(n) => {
                    builders::example_expr(api, &types, n, &example).and_then(|expr| expr.parse::<TokenStream>().ok())
                }
                _ => None,
            };
            match built {
                Some(expr) => args.push(expr),
                None => {
                    let json = serde_json::to_string(&example).unwrap_or_default();
                    let ty = bodies::content_type(primary, &quote!(#lib::types::));
                    args.push(quote!(::serde_json::from_str::<#ty>(#json)?));
                }
            }
        }
        let vars = params
            .iter()
            .filter(|p| !matches!(p.shape, Shape::Named(_)))
            .map(|p| format!("{}_{}", names.env_prefix, sanitize(&p.api_name, Case::ScreamingSnake)))
            .collect();
        Some((quote!(client.#m(#(#args),*)), vars))
    };
    let mut vars: Vec<String> = Vec::new();
    let mut did: Vec<String> = Vec::new();
    let list = api
        .operations
        .iter()
        .filter(usable)
        .filter(|o| pagination_fields(plan, o).is_some() && o.body.as_ref().is_none_or(|b| !b.required))
        .find_map(|o| call(o).map(|c| (o, c)));
    let list_code = list.map(|(op, (c, v))| {
        vars.extend(v);
        did.push(format!("pages through `{}`", op.name));
        quote! {
            let page = #c.send().await?;
            println!("status {} request {:?} rate limit {:?}", page.meta.status, page.meta.request_id, page.meta.rate_limit);
            let mut items = #c.into_stream();
            while let Some(item) = items.next().await {
                println!("{:?}", item?);
            }
        }
    });
    let several = api
        .operations
        .iter()
        .filter(usable)
        .filter(|o| matches!(plan.success_kind(o), Success::Several))
        .find_map(|o| call(o).map(|c| (o, c)));
    let several_code = several.map(|(op, (c, v))| {
        vars.extend(v);
        did.push(format!("calls `{}`", op.name));
        let e = format_ident!("{}Response", op.type_prefix);
        let arms = op.successes().filter(|r| matches!(r.status, StatusCode::Code(_))).map(|r| {
            let v = format_ident!("{}", status_variant(r.status));
            match &r.body {
                Some(ResponseBody::Json { shape, .. }) if plan.is_handle(r.status, shape) => {
                    quote!(#lib::operations::#e::#v(operation) => println!("finished: {:?}", operation.wait().await?),)
                }
                Some(_) => quote!(#lib::operations::#e::#v(body) => println!("{body:?}"),),
                None => quote!(#lib::operations::#e::#v => {}),
            }
        });
        quote! {
            match #c.send().await?.body {
                #(#arms)*
            }
        }
    });
    // A stream with a body first (the one a program starts), then any.
    let streams = || api.operations.iter().filter(usable).filter(|o| o.is_stream());
    let stream = streams()
        .filter(|o| o.body.is_some())
        .chain(streams().filter(|o| o.body.is_none()))
        .find_map(|o| call(o).map(|c| (o, c)));
    let stream_code = stream.map(|(op, (c, v))| {
        vars.extend(v);
        did.push(format!("streams `{}`", op.name));
        quote! {
            let mut events = #c.send()?;
            while let Some(event) = events.next().await {
                println!("{:?}", event?);
            }
        }
    });
    // Nothing of the above: the first plain call the example can make.
    let plain_code = (did.is_empty())
        .then(|| {
            api.operations
                .iter()
                .filter(usable)
                .filter(|o| !o.is_stream() && !matches!(plan.success_kind(o), Success::Several))
                .find_map(|o| call(o).map(|c| (o, c)))
        })
        .flatten()
        .map(|(op, (c, v))| {
            vars.extend(v);
            did.push(format!("calls `{}`", op.name));
            quote! {
                let response = #c.send().await?;
                println!("{:?} (request {:?})", response.body, response.meta.request_id);
            }
        });
    let uses_stream = list_code.is_some() || stream_code.is_some();
    let stream_ext = uses_stream.then(|| {
        quote!(
            use futures::StreamExt;
        )
    });
    let summary = match did.as_slice() {
        [] => "Builds a client from the environment.".to_owned(),
        [one] => format!("{}{}.", one[..1].to_uppercase(), &one[1..]),
        [init @ .., last] => {
            let joined = init.join(", ");
            format!("{}{} and {last}.", joined[..1].to_uppercase(), &joined[1..])
        }
    };
    let server = api
        .servers
        .iter()
        .map(|s| s.url.as_str())
        .find(|u| u.contains("://localhost") || u.contains("://127.0.0.1"))
        .or(default_base_url(api))
        .unwrap_or("http://localhost:8080");
    let mut run = String::new();
    if api.conventions.bearer.is_some() {
        run.push_str(&format!("{}=... ", names.api_key_env()));
    }
    run.push_str(&format!("{}={server} ", names.base_url_env()));
    vars.dedup();
    for v in &vars {
        run.push_str(&format!("{v}=... "));
    }
    run.push_str(&format!("cargo run -p {} --example quickstart", names.client_crate));
    let local = if server.contains("://localhost") || server.contains("://127.0.0.1") { "a local" } else { "a" };
    let docs = lines_to_inner_attrs(&format!("{summary}\n\nRun against {local} server:\n`{run}`\n"));
    let silence = (did.is_empty()).then(|| quote!(let _ = client;));
    quote! {
        #docs
        #stream_ext

        #[tokio::main]
        async fn main() -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {
            let client = #lib::Client::from_env()?;
            #list_code
            #several_code
            #stream_code
            #plain_code
            #silence
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, generate, generate_with};

    fn client_files(spec: &str, config: &Config) -> Vec<(String, String)> {
        let files = generate_with(spec, config).unwrap().files;
        files.0.into_iter().filter(|(path, _)| path.starts_with("client/")).map(|(p, f)| (p, f.contents)).collect()
    }

    fn file<'a>(files: &'a [(String, String)], path: &str) -> &'a str {
        &files.iter().find(|(p, _)| p == path).unwrap_or_else(|| panic!("no {path}")).1
    }

    #[test]
    fn a_spec_without_conventions_gets_the_plain_features_only() {
        let files = client_files(include_str!("../../../tests/fixtures/minimal.yaml"), &Config::default());
        let api = file(&files, "client/src/api.rs");
        assert!(api.contains("type ErrorBody = ::serde_json::Value;"), "{api}");
        assert!(api.contains("type ErrorCode = ::std::string::String;"), "{api}");
        assert!(api.contains("type Operation = ::std::convert::Infallible;"), "{api}");
        assert!(!api.contains("LongRunning"), "{api}");
        let lib = file(&files, "client/src/lib.rs");
        assert!(!lib.contains("OperationHandle") && !lib.contains("Paginated"), "{lib}");
        assert!(lib.contains("MINIMAL_API_KEY") && !lib.contains("DEFAULT_BASE_URL"), "{lib}");
        let ops = file(&files, "client/src/operations.rs");
        assert!(!ops.contains("into_stream") && !ops.contains("StreamFailure"), "{ops}");
        // Calls in examples name an operation that exists, with its arguments.
        assert!(file(&files, "client/README.md").contains("client.get_pet(\"pet_1\")"));
        assert!(!file(&files, "client/README.md").contains("client.()"));
        for (path, text) in &files {
            assert!(!text.to_lowercase().contains("runagent"), "{path} names RunAgent");
        }
    }

    #[test]
    fn runagent_gets_every_feature_from_its_conventions() {
        let files = client_files(
            include_str!("../../../spec/openapi.yaml"),
            &Config {
                client_crate: Some("runagent-client".into()),
                env_prefix: Some("RUNAGENT".into()),
                ..Config::default()
            },
        );
        let api = file(&files, "client/src/api.rs");
        for wanted in [
            "type ErrorCode = crate::types::ErrorCode;",
            "type ErrorBody = crate::types::ErrorResponse;",
            "type Accepted = crate::types::OperationAccepted;",
            "client.get_operation(id).send()",
            "impl crate::operation::CancelOperation for Api",
            "(404, \"NOT_FOUND\")",
            "BEARER_AUTH: bool = true",
        ] {
            assert!(api.contains(wanted), "{wanted} missing:\n{api}");
        }
        let lib = file(&files, "client/src/lib.rs");
        assert!(lib.contains("pub type OperationHandle = operation::OperationHandle<Api>;"));
        assert!(lib.contains("pub type Paginated<T> = pagination::Paginated<T, Api>;"));
        let ops = file(&files, "client/src/operations.rs");
        assert!(ops.contains("pub fn into_stream(self)"));
        assert!(ops.contains("impl ::std::convert::From<crate::types::StreamError> for crate::StreamFailure"));
        // The GET and POST streams carry the same events: one enum, which
        // keeps event names it does not know.
        assert!(ops.contains("pub type StreamAgentGetEvent = StreamAgentEvent;"), "{ops}");
        assert_eq!(ops.matches("pub enum StreamAgentEvent").count(), 1);
        assert!(!ops.contains("pub enum StreamAgentGetEvent"));
        assert!(ops.contains("Unknown {"));
        let quickstart = file(&files, "client/examples/quickstart.rs");
        assert!(quickstart.contains("runagent_client::types::InvokeRequest::new(\"Hello\")"), "{quickstart}");
        assert!(!quickstart.contains("serde_json"), "{quickstart}");
    }

    #[test]
    fn each_long_running_convention_is_polled_the_way_the_spec_allows() {
        // A job polled by id, with no check URL and no cancel operation.
        let flat =
            client_files(include_str!("../../../tests/fixtures/client-conventions-flat.yaml"), &Config::default());
        let api = file(&flat, "client/src/api.rs");
        assert!(api.contains("client.get_job(id).send()") && api.contains("fn check_url(_accepted"), "{api}");
        assert!(!api.contains("CancelOperation"), "{api}");
        assert!(api.contains("type ErrorCode = ::std::string::String;"), "{api}");
        let ops = file(&flat, "client/src/operations.rs");
        // The poll answers the accepted type with a 200: a plain body there.
        assert!(ops.contains("crate::ApiResponse<crate::types::Job>"), "{ops}");
        assert!(ops.contains("Accepted(crate::OperationHandle)"), "{ops}");
        // Parameters named after the builder's methods were renamed.
        for name in super::RESERVED_PARAMS {
            assert!(ops.contains(&format!("pub fn {name}_2(")), "{name}");
        }

        // Fetched by an operation that needs more than the id: the check URL only.
        let nested =
            client_files(include_str!("../../../tests/fixtures/client-conventions-nested.yaml"), &Config::default());
        let api = file(&nested, "client/src/api.rs");
        assert!(api.contains("_client: &crate::Client"), "{api}");
        assert!(api.contains("client.cancel_task(id).send()"), "{api}");
        assert!(api.contains("type ErrorCode = crate::types::Code;"), "{api}");
    }

    #[test]
    fn reserved_methods_list_every_method_of_the_runtime_client() {
        let (_, source) = super::RUNTIME.iter().find(|(name, _)| *name == "client.rs").unwrap();
        let block = source.split("\nimpl<M: ApiModel> Client<M> {\n").nth(1).expect("the inherent impl");
        let block = &block[..block.find("\n}\n").expect("its end")];
        let methods: Vec<&str> = block
            .split("fn ")
            .skip(1)
            .filter_map(|rest| rest.split(['(', '<']).next())
            .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        assert!(methods.len() > 10, "{methods:?}");
        for method in methods {
            assert!(super::RESERVED_METHODS.contains(&method), "`{method}` is missing from RESERVED_METHODS");
        }
    }

    #[test]
    fn generated_file_names_never_shadow_runtime_files() {
        let files = generate(include_str!("../../../tests/fixtures/minimal.yaml")).unwrap();
        for generated in super::GENERATED {
            assert!(super::RUNTIME.iter().all(|(runtime, _)| runtime != generated), "{generated}");
            assert!(files.0.contains_key(&format!("client/src/{generated}")), "{generated}");
        }
    }
}
