//! `runagent-local`: the RunAgent API running for real on one machine.
//!
//! See the crate's README for the command-line flags, the `command` agent
//! contract and the layout of the state.

pub mod api;
pub mod cli;
pub mod ids;
pub mod runner;
pub mod server;
pub mod service;
pub mod store;
pub mod stores;
pub mod streams;
pub mod time;
