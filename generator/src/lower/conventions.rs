//! Finds the conventions an API follows beyond plain OpenAPI, once, on the
//! lowered IR, so that no emitter re-derives one (compare progenitor's
//! detection of dropshot's paginated operations).
//!
//! Each convention is recognized by the shape of the spec where possible:
//! the error envelope is the body most error responses share, the
//! long-running operation handle is a `202` body whose id fetches a record
//! with a status, and so on. Names are used only where OpenAPI gives no
//! shape to go by: the well-known header names, and the names of the events
//! that end a stream. Every convention found carries a pointer to the part
//! of the spec that proves it.

use crate::ir::{
    Api, Conventions, EnvelopeConstant, ErrorConvention, ErrorDetails, EventFailure, Evidence, Field, LongRunning,
    Method, Operation, ParamLocation, RecordError, ResponseBody, SecurityScheme, Shape, StatusCode, StructType,
    TypeKind,
};
use std::collections::BTreeMap;

/// Event names that end a stream: after one of them the server closes the
/// connection and a client must not resume.
pub const TERMINAL_EVENTS: &[&str] = &["done", "end", "error", "complete", "completed", "finish", "finished", "close"];

/// Status values that mean an operation succeeded, failed or was cancelled.
const SUCCEEDED: &[&str] = &["succeeded", "success", "successful", "completed", "complete", "done", "finished"];
const FAILED: &[&str] = &["failed", "failure", "error", "errored"];
const CANCELLED: &[&str] = &["cancelled", "canceled", "aborted"];

/// Fills `api.conventions` and marks the terminal and failure events of
/// every stream.
pub fn detect(api: &mut Api) {
    let error = error_convention(api);
    let long_running = long_running(api, error.as_ref());
    let conventions = Conventions {
        long_running,
        rate_limit: response_header(api, "x-ratelimit-limit"),
        request_id: response_header(api, "x-request-id"),
        idempotency_key: request_header(api, "idempotency-key"),
        bearer: api.security_schemes.iter().find(|(_, scheme)| matches!(scheme, SecurityScheme::Bearer { .. })).map(
            |(name, _)| Evidence {
                name: name.clone(),
                pointer: format!("#/components/securitySchemes/{}", escape(name)),
            },
        ),
        error,
    };
    let code_enum = conventions.error.as_ref().and_then(|e| e.code_enum.clone());
    let failures: Vec<Vec<Option<EventFailure>>> = api
        .operations
        .iter()
        .map(|op| stream_events(op).map(|e| event_failure(api, &e.data, code_enum.as_deref())).collect())
        .collect();
    for (op, failures) in api.operations.iter_mut().zip(failures) {
        for response in &mut op.responses {
            if let Some(ResponseBody::EventStream(stream)) = &mut response.body {
                for (event, failure) in stream.events.iter_mut().zip(failures.iter()) {
                    event.terminal = TERMINAL_EVENTS.contains(&event.api_name.to_ascii_lowercase().as_str());
                    event.failure = failure.clone().filter(|_| event.terminal);
                }
            }
        }
    }
    api.conventions = conventions;
}

fn stream_events(op: &Operation) -> impl Iterator<Item = &crate::ir::SseEvent> {
    op.responses
        .iter()
        .filter_map(|r| match &r.body {
            Some(ResponseBody::EventStream(s)) => Some(s.events.iter()),
            _ => None,
        })
        .flatten()
}

/// RFC 6901 escaping of one pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn struct_of<'a>(api: &'a Api, shape: &Shape) -> Option<(&'a str, &'a StructType)> {
    let Shape::Named(name) = shape else { return None };
    let def = api.types.get(name)?;
    match &def.kind {
        TypeKind::Struct(s) => Some((def.name.as_str(), s)),
        _ => None,
    }
}

fn field<'a>(s: &'a StructType, api_name: &str) -> Option<&'a Field> {
    s.fields.iter().find(|f| f.api_name == api_name)
}

fn is_plain_string(f: &Field) -> bool {
    matches!(f.shape, Shape::String(_))
}

/// The enum type of a field, if it is a string enum.
fn enum_type<'a>(api: &'a Api, f: &Field) -> Option<&'a crate::ir::EnumType> {
    let Shape::Named(name) = &f.shape else { return None };
    match &api.types.get(name)?.kind {
        TypeKind::Enum(e) => Some(e),
        _ => None,
    }
}

