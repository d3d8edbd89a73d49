//! The client crate: `Cargo.toml`, `README.md`, `lib.rs`, the models and one
//! request builder per operation, plus the runtime support files copied
//! verbatim from `templates/client/src`.

use super::doc_text::{doc_attrs, lines_to_attrs, lines_to_inner_attrs, rustdoc};
use super::models::{self, Mode, ident, rust_type, shape_check};
use super::{EmitError, Files, versions};
use crate::ir::{
    Api, Method, Operation, ParamLocation, Parameter, PathSegment, ResponseBody, Shape, StatusCode, TypeKind,
};
use crate::naming::{Case, sanitize};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Runtime files copied into `src/`, by file name. `lib.rs` declares each
/// and re-exports its public items.
pub const RUNTIME: &[(&str, &str)] = &[
    ("client.rs", include_str!("../../../templates/client/src/client.rs")),
    ("error.rs", include_str!("../../../templates/client/src/error.rs")),
    ("events.rs", include_str!("../../../templates/client/src/events.rs")),
    ("operation.rs", include_str!("../../../templates/client/src/operation.rs")),
    ("pagination.rs", include_str!("../../../templates/client/src/pagination.rs")),
    ("response.rs", include_str!("../../../templates/client/src/response.rs")),
    ("retry.rs", include_str!("../../../templates/client/src/retry.rs")),
    ("sse.rs", include_str!("../../../templates/client/src/sse.rs")),
    ("url.rs", include_str!("../../../templates/client/src/url.rs")),
    ("nullable.rs", include_str!("../../../runtime/common/nullable.rs")),
    ("validate.rs", include_str!("../../../runtime/common/validate.rs")),
];

/// Names a builder uses itself (its methods and fields), so no parameter
/// may take them: a parameter becomes a field and a setter of the builder.
/// Keep in step with `operation` below; the `param-collision` fixture
/// compiles a parameter named after each.
pub const RESERVED_PARAMS: &[&str] = &["body", "client", "options", "send", "validate", "request", "into_stream"];

/// Modules whose public items are re-exported at the crate root.
const REEXPORTED: &[&str] =
    &["client", "error", "events", "operation", "pagination", "response", "retry", "sse", "validate"];

pub fn emit(api: &Api, names: &crate::config::Names, files: &mut Files) -> Result<(), EmitError> {
    let _ = names;
    let dir = "client";
    files.toml(format!("{dir}/Cargo.toml"), cargo_toml(api));
    files.markdown(format!("{dir}/README.md"), readme(api));
    files.rust(format!("{dir}/src/lib.rs"), lib_rs(api), "client lib")?;
    files.rust(format!("{dir}/src/types.rs"), models::emit_types(api, Mode::Client), "client models")?;
    files.rust(format!("{dir}/src/operations.rs"), operations(api), "client operations")?;
    for (name, source) in RUNTIME {
        files.verbatim(format!("{dir}/src/{name}"), source);
    }
    files.rust(format!("{dir}/examples/quickstart.rs"), example(api), "client example")?;
    Ok(())
}

fn cargo_toml(api: &Api) -> String {
    let v = versions::CLIENT;
    let deps: String = v.iter().map(|(name, spec)| format!("{name} = {spec}\n")).collect();
    format!(
        r#"[package]
name = "runagent-client"
version = "0.1.0"
description = "Typed, retrying, paginating, streaming Rust client for the {title}"
edition = "2024"
rust-version = "1.88"
license = "MIT OR Apache-2.0"
readme = "README.md"
keywords = ["runagent", "ai", "agents", "api", "client"]
categories = ["api-bindings", "web-programming::http-client"]

[dependencies]
{deps}
[dev-dependencies]
tokio = {{ version = "1.54.1", features = ["macros", "rt-multi-thread"] }}
"#,
        title = api.title
    )
}

