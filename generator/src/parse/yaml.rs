//! YAML (and JSON, which is YAML) text to a `serde_json::Value`.
//!
//! serde_yaml_ng's own `Value` cannot hold an integer outside the 64-bit
//! range, so one such number (OpenAI's spec writes `i64::MIN` as
//! `-9223372036854776000`) made the whole file "not valid YAML" at `#`,
//! hiding every other message. Deserializing into this module's tree
//! instead keeps such a number as the nearest float, and the document
//! checks downstream decide what it means where it stands.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A YAML node: what JSON can say, plus keys that are not strings (YAML
/// allows `200:` as a number key) until they are converted.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits 64 bits (signed).
    Int(i64),
    /// An integer that fits 64 bits (unsigned) but not signed.
    UInt(u64),
    /// Any other number, including integers beyond 64 bits.
    Float(f64),
    /// A string.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// Parses YAML text into a tree, or gives serde_yaml_ng's message with its
/// line and column.
pub fn from_str(text: &str) -> Result<Node, String> {
    serde_yaml_ng::from_str::<Node>(text).map_err(|e| {
        let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column()));
        format!("not valid YAML or JSON{}: {e}", at.unwrap_or_default())
    })
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::UInt(v), Node::Int))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Node::Int(i),
            (_, Ok(u)) => Node::UInt(u),
            // Beyond 64 bits: the nearest float, as JSON parsers do.
            _ => Node::Float(v as f64),
        })
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Float(v as f64), Node::UInt))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element()? {
            out.push(item);
        }
        Ok(Node::Seq(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            out.push((k, v));
        }
        Ok(Node::Map(out))
    }

    /// A tagged value (`!tag value`): the tag means nothing to OpenAPI,
    /// so the value is kept as if untagged.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        use de::VariantAccess;
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_64_bits_become_floats() {
        let node = from_str("a: -9223372036854776000\nb: 18446744073709551615\nc: 1e400\nd: 7").unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(entries[0].1, Node::Float(-9223372036854776000.0));
        assert_eq!(entries[1].1, Node::UInt(u64::MAX));
        assert_eq!(entries[3].1, Node::Int(7));
    }

    #[test]
    fn tags_are_dropped_and_keys_kept_in_order() {
        let node = from_str("z: !custom 1\n200: ok\na: [true, ~]").unwrap();
        let Node::Map(entries) = node else { panic!() };
        assert_eq!(entries[0], (Node::String("z".into()), Node::Int(1)));
        assert_eq!(entries[1].0, Node::Int(200));
        assert_eq!(entries[2].1, Node::Seq(vec![Node::Bool(true), Node::Null]));
    }
}
