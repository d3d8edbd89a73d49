//! Example values made up from schemas, for the curl examples and the
//! sample streams where the spec gives none.

use super::Ctx;
use crate::ir::{Shape, TypeDef, TypeKind};
use serde_json::Value;

impl Ctx<'_> {
    /// An example value for a shape: the spec's where it has one, otherwise
    /// made up from the schema (field examples, first enum value...).
    pub(super) fn example(&self, shape: &Shape, depth: usize) -> Value {
        if depth > 8 {
            return Value::Null;
        }
        match shape {
            Shape::Named(name) => match self.type_def(name) {
                Some(def) => self.type_example(def, depth),
                None => Value::Null,
            },
            Shape::String(s) => Value::String(
                match s.format.as_deref() {
                    Some("date-time") => "2025-01-15T10:30:00Z",
                    Some("date") => "2025-01-15",
                    Some("uuid") => "5f0c6c3e-8a4e-4b8e-9d47-1d3c2b7f9a10",
                    Some("uri") => "https://example.com/",
                    _ => "string",
                }
                .into(),
            ),
            Shape::Integer(i) => Value::from(i.minimum.unwrap_or(0).max(0).min(i.maximum.unwrap_or(i64::MAX))),
            Shape::Number(n) => {
                serde_json::Number::from_f64(n.minimum.unwrap_or(0.0)).map_or(Value::Null, Value::Number)
            }
            Shape::Boolean => Value::Bool(true),
            Shape::Array(a) => Value::Array(vec![self.example(&a.items, depth + 1)]),
            Shape::Map(_) => Value::Object(serde_json::Map::new()),
            Shape::Any => Value::Null,
            Shape::Binary => Value::String("@file.bin".into()),
        }
    }

    fn type_example(&self, def: &TypeDef, depth: usize) -> Value {
        if let Some(example) = &def.example {
            return example.clone();
        }
        match &def.kind {
            TypeKind::Struct(s) => Value::Object(
                s.fields
                    .iter()
                    .filter(|f| f.required || f.example.is_some())
                    .map(|f| {
                        let value = f.example.clone().unwrap_or_else(|| self.example(&f.shape, depth + 1));
                        (f.api_name.clone(), value)
                    })
                    .collect(),
            ),
            TypeKind::Enum(e) => e.variants.first().map_or(Value::Null, |v| Value::String(v.api_name.clone())),
            TypeKind::OneOf(o) => match o.variants.first() {
                Some(v) => self.example(&Shape::Named(v.type_name.clone()), depth + 1),
                None => Value::Null,
            },
            TypeKind::Alias(shape) => self.example(shape, depth + 1),
        }
    }
}
