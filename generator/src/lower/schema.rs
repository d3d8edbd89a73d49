//! Schemas to named types and shapes.
//!
//! Component schemas become named types under their own (sanitized) names.
//! Inline objects, enums and `oneOf`s get a name made from where they appear
//! (`AgentConfig` for the `config` property of `Agent`), as progenitor does,
//! so every struct and enum the emitters print has a name.

use super::Context;
use super::resolve::Resolver;
use crate::diagnostics::Pointer;
use crate::ir::{
    ArrayShape, Discriminator, EnumType, EnumVariant, Field, IntegerShape, NumberShape, OneOfType, OneOfVariant, Shape,
    StringShape, StructType, TypeDef, TypeKind,
};
use crate::naming::{Case, NameTable};
use openapiv3::{AdditionalProperties, OpenAPI, ReferenceOr, Schema, SchemaKind, Type};
use std::collections::{BTreeMap, BTreeSet};

/// Builds the named types: those of `components/schemas` and those
/// synthesized for inline schemas met while lowering operations.
pub(crate) struct TypeBuilder<'a> {
    doc: &'a OpenAPI,
    names: NameTable,
    /// Spec name of each component schema to its Rust name.
    component_names: BTreeMap<String, String>,
    types: BTreeMap<String, TypeDef>,
}

/// A lowered use of a schema: its shape and whether it admits `null`.
pub(crate) struct Lowered {
    pub(crate) shape: Shape,
    pub(crate) nullable: bool,
    pub(crate) description: Option<String>,
    pub(crate) default: Option<serde_json::Value>,
    pub(crate) example: Option<serde_json::Value>,
    pub(crate) deprecated: bool,
}

impl<'a> TypeBuilder<'a> {
    pub(crate) fn new(doc: &'a OpenAPI, _cx: &mut Context<'a>) -> Self {
        let mut names = NameTable::new();
        let mut component_names = BTreeMap::new();
        if let Some(components) = &doc.components {
            for name in components.schemas.keys() {
                component_names.insert(name.clone(), names.unique(name, Case::UpperCamel));
            }
        }
        TypeBuilder { doc, names, component_names, types: BTreeMap::new() }
    }

    /// The kind of a named type lowered so far.
    pub(crate) fn kind_of(&self, name: &str) -> Option<&TypeKind> {
        self.types.get(name).map(|t| &t.kind)
    }

    /// Whether a struct has a binary property (a file), directly or as the
    /// items of an array.
    pub(crate) fn has_binary_field(&self, name: &str) -> bool {
        let Some(TypeKind::Struct(s)) = self.kind_of(name) else { return false };
        s.fields.iter().any(|f| match &f.shape {
            Shape::Binary => true,
            Shape::Array(a) => matches!(*a.items, Shape::Binary),
            _ => false,
        })
    }

    /// Lowers every component schema, in spec order.
    pub(crate) fn lower_components(&mut self, cx: &mut Context<'_>) {
        let Some(components) = &self.doc.components else { return };
        let base = Pointer::root().push("components").push("schemas");
        for (api_name, schema) in &components.schemas {
            let at = base.push(api_name);
            let name = self.component_names[api_name].clone();
            let def = match schema {
                ReferenceOr::Reference { reference } => match self.named_ref(reference, &at) {
                    Ok(target) => TypeDef {
                        name: name.clone(),
                        api_name: api_name.clone(),
                        pointer: at.to_string(),
                        description: None,
                        example: None,
                        nullable: false,
                        kind: TypeKind::Alias(Shape::Named(target)),
                    },
                    Err(d) => {
                        cx.errors.push(d);
                        continue;
                    }
                },
                ReferenceOr::Item(schema) => self.named_type(cx, name.clone(), api_name, schema, &at),
            };
            self.types.insert(name, def);
        }
    }

    /// The Rust name of the component a schema `$ref` names.
    fn named_ref(&self, reference: &str, at: &Pointer) -> Result<String, crate::diagnostics::Diagnostic> {
        let name = Resolver::ref_name(reference, "schemas", at)?;
        self.component_names
            .get(&name)
            .cloned()
            .ok_or_else(|| at.push("$ref").error(format!("`{reference}` points at a schema that does not exist")))
    }

    /// Whether a component schema admits `null` (following reference chains).
    fn component_nullable(&self, api_name: &str) -> bool {
        let mut current = api_name.to_owned();
        for _ in 0..32 {
            let Some(schema) = self.doc.components.as_ref().and_then(|c| c.schemas.get(&current)) else {
                return false;
            };
            match schema {
                ReferenceOr::Item(s) => return s.schema_data.nullable,
                ReferenceOr::Reference { reference } => match Pointer::parse_ref(reference) {
                    Some(segments) if segments.len() == 3 => current = segments[2].clone(),
                    _ => return false,
                },
            }
        }
        false
    }

    /// Lowers the use of a schema (a property, an item, a parameter, a body).
    /// `hint` names any type that has to be synthesized for an inline schema.
    pub(crate) fn lower_use(
        &mut self,
        cx: &mut Context<'_>,
        schema: &ReferenceOr<Schema>,
        at: &Pointer,
        hint: &str,
    ) -> Lowered {
        match schema {
            ReferenceOr::Reference { reference } => self.lower_ref(cx, reference, at),
            ReferenceOr::Item(s) => self.lower_inline(cx, s, at, hint),
        }
    }

    fn lower_use_boxed(
        &mut self,
        cx: &mut Context<'_>,
        schema: &ReferenceOr<Box<Schema>>,
        at: &Pointer,
        hint: &str,
    ) -> Lowered {
        match schema {
            ReferenceOr::Reference { reference } => self.lower_ref(cx, reference, at),
            ReferenceOr::Item(s) => self.lower_inline(cx, s, at, hint),
        }
    }

