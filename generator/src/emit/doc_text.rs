//! Spec descriptions (CommonMark) as rustdoc text.
//!
//! rustdoc reads doc comments as Markdown too, but with three traps for
//! text written for another reader: a fenced or indented code block is
//! compiled as a Rust doctest, a bare URL is a warning, and `[x]` is taken
//! for an intra-doc link. The generated crates are documented with
//! `-D warnings`, so every description goes through [`rustdoc`] first.

use proc_macro2::TokenStream;
use quote::quote;

/// Rewrites a description so rustdoc shows it as written and warns about
/// nothing.
pub fn rustdoc(text: &str) -> String {
    let mut out = Vec::new();
    let mut in_fence = false;
    let mut in_list = false;
    for line in text.trim_end().lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            if in_fence {
                in_fence = false;
                out.push("```".to_owned());
            } else {
                in_fence = true;
                // Code in a spec is JSON, shell or HTTP, never Rust to test.
                out.push("```text".to_owned());
            }
            continue;
        }
        if in_fence {
            out.push(line.to_owned());
            continue;
        }
        // Indented blocks would be doctests too. Inside a list indentation
        // continues an item, so it stays; elsewhere it carries no meaning and
        // is dropped.
        if trimmed.is_empty() {
            in_list = false;
            out.push(String::new());
            continue;
        }
        let starts_item = trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || trimmed.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let indented = line.len() != trimmed.len();
        if starts_item {
            in_list = true;
            let indent = &line[..line.len() - trimmed.len()];
            out.push(format!("{indent}{}", escape_line(trimmed)));
        } else if in_list && indented {
            let indent = &line[..line.len() - trimmed.len()];
            out.push(format!("{indent}{}", escape_line(trimmed)));
        } else if in_list {
            // A lazy continuation of the item: indent it so rustdoc (and
            // clippy's doc_lazy_continuation) read it as part of the item.
            out.push(format!("  {}", escape_line(trimmed)));
        } else {
            out.push(escape_line(trimmed));
        }
    }
    if in_fence {
        out.push("```".to_owned());
    }
    out.join("\n")
}

fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let url_at = ["https://", "http://"].iter().filter_map(|p| rest.find(p)).min();
        let bracket_at = rest.find(['[', ']']);
        match (url_at, bracket_at) {
            (Some(u), b) if b.is_none_or(|b| u < b) => {
                out.push_str(&rest[..u]);
                let end = rest[u..]
                    .find(|c: char| c.is_whitespace() || matches!(c, ')' | '>' | '`' | '"' | '\'' | ','))
                    .map_or(rest.len(), |e| u + e);
                let url = rest[u..end].trim_end_matches(['.', ':', ';']);
                let already_wrapped = out.ends_with('<') || out.ends_with('(') || out.ends_with('`');
                if already_wrapped {
                    out.push_str(url);
                } else {
                    out.push('<');
                    out.push_str(url);
                    out.push('>');
                }
                rest = &rest[u + url.len()..];
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                out.push('\\');
                out.push_str(&rest[b..b + 1]);
                rest = &rest[b + 1..];
            }
            (Some(_), None) | (None, None) => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out
}

/// `#[doc = "..."]` attributes for an optional description, one per line so
/// the formatted file reads like hand-written `///` comments.
pub fn doc_attrs(text: Option<&str>) -> TokenStream {
    match text {
        Some(t) if !t.trim().is_empty() => lines_to_attrs(&rustdoc(t)),
        _ => TokenStream::new(),
    }
}

/// `#[doc]` attributes for text that is already rustdoc.
pub fn lines_to_attrs(text: &str) -> TokenStream {
    let lines = doc_lines(text);
    quote! { #( #[doc = #lines] )* }
}

/// `#![doc]` attributes (a module's or crate's own docs) for rustdoc text.
pub fn lines_to_inner_attrs(text: &str) -> TokenStream {
    let lines = doc_lines(text);
    quote! { #( #![doc = #lines] )* }
}

/// One attribute value per line, with the space `///` would leave.
fn doc_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines().map(|l| if l.is_empty() { String::new() } else { format!(" {l}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_become_text_blocks() {
        assert_eq!(rustdoc("a\n```json\n{}\n```"), "a\n```text\n{}\n```");
        assert_eq!(rustdoc("```\nx"), "```text\nx\n```");
    }

    #[test]
    fn bare_urls_are_wrapped_once() {
        assert_eq!(rustdoc("see https://a.b/v1."), "see <https://a.b/v1>.");
        assert_eq!(rustdoc("see <https://a.b/v1>"), "see <https://a.b/v1>");
        assert_eq!(rustdoc("[x](https://a.b)"), "\\[x\\](https://a.b)");
    }

    #[test]
    fn brackets_are_not_links() {
        assert_eq!(rustdoc("data: [...]"), "data: \\[...\\]");
    }

    #[test]
    fn indentation_is_dropped_outside_fences_and_lists() {
        assert_eq!(rustdoc("a\n    b"), "a\nb");
    }

    #[test]
    fn list_items_keep_their_continuations() {
        assert_eq!(rustdoc("- one\n  more\n- two\nlazy\n\nafter"), "- one\n  more\n- two\n  lazy\n\nafter");
    }
}
