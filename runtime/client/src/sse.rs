//! An incremental parser for the Server-Sent Events wire format, as the
//! WHATWG HTML standard defines it (section "Interpreting an event stream").
//!
//! Bytes are pushed as they arrive from the network, in chunks of any size;
//! complete events come out. Only the incomplete last line of a chunk is
//! copied into an internal buffer, complete lines are parsed straight from
//! the chunk, and line ends are found eight bytes at a time.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

/// The UTF-8 byte order mark, which the standard strips from the stream start.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event` field; `None` when absent or empty, which the standard
    /// treats as the default type `message`.
    pub event: Option<String>,
    /// The `data` fields of the event joined with `\n`.
    pub data: String,
    /// The last event id at dispatch time. As in the standard it persists:
    /// an event without an `id` field carries the previous one. `None` when
    /// no id was set or an empty `id` field reset it.
    pub id: Option<String>,
    /// The `retry` field of this event's block, if it had a valid one.
    pub retry: Option<Duration>,
}

/// An event together with whether its own block set the id, which the
/// resuming stream needs to recognise replayed events.
#[derive(Debug)]
pub(crate) struct Dispatched {
    pub(crate) event: SseEvent,
    pub(crate) has_own_id: bool,
}

/// An incremental Server-Sent Events parser: push the bytes of a stream
/// in whatever pieces they arrive, and take the complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The incomplete last line of earlier chunks.
    line: Vec<u8>,
    /// The previous chunk ended with CR, so an LF starting the next chunk
    /// belongs to the same line end.
    pending_cr: bool,
    /// Whether the start of the stream has been checked for a BOM.
    bom_checked: bool,
    /// The data buffer of the event being built, each line followed by LF.
    data: String,
    /// The event type buffer of the event being built.
    event_type: String,
    /// The last event id buffer, which persists across events.
    id_buffer: String,
    /// Whether the current block had an `id` field with a non-empty value.
    block_has_id: bool,
    /// The `retry` field of the current block.
    block_retry: Option<Duration>,
    /// The last event id committed at the end of a block.
    last_event_id: String,
    /// The most recent valid `retry` value of the stream.
    reconnection_time: Option<Duration>,
    /// Events parsed but not yet taken.
    queue: VecDeque<Dispatched>,
}

impl SseParser {
    /// Creates a parser for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a parser for a reconnection that sent `Last-Event-ID`, so
    /// that events without an `id` field still carry the id they follow.
    pub fn with_last_event_id(last_event_id: impl Into<String>) -> Self {
        let last_event_id = last_event_id.into();
        Self { id_buffer: last_event_id.clone(), last_event_id, ..Self::default() }
    }

    /// Parses a chunk of bytes; the events it completes are queued for
    /// [`SseParser::next_event`].
    pub fn push(&mut self, chunk: &[u8]) {
        if self.bom_checked {
            self.process(chunk);
            return;
        }
        // The BOM may itself be split across chunks, so hold back up to
        // three bytes until it is clear whether they are one.
        let take = (BOM.len() - self.line.len()).min(chunk.len());
        self.line.extend_from_slice(&chunk[..take]);
        let rest = &chunk[take..];
        if BOM.starts_with(&self.line) {
            if self.line.len() < BOM.len() {
                return;
            }
            self.line.clear();
        } else {
            // Not a BOM: the held-back bytes are ordinary stream content and
            // may contain line ends, so they go through the parser first.
            let held = std::mem::take(&mut self.line);
            self.bom_checked = true;
            self.process(&held);
        }
        self.bom_checked = true;
        self.process(rest);
    }

