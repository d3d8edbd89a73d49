//! The one place where names from the spec become Rust identifiers.
//!
//! Every identifier the emitters print comes through [`NameTable::unique`],
//! so sanitizing (keywords, hyphens, leading digits) and deduplicating (two
//! spec names that map to the same Rust name) happen exactly once, the same
//! way, for types, fields, variants, methods and parameters.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use std::collections::{BTreeMap, BTreeSet};

/// The identifier style wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `snake_case`: fields, methods, parameters, modules.
    Snake,
    /// `UpperCamelCase`: types and enum variants.
    UpperCamel,
    /// `SCREAMING_SNAKE_CASE`: constants.
    ScreamingSnake,
}

/// Words Rust reserves (strict and reserved-for-future, 2024 edition). A
/// sanitized name that hits one gets a trailing underscore (`type_`,
/// `async_`), which reads better than a raw identifier and works for the
/// words raw identifiers cannot express (`self`, `Self`, `crate`, `super`).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Turns any spec name into a valid Rust identifier in the requested case.
///
/// Characters that cannot appear in identifiers become word breaks; a name
/// that starts with a digit gets a prefix (`_` for snake case, `V` for
/// camel case); an empty result becomes `unnamed` / `Unnamed`.
pub fn sanitize(raw: &str, case: Case) -> String {
    // Replace everything that is not alphanumeric by a separator so heck sees
    // word boundaries in `x-rate-limit`, `a.b`, `foo bar` and `ÿ`.
    let cleaned: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
    let mut name = match case {
        Case::Snake => cleaned.to_snake_case(),
        Case::UpperCamel => cleaned.to_upper_camel_case(),
        Case::ScreamingSnake => cleaned.to_shouty_snake_case(),
    };
    if name.is_empty() {
        name = match case {
            Case::Snake => "unnamed".into(),
            Case::UpperCamel => "Unnamed".into(),
            Case::ScreamingSnake => "UNNAMED".into(),
        };
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name = match case {
            Case::Snake | Case::ScreamingSnake => format!("_{name}"),
            Case::UpperCamel => format!("V{name}"),
        };
    }
    if KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

/// A namespace of identifiers (the fields of one struct, the variants of one
/// enum, the types of one module): hands out sanitized names and makes each
/// unique by appending a number (`name`, `name_2`, `name_3`, ...).
#[derive(Debug, Default, Clone)]
pub struct NameTable {
    used: BTreeSet<String>,
    /// For each base name, the first number not yet tried. Counting on from
    /// it gives the same names as counting from 2 (names are never released,
    /// so every number below it is still taken), but keeps many names that
    /// sanitize alike (`-`, `--`, `!`, ... all become `unnamed`) linear
    /// instead of quadratic.
    next_number: BTreeMap<String, usize>,
}

impl NameTable {
    /// An empty namespace.
    pub fn new() -> Self {
        Self::default()
    }

    /// A namespace in which `reserved` names are already taken, for
    /// identifiers that must not collide with names the emitters add
    /// themselves (for example a builder's `send` method).
    pub fn with_reserved<'a>(reserved: impl IntoIterator<Item = &'a str>) -> Self {
        NameTable { used: reserved.into_iter().map(str::to_owned).collect(), next_number: BTreeMap::new() }
    }

    /// Sanitizes `raw` and returns a name not handed out before in this
    /// table.
    pub fn unique(&mut self, raw: &str, case: Case) -> String {
        let base = sanitize(raw, case);
        // `self_` numbers as `self_2`, not `self__2` (not snake case).
        let separator = if case == Case::UpperCamel || base.ends_with('_') { "" } else { "_" };
        let mut candidate = base.clone();
        let n = self.next_number.entry(base.clone()).or_insert(2);
        while self.used.contains(&candidate) {
            candidate = format!("{base}{separator}{n}");
            *n += 1;
        }
        self.used.insert(candidate.clone());
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_get_a_trailing_underscore() {
        assert_eq!(sanitize("type", Case::Snake), "type_");
        assert_eq!(sanitize("async", Case::Snake), "async_");
        assert_eq!(sanitize("self", Case::Snake), "self_");
        assert_eq!(sanitize("Self", Case::UpperCamel), "Self_");
    }

    #[test]
    fn hyphens_dots_and_spaces_are_word_breaks() {
        assert_eq!(sanitize("X-RateLimit-Limit", Case::Snake), "x_rate_limit_limit");
        assert_eq!(sanitize("agent-id", Case::UpperCamel), "AgentId");
        assert_eq!(sanitize("a.b c", Case::Snake), "a_b_c");
        assert_eq!(sanitize("INVALID_INPUT", Case::UpperCamel), "InvalidInput");
        assert_eq!(sanitize("listAgents", Case::Snake), "list_agents");
        assert_eq!(sanitize("max_tokens", Case::ScreamingSnake), "MAX_TOKENS");
    }

    #[test]
    fn leading_digits_get_a_prefix() {
        assert_eq!(sanitize("2xx", Case::Snake), "_2xx");
        assert_eq!(sanitize("404", Case::UpperCamel), "V404");
    }

    #[test]
    fn empty_and_symbol_only_names_become_unnamed() {
        assert_eq!(sanitize("", Case::Snake), "unnamed");
        assert_eq!(sanitize("---", Case::UpperCamel), "Unnamed");
    }

    #[test]
    fn std_names_are_kept_because_generated_code_uses_full_paths() {
        // `Result` and `String` are not keywords; generated code writes
        // `::std::result::Result`, so a spec type may take these names.
        assert_eq!(sanitize("Result", Case::UpperCamel), "Result");
        assert_eq!(sanitize("String", Case::UpperCamel), "String");
    }

    #[test]
    fn collisions_are_numbered() {
        let mut t = NameTable::new();
        assert_eq!(t.unique("agent-id", Case::Snake), "agent_id");
        assert_eq!(t.unique("agent_id", Case::Snake), "agent_id_2");
        assert_eq!(t.unique("AgentId", Case::Snake), "agent_id_3");
        let mut t = NameTable::new();
        assert_eq!(t.unique("a-b", Case::UpperCamel), "AB");
        assert_eq!(t.unique("a_b", Case::UpperCamel), "AB2");
    }

    #[test]
    fn a_keyword_numbers_without_a_double_underscore() {
        let mut t = NameTable::new();
        assert_eq!(t.unique("self", Case::Snake), "self_");
        assert_eq!(t.unique("Self", Case::Snake), "self_2");
    }

    #[test]
    fn reserved_names_are_avoided() {
        let mut t = NameTable::with_reserved(["send"]);
        assert_eq!(t.unique("send", Case::Snake), "send_2");
    }
}
