//! Constructors and chainable setters for the model structs, and the Rust
//! text that builds an example value with them.
//!
//! Every struct gets `new` taking its required fields (strings as
//! `impl Into<String>`), one setter per optional field (`.session_id("s1")`)
//! and, for an optional field that may be `null`, a second setter that sends
//! `null` (`.description_null()`); a struct with no required field also gets
//! `Default`. The same methods are emitted for the client and the server,
//! whose models have the same fields.
//!
//! The examples of the READMEs, crate docs and quickstart call these
//! instead of decoding JSON text, so [`example_expr`] renders a spec example
//! as a chain of them, or gives up (the caller then falls back to JSON) when
//! a value has no plain Rust spelling.

use super::models::{field_type, ident};
use crate::ir::{Api, Field, Shape, StructType, TypeDef, TypeKind};
use proc_macro2::TokenStream;
use quote::quote;
use serde_json::Value;
use std::collections::BTreeSet;

/// Method names a setter must not take: the constructor, and the methods of
/// the traits the models implement, which an inherent method of the same
/// name would shadow in method-call syntax (`value.clone()`).
const RESERVED_METHODS: &[&str] = &[
    "new",
    "default",
    "clone",
    "clone_from",
    "eq",
    "ne",
    "fmt",
    "hash",
    "serialize",
    "deserialize",
    "validate",
    "to_fields",
    "from_fields",
    "into",
    "try_into",
    "to_owned",
    "borrow",
    "borrow_mut",
    "type_id",
    "as_str",
];

/// The setters of one optional field: the one taking a value, and for a
/// nullable field the one sending `null`.
pub struct Setters {
    /// Sets the field to a value.
    pub value: String,
    /// Sets the field to `null` (nullable optional fields only).
    pub null: Option<String>,
}

/// The setter names of a struct's fields, in field order (`None` for a
/// required field, which the constructor takes). A setter is named after
/// its field; one that would clash with a reserved or already chosen name is
/// `with_<field>`, then numbered.
pub fn setter_names(s: &StructType) -> Vec<Option<Setters>> {
    let mut taken: BTreeSet<String> = RESERVED_METHODS.iter().map(|m| (*m).to_owned()).collect();
    let mut claim = |wanted: String| -> String {
        let base = if taken.contains(&wanted) { format!("with_{}", wanted.trim_end_matches('_')) } else { wanted };
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        taken.insert(name.clone());
        name
    };
    s.fields
        .iter()
        .map(|f| {
            if f.required {
                return None;
            }
            let value = claim(f.name.clone());
            let null = f.nullable.then(|| claim(format!("{}_null", f.name.trim_end_matches('_'))));
            Some(Setters { value, null })
        })
        .collect()
}

/// Whether a field reads best taking `impl Into<String>`.
fn is_string(f: &Field) -> bool {
    matches!(f.shape, Shape::String(_)) && !f.boxed
}

