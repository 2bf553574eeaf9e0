//! The in-process bus: the embedded default for a single process without NATS.
//!
//! Durable streams live in memory, so they survive a consumer restart but not
//! a process restart. Unacked messages are redelivered when the consumer is
//! opened again (NATS instead redelivers them after `ack_wait`).

use super::{
    Acker, BusError, BusLimits, DurableConsumer, DurableMessage, Event, EventBus, Result,
    StreamSpec, Subscription, subject_matches, validate_pattern,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};

/// An in-process [`EventBus`].
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
    limits: BusLimits,
}

#[derive(Debug, Default)]
struct Inner {
    subscribers: Vec<(String, mpsc::Sender<Event>)>,
    streams: BTreeMap<String, MemStream>,
}

#[derive(Debug)]
struct MemStream {
    spec: StreamSpec,
    /// (sequence, event), oldest first.
    messages: VecDeque<(u64, Event)>,
    bytes: u64,
    last_seq: u64,
    consumers: BTreeMap<String, Arc<Mutex<ConsumerState>>>,
    notify: Arc<Notify>,
}

#[derive(Debug)]
struct ConsumerState {
    filter: String,
    acked: BTreeSet<u64>,
}

/// Acknowledges one message of an in-process durable consumer.
#[derive(Debug)]
pub(crate) struct MemoryAck {
    state: Arc<Mutex<ConsumerState>>,
    seq: u64,
}

impl MemoryAck {
    pub(crate) fn ack(self) {
        lock(&self.state).acked.insert(self.seq);
    }
}

/// A poisoned lock still guards consistent data here: every critical section
/// below finishes its update before it can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryBus {
    pub fn new(limits: BusLimits) -> Self {
        Self {
            inner: Arc::default(),
            limits,
        }
    }
}

impl EventBus for MemoryBus {
    async fn publish(&self, event: Event) -> Result<()> {
        self.limits.check(&event)?;
        let mut inner = lock(&self.inner);
        inner.subscribers.retain(|(pattern, tx)| {
            if !subject_matches(pattern, &event.subject) {
                return !tx.is_closed();
            }
            match tx.try_send(event.clone()) {
                // A full buffer drops the event for that subscriber only, like a NATS slow consumer.
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        Ok(())
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription> {
        validate_pattern(pattern)?;
        let (tx, rx) = mpsc::channel(self.limits.subscription_buffer);
        lock(&self.inner).subscribers.push((pattern.to_owned(), tx));
        Ok(Subscription::new(tokio_stream_from(rx)))
    }

    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<()> {
        for s in &spec.subjects {
            validate_pattern(s)?;
        }
        let mut inner = lock(&self.inner);
        inner
            .streams
            .entry(spec.name.clone())
            .or_insert_with(|| MemStream {
                spec: spec.clone(),
                messages: VecDeque::new(),
                bytes: 0,
                last_seq: 0,
                consumers: BTreeMap::new(),
                notify: Arc::new(Notify::new()),
            });
        Ok(())
    }

    async fn publish_durable(&self, event: Event) -> Result<u64> {
        self.limits.check(&event)?;
        let mut inner = lock(&self.inner);
        let stream = inner
            .streams
            .values_mut()
            .find(|s| {
                s.spec
                    .subjects
                    .iter()
                    .any(|p| subject_matches(p, &event.subject))
            })
            .ok_or_else(|| BusError::NoStreamForSubject(event.subject.clone()))?;
        stream.last_seq += 1;
        let seq = stream.last_seq;
        stream.bytes += event.payload.len() as u64;
        stream.messages.push_back((seq, event));
        while stream.messages.len() as u64 > stream.spec.max_messages
            || stream.bytes > stream.spec.max_bytes
        {
            match stream.messages.pop_front() {
                Some((_, old)) => stream.bytes -= old.payload.len() as u64,
                None => break,
            }
        }
        stream.notify.notify_waiters();
        Ok(seq)
    }

    async fn durable_consumer(
        &self,
        stream: &str,
        name: &str,
        filter: &str,
    ) -> Result<DurableConsumer> {
        validate_pattern(filter)?;
        let (state, notify) = {
            let mut inner = lock(&self.inner);
            let s = inner
                .streams
                .get_mut(stream)
                .ok_or_else(|| BusError::NoStream(stream.to_owned()))?;
            let state = s
                .consumers
                .entry(name.to_owned())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(ConsumerState {
                        filter: filter.to_owned(),
                        acked: BTreeSet::new(),
                    }))
                })
                .clone();
            (state, s.notify.clone())
        };
        let bus = self.inner.clone();
        let stream = stream.to_owned();
        // A fresh consumer instance starts from the beginning and skips what was acked,
        // so unacked messages are redelivered first.
        let cursor = 0u64;
        let messages = futures::stream::unfold(
            (bus, stream, state, notify, cursor),
            |(bus, stream, state, notify, mut cursor)| async move {
                loop {
                    let notified = notify.notified();
                    let next = {
                        let inner = lock(&bus);
                        let s = inner.streams.get(&stream)?;
                        let st = lock(&state);
                        s.messages
                            .iter()
                            .find(|(seq, e)| {
                                *seq > cursor
                                    && !st.acked.contains(seq)
                                    && subject_matches(&st.filter, &e.subject)
                            })
                            .cloned()
                    };
                    if let Some((seq, event)) = next {
                        drop(notified);
                        cursor = seq;
                        let msg = DurableMessage {
                            event,
                            stream_seq: seq,
                            acker: Acker::Memory(MemoryAck {
                                state: state.clone(),
                                seq,
                            }),
                        };
                        return Some((Ok(msg), (bus, stream, state, notify, cursor)));
                    }
                    notified.await;
                }
            },
        );
        Ok(DurableConsumer::new(messages))
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Event>) -> impl futures::Stream<Item = Event> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
