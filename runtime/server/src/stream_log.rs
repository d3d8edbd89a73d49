//! Logs of streamed events, read back from a last event id: what lets a
//! client resume a Server-Sent Events stream with `Last-Event-ID`, on the
//! instance that runs the stream or on any other.
//!
//! A stream's events are numbered from 0 by its one producer, which
//! [appends](StreamLog::append) them in order and
//! [closes](StreamLog::close) the stream after the last. Readers
//! [read](StreamLog::read) the events after a sequence number and
//! [wait](StreamLog::wait) for more; [`follow`] does both until the stream
//! closes, as a `Stream` for an SSE response. The SSE id of an event is the
//! implementation's business (`<stream id>:<seq>`, say): the log only knows
//! sequence numbers and bytes.
//!
//! [`InMemoryStreamLog`] serves one process; the `redis` feature has
//! `RedisStreamLog`, on Redis Streams, for several. Both keep a bounded
//! number of events per stream (older ones are dropped and can no longer
//! be resumed from) and forget a stream a while after its last write
//! ([`StreamLogConfig`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::store::{StoreFuture, StoreUnavailable};

/// One event of a log: its sequence number and its data (whatever the
/// producer appended, e.g. the event's name and JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// The sequence number, from 0.
    pub seq: u64,
    /// The data as appended.
    pub data: Bytes,
}

/// What a [`StreamLog::read`] or [`StreamLog::wait`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRead {
    /// The events after the given sequence number, in order and without a
    /// gap (at most the number asked for).
    pub events: Vec<LoggedEvent>,
    /// The stream is closed and `events` end with its last event: nothing
    /// will follow.
    pub closed: bool,
}

/// Why a log refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamLogError {
    /// No such stream, or it expired. A resume answers `404`.
    #[error("the stream is unknown or has expired")]
    Unknown,
    /// The events after the given one are no longer all kept (they were
    /// dropped to bound the log), or it was never appended. A resume
    /// answers `404`.
    #[error("the events after this one are no longer all in the log")]
    NotInLog,
    /// [`StreamLog::append`] of `seq` when `expected` is the next sequence
    /// number: the producer skipped one.
    #[error("event {seq} is out of order: the next is {expected}")]
    OutOfOrder {
        /// The sequence number appended.
        seq: u64,
        /// The next sequence number of the stream.
        expected: u64,
    },
    /// [`StreamLog::append`] to a closed stream.
    #[error("the stream is closed")]
    Closed,
    /// The log could not be reached; answer `503` with `Retry-After`.
    #[error(transparent)]
    Unavailable(#[from] StoreUnavailable),
}

/// Where the events of resumable streams are kept.
///
/// A stream is created by its first append (of sequence number 0) or by
/// closing it. Appends are idempotent: appending a sequence number the log
/// already has succeeds without changing it, so a producer may retry an
/// append that timed out. Every method is bounded in time: a log over the
/// network answers [`StreamLogError::Unavailable`] rather than hang.
pub trait StreamLog: Send + Sync + 'static {
    /// Appends event `seq` to `stream`: `seq` must be the next sequence
    /// number (0 for a new stream). One already in the log is accepted and
    /// ignored; a later one is [`StreamLogError::OutOfOrder`], and one
    /// after the stream was closed [`StreamLogError::Closed`].
    fn append<'a>(&'a self, stream: &'a str, seq: u64, data: Bytes) -> StoreFuture<'a, Result<(), StreamLogError>>;

    /// Closes `stream` (creating it if it has no event yet): readers end
    /// after its last event, and it expires after
    /// [`StreamLogConfig::closed_ttl`]. Closing twice is harmless.
    fn close<'a>(&'a self, stream: &'a str) -> StoreFuture<'a, Result<(), StreamLogError>>;

    /// Up to `max` events after sequence number `after` (from the first
    /// event for `None`), without waiting. [`StreamLogError::NotInLog`]
    /// when the event after `after` was dropped from the log or `after` is
    /// beyond its last event; [`StreamLogError::Unknown`] for a stream the
    /// log does not have.
    fn read<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        max: usize,
    ) -> StoreFuture<'a, Result<StreamRead, StreamLogError>>;

    /// Like [`StreamLog::read`], but when there is nothing to read yet and
    /// the stream is open, waits up to `timeout` for an event or the close.
    /// After the timeout the read is empty and not closed.
    fn wait<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        max: usize,
        timeout: Duration,
    ) -> StoreFuture<'a, Result<StreamRead, StreamLogError>>;
}

