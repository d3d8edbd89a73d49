//! IR to files. Each emitter adds files to one [`Files`] set, keyed by path
//! in a sorted map, so the output order never depends on hashing.

pub mod bodies;
pub mod builders;
pub mod cli;
pub mod client;
pub mod doc_text;
pub mod docs;
pub mod models;
pub mod rust_file;
pub mod server;
pub mod versions;

use crate::config::Names;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::Api;
use proc_macro2::TokenStream;
use std::collections::BTreeMap;

/// An emitter bug (never an input problem: those are caught while lowering).
#[derive(Debug)]
pub struct EmitError(pub String);

/// What one file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Rust made from the spec.
    Rust,
    /// Rust support code copied from `runtime/` or `templates/` unchanged.
    RustVerbatim,
    /// Markdown.
    Markdown,
    /// TOML.
    Toml,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its contents.
    pub contents: String,
    /// What it is.
    pub kind: FileKind,
}

/// The generator's output: paths (relative to the output folder, `/`
/// separated) to files, sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Files(pub BTreeMap<String, File>);

impl Files {
    fn rust(&mut self, path: String, tokens: TokenStream, what: &str) -> Result<(), EmitError> {
        let contents = rust_file::format(tokens, what).map_err(EmitError)?;
        self.0.insert(path, File { contents, kind: FileKind::Rust });
        Ok(())
    }

    fn verbatim(&mut self, path: String, source: &str) {
        self.0.insert(path, File { contents: rust_file::verbatim(source), kind: FileKind::RustVerbatim });
    }

    fn markdown(&mut self, path: String, text: String) {
        let contents = format!("{}\n", text.trim_end());
        self.0.insert(path, File { contents, kind: FileKind::Markdown });
    }

    fn toml(&mut self, path: String, text: String) {
        let contents = format!("{}\n", text.trim_end());
        self.0.insert(path, File { contents, kind: FileKind::Toml });
    }
}

/// Identifiers a parameter must not take, because an emitter uses the name
/// itself next to parameters: builder methods and fields of the client,
/// locals and extractor names of the server. Each emitter owns its list;
/// lowering numbers a clashing parameter (`send` becomes `send_2`).
pub fn reserved_param_names() -> impl Iterator<Item = &'static str> {
    client::RESERVED_PARAMS.iter().chain(server::RESERVED_PARAMS).copied()
}

/// Variant names an enum value must not take: the client's enums keep
/// values they do not know in an `Unknown(String)` variant.
pub fn reserved_variant_names() -> impl Iterator<Item = &'static str> {
    models::RESERVED_VARIANTS.iter().copied()
}

/// Method names an operation must not take, because the client's runtime
/// defines them on `Client` itself (a clash is numbered: `builder_2`).
pub fn reserved_method_names() -> impl Iterator<Item = &'static str> {
    client::RESERVED_METHODS.iter().copied()
}

/// Emits every output file for an API, each starting with the
/// `@generated` line that names the spec.
pub fn emit(api: &Api, names: &Names) -> Result<Files, Diagnostics> {
    let mut files = Files::default();
    let bug = |e: EmitError| Diagnostics(vec![Diagnostic::new("#", e.0)]);
    client::emit(api, names, &mut files).map_err(bug)?;
    server::emit(api, names, &mut files).map_err(bug)?;
    cli::emit(api, names, &mut files).map_err(bug)?;
    docs::emit(api, names, &mut files).map_err(bug)?;
    for file in files.0.values_mut() {
        let (comment, gap) = match file.kind {
            FileKind::Rust | FileKind::RustVerbatim => (rust_file::RUST_COMMENT, "\n\n"),
            FileKind::Markdown => (rust_file::MARKDOWN_COMMENT, "\n\n"),
            FileKind::Toml => (rust_file::TOML_COMMENT, "\n"),
        };
        file.contents = format!("{}{gap}{}", rust_file::header(&names.spec_path, comment), file.contents);
    }
    Ok(files)
}