fn readme(api: &Api) -> String {
    let first = api.operations.iter().find(|o| o.pagination.is_some()).map(|o| o.name.clone()).unwrap_or_default();
    let mut ops = String::new();
    for op in &api.operations {
        let summary = op.summary.clone().unwrap_or_default();
        let dep = if op.deprecated { " *(deprecated)*" } else { "" };
        ops.push_str(&format!("| `{}` | `{} {}` | {summary}{dep} |\n", op.name, op.method.as_str(), op.path));
    }
    format!(
        r#"# runagent-client

The Rust client for the {title} (version {version}), generated from the
OpenAPI spec. Every call is typed, retried on transient failures with an
idempotency key, and returns the body together with the status, the
`X-Request-Id` and the rate-limit headers.

```toml
[dependencies]
runagent-client = "0.1"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
```

```rust,no_run
#[tokio::main]
async fn main() -> Result<(), runagent_client::Error> {{
    // Reads RUNAGENT_API_KEY and RUNAGENT_BASE_URL.
    let client = runagent_client::Client::from_env()?;
    let page = client.{first}().send().await?;
    println!("{{:?}} (request {{:?}})", page.body, page.meta.request_id);
    Ok(())
}}
```

## What it does for you

- **Configuration**: `Client::from_env()` or `Client::builder()` (API key, base URL,
  timeout, retries, user agent, default headers, your own `reqwest::Client`).
  A missing key is an error when the client is built.
- **Retries**: connection errors, timeouts, 408, 429, 500, 502, 503 and 504 are retried
  (2 times by default) with exponential backoff and jitter, honoring `Retry-After` and
  `X-RateLimit-Reset`. Every POST carries one `Idempotency-Key` for all its attempts, so
  a retry never runs the work twice; a 409 that says the first attempt is still in
  progress (it carries `Retry-After`) is retried too, and gets the stored answer.
- **Errors**: one `Error` type; API errors carry the status, the parsed error
  envelope (with unknown codes kept), the request id and the rate-limit state.
- **Pagination**: list calls return one page, or `.into_stream()` for every item.
- **Streaming**: stream calls give a `Stream` of typed events and resume after a
  dropped connection with `Last-Event-ID`, never delivering an event twice.
- **Long-running operations**: a 202 gives an `OperationHandle` with `wait()` and `cancel()`.

## Operations

| Method | HTTP | Summary |
|---|---|---|
{ops}
This crate is generated by `cargo xtask codegen` from `spec/openapi.yaml`; do not edit it by hand.
"#,
        title = api.title,
        version = api.version,
    )
}

fn lib_rs(api: &Api) -> TokenStream {
    let mods = super::runtime_modules(RUNTIME, REEXPORTED);
    let crate_doc = crate_docs(api);
    quote! {
        #crate_doc
        #![deny(missing_docs)]
        #![forbid(unsafe_code)]

        pub mod types;
        pub mod operations;
        #(#mods)*
    }
}

fn crate_docs(api: &Api) -> TokenStream {
    let mut text = format!("The Rust client for the {} (version {}).\n\n", api.title, api.version);
    if let Some(d) = &api.description {
        let first_para = d.split("\n\n").next().unwrap_or("");
        text.push_str(&rustdoc(first_para));
        text.push_str("\n\n");
    }
    let list = api.operations.iter().find(|o| o.pagination.is_some());
    text.push_str("# Example\n\n```no_run\n# async fn run() -> Result<(), runagent_client::Error> {\nuse futures::StreamExt;\n\n// Reads RUNAGENT_API_KEY and RUNAGENT_BASE_URL.\nlet client = runagent_client::Client::from_env()?;\n");
    if let Some(list) = list {
        text.push_str(&format!(
            "\n// One page, with the response metadata.\nlet page = client.{name}().send().await?;\nprintln!(\"request id: {{:?}}\", page.meta.request_id);\n\n// Every item of every page, fetched lazily.\nlet mut all = client.{name}().into_stream();\nwhile let Some(item) = all.next().await {{\n    println!(\"{{:?}}\", item?);\n}}\n",
            name = list.name
        ));
    }
    text.push_str("# Ok(())\n# }\n```\n");
    lines_to_inner_attrs(&text)
}

