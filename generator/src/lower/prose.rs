//! Reads what the spec's Markdown prose says that the docs need as data:
//! the top-level sections of `info.description` and the topic each covers,
//! and each error code's statuses and meaning from a Markdown table.
//!
//! This runs once, after `conventions.rs` (it needs the error convention's
//! code enum), so that the docs emitter lays pages out from the IR and never
//! parses Markdown itself. What the spec's *shape* says is not read here.

use crate::ir::{Api, ErrorCodeProse, Prose, ProseSection, ProseTopic, ResponseBody, Shape, TypeKind};

/// Fills `api.prose`.
pub fn read(api: &mut Api) {
    let (preamble, sections) = match api.description.as_deref() {
        Some(text) => split_sections(text),
        None => (String::new(), Vec::new()),
    };
    let error_codes = error_codes(api, &sections);
    api.prose = Prose { preamble, sections, error_codes };
}

/// Whether a line opens or closes a fenced code block.
fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The level of an ATX heading (`## x` is 2).
fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    let rest = &line[hashes..];
    ((1..=6).contains(&hashes) && (rest.is_empty() || rest.starts_with(' '))).then_some(hashes)
}

/// The words that make a heading (lower case) be about a topic.
fn topic_words(topic: ProseTopic) -> &'static [&'static str] {
    match topic {
        ProseTopic::Authentication => &["auth"],
        ProseTopic::Envelopes => &["envelope"],
        ProseTopic::Errors => &["error"],
        ProseTopic::RateLimits => &["rate limit", "rate-limit", "ratelimit", "throttl"],
        ProseTopic::Pagination => &["paginat", "paging"],
        ProseTopic::Idempotency => &["idempot"],
        ProseTopic::LongRunning => &["async", "long-running", "long running"],
        ProseTopic::Streaming => &["stream", "server-sent"],
        ProseTopic::Batch => &["batch"],
        ProseTopic::Versioning => &["version", "deprecat"],
    }
}

/// Splits a description at its top-level headings (`#` or `##`), outside
/// code blocks: the text before the first one, and the sections, each
/// tagged with the first topic its heading names that no earlier section
/// took (so an overview shows each topic once).
fn split_sections(text: &str) -> (String, Vec<ProseSection>) {
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
    let mut covered = Vec::new();
    let sections = sections
        .into_iter()
        .map(|(heading, body)| {
            let lower = heading.to_lowercase();
            let topic = ProseTopic::ALL
                .into_iter()
                .find(|t| !covered.contains(t) && topic_words(*t).iter().any(|w| lower.contains(w)));
            covered.extend(topic);
            ProseSection { heading, body: body.join("\n").trim().to_owned(), topic }
        })
        .collect();
    (preamble.join("\n").trim().to_owned(), sections)
}

/// Each code of the error convention's code enum, with its statuses and
/// meaning from a table in the enum's description or in `info.description`
/// (the enum's own first: it is next to the codes).
fn error_codes(api: &Api, sections: &[ProseSection]) -> Vec<ErrorCodeProse> {
    let Some(error) = &api.conventions.error else { return Vec::new() };
    let Some(def) = error.code_enum.as_ref().and_then(|n| api.types.get(n)) else { return Vec::new() };
    let TypeKind::Enum(e) = &def.kind else { return Vec::new() };
    let tables: Vec<&str> = [def.description.as_deref(), api.description.as_deref()].into_iter().flatten().collect();
    let overview = sections.iter().find(|s| s.topic == Some(ProseTopic::Errors));
    e.variants
        .iter()
        .map(|v| {
            let named = format!("`{}`", v.api_name);
            let (statuses, meaning) = match tables.iter().find_map(|t| table_row(t, &v.api_name)) {
                Some((status, meaning)) => (
                    status.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                    Some(meaning).filter(|m| !m.is_empty()),
                ),
                None => (mentioned_statuses(api, &error.envelope, &v.api_name, &named), None),
            };
            ErrorCodeProse {
                code: v.api_name.clone(),
                statuses,
                meaning,
                in_overview: overview.is_some_and(|s| s.body.contains(&named)),
            }
        })
        .collect()
}

/// The statuses of a code no table lists: those the error convention maps
/// to it, and those of the error responses (with the envelope) whose
/// description names it.
fn mentioned_statuses(api: &Api, envelope: &str, code: &str, named: &str) -> Vec<String> {
    let mut out: Vec<String> = api
        .conventions
        .error
        .iter()
        .flat_map(|e| e.status_codes.iter())
        .filter(|(_, c)| *c == code)
        .map(|(status, _)| status.to_string())
        .collect();
    for op in &api.operations {
        for r in &op.responses {
            let enveloped = matches!(&r.body, Some(ResponseBody::Json { shape: Shape::Named(n), .. }) if n == envelope);
            if enveloped && r.description.contains(named) {
                out.push(r.status.as_spec());
            }
        }
    }
    out.sort();
    out.dedup();
    out
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
            .filter(|i| *i > 0 && Some(*i) != status_col);
        let get = |i: Option<usize>| i.and_then(|i| cells.get(i)).cloned().unwrap_or_default();
        return Some((get(status_col), get(meaning_col)));
    }
    None
}

#[cfg(test)]
mod tests;
