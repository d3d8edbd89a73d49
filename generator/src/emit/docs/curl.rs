//! The runnable curl example of each operation.

use super::Ctx;
use crate::ir::{ApiKeyLocation, Method, Operation, ParamLocation, PathSegment, SecurityScheme};
use serde_json::Value;

/// Percent-encodes everything but the unreserved characters, so the result
/// is safe in a URL and inside double quotes in a shell.
pub(super) fn pct(text: &str) -> String {
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
pub(super) fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text inside shell double quotes.
pub(super) fn dq(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A runnable curl command: the base URL and key come from the environment
/// variables [`Names`](crate::config::Names) chooses (`$PETS_BASE_URL`,
/// `$PETS_API_KEY`), path parameters and required query parameters from
/// their examples, the body from the request's example.
pub(super) fn curl(cx: &Ctx<'_>, op: &Operation) -> String {
    let value_of = |p: &crate::ir::Parameter| {
        p.example.clone().or_else(|| p.default.clone()).unwrap_or_else(|| cx.example(&p.shape, 0))
    };
    let mut url = format!("${}", cx.names.base_url_env());
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
    // The credentials of the operation's first requirement, each where its
    // scheme sends it; the key comes from the one variable the client reads.
    let key = format!("${}", cx.names.api_key_env());
    let mut auth_lines = Vec::new();
    let first = op.security.iter().find(|requirement| !requirement.is_empty()).filter(|_| op.secured);
    for (name, _) in first.into_iter().flatten() {
        match cx.api.security_schemes.get(name) {
            Some(SecurityScheme::Basic { .. }) => auth_lines.push(format!("-u \"{key}\"")),
            Some(SecurityScheme::ApiKey { location: ApiKeyLocation::Header, name, .. }) => {
                auth_lines.push(format!("-H \"{}: {key}\"", dq(name)))
            }
            Some(SecurityScheme::ApiKey { location: ApiKeyLocation::Query, name, .. }) => {
                query.push(format!("{}={key}", pct(name)))
            }
            Some(SecurityScheme::ApiKey { location: ApiKeyLocation::Cookie, name, .. }) => {
                auth_lines.push(format!("-b \"{}={key}\"", dq(name)))
            }
            _ => auth_lines.push(format!("-H \"Authorization: Bearer {key}\"")),
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
    lines.extend(auth_lines);
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

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(super::pct("a b/é"), "a%20b%2F%C3%A9");
    }
}