    /// Parses a chunk and appends the events it completes (and any queued
    /// earlier) to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        self.push(chunk);
        out.extend(self.queue.drain(..).map(|d| d.event));
    }

    /// Takes the next complete event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.queue.pop_front().map(|d| d.event)
    }

    /// Takes the next complete event with whether its block set the id.
    pub(crate) fn next_dispatched(&mut self) -> Option<Dispatched> {
        self.queue.pop_front()
    }

    /// Iterates over, and removes, the complete events parsed so far.
    pub fn drain(&mut self) -> impl Iterator<Item = SseEvent> + '_ {
        self.queue.drain(..).map(|d| d.event)
    }

    /// The last event id committed at the end of a block, to send as
    /// `Last-Event-ID` when reconnecting. An id in an unfinished block does
    /// not count, since that block's event was never dispatched.
    pub fn last_event_id(&self) -> Option<&str> {
        Some(self.last_event_id.as_str()).filter(|id| !id.is_empty())
    }

    /// The reconnection delay the server last asked for with `retry`.
    pub fn reconnection_time(&self) -> Option<Duration> {
        self.reconnection_time
    }

    /// Parses bytes after the BOM check.
    fn process(&mut self, mut rest: &[u8]) {
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = find_line_end(rest) {
            if self.line.is_empty() {
                self.process_line(&rest[..end]);
            } else {
                // The line began in an earlier chunk; finish it in the buffer
                // and lend the buffer out, so its capacity is kept for reuse.
                self.line.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line);
                self.line = line;
                self.line.clear();
            }
            let was_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// Interprets one line, without its line end.
    fn process_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // A comment, used by servers as a keep-alive.
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&utf8(value));
                self.data.push('\n');
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&utf8(value));
            }
            // An id containing NUL is ignored, per the standard, because it
            // could not be sent back in a Last-Event-ID header.
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&utf8(value));
                self.block_has_id = !value.is_empty();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits overflowing u64 still mean "a very long time".
                let millis = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
                let retry = Duration::from_millis(millis);
                self.reconnection_time = Some(retry);
                self.block_retry = Some(retry);
            }
            _ => {}
        }
    }

    /// Ends the current block: commits the last event id and, when the
    /// block had data, queues its event.
    fn dispatch(&mut self) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let has_own_id = std::mem::take(&mut self.block_has_id);
        let retry = self.block_retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // Every data line was followed by LF; the last one is not part of the data.
        let data = &self.data[..self.data.len() - 1];
        let event = SseEvent {
            event: (!self.event_type.is_empty()).then(|| self.event_type.clone()),
            // Copying into an exact-size string keeps the data buffer's
            // capacity for the next event.
            data: data.to_owned(),
            id: self.last_event_id().map(str::to_owned),
            retry,
        };
        self.data.clear();
        self.event_type.clear();
        self.queue.push_back(Dispatched { event, has_own_id });
    }
}

