//! The server's settings.

use crate::rate_limit::RateLimitConfig;

/// The settings of the generated router.
///
/// ```
/// use runagent_runtime_server::{RateLimitConfig, ServerConfig};
///
/// let config = ServerConfig::default()
///     .prefix("/api/v1")
///     .body_limit(256 * 1024)
///     .rate_limit(RateLimitConfig::default().enterprise(50_000));
/// assert_eq!(config.rate_limit.free, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The path every route is mounted under, such as `/v1`; empty mounts
    /// them at the root. `None` (the default) takes the path of the spec's
    /// first server URL, which the generated router knows.
    pub prefix: Option<String>,
    /// The largest request body accepted, in bytes (1 MiB); larger ones are
    /// answered `413`.
    pub body_limit: usize,
    /// The rate limits per tier, for the routes the router rate limits.
    pub rate_limit: RateLimitConfig,
}

/// The default body limit: 1 MiB, ample for JSON requests (a batch of 100
/// queries included) while bounding what one request can make the server
/// buffer.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        Self { prefix: None, body_limit: DEFAULT_BODY_LIMIT, rate_limit: RateLimitConfig::default() }
    }
}

impl ServerConfig {
    /// Sets the path prefix (`""` for the root).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The path prefix: the one set, else `spec_default` (the path of the
    /// spec's first server URL), without a trailing `/`.
    pub fn prefix_or<'a>(&'a self, spec_default: &'a str) -> &'a str {
        self.prefix.as_deref().unwrap_or(spec_default).trim_end_matches('/')
    }

    /// Sets the body limit in bytes.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets the rate limits.
    pub fn rate_limit(mut self, rate_limit: RateLimitConfig) -> Self {
        self.rate_limit = rate_limit;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_follow_the_spec() {
        let config = ServerConfig::default();
        assert_eq!(config.prefix, None);
        assert_eq!(config.prefix_or("/v1/"), "/v1");
        assert_eq!(config.body_limit, 1_048_576);
        assert_eq!((config.rate_limit.free, config.rate_limit.pro), (100, 1000));
        assert_eq!(config.rate_limit.window, Duration::from_secs(3600));
    }

    #[test]
    fn setters_chain() {
        let config = ServerConfig::default()
            .prefix("")
            .body_limit(10)
            .rate_limit(RateLimitConfig::default().free(1).window(Duration::from_secs(60)));
        assert_eq!(config.prefix_or("/v1"), "");
        assert_eq!(config.body_limit, 10);
        assert_eq!(config.rate_limit.free, 1);
        assert_eq!(config.rate_limit.window, Duration::from_secs(60));
    }
}
