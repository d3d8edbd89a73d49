//! The client crate's `README.md`: what the client does for this spec, a
//! first call, building a request body, and testing code that uses the
//! client against the server crate's `spawn_fake`.

use super::{Plan, env_comment, example_call, first_example, pagination_fields, wrap};
use crate::ir::Operation;

/// The README's section on testing code that uses the client against the
/// server crate's `spawn_fake`: a fake implementing nothing, so the call
/// answers 501. It runs as a doctest when the call takes no argument and its
/// credentials are the ones `api_key` sets (an open operation, or the API's
/// only scheme), and is compiled only otherwise.
fn testing_section(plan: &Plan) -> String {
    let (api, names) = (plan.api, plan.names);
    let lib = plan.lib();
    let server = names.server_lib();
    let trait_name = crate::emit::server::trait_name(api);
    let Some((op, setup, call)) = first_example(plan, &api.operations) else { return String::new() };
    let key = match api.security_schemes.values().next() {
        Some(crate::ir::SecurityScheme::Basic { .. }) => "user:password",
        _ => "test-key",
    };
    // Arguments come from examples that may break the spec's own
    // constraints (the client would refuse to send them), so only a call
    // without any runs. The path `/` is left out too: the router, nested
    // under the server URL's path, answers `<prefix>` but not the
    // `<prefix>/` the client asks for (a known gap of the router).
    let runs =
        (!op.secured || api.security_schemes.len() == 1) && setup.is_empty() && call.ends_with("()") && op.path != "/";
    let fence = if runs { "rust" } else { "rust,no_run" };
    let setup: String = setup.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"
## Testing your code

`{server}::spawn_fake` (from the server crate generated from the same spec)
serves your implementation of just the operations a test needs on a
loopback port; the others answer 501. Point this client at it:

```{fence}
struct Fake; // implements no operation yet

impl {server}::{trait_name} for Fake {{}}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {{
    let server = {server}::spawn_fake(Fake).await?;
    let client = {lib}::Client::builder().base_url(server.base_url()).api_key("{key}").build()?;
{setup}    let answer = {call}.send().await;
    assert_eq!(answer.err().and_then(|e| e.status()).map(|s| s.as_u16()), Some(501));
    Ok(())
}}
```
"#
    )
}

/// The first operation whose required body the README can build with the
/// constructor and setters, with its setup lines and call.
fn body_example<'o>(plan: &Plan, ops: &'o [Operation]) -> Option<(&'o Operation, String, String)> {
    ops.iter()
        .filter(|op| !op.deprecated && op.body.as_ref().is_some_and(|b| b.required))
        .filter_map(|op| example_call(plan, op).map(|(setup, call)| (op, setup, call)))
        .find(|(_, setup, _)| setup.starts_with("let body = "))
}

