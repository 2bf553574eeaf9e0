//! Webhook deliveries against a real HTTP receiver on loopback: signed with
//! HMAC-SHA256 over the exact body, retried with backoff until the receiver
//! accepts, and reported as failed (for the dead-letter list) after the last
//! attempt.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_exchange_adapter::events::{DEFAULT_TOLERANCE_S, Refused, deliver, signature, verify};
use fiscus_exchange_adapter::hub::{BlockEvent, TxEvent, WebhookConfig};
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
            let (headers, body) = read_request(&mut BufReader::new(s.try_clone().unwrap()));
            let mut w = s;
            write!(
                w,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            tx.send((headers, body)).unwrap();
        }
    });
    (url, rx)
}

/// Reads one HTTP/1.1 request: its header lines and its body.
fn read_request(r: &mut impl BufRead) -> (Vec<String>, String) {
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
    (headers, String::from_utf8(body).unwrap())
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
        ca_file: None,
    };
    let attempts = deliver(&hook, &event()).await.unwrap();
    assert_eq!(attempts, 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(rx.recv().unwrap());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (headers, body) in &seen {
        let ts = header(headers, "x-fiscus-timestamp");
        let ts_n: i64 = ts.parse().unwrap();
        assert!((now - ts_n).abs() < 120, "signed at {ts}, now {now}");
        assert_eq!(
            header(headers, "x-fiscus-signature"),
            signature(&hook.secret, ts_n, body.as_bytes())
        );
        assert_eq!(
            verify(
                &hook.secret,
                ts,
                header(headers, "x-fiscus-signature"),
                body.as_bytes(),
                now,
                DEFAULT_TOLERANCE_S
            ),
            Ok(())
        );
        assert_eq!(header(headers, "x-fiscus-event-id"), "7");
        assert!(headers[0].starts_with("POST /hooks/fiscus "), "{headers:?}");
        let ev: BlockEvent = serde_json::from_str(body).unwrap();
        assert_eq!(ev.txs[0].tx_id, "ab".repeat(32));
    }
    // A receiver checking with another secret would refuse it, and so would
    // one that gets this delivery again an hour later.
    let (headers, body) = &seen[0];
    let (ts, sig) = (
        header(headers, "x-fiscus-timestamp"),
        header(headers, "x-fiscus-signature"),
    );
    assert_eq!(
        verify(
            "another secret entirely",
            ts,
            sig,
            body.as_bytes(),
            now,
            DEFAULT_TOLERANCE_S
        ),
        Err(Refused::Mismatch)
    );
    assert!(matches!(
        verify(
            &hook.secret,
            ts,
            sig,
            body.as_bytes(),
            now + 3600,
            DEFAULT_TOLERANCE_S
        ),
        Err(Refused::Stale(_))
    ));
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
        ca_file: None,
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

#[tokio::test]
async fn each_attempt_is_counted_by_webhook_and_outcome_on_the_registry() {
    use fiscus_exchange_adapter::events::deliver_counted;
    use fiscus_exchange_adapter::metrics::Metrics;
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (url, _rx) = receiver(vec![500, 200]);
    let hook = WebhookConfig {
        name: "treasury".into(),
        url,
        secret: "a shared secret of some length".into(),
        max_attempts: 3,
        initial_backoff_ms: 10,
        ca_file: None,
    };
    assert_eq!(
        deliver_counted(&hook, &event(), Some(&metrics)).await,
        Ok(2)
    );
    // What /metrics would serve: one error, then one ok, for this webhook.
    let text = {
        use prometheus::Encoder as _;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    };
    for line in [
        r#"fiscus_webhook_delivery_attempts_total{outcome="error",webhook="treasury"} 1"#,
        r#"fiscus_webhook_delivery_attempts_total{outcome="ok",webhook="treasury"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}

#[test]
fn dead_letters_survive_a_restart_and_a_torn_last_line_is_skipped() {
    use fiscus_exchange_adapter::hub::{DeadLetter, Hub, LetterState};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-dead-letters.jsonl");
    let letter = |id, height| DeadLetter {
        id,
        webhook: "treasury".into(),
        height,
        attempts: 6,
        last_error: "HTTP 503".into(),
        failed_at_ms: 1_767_196_800_000,
        state: LetterState::Open,
        resolved_at_ms: None,
        resolved_by: None,
        event: BlockEvent { height, ..event() },
    };
    {
        let hub = Hub::durable(file.clone()).unwrap();
        assert!(hub.dead_letters().is_empty());
        // The hub numbers letters itself, whatever id they come with.
        assert_eq!(hub.dead_letter(letter(0, 7)), 1);
        assert_eq!(hub.dead_letter(letter(99, 8)), 2);
    }
    // A crash in the middle of a third append leaves half a line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(b"{\"webhook\":\"treas"))
        .unwrap();
    let hub = Hub::durable(file.clone()).unwrap();
    assert_eq!(hub.dead_letters(), vec![letter(1, 7), letter(2, 8)]);
    // The next letter starts on a line of its own and is read back too, and
    // so is an acknowledgement (a later version of letter 1).
    assert_eq!(hub.dead_letter(letter(0, 9)), 3);
    let acked = hub
        .update_dead_letter(1, |d| {
            d.state = LetterState::Acknowledged;
            d.resolved_at_ms = Some(1_767_200_000_000);
            d.resolved_by = Some("ops".into());
            d.clone()
        })
        .unwrap();
    assert!(hub.update_dead_letter(42, |_| ()).is_none());
    drop(hub);
    let hub = Hub::durable(file.clone()).unwrap();
    let seen: Vec<(u64, u64, LetterState)> = hub
        .dead_letters()
        .iter()
        .map(|d| (d.id, d.height, d.state))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, 7, LetterState::Acknowledged),
            (2, 8, LetterState::Open),
            (3, 9, LetterState::Open)
        ]
    );
    assert_eq!(hub.dead_letter_by_id(1), Some(acked));
    // New ids continue after the highest one read back.
    assert_eq!(hub.dead_letter(letter(0, 10)), 4);
}