    fn lower_ref(&mut self, cx: &mut Context<'_>, reference: &str, at: &Pointer) -> Lowered {
        match self.named_ref(reference, at) {
            Ok(name) => {
                let api_name = Resolver::ref_name(reference, "schemas", at).unwrap_or_default();
                Lowered {
                    shape: Shape::Named(name),
                    nullable: self.component_nullable(&api_name),
                    description: None,
                    default: None,
                    example: None,
                    deprecated: false,
                }
            }
            Err(d) => {
                cx.errors.push(d);
                Lowered {
                    shape: Shape::Any,
                    nullable: false,
                    description: None,
                    default: None,
                    example: None,
                    deprecated: false,
                }
            }
        }
    }

    fn lower_inline(&mut self, cx: &mut Context<'_>, schema: &Schema, at: &Pointer, hint: &str) -> Lowered {
        if let Some(normalized) = normalize(cx, schema, at) {
            return self.lower_inline(cx, &normalized, at, hint);
        }
        let data = &schema.schema_data;
        let mut nullable = data.nullable;
        let shape = match classify(schema) {
            Class::Struct | Class::Enum | Class::OneOf | Class::MergedAllOf => {
                let name = self.names.unique(hint, Case::UpperCamel);
                let def = self.named_type(cx, name.clone(), hint, schema, at);
                nullable |= def.nullable;
                self.types.insert(name.clone(), def);
                Shape::Named(name)
            }
            Class::SingleAllOf(inner) => {
                let lowered = self.lower_use(cx, inner, &at.push("allOf").push(0), hint);
                nullable |= lowered.nullable;
                lowered.shape
            }
            Class::Shape => self.scalar_shape(cx, schema, at, hint),
            Class::Unsupported(reason) => {
                cx.error(at, reason);
                Shape::Any
            }
        };
        if let Some(default) = &data.default
            && let Some(problem) = default_mismatch(&shape, default)
        {
            cx.error(&at.push("default"), problem);
        }
        Lowered {
            shape,
            nullable,
            description: data.description.clone().filter(|d| !d.trim().is_empty()),
            default: data.default.clone(),
            example: data.example.clone(),
            deprecated: data.deprecated,
        }
    }

