//! The server-stub crate: models, one trait with a method per operation,
//! typed inputs and response enums, and a router that validates, applies
//! auth, rate limits and idempotency, and answers every failure in the
//! error envelope. Runtime support is copied from `templates/server/src`.

use super::doc_text::doc_attrs;
use super::models::{self, Mode, ident, rust_type, shape_check};
use super::{EmitError, Files, versions};
use crate::ir::{Api, Method, Operation, ParamLocation, Parameter, ResponseBody, Shape, StatusCode};
use crate::naming::{Case, sanitize};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Runtime files copied into `src/`.
pub const RUNTIME: &[(&str, &str)] = &[
    ("auth.rs", include_str!("../../../templates/server/src/auth.rs")),
    ("config.rs", include_str!("../../../templates/server/src/config.rs")),
    ("context.rs", include_str!("../../../templates/server/src/context.rs")),
    ("error.rs", include_str!("../../../templates/server/src/error.rs")),
    ("extract.rs", include_str!("../../../templates/server/src/extract.rs")),
    ("fallback.rs", include_str!("../../../templates/server/src/fallback.rs")),
    ("idempotency.rs", include_str!("../../../templates/server/src/idempotency.rs")),
    ("rate_limit.rs", include_str!("../../../templates/server/src/rate_limit.rs")),
    ("request_id.rs", include_str!("../../../templates/server/src/request_id.rs")),
    ("sse.rs", include_str!("../../../templates/server/src/sse.rs")),
    ("nullable.rs", include_str!("../../../runtime/common/nullable.rs")),
    ("validate.rs", include_str!("../../../runtime/common/validate.rs")),
];

const REEXPORTED: &[&str] =
    &["auth", "config", "context", "error", "idempotency", "rate_limit", "request_id", "sse", "validate"];

/// Names the generated handlers use next to parameters (the context, the
/// state, the inputs), so no parameter may take them. Keep in step with
/// `handler` and `params_struct`; the `param-collision` fixture compiles a
/// parameter named after each.
pub const RESERVED_PARAMS: &[&str] = &["ctx", "state", "params", "request"];

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

pub fn emit(api: &Api, names: &crate::config::Names, files: &mut Files) -> Result<(), EmitError> {
    let _ = names;
    let dir = "server";
    files.toml(format!("{dir}/Cargo.toml"), cargo_toml(api));
    files.markdown(format!("{dir}/README.md"), readme(api));
    files.rust(format!("{dir}/src/lib.rs"), lib_rs(), "server lib")?;
    files.rust(format!("{dir}/src/types.rs"), models::emit_types(api, Mode::Server), "server models")?;
    files.rust(format!("{dir}/src/api.rs"), api_rs(api), "server trait")?;
    files.rust(format!("{dir}/src/router.rs"), router_rs(api), "server router")?;
    for (name, source) in RUNTIME {
        files.verbatim(format!("{dir}/src/{name}"), source);
    }
    Ok(())
}

/// The trait's name, from the API's title: `RunAgent API` → `RunAgentApi`.
pub fn trait_name(api: &Api) -> String {
    let name = sanitize(&api.title, Case::UpperCamel);
    if name.ends_with("Api") { name } else { format!("{name}Api") }
}

fn cargo_toml(api: &Api) -> String {
    let deps: String = versions::SERVER.iter().map(|(name, spec)| format!("{name} = {spec}\n")).collect();
    format!(
        r#"[package]
name = "runagent-server"
version = "0.1.0"
description = "axum server stubs for the {title}: implement one trait, get validation, auth, rate limits, idempotency and SSE"
edition = "2024"
rust-version = "1.88"
license = "MIT OR Apache-2.0"
readme = "README.md"
keywords = ["runagent", "axum", "server", "openapi"]
categories = ["web-programming::http-server"]

[dependencies]
{deps}
[dev-dependencies]
tokio = {{ version = "1.54.1", features = ["macros", "rt-multi-thread", "net"] }}
"#,
        title = api.title
    )
}