/// Bounds of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLogConfig {
    /// Events kept per stream; older ones are dropped (at least 1).
    pub max_events: usize,
    /// How long an open stream is kept after its last append (a stream
    /// whose producer died does not live forever).
    pub open_ttl: Duration,
    /// How long a closed stream stays resumable.
    pub closed_ttl: Duration,
    /// Streams an [`InMemoryStreamLog`] keeps at once; past it, the oldest
    /// closed ones go first. (Redis bounds its keys by their TTLs.)
    pub max_streams: usize,
}

impl Default for StreamLogConfig {
    fn default() -> Self {
        StreamLogConfig {
            max_events: 8192,
            open_ttl: Duration::from_secs(3600),
            closed_ttl: Duration::from_secs(300),
            max_streams: 1024,
        }
    }
}

/// The sequence number after `after`: where a read starts.
pub(crate) fn next_seq(after: Option<u64>) -> Result<u64, StreamLogError> {
    match after {
        None => Ok(0),
        Some(seq) => seq.checked_add(1).ok_or(StreamLogError::NotInLog),
    }
}

/// Logs in a mutex-guarded map, for a single process.
///
/// A stream's kept events are stored back to back in one buffer (not one
/// allocation per event, and without the spare capacity of the `Bytes`
/// they were appended as); a read copies the events it returns. Readers
/// waiting in [`StreamLog::wait`] are woken by the stream's own list of
/// wakers, so a stream that nobody waits on holds no notification
/// machinery.
pub struct InMemoryStreamLog {
    config: StreamLogConfig,
    streams: Mutex<HashMap<String, Arc<LogEntry>>>,
}

struct LogEntry {
    created: Instant,
    state: Mutex<LogState>,
}

struct LogState {
    /// The sequence number of the first kept event.
    first_seq: u64,
    /// The data of the kept events, back to back, oldest first.
    data: VecDeque<u8>,
    /// The length in `data` of each kept event, oldest first.
    lens: VecDeque<usize>,
    closed: bool,
    /// The last append or the close.
    touched: Instant,
    /// The readers waiting for an append or the close; woken (and removed)
    /// by either, under the lock, so that a reader's view of the log and
    /// of the wake-up never disagree.
    waiters: Vec<Waker>,
}

impl LogState {
    fn end(&self) -> u64 {
        self.first_seq + self.lens.len() as u64
    }

    fn wake_all(&mut self) {
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }
}

/// `len` bytes of `data` from `start`, copied into a `Bytes` of their own.
fn copy_out(data: &VecDeque<u8>, start: usize, len: usize) -> Bytes {
    let (front, back) = data.as_slices();
    let mut out = Vec::with_capacity(len);
    if start < front.len() {
        let end = (start + len).min(front.len());
        out.extend_from_slice(&front[start..end]);
        out.extend_from_slice(&back[..len - (end - start)]);
    } else {
        let start = start - front.len();
        out.extend_from_slice(&back[start..start + len]);
    }
    Bytes::from(out)
}

impl LogEntry {
    fn new(now: Instant) -> Self {
        let state = LogState {
            first_seq: 0,
            data: VecDeque::new(),
            lens: VecDeque::new(),
            closed: false,
            touched: now,
            waiters: Vec::new(),
        };
        LogEntry { created: now, state: Mutex::new(state) }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // Plain data, consistent after every statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, config: &StreamLogConfig, now: Instant) -> bool {
        let state = self.lock();
        let ttl = if state.closed { config.closed_ttl } else { config.open_ttl };
        now.duration_since(state.touched) >= ttl
    }

    fn read(&self, after: Option<u64>, max: usize) -> Result<StreamRead, StreamLogError> {
        let next = next_seq(after)?;
        let state = self.lock();
        let end = state.end();
        if next < state.first_seq || next > end {
            return Err(StreamLogError::NotInLog);
        }
        let skip = (next - state.first_seq) as usize;
        let take = max.max(1).min(state.lens.len() - skip);
        let mut offset: usize = state.lens.iter().take(skip).sum();
        let mut events = Vec::with_capacity(take);
        for (i, &len) in state.lens.iter().skip(skip).take(take).enumerate() {
            events.push(LoggedEvent { seq: next + i as u64, data: copy_out(&state.data, offset, len) });
            offset += len;
        }
        let closed = state.closed && next + events.len() as u64 == end;
        Ok(StreamRead { events, closed })
    }
}