    /// Lowers a schema that needs no name of its own: strings, numbers,
    /// arrays, maps and free-form values.
    fn scalar_shape(&mut self, cx: &mut Context<'_>, schema: &Schema, at: &Pointer, hint: &str) -> Shape {
        match &schema.schema_kind {
            SchemaKind::Type(Type::String(s))
                if matches!(s.format, openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::StringFormat::Binary)) =>
            {
                Shape::Binary
            }
            SchemaKind::Type(Type::String(s)) => {
                if let Some(p) = &s.pattern
                    && let Err(e) = regex::Regex::new(p)
                {
                    let reason = e.to_string().lines().last().unwrap_or("invalid").to_owned();
                    cx.error(&at.push("pattern"), format!("the pattern does not compile: {reason}"));
                }
                Shape::String(StringShape {
                    format: match &s.format {
                        openapiv3::VariantOrUnknownOrEmpty::Item(f) => Some(
                            serde_json::to_value(f)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                        ),
                        openapiv3::VariantOrUnknownOrEmpty::Unknown(f) => Some(f.clone()),
                        openapiv3::VariantOrUnknownOrEmpty::Empty => None,
                    },
                    min_length: s.min_length.map(|n| n as u64),
                    max_length: s.max_length.map(|n| n as u64),
                    pattern: s.pattern.clone(),
                })
            }
            SchemaKind::Type(Type::Integer(i)) => {
                if i.multiple_of.is_some() {
                    cx.error(&at.push("multipleOf"), "`multipleOf` is not supported yet");
                }
                let int32 =
                    matches!(i.format, openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::IntegerFormat::Int32));
                Shape::Integer(IntegerShape {
                    int32,
                    minimum: i.minimum.map(|m| if i.exclusive_minimum { m.saturating_add(1) } else { m }),
                    maximum: i.maximum.map(|m| if i.exclusive_maximum { m.saturating_sub(1) } else { m }),
                    allowed: i.enumeration.iter().flatten().copied().collect(),
                })
            }
            SchemaKind::Type(Type::Number(n)) => {
                if n.multiple_of.is_some() {
                    cx.error(&at.push("multipleOf"), "`multipleOf` is not supported yet");
                }
                if !n.enumeration.is_empty() {
                    cx.error(&at.push("enum"), "number enums are not supported yet");
                }
                Shape::Number(NumberShape {
                    minimum: n.minimum,
                    exclusive_minimum: n.exclusive_minimum,
                    maximum: n.maximum,
                    exclusive_maximum: n.exclusive_maximum,
                })
            }
            SchemaKind::Type(Type::Boolean(_)) => Shape::Boolean,
            SchemaKind::Type(Type::Array(a)) => {
                // No `items` means items of any kind, as in JSON Schema.
                let item = match &a.items {
                    Some(items) => self.lower_use_boxed(cx, items, &at.push("items"), &format!("{hint} item")).shape,
                    None => Shape::Any,
                };
                Shape::Array(ArrayShape {
                    items: Box::new(item),
                    min_items: a.min_items.map(|n| n as u64),
                    max_items: a.max_items.map(|n| n as u64),
                    unique: a.unique_items,
                })
            }
            SchemaKind::Type(Type::Object(o)) => self.map_shape(cx, o.additional_properties.as_ref(), at, hint),
            SchemaKind::Any(any) if any_is_empty(any) => Shape::Any,
            _ => {
                cx.error(at, "this combination of schema keywords is not supported");
                Shape::Any
            }
        }
    }

    fn map_shape(
        &mut self,
        cx: &mut Context<'_>,
        additional: Option<&AdditionalProperties>,
        at: &Pointer,
        hint: &str,
    ) -> Shape {
        match additional {
            None | Some(AdditionalProperties::Any(true)) => Shape::Map(Box::new(Shape::Any)),
            Some(AdditionalProperties::Any(false)) => Shape::Map(Box::new(Shape::Any)),
            Some(AdditionalProperties::Schema(s)) => {
                let value = self.lower_use(cx, s, &at.push("additionalProperties"), &format!("{hint} value"));
                Shape::Map(Box::new(value.shape))
            }
        }
    }

    /// Lowers a schema that gets a name: a component, or an inline object,
    /// enum or `oneOf`.
    fn named_type(
        &mut self,
        cx: &mut Context<'_>,
        name: String,
        api_name: &str,
        schema: &Schema,
        at: &Pointer,
    ) -> TypeDef {
        if let Some(normalized) = normalize(cx, schema, at) {
            return self.named_type(cx, name, api_name, &normalized, at);
        }
        let data = &schema.schema_data;
        let mut nullable = data.nullable;
        let kind = match classify(schema) {
            Class::Struct => TypeKind::Struct(self.struct_type(cx, &name, schema, at)),
            Class::MergedAllOf => TypeKind::Struct(self.merged_struct(cx, &name, schema, at)),
            Class::Enum => {
                let (variants, has_null) = self.enum_variants(cx, schema, at);
                nullable |= has_null;
                TypeKind::Enum(EnumType { variants })
            }
            Class::OneOf => TypeKind::OneOf(self.one_of(cx, &name, schema, at)),
            Class::SingleAllOf(inner) => {
                let lowered = self.lower_use(cx, inner, &at.push("allOf").push(0), &name);
                nullable |= lowered.nullable;
                TypeKind::Alias(lowered.shape)
            }
            Class::Shape => TypeKind::Alias(self.scalar_shape(cx, schema, at, &name)),
            Class::Unsupported(reason) => {
                cx.error(at, reason);
                TypeKind::Alias(Shape::Any)
            }
        };
        TypeDef {
            name,
            api_name: api_name.to_owned(),
            pointer: at.to_string(),
            description: data.description.clone().or_else(|| data.title.clone()),
            example: data.example.clone(),
            nullable,
            kind,
        }
    }

    fn struct_type(&mut self, cx: &mut Context<'_>, type_name: &str, schema: &Schema, at: &Pointer) -> StructType {
        let mut parts = ObjectParts::default();
        parts.add(cx, schema, at);
        self.build_struct(cx, type_name, parts)
    }

    /// `allOf` of several members: the properties of every member (a `$ref`
    /// to an object, an inline object, or another `allOf`), required where
    /// any member requires them. A property two members declare differently
    /// is a warning, and the later declaration wins (JSON Schema would
    /// require both; the generated types can hold only one).
    fn merged_struct(&mut self, cx: &mut Context<'_>, type_name: &str, schema: &Schema, at: &Pointer) -> StructType {
        let mut parts = ObjectParts::default();
        self.collect_all_of(cx, schema, at, &mut parts, 0);
        self.build_struct(cx, type_name, parts)
    }

    fn collect_all_of<'s>(
        &self,
        cx: &mut Context<'_>,
        schema: &'s Schema,
        at: &Pointer,
        parts: &mut ObjectParts<'s>,
        depth: usize,
    ) where
        'a: 's,
    {
        if depth > 32 {
            cx.error(at, "`allOf` members refer to each other in a loop");
            return;
        }
        let all_of = match &schema.schema_kind {
            SchemaKind::AllOf { all_of } => all_of,
            // `allOf` beside `properties`: the schema's own properties first.
            SchemaKind::Any(a) if !a.all_of.is_empty() => {
                parts.add(cx, schema, at);
                &a.all_of
            }
            _ => {
                match classify(schema) {
                    Class::Struct | Class::Shape if is_objectish(schema) => parts.add(cx, schema, at),
                    _ => cx
                        .error(at, "an `allOf` member must be an object (or another `allOf`) for the members to merge"),
                }
                return;
            }
        };
        for (i, member) in all_of.iter().enumerate() {
            let member_at = at.push("allOf").push(i);
            match member {
                ReferenceOr::Item(s) => self.collect_all_of(cx, s, &member_at, parts, depth + 1),
                ReferenceOr::Reference { reference } => match self.component_schema(reference) {
                    Some((target_at, target)) => self.collect_all_of(cx, target, &target_at, parts, depth + 1),
                    None => cx.error(
                        &member_at.push("$ref"),
                        format!("`{reference}` points at a schema that does not exist"),
                    ),
                },
            }
        }
    }

    /// The component schema a `$ref` names, following reference chains.
    fn component_schema(&self, reference: &str) -> Option<(Pointer, &'a Schema)> {
        let mut current = reference.to_owned();
        for _ in 0..32 {
            let segments = Pointer::parse_ref(&current)?;
            let [components, schemas, name] = segments.as_slice() else { return None };
            if components != "components" || schemas != "schemas" {
                return None;
            }
            match self.doc.components.as_ref()?.schemas.get(name)? {
                ReferenceOr::Item(s) => {
                    return Some((Pointer::root().push("components").push("schemas").push(name), s));
                }
                ReferenceOr::Reference { reference } => current = reference.clone(),
            }
        }
        None
    }

    fn build_struct(&mut self, cx: &mut Context<'_>, type_name: &str, parts: ObjectParts<'_>) -> StructType {
        for (r, at) in &parts.required {
            if !parts.index.contains_key(r) {
                cx.warn(at, format!("`{r}` is required but not among the properties; it is ignored"));
            }
        }
        // Reserve the name the emitters use for additional properties.
        let mut field_names = NameTable::with_reserved(["additional_properties"]);
        let mut fields = Vec::new();
        for (api_name, prop, prop_at) in &parts.properties {
            let lowered = self.lower_use_boxed(cx, prop, prop_at, &format!("{type_name} {api_name}"));
            fields.push(Field {
                name: field_names.unique(api_name, Case::Snake),
                api_name: api_name.clone(),
                description: lowered.description,
                shape: lowered.shape,
                required: parts.required_names.contains(api_name),
                nullable: lowered.nullable,
                default: lowered.default,
                example: lowered.example,
                deprecated: lowered.deprecated,
                boxed: false,
            });
        }
        let (additional, deny_unknown) = match parts.additional {
            None => (None, false),
            Some((AdditionalProperties::Any(false), _)) => (None, true),
            Some((AdditionalProperties::Any(true), _)) => (Some(Shape::Any), false),
            Some((AdditionalProperties::Schema(s), at)) => {
                let value = self.lower_use(cx, s, &at.push("additionalProperties"), &format!("{type_name} value"));
                (Some(value.shape), false)
            }
        };
        StructType { fields, additional, deny_unknown }
    }

    fn enum_variants(&mut self, cx: &mut Context<'_>, schema: &Schema, at: &Pointer) -> (Vec<EnumVariant>, bool) {
        let SchemaKind::Type(Type::String(s)) = &schema.schema_kind else {
            unreachable!("classify only returns Enum for string enums")
        };
        let mut names = NameTable::with_reserved(crate::emit::reserved_variant_names());
        let mut seen = BTreeSet::new();
        let mut has_null = false;
        let mut variants = Vec::new();
        for (i, value) in s.enumeration.iter().enumerate() {
            match value {
                None => has_null = true,
                Some(v) => {
                    if !seen.insert(v.clone()) {
                        cx.error(&at.push("enum").push(i), format!("`{v}` is listed twice"));
                        continue;
                    }
                    let name = if v.is_empty() {
                        names.unique("Empty", Case::UpperCamel)
                    } else {
                        names.unique(v, Case::UpperCamel)
                    };
                    variants.push(EnumVariant { name, api_name: v.clone() });
                }
            }
        }
        (variants, has_null)
    }

    /// The alternatives of a `oneOf` or `anyOf` (also beside `type: object`).
    /// An inline alternative gets a named type of its own: an object, enum
    /// or nested choice its synthesized type, anything else an alias named
    /// after its title or its kind.
    fn one_of(&mut self, cx: &mut Context<'_>, type_name: &str, schema: &Schema, at: &Pointer) -> OneOfType {
        let Some((alternatives, any_of)) = alternatives(schema) else {
            unreachable!("classify only returns OneOf for oneOf and anyOf")
        };
        let keyword = if any_of { "anyOf" } else { "oneOf" };
        // The client's catch-all for alternatives it does not know.
        let mut names = NameTable::with_reserved(crate::emit::reserved_variant_names());
        let mut variants = Vec::new();
        // For each variant: the component it references, if any, and the one
        // value its schema allows the discriminator property, if any.
        let mut tags: Vec<(Option<String>, Option<String>)> = Vec::new();
        let property = schema.schema_data.discriminator.as_ref().map(|d| d.property_name.as_str());
        for (i, alt) in alternatives.iter().enumerate() {
            let alt_at = at.push(keyword).push(i);
            match alt {
                ReferenceOr::Reference { reference } => match self.named_ref(reference, &alt_at) {
                    Ok(type_name) => {
                        let component = Resolver::ref_name(reference, "schemas", &alt_at).ok();
                        let value = property.and_then(|p| {
                            let target = self.doc.components.as_ref()?.schemas.get(component.as_deref()?)?;
                            self.single_value(target, p, 0)
                        });
                        tags.push((component, value));
                        variants.push(OneOfVariant { name: names.unique(&type_name, Case::UpperCamel), type_name })
                    }
                    Err(d) => cx.errors.push(d),
                },
                ReferenceOr::Item(alt) => {
                    let label = alt.schema_data.title.clone().unwrap_or_else(|| kind_label(alt).to_owned());
                    let hint = format!("{type_name} {label}");
                    let lowered = self.lower_inline(cx, alt, &alt_at, &hint);
                    let alt_type = match lowered.shape {
                        Shape::Named(n) => n,
                        shape => {
                            let name = self.names.unique(&hint, Case::UpperCamel);
                            let def = TypeDef {
                                name: name.clone(),
                                api_name: hint.clone(),
                                pointer: alt_at.to_string(),
                                description: alt.schema_data.description.clone(),
                                example: alt.schema_data.example.clone(),
                                nullable: lowered.nullable,
                                kind: TypeKind::Alias(shape),
                            };
                            self.types.insert(name.clone(), def);
                            name
                        }
                    };
                    let value = property.and_then(|p| self.single_value_of(alt, p, 0));
                    tags.push((None, value));
                    variants.push(OneOfVariant { name: names.unique(&label, Case::UpperCamel), type_name: alt_type });
                }
            }
        }
        if alternatives.is_empty() {
            cx.error(&at.push(keyword), format!("`{keyword}` needs at least one alternative"));
        }
        let discriminator = schema
            .schema_data
            .discriminator
            .as_ref()
            .map(|d| self.discriminator(cx, d, &variants, &tags, &at.push("discriminator")));
        OneOfType { variants, any_of, discriminator }
    }

    /// The values of a `discriminator` and the variants they select: the
    /// `mapping` (values to `$ref`s or schema names), then for each `$ref`
    /// alternative no mapping names the schema's name, as OpenAPI says, and
    /// the single value its schema allows the property (so a schema written
    /// `type: {enum: [cat]}` is found by `cat` too). A value that selects
    /// nothing or is given twice is reported.
    fn discriminator(
        &self,
        cx: &mut Context<'_>,
        d: &openapiv3::Discriminator,
        variants: &[OneOfVariant],
        tags: &[(Option<String>, Option<String>)],
        at: &Pointer,
    ) -> Discriminator {
        let mut mapping: Vec<(String, String)> = Vec::new();
        let mut mapped = BTreeSet::new();
        for (value, target) in &d.mapping {
            let value_at = at.push("mapping").push(value);
            let type_name = if target.starts_with('#') || target.contains('/') {
                match self.named_ref(target, &value_at) {
                    Ok(name) => Some(name),
                    Err(diagnostic) => {
                        cx.errors.push(diagnostic);
                        continue;
                    }
                }
            } else {
                self.component_names.get(target).cloned()
            };
            let Some(variant) = type_name.and_then(|t| variants.iter().find(|v| v.type_name == t)) else {
                cx.error(&value_at, format!("`{target}` is not one of the alternatives"));
                continue;
            };
            mapped.insert(variant.name.clone());
            mapping.push((value.clone(), variant.name.clone()));
        }
        for (variant, (component, single)) in variants.iter().zip(tags) {
            let mut implicit = Vec::new();
            if !mapped.contains(&variant.name)
                && let Some(component) = component
            {
                implicit.push(component.clone());
            }
            if let Some(single) = single {
                implicit.push(single.clone());
            }
            for value in implicit {
                if !mapping.iter().any(|(v, _)| *v == value) {
                    mapping.push((value, variant.name.clone()));
                }
            }
        }
        for variant in variants {
            if !mapping.iter().any(|(_, v)| *v == variant.name) {
                cx.warn(
                    at,
                    format!(
                        "no `{}` value selects the alternative `{}`: it is never decoded",
                        d.property_name, variant.type_name
                    ),
                );
            }
        }
        Discriminator { property: d.property_name.clone(), mapping }
    }

    /// The one string value a schema (or a `$ref` to one) allows `property`.
    fn single_value(&self, schema: &ReferenceOr<Schema>, property: &str, depth: usize) -> Option<String> {
        match schema {
            ReferenceOr::Item(s) => self.single_value_of(s, property, depth),
            ReferenceOr::Reference { reference } => {
                let name = Pointer::parse_ref(reference).filter(|s| s.len() == 3)?.pop()?;
                let target = self.doc.components.as_ref()?.schemas.get(&name)?;
                if depth > 8 { None } else { self.single_value(target, property, depth + 1) }
            }
        }
    }

    fn single_value_of(&self, schema: &Schema, property: &str, depth: usize) -> Option<String> {
        if depth > 8 {
            return None;
        }
        match &schema.schema_kind {
            SchemaKind::Type(Type::Object(o)) => {
                let p = o.properties.get(property)?;
                self.enum_single(&p.clone().unbox(), depth + 1)
            }
            SchemaKind::Any(a) => match a.properties.get(property) {
                Some(p) => self.enum_single(&p.clone().unbox(), depth + 1),
                None => a.all_of.iter().find_map(|m| self.single_value(m, property, depth + 1)),
            },
            SchemaKind::AllOf { all_of } => all_of.iter().find_map(|m| self.single_value(m, property, depth + 1)),
            _ => None,
        }
    }

    /// The value of a one-value string enum (or a `$ref` to one).
    fn enum_single(&self, schema: &ReferenceOr<Schema>, depth: usize) -> Option<String> {
        match schema {
            ReferenceOr::Item(s) => match &s.schema_kind {
                SchemaKind::Type(Type::String(st)) if st.enumeration.len() == 1 => st.enumeration[0].clone(),
                SchemaKind::Any(a) if a.enumeration.len() == 1 => a.enumeration[0].as_str().map(str::to_owned),
                _ => None,
            },
            ReferenceOr::Reference { reference } => {
                let name = Pointer::parse_ref(reference).filter(|s| s.len() == 3)?.pop()?;
                let target = self.doc.components.as_ref()?.schemas.get(&name)?;
                if depth > 8 { None } else { self.enum_single(target, depth + 1) }
            }
        }
    }

    /// Finishes the types: marks fields that must be boxed (their type
    /// contains the struct itself) and reports reference cycles that no
    /// struct breaks (an alias or `oneOf` that contains itself).
    pub(crate) fn finish(mut self, cx: &mut Context<'_>) -> BTreeMap<String, TypeDef> {
        // Both questions below are "does this type contain itself?", which
        // is "is it in a cycle of the containment graph?". The strongly
        // connected components answer it for every type at once, in linear
        // time and without recursion: asking each type with a search of its
        // own was quadratic in the number of schemas, and recursed once per
        // link of a `$ref` chain, which overflowed the stack on a few
        // thousand chained schemas (see generator/tests/robustness/regressions.rs).
        let names: Vec<String> = self.types.keys().cloned().collect();
        let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();

        let aliases = self.containment_graph(&index, true);
        let alias_components = strongly_connected_components(&aliases);
        let mut component_sizes = vec![0usize; names.len()];
        for &c in &alias_components {
            component_sizes[c] += 1;
        }
        for (i, name) in names.iter().enumerate() {
            // Reaching itself through aliases and oneOfs only is a type of
            // infinite size (or a loop of names); no Box can fix that.
            if aliases[i].contains(&i) || component_sizes[alias_components[i]] > 1 {
                let def = &self.types[name];
                cx.errors.push(crate::diagnostics::Diagnostic::new(
                    def.pointer.clone(),
                    format!("cyclic $ref: `{}` contains itself with no object in between", def.api_name),
                ));
            }
        }

        // A field is boxed when its type contains the struct again, that is
        // when the struct and the field's type share a component.
        let components = strongly_connected_components(&self.containment_graph(&index, false));
        for (i, name) in names.iter().enumerate() {
            if let Some(TypeDef { kind: TypeKind::Struct(s), .. }) = self.types.get_mut(name) {
                for field in &mut s.fields {
                    if let Shape::Named(t) = &field.shape
                        && index.get(t.as_str()).is_some_and(|&j| components[j] == components[i])
                    {
                        field.boxed = true;
                    }
                }
            }
        }
        self.types
    }

    /// Which types contain which by value (not through a Vec or a map): for
    /// each type, in `index` order, the indexes of the types it contains.
    /// With `only_aliases`, struct fields are not followed.
    fn containment_graph(&self, index: &BTreeMap<&str, usize>, only_aliases: bool) -> Vec<Vec<usize>> {
        self.types
            .values()
            .map(|def| {
                let next: Vec<&str> = match &def.kind {
                    TypeKind::Struct(s) if !only_aliases => s
                        .fields
                        .iter()
                        .filter_map(|f| if let Shape::Named(t) = &f.shape { Some(t.as_str()) } else { None })
                        .collect(),
                    TypeKind::Struct(_) => Vec::new(),
                    TypeKind::OneOf(o) => o.variants.iter().map(|v| v.type_name.as_str()).collect(),
                    TypeKind::Alias(Shape::Named(t)) => vec![t.as_str()],
                    _ => Vec::new(),
                };
                next.into_iter().filter_map(|n| index.get(n).copied()).collect()
            })
            .collect()
    }
}

