//! Webhooks on `fiscus devnet`, configured by `<data-dir>/webhooks.toml`,
//! against a real HTTP receiver on loopback: a delivery the receiver refuses
//! becomes a dead letter with its failure time; an admin replays it (refused
//! again: 503 and still open; accepted: delivered, signed afresh) or
//! acknowledges it; resolved letters leave the default list; only the member
//! the file names delivers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_exchange_adapter::events::{DEFAULT_TOLERANCE_S, verify};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod devnet_support;
use devnet_support::*;

const SECRET: &str = "a devnet webhook secret";

/// One received request: its header lines and body.
type Request = (Vec<String>, String);

/// A receiver answering every request with the status `answer` holds at the
/// time, sending each request to the test.
fn receiver(answer: Arc<AtomicU16>) -> (String, mpsc::Receiver<Request>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/fiscus", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
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
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let status = answer.load(Ordering::SeqCst);
            let mut w = s;
            let _ = write!(
                w,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if tx
                .send((headers, String::from_utf8(body).unwrap()))
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
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

/// Asserts that a received delivery verifies with the file's secret, now.
fn assert_signed(headers: &[String], body: &str) {
    assert_eq!(
        verify(
            SECRET,
            header(headers, "x-fiscus-timestamp"),
            header(headers, "x-fiscus-signature"),
            body.as_bytes(),
            now_ms() / 1000,
            DEFAULT_TOLERANCE_S
        ),
        Ok(())
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn letters(addr: &str, key: &str, query: &str) -> Vec<Value> {
    let r = call(
        addr,
        "GET",
        &format!("/v1/webhooks/dead-letters{query}"),
        Some(key),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    r.2.as_array().unwrap().clone()
}

#[test]
fn devnet_webhooks_dead_letter_and_are_replayed_or_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    std::fs::create_dir_all(&data).unwrap();
    let answer = Arc::new(AtomicU16::new(503));
    let (url, received) = receiver(answer.clone());
    std::fs::write(
        data.join("webhooks.toml"),
        format!(
            "[[webhooks]]\nname = \"treasury\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
             max_attempts = 1\ninitial_backoff_ms = 10\nmembers = [\"130102\"]\n"
        ),
    )
    .unwrap();
    let (_devnet, printed) = Devnet::start_collecting(&data, &[]);
    let _ = printed;
    let log = std::fs::read_to_string(data.with_extension("stderr.log")).unwrap();
    assert!(
        log.contains(&format!("devnet: webhook treasury → {url} (from 130102)")),
        "{log}"
    );
    let net = Net::read(&data);
    let (mof, mof_key, _) = net.api("000000");
    let (county, county_key, county_read) = net.api("130102");

    // Two committed blocks while the receiver answers 503: each fails its
    // one attempt and becomes a dead letter at the county's adapter.
    let before = now_ms();
    for doc in ["wh-1", "wh-2"] {
        let r = call(
            mof,
            "POST",
            "/v1/operations?wait=commit",
            Some(mof_key),
            Some(&appropriate(doc, 100)),
            &[],
        );
        assert_eq!(r.0, 200, "{:?}", r.2);
    }
    let until = Instant::now() + Duration::from_secs(60);
    let open = loop {
        let l = letters(county, county_key, "");
        if l.len() >= 2 {
            break l;
        }
        assert!(Instant::now() < until, "no dead letters after 60 s: {l:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for d in &open {
        assert_eq!(d["webhook"], "treasury");
        assert_eq!(d["state"], "open");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_error"], "HTTP 503");
        let failed = d["failed_at_ms"].as_i64().unwrap();
        assert!(failed >= before - 1000 && failed <= now_ms(), "{d}");
        assert_eq!(d["event"]["height"], d["height"]);
    }
    // What reached the receiver was signed with the file's secret.
    let (headers, body) = received.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_signed(&headers, &body);
    // Only the member the file names delivers; a read-only key may not look.
    let (city, city_key, _) = net.api("130100");
    assert!(letters(city, city_key, "?state=all").is_empty());
    problem(
        call(
            county,
            "GET",
            "/v1/webhooks/dead-letters",
            Some(county_read),
            None,
            &[],
        ),
        403,
        "api.scope_not_granted",
    );

    let (first, second) = (&open[0], &open[1]);
    let path = |d: &Value, what: &str| format!("/v1/webhooks/dead-letters/{}/{what}", d["id"]);
    let post = |path: &str, key: &str| call(county, "POST", path, Some(key), None, &[]);

    // A replay the receiver still refuses: 503, the letter stays open with
    // the attempt counted.
    let r = post(&path(first, "replay"), county_key);
    problem(r, 503, "webhook.delivery_failed");
    let now = letters(county, county_key, "");
    let again = now.iter().find(|d| d["id"] == first["id"]).unwrap();
    assert_eq!(
        (again["state"].as_str(), again["attempts"].as_u64()),
        (Some("open"), Some(2))
    );
    assert!(again["failed_at_ms"].as_i64() >= first["failed_at_ms"].as_i64());

    // The receiver is back: the replay delivers the letter's own event,
    // signed afresh, and the letter is delivered.
    answer.store(200, Ordering::SeqCst);
    while received.try_recv().is_ok() {}
    let r = post(&path(first, "replay"), county_key);
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["state"], "delivered");
    assert_eq!(r.2["attempts"], 3);
    assert_eq!(r.2["resolved_by"], "devnet-130102");
    let until = Instant::now() + Duration::from_secs(30);
    let (headers, body) = loop {
        let (h, b) = received.recv_timeout(Duration::from_secs(30)).unwrap();
        if header(&h, "x-fiscus-event-id").parse::<u64>().ok() == first["height"].as_u64() {
            break (h, b);
        }
        assert!(Instant::now() < until);
    };
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        first["event"]
    );
    assert_signed(&headers, &body);

    // The other is acknowledged, once.
    let r = post(&path(second, "ack"), county_key);
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["state"], "acknowledged");
    assert!(r.2["resolved_at_ms"].as_i64().unwrap() >= before);
    problem(
        post(&path(second, "ack"), county_key),
        409,
        "webhook.already_resolved",
    );
    // A resolved letter is neither replayed nor acknowledged again.
    problem(
        post(&path(first, "replay"), county_key),
        409,
        "webhook.already_resolved",
    );
    problem(
        post("/v1/webhooks/dead-letters/999999/replay", county_key),
        404,
        "webhook.unknown_dead_letter",
    );
    problem(
        post(&path(second, "ack"), county_read),
        403,
        "api.scope_not_granted",
    );
    // Resolved letters leave the default list and stay in `state=all`.
    let ids = |l: Vec<Value>| {
        l.iter()
            .map(|d| d["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let open_now = ids(letters(county, county_key, ""));
    assert!(!open_now.contains(&first["id"].as_u64().unwrap()));
    assert!(!open_now.contains(&second["id"].as_u64().unwrap()));
    let all = ids(letters(county, county_key, "?state=all"));
    assert!(
        all.contains(&first["id"].as_u64().unwrap())
            && all.contains(&second["id"].as_u64().unwrap())
    );
}

#[test]
fn a_webhooks_file_the_adapter_would_refuse_stops_the_devnet_at_start() {
    for (n, (entry, said)) in [
        (
            "members = [\"139999\"]",
            "webhook \"x\" names member \"139999\"",
        ),
        (
            "members = [\"130102\"]\nmax_attempts = 0",
            "max_attempts must be at least 1",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join(format!("devnet-{n}"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("webhooks.toml"),
            format!(
                "[[webhooks]]\nname = \"x\"\nurl = \"http://127.0.0.1:9/\"\n\
                 secret = \"0123456789abcdef\"\n{entry}\n"
            ),
        )
        .unwrap();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(["devnet", "--base-port", "0", "--data-dir"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("stderr.log")).unwrap())
            .status()
            .unwrap();
        assert!(!status.success());
        let log = std::fs::read_to_string(data.with_extension("stderr.log")).unwrap();
        assert!(log.contains(said), "{log}");
    }
}
