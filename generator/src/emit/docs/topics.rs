//! The overview's facts about each topic but errors and envelopes (see
//! `errors.rs`): which operations and headers take part, read from the
//! IR and `api.conventions`. A fact list is empty when the API does not
//! follow the convention, and the overview then leaves its section out.

use super::markdown::{article, cell, code, pretty_json, value_code, yes_no};
use super::rows::{EventRow, HeaderRow, ParamRow, event_row, header_row, typed};
use super::{Ctx, INDEX};
use crate::ir::{ApiKeyLocation, Operation, ParamLocation, ResponseBody, SecurityScheme, Shape, StatusCode, TypeKind};

pub(super) struct AuthFacts {
    pub(super) schemes: Vec<String>,
    pub(super) public: Vec<String>,
}

pub(super) fn auth_facts(cx: &Ctx<'_>) -> AuthFacts {
    AuthFacts {
        schemes: cx
            .api
            .security_schemes
            .iter()
            .map(|(name, scheme)| {
                let text = scheme.description().map(cell).unwrap_or_default();
                let how = match scheme {
                    SecurityScheme::Bearer { format: Some(f), .. } => {
                        format!("HTTP bearer token ({f}, `Authorization: Bearer …`)")
                    }
                    SecurityScheme::Bearer { .. } => "HTTP bearer token (`Authorization: Bearer …`)".to_owned(),
                    SecurityScheme::Basic { .. } => {
                        "HTTP basic authentication (`Authorization: Basic …`, user and password)".to_owned()
                    }
                    SecurityScheme::ApiKey { location, name, .. } => {
                        let place = match location {
                            ApiKeyLocation::Header => "header",
                            ApiKeyLocation::Query => "query parameter",
                            ApiKeyLocation::Cookie => "cookie",
                        };
                        format!("an API key in the {} {place}", code(name))
                    }
                    SecurityScheme::OAuth2 { flows, .. } => {
                        let kinds: Vec<String> = flows.iter().map(|f| code(&f.kind)).collect();
                        format!("OAuth 2 access token (`Authorization: Bearer …`; flows: {})", kinds.join(", "))
                    }
                    SecurityScheme::OpenIdConnect { url, .. } => {
                        format!("OpenID Connect token (`Authorization: Bearer …`; discovery at {})", code(url))
                    }
                };
                format!("{}: {how}. {text}", code(name)).trim().to_owned()
            })
            .collect(),
        public: cx.api.operations.iter().filter(|op| !op.secured).map(|op| cx.op(op, INDEX)).collect(),
    }
}

pub(super) struct RateFacts {
    pub(super) headers: Vec<HeaderRow>,
    /// The `Retry-After` header of a `429`, if the spec documents one.
    pub(super) retry_after: Option<String>,
    /// Operations that answer without the rate-limit headers.
    pub(super) exempt: Vec<String>,
}

/// The rate-limit headers: the family of the one the convention found
/// (`X-RateLimit-Limit` gives every `X-RateLimit-*` header), then the
/// `Retry-After` of a `429` (the HTTP header for when to come back).
pub(super) fn rate_facts(cx: &Ctx<'_>) -> RateFacts {
    let mut facts = RateFacts { headers: Vec::new(), retry_after: None, exempt: Vec::new() };
    let Some(evidence) = &cx.api.conventions.rate_limit else { return facts };
    let lower = evidence.name.to_ascii_lowercase();
    let family = lower.strip_suffix("limit").unwrap_or(&lower);
    let mut seen = Vec::new();
    let mut retry = None;
    for op in &cx.api.operations {
        for r in &op.responses {
            for h in &r.headers {
                let name = h.api_name.to_ascii_lowercase();
                if name.starts_with(family) && !seen.contains(&name) {
                    seen.push(name);
                    facts.headers.push(header_row(cx, h, INDEX));
                } else if name == "retry-after" && r.status == StatusCode::Code(429) && retry.is_none() {
                    retry = Some(h);
                }
            }
        }
    }
    if let Some(h) = retry {
        facts.retry_after = Some(code(&h.api_name));
        facts.headers.push(header_row(cx, h, INDEX));
    }
    facts.exempt = cx
        .api
        .operations
        .iter()
        .filter(|op| {
            !op.responses.iter().any(|r| r.headers.iter().any(|h| h.api_name.eq_ignore_ascii_case(&evidence.name)))
        })
        .map(|op| cx.op(op, INDEX))
        .collect();
    facts
}

