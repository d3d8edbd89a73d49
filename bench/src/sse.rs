//! The SSE benchmark: events per second through runagent-client's
//! `SseParser` and through the `eventsource-stream` crate, on the same bytes
//! split into the same reads. Before anything is timed, both parsers must
//! yield the same events.

use futures::StreamExt;
use runagent_client::SseParser;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64), so that every run and both
/// sides see the same stream and the same read sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }
}

/// One stream and the sizes of the reads it arrives in.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    reads: Vec<usize>,
}

impl Case {
    fn chunks(&self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(self.reads.len());
        let mut at = 0;
        for &n in &self.reads {
            out.push(&self.bytes[at..at + n]);
            at += n;
        }
        out
    }
}

/// Events like the API's stream: `start`, then `chunk`s of a few words,
/// with ids, one `retry` and an occasional keep-alive comment.
fn small_events(target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 256);
    out.extend_from_slice(b"event: start\nid: str_9fK2pQ:0\nretry: 3000\ndata: {\"stream_id\":\"str_9fK2pQ\",\"agent_id\":\"agt_7Hq2mP9xKd\"}\n\n");
    let mut n = 1;
    while out.len() < target {
        if n % 50 == 0 {
            out.extend_from_slice(b": keep-alive\n\n");
        }
        out.extend_from_slice(
            format!("event: chunk\nid: str_9fK2pQ:{n}\ndata: {{\"index\":{},\"text\":\" word{n}\"}}\n\n", n - 1)
                .as_bytes(),
        );
        n += 1;
    }
    out.extend_from_slice(b"event: done\nid: str_9fK2pQ:end\ndata: {\"result\":\"...\"}\n\n");
    out
}

/// Events whose data is large and spread over several `data:` lines, some
/// with CRLF line ends.
fn large_events(target: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 70_000);
    let mut n = 0;
    while out.len() < target {
        let eol: &[u8] = if n % 3 == 0 { b"\r\n" } else { b"\n" };
        out.extend_from_slice(format!("event: chunk\nid: big:{n}").as_bytes());
        out.extend_from_slice(eol);
        for line in 0..rng.between(4, 16) {
            out.extend_from_slice(b"data: ");
            let len = rng.between(512, 4096);
            out.extend((0..len).map(|i| b'a' + ((i + line + n) % 26) as u8));
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
        n += 1;
    }
    out
}

fn split(len: usize, rng: &mut Rng, low: usize, high: usize) -> Vec<usize> {
    let mut reads = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = rng.between(low, high).min(left);
        reads.push(n);
        left -= n;
    }
    reads
}

fn cases(bytes: usize) -> Vec<Case> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let small = small_events(bytes);
    let large = large_events(bytes, &mut rng);
    vec![
        Case { name: "small events, 1-64 B reads", reads: split(small.len(), &mut rng, 1, 64), bytes: small.clone() },
        Case {
            name: "small events, 1-16 KiB reads",
            reads: split(small.len(), &mut rng, 1024, 16 * 1024),
            bytes: small,
        },
        Case {
            name: "large events, 4-64 KiB reads",
            reads: split(large.len(), &mut rng, 4096, 64 * 1024),
            bytes: large,
        },
    ]
}

/// An event as both parsers can express it: eventsource-stream has no
/// "absent" for the type and id, so absent becomes `message` and empty.
type Normal = (String, String, String, Option<Duration>);

fn ours(chunks: &[&[u8]], mut each: impl FnMut(runagent_client::SseEvent)) {
    let mut parser = SseParser::new();
    for chunk in chunks {
        parser.push(chunk);
        for event in parser.drain() {
            each(event);
        }
    }
}

fn theirs(chunks: &[&[u8]], mut each: impl FnMut(eventsource_stream::Event)) -> Result<(), String> {
    let input = futures::stream::iter(chunks.iter().map(|c| Ok::<&[u8], Infallible>(c)));
    let mut events = eventsource_stream::EventStream::new(input);
    futures::executor::block_on(async {
        while let Some(event) = events.next().await {
            each(event.map_err(|e| e.to_string())?);
        }
        Ok(())
    })
}

fn check_same(case: &Case) -> Result<usize, String> {
    let chunks = case.chunks();
    let mut a: Vec<Normal> = Vec::new();
    ours(&chunks, |e| a.push((e.event.unwrap_or_else(|| "message".into()), e.data, e.id.unwrap_or_default(), e.retry)));
    let mut b: Vec<Normal> = Vec::new();
    theirs(&chunks, |e| b.push((e.event, e.data, e.id, e.retry)))?;
    if a.len() != b.len() {
        return Err(format!("{}: SseParser gave {} events, eventsource-stream {}", case.name, a.len(), b.len()));
    }
    if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
        return Err(format!(
            "{}: event {i} differs:\n  SseParser:          {:?}\n  eventsource-stream: {:?}",
            case.name, a[i], b[i]
        ));
    }
    Ok(a.len())
}

pub fn run(pairs: usize, bytes: usize) -> Result<(), String> {
    let mut results = Vec::new();
    for case in cases(bytes) {
        let events = check_same(&case)?;
        let chunks = case.chunks();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // One untimed pass each warms the caches and the allocator.
        for i in 0..=pairs {
            let start = Instant::now();
            let mut n = 0usize;
            ours(&chunks, |e| {
                black_box(&e);
                n += 1;
            });
            let ours_time = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let mut m = 0usize;
            theirs(&chunks, |e| {
                black_box(&e);
                m += 1;
            })?;
            let theirs_time = start.elapsed().as_secs_f64();
            if i > 0 {
                a.push(n as f64 / ours_time);
                b.push(m as f64 / theirs_time);
            }
        }
        results.push(serde_json::json!({
            "case": case.name,
            "bytes": case.bytes.len(),
            "reads": case.reads.len(),
            "events": events,
            "ours_events_per_s": a,
            "theirs_events_per_s": b,
        }));
    }
    println!("{}", serde_json::json!({ "cases": results }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parsers_agree_on_every_case() {
        for case in cases(64 * 1024) {
            let events = check_same(&case).unwrap();
            assert!(events > 1, "{}", case.name);
        }
    }
}