/// Resolves once stream `entry` has an event at or after `next`, or is
/// closed; leaves the stream's list of waiters when dropped.
struct Appended<'a> {
    entry: &'a LogEntry,
    next: u64,
    /// The waker this future put in the list, if it is there.
    registered: Option<Waker>,
}

impl Future for Appended<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.entry.lock();
        if state.closed || state.end() > this.next {
            // A wake-up emptied the list; nothing of ours is left in it.
            this.registered = None;
            return Poll::Ready(());
        }
        match &this.registered {
            Some(waker) if waker.will_wake(cx.waker()) && state.waiters.iter().any(|w| w.will_wake(waker)) => {}
            _ => {
                if let Some(old) = this.registered.take() {
                    remove_waker(&mut state.waiters, &old);
                }
                state.waiters.push(cx.waker().clone());
                this.registered = Some(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for Appended<'_> {
    fn drop(&mut self) {
        if let Some(waker) = self.registered.take() {
            remove_waker(&mut self.entry.lock().waiters, &waker);
        }
    }
}

fn remove_waker(waiters: &mut Vec<Waker>, waker: &Waker) {
    if let Some(i) = waiters.iter().position(|w| w.will_wake(waker)) {
        waiters.swap_remove(i);
    }
}

impl Default for InMemoryStreamLog {
    fn default() -> Self {
        Self::new(StreamLogConfig::default())
    }
}

impl InMemoryStreamLog {
    /// An empty log with these bounds.
    pub fn new(config: StreamLogConfig) -> Self {
        InMemoryStreamLog { config, streams: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<LogEntry>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live stream of this name, if any.
    fn get(&self, stream: &str) -> Option<Arc<LogEntry>> {
        let now = Instant::now();
        self.lock().get(stream).filter(|entry| !entry.expired(&self.config, now)).cloned()
    }

    /// The stream of this name, created (and the map bounded) if missing or
    /// expired.
    fn get_or_create(&self, stream: &str) -> Arc<LogEntry> {
        let now = Instant::now();
        let mut streams = self.lock();
        if let Some(entry) = streams.get(stream).filter(|entry| !entry.expired(&self.config, now)) {
            return Arc::clone(entry);
        }
        streams.retain(|_, entry| !entry.expired(&self.config, now));
        if streams.len() >= self.config.max_streams.max(1) {
            let mut closed: Vec<(Instant, String)> = streams
                .iter()
                .filter(|(_, entry)| entry.lock().closed)
                .map(|(name, entry)| (entry.created, name.clone()))
                .collect();
            closed.sort();
            let excess = streams.len() + 1 - self.config.max_streams.max(1);
            for (_, name) in closed.into_iter().take(excess) {
                streams.remove(&name);
            }
        }
        let entry = Arc::new(LogEntry::new(now));
        streams.insert(stream.to_owned(), Arc::clone(&entry));
        entry
    }

    /// Drops the expired streams; returns how many went. Expired streams
    /// are never read, so this only frees their memory: call it now and
    /// then.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut streams = self.lock();
        let before = streams.len();
        streams.retain(|_, entry| !entry.expired(&self.config, now));
        before - streams.len()
    }

    /// The number of streams held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no stream is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn append_now(&self, stream: &str, seq: u64, data: Bytes) -> Result<(), StreamLogError> {
        let entry =
            if seq == 0 { self.get_or_create(stream) } else { self.get(stream).ok_or(StreamLogError::Unknown)? };
        let mut state = entry.lock();
        let next = state.end();
        if seq < next {
            return Ok(());
        }
        if state.closed {
            return Err(StreamLogError::Closed);
        }
        if seq > next {
            return Err(StreamLogError::OutOfOrder { seq, expected: next });
        }
        state.data.extend(&data[..]);
        state.lens.push_back(data.len());
        if state.lens.len() > self.config.max_events.max(1) {
            let dropped = state.lens.pop_front().unwrap_or(0);
            state.data.drain(..dropped);
            state.first_seq += 1;
        }
        state.touched = Instant::now();
        state.wake_all();
        Ok(())
    }

    fn close_now(&self, stream: &str) {
        let entry = self.get_or_create(stream);
        let mut state = entry.lock();
        state.closed = true;
        state.touched = Instant::now();
        state.wake_all();
    }
}

impl fmt::Debug for InMemoryStreamLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryStreamLog").field("config", &self.config).field("streams", &self.len()).finish()
    }
}

