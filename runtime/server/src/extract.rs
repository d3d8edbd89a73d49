//! Reading a request's inputs (body, query string, path parameters,
//! headers) with every failure answered in the error envelope `E`.
//!
//! axum's stock extractors (`Json`, `Query`, `Path`) reject with `text/plain`
//! bodies and statuses such as 415 and 422 that the spec does not document,
//! so the generated handlers take the raw request and call these functions
//! instead: each failure is a `400` naming the offending field (`413` for
//! an oversized body).

use std::borrow::Cow;
use std::collections::HashSet;

use axum::body::{Body, HttpBody};
use axum::extract::{FromRequestParts, RawPathParams};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::request::Parts;
use http::{HeaderMap, Uri, header};
use serde::de::value::{BorrowedStrDeserializer, MapDeserializer, StringDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};

use crate::error::{ApiFailure, ErrorEnvelope};
use crate::validate::{FieldPath, Validate};

/// Reads the whole body, refusing one over `limit` bytes with
/// `413`. A declared `Content-Length` over the limit is refused before a
/// byte is read.
pub(crate) async fn read_body<E: ErrorEnvelope>(body: Body, limit: usize) -> Result<Bytes, ApiFailure<E>> {
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiFailure::payload_too_large(limit));
    }
    let mut stream = body.into_data_stream();
    // Most bodies arrive in one chunk, which is then returned without a copy.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut length = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            tracing::debug!(%error, "failed to read a request body");
            ApiFailure::invalid_input("body", "unreadable").with_message("The request body could not be read.")
        })?;
        length = length.saturating_add(chunk.len());
        if length > limit {
            return Err(ApiFailure::payload_too_large(limit));
        }
        match &first {
            None => first = Some(chunk),
            Some(head) => {
                if rest.is_empty() {
                    rest.extend_from_slice(head);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(if rest.is_empty() { first.unwrap_or_default() } else { rest.freeze() })
}

/// Parses a JSON request body into `T` and checks it against the spec.
///
/// The `Content-Type` must be `application/json` (parameters such as
/// `charset` allowed) or `application/<something>+json`. Every failure is a
/// `400` whose field is the JSON path of the culprit
/// (`parameters.temperature`, `batch[2].query`, or `body` for the document as
/// a whole) and whose reason is one of `content_type`, `empty`,
/// `malformed_json` (with `line` and `column`), `missing`, `unknown_field`,
/// `unknown_variant`, `invalid_type`, `invalid_value`, `invalid_length`,
/// `duplicate` or `invalid`, or the reason of the failed spec check.
pub(crate) fn json_body<T: DeserializeOwned + Validate, E: ErrorEnvelope>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiFailure<E>> {
    let value: T = json_document(headers, bytes)?;
    value.validate(&mut FieldPath::root())?;
    Ok(value)
}

/// Reads a JSON body like [`json_body`] but leaves the constraints to the
/// caller: for bodies that are not a named type of the spec (a map, a list,
/// a string with a pattern), which the generated code checks by shape.
pub(crate) fn json_document<T: DeserializeOwned, E: ErrorEnvelope>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiFailure<E>> {
    let content_type = headers.get(header::CONTENT_TYPE);
    // The usual value, compared as bytes before anything is parsed.
    let json = content_type
        .is_some_and(|value| value.as_bytes() == b"application/json" || value.to_str().is_ok_and(is_json_media_type));
    if !json {
        let content_type = content_type.map(|value| String::from_utf8_lossy(value.as_bytes()));
        return Err(ApiFailure::invalid_input("body", "content_type").with_message(match content_type {
            None => "Content-Type must be application/json; the request sent none.".to_owned(),
            Some(other) => format!("Content-Type must be application/json, not {other}."),
        }));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiFailure::invalid_input("body", "empty")
            .with_message("The request body is empty; a JSON document is required."));
    }
    // The success path parses once, without tracking where it is: keeping a
    // path of every field costs on every request, and only a failure needs
    // it. A failure is parsed again with the path tracked, which finds the
    // same error (the parse is deterministic) and names its field.
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match T::deserialize(Strict(&mut deserializer)) {
        Ok(value) => {
            // Trailing bytes after the document are a syntax error too, which
            // `deserialize` alone does not look for.
            deserializer.end().map_err(|error| malformed_json::<E>(&error))?;
            Ok(value)
        }
        Err(_) => Err(json_document_failure::<T, E>(bytes)),
    }
}

/// The failure of a body [`json_document`] could not parse, with the path
/// of the culprit: the same parse again, tracking the path.
#[cold]
fn json_document_failure<T: DeserializeOwned, E: ErrorEnvelope>(bytes: &[u8]) -> ApiFailure<E> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(Strict(&mut deserializer)) {
        Err(error) => json_failure::<E>(error),
        // Unreachable in practice: the first parse of the same bytes failed.
        Ok(_) => ApiFailure::invalid_input("body", "malformed_json")
            .with_message("The request body could not be parsed as JSON."),
    }
}

