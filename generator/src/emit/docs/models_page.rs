//! The models page: every named type, its fields or values, and where it
//! is used.

use super::markdown::{block, cell, code, constraints, first_sentence, pretty_json, status_code, value_code, yes_no};
use super::{Ctx, MODELS, nav};
use crate::ir::{Api, Field, Operation, ResponseBody, Shape, StructType, TypeDef, TypeKind};
use askama::Template;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Template)]
#[template(path = "docs/models.md", escape = "none")]
pub(super) struct ModelsView {
    nav: String,
    summary: Vec<ModelRow>,
    models: Vec<ModelView>,
}

struct ModelRow {
    link: String,
    kind: String,
    description: String,
}

struct ModelView {
    anchor: String,
    title: String,
    kind: String,
    inline_at: Option<String>,
    description: Option<String>,
    nullable: bool,
    fields: Vec<FieldRow>,
    extra: Option<String>,
    values: Option<String>,
    variants: Vec<String>,
    /// The discriminator property, as code, when the variants are chosen by it.
    discriminator: Option<String>,
    alias: Option<String>,
    example: Option<String>,
    used_by: Vec<String>,
    referenced_by: Vec<String>,
}

struct FieldRow {
    name: String,
    ty: String,
    required: String,
    nullable: String,
    constraints: String,
    description: String,
}

fn kind_name(cx: &Ctx<'_>, def: &TypeDef) -> String {
    match &def.kind {
        TypeKind::Struct(_) => "object".into(),
        TypeKind::Enum(_) => "string enum".into(),
        TypeKind::OneOf(_) => "one of".into(),
        TypeKind::Alias(shape) => cx.shape(shape, MODELS),
    }
}

/// The named types a type refers to directly.
fn references(def: &TypeDef) -> Vec<&str> {
    let mut out = Vec::new();
    match &def.kind {
        TypeKind::Struct(s) => {
            for f in &s.fields {
                Ctx::named_in(&f.shape, &mut out);
            }
            if let Some(extra) = &s.additional {
                Ctx::named_in(extra, &mut out);
            }
        }
        TypeKind::OneOf(o) => out.extend(o.variants.iter().map(|v| v.type_name.as_str())),
        TypeKind::Alias(shape) => Ctx::named_in(shape, &mut out),
        TypeKind::Enum(_) => {}
    }
    out
}

/// Where each type is used by operations: type name to (operation, roles)
/// for requests, success responses, parameters and events, and to the
/// operations whose error responses use it.
struct Uses<'a> {
    direct: BTreeMap<&'a str, Vec<(&'a Operation, Vec<String>)>>,
    errors: BTreeMap<&'a str, Vec<&'a Operation>>,
}

fn uses(api: &Api) -> Uses<'_> {
    fn add<'s>(shape: &'s Shape, role: String, roles: &mut Vec<(&'s str, String)>) {
        let mut named = Vec::new();
        Ctx::named_in(shape, &mut named);
        roles.extend(named.into_iter().map(|n| (n, role.clone())));
    }
    let mut direct: BTreeMap<&str, Vec<(&Operation, Vec<String>)>> = BTreeMap::new();
    let mut errors: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &api.operations {
        let mut roles: Vec<(&str, String)> = Vec::new();
        for p in &op.parameters {
            add(&p.shape, format!("parameter {}", code(&p.api_name)), &mut roles);
        }
        for c in op.body.iter().flat_map(|b| &b.contents) {
            add(&c.shape, "request body".into(), &mut roles);
        }
        let mut error_types: Vec<&str> = Vec::new();
        for r in &op.responses {
            match &r.body {
                Some(ResponseBody::Json { shape, .. }) if r.status.is_success() => {
                    add(shape, format!("response {}", status_code(r.status)), &mut roles)
                }
                Some(ResponseBody::Json { shape, .. }) => Ctx::named_in(shape, &mut error_types),
                Some(ResponseBody::EventStream(s)) => {
                    add(&s.frame, format!("stream response {}", status_code(r.status)), &mut roles);
                    for e in &s.events {
                        add(&e.data, format!("event {}", code(&e.api_name)), &mut roles);
                    }
                }
                Some(ResponseBody::Text { .. } | ResponseBody::Binary { .. }) | None => {}
            }
        }
        let mut by_type: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (n, role) in roles {
            let list = by_type.entry(n).or_default();
            if !list.contains(&role) {
                list.push(role);
            }
        }
        for (n, list) in by_type {
            direct.entry(n).or_default().push((op, list));
        }
        error_types.sort_unstable();
        error_types.dedup();
        for n in error_types {
            errors.entry(n).or_default().push(op);
        }
    }
    Uses { direct, errors }
}

