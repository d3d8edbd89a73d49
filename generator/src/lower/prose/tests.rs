//! `check(spec, expect)` tests of what is read from the spec's prose: each
//! spec is lowered and its `Prose` printed; `UPDATE_EXPECT=1 cargo test`
//! rewrites the expectations.

use expect_test::{Expect, expect};

fn check(spec: &str, expected: Expect) {
    let api = crate::load(spec).unwrap_or_else(|e| panic!("the spec should lower:\n{e}"));
    expected.assert_debug_eq(&api.prose);
}

/// A spec whose error responses use a `{code, message}` envelope with the
/// `Code` enum, with `info.description` and the enum's description given.
fn spec(info_description: &str, code_description: &str) -> String {
    let indent = |text: &str, by: &str| text.lines().map(|l| format!("{by}{l}")).collect::<Vec<_>>().join("\n");
    let (info_description, code_description) = (indent(info_description, "    "), indent(code_description, "        "));
    format!(
        r#"openapi: 3.0.3
info:
  title: T
  version: '1'
  description: |
{info_description}
paths:
  /a:
    get:
      operationId: a
      responses:
        '200': {{description: ok}}
        '404':
          description: Not there (`GONE`).
          content:
            application/json:
              schema: {{$ref: '#/components/schemas/Problem'}}
        '409':
          description: Busy; `BUSY`, or `GONE` when it went away meanwhile.
          content:
            application/json:
              schema: {{$ref: '#/components/schemas/Problem'}}
components:
  schemas:
    Problem:
      type: object
      required: [code, message]
      properties:
        code: {{$ref: '#/components/schemas/Code'}}
        message: {{type: string}}
    Code:
      type: string
      enum: [BUSY, GONE, NOT_FOUND, TEAPOT]
      description: |
{code_description}
"#
    )
}