/// Whether a `Content-Type` names JSON: `application/json` or a structured
/// syntax suffix `+json`, in any letter case, with any parameters.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((kind, subtype)) if kind.eq_ignore_ascii_case("application") => {
            subtype.eq_ignore_ascii_case("json")
                || (subtype.len() > 5
                    && subtype.is_char_boundary(subtype.len() - 5)
                    && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
        }
        _ => false,
    }
}

/// A deserializer wrapper that refuses a JSON array where a struct is
/// expected. serde's derived structs also accept their fields as a
/// sequence (`["hi"]` for `{"query": "hi"}`), which the spec does not
/// allow and which contract tests send as invalid data expecting a 400.
/// Every nested deserializer is wrapped in turn, so the rule holds at any
/// depth.
struct Strict<T>(T);

/// The visitor of a struct under [`Strict`]: a sequence is refused.
struct StrictStruct<V>(V);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*),)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method($($arg,)* Strict(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(),
        deserialize_i64(), deserialize_i128(), deserialize_u8(), deserialize_u16(), deserialize_u32(),
        deserialize_u64(), deserialize_u128(), deserialize_f32(), deserialize_f64(), deserialize_char(),
        deserialize_str(), deserialize_string(), deserialize_bytes(), deserialize_byte_buf(),
        deserialize_option(), deserialize_unit(), deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str), deserialize_seq(), deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize), deserialize_map(),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_struct(name, fields, StrictStruct(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visits {
    () => {
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.expecting(formatter)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.0.visit_bool(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.0.visit_i64(v)
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            self.0.visit_i128(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.0.visit_u64(v)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            self.0.visit_u128(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.0.visit_f64(v)
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
            self.0.visit_char(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.0.visit_str(v)
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            self.0.visit_borrowed_str(v)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            self.0.visit_string(v)
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            self.0.visit_bytes(v)
        }
        fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
            self.0.visit_borrowed_bytes(v)
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            self.0.visit_byte_buf(v)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_none()
        }
        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            self.0.visit_some(Strict(deserializer))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_unit()
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            self.0.visit_newtype_struct(Strict(deserializer))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(Strict(map))
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            self.0.visit_enum(Strict(data))
        }
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Strict<V> {
    type Value = V::Value;

    forward_visits!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Strict(seq))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StrictStruct<V> {
    type Value = V::Value;

    forward_visits!();

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::invalid_type(Unexpected::Seq, &self))
    }
}

impl<'de, S: de::DeserializeSeed<'de>> de::DeserializeSeed<'de> for Strict<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(Strict(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Strict(seed))
    }

    fn next_value_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Self::Error> {
        self.0.next_value_seed(Strict(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Strict<A> {
    type Error = A::Error;
    type Variant = Strict<A::Variant>;

    fn variant_seed<T: de::DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), Self::Error> {
        let (value, variant) = self.0.variant_seed(Strict(seed))?;
        Ok((value, Strict(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(Strict(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, Strict(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, StrictStruct(visitor))
    }
}

fn malformed_json<E: ErrorEnvelope>(error: &serde_json::Error) -> ApiFailure<E> {
    ApiFailure::invalid_input("body", "malformed_json")
        .with_message(format!("The request body is not valid JSON: {}.", serde_message(error)))
        .with_detail("line", error.line())
        .with_detail("column", error.column())
}

fn json_failure<E: ErrorEnvelope>(error: serde_path_to_error::Error<serde_json::Error>) -> ApiFailure<E> {
    let path = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => data_failure(&path, &serde_message(&inner)),
        _ => malformed_json(&inner),
    }
}

/// serde_json's message without its " at line L column C" suffix, which the
/// envelope reports as separate details.
fn serde_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_owned(),
        None => text,
    }
}

/// Turns a serde data error at `path` (serde_path_to_error's notation, `.`
/// for the root) into `400` naming the field and a reason read from serde's
/// wording, which is stable across serde versions.
fn data_failure<E: ErrorEnvelope>(path: &str, message: &str) -> ApiFailure<E> {
    let (field, reason, text) = data_error(path, message);
    ApiFailure::invalid_input(field, reason).with_message(text)
}

/// The field, reason and message of a serde data error at `path`.
fn data_error(path: &str, message: &str) -> (String, &'static str, String) {
    let path = if path == "." { "" } else { path };
    let named = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('`')).and_then(|rest| rest.split('`').next())
    };
    // A struct finds a field missing or repeated only after reading the key,
    // so the path is the struct's and the field is appended; an unknown
    // field is refused while its key is read, so the path already ends with
    // it.
    let child = |name: &str| {
        if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
    };
    if let Some(name) = named("missing field ") {
        let field = child(name);
        let message = format!("{field} is required.");
        return (field, "missing", message);
    }
    let (field, reason) = match named("duplicate field ") {
        Some(name) => (child(name), "duplicate"),
        None => {
            let field = if path.is_empty() { "body" } else { path };
            let reason = [
                ("unknown field ", "unknown_field"),
                ("unknown variant ", "unknown_variant"),
                ("invalid type: ", "invalid_type"),
                ("invalid value: ", "invalid_value"),
                ("invalid length ", "invalid_length"),
            ]
            .iter()
            .find(|(prefix, _)| message.starts_with(prefix))
            .map_or("invalid", |(_, reason)| reason);
            (field.to_owned(), reason)
        }
    };
    let text = format!("Invalid value for {field}: {message}.");
    (field, reason, text)
}

/// Parses the query string into `T` (a struct of the operation's query
/// parameters, checked against the spec by the caller).
///
/// Values are percent-decoded (`+` is a space) and parsed from text into the
/// field's type. A parameter given twice, a value that does not parse, or a
/// missing required parameter is a `400` whose field is the parameter's
/// name. The parameters named in `lists` are arrays: each of their pairs is
/// one item (`tags=a&tags=b`, `style: form` exploded, the default).
pub(crate) fn query<T: DeserializeOwned, E: ErrorEnvelope>(uri: &Uri, lists: &[&str]) -> Result<T, ApiFailure<E>> {
    let raw = uri.query().unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|error| {
        ApiFailure::invalid_input("query", "malformed").with_message(format!("The query string is malformed: {error}."))
    })?;
    let mut seen = HashSet::new();
    if let Some((name, _)) =
        pairs.iter().find(|(name, _)| !lists.contains(&name.as_str()) && !seen.insert(name.as_str()))
    {
        return Err(ApiFailure::invalid_input(name.clone(), "duplicate")
            .with_message(format!("Query parameter {name} is given more than once.")));
    }
    let mut fields: Vec<(String, QueryField)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if !lists.contains(&name.as_str()) {
            fields.push((name, QueryField::One(value)));
        } else if let Some((_, QueryField::Many(items))) = fields.iter_mut().find(|(key, _)| *key == name) {
            items.push(value);
        } else {
            fields.push((name, QueryField::Many(vec![value])));
        }
    }
    let map = MapDeserializer::<_, de::value::Error>::new(fields.into_iter());
    serde_path_to_error::deserialize(map).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let (field, reason, _) = data_error(&path, &message);
        // The query string has no nesting, so the field is a parameter; say so
        // in the message, the part people read.
        let text = match reason {
            "missing" => format!("Query parameter {field} is required."),
            _ => format!("Invalid value for query parameter {field}: {message}."),
        };
        ApiFailure::invalid_input(field, reason).with_message(text)
    })
}

