//! One page per tag: every operation of the tag with its parameters, body,
//! curl example, responses, headers, links and events.

use super::curl::curl;
use super::markdown::{article, block, cell, code, first_paragraph, pretty_json, status_code, value_code, yes_no};
use super::rows::{EventRow, HeaderRow, OpRow, ParamRow, event_row, header_row, op_row, typed};
use super::{Ctx, Page, nav, op_anchor};
use crate::ir::{EventStream, Operation, ResponseBody, Shape, TypeKind};
use askama::Template;
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "docs/tag.md", escape = "none")]
pub(super) struct TagView {
    name: String,
    description: Option<String>,
    nav: String,
    summary: Vec<OpRow>,
    also: Vec<OpRow>,
    ops: Vec<OpView>,
}

struct OpView {
    anchor: String,
    id: String,
    request: String,
    title: String,
    /// What the operation needs to authenticate; `None` when the API has
    /// no security at all, so there is nothing to say.
    auth: Option<String>,
    deprecated: Option<String>,
    description: Option<String>,
    params: Vec<ParamRow>,
    body: Option<BodyView>,
    curl: String,
    /// The same request from the command-line client.
    cli: Option<String>,
    responses: Vec<ResponseRow>,
    headers: Vec<HeaderRow>,
    examples: Vec<ExampleView>,
    events: Vec<EventRow>,
    stream: Option<StreamView>,
    links: Vec<LinkRow>,
    callbacks: Vec<CallbackRow>,
}

/// A request the API makes back to the caller (an OpenAPI callback).
struct CallbackRow {
    name: String,
    request: String,
    body: String,
    answers: String,
    description: String,
}

/// An OpenAPI link of one of the operation's responses.
struct LinkRow {
    status: String,
    target: String,
    parameters: String,
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

struct ExampleView {
    status: String,
    json: String,
}

struct StreamView {
    /// The events of a successful stream, on the wire.
    success: String,
    /// How a failed stream ends, when it has a failure event.
    failure: Option<String>,
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

fn op_view(cx: &Ctx<'_>, op: &Operation, here: &str) -> OpView {
    let has_security = cx.any_secured() || !cx.api.security_schemes.is_empty();
    let auth = has_security.then(|| {
        if op.secured {
            // Every scheme the IR knows is an HTTP bearer scheme.
            let schemes: Vec<String> = cx.api.security_schemes.keys().map(|k| code(k)).collect();
            if schemes.is_empty() {
                "API key".to_owned()
            } else {
                format!("API key ({}, `Authorization: Bearer …`)", schemes.join(", "))
            }
        } else {
            "none (public)".to_owned()
        }
    });
    let deprecated = op.deprecated.then(|| match &op.sunset {
        Some(date) => format!("This operation is deprecated and will be removed after **{date}** (its sunset date)."),
        None => "This operation is deprecated and will be removed in a future version.".to_owned(),
    });
    let params = op
        .parameters
        .iter()
        .map(|p| {
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
                ty: cell(&typed(cx, &p.shape, here)),
                required: yes_no(p.required).to_owned(),
                default: p.default.as_ref().map_or_else(|| "—".to_owned(), value_code),
                description: cell(&description),
            }
        })
        .collect();
    let body = op.body.as_ref().map(|b| BodyView {
        model: cx.shape(&b.primary().shape, here),
        content_type: b.contents.iter().map(|c| code(&c.media_type)).collect::<Vec<_>>().join(", "),
        required: b.required,
        description: block(b.description.as_deref(), 4),
        example: b.primary().example.as_ref().map(pretty_json),
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
                Some(ResponseBody::Text { media_type }) => cell(&format!("text ({})", code(media_type))),
                Some(ResponseBody::Binary { media_type }) => cell(&format!("bytes ({})", code(media_type))),
                Some(ResponseBody::EventStream(s)) => {
                    let text = format!("event stream ({}) of {}", code("text/event-stream"), cx.shape(&s.frame, here));
                    // The Events section (and its anchor) exists only when
                    // the spec names the events.
                    if s.events.is_empty() {
                        cell(&text)
                    } else {
                        cell(&format!("{text}, see [Events](#events-{})", op.id))
                    }
                }
            },
        })
        .collect();
    // One row per header and meaning: a header documented differently for
    // different statuses (Retry-After on a 409 and on a 429) gets a row each.
    let mut headers: BTreeMap<(&str, &str), (HeaderRow, Vec<String>)> = BTreeMap::new();
    for r in &op.responses {
        for h in &r.headers {
            let key = (h.api_name.as_str(), h.description.as_deref().unwrap_or(""));
            let entry = headers.entry(key).or_insert_with(|| (header_row(cx, h, here), Vec::new()));
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
    let stream = op.event_stream();
    let events = stream.map(|s| s.events.iter().map(|e| event_row(cx, e, here)).collect()).unwrap_or_default();
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
    let callbacks = op
        .callbacks
        .iter()
        .map(|c| CallbackRow {
            name: code(&c.name),
            request: code(&format!("{} {}", c.method.as_str(), c.expression)),
            body: c.body.as_ref().map(|b| cx.shape(&b.primary().shape, here)).unwrap_or_else(|| "none".into()),
            answers: c.responses.iter().map(|r| code(&r.status.as_spec())).collect::<Vec<_>>().join(", "),
            description: cell(c.summary.as_deref().or(c.description.as_deref()).unwrap_or("")),
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
        cli: super::cli::cli(cx, op),
        responses,
        headers,
        examples,
        events,
        stream: stream.map(|s| stream_view(cx, s, here)),
        links,
        callbacks,
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

/// A made-up stream on the wire, from the event schemas: the events of a
/// successful stream once each, in spec order, up to the first that ends
/// it; a failure event (lowering marks it) would end a failed stream in
/// place of that last one.
fn stream_view(cx: &Ctx<'_>, stream: &EventStream, here: &str) -> StreamView {
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
    let (failures, others): (Vec<_>, Vec<_>) = stream.events.iter().partition(|e| e.failure.is_some());
    let end = others.iter().position(|e| e.terminal).map_or(others.len(), |i| i + 1);
    let success = &others[..end];
    let lines: Vec<String> = success
        .iter()
        .enumerate()
        .map(|(seq, e)| format!("event: {}\nid: {id_prefix}{seq}\ndata: {}", e.api_name, cx.example(&e.data, 0)))
        .collect();
    let failure = match (failures.first(), success.last()) {
        (Some(failed), Some(last)) => Some(format!(
            "A stream that fails after it started ends with {} {} event (its `data` is a {}) in place of {}.",
            article(&failed.api_name),
            code(&failed.api_name),
            cx.shape(&failed.data, here),
            code(&last.api_name)
        )),
        _ => None,
    };
    StreamView { success: lines.join("\n\n"), failure }
}