#[test]
fn a_spec_without_prose_has_none() {
    check(
        include_str!("../../../../tests/fixtures/minimal.yaml"),
        expect![[r#"
            Prose {
                preamble: "",
                sections: [],
                error_codes: [],
            }
        "#]],
    );
}

#[test]
fn sections_are_split_at_top_level_headings_outside_code() {
    // A heading inside a fence is code; `###` stays inside its section; the
    // second section about errors gets no topic (the first one has it); a
    // heading about nothing known gets none either.
    let description = "Intro text.\n\n# Auth\n\nSend a key.\n\n```\n# not a heading\n```\n\n### Details\n\nMore.\n\n## Errors\n\nSome.\n\n## More errors\n\n## Glossary\n\nWords.";
    check(
        &spec(description, "Codes."),
        expect![[r#"
            Prose {
                preamble: "Intro text.",
                sections: [
                    ProseSection {
                        heading: "Auth",
                        body: "Send a key.\n\n```\n# not a heading\n```\n\n### Details\n\nMore.",
                        topic: Some(
                            Authentication,
                        ),
                    },
                    ProseSection {
                        heading: "Errors",
                        body: "Some.",
                        topic: Some(
                            Errors,
                        ),
                    },
                    ProseSection {
                        heading: "More errors",
                        body: "",
                        topic: None,
                    },
                    ProseSection {
                        heading: "Glossary",
                        body: "Words.",
                        topic: None,
                    },
                ],
                error_codes: [
                    ErrorCodeProse {
                        code: "BUSY",
                        statuses: [
                            "409",
                        ],
                        meaning: None,
                        in_overview: false,
                    },
                    ErrorCodeProse {
                        code: "GONE",
                        statuses: [
                            "404",
                            "409",
                        ],
                        meaning: None,
                        in_overview: false,
                    },
                    ErrorCodeProse {
                        code: "NOT_FOUND",
                        statuses: [
                            "404",
                        ],
                        meaning: None,
                        in_overview: false,
                    },
                    ErrorCodeProse {
                        code: "TEAPOT",
                        statuses: [],
                        meaning: None,
                        in_overview: false,
                    },
                ],
            }
        "#]],
    );
}

#[test]
fn error_codes_come_from_the_enums_table_first() {
    // The enum's table wins over the description's; a code neither table
    // lists falls back to the statuses that name it; `in_overview` says the
    // description's errors section names a code already.
    let description = "## Errors\n\n| Code | Meaning | HTTP status |\n|---|---|---|\n| `BUSY` | Try later. | 409, 429 |\n| `TEAPOT` | Short and stout. | 418 |";
    let codes = "The codes.\n\n| Code | HTTP status | Meaning |\n|:--|:-:|--|\n| `BUSY` | 409 | Someone else is at it. |\n| GONE | 410 | |";
    check(
        &spec(description, codes),
        expect![[r#"
            Prose {
                preamble: "",
                sections: [
                    ProseSection {
                        heading: "Errors",
                        body: "| Code | Meaning | HTTP status |\n|---|---|---|\n| `BUSY` | Try later. | 409, 429 |\n| `TEAPOT` | Short and stout. | 418 |",
                        topic: Some(
                            Errors,
                        ),
                    },
                ],
                error_codes: [
                    ErrorCodeProse {
                        code: "BUSY",
                        statuses: [
                            "409",
                        ],
                        meaning: Some(
                            "Someone else is at it.",
                        ),
                        in_overview: true,
                    },
                    ErrorCodeProse {
                        code: "GONE",
                        statuses: [
                            "410",
                        ],
                        meaning: None,
                        in_overview: false,
                    },
                    ErrorCodeProse {
                        code: "NOT_FOUND",
                        statuses: [
                            "404",
                        ],
                        meaning: None,
                        in_overview: false,
                    },
                    ErrorCodeProse {
                        code: "TEAPOT",
                        statuses: [
                            "418",
                        ],
                        meaning: Some(
                            "Short and stout.",
                        ),
                        in_overview: true,
                    },
                ],
            }
        "#]],
    );
}

#[test]
fn a_string_code_has_no_code_list() {
    let spec = spec("## Errors\n\n| Code | Meaning |\n|---|---|\n| `BUSY` | Later. |", "Codes.")
        .replace("code: {$ref: '#/components/schemas/Code'}", "code: {type: string}");
    let api = crate::load(&spec).unwrap();
    assert!(api.conventions.error.is_some(), "the envelope is still a convention");
    assert!(api.prose.error_codes.is_empty());
}

#[test]
fn runagent_describes_every_topic_and_code() {
    let api = crate::load(include_str!("../../../../spec/openapi.yaml")).unwrap();
    let topics: Vec<_> = api.prose.sections.iter().map(|s| (s.heading.as_str(), s.topic)).collect();
    let expected = expect![[r#"
        [
            (
                "Authentication",
                Some(
                    Authentication,
                ),
            ),
            (
                "Envelopes",
                Some(
                    Envelopes,
                ),
            ),
            (
                "Errors",
                Some(
                    Errors,
                ),
            ),
            (
                "Rate limits",
                Some(
                    RateLimits,
                ),
            ),
            (
                "Pagination",
                Some(
                    Pagination,
                ),
            ),
            (
                "Idempotent retries",
                Some(
                    Idempotency,
                ),
            ),
            (
                "Async operations",
                Some(
                    LongRunning,
                ),
            ),
            (
                "Streaming and resume",
                Some(
                    Streaming,
                ),
            ),
            (
                "Batch operations",
                Some(
                    Batch,
                ),
            ),
            (
                "Versioning and deprecation",
                Some(
                    Versioning,
                ),
            ),
        ]
    "#]];
    expected.assert_debug_eq(&topics);
    let codes = &api.prose.error_codes;
    assert_eq!(codes.len(), 11);
    assert!(codes.iter().all(|c| c.in_overview), "the Errors section has the whole table");
    let timeout = codes.iter().find(|c| c.code == "AGENT_TIMEOUT").unwrap();
    assert_eq!(timeout.statuses, ["500"]);
    assert_eq!(timeout.meaning.as_deref(), Some("The agent's program exceeded its timeout and was stopped."));
}