/// Tarjan's strongly connected components of a graph given as successor
/// lists: a component number for each node, equal for two nodes exactly
/// when each reaches the other. Iterative, with an explicit stack, so that
/// the depth of the graph never becomes the depth of the call stack.
fn strongly_connected_components(edges: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let mut order = vec![UNSEEN; edges.len()];
    let mut low = vec![0; edges.len()];
    let mut on_stack = vec![false; edges.len()];
    let mut component = vec![UNSEEN; edges.len()];
    let mut stack = Vec::new();
    let (mut next_order, mut next_component) = (0, 0);
    for root in 0..edges.len() {
        if order[root] != UNSEEN {
            continue;
        }
        // Each entry is a node being visited and the position of the next
        // successor to look at.
        let mut work = vec![(root, 0)];
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&(v, next)) = work.last() {
            if let Some(&w) = edges[v].get(next) {
                work.last_mut().expect("work is not empty").1 += 1;
                if order[w] == UNSEEN {
                    order[w] = next_order;
                    low[w] = next_order;
                    next_order += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == order[v] {
                loop {
                    let w = stack.pop().expect("v is still on the stack");
                    on_stack[w] = false;
                    component[w] = next_component;
                    if w == v {
                        break;
                    }
                }
                next_component += 1;
            }
        }
    }
    component
}

enum Class<'s> {
    Struct,
    Enum,
    OneOf,
    SingleAllOf(&'s ReferenceOr<Schema>),
    /// `allOf` of several objects: one struct with every member's properties.
    MergedAllOf,
    Shape,
    Unsupported(String),
}

fn classify(schema: &Schema) -> Class<'_> {
    match &schema.schema_kind {
        SchemaKind::Type(Type::Object(o)) if !o.properties.is_empty() => Class::Struct,
        SchemaKind::Type(Type::Object(o))
            if matches!(o.additional_properties, Some(AdditionalProperties::Any(false))) =>
        {
            Class::Struct
        }
        SchemaKind::Type(Type::String(s)) if !s.enumeration.is_empty() => Class::Enum,
        SchemaKind::Type(Type::Boolean(b)) if !b.enumeration.is_empty() => {
            Class::Unsupported("boolean enums are not supported yet".into())
        }
        SchemaKind::Type(_) => Class::Shape,
        SchemaKind::OneOf { .. } => Class::OneOf,
        SchemaKind::AllOf { all_of } if all_of.len() == 1 => Class::SingleAllOf(&all_of[0]),
        // One member that says what the value is, beside members that only
        // annotate it (a description, `nullable`): that member.
        SchemaKind::AllOf { all_of } if all_of.iter().filter(|m| !is_annotation(m)).count() == 1 => {
            Class::SingleAllOf(all_of.iter().find(|m| !is_annotation(m)).expect("counted one"))
        }
        SchemaKind::AllOf { .. } => Class::MergedAllOf,
        SchemaKind::AnyOf { .. } => Class::OneOf,
        SchemaKind::Not { .. } => Class::Unsupported("`not` is not supported".into()),
        // `type: object` (or none) beside a choice or a merge: the choice or
        // the merge decides.
        SchemaKind::Any(any) if matches!(any.typ.as_deref(), None | Some("object")) && !any.all_of.is_empty() => {
            Class::MergedAllOf
        }
        SchemaKind::Any(any)
            if matches!(any.typ.as_deref(), None | Some("object"))
                && any.properties.is_empty()
                && (!any.one_of.is_empty() || !any.any_of.is_empty()) =>
        {
            Class::OneOf
        }
        SchemaKind::Any(any) if any.typ.as_deref() == Some("object") && !any.properties.is_empty() => Class::Struct,
        SchemaKind::Any(any) => match &any.typ {
            Some(t) => Class::Unsupported(format!(
                "unknown type `{t}`, or keywords that do not fit it; expected one of string, number, integer, boolean, array, object"
            )),
            None if !any.properties.is_empty() => Class::Struct,
            None if any_is_empty(any) => Class::Shape,
            None => Class::Unsupported("a schema without `type` must be empty (any value) or have `properties`".into()),
        },
    }
}