fn readme(api: &Api) -> String {
    let trait_name = trait_name(api);
    let first = api.operations.iter().find(|o| !o.secured).or(api.operations.first());
    let (op_name, op_prefix) = first.map(|o| (o.name.clone(), o.type_prefix.clone())).unwrap_or_default();
    let ok_variant =
        first.and_then(|o| o.successes().next()).map(|r| status_variant(r.status)).unwrap_or_else(|| "Ok".into());
    let body = first.and_then(|o| o.successes().next()).and_then(|r| match &r.body {
        Some(ResponseBody::Json { shape: Shape::Named(n), example }) => Some((n.clone(), example.clone())),
        _ => None,
    });
    let (construct, ty) = match body {
        Some((n, Some(example))) => (
            format!(
                "serde_json::from_value(serde_json::json!({})).expect(\"the example fits the schema\")",
                serde_json::to_string(&example).unwrap_or_default()
            ),
            n,
        ),
        _ => ("todo!()".into(), String::new()),
    };
    let use_line = if ty.is_empty() { String::new() } else { format!("use runagent_server::types::{ty};\n") };
    let annotated = if ty.is_empty() { String::new() } else { format!(": {ty}") };
    let mut ops = String::new();
    for op in &api.operations {
        let auth = if op.secured { "bearer" } else { "none" };
        ops.push_str(&format!("| `{}` | `{} {}` | {auth} |\n", op.name, op.method.as_str(), op.path));
    }
    format!(
        r#"# runagent-server

axum server stubs for the {title} (version {version}), generated from the
OpenAPI spec. You implement one trait, [`{trait_name}`]; the generated router
does everything else the spec says:

- parses and validates path, query, header and body input against the spec and
  answers anything invalid with `400 INVALID_INPUT` in the API's error envelope,
  naming the field (`details.field`) and the reason (`details.reason`) — never a
  `text/plain` answer, a 415 or a 422;
- authenticates the bearer key with your `Authenticator` (401 with
  `WWW-Authenticate` otherwise) on every operation the spec secures;
- applies per-tier rate limits (free 100/hour, pro 1,000/hour, enterprise
  configurable) with `X-RateLimit-*` headers and `429` + `Retry-After`;
- replays POSTs that repeat an `Idempotency-Key` (409 when the body differs);
- adds `X-Request-Id` to every response, `Deprecation`/`Sunset` to deprecated
  operations, 404 for unknown paths, 405 with `Allow`, 413 over the body limit;
- frames streaming responses as Server-Sent Events with ids.

## Implement one operation at a time

Every trait method has a default that answers `501 NOT_IMPLEMENTED` in the error envelope, so a new
server compiles and runs before it does anything, and grows one method at a
time:

```rust
use runagent_server::{{ApiFailure, RequestContext, StaticKeys, ServerConfig, {trait_name}}};
use runagent_server::{{{op_prefix}Params, {op_prefix}Response}};
{use_line}
struct MyServer;

impl {trait_name} for MyServer {{
    async fn {op_name}(&self, _ctx: RequestContext, _params: {op_prefix}Params) -> Result<{op_prefix}Response, ApiFailure> {{
        let body{annotated} = {construct};
        Ok({op_prefix}Response::{ok_variant}(body))
    }}
    // Every other operation answers NOT_IMPLEMENTED until you write it.
}}

# async fn serve() -> std::io::Result<()> {{
let app = runagent_server::router(MyServer, StaticKeys::new().with_key("secret", "me", runagent_server::Tier::Pro), ServerConfig::default());
let listener = tokio::net::TcpListener::bind("127.0.0.1:8450").await?;
axum::serve(listener, app).await
# }}
```

## Operations

| Method | HTTP | Auth |
|---|---|---|
{ops}
This crate is generated by `cargo xtask codegen` from `spec/openapi.yaml`; do not edit it by hand.
"#,
        title = api.title,
        version = api.version,
    )
}