/// The one value a required field can have, when it is a single-value enum.
fn constant(api: &Api, owner: &str, f: &Field) -> Option<EnvelopeConstant> {
    let e = enum_type(api, f)?;
    let [only] = e.variants.as_slice() else { return None };
    let Shape::Named(enum_name) = &f.shape else { return None };
    Some(EnvelopeConstant {
        owner: owner.to_owned(),
        field: f.name.clone(),
        enum_type: enum_name.clone(),
        variant: only.name.clone(),
    })
}

fn is_error_status(status: StatusCode) -> bool {
    match status {
        StatusCode::Code(c) => c >= 400,
        StatusCode::Range(r) => r >= 4,
        StatusCode::Default => true,
    }
}

/// The error envelope: the named JSON body used by the most error
/// responses, if it holds a code and a message (at its top level or in one
/// required object field) and a server can build it (every other required
/// field has a single possible value).
fn error_convention(api: &Api) -> Option<ErrorConvention> {
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &api.operations {
        for r in op.responses.iter().filter(|r| is_error_status(r.status)) {
            if let Some(ResponseBody::Json { shape: Shape::Named(n), .. }) = &r.body {
                *uses.entry(n.as_str()).or_default() += 1;
            }
        }
    }
    let mut candidates: Vec<(&str, usize)> = uses.into_iter().collect();
    // Most used first; ties in name order, so the choice is deterministic.
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    candidates.into_iter().find_map(|(name, _)| envelope(api, name))
}

fn envelope(api: &Api, name: &str) -> Option<ErrorConvention> {
    let def = api.types.get(name)?;
    let TypeKind::Struct(top) = &def.kind else { return None };
    // The code and message at the top level, or in one required object field.
    let (error_path, error_type, inner) = if has_code_and_message(top) {
        (Vec::new(), def.name.clone(), top)
    } else {
        top.fields.iter().filter(|f| f.required && !f.nullable).find_map(|f| {
            let (inner_name, inner) = struct_of(api, &f.shape)?;
            has_code_and_message(inner).then(|| (vec![f.name.clone()], inner_name.to_owned(), inner))
        })?
    };
    let code = field(inner, "code")?;
    let code_enum = match &code.shape {
        Shape::String(_) => None,
        Shape::Named(n) if enum_type(api, code).is_some() => Some(n.clone()),
        _ => return None,
    };
    let message = field(inner, "message")?;
    let details = field(inner, "details").and_then(|f| {
        let (type_name, d) = struct_of(api, &f.shape)?;
        let optional_string =
            |name: &str| field(d, name).filter(|x| is_plain_string(x) && !x.required).map(|x| x.name.clone());
        // A server fills details itself, so every field must be optional.
        if d.fields.iter().any(|x| x.required) {
            return None;
        }
        Some(ErrorDetails {
            field: f.name.clone(),
            required: f.required,
            nullable: f.nullable,
            type_name: type_name.to_owned(),
            field_field: optional_string("field"),
            reason_field: optional_string("reason"),
            open: d.additional.is_some(),
        })
    });
    // Every other required field must be a constant, or the server could
    // not build the envelope.
    let mut constants = Vec::new();
    let mut check = |owner: &str, s: &StructType, skip: &[&str]| -> Option<()> {
        for f in s.fields.iter().filter(|f| f.required && !skip.contains(&f.name.as_str())) {
            constants.push(constant(api, owner, f)?);
        }
        Some(())
    };
    let path_skip: Vec<&str> = error_path.iter().map(String::as_str).collect();
    if !error_path.is_empty() {
        check(&def.name, top, &path_skip)?;
    }
    let mut inner_skip = vec![code.name.as_str(), message.name.as_str()];
    if let Some(d) = &details {
        inner_skip.push(d.field.as_str());
    }
    check(&error_type, inner, &inner_skip)?;
    Some(ErrorConvention {
        pointer: def.pointer.clone(),
        envelope: def.name.clone(),
        error_path,
        error_type,
        code_field: code.name.clone(),
        status_codes: status_codes(api, name, code_enum.as_deref()),
        code_enum,
        message_field: message.name.clone(),
        details,
        constants,
    })
}

fn has_code_and_message(s: &StructType) -> bool {
    let ok = |name: &str| field(s, name).is_some_and(|f| f.required && !f.nullable);
    ok("code") && ok("message") && field(s, "message").is_some_and(is_plain_string)
}

/// Finds `code` in an example envelope: at the top or one object down.
fn example_code(example: &serde_json::Value) -> Option<&str> {
    if let Some(code) = example.get("code").and_then(|c| c.as_str()) {
        return Some(code);
    }
    example.as_object()?.values().find_map(|v| v.get("code").and_then(|c| c.as_str()))
}