/// Whether a schema is an object (typed or not) whose properties can merge.
fn is_objectish(schema: &Schema) -> bool {
    matches!(&schema.schema_kind, SchemaKind::Type(Type::Object(_)))
        || matches!(&schema.schema_kind, SchemaKind::Any(a) if a.typ.is_none() && (!a.properties.is_empty() || any_is_empty(a)))
}

/// The properties, required names and extra-properties rule of an object,
/// gathered from one schema or from every member of an `allOf`.
#[derive(Default)]
struct ObjectParts<'s> {
    properties: Vec<(String, &'s ReferenceOr<Box<Schema>>, Pointer)>,
    /// Where each property is in `properties` (objects with thousands of
    /// properties exist; a scan per property would be quadratic).
    index: BTreeMap<String, usize>,
    required: Vec<(String, Pointer)>,
    required_names: BTreeSet<String>,
    additional: Option<(&'s AdditionalProperties, Pointer)>,
}

impl<'s> ObjectParts<'s> {
    fn add(&mut self, cx: &mut Context<'_>, schema: &'s Schema, at: &Pointer) {
        let (properties, required, additional) = match &schema.schema_kind {
            SchemaKind::Type(Type::Object(o)) => (&o.properties, &o.required, o.additional_properties.as_ref()),
            SchemaKind::Any(a) => {
                for (keyword, present) in [("oneOf", !a.one_of.is_empty()), ("anyOf", !a.any_of.is_empty())] {
                    if present {
                        cx.warn(
                            &at.push(keyword),
                            format!("`{keyword}` beside `properties` is not checked; the properties make the type"),
                        );
                    }
                }
                (&a.properties, &a.required, a.additional_properties.as_ref())
            }
            _ => return,
        };
        for (name, prop) in properties {
            let prop_at = at.push("properties").push(name);
            match self.index.get(name).map(|&i| &mut self.properties[i]) {
                Some(existing) if existing.1 == prop => {}
                Some(existing) => {
                    cx.warn(
                        &prop_at,
                        format!("`{name}` is also declared differently at {}; this declaration is used", existing.2),
                    );
                    existing.1 = prop;
                    existing.2 = prop_at;
                }
                None => {
                    self.index.insert(name.clone(), self.properties.len());
                    self.properties.push((name.clone(), prop, prop_at));
                }
            }
        }
        for r in required {
            if self.required_names.insert(r.clone()) {
                self.required.push((r.clone(), at.push("required")));
            }
        }
        if let Some(a) = additional {
            self.additional = Some((a, at.clone()));
        }
    }
}

/// Keywords that apply to every schema, whatever its type.
const COMMON_KEYWORDS: &[&str] = &[
    "type",
    "title",
    "description",
    "default",
    "example",
    "examples",
    "nullable",
    "deprecated",
    "readOnly",
    "writeOnly",
    "externalDocs",
    "xml",
    "discriminator",
    "enum",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
];

/// The keywords that apply to each type.
fn type_keywords(typ: &str) -> Option<&'static [&'static str]> {
    Some(match typ {
        "object" => &["properties", "required", "additionalProperties", "minProperties", "maxProperties"],
        "array" => &["items", "minItems", "maxItems", "uniqueItems"],
        "string" => &["format", "pattern", "minLength", "maxLength"],
        "integer" | "number" => &["format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"],
        "boolean" => &[],
        _ => return None,
    })
}

