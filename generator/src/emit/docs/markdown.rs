//! Markdown helpers: code spans, table cells, summaries, heading levels.

use crate::ir::{ArrayShape, Shape, StatusCode};
use serde_json::Value;

/// Text as an inline code span, whatever backticks it contains.
pub(super) fn code(text: &str) -> String {
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
pub(super) fn value_code(value: &Value) -> String {
    match value {
        Value::String(s) => code(s),
        other => code(&other.to_string()),
    }
}

/// Text made safe for one table cell: one line, `|` escaped, paragraphs
/// kept apart with `<br>`.
pub(super) fn cell(text: &str) -> String {
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
pub(super) fn first_paragraph(text: &str) -> String {
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
pub(super) fn first_sentence(text: &str) -> String {
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

pub(super) fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The level of an ATX heading (`## x` is 2), outside code blocks.
pub(super) fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    let rest = &line[hashes..];
    ((1..=6).contains(&hashes) && (rest.is_empty() || rest.starts_with(' '))).then_some(hashes)
}

/// Shifts the headings of a description so that the biggest is at `level`,
/// so that it nests under the page's own headings.
pub(super) fn nest_headings(text: &str, level: usize) -> String {
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
pub(super) fn block(text: Option<&str>, level: usize) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(|t| nest_headings(t, level))
}

/// Collapses runs of blank lines and strips trailing spaces, outside code
/// blocks, so that templates need not count newlines.
pub(super) fn tidy(text: &str) -> String {
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

pub(super) fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `1–64`, `≥ 1`, `≤ 20`, or nothing.
pub(super) fn range<T: std::fmt::Display + PartialEq>(min: Option<T>, max: Option<T>) -> Option<String> {
    match (min, max) {
        (Some(a), Some(b)) if a == b => Some(format!("exactly {a}")),
        (Some(a), Some(b)) => Some(format!("{a}–{b}")),
        (Some(a), None) => Some(format!("≥ {a}")),
        (None, Some(b)) => Some(format!("≤ {b}")),
        (None, None) => None,
    }
}

/// The constraints of a shape, e.g. `1–64 chars`, `pattern ...`, `items 1–100`.
pub(super) fn constraints(shape: &Shape) -> Vec<String> {
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
        Shape::Integer(i) => {
            out.extend(range(i.minimum, i.maximum));
            if !i.allowed.is_empty() {
                let values: Vec<String> = i.allowed.iter().map(|v| format!("`{v}`")).collect();
                out.push(format!("one of {}", values.join(", ")));
            }
        }
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
        Shape::Array(ArrayShape { items, min_items, max_items, unique }) => {
            if let Some(r) = range(*min_items, *max_items) {
                out.push(format!("items {r}"));
            }
            if *unique {
                out.push("unique items".into());
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
        Shape::Named(_) | Shape::Boolean | Shape::Any | Shape::Binary => {}
    }
    out
}

pub(super) fn status_code(status: StatusCode) -> String {
    code(&status.as_spec())
}

/// `a` or `an` before a word (by its first letter, which is enough for
/// the names of headers and events).
pub(super) fn article(word: &str) -> &'static str {
    if word.starts_with(|c: char| "aeiouAEIOU".contains(c)) { "an" } else { "a" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code(""), "`\"\"`");
        assert_eq!(cell("a | b\nc\n\nd"), "a \\| b c<br><br>d");
        assert_eq!(first_paragraph("One. Two:\n\n```\nx\n```"), "One.");
        assert_eq!(first_sentence("The `a.b` thing. More."), "The `a.b` thing.");
        assert_eq!(nest_headings("## A\n```\n# not\n```\n### B", 4), "#### A\n```\n# not\n```\n##### B");
        assert_eq!(tidy("a  \n\n\n\nb\n```\n\n\n```\n"), "a\n\nb\n```\n\n\n```\n");
        assert_eq!(range(Some(1), Some(64)).as_deref(), Some("1–64"));
    }
}
