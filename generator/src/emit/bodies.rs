//! Request bodies of every media type, for the client and the server: the
//! Rust type that carries a body (one media type: its value; several: an
//! enum with a variant per media type), how the client writes each, and how
//! the server reads each.

use super::models::{rust_type, shape_check};
use crate::ir::{Api, BodyContent, Encoding, RequestBody, Response, ResponseBody};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The Rust type of one media type's value, with models under `prefix`.
pub fn content_type(content: &BodyContent, prefix: &TokenStream) -> TokenStream {
    match content.encoding {
        Encoding::Json | Encoding::Form | Encoding::Multipart => rust_type(&content.shape, prefix),
        Encoding::Text => quote!(::std::string::String),
        Encoding::Binary => quote!(::bytes::Bytes),
    }
}

/// The Rust type of a body: its one media type's value, or the enum of its
/// media types (defined in the module the generated code uses it from).
pub fn body_type(body: &RequestBody, prefix: &TokenStream) -> TokenStream {
    match &body.choice {
        Some(name) => {
            let name = format_ident!("{}", name);
            quote!(#name)
        }
        None => content_type(body.primary(), prefix),
    }
}

/// The enum of a body with several media types, and `From` for the value
/// of each media type whose type no earlier variant takes (so a plain value
/// is sent as the first media type that fits it).
pub fn choice_enum(op_id: &str, body: &RequestBody, prefix: &TokenStream) -> TokenStream {
    let Some(name) = &body.choice else { return TokenStream::new() };
    let name = format_ident!("{}", name);
    let mut seen: Vec<String> = Vec::new();
    let mut froms = Vec::new();
    let variants: Vec<TokenStream> = body
        .contents
        .iter()
        .map(|c| {
            let v = format_ident!("{}", c.variant);
            let ty = content_type(c, prefix);
            let key = ty.to_string();
            if !seen.contains(&key) {
                seen.push(key);
                let doc = format!(" Sends the value as `{}`.", c.media_type);
                froms.push(quote! {
                    impl ::std::convert::From<#ty> for #name {
                        #[doc = #doc]
                        fn from(value: #ty) -> Self {
                            Self::#v(value)
                        }
                    }
                });
            }
            let doc = format!(" The body as `{}`.", c.media_type);
            quote!(#[doc = #doc] #v(#ty),)
        })
        .collect();
    let doc = format!(" The request body of `{op_id}`, in one of the media types it accepts.");
    quote! {
        #[doc = #doc]
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
        pub enum #name {
            #(#variants)*
        }
        #(#froms)*
    }
}