/// The parameter type a constructor or setter takes for a field, and the
/// expression that stores the parameter `value` in it (the `T` the field
/// holds, not its `Option`s).
fn param(f: &Field, value: &TokenStream) -> (TokenStream, TokenStream) {
    let none = TokenStream::new();
    let base = super::models::rust_type(&f.shape, &none);
    if is_string(f) {
        (quote!(impl ::std::convert::Into<::std::string::String>), quote!(::std::convert::Into::into(#value)))
    } else if f.boxed {
        (base, quote!(::std::boxed::Box::new(#value)))
    } else {
        (base, value.clone())
    }
}

/// `new`, the setters and `Default` of one struct.
pub fn emit_builder(def: &TypeDef, s: &StructType) -> TokenStream {
    let name = ident(&def.name);
    let none = TokenStream::new();
    let setters = setter_names(s);
    let mut args = Vec::new();
    let mut inits = Vec::new();
    let mut methods = Vec::new();
    for (f, names) in s.fields.iter().zip(&setters) {
        let fname = ident(&f.name);
        let deprecated = f.deprecated.then(|| quote!(#[deprecated]));
        match names {
            None if f.nullable => {
                // Required but nullable: given as an `Option`, `None` sending
                // `null`.
                let ty = field_type(f, &none);
                args.push(quote!(#fname: #ty));
                inits.push(quote!(#fname,));
            }
            None => {
                let (ty, store) = param(f, &quote!(#fname));
                args.push(quote!(#fname: #ty));
                // A value stored as given uses the shorthand (clippy's
                // `redundant_field_names`).
                if is_string(f) || f.boxed {
                    inits.push(quote!(#fname: #store,));
                } else {
                    inits.push(quote!(#fname,));
                }
            }
            Some(names) => {
                inits.push(quote!(#fname: ::std::option::Option::None,));
                let (ty, store) = param(f, &quote!(value));
                let setter = ident(&names.value);
                let stored = if f.nullable {
                    quote!(::std::option::Option::Some(::std::option::Option::Some(#store)))
                } else {
                    quote!(::std::option::Option::Some(#store))
                };
                let doc = format!(" Sets `{}`.", f.api_name);
                methods.push(quote! {
                    #[doc = #doc]
                    #deprecated
                    pub fn #setter(mut self, value: #ty) -> Self {
                        self.#fname = #stored;
                        self
                    }
                });
                if let Some(null) = &names.null {
                    let null = ident(null);
                    let doc = format!(" Sends `{}` as `null` (leaving it out is not the same).", f.api_name);
                    methods.push(quote! {
                        #[doc = #doc]
                        #deprecated
                        pub fn #null(mut self) -> Self {
                            self.#fname = ::std::option::Option::Some(::std::option::Option::None);
                            self
                        }
                    });
                }
            }
        }
    }
    if s.additional.is_some() {
        inits.push(quote!(additional_properties: ::std::collections::BTreeMap::new(),));
    }
    let required: Vec<String> = s.fields.iter().filter(|f| f.required).map(|f| format!("`{}`", f.api_name)).collect();
    let new_doc = if required.is_empty() {
        format!(" A `{}` with every property left out; set them with the setters.", def.api_name)
    } else {
        format!(
            " A `{}` from its required properties ({}); set the others with the setters.",
            def.api_name,
            required.join(", ")
        )
    };
    let default = required.is_empty().then(|| {
        quote! {
            impl ::std::default::Default for #name {
                fn default() -> Self {
                    Self::new()
                }
            }
        }
    });
    quote! {
        // Setters are named after the spec's properties, which may read like
        // std's conventions (`is_active`, `add`).
        #[allow(deprecated, clippy::too_many_arguments, clippy::should_implement_trait, clippy::wrong_self_convention)]
        impl #name {
            #[doc = #new_doc]
            pub fn new(#(#args),*) -> Self {
                Self { #(#inits)* }
            }
            #(#methods)*
        }
        #default
    }
}

/// The constructors and setters of every struct.
pub fn emit_builders(api: &Api) -> TokenStream {
    let impls = api.types.values().filter_map(|def| match &def.kind {
        TypeKind::Struct(s) => Some(emit_builder(def, s)),
        _ => None,
    });
    quote!(#(#impls)*)
}

/// Rust text building `value` as a `type_name`, with the constructor and
/// setters (`types::InvokeRequest::new("Hello").session_id("s1")`); `types`
/// is the path of the models module. `None` when some part has no plain
/// spelling (a `oneOf`, a file, a property the struct does not name, a
/// missing required property): the caller decodes JSON instead.
pub fn example_expr(api: &Api, types: &str, type_name: &str, value: &Value) -> Option<String> {
    struct_expr(api, types, type_name, value, 0)
}

const MAX_DEPTH: usize = 8;

fn struct_expr(api: &Api, types: &str, type_name: &str, value: &Value, depth: usize) -> Option<String> {
    let TypeKind::Struct(s) = &api.types.get(type_name)?.kind else { return None };
    let object = value.as_object()?;
    if depth > MAX_DEPTH || object.keys().any(|k| !s.fields.iter().any(|f| &f.api_name == k)) {
        return None;
    }
    let setters = setter_names(s);
    let mut args = Vec::new();
    let mut calls = String::new();
    for (f, names) in s.fields.iter().zip(&setters) {
        let given = object.get(&f.api_name);
        match (names, given) {
            (None, None) => return None,
            (None, Some(Value::Null)) if f.nullable => args.push("None".to_owned()),
            (None, Some(v)) if f.nullable => {
                args.push(format!("Some({})", owned_expr(api, types, &f.shape, v, depth)?))
            }
            (None, Some(v)) => args.push(arg_expr(api, types, f, v, depth)?),
            // A deprecated property is left out of examples, which must
            // compile without warnings.
            (Some(_), _) if f.deprecated => {}
            (Some(_), None) => {}
            (Some(names), Some(Value::Null)) => {
                if let Some(null) = &names.null {
                    calls.push_str(&format!(".{null}()"));
                }
            }
            (Some(names), Some(v)) => {
                calls.push_str(&format!(".{}({})", names.value, arg_expr(api, types, f, v, depth)?));
            }
        }
    }
    Some(format!("{types}{type_name}::new({}){calls}", args.join(", ")))
}

/// A constructor or setter argument: a string literal where the method
/// takes `impl Into<String>`.
fn arg_expr(api: &Api, types: &str, f: &Field, v: &Value, depth: usize) -> Option<String> {
    if is_string(f) {
        return v.as_str().map(|s| format!("{s:?}"));
    }
    owned_expr(api, types, &f.shape, v, depth)
}

/// An expression of exactly the shape's Rust type.
fn owned_expr(api: &Api, types: &str, shape: &Shape, v: &Value, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    match shape {
        Shape::String(_) => v.as_str().map(|s| format!("{s:?}.to_owned()")),
        Shape::Integer(_) => v.as_i64().map(|n| n.to_string()),
        Shape::Number(_) => v.as_f64().map(|n| format!("{n:?}")),
        Shape::Boolean => v.as_bool().map(|b| b.to_string()),
        Shape::Any => Some(format!("::serde_json::json!({v})")),
        Shape::Binary => None,
        Shape::Array(a) => {
            let items = v
                .as_array()?
                .iter()
                .map(|i| owned_expr(api, types, &a.items, i, depth + 1))
                .collect::<Option<Vec<_>>>()?;
            Some(format!("vec![{}]", items.join(", ")))
        }
        Shape::Map(inner) => {
            let entries = v
                .as_object()?
                .iter()
                .map(|(k, i)| Some(format!("({k:?}.to_owned(), {})", owned_expr(api, types, inner, i, depth + 1)?)))
                .collect::<Option<Vec<_>>>()?;
            Some(format!("::std::collections::BTreeMap::from([{}])", entries.join(", ")))
        }
        Shape::Named(n) => match &api.types.get(n)?.kind {
            TypeKind::Struct(_) => struct_expr(api, types, n, v, depth + 1),
            TypeKind::Enum(e) => {
                let wanted = v.as_str()?;
                let variant = e.variants.iter().find(|x| x.api_name == wanted)?;
                Some(format!("{types}{n}::{}", variant.name))
            }
            TypeKind::Alias(inner) => owned_expr(api, types, inner, v, depth + 1),
            TypeKind::OneOf(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::example_expr;
    use serde_json::json;

    const SPEC: &str = "openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths:\n  /r:\n    post:\n      operationId: send\n      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Req'}}}}\n      responses: {'204': {description: ok}}\ncomponents:\n  schemas:\n    Req:\n      type: object\n      required: [query, new]\n      properties:\n        query: {type: string}\n        new: {type: integer}\n        clone: {type: boolean}\n        with_clone: {type: string}\n        note: {type: string, nullable: true}\n        kind: {type: string, enum: [a, b]}\n        tags: {type: array, items: {type: string}}\n";

    #[test]
    fn an_example_becomes_a_constructor_and_setters_named_around_clashes() {
        let api = crate::load(SPEC).expect("the spec lowers");
        let value = json!({"query": "Hi", "new": 2, "clone": true, "with_clone": "x", "note": null, "kind": "b", "tags": ["t"]});
        let expr = example_expr(&api, "types::", "Req", &value).expect("every part has a spelling");
        assert_eq!(
            expr,
            "types::Req::new(\"Hi\", 2).with_clone(true).with_with_clone(\"x\").note_null().kind(types::ReqKind::B).tags(vec![\"t\".to_owned()])"
        );
        // A missing required property or an unknown one has no spelling.
        assert_eq!(example_expr(&api, "types::", "Req", &json!({"query": "Hi"})), None);
        assert_eq!(example_expr(&api, "types::", "Req", &json!({"query": "Hi", "new": 1, "extra": 1})), None);
    }
}
