//! Paths and operations to IR operations: parameters merged and checked
//! against the path template, bodies and responses resolved, security
//! applied, paged lists recognized.

use super::Context;
use super::schema::TypeBuilder;
use crate::diagnostics::Pointer;
use crate::ir::{
    BodyContent, Encoding, EventStream, Header, Link, Method, ObjectStyle, Operation, Pagination, ParamLocation,
    Parameter, PathSegment, RequestBody, Response, ResponseBody, Shape, SseEvent, StatusCode, TypeKind,
};
use crate::naming::{Case, NameTable, sanitize};
use openapiv3::{OpenAPI, ParameterSchemaOrContent, ReferenceOr};
use std::collections::{BTreeMap, BTreeSet};

/// Request headers the HTTP layer owns; OpenAPI says parameters with these
/// names are ignored.
const IGNORED_HEADERS: &[&str] = &["accept", "content-type", "authorization"];

pub(crate) fn lower_operations<'a>(
    doc: &'a OpenAPI,
    types: &mut TypeBuilder<'a>,
    cx: &mut Context<'a>,
) -> Vec<Operation> {
    let mut out = Vec::new();
    let mut method_names = NameTable::with_reserved(crate::emit::reserved_method_names());
    // Derived operationIds must not take a name the spec gives explicitly.
    let declared_ids: BTreeSet<String> = doc
        .paths
        .paths
        .values()
        .filter_map(|item| item.as_item())
        .flat_map(|item| [&item.get, &item.put, &item.post, &item.delete, &item.patch])
        .filter_map(|op| op.as_ref()?.operation_id.clone())
        .collect();
    let mut prefixes = NameTable::new();
    let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut link_sites = Vec::new();
    let paths_at = Pointer::root().push("paths");
    for (path, item) in &doc.paths.paths {
        let path_at = paths_at.push(path);
        let item = match item {
            ReferenceOr::Item(i) => i,
            ReferenceOr::Reference { .. } => {
                cx.error(&path_at, "a path item given as a $ref is not supported; write it inline");
                continue;
            }
        };
        if !path.starts_with('/') {
            cx.error(&path_at, "paths must start with `/`");
            continue;
        }
        for (m, op) in [("head", &item.head), ("options", &item.options), ("trace", &item.trace)] {
            if op.is_some() {
                cx.error(&path_at.push(m), format!("`{m}` operations are not supported"));
            }
        }
        for (method, key, op) in item_operations(item) {
            let at = path_at.push(key);
            let id = match &op.operation_id {
                Some(id) => id.clone(),
                None => {
                    let derived = derived_operation_id(key, path, &declared_ids);
                    cx.warn(&at, format!("no `operationId`; `{derived}` (from the method and path) is used"));
                    derived
                }
            };
            if let Some(first) = seen_ids.get(&id) {
                cx.error(&at.push("operationId"), format!("duplicate operationId `{id}` (first used at {first})"));
                continue;
            }
            seen_ids.insert(id.clone(), at.to_string());
            let name = method_names.unique(&id, Case::Snake);
            let type_prefix = prefixes.unique(&id, Case::UpperCamel);
            let callbacks = lower_callbacks(doc, types, cx, &mut link_sites, op, &at, &type_prefix);
            let lowered = OperationLowering {
                doc,
                types,
                cx,
                link_sites: &mut link_sites,
                at: &at,
                path_at: &path_at,
                type_prefix: &type_prefix,
            }
            .lower(path, method, op, &item.parameters);
            if let Some((parameters, segments, body, responses, (secured, security))) = lowered {
                let pagination = pagination(&parameters, &responses, types);
                let sunset = op.extensions.get("x-sunset").and_then(|v| v.as_str()).map(str::to_owned);
                let deprecated_at = op.extensions.get("x-deprecated-at").and_then(|v| v.as_str()).map(str::to_owned);
                // The command-line emitter reads its own hints; they are kept
                // as written (by name without `x-cli-`) so lowering needs no
                // knowledge of them.
                let cli_hints = op
                    .extensions
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("x-cli-").map(|k| (k.to_owned(), v.clone())))
                    .collect();
                out.push(Operation {
                    id,
                    name,
                    type_prefix,
                    pointer: at.to_string(),
                    method,
                    path: path.clone(),
                    segments,
                    summary: op.summary.clone(),
                    description: op.description.clone(),
                    tags: op.tags.clone(),
                    deprecated: op.deprecated,
                    sunset,
                    deprecated_at,
                    parameters,
                    body,
                    responses,
                    secured,
                    security,
                    pagination,
                    callbacks,
                    cli_hints,
                });
            }
        }
    }
    check_links(&out, &seen_ids, &link_sites, cx);
    out
}

