//! How results are printed: JSON for programs (one value per line for
//! lists and streams, ready for `jq`), a table or text for people, YAML on
//! request. Nothing here knows the API; values arrive as JSON.

use std::io::{IsTerminal, Write};

/// The `--output` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Compact JSON, one value per line (pretty on a terminal).
    Json,
    /// A table (lists) or `key: value` lines (one object).
    Table,
    /// YAML.
    Yaml,
}

/// Where and how results go: standard output, in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    format: Format,
    terminal: bool,
}

impl Output {
    /// The format asked for, or JSON when standard output is not a
    /// terminal (a pipe or a file) and a table when it is.
    pub fn new(format: Option<Format>) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let format = format.unwrap_or(if terminal { Format::Table } else { Format::Json });
        Self { format, terminal }
    }

    /// The format in use.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Prints one value (a response body).
    pub fn value(&self, value: &serde_json::Value) {
        let text = match self.format {
            Format::Json if self.terminal => serde_json::to_string_pretty(value).unwrap_or_default(),
            Format::Json => serde_json::to_string(value).unwrap_or_default(),
            Format::Yaml => yaml(value),
            Format::Table => match readable_part(value) {
                serde_json::Value::Array(items) => table(items),
                serde_json::Value::Object(map) => key_values(map),
                other => scalar(other),
            },
        };
        print_block(&text);
    }

    /// Prints the items of a list: one JSON value per line, one YAML
    /// document, or one table.
    pub fn items(&self, items: &[serde_json::Value]) {
        match self.format {
            Format::Json => {
                for item in items {
                    self.item(item);
                }
            }
            Format::Yaml => print_block(&yaml(&serde_json::Value::Array(items.to_vec()))),
            Format::Table => print_block(&table(items)),
        }
    }

    /// Prints one item of a list or stream as soon as it arrives (JSON
    /// lines; the other formats print each item on its own).
    pub fn item(&self, item: &serde_json::Value) {
        match self.format {
            Format::Json => print_block(&serde_json::to_string(item).unwrap_or_default()),
            Format::Yaml => print_block(&format!("---\n{}", yaml(item))),
            Format::Table => print_block(&match item {
                serde_json::Value::Object(map) => format!("{}\n", key_values(map)),
                other => scalar(other),
            }),
        }
    }

    /// Prints one event of a stream. As text, an event whose data carries
    /// a piece of text (`text`, `delta` or `content`) prints just that
    /// piece, with no newline, so an answer reads as it is written; other
    /// events print nothing (`--output json` shows them), and the last
    /// ends the line. As JSON or YAML, each event is
    /// `{"event": name, "data": data}` on its own line.
    pub fn event(&self, name: &str, data: &serde_json::Value, last: bool) {
        if self.format != Format::Table {
            self.item(&serde_json::json!({ "event": name, "data": data }));
            return;
        }
        let piece = ["text", "delta", "content"].iter().find_map(|k| data.get(k).and_then(|v| v.as_str()));
        let mut out = std::io::stdout().lock();
        if let Some(text) = piece {
            let _ = write!(out, "{text}");
        }
        if last {
            let _ = writeln!(out);
        }
        let _ = out.flush();
    }

    /// Prints text or bytes as they are (a response that is not JSON).
    pub fn raw(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }
}

/// What a person wants to see of a body: the `data` of an envelope such as
/// `{"status": "success", "data": {...}}`, or the body itself.
fn readable_part(value: &serde_json::Value) -> &serde_json::Value {
    match value.get("data") {
        Some(data @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => data,
        _ => value,
    }
}

fn print_block(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end_matches('\n'));
    let _ = out.flush();
}

fn yaml(value: &serde_json::Value) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_default()
}

/// A value as a table cell or a line: strings without quotes, the rest as
/// compact JSON.
fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The widest a cell may be before it is cut, so a table fits a terminal.
const CELL_WIDTH: usize = 40;

fn cell(value: &serde_json::Value) -> String {
    let text = scalar(value).replace('\n', " ");
    match text.char_indices().nth(CELL_WIDTH) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `key: value` lines, keys aligned.
fn key_values(map: &serde_json::Map<String, serde_json::Value>) -> String {
    let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    map.iter().map(|(k, v)| format!("{k:width$}  {}\n", scalar(v))).collect()
}

/// A table of objects: a column per key of the first item whose value is
/// not a nested object or list (those make tables unreadable), in order.
fn table(items: &[serde_json::Value]) -> String {
    let Some(first) = items.first() else { return "(no items)".to_owned() };
    let Some(first) = first.as_object() else {
        return items.iter().map(|v| format!("{}\n", scalar(v))).collect();
    };
    let mut columns: Vec<&String> = first
        .iter()
        .filter(|(_, v)| !matches!(v, serde_json::Value::Object(_) | serde_json::Value::Array(_)))
        .map(|(k, _)| k)
        .collect();
    // What names a row comes first; the rest keep their order.
    columns.sort_by_key(|c| match c.as_str() {
        "id" => 0,
        "name" => 1,
        _ => 2,
    });
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| item.get(c.as_str()).map(cell).unwrap_or_default()).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r[i].chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in rows {
        text.push_str(&line(row));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_take_the_scalar_columns_of_the_first_item() {
        let items = vec![
            serde_json::json!({"id": "a1", "name": "hello", "tags": ["x"], "count": 2}),
            serde_json::json!({"id": "b22", "name": null, "count": 10}),
        ];
        assert_eq!(table(&items), "ID   NAME   COUNT\na1   hello  2\nb22         10\n");
        let items = vec![serde_json::json!({"b": 1, "name": "n", "id": "i"})];
        assert_eq!(table(&items), "ID  NAME  B\ni   n     1\n");
    }

    #[test]
    fn envelopes_show_their_data() {
        let body = serde_json::json!({"status": "success", "data": {"id": "a"}});
        assert_eq!(readable_part(&body), &serde_json::json!({"id": "a"}));
    }
}