/// An `allOf` member that constrains nothing (only a description, a
/// default, `nullable`...).
fn is_annotation(member: &ReferenceOr<Schema>) -> bool {
    matches!(member, ReferenceOr::Item(s) if matches!(&s.schema_kind, SchemaKind::Any(a) if any_is_empty(a)))
}

fn is_null_type(schema: &ReferenceOr<Schema>) -> bool {
    matches!(schema, ReferenceOr::Item(s) if matches!(&s.schema_kind, SchemaKind::Any(a) if a.typ.as_deref() == Some("null")))
}

/// Rewrites the shapes real 3.0 specs write that the lowering would
/// otherwise refuse, into the form that says the same:
/// - a `oneOf`/`anyOf` with a `{type: "null"}` alternative (3.1 style in a
///   3.0 document) is the other alternatives, nullable;
/// - a typed schema with keywords of another type (`type: array` with
///   `required`, `type: object` with `format`) is that type, and the
///   foreign keywords are ignored with a warning.
///
/// `None` when the schema needs no rewriting.
fn normalize(cx: &mut Context<'_>, schema: &Schema, at: &Pointer) -> Option<Schema> {
    if let Some((alternatives, any_of)) = alternatives(schema)
        && alternatives.iter().any(is_null_type)
    {
        let keyword = if any_of { "anyOf" } else { "oneOf" };
        let rest: Vec<&ReferenceOr<Schema>> = alternatives.iter().filter(|a| !is_null_type(a)).collect();
        let mut value = serde_json::to_value(schema).ok()?;
        let map = value.as_object_mut()?;
        map.remove(keyword);
        map.insert("nullable".into(), serde_json::Value::Bool(true));
        match rest.as_slice() {
            [] => {}
            [ReferenceOr::Reference { reference }] => {
                map.insert("allOf".into(), serde_json::json!([{ "$ref": reference }]));
            }
            [ReferenceOr::Item(only)] => {
                // The one alternative, with the outer description and nullable.
                let mut inner = serde_json::to_value(only).ok()?;
                let inner_map = inner.as_object_mut()?;
                for (k, v) in map.iter() {
                    if k != "type" || !inner_map.contains_key("type") {
                        inner_map.entry(k.clone()).or_insert(v.clone());
                    }
                }
                inner_map.insert("nullable".into(), serde_json::Value::Bool(true));
                return serde_json::from_value(inner).ok();
            }
            many => {
                map.insert(keyword.into(), serde_json::to_value(many).ok()?);
            }
        }
        return serde_json::from_value(value).ok();
    }
    let SchemaKind::Any(any) = &schema.schema_kind else { return None };
    // No `type`, but keywords of exactly one type: that type (`items`
    // alone is an array, `additionalProperties` alone an object).
    if any.typ.is_none() && any.one_of.is_empty() && any.any_of.is_empty() && any.all_of.is_empty() && any.not.is_none()
    {
        let mut value = serde_json::to_value(schema).ok()?;
        let map = value.as_object_mut()?;
        let kinds: Vec<&str> = ["object", "array", "string", "number"]
            .into_iter()
            .filter(|t| type_keywords(t).is_some_and(|own| own.iter().any(|k| *k != "format" && map.contains_key(*k))))
            .collect();
        if let [only] = kinds.as_slice() {
            map.insert("type".into(), serde_json::Value::String((*only).to_owned()));
            let normalized: Schema = serde_json::from_value(value).ok()?;
            return matches!(normalized.schema_kind, SchemaKind::Type(_)).then_some(normalized);
        }
        return None;
    }
    let typ = any.typ.as_deref()?;
    let own = type_keywords(typ)?;
    // `type: object` beside a choice or merge is handled by `classify`.
    if typ == "object"
        && (!any.one_of.is_empty() || !any.any_of.is_empty() || !any.all_of.is_empty())
        && any.properties.is_empty()
    {
        return None;
    }
    let mut value = serde_json::to_value(schema).ok()?;
    let map = value.as_object_mut()?;
    let foreign: Vec<String> = map
        .keys()
        .filter(|k| !k.starts_with("x-") && !COMMON_KEYWORDS.contains(&k.as_str()) && !own.contains(&k.as_str()))
        .cloned()
        .collect();
    if foreign.is_empty() {
        return None;
    }
    for k in &foreign {
        map.remove(k);
    }
    let list: Vec<String> = foreign.iter().map(|k| format!("`{k}`")).collect();
    let (verb, state) = if foreign.len() == 1 { ("does", "is") } else { ("do", "are") };
    cx.warn(at, format!("{} {verb} not apply to `type: {typ}` and {state} ignored", list.join(", ")));
    let normalized: Schema = serde_json::from_value(value).ok()?;
    // Guard against a rewrite that still does not classify, which would loop.
    matches!(normalized.schema_kind, SchemaKind::Type(_)).then_some(normalized)
}