/// The callbacks of an operation: each request the API makes, with its
/// body and the answers it expects, typed like an operation's (types are
/// named `<Operation><Callback>...`).
fn lower_callbacks<'a>(
    doc: &'a OpenAPI,
    types: &mut TypeBuilder<'a>,
    cx: &mut Context<'a>,
    link_sites: &mut Vec<LinkSite>,
    op: &'a openapiv3::Operation,
    at: &Pointer,
    type_prefix: &str,
) -> Vec<crate::ir::Callback> {
    let mut out = Vec::new();
    for (name, callback) in &op.callbacks {
        let cb_at = at.push("callbacks").push(name);
        for (expression, item) in callback {
            let item_at = cb_at.push(expression);
            out.extend(lower_hook(doc, types, cx, link_sites, name, expression, item, &item_at, type_prefix));
        }
    }
    out
}

/// The requests of one callback or webhook path item: the body the API
/// sends and the answers it expects, typed like an operation's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lower_hook<'a>(
    doc: &'a OpenAPI,
    types: &mut TypeBuilder<'a>,
    cx: &mut Context<'a>,
    link_sites: &mut Vec<LinkSite>,
    name: &str,
    expression: &str,
    item: &'a openapiv3::PathItem,
    item_at: &Pointer,
    type_prefix: &str,
) -> Vec<crate::ir::Callback> {
    let mut out = Vec::new();
    for (method, key, hook_op) in item_operations(item) {
        let op_at = item_at.push(key);
        let prefix = format!("{type_prefix} {name}");
        let mut lowering =
            OperationLowering { doc, types, cx, link_sites, at: &op_at, path_at: item_at, type_prefix: &prefix };
        let body = hook_op.request_body.as_ref().and_then(|b| lowering.request_body(b));
        let responses = lowering.responses(&hook_op.responses);
        out.push(crate::ir::Callback {
            name: name.to_owned(),
            expression: expression.to_owned(),
            method,
            pointer: op_at.to_string(),
            summary: hook_op.summary.clone(),
            description: hook_op.description.clone(),
            body,
            responses,
        });
    }
    out
}

/// The operations of a path item with their method and key, in a fixed
/// order (the methods the generator supports; `head`, `options` and
/// `trace` are reported by the caller).
fn item_operations(item: &openapiv3::PathItem) -> impl Iterator<Item = (Method, &'static str, &openapiv3::Operation)> {
    [
        (Method::Get, "get", &item.get),
        (Method::Put, "put", &item.put),
        (Method::Post, "post", &item.post),
        (Method::Delete, "delete", &item.delete),
        (Method::Patch, "patch", &item.patch),
    ]
    .into_iter()
    .filter_map(|(method, key, op)| op.as_ref().map(|op| (method, key, op)))
}

/// An operationId for an operation that has none, from its method and path
/// the way other generators derive one: `get /pets/{petId}/photos` gives
/// `getPetsByPetIdPhotos`. A clash with a declared id gets a number.
fn derived_operation_id(method: &str, path: &str, declared: &BTreeSet<String>) -> String {
    let mut id = method.to_owned();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let (prefix, word) = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => ("By", param),
            None => ("", segment),
        };
        id.push_str(prefix);
        id.push_str(&sanitize(word, Case::UpperCamel));
    }
    let mut candidate = id.clone();
    let mut n = 2;
    while declared.contains(&candidate) {
        candidate = format!("{id}{n}");
        n += 1;
    }
    candidate
}

/// Where a link was defined: its target `operationId`, the parameter names
/// it fills, and its pointer.
type LinkSite = (String, Vec<String>, Pointer);