pub(super) struct PagingFacts {
    pub(super) ops: Vec<String>,
    pub(super) params: Vec<ParamRow>,
    pub(super) model: Option<String>,
    pub(super) items_field: String,
    pub(super) pagination_field: String,
    pub(super) example: Option<String>,
}

/// The paged lists (lowering marks them), with the page parameters and
/// the list body of the first.
pub(super) fn paging_facts(cx: &Ctx<'_>) -> PagingFacts {
    let paged: Vec<&Operation> = cx.api.operations.iter().filter(|op| op.pagination.is_some()).collect();
    let mut facts = PagingFacts {
        ops: paged.iter().map(|op| cx.op(op, INDEX)).collect(),
        params: Vec::new(),
        model: None,
        items_field: String::new(),
        pagination_field: String::new(),
        example: None,
    };
    let Some(op) = paged.first() else { return facts };
    let Some(p) = &op.pagination else { return facts };
    for param in op.params_in(ParamLocation::Query) {
        // The IR names the page parameter; the page size goes by its usual
        // names, and is only listed here, never relied on.
        if param.name == p.page_param || matches!(param.api_name.as_str(), "limit" | "per_page" | "page_size") {
            facts.params.push(ParamRow {
                name: code(&param.api_name),
                location: "query".into(),
                ty: cell(&typed(cx, &param.shape, INDEX)),
                required: yes_no(param.required).into(),
                default: param.default.as_ref().map_or_else(|| "—".to_owned(), value_code),
                description: cell(param.description.as_deref().unwrap_or("")),
            });
        }
    }
    for r in op.successes() {
        if let Some(ResponseBody::Json { shape, example }) = &r.body
            && let Some((name, s)) = cx.struct_of(shape)
        {
            facts.items_field = cx.wire_field(name, &p.items_field);
            if let Some(f) = s.fields.iter().find(|f| f.name == p.pagination_field) {
                facts.pagination_field = f.api_name.clone();
                facts.model = Some(cx.shape(&f.shape, INDEX));
            }
            facts.example = example.as_ref().map(pretty_json);
        }
    }
    facts
}

pub(super) struct IdempotencyFacts {
    /// The header, e.g. `` an `Idempotency-Key` ``.
    pub(super) header: String,
    pub(super) ops: Vec<String>,
}

pub(super) fn idempotency_facts(cx: &Ctx<'_>) -> IdempotencyFacts {
    let Some(evidence) = &cx.api.conventions.idempotency_key else {
        return IdempotencyFacts { header: String::new(), ops: Vec::new() };
    };
    IdempotencyFacts {
        header: format!("{} {}", article(&evidence.name), code(&evidence.name)),
        ops: cx
            .api
            .operations
            .iter()
            .filter(|op| op.params_in(ParamLocation::Header).any(|p| p.api_name.eq_ignore_ascii_case(&evidence.name)))
            .map(|op| cx.op(op, INDEX))
            .collect(),
    }
}

pub(super) struct AsyncFacts {
    /// The operations that answer `202` with the convention's handle, and
    /// the handle.
    pub(super) ops: Vec<String>,
    /// The operation that fetches one, linked.
    pub(super) poll: Option<String>,
    /// What its status is when it is over: `` `status` is `succeeded` or `failed` ``.
    pub(super) until: Option<String>,
    /// The operation that cancels one, linked.
    pub(super) cancel: Option<String>,
}

pub(super) fn async_facts(cx: &Ctx<'_>) -> AsyncFacts {
    let mut facts = AsyncFacts { ops: Vec::new(), poll: None, until: None, cancel: None };
    let Some(lr) = &cx.api.conventions.long_running else { return facts };
    facts.ops = cx
        .api
        .operations
        .iter()
        .filter(|op| {
            op.responses.iter().any(|r| {
                r.status == StatusCode::Code(202)
                    && matches!(&r.body, Some(ResponseBody::Json { shape: Shape::Named(n), .. }) if *n == lr.accepted)
            })
        })
        .map(|op| format!("{}, answering {}", cx.op(op, INDEX), cx.model(&lr.accepted, INDEX)))
        .collect();
    facts.poll = cx.op_named(&lr.poll).map(|op| cx.op(op, INDEX));
    facts.cancel = lr.cancel.as_deref().and_then(|c| cx.op_named(c)).map(|op| cx.op(op, INDEX));
    let ends: Vec<String> = [Some(&lr.succeeded), lr.failed.as_ref(), lr.cancelled.as_ref()]
        .into_iter()
        .flatten()
        .map(|v| code(&cx.wire_variant(&lr.status_enum, v)))
        .collect();
    facts.until = Some(format!("{} is {}", code(&cx.wire_field(&lr.record, &lr.status_field)), one_of(&ends)));
    facts
}

