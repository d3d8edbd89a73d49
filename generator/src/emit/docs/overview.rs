//! The overview page.

use super::markdown::*;
use super::tag_page::*;
use super::{Ctx, INDEX};
use crate::ir::{Operation, ParamLocation, ResponseBody, SecurityScheme, Shape, StatusCode, StructType, TypeKind};
use askama::Template;
use std::collections::BTreeSet;

/// A subject the overview covers whether or not `info.description` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Topic {
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
    pub(super) const ALL: [Topic; 10] = [
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
    pub(super) fn heading(self) -> &'static str {
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
pub(super) struct DescSection {
    pub(super) heading: String,
    pub(super) body: String,
}

/// Splits a description at its top-level headings (`#` or `##`), outside
/// code blocks: the text before the first one, and the sections.
pub(super) fn split_sections(text: &str) -> (String, Vec<DescSection>) {
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
pub(super) struct IndexView {
    pub(super) title: String,
    pub(super) version: String,
    pub(super) nav: String,
    pub(super) preamble: Option<String>,
    pub(super) servers: Vec<ServerRow>,
    pub(super) example_base_url: String,
    pub(super) groups: Vec<TocGroup>,
    pub(super) sections: Vec<IndexSection>,
    pub(super) auth: AuthFacts,
    pub(super) envelopes: EnvelopeFacts,
    pub(super) errors: ErrorFacts,
    pub(super) rate: RateFacts,
    pub(super) paging: PagingFacts,
    pub(super) idempotency: Vec<String>,
    pub(super) asyncs: Vec<String>,
    pub(super) streaming: StreamFacts,
    pub(super) batch: Vec<String>,
    pub(super) deprecated: Vec<DeprecatedRow>,
}

pub(super) struct ServerRow {
    pub(super) url: String,
    pub(super) description: String,
}

pub(super) struct TocGroup {
    pub(super) name: String,
    pub(super) file: String,
    pub(super) description: String,
    pub(super) ops: Vec<OpRow>,
}

pub(super) struct IndexSection {
    pub(super) heading: String,
    /// The section of `info.description`, or `None` when the description
    /// does not cover the topic and the template writes a short one.
    pub(super) text: Option<String>,
    /// [`Topic::kind`], or empty for a section that is no topic.
    pub(super) kind: &'static str,
}

pub(super) struct AuthFacts {
    pub(super) schemes: Vec<String>,
    pub(super) public: Vec<String>,
}

pub(super) struct EnvelopeFacts {
    pub(super) success: Vec<String>,
    pub(super) list: Vec<String>,
    pub(super) error: Vec<String>,
    /// Bodies that are not enveloped: the model and where it is answered.
    pub(super) bare: Vec<(String, Vec<String>)>,
    pub(super) success_example: Option<String>,
    pub(super) list_example: Option<String>,
    pub(super) error_example: Option<String>,
}

pub(super) struct ErrorFacts {
    /// The error-code enum, linked.
    pub(super) model: Option<String>,
    /// The error envelope(s), linked.
    pub(super) envelopes: String,
    pub(super) rows: Vec<ErrorRow>,
    /// Whether to print `rows`: not when the description already has a table
    /// of every code.
    pub(super) table: bool,
}

pub(super) struct ErrorRow {
    pub(super) code: String,
    pub(super) status: String,
    pub(super) meaning: String,
}

pub(super) struct RateFacts {
    pub(super) headers: Vec<HeaderRow>,
    pub(super) exempt: Vec<String>,
}

pub(super) struct PagingFacts {
    pub(super) ops: Vec<String>,
    pub(super) params: Vec<ParamRow>,
    pub(super) model: Option<String>,
    pub(super) items_field: String,
    pub(super) pagination_field: String,
    pub(super) example: Option<String>,
}

pub(super) struct StreamFacts {
    pub(super) ops: Vec<String>,
    pub(super) events: Vec<EventRow>,
    pub(super) resume_header: Option<String>,
}

pub(super) struct DeprecatedRow {
    pub(super) link: String,
    pub(super) request: String,
    pub(super) sunset: String,
}

pub(super) fn index_page(cx: &Ctx<'_>) -> IndexView {
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
pub(super) fn struct_fields<'a>(cx: &Ctx<'a>, shape: &Shape) -> Option<(&'a str, &'a StructType)> {
    let Shape::Named(name) = shape else { return None };
    let def = cx.type_def(name)?;
    match &def.kind {
        TypeKind::Struct(s) => Some((def.name.as_str(), s)),
        _ => None,
    }
}

pub(super) fn has_field(s: &StructType, name: &str) -> bool {
    s.fields.iter().any(|f| f.api_name == name)
}

pub(super) fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Sorts the JSON bodies of every response into success envelopes (`status`
/// and `data`), list envelopes (and `pagination`), error envelopes and
/// bodies that are not enveloped.
pub(super) fn envelope_facts(cx: &Ctx<'_>) -> EnvelopeFacts {
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
pub(super) fn error_facts(cx: &Ctx<'_>, section: Option<&str>) -> ErrorFacts {
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
pub(super) fn table_row(text: &str, code_value: &str) -> Option<(String, String)> {
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

pub(super) fn rate_facts(cx: &Ctx<'_>) -> RateFacts {
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

pub(super) fn paging_facts(cx: &Ctx<'_>) -> PagingFacts {
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

pub(super) fn stream_facts(cx: &Ctx<'_>) -> StreamFacts {
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