/// Checks that every link leads to an operation of the spec and fills only
/// parameters that operation has. Runs after all operations are lowered,
/// since a link may point at an operation defined further down.
fn check_links(ops: &[Operation], ids: &BTreeMap<String, String>, sites: &[LinkSite], cx: &mut Context<'_>) {
    for (target, params, at) in sites {
        if !ids.contains_key(target) {
            cx.error(
                &at.push("operationId"),
                format!("the link leads to `{target}`, which is not an operationId of the spec"),
            );
            continue;
        }
        // A target that failed to lower has its own diagnostics already.
        let Some(op) = ops.iter().find(|o| &o.id == target) else { continue };
        for name in params {
            // OpenAPI lets a name be qualified by its location: `path.agent_id`.
            let (location, bare) = match name.split_once('.') {
                Some((l, rest)) if ["path", "query", "header", "cookie"].contains(&l) => (Some(l), rest),
                _ => (None, name.as_str()),
            };
            let known = op.parameters.iter().filter(|p| location.is_none_or(|l| l == p.location.as_str())).any(|p| {
                p.api_name == bare || (p.location == ParamLocation::Header && p.api_name.eq_ignore_ascii_case(bare))
            });
            if !known {
                cx.error(
                    &at.push("parameters").push(name),
                    format!("`{target}` has no parameter `{name}` for this link to fill"),
                );
            }
        }
    }
}

type LoweredParts =
    (Vec<Parameter>, Vec<PathSegment>, Option<RequestBody>, Vec<Response>, (bool, Vec<crate::ir::SecurityRequirement>));

struct OperationLowering<'x, 'a> {
    doc: &'a OpenAPI,
    types: &'x mut TypeBuilder<'a>,
    cx: &'x mut Context<'a>,
    link_sites: &'x mut Vec<LinkSite>,
    at: &'x Pointer,
    path_at: &'x Pointer,
    type_prefix: &'x str,
}

