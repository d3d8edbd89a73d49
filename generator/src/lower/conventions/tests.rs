//! `check(spec, expect)` tests of convention detection: each spec is
//! lowered and its `Conventions` printed; `UPDATE_EXPECT=1 cargo test`
//! rewrites the expectations.

use expect_test::{Expect, expect};

fn check(spec: &str, expected: Expect) {
    let api = crate::load(spec).unwrap_or_else(|e| panic!("the spec should lower:\n{e}"));
    expected.assert_debug_eq(&api.conventions);
}

/// A spec with the given components and paths, in YAML.
fn spec(paths: &str, components: &str) -> String {
    format!("openapi: 3.0.3\ninfo: {{title: T, version: '1'}}\npaths:\n{paths}\ncomponents:\n{components}")
}

#[test]
fn a_spec_with_no_conventions_has_none() {
    check(
        include_str!("../../../../tests/fixtures/minimal.yaml"),
        expect![[r##"
            Conventions {
                error: None,
                long_running: None,
                rate_limit: None,
                request_id: None,
                idempotency_key: None,
                bearer: None,
            }
        "##]],
    );
}

#[test]
fn runagent_follows_every_convention() {
    let api = crate::load(include_str!("../../../../spec/openapi.yaml")).unwrap();
    let c = &api.conventions;
    let error = c.error.as_ref().expect("the envelope");
    assert_eq!(error.envelope, "ErrorResponse");
    assert_eq!(error.error_path, ["error"]);
    assert_eq!(error.error_type, "ApiError");
    assert_eq!(error.code_enum.as_deref(), Some("ErrorCode"));
    let details = error.details.as_ref().expect("details");
    assert_eq!((details.type_name.as_str(), details.required, details.nullable), ("ErrorDetails", false, true));
    assert_eq!(details.field_field.as_deref(), Some("field"));
    assert_eq!(details.reason_field.as_deref(), Some("reason"));
    assert!(details.open);
    assert_eq!(error.constants.len(), 1);
    assert_eq!(error.constants[0].owner, "ErrorResponse");
    assert_eq!(error.constants[0].variant, "Error");
    let codes: Vec<(u16, &str)> = error.status_codes.iter().map(|(s, c)| (*s, c.as_str())).collect();
    assert_eq!(
        codes,
        [
            (400, "INVALID_INPUT"),
            (401, "UNAUTHORIZED"),
            (404, "NOT_FOUND"),
            (405, "METHOD_NOT_ALLOWED"),
            (409, "CONFLICT"),
            (413, "PAYLOAD_TOO_LARGE"),
            (429, "RATE_LIMITED"),
            (500, "INTERNAL_ERROR"),
            (501, "NOT_IMPLEMENTED"),
        ]
    );
    let lro = c.long_running.as_ref().expect("operations");
    assert_eq!(
        (lro.accepted.as_str(), lro.id_field.as_str(), lro.check_url_field.as_deref()),
        ("OperationAccepted", "operation_id", Some("check_url"))
    );
    assert_eq!((lro.poll.as_str(), lro.cancel.as_deref()), ("get_operation", Some("cancel_operation")));
    assert_eq!(
        (lro.poll_body.as_str(), lro.record_path.as_slice(), lro.record.as_str()),
        ("OperationResponse", &["data".to_owned()][..], "Operation")
    );
    assert_eq!(lro.status_enum, "OperationStatus");
    assert_eq!(
        (lro.succeeded.as_str(), lro.failed.as_deref(), lro.cancelled.as_deref()),
        ("Succeeded", Some("Failed"), Some("Cancelled"))
    );
    assert_eq!(
        lro.error_field.as_ref().map(|e| (e.field.as_str(), e.required, e.nullable)),
        Some(("error", false, false))
    );
    assert_eq!(c.rate_limit.as_ref().map(|e| e.name.as_str()), Some("X-RateLimit-Limit"));
    assert_eq!(c.request_id.as_ref().map(|e| e.name.as_str()), Some("X-Request-Id"));
    assert_eq!(c.idempotency_key.as_ref().map(|e| e.name.as_str()), Some("Idempotency-Key"));
    assert_eq!(c.bearer.as_ref().map(|e| e.pointer.as_str()), Some("#/components/securitySchemes/bearerAuth"));

    // Every stream ends with `done` or `error`, and `error` carries a typed code.
    let streams: Vec<_> = api
        .operations
        .iter()
        .flat_map(|op| op.responses.iter())
        .filter_map(|r| match &r.body {
            Some(crate::ir::ResponseBody::EventStream(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert!(!streams.is_empty());
    for stream in streams {
        let terminal: Vec<&str> = stream.events.iter().filter(|e| e.terminal).map(|e| e.api_name.as_str()).collect();
        assert_eq!(terminal, ["error", "done"]);
        let failure = stream.events.iter().find_map(|e| e.failure.as_ref()).expect("the error event");
        assert!(failure.typed_code);
    }
}

#[test]
fn a_flat_envelope_with_a_string_code() {
    check(
        &spec(
            "  /a:\n    get:\n      operationId: a\n      responses:\n        '200': {description: ok}\n        '404':\n          description: no\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Problem'}\n              example: {code: missing, message: gone}\n        default:\n          description: no\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Problem'}",
            "  schemas:\n    Problem:\n      type: object\n      required: [code, message]\n      properties:\n        code: {type: string}\n        message: {type: string}",
        ),
        expect![[r##"
            Conventions {
                error: Some(
                    ErrorConvention {
                        pointer: "#/components/schemas/Problem",
                        envelope: "Problem",
                        error_path: [],
                        error_type: "Problem",
                        code_field: "code",
                        code_enum: None,
                        message_field: "message",
                        details: None,
                        constants: [],
                        status_codes: {
                            404: "missing",
                        },
                    },
                ),
                long_running: None,
                rate_limit: None,
                request_id: None,
                idempotency_key: None,
                bearer: None,
            }
        "##]],
    );
}

#[test]
fn an_envelope_a_server_cannot_build_is_no_convention() {
    // `trace` is required and has no single value, so a server could not
    // answer its own rejections in this shape: the generic error is used.
    check(
        &spec(
            "  /a:\n    get:\n      operationId: a\n      responses:\n        '200': {description: ok}\n        '400':\n          description: no\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Problem'}",
            "  schemas:\n    Problem:\n      type: object\n      required: [code, message, trace]\n      properties:\n        code: {type: string}\n        message: {type: string}\n        trace: {type: string}",
        ),
        expect![[r##"
            Conventions {
                error: None,
                long_running: None,
                rate_limit: None,
                request_id: None,
                idempotency_key: None,
                bearer: None,
            }
        "##]],
    );
}

#[test]
fn a_job_polled_by_id_is_a_long_running_operation() {
    let paths = "  /jobs:\n    post:\n      operationId: startJob\n      responses:\n        '202':\n          description: started\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Job'}\n  /jobs/{job_id}:\n    get:\n      operationId: getJob\n      parameters:\n        - {name: job_id, in: path, required: true, schema: {type: string}}\n      responses:\n        '200':\n          description: the job\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Job'}";
    let components = "  schemas:\n    Job:\n      type: object\n      required: [job_id, status]\n      properties:\n        job_id: {type: string}\n        status: {type: string, enum: [queued, completed, failed]}";
    let api = crate::load(&spec(paths, components)).unwrap();
    let lro = api.conventions.long_running.expect("a job is polled by id");
    assert_eq!((lro.accepted.as_str(), lro.id_field.as_str(), lro.check_url_field), ("Job", "job_id", None));
    assert_eq!((lro.poll.as_str(), lro.record.as_str(), lro.record_path.len()), ("get_job", "Job", 0));
    assert_eq!(
        (lro.succeeded.as_str(), lro.failed.as_deref(), lro.cancelled, lro.cancel),
        ("Completed", Some("Failed"), None, None)
    );
}
