//! A member's events reach the bus at least once, in height order, whatever
//! the bus does.
//!
//! The committer hands each committed height's events to the [`EventOutbox`]
//! and goes on: a NATS outage never slows the chain. One publisher task sends
//! them in height order and moves on to a height only when the bus has stored
//! every event of the one before, retrying with backoff while it cannot. A
//! height whose events are no longer held (more than [`MAX_PENDING_HEIGHTS`]
//! waited, or the gateway restarted) is read back from the ledger-store.
//!
//! Where to start after a restart is read from the stream itself: the newest
//! `attestations` event is the last event of the last height fully stored
//! (each height publishes `blocks`, its `txs`, then `attestations`). Every
//! event carries `Nats-Msg-Id` = `<member>.<height>.<kind>.<n>`, so that
//! JetStream drops a replayed copy of an event it already stored (within its
//! duplicate window, two minutes by default).

use crate::node::{Node, lock};
use fiscus_common::bus::{BusError, Event};
use fiscus_proto::pb::events::{BlockCommitted, TxStatusChanged};
use fiscus_proto::pb::ledger::{GetAttestationRequest, GetBlockRequest};
use fiscus_proto::pb::types::{Attestation, SignedAttestation};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Heights whose events are held in memory while the bus is behind; beyond
/// this, they are read back from the ledger when their turn comes.
pub const MAX_PENDING_HEIGHTS: usize = 1024;

/// The JetStream header that de-duplicates a replayed event.
const MSG_ID: &str = "Nats-Msg-Id";

/// Committed heights' events waiting for the bus.
#[derive(Debug)]
pub struct EventOutbox {
    pending: Mutex<BTreeMap<u64, Vec<Event>>>,
    committed: tokio::sync::watch::Sender<u64>,
}

impl EventOutbox {
    /// An outbox for a gateway whose ledger is at `head`.
    pub fn new(head: u64) -> Self {
        Self {
            pending: Mutex::default(),
            committed: tokio::sync::watch::Sender::new(head),
        }
    }

    /// Hands over the events of committed height `height`; never waits.
    pub fn push(&self, height: u64, events: Vec<Event>) {
        {
            let mut pending = lock(&self.pending);
            if pending.len() < MAX_PENDING_HEIGHTS {
                pending.insert(height, events);
            }
        }
        self.committed.send_if_modified(|h| {
            let newer = height > *h;
            if newer {
                *h = height;
            }
            newer
        });
    }

    /// The events held for `height`, forgetting it and every height below.
    fn take(&self, height: u64) -> Option<Vec<Event>> {
        let mut pending = lock(&self.pending);
        let events = pending.remove(&height);
        pending.retain(|h, _| *h > height);
        events
    }
}

/// One event, with its de-duplication id.
fn event(node: &Node, height: u64, kind: &str, n: usize, payload: Vec<u8>) -> Event {
    Event::new(node.subject(kind), payload)
        .with_header(MSG_ID, format!("{}.{height}.{kind}.{n}", node.me))
}

/// A committed height's events, in the order they are published: `blocks`,
/// each transaction's status in block order, then the member's attestation.
/// Made inside the commit's span, they carry its trace context.
pub fn height_events(
    node: &Node,
    summary: &BlockCommitted,
    txs: impl IntoIterator<Item = TxStatusChanged>,
    attestation: &SignedAttestation,
) -> Vec<Event> {
    let h = summary.height;
    let mut out = vec![event(node, h, "blocks", 0, summary.encode_to_vec())];
    for (i, t) in txs.into_iter().enumerate() {
        out.push(event(node, h, "txs", i, t.encode_to_vec()));
    }
    out.push(event(
        node,
        h,
        "attestations",
        0,
        attestation.encode_to_vec(),
    ));
    out.into_iter().map(Event::with_trace_context).collect()
}

/// The block summary an attestation and the block's receipts describe.
pub fn block_summary(
    height: u64,
    attestation: &SignedAttestation,
    tx_count: usize,
    timestamp_ms: i64,
) -> BlockCommitted {
    let parsed = Attestation::decode(&attestation.attestation[..]).unwrap_or_default();
    BlockCommitted {
        height,
        block_hash: parsed.block_hash,
        state_hash: parsed.state_hash,
        receipts_root: parsed.receipts_root,
        tx_count: u32::try_from(tx_count).unwrap_or(u32::MAX),
        timestamp_ms,
    }
}

/// A committed height's events, read back from the ledger-store.
async fn from_ledger(node: &Node, height: u64) -> Result<Vec<Event>, tonic::Status> {
    let receipts = node
        .ledger
        .clone()
        .get_block_receipts(GetBlockRequest {
            number: height,
            hash: Vec::new(),
        })
        .await?
        .into_inner();
    let attestation = node
        .ingest
        .clone()
        .get_attestation(GetAttestationRequest { height })
        .await?
        .into_inner();
    let summary = block_summary(
        height,
        &attestation,
        receipts.receipts.len(),
        receipts.timestamp_ms,
    );
    let txs = receipts.receipts.into_iter().map(|r| TxStatusChanged {
        tx_id: r.tx_id,
        block_number: height,
        status: r.status,
        reason: r.reason,
    });
    Ok(height_events(node, &summary, txs, &attestation))
}

