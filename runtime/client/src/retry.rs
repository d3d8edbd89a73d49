//! When to retry a failed request and how long to wait first.
//!
//! The delay computation is a pure function of the policy, the attempt
//! number, the server's hint and a random number, so that it can be tested
//! without a clock or a server.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header};

use crate::response::{RATE_LIMIT_REMAINING, RATE_LIMIT_RESET, header_str, header_u64};

/// How the exponential backoff delay is randomised.
///
/// Randomising keeps many clients that failed at the same moment from
/// retrying at the same moment too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// Wait exactly the exponential backoff.
    None,
    /// Wait a uniformly random time between zero and the backoff.
    Full,
    /// Wait half the backoff plus a uniformly random time up to the other
    /// half; the default, because it spreads retries while keeping a floor
    /// that gives a struggling server some rest.
    #[default]
    Equal,
}

/// Decides which failures are retried, how often and after how long.
///
/// Connection errors, timeouts and the statuses 408, 429, 500, 502, 503 and
/// 504 are retried, and so is a 409 that carries `Retry-After` (the server's
/// answer to a retry whose first request, with the same `Idempotency-Key`,
/// is still running: the retry then gets the stored response). Every other
/// status (400, 401, 403, 404, 409, 413, 422, ...) is returned at once,
/// because repeating the same request cannot change it.
/// A server-requested delay (`Retry-After`, or `X-RateLimit-Reset` on a 429
/// whose `X-RateLimit-Remaining` is 0) replaces the backoff, capped at
/// [`RetryPolicy::max_retry_after`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying. Default 2.
    pub max_retries: u32,
    /// Backoff before the first retry; doubled for each further one. Default 500 ms.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential backoff. Default 8 s.
    pub max_backoff: Duration,
    /// Upper bound of a delay the server asks for. Default 60 s.
    pub max_retry_after: Duration,
    /// How the backoff is randomised. Default [`Jitter::Equal`].
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            jitter: Jitter::Equal,
        }
    }
}

impl RetryPolicy {
    /// The default policy: 2 retries, 500 ms doubling up to 8 s, equal jitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy that never retries.
    pub fn none() -> Self {
        Self::default().max_retries(0)
    }

    /// Sets how many times a failed request is retried.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the backoff before the first retry.
    pub fn initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets the upper bound of the exponential backoff.
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets the upper bound of a server-requested delay.
    pub fn max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Sets how the backoff is randomised.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The backoff before retry number `retry` (0 for the first retry),
    /// before jitter: `initial_backoff * 2^retry`, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.initial_backoff.checked_mul(1u32 << retry.min(31)).unwrap_or(Duration::MAX).min(self.max_backoff)
    }

    /// Whether a response with this status is worth retrying.
    pub fn is_retryable_status(status: StatusCode) -> bool {
        is_retryable_status(status)
    }
}

/// The statuses that may succeed when repeated: a timeout, rate limiting and
/// the server-side failures that are usually transient.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The delay before retry number `retry` (0 for the first retry).
///
/// `server_hint` is the delay the server asked for, if any; it wins over the
/// backoff but is capped at `max_retry_after`. `unit_random` is a random
/// number in `[0, 1)` that drives the jitter; values outside are clamped.
pub(crate) fn retry_delay(
    policy: &RetryPolicy,
    retry: u32,
    server_hint: Option<Duration>,
    unit_random: f64,
) -> Duration {
    if let Some(hint) = server_hint {
        return hint.min(policy.max_retry_after);
    }
    let backoff = policy.backoff(retry);
    let random = if unit_random.is_nan() { 0.0 } else { unit_random.clamp(0.0, 1.0) };
    match policy.jitter {
        Jitter::None => backoff,
        Jitter::Full => backoff.mul_f64(random),
        Jitter::Equal => {
            let half = backoff / 2;
            half + (backoff - half).mul_f64(random)
        }
    }
}

