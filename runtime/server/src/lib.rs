//! The runtime of the generated server crates: everything a server needs
//! that does not depend on the spec. Rejections in the API's error envelope
//! ([`ErrorEnvelope`], [`ApiFailure`]), bearer authentication, per-principal
//! rate limits, idempotent retries, request ids, deprecation headers,
//! strict input parsing, Server-Sent Events framing and a log to resume
//! streams from. The stores behind rate limits, idempotency and stream logs
//! are traits with in-memory implementations; the cargo feature `redis`
//! adds Redis ones, shared by several instances of a server.
//!
//! This crate is not a dependency of the generated crates: the generator
//! copies its source files (all but this `lib.rs`) into each one, so that a
//! generated crate builds and publishes on its own. The files therefore
//! refer to each other only by `crate::<module>::<item>` paths, which mean
//! the same here and in a generated crate, and they know no spec: whatever
//! depends on one (the envelope's types, the realm, which layers a route
//! gets) comes in through the [`ErrorEnvelope`] trait or the generated
//! router. Their unit tests run here (`cargo test -p
//! runagent-runtime-server`) and again inside every generated crate, with
//! the test envelopes of `testing.rs`.
//!
//! To change the runtime: edit `src/<module>.rs` here, run this crate's
//! tests, then `cargo xtask codegen` to copy it into `generated/`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
pub use auth::*;
mod config;
pub use config::*;
mod context;
pub use context::*;
mod error;
pub use error::*;
// The readers and fallbacks are called by the generated router only.
#[allow(dead_code)]
mod extract;
mod fake;
mod gate;
pub use gate::*;
#[allow(dead_code)]
mod fallback;
pub use fake::*;
mod idempotency;
pub use idempotency::*;
mod rate_limit;
pub use rate_limit::*;
mod request_id;
pub use request_id::*;
mod sse;
pub use sse::*;
mod store;
pub use store::*;
mod stream_log;
pub use stream_log::*;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
pub use redis_store::*;
// Only the generated handlers of specs with such bodies call it.
#[allow(dead_code)]
mod bodies;
#[path = "../../common/form.rs"]
mod form;
pub use form::*;
#[path = "../../common/validate.rs"]
mod validate;
pub use validate::*;
#[cfg(test)]
mod testing;