impl StreamLog for InMemoryStreamLog {
    fn append<'a>(&'a self, stream: &'a str, seq: u64, data: Bytes) -> StoreFuture<'a, Result<(), StreamLogError>> {
        Box::pin(std::future::ready(self.append_now(stream, seq, data)))
    }

    fn close<'a>(&'a self, stream: &'a str) -> StoreFuture<'a, Result<(), StreamLogError>> {
        self.close_now(stream);
        Box::pin(std::future::ready(Ok(())))
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        max: usize,
    ) -> StoreFuture<'a, Result<StreamRead, StreamLogError>> {
        let read = self.get(stream).ok_or(StreamLogError::Unknown).and_then(|entry| entry.read(after, max));
        Box::pin(std::future::ready(read))
    }

    fn wait<'a>(
        &'a self,
        stream: &'a str,
        after: Option<u64>,
        max: usize,
        timeout: Duration,
    ) -> StoreFuture<'a, Result<StreamRead, StreamLogError>> {
        Box::pin(async move {
            let entry = self.get(stream).ok_or(StreamLogError::Unknown)?;
            let read = entry.read(after, max)?;
            if !read.events.is_empty() || read.closed {
                return Ok(read);
            }
            // `read` succeeded, so `after + 1` exists. An append or close
            // between the read and the first poll shows in the state, which
            // the poll checks under the lock before it registers.
            let next = next_seq(after)?;
            let _ = tokio::time::timeout(timeout, Appended { entry: &entry, next, registered: None }).await;
            entry.read(after, max)
        })
    }
}

/// Events asked for per read by [`follow`].
pub const FOLLOW_BATCH: usize = 256;

/// How long [`follow`] waits per [`StreamLog::wait`] before asking again.
/// It bounds how long a network log holds a connection for one reader.
pub const FOLLOW_WAIT: Duration = Duration::from_secs(10);

/// The events of `stream` after `after` (from the first for `None`), then
/// the ones appended later, until the stream closes: the body of an SSE
/// response, first or resumed.
///
/// The first read happens before this returns, so that a stream that
/// cannot be resumed is refused up front (`404` for
/// [`StreamLogError::Unknown`] and [`StreamLogError::NotInLog`], `503` for
/// [`StreamLogError::Unavailable`]) instead of starting a response. A later
/// failure (the log became unreachable, or a slow reader fell so far behind
/// that its next events were dropped) is the stream's last item: the
/// client resumes from the last event it got.
pub async fn follow(
    log: Arc<dyn StreamLog>,
    stream: impl Into<String>,
    after: Option<u64>,
) -> Result<BoxStream<'static, Result<LoggedEvent, StreamLogError>>, StreamLogError> {
    let stream = stream.into();
    let first = log.read(&stream, after, FOLLOW_BATCH).await?;
    let state =
        Follow { log, stream, after, pending: VecDeque::from(first.events), closed: first.closed, failed: false };
    Ok(futures::stream::unfold(state, Follow::next).boxed())
}