/// The delay the server asked for, measured from `now`, uncapped.
///
/// `Retry-After` (seconds or an HTTP date) applies to any status. On a 429
/// without it, `X-RateLimit-Reset` applies when `X-RateLimit-Remaining` is 0,
/// because then the window's reset is exactly when a retry can succeed; a
/// reset already in the past gives no hint, so the backoff applies instead.
pub(crate) fn server_retry_after(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(delay) = header_str(headers, header::RETRY_AFTER).and_then(|v| parse_retry_after(v, now)) {
        return Some(delay);
    }
    if status == StatusCode::TOO_MANY_REQUESTS && header_u64(headers, &RATE_LIMIT_REMAINING) == Some(0) {
        let reset = header_u64(headers, &RATE_LIMIT_RESET)?;
        let reset_at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(reset))?;
        return reset_at.duration_since(now).ok().filter(|delay| !delay.is_zero());
    }
    None
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (a date in
/// the past means "now"). Fractional seconds are accepted too, since some
/// servers send them.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An integer too large for u64 is still a request to wait very long.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return value.parse::<f64>().ok().and_then(|secs| Duration::try_from_secs_f64(secs).ok());
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_640_995_000)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn no_jitter() -> RetryPolicy {
        RetryPolicy::default().jitter(Jitter::None)
    }

    #[test]
    fn defaults_match_the_documentation() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_retries, 2);
        assert_eq!(policy.initial_backoff, Duration::from_millis(500));
        assert_eq!(policy.max_backoff, Duration::from_secs(8));
        assert_eq!(policy.max_retry_after, Duration::from_secs(60));
        assert_eq!(policy.jitter, Jitter::Equal);
        assert_eq!(RetryPolicy::none().max_retries, 0);
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 400, 401, 403, 404, 405, 409, 413, 422, 501] {
            assert!(!is_retryable_status(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        assert!(RetryPolicy::is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = no_jitter();
        let delays: Vec<_> = (0..7).map(|n| retry_delay(&policy, n, None, 0.5)).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(500), ms(1000), ms(2000), ms(4000), ms(8000), ms(8000), ms(8000)]);
        // Huge attempt numbers must neither overflow nor panic.
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(8));
        let huge = no_jitter().initial_backoff(Duration::MAX).max_backoff(Duration::MAX);
        assert_eq!(huge.backoff(3), Duration::MAX);
    }

    #[test]
    fn full_jitter_stays_within_zero_and_backoff() {
        let policy = RetryPolicy::default().jitter(Jitter::Full);
        assert_eq!(retry_delay(&policy, 1, None, 0.0), Duration::ZERO);
        assert_eq!(retry_delay(&policy, 1, None, 0.5), Duration::from_millis(500));
        for _ in 0..1000 {
            let delay = retry_delay(&policy, 2, None, fastrand::f64());
            assert!(delay <= Duration::from_secs(2), "{delay:?}");
        }
    }

    #[test]
    fn equal_jitter_stays_within_half_and_full_backoff() {
        let policy = RetryPolicy::default();
        assert_eq!(retry_delay(&policy, 0, None, 0.0), Duration::from_millis(250));
        assert_eq!(retry_delay(&policy, 0, None, 1.0), Duration::from_millis(500));
        for _ in 0..1000 {
            let delay = retry_delay(&policy, 3, None, fastrand::f64());
            assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_secs(4), "{delay:?}");
        }
        // Out-of-range randomness is clamped rather than trusted.
        assert_eq!(retry_delay(&policy, 0, None, 7.0), Duration::from_millis(500));
        assert_eq!(retry_delay(&policy, 0, None, -1.0), Duration::from_millis(250));
        assert_eq!(retry_delay(&policy, 0, None, f64::NAN), Duration::from_millis(250));
    }

    #[test]
    fn server_hint_replaces_backoff_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(retry_delay(&policy, 0, Some(Duration::from_secs(3)), 0.9), Duration::from_secs(3));
        assert_eq!(retry_delay(&policy, 5, Some(Duration::ZERO), 0.9), Duration::ZERO);
        assert_eq!(retry_delay(&policy, 0, Some(Duration::from_secs(3600)), 0.9), Duration::from_secs(60));
        let strict = policy.max_retry_after(Duration::from_secs(2));
        assert_eq!(retry_delay(&strict, 0, Some(Duration::from_secs(3)), 0.9), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_seconds() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(server_retry_after(StatusCode::SERVICE_UNAVAILABLE, &h, now()), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now()), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("99999999999999999999999", now()), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse_retry_after("-3", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn retry_after_http_date() {
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(42));
        assert_eq!(parse_retry_after(&later, now()), Some(Duration::from_secs(42)));
        let earlier = httpdate::fmt_http_date(now() - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&earlier, now()), Some(Duration::ZERO));
        let h = headers(&[("retry-after", &later)]);
        assert_eq!(server_retry_after(StatusCode::TOO_MANY_REQUESTS, &h, now()), Some(Duration::from_secs(42)));
    }

    #[test]
    fn rate_limit_reset_applies_to_exhausted_429_only() {
        let reset = (1_640_995_000u64 + 30).to_string();
        let exhausted =
            headers(&[("x-ratelimit-limit", "100"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        assert_eq!(server_retry_after(StatusCode::TOO_MANY_REQUESTS, &exhausted, now()), Some(Duration::from_secs(30)));
        // A 503 says nothing about the rate-limit window.
        assert_eq!(server_retry_after(StatusCode::SERVICE_UNAVAILABLE, &exhausted, now()), None);
        // Requests left means the 429 was not about this window.
        let left = headers(&[("x-ratelimit-remaining", "5"), ("x-ratelimit-reset", &reset)]);
        assert_eq!(server_retry_after(StatusCode::TOO_MANY_REQUESTS, &left, now()), None);
        // A reset in the past gives no hint, so the backoff applies.
        let past = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1000")]);
        assert_eq!(server_retry_after(StatusCode::TOO_MANY_REQUESTS, &past, now()), None);
    }

    #[test]
    fn retry_after_wins_over_rate_limit_reset() {
        let reset = (1_640_995_000u64 + 30).to_string();
        let both = headers(&[("retry-after", "5"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        assert_eq!(server_retry_after(StatusCode::TOO_MANY_REQUESTS, &both, now()), Some(Duration::from_secs(5)));
        // An unparsable Retry-After falls back to the reset header.
        let bad = headers(&[("retry-after", "later"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        assert_eq!(server_retry_after(StatusCode::TOO_MANY_REQUESTS, &bad, now()), Some(Duration::from_secs(30)));
    }

    #[test]
    fn capped_reset_delay_end_to_end() {
        let reset = (1_640_995_000u64 + 3600).to_string();
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        let hint = server_retry_after(StatusCode::TOO_MANY_REQUESTS, &h, now());
        assert_eq!(retry_delay(&RetryPolicy::default(), 0, hint, 0.3), Duration::from_secs(60));
    }
}
