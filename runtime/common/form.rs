//! Bodies that are not JSON but fields: `application/x-www-form-urlencoded`
//! and `multipart/form-data`, shared by the client (which writes them) and
//! the server (which reads them).
//!
//! A form carries text, so each field's value is written as OpenAPI's
//! default encodings say: a string as itself, a number or boolean as its
//! JSON text, an array as one field per item, and an object (or an array
//! item that is one) as JSON text, the `application/json` a multipart part
//! holding an object defaults to. A file (`type: string, format: binary`)
//! is a [`FilePart`] and goes only in a multipart body.
//!
//! The generated code implements [`ToFields`] and [`FromFields`] for each
//! schema used as such a body, field by field, so that neither side needs a
//! serde format of its own: values go through `serde_json`, and text is read
//! back as a JSON string first and as JSON text second (what makes `"42"` a
//! number for an integer field and stay `"42"` for a string one).

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A file in a multipart body: its bytes, and the file name and content
/// type its part carries, if any.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FilePart {
    /// The file's content.
    pub data: Bytes,
    /// The `filename` of the part's `Content-Disposition`.
    pub file_name: Option<String>,
    /// The part's `Content-Type` (`application/octet-stream` when `None`).
    pub content_type: Option<String>,
}

impl FilePart {
    /// A file with the given content and no name or content type.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self { data: data.into(), file_name: None, content_type: None }
    }

    /// Sets the file name the part carries.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// Sets the part's content type, e.g. `image/png`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

impl std::fmt::Debug for FilePart {
    // The content may be large or secret; its length says enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePart")
            .field("len", &self.data.len())
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl From<Bytes> for FilePart {
    fn from(data: Bytes) -> Self {
        Self::new(data)
    }
}

impl From<Vec<u8>> for FilePart {
    fn from(data: Vec<u8>) -> Self {
        Self::new(data)
    }
}

// In a JSON document (where the spec should have said `format: byte`), a
// binary value can only be text: it is written as a string when it is UTF-8.
impl Serialize for FilePart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.data) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("binary data that is not UTF-8 can only be sent as a file part")),
        }
    }
}

impl<'de> Deserialize<'de> for FilePart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self::new(text.into_bytes()))
    }
}

impl crate::validate::Validate for FilePart {
    fn validate(&self, _path: &mut crate::validate::FieldPath) -> Result<(), crate::validate::ValidationError> {
        Ok(())
    }
}

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Text.
    Text(String),
    /// A file (multipart only).
    File(FilePart),
}