struct Follow {
    log: Arc<dyn StreamLog>,
    stream: String,
    /// The last event handed out.
    after: Option<u64>,
    pending: VecDeque<LoggedEvent>,
    closed: bool,
    failed: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<LoggedEvent, StreamLogError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = Some(event.seq);
                return Some((Ok(event), self));
            }
            if self.closed || self.failed {
                return None;
            }
            match self.log.wait(&self.stream, self.after, FOLLOW_BATCH, FOLLOW_WAIT).await {
                Ok(read) => {
                    // `pending` is empty here: take the read's allocation
                    // (sized to its events) rather than grow a queue that
                    // would keep its capacity for the life of the stream.
                    self.pending = VecDeque::from(read.events);
                    self.closed = read.closed;
                }
                Err(error) => {
                    self.failed = true;
                    return Some((Err(error), self));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seq: u64) -> Bytes {
        Bytes::from(format!("e{seq}"))
    }

    async fn seqs(read: Result<StreamRead, StreamLogError>) -> (Vec<u64>, bool) {
        let read = read.unwrap();
        (read.events.iter().map(|e| e.seq).collect(), read.closed)
    }

    #[tokio::test]
    async fn appends_in_order_reads_after_an_id_and_closes() {
        let log = InMemoryStreamLog::default();
        assert_eq!(log.read("s", None, 10).await, Err(StreamLogError::Unknown));
        assert_eq!(log.append("s", 1, data(1)).await, Err(StreamLogError::Unknown));
        for seq in 0..5 {
            log.append("s", seq, data(seq)).await.unwrap();
        }
        // A retried append is accepted and changes nothing; a gap is refused.
        log.append("s", 3, Bytes::from_static(b"other")).await.unwrap();
        assert_eq!(log.append("s", 7, data(7)).await, Err(StreamLogError::OutOfOrder { seq: 7, expected: 5 }));
        assert_eq!(seqs(log.read("s", None, 10).await).await, (vec![0, 1, 2, 3, 4], false));
        assert_eq!(log.read("s", Some(2), 10).await.unwrap().events[0], LoggedEvent { seq: 3, data: data(3) });
        assert_eq!(seqs(log.read("s", Some(1), 2).await).await, (vec![2, 3], false));
        assert_eq!(seqs(log.read("s", Some(4), 10).await).await, (vec![], false));
        assert_eq!(log.read("s", Some(5), 10).await, Err(StreamLogError::NotInLog));
        assert_eq!(log.read("s", Some(u64::MAX), 10).await, Err(StreamLogError::NotInLog));
        log.close("s").await.unwrap();
        log.close("s").await.unwrap();
        assert_eq!(log.append("s", 5, data(5)).await, Err(StreamLogError::Closed));
        log.append("s", 4, data(4)).await.unwrap();
        assert_eq!(seqs(log.read("s", Some(2), 10).await).await, (vec![3, 4], true));
        assert_eq!(seqs(log.read("s", Some(2), 1).await).await, (vec![3], false));
        assert_eq!(seqs(log.read("s", Some(4), 10).await).await, (vec![], true));
        // Closing an unknown stream makes an empty closed one.
        log.close("empty").await.unwrap();
        assert_eq!(seqs(log.read("empty", None, 10).await).await, (vec![], true));
    }

    #[tokio::test]
    async fn the_log_is_bounded_and_streams_expire() {
        let config = StreamLogConfig {
            max_events: 4,
            open_ttl: Duration::from_millis(200),
            closed_ttl: Duration::from_millis(50),
            max_streams: 2,
        };
        let log = InMemoryStreamLog::new(config);
        for seq in 0..10 {
            log.append("s", seq, data(seq)).await.unwrap();
        }
        assert_eq!(seqs(log.read("s", Some(5), 10).await).await, (vec![6, 7, 8, 9], false));
        assert_eq!(log.read("s", Some(4), 10).await, Err(StreamLogError::NotInLog));
        assert_eq!(log.read("s", None, 10).await, Err(StreamLogError::NotInLog));
        log.close("s").await.unwrap();
        log.append("open", 0, data(0)).await.unwrap();
        // Full: a third stream pushes out the oldest closed one.
        log.append("third", 0, data(0)).await.unwrap();
        assert_eq!(log.read("s", Some(5), 10).await, Err(StreamLogError::Unknown));
        assert_eq!(log.len(), 2);
        log.close("third").await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(log.read("third", None, 10).await, Err(StreamLogError::Unknown));
        assert!(log.read("open", None, 10).await.is_ok());
        assert_eq!(log.sweep(), 1);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(log.read("open", None, 10).await, Err(StreamLogError::Unknown));
        assert_eq!(log.sweep(), 1);
        assert!(log.is_empty());
    }

    #[tokio::test]
    async fn wait_returns_at_the_next_event_or_the_timeout() {
        let log = Arc::new(InMemoryStreamLog::default());
        log.append("s", 0, data(0)).await.unwrap();
        let started = Instant::now();
        assert_eq!(seqs(log.wait("s", Some(0), 10, Duration::from_millis(30)).await).await, (vec![], false));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let waiter = {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.wait("s", Some(0), 10, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        log.append("s", 1, data(1)).await.unwrap();
        assert_eq!(seqs(waiter.await.unwrap()).await, (vec![1], false));
        let waiter = {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.wait("s", Some(1), 10, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        log.close("s").await.unwrap();
        assert_eq!(seqs(waiter.await.unwrap()).await, (vec![], true));
    }

    /// Followers joining a busy stream at random points each see exactly
    /// the events after their point, in order, and end at the close.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn followers_have_no_gap_and_no_duplicate() {
        const EVENTS: u64 = 2000;
        let log: Arc<dyn StreamLog> = Arc::new(InMemoryStreamLog::default());
        log.append("s", 0, data(0)).await.unwrap();
        let producer = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for seq in 1..EVENTS {
                    log.append("s", seq, data(seq)).await.unwrap();
                    if seq % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                log.close("s").await.unwrap();
            })
        };
        let mut followers = Vec::new();
        for n in 0..8u64 {
            let log = Arc::clone(&log);
            followers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(n * 300)).await;
                let newest = log.read("s", None, usize::MAX).await.unwrap().events.len() as u64;
                let after = (newest - 1).checked_sub(n % 3);
                let events: Vec<u64> =
                    follow(log, "s", after).await.unwrap().map(|event| event.unwrap().seq).collect().await;
                let from = after.map_or(0, |seq| seq + 1);
                assert_eq!(events, (from..EVENTS).collect::<Vec<_>>(), "after {after:?}");
            }));
        }
        producer.await.unwrap();
        for follower in followers {
            follower.await.unwrap();
        }
    }

    /// Events of every size, the empty one included, come back whole
    /// while the oldest are dropped and the shared buffer wraps around.
    #[tokio::test]
    async fn events_come_back_whole_as_the_buffer_wraps() {
        let config = StreamLogConfig { max_events: 3, ..StreamLogConfig::default() };
        let log = InMemoryStreamLog::new(config);
        let event = |seq: u64| Bytes::from(vec![b'a' + (seq % 26) as u8; (seq as usize * 7) % 40]);
        for seq in 0..60u64 {
            log.append("s", seq, event(seq)).await.unwrap();
            let read = log.read("s", seq.checked_sub(3), 10).await.unwrap();
            let from = seq.saturating_sub(2);
            let expected: Vec<LoggedEvent> = (from..=seq).map(|seq| LoggedEvent { seq, data: event(seq) }).collect();
            assert_eq!(read.events, expected, "after {seq}");
            // Only the kept events' bytes are held.
            let state = log.get("s").unwrap();
            let state = state.lock();
            assert_eq!(state.data.len(), expected.iter().map(|e| e.data.len()).sum::<usize>());
        }
    }

    /// A reader leaves the stream's list of waiters when its wait times
    /// out, is dropped, or is woken, so the list never grows with readers
    /// that are gone.
    #[tokio::test]
    async fn waiters_leave_when_their_wait_ends() {
        let log = Arc::new(InMemoryStreamLog::default());
        log.append("s", 0, data(0)).await.unwrap();
        let waiters = |log: &InMemoryStreamLog| log.get("s").unwrap().lock().waiters.len();
        for _ in 0..3 {
            assert_eq!(seqs(log.wait("s", Some(0), 10, Duration::from_millis(5)).await).await, (vec![], false));
        }
        assert_eq!(waiters(&log), 0);
        let spawn_waiter = || {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.wait("s", Some(0), 10, Duration::from_secs(10)).await })
        };
        let (dropped, woken) = (spawn_waiter(), spawn_waiter());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(waiters(&log), 2);
        dropped.abort();
        let _ = dropped.await;
        assert_eq!(waiters(&log), 1);
        log.append("s", 1, data(1)).await.unwrap();
        assert_eq!(seqs(woken.await.unwrap()).await, (vec![1], false));
        assert_eq!(waiters(&log), 0);
    }

    #[tokio::test]
    async fn follow_refuses_up_front() {
        let log: Arc<dyn StreamLog> = Arc::new(InMemoryStreamLog::default());
        assert_eq!(follow(Arc::clone(&log), "nope", None).await.err(), Some(StreamLogError::Unknown));
        log.append("s", 0, data(0)).await.unwrap();
        assert_eq!(follow(Arc::clone(&log), "s", Some(3)).await.err(), Some(StreamLogError::NotInLog));
    }
}
