//! Problems found in a spec, each tied to the place in the document that
//! caused it, so a maintainer can jump straight to the offending line.

use std::fmt;

/// One problem in the input, located by a JSON pointer such as
/// `#/paths/~1agents/get/responses/200`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where in the spec the problem is, as a URI fragment JSON pointer.
    pub pointer: String,
    /// A one-line reason.
    pub message: String,
    /// Whether generation stopped because of it.
    pub severity: Severity,
    /// The file the pointer is in, for a spec split into several files;
    /// `None` for the root document.
    pub file: Option<String>,
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Nothing is generated.
    Error,
    /// The output was generated, with the construct handled as the message
    /// says (a derived name, a clamped number, an ignored keyword). Never
    /// silent: every warning is printed, and `--deny-warnings` makes them
    /// fatal.
    Warning,
}

impl Diagnostic {
    /// Creates an error at `pointer` with a one-line `message`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { pointer: pointer.into(), message: message.into(), severity: Severity::Error, file: None }
    }

    /// Creates a warning at `pointer` with a one-line `message`.
    pub fn warning(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { pointer: pointer.into(), message: message.into(), severity: Severity::Warning, file: None }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let file = self.file.as_deref().unwrap_or("");
        write!(f, "{kind} at {file}{}: {}", self.pointer, self.message)
    }
}

/// Every problem found in one run; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// A single diagnostic.
    pub fn one(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostics(vec![Diagnostic::new(pointer, message)])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A JSON pointer under construction. Segments are escaped as RFC 6901
/// requires (`~` as `~0`, `/` as `~1`), which is why paths such as
/// `/agents/{agent_id}` show up as `~1agents~1{agent_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pointer(String);

impl Pointer {
    /// The document root, `#`.
    pub fn root() -> Self {
        Pointer(String::from("#"))
    }

    /// This pointer extended by one segment.
    pub fn push(&self, segment: impl fmt::Display) -> Pointer {
        let segment = segment.to_string().replace('~', "~0").replace('/', "~1");
        Pointer(format!("{}/{}", self.0, segment))
    }

    /// Parses a local `$ref` target such as `#/components/schemas/Agent`
    /// into its unescaped segments.
    pub fn parse_ref(reference: &str) -> Option<Vec<String>> {
        let rest = reference.strip_prefix("#/")?;
        Some(rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect())
    }

    /// The pointer as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An error at this pointer.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.0.clone(), message)
    }

    /// A warning at this pointer.
    pub fn warning(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(self.0.clone(), message)
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        let p = Pointer::root().push("paths").push("/agents/{id}").push("a~b");
        assert_eq!(p.as_str(), "#/paths/~1agents~1{id}/a~0b");
    }

    #[test]
    fn refs_are_unescaped() {
        assert_eq!(
            Pointer::parse_ref("#/components/schemas/A~1B~0C"),
            Some(vec!["components".into(), "schemas".into(), "A/B~C".into()])
        );
        assert_eq!(Pointer::parse_ref("other.yaml#/x"), None);
    }
}
