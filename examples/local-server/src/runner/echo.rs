//! The built-in `echo` framework.

use std::time::Duration;

use serde_json::Value;

use super::{Answer, Program, RunError, RunRequest};

/// The longest `config.delay_ms` honoured, so that a typo cannot make an
/// echo agent sleep for hours (the run's timeout stops it anyway).
const MAX_DELAY_MS: u64 = 60_000;

/// The query cut into word chunks that join back into the query exactly:
/// each chunk is a word with the whitespace before it, and trailing
/// whitespace goes with the last word (`"Hello world"` → `"Hello"`,
/// `" world"`). A query without words is one chunk.
pub fn echo_chunks(query: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut has_word = false;
    for c in query.chars() {
        if c.is_whitespace() && has_word {
            chunks.push(std::mem::take(&mut current));
            has_word = false;
        }
        has_word |= !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        match chunks.last_mut() {
            Some(last) if !has_word => last.push_str(&current),
            _ => chunks.push(current),
        }
    }
    chunks
}

pub(super) async fn run(
    program: &Program,
    request: &RunRequest,
    mut on_chunk: Option<&mut (dyn FnMut(String) + Send)>,
) -> Result<Answer, RunError> {
    let delay = program
        .config
        .get("delay_ms")
        .and_then(Value::as_u64)
        .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.min(MAX_DELAY_MS)));
    for chunk in echo_chunks(&request.query) {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(on_chunk) = on_chunk.as_mut() {
            on_chunk(chunk);
        }
    }
    Ok(Answer { result: request.query.clone(), tokens_used: None })
}
