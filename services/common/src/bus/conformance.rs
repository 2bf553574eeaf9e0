//! The one conformance suite every [`EventBus`] backend must pass.
//!
//! A backend's test file provides a [`BusHarness`] and expands
//! [`event_bus_conformance!`](crate::event_bus_conformance).

// Test support: failing loudly is how a suite reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{BusError, DurableConsumer, DurableMessage, Event, EventBus, StreamSpec, Subscription};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

/// Generous: the suite must not flake on two busy cores.
const DEADLINE: Duration = Duration::from_secs(30);

/// Builds a bus on an isolated backend; `connect` again must reach the same backend.
pub trait BusHarness: Send {
    type Bus: EventBus;
    fn connect(&mut self) -> impl Future<Output = Self::Bus> + Send;
}

async fn next_event(sub: &mut Subscription) -> Event {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("no event within the deadline")
        .expect("subscription ended")
}

async fn next_durable(c: &mut DurableConsumer) -> DurableMessage {
    tokio::time::timeout(DEADLINE, c.next())
        .await
        .expect("no durable message within the deadline")
        .expect("consumer ended")
        .expect("consumer error")
}

pub async fn a_subscriber_receives_what_is_published_on_its_subject<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    let mut sub = bus.subscribe("fiscus.c1.130000.blocks").await.unwrap();
    bus.publish(Event::new("fiscus.c1.130000.blocks", "block 1"))
        .await
        .unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!(e.subject, "fiscus.c1.130000.blocks");
    assert_eq!(&e.payload[..], b"block 1");
}

pub async fn wildcard_subscriptions_receive_only_matching_subjects<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    let mut blocks = bus.subscribe("fiscus.c1.*.blocks").await.unwrap();
    bus.publish(Event::new("fiscus.c1.130000.txs", "tx"))
        .await
        .unwrap();
    bus.publish(Event::new("fiscus.c1.130100.blocks", "block"))
        .await
        .unwrap();
    let e = next_event(&mut blocks).await;
    // The tx event was published first; receiving the block first proves it was filtered out.
    assert_eq!(e.subject, "fiscus.c1.130100.blocks");
}

pub async fn headers_travel_with_the_event<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    let mut sub = bus.subscribe("fiscus.c1.>").await.unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    bus.publish(
        Event::new("fiscus.c1.130000.txs", "tx")
            .with_header("traceparent", traceparent)
            .with_header("fiscus-member", "130000"),
    )
    .await
    .unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!(
        e.headers.get("traceparent").map(String::as_str),
        Some(traceparent)
    );
    assert_eq!(
        e.headers.get("fiscus-member").map(String::as_str),
        Some("130000")
    );
    assert_eq!(
        crate::telemetry::trace_id_of(&e.headers).as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
}

pub async fn events_on_one_subject_arrive_in_publish_order<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    let mut sub = bus.subscribe("fiscus.c1.130000.blocks").await.unwrap();
    for i in 0..100u32 {
        bus.publish(Event::new(
            "fiscus.c1.130000.blocks",
            i.to_be_bytes().to_vec(),
        ))
        .await
        .unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(&next_event(&mut sub).await.payload[..], i.to_be_bytes());
    }
}

pub async fn invalid_subjects_and_oversized_payloads_are_refused<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    let err = bus
        .publish(Event::new("fiscus..blocks", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::InvalidSubject { .. }), "{err}");
    let err = bus
        .publish(Event::new("fiscus.c1.*", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::InvalidSubject { .. }), "{err}");
    let big = vec![0u8; 2 * 1024 * 1024];
    let err = bus
        .publish(Event::new("fiscus.c1.x", big))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::TooLarge { .. }), "{err}");
    let err = bus
        .publish(Event::new("fiscus.c1.x", "x").with_header("bad\r\nname", "v"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::InvalidHeader(_)), "{err}");
}