impl<'a> OperationLowering<'_, 'a> {
    fn lower(
        mut self,
        path: &str,
        method: Method,
        op: &'a openapiv3::Operation,
        shared: &'a [ReferenceOr<openapiv3::Parameter>],
    ) -> Option<LoweredParts> {
        let errors_before = self.cx.errors.len();
        let segments = self.path_segments(path);
        let parameters = self.parameters(&segments, shared, &op.parameters);
        let body = op.request_body.as_ref().and_then(|b| self.request_body(b));
        if body.is_some() && matches!(method, Method::Get | Method::Delete) {
            self.cx.error(&self.at.push("requestBody"), "GET and DELETE operations cannot have a request body");
        }
        let responses = self.responses(&op.responses);
        let secured = self.secured(op);
        (self.cx.errors.len() == errors_before).then_some((parameters, segments, body, responses, secured))
    }

    fn path_segments(&mut self, path: &str) -> Vec<PathSegment> {
        let mut segments = Vec::new();
        let mut rest = path;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(PathSegment::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                self.cx.error(&Pointer::root().push("paths").push(path), "unbalanced `{` in the path template");
                return segments;
            };
            segments.push(PathSegment::Param(rest[open + 1..open + close].to_owned()));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            segments.push(PathSegment::Literal(rest.to_owned()));
        }
        segments
    }

    fn parameters(
        &mut self,
        segments: &[PathSegment],
        shared: &'a [ReferenceOr<openapiv3::Parameter>],
        own: &'a [ReferenceOr<openapiv3::Parameter>],
    ) -> Vec<Parameter> {
        // Operation-level parameters override path-level ones with the same
        // name and location; duplicates within one list are errors.
        let mut merged: Vec<(&'a openapiv3::ParameterData, ParamLocation, Pointer)> = Vec::new();
        let mut deep_objects: BTreeSet<String> = BTreeSet::new();
        for (list, base) in [(shared, self.path_at.push("parameters")), (own, self.at.push("parameters"))] {
            let mut seen_here = BTreeSet::new();
            for (i, p) in list.iter().enumerate() {
                let at = base.push(i);
                let resolved = self.cx.resolver.resolve(p, "parameters", &at, |c| &c.parameters);
                let (param, def_at) = match resolved {
                    Ok(r) => r,
                    Err(d) => {
                        self.cx.errors.push(d);
                        continue;
                    }
                };
                let (data, location) = match param {
                    openapiv3::Parameter::Path { parameter_data, .. } => (parameter_data, ParamLocation::Path),
                    openapiv3::Parameter::Query { parameter_data, style, .. } => {
                        if matches!(style, openapiv3::QueryStyle::DeepObject) {
                            deep_objects.insert(parameter_data.name.clone());
                        } else {
                            deep_objects.remove(&parameter_data.name);
                        }
                        (parameter_data, ParamLocation::Query)
                    }
                    openapiv3::Parameter::Header { parameter_data, .. } => (parameter_data, ParamLocation::Header),
                    openapiv3::Parameter::Cookie { .. } => {
                        self.cx.error(&at, "cookie parameters are not supported");
                        continue;
                    }
                };
                let key = (location, data.name.to_ascii_lowercase());
                if !seen_here.insert(key.clone()) {
                    self.cx.error(&at, format!("duplicate {} parameter `{}`", location.as_str(), data.name));
                    continue;
                }
                merged.retain(|(d, l, _)| !(*l == key.0 && d.name.to_ascii_lowercase() == key.1));
                merged.push((data, location, def_at));
            }
        }

        let template_params: Vec<&str> = segments
            .iter()
            .filter_map(|s| if let PathSegment::Param(p) = s { Some(p.as_str()) } else { None })
            .collect();
        let undeclared: Vec<&str> = template_params
            .iter()
            .copied()
            .filter(|p| !merged.iter().any(|(d, l, _)| *l == ParamLocation::Path && d.name == *p))
            .collect();
        for p in &undeclared {
            self.cx.warn(
                self.at,
                format!("path parameter `{{{p}}}` is not declared in `parameters`; a required string is used"),
            );
        }

        let mut names = NameTable::with_reserved(crate::emit::reserved_param_names());
        let mut out = Vec::new();
        for (data, location, at) in merged {
            if location == ParamLocation::Header && IGNORED_HEADERS.contains(&data.name.to_ascii_lowercase().as_str()) {
                continue;
            }
            if location == ParamLocation::Path {
                if !template_params.contains(&data.name.as_str()) {
                    self.cx.warn(
                        &at,
                        format!("path parameter `{}` does not appear in the path template; it is left out", data.name),
                    );
                    continue;
                }
                if !data.required {
                    self.cx.error(&at.push("required"), "path parameters must be `required: true`");
                }
            }
            let schema = match &data.format {
                ParameterSchemaOrContent::Schema(s) => s,
                ParameterSchemaOrContent::Content(_) => {
                    self.cx.error(&at.push("content"), "parameters with `content` are not supported; use `schema`");
                    continue;
                }
            };
            let hint = format!("{} {}", self.type_prefix, data.name);
            let lowered = self.types.lower_use(self.cx, schema, &at.push("schema"), &hint);
            let is_object = |shape: &Shape| match shape {
                Shape::Named(n) => self.types_is_flat_struct(n) || self.map_of_scalars(shape),
                shape => self.map_of_scalars(shape),
            };
            let object_style = match &lowered.shape {
                shape if location == ParamLocation::Query && is_object(shape) => {
                    if deep_objects.contains(&data.name) {
                        Some(ObjectStyle::DeepObject)
                    } else if data.explode == Some(false) {
                        self.cx.error(
                            &at.push("explode"),
                            "object query parameters need `explode: true` (`key=value` pairs) or `style: deepObject`",
                        );
                        continue;
                    } else {
                        Some(ObjectStyle::Form)
                    }
                }
                _ => None,
            };
            if object_style.is_none() && !self.param_shape_ok(&lowered.shape, location) {
                self.cx.error(
                    &at.push("schema"),
                    "parameters must be strings, numbers, booleans or string enums (or arrays of those in the query)",
                );
                continue;
            }
            out.push(Parameter {
                name: names.unique(&data.name, Case::Snake),
                api_name: data.name.clone(),
                location,
                required: data.required,
                shape: lowered.shape,
                description: data.description.clone().filter(|d| !d.trim().is_empty()).or(lowered.description),
                default: lowered.default,
                example: data.example.clone().or(lowered.example),
                deprecated: data.deprecated.unwrap_or(false) || lowered.deprecated,
                object_style,
            });
        }
        for p in undeclared {
            out.push(Parameter {
                name: names.unique(p, Case::Snake),
                api_name: p.to_owned(),
                location: ParamLocation::Path,
                required: true,
                shape: Shape::String(Default::default()),
                description: None,
                default: None,
                example: None,
                deprecated: false,
                object_style: None,
            });
        }
        // Path parameters in template order, then query, then headers.
        out.sort_by_key(|p| (p.location, template_params.iter().position(|t| *t == p.api_name).unwrap_or(usize::MAX)));
        out
    }

    fn param_shape_ok(&self, shape: &Shape, location: ParamLocation) -> bool {
        match shape {
            Shape::String(_) | Shape::Integer(_) | Shape::Number(_) | Shape::Boolean => true,
            Shape::Named(n) => self.types_is_enum(n),
            Shape::Array(a) if location == ParamLocation::Query => {
                !matches!(*a.items, Shape::Array(_)) && self.param_shape_ok(&a.items, location)
            }
            _ => false,
        }
    }

    /// Whether a named type is an object whose properties are all scalars
    /// or string enums, none nullable and no others allowed beside them:
    /// what a query string can spread as `key=value` pairs.
    fn types_is_flat_struct(&self, name: &str) -> bool {
        let Some(TypeKind::Struct(s)) = self.types.kind_of(name) else { return false };
        s.additional.is_none()
            && !s.fields.is_empty()
            && s.fields.iter().all(|f| !f.nullable && self.param_shape_ok(&f.shape, ParamLocation::Header))
    }

    /// Whether a shape is a free-form object (possibly behind a named
    /// alias) whose values are scalars or string enums.
    fn map_of_scalars(&self, shape: &Shape) -> bool {
        let mut shape = shape;
        for _ in 0..8 {
            match shape {
                Shape::Named(n) => match self.types.kind_of(n) {
                    Some(TypeKind::Alias(inner)) => shape = inner,
                    _ => return false,
                },
                Shape::Map(value) => return self.param_shape_ok(value, ParamLocation::Header),
                _ => return false,
            }
        }
        false
    }

    fn types_is_enum(&self, name: &str) -> bool {
        self.types.kind_of(name).is_some_and(|k| matches!(k, TypeKind::Enum(_)))
    }

    fn request_body(&mut self, body: &'a ReferenceOr<openapiv3::RequestBody>) -> Option<RequestBody> {
        let at = self.at.push("requestBody");
        let (body, def_at) = match self.cx.resolver.resolve(body, "requestBodies", &at, |c| &c.request_bodies) {
            Ok(r) => r,
            Err(d) => {
                self.cx.errors.push(d);
                return None;
            }
        };
        if body.content.is_empty() {
            self.cx.error(&def_at.push("content"), "a request body needs at least one media type");
            return None;
        }
        let mut variants = NameTable::new();
        let mut contents = Vec::new();
        for (media, content) in &body.content {
            let media_at = def_at.push("content").push(media);
            let encoding = encoding_of(media);
            let hint = format!("{} Body", self.type_prefix);
            let lowered = content
                .schema
                .as_ref()
                .map(|schema| self.types.lower_use(self.cx, schema, &media_at.push("schema"), &hint));
            let shape = match encoding {
                Encoding::Text => Shape::String(Default::default()),
                Encoding::Binary => Shape::Binary,
                Encoding::Json => match &lowered {
                    Some(l) => l.shape.clone(),
                    None => {
                        self.cx.warn(&media_at, "the request body has no `schema`; any JSON value is accepted");
                        Shape::Any
                    }
                },
                Encoding::Form | Encoding::Multipart => {
                    let struct_name = match lowered.as_ref().map(|l| &l.shape) {
                        Some(Shape::Named(n)) if matches!(self.types.kind_of(n), Some(TypeKind::Struct(_))) => {
                            n.clone()
                        }
                        _ => {
                            self.cx.error(
                                &media_at.push("schema"),
                                format!("a `{media}` body needs an object schema with properties"),
                            );
                            continue;
                        }
                    };
                    if encoding == Encoding::Form && self.types.has_binary_field(&struct_name) {
                        self.cx.error(
                            &media_at.push("schema"),
                            "a property of `format: binary` (a file) needs `multipart/form-data`, not a urlencoded form",
                        );
                        continue;
                    }
                    Shape::Named(struct_name)
                }
            };
            let example = content
                .example
                .clone()
                .or_else(|| first_example(&content.examples))
                .or_else(|| lowered.and_then(|l| l.example));
            contents.push(BodyContent {
                media_type: media.clone(),
                encoding,
                shape,
                variant: variants.unique(&variant_name(media, encoding), Case::UpperCamel),
                example,
            });
        }
        if contents.is_empty() {
            return None;
        }
        let choice = (contents.len() > 1).then(|| format!("{}Body", self.type_prefix));
        Some(RequestBody { contents, choice, required: body.required, description: body.description.clone() })
    }

    fn responses(&mut self, responses: &'a openapiv3::Responses) -> Vec<Response> {
        let at = self.at.push("responses");
        let mut out = Vec::new();
        let entries = responses
            .responses
            .iter()
            .map(|(code, r)| {
                let status = match code {
                    openapiv3::StatusCode::Code(c) => StatusCode::Code(*c),
                    openapiv3::StatusCode::Range(r) => StatusCode::Range(*r),
                };
                (status, code.to_string(), r)
            })
            .chain(responses.default.iter().map(|r| (StatusCode::Default, "default".to_owned(), r)));
        for (status, key, response) in entries {
            let r_at = at.push(&key);
            let (response, def_at) = match self.cx.resolver.resolve(response, "responses", &r_at, |c| &c.responses) {
                Ok(r) => r,
                Err(d) => {
                    self.cx.errors.push(d);
                    continue;
                }
            };
            let headers = self.headers(&response.headers, &def_at);
            let body = self.response_body(response, &def_at, status);
            let links = self.links(&response.links, &def_at);
            out.push(Response { status, description: response.description.clone(), headers, body, links });
        }
        if !out.iter().any(|r| r.status.is_success()) {
            self.cx.error(&at, "the operation documents no 2xx response");
        }
        let streams = out.iter().filter(|r| matches!(r.body, Some(ResponseBody::EventStream(_)))).count();
        if streams > 0 && out.iter().filter(|r| r.status.is_success()).count() > 1 {
            self.cx.error(&at, "a streaming operation must have exactly one 2xx response");
        }
        out.sort_by_key(|r| r.status);
        out
    }

    fn headers(
        &mut self,
        headers: &'a indexmap::IndexMap<String, ReferenceOr<openapiv3::Header>>,
        at: &Pointer,
    ) -> Vec<Header> {
        let mut names = NameTable::new();
        let mut out = Vec::new();
        for (api_name, header) in headers {
            let h_at = at.push("headers").push(api_name);
            let (header, def_at) = match self.cx.resolver.resolve(header, "headers", &h_at, |c| &c.headers) {
                Ok(r) => r,
                Err(d) => {
                    self.cx.errors.push(d);
                    continue;
                }
            };
            let ParameterSchemaOrContent::Schema(schema) = &header.format else {
                self.cx.error(&def_at.push("content"), "headers with `content` are not supported; use `schema`");
                continue;
            };
            let lowered = self.types.lower_use(
                self.cx,
                schema,
                &def_at.push("schema"),
                &format!("{} {api_name}", self.type_prefix),
            );
            out.push(Header {
                name: names.unique(api_name, Case::Snake),
                api_name: api_name.clone(),
                description: header.description.clone().filter(|d| !d.trim().is_empty()),
                shape: lowered.shape,
                required: header.required,
            });
        }
        out.sort_by_key(|h| h.api_name.to_ascii_lowercase());
        out
    }

    /// The response's links. Their targets are checked once every
    /// operation is known, in [`check_links`].
    fn links(
        &mut self,
        links: &'a indexmap::IndexMap<String, ReferenceOr<openapiv3::Link>>,
        at: &Pointer,
    ) -> Vec<Link> {
        let mut out = Vec::new();
        for (name, link) in links {
            let l_at = at.push("links").push(name);
            let (link, def_at) = match self.cx.resolver.resolve(link, "links", &l_at, |c| &c.links) {
                Ok(r) => r,
                Err(d) => {
                    self.cx.errors.push(d);
                    continue;
                }
            };
            let operation_id = match &link.operation {
                openapiv3::LinkOperation::OperationId(id) => id.clone(),
                openapiv3::LinkOperation::OperationRef(_) => {
                    self.cx.error(
                        &def_at.push("operationRef"),
                        "links by `operationRef` are not supported; use `operationId`",
                    );
                    continue;
                }
            };
            self.link_sites.push((operation_id.clone(), link.parameters.keys().cloned().collect(), def_at));
            out.push(Link {
                name: name.clone(),
                operation_id,
                parameters: link.parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                description: link.description.clone(),
            });
        }
        out
    }

    fn response_body(
        &mut self,
        response: &'a openapiv3::Response,
        at: &Pointer,
        status: StatusCode,
    ) -> Option<ResponseBody> {
        // One media type is served and asked for: JSON if offered, else an
        // event stream, else text, else bytes. The others are named in a
        // warning, since neither side produces them.
        let rank = |media: &str| {
            let essence = crate::ir::media_essence(media);
            if is_json(&essence) {
                0
            } else if essence == "text/event-stream" {
                1
            } else if is_text(&essence) {
                2
            } else {
                3
            }
        };
        let (media, content) = response.content.iter().min_by_key(|(media, _)| rank(media))?;
        let media_at = at.push("content").push(media);
        if response.content.len() > 1 {
            let others: Vec<String> =
                response.content.keys().filter(|m| *m != media).map(|m| format!("`{m}`")).collect();
            self.cx.warn(
                &at.push("content"),
                format!(
                    "the response also offers {}; clients ask for `{media}` and servers send it",
                    others.join(", ")
                ),
            );
        }
        let hint = format!("{} Response {}", self.type_prefix, status.as_spec());
        match rank(media) {
            0 => {
                let example = content.example.clone().or_else(|| first_example(&content.examples));
                let Some(schema) = &content.schema else {
                    return Some(ResponseBody::Json { shape: Shape::Any, example });
                };
                let lowered = self.types.lower_use(self.cx, schema, &media_at.push("schema"), &hint);
                Some(ResponseBody::Json { shape: lowered.shape, example: example.or(lowered.example) })
            }
            1 => {
                let Some(schema) = &content.schema else {
                    self.cx.error(&media_at, "an event stream needs a `schema` for its events");
                    return None;
                };
                let frame =
                    self.types.lower_use(self.cx, schema, &media_at.push("schema"), &format!("{hint} Event")).shape;
                let events = self.sse_events(content, &media_at, &frame);
                Some(ResponseBody::EventStream(EventStream { frame, events }))
            }
            2 => Some(ResponseBody::Text { media_type: media.clone() }),
            _ => Some(ResponseBody::Binary { media_type: media.clone() }),
        }
    }

    fn sse_events(&mut self, content: &'a openapiv3::MediaType, at: &Pointer, frame: &Shape) -> Vec<SseEvent> {
        let ext_at = at.push("x-sse-events");
        let Some(value) = content.extensions.get("x-sse-events") else {
            // The schema describes the data of every event, whatever its name.
            return vec![SseEvent {
                terminal: false,
                failure: None,
                api_name: "message".into(),
                name: "Message".into(),
                data: frame.clone(),
                any_name: true,
            }];
        };
        let Some(map) = value.as_object() else {
            self.cx.error(&ext_at, "`x-sse-events` must map event names to schemas");
            return Vec::new();
        };
        // The client's catch-all for event names it does not know.
        let mut names = NameTable::with_reserved(crate::emit::reserved_variant_names());
        let mut out = Vec::new();
        for (event, schema) in map {
            let e_at = ext_at.push(event);
            let schema: ReferenceOr<openapiv3::Schema> = match serde_json::from_value(schema.clone()) {
                Ok(s) => s,
                Err(e) => {
                    self.cx.error(&e_at, format!("not a schema: {e}"));
                    continue;
                }
            };
            let lowered = self.types.lower_use(self.cx, &schema, &e_at, &format!("{} {event} Event", self.type_prefix));
            out.push(SseEvent {
                terminal: false,
                failure: None,
                api_name: event.clone(),
                name: names.unique(event, Case::UpperCamel),
                data: lowered.shape,
                any_name: false,
            });
        }
        if out.is_empty() {
            self.cx.error(&ext_at, "`x-sse-events` declares no events");
        }
        out
    }

    /// Whether credentials are needed, and the requirements that apply.
    fn secured(&mut self, op: &'a openapiv3::Operation) -> (bool, Vec<crate::ir::SecurityRequirement>) {
        let requirements = op.security.as_ref().or(self.doc.security.as_ref());
        let Some(requirements) = requirements else { return (false, Vec::new()) };
        let at = if op.security.is_some() { self.at.push("security") } else { Pointer::root().push("security") };
        let declared = |name: &str| self.doc.components.as_ref().is_some_and(|c| c.security_schemes.contains_key(name));
        let mut undeclared = Vec::new();
        for (i, req) in requirements.iter().enumerate() {
            for scheme in req.keys() {
                if !declared(scheme) {
                    undeclared.push(
                        at.push(i).error(format!(
                            "security scheme `{scheme}` is not defined in #/components/securitySchemes"
                        )),
                    );
                }
            }
        }
        self.cx.errors.extend(undeclared);
        let lowered = requirements
            .iter()
            .map(|req| req.iter().map(|(name, scopes)| (name.clone(), scopes.clone())).collect())
            .collect();
        // An empty requirement (`{}`) makes credentials optional.
        (!requirements.is_empty() && requirements.iter().all(|r| !r.is_empty()), lowered)
    }
}