/// Which query pairs belong to a form-style object parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keys<'k> {
    /// The object's properties.
    Only(&'k [&'k str]),
    /// Every key but these, the operation's other parameters: a free-form
    /// object (a map). A name ending in `[` stands for every key it
    /// starts, the pairs of a `deepObject` parameter.
    Except(&'k [&'k str]),
}

/// Reads an object-valued query parameter into `T`: with `deep`, the pairs
/// `name[key]=value` (`style: deepObject`), otherwise the pairs whose keys
/// `keys` selects (`style: form`, exploded).
/// `None` when the query string has none of them. A value that does not
/// parse, a missing required property or (with `deep`) an unknown one is a
/// `400` whose field is `name.key`.
pub(crate) fn query_object<T: DeserializeOwned, E: ErrorEnvelope>(
    uri: &Uri,
    name: &str,
    deep: bool,
    keys: Keys<'_>,
) -> Result<Option<T>, ApiFailure<E>> {
    let raw = uri.query().unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|error| {
        ApiFailure::invalid_input("query", "malformed").with_message(format!("The query string is malformed: {error}."))
    })?;
    let own: Vec<(String, String)> = pairs
        .into_iter()
        .filter_map(|(key, value)| {
            let key = if deep {
                key.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?.to_owned()
            } else {
                let selected = match keys {
                    Keys::Only(names) => names.contains(&key.as_str()),
                    Keys::Except(names) => !names.iter().any(|name| match name.strip_suffix('[') {
                        Some(_) => key.starts_with(name),
                        None => key == *name,
                    }),
                };
                selected.then_some(key)?
            };
            Some((key, value))
        })
        .collect();
    if own.is_empty() {
        return Ok(None);
    }
    let map = MapDeserializer::<_, de::value::Error>::new(
        own.into_iter().map(|(key, value)| (key, QueryValue(Cow::Owned(value)))),
    );
    serde_path_to_error::deserialize(map).map(Some).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let (key, reason, _) = data_error(&path, &message);
        let field = if key == "body" { name.to_owned() } else { format!("{name}.{key}") };
        let text = match reason {
            "missing" => format!("Query parameter {field} is required."),
            _ => format!("Invalid value for query parameter {field}: {message}."),
        };
        ApiFailure::invalid_input(field, reason).with_message(text)
    })
}

