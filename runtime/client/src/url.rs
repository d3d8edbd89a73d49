//! Building request paths from parameter values.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is escaped, so a value
/// can never add a path segment (`/`), start a query (`?`) or a fragment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one path parameter value.
// Only the tests use it: the generated operations push into one buffer.
#[allow(dead_code)]
pub(crate) fn encode_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_segment(&mut out, value);
    out
}

/// Appends one path parameter value, percent-encoded, to `path`: the
/// encoder's pieces are copied straight in, with no formatting machinery
/// and no `String` of their own.
// Called by the generated operations with path parameters, which a spec may not have.
#[allow(dead_code)]
pub(crate) fn push_segment(path: &mut String, value: &str) {
    path.extend(utf8_percent_encode(value, PATH_SEGMENT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_cannot_escape_the_segment() {
        assert_eq!(encode_segment("agt_1"), "agt_1");
        assert_eq!(encode_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(encode_segment(".."), "..");
    }
}
