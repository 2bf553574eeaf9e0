//! The NATS backend: core NATS for pub/sub, JetStream for durable streams.

use super::{
    Acker, BusError, BusLimits, DurableConsumer, DurableMessage, Event, EventBus, Result,
    StreamSpec, Subscription, backend, validate_pattern,
};
use crate::telemetry::Headers;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;

/// An [`EventBus`] on a NATS server with JetStream enabled.
#[derive(Debug, Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    limits: BusLimits,
    /// How many times the client has (re)connected, with
    /// [`NatsBus::connect_lazily`] (0 otherwise).
    connects: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl NatsBus {
    /// Registers `fiscus_nats_connected`: 1 while the connection to the NATS
    /// server is up, 0 while it is not, read from the client at every scrape.
    pub fn register_connected_metric(
        &self,
        registry: &prometheus::Registry,
    ) -> std::result::Result<(), prometheus::Error> {
        registry.register(Box::new(ConnectedCollector::new(self.client.clone())?))
    }

    /// Connects to `url`, e.g. `nats://127.0.0.1:4222`; `name` shows in the server's connection list.
    pub async fn connect(url: &str, name: &str, limits: BusLimits) -> Result<Self> {
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .subscription_capacity(limits.subscription_buffer);
        Self::connect_with(url, options, limits, Default::default()).await
    }

    async fn connect_with(
        url: &str,
        options: async_nats::ConnectOptions,
        limits: BusLimits,
        connects: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self> {
        let client = options.connect(url).await.map_err(|e| BusError::Connect {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            limits,
            connects,
        })
    }

    /// How many times the client has connected (with
    /// [`NatsBus::connect_lazily`]): a change means a reconnect, after which
    /// the server may hold less than it acknowledged (a NATS server killed
    /// before it wrote its last messages, or one with a new store).
    pub fn connects(&self) -> u64 {
        self.connects.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Like [`NatsBus::connect`], but returns at once even while the server
    /// is unreachable: the client keeps connecting in the background, and
    /// publishes wait for it. Disconnects and reconnects are logged (a
    /// service that must run through a NATS outage, the gossip-gateway).
    pub async fn connect_lazily(url: &str, name: &str, limits: BusLimits) -> Result<Self> {
        let server = url.to_owned();
        // A failed reconnect is reported once per outage, not at every retry.
        let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connects = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = connects.clone();
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .subscription_capacity(limits.subscription_buffer)
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let server = server.clone();
                let failing = failing.clone();
                let counter = counter.clone();
                async move {
                    use std::sync::atomic::Ordering::{Relaxed, SeqCst};
                    match event {
                        async_nats::Event::Connected => {
                            counter.fetch_add(1, SeqCst);
                            failing.store(false, Relaxed);
                            tracing::info!(server = %server, "connected to NATS")
                        }
                        async_nats::Event::Disconnected => tracing::warn!(
                            server = %server,
                            "disconnected from NATS; reconnecting (events wait, nothing is lost)"
                        ),
                        async_nats::Event::ClientError(e) if !failing.swap(true, Relaxed) => {
                            tracing::warn!(
                                server = %server, error = %e,
                                "cannot reach NATS; retrying quietly until it is back"
                            )
                        }
                        async_nats::Event::ClientError(e) => {
                            tracing::debug!(server = %server, error = %e, "NATS still unreachable")
                        }
                        other => tracing::info!(server = %server, event = %other, "NATS"),
                    }
                }
            });
        Self::connect_with(url, options, limits, connects).await
    }

    /// The payload of the newest message on `subject` in `stream`, if any.
    pub async fn last_payload(&self, stream: &str, subject: &str) -> Result<Option<bytes::Bytes>> {
        let stream = self.js.get_stream(stream).await.map_err(backend)?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some(m.payload)),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// Flushes buffered publishes to the server.
    pub async fn flush(&self) -> Result<()> {
        self.client.flush().await.map_err(backend)
    }
}

fn to_nats_headers(headers: &Headers) -> async_nats::HeaderMap {
    let mut map = async_nats::HeaderMap::new();
    for (k, v) in headers {
        map.insert(k.as_str(), v.as_str());
    }
    map
}