/// One query-string value: text that deserializes into whatever the field
/// asks for, parsing numbers and booleans from it, since the query string
/// carries no types. (serde_urlencoded does the same but cannot report
/// which parameter failed without serde_path_to_error, which needs a
/// deserializer built from `form_urlencoded`, a crate this one does not use.)
struct QueryValue<'de>(Cow<'de, str>);

impl<'de> IntoDeserializer<'de, de::value::Error> for QueryValue<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_value {
    ($($method:ident => $visit:ident: $ty:ty,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.0.trim().parse::<$ty>() {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&self.0), &visitor)),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for QueryValue<'de> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Cow::Borrowed(text) => visitor.visit_borrowed_str(text),
            Cow::Owned(text) => visitor.visit_string(text),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        // A parameter that is present has a value, even an empty one.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Cow::Borrowed(text) => visitor.visit_enum(BorrowedStrDeserializer::new(text)),
            Cow::Owned(text) => visitor.visit_enum(StringDeserializer::new(text)),
        }
    }

    parse_value! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Scalars parse from the one value (a list reaches them only through
/// `deserialize_any`, as a sequence whose items parse one by one).
macro_rules! one_value {
    ($($method:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self {
                    QueryField::One(text) => QueryValue(Cow::Owned(text)).$method(visitor),
                    many => many.deserialize_any(visitor),
                }
            }
        )*
    };
}

/// A query parameter's values: one, or every item of an array parameter.
enum QueryField {
    One(String),
    Many(Vec<String>),
}

impl<'de> IntoDeserializer<'de, de::value::Error> for QueryField {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for QueryField {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            QueryField::One(text) => QueryValue(Cow::Owned(text)).deserialize_any(visitor),
            QueryField::Many(items) => visitor
                .visit_seq(de::value::SeqDeserializer::new(items.into_iter().map(|item| QueryValue(Cow::Owned(item))))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            QueryField::One(text) => QueryValue(Cow::Owned(text)).deserialize_enum(name, variants, visitor),
            many => many.deserialize_any(visitor),
        }
    }

