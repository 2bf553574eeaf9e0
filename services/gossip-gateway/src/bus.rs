//! The event bus the gateway publishes on: NATS (JetStream) when a URL is
//! configured, else the in-process bus. Events are durable: a subscriber
//! resumes from its last acknowledged sequence.

use fiscus_common::bus::memory::MemoryBus;
use fiscus_common::bus::nats::NatsBus;
use fiscus_common::bus::{BusLimits, Event, EventBus, StreamSpec};

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
            Some(u) => Bus::Nats(Box::new(
                NatsBus::connect(u, name, BusLimits::default()).await?,
            )),
            None => Bus::Memory(MemoryBus::new(BusLimits::default())),
        })
    }

    /// The stream that keeps this member's events: `fiscus.<consortium>.<member>.>`.
    pub async fn ensure_member_stream(
        &self,
        consortium: &str,
        member: &str,
    ) -> Result<String, fiscus_common::bus::BusError> {
        let name = format!("FISCUS_{}_{}", consortium.replace(['-', '.'], "_"), member);
        let spec = StreamSpec::new(&name, &[&format!("fiscus.{consortium}.{member}.>")]);
        match self {
            Bus::Nats(b) => b.ensure_stream(&spec).await?,
            Bus::Memory(b) => b.ensure_stream(&spec).await?,
        }
        Ok(name)
    }

    /// Publishes durably with the current trace context; a failure is logged,
    /// never fatal to the chain.
    pub async fn publish_durable(&self, subject: &str, payload: Vec<u8>) {
        let event = Event::new(subject, payload).with_trace_context();
        let r = match self {
            Bus::Nats(b) => b.publish_durable(event).await,
            Bus::Memory(b) => b.publish_durable(event).await,
        };
        if let Err(e) = r {
            tracing::warn!(subject, error = %e, "could not publish an event");
        }
    }
}