pub(super) struct StreamFacts {
    pub(super) ops: Vec<String>,
    pub(super) events: Vec<EventRow>,
    pub(super) resume_header: Option<String>,
    /// How a stream ends, from the events lowering marks as terminal.
    pub(super) ends: Option<String>,
}

pub(super) fn stream_facts(cx: &Ctx<'_>) -> StreamFacts {
    let streams: Vec<&Operation> = cx.api.operations.iter().filter(|op| op.is_stream()).collect();
    let mut events: Vec<EventRow> = Vec::new();
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for op in &streams {
        for r in op.successes() {
            if let Some(ResponseBody::EventStream(s)) = &r.body {
                for e in &s.events {
                    let row = event_row(cx, e, INDEX);
                    if events.iter().any(|known| known.name == row.name) {
                        continue;
                    }
                    match (e.terminal, e.failure.is_some()) {
                        (true, true) => failed.push(row.name.clone()),
                        (true, false) => done.push(row.name.clone()),
                        _ => {}
                    }
                    events.push(row);
                }
            }
        }
    }
    let ends = match (done.is_empty(), failed.is_empty()) {
        (false, false) => {
            Some(format!("A stream ends with {}, or with {} when it fails.", one_of(&done), one_of(&failed)))
        }
        (false, true) => Some(format!("A stream ends with {}.", one_of(&done))),
        (true, false) => Some(format!("A stream that fails ends with {}.", one_of(&failed))),
        (true, true) => None,
    };
    // `Last-Event-ID` is the name the Server-Sent Events standard gives the
    // resume header; no convention is needed to know it.
    let resume_header = streams
        .iter()
        .flat_map(|op| op.params_in(ParamLocation::Header))
        .find(|p| p.api_name.eq_ignore_ascii_case("last-event-id"))
        .map(|p| code(&p.api_name));
    StreamFacts { ops: streams.iter().map(|op| cx.op(op, INDEX)).collect(), events, resume_header, ends }
}

/// Batch operations, by shape: their success body is, or holds, a list
/// whose items are each a success or the error envelope (a `oneOf` with
/// the envelope among its alternatives).
pub(super) fn batch_facts(cx: &Ctx<'_>) -> Vec<String> {
    let Some(error) = &cx.api.conventions.error else { return Vec::new() };
    let mixed = |shape: &Shape| {
        let Shape::Array(a) = shape else { return false };
        let Shape::Named(item) = a.items.as_ref() else { return false };
        matches!(cx.type_def(item).map(|d| &d.kind), Some(TypeKind::OneOf(o)) if o.variants.iter().any(|v| v.type_name == error.envelope))
    };
    cx.api
        .operations
        .iter()
        .filter(|op| {
            op.successes().any(|r| match &r.body {
                Some(ResponseBody::Json { shape, .. }) => {
                    mixed(shape)
                        || cx
                            .struct_of(shape)
                            .is_some_and(|(_, s)| s.fields.iter().any(|f| f.required && mixed(&f.shape)))
                }
                _ => false,
            })
        })
        .map(|op| match &op.body {
            Some(b) => format!("{} (request body {})", cx.op(op, INDEX), cx.shape(&b.primary().shape, INDEX)),
            None => cx.op(op, INDEX),
        })
        .collect()
}

pub(super) struct VersionFacts {
    /// The version segment of a base URL's path (`v1`), if one has it.
    pub(super) in_path: Option<String>,
    pub(super) deprecated: Vec<DeprecatedRow>,
}

pub(super) struct DeprecatedRow {
    pub(super) link: String,
    pub(super) request: String,
    pub(super) sunset: String,
}

pub(super) fn version_facts(cx: &Ctx<'_>) -> VersionFacts {
    let in_path = cx.api.servers.iter().find_map(|s| {
        let path = s.url.split_once("://").map_or(s.url.as_str(), |(_, rest)| rest);
        let last = path.trim_end_matches('/').rsplit('/').next()?;
        let digits = last.strip_prefix(['v', 'V'])?;
        (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.') && path.contains('/'))
            .then(|| last.to_owned())
    });
    VersionFacts {
        in_path,
        deprecated: cx
            .api
            .operations
            .iter()
            .filter(|op| op.deprecated)
            .map(|op| DeprecatedRow {
                link: cx.op(op, INDEX),
                request: code(&format!("{} {}", op.method.as_str(), op.path)),
                sunset: op.sunset.as_deref().map_or_else(|| "not set".to_owned(), code),
            })
            .collect(),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
