//! serde helpers that keep "absent" and "null" apart, as the spec does:
//! an optional property may be left out, a nullable one may be `null`, and
//! a property can be either, both or neither.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// For a required, nullable property (`Option<T>`): the key must be
/// present, its value may be `null`. serde treats a plain `Option` field as
/// optional; giving it a `deserialize_with` makes a missing key an error.
pub fn required<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// For an optional, non-nullable property (`Option<T>` with
/// `#[serde(default)]`): the key may be missing, but an explicit `null` is
/// refused. Only the server's strict models use it; the client accepts a
/// `null` it does not expect.
#[allow(dead_code)]
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For an optional, nullable property (`Option<Option<T>>`): `None` when
/// absent, `Some(None)` for `null`, `Some(Some(v))` for a value.
pub mod double_option {
    use super::*;

    /// Reads a present key: `null` becomes `Some(None)`.
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }

    /// Writes `Some(None)` as `null`; `None` is skipped by the field's
    /// `skip_serializing_if`.
    pub fn serialize<S, T>(value: &Option<Option<T>>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}
