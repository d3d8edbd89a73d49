//! Building request paths from parameter values.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is escaped, so a value
/// can never add a path segment (`/`), start a query (`?`) or a fragment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one path parameter value.
// Called by the generated operations with path parameters, which a spec may not have.
#[allow(dead_code)]
pub(crate) fn encode_segment(value: &str) -> String {
    utf8_percent_encode(value, PATH_SEGMENT).to_string()
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