/// Status → code, from the examples of error responses with the envelope,
/// then, for the statuses a server answers by itself, the code named after
/// the status's reason phrase.
fn status_codes(api: &Api, envelope: &str, code_enum: Option<&str>) -> BTreeMap<u16, String> {
    let known: Option<Vec<&str>> = code_enum.and_then(|n| match &api.types.get(n)?.kind {
        TypeKind::Enum(e) => Some(e.variants.iter().map(|v| v.api_name.as_str()).collect()),
        _ => None,
    });
    let allowed = |code: &str| known.as_ref().is_none_or(|k| k.contains(&code));
    let mut out = BTreeMap::new();
    for op in &api.operations {
        for r in &op.responses {
            let StatusCode::Code(status) = r.status else { continue };
            if status < 400 {
                continue;
            }
            if let Some(ResponseBody::Json { shape: Shape::Named(n), example: Some(example) }) = &r.body
                && n == envelope
                && let Some(code) = example_code(example)
                && allowed(code)
            {
                out.entry(status).or_insert_with(|| code.to_owned());
            }
        }
    }
    if let Some(known) = &known {
        for (status, reason) in REASONS {
            let wanted = reason.to_ascii_uppercase().replace([' ', '-'], "_");
            if let Some(code) = known.iter().find(|k| k.eq_ignore_ascii_case(&wanted)) {
                out.entry(*status).or_insert_with(|| (*code).to_owned());
            }
        }
        // The usual spellings of the codes of a malformed request, a missing
        // key and an internal failure.
        for (status, names) in ALIASES {
            if let Some(code) = known.iter().find(|k| names.iter().any(|n| k.eq_ignore_ascii_case(n))) {
                out.entry(*status).or_insert_with(|| (*code).to_owned());
            }
        }
    }
    out
}

/// The statuses a generated server answers by itself, and their reasons.
const REASONS: &[(u16, &str)] = &[
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (409, "Conflict"),
    (413, "Payload Too Large"),
    (415, "Unsupported Media Type"),
    (422, "Unprocessable Entity"),
    (429, "Too Many Requests"),
    (500, "Internal Server Error"),
    (501, "Not Implemented"),
    (503, "Service Unavailable"),
];

const ALIASES: &[(u16, &[&str])] = &[
    (400, &["INVALID_INPUT", "INVALID_REQUEST", "VALIDATION_ERROR", "BAD_REQUEST"]),
    (401, &["UNAUTHENTICATED", "UNAUTHORIZED"]),
    (429, &["RATE_LIMITED", "RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"]),
    (500, &["INTERNAL_ERROR", "INTERNAL", "SERVER_ERROR"]),
];

/// The id field of a `202` body: `operation_id`, `job_id`, `task_id`, or `id`.
fn id_field(s: &StructType) -> Option<&Field> {
    ["operation_id", "job_id", "task_id", "id"]
        .iter()
        .find_map(|name| field(s, name).filter(|f| f.required && !f.nullable && is_plain_string(f)))
}

/// The long-running operation convention: a `202` JSON body with an id,
/// a GET with one path parameter whose success body is (or wraps, in a
/// required field) a record with the same id and a status enum that has a
/// success value, and maybe a POST to the same path plus `/cancel`.
fn long_running(api: &Api, error: Option<&ErrorConvention>) -> Option<LongRunning> {
    let accepted_bodies =
        api.operations.iter().flat_map(|op| op.responses.iter()).filter_map(|r| match (&r.status, &r.body) {
            (StatusCode::Code(202), Some(ResponseBody::Json { shape, .. })) => Some(shape),
            _ => None,
        });
    for shape in accepted_bodies {
        let Some((accepted, s)) = struct_of(api, shape) else { continue };
        let Some(id) = id_field(s) else { continue };
        let check_url =
            field(s, "check_url").or_else(|| field(s, "status_url")).filter(|f| f.required && is_plain_string(f));
        for poll in api.operations.iter().filter(|op| op.method == Method::Get) {
            let paths: Vec<_> = poll.params_in(ParamLocation::Path).collect();
            if paths.len() != 1 || !poll.path.ends_with('}') || poll.is_stream() {
                continue;
            }
            let Some(found) = poll_record(api, poll, &id.api_name) else { continue };
            let cancel = api
                .operations
                .iter()
                .find(|c| {
                    c.method == Method::Post
                        && (c.path == format!("{}/cancel", poll.path) || c.path == format!("{}:cancel", poll.path))
                        && c.params_in(ParamLocation::Path).count() == 1
                        && c.params_in(ParamLocation::Query).all(|p| !p.required)
                        && c.body.as_ref().is_none_or(|b| !b.required)
                        && c.successes().any(|r| matches!(&r.body, Some(ResponseBody::Json { shape: Shape::Named(n), .. }) if *n == found.poll_body))
                })
                .map(|c| c.name.clone());
            let error_field = error.and_then(|e| {
                let (_, record) = struct_of(api, &Shape::Named(found.record.clone()))?;
                record
                    .fields
                    .iter()
                    .find(|f| matches!(&f.shape, Shape::Named(n) if *n == e.error_type))
                    .map(|f| RecordError { field: f.name.clone(), required: f.required, nullable: f.nullable })
            });
            return Some(LongRunning {
                pointer: api.types.get(accepted).map(|d| d.pointer.clone()).unwrap_or_default(),
                accepted: accepted.to_owned(),
                id_field: id.name.clone(),
                check_url_field: check_url.map(|f| f.name.clone()),
                poll: poll.name.clone(),
                poll_body: found.poll_body,
                record_path: found.record_path,
                record: found.record,
                status_field: found.status_field,
                status_enum: found.status_enum,
                succeeded: found.succeeded,
                failed: found.failed,
                cancelled: found.cancelled,
                error_field,
                cancel,
            });
        }
    }
    None
}