pub(super) fn readme(plan: &Plan) -> String {
    let (api, names) = (plan.api, plan.names);
    let c = &api.conventions;
    let lib = plan.lib();
    let mut ops = String::new();
    for op in &api.operations {
        let summary = op.summary.clone().unwrap_or_default();
        let dep = if op.deprecated { " *(deprecated)*" } else { "" };
        ops.push_str(&format!("| `{}` | `{} {}` | {summary}{dep} |\n", op.name, op.method.as_str(), op.path));
    }
    let call = match first_example(plan, &api.operations) {
        Some((_, setup, call)) => {
            let setup: String = setup.lines().map(|l| format!("    {l}\n")).collect();
            format!(
                "{setup}    let response = {call}.send().await?;\n    println!(\"{{:?}} (request {{:?}})\", response.body, response.meta.request_id);\n"
            )
        }
        None => "    println!(\"{client:?}\");\n".to_owned(),
    };
    let mut intro = format!(
        "The Rust client for the {} (version {}), generated from the OpenAPI spec. Every call is typed, retried on transient failures",
        api.title, api.version
    );
    if plan.idempotency_header.is_some() {
        intro.push_str(" with an idempotency key");
    }
    intro.push_str(", and returns the body together with the status");
    match (&c.request_id, &c.rate_limit) {
        (Some(id), Some(_)) => intro.push_str(&format!(", the `{}` and the rate-limit headers.", id.name)),
        (Some(id), None) => intro.push_str(&format!(" and the `{}` header.", id.name)),
        (None, Some(_)) => intro.push_str(" and the rate-limit headers."),
        (None, None) => intro.push_str(" and the headers."),
    }
    let intro = wrap(&intro, 72);
    let mut bullets: Vec<String> = Vec::new();
    let key = if c.bearer.is_some() {
        "A missing key is an error when the client is built."
    } else {
        "The spec declares no bearer key, so none is required."
    };
    bullets.push(format!(
        "**Configuration**: `Client::from_env()` or `Client::builder()` (API key, base URL, timeout, retries, user agent, default headers, your own `reqwest::Client`). {key}"
    ));
    let hints = if c.rate_limit.is_some() { "`Retry-After` and `X-RateLimit-Reset`" } else { "`Retry-After`" };
    let retries = "**Retries**: connection errors, timeouts, 408, 429, 500, 502, 503 and 504 are retried (2 times by default) with exponential backoff and jitter, honoring";
    bullets.push(match plan.idempotency_header {
        Some(header) => format!(
            "{retries} {hints}. Every POST carries one `{header}` for all its attempts, so a retry never runs the work twice; a 409 that says the first attempt is still in progress (it carries `Retry-After`) is retried too, and gets the stored answer."
        ),
        None => format!(
            "{retries} {hints}. The spec declares no idempotency key, so a POST or PATCH is repeated only when the server cannot have acted on it (a refused connection, a 429)."
        ),
    });
    let mut carried = vec!["the status".to_owned()];
    carried.push(match plan.error {
        Some(_) => "the parsed error envelope (with unknown codes kept)".to_owned(),
        None => "the headers, the body as received and, when it is JSON, parsed (with its `code` and `message`, if it has them)".to_owned(),
    });
    if c.request_id.is_some() {
        carried.push("the request id".to_owned());
    }
    if c.rate_limit.is_some() {
        carried.push("the rate-limit state".to_owned());
    }
    let last = carried.pop().unwrap_or_default();
    bullets.push(format!("**Errors**: one `Error` type; API errors carry {} and {last}.", carried.join(", ")));
    if api.operations.iter().any(|o| pagination_fields(plan, o).is_some()) {
        bullets.push("**Pagination**: list calls return one page, or `.into_stream()` for every item.".to_owned());
    }
    if api.operations.iter().any(Operation::is_stream) {
        bullets.push("**Streaming**: stream calls give a `Stream` of typed events and resume after a dropped connection with `Last-Event-ID`, never delivering an event twice.".to_owned());
    }
    if let Some(lr) = &plan.long_running {
        let cancel = if lr.cancel.is_some() { " and `cancel()`" } else { "" };
        bullets.push(format!("**Long-running operations**: a 202 gives an `OperationHandle` with `wait()`{cancel}."));
    }
    bullets.push("**Request bodies**: each model has `new` taking its required fields and one chainable setter per optional field (`_null` setters send `null` for nullable ones); a model with no required field is `Default`. Bodies are checked against the spec's constraints before anything is sent.".to_owned());
    bullets.push("**Forward compatible**: unknown enum values, `oneOf` alternatives and stream events a newer server sends are kept as `Unknown` values instead of failing, and unknown fields are ignored.".to_owned());
    bullets.push(format!("**Testing your code**: `{}::spawn_fake` serves your implementation of the operations a test needs on a loopback port; point this client at its `base_url()`.", names.server_lib()));
    let features: String = bullets.iter().map(|b| format!("- {}\n", wrap(b, 86).replace('\n', "\n  "))).collect();
    let building = body_example(plan, &api.operations)
        .map(|(op, setup, call)| {
            format!(
                "\n## Building a request\n\n`{}` takes a body built with its constructor (the required fields) and,\nfor the optional ones, chainable setters:\n\n```rust,no_run\n# async fn run(client: {lib}::Client) -> Result<(), {lib}::Error> {{\n{setup}let response = {call}.send().await?;\n# let _ = response;\n# Ok(())\n# }}\n```\n",
                op.name
            )
        })
        .unwrap_or_default();
    let dependency_version = names.crate_version.split('.').take(2).collect::<Vec<_>>().join(".");
    let testing = testing_section(plan);
    format!(
        r#"# {crate_name}

{intro}

```toml
[dependencies]
{crate_name} = "{dependency_version}"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
```

```rust,no_run
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {{
    {env}
    let client = {lib}::Client::from_env()?;
{call}    Ok(())
}}
```

## What it does for you

{features}{building}{testing}
## Operations

| Method | HTTP | Summary |
|---|---|---|
{ops}
This crate is generated by `cargo xtask codegen` from {spec}; do not edit it by hand.
"#,
        crate_name = names.client_crate,
        env = env_comment(plan),
        spec = if names.spec_path.contains(['/', '.']) {
            format!("`{}`", names.spec_path)
        } else {
            names.spec_path.clone()
        },
    )
}