/// Decodes a field value, replacing invalid UTF-8 as the standard requires;
/// valid input, the usual case, is borrowed without copying.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Finds the first CR or LF, eight bytes at a time.
///
/// Each 8-byte word is XORed with the byte to look for, turning matches into
/// zero bytes, which the classic "has a zero byte" bit trick detects. The
/// lowest flagged byte is always a true match (false positives can only sit
/// above a true one), so with little-endian words `trailing_zeros` finds the
/// first line end.
fn find_line_end(haystack: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    const CRS: u64 = u64::from_ne_bytes([b'\r'; 8]);
    let zero_bytes = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;

    let mut words = haystack.chunks_exact(8);
    let mut offset = 0;
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_le_bytes(bytes);
        let hits = zero_bytes(w ^ LFS) | zero_bytes(w ^ CRS);
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    words.remainder().iter().position(|&b| b == b'\n' || b == b'\r').map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(input, &mut out);
        out
    }

    fn data(event: &SseEvent) -> &str {
        &event.data
    }

    fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent { event: event.map(str::to_owned), data: data.to_owned(), id: id.map(str::to_owned), retry: None }
    }

    #[test]
    fn simple_event() {
        assert_eq!(parse(b"data: hello\n\n"), [ev(None, "hello", None)]);
    }

    #[test]
    fn all_fields() {
        let events = parse(b"event: chunk\ndata: {\"a\":1}\nid: 42\nretry: 1500\n\n");
        assert_eq!(
            events,
            [SseEvent {
                event: Some("chunk".into()),
                data: "{\"a\":1}".into(),
                id: Some("42".into()),
                retry: Some(Duration::from_millis(1500)),
            }]
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_lf() {
        let events = parse(b"data: one\ndata: two\ndata:\ndata: three\n\n");
        assert_eq!(data(&events[0]), "one\ntwo\n\nthree");
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        let events = parse(b"data:no space\n\ndata:  two spaces\n\ndata:\ttab\n\n");
        assert_eq!(data(&events[0]), "no space");
        assert_eq!(data(&events[1]), " two spaces");
        assert_eq!(data(&events[2]), "\ttab");
    }

    #[test]
    fn value_may_contain_colons() {
        let events = parse(b"data: a: b:c\n\n");
        assert_eq!(data(&events[0]), "a: b:c");
    }

    #[test]
    fn comments_are_ignored() {
        let events = parse(b": keep-alive\ndata: x\n:another\n\n:\n\n");
        assert_eq!(events, [ev(None, "x", None)]);
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        // "data" alone appends an empty line, so the event has empty data
        // but is still dispatched.
        let events = parse(b"data\n\n");
        assert_eq!(events, [ev(None, "", None)]);
        let events = parse(b"data\ndata\n\n");
        assert_eq!(data(&events[0]), "\n");
        // "event" alone resets the type to the default.
        let events = parse(b"event: x\nevent\ndata: y\n\n");
        assert_eq!(events[0].event, None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let events = parse(b"foo: bar\ndata: x\nDATA: y\nData: z\n\n");
        assert_eq!(data(&events[0]), "x");
    }

    #[test]
    fn block_without_data_is_not_dispatched() {
        assert!(parse(b"event: ping\n\n").is_empty());
        assert!(parse(b"id: 3\n\n").is_empty());
        assert!(parse(b"retry: 10\n\n").is_empty());
        assert!(parse(b"\n\n\n").is_empty());
        // The type of an undispatched block does not leak into the next one.
        let events = parse(b"event: ping\n\ndata: x\n\n");
        assert_eq!(events, [ev(None, "x", None)]);
    }

    #[test]
    fn incomplete_event_at_end_is_not_dispatched() {
        assert!(parse(b"data: never finished\n").is_empty());
        assert!(parse(b"data: never finished").is_empty());
    }

    #[test]
    fn crlf_lf_and_cr_line_ends() {
        let expected = [ev(Some("e"), "a\nb", Some("1")), ev(None, "c", Some("1"))];
        assert_eq!(parse(b"event: e\r\ndata: a\r\ndata: b\r\nid: 1\r\n\r\ndata: c\r\n\r\n"), expected);
        assert_eq!(parse(b"event: e\ndata: a\ndata: b\nid: 1\n\ndata: c\n\n"), expected);
        assert_eq!(parse(b"event: e\rdata: a\rdata: b\rid: 1\r\rdata: c\r\r"), expected);
        // Mixed in one stream.
        assert_eq!(parse(b"event: e\r\ndata: a\rdata: b\nid: 1\r\n\rdata: c\n\r\n"), expected);
    }

    #[test]
    fn cr_then_lf_in_next_chunk_is_one_line_end() {
        let mut parser = SseParser::new();
        parser.push(b"data: a\r");
        parser.push(b"\ndata: b\r");
        parser.push(b"\n\r");
        parser.push(b"\n");
        assert_eq!(parser.next_event(), Some(ev(None, "a\nb", None)));
        assert_eq!(parser.next_event(), None);
    }

    #[test]
    fn cr_then_empty_chunk_then_lf_is_one_line_end() {
        let mut parser = SseParser::new();
        parser.push(b"data: a\r");
        parser.push(b"");
        parser.push(b"\n");
        // If the LF had counted as a second line end, the event would be out.
        assert_eq!(parser.next_event(), None);
        parser.push(b"\n");
        assert_eq!(parser.next_event(), Some(ev(None, "a", None)));
    }

    #[test]
    fn cr_at_chunk_end_then_other_byte_starts_new_line() {
        let mut parser = SseParser::new();
        parser.push(b"data: a\r");
        parser.push(b"data: b\r");
        parser.push(b"\r");
        assert_eq!(parser.next_event(), Some(ev(None, "a\nb", None)));
    }

    #[test]
    fn leading_bom_is_stripped_once() {
        assert_eq!(parse(b"\xEF\xBB\xBFdata: x\n\n"), [ev(None, "x", None)]);
        // A second BOM is content: it makes the field name unknown.
        assert!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n").is_empty());
        // A BOM later in the stream is content too.
        let events = parse(b"data: \xEF\xBB\xBFx\n\n");
        assert_eq!(data(&events[0]), "\u{feff}x");
    }

    #[test]
    fn bom_split_across_chunks() {
        let mut parser = SseParser::new();
        parser.push(b"\xEF");
        parser.push(b"\xBB");
        parser.push(b"\xBFdata: x\n\n");
        assert_eq!(parser.next_event(), Some(ev(None, "x", None)));
    }

    #[test]
    fn short_non_bom_start_is_content() {
        // Fewer than three bytes at first, and line ends among them.
        let mut parser = SseParser::new();
        parser.push(b"\n");
        parser.push(b"d");
        parser.push(b"ata: x\n\n");
        assert_eq!(parser.next_event(), Some(ev(None, "x", None)));
        let mut parser = SseParser::new();
        parser.push(b"\xEF");
        parser.push(b"data: x\n\n");
        // The partial BOM byte is content, so the field is "\u{FFFD}data".
        assert_eq!(parser.next_event(), None);
        assert_eq!(parse(b":\n\ndata: y\n\n"), [ev(None, "y", None)]);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let text = "data: h\u{e9}llo \u{1F600} \u{4e16}\n\n".as_bytes();
        for split in 0..=text.len() {
            let mut parser = SseParser::new();
            parser.push(&text[..split]);
            parser.push(&text[split..]);
            assert_eq!(
                parser.next_event().map(|e| e.data),
                Some("h\u{e9}llo \u{1F600} \u{4e16}".to_owned()),
                "split at {split}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let events = parse(b"data: a\xFFb\n\n");
        assert_eq!(data(&events[0]), "a\u{FFFD}b");
    }

    #[test]
    fn id_persists_and_can_be_reset() {
        let events = parse(b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\ndata: d\n\nid:\ndata: e\n\n");
        let ids: Vec<_> = events.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("1"), None, Some("2"), None]);
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let events = parse(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n");
        assert_eq!(events[1].id.as_deref(), Some("1"));
    }

    #[test]
    fn id_only_block_updates_last_event_id() {
        let mut parser = SseParser::new();
        parser.push(b"id: 5\n\n");
        assert_eq!(parser.next_event(), None);
        assert_eq!(parser.last_event_id(), Some("5"));
        parser.push(b"data: x\n\n");
        assert_eq!(parser.next_event().unwrap().id.as_deref(), Some("5"));
    }

    #[test]
    fn id_in_unfinished_block_is_not_committed() {
        let mut parser = SseParser::new();
        parser.push(b"id: 1\ndata: a\n\nid: 2\ndata: b");
        assert_eq!(parser.last_event_id(), Some("1"));
        parser.push(b"\n\n");
        assert_eq!(parser.last_event_id(), Some("2"));
    }

    #[test]
    fn own_id_is_tracked_per_block() {
        let mut parser = SseParser::new();
        parser.push(b"id: 1\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n");
        let flags: Vec<_> = std::iter::from_fn(|| parser.next_dispatched()).map(|d| d.has_own_id).collect();
        assert_eq!(flags, [true, false, false]);
    }

    #[test]
    fn with_last_event_id_seeds_the_id() {
        let mut parser = SseParser::with_last_event_id("9");
        assert_eq!(parser.last_event_id(), Some("9"));
        parser.push(b"data: x\n\n");
        let dispatched = parser.next_dispatched().unwrap();
        assert_eq!(dispatched.event.id.as_deref(), Some("9"));
        assert!(!dispatched.has_own_id);
    }

    #[test]
    fn retry_needs_only_digits() {
        let mut parser = SseParser::new();
        parser.push(b"retry: 2500\n\n");
        assert_eq!(parser.reconnection_time(), Some(Duration::from_millis(2500)));
        for bad in [&b"retry: 12a\n\n"[..], b"retry: -5\n\n", b"retry: 1.5\n\n", b"retry:\n\n", b"retry:  7\n\n"] {
            parser.push(bad);
            assert_eq!(parser.reconnection_time(), Some(Duration::from_millis(2500)));
        }
        parser.push(b"retry:0\n\n");
        assert_eq!(parser.reconnection_time(), Some(Duration::ZERO));
        parser.push(b"retry: 99999999999999999999999\n\n");
        assert_eq!(parser.reconnection_time(), Some(Duration::from_millis(u64::MAX)));
        let events = parse(b"retry: 10\ndata: a\n\ndata: b\n\n");
        assert_eq!(events[0].retry, Some(Duration::from_millis(10)));
        assert_eq!(events[1].retry, None);
    }

    #[test]
    fn event_type_resets_between_events() {
        let events = parse(b"event: a\ndata: 1\n\ndata: 2\n\n");
        assert_eq!(events[0].event.as_deref(), Some("a"));
        assert_eq!(events[1].event, None);
    }

    #[test]
    fn long_lines_across_many_chunks() {
        let payload = "x".repeat(10_000);
        let text = format!("data: {payload}\n\n");
        let mut parser = SseParser::new();
        for chunk in text.as_bytes().chunks(7) {
            parser.push(chunk);
        }
        assert_eq!(parser.next_event().map(|e| e.data), Some(payload));
    }

    /// A stream exercising every rule at once, used for the split tests.
    const SAMPLE: &[u8] = b"\xEF\xBB\xBF: hello\r\n\
retry: 3000\r\n\
event: start\r\n\
id: 1\r\n\
data: {\"run\":\"r_1\"}\r\n\
\r\n\
event: chunk\n\
data: line one\n\
data:line two\n\
id: 2\n\
\n\
event: chunk\r\
data: caf\xC3\xA9 \xF0\x9F\x98\x80\r\
id: bad\0id\r\
\r\
data\n\
\n\
id: 4\n\
event: done\n\
data: {\"ok\":true}\n\
unknown: field\n\
\n\
event: ignored\n\
\n\
data: trailing, never dispatched";

    fn sample_expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: Some("start".into()),
                data: "{\"run\":\"r_1\"}".into(),
                id: Some("1".into()),
                retry: Some(Duration::from_secs(3)),
            },
            ev(Some("chunk"), "line one\nline two", Some("2")),
            ev(Some("chunk"), "caf\u{e9} \u{1F600}", Some("2")),
            ev(None, "", Some("2")),
            ev(Some("done"), "{\"ok\":true}", Some("4")),
        ]
    }

    #[test]
    fn sample_in_one_chunk() {
        assert_eq!(parse(SAMPLE), sample_expected());
    }

    #[test]
    fn sample_split_at_every_point() {
        let expected = sample_expected();
        for split in 0..=SAMPLE.len() {
            let mut parser = SseParser::new();
            let mut out = Vec::new();
            parser.feed(&SAMPLE[..split], &mut out);
            parser.feed(&SAMPLE[split..], &mut out);
            assert_eq!(out, expected, "split at {split}");
            assert_eq!(parser.last_event_id(), Some("4"));
            assert_eq!(parser.reconnection_time(), Some(Duration::from_secs(3)));
        }
    }

    #[test]
    fn sample_split_at_every_pair_of_points() {
        let expected = sample_expected();
        for first in 0..=SAMPLE.len() {
            for second in first..=SAMPLE.len() {
                let mut parser = SseParser::new();
                let mut out = Vec::new();
                parser.feed(&SAMPLE[..first], &mut out);
                parser.feed(&SAMPLE[first..second], &mut out);
                parser.feed(&SAMPLE[second..], &mut out);
                assert_eq!(out, expected, "splits at {first} and {second}");
            }
        }
    }

    #[test]
    fn sample_byte_by_byte() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for byte in SAMPLE {
            parser.feed(std::slice::from_ref(byte), &mut out);
        }
        assert_eq!(out, sample_expected());
    }

    #[test]
    fn sample_in_random_chunks() {
        let expected = sample_expected();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let mut parser = SseParser::new();
            let mut rest = SAMPLE;
            while !rest.is_empty() {
                let n = rng.usize(0..=rest.len().min(20));
                parser.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(parser.drain().collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn find_line_end_matches_a_naive_scan() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let len = rng.usize(0..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.u8(0..10) {
                    0 => b'\n',
                    1 => b'\r',
                    2 => rng.u8(..),
                    _ => rng.u8(b' '..b'~'),
                })
                .collect();
            let naive = bytes.iter().position(|&b| b == b'\n' || b == b'\r');
            assert_eq!(find_line_end(&bytes), naive, "{bytes:?}");
        }
        // Bytes adjacent to CR and LF in value, which a sloppy bit trick confuses.
        let tricky = [0x0B, 0x0C, 0x0E, 0x09, 0x8A, 0x8D, 0x0A];
        assert_eq!(find_line_end(&tricky), Some(6));
        let mut tricky = [0x8Du8; 16];
        tricky[13] = b'\r';
        assert_eq!(find_line_end(&tricky), Some(13));
    }
}