/// What went wrong writing or reading a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The field's name on the wire (`body` for the form as a whole).
    pub field: String,
    /// A short machine-readable reason: `missing`, `invalid_value`,
    /// `invalid_type`, `duplicate`, `malformed`.
    pub reason: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FormError {
    fn new(field: &str, reason: &'static str, message: String) -> Self {
        Self { field: field.to_owned(), reason, message }
    }
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormError {}

/// A body's fields, in order; a name may repeat (the items of an array).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(String, FieldValue)>);

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = &(String, FieldValue)> {
        self.0.iter()
    }

    /// Adds one field as it is.
    pub fn push(&mut self, name: impl Into<String>, value: FieldValue) {
        self.0.push((name.into(), value));
    }

    /// Adds a value by its JSON form: a string as is, `null` not at all, an
    /// array as one field per item, anything else as its JSON text.
    pub fn value<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), FormError> {
        let json = serde_json::to_value(value)
            .map_err(|e| FormError::new(name, "invalid_value", format!("Field {name} cannot be written: {e}.")))?;
        match json {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    if let Some(text) = text_of(item) {
                        self.push(name, FieldValue::Text(text));
                    }
                }
            }
            other => {
                if let Some(text) = text_of(other) {
                    self.push(name, FieldValue::Text(text));
                }
            }
        }
        Ok(())
    }

    /// Adds a file.
    pub fn file(&mut self, name: &str, file: &FilePart) {
        self.push(name, FieldValue::File(file.clone()));
    }

    /// Adds one file per item.
    pub fn files(&mut self, name: &str, files: &[FilePart]) {
        for file in files {
            self.file(name, file);
        }
    }

    /// The fields as `application/x-www-form-urlencoded`. A file cannot be
    /// sent this way.
    pub fn to_urlencoded(&self) -> Result<String, FormError> {
        let mut pairs = Vec::with_capacity(self.0.len());
        for (name, value) in &self.0 {
            match value {
                FieldValue::Text(text) => pairs.push((name.as_str(), text.as_str())),
                FieldValue::File(_) => {
                    return Err(FormError::new(
                        name,
                        "invalid_type",
                        format!("Field {name} is a file, which only a multipart body can carry."),
                    ));
                }
            }
        }
        serde_urlencoded::to_string(pairs)
            .map_err(|e| FormError::new("body", "malformed", format!("The form cannot be written: {e}.")))
    }

    /// Reads an `application/x-www-form-urlencoded` body.
    pub fn from_urlencoded(body: &[u8]) -> Result<Self, FormError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| FormError::new("body", "malformed", format!("The form body is malformed: {e}.")))?;
        Ok(Self(pairs.into_iter().map(|(name, value)| (name, FieldValue::Text(value))).collect()))
    }

    /// The fields as a `multipart/form-data` body (RFC 7578) with the given
    /// boundary, which the caller picks at random so that no content holds
    /// it. It is built in memory, so that a retry sends the same bytes.
    pub fn to_multipart(&self, boundary: &str) -> Bytes {
        let mut out = Vec::new();
        for (name, value) in &self.0 {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let disposition = format!("Content-Disposition: form-data; name=\"{}\"", quote_param(name));
            out.extend_from_slice(disposition.as_bytes());
            match value {
                FieldValue::Text(text) => {
                    out.extend_from_slice(b"\r\n\r\n");
                    out.extend_from_slice(text.as_bytes());
                }
                FieldValue::File(file) => {
                    if let Some(file_name) = &file.file_name {
                        out.extend_from_slice(format!("; filename=\"{}\"", quote_param(file_name)).as_bytes());
                    }
                    let content_type = file.content_type.as_deref().unwrap_or("application/octet-stream");
                    let content_type: String = content_type.chars().filter(|c| !c.is_control()).collect();
                    out.extend_from_slice(format!("\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
                    out.extend_from_slice(&file.data);
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Bytes::from(out)
    }

    /// Takes every value of a field out of the form.
    fn take(&mut self, name: &str) -> Vec<FieldValue> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.0.len());
        for (key, value) in std::mem::take(&mut self.0) {
            if key == name { taken.push(value) } else { kept.push((key, value)) }
        }
        self.0 = kept;
        taken
    }

    /// The one value of a field that must be present.
    pub fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, FormError> {
        self.optional(name)?.ok_or_else(|| FormError::new(name, "missing", format!("Field {name} is required.")))
    }

    /// The one value of a field that may be absent.
    pub fn optional<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, FormError> {
        let mut values = self.take(name);
        if values.len() > 1 {
            return Err(FormError::new(name, "duplicate", format!("Field {name} is given more than once.")));
        }
        match values.pop() {
            None => Ok(None),
            Some(FieldValue::Text(text)) => read_text(name, &text).map(Some),
            Some(FieldValue::File(file)) => {
                let text = String::from_utf8(file.data.to_vec()).map_err(|_| {
                    FormError::new(name, "invalid_type", format!("Field {name} must be text, not a binary file."))
                })?;
                read_text(name, &text).map(Some)
            }
        }
    }

    /// Every value of a required array field. A form has no way to send an
    /// empty array but to send no field, so none is an empty list.
    pub fn list<T: DeserializeOwned>(&mut self, name: &str) -> Result<Vec<T>, FormError> {
        Ok(self.optional_list(name)?.unwrap_or_default())
    }

    /// Every value of an array field; `None` when there is none.
    pub fn optional_list<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<Vec<T>>, FormError> {
        let values = self.take(name);
        if values.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(values.len());
        for value in values {
            match value {
                FieldValue::Text(text) => out.push(read_text(name, &text)?),
                FieldValue::File(_) => {
                    return Err(FormError::new(
                        name,
                        "invalid_type",
                        format!("Field {name} must be text, not a file."),
                    ));
                }
            }
        }
        Ok(Some(out))
    }

    /// The fields no property took, each read as `T`: the object's
    /// additional properties.
    pub fn remaining<T: DeserializeOwned>(self) -> Result<std::collections::BTreeMap<String, T>, FormError> {
        let mut out = std::collections::BTreeMap::new();
        for (name, value) in self.0 {
            let FieldValue::Text(text) = value else {
                return Err(FormError::new(&name, "invalid_type", format!("Field {name} must be text, not a file.")));
            };
            let value = read_text(&name, &text)?;
            if out.insert(name.clone(), value).is_some() {
                return Err(FormError::new(&name, "duplicate", format!("Field {name} is given more than once.")));
            }
        }
        Ok(out)
    }

    /// Fails on the first field no property took, for an object that allows
    /// no others (`additionalProperties: false`).
    pub fn deny_rest(&self) -> Result<(), FormError> {
        match self.0.first() {
            None => Ok(()),
            Some((name, _)) => Err(FormError::new(name, "unknown_field", format!("Field {name} is not allowed."))),
        }
    }

    /// The one file of a field that must be present.
    pub fn required_file(&mut self, name: &str) -> Result<FilePart, FormError> {
        self.optional_file(name)?.ok_or_else(|| FormError::new(name, "missing", format!("Field {name} is required.")))
    }

    /// The one file of a field that may be absent. A text part is taken as
    /// a file with that content, as browsers send an empty file input.
    pub fn optional_file(&mut self, name: &str) -> Result<Option<FilePart>, FormError> {
        let mut files = self.optional_files(name)?.unwrap_or_default();
        if files.len() > 1 {
            return Err(FormError::new(name, "duplicate", format!("Field {name} is given more than once.")));
        }
        Ok(files.pop())
    }

    /// Every file of a field, which must be present.
    pub fn files_of(&mut self, name: &str) -> Result<Vec<FilePart>, FormError> {
        self.optional_files(name)?.ok_or_else(|| FormError::new(name, "missing", format!("Field {name} is required.")))
    }

    /// Every file of a field; `None` when there is none.
    pub fn optional_files(&mut self, name: &str) -> Result<Option<Vec<FilePart>>, FormError> {
        let values = self.take(name);
        if values.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            values
                .into_iter()
                .map(|value| match value {
                    FieldValue::File(file) => file,
                    FieldValue::Text(text) => FilePart::new(text.into_bytes()),
                })
                .collect(),
        ))
    }
}