/// The alternatives of a choice, and whether it is an `anyOf`.
fn alternatives(schema: &Schema) -> Option<(&[ReferenceOr<Schema>], bool)> {
    match &schema.schema_kind {
        SchemaKind::OneOf { one_of } => Some((one_of, false)),
        SchemaKind::AnyOf { any_of } => Some((any_of, true)),
        SchemaKind::Any(a) if !a.one_of.is_empty() => Some((&a.one_of, false)),
        SchemaKind::Any(a) if !a.any_of.is_empty() => Some((&a.any_of, true)),
        _ => None,
    }
}

/// A word for an inline alternative without a title: its kind.
fn kind_label(schema: &Schema) -> &'static str {
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(s)) if !s.enumeration.is_empty() => "Enum",
        SchemaKind::Type(Type::String(_)) => "String",
        SchemaKind::Type(Type::Integer(_)) => "Integer",
        SchemaKind::Type(Type::Number(_)) => "Number",
        SchemaKind::Type(Type::Boolean(_)) => "Boolean",
        SchemaKind::Type(Type::Array(_)) => "Array",
        SchemaKind::Type(Type::Object(_)) => "Object",
        SchemaKind::OneOf { .. } | SchemaKind::AnyOf { .. } => "Choice",
        _ => "Value",
    }
}

