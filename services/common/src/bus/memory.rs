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
        stream.bytes += stored_size(&event);
        stream.messages.push_back((seq, event));
        let mut dropped = false;
        while stream.messages.len() as u64 > stream.spec.max_messages
            || stream.bytes > stream.spec.max_bytes
        {
            match stream.messages.pop_front() {
                Some((_, old)) => {
                    stream.bytes -= stored_size(&old);
                    dropped = true;
                }
                None => break,
            }
        }
        if dropped {
            // What a consumer acked of the dropped messages need not be remembered.
            let first = stream.messages.front().map_or(seq + 1, |(s, _)| *s);
            for c in stream.consumers.values() {
                let mut c = lock(c);
                c.acked = c.acked.split_off(&first);
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
                        let from = s.messages.partition_point(|(seq, _)| *seq <= cursor);
                        s.messages
                            .range(from..)
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

/// What a stored event counts against its stream's `max_bytes`: its
/// payload, subject and headers, and a fixed overhead for the entry.
fn stored_size(e: &Event) -> u64 {
    let headers: usize = e.headers.iter().map(|(k, v)| k.len() + v.len() + 48).sum();
    (e.payload.len() + e.subject.len() + headers + 64) as u64
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Event>) -> impl futures::Stream<Item = Event> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{EventBus, StreamSpec};

    /// A stream bounded by bytes stays within them, counting subjects and
    /// headers, not only payloads; a consumer's memory of what it acked does
    /// not outgrow the stream; and it still gets every retained message once.
    #[tokio::test]
    async fn a_stream_bounded_by_bytes_stays_bounded_with_headers_and_acks() {
        let bus = MemoryBus::new(BusLimits::default());
        let mut spec = StreamSpec::new("S", &["s.>"]);
        spec.max_bytes = 64 * 1024;
        bus.ensure_stream(&spec).await.unwrap();
        let mut c = bus.durable_consumer("S", "c", "s.>").await.unwrap();
        let event = |i: u64| {
            Event::new(format!("s.events.{i}"), vec![0u8; 10])
                .with_header("Nats-Msg-Id", format!("member.{i}.txs.0"))
                .with_header("traceparent", "00-".repeat(18))
        };
        for i in 0..5_000u64 {
            bus.publish_durable(event(i)).await.unwrap();
            let m = c.next().await.unwrap().unwrap();
            assert_eq!(m.stream_seq, i + 1);
            m.ack().await.unwrap();
        }
        let inner = lock(&bus.inner);
        let s = &inner.streams["S"];
        assert!(s.bytes <= spec.max_bytes, "{} bytes", s.bytes);
        let real: u64 = s.messages.iter().map(|(_, e)| stored_size(e)).sum();
        assert_eq!(s.bytes, real);
        // Payloads alone (10 bytes) would have kept every message.
        assert!(s.messages.len() < 1_000, "{} kept", s.messages.len());
        let first = s.messages.front().unwrap().0;
        let acked = &lock(&s.consumers["c"]).acked;
        assert!(acked.iter().all(|seq| *seq >= first));
        assert_eq!(acked.len(), s.messages.len());
    }
}