    one_value! {
        deserialize_bool, deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64, deserialize_i128,
        deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64, deserialize_u128, deserialize_f32,
        deserialize_f64,
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// The percent-decoded path parameters of a request, as the router matched
/// them (axum keeps each name and value behind an `Arc`, so holding them
/// copies no text).
#[derive(Debug, Default)]
pub(crate) struct PathParams(Option<RawPathParams>);

/// Reads the path parameters the router matched. A parameter that is not
/// valid UTF-8 once percent-decoded is a `400` naming it (axum's own
/// extractor would answer in `text/plain`).
pub(crate) async fn path_params<E: ErrorEnvelope>(parts: &mut Parts) -> Result<PathParams, ApiFailure<E>> {
    use axum::extract::rejection::RawPathParamsRejection;
    match RawPathParams::from_request_parts(parts, &()).await {
        Ok(raw) => Ok(PathParams(Some(raw))),
        Err(RawPathParamsRejection::InvalidUtf8InPathParam(rejection)) => {
            // axum keeps the parameter's name private but spells it out, in
            // backticks, in its message.
            let text = rejection.body_text();
            let name = text.split('`').nth(1).unwrap_or("path").to_owned();
            let message = format!("Path parameter {name} is not valid UTF-8 once percent-decoded.");
            Err(ApiFailure::invalid_input(name, "invalid_utf8").with_message(message))
        }
        // A route without parameters has none to report.
        Err(_) => Ok(PathParams::default()),
    }
}

/// One path parameter by name. Its absence means the route and the handler
/// disagree, a bug in the server rather than in the request, hence a 500.
pub(crate) fn path_param<'p, E: ErrorEnvelope>(params: &'p PathParams, name: &str) -> Result<&'p str, ApiFailure<E>> {
    params.0.iter().flat_map(|raw| raw.iter()).find(|(key, _)| *key == name).map(|(_, value)| value).ok_or_else(|| {
        tracing::error!(parameter = name, "the route has no such path parameter");
        ApiFailure::internal("The server's route is missing a path parameter.")
    })
}

/// A request header as text: `None` when absent. A header that is not UTF-8
/// or that is sent more than once is a `400` naming it, since every header
/// the spec declares takes one value.
pub(crate) fn header_str<'h, E: ErrorEnvelope>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, ApiFailure<E>> {
    header_named(headers, name, name)
}

