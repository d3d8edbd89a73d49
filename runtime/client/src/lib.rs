//! The runtime of the generated API clients: configuration and retries
//! ([`Client`]), errors ([`Error`]), Server-Sent Events with resume
//! ([`EventStream`]), pagination ([`Paginated`]), long-running operations
//! ([`OperationHandle`]) and validation.
//!
//! It knows no spec: everything that depends on one is behind the
//! [`ApiModel`] trait (and [`LongRunning`] and [`CancelOperation`]), which
//! each generated crate implements for its API.
//!
//! Nothing depends on this crate. The generator copies its files (all but
//! this one, plus `runtime/common/`) into every generated client crate, so
//! that each builds and publishes on its own; the generated crate's
//! `lib.rs` declares the same modules and names the generic types with its
//! model filled in. That is why the files refer to each other only through
//! module paths (`crate::error::Error`), never through this root. This crate
//! exists so that the runtime builds, lints and tests without generating
//! anything: `cargo test -p runagent-runtime-client`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod client;
pub use client::*;
mod error;
pub use error::*;
mod events;
pub use events::*;
mod model;
pub use model::*;
mod operation;
pub use operation::*;
mod hooks;
pub use hooks::*;
mod pagination;
pub use pagination::*;
mod response;
pub use response::*;
mod retry;
pub use retry::*;
mod sse;
pub use sse::*;
#[path = "../../common/form.rs"]
mod form;
mod url;
pub use form::*;
#[path = "../../common/validate.rs"]
mod validate;
pub use validate::*;
// Only the generated models use it.
#[allow(dead_code)]
#[path = "../../common/nullable.rs"]
mod nullable;

#[cfg(test)]
mod testing;
