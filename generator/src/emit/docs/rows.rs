//! Table rows that the overview and the tag pages share, so an operation,
//! a parameter, a header or an event looks the same wherever it is listed.

use super::Ctx;
use super::markdown::{cell, code, constraints};
use crate::ir::{Header, Operation, Shape, SseEvent};

/// One line of a table of operations.
pub(super) struct OpRow {
    pub(super) link: String,
    pub(super) request: String,
    pub(super) summary: String,
}

/// One line of a table of parameters.
pub(super) struct ParamRow {
    pub(super) name: String,
    pub(super) location: String,
    pub(super) ty: String,
    pub(super) required: String,
    pub(super) default: String,
    pub(super) description: String,
}

/// One line of a table of response headers.
pub(super) struct HeaderRow {
    pub(super) name: String,
    pub(super) ty: String,
    /// The statuses it is sent with (tag pages only).
    pub(super) statuses: String,
    pub(super) description: String,
}

/// One line of a table of stream events.
pub(super) struct EventRow {
    pub(super) name: String,
    pub(super) data: String,
}

pub(super) fn op_row(cx: &Ctx<'_>, op: &Operation, here: &str) -> OpRow {
    let mut summary = cell(op.summary.as_deref().unwrap_or(""));
    if op.deprecated && !summary.to_lowercase().contains("deprecated") {
        summary.push_str(" **(deprecated)**");
    }
    OpRow { link: cx.op(op, here), request: code(&format!("{} {}", op.method.as_str(), op.path)), summary }
}

/// A shape and its constraints, for a Type cell: `integer (int32), 1–100`.
pub(super) fn typed(cx: &Ctx<'_>, shape: &Shape, here: &str) -> String {
    let ty = cx.shape(shape, here);
    let limits = constraints(shape);
    if limits.is_empty() { ty } else { format!("{ty}, {}", limits.join(", ")) }
}

/// A header's row, without its statuses.
pub(super) fn header_row(cx: &Ctx<'_>, h: &Header, here: &str) -> HeaderRow {
    HeaderRow {
        name: code(&h.api_name),
        ty: cell(&typed(cx, &h.shape, here)),
        statuses: String::new(),
        description: cell(h.description.as_deref().unwrap_or("")),
    }
}

pub(super) fn event_row(cx: &Ctx<'_>, e: &SseEvent, here: &str) -> EventRow {
    // A stream described by its schema alone: every event has that data.
    let name = if e.any_name { "any".to_owned() } else { code(&e.api_name) };
    EventRow { name, data: cell(&cx.shape(&e.data, here)) }
}
