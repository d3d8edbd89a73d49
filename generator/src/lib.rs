//! The RunAgent code generator: OpenAPI 3.0 text in, a sorted set of files
//! out (the client crate, the server-stub crate and the Markdown docs).
//!
//! The pipeline is `parse` (text to openapiv3) → `lower` (openapiv3 to the
//! [`ir`], every `$ref` resolved and every name sanitized) → `emit` (IR to
//! files). It touches no file system and no network, so the same text
//! always gives the same bytes.

pub mod config;
pub mod diagnostics;
pub mod ir;
pub mod naming;

mod lower;
mod parse;

pub use config::{Config, Names};
pub use diagnostics::{Diagnostic, Diagnostics};

/// Parses and lowers a spec into the IR.
pub fn load(spec: &str) -> Result<ir::Api, Diagnostics> {
    let doc = parse::parse(spec)?;
    lower::lower(&doc)
}

pub mod emit;

pub use emit::{File, FileKind, Files};

/// Generates every output file from spec text, with every name derived
/// from the spec (see [`Config`]).
pub fn generate(spec: &str) -> Result<Files, Diagnostics> {
    generate_with(spec, &Config::default())
}

/// Generates every output file from spec text, with the names `config` chooses.
pub fn generate_with(spec: &str, config: &Config) -> Result<Files, Diagnostics> {
    let api = load(spec)?;
    emit::emit(&api, &Names::resolve(config, &api))
}
