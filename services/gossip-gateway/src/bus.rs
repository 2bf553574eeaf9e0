//! The event bus the gateway publishes on: NATS (JetStream) when a URL is
//! configured, else the in-process bus. Events are durable: a subscriber
//! resumes from its last acknowledged sequence.

use fiscus_common::bus::memory::MemoryBus;
use fiscus_common::bus::nats::NatsBus;
use fiscus_common::bus::{BusLimits, Event, EventBus, StreamSpec};

/// What the in-process bus keeps of a member's events, in memory: about
/// 80,000 events (some 400 bytes each with subject and headers). A consumer
/// that needs more history uses NATS, or fills a gap from the ledger
/// (`GET /v1/events?from_height=`).
pub const IN_PROCESS_STREAM_BYTES: u64 = 32 << 20;

#[derive(Debug, Clone)]
pub enum Bus {
    Nats(Box<NatsBus>),
    Memory(MemoryBus),
}

impl Bus {
    pub async fn connect(
        url: Option<&str>,
        name: &str,
    ) -> Result<Self, fiscus_common::bus::BusError> {
        Ok(match url {
            // A NATS outage must not keep the gateway (and so the member's
            // chain) from starting: the client connects in the background.
            Some(u) => Bus::Nats(Box::new(
                NatsBus::connect_lazily(u, name, BusLimits::default()).await?,
            )),
            None => Bus::Memory(MemoryBus::new(BusLimits::default())),
        })
    }

    /// The stream that keeps this member's events (on the in-process bus,
    /// the newest [`IN_PROCESS_STREAM_BYTES`] of them): `fiscus.<consortium>.<member>.>`.
    pub async fn ensure_member_stream(
        &self,
        consortium: &str,
        member: &str,
    ) -> Result<String, fiscus_common::bus::BusError> {
        let name = format!("FISCUS_{}_{}", consortium.replace(['-', '.'], "_"), member);
        let mut spec = StreamSpec::new(&name, &[&format!("fiscus.{consortium}.{member}.>")]);
        match self {
            Bus::Nats(b) => b.ensure_stream(&spec).await?,
            Bus::Memory(b) => {
                spec.max_bytes = IN_PROCESS_STREAM_BYTES;
                b.ensure_stream(&spec).await?
            }
        }
        Ok(name)
    }

    /// Publishes one event durably and returns once the bus has stored it.
    pub async fn publish_event(&self, event: Event) -> Result<u64, fiscus_common::bus::BusError> {
        match self {
            Bus::Nats(b) => b.publish_durable(event).await,
            Bus::Memory(b) => b.publish_durable(event).await,
        }
    }

    /// The payload of the newest event on `subject` in `stream`; `None` when
    /// there is none, and always on the in-process bus (it starts empty with
    /// the process).
    pub async fn last_payload(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<bytes::Bytes>, fiscus_common::bus::BusError> {
        match self {
            Bus::Nats(b) => b.last_payload(stream, subject).await,
            Bus::Memory(_) => Ok(None),
        }
    }

    /// How many times the bus client has (re)connected (always 0 on the
    /// in-process bus): see [`NatsBus::connects`].
    pub fn connects(&self) -> u64 {
        match self {
            Bus::Nats(b) => b.connects(),
            Bus::Memory(_) => 0,
        }
    }

    /// Whether events survive this process (NATS JetStream) or not (the
    /// in-process bus).
    pub fn is_durable(&self) -> bool {
        matches!(self, Bus::Nats(_))
    }

    /// Publishes durably with the current trace context; a failure is logged,
    /// never fatal to the chain.
    pub async fn publish_durable(&self, subject: &str, payload: Vec<u8>) {
        let event = Event::new(subject, payload).with_trace_context();
        if let Err(e) = self.publish_event(event).await {
            tracing::warn!(subject, error = %e, "could not publish an event");
        }
    }
}