/// A value's text in a form; `None` for `null`.
fn text_of(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}

/// Reads a field's text as `T`: as a JSON string first (a string or a
/// string enum), then as JSON text (a number, a boolean, an object).
fn read_text<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, FormError> {
    match serde_json::from_value(Value::String(text.to_owned())) {
        Ok(value) => Ok(value),
        Err(as_string) => serde_json::from_str(text).map_err(|_| {
            FormError::new(name, "invalid_value", format!("Invalid value for field {name}: {as_string}."))
        }),
    }
}

/// A name or file name inside a quoted `Content-Disposition` parameter:
/// quotes and line breaks percent-encoded, as browsers do (WHATWG HTML's
/// multipart/form-data encoding).
fn quote_param(text: &str) -> String {
    text.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// A schema that is sent as a form or multipart body.
pub trait ToFields {
    /// The fields of the body.
    fn to_fields(&self) -> Result<Fields, FormError>;
}

/// A schema that is read from a form or multipart body.
pub trait FromFields: Sized {
    /// Reads the body's fields. Fields the schema does not name are ignored.
    fn from_fields(fields: Fields) -> Result<Self, FormError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_openapi_default_encodings() {
        let mut fields = Fields::new();
        fields.value("name", "Rex & co").unwrap();
        fields.value("age", &3).unwrap();
        fields.value("tags", &["a", "b"]).unwrap();
        fields.value("owner", &serde_json::json!({"id": 1})).unwrap();
        fields.value("gone", &Option::<i32>::None).unwrap();
        assert_eq!(fields.to_urlencoded().unwrap(), "name=Rex+%26+co&age=3&tags=a&tags=b&owner=%7B%22id%22%3A1%7D");
    }

    #[test]
    fn text_is_read_back_by_the_field_type() {
        let mut fields = Fields::from_urlencoded(b"name=42&age=42&tags=1&tags=2&owner=%7B%22id%22%3A1%7D").unwrap();
        assert_eq!(fields.required::<String>("name").unwrap(), "42");
        assert_eq!(fields.required::<i64>("age").unwrap(), 42);
        assert_eq!(fields.list::<i32>("tags").unwrap(), vec![1, 2]);
        assert_eq!(fields.required::<Value>("owner").unwrap(), serde_json::json!("{\"id\":1}"));
        assert_eq!(fields.optional::<bool>("missing").unwrap(), None);
        assert_eq!(fields.list::<i32>("missing").unwrap(), Vec::<i32>::new());
        let err = fields.required::<i64>("missing").unwrap_err();
        assert_eq!((err.field.as_str(), err.reason), ("missing", "missing"));
    }

    #[test]
    fn a_bad_value_or_a_repeated_field_names_the_field() {
        let mut fields = Fields::from_urlencoded(b"age=old&n=1&n=2").unwrap();
        let err = fields.required::<i64>("age").unwrap_err();
        assert_eq!((err.field.as_str(), err.reason), ("age", "invalid_value"));
        let err = fields.required::<i64>("n").unwrap_err();
        assert_eq!((err.field.as_str(), err.reason), ("n", "duplicate"));
    }

    #[test]
    fn a_file_cannot_go_in_a_urlencoded_form() {
        let mut fields = Fields::new();
        fields.file("upload", &FilePart::new(&b"x"[..]));
        assert_eq!(fields.to_urlencoded().unwrap_err().field, "upload");
    }

    #[test]
    fn multipart_bodies_carry_names_file_names_and_types() {
        let mut fields = Fields::new();
        fields.value("purpose", "fine-tune").unwrap();
        fields.file("file", &FilePart::new(&b"\x00\x01"[..]).file_name("a\"b.bin").content_type("application/x-data"));
        let body = fields.to_multipart("XyZ");
        let expected = b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b.bin\"\r\nContent-Type: application/x-data\r\n\r\n\x00\x01\r\n\
--XyZ--\r\n";
        assert_eq!(&body[..], &expected[..]);
    }

    #[test]
    fn a_file_part_in_json_is_its_text() {
        let file = FilePart::new(&b"hello"[..]);
        assert_eq!(serde_json::to_string(&file).unwrap(), "\"hello\"");
        assert_eq!(serde_json::from_str::<FilePart>("\"hello\"").unwrap(), file);
        assert!(serde_json::to_string(&FilePart::new(&b"\xff"[..])).is_err());
    }
}
