//! Markdown docs: `docs/index.md`, one page per tag (`docs/<slug>.md`) and
//! `docs/models.md`, written for a code-hosting site (GitHub-flavoured
//! Markdown).
//!
//! The page layouts are the askama templates of `templates/docs/`. This
//! module turns the IR into small view structs whose fields are ready-made
//! Markdown (type names with links, table cells, curl commands), so the
//! templates only arrange them.
//!
//! Anchors are explicit and stable: `op-<operationId>` before every
//! operation on its tag page, `model-<schema name in lower case>` before
//! every model on the models page. Headings may be reworded freely; links
//! never use heading-derived anchors.

use super::{EmitError, Files};
use crate::ir::{
    Api, ArrayShape, Field, Method, Operation, ParamLocation, PathSegment, ResponseBody, SecurityScheme, Shape,
    StatusCode, StructType, TypeDef, TypeKind,
};
use askama::Template;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The page every model is on.
const MODELS: &str = "models.md";
/// The overview page.
const INDEX: &str = "index.md";

/// Adds `docs/index.md`, the tag pages and `docs/models.md`.
pub fn emit(api: &Api, names: &crate::config::Names, files: &mut Files) -> Result<(), EmitError> {
    let _ = names;
    let cx = Ctx::new(api);
    files.markdown("docs/index.md".into(), render(&index_page(&cx), INDEX)?);
    for page in &cx.pages {
        files.markdown(format!("docs/{}", page.file), render(&tag_page(&cx, page), &page.file)?);
    }
    files.markdown(format!("docs/{MODELS}"), render(&models_page(&cx), MODELS)?);
    Ok(())
}

fn render(template: &impl Template, what: &str) -> Result<String, EmitError> {
    let text = template.render().map_err(|e| EmitError(format!("rendering docs/{what}: {e}")))?;
    Ok(tidy(&text))
}

// --- Pages and links --------------------------------------------------------

/// One tag page.
struct Page<'a> {
    /// The tag as written.
    name: String,
    /// The file name, e.g. `agents.md`.
    file: String,
    description: Option<String>,
    /// Operations whose first tag this is, in spec order.
    ops: Vec<&'a Operation>,
    /// Operations that carry this tag too, but are documented on the page of
    /// their first tag.
    also: Vec<&'a Operation>,
}

/// The IR plus where everything is documented.
struct Ctx<'a> {
    api: &'a Api,
    pages: Vec<Page<'a>>,
    /// operationId to the file of its page.
    op_file: BTreeMap<&'a str, String>,
    /// Rust type name to its anchor on the models page.
    model_anchor: BTreeMap<&'a str, String>,
}

impl<'a> Ctx<'a> {
    fn new(api: &'a Api) -> Self {
        let mut used: BTreeSet<String> = [INDEX, MODELS].iter().map(|f| f.to_string()).collect();
        let mut unique_file = |slug: &str| {
            let mut file = format!("{slug}.md");
            let mut n = 2;
            while !used.insert(file.clone()) {
                file = format!("{slug}-{n}.md");
                n += 1;
            }
            file
        };
        let mut pages: Vec<Page<'a>> = api
            .tags
            .iter()
            .map(|tag| Page {
                name: tag.name.clone(),
                file: unique_file(&tag.slug),
                description: tag.description.clone(),
                ops: api.operations.iter().filter(|op| op.tags.first() == Some(&tag.name)).collect(),
                also: api.operations.iter().filter(|op| op.tags.iter().skip(1).any(|t| *t == tag.name)).collect(),
            })
            .collect();
        let untagged: Vec<&Operation> = api.operations.iter().filter(|op| op.tags.is_empty()).collect();
        if !untagged.is_empty() {
            pages.push(Page {
                name: "Other operations".into(),
                file: unique_file("other"),
                description: Some("Operations that have no tag.".into()),
                ops: untagged,
                also: Vec::new(),
            });
        }
        pages.retain(|p| !p.ops.is_empty() || !p.also.is_empty());
        let mut op_file = BTreeMap::new();
        for page in &pages {
            for op in &page.ops {
                op_file.insert(op.id.as_str(), page.file.clone());
            }
        }
        let mut taken = BTreeSet::new();
        let mut model_anchor = BTreeMap::new();
        for (name, def) in &api.types {
            let base = format!("model-{}", anchor_text(&def.api_name));
            let mut anchor = base.clone();
            let mut n = 2;
            while !taken.insert(anchor.clone()) {
                anchor = format!("{base}-{n}");
                n += 1;
            }
            model_anchor.insert(name.as_str(), anchor);
        }
        Ctx { api, pages, op_file, model_anchor }
    }

    fn type_def(&self, name: &str) -> Option<&'a TypeDef> {
        self.api.types.get(name)
    }

    /// `here` (a file name) to `file#anchor`, or `#anchor` on the same page.
    fn href(file: &str, anchor: &str, here: &str) -> String {
        if file == here { format!("#{anchor}") } else { format!("{file}#{anchor}") }
    }

    /// A model's name, linked to its section of the models page.
    fn model(&self, name: &str, here: &str) -> String {
        match (self.type_def(name), self.model_anchor.get(name)) {
            (Some(def), Some(anchor)) => format!("[{}]({})", code(&def.api_name), Self::href(MODELS, anchor, here)),
            _ => code(name),
        }
    }

    /// An operation's id, linked to its section of its tag page.
    fn op(&self, op: &Operation, here: &str) -> String {
        match self.op_file.get(op.id.as_str()) {
            Some(file) => format!("[{}]({})", code(&op.id), Self::href(file, &op_anchor(op), here)),
            None => code(&op.id),
        }
    }

    /// A shape as Markdown: `string (date-time)`, a linked model name,
    /// `array of ...`.
    fn shape(&self, shape: &Shape, here: &str) -> String {
        match shape {
            Shape::Named(name) => self.model(name, here),
            Shape::String(s) => match &s.format {
                Some(f) => format!("string ({f})"),
                None => "string".into(),
            },
            Shape::Integer(i) if i.int32 => "integer (int32)".into(),
            Shape::Integer(_) => "integer".into(),
            Shape::Number(_) => "number".into(),
            Shape::Boolean => "boolean".into(),
            Shape::Array(a) => format!("array of {}", self.shape(&a.items, here)),
            Shape::Map(v) if **v == Shape::Any => "object".into(),
            Shape::Map(v) => format!("map of {}", self.shape(v, here)),
            Shape::Any => "any JSON value".into(),
        }
    }

    /// The named types a shape refers to directly (through arrays and maps).
    fn named_in<'s>(shape: &'s Shape, out: &mut Vec<&'s str>) {
        match shape {
            Shape::Named(n) => out.push(n),
            Shape::Array(a) => Self::named_in(&a.items, out),
            Shape::Map(v) => Self::named_in(v, out),
            _ => {}
        }
    }

    /// A description for a field: its own, or else the first paragraph of its
    /// named type's (house style puts the description of a `$ref` property
    /// on the referenced schema).
    fn field_description(&self, field: &Field) -> String {
        if let Some(d) = field.description.as_deref().filter(|d| !d.trim().is_empty()) {
            return d.to_owned();
        }
        let mut named = Vec::new();
        Self::named_in(&field.shape, &mut named);
        match named.first().and_then(|n| self.type_def(n)).and_then(|d| d.description.as_deref()) {
            Some(d) => first_sentence(d),
            None => String::new(),
        }
    }

    /// An example value for a shape: the spec's where it has one, otherwise
    /// made up from the schema (field examples, first enum value...).
    fn example(&self, shape: &Shape, depth: usize) -> Value {
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

fn op_anchor(op: &Operation) -> String {
    format!("op-{}", op.id)
}

/// Lower-case letters, digits, `-` and `_`; anything else becomes `-`.
fn anchor_text(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect()
}

// --- Markdown helpers -------------------------------------------------------

/// Text as an inline code span, whatever backticks it contains.
fn code(text: &str) -> String {
    if text.is_empty() {
        // An empty code span does not render; show the empty string.
        return "`\"\"`".into();
    }
    let mut ticks = 1;
    while text.contains(&"`".repeat(ticks)) {
        ticks += 1;
    }
    let fence = "`".repeat(ticks);
    if ticks > 1 || text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// A JSON value as inline code; strings without their quotes.
fn value_code(value: &Value) -> String {
    match value {
        Value::String(s) => code(s),
        other => code(&other.to_string()),
    }
}

/// Text made safe for one table cell: one line, `|` escaped, paragraphs
/// kept apart with `<br>`.
fn cell(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "—".into();
    }
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    paragraphs.join("<br><br>").replace('|', "\\|")
}

/// The first paragraph of a description, for a table cell or a summary: the
/// text before the first blank line or code block. A trailing sentence that
/// ends with `:` introduced what was cut, so it goes too.
fn first_paragraph(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.trim().lines() {
        if line.trim().is_empty() || is_fence(line) {
            break;
        }
        lines.push(line.trim());
    }
    let mut para = lines.join(" ");
    if para.ends_with(':')
        && let Some(cut) = para.rfind(". ")
    {
        para.truncate(cut + 1);
    }
    para
}

/// The first sentence of a description, for an index table.
fn first_sentence(text: &str) -> String {
    let para = first_paragraph(text);
    let mut in_code = false;
    for (i, c) in para.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '.' if !in_code
                && para[i + 1..].starts_with(' ')
                && !["e.g", "i.e", "etc", "vs"].iter().any(|a| para[..i].ends_with(a)) =>
            {
                return para[..=i].to_owned();
            }
            _ => {}
        }
    }
    para
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The level of an ATX heading (`## x` is 2), outside code blocks.
fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    let rest = &line[hashes..];
    ((1..=6).contains(&hashes) && (rest.is_empty() || rest.starts_with(' '))).then_some(hashes)
}

