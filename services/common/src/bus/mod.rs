//! The `EventBus` trait: events inside a member and out to subscribers.
//!
//! Two delivery modes:
//! - **core** ([`EventBus::publish`] / [`EventBus::subscribe`]): at most once,
//!   to whoever is subscribed right now. A subscriber that falls behind its
//!   bounded buffer loses messages, as a NATS slow consumer does.
//! - **durable** ([`EventBus::publish_durable`] / [`EventBus::durable_consumer`]):
//!   stored in a named stream; a named consumer gets every message at least
//!   once, must ack it, and after a restart resumes from its first unacked
//!   message.
//!
//! Subjects look like `fiscus.<consortium>.<member>.blocks`; patterns may use
//! `*` (one token) and `>` (the rest), as in NATS.
//!
//! Backends: [`nats::NatsBus`] (async-nats, JetStream for durable) and
//! [`memory::MemoryBus`] (in process, the embedded default without a NATS URL).

use crate::telemetry::Headers;
use bytes::Bytes;
use futures::Stream;
use std::future::Future;
use std::pin::Pin;

#[cfg(feature = "testkit")]
pub mod conformance;
pub mod memory;
pub mod nats;
mod subject;

pub use subject::{subject_matches, validate_pattern, validate_subject};

/// One event: a subject, string headers (trace context travels here) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
}

impl Event {
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            subject: subject.into(),
            headers: Headers::new(),
            payload: payload.into(),
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Adds the current span's W3C trace context to the headers.
    pub fn with_trace_context(mut self) -> Self {
        crate::telemetry::inject_current_context(&mut self.headers);
        self
    }
}

/// A durable stream: which subjects it stores and how much it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub subjects: Vec<String>,
    /// Oldest messages are dropped past this count.
    pub max_messages: u64,
    /// Oldest messages are dropped past this many bytes.
    pub max_bytes: u64,
}

impl StreamSpec {
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> Self {
        Self {
            name: name.into(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_messages: 1_000_000,
            max_bytes: 1 << 30,
        }
    }
}

/// Explicit bounds for a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusLimits {
    pub max_payload_bytes: usize,
    pub max_headers: usize,
    /// Buffered messages per core subscription.
    pub subscription_buffer: usize,
    /// Unacked messages a durable consumer may hold.
    pub max_ack_pending: usize,
    /// How long a delivered durable message may stay unacked before the server redelivers it.
    pub ack_wait: std::time::Duration,
}

impl Default for BusLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1024 * 1024,
            max_headers: 32,
            subscription_buffer: 4096,
            max_ack_pending: 1024,
            ack_wait: std::time::Duration::from_secs(30),
        }
    }
}

impl BusLimits {
    /// Checks an outgoing event before it is sent.
    pub fn check(&self, event: &Event) -> Result<()> {
        validate_subject(&event.subject)?;
        if event.payload.len() > self.max_payload_bytes {
            return Err(BusError::TooLarge {
                len: event.payload.len(),
                limit: self.max_payload_bytes,
            });
        }
        if event.headers.len() > self.max_headers {
            return Err(BusError::InvalidHeader(format!(
                "{} headers, over the limit of {}",
                event.headers.len(),
                self.max_headers
            )));
        }
        for (k, v) in &event.headers {
            let bad_name = k.is_empty() || k.bytes().any(|b| b <= b' ' || b == b':' || b >= 0x7f);
            if bad_name || v.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(BusError::InvalidHeader(format!(
                    "header {k:?} is not a valid name/value"
                )));
            }
        }
        Ok(())
    }
}

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject {subject:?}: {reason}")]
    InvalidSubject {
        subject: String,
        reason: &'static str,
    },
    #[error("payload of {len} bytes is over the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    #[error("no stream {0:?}")]
    NoStream(String),
    #[error("no stream stores subject {0:?}")]
    NoStreamForSubject(String),
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("bus backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Backend(Box::new(e))
}

/// A live core subscription.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Event> + Send>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(inner: impl Stream<Item = Event> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }

    /// The next event; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Event> {
        futures::StreamExt::next(&mut self.inner).await
    }
}

/// How a durable message is acknowledged to the backend that delivered it.
pub(crate) enum Acker {
    Nats(Box<async_nats::jetstream::Message>),
    Memory(memory::MemoryAck),
}

/// A message from a durable consumer; call [`DurableMessage::ack`] once it is handled.
pub struct DurableMessage {
    pub event: Event,
    /// Position in the stream, from 1.
    pub stream_seq: u64,
    acker: Acker,
}

impl std::fmt::Debug for DurableMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableMessage")
            .field("event", &self.event)
            .field("stream_seq", &self.stream_seq)
            .finish_non_exhaustive()
    }
}

impl DurableMessage {
    /// Marks the message handled; it will not be delivered to this consumer again.
    pub async fn ack(self) -> Result<()> {
        match self.acker {
            Acker::Nats(m) => m.ack().await.map_err(BusError::Backend),
            Acker::Memory(a) => {
                a.ack();
                Ok(())
            }
        }
    }
}

/// A live durable consumer.
pub struct DurableConsumer {
    inner: Pin<Box<dyn Stream<Item = Result<DurableMessage>> + Send>>,
}

impl std::fmt::Debug for DurableConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableConsumer").finish_non_exhaustive()
    }
}

impl DurableConsumer {
    pub(crate) fn new(inner: impl Stream<Item = Result<DurableMessage>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }

    /// The next message; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Result<DurableMessage>> {
        futures::StreamExt::next(&mut self.inner).await
    }
}

/// A publish/subscribe bus with durable streams.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes at most once to current subscribers.
    fn publish(&self, event: Event) -> impl Future<Output = Result<()>> + Send;

    /// Subscribes to a subject pattern from now on.
    fn subscribe(&self, pattern: &str) -> impl Future<Output = Result<Subscription>> + Send;

    /// Creates the stream if it does not exist yet.
    fn ensure_stream(&self, spec: &StreamSpec) -> impl Future<Output = Result<()>> + Send;

    /// Stores the event in the stream that covers its subject; returns its stream sequence.
    fn publish_durable(&self, event: Event) -> impl Future<Output = Result<u64>> + Send;

    /// Opens (or resumes) the named consumer on `stream`, for subjects matching `filter`.
    fn durable_consumer(
        &self,
        stream: &str,
        name: &str,
        filter: &str,
    ) -> impl Future<Output = Result<DurableConsumer>> + Send;
}
