//! The overview's facts about envelopes and errors, all read from the
//! error convention (`api.conventions.error`) and the error codes' prose
//! (`api.prose.error_codes`). Without an error convention both are empty
//! and their sections are left out.

use super::markdown::{cell, code, pretty_json, status_code};
use super::{Ctx, INDEX};
use crate::ir::{ErrorConvention, ResponseBody, Shape, StructType, TypeKind};

/// What the overview says about envelopes.
#[derive(Default)]
pub(super) struct EnvelopeFacts {
    /// The wire name of the field that tells envelopes apart (`status`):
    /// a field the error envelope requires with one possible value.
    /// Empty when there is none, and then nothing is an envelope.
    pub(super) discriminator: String,
    pub(super) success: Vec<String>,
    pub(super) list: Vec<String>,
    pub(super) error: Vec<String>,
    /// Bodies that are not enveloped: the model and where it is answered.
    pub(super) bare: Vec<(String, Vec<String>)>,
    pub(super) success_example: Option<String>,
    pub(super) list_example: Option<String>,
    pub(super) error_example: Option<String>,
}

impl EnvelopeFacts {
    /// Whether there is something to say about envelopes: success bodies
    /// share the error envelope's discriminator.
    pub(super) fn relevant(&self) -> bool {
        !self.discriminator.is_empty() && (!self.success.is_empty() || !self.list.is_empty())
    }
}

/// What the overview says about errors.
#[derive(Default)]
pub(super) struct ErrorFacts {
    /// The error-code enum, linked.
    pub(super) model: Option<String>,
    /// The error envelope, linked.
    pub(super) envelope: Option<String>,
    /// Where the code and the message are in the envelope, e.g. `error.code`.
    pub(super) code_path: String,
    pub(super) message_path: String,
    pub(super) rows: Vec<ErrorRow>,
    /// Whether to print `rows`: not when the description's section about
    /// errors names every code already.
    pub(super) table: bool,
}

pub(super) struct ErrorRow {
    pub(super) code: String,
    pub(super) status: String,
    pub(super) meaning: String,
}

/// The error envelope's own one-value fields (`status: error`): the fields
/// a success body must share, with another value, to be an envelope too.
fn discriminators(error: &ErrorConvention) -> impl Iterator<Item = &str> {
    error.constants.iter().filter(|c| c.owner == error.envelope).map(|c| c.field.as_str())
}

/// Whether a success body is an envelope: it requires one of the error
/// envelope's discriminator fields, as a one-value enum.
fn is_envelope(cx: &Ctx<'_>, error: &ErrorConvention, s: &StructType) -> bool {
    discriminators(error).any(|name| {
        s.fields.iter().any(|f| {
            f.name == name
                && f.required
                && matches!(&f.shape, Shape::Named(n) if matches!(
                    cx.type_def(n).map(|d| &d.kind),
                    Some(TypeKind::Enum(e)) if e.variants.len() == 1
                ))
        })
    })
}

/// Sorts the JSON bodies of every response into success envelopes, list
/// envelopes (the bodies of paged lists), the error envelope and bodies
/// that are not enveloped.
pub(super) fn envelope_facts(cx: &Ctx<'_>) -> EnvelopeFacts {
    let Some(error) = &cx.api.conventions.error else { return EnvelopeFacts::default() };
    let Some(discriminator) = discriminators(error).next() else { return EnvelopeFacts::default() };
    let mut facts =
        EnvelopeFacts { discriminator: cx.wire_field(&error.envelope, discriminator), ..EnvelopeFacts::default() };
    let push_unique = |list: &mut Vec<String>, item: String| {
        if !list.contains(&item) {
            list.push(item);
        }
    };
    for op in &cx.api.operations {
        for r in &op.responses {
            let Some(ResponseBody::Json { shape, example }) = &r.body else { continue };
            let example = example.as_ref().map(pretty_json);
            if !r.status.is_success() {
                if matches!(shape, Shape::Named(n) if *n == error.envelope) {
                    push_unique(&mut facts.error, cx.model(&error.envelope, INDEX));
                    facts.error_example = facts.error_example.take().or(example);
                }
                continue;
            }
            let Some((name, s)) = cx.struct_of(shape) else { continue };
            let link = cx.model(name, INDEX);
            if !is_envelope(cx, error, s) {
                let place = format!("{} of {}", status_code(r.status), cx.op(op, INDEX));
                match facts.bare.iter_mut().find(|(l, _)| *l == link) {
                    Some((_, places)) => places.push(place),
                    None => facts.bare.push((link, vec![place])),
                }
            } else if op.pagination.is_some() {
                push_unique(&mut facts.list, link);
                facts.list_example = facts.list_example.take().or(example);
            } else {
                push_unique(&mut facts.success, link);
                facts.success_example = facts.success_example.take().or(example);
            }
        }
    }
    if facts.error_example.is_none() {
        facts.error_example = cx.type_def(&error.envelope).and_then(|d| d.example.as_ref()).map(pretty_json);
    }
    facts
}

/// The error envelope, where its code and message are, and a row per code
/// with the statuses and meaning lowering read from the spec's prose.
pub(super) fn error_facts(cx: &Ctx<'_>) -> ErrorFacts {
    let Some(error) = &cx.api.conventions.error else { return ErrorFacts::default() };
    // Wire names along the path from the envelope to the error object.
    let mut path = Vec::new();
    let mut owner = error.envelope.clone();
    for field in &error.error_path {
        path.push(cx.wire_field(&owner, field));
        if let Some(Shape::Named(next)) = cx
            .struct_of(&Shape::Named(owner.clone()))
            .and_then(|(_, s)| s.fields.iter().find(|f| f.name == *field))
            .map(|f| &f.shape)
        {
            owner = next.clone();
        }
    }
    let at = |field: &str| {
        let mut parts = path.clone();
        parts.push(cx.wire_field(&error.error_type, field));
        parts.join(".")
    };
    let codes = &cx.api.prose.error_codes;
    ErrorFacts {
        model: error.code_enum.as_deref().map(|n| cx.model(n, INDEX)),
        envelope: Some(cx.model(&error.envelope, INDEX)),
        code_path: at(&error.code_field),
        message_path: at(&error.message_field),
        rows: codes
            .iter()
            .map(|c| ErrorRow {
                code: code(&c.code),
                status: cell(&c.statuses.join(", ")),
                meaning: cell(c.meaning.as_deref().unwrap_or("")),
            })
            .collect(),
        table: !codes.iter().all(|c| c.in_overview),
    }
}