fn from_nats_headers(headers: Option<&async_nats::HeaderMap>) -> Headers {
    let mut out = Headers::new();
    if let Some(h) = headers {
        for (name, values) in h.iter() {
            if let Some(v) = values.first() {
                out.insert(name.to_string(), v.as_str().to_owned());
            }
        }
    }
    out
}

impl EventBus for NatsBus {
    async fn publish(&self, event: Event) -> Result<()> {
        self.limits.check(&event)?;
        self.client
            .publish_with_headers(
                event.subject,
                to_nats_headers(&event.headers),
                event.payload,
            )
            .await
            .map_err(backend)
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription> {
        validate_pattern(pattern)?;
        let sub = self
            .client
            .subscribe(pattern.to_owned())
            .await
            .map_err(backend)?;
        // Make sure the server knows about the subscription before we return, so
        // that a publish right after this call reaches it.
        self.client.flush().await.map_err(backend)?;
        Ok(Subscription::new(sub.map(|m| Event {
            subject: m.subject.to_string(),
            headers: from_nats_headers(m.headers.as_ref()),
            payload: m.payload,
        })))
    }

    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<()> {
        for s in &spec.subjects {
            validate_pattern(s)?;
        }
        let config = stream::Config {
            name: spec.name.clone(),
            subjects: spec.subjects.clone(),
            max_messages: i64::try_from(spec.max_messages).unwrap_or(i64::MAX),
            max_bytes: i64::try_from(spec.max_bytes).unwrap_or(i64::MAX),
            storage: stream::StorageType::File,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn publish_durable(&self, event: Event) -> Result<u64> {
        self.limits.check(&event)?;
        let subject = event.subject.clone();
        let ack = self
            .js
            .publish_with_headers(
                event.subject,
                to_nats_headers(&event.headers),
                event.payload,
            )
            .await
            .map_err(backend)?
            .await
            .map_err(|e| match e.kind() {
                jetstream::context::PublishErrorKind::StreamNotFound => {
                    BusError::NoStreamForSubject(subject)
                }
                _ => backend(e),
            })?;
        Ok(ack.sequence)
    }

    async fn durable_consumer(
        &self,
        stream: &str,
        name: &str,
        filter: &str,
    ) -> Result<DurableConsumer> {
        validate_pattern(filter)?;
        let s = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(_) => {
                    BusError::NoStream(stream.to_owned())
                }
                _ => backend(e),
            })?;
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.to_owned(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.limits.ack_wait,
            max_ack_pending: i64::try_from(self.limits.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer = s
            .get_or_create_consumer(name, config)
            .await
            .map_err(backend)?;
        let messages = consumer.messages().await.map_err(backend)?;
        Ok(DurableConsumer::new(messages.map(|m| {
            let m = m.map_err(backend)?;
            let stream_seq = m.info().map_err(BusError::Backend)?.stream_sequence;
            Ok(DurableMessage {
                event: Event {
                    subject: m.subject.to_string(),
                    headers: from_nats_headers(m.headers.as_ref()),
                    payload: m.payload.clone(),
                },
                stream_seq,
                acker: Acker::Nats(Box::new(m)),
            })
        })))
    }
}

/// Finds the `nats-server` binary: `$NATS_SERVER_BIN`, then `PATH`, then
/// Debian's `/usr/sbin` and `/usr/bin`. Used by the process devnet and the
/// tests' harness.
pub fn server_binary() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// `fiscus_nats_connected`, computed at scrape time from the client's state.
struct ConnectedCollector {
    client: async_nats::Client,
    gauge: prometheus::IntGauge,
}

impl ConnectedCollector {
    fn new(client: async_nats::Client) -> std::result::Result<Self, prometheus::Error> {
        let gauge = prometheus::IntGauge::new(
            "fiscus_nats_connected",
            "1 while the connection to the NATS server is up, else 0",
        )?;
        Ok(Self { client, gauge })
    }
}

impl prometheus::core::Collector for ConnectedCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        prometheus::core::Collector::desc(&self.gauge)
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let up = matches!(
            self.client.connection_state(),
            async_nats::connection::State::Connected
        );
        self.gauge.set(i64::from(up));
        prometheus::core::Collector::collect(&self.gauge)
    }
}
