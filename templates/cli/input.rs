//! Turning what was typed into request values: parameters, bodies given
//! whole (`--body JSON`, `--body @file.json`, `--body -` for standard
//! input) or field by field, and JSON Lines files. Values are converted
//! through JSON into the client's own types, so the client's validation
//! and serialization are the ones that apply.

use crate::failure::Failure;
use std::io::Read;

/// A parameter or field value: the text as a JSON string when the target
/// takes one (a string, an enum), else the text read as JSON (a number, a
/// boolean, a list...).
pub fn value<T: serde::de::DeserializeOwned>(name: &str, raw: &str) -> Result<T, Failure> {
    if let Ok(value) = serde_json::from_value(serde_json::Value::String(raw.to_owned())) {
        return Ok(value);
    }
    let json: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| Failure::usage(format!("`{raw}` is not a valid value for {name}")))?;
    serde_json::from_value(json).map_err(|e| Failure::usage(format!("`{raw}` is not a valid value for {name}: {e}")))
}

/// Several values of a list parameter.
pub fn values<T: serde::de::DeserializeOwned>(name: &str, raw: &[String]) -> Result<Vec<T>, Failure> {
    raw.iter().map(|r| value(name, r)).collect()
}

/// A field given as a flag, as JSON: a string when `text` says the field
/// is text (or an enum), else the flag read as JSON, falling back to a
/// string for a value that is not JSON.
pub fn field(raw: &str, text: bool) -> serde_json::Value {
    if text {
        return serde_json::Value::String(raw.to_owned());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()))
}

/// The text of `--body`: `-` reads standard input, `@path` a file, anything
/// else is the text itself.
pub fn text(arg: &str) -> Result<Vec<u8>, Failure> {
    if arg == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
        return Ok(bytes);
    }
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {path}: {e}"))),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

/// A JSON body from `--body` (if given) with the fields given as flags
/// set on it (flags win).
pub fn json_value(whole: Option<&str>, fields: Vec<(&str, serde_json::Value)>) -> Result<serde_json::Value, Failure> {
    let mut body = match whole {
        Some(arg) => serde_json::from_slice::<serde_json::Value>(&text(arg)?)
            .map_err(|e| Failure::usage(format!("--body is not valid JSON: {e}")))?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    if !fields.is_empty() {
        let Some(object) = body.as_object_mut() else {
            return Err(Failure::usage("--body must be a JSON object when fields are also given as flags"));
        };
        for (name, value) in fields {
            object.insert(name.to_owned(), value);
        }
    }
    Ok(body)
}

/// A JSON body converted into the client's body type.
pub fn convert<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(body.clone())
        .map_err(|e| Failure::usage(format!("the request body does not fit the API: {e}")))
}

/// The bytes of a body that is not JSON, given with `--body`.
pub fn raw_body(whole: Option<&str>) -> Result<Vec<u8>, Failure> {
    match whole {
        Some(arg) => text(arg),
        None => Err(Failure::usage("this command needs --body (text, @file or - for standard input)")),
    }
}

/// The text of a body that is not JSON, given with `--body`.
pub fn text_body(whole: Option<&str>) -> Result<String, Failure> {
    String::from_utf8(raw_body(whole)?).map_err(|_| Failure::usage("--body is not UTF-8 text"))
}

/// The lines of a JSON Lines file (`-` for standard input), each a JSON
/// value; blank lines are skipped.
pub fn json_lines(arg: &str) -> Result<serde_json::Value, Failure> {
    let path = arg.strip_prefix('@').unwrap_or(arg);
    let bytes = text(&if path == "-" { "-".to_owned() } else { format!("@{path}") })?;
    let text = String::from_utf8(bytes).map_err(|_| Failure::usage(format!("{path} is not UTF-8 text")))?;
    let items: Result<Vec<serde_json::Value>, Failure> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| Failure::usage(format!("{path}, line {}: not JSON: {e}", n + 1)))
        })
        .collect();
    Ok(serde_json::Value::Array(items?))
}

/// Any serializable value as JSON, for printing.
pub fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_strings_first_then_json() {
        assert_eq!(value::<String>("x", "12").unwrap(), "12");
        assert_eq!(value::<i32>("x", "12").unwrap(), 12);
        assert_eq!(value::<Vec<i32>>("x", "[1,2]").unwrap(), vec![1, 2]);
        assert!(value::<i32>("x", "twelve").is_err());
    }

    #[test]
    fn flags_win_over_the_whole_body() {
        let body =
            json_value(Some(r#"{"a": 1, "b": 2}"#), vec![("b", field("3", false)), ("c", field("x", true))]).unwrap();
        assert_eq!(body, serde_json::json!({"a": 1, "b": 3, "c": "x"}));
    }
}
