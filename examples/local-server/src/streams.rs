//! Resumable streams: a registry of bounded replay buffers, one per
//! stream, kept for a while after the stream ends.
//!
//! A stream's events are numbered from 0 and their SSE ids are
//! `<stream_id>:<sequence>`. The agent's run publishes into the buffer
//! from a task of its own, independent of any connection; a response (the
//! first one, or a resume with `Last-Event-ID`) is a subscription that
//! reads the buffer from a sequence on, then follows live events. Reading
//! by sequence number from one buffer under one lock is what makes a
//! subscription gap-free and duplicate-free whatever the timing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::sync::watch;

/// Bounds of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Events kept per stream; older ones are dropped (and can no longer
    /// be resumed from).
    pub max_events: usize,
    /// How long a finished stream stays resumable.
    pub ttl: Duration,
    /// Streams kept at once; past it, the oldest finished ones go first.
    pub max_streams: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            // An echo of the longest query (10,000 characters) is at most
            // 5,000 chunks, plus `start` and `done`.
            max_events: 8192,
            ttl: Duration::from_secs(300),
            max_streams: 1024,
        }
    }
}

/// Why a resume was refused; all of them are `404 NOT_FOUND` in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// `Last-Event-ID` is not `<stream_id>:<sequence>`.
    #[error("Last-Event-ID is not a stream event id")]
    Malformed,
    /// No such stream for this caller and agent, or it expired.
    #[error("the stream is unknown or has expired")]
    UnknownStream,
    /// The events after the id are no longer all in the buffer, or the id
    /// was never sent.
    #[error("the event is no longer in the replay buffer")]
    NotInBuffer,
}

/// Splits an event id `<stream_id>:<sequence>` into its parts.
pub fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (stream, seq) = id.rsplit_once(':')?;
    let valid_stream = stream
        .strip_prefix("str_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid_stream || seq.is_empty() || !seq.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((stream, seq.parse().ok()?))
}

/// The event id of sequence `seq` of stream `stream_id`.
pub fn event_id(stream_id: &str, seq: u64) -> String {
    format!("{stream_id}:{seq}")
}

struct State<E> {
    /// The sequence of `events[0]`.
    first_seq: u64,
    events: VecDeque<E>,
    finished_at: Option<Instant>,
}

impl<E> State<E> {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }
}

/// One stream's events.
pub struct ReplayBuffer<E> {
    id: String,
    owner: String,
    agent_id: String,
    created: Instant,
    max_events: usize,
    state: Mutex<State<E>>,
    /// Bumped on every publish and at the end, to wake subscribers.
    notify: watch::Sender<u64>,
}

impl<E> std::fmt::Debug for ReplayBuffer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayBuffer").field("id", &self.id).field("agent_id", &self.agent_id).finish_non_exhaustive()
    }
}

impl<E: Clone + Send + Sync + 'static> ReplayBuffer<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // The state is plain data, consistent after every statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stream id, `str_...`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event id of sequence `seq` of this stream.
    pub fn event_id(&self, seq: u64) -> String {
        event_id(&self.id, seq)
    }

    /// Appends an event and wakes the subscribers; returns its sequence.
    /// Events published after [`finish`](Self::finish) are dropped.
    pub fn publish(&self, event: E) -> u64 {
        let mut state = self.lock();
        let seq = state.next_seq();
        if state.finished_at.is_some() {
            return seq;
        }
        state.events.push_back(event);
        if state.events.len() > self.max_events {
            state.events.pop_front();
            state.first_seq += 1;
        }
        // Sent under the lock, so that a subscriber's view of the buffer
        // and of the notification never disagree.
        self.notify.send_replace(seq + 1);
        seq
    }

    /// Marks the stream finished: subscribers end after the last event.
    pub fn finish(&self) {
        let mut state = self.lock();
        if state.finished_at.is_none() {
            state.finished_at = Some(Instant::now());
            let next = state.next_seq();
            self.notify.send_replace(next);
        }
    }

    /// Whether the stream has finished.
    pub fn is_finished(&self) -> bool {
        self.lock().finished_at.is_some()
    }

    fn expired(&self, ttl: Duration, now: Instant) -> bool {
        self.lock().finished_at.is_some_and(|at| now.duration_since(at) >= ttl)
    }

    /// The events after sequence `after` (all of them for `None`), then the
    /// live ones until the stream finishes, each with its sequence.
    ///
    /// A subscriber that falls so far behind that the events it needs were
    /// dropped from the buffer ends early; resuming from its last event is
    /// then refused, as the spec says.
    pub fn subscribe(
        self: &Arc<Self>,
        after: Option<u64>,
    ) -> Result<impl Stream<Item = (u64, E)> + Send + 'static + use<E>, ResumeError> {
        let next = match after {
            None => 0,
            Some(seq) => seq.checked_add(1).ok_or(ResumeError::NotInBuffer)?,
        };
        {
            let state = self.lock();
            if next < state.first_seq || next > state.next_seq() {
                return Err(ResumeError::NotInBuffer);
            }
        }
        let subscription =
            Subscription { buffer: Arc::clone(self), wake: self.notify.subscribe(), next, pending: VecDeque::new() };
        Ok(futures::stream::unfold(subscription, Subscription::next))
    }
}