#[test]
fn dead_letters_saved_before_ids_existed_get_ids_in_file_order() {
    use fiscus_exchange_adapter::hub::{Hub, LetterState};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-dead-letters.jsonl");
    let old = |height: u64| {
        serde_json::json!({"webhook": "treasury", "height": height, "attempts": 6,
            "last_error": "HTTP 500", "event": {"height": height, "timestamp_ms": 1, "txs": []}})
        .to_string()
    };
    std::fs::write(&file, format!("{}\n{}\n", old(5), old(6))).unwrap();
    let hub = Hub::durable(file).unwrap();
    let seen: Vec<(u64, u64, LetterState)> = hub
        .dead_letters()
        .iter()
        .map(|d| (d.id, d.height, d.state))
        .collect();
    assert_eq!(
        seen,
        vec![(1, 5, LetterState::Open), (2, 6, LetterState::Open)]
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM / DER.
fn test_pki() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        leaf.der().clone(),
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
}

/// A TLS server configuration presenting `cert`.
fn tls_server(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> std::sync::Arc<rustls::ServerConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

#[tokio::test]
async fn an_https_webhook_is_delivered_over_tls_to_a_receiver_the_ca_file_vouches_for() {
    let (ca_pem, cert, key) = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("webhook-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let server = tls_server(cert, key);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        let conn = rustls::ServerConnection::new(server).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let (headers, body) = read_request(&mut BufReader::new(&mut tls));
        tls.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        tls.conn.send_close_notify();
        let _ = tls.flush();
        tx.send((headers, body)).unwrap();
    });
    let hook = WebhookConfig {
        name: "treasury".into(),
        url: format!("https://127.0.0.1:{port}/hooks/fiscus"),
        secret: "a shared secret of some length".into(),
        max_attempts: 1,
        initial_backoff_ms: 10,
        ca_file: Some(ca_file.clone()),
    };
    assert_eq!(deliver(&hook, &event()).await.unwrap(), 1);
    let (headers, body) = rx.recv().unwrap();
    assert!(headers[0].starts_with("POST /hooks/fiscus "), "{headers:?}");
    assert!(!body.is_empty(), "{headers:?}");
    let ts: i64 = header(&headers, "x-fiscus-timestamp").parse().unwrap();
    assert_eq!(
        header(&headers, "x-fiscus-signature"),
        signature(&hook.secret, ts, body.as_bytes())
    );

    // A receiver the CA file does not vouch for is not delivered to.
    let (other_ca, _, _) = test_pki();
    std::fs::write(&ca_file, other_ca).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (cert2, key2) = {
        let (_, c, k) = test_pki();
        (c, k)
    };
    let server = tls_server(cert2, key2);
    std::thread::spawn(move || {
        if let Ok((sock, _)) = l.accept() {
            let conn = rustls::ServerConnection::new(server).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut buf = [0u8; 1];
            let _ = tls.read(&mut buf);
        }
    });
    let hook = WebhookConfig {
        url: format!("https://127.0.0.1:{port}/hooks/fiscus"),
        ..hook
    };
    let (attempts, error) = deliver(&hook, &event()).await.unwrap_err();
    assert_eq!(attempts, 1);
    assert!(error.contains("TLS"), "{error}");

    // An https URL without a ca_file is refused before any connection.
    let hook = WebhookConfig {
        ca_file: None,
        ..hook
    };
    let (_, error) = deliver(&hook, &event()).await.unwrap_err();
    assert!(error.contains("ca_file"), "{error}");
}