/// [`header_str`] looking the header up by `key`, a `HeaderName` made once
/// (a name given as text is parsed and lowercased on every lookup), and
/// naming it `name` in errors.
pub(crate) fn header_named<'h, E: ErrorEnvelope>(
    headers: &'h HeaderMap,
    key: impl http::header::AsHeaderName,
    name: &str,
) -> Result<Option<&'h str>, ApiFailure<E>> {
    let mut values = headers.get_all(key).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(
            ApiFailure::invalid_input(name, "duplicate").with_message(format!("Header {name} is sent more than once."))
        );
    }
    std::str::from_utf8(value.as_bytes()).map(Some).map_err(|_| {
        ApiFailure::invalid_input(name, "invalid_utf8").with_message(format!("Header {name} is not valid UTF-8."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::envelope;
    use crate::testing::{TestErrors, TestFailure};
    use crate::validate::ValidationError;
    use axum::response::IntoResponse;
    use http::{HeaderValue, StatusCode};
    use serde::Deserialize;
    use serde_json::{Value, json};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Invoke {
        query: String,
        #[serde(default)]
        parameters: Option<Parameters>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parameters {
        temperature: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Sync,
        Async,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        batch: Vec<Invoke>,
    }

    impl Validate for Invoke {
        fn validate(&self, path: &mut FieldPath) -> Result<(), ValidationError> {
            if self.query.is_empty() {
                path.push_field("query");
                return Err(path.error("must be at least 1 characters long"));
            }
            Ok(())
        }
    }

    impl Validate for Batch {
        fn validate(&self, path: &mut FieldPath) -> Result<(), ValidationError> {
            path.push_field("batch");
            self.batch.validate(path)?;
            path.pop();
            Ok(())
        }
    }

    fn json_headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    async fn rejection<T: DeserializeOwned + Validate + std::fmt::Debug>(
        content_type: Option<&str>,
        body: &str,
    ) -> Value {
        let headers = content_type.map(json_headers).unwrap_or_default();
        let failure = json_body::<T, TestErrors>(&headers, body.as_bytes()).expect_err("a rejection");
        let (status, _, value) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(value["error"]["code"], "INVALID_INPUT");
        value["error"].clone()
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            " application/json ;x=y",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/jsonx", "application/+json", "json", "text/json", ""] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_a_valid_body() {
        let bytes = br#"{"query":"hi","mode":"async","parameters":{"temperature":0.5}}"#;
        let body = json_body::<Invoke, TestErrors>(&json_headers("application/json"), bytes).unwrap();
        assert_eq!(body.query, "hi");
        assert_eq!(body.parameters.map(|p| p.temperature), Some(0.5));
        assert!(matches!(body.mode, Some(Mode::Async)));
    }

    #[tokio::test]
    async fn content_type_is_required() {
        let error = rejection::<Invoke>(None, r#"{"query":"hi"}"#).await;
        assert_eq!(error["details"], json!({"field": "body", "reason": "content_type"}));
        assert!(error["message"].as_str().unwrap().contains("Content-Type must be application/json"));
        let error = rejection::<Invoke>(Some("text/plain"), r#"{"query":"hi"}"#).await;
        assert_eq!(error["details"]["reason"], "content_type");
    }

    #[tokio::test]
    async fn empty_and_malformed_bodies() {
        let error = rejection::<Invoke>(Some("application/json"), "  ").await;
        assert_eq!(error["details"], json!({"field": "body", "reason": "empty"}));
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query": "hi""#).await;
        assert_eq!(error["details"]["field"], "body");
        assert_eq!(error["details"]["reason"], "malformed_json");
        assert_eq!(error["details"]["line"], 1);
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query":"hi"} x"#).await;
        assert_eq!(error["details"]["reason"], "malformed_json");
    }

    #[tokio::test]
    async fn data_errors_name_the_json_path() {
        let error = rejection::<Invoke>(Some("application/json"), r#"{"parameters":{"temperature":1}}"#).await;
        assert_eq!(error["details"], json!({"field": "query", "reason": "missing"}));
        assert_eq!(error["message"], "query is required.");
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query":"hi","parameters":{}}"#).await;
        assert_eq!(error["details"], json!({"field": "parameters.temperature", "reason": "missing"}));
        let error =
            rejection::<Invoke>(Some("application/json"), r#"{"query":"hi","parameters":{"temperature":"hot"}}"#).await;
        assert_eq!(error["details"], json!({"field": "parameters.temperature", "reason": "invalid_type"}));
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query":"hi","mode":"later"}"#).await;
        assert_eq!(error["details"], json!({"field": "mode", "reason": "unknown_variant"}));
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query":"hi","extra":1}"#).await;
        assert_eq!(error["details"], json!({"field": "extra", "reason": "unknown_field"}));
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query":"a","query":"b"}"#).await;
        assert_eq!(error["details"], json!({"field": "query", "reason": "duplicate"}));
        let error =
            rejection::<Invoke>(Some("application/json"), r#"{"query":"hi","parameters":{"temperature":1,"top_p":1}}"#)
                .await;
        assert_eq!(error["details"], json!({"field": "parameters.top_p", "reason": "unknown_field"}));
        let error = rejection::<Invoke>(Some("application/json"), r#"["hi"]"#).await;
        assert_eq!(error["details"], json!({"field": "body", "reason": "invalid_type"}));
        let error = rejection::<Invoke>(Some("application/json"), r#"{"query":"hi","parameters":[0.5]}"#).await;
        assert_eq!(error["details"], json!({"field": "parameters", "reason": "invalid_type"}));
        let error = rejection::<Batch>(Some("application/json"), r#"{"batch":[["a"]]}"#).await;
        assert_eq!(error["details"], json!({"field": "batch[0]", "reason": "invalid_type"}));
        let error = rejection::<Invoke>(Some("application/json"), "null").await;
        assert_eq!(error["details"], json!({"field": "body", "reason": "invalid_type"}));
        let error = rejection::<Batch>(Some("application/json"), r#"{"batch":[{"query":"a"},{"query":"b"},{}]}"#).await;
        assert_eq!(error["details"], json!({"field": "batch[2].query", "reason": "missing"}));
        let error =
            rejection::<Batch>(Some("application/json"), r#"{"batch":[{"query":"a"},{"query":"b","x":0}]}"#).await;
        assert_eq!(error["details"], json!({"field": "batch[1].x", "reason": "unknown_field"}));
    }

    #[tokio::test]
    async fn spec_checks_run_after_parsing() {
        let error = rejection::<Batch>(Some("application/json"), r#"{"batch":[{"query":"a"},{"query":""}]}"#).await;
        assert_eq!(error["details"], json!({"field": "batch[1].query", "reason": "too_short"}));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let failure = read_body::<TestErrors>(Body::from(vec![b'x'; 11]), 10).await.unwrap_err();
        assert_eq!(failure.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let chunks = futures::stream::iter((0..2).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"123456"))));
        let failure = read_body::<TestErrors>(Body::from_stream(chunks), 10).await.unwrap_err();
        assert_eq!(failure.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let chunks = futures::stream::iter((0..2).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"12345"))));
        assert_eq!(read_body::<TestErrors>(Body::from_stream(chunks), 10).await.unwrap(), "1234512345");
        assert_eq!(read_body::<TestErrors>(Body::empty(), 0).await.unwrap(), "");
    }

    #[derive(Debug, Deserialize)]
    struct ListQuery {
        #[serde(default)]
        page: Option<i32>,
        #[serde(default)]
        status: Option<Mode>,
        #[serde(default)]
        exact: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    struct StreamQuery {
        query: String,
    }

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn query_values_parse_into_their_types() {
        let q: ListQuery = query::<_, TestErrors>(&uri("/agents?page=2&status=sync&exact=true&other=1"), &[]).unwrap();
        assert_eq!(q.page, Some(2));
        assert!(matches!(q.status, Some(Mode::Sync)));
        assert_eq!(q.exact, Some(true));
        let q: ListQuery = query::<_, TestErrors>(&uri("/agents"), &[]).unwrap();
        assert_eq!(q.page, None);
        let q: StreamQuery = query::<_, TestErrors>(&uri("/s?query=Hello%20there+you%E2%9C%93"), &[]).unwrap();
        assert_eq!(q.query, "Hello there you\u{2713}");
    }

    #[tokio::test]
    async fn query_failures_name_the_parameter() {
        let cases: [(&str, Value); 5] = [
            ("/agents?page=two", json!({"field": "page", "reason": "invalid_value"})),
            ("/agents?page=1&page=2", json!({"field": "page", "reason": "duplicate"})),
            ("/agents?status=later", json!({"field": "status", "reason": "unknown_variant"})),
            ("/agents?page=99999999999", json!({"field": "page", "reason": "invalid_value"})),
            ("/agents?exact=maybe", json!({"field": "exact", "reason": "invalid_value"})),
        ];
        for (text, details) in cases {
            let failure = query::<ListQuery, TestErrors>(&uri(text), &[]).unwrap_err();
            let (status, _, body) = envelope(failure.into_response()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
            assert_eq!(body["error"]["details"], details, "{text}");
        }
        let failure = query::<StreamQuery, TestErrors>(&uri("/s"), &[]).unwrap_err();
        let (_, _, body) = envelope(failure.into_response()).await;
        assert_eq!(body["error"]["details"], json!({"field": "query", "reason": "missing"}));
        assert_eq!(body["error"]["message"], "Query parameter query is required.");
    }

    #[tokio::test]
    async fn object_query_parameters_read_form_and_deep_object_pairs() {
        let form: Option<ListQuery> = query_object::<_, TestErrors>(
            &uri("/a?page=2&exact=true&q=x"),
            "list",
            false,
            Keys::Only(&["page", "status", "exact"]),
        )
        .unwrap();
        let form = form.unwrap();
        assert_eq!((form.page, form.exact), (Some(2), Some(true)));
        let deep: Option<ListQuery> = query_object::<_, TestErrors>(
            &uri("/a?list%5Bstatus%5D=sync&list[page]=3&page=9"),
            "list",
            true,
            Keys::Only(&[]),
        )
        .unwrap();
        let deep = deep.unwrap();
        assert_eq!(deep.page, Some(3));
        assert!(matches!(deep.status, Some(Mode::Sync)));
        let none: Option<ListQuery> =
            query_object::<_, TestErrors>(&uri("/a?q=1"), "list", true, Keys::Only(&[])).unwrap();
        assert!(none.is_none());
        let failure = query_object::<ListQuery, TestErrors>(&uri("/a?list[page]=two"), "list", true, Keys::Only(&[]))
            .unwrap_err();
        let (status, _, body) = envelope(failure.into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["details"], json!({"field": "list.page", "reason": "invalid_value"}));
    }

    #[test]
    fn array_parameters_take_one_pair_per_item() {
        #[derive(Debug, Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<i64>>,
            #[serde(default)]
            limit: Option<i64>,
        }
        let q: Tags = query::<_, TestErrors>(&uri("/p?tags=1&limit=3&tags=2"), &["tags"]).unwrap();
        assert_eq!((q.tags, q.limit), (Some(vec![1, 2]), Some(3)));
        let q: Tags = query::<_, TestErrors>(&uri("/p?tags=7"), &["tags"]).unwrap();
        assert_eq!(q.tags, Some(vec![7]));
        let failure = query::<Tags, TestErrors>(&uri("/p?tags=1&tags=x"), &["tags"]).unwrap_err();
        assert_eq!((failure.field(), failure.reason()), (Some("tags[1]"), Some("invalid_value")));
        let failure = query::<Tags, TestErrors>(&uri("/p?limit=1&limit=2"), &["tags"]).unwrap_err();
        assert_eq!((failure.field(), failure.reason()), (Some("limit"), Some("duplicate")));
    }

    #[test]
    fn a_free_form_object_takes_the_pairs_no_other_parameter_names() {
        use std::collections::BTreeMap;
        let map: Option<BTreeMap<String, String>> = query_object::<_, TestErrors>(
            &uri("/a?limit=2&team=x&env=prod&f[a]=1"),
            "metadata",
            false,
            Keys::Except(&["limit", "f["]),
        )
        .unwrap();
        let expected: BTreeMap<String, String> =
            [("env", "prod"), ("team", "x")].map(|(k, v)| (k.into(), v.into())).into();
        assert_eq!(map, Some(expected.clone()));
        let deep: Option<BTreeMap<String, String>> = query_object::<_, TestErrors>(
            &uri("/a?metadata[team]=x&metadata[env]=prod&limit=2"),
            "metadata",
            true,
            Keys::Only(&[]),
        )
        .unwrap();
        assert_eq!(deep, Some(expected));
    }

    #[tokio::test]
    async fn headers_must_be_single_and_utf8() {
        let mut headers = HeaderMap::new();
        let read =
            |headers: &HeaderMap, name: &str| header_str::<TestErrors>(headers, name).map(|v| v.map(str::to_owned));
        assert_eq!(read(&headers, "Idempotency-Key").unwrap(), None);
        headers.insert("idempotency-key", HeaderValue::from_static("abc"));
        assert_eq!(read(&headers, "Idempotency-Key").unwrap().as_deref(), Some("abc"));
        headers.append("idempotency-key", HeaderValue::from_static("def"));
        let failure = read(&headers, "Idempotency-Key").unwrap_err();
        assert_eq!(failure.reason(), Some("duplicate"));
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let failure = read(&headers, "Last-Event-ID").unwrap_err();
        assert_eq!(failure.status(), StatusCode::BAD_REQUEST);
        assert_eq!(failure.field(), Some("Last-Event-ID"));
        let mut headers = HeaderMap::new();
        headers.insert("x-name", HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap());
        assert_eq!(read(&headers, "X-Name").unwrap().as_deref(), Some("caf\u{e9}"));
    }

    #[tokio::test]
    async fn path_params_are_decoded_and_missing_ones_are_500() {
        let app = axum::Router::new().route(
            "/agents/{agent_id}",
            axum::routing::get(|request: axum::extract::Request| async move {
                let (mut parts, _) = request.into_parts();
                let params = match path_params::<TestErrors>(&mut parts).await {
                    Ok(params) => params,
                    Err(failure) => return failure.into_response(),
                };
                let missing: TestFailure = path_param(&params, "nope").unwrap_err();
                assert_eq!(missing.status(), StatusCode::INTERNAL_SERVER_ERROR);
                path_param::<TestErrors>(&params, "agent_id").unwrap().to_owned().into_response()
            }),
        );
        use tower::ServiceExt;
        let request = http::Request::get("/agents/agt%20x").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(bytes, "agt x");
        let request = http::Request::get("/agents/agt%FF").body(Body::empty()).unwrap();
        let (status, _, body) = envelope(app.oneshot(request).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["details"], json!({"field": "agent_id", "reason": "invalid_utf8"}));
    }
}
