//! `envelope.rs` of the server crate: the spec's error envelope as the
//! runtime's `ErrorEnvelope`, read from `api.conventions.error` (RFC 9457
//! problem details when the spec has none), and the crate's public names
//! for the runtime types that are generic over it.

use super::doc_lines;
use crate::config::Names;
use crate::emit::models::ident;
use crate::ir::{Api, ErrorConvention, Field, Shape, StructType, TypeKind};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The statuses the runtime answers by itself, for which `code_for_status`
/// has an arm when the spec gives the status a code.
const RUNTIME_STATUSES: &[u16] = &[400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 501, 503];

pub fn envelope_rs(api: &Api, names: &Names) -> TokenStream {
    let realm = &names.auth_realm;
    let implementation = match &api.conventions.error {
        Some(convention) => spec_envelope(api, convention, realm),
        None => problem_details(api, realm),
    };
    quote! {
        //! How this server writes its errors: the spec's error envelope as
        //! the runtime's [`ErrorEnvelope`](crate::ErrorEnvelope), and this
        //! crate's names for the runtime types that are generic over it.

        #implementation

        /// A failed request, answered in the API's error envelope: what every
        /// operation returns on failure and what every rejection becomes.
        ///
        /// Build one with a constructor named after its status
        /// (`ApiFailure::not_found`, `conflict`, `invalid_input`, ...) or with
        /// `ApiFailure::new(status, code, message)`, and refine it with
        /// `with_field`, `with_detail`, `with_message` and `with_header`.
        pub type ApiFailure = crate::error::ApiFailure<ApiErrors>;
        /// Bearer authentication of the secured routes, answering `401` in the
        /// API's error envelope.
        pub type AuthLayer<A> = crate::auth::AuthLayer<A, ApiErrors>;
        /// The service [`AuthLayer`] wraps around a route.
        pub type AuthService<A, S> = crate::auth::AuthService<A, S, ApiErrors>;
        /// Per-principal rate limits, answering `429` in the API's error envelope.
        pub type RateLimitLayer = crate::rate_limit::RateLimitLayer<ApiErrors>;
        /// The service [`RateLimitLayer`] wraps around a route.
        pub type RateLimitService<S> = crate::rate_limit::RateLimitService<S, ApiErrors>;
        /// Replays of POSTs retried with an `Idempotency-Key`, answering
        /// conflicts in the API's error envelope.
        pub type IdempotencyLayer = crate::idempotency::IdempotencyLayer<ApiErrors>;
        /// The service [`IdempotencyLayer`] wraps around a route.
        pub type IdempotencyService<S> = crate::idempotency::IdempotencyService<S, ApiErrors>;

        /// Serializes `body` as a JSON response with `status`; a value that
        /// fails to serialize is answered `500` in the API's error envelope.
        pub fn json_response<T: ::serde::Serialize>(status: ::http::StatusCode, body: &T) -> ::axum::response::Response {
            crate::error::json_response::<ApiErrors, T>(status, body)
        }

        impl<S: ::std::marker::Send + ::std::marker::Sync> ::axum::extract::FromRequestParts<S> for crate::auth::Principal {
            type Rejection = ApiFailure;

            /// The principal the auth layer stored; `401` on a route without it.
            fn from_request_parts(parts: &mut ::http::request::Parts, _state: &S) -> impl ::std::future::Future<Output = ::std::result::Result<Self, ApiFailure>> + ::std::marker::Send {
                ::std::future::ready(Self::require(parts))
            }
        }

        impl<S: ::std::marker::Send + ::std::marker::Sync> ::axum::extract::FromRequestParts<S> for crate::rate_limit::RateLimitStatus {
            type Rejection = ApiFailure;

            /// The window the rate-limit layer stored; `500` on a route without it.
            fn from_request_parts(parts: &mut ::http::request::Parts, _state: &S) -> impl ::std::future::Future<Output = ::std::result::Result<Self, ApiFailure>> + ::std::marker::Send {
                ::std::future::ready(Self::require(parts))
            }
        }

        impl<S: ::std::marker::Send + ::std::marker::Sync> ::axum::extract::FromRequestParts<S> for crate::request_id::RequestId {
            type Rejection = ApiFailure;

            /// The id the request-id layer stored; `500` on a router without it.
            fn from_request_parts(parts: &mut ::http::request::Parts, _state: &S) -> impl ::std::future::Future<Output = ::std::result::Result<Self, ApiFailure>> + ::std::marker::Send {
                ::std::future::ready(Self::require(parts))
            }
        }
    }
}

