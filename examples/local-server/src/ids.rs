//! Random ids: a prefix and letters or digits, as the spec's patterns
//! (`agt_...`, `op_...`, `str_...`) require.

/// The number of random characters after the prefix: 62^20 is about 2^119,
/// so ids never collide in practice and cannot be guessed.
const RANDOM_CHARS: usize = 20;

/// A fresh id such as `agt_7Hq2mP9xKd...`.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + RANDOM_CHARS);
    id.push_str(prefix);
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(RANDOM_CHARS));
    id
}

/// A fresh API key, from a CSPRNG (UUID v4 with uuid's `fast-rng`: rand's
/// thread-local ChaCha generator, seeded from the operating system) rather
/// than `fastrand`, since a key is a secret: `ra_` and 64 hex digits
/// carrying 244 random bits.
pub fn new_api_key() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("ra_{a}{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_prefix_and_alphanumerics() {
        let id = new_id("agt_");
        assert_eq!(id.len(), 4 + RANDOM_CHARS);
        assert!(id.starts_with("agt_"));
        assert!(id[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_id("op_"), new_id("op_"));
    }

    #[test]
    fn api_keys_are_long_and_distinct() {
        let key = new_api_key();
        assert_eq!(key.len(), 3 + 64);
        assert_ne!(key, new_api_key());
    }
}