/// The height of the stream's newest `attestations` event: the last height
/// whose events the bus holds (`None` when the stream has none).
async fn stream_height(node: &Node) -> Result<Option<u64>, String> {
    let stream = node
        .bus
        .ensure_member_stream(&node.consortium, &node.me)
        .await
        .map_err(|e| e.to_string())?;
    let last = node
        .bus
        .last_payload(&stream, &node.subject("attestations"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(last.and_then(|bytes| {
        SignedAttestation::decode(bytes)
            .ok()
            .and_then(|s| Attestation::decode(&s.attestation[..]).ok())
            .map(|a| a.height)
    }))
}

/// Where publishing starts: after the stream's newest `attestations` event;
/// at `start_head` (the ledger's head when the gateway started) when the
/// stream has none or the bus does not outlive the process.
async fn stored_height(node: &Node, start_head: u64) -> Result<u64, String> {
    if !node.bus.is_durable() {
        return Ok(start_head);
    }
    Ok(stream_height(node).await?.unwrap_or(start_head))
}

/// Waits before the next try: 100 ms doubling to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(100))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// Publishes every committed height's events, in order, forever. `start_head`
/// is the ledger's head when the gateway started.
pub async fn publisher(node: Arc<Node>, start_head: u64) {
    let mut outage = false;
    let mut backoff = Backoff::new();
    let mut published = loop {
        match stored_height(&node, start_head).await {
            Ok(h) => break h,
            Err(e) => {
                if !outage {
                    tracing::warn!(error = %e, "the event bus is unreachable; events wait for it");
                    outage = true;
                }
                backoff.wait().await;
            }
        }
    };
    if published < start_head {
        tracing::info!(
            from = published + 1,
            to = start_head,
            "publishing the events the bus missed"
        );
    }
    node.metrics.events_height.set(published as i64);
    let mut committed = node.event_outbox.committed.subscribe();
    // The bus client's connection count when the stream was last looked at.
    let mut seen_connects = node.bus.connects();
    // Set when the stream may hold less than was acknowledged.
    let mut resync = false;
    'outer: loop {
        let target = *committed.borrow_and_update();
        while published < target {
            // After a reconnect (or a stream made again) the bus may hold less
            // than it acknowledged: a NATS server killed before it wrote its
            // last messages, or one with a new store. Go back to what it holds.
            if resync || node.bus.connects() != seen_connects {
                let connects = node.bus.connects();
                match stream_height(&node).await {
                    Ok(held) => {
                        seen_connects = connects;
                        resync = false;
                        let held = held.unwrap_or(0);
                        if held < published {
                            tracing::warn!(
                                held,
                                published,
                                "the event bus holds less than it acknowledged; publishing again from height {}",
                                held + 1
                            );
                            published = held;
                            node.metrics.events_height.set(held as i64);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "looking at the stream after a reconnect");
                        Backoff::new().wait().await;
                        continue;
                    }
                }
            }
            let h = published + 1;
            let events = match node.event_outbox.take(h) {
                Some(events) => events,
                None => {
                    let mut backoff = Backoff::new();
                    loop {
                        match from_ledger(&node, h).await {
                            Ok(events) => break events,
                            Err(s) => {
                                tracing::warn!(height = h, error = %s.message(), "reading a height's events from the ledger");
                                backoff.wait().await;
                            }
                        }
                    }
                }
            };
            for e in events {
                let mut backoff = Backoff::new();
                loop {
                    let err = match node.bus.publish_event(e.clone()).await {
                        Ok(_) => break,
                        Err(err) => err,
                    };
                    match err {
                        // Never storable: waiting would stop every later event.
                        BusError::TooLarge { .. }
                        | BusError::InvalidSubject { .. }
                        | BusError::InvalidHeader(_) => {
                            tracing::error!(height = h, subject = %e.subject, error = %err, "an event the bus can never store is skipped");
                            break;
                        }
                        // The stream was lost (a new NATS server): make it
                        // again, and publish what it no longer holds.
                        BusError::NoStream(_) | BusError::NoStreamForSubject(_) => {
                            let _ = node
                                .bus
                                .ensure_member_stream(&node.consortium, &node.me)
                                .await;
                            resync = true;
                        }
                        _ => {}
                    }
                    if !outage {
                        tracing::warn!(
                            height = h,
                            error = %err,
                            "the event bus does not store events; they wait for it, the chain goes on"
                        );
                        outage = true;
                    }
                    // Reconnected meanwhile: this height starts again once the
                    // stream has been looked at (its events stay in order).
                    if resync || node.bus.connects() != seen_connects {
                        continue 'outer;
                    }
                    backoff.wait().await;
                }
            }
            if outage {
                tracing::info!(height = h, "the event bus stores events again");
                outage = false;
            }
            published = h;
            node.metrics.events_height.set(h as i64);
        }
        if committed.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_holds_heights_up_to_its_bound_and_never_waits() {
        let outbox = EventOutbox::new(0);
        for h in 1..=(MAX_PENDING_HEIGHTS as u64 + 10) {
            outbox.push(h, vec![Event::new("s", vec![h as u8])]);
        }
        assert_eq!(*outbox.committed.borrow(), MAX_PENDING_HEIGHTS as u64 + 10);
        assert_eq!(lock(&outbox.pending).len(), MAX_PENDING_HEIGHTS);
        // Held heights come out once; the ones beyond the bound are read back later.
        assert!(outbox.take(1).is_some());
        assert!(outbox.take(1).is_none());
        assert!(outbox.take(MAX_PENDING_HEIGHTS as u64 + 5).is_none());
        assert!(lock(&outbox.pending).is_empty());
    }
}