/// Shifts the headings of a description so that the biggest is at `level`,
/// so that it nests under the page's own headings.
fn nest_headings(text: &str, level: usize) -> String {
    let mut in_fence = false;
    let mut top = usize::MAX;
    for line in text.lines() {
        if is_fence(line) {
            in_fence = !in_fence;
        } else if !in_fence && let Some(l) = heading_level(line) {
            top = top.min(l);
        }
    }
    if top >= level {
        return text.trim().to_owned();
    }
    let shift = level - top;
    let mut in_fence = false;
    let mut out = Vec::new();
    for line in text.trim().lines() {
        if is_fence(line) {
            in_fence = !in_fence;
        }
        match heading_level(line) {
            Some(l) if !in_fence => {
                let new = (l + shift).min(6);
                out.push(format!("{}{}", "#".repeat(new), &line[l..]));
            }
            _ => out.push(line.to_owned()),
        }
    }
    out.join("\n")
}

/// A description ready to be placed under a heading of level `level - 1`.
fn block(text: Option<&str>, level: usize) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(|t| nest_headings(t, level))
}

/// Collapses runs of blank lines and strips trailing spaces, outside code
/// blocks, so that templates need not count newlines.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    let mut blank_run = 0;
    for line in text.trim().lines() {
        if in_fence {
            out.push_str(line);
            out.push('\n');
            if is_fence(line) {
                in_fence = false;
            }
            continue;
        }
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        if is_fence(line) {
            in_fence = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `1–64`, `≥ 1`, `≤ 20`, or nothing.
fn range<T: std::fmt::Display + PartialEq>(min: Option<T>, max: Option<T>) -> Option<String> {
    match (min, max) {
        (Some(a), Some(b)) if a == b => Some(format!("exactly {a}")),
        (Some(a), Some(b)) => Some(format!("{a}–{b}")),
        (Some(a), None) => Some(format!("≥ {a}")),
        (None, Some(b)) => Some(format!("≤ {b}")),
        (None, None) => None,
    }
}

/// The constraints of a shape, e.g. `1–64 chars`, `pattern ...`, `items 1–100`.
fn constraints(shape: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    match shape {
        Shape::String(s) => {
            if let Some(r) = range(s.min_length, s.max_length) {
                let unit = if s.max_length.or(s.min_length) == Some(1) { "char" } else { "chars" };
                out.push(format!("{r} {unit}"));
            }
            if let Some(p) = &s.pattern {
                out.push(format!("pattern {}", code(p)));
            }
        }
        Shape::Integer(i) => out.extend(range(i.minimum, i.maximum)),
        Shape::Number(n) => match (n.minimum, n.maximum) {
            (Some(a), Some(b)) if !n.exclusive_minimum && !n.exclusive_maximum => out.push(format!("{a}–{b}")),
            (min, max) => {
                if let Some(a) = min {
                    out.push(format!("{} {a}", if n.exclusive_minimum { ">" } else { "≥" }));
                }
                if let Some(b) = max {
                    out.push(format!("{} {b}", if n.exclusive_maximum { "<" } else { "≤" }));
                }
            }
        },
        Shape::Array(ArrayShape { items, min_items, max_items }) => {
            if let Some(r) = range(*min_items, *max_items) {
                out.push(format!("items {r}"));
            }
            let each = constraints(items);
            if !each.is_empty() {
                out.push(format!("each {}", each.join(", ")));
            }
        }
        Shape::Map(v) => {
            let each = constraints(v);
            if !each.is_empty() {
                out.push(format!("each value {}", each.join(", ")));
            }
        }
        Shape::Named(_) | Shape::Boolean | Shape::Any => {}
    }
    out
}

fn status_code(status: StatusCode) -> String {
    code(&status.as_spec())
}

// --- curl -------------------------------------------------------------------

/// Percent-encodes everything but the unreserved characters, so the result
/// is safe in a URL and inside double quotes in a shell.
fn pct(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A scalar example as plain text (strings unquoted).
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text inside shell double quotes.
fn dq(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A runnable curl command: the base URL and key come from
/// `$RUNAGENT_BASE_URL` and `$RUNAGENT_API_KEY`, path parameters and
/// required query parameters from their examples, the body from the
/// request's example.
fn curl(cx: &Ctx<'_>, op: &Operation) -> String {
    let value_of = |p: &crate::ir::Parameter| {
        p.example.clone().or_else(|| p.default.clone()).unwrap_or_else(|| cx.example(&p.shape, 0))
    };
    let mut url = String::from("$RUNAGENT_BASE_URL");
    for segment in &op.segments {
        match segment {
            PathSegment::Literal(text) => url.push_str(text),
            PathSegment::Param(name) => match op.params_in(ParamLocation::Path).find(|p| p.api_name == *name) {
                Some(p) => url.push_str(&pct(&plain(&value_of(p)))),
                None => url.push_str(&pct(name)),
            },
        }
    }
    let mut query = Vec::new();
    for p in op.params_in(ParamLocation::Query).filter(|p| p.required) {
        match value_of(p) {
            Value::Array(items) => {
                query.extend(items.iter().map(|v| format!("{}={}", pct(&p.api_name), pct(&plain(v)))))
            }
            v => query.push(format!("{}={}", pct(&p.api_name), pct(&plain(&v)))),
        }
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let stream = op.is_stream();
    let mut first = String::from("curl -sS");
    if stream {
        first.push_str(" -N");
    }
    if op.method != Method::Get {
        first.push_str(&format!(" -X {}", op.method.as_str()));
    }
    first.push_str(&format!(" \"{url}\""));
    let mut lines = vec![first];
    if op.secured {
        lines.push("-H \"Authorization: Bearer $RUNAGENT_API_KEY\"".into());
    }
    if stream {
        lines.push("-H \"Accept: text/event-stream\"".into());
    }
    for p in op.params_in(ParamLocation::Header).filter(|p| p.required) {
        lines.push(format!("-H \"{}: {}\"", dq(&p.api_name), dq(&plain(&value_of(p)))));
    }
    if let Some(body) = &op.body {
        let example = body.example.clone().unwrap_or_else(|| cx.example(&body.shape, 0));
        lines.push(format!("-H \"Content-Type: {}\"", dq(&body.content_type)));
        lines.push(format!("-d '{}'", example.to_string().replace('\'', "'\\''")));
    }
    lines.join(" \\\n  ")
}

// --- Tag pages --------------------------------------------------------------

#[derive(Template)]
#[template(path = "docs/tag.md", escape = "none")]
struct TagView {
    name: String,
    description: Option<String>,
    nav: String,
    summary: Vec<OpRow>,
    also: Vec<OpRow>,
    ops: Vec<OpView>,
}

/// One line of a table of operations.
struct OpRow {
    link: String,
    request: String,
    summary: String,
}

struct OpView {
    anchor: String,
    id: String,
    request: String,
    title: String,
    auth: String,
    deprecated: Option<String>,
    description: Option<String>,
    params: Vec<ParamRow>,
    body: Option<BodyView>,
    curl: String,
    responses: Vec<ResponseRow>,
    headers: Vec<HeaderRow>,
    examples: Vec<ExampleView>,
    events: Vec<EventRow>,
    stream: Option<StreamView>,
    links: Vec<LinkRow>,
}

/// An OpenAPI link of one of the operation's responses.
struct LinkRow {
    status: String,
    target: String,
    parameters: String,
    description: String,
}

struct ParamRow {
    name: String,
    location: String,
    ty: String,
    required: String,
    default: String,
    description: String,
}

struct BodyView {
    model: String,
    content_type: String,
    required: bool,
    description: Option<String>,
    example: Option<String>,
}

struct ResponseRow {
    status: String,
    description: String,
    body: String,
}

struct HeaderRow {
    name: String,
    ty: String,
    statuses: String,
    description: String,
}

struct ExampleView {
    status: String,
    json: String,
}

struct EventRow {
    name: String,
    data: String,
}

struct StreamView {
    /// The events of a successful stream, on the wire.
    success: String,
    /// How a failed stream ends, when it has an `error` event.
    failure: Option<String>,
}

fn op_row(cx: &Ctx<'_>, op: &Operation, here: &str) -> OpRow {
    let mut summary = cell(op.summary.as_deref().unwrap_or(""));
    if op.deprecated && !summary.to_lowercase().contains("deprecated") {
        summary.push_str(" **(deprecated)**");
    }
    OpRow { link: cx.op(op, here), request: code(&format!("{} {}", op.method.as_str(), op.path)), summary }
}

fn nav(cx: &Ctx<'_>, here: &str) -> String {
    let mut parts = vec![if here == INDEX { "**Overview**".to_owned() } else { format!("[Overview]({INDEX})") }];
    for page in &cx.pages {
        parts.push(if page.file == here {
            format!("**{}**", page.name)
        } else {
            format!("[{}]({})", page.name, page.file)
        });
    }
    parts.push(if here == MODELS { "**Models**".to_owned() } else { format!("[Models]({MODELS})") });
    parts.join(" · ")
}

fn tag_page(cx: &Ctx<'_>, page: &Page<'_>) -> TagView {
    let here = page.file.as_str();
    TagView {
        name: page.name.clone(),
        description: block(page.description.as_deref(), 2),
        nav: nav(cx, here),
        summary: page.ops.iter().map(|op| op_row(cx, op, here)).collect(),
        also: page.also.iter().map(|op| op_row(cx, op, here)).collect(),
        ops: page.ops.iter().map(|op| op_view(cx, op, here)).collect(),
    }
}

fn op_view(cx: &Ctx<'_>, op: &Operation, here: &str) -> OpView {
    let auth = if op.secured {
        let schemes: Vec<String> = cx.api.security_schemes.keys().map(|k| code(k)).collect();
        if schemes.is_empty() {
            "API key".to_owned()
        } else {
            format!("API key ({}, `Authorization: Bearer …`)", schemes.join(", "))
        }
    } else {
        "none (public)".to_owned()
    };
    let deprecated = op.deprecated.then(|| match &op.sunset {
        Some(date) => format!("This operation is deprecated and will be removed after **{date}** (its sunset date)."),
        None => "This operation is deprecated and will be removed in a future version.".to_owned(),
    });
    let params = op
        .parameters
        .iter()
        .map(|p| {
            let mut ty = cx.shape(&p.shape, here);
            let limits = constraints(&p.shape);
            if !limits.is_empty() {
                ty = format!("{ty}, {}", limits.join(", "));
            }
            let mut description = p.description.clone().unwrap_or_default();
            if let Some(example) = &p.example {
                description = format!("{} Example: {}.", description.trim(), value_code(example));
            }
            if p.deprecated {
                description = format!("**Deprecated.** {description}");
            }
            ParamRow {
                name: code(&p.api_name),
                location: p.location.as_str().to_owned(),
                ty: cell(&ty),
                required: yes_no(p.required).to_owned(),
                default: p.default.as_ref().map_or_else(|| "—".to_owned(), value_code),
                description: cell(&description),
            }
        })
        .collect();
    let body = op.body.as_ref().map(|b| BodyView {
        model: cx.shape(&b.shape, here),
        content_type: code(&b.content_type),
        required: b.required,
        description: block(b.description.as_deref(), 4),
        example: b.example.as_ref().map(pretty_json),
    });
    let responses = op
        .responses
        .iter()
        .map(|r| ResponseRow {
            status: status_code(r.status),
            description: cell(&first_paragraph(&r.description)),
            body: match &r.body {
                None => "—".to_owned(),
                Some(ResponseBody::Json { shape, .. }) => cell(&cx.shape(shape, here)),
                Some(ResponseBody::EventStream(s)) => cell(&format!(
                    "event stream ({}) of {}, see [Events](#events-{})",
                    code("text/event-stream"),
                    cx.shape(&s.frame, here),
                    op.id
                )),
            },
        })
        .collect();
    // One row per header and meaning: a header documented differently for
    // different statuses (Retry-After on a 409 and on a 429) gets a row each.
    let mut headers: BTreeMap<(&str, &str), (HeaderRow, Vec<String>)> = BTreeMap::new();
    for r in &op.responses {
        for h in &r.headers {
            let key = (h.api_name.as_str(), h.description.as_deref().unwrap_or(""));
            let entry = headers.entry(key).or_insert_with(|| {
                let mut ty = cx.shape(&h.shape, here);
                let limits = constraints(&h.shape);
                if !limits.is_empty() {
                    ty = format!("{ty}, {}", limits.join(", "));
                }
                let row = HeaderRow {
                    name: code(&h.api_name),
                    ty: cell(&ty),
                    statuses: String::new(),
                    description: cell(h.description.as_deref().unwrap_or("")),
                };
                (row, Vec::new())
            });
            entry.1.push(status_code(r.status));
        }
    }
    let headers = headers
        .into_values()
        .map(|(mut row, statuses)| {
            row.statuses = sent_with(op, &statuses);
            row
        })
        .collect();
    let examples = op
        .successes()
        .filter_map(|r| match &r.body {
            Some(ResponseBody::Json { example: Some(example), .. }) => {
                Some(ExampleView { status: status_code(r.status), json: pretty_json(example) })
            }
            _ => None,
        })
        .collect();
    let stream = op.successes().find_map(|r| match &r.body {
        Some(ResponseBody::EventStream(s)) => Some(s),
        _ => None,
    });
    let events = stream
        .map(|s| {
            s.events
                .iter()
                .map(|e| EventRow { name: code(&e.api_name), data: cell(&cx.shape(&e.data, here)) })
                .collect()
        })
        .unwrap_or_default();
    let links = op
        .responses
        .iter()
        .flat_map(|r| r.links.iter().map(move |l| (r.status, l)))
        .map(|(status, link)| LinkRow {
            status: status_code(status),
            target: cx
                .api
                .operations
                .iter()
                .find(|o| o.id == link.operation_id)
                .map_or_else(|| code(&link.operation_id), |target| cx.op(target, here)),
            parameters: cell(
                &link
                    .parameters
                    .iter()
                    .map(|(name, value)| format!("{} = {}", code(name), value_code(value)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            description: cell(link.description.as_deref().unwrap_or("")),
        })
        .collect();
    OpView {
        anchor: op_anchor(op),
        id: op.id.clone(),
        request: format!("{} {}", op.method.as_str(), op.path),
        title: op.summary.clone().unwrap_or_else(|| op.id.clone()),
        auth,
        deprecated,
        description: block(op.description.as_deref(), 4),
        params,
        body,
        curl: curl(cx, op),
        responses,
        headers,
        examples,
        events,
        stream: stream.map(|s| stream_view(cx, s, here)),
        links,
    }
}

/// The statuses a header comes with: `all`, `all but ...` or a list.
fn sent_with(op: &Operation, statuses: &[String]) -> String {
    let missing: Vec<String> =
        op.responses.iter().map(|r| status_code(r.status)).filter(|s| !statuses.contains(s)).collect();
    if missing.is_empty() {
        "all".to_owned()
    } else if missing.len() < statuses.len() {
        format!("all but {}", missing.join(", "))
    } else {
        statuses.join(", ")
    }
}

/// A made-up stream on the wire, from the event schemas: every event once,
/// in spec order, except an `error` event, which would end a failed stream
/// in place of the last event of a successful one.
fn stream_view(cx: &Ctx<'_>, stream: &crate::ir::EventStream, here: &str) -> StreamView {
    // Event ids: the frame's `id` example is `<stream>:<sequence>` here; keep
    // its prefix and count from 0. Without one, plain sequence numbers.
    let id_prefix = match &stream.frame {
        Shape::Named(n) => cx.type_def(n).and_then(|d| match &d.kind {
            TypeKind::Struct(s) => s.fields.iter().find(|f| f.api_name == "id").and_then(|f| f.example.clone()),
            _ => None,
        }),
        _ => None,
    }
    .and_then(|v| v.as_str().and_then(|s| s.rfind(':').map(|i| s[..=i].to_owned())))
    .unwrap_or_default();
    let (errors, others): (Vec<_>, Vec<_>) = stream.events.iter().partition(|e| e.api_name == "error");
    let success: Vec<String> = others
        .iter()
        .enumerate()
        .map(|(seq, e)| format!("event: {}\nid: {id_prefix}{seq}\ndata: {}", e.api_name, cx.example(&e.data, 0)))
        .collect();
    let failure = match (errors.first(), others.last()) {
        (Some(error), Some(last)) => Some(format!(
            "A stream that fails after it started ends with an {} event (its `data` is a {}) in place of {}.",
            code(&error.api_name),
            cx.shape(&error.data, here),
            code(&last.api_name)
        )),
        _ => None,
    };
    StreamView { success: success.join("\n\n"), failure }
}

// --- Models page ------------------------------------------------------------

#[derive(Template)]
#[template(path = "docs/models.md", escape = "none")]
struct ModelsView {
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
        if let Some(b) = &op.body {
            add(&b.shape, "request body".into(), &mut roles);
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
                None => {}
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

fn models_page(cx: &Ctx<'_>) -> ModelsView {
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
                    view.variants = o.variants.iter().map(|v| cx.model(&v.type_name, MODELS)).collect();
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

// --- Index page -------------------------------------------------------------

/// A subject the overview covers whether or not `info.description` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Authentication,
    Envelopes,
    Errors,
    RateLimits,
    Pagination,
    Idempotency,
    Async,
    Streaming,
    Batch,
    Versioning,
}

impl Topic {
    const ALL: [Topic; 10] = [
        Topic::Authentication,
        Topic::Envelopes,
        Topic::Errors,
        Topic::RateLimits,
        Topic::Pagination,
        Topic::Idempotency,
        Topic::Async,
        Topic::Streaming,
        Topic::Batch,
        Topic::Versioning,
    ];

    /// The name the template switches on.
    fn kind(self) -> &'static str {
        match self {
            Topic::Authentication => "authentication",
            Topic::Envelopes => "envelopes",
            Topic::Errors => "errors",
            Topic::RateLimits => "rate-limits",
            Topic::Pagination => "pagination",
            Topic::Idempotency => "idempotency",
            Topic::Async => "async",
            Topic::Streaming => "streaming",
            Topic::Batch => "batch",
            Topic::Versioning => "versioning",
        }
    }

    /// The heading when the description has no section about it.
    fn heading(self) -> &'static str {
        match self {
            Topic::Authentication => "Authentication",
            Topic::Envelopes => "Envelopes",
            Topic::Errors => "Errors",
            Topic::RateLimits => "Rate limits",
            Topic::Pagination => "Pagination",
            Topic::Idempotency => "Idempotent retries",
            Topic::Async => "Async operations",
            Topic::Streaming => "Streaming",
            Topic::Batch => "Batch operations",
            Topic::Versioning => "Versioning and deprecation",
        }
    }

    /// Whether a section heading (lower case) is about this topic.
    fn matches(self, heading: &str) -> bool {
        let words: &[&str] = match self {
            Topic::Authentication => &["auth"],
            Topic::Envelopes => &["envelope"],
            Topic::Errors => &["error"],
            Topic::RateLimits => &["rate limit", "rate-limit", "ratelimit", "throttl"],
            Topic::Pagination => &["paginat", "paging"],
            Topic::Idempotency => &["idempot"],
            Topic::Async => &["async", "long-running", "long running"],
            Topic::Streaming => &["stream", "server-sent"],
            Topic::Batch => &["batch"],
            Topic::Versioning => &["version", "deprecat"],
        };
        words.iter().any(|w| heading.contains(w))
    }
}

/// A top-level section of `info.description`.
struct DescSection {
    heading: String,
    body: String,
}

/// Splits a description at its top-level headings (`#` or `##`), outside
/// code blocks: the text before the first one, and the sections.
fn split_sections(text: &str) -> (String, Vec<DescSection>) {
    let mut preamble = Vec::new();
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    let mut in_fence = false;
    for line in text.trim().lines() {
        if is_fence(line) {
            in_fence = !in_fence;
        }
        match heading_level(line) {
            Some(l) if !in_fence && l <= 2 => sections.push((line[l..].trim().to_owned(), Vec::new())),
            _ => match sections.last_mut() {
                Some((_, body)) => body.push(line),
                None => preamble.push(line),
            },
        }
    }
    let sections = sections
        .into_iter()
        .map(|(heading, body)| DescSection { heading, body: nest_headings(body.join("\n").trim(), 3) })
        .collect();
    (nest_headings(preamble.join("\n").trim(), 3), sections)
}

#[derive(Template)]
#[template(path = "docs/index.md", escape = "none")]
struct IndexView {
    title: String,
    version: String,
    nav: String,
    preamble: Option<String>,
    servers: Vec<ServerRow>,
    example_base_url: String,
    groups: Vec<TocGroup>,
    sections: Vec<IndexSection>,
    auth: AuthFacts,
    envelopes: EnvelopeFacts,
    errors: ErrorFacts,
    rate: RateFacts,
    paging: PagingFacts,
    idempotency: Vec<String>,
    asyncs: Vec<String>,
    streaming: StreamFacts,
    batch: Vec<String>,
    deprecated: Vec<DeprecatedRow>,
}

struct ServerRow {
    url: String,
    description: String,
}

struct TocGroup {
    name: String,
    file: String,
    description: String,
    ops: Vec<OpRow>,
}

struct IndexSection {
    heading: String,
    /// The section of `info.description`, or `None` when the description
    /// does not cover the topic and the template writes a short one.
    text: Option<String>,
    /// [`Topic::kind`], or empty for a section that is no topic.
    kind: &'static str,
}

struct AuthFacts {
    schemes: Vec<String>,
    public: Vec<String>,
}

struct EnvelopeFacts {
    success: Vec<String>,
    list: Vec<String>,
    error: Vec<String>,
    /// Bodies that are not enveloped: the model and where it is answered.
    bare: Vec<(String, Vec<String>)>,
    success_example: Option<String>,
    list_example: Option<String>,
    error_example: Option<String>,
}

struct ErrorFacts {
    /// The error-code enum, linked.
    model: Option<String>,
    /// The error envelope(s), linked.
    envelopes: String,
    rows: Vec<ErrorRow>,
    /// Whether to print `rows`: not when the description already has a table
    /// of every code.
    table: bool,
}

struct ErrorRow {
    code: String,
    status: String,
    meaning: String,
}

struct RateFacts {
    headers: Vec<HeaderRow>,
    exempt: Vec<String>,
}

struct PagingFacts {
    ops: Vec<String>,
    params: Vec<ParamRow>,
    model: Option<String>,
    items_field: String,
    pagination_field: String,
    example: Option<String>,
}

struct StreamFacts {
    ops: Vec<String>,
    events: Vec<EventRow>,
    resume_header: Option<String>,
}

struct DeprecatedRow {
    link: String,
    request: String,
    sunset: String,
}

fn index_page(cx: &Ctx<'_>) -> IndexView {
    let api = cx.api;
    let here = INDEX;
    let (preamble, desc_sections) = match api.description.as_deref() {
        Some(d) => split_sections(d),
        None => (String::new(), Vec::new()),
    };
    let mut covered: Vec<Topic> = Vec::new();
    let mut sections: Vec<IndexSection> = desc_sections
        .into_iter()
        .map(|s| {
            let lower = s.heading.to_lowercase();
            let topic = Topic::ALL.into_iter().find(|t| !covered.contains(t) && t.matches(&lower));
            if let Some(t) = topic {
                covered.push(t);
            }
            IndexSection { heading: s.heading, text: Some(s.body), kind: topic.map_or("", Topic::kind) }
        })
        .collect();
    let error_section_text = sections.iter().find(|s| s.kind == "errors").and_then(|s| s.text.clone());

    let auth = AuthFacts {
        schemes: api
            .security_schemes
            .iter()
            .map(|(name, scheme)| match scheme {
                SecurityScheme::Bearer { description } => {
                    let text = description.as_deref().map(cell).unwrap_or_default();
                    format!("{}: HTTP bearer token (`Authorization: Bearer …`). {text}", code(name)).trim().to_owned()
                }
            })
            .collect(),
        public: api.operations.iter().filter(|op| !op.secured).map(|op| cx.op(op, here)).collect(),
    };
    let envelopes = envelope_facts(cx);
    let errors = error_facts(cx, error_section_text.as_deref());
    let rate = rate_facts(cx);
    let paging = paging_facts(cx);
    let idempotency = api
        .operations
        .iter()
        .filter(|op| op.params_in(ParamLocation::Header).any(|p| p.api_name.eq_ignore_ascii_case("idempotency-key")))
        .map(|op| cx.op(op, here))
        .collect::<Vec<_>>();
    let asyncs = api
        .operations
        .iter()
        .filter_map(|op| {
            let accepted = op.responses.iter().find(|r| r.status == StatusCode::Code(202))?;
            let body = match &accepted.body {
                Some(ResponseBody::Json { shape, .. }) => format!(", answering {}", cx.shape(shape, here)),
                _ => String::new(),
            };
            Some(format!("{}{body}", cx.op(op, here)))
        })
        .collect::<Vec<_>>();
    let streaming = stream_facts(cx);
    let batch = api
        .operations
        .iter()
        .filter(|op| op.id.to_lowercase().contains("batch") || op.path.to_lowercase().contains("batch"))
        .map(|op| match &op.body {
            Some(b) => format!("{} (request body {})", cx.op(op, here), cx.shape(&b.shape, here)),
            None => cx.op(op, here),
        })
        .collect::<Vec<_>>();
    let deprecated = api
        .operations
        .iter()
        .filter(|op| op.deprecated)
        .map(|op| DeprecatedRow {
            link: cx.op(op, here),
            request: code(&format!("{} {}", op.method.as_str(), op.path)),
            sunset: op.sunset.as_deref().map_or_else(|| "not set".to_owned(), code),
        })
        .collect();

    // Topics the description leaves out get a section of their own when
    // there is something to say.
    for topic in Topic::ALL {
        if covered.contains(&topic) {
            continue;
        }
        let relevant = match topic {
            Topic::Authentication => !api.security_schemes.is_empty(),
            Topic::Envelopes => !envelopes.success.is_empty() || !envelopes.error.is_empty(),
            Topic::Errors => !errors.rows.is_empty() || !errors.envelopes.is_empty(),
            Topic::RateLimits => !rate.headers.is_empty(),
            Topic::Pagination => !paging.ops.is_empty(),
            Topic::Idempotency => !idempotency.is_empty(),
            Topic::Async => !asyncs.is_empty(),
            Topic::Streaming => !streaming.ops.is_empty(),
            Topic::Batch => !batch.is_empty(),
            Topic::Versioning => true,
        };
        if relevant {
            sections.push(IndexSection { heading: topic.heading().into(), text: None, kind: topic.kind() });
        }
    }

    IndexView {
        title: api.title.clone(),
        version: api.version.clone(),
        nav: nav(cx, here),
        preamble: Some(preamble).filter(|p| !p.is_empty()),
        servers: api
            .servers
            .iter()
            .map(|s| ServerRow { url: s.url.clone(), description: cell(s.description.as_deref().unwrap_or("")) })
            .collect(),
        example_base_url: api.servers.first().map_or_else(|| "http://localhost".to_owned(), |s| s.url.clone()),
        groups: cx
            .pages
            .iter()
            .filter(|p| !p.ops.is_empty())
            .map(|p| TocGroup {
                name: p.name.clone(),
                file: p.file.clone(),
                description: p.description.as_deref().map(first_paragraph).unwrap_or_default(),
                ops: p.ops.iter().map(|op| op_row(cx, op, here)).collect(),
            })
            .collect(),
        sections,
        auth,
        envelopes,
        errors,
        rate,
        paging,
        idempotency,
        asyncs,
        streaming,
        batch,
        deprecated,
    }
}

/// The fields (wire names) of a struct type.
fn struct_fields<'a>(cx: &Ctx<'a>, shape: &Shape) -> Option<(&'a str, &'a StructType)> {
    let Shape::Named(name) = shape else { return None };
    let def = cx.type_def(name)?;
    match &def.kind {
        TypeKind::Struct(s) => Some((def.name.as_str(), s)),
        _ => None,
    }
}

fn has_field(s: &StructType, name: &str) -> bool {
    s.fields.iter().any(|f| f.api_name == name)
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Sorts the JSON bodies of every response into success envelopes (`status`
/// and `data`), list envelopes (and `pagination`), error envelopes and
/// bodies that are not enveloped.
fn envelope_facts(cx: &Ctx<'_>) -> EnvelopeFacts {
    let mut facts = EnvelopeFacts {
        success: Vec::new(),
        list: Vec::new(),
        error: Vec::new(),
        bare: Vec::new(),
        success_example: None,
        list_example: None,
        error_example: None,
    };
    for op in &cx.api.operations {
        for r in &op.responses {
            let Some(ResponseBody::Json { shape, example }) = &r.body else { continue };
            let Some((name, s)) = struct_fields(cx, shape) else { continue };
            let link = cx.model(name, INDEX);
            let example = example.as_ref().map(pretty_json);
            if !r.status.is_success() {
                push_unique(&mut facts.error, link);
                facts.error_example = facts.error_example.take().or(example);
            } else if has_field(s, "status") && has_field(s, "data") {
                if has_field(s, "pagination") || op.pagination.is_some() {
                    push_unique(&mut facts.list, link);
                    facts.list_example = facts.list_example.take().or(example);
                } else {
                    push_unique(&mut facts.success, link);
                    facts.success_example = facts.success_example.take().or(example);
                }
            } else {
                let place = format!("{} of {}", status_code(r.status), cx.op(op, INDEX));
                match facts.bare.iter_mut().find(|(l, _)| *l == link) {
                    Some((_, places)) => places.push(place),
                    None => facts.bare.push((link, vec![place])),
                }
            }
        }
    }
    facts
}

/// The error codes: the enum of the error envelope's `error.code` (or a
/// type called `ErrorCode`), with statuses and meanings from a table in its
/// description or in `info.description`, else from the responses that
/// mention each code.
fn error_facts(cx: &Ctx<'_>, section: Option<&str>) -> ErrorFacts {
    let api = cx.api;
    let mut envelope_names: Vec<&str> = Vec::new();
    for op in &api.operations {
        for r in op.responses.iter().filter(|r| !r.status.is_success()) {
            if let Some(ResponseBody::Json { shape, .. }) = &r.body
                && let Some((name, _)) = struct_fields(cx, shape)
                && !envelope_names.contains(&name)
            {
                envelope_names.push(name);
            }
        }
    }
    // error.code, following named types.
    let code_enum = envelope_names
        .iter()
        .find_map(|env| {
            let (_, s) = struct_fields(cx, &Shape::Named((*env).to_owned()))?;
            let error = s.fields.iter().find(|f| f.api_name == "error")?;
            let (_, e) = struct_fields(cx, &error.shape)?;
            let code = e.fields.iter().find(|f| f.api_name == "code")?;
            match &code.shape {
                Shape::Named(n) => api.types.get(n),
                _ => None,
            }
        })
        .or_else(|| api.types.values().find(|d| d.api_name == "ErrorCode"))
        .filter(|d| matches!(d.kind, TypeKind::Enum(_)));
    let envelopes = envelope_names.iter().map(|n| cx.model(n, INDEX)).collect::<Vec<_>>().join(", ");
    let Some(def) = code_enum else {
        return ErrorFacts { model: None, envelopes, rows: Vec::new(), table: false };
    };
    let TypeKind::Enum(e) = &def.kind else { unreachable!("filtered above") };
    let tables: Vec<&str> = [def.description.as_deref(), api.description.as_deref()].into_iter().flatten().collect();
    let rows: Vec<ErrorRow> = e
        .variants
        .iter()
        .map(|v| {
            let from_table = tables.iter().find_map(|t| table_row(t, &v.api_name));
            let (status, meaning) = from_table.unwrap_or_else(|| {
                let mut statuses: Vec<String> = Vec::new();
                for op in &api.operations {
                    for r in &op.responses {
                        if r.description.contains(&format!("`{}`", v.api_name)) {
                            push_unique(&mut statuses, r.status.as_spec());
                        }
                    }
                }
                statuses.sort();
                (statuses.join(", "), String::new())
            });
            ErrorRow { code: code(&v.api_name), status: cell(&status), meaning: cell(&meaning) }
        })
        .collect();
    let table = match section {
        None => true,
        Some(text) => !e.variants.iter().all(|v| text.contains(&format!("`{}`", v.api_name))),
    };
    ErrorFacts { model: Some(cx.model(&def.name, INDEX)), envelopes, rows, table }
}

/// In a Markdown table whose first column holds `` `code` ``, that row's
/// HTTP status (a column whose header mentions "status") and meaning (a
/// column whose header says "meaning" or "description", else the last one).
fn table_row(text: &str, code_value: &str) -> Option<(String, String)> {
    let split = |line: &str| -> Vec<String> {
        line.trim().trim_start_matches('|').trim_end_matches('|').split('|').map(|c| c.trim().to_owned()).collect()
    };
    let mut header: Option<Vec<String>> = None;
    for line in text.lines() {
        let t = line.trim();
        if !t.starts_with('|') {
            header = None;
            continue;
        }
        let cells = split(t);
        if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' '))) {
            continue;
        }
        let Some(head) = &header else {
            header = Some(cells.iter().map(|c| c.to_lowercase()).collect());
            continue;
        };
        if cells.first().map(|c| c.trim_matches('`')) != Some(code_value) {
            continue;
        }
        let status_col = head.iter().position(|h| h.contains("status"));
        let meaning_col = head
            .iter()
            .position(|h| h.contains("meaning") || h.contains("description"))
            .or(Some(cells.len() - 1))
            .filter(|i| *i > 0);
        let get = |i: Option<usize>| i.and_then(|i| cells.get(i)).cloned().unwrap_or_default();
        return Some((get(status_col), get(meaning_col)));
    }
    None
}

fn rate_facts(cx: &Ctx<'_>) -> RateFacts {
    let is_rate = |name: &str| {
        let lower = name.to_ascii_lowercase();
        lower.starts_with("x-ratelimit-") || lower.starts_with("ratelimit") || lower == "retry-after"
    };
    let mut headers: Vec<HeaderRow> = Vec::new();
    let mut seen = BTreeSet::new();
    for op in &cx.api.operations {
        for r in &op.responses {
            for h in r.headers.iter().filter(|h| is_rate(&h.api_name)) {
                if seen.insert(h.api_name.to_ascii_lowercase()) {
                    headers.push(HeaderRow {
                        name: code(&h.api_name),
                        ty: cell(&cx.shape(&h.shape, INDEX)),
                        statuses: String::new(),
                        description: cell(h.description.as_deref().unwrap_or("")),
                    });
                }
            }
        }
    }
    // Retry-After last: it only comes with a 429.
    headers.sort_by_key(|h| h.name.to_ascii_lowercase().contains("retry-after"));
    let exempt = if headers.is_empty() {
        Vec::new()
    } else {
        cx.api
            .operations
            .iter()
            .filter(|op| !op.responses.iter().any(|r| r.headers.iter().any(|h| is_rate(&h.api_name))))
            .map(|op| cx.op(op, INDEX))
            .collect()
    };
    RateFacts { headers, exempt }
}

fn paging_facts(cx: &Ctx<'_>) -> PagingFacts {
    let paged: Vec<&Operation> = cx.api.operations.iter().filter(|op| op.pagination.is_some()).collect();
    let mut facts = PagingFacts {
        ops: paged.iter().map(|op| cx.op(op, INDEX)).collect(),
        params: Vec::new(),
        model: None,
        items_field: "data".into(),
        pagination_field: "pagination".into(),
        example: None,
    };
    let Some(op) = paged.first() else { return facts };
    let Some(p) = &op.pagination else { return facts };
    for param in op.params_in(ParamLocation::Query) {
        if param.name == p.page_param || matches!(param.api_name.as_str(), "limit" | "per_page" | "page_size") {
            let limits = constraints(&param.shape);
            facts.params.push(ParamRow {
                name: code(&param.api_name),
                location: "query".into(),
                ty: cell(&format!(
                    "{}{}",
                    cx.shape(&param.shape, INDEX),
                    if limits.is_empty() { String::new() } else { format!(", {}", limits.join(", ")) }
                )),
                required: yes_no(param.required).into(),
                default: param.default.as_ref().map_or_else(|| "—".to_owned(), value_code),
                description: cell(param.description.as_deref().unwrap_or("")),
            });
        }
    }
    for r in op.successes() {
        if let Some(ResponseBody::Json { shape, example }) = &r.body
            && let Some((_, s)) = struct_fields(cx, shape)
        {
            if let Some(f) = s.fields.iter().find(|f| f.name == p.items_field) {
                facts.items_field = f.api_name.clone();
            }
            if let Some(f) = s.fields.iter().find(|f| f.name == p.pagination_field) {
                facts.pagination_field = f.api_name.clone();
                facts.model = Some(cx.shape(&f.shape, INDEX));
            }
            facts.example = example.as_ref().map(pretty_json);
        }
    }
    facts
}

fn stream_facts(cx: &Ctx<'_>) -> StreamFacts {
    let streams: Vec<&Operation> = cx.api.operations.iter().filter(|op| op.is_stream()).collect();
    let mut events: Vec<EventRow> = Vec::new();
    for op in &streams {
        for r in op.successes() {
            if let Some(ResponseBody::EventStream(s)) = &r.body {
                for e in &s.events {
                    let name = code(&e.api_name);
                    if !events.iter().any(|row| row.name == name) {
                        events.push(EventRow { name, data: cell(&cx.shape(&e.data, INDEX)) });
                    }
                }
            }
        }
    }
    let resume_header = streams
        .iter()
        .flat_map(|op| op.params_in(ParamLocation::Header))
        .find(|p| p.api_name.eq_ignore_ascii_case("last-event-id"))
        .map(|p| code(&p.api_name));
    StreamFacts { ops: streams.iter().map(|op| cx.op(op, INDEX)).collect(), events, resume_header }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    const SPEC: &str = include_str!("../../../spec/openapi.yaml");

    fn api() -> Api {
        crate::load(SPEC).expect("the spec loads")
    }

    fn pages(api: &Api) -> BTreeMap<String, String> {
        let files =
            crate::emit::emit(api, &crate::config::Names::resolve(&Default::default(), api)).expect("docs render");
        files
            .0
            .into_iter()
            .filter_map(|(path, file)| path.strip_prefix("docs/").map(|p| (p.to_owned(), file.contents)))
            .collect()
    }

    /// Writes the pages to /tmp/docs-out/ to read them:
    /// `cargo test -p runagent-codegen -- --ignored write_docs_for_reading`.
    #[test]
    #[ignore]
    fn write_docs_for_reading() {
        let out = std::path::Path::new("/tmp/docs-out");
        std::fs::create_dir_all(out).unwrap();
        for (name, text) in pages(&api()) {
            std::fs::write(out.join(name), text).unwrap();
        }
        // And the small fixture specs, each in its own folder.
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let dir = out.join(path.file_stem().unwrap());
                std::fs::create_dir_all(&dir).unwrap();
                let api = crate::load(&std::fs::read_to_string(&path).unwrap()).unwrap();
                for (name, text) in pages(&api) {
                    std::fs::write(dir.join(name), text).unwrap();
                }
            }
        }
    }

    fn anchors(text: &str) -> Vec<String> {
        let re = Regex::new(r#"<a id="([^"]+)"></a>"#).unwrap();
        re.captures_iter(text).map(|c| c[1].to_owned()).collect()
    }

    /// The fenced ```bash blocks of a page.
    fn bash_blocks(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in text.lines() {
            match &mut current {
                None if line.trim() == "```bash" => current = Some(Vec::new()),
                Some(lines) if line.trim() == "```" => {
                    out.push(lines.join("\n"));
                    current = None;
                }
                Some(lines) => lines.push(line),
                None => {}
            }
        }
        out
    }

    fn curl_of(pages: &BTreeMap<String, String>, op_id: &str) -> String {
        let (_, text) = pages
            .iter()
            .find(|(_, t)| t.contains(&format!("<a id=\"op-{op_id}\"></a>")))
            .expect("a page documents the operation");
        let start = text.find(&format!("<a id=\"op-{op_id}\"></a>")).unwrap();
        let rest = &text[start + 1..];
        let section = &rest[..rest.find("<a id=\"op-").unwrap_or(rest.len())];
        let blocks = bash_blocks(section);
        assert_eq!(blocks.len(), 1, "{op_id} has one curl example");
        blocks[0].clone()
    }

    #[test]
    fn pages_are_the_index_one_per_tag_and_the_models() {
        let api = api();
        let pages = pages(&api);
        let mut expected: Vec<String> = vec!["index.md".into(), "models.md".into()];
        for tag in &api.tags {
            if api.operations.iter().any(|op| op.tags.contains(&tag.name)) {
                expected.push(format!("{}.md", tag.slug));
            }
        }
        expected.sort();
        assert_eq!(pages.keys().cloned().collect::<Vec<_>>(), expected);
        for text in pages.values() {
            assert!(text.starts_with("<!-- @generated"), "the header comes first");
        }
    }

    #[test]
    fn every_operation_has_exactly_one_anchor() {
        let api = api();
        let pages = pages(&api);
        let all: Vec<String> = pages.values().flat_map(|t| anchors(t)).collect();
        for op in &api.operations {
            let anchor = format!("op-{}", op.id);
            assert_eq!(all.iter().filter(|a| **a == anchor).count(), 1, "{anchor}");
            let page = format!("{}.md", api.tags.iter().find(|t| Some(&t.name) == op.tags.first()).unwrap().slug);
            assert!(anchors(&pages[&page]).contains(&anchor), "{anchor} is on {page}");
        }
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "no anchor is defined twice");
    }

    #[test]
    fn every_model_has_an_anchor() {
        let api = api();
        let pages = pages(&api);
        let models = anchors(&pages["models.md"]);
        for def in api.types.values() {
            let anchor = format!("model-{}", anchor_text(&def.api_name));
            assert!(models.contains(&anchor), "{anchor}");
        }
    }

    #[test]
    fn every_link_resolves() {
        let api = api();
        let pages = pages(&api);
        let link = Regex::new(r"\]\(([A-Za-z0-9_.-]*)(?:#([^)\s]+))?\)").unwrap();
        let mut checked = 0;
        for (page, text) in &pages {
            // Links inside code blocks are not links.
            let mut prose = String::new();
            let mut in_fence = false;
            for line in text.lines() {
                if is_fence(line) {
                    in_fence = !in_fence;
                } else if !in_fence {
                    prose.push_str(line);
                    prose.push('\n');
                }
            }
            for c in link.captures_iter(&prose) {
                let file = if c[1].is_empty() { page.as_str() } else { &c[1] };
                if file.starts_with("http") {
                    continue;
                }
                let target = pages.get(file).unwrap_or_else(|| panic!("{page}: link to missing page {file}"));
                if let Some(anchor) = c.get(2) {
                    assert!(
                        anchors(target).iter().any(|a| a == anchor.as_str()),
                        "{page}: link to {file}#{} that does not exist",
                        anchor.as_str()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 100, "the pages link a lot ({checked})");
        // The kinds of links the brief names are among them.
        assert!(pages["index.md"].contains("](agents.md#op-listAgents)"));
        assert!(pages["agents.md"].contains("](models.md#model-agentlistresponse)"));
    }

    #[test]
    fn curl_examples_are_single_runnable_commands() {
        let api = api();
        let pages = pages(&api);
        let health = curl_of(&pages, "getHealth");
        assert!(!health.contains("Authorization"), "{health}");
        assert_eq!(health, "curl -sS \"$RUNAGENT_BASE_URL/health\"");
        let list = curl_of(&pages, "listAgents");
        assert!(list.contains("-H \"Authorization: Bearer $RUNAGENT_API_KEY\""), "{list}");
        assert!(
            list.starts_with("curl -sS \"$RUNAGENT_BASE_URL/agents\""),
            "optional query parameters are left out: {list}"
        );
        let get = curl_of(&pages, "getAgent");
        assert!(get.contains("\"$RUNAGENT_BASE_URL/agents/agt_7Hq2mP9xKd\""), "{get}");
        let create = curl_of(&pages, "createAgent");
        assert!(create.contains("-X POST"), "{create}");
        assert!(create.contains("-H \"Content-Type: application/json\""), "{create}");
        assert!(create.contains("-d '{\"name\":\"echo-test\",\"framework\":\"echo\"}'"), "{create}");
        let stream = curl_of(&pages, "streamAgentGet");
        assert!(stream.contains(" -N"), "{stream}");
        assert!(stream.contains("-H \"Accept: text/event-stream\""), "{stream}");
        assert!(stream.contains("/stream?query=Hello\""), "required query parameters are in: {stream}");
        assert!(!stream.contains("session_id"), "{stream}");
        for op in &api.operations {
            let curl = curl_of(&pages, &op.id);
            let lines: Vec<&str> = curl.lines().collect();
            assert!(lines[0].starts_with("curl "), "{curl}");
            for (i, line) in lines.iter().enumerate() {
                assert_eq!(line.ends_with(" \\"), i + 1 < lines.len(), "continuations: {curl}");
            }
            assert_eq!(curl.contains("Authorization"), op.secured, "{curl}");
            assert!(!curl.contains('{') || curl.contains("-d '"), "path templates are filled in: {curl}");
        }
    }

    #[test]
    fn single_quotes_in_bodies_are_escaped() {
        let mut api = api();
        let op = api.operations.iter_mut().find(|op| op.id == "invokeAgent").unwrap();
        op.body.as_mut().unwrap().example = Some(serde_json::json!({"query": "it's"}));
        let pages = pages(&api);
        let curl = curl_of(&pages, "invokeAgent");
        assert!(curl.ends_with(r#"-d '{"query":"it'\''s"}'"#), "{curl}");
    }

    #[test]
    fn deprecated_operations_show_their_sunset() {
        let api = api();
        let pages = pages(&api);
        let op = api.operations.iter().find(|op| op.deprecated).expect("the spec deprecates one operation");
        let sunset = op.sunset.as_deref().unwrap();
        let page = &pages["agents.md"];
        let at = page.find(&format!("<a id=\"op-{}\"></a>", op.id)).unwrap();
        let section = &page[at..at + 1200.min(page.len() - at)];
        assert!(section.contains("**Deprecated.**") && section.contains(sunset), "{section}");
        let index = &pages["index.md"];
        assert!(index.contains(&format!("`{sunset}`")), "the index lists the sunset date");
    }

    #[test]
    fn index_covers_every_topic() {
        let api = api();
        let index = &pages(&api)["index.md"];
        for needle in [
            "## Base URLs",
            "https://api.run-agent.ai/v1",
            "## Authentication",
            "## Envelopes",
            "## Errors",
            "## Rate limits",
            "X-RateLimit-Remaining",
            "Retry-After",
            "## Pagination",
            "## Async operations",
            "## Streaming",
            "Last-Event-ID",
            "## Batch operations",
            "## Versioning and deprecation",
            "## Operations",
        ] {
            assert!(index.contains(needle), "{needle}");
        }
        // The description is rendered once, not repeated.
        assert_eq!(index.matches("## Errors").count(), 1);
        let TypeKind::Enum(codes) = &api.types["ErrorCode"].kind else { panic!() };
        for v in &codes.variants {
            assert!(index.contains(&format!("`{}`", v.api_name)), "{}", v.api_name);
        }
    }

    #[test]
    fn index_without_a_description_still_covers_every_topic() {
        let mut api = api();
        api.description = None;
        let index = &pages(&api)["index.md"];
        for heading in Topic::ALL.map(Topic::heading) {
            assert!(index.contains(&format!("\n## {heading}\n")), "{heading}");
        }
        // The generated error table, with meanings from ErrorCode's description.
        assert!(
            index.contains("| `AGENT_TIMEOUT` | 500 | The agent's program exceeded its timeout and was stopped. |")
        );
        assert!(index.contains("\"pagination\""), "a list envelope example");
    }

    #[test]
    fn tables_are_well_formed() {
        let cells = |line: &str| {
            let unescaped = line.replace("\\|", "");
            unescaped.matches('|').count()
        };
        for (page, text) in pages(&api()) {
            let mut in_fence = false;
            let mut columns: Option<usize> = None;
            for line in text.lines() {
                if is_fence(line) {
                    in_fence = !in_fence;
                }
                if in_fence || !line.starts_with('|') {
                    columns = None;
                    continue;
                }
                match columns {
                    None => columns = Some(cells(line)),
                    Some(n) => assert_eq!(cells(line), n, "{page}: {line}"),
                }
            }
        }
    }

    #[test]
    fn stream_pages_show_events_and_a_raw_stream() {
        let pages = pages(&api());
        let page = &pages["invocations.md"];
        assert!(page.contains("| `chunk` | [`StreamChunk`](models.md#model-streamchunk) |"));
        assert!(page.contains("event: start\nid: str_9fK2pQ:0\ndata: {\"stream_id\":\"str_9fK2pQ\""), "{page}");
        assert!(page.contains("event: done\nid: str_9fK2pQ:2\ndata: {\"result\":"), "{page}");
        assert!(!page.contains("event: error\n"), "the success stream has no error event");
        assert!(page.contains("ends with an `error` event (its `data` is a [`StreamError`](models.md#model-streamerror)) in place of `done`"));
    }

    #[test]
    fn models_show_constraints_and_uses() {
        let pages = pages(&api());
        let models = &pages["models.md"];
        assert!(models.contains("| `name` | string | yes | no | 1–64 chars, pattern `^[A-Za-z0-9][A-Za-z0-9_-]*$` |"));
        assert!(models.contains("items 1–100"));
        assert!(models.contains("the error responses of every operation"));
        assert!(models.contains("[`createAgent`](agents.md#op-createAgent) (request body)"));
    }

    #[test]
    fn output_is_deterministic() {
        let api = api();
        assert_eq!(pages(&api), pages(&api));
    }

    #[test]
    fn helpers() {
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code(""), "`\"\"`");
        assert_eq!(cell("a | b\nc\n\nd"), "a \\| b c<br><br>d");
        assert_eq!(first_paragraph("One. Two:\n\n```\nx\n```"), "One.");
        assert_eq!(first_sentence("The `a.b` thing. More."), "The `a.b` thing.");
        assert_eq!(nest_headings("## A\n```\n# not\n```\n### B", 4), "#### A\n```\n# not\n```\n##### B");
        assert_eq!(tidy("a  \n\n\n\nb\n```\n\n\n```\n"), "a\n\nb\n```\n\n\n```\n");
        assert_eq!(pct("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(range(Some(1), Some(64)).as_deref(), Some("1–64"));
        assert_eq!(anchor_text("Stream event.X"), "stream-event-x");
    }
}