/// How a body of a media type is written.
fn encoding_of(media: &str) -> Encoding {
    let essence = crate::ir::media_essence(media);
    if is_json(&essence) {
        Encoding::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Encoding::Form
    } else if essence.starts_with("multipart/") {
        Encoding::Multipart
    } else if is_text(&essence) {
        Encoding::Text
    } else {
        Encoding::Binary
    }
}

/// Media types read as text: `text/*` and XML.
fn is_text(essence: &str) -> bool {
    essence.starts_with("text/") || essence == "application/xml" || essence.ends_with("+xml")
}

/// The variant of a body's enum for a media type.
fn variant_name(media: &str, encoding: Encoding) -> String {
    let essence = crate::ir::media_essence(media);
    match (encoding, essence.as_str()) {
        (Encoding::Json, "application/json") => "Json".into(),
        (Encoding::Form, _) => "Form".into(),
        (Encoding::Multipart, _) => "Multipart".into(),
        (Encoding::Text, "text/plain") => "Text".into(),
        (Encoding::Binary, "application/octet-stream") => "Bytes".into(),
        (Encoding::Binary, "*/*") => "Any".into(),
        _ => {
            let subtype = essence.rsplit('/').next().unwrap_or_default().trim_start_matches("vnd.");
            if subtype.chars().any(|c| c.is_ascii_alphanumeric()) { subtype.to_owned() } else { "Other".into() }
        }
    }
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn first_example(examples: &indexmap::IndexMap<String, ReferenceOr<openapiv3::Example>>) -> Option<serde_json::Value> {
    examples.values().find_map(|e| match e {
        ReferenceOr::Item(e) => e.value.clone(),
        ReferenceOr::Reference { .. } => None,
    })
}

/// Recognizes a paged list: `page` and `limit` query parameters and a JSON
/// success body whose type has an array field `data` and a `pagination`
/// field.
fn pagination(parameters: &[Parameter], responses: &[Response], types: &TypeBuilder<'_>) -> Option<Pagination> {
    let page = parameters.iter().find(|p| p.location == ParamLocation::Query && p.api_name == "page")?;
    parameters.iter().find(|p| p.location == ParamLocation::Query && p.api_name == "limit")?;
    let mut successes = responses.iter().filter(|r| r.status.is_success());
    let first = successes.next()?;
    if successes.next().is_some() {
        return None;
    }
    let Some(ResponseBody::Json { shape: Shape::Named(body), .. }) = &first.body else { return None };
    let TypeKind::Struct(s) = types.kind_of(body)? else { return None };
    let data = s.fields.iter().find(|f| f.api_name == "data" && f.required)?;
    let pagination = s.fields.iter().find(|f| f.api_name == "pagination" && f.required)?;
    let Shape::Array(items) = &data.shape else { return None };
    // The client walks pages by the pagination object's current page and
    // page count, so both must be required integers.
    let Shape::Named(meta) = &pagination.shape else { return None };
    let TypeKind::Struct(meta) = types.kind_of(meta)? else { return None };
    let int_field = |name: &str, required: bool| {
        meta.fields
            .iter()
            .find(|f| {
                f.api_name == name && matches!(f.shape, Shape::Integer(_)) && !f.nullable && (f.required || !required)
            })
            .map(|f| f.name.clone())
    };
    Some(Pagination {
        page_param: page.name.clone(),
        items_field: data.name.clone(),
        pagination_field: pagination.name.clone(),
        page_field: int_field("page", true)?,
        pages_field: int_field("pages", true)?,
        total_field: int_field("total", true),
        item: (*items.items).clone(),
    })
}
