//! One page per tag: every operation of the tag with its parameters, body,
//! curl example, responses, headers, links and events.

use super::curl::curl;
use super::markdown::*;
use super::{Ctx, INDEX, MODELS, Page, op_anchor};
use crate::ir::{Operation, ResponseBody, Shape, TypeKind};
use askama::Template;
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "docs/tag.md", escape = "none")]
pub(super) struct TagView {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) nav: String,
    pub(super) summary: Vec<OpRow>,
    pub(super) also: Vec<OpRow>,
    pub(super) ops: Vec<OpView>,
}

/// One line of a table of operations.
pub(super) struct OpRow {
    pub(super) link: String,
    pub(super) request: String,
    pub(super) summary: String,
}

pub(super) struct OpView {
    pub(super) anchor: String,
    pub(super) id: String,
    pub(super) request: String,
    pub(super) title: String,
    pub(super) auth: String,
    pub(super) deprecated: Option<String>,
    pub(super) description: Option<String>,
    pub(super) params: Vec<ParamRow>,
    pub(super) body: Option<BodyView>,
    pub(super) curl: String,
    pub(super) responses: Vec<ResponseRow>,
    pub(super) headers: Vec<HeaderRow>,
    pub(super) examples: Vec<ExampleView>,
    pub(super) events: Vec<EventRow>,
    pub(super) stream: Option<StreamView>,
    pub(super) links: Vec<LinkRow>,
}

/// An OpenAPI link of one of the operation's responses.
pub(super) struct LinkRow {
    pub(super) status: String,
    pub(super) target: String,
    pub(super) parameters: String,
    pub(super) description: String,
}

pub(super) struct ParamRow {
    pub(super) name: String,
    pub(super) location: String,
    pub(super) ty: String,
    pub(super) required: String,
    pub(super) default: String,
    pub(super) description: String,
}

pub(super) struct BodyView {
    pub(super) model: String,
    pub(super) content_type: String,
    pub(super) required: bool,
    pub(super) description: Option<String>,
    pub(super) example: Option<String>,
}

pub(super) struct ResponseRow {
    pub(super) status: String,
    pub(super) description: String,
    pub(super) body: String,
}

pub(super) struct HeaderRow {
    pub(super) name: String,
    pub(super) ty: String,
    pub(super) statuses: String,
    pub(super) description: String,
}

pub(super) struct ExampleView {
    pub(super) status: String,
    pub(super) json: String,
}

pub(super) struct EventRow {
    pub(super) name: String,
    pub(super) data: String,
}

pub(super) struct StreamView {
    /// The events of a successful stream, on the wire.
    pub(super) success: String,
    /// How a failed stream ends, when it has an `error` event.
    pub(super) failure: Option<String>,
}

pub(super) fn op_row(cx: &Ctx<'_>, op: &Operation, here: &str) -> OpRow {
    let mut summary = cell(op.summary.as_deref().unwrap_or(""));
    if op.deprecated && !summary.to_lowercase().contains("deprecated") {
        summary.push_str(" **(deprecated)**");
    }
    OpRow { link: cx.op(op, here), request: code(&format!("{} {}", op.method.as_str(), op.path)), summary }
}

pub(super) fn nav(cx: &Ctx<'_>, here: &str) -> String {
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

pub(super) fn tag_page(cx: &Ctx<'_>, page: &Page<'_>) -> TagView {
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

pub(super) fn op_view(cx: &Ctx<'_>, op: &Operation, here: &str) -> OpView {
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
pub(super) fn sent_with(op: &Operation, statuses: &[String]) -> String {
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
pub(super) fn stream_view(cx: &Ctx<'_>, stream: &crate::ir::EventStream, here: &str) -> StreamView {
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