/// How the builder stores a parameter, and the setter's argument type.
fn param_type(p: &Parameter) -> TokenStream {
    rust_type(&p.shape, &quote!(crate::types::))
}

/// Required path parameters and required query/header parameters are
/// arguments of the method; the rest are builder setters.
fn is_argument(p: &Parameter) -> bool {
    p.location == ParamLocation::Path || (p.required && !is_managed_header(p))
}

/// Headers the runtime sets itself (so their builder setters configure the
/// runtime instead of adding a header).
fn is_managed_header(p: &Parameter) -> bool {
    p.location == ParamLocation::Header
        && (p.api_name.eq_ignore_ascii_case("idempotency-key") || p.api_name.eq_ignore_ascii_case("last-event-id"))
}

fn operations(api: &Api) -> TokenStream {
    let items = api.operations.iter().map(|op| operation(api, op));
    quote! {
        //! One request builder per operation, the typed responses of operations
        //! with several success bodies, and the events of streaming operations.
        #![allow(clippy::too_many_arguments, deprecated)]
        #(#items)*
    }
}

/// What a successful call gives back.
enum Success<'a> {
    /// One body type (or none).
    Single { shape: Option<&'a Shape>, handle: bool },
    /// Several 2xx statuses with different bodies: an enum.
    Several,
    /// An event stream.
    Stream,
}

fn is_operation_handle(api: &Api, shape: &Shape) -> bool {
    match shape {
        Shape::Named(n) => match api.types.get(n).map(|t| &t.kind) {
            Some(TypeKind::Struct(s)) => {
                s.fields.iter().any(|f| f.api_name == "check_url")
                    && s.fields.iter().any(|f| f.api_name == "operation_id")
            }
            _ => false,
        },
        _ => false,
    }
}

fn success_kind<'a>(api: &Api, op: &'a Operation) -> Success<'a> {
    if op.is_stream() {
        return Success::Stream;
    }
    let successes: Vec<_> = op.successes().collect();
    if successes.len() > 1 {
        return Success::Several;
    }
    match &successes[0].body {
        Some(ResponseBody::Json { shape, .. }) => {
            Success::Single { shape: Some(shape), handle: is_operation_handle(api, shape) }
        }
        _ => Success::Single { shape: None, handle: false },
    }
}

