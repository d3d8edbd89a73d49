//! Named types as Rust: structs, enums and untagged `oneOf` enums with serde
//! attributes matching the wire format, and a `Validate` impl that checks the
//! spec's constraints.
//!
//! Both generated crates get their own copy of the models, emitted in one of
//! two [`Mode`]s: the client is lenient where the server may grow (unknown
//! enum values are kept), the server is strict (an unknown value is a 400).

use super::doc_text::doc_attrs;
use crate::ir::{Api, Discriminator, Encoding, EventStream, Field, OneOfType, Shape, StructType, TypeDef, TypeKind};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::BTreeSet;

/// Which crate the models are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decodes what a newer server may send: enums keep unknown values.
    Client,
    /// Refuses anything the spec does not allow.
    Server,
}

/// An identifier from an already-sanitized name.
pub fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// The Rust type of a shape, as used from `crate::types` itself or from
/// another module of the crate (`prefix` is `quote!(crate::types::)` then).
pub fn rust_type(shape: &Shape, prefix: &TokenStream) -> TokenStream {
    match shape {
        Shape::Named(n) => {
            let n = ident(n);
            quote!(#prefix #n)
        }
        Shape::String(_) => quote!(::std::string::String),
        Shape::Integer(i) if i.int32 => quote!(i32),
        Shape::Integer(_) => quote!(i64),
        Shape::Number(_) => quote!(f64),
        Shape::Boolean => quote!(bool),
        Shape::Array(a) => {
            let item = rust_type(&a.items, prefix);
            quote!(::std::vec::Vec<#item>)
        }
        Shape::Map(v) => {
            let value = rust_type(v, prefix);
            quote!(::std::collections::BTreeMap<::std::string::String, #value>)
        }
        Shape::Any => quote!(::serde_json::Value),
        Shape::Binary => quote!(crate::form::FilePart),
    }
}

/// The string formats the runtime's `validate::check_format` checks.
const CHECKED_FORMATS: &[&str] = &["date-time", "date", "uuid"];

/// Variant names the emitted enums use themselves: the client's catch-all
/// for values a newer server sends. Lowering numbers a spec value that
/// sanitizes to one of these.
pub const RESERVED_VARIANTS: &[&str] = &["Unknown"];

/// The variants of a stream's event enum, shared by the client and the
/// server: one tuple variant per named event, and for a stream described by
/// its schema alone one struct variant that keeps the `event:` name (what
/// `None` means differs by side, so the caller says it in `event_doc`).
pub fn event_variants(stream: &EventStream, prefix: &TokenStream, event_doc: &str) -> Vec<TokenStream> {
    stream
        .events
        .iter()
        .map(|e| {
            let v = ident(&e.name);
            let ty = rust_type(&e.data, prefix);
            if e.any_name {
                return quote! {
                    /// An event of the stream, whatever its name.
                    #v {
                        #[doc = #event_doc]
                        event: ::std::option::Option<::std::string::String>,
                        /// The event's data.
                        data: #ty,
                    },
                };
            }
            let doc = format!(" The `{}` event.", e.api_name);
            quote!(#[doc = #doc] #v(#ty),)
        })
        .collect()
}

/// How a field is represented, from whether it is required and nullable.
pub fn field_type(field: &Field, prefix: &TokenStream) -> TokenStream {
    let mut base = rust_type(&field.shape, prefix);
    if field.boxed {
        base = quote!(::std::boxed::Box<#base>);
    }
    match (field.required, field.nullable) {
        (true, false) => base,
        (true, true) | (false, false) => quote!(::std::option::Option<#base>),
        (false, true) => quote!(::std::option::Option<::std::option::Option<#base>>),
    }
}

/// The whole `types.rs` module.
pub fn emit_types(api: &Api, mode: Mode) -> TokenStream {
    let types = api.types.values().map(|t| emit_type(api, t, mode));
    let forms = form_types(api).into_iter().filter_map(|name| match api.types.get(name).map(|t| &t.kind) {
        Some(TypeKind::Struct(s)) => Some(emit_form_impls(name, s)),
        _ => None,
    });
    let builders = super::builders::emit_builders(api);
    quote! {
        //! Every schema of the spec as a Rust type.
        #![allow(clippy::large_enum_variant, clippy::result_large_err, clippy::derive_partial_eq_without_eq)]
        #(#types)*
        #(#forms)*
        #builders
    }
}

/// The structs some operation, callback or webhook sends as a form or
/// multipart body: they get `ToFields` and `FromFields`.
pub fn form_types(api: &Api) -> BTreeSet<&str> {
    let bodies =
        api.operations.iter().flat_map(|op| op.body.iter().chain(op.callbacks.iter().flat_map(|c| c.body.iter())));
    bodies
        .chain(api.webhooks.iter().flat_map(|w| w.body.iter()))
        .flat_map(|b| &b.contents)
        .filter(|c| matches!(c.encoding, Encoding::Form | Encoding::Multipart))
        .filter_map(|c| match &c.shape {
            Shape::Named(n) => Some(n.as_str()),
            _ => None,
        })
        .collect()
}

/// How a property travels in a form: one value, several (an array), one
/// file or several files.
fn form_kind(shape: &Shape) -> (&'static str, &'static str) {
    match shape {
        Shape::Binary => ("required_file", "optional_file"),
        Shape::Array(a) if *a.items == Shape::Binary => ("files_of", "optional_files"),
        Shape::Array(_) => ("list", "optional_list"),
        _ => ("required", "optional"),
    }
}

/// `ToFields` and `FromFields` for a struct sent as a form: field by field,
/// files as file parts, everything else through its JSON form (see the
/// runtime's `form` module).
fn emit_form_impls(name: &str, s: &StructType) -> TokenStream {
    let ty = ident(name);
    let writes = s.fields.iter().map(|f| {
        let fname = ident(&f.name);
        let wire = &f.api_name;
        let write = match &f.shape {
            Shape::Binary => quote!(fields.file(#wire, value);),
            Shape::Array(a) if *a.items == Shape::Binary => quote!(fields.files(#wire, value);),
            _ => quote!(fields.value(#wire, value)?;),
        };
        match (f.required, f.nullable) {
            (true, false) => quote! { { let value = &self.#fname; #write } },
            (true, true) | (false, false) => {
                quote! { if let ::std::option::Option::Some(value) = &self.#fname { #write } }
            }
            (false, true) => quote! {
                if let ::std::option::Option::Some(::std::option::Option::Some(value)) = &self.#fname { #write }
            },
        }
    });
    let extra_write = s.additional.as_ref().map(|_| {
        quote! {
            for (key, value) in &self.additional_properties {
                fields.value(key, value)?;
            }
        }
    });
    let reads = s.fields.iter().map(|f| {
        let fname = ident(&f.name);
        let wire = &f.api_name;
        let (required, optional) = form_kind(&f.shape);
        let box_it = if f.boxed { quote!(::std::boxed::Box::new) } else { quote!() };
        let read = match (f.required, f.nullable) {
            (true, false) => {
                let m = format_ident!("{}", required);
                quote!(#box_it(fields.#m(#wire)?))
            }
            (true, true) | (false, false) => {
                let m = format_ident!("{}", optional);
                if f.boxed { quote!(fields.#m(#wire)?.map(::std::boxed::Box::new)) } else { quote!(fields.#m(#wire)?) }
            }
            (false, true) if f.boxed => {
                let m = format_ident!("{}", optional);
                quote!(fields.#m(#wire)?.map(|value| ::std::option::Option::Some(::std::boxed::Box::new(value))))
            }
            (false, true) => {
                let m = format_ident!("{}", optional);
                quote!(fields.#m(#wire)?.map(::std::option::Option::Some))
            }
        };
        quote!(#fname: #read,)
    });
    let extra_read = s.additional.as_ref().map(|_| quote!(additional_properties: fields.remaining()?,));
    let deny = s.deny_unknown.then(|| quote!(fields.deny_rest()?;));
    let mutable = if s.fields.is_empty() && s.additional.is_none() && !s.deny_unknown {
        quote!(fields)
    } else {
        quote!(mut fields)
    };
    let unused = (s.fields.is_empty() && s.additional.is_none() && !s.deny_unknown).then(|| quote!(let _ = fields;));
    quote! {
        impl crate::form::ToFields for #ty {
            #[allow(deprecated)]
            fn to_fields(&self) -> ::std::result::Result<crate::form::Fields, crate::form::FormError> {
                #[allow(unused_mut)]
                let mut fields = crate::form::Fields::new();
                #(#writes)*
                #extra_write
                ::std::result::Result::Ok(fields)
            }
        }
        impl crate::form::FromFields for #ty {
            #[allow(deprecated)]
            fn from_fields(#mutable: crate::form::Fields) -> ::std::result::Result<Self, crate::form::FormError> {
                #unused
                let value = Self {
                    #(#reads)*
                    #extra_read
                };
                #deny
                ::std::result::Result::Ok(value)
            }
        }
    }
}

fn emit_type(api: &Api, def: &TypeDef, mode: Mode) -> TokenStream {
    let name = ident(&def.name);
    let mut doc_text = def.description.clone().unwrap_or_else(|| format!("The `{}` schema.", def.api_name));
    if let Some(example) = &def.example {
        let pretty = serde_json::to_string_pretty(example).unwrap_or_default();
        doc_text.push_str(&format!("\n\nExample:\n\n```json\n{pretty}\n```"));
    }
    let docs = doc_attrs(Some(&doc_text));
    match &def.kind {
        TypeKind::Struct(s) => emit_struct(api, def, s, docs, mode),
        TypeKind::Enum(e) => {
            let variants: Vec<TokenStream> = e
                .variants
                .iter()
                .map(|v| {
                    let vname = ident(&v.name);
                    let wire = &v.api_name;
                    let doc = format!(" `{wire}`");
                    quote! { #[doc = #doc] #[serde(rename = #wire)] #vname, }
                })
                .collect();
            let arms: Vec<TokenStream> = e
                .variants
                .iter()
                .map(|v| {
                    let vname = ident(&v.name);
                    let wire = &v.api_name;
                    quote!(Self::#vname => #wire,)
                })
                .collect();
            let all: Vec<TokenStream> = e
                .variants
                .iter()
                .map(|v| {
                    let vname = ident(&v.name);
                    quote!(Self::#vname)
                })
                .collect();
            match mode {
                Mode::Client => quote! {
                    #docs
                    #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash, ::std::cmp::PartialOrd, ::std::cmp::Ord, ::serde::Serialize, ::serde::Deserialize)]
                    pub enum #name {
                        #(#variants)*
                        /// A value this version of the client does not know; kept
                        /// as sent so that a newer server does not break decoding.
                        #[serde(untagged)]
                        Unknown(::std::string::String),
                    }
                    impl #name {
                        /// Every value the spec lists.
                        pub const ALL: &'static [#name] = &[#(#all),*];
                        /// The value as sent on the wire.
                        pub fn as_str(&self) -> &str {
                            match self {
                                #(#arms)*
                                Self::Unknown(other) => other.as_str(),
                            }
                        }
                    }
                    impl ::std::fmt::Display for #name {
                        fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                            f.write_str(self.as_str())
                        }
                    }
                    impl crate::validate::Validate for #name {
                        fn validate(&self, path: &mut crate::validate::FieldPath) -> ::std::result::Result<(), crate::validate::ValidationError> {
                            match self {
                                Self::Unknown(other) => ::std::result::Result::Err(path.error(::std::format!("`{other}` is not one of the values the spec allows"))),
                                _ => ::std::result::Result::Ok(()),
                            }
                        }
                    }
                },
                Mode::Server => quote! {
                    #docs
                    #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::marker::Copy, ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash, ::std::cmp::PartialOrd, ::std::cmp::Ord, ::serde::Serialize, ::serde::Deserialize)]
                    pub enum #name {
                        #(#variants)*
                    }
                    impl #name {
                        /// Every value the spec lists.
                        pub const ALL: &'static [#name] = &[#(#all),*];
                        /// The value as sent on the wire.
                        pub fn as_str(&self) -> &'static str {
                            match self {
                                #(#arms)*
                            }
                        }
                    }
                    impl ::std::fmt::Display for #name {
                        fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                            f.write_str(self.as_str())
                        }
                    }
                    impl ::std::str::FromStr for #name {
                        type Err = ::std::string::String;
                        fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                            Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                                let allowed: ::std::vec::Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                                ::std::format!("`{s}` is not one of: {}", allowed.join(", "))
                            })
                        }
                    }
                    impl crate::validate::Validate for #name {
                        fn validate(&self, _path: &mut crate::validate::FieldPath) -> ::std::result::Result<(), crate::validate::ValidationError> {
                            ::std::result::Result::Ok(())
                        }
                    }
                },
            }
        }
        TypeKind::OneOf(o) => {
            let mut variants: Vec<TokenStream> = o
                .variants
                .iter()
                .map(|v| {
                    let vname = ident(&v.name);
                    let ty = ident(&v.type_name);
                    let doc = format!(" A [`{}`].", v.type_name);
                    quote!(#[doc = #doc] #vname(#ty),)
                })
                .collect();
            // An alternative may be an alias of a plain value (an inline
            // `type: string` alternative): checked by its shape, since such
            // a type has no `Validate` of its own.
            let checks: Vec<Option<TokenStream>> = o
                .variants
                .iter()
                .map(|v| shape_check(api, &Shape::Named(v.type_name.clone()), &quote!(inner), 0))
                .collect();
            let path_param = if checks.iter().all(Option::is_none) { quote!(_path) } else { quote!(path) };
            let mut path_param = path_param;
            let mut arms: Vec<TokenStream> = o
                .variants
                .iter()
                .zip(checks)
                .map(|(v, check)| {
                    let vname = ident(&v.name);
                    match check {
                        Some(check) => quote!(Self::#vname(inner) => { #check ::std::result::Result::Ok(()) }),
                        None => quote!(Self::#vname(_) => ::std::result::Result::Ok(()),),
                    }
                })
                .collect();
            if let Some(d) = &o.discriminator {
                return emit_tagged(&name, docs, o, d, arms, mode);
            }
            // A success-or-error alternative (a batch item) reads best as a
            // Result.
            let into_result = match o.variants.as_slice() {
                [a, b] if is_error_envelope(api, &b.type_name) != is_error_envelope(api, &a.type_name) => {
                    let (ok, err) = if is_error_envelope(api, &b.type_name) { (a, b) } else { (b, a) };
                    let (ok_v, ok_t, err_v, err_t) =
                        (ident(&ok.name), ident(&ok.type_name), ident(&err.name), ident(&err.type_name));
                    Some(quote! {
                        impl #name {
                            /// The success as `Ok`, the error envelope as `Err`.
                            pub fn into_result(self) -> ::std::result::Result<#ok_t, #err_t> {
                                match self {
                                    Self::#ok_v(ok) => ::std::result::Result::Ok(ok),
                                    Self::#err_v(err) => ::std::result::Result::Err(err),
                                }
                            }
                        }
                    })
                }
                _ => None,
            };
            // The client keeps a value no alternative decodes (one a newer
            // server added) instead of failing the whole response; serde
            // tries an untagged enum's variants in order, so it is last. A
            // success-or-error pair has no third alternative to grow, and
            // its `into_result` stays total.
            if mode == Mode::Client && into_result.is_none() {
                variants.push(quote! {
                    /// A value none of the alternatives this version of the
                    /// client knows decodes; kept as sent so that a newer
                    /// server does not break decoding.
                    Unknown(::serde_json::Value),
                });
                arms.push(quote! {
                    Self::Unknown(_) => ::std::result::Result::Err(path.error("the value is none of the alternatives the spec allows")),
                });
                path_param = quote!(path);
            }
            quote! {
                #into_result
                #docs
                #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq, ::serde::Serialize, ::serde::Deserialize)]
                #[serde(untagged)]
                pub enum #name {
                    #(#variants)*
                }
                impl crate::validate::Validate for #name {
                    fn validate(&self, #path_param: &mut crate::validate::FieldPath) -> ::std::result::Result<(), crate::validate::ValidationError> {
                        match self {
                            #(#arms)*
                        }
                    }
                }
            }
        }
        TypeKind::Alias(shape) => {
            let ty = rust_type(shape, &TokenStream::new());
            quote! {
                #docs
                pub type #name = #ty;
            }
        }
    }
}

/// A `oneOf` with a `discriminator`: serialized untagged (each alternative
/// carries the property itself, which is also why serde's internally tagged
/// enums do not fit), decoded by reading the property and decoding the
/// alternative its value selects. A value the spec does not map is kept as
/// `Unknown` by the client (a newer server may add alternatives) and refused
/// by the server, naming the property.
fn emit_tagged(
    name: &Ident,
    docs: TokenStream,
    o: &OneOfType,
    d: &Discriminator,
    mut arms: Vec<TokenStream>,
    mode: Mode,
) -> TokenStream {
    let mut variants: Vec<TokenStream> = o
        .variants
        .iter()
        .map(|v| {
            let vname = ident(&v.name);
            let ty = ident(&v.type_name);
            let values: Vec<String> = d
                .mapping
                .iter()
                .filter(|(_, variant)| *variant == v.name)
                .map(|(value, _)| format!("`{value}`"))
                .collect();
            let doc = if values.is_empty() {
                format!(" A [`{}`].", v.type_name)
            } else {
                format!(" A [`{}`]: `{}` is {}.", v.type_name, d.property, values.join(" or "))
            };
            quote!(#[doc = #doc] #vname(#ty),)
        })
        .collect();
    let property = &d.property;
    let decode_arms: Vec<TokenStream> = o
        .variants
        .iter()
        .filter_map(|v| {
            let values: Vec<&str> =
                d.mapping.iter().filter(|(_, variant)| *variant == v.name).map(|(value, _)| value.as_str()).collect();
            if values.is_empty() {
                return None;
            }
            let vname = ident(&v.name);
            Some(quote! {
                ::std::option::Option::Some(#(#values)|*) => ::serde_json::from_value(value).map(Self::#vname).map_err(::serde::de::Error::custom),
            })
        })
        .collect();
    let expected: Vec<String> = d.mapping.iter().map(|(value, _)| format!("`{value}`")).collect();
    let expected = expected.join(", ");
    let fallback = match mode {
        Mode::Client => {
            variants.push(quote! {
                /// A value whose discriminator this version of the client does
                /// not know; kept as sent so that a newer server does not break
                /// decoding.
                Unknown(::serde_json::Value),
            });
            let message = format!("the `{property}` of this value is not one the spec maps");
            arms.push(quote!(Self::Unknown(_) => ::std::result::Result::Err(path.error(#message)),));
            quote!(_ => ::std::result::Result::Ok(Self::Unknown(value)),)
        }
        Mode::Server => quote! {
            ::std::option::Option::Some(other) => ::std::result::Result::Err(::serde::de::Error::custom(::std::format_args!(
                "unknown variant `{}` of `{}`, expected one of {}", other, #property, #expected
            ))),
            ::std::option::Option::None => ::std::result::Result::Err(::serde::de::Error::missing_field(#property)),
        },
    };
    quote! {
        #docs
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq, ::serde::Serialize)]
        #[serde(untagged)]
        pub enum #name {
            #(#variants)*
        }
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let value = <::serde_json::Value as ::serde::Deserialize>::deserialize(deserializer)?;
                let tag = value.get(#property).and_then(::serde_json::Value::as_str).map(::std::borrow::ToOwned::to_owned);
                match tag.as_deref() {
                    #(#decode_arms)*
                    #fallback
                }
            }
        }
        impl crate::validate::Validate for #name {
            fn validate(&self, path: &mut crate::validate::FieldPath) -> ::std::result::Result<(), crate::validate::ValidationError> {
                match self {
                    #(#arms)*
                }
            }
        }
    }
}

fn emit_struct(api: &Api, def: &TypeDef, s: &StructType, docs: TokenStream, mode: Mode) -> TokenStream {
    let name = ident(&def.name);
    let deny = s.deny_unknown.then(|| quote!(#[serde(deny_unknown_fields)]));
    let none = TokenStream::new();
    let mut fields: Vec<TokenStream> = s
        .fields
        .iter()
        .map(|f| {
            let fname = ident(&f.name);
            let ty = field_type(f, &none);
            let wire = &f.api_name;
            let mut text = f.description.clone().unwrap_or_default();
            if let Some(default) = &f.default {
                text.push_str(&format!("\n\nDefault when omitted: `{default}`."));
            }
            if text.trim().is_empty() {
                text = format!("The `{wire}` property.");
            }
            let docs = doc_attrs(Some(&text));
            let serde_attr = match (f.required, f.nullable) {
                (true, false) => quote!(#[serde(rename = #wire)]),
                // Present but possibly null: a missing key is an error, which
                // `deserialize_with` gives (serde only defaults a plain Option).
                (true, true) => quote!(#[serde(rename = #wire, deserialize_with = "crate::nullable::required")]),
                (false, false) => match mode {
                    Mode::Client => quote!(#[serde(rename = #wire, default, skip_serializing_if = "::std::option::Option::is_none")]),
                    // The server refuses an explicit null where the spec does
                    // not allow one.
                    Mode::Server => quote!(#[serde(rename = #wire, default, skip_serializing_if = "::std::option::Option::is_none", deserialize_with = "crate::nullable::non_null")]),
                },
                (false, true) => quote!(#[serde(rename = #wire, default, skip_serializing_if = "::std::option::Option::is_none", with = "crate::nullable::double_option")]),
            };
            let deprecated = f.deprecated.then(|| quote!(#[deprecated]));
            quote! { #docs #deprecated #serde_attr pub #fname: #ty, }
        })
        .collect();
    if let Some(extra) = &s.additional {
        let value = rust_type(extra, &none);
        fields.push(quote! {
            /// Properties not named by the spec, kept as sent.
            #[serde(flatten)]
            pub additional_properties: ::std::collections::BTreeMap<::std::string::String, #value>,
        });
    }
    let checks: Vec<TokenStream> = s.fields.iter().filter_map(|f| field_check(api, f)).collect();
    let path_param = if checks.is_empty() { quote!(_path) } else { quote!(path) };
    quote! {
        #docs
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #deny
        pub struct #name {
            #(#fields)*
        }
        impl crate::validate::Validate for #name {
            #[allow(deprecated)]
            fn validate(&self, #path_param: &mut crate::validate::FieldPath) -> ::std::result::Result<(), crate::validate::ValidationError> {
                #(#checks)*
                ::std::result::Result::Ok(())
            }
        }
    }
}

/// The check of one field, or `None` when its shape has no constraint.
fn field_check(api: &Api, f: &Field) -> Option<TokenStream> {
    let fname = ident(&f.name);
    let wire = &f.api_name;
    let check = shape_check(api, &f.shape, &quote!(value), 0)?;
    let body = quote! {
        path.push_field(#wire);
        #check
        path.pop();
    };
    Some(match (f.required, f.nullable) {
        (true, false) => quote! { { let value = &self.#fname; #body } },
        (true, true) | (false, false) => quote! { if let ::std::option::Option::Some(value) = &self.#fname { #body } },
        (false, true) => quote! {
            if let ::std::option::Option::Some(::std::option::Option::Some(value)) = &self.#fname { #body }
        },
    })
}

/// Statements checking `value` (a reference) against a shape's constraints,
/// or `None` when there is nothing to check.
pub fn shape_check(api: &Api, shape: &Shape, value: &TokenStream, depth: usize) -> Option<TokenStream> {
    match shape {
        Shape::Named(n) => match api.types.get(n).map(|t| &t.kind) {
            Some(TypeKind::Alias(inner)) if depth < 8 => shape_check(api, inner, value, depth + 1),
            Some(TypeKind::Alias(_)) | None => None,
            Some(_) => Some(quote!(crate::validate::Validate::validate(#value, path)?;)),
        },
        Shape::String(s) => {
            let format = s.format.as_deref().filter(|f| CHECKED_FORMATS.contains(f));
            let format_check = format.map(|f| quote!(crate::validate::check_format(#value, path, #f)?;));
            if s.min_length.is_none() && s.max_length.is_none() && s.pattern.is_none() {
                return format_check;
            }
            let min = opt_u64(s.min_length);
            let max = opt_u64(s.max_length);
            let pattern = match &s.pattern {
                Some(p) => quote! {
                    ::std::option::Option::Some({
                        static PATTERN: ::std::sync::LazyLock<::regex::Regex> =
                            ::std::sync::LazyLock::new(|| ::regex::Regex::new(#p).expect("the generator checked this pattern"));
                        (&*PATTERN, #p)
                    })
                },
                None => quote!(::std::option::Option::None),
            };
            Some(quote!(crate::validate::check_string(#value, path, #min, #max, #pattern)?; #format_check))
        }
        Shape::Integer(i) => {
            let as_i64 = if i.int32 { quote!(i64::from(*#value)) } else { quote!(*#value) };
            let allowed = (!i.allowed.is_empty()).then(|| {
                let values = i.allowed.iter().map(|v| Literal::i64_unsuffixed(*v));
                quote!(crate::validate::check_integer_in(#as_i64, path, &[#(#values),*])?;)
            });
            if i.minimum.is_none() && i.maximum.is_none() {
                return allowed;
            }
            let min = match i.minimum {
                Some(m) => {
                    let l = Literal::i64_unsuffixed(m);
                    quote!(::std::option::Option::Some(#l))
                }
                None => quote!(::std::option::Option::None),
            };
            let max = match i.maximum {
                Some(m) => {
                    let l = Literal::i64_unsuffixed(m);
                    quote!(::std::option::Option::Some(#l))
                }
                None => quote!(::std::option::Option::None),
            };
            Some(quote!(crate::validate::check_integer(#as_i64, path, #min, #max)?; #allowed))
        }
        Shape::Number(n) => {
            let min = match n.minimum {
                Some(m) => {
                    let l = Literal::f64_unsuffixed(m);
                    let excl = n.exclusive_minimum;
                    quote!(::std::option::Option::Some((#l, #excl)))
                }
                None => quote!(::std::option::Option::None),
            };
            let max = match n.maximum {
                Some(m) => {
                    let l = Literal::f64_unsuffixed(m);
                    let excl = n.exclusive_maximum;
                    quote!(::std::option::Option::Some((#l, #excl)))
                }
                None => quote!(::std::option::Option::None),
            };
            // Always checked: NaN and infinities are not JSON numbers.
            Some(quote!(crate::validate::check_number(*#value, path, #min, #max)?;))
        }
        Shape::Boolean | Shape::Any | Shape::Binary => None,
        Shape::Array(a) => {
            let len = if a.min_items.is_some() || a.max_items.is_some() {
                let min = opt_u64(a.min_items);
                let max = opt_u64(a.max_items);
                Some(quote!(crate::validate::check_items(#value.len(), path, #min, #max)?;))
            } else {
                None
            };
            let unique = a.unique.then(|| quote!(crate::validate::check_unique(#value, path)?;));
            let len = match (len, unique) {
                (None, None) => None,
                (len, unique) => Some(quote!(#len #unique)),
            };
            let item = shape_check(api, &a.items, &quote!(item), depth + 1).map(|check| {
                quote! {
                    for (index, item) in #value.iter().enumerate() {
                        path.push_index(index);
                        #check
                        path.pop();
                    }
                }
            });
            if len.is_none() && item.is_none() { None } else { Some(quote!(#len #item)) }
        }
        Shape::Map(v) => shape_check(api, v, &quote!(item), depth + 1).map(|check| {
            quote! {
                for (key, item) in #value.iter() {
                    path.push_key(key);
                    #check
                    path.pop();
                }
            }
        }),
    }
}

fn opt_u64(v: Option<u64>) -> TokenStream {
    match v {
        Some(n) => {
            let l = Literal::u64_unsuffixed(n);
            quote!(::std::option::Option::Some(#l))
        }
        None => quote!(::std::option::Option::None),
    }
}

/// Whether a named type is the error envelope: an object with a required
/// `error` and `status` and no `data`.
fn is_error_envelope(api: &Api, name: &str) -> bool {
    let Some(TypeKind::Struct(s)) = api.types.get(name).map(|t| &t.kind) else { return false };
    let has = |field: &str| s.fields.iter().any(|f| f.api_name == field && f.required);
    has("error") && has("status") && !s.fields.iter().any(|f| f.api_name == "data")
}

#[cfg(test)]
mod tests {
    use super::{Mode, emit_types};

    const PETS: &str = "openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths:\n  /pets:\n    get:\n      operationId: getPet\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Pet'}\ncomponents:\n  schemas:\n    Pet:\n      oneOf:\n        - $ref: '#/components/schemas/Cat'\n        - $ref: '#/components/schemas/Dog'\n      discriminator:\n        propertyName: pet_type\n        mapping: {cat: '#/components/schemas/Cat'}\n    Cat: {type: object, required: [pet_type], properties: {pet_type: {type: string}}}\n    Dog: {type: object, required: [pet_type], properties: {pet_type: {type: string}}}\n";

    fn pet_code(mode: Mode) -> String {
        let api = crate::load(PETS).expect("the spec lowers");
        let code = crate::emit::rust_file::format(emit_types(&api, mode), "models").expect("the code parses");
        let enum_at = code.find("pub enum Pet").expect("Pet is emitted");
        let start = code[..enum_at].rfind("#[derive").expect("Pet derives");
        let end = code[start..].find("impl crate::validate::Validate for Pet").expect("Pet validates") + start;
        code[start..end].to_owned()
    }

    #[test]
    fn a_discriminated_one_of_decodes_by_its_property_and_serializes_untagged() {
        let client = pet_code(Mode::Client);
        assert!(client.contains("Unknown(::serde_json::Value)"), "{client}");
        assert!(client.contains(".get(\"pet_type\")"), "{client}");
        assert!(client.contains("Some(\"cat\") =>"), "{client}");
        // Dog is selected by its schema name, the implicit mapping.
        assert!(client.contains("Some(\"Dog\") =>"), "{client}");
        assert!(client.contains("Self::Unknown(value)"), "{client}");
        let server = pet_code(Mode::Server);
        assert!(!server.contains("Unknown"), "{server}");
        assert!(server.contains("unknown variant `{}` of `{}`, expected one of {}"), "{server}");
        assert!(server.contains("missing_field(\"pet_type\")"), "{server}");
        for code in [&client, &server] {
            let derive = &code[..code.find("pub enum Pet").unwrap_or_default()];
            assert!(!derive.contains("::serde::Deserialize"), "Deserialize is written by hand:\n{code}");
            assert!(code.contains("#[serde(untagged)]"), "{code}");
        }
    }
}