/// Statements checking a body (`body`, a reference) against the spec's
/// constraints, or `None` when there is nothing to check.
pub fn body_check(api: &Api, body: &RequestBody) -> Option<TokenStream> {
    let check = |c: &BodyContent| match c.encoding {
        Encoding::Json | Encoding::Form | Encoding::Multipart => shape_check(api, &c.shape, &quote!(body), 0),
        Encoding::Text | Encoding::Binary => None,
    };
    let Some(name) = &body.choice else { return check(body.primary()) };
    let name = format_ident!("{}", name);
    let arms: Vec<TokenStream> = body
        .contents
        .iter()
        .filter_map(|c| {
            let v = format_ident!("{}", c.variant);
            check(c).map(|check| quote!(#name::#v(body) => { #check }))
        })
        .collect();
    if arms.is_empty() {
        return None;
    }
    Some(quote! {
        #[allow(unreachable_patterns)]
        match body {
            #(#arms)*
            _ => {}
        }
    })
}

/// The media type a client writes for a content: as the spec gives it,
/// unless it is a range (`image/*`, `*/*`), which is no content type.
fn wire_media_type(content: &BodyContent) -> String {
    if content.media_type.contains('*') { "application/octet-stream".into() } else { content.media_type.clone() }
}

/// An expression giving `(content type, bytes)` for `body`, a reference to
/// one content's value, in the client (`?` returns a `crate::Error`).
fn client_encode(content: &BodyContent) -> TokenStream {
    let media = wire_media_type(content);
    let form_error = quote!(|e: crate::form::FormError| crate::Error::InvalidRequest(
        crate::validate::FieldPath::field(&e.field).error(e.message)
    ));
    match content.encoding {
        Encoding::Json => {
            let ct = if media == "application/json" {
                quote!(::std::option::Option::None)
            } else {
                quote!(::std::option::Option::Some(::std::string::String::from(#media)))
            };
            quote! {
                (#ct, ::bytes::Bytes::from(::serde_json::to_vec(body).map_err(|e| {
                    crate::Error::Config(::std::format!("the request body could not be serialized: {e}"))
                })?))
            }
        }
        Encoding::Form => quote! {{
            let fields = crate::form::ToFields::to_fields(body).map_err(#form_error)?;
            let text = fields.to_urlencoded().map_err(#form_error)?;
            (::std::option::Option::Some(::std::string::String::from(#media)), ::bytes::Bytes::from(text))
        }},
        Encoding::Multipart => quote! {{
            let fields = crate::form::ToFields::to_fields(body).map_err(#form_error)?;
            // Random, so that no file holds it; fixed for the call, so that
            // every retry sends the same bytes.
            let boundary = ::std::format!("form-boundary-{:032x}", ::fastrand::u128(..));
            (
                ::std::option::Option::Some(::std::format!("multipart/form-data; boundary={boundary}")),
                fields.to_multipart(&boundary),
            )
        }},
        Encoding::Text => quote! {
            (::std::option::Option::Some(::std::string::String::from(#media)), ::bytes::Bytes::copy_from_slice(body.as_bytes()))
        },
        Encoding::Binary => quote! {
            (::std::option::Option::Some(::std::string::String::from(#media)), ::std::clone::Clone::clone(body))
        },
    }
}

/// Statements binding `content_type` and `body` (the encoded bytes, if a
/// body was set) from `self.body`, in a client builder.
pub fn client_body_bytes(body: Option<&RequestBody>) -> TokenStream {
    let Some(body) = body else {
        return quote! {
            let content_type = ::std::option::Option::None;
            let body = ::std::option::Option::None;
        };
    };
    let encode = match &body.choice {
        None => client_encode(body.primary()),
        Some(name) => {
            let name = format_ident!("{}", name);
            let arms = body.contents.iter().map(|c| {
                let v = format_ident!("{}", c.variant);
                let encode = client_encode(c);
                quote!(#name::#v(body) => #encode,)
            });
            quote!(match body { #(#arms)* })
        }
    };
    quote! {
        let (content_type, body) = match &self.body {
            ::std::option::Option::Some(body) => {
                let (content_type, bytes) = #encode;
                (content_type, ::std::option::Option::Some(bytes))
            }
            ::std::option::Option::None => (::std::option::Option::None, ::std::option::Option::None),
        };
    }
}

/// The `Accept` a client sends for an operation's success responses:
/// `None` (JSON) unless one of them is text or bytes, then every media type
/// they have.
pub fn client_accept(responses: &[Response]) -> TokenStream {
    let mut media: Vec<&str> = Vec::new();
    let mut raw = false;
    for r in responses.iter().filter(|r| r.status.is_success()) {
        let m = match &r.body {
            Some(ResponseBody::Json { .. }) => "application/json",
            Some(ResponseBody::Text { media_type } | ResponseBody::Binary { media_type }) => {
                raw = true;
                media_type.as_str()
            }
            Some(ResponseBody::EventStream(_)) | None => continue,
        };
        if !media.contains(&m) {
            media.push(m);
        }
    }
    if !raw {
        return quote!(::std::option::Option::None);
    }
    let accept = media.join(", ");
    quote!(::std::option::Option::Some(#accept))
}

/// The server's reading of one content from `bytes` (the whole body) into
/// its value, as an expression that may `?` an `ApiFailure`.
fn server_decode(api: &Api, content: &BodyContent) -> TokenStream {
    match content.encoding {
        Encoding::Json => {
            // A named type of the spec checks itself (`Validate`); any other
            // shape (a map, a list, a constrained string) is checked here.
            let check = match &content.shape {
                crate::ir::Shape::Named(n)
                    if !matches!(api.types.get(n).map(|t| &t.kind), Some(crate::ir::TypeKind::Alias(_))) =>
                {
                    None
                }
                shape => Some(shape_check(api, shape, &quote!(value), 0)),
            };
            match check {
                None => quote!(crate::extract::json_body(&parts.headers, &bytes)?),
                Some(None) => quote!(crate::extract::json_document(&parts.headers, &bytes)?),
                Some(Some(check)) => {
                    let ty = rust_type(&content.shape, &quote!(crate::types::));
                    quote! {{
                        let value: #ty = crate::extract::json_document(&parts.headers, &bytes)?;
                        {
                            let value = &value;
                            let path = &mut crate::validate::FieldPath::root();
                            #check
                        }
                        value
                    }}
                }
            }
        }
        Encoding::Form => quote!(crate::bodies::form_body(&parts.headers, &bytes)?),
        Encoding::Multipart => {
            quote!(crate::bodies::multipart_body(&parts.headers, ::std::clone::Clone::clone(&bytes)).await?)
        }
        Encoding::Text => quote!(crate::bodies::text_body(&bytes)?),
        Encoding::Binary => quote!(::std::clone::Clone::clone(&bytes)),
    }
}

/// The server's reading of a body from `bytes` into its type: by the
/// request's `Content-Type` when there are several media types (an
/// unlisted one is a `415`).
pub fn server_read(api: &Api, body: &RequestBody) -> TokenStream {
    let Some(name) = &body.choice else { return server_decode(api, body.primary()) };
    let name = format_ident!("{}", name);
    let essences: Vec<String> = body.contents.iter().map(|c| crate::ir::media_essence(&c.media_type)).collect();
    let arms = body.contents.iter().enumerate().map(|(i, c)| {
        let v = format_ident!("{}", c.variant);
        let decode = server_decode(api, c);
        quote!(::std::option::Option::Some(#i) => crate::#name::#v(#decode),)
    });
    let listed = body.contents.iter().map(|c| c.media_type.as_str()).collect::<Vec<_>>().join(", ");
    quote! {
        match crate::bodies::content_type_index(&parts.headers, &[#(#essences),*]) {
            #(#arms)*
            _ => return ::std::result::Result::Err(crate::bodies::wrong_content_type(#listed, &parts.headers)),
        }
    }
}