fn lib_rs() -> TokenStream {
    let mods = super::runtime_modules(RUNTIME, REEXPORTED);
    quote! {
        #![doc = include_str!("../README.md")]
        #![deny(missing_docs)]
        #![forbid(unsafe_code)]

        pub mod types;
        mod api;
        pub use api::*;
        mod router;
        pub use router::*;
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
                let insert = quote! {
                    if let ::std::result::Result::Ok(value) = ::http::HeaderValue::from_str(&#value) {
                        headers.insert(::http::HeaderName::from_static(#wire), value);
                    }
                };
                if h.required {
                    quote! { { let v = &self.#n; #insert } }
                } else {
                    quote! { if let ::std::option::Option::Some(v) = &self.#n { #insert } }
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
    let Some(stream) = op.successes().find_map(|r| match &r.body {
        Some(ResponseBody::EventStream(s)) => Some(s),
        _ => None,
    }) else {
        return TokenStream::new();
    };
    let name = format_ident!("{}Event", op.type_prefix);
    let prefix = quote!(crate::types::);
    let variants = stream.events.iter().map(|e| {
        let v = ident(&e.name);
        let ty = rust_type(&e.data, &prefix);
        let doc = format!(" The `{}` event.", e.api_name);
        quote!(#[doc = #doc] #v(#ty),)
    });
    let names = stream.events.iter().map(|e| {
        let v = ident(&e.name);
        let wire = &e.api_name;
        quote!(Self::#v(_) => #wire,)
    });
    let datas = stream.events.iter().map(|e| {
        let v = ident(&e.name);
        quote!(Self::#v(data) => ::serde_json::to_string(data).unwrap_or_else(|_| ::std::string::String::from("null")),)
    });
    let doc = format!(" One event of the `{}` stream.", op.id);
    quote! {
        #[doc = #doc]
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
        pub enum #name {
            #(#variants)*
        }
        impl crate::SseEventData for #name {
            fn event_name(&self) -> &'static str {
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
        let ty = rust_type(&b.shape, &quote!(crate::types::));
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
    let doc = doc_attrs(Some(&format!(
        "The {}: one method per operation.\n\nImplement the methods your server supports; the others answer `501 NOT_IMPLEMENTED`. Inputs arrive parsed and validated against the spec; authentication, rate limits, idempotency and request ids are handled before a method is called. Pass the implementation to [`router`](crate::router).",
        api.title
    )));
    quote! {
        //! The API trait, the typed inputs and the typed responses of every
        //! operation.
        #![allow(deprecated, clippy::large_enum_variant)]

        #doc
        pub trait #trait_name: ::std::marker::Send + ::std::marker::Sync + 'static {
            #(#methods)*
        }

        #(#params)*
        #(#responses)*
        #(#events)*
    }
}

/// The statements of a handler that read the parameters into the params
/// struct.
fn read_params(api: &Api, op: &Operation) -> TokenStream {
    let params = format_ident!("{}Params", op.type_prefix);
    let prefix = quote!(crate::types::);
    let query: Vec<&Parameter> = op.params_in(ParamLocation::Query).collect();
    let query_struct = (!query.is_empty()).then(|| {
        let fields = query.iter().map(|p| {
            let n = ident(&p.name);
            let ty = rust_type(&p.shape, &prefix);
            let wire = &p.api_name;
            quote!(#[serde(rename = #wire, default)] #n: ::std::option::Option<#ty>,)
        });
        quote! {
            #[derive(::serde::Deserialize)]
            struct Query { #(#fields)* }
            let query_string: Query = crate::extract::query(&parts.uri)?;
        }
    });
    let reads = op.parameters.iter().map(|p| {
        let n = ident(&p.name);
        let wire = &p.api_name;
        let raw = match p.location {
            ParamLocation::Path => quote!(::std::option::Option::Some(crate::extract::path_param(&path_params, #wire)?)),
            ParamLocation::Query => quote!(query_string.#n),
            ParamLocation::Header => {
                let parse = parse_text(&p.shape, wire);
                quote! {
                    crate::extract::header_str(&parts.headers, #wire)?
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

fn handler(api: &Api, op: &Operation) -> TokenStream {
    let trait_name = format_ident!("{}", trait_name(api));
    let h = format_ident!("handle_{}", op.name);
    let m = ident(&op.name);
    let read = read_params(api, op);
    let body = op.body.as_ref().map(|b| {
        if b.required {
            quote! {
                let bytes = crate::extract::read_body(body, state.config.body_limit).await?;
                let body = crate::extract::json_body(&parts.headers, &bytes)?;
            }
        } else {
            quote! {
                let bytes = crate::extract::read_body(body, state.config.body_limit).await?;
                let body = if bytes.is_empty() { ::std::option::Option::None } else { ::std::option::Option::Some(crate::extract::json_body(&parts.headers, &bytes)?) };
            }
        }
    });
    let body_arg = op.body.as_ref().map(|_| quote!(body,));
    let ignore_body = op.body.is_none().then(|| quote!(let _ = body;));
    quote! {
        #[allow(deprecated)]
        async fn #h<A: crate::#trait_name>(
            ::axum::extract::State(state): ::axum::extract::State<::std::sync::Arc<Shared<A>>>,
            request: ::axum::extract::Request,
        ) -> ::axum::response::Response {
            let result: ::std::result::Result<_, crate::ApiFailure> = async move {
                #[allow(unused_mut)]
                let (mut parts, body) = request.into_parts();
                #ignore_body
                let ctx = crate::RequestContext::from_parts(&parts);
                #read
                #body
                state.api.#m(ctx, params, #body_arg).await
            }.await;
            match result {
                ::std::result::Result::Ok(response) => ::axum::response::IntoResponse::into_response(response),
                ::std::result::Result::Err(failure) => ::axum::response::IntoResponse::into_response(failure),
            }
        }
    }
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

fn route_layers(op: &Operation) -> TokenStream {
    let h = format_ident!("handle_{}", op.name);
    let mut handler = quote!(#h::<A>);
    // Innermost first: idempotency needs the principal, so it sits inside
    // auth; rate limiting counts every authenticated attempt, replays too.
    if op.method == Method::Post && op.secured {
        handler = quote!(::axum::handler::Handler::layer(#handler, layers.idempotency.clone()));
    }
    if op.secured {
        handler = quote!(::axum::handler::Handler::layer(#handler, layers.rate_limit.clone()));
        handler = quote!(::axum::handler::Handler::layer(#handler, layers.auth.clone()));
    }
    if op.deprecated {
        let sunset = op.sunset.as_deref().and_then(http_date);
        let sunset = match sunset {
            Some(s) => quote!(::std::option::Option::Some(#s)),
            None => quote!(::std::option::Option::None),
        };
        // RFC 9745 wants the date of deprecation; without `x-deprecated-at`
        // the older draft's `true` still says "deprecated".
        let since = op.deprecated_at.as_deref().and_then(structured_date).unwrap_or_else(|| "true".to_owned());
        handler = quote!(::axum::handler::Handler::layer(#handler, crate::DeprecationLayer::new(#since, #sunset)));
    }
    handler
}

fn router_rs(api: &Api) -> TokenStream {
    let trait_name = format_ident!("{}", trait_name(api));
    let handlers = api.operations.iter().map(|op| handler(api, op));
    // Group operations by path, keeping spec order.
    let mut paths: Vec<(String, Vec<&Operation>)> = Vec::new();
    for op in &api.operations {
        match paths.iter_mut().find(|(p, _)| *p == op.path) {
            Some((_, ops)) => ops.push(op),
            None => paths.push((op.path.clone(), vec![op])),
        }
    }
    let routes = paths.iter().map(|(path, ops)| {
        let allow = ops.iter().map(|o| o.method.as_str()).collect::<Vec<_>>().join(", ");
        let mut chain = quote!(::axum::routing::MethodRouter::new());
        for op in ops {
            let layered = route_layers(op);
            let method = match op.method {
                Method::Get => quote!(get),
                Method::Put => quote!(put),
                Method::Post => quote!(post),
                Method::Delete => quote!(delete),
                Method::Patch => quote!(patch),
            };
            chain = quote!(#chain.#method(#layered));
        }
        quote! {
            .route(#path, #chain.fallback(crate::fallback::method_not_allowed(#allow)))
        }
    });
    quote! {
        //! The router: every operation under the configured prefix, with
        //! validation, auth, rate limits, idempotency and the error envelope.

        struct Shared<A> {
            api: A,
            config: crate::ServerConfig,
        }

        /// The layers a route may need, built once and cloned per route.
        struct Layers<Au: crate::Authenticator> {
            auth: crate::AuthLayer<Au>,
            rate_limit: crate::RateLimitLayer,
            idempotency: crate::IdempotencyLayer,
        }

        /// Builds the router with in-memory rate-limit and idempotency stores.
        /// See [`RouterBuilder`] to plug in shared stores.
        pub fn router<A: crate::#trait_name, Au: crate::Authenticator>(api: A, authenticator: Au, config: crate::ServerConfig) -> ::axum::Router {
            RouterBuilder::new(api, authenticator).config(config).build()
        }

        /// Builds a router, with pluggable stores for the rate-limit counters
        /// and the idempotency records (to share them between instances).
        pub struct RouterBuilder<A, Au> {
            api: A,
            authenticator: Au,
            config: crate::ServerConfig,
            counters: ::std::option::Option<::std::sync::Arc<dyn crate::CounterStore>>,
            idempotency: ::std::option::Option<::std::sync::Arc<dyn crate::IdempotencyStore>>,
        }

        impl<A: crate::#trait_name, Au: crate::Authenticator> RouterBuilder<A, Au> {
            /// Starts from an implementation and an authenticator.
            pub fn new(api: A, authenticator: Au) -> Self {
                RouterBuilder { api, authenticator, config: crate::ServerConfig::default(), counters: ::std::option::Option::None, idempotency: ::std::option::Option::None }
            }
            /// Sets the configuration (prefix, body limit, rate limits).
            pub fn config(mut self, config: crate::ServerConfig) -> Self {
                self.config = config;
                self
            }
            /// Uses this store for rate-limit counters.
            pub fn counter_store(mut self, store: ::std::sync::Arc<dyn crate::CounterStore>) -> Self {
                self.counters = ::std::option::Option::Some(store);
                self
            }
            /// Uses this store for idempotency records.
            pub fn idempotency_store(mut self, store: ::std::sync::Arc<dyn crate::IdempotencyStore>) -> Self {
                self.idempotency = ::std::option::Option::Some(store);
                self
            }
            /// Builds the axum router.
            pub fn build(self) -> ::axum::Router {
                let counters = self.counters.unwrap_or_else(|| ::std::sync::Arc::new(crate::InMemoryCounterStore::default()));
                let idempotency = self.idempotency.unwrap_or_else(|| ::std::sync::Arc::new(crate::InMemoryIdempotencyStore::default()));
                let layers = Layers {
                    auth: crate::AuthLayer::new(self.authenticator),
                    rate_limit: crate::RateLimitLayer::new(self.config.rate_limit.clone(), counters),
                    idempotency: crate::IdempotencyLayer::new(idempotency, self.config.body_limit),
                };
                let prefix = self.config.prefix.trim_end_matches('/').to_owned();
                let shared = ::std::sync::Arc::new(Shared { api: self.api, config: self.config });
                let routes = routes::<A, Au>(&layers).with_state(shared);
                let app = if prefix.is_empty() {
                    routes
                } else {
                    ::axum::Router::new().nest(&prefix, routes)
                };
                app.fallback(crate::fallback::not_found).layer(crate::RequestIdLayer::default())
            }
        }

        fn routes<A: crate::#trait_name, Au: crate::Authenticator>(layers: &Layers<Au>) -> ::axum::Router<::std::sync::Arc<Shared<A>>> {
            ::axum::Router::new()
                #(#routes)*
                .fallback(crate::fallback::not_found)
        }

        #(#handlers)*
    }
}

#[cfg(test)]
mod tests {
    use super::{http_date, structured_date};

    #[test]
    fn sunset_dates_become_http_dates() {
        assert_eq!(http_date("2027-06-30").as_deref(), Some("Wed, 30 Jun 2027 00:00:00 GMT"));
        assert_eq!(http_date("1970-01-01").as_deref(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert_eq!(http_date("2024-02-29").as_deref(), Some("Thu, 29 Feb 2024 00:00:00 GMT"));
        assert_eq!(http_date("junk"), None);
        assert_eq!(structured_date("2025-07-01").as_deref(), Some("@1751328000"));
    }
}