fn struct_def<'a>(api: &'a Api, name: &str) -> Option<&'a StructType> {
    match &api.types.get(name)?.kind {
        TypeKind::Struct(s) => Some(s),
        _ => None,
    }
}

/// A value of a field, from an expression of its plain type that is always
/// there, in the field's representation (`Option`s for optional and
/// nullable, a `Box` for a recursive field).
fn present(field: &Field, value: TokenStream) -> TokenStream {
    let value = if field.boxed { quote!(::std::boxed::Box::new(#value)) } else { value };
    match (field.required, field.nullable) {
        (true, false) => value,
        (true, true) | (false, false) => quote!(::std::option::Option::Some(#value)),
        (false, true) => quote!(::std::option::Option::Some(::std::option::Option::Some(#value))),
    }
}

/// A field's value when nothing is known: absent for optional fields, null
/// for nullable ones.
fn nothing(field: &Field) -> TokenStream {
    match (field.required, field.nullable) {
        (true, false) => quote!(::std::default::Default::default()),
        _ => quote!(::std::option::Option::None),
    }
}

/// A struct literal of `type_name` with `fill` deciding fields and every
/// other field left out (or null).
fn literal(api: &Api, type_name: &str, fill: &dyn Fn(&Field) -> Option<TokenStream>) -> TokenStream {
    let ty = ident(type_name);
    let Some(s) = struct_def(api, type_name) else {
        return quote!(::std::default::Default::default());
    };
    let fields = s.fields.iter().map(|f| {
        let name = ident(&f.name);
        let value = fill(f).unwrap_or_else(|| nothing(f));
        // `code: code` is written `code`, as clippy wants.
        if value.to_string() == f.name { quote!(#name,) } else { quote!(#name: #value,) }
    });
    let additional = s.additional.is_some().then(|| quote!(additional_properties: ::std::default::Default::default(),));
    quote!(crate::types::#ty { #(#fields)* #additional })
}

/// The constant a field must hold, if the convention lists one.
fn constant(c: &ErrorConvention, owner: &str, field: &Field) -> Option<TokenStream> {
    c.constants.iter().find(|k| k.owner == owner && k.field == field.name).map(|k| {
        let (ty, variant) = (ident(&k.enum_type), ident(&k.variant));
        present(field, quote!(crate::types::#ty::#variant))
    })
}

/// The code (an enum variant or a string) for a wire name.
fn code_value(api: &Api, c: &ErrorConvention, wire: &str) -> Option<TokenStream> {
    match &c.code_enum {
        Some(e) => {
            let TypeKind::Enum(def) = &api.types.get(e)?.kind else { return None };
            let variant = def.variants.iter().find(|v| v.api_name == wire)?;
            let (ty, v) = (ident(e), ident(&variant.name));
            Some(quote!(crate::types::#ty::#v))
        }
        None => Some(quote!(::std::string::String::from(#wire))),
    }
}

fn code_for_status(api: &Api, c: &ErrorConvention) -> TokenStream {
    let arms = RUNTIME_STATUSES.iter().filter_map(|status| {
        let value = code_value(api, c, c.status_codes.get(status)?)?;
        let status = Literal::u16_unsuffixed(*status);
        Some(quote!(#status => #value,))
    });
    let arms: Vec<TokenStream> = arms.collect();
    let of = |status: u16| c.status_codes.get(&status).and_then(|wire| code_value(api, c, wire));
    let (client, server) = match &c.code_enum {
        Some(e) => {
            // An enum without the codes of a bad request or an internal error
            // still needs a code for them: its first value.
            let first = match api.types.get(e).map(|t| &t.kind) {
                Some(TypeKind::Enum(def)) => def.variants.first().map(|v| {
                    let (ty, v) = (ident(e), ident(&v.name));
                    quote!(crate::types::#ty::#v)
                }),
                _ => None,
            };
            let first = first.unwrap_or_else(|| quote!(unreachable!("an enum has values")));
            let server = of(500).or_else(|| of(400)).unwrap_or_else(|| first.clone());
            let client = of(400).unwrap_or_else(|| server.clone());
            (client, server)
        }
        None => {
            let named = quote!(crate::error::status_code_name(status));
            (named.clone(), named)
        }
    };
    let client = (client.to_string() != server.to_string()).then(|| quote!(_ if status.is_client_error() => #client,));
    if arms.is_empty() && client.is_none() {
        // A match with the fallback alone is clippy's `match_single_binding`.
        return quote! {
            fn code_for_status(status: ::http::StatusCode) -> Self::Code {
                #server
            }
        };
    }
    quote! {
        fn code_for_status(status: ::http::StatusCode) -> Self::Code {
            match status.as_u16() {
                #(#arms)*
                #client
                _ => #server,
            }
        }
    }
}

fn spec_envelope(api: &Api, c: &ErrorConvention, realm: &str) -> TokenStream {
    let code_ty = match &c.code_enum {
        Some(e) => {
            let e = ident(e);
            quote!(crate::types::#e)
        }
        None => quote!(::std::string::String),
    };
    let envelope_ty = ident(&c.envelope);
    // The error object: code, message and details, plus its constants.
    let error_literal = literal(api, &c.error_type, &|f| {
        if f.name == c.code_field {
            Some(present(f, quote!(code)))
        } else if f.name == c.message_field {
            Some(present(f, quote!(message)))
        } else if c.details.as_ref().is_some_and(|d| d.field == f.name) {
            let details = if f.boxed { quote!(details.map(::std::boxed::Box::new)) } else { quote!(details) };
            Some(match (f.required, f.nullable) {
                (true, false) => {
                    let value = quote!(details.unwrap_or_else(<Self as crate::error::ErrorEnvelope>::empty_details));
                    if f.boxed { quote!(::std::boxed::Box::new(#value)) } else { value }
                }
                (true, true) | (false, false) => details,
                // Present and `null` when there are none, as specs with a
                // nullable details object show it.
                (false, true) => quote!(::std::option::Option::Some(#details)),
            })
        } else {
            constant(c, &c.error_type, f)
        }
    });
    let body = match c.error_path.as_slice() {
        [] => error_literal,
        [path, ..] => literal(api, &c.envelope, &|f| {
            if f.name == *path { Some(present(f, error_literal.clone())) } else { constant(c, &c.envelope, f) }
        }),
    };
    let (details_ty, details_fns) = details_impl(api, c);
    // An envelope without details has no place for them.
    let details_param = if c.details.is_some() { quote!(details) } else { quote!(_details) };
    let code_for_status = code_for_status(api, c);
    let doc = format!(
        " The error envelope of the {}: every failure is answered with its `{}`\n schema (`{}`), the code of a rejection the server makes by itself\n chosen by its status.",
        api.title, c.envelope, c.pointer
    );
    let doc = doc_lines(&doc);
    quote! {
        #doc
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::marker::Copy, ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash, ::std::default::Default)]
        pub struct ApiErrors;

        #[allow(deprecated)]
        impl crate::error::ErrorEnvelope for ApiErrors {
            type Code = #code_ty;
            type Details = #details_ty;
            type Body = crate::types::#envelope_ty;

            const REALM: &'static str = #realm;

            #code_for_status
            #details_fns

            fn envelope(_status: ::http::StatusCode, code: Self::Code, message: ::std::string::String, #details_param: ::std::option::Option<Self::Details>) -> Self::Body {
                #body
            }
        }
    }
}

/// The `Details` type and the methods filling and reading it.
fn details_impl(api: &Api, c: &ErrorConvention) -> (TokenStream, TokenStream) {
    let Some(d) = &c.details else {
        let fns = quote! {
            fn empty_details() {}
            fn set_field(_details: &mut (), _field: ::std::string::String) {}
            fn set_reason(_details: &mut (), _reason: ::std::string::String) {}
            fn set_extra(_details: &mut (), _name: ::std::string::String, _value: ::serde_json::Value) {}
            fn field(_details: &()) -> ::std::option::Option<&str> { ::std::option::Option::None }
            fn reason(_details: &()) -> ::std::option::Option<&str> { ::std::option::Option::None }
        };
        return (quote!(()), fns);
    };
    let ty = ident(&d.type_name);
    let s = struct_def(api, &d.type_name);
    let field_of = |name: &Option<String>| -> Option<&Field> {
        let name = name.as_ref()?;
        s?.fields.iter().find(|f| f.name == *name)
    };
    // Extra properties are kept when the details are open to them, under
    // names the declared fields do not take.
    let extra_ty = s.and_then(|s| s.additional.as_ref()).filter(|_| d.open);
    let declared: Vec<&str> = s.map(|s| s.fields.iter().map(|f| f.api_name.as_str()).collect()).unwrap_or_default();
    let set_extra = match extra_ty {
        Some(_) => quote! {
            if ![#(#declared),*].contains(&name.as_str())
                && let ::std::result::Result::Ok(value) = ::serde_json::from_value(value)
            {
                details.additional_properties.insert(name, value);
            }
        },
        None => quote!(let _ = (details, name, value);),
    };
    let setter = |field: Option<&Field>, wire: &str, value: TokenStream| match (field, extra_ty) {
        (Some(f), _) => {
            let n = ident(&f.name);
            let v = present(f, value);
            quote!(details.#n = #v;)
        }
        (None, Some(_)) => {
            quote!(<Self as crate::error::ErrorEnvelope>::set_extra(details, ::std::string::String::from(#wire), ::serde_json::Value::String(#value));)
        }
        (None, None) => quote!(let _ = (details, #value);),
    };
    let getter = |field: Option<&Field>, wire: &str| match (field, extra_ty) {
        (Some(f), _) => {
            let n = ident(&f.name);
            match (f.required, f.nullable) {
                (true, false) => quote!(::std::option::Option::Some(details.#n.as_str())),
                (false, true) => quote!(details.#n.as_ref().and_then(::std::option::Option::as_deref)),
                _ => quote!(details.#n.as_deref()),
            }
        }
        (None, Some(Shape::Any)) => {
            quote!(details.additional_properties.get(#wire).and_then(::serde_json::Value::as_str))
        }
        (None, Some(Shape::String(_))) => {
            quote!(details.additional_properties.get(#wire).map(::std::string::String::as_str))
        }
        _ => quote! { { let _ = details; ::std::option::Option::None } },
    };
    let field = field_of(&d.field_field);
    let reason = field_of(&d.reason_field);
    let set_field = setter(field, "field", quote!(field));
    let set_reason = setter(reason, "reason", quote!(reason));
    let get_field = getter(field, "field");
    let get_reason = getter(reason, "reason");
    let empty = literal(api, &d.type_name, &|_| None);
    let fns = quote! {
        fn empty_details() -> Self::Details {
            #empty
        }

        fn set_field(details: &mut Self::Details, field: ::std::string::String) {
            #set_field
        }

        fn set_reason(details: &mut Self::Details, reason: ::std::string::String) {
            #set_reason
        }

        fn set_extra(details: &mut Self::Details, name: ::std::string::String, value: ::serde_json::Value) {
            #set_extra
        }

        fn field(details: &Self::Details) -> ::std::option::Option<&str> {
            #get_field
        }

        fn reason(details: &Self::Details) -> ::std::option::Option<&str> {
            #get_reason
        }
    };
    (quote!(crate::types::#ty), fns)
}

/// RFC 9457 problem details, for a spec whose error responses share no
/// envelope the generator recognizes.
fn problem_details(api: &Api, realm: &str) -> TokenStream {
    let doc = format!(
        " The error envelope of the {}. The spec declares none its error responses\n share, so every failure is answered as RFC 9457 problem details\n (`application/problem+json`, see [`ProblemDetails`](crate::ProblemDetails)):\n the code of a failure is its problem `type`, `about:blank` unless given.",
        api.title
    );
    let doc = doc_lines(&doc);
    quote! {
        #doc
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::marker::Copy, ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash, ::std::default::Default)]
        pub struct ApiErrors;

        impl crate::error::ErrorEnvelope for ApiErrors {
            type Code = ::std::string::String;
            type Details = crate::error::ProblemExtensions;
            type Body = crate::error::ProblemDetails;

            const CONTENT_TYPE: &'static str = crate::error::PROBLEM_JSON;
            const REALM: &'static str = #realm;

            fn code_for_status(_status: ::http::StatusCode) -> Self::Code {
                ::std::string::String::from(crate::error::ProblemDetails::BLANK)
            }

            fn envelope(status: ::http::StatusCode, code: Self::Code, message: ::std::string::String, details: ::std::option::Option<Self::Details>) -> Self::Body {
                crate::error::ProblemDetails::new(status, code, message, details)
            }

            fn empty_details() -> Self::Details {
                crate::error::ProblemExtensions::new()
            }

            fn set_field(details: &mut Self::Details, field: ::std::string::String) {
                crate::error::ProblemDetails::set_extension(details, ::std::string::String::from("field"), ::serde_json::Value::String(field));
            }

            fn set_reason(details: &mut Self::Details, reason: ::std::string::String) {
                crate::error::ProblemDetails::set_extension(details, ::std::string::String::from("reason"), ::serde_json::Value::String(reason));
            }

            fn set_extra(details: &mut Self::Details, name: ::std::string::String, value: ::serde_json::Value) {
                crate::error::ProblemDetails::set_extension(details, name, value);
            }

            fn field(details: &Self::Details) -> ::std::option::Option<&str> {
                crate::error::ProblemDetails::extension_str(details, "field")
            }

            fn reason(details: &Self::Details) -> ::std::option::Option<&str> {
                crate::error::ProblemDetails::extension_str(details, "reason")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The generated `envelope.rs` of a spec whose error responses use
    /// `schemas` (YAML under `components/schemas`) as `Error`.
    fn envelope_of(schemas: &str) -> String {
        let spec = format!(
            "openapi: 3.0.3\ninfo: {{title: T, version: '1'}}\npaths:\n  /a:\n    get:\n      operationId: a\n      responses:\n        '200': {{description: ok}}\n        '404':\n          description: no\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/Error'}}\n              example: {{code: gone, message: no}}\ncomponents:\n  schemas:\n{schemas}"
        );
        let files = crate::generate(&spec).unwrap_or_else(|e| panic!("{e}"));
        squash(&files.0["server/src/envelope.rs"].contents)
    }

    /// Text without whitespace, so that checks do not depend on line breaks.
    fn squash(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace()).collect()
    }

    fn has(text: &str, wanted: &str) -> bool {
        text.contains(&squash(wanted))
    }

    #[test]
    fn a_flat_envelope_without_details() {
        let text = envelope_of(
            "    Error:\n      type: object\n      required: [code, message]\n      properties:\n        code: {type: string}\n        message: {type: string}\n        trace: {type: string}",
        );
        assert!(has(&text, "type Details = ();"), "{text}");
        assert!(has(&text, "_details: ::std::option::Option<Self::Details>"), "{text}");
        assert!(has(&text, "crate::types::Error { code, message, trace: ::std::option::Option::None, }"), "{text}");
        assert!(has(&text, "404 => ::std::string::String::from(\"gone\")"), "{text}");
        assert!(has(&text, "_ => crate::error::status_code_name(status)"), "{text}");
    }

    #[test]
    fn nested_details_in_every_representation() {
        let text = envelope_of(
            "    Error:\n      type: object\n      required: [kind, error]\n      properties:\n        kind: {type: string, enum: [error]}\n        error:\n          type: object\n          required: [code, message, details]\n          properties:\n            code: {type: string, enum: [NOT_FOUND, INTERNAL]}\n            message: {type: string}\n            details:\n              type: object\n              properties:\n                field: {type: string, nullable: true}\n              additionalProperties: {type: string}",
        );
        assert!(has(&text, "kind: crate::types::ErrorKind::Error"), "{text}");
        assert!(has(&text, "details.unwrap_or_else(<Self as crate::error::ErrorEnvelope>::empty_details)"), "{text}");
        assert!(has(&text, "details.field = ::std::option::Option::Some(::std::option::Option::Some(field));"));
        // No `reason` field: the reason goes with the extra properties.
        assert!(has(&text, "details.additional_properties.get(\"reason\").map(::std::string::String::as_str)"));
        assert!(has(&text, "404 => crate::types::ErrorErrorCode::NotFound"), "{text}");
        assert!(has(&text, "500 => crate::types::ErrorErrorCode::Internal"), "{text}");
    }

    #[test]
    fn no_envelope_is_problem_details() {
        let files = crate::generate(include_str!("../../../../tests/fixtures/minimal.yaml")).unwrap();
        let text = squash(&files.0["server/src/envelope.rs"].contents);
        assert!(has(&text, "const CONTENT_TYPE: &'static str = crate::error::PROBLEM_JSON;"), "{text}");
        assert!(has(&text, "type Body = crate::error::ProblemDetails;"), "{text}");
    }
}
