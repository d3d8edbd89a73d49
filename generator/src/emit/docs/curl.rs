//! The runnable curl example of each operation.

use super::Ctx;
use crate::ir::{ApiKeyLocation, BodyContent, Encoding, Method, Operation, ParamLocation, PathSegment, SecurityScheme};
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
        lines.extend(body_lines(cx, body.primary()));
    }
    lines.join(" \\\n  ")
}

/// The curl options that send a body of one media type: JSON as `-d`, a
/// form's fields as `--data-urlencode`, multipart fields as `-F` (files as
/// `@path`), text and bytes from a file.
fn body_lines(cx: &Ctx<'_>, content: &BodyContent) -> Vec<String> {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let example = || content.example.clone().unwrap_or_else(|| cx.example(&content.shape, 0));
    let fields = || match example() {
        serde_json::Value::Object(map) => map
            .into_iter()
            .flat_map(|(name, value)| match value {
                serde_json::Value::Array(items) => items.into_iter().map(|v| (name.clone(), v)).collect(),
                value => vec![(name, value)],
            })
            .collect(),
        _ => Vec::new(),
    };
    let text = |value: serde_json::Value| match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    match content.encoding {
        Encoding::Json => vec![
            format!("-H \"Content-Type: {}\"", dq(&content.media_type)),
            format!("-d {}", quote(&example().to_string())),
        ],
        Encoding::Form => fields()
            .into_iter()
            .map(|(name, value)| format!("--data-urlencode {}", quote(&format!("{name}={}", text(value)))))
            .collect(),
        Encoding::Multipart => {
            let files = cx.binary_fields(&content.shape);
            fields()
                .into_iter()
                .map(|(name, value)| {
                    if files.contains(&name.as_str()) {
                        format!("-F {}", quote(&format!("{name}=@file.bin")))
                    } else {
                        format!("-F {}", quote(&format!("{name}={}", text(value))))
                    }
                })
                .collect()
        }
        Encoding::Text | Encoding::Binary => {
            vec![format!("-H \"Content-Type: {}\"", dq(&content.media_type)), "--data-binary @body".to_owned()]
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(super::pct("a b/é"), "a%20b%2F%C3%A9");
    }
}