fn any_is_empty(any: &openapiv3::AnySchema) -> bool {
    any.typ.is_none()
        && any.pattern.is_none()
        && any.multiple_of.is_none()
        && any.minimum.is_none()
        && any.maximum.is_none()
        && any.properties.is_empty()
        && any.required.is_empty()
        && any.additional_properties.is_none()
        && any.items.is_none()
        && any.enumeration.is_empty()
        && any.format.is_none()
        && any.min_length.is_none()
        && any.max_length.is_none()
        && any.one_of.is_empty()
        && any.all_of.is_empty()
        && any.any_of.is_empty()
        && any.not.is_none()
        && any.min_items.is_none()
        && any.max_items.is_none()
}

/// Why `default` cannot be a value of `shape`, if it cannot: the emitters
/// write defaults as Rust literals, so one of the wrong type (or an integer
/// beyond 64 bits) would otherwise be silently replaced.
fn default_mismatch(shape: &Shape, default: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let expected = match (shape, default) {
        (Shape::Integer(_), Value::Number(n)) if n.is_i64() => return None,
        (Shape::Integer(_), _) => "an integer that fits in 64 bits",
        (Shape::Number(_), Value::Number(_)) => return None,
        (Shape::Number(_), _) => "a number",
        (Shape::Boolean, Value::Bool(_)) => return None,
        (Shape::Boolean, _) => "`true` or `false`",
        (Shape::String(_), Value::String(_)) => return None,
        (Shape::String(_), _) => "a string",
        _ => return None,
    };
    Some(format!("the default {default} does not fit the schema: expected {expected}"))
}
