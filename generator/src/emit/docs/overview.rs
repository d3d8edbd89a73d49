//! The overview page (`index.md`): the API's own introduction, its base
//! URLs, a table of contents, then a section per topic.
//!
//! The sections of `info.description` come first, as written, in their
//! order (lowering split them and named the topic of each). A topic the
//! description leaves out gets a short generated section when the API has
//! something to say about it: a convention it follows, operations of the
//! kind. Every section about a topic ends with what the pages know about it
//! (linked operations and models, tables of headers and codes).

use super::errors::{EnvelopeFacts, ErrorFacts, envelope_facts, error_facts};
use super::markdown::{cell, first_paragraph, nest_headings};
use super::rows::{OpRow, op_row};
use super::topics::{
    AsyncFacts, AuthFacts, IdempotencyFacts, PagingFacts, RateFacts, StreamFacts, VersionFacts, async_facts,
    auth_facts, batch_facts, idempotency_facts, paging_facts, rate_facts, stream_facts, version_facts,
};
use super::{Ctx, INDEX, nav};
use crate::ir::ProseTopic;
use askama::Template;

/// The name the template switches on.
fn kind(topic: ProseTopic) -> &'static str {
    match topic {
        ProseTopic::Authentication => "authentication",
        ProseTopic::Envelopes => "envelopes",
        ProseTopic::Errors => "errors",
        ProseTopic::RateLimits => "rate-limits",
        ProseTopic::Pagination => "pagination",
        ProseTopic::Idempotency => "idempotency",
        ProseTopic::LongRunning => "async",
        ProseTopic::Streaming => "streaming",
        ProseTopic::Batch => "batch",
        ProseTopic::Versioning => "versioning",
    }
}

/// The heading of a generated section.
pub(super) fn heading(topic: ProseTopic) -> &'static str {
    match topic {
        ProseTopic::Authentication => "Authentication",
        ProseTopic::Envelopes => "Envelopes",
        ProseTopic::Errors => "Errors",
        ProseTopic::RateLimits => "Rate limits",
        ProseTopic::Pagination => "Pagination",
        ProseTopic::Idempotency => "Idempotent retries",
        ProseTopic::LongRunning => "Async operations",
        ProseTopic::Streaming => "Streaming",
        ProseTopic::Batch => "Batch operations",
        ProseTopic::Versioning => "Versioning and deprecation",
    }
}

#[derive(Template)]
#[template(path = "docs/index.md", escape = "none")]
pub(super) struct IndexView {
    title: String,
    version: String,
    nav: String,
    preamble: Option<String>,
    servers: Vec<ServerRow>,
    example_base_url: String,
    /// The variables the curl examples read; no key when nothing is secured.
    base_url_env: String,
    api_key_env: Option<String>,
    groups: Vec<TocGroup>,
    sections: Vec<IndexSection>,
    auth: AuthFacts,
    envelopes: EnvelopeFacts,
    errors: ErrorFacts,
    rate: RateFacts,
    paging: PagingFacts,
    idempotency: IdempotencyFacts,
    asyncs: AsyncFacts,
    streaming: StreamFacts,
    batch: Vec<String>,
    versioning: VersionFacts,
    webhooks: Vec<WebhookRow>,
}

/// A request the API sends on its own (an OpenAPI 3.1 webhook).
struct WebhookRow {
    name: String,
    method: String,
    body: String,
    answers: String,
    description: String,
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
    /// [`kind`] of its topic, or empty for a section that is no topic.
    kind: &'static str,
}

pub(super) fn index_page(cx: &Ctx<'_>) -> IndexView {
    let api = cx.api;
    let here = INDEX;
    let prose = &api.prose;
    // The description's sections nest under the page's `##` headings.
    let mut sections: Vec<IndexSection> = prose
        .sections
        .iter()
        .map(|s| IndexSection {
            heading: s.heading.clone(),
            text: Some(nest_headings(&s.body, 3)),
            kind: s.topic.map_or("", kind),
        })
        .collect();

    let auth = auth_facts(cx);
    let envelopes = envelope_facts(cx);
    let errors = error_facts(cx);
    let rate = rate_facts(cx);
    let paging = paging_facts(cx);
    let idempotency = idempotency_facts(cx);
    let asyncs = async_facts(cx);
    let streaming = stream_facts(cx);
    let batch = batch_facts(cx);
    let versioning = version_facts(cx);

    // Topics the description leaves out get a section of their own when
    // there is something to say.
    for topic in ProseTopic::ALL {
        if prose.sections.iter().any(|s| s.topic == Some(topic)) {
            continue;
        }
        let relevant = match topic {
            ProseTopic::Authentication => !auth.schemes.is_empty(),
            ProseTopic::Envelopes => envelopes.relevant(),
            ProseTopic::Errors => errors.envelope.is_some(),
            ProseTopic::RateLimits => !rate.headers.is_empty(),
            ProseTopic::Pagination => !paging.ops.is_empty(),
            ProseTopic::Idempotency => !idempotency.ops.is_empty(),
            ProseTopic::LongRunning => !asyncs.ops.is_empty(),
            ProseTopic::Streaming => !streaming.ops.is_empty(),
            ProseTopic::Batch => !batch.is_empty(),
            ProseTopic::Versioning => versioning.in_path.is_some() || !versioning.deprecated.is_empty(),
        };
        if relevant {
            sections.push(IndexSection { heading: heading(topic).into(), text: None, kind: kind(topic) });
        }
    }

    let preamble = nest_headings(&prose.preamble, 3);
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
        base_url_env: cx.names.base_url_env(),
        api_key_env: cx.any_secured().then(|| cx.names.api_key_env()),
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
        versioning,
        webhooks: api
            .webhooks
            .iter()
            .map(|w| WebhookRow {
                name: format!("`{}`", w.name),
                method: format!("`{}`", w.method.as_str()),
                body: w.body.as_ref().map(|b| cx.shape(&b.primary().shape, here)).unwrap_or_else(|| "none".into()),
                answers: w.responses.iter().map(|r| format!("`{}`", r.status.as_spec())).collect::<Vec<_>>().join(", "),
                description: cell(w.summary.as_deref().or(w.description.as_deref()).unwrap_or("")),
            })
            .collect(),
    }
}
