//! Webhook deliveries against a real HTTP receiver on loopback: signed with
//! HMAC-SHA256 over the exact body, retried with backoff until the receiver
//! accepts, and reported as failed (for the dead-letter list) after the last
//! attempt.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_exchange_adapter::events::{BlockEvent, TxEvent, WebhookConfig, deliver, signature};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// A receiver that answers the given statuses in turn, sending each request
/// (headers, body) back to the test.
fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<(Vec<String>, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/fiscus", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for status in statuses {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                headers.push(line.trim_end().to_owned());
            }
            let len: usize = headers
                .iter()
                .find_map(|h| {
                    h.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut w = s;
            write!(
                w,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            tx.send((headers, String::from_utf8(body).unwrap()))
                .unwrap();
        }
    });
    (url, rx)
}

fn event() -> BlockEvent {
    BlockEvent {
        height: 7,
        timestamp_ms: 1_767_196_800_000,
        txs: vec![TxEvent {
            tx_id: "ab".repeat(32),
            tx_index: 0,
            status: "valid".into(),
            reason: String::new(),
        }],
    }
}

fn header<'a>(headers: &'a [String], name: &str) -> &'a str {
    headers
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

#[tokio::test]
async fn a_delivery_is_signed_and_retried_until_accepted() {
    let (url, rx) = receiver(vec![500, 503, 200]);
    let hook = WebhookConfig {
        name: "budget-system".into(),
        url,
        secret: "a shared secret of some length".into(),
        max_attempts: 5,
        initial_backoff_ms: 10,
    };
    let attempts = deliver(&hook, &event()).await.unwrap();
    assert_eq!(attempts, 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(rx.recv().unwrap());
    }
    for (headers, body) in &seen {
        assert_eq!(
            header(headers, "x-fiscus-signature"),
            signature(&hook.secret, body.as_bytes())
        );
        assert_eq!(header(headers, "x-fiscus-event-id"), "7");
        assert!(headers[0].starts_with("POST /hooks/fiscus "), "{headers:?}");
        let ev: BlockEvent = serde_json::from_str(body).unwrap();
        assert_eq!(ev.txs[0].tx_id, "ab".repeat(32));
    }
    // A receiver checking with another secret would refuse it.
    assert_ne!(
        header(&seen[0].0, "x-fiscus-signature"),
        signature("another secret entirely", seen[0].1.as_bytes())
    );
}

#[tokio::test]
async fn a_delivery_that_always_fails_is_reported_after_the_last_attempt() {
    let (url, rx) = receiver(vec![500, 500, 500]);
    let hook = WebhookConfig {
        name: "down".into(),
        url,
        secret: "a shared secret of some length".into(),
        max_attempts: 3,
        initial_backoff_ms: 10,
    };
    let (attempts, last) = deliver(&hook, &event()).await.unwrap_err();
    assert_eq!((attempts, last.as_str()), (3, "HTTP 500"));
    assert_eq!(rx.iter().take(3).count(), 3);
    // Nobody listening at all: a connection error, also after every attempt.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let hook = WebhookConfig {
        url: format!("http://{addr}/x"),
        ..hook
    };
    let (attempts, last) = deliver(&hook, &event()).await.unwrap_err();
    assert_eq!(attempts, 3);
    assert!(last.contains("connecting"), "{last}");
}

#[test]
fn dead_letters_survive_a_restart_and_a_torn_last_line_is_skipped() {
    use fiscus_exchange_adapter::events::{DeadLetter, Hub};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-dead-letters.jsonl");
    let letter = |height| DeadLetter {
        webhook: "treasury".into(),
        height,
        attempts: 6,
        last_error: "HTTP 503".into(),
        event: BlockEvent { height, ..event() },
    };
    {
        let hub = Hub::durable(file.clone()).unwrap();
        assert!(hub.dead_letters().is_empty());
        hub.dead_letter(letter(7));
        hub.dead_letter(letter(8));
    }
    // A crash in the middle of a third append leaves half a line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(b"{\"webhook\":\"treas"))
        .unwrap();
    let hub = Hub::durable(file.clone()).unwrap();
    assert_eq!(hub.dead_letters(), vec![letter(7), letter(8)]);
    // The next letter starts on a line of its own and is read back too.
    hub.dead_letter(letter(9));
    drop(hub);
    let heights: Vec<u64> = Hub::durable(file)
        .unwrap()
        .dead_letters()
        .iter()
        .map(|d| d.height)
        .collect();
    assert_eq!(heights, vec![7, 8, 9]);
}