fn status_variant(status: StatusCode) -> String {
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

fn operation(api: &Api, op: &Operation) -> TokenStream {
    let builder = format_ident!("{}", op.type_prefix);
    let method_name = ident(&op.name);
    let args: Vec<&Parameter> = op.parameters.iter().filter(|p| is_argument(p)).collect();
    let optional: Vec<&Parameter> = op.parameters.iter().filter(|p| !is_argument(p)).collect();
    let body_ty = op.body.as_ref().map(|b| rust_type(&b.shape, &quote!(crate::types::)));
    let body_required = op.body.as_ref().is_some_and(|b| b.required);

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
    let example = operation_example(api, op);

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
                let path = &mut crate::validate::FieldPath::field(#wire);
                #check
            };
            Some(if is_argument(p) {
                quote! { { let value = &self.#n; #check } }
            } else {
                quote! { if let ::std::option::Option::Some(value) = &self.#n { #check } }
            })
        })
        .collect();
    let body_check = body_ty.as_ref().map(|_| {
        quote! {
            if let ::std::option::Option::Some(body) = &self.body {
                crate::validate::Validate::validate(body, &mut crate::validate::FieldPath::root())?;
            }
        }
    });

    // Building the request.
    let path_expr = path_expr(op);
    let query_pushes: Vec<TokenStream> = op
        .params_in(ParamLocation::Query)
        .map(|p| {
            let n = ident(&p.name);
            let wire = &p.api_name;
            let to_s = to_wire_string(&p.shape, quote!(value));
            let push = if let Shape::Array(a) = &p.shape {
                let item = to_wire_string(&a.items, quote!(item));
                quote! { for item in value.iter() { query.push((#wire, #item)); } }
            } else {
                quote!(query.push((#wire, #to_s));)
            };
            if is_argument(p) {
                quote! { { let value = &self.#n; #push } }
            } else {
                quote! { if let ::std::option::Option::Some(value) = &self.#n { #push } }
            }
        })
        .collect();
    let header_pushes: Vec<TokenStream> = op
        .params_in(ParamLocation::Header)
        .filter(|p| !is_managed_header(p))
        .map(|p| {
            let n = ident(&p.name);
            let wire = &p.api_name;
            let to_s = to_wire_string(&p.shape, quote!(value));
            if is_argument(p) {
                quote! { { let value = &self.#n; headers.push((#wire, #to_s)); } }
            } else {
                quote! { if let ::std::option::Option::Some(value) = &self.#n { headers.push((#wire, #to_s)); } }
            }
        })
        .collect();
    let managed_setters: Vec<TokenStream> = op
        .params_in(ParamLocation::Header)
        .filter(|p| is_managed_header(p))
        .map(|p| {
            let n = ident(&p.name);
            if p.api_name.eq_ignore_ascii_case("idempotency-key") {
                quote! {
                    if let ::std::option::Option::Some(value) = &self.#n {
                        options = options.idempotency_key(value.clone());
                    }
                }
            } else {
                quote! {
                    if let ::std::option::Option::Some(value) = &self.#n {
                        options = options.last_event_id(value.clone());
                    }
                }
            }
        })
        .collect();
    let body_bytes = if body_ty.is_some() {
        quote! {
            let body = match &self.body {
                ::std::option::Option::Some(body) => ::std::option::Option::Some(::bytes::Bytes::from(
                    ::serde_json::to_vec(body).map_err(|e| crate::Error::Config(::std::format!("the request body could not be serialized: {e}")))?,
                )),
                ::std::option::Option::None => ::std::option::Option::None,
            };
        }
    } else {
        quote!(let body = ::std::option::Option::None;)
    };
    let http_method = match op.method {
        Method::Get => quote!(::http::Method::GET),
        Method::Put => quote!(::http::Method::PUT),
        Method::Post => quote!(::http::Method::POST),
        Method::Delete => quote!(::http::Method::DELETE),
        Method::Patch => quote!(::http::Method::PATCH),
    };

    // Sending and decoding.
    let (extra_types, send) = send_fn(api, op);
    let into_stream = pagination_stream(op);
    let required_body_check = (body_ty.is_some() && body_required).then(|| quote! {
        if self.body.is_none() {
            return ::std::result::Result::Err(crate::Error::InvalidRequest(crate::validate::FieldPath::root().error("a request body is required")));
        }
    });
    let builder_doc = format!(" A `{}` request; made by [`Client::{}`](crate::Client::{}).", op.id, op.name, op.name);

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
                #(#param_checks)*
                #body_check
                ::std::result::Result::Ok(())
            }

            fn request(&self) -> ::std::result::Result<(crate::RequestSpec, crate::RequestOptions), crate::Error> {
                self.validate()?;
                #[allow(unused_mut)]
                let mut query: ::std::vec::Vec<(&'static str, ::std::string::String)> = ::std::vec::Vec::new();
                #(#query_pushes)*
                #[allow(unused_mut)]
                let mut headers: ::std::vec::Vec<(&'static str, ::std::string::String)> = ::std::vec::Vec::new();
                #(#header_pushes)*
                #[allow(unused_mut)]
                let mut options = self.options.clone();
                #(#managed_setters)*
                #body_bytes
                let spec = crate::RequestSpec { method: #http_method, path: #path_expr, query, headers, body };
                ::std::result::Result::Ok((spec, options))
            }

            #send
            #into_stream
        }

        #extra_types
    }
}

fn path_expr(op: &Operation) -> TokenStream {
    let mut fmt = String::new();
    let mut args = Vec::new();
    for seg in &op.segments {
        match seg {
            PathSegment::Literal(l) => fmt.push_str(&l.replace('{', "{{").replace('}', "}}")),
            PathSegment::Param(api_name) => {
                fmt.push_str("{}");
                let p = op.parameters.iter().find(|p| p.location == ParamLocation::Path && &p.api_name == api_name);
                if let Some(p) = p {
                    let n = ident(&p.name);
                    let s = to_wire_string(&p.shape, quote!(&self.#n));
                    args.push(quote!(crate::url::encode_segment(&#s)));
                }
            }
        }
    }
    if args.is_empty() {
        return quote!(::std::string::String::from(#fmt));
    }
    quote!(::std::format!(#fmt, #(#args),*))
}

/// An expression turning a parameter value (a reference) into its wire text.
fn to_wire_string(shape: &Shape, value: TokenStream) -> TokenStream {
    match shape {
        Shape::String(_) => quote!(::std::string::ToString::to_string(#value)),
        Shape::Named(_) => quote!(#value.as_str().to_owned()),
        _ => quote!(::std::string::ToString::to_string(#value)),
    }
}

/// The `send` method, and any type it needs (the response enum of an
/// operation with several success bodies, the event enum of a stream).
fn send_fn(api: &Api, op: &Operation) -> (TokenStream, TokenStream) {
    let prefix = quote!(crate::types::);
    match success_kind(api, op) {
        Success::Single { handle: true, .. } => (
            TokenStream::new(),
            quote! {
                /// Sends the request (retrying as configured) and returns a
                /// handle on the long-running operation it started.
                pub async fn send(self) -> ::std::result::Result<crate::ApiResponse<crate::OperationHandle>, crate::Error> {
                    let (spec, options) = self.request()?;
                    let raw = self.client.execute(spec, &options).await?;
                    let accepted = raw.json::<crate::types::OperationAccepted>()?;
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
                    Some(ResponseBody::Json { shape, .. }) if is_operation_handle(api, shape) => {
                        variants.push(quote!(#[doc = #doc] #v(crate::OperationHandle),));
                        arms.push(quote! {
                            #code => {
                                let accepted = raw.json::<crate::types::OperationAccepted>()?;
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
            let event_enum = format_ident!("{}Event", op.type_prefix);
            let stream = op
                .successes()
                .find_map(|r| match &r.body {
                    Some(ResponseBody::EventStream(s)) => Some(s),
                    _ => None,
                })
                .expect("is_stream checked");
            let variants = stream.events.iter().map(|e| {
                let v = ident(&e.name);
                let ty = rust_type(&e.data, &prefix);
                let doc = format!(" The `{}` event.", e.api_name);
                quote!(#[doc = #doc] #v(#ty),)
            });
            let decode_arms = stream.events.iter().map(|e| {
                let v = ident(&e.name);
                let wire = &e.api_name;
                quote!(#wire => ::serde_json::from_str(data).map(Self::#v),)
            });
            let terminal: Vec<TokenStream> = stream
                .events
                .iter()
                .filter(|e| matches!(e.api_name.as_str(), "done" | "error" | "end"))
                .map(|e| {
                    let v = ident(&e.name);
                    quote!(Self::#v(_))
                })
                .collect();
            let is_terminal = if terminal.is_empty() { quote!(false) } else { quote!(matches!(self, #(#terminal)|*)) };
            let error_arm =
                stream.events.iter().find(|e| e.api_name == "error" && event_has_code_and_message(api, &e.data)).map(
                    |e| {
                        let v = ident(&e.name);
                        quote! {
                            Self::#v(e) => ::std::option::Option::Some(crate::StreamFailure {
                                code: e.code.clone(),
                                message: e.message.clone(),
                                event_id: ::std::option::Option::None,
                            }),
                        }
                    },
                );
            let doc = format!(" One event of the `{}` stream.", op.id);
            (
                quote! {
                    #[doc = #doc]
                    #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
                    pub enum #event_enum {
                        #(#variants)*
                    }
                    impl crate::StreamEvent for #event_enum {
                        fn decode(event: ::std::option::Option<&str>, data: &str) -> ::std::result::Result<Self, ::serde_json::Error> {
                            match event.unwrap_or("message") {
                                #(#decode_arms)*
                                other => ::std::result::Result::Err(<::serde_json::Error as ::serde::de::Error>::custom(
                                    ::std::format!("unknown event `{other}`"),
                                )),
                            }
                        }
                        fn is_terminal(&self) -> bool {
                            #is_terminal
                        }
                        fn stream_error(&self) -> ::std::option::Option<crate::StreamFailure> {
                            #[allow(unreachable_patterns)]
                            match self {
                                #error_arm
                                _ => ::std::option::Option::None,
                            }
                        }
                    }
                },
                quote! {
                    /// Opens the event stream. Nothing is sent until the stream is
                    /// first polled; a dropped connection is resumed with
                    /// `Last-Event-ID` as the client's resume policy allows.
                    pub fn send(self) -> ::std::result::Result<crate::EventStream<#event_enum>, crate::Error> {
                        let (spec, options) = self.request()?;
                        ::std::result::Result::Ok(crate::EventStream::new(self.client.clone(), spec, options))
                    }
                },
            )
        }
    }
}

fn event_has_code_and_message(api: &Api, shape: &Shape) -> bool {
    let Shape::Named(n) = shape else { return false };
    let Some(TypeKind::Struct(s)) = api.types.get(n).map(|t| &t.kind) else { return false };
    let has = |name: &str| s.fields.iter().any(|f| f.api_name == name && f.required && !f.nullable);
    has("code") && has("message")
}

fn pagination_stream(op: &Operation) -> TokenStream {
    let Some(p) = &op.pagination else { return TokenStream::new() };
    let page = ident(&p.page_param);
    let items = ident(&p.items_field);
    let pagination = ident(&p.pagination_field);
    let item = rust_type(&p.item, &quote!(crate::types::));
    quote! {
        /// Every item of every page from the one set by `page` (or the
        /// first), fetching each page only when the previous one is used up.
        pub fn into_stream(self) -> crate::Paginated<#item> {
            let first = self.#page.map_or(1, |p| u64::try_from(p).unwrap_or(1));
            crate::paginate(first, move |page| {
                let mut request = self.clone();
                request.#page = ::std::option::Option::Some(i64::try_from(page).unwrap_or(i64::MAX) as _);
                async move {
                    let body = request.send().await?.body;
                    ::std::result::Result::Ok(crate::Page {
                        items: body.#items,
                        page: u64::try_from(body.#pagination.page).unwrap_or(0),
                        pages: u64::try_from(body.#pagination.pages).unwrap_or(0),
                        total: u64::try_from(body.#pagination.total).unwrap_or(0),
                    })
                }
            })
        }
    }
}

/// A compiled (not run) doc example for the operations people reach for
/// first: paged lists, streams and operations with several success bodies.
fn operation_example(api: &Api, op: &Operation) -> TokenStream {
    let interesting = op.pagination.is_some() || op.is_stream() || matches!(success_kind(api, op), Success::Several);
    if !interesting || op.deprecated {
        return TokenStream::new();
    }
    let mut args: Vec<String> = op
        .parameters
        .iter()
        .filter(|p| is_argument(p))
        .map(|p| match &p.example {
            Some(serde_json::Value::String(s)) => format!("{s:?}"),
            Some(v) => v.to_string(),
            None => "\"example\"".into(),
        })
        .collect();
    let mut setup = String::new();
    if let Some(body) = op.body.as_ref().filter(|b| b.required) {
        let example = body.example.clone().unwrap_or(serde_json::json!({}));
        let ty = match &body.shape {
            Shape::Named(n) => format!("runagent_client::types::{n}"),
            _ => "_".into(),
        };
        setup.push_str(&format!(
            "let body: {ty} = serde_json::from_value(serde_json::json!({}))?;\n",
            serde_json::to_string(&example).unwrap_or_default()
        ));
        args.push("body".into());
    }
    let call = format!("client.{}({})", op.name, args.join(", "));
    let usage = if op.pagination.is_some() {
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
                Some(ResponseBody::Json { shape, .. }) if is_operation_handle(api, shape) => arms.push_str(&format!(
                    "    runagent_client::operations::{enum_name}::{v}(operation) => println!(\"finished: {{:?}}\", operation.wait().await?),\n"
                )),
                Some(_) => arms.push_str(&format!("    runagent_client::operations::{enum_name}::{v}(body) => println!(\"{{body:?}}\"),\n")),
                None => arms.push_str(&format!("    runagent_client::operations::{enum_name}::{v} => {{}}\n")),
            }
        }
        format!("let response = {call}.send().await?;\nmatch response.body {{\n{arms}}}\n")
    };
    let text = format!(
        "# Example\n\n```no_run\n# async fn run() -> Result<(), Box<dyn std::error::Error>> {{\nlet client = runagent_client::Client::from_env()?;\n{setup}{usage}# Ok(())\n# }}\n```"
    );
    let text = format!("\n{text}");
    lines_to_attrs(&text)
}

fn example(api: &Api) -> TokenStream {
    let usable = |op: &&Operation| !op.deprecated && op.secured;
    let list = api.operations.iter().filter(usable).find(|o| o.pagination.is_some());
    let invoke = api.operations.iter().filter(usable).find(|o| matches!(success_kind(api, o), Success::Several));
    let stream = api.operations.iter().filter(usable).find(|o| o.is_stream() && o.body.is_some());
    let list_code = list.map(|op| {
        let m = ident(&op.name);
        quote! {
            let page = client.#m().send().await?;
            println!("status {} request {:?} rate limit {:?}", page.meta.status, page.meta.request_id, page.meta.rate_limit);
            let mut items = client.#m().into_stream();
            while let Some(item) = items.next().await {
                println!("{:?}", item?);
            }
        }
    });
    // Path parameters come from RUNAGENT_<NAME> (e.g. RUNAGENT_AGENT_ID),
    // falling back to the spec's example; bodies are the spec's examples.
    let call = |op: &Operation| {
        let m = ident(&op.name);
        let args: Vec<TokenStream> = op
            .parameters
            .iter()
            .filter(|p| is_argument(p))
            .map(|p| {
                let var = format!("RUNAGENT_{}", sanitize(&p.api_name, Case::ScreamingSnake));
                let fallback = match &p.example {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "example".into(),
                };
                quote!(::std::env::var(#var).unwrap_or_else(|_| #fallback.to_owned()))
            })
            .collect();
        let body = op.body.as_ref().filter(|b| b.required).map(|b| {
            let json = serde_json::to_string(&b.example.clone().unwrap_or(serde_json::json!({}))).unwrap_or_default();
            quote!(::serde_json::from_str(#json)?)
        });
        let all = args.into_iter().chain(body);
        quote!(client.#m(#(#all),*))
    };
    let invoke_code = invoke.map(|op| {
        let c = call(op);
        let e = format_ident!("{}Response", op.type_prefix);
        let arms = op.successes().map(|r| {
            let v = format_ident!("{}", status_variant(r.status));
            match &r.body {
                Some(ResponseBody::Json { shape, .. }) if is_operation_handle(api, shape) => {
                    quote!(runagent_client::operations::#e::#v(operation) => println!("finished: {:?}", operation.wait().await?),)
                }
                Some(_) => quote!(runagent_client::operations::#e::#v(body) => println!("{body:?}"),),
                None => quote!(runagent_client::operations::#e::#v => {}),
            }
        });
        quote! {
            match #c.send().await?.body {
                #(#arms)*
            }
        }
    });
    let stream_code = stream.map(|op| {
        let c = call(op);
        quote! {
            let mut events = #c.send()?;
            while let Some(event) = events.next().await {
                println!("{:?}", event?);
            }
        }
    });
    quote! {
        //! Lists agents, invokes one and streams a reply.
        //!
        //! Run against a local server:
        //! `RUNAGENT_API_KEY=... RUNAGENT_BASE_URL=http://127.0.0.1:8450/v1 RUNAGENT_AGENT_ID=agt_... cargo run -p runagent-client --example quickstart`
        use futures::StreamExt;

        #[tokio::main]
        async fn main() -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {
            let client = runagent_client::Client::from_env()?;
            #list_code
            #invoke_code
            #stream_code
            Ok(())
        }
    }
}
