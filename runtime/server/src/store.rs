//! What the stores behind the layers share: the future their methods
//! return, and what a store that cannot be reached answers.
//!
//! # Policy when a store is unreachable
//!
//! A store over the network (the Redis stores of the `redis` feature, or
//! your own) can fail: the server is down, restarting, or too slow. Each
//! such store is given a [`FailurePolicy`] of its own:
//!
//! - [`FailurePolicy::FailClosed`]: the request is refused with `503` in
//!   the API's error envelope and `Retry-After` (see [`StoreUnavailable`]);
//!   nothing runs that the store was meant to guard.
//! - [`FailurePolicy::FailOpen`]: the request goes on as if the store had
//!   let it through; what that means is the store's to say.
//!
//! The defaults, and why:
//!
//! - **rate limits fail open.** Every authenticated request passes the
//!   rate limiter, so failing closed would make the counter store a hard
//!   dependency of the whole API, and an outage of a protective feature
//!   an outage of everything. Open, each instance keeps counting in its own
//!   memory meanwhile, so a caller still meets the limit per instance (at
//!   worst N times the limit across N instances) and the headers stay
//!   true to what is enforced.
//! - **idempotency fails closed.** Running a request whose key cannot be
//!   checked is exactly what the caller asked us not to do: a retry of a
//!   request that already ran would run again. A `503` with `Retry-After`
//!   is safe: the client retries later with the same key.
//! - **stream logs fail closed** (there is nothing to fall back to): a
//!   resume answers `503` with `Retry-After`, and a stream being read ends,
//!   to be resumed from its last event id.
//!
//! Whatever the policy, a store call never panics and never waits longer
//! than its timeout.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future borrowing from a store, as the object-safe store traits
/// return (a store is used as `Arc<dyn CounterStore>`, which native
/// `async fn` in traits does not allow).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a store does with a request when it cannot be reached (see the
/// module's policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Refuse the request: `503` in the API's envelope, with `Retry-After`
    /// set to `retry_after` (rounded up to whole seconds, at least one).
    FailClosed {
        /// How long the client is asked to wait.
        retry_after: Duration,
    },
    /// Let the request through as if the store had admitted it.
    FailOpen,
}

/// How long a client is asked to wait after a `503` by default: long
/// enough for a restarting store to come back, short enough for a client
/// not to give up.
pub const DEFAULT_UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(2);

impl FailurePolicy {
    /// Fail closed with [`DEFAULT_UNAVAILABLE_RETRY_AFTER`].
    pub const fn fail_closed() -> Self {
        FailurePolicy::FailClosed { retry_after: DEFAULT_UNAVAILABLE_RETRY_AFTER }
    }
}

/// A store could not answer (unreachable, timed out, or refused the
/// command): the request is answered `503` with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUnavailable {
    /// How long the client is asked to wait before retrying.
    pub retry_after: Duration,
    /// What went wrong, for the logs (not sent to the client).
    pub reason: String,
}

impl StoreUnavailable {
    /// Unavailable for `reason`; retry after `retry_after`.
    pub fn new(retry_after: Duration, reason: impl Into<String>) -> Self {
        Self { retry_after, reason: reason.into() }
    }
}

impl fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store unavailable: {}", self.reason)
    }
}

impl std::error::Error for StoreUnavailable {}