struct Subscription<E> {
    buffer: Arc<ReplayBuffer<E>>,
    wake: watch::Receiver<u64>,
    next: u64,
    pending: VecDeque<(u64, E)>,
}

impl<E: Clone + Send + Sync + 'static> Subscription<E> {
    async fn next(mut self) -> Option<((u64, E), Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            // Mark the current version seen before reading the buffer: a
            // publish after the read then shows as a change below.
            self.wake.borrow_and_update();
            let finished = {
                let state = self.buffer.lock();
                if self.next < state.first_seq {
                    return None;
                }
                let skip = (self.next - state.first_seq) as usize;
                for (offset, event) in state.events.iter().enumerate().skip(skip) {
                    self.pending.push_back((state.first_seq + offset as u64, event.clone()));
                }
                self.next = state.next_seq();
                state.finished_at.is_some()
            };
            if !self.pending.is_empty() {
                continue;
            }
            if finished || self.wake.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// All live and recently finished streams.
pub struct StreamRegistry<E> {
    limits: StreamLimits,
    streams: Mutex<HashMap<String, Arc<ReplayBuffer<E>>>>,
}

impl<E> std::fmt::Debug for StreamRegistry<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRegistry").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl<E: Clone + Send + Sync + 'static> StreamRegistry<E> {
    /// An empty registry.
    pub fn new(limits: StreamLimits) -> Self {
        StreamRegistry { limits, streams: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<ReplayBuffer<E>>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new, empty stream owned by `owner` (the caller's key id) for
    /// `agent_id`. Expired streams go first, then, when the registry is
    /// full, the oldest finished ones.
    pub fn create(&self, owner: &str, agent_id: &str) -> Arc<ReplayBuffer<E>> {
        let (notify, _) = watch::channel(0);
        let buffer = Arc::new(ReplayBuffer {
            id: crate::ids::new_id("str_"),
            owner: owner.to_owned(),
            agent_id: agent_id.to_owned(),
            created: Instant::now(),
            max_events: self.limits.max_events.max(1),
            state: Mutex::new(State { first_seq: 0, events: VecDeque::new(), finished_at: None }),
            notify,
        });
        let mut streams = self.lock();
        let now = Instant::now();
        streams.retain(|_, s| !s.expired(self.limits.ttl, now));
        if streams.len() >= self.limits.max_streams {
            let mut finished: Vec<(Instant, String)> =
                streams.values().filter(|s| s.is_finished()).map(|s| (s.created, s.id.clone())).collect();
            finished.sort();
            let excess = streams.len() + 1 - self.limits.max_streams;
            for (_, id) in finished.into_iter().take(excess) {
                streams.remove(&id);
            }
        }
        streams.insert(buffer.id.clone(), Arc::clone(&buffer));
        buffer
    }

    /// Resumes a stream after the event `last_event_id`, for the same
    /// caller and agent that started it (another caller's stream is as
    /// unknown as a missing one).
    pub fn resume(
        &self,
        last_event_id: &str,
        owner: &str,
        agent_id: &str,
    ) -> Result<impl Stream<Item = (u64, E)> + Send + 'static + use<E>, ResumeError> {
        let (stream_id, seq) = parse_event_id(last_event_id).ok_or(ResumeError::Malformed)?;
        let buffer = self
            .lock()
            .get(stream_id)
            .cloned()
            .filter(|b| b.owner == owner && b.agent_id == agent_id)
            .filter(|b| !b.expired(self.limits.ttl, Instant::now()))
            .ok_or(ResumeError::UnknownStream)?;
        buffer.subscribe(Some(seq))
    }

    /// Drops the expired streams; returns how many went.
    pub fn sweep(&self) -> usize {
        let mut streams = self.lock();
        let before = streams.len();
        let now = Instant::now();
        streams.retain(|_, s| !s.expired(self.limits.ttl, now));
        before - streams.len()
    }

    /// The number of streams held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no stream is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks every stream finished (at shutdown), so that subscribers end.
    pub fn finish_all(&self) {
        for stream in self.lock().values() {
            stream.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn registry(limits: StreamLimits) -> StreamRegistry<String> {
        StreamRegistry::new(limits)
    }

    async fn collect(stream: impl Stream<Item = (u64, String)>) -> Vec<u64> {
        stream.map(|(seq, _)| seq).collect().await
    }

    #[test]
    fn event_ids_parse() {
        assert_eq!(parse_event_id("str_9fK2pQ:3"), Some(("str_9fK2pQ", 3)));
        assert_eq!(event_id("str_a", 12), "str_a:12");
        for bad in ["str_a", "str_:1", "abc:1", "str_a:", "str_a:-1", "str_a:1x", "str_a-b:1"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_subscriber_gets_everything_then_ends() {
        let registry = registry(StreamLimits::default());
        let stream = registry.create("key_1", "agt_1");
        assert!(stream.id().starts_with("str_"));
        let subscription = stream.subscribe(None).unwrap();
        for i in 0..5 {
            assert_eq!(stream.publish(format!("e{i}")), i);
        }
        stream.finish();
        let events: Vec<(u64, String)> = subscription.collect().await;
        assert_eq!(events.len(), 5);
        assert_eq!(events[4], (4, "e4".to_owned()));
    }

    #[tokio::test]
    async fn resume_returns_exactly_the_events_after_the_id() {
        let registry = registry(StreamLimits::default());
        let stream = registry.create("key_1", "agt_1");
        for i in 0..6 {
            stream.publish(format!("e{i}"));
        }
        stream.finish();
        let resumed = registry.resume(&stream.event_id(2), "key_1", "agt_1").unwrap();
        assert_eq!(collect(resumed).await, [3, 4, 5]);
        let at_end = registry.resume(&stream.event_id(5), "key_1", "agt_1").unwrap();
        assert!(collect(at_end).await.is_empty());
        // Refusals: never sent, another caller or agent, unknown, malformed.
        let refused = |id: &str, owner: &str, agent: &str| registry.resume(id, owner, agent).err().unwrap();
        assert_eq!(refused(&stream.event_id(6), "key_1", "agt_1"), ResumeError::NotInBuffer);
        assert_eq!(refused(&stream.event_id(1), "key_2", "agt_1"), ResumeError::UnknownStream);
        assert_eq!(refused(&stream.event_id(1), "key_1", "agt_2"), ResumeError::UnknownStream);
        assert_eq!(refused("str_nope:1", "key_1", "agt_1"), ResumeError::UnknownStream);
        assert_eq!(refused("nope", "key_1", "agt_1"), ResumeError::Malformed);
    }

    #[tokio::test]
    async fn the_buffer_is_bounded() {
        let registry = registry(StreamLimits { max_events: 4, ..StreamLimits::default() });
        let stream = registry.create("k", "a");
        for i in 0..10 {
            stream.publish(format!("e{i}"));
        }
        stream.finish();
        // Events 6..=9 are kept: resuming after 5 works, after 4 does not.
        assert_eq!(collect(registry.resume(&stream.event_id(5), "k", "a").unwrap()).await, [6, 7, 8, 9]);
        assert_eq!(registry.resume(&stream.event_id(4), "k", "a").err(), Some(ResumeError::NotInBuffer));
    }

    #[tokio::test]
    async fn finished_streams_expire_and_the_registry_is_bounded() {
        let registry = registry(StreamLimits { max_events: 16, ttl: Duration::from_millis(50), max_streams: 3 });
        let old = registry.create("k", "a");
        old.publish("x".into());
        old.finish();
        let running = registry.create("k", "a");
        running.publish("y".into());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(registry.resume(&old.event_id(0), "k", "a").err(), Some(ResumeError::UnknownStream));
        assert_eq!(registry.sweep(), 1);
        // A running stream never expires.
        assert!(registry.resume(&running.event_id(0), "k", "a").is_ok());

        let registry = registry_with_cap(2);
        let first = registry.create("k", "a");
        first.finish();
        let second = registry.create("k", "a");
        let third = registry.create("k", "a");
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.resume("str_x:0", "k", "a").err(), Some(ResumeError::UnknownStream));
        assert!(registry.lock().contains_key(second.id()));
        assert!(registry.lock().contains_key(third.id()));
        assert!(!registry.lock().contains_key(first.id()));
    }

    fn registry_with_cap(max_streams: usize) -> StreamRegistry<String> {
        registry(StreamLimits { max_streams, ..StreamLimits::default() })
    }

    /// Subscribers joining at random moments of a busy stream, from random
    /// points, each see exactly the sequences after their point, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_resumes_have_no_gap_and_no_duplicate() {
        const EVENTS: u64 = 2000;
        let registry = Arc::new(registry(StreamLimits::default()));
        let stream = registry.create("k", "a");
        let producer = {
            let stream = Arc::clone(&stream);
            tokio::spawn(async move {
                for i in 0..EVENTS {
                    stream.publish(format!("e{i}"));
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                stream.finish();
            })
        };
        let mut subscribers = Vec::new();
        for n in 0..16u64 {
            let registry = Arc::clone(&registry);
            let stream = Arc::clone(&stream);
            subscribers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(n * 150)).await;
                // Resume from the newest event that has been published, so
                // that the subscriber straddles replay and live events.
                let after = stream.lock().next_seq().checked_sub(1 + n % 3);
                let events = match after {
                    Some(seq) => collect(registry.resume(&stream.event_id(seq), "k", "a").unwrap()).await,
                    None => collect(stream.subscribe(None).unwrap()).await,
                };
                let from = after.map_or(0, |s| s + 1);
                assert_eq!(events, (from..EVENTS).collect::<Vec<_>>(), "after {after:?}");
            }));
        }
        producer.await.unwrap();
        for subscriber in subscribers {
            subscriber.await.unwrap();
        }
    }
}