pub async fn a_durable_publish_needs_a_stream_for_its_subject<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    let err = bus
        .publish_durable(Event::new("nostream.x", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::NoStreamForSubject(_)), "{err}");
    let err = bus
        .durable_consumer("NO_SUCH_STREAM", "c", ">")
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::NoStream(_)), "{err}");
}

pub async fn a_durable_consumer_gets_messages_published_before_it_existed<H: BusHarness>(mut h: H) {
    let bus = h.connect().await;
    bus.ensure_stream(&StreamSpec::new("BLOCKS", &["fiscus.c1.*.blocks"]))
        .await
        .unwrap();
    let s1 = bus
        .publish_durable(Event::new("fiscus.c1.130000.blocks", "b1").with_header("h", "1"))
        .await
        .unwrap();
    let s2 = bus
        .publish_durable(Event::new("fiscus.c1.130000.blocks", "b2"))
        .await
        .unwrap();
    assert!(s2 > s1, "stream sequences increase");
    let mut c = bus
        .durable_consumer("BLOCKS", "analytics", "fiscus.c1.>")
        .await
        .unwrap();
    let m1 = next_durable(&mut c).await;
    assert_eq!((&m1.event.payload[..], m1.stream_seq), (&b"b1"[..], s1));
    assert_eq!(m1.event.headers.get("h").map(String::as_str), Some("1"));
    m1.ack().await.unwrap();
    let m2 = next_durable(&mut c).await;
    assert_eq!((&m2.event.payload[..], m2.stream_seq), (&b"b2"[..], s2));
    m2.ack().await.unwrap();
}

pub async fn a_restarted_durable_consumer_resumes_after_its_acked_messages<H: BusHarness>(
    mut h: H,
) {
    let bus = h.connect().await;
    bus.ensure_stream(&StreamSpec::new("TXS", &["fiscus.c1.*.txs"]))
        .await
        .unwrap();
    for i in 1..=5u8 {
        bus.publish_durable(Event::new("fiscus.c1.130000.txs", vec![i]))
            .await
            .unwrap();
    }
    {
        let mut c = bus
            .durable_consumer("TXS", "exchange", "fiscus.c1.*.txs")
            .await
            .unwrap();
        for want in 1..=3u8 {
            let m = next_durable(&mut c).await;
            assert_eq!(m.event.payload[..], [want]);
            // Message 3 is taken but never acked: the "crash" happens while handling it.
            if want < 3 {
                m.ack().await.unwrap();
            }
        }
    }
    bus.publish_durable(Event::new("fiscus.c1.130000.txs", vec![6]))
        .await
        .unwrap();

    // A new connection and a new consumer instance with the same durable name.
    let bus = h.connect().await;
    let mut c = bus
        .durable_consumer("TXS", "exchange", "fiscus.c1.*.txs")
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    while seen != BTreeSet::from([3u8, 4, 5, 6]) {
        let m = next_durable(&mut c).await;
        let v = m.event.payload[0];
        assert!(v >= 3, "acked message {v} was delivered again");
        seen.insert(v);
        m.ack().await.unwrap();
    }
}

/// Expands to one `#[tokio::test]` per conformance case. `$harness` is an
/// expression that builds a fresh [`BusHarness`] for each case.
#[macro_export]
macro_rules! event_bus_conformance {
    ($harness:expr) => {
        $crate::event_bus_conformance!(@cases $harness;
            a_subscriber_receives_what_is_published_on_its_subject,
            wildcard_subscriptions_receive_only_matching_subjects,
            headers_travel_with_the_event,
            events_on_one_subject_arrive_in_publish_order,
            invalid_subjects_and_oversized_payloads_are_refused,
            a_durable_publish_needs_a_stream_for_its_subject,
            a_durable_consumer_gets_messages_published_before_it_existed,
            a_restarted_durable_consumer_resumes_after_its_acked_messages,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::bus::conformance::$case($harness).await;
            }
        )*
    };
}