struct PollRecord {
    poll_body: String,
    record_path: Vec<String>,
    record: String,
    status_field: String,
    status_enum: String,
    succeeded: String,
    failed: Option<String>,
    cancelled: Option<String>,
}

fn poll_record(api: &Api, poll: &Operation, id_api_name: &str) -> Option<PollRecord> {
    let mut successes = poll.successes();
    let first = successes.next()?;
    if successes.next().is_some() {
        return None;
    }
    let Some(ResponseBody::Json { shape, .. }) = &first.body else { return None };
    let (body_name, body) = struct_of(api, shape)?;
    let candidates = std::iter::once((Vec::new(), body_name, body)).chain(
        body.fields.iter().filter(|f| f.required && !f.nullable && !f.boxed).filter_map(|f| {
            let (n, s) = struct_of(api, &f.shape)?;
            Some((vec![f.name.clone()], n, s))
        }),
    );
    for (record_path, record_name, record) in candidates {
        let Some(id) = field(record, id_api_name) else { continue };
        if !id.required || !is_plain_string(id) {
            continue;
        }
        let Some(status) = field(record, "status").filter(|f| f.required && !f.nullable) else { continue };
        let Some(e) = enum_type(api, status) else { continue };
        let find = |names: &[&str]| {
            e.variants
                .iter()
                .find(|v| names.contains(&v.api_name.to_ascii_lowercase().as_str()))
                .map(|v| v.name.clone())
        };
        let Some(succeeded) = find(SUCCEEDED) else { continue };
        let Shape::Named(status_enum) = &status.shape else { continue };
        return Some(PollRecord {
            poll_body: body_name.to_owned(),
            record_path,
            record: record_name.to_owned(),
            status_field: status.name.clone(),
            status_enum: status_enum.clone(),
            succeeded,
            failed: find(FAILED),
            cancelled: find(CANCELLED),
        });
    }
    None
}

/// A documented response header, anywhere in the spec.
fn response_header(api: &Api, wire: &str) -> Option<Evidence> {
    api.operations.iter().find_map(|op| {
        op.responses.iter().find_map(|r| {
            r.headers.iter().find(|h| h.api_name.eq_ignore_ascii_case(wire)).map(|h| Evidence {
                name: h.api_name.clone(),
                pointer: format!("{}/responses/{}/headers/{}", op.pointer, r.status.as_spec(), escape(&h.api_name)),
            })
        })
    })
}

/// A header parameter, on any operation.
fn request_header(api: &Api, wire: &str) -> Option<Evidence> {
    api.operations.iter().find_map(|op| {
        op.params_in(ParamLocation::Header)
            .find(|p| p.api_name.eq_ignore_ascii_case(wire))
            .map(|p| Evidence { name: p.api_name.clone(), pointer: format!("{}/parameters", op.pointer) })
    })
}

/// A failure event's data: an object with a required code and a string message.
fn event_failure(api: &Api, data: &Shape, code_enum: Option<&str>) -> Option<EventFailure> {
    let (_, s) = struct_of(api, data)?;
    if !has_code_and_message(s) {
        return None;
    }
    let code = field(s, "code")?;
    let typed_code = match (&code.shape, code_enum) {
        (Shape::Named(n), Some(e)) if n == e => true,
        (Shape::String(_), _) => false,
        _ => return None,
    };
    Some(EventFailure { code_field: code.name.clone(), typed_code, message_field: field(s, "message")?.name.clone() })
}

#[cfg(test)]
mod tests;
