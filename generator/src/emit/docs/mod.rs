//! Markdown docs: `docs/index.md`, one page per tag (`docs/<slug>.md`) and
//! `docs/models.md`, written for a code-hosting site (GitHub-flavoured
//! Markdown).
//!
//! The page layouts are the askama templates of `templates/docs/`. This
//! module turns the IR into small view structs whose fields are ready-made
//! Markdown (type names with links, table cells, curl commands), so the
//! templates only arrange them.
//!
//! What the pages say about the API's conventions (its error envelope and
//! codes, long-running operations, rate limits, idempotency keys, how
//! streams end) is read from `api.conventions` and `api.prose`, found once
//! while lowering; nothing here recognizes a convention by a schema's name
//! or parses the spec's Markdown for facts. A convention the spec does not
//! follow leaves its section out. Names that are not the spec's (the
//! environment variables of the curl examples) come from [`Names`].
//!
//! Layout: this file holds the page list, the cross-page links and the
//! entry point; `markdown.rs` the text helpers; `example.rs` the made-up
//! example values; `curl.rs` the curl commands; `rows.rs` the table rows
//! pages share; `tag_page.rs`, `models_page.rs` and `overview.rs` one
//! page kind each, with the overview's per-topic facts in `topics.rs` and
//! its error and envelope facts in `errors.rs`.
//!
//! Anchors are explicit and stable: `op-<operationId>` before every
//! operation on its tag page, `model-<schema name in lower case>` before
//! every model on the models page. Headings may be reworded freely; links
//! never use heading-derived anchors.

mod cli;
mod curl;
mod errors;
mod example;
mod markdown;
mod models_page;
mod overview;
mod rows;
mod tag_page;
#[cfg(test)]
mod tests;
mod topics;

use super::{EmitError, Files};
use crate::config::Names;
use crate::ir::{Api, Field, Operation, Shape, StructType, TypeDef, TypeKind};
use askama::Template;
use markdown::{code, first_sentence, tidy};
use std::collections::{BTreeMap, BTreeSet};

/// The page every model is on.
const MODELS: &str = "models.md";
/// The overview page.
const INDEX: &str = "index.md";

/// Adds `docs/index.md`, the tag pages and `docs/models.md`.
pub fn emit(api: &Api, names: &Names, files: &mut Files) -> Result<(), EmitError> {
    let cx = Ctx::new(api, names);
    files.markdown("docs/index.md".into(), render(&overview::index_page(&cx), INDEX)?);
    for page in &cx.pages {
        files.markdown(format!("docs/{}", page.file), render(&tag_page::tag_page(&cx, page), &page.file)?);
    }
    files.markdown(format!("docs/{MODELS}"), render(&models_page::models_page(&cx), MODELS)?);
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
    names: &'a Names,
    pages: Vec<Page<'a>>,
    /// operationId to the file of its page.
    op_file: BTreeMap<&'a str, String>,
    /// Rust type name to its anchor on the models page.
    model_anchor: BTreeMap<&'a str, String>,
    /// operationId to the command that sends it (`agents list`).
    cli_lines: BTreeMap<String, String>,
}

impl<'a> Ctx<'a> {
    fn new(api: &'a Api, names: &'a Names) -> Self {
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
        let cli_lines = crate::emit::cli::plan::command_lines(api);
        Ctx { api, names, pages, op_file, model_anchor, cli_lines }
    }

    fn type_def(&self, name: &str) -> Option<&'a TypeDef> {
        self.api.types.get(name)
    }

    /// The wire names of a struct's binary properties (files), directly or
    /// as array items.
    fn binary_fields(&self, shape: &Shape) -> Vec<&'a str> {
        let Some((_, s)) = self.struct_of(shape) else { return Vec::new() };
        s.fields
            .iter()
            .filter(|f| match &f.shape {
                Shape::Binary => true,
                Shape::Array(a) => *a.items == Shape::Binary,
                _ => false,
            })
            .map(|f| f.api_name.as_str())
            .collect()
    }

    /// The named struct a shape refers to, with its Rust name.
    fn struct_of(&self, shape: &Shape) -> Option<(&'a str, &'a StructType)> {
        let Shape::Named(name) = shape else { return None };
        let def = self.type_def(name)?;
        match &def.kind {
            TypeKind::Struct(s) => Some((def.name.as_str(), s)),
            _ => None,
        }
    }

    /// The wire name of a struct's field, from the Rust names the
    /// conventions use (the Rust name itself if the field is not found).
    fn wire_field(&self, type_name: &str, field: &str) -> String {
        self.struct_of(&Shape::Named(type_name.to_owned()))
            .and_then(|(_, s)| s.fields.iter().find(|f| f.name == field))
            .map_or_else(|| field.to_owned(), |f| f.api_name.clone())
    }

    /// The wire value of an enum's variant, from its Rust name.
    fn wire_variant(&self, enum_name: &str, variant: &str) -> String {
        match self.type_def(enum_name).map(|d| &d.kind) {
            Some(TypeKind::Enum(e)) => e.variants.iter().find(|v| v.name == variant).map(|v| v.api_name.clone()),
            _ => None,
        }
        .unwrap_or_else(|| variant.to_owned())
    }

    /// The operation with a Rust method name (as the conventions name them).
    fn op_named(&self, name: &str) -> Option<&'a Operation> {
        self.api.operations.iter().find(|op| op.name == name)
    }

    /// Whether any operation needs credentials, so the docs talk about a key.
    fn any_secured(&self) -> bool {
        self.api.operations.iter().any(|op| op.secured)
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
            Shape::Binary => "file (bytes)".into(),
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
}

/// The links to every page, the current one in bold.
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

fn op_anchor(op: &Operation) -> String {
    format!("op-{}", op.id)
}

/// Lower-case letters, digits, `-` and `_`; anything else becomes `-`.
fn anchor_text(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect()
}
