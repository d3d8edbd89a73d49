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
pub use diagnostics::{Diagnostic, Diagnostics, Severity};

/// Parses and lowers a spec into the IR (warnings are dropped; see
/// [`load_with_warnings`]).
pub fn load(spec: &str) -> Result<ir::Api, Diagnostics> {
    load_with_warnings(spec).map(|(api, _)| api)
}

/// Parses and lowers a spec into the IR, with the warnings found on the way.
pub fn load_with_warnings(spec: &str) -> Result<(ir::Api, Vec<Diagnostic>), Diagnostics> {
    let mut warnings = Vec::new();
    let doc = parse::parse(spec, &mut warnings)?;
    let webhooks = parse::webhooks(&doc)?;
    let api = lower::lower(&doc, &webhooks, &mut warnings)?;
    Ok((api, warnings))
}

/// Parses and lowers a spec split into files: `documents` maps each file's
/// path (relative to the spec's folder, `/`-separated) to its text, `root`
/// names the one to start from. Diagnostics name the file and the pointer
/// in it. [`referenced_files`] tells which files to load.
pub fn load_documents(
    root: &str,
    documents: &std::collections::BTreeMap<String, String>,
) -> Result<(ir::Api, Vec<Diagnostic>), Diagnostics> {
    let mut warnings = Vec::new();
    let (doc, map) = parse::parse_documents(root, documents, &mut warnings)?;
    let webhooks = parse::webhooks(&doc).map_err(|mut e| {
        e.0.iter_mut().for_each(|d| map.locate(d));
        e
    })?;
    let mut lowered = Vec::new();
    let api = lower::lower(&doc, &webhooks, &mut lowered).map_err(|mut e| {
        e.0.iter_mut().for_each(|d| map.locate(d));
        e
    })?;
    warnings.extend(lowered.into_iter().map(|mut d| {
        map.locate(&mut d);
        d
    }));
    Ok((api, warnings))
}

/// The files a document's `$ref`s name, relative to the spec's folder.
pub fn referenced_files(name: &str, text: &str) -> Result<Vec<String>, Diagnostics> {
    parse::referenced_files(name, text)
}

/// Generates from a spec split into files (see [`load_documents`]).
pub fn generate_documents(
    root: &str,
    documents: &std::collections::BTreeMap<String, String>,
    config: &Config,
) -> Result<Output, Diagnostics> {
    let (api, warnings) = load_documents(root, documents)?;
    let names = Names::resolve(config, &api);
    names.check()?;
    let files = emit::emit(&api, &names)?;
    Ok(Output { files, warnings })
}

pub mod emit;

pub use emit::{File, FileKind, Files};

/// Generates every output file from spec text, with every name derived
/// from the spec (see [`Config`]).
pub fn generate(spec: &str) -> Result<Files, Diagnostics> {
    generate_with(spec, &Config::default()).map(|out| out.files)
}

/// Generates every output file from spec text, with the names `config` chooses.
pub fn generate_with(spec: &str, config: &Config) -> Result<Output, Diagnostics> {
    let (api, warnings) = load_with_warnings(spec)?;
    let names = Names::resolve(config, &api);
    names.check()?;
    let files = emit::emit(&api, &names)?;
    Ok(Output { files, warnings })
}

/// What [`generate_with`] gives: the files, and the warnings about
/// constructs it handled in a documented way instead of refusing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Every output file.
    pub files: Files,
    /// Every warning, sorted by pointer.
    pub warnings: Vec<Diagnostic>,
}