pub(super) fn models_page(cx: &Ctx<'_>) -> ModelsView {
    let uses = uses(cx.api);
    let mut referenced_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, def) in &cx.api.types {
        for target in references(def) {
            if target != name {
                referenced_by.entry(target).or_default().insert(name);
            }
        }
    }
    let summary = cx
        .api
        .types
        .iter()
        .map(|(name, def)| ModelRow {
            link: cx.model(name, MODELS),
            kind: cell(&kind_name(cx, def)),
            description: cell(&def.description.as_deref().map(first_sentence).unwrap_or_default()),
        })
        .collect();
    let models = cx
        .api
        .types
        .iter()
        .map(|(name, def)| {
            let mut used_by: Vec<String> = uses
                .direct
                .get(name.as_str())
                .map(|list| {
                    list.iter().map(|(op, roles)| format!("{} ({})", cx.op(op, MODELS), roles.join(", "))).collect()
                })
                .unwrap_or_default();
            if let Some(ops) = uses.errors.get(name.as_str()) {
                if ops.len() == cx.api.operations.len() {
                    used_by.push("the error responses of every operation".into());
                } else {
                    let links: Vec<String> = ops.iter().map(|op| cx.op(op, MODELS)).collect();
                    used_by.push(format!("the error responses of {}", links.join(", ")));
                }
            }
            let mut view = ModelView {
                anchor: cx.model_anchor[name.as_str()].clone(),
                title: def.api_name.clone(),
                kind: kind_name(cx, def),
                inline_at: is_inline(def).then(|| code(&def.pointer)),
                description: block(def.description.as_deref(), 3),
                nullable: def.nullable,
                fields: Vec::new(),
                extra: None,
                values: None,
                variants: Vec::new(),
                discriminator: None,
                alias: None,
                example: def.example.as_ref().filter(|_| !matches!(def.kind, TypeKind::Enum(_))).map(pretty_json),
                used_by,
                referenced_by: referenced_by
                    .get(name.as_str())
                    .map(|set| set.iter().map(|n| cx.model(n, MODELS)).collect())
                    .unwrap_or_default(),
            };
            match &def.kind {
                TypeKind::Struct(s) => {
                    view.fields = s.fields.iter().map(|f| field_row(cx, f)).collect();
                    view.extra = extra_properties(cx, s);
                }
                TypeKind::Enum(e) => {
                    view.values = Some(e.variants.iter().map(|v| code(&v.api_name)).collect::<Vec<_>>().join(", "));
                }
                TypeKind::OneOf(o) => {
                    view.variants = o
                        .variants
                        .iter()
                        .map(|v| {
                            let link = cx.model(&v.type_name, MODELS);
                            let values: Vec<String> = o
                                .discriminator
                                .iter()
                                .flat_map(|d| &d.mapping)
                                .filter(|(_, variant)| *variant == v.name)
                                .map(|(value, _)| code(value))
                                .collect();
                            if values.is_empty() { link } else { format!("{link}: {}", values.join(", ")) }
                        })
                        .collect();
                    view.discriminator = o.discriminator.as_ref().map(|d| code(&d.property));
                }
                TypeKind::Alias(shape) => {
                    let limits = constraints(shape);
                    view.alias = Some(if limits.is_empty() {
                        cx.shape(shape, MODELS)
                    } else {
                        format!("{} ({})", cx.shape(shape, MODELS), limits.join(", "))
                    });
                }
            }
            view
        })
        .collect();
    ModelsView { nav: nav(cx, MODELS), summary, models }
}

/// Whether a type was made for an inline schema rather than named in
/// `components/schemas`.
fn is_inline(def: &TypeDef) -> bool {
    match def.pointer.trim_start_matches('#').strip_prefix("/components/schemas/") {
        Some(rest) => rest.contains('/'),
        None => true,
    }
}

fn field_row(cx: &Ctx<'_>, f: &Field) -> FieldRow {
    let mut description = cx.field_description(f);
    if let Some(default) = &f.default {
        description = format!("{} Default: {}.", description.trim(), value_code(default));
    }
    if f.deprecated {
        description = format!("**Deprecated.** {description}");
    }
    let limits = constraints(&f.shape);
    FieldRow {
        name: code(&f.api_name),
        ty: cell(&cx.shape(&f.shape, MODELS)),
        required: yes_no(f.required).to_owned(),
        nullable: yes_no(f.nullable).to_owned(),
        constraints: if limits.is_empty() { "—".to_owned() } else { cell(&limits.join(", ")) },
        description: cell(&description),
    }
}

fn extra_properties(cx: &Ctx<'_>, s: &StructType) -> Option<String> {
    match (&s.additional, s.deny_unknown) {
        (_, true) => Some("Any other property is rejected (`additionalProperties: false`).".into()),
        (Some(Shape::Any), false) => Some("Other properties are allowed, with any JSON value, and kept.".into()),
        (Some(shape), false) => Some(format!("Other properties are allowed, each a {}.", cx.shape(shape, MODELS))),
        (None, false) => None,
    }
}
