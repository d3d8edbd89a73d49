//! Following `$ref`s to the components they name.
//!
//! Only local references into `#/components/<kind>/<name>` are accepted; a
//! reference to another document, to the wrong kind of component, to a
//! missing one, or a chain of references that loops is a diagnostic at the
//! place the `$ref` was written.

use crate::diagnostics::{Diagnostic, Pointer};
use indexmap::IndexMap;
use openapiv3::{OpenAPI, ReferenceOr};

/// Resolves component references of one document.
pub(crate) struct Resolver<'a> {
    doc: &'a OpenAPI,
}

/// Longest chain of component-to-component references followed before
/// calling it a cycle; no sane spec comes close, and a loop is caught long
/// before this by the visited check.
const MAX_CHAIN: usize = 32;

impl<'a> Resolver<'a> {
    pub(crate) fn new(doc: &'a OpenAPI) -> Self {
        Resolver { doc }
    }

    /// The name a `$ref` into `#/components/<kind>/` points at, checking
    /// its form (not whether the component exists).
    pub(crate) fn ref_name(reference: &str, kind: &str, at: &Pointer) -> Result<String, Diagnostic> {
        let Some(segments) = Pointer::parse_ref(reference) else {
            return Err(at.push("$ref").error(format!(
                "`{reference}` is not a local reference; only `#/components/{kind}/...` references are supported"
            )));
        };
        match segments.as_slice() {
            [c, k, name] if c == "components" && k == kind => Ok(name.clone()),
            [c, k, _] if c == "components" => Err(at.push("$ref").error(format!(
                "`{reference}` points at a {} but a {} is expected here (#/components/{kind}/...)",
                singular(k),
                singular(kind)
            ))),
            _ => Err(at.push("$ref").error(format!("`{reference}` does not point into #/components/{kind}/"))),
        }
    }

    /// Follows `item` through any chain of references into
    /// `components.<kind>`, returning the final item and the pointer where it
    /// is defined.
    pub(crate) fn resolve<T>(
        &self,
        item: &'a ReferenceOr<T>,
        kind: &str,
        at: &Pointer,
        components: impl Fn(&'a openapiv3::Components) -> &'a IndexMap<String, ReferenceOr<T>>,
    ) -> Result<(&'a T, Pointer), Diagnostic> {
        let mut current = item;
        let mut current_at = at.clone();
        let mut seen: Vec<String> = Vec::new();
        loop {
            match current {
                ReferenceOr::Item(t) => return Ok((t, current_at)),
                ReferenceOr::Reference { reference } => {
                    let name = Self::ref_name(reference, kind, &current_at)?;
                    if seen.contains(&name) || seen.len() > MAX_CHAIN {
                        return Err(at.push("$ref").error(format!("cyclic $ref: {} -> {name}", seen.join(" -> "))));
                    }
                    seen.push(name.clone());
                    let map = self.doc.components.as_ref().map(&components);
                    let Some(next) = map.and_then(|m| m.get(&name)) else {
                        return Err(current_at
                            .push("$ref")
                            .error(format!("`{reference}` points at a component that does not exist")));
                    };
                    current = next;
                    current_at = Pointer::root().push("components").push(kind).push(&name);
                }
            }
        }
    }
}

fn singular(kind: &str) -> &str {
    match kind {
        "schemas" => "schema",
        "parameters" => "parameter",
        "responses" => "response",
        "headers" => "header",
        "requestBodies" => "request body",
        "examples" => "example",
        "securitySchemes" => "security scheme",
        "links" => "link",
        "callbacks" => "callback",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_kind_of_component_is_named() {
        let at = Pointer::root().push("paths");
        let e = Resolver::ref_name("#/components/schemas/Agent", "parameters", &at).unwrap_err();
        assert_eq!(e.pointer, "#/paths/$ref");
        assert!(e.message.contains("points at a schema but a parameter is expected"), "{}", e.message);
    }

    #[test]
    fn remote_references_are_refused() {
        let e = Resolver::ref_name("other.yaml#/components/schemas/A", "schemas", &Pointer::root()).unwrap_err();
        assert!(e.message.contains("not a local reference"));
    }

    #[test]
    fn names_are_unescaped() {
        let n = Resolver::ref_name("#/components/schemas/A~1B", "schemas", &Pointer::root()).unwrap();
        assert_eq!(n, "A/B");
    }
}
