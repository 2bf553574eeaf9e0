//! One catalogue of bad inputs (issue 20, item 7), against a real devnet:
//! REST operations and envelopes, REST reads, bulk import and gRPC
//! `SubmitStream`. Each case asserts its status and stable error code, and
//! that the chain did not move (height and state hash of every member). At
//! the end one valid transaction lands in the very next block: nothing a
//! case sent was ordered late either.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod devnet_support;

use devnet_support::*;
use fiscus_proto::envelope::seal;
use fiscus_proto::pb::types::{Envelope, TxPayload};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Who calls: a member's full key, its read-only key, another key, or none.
#[derive(Clone, Copy)]
enum Key {
    Full(&'static str),
    Read(&'static str),
    Bogus,
    None,
}

/// One REST case.
struct Rest {
    name: &'static str,
    member: &'static str,
    key: Key,
    method: &'static str,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
    /// Text the answer must also contain (e.g. a per-row code).
    detail: Option<&'static str>,
}

fn rest(
    name: &'static str,
    key: Key,
    method: &'static str,
    path: &str,
    body: Option<String>,
    status: u16,
    code: &'static str,
) -> Rest {
    let member = match key {
        Key::Full(m) | Key::Read(m) => m,
        Key::Bogus | Key::None => "000000",
    };
    Rest {
        name,
        member,
        key,
        method,
        path: path.to_owned(),
        body,
        headers: Vec::new(),
        status,
        code,
        detail: None,
    }
}

/// Height and state hash at every member.
fn snapshot(net: &Net) -> Vec<(String, Value, Value)> {
    net.members
        .keys()
        .map(|m| {
            let c = net.chain(m);
            (m.clone(), c["height"].clone(), c["state_hash"].clone())
        })
        .collect()
}

fn allocate(from: &str, program: &str, to: &str, amount: Value, doc: &str) -> String {
    json!({"op": "allocate", "from": {"org_code": from, "program_id": program},
           "to_org_code": to, "amount_fen": amount, "document": doc})
    .to_string()
}

fn client_key(data: &Path, m: &str) -> (SigningKey, fiscus_proto::hash::Hash32) {
    signer(&data.join(format!("member-{m}/client")))
}

fn import_csv(rows: &[&str]) -> String {
    let mut s = "external_id,op,org_code,program_id,amount_fen,to_org_code,document\n".to_owned();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

#[test]
fn every_bad_input_is_refused_with_its_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let _devnet = Devnet::start(&data);
    let net = Net::read(&data);

    // Setup: MOF funds t-edu; one envelope and one import row are committed,
    // so that replays of them can be tried; one Idempotency-Key is spent.
    let (mof, mof_key, _) = net.api("000000");
    let r = call(
        mof,
        "POST",
        "/v1/operations?wait=commit",
        Some(mof_key),
        Some(&appropriate("setup", 1_000_000)),
        &[("Idempotency-Key", "setup-1")],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    let committed_env = signed_allocation(&data, 1);
    let r = call(
        mof,
        "POST",
        "/v1/transactions?wait=commit",
        Some(mof_key),
        Some(&json!({"envelope": b64(&committed_env)}).to_string()),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    let r = call(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        Some(&import_csv(&["E1,allocate,000000,t-edu,7,130000,setup"])),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    // The import answers once its rows are ordered, not committed: wait for
    // the block it names on every member, so that snapshots compare.
    let head = r.2["results"][0]["block_number"].as_u64().unwrap();
    assert!(head > 0, "{:?}", r.2);
    for m in net.members.keys() {
        let until = Instant::now() + Duration::from_secs(60);
        while net.chain(m)["height"].as_u64().unwrap() < head {
            assert!(Instant::now() < until, "{m} did not catch up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let before = snapshot(&net);

    // A valid envelope to tamper with (not submitted as is).
    let fresh = Envelope::decode(&signed_allocation(&data, 2)[..]).unwrap();
    let mut forged = fresh.clone();
    forged.signatures[0].signature[0] ^= 1;
    let mut other_consortium = TxPayload::decode(&fresh.payload[..]).unwrap();
    other_consortium.consortium_id = "another-consortium".into();
    let (mof_ck, mof_cid) = client_key(&data, "000000");
    let other_consortium = seal(&other_consortium, &[(&mof_ck, mof_cid)]);
    let mut unsigned = fresh.clone();
    unsigned.signatures.clear();
    let envelope = |e: &Envelope| Some(json!({"envelope": b64(&e.encode_to_vec())}).to_string());
    let ops = "/v1/operations";
    let hebei = Key::Full("130000");
    let hebei_alloc =
        |amount: Value, doc: &str| Some(allocate("130000", "t-edu", "130100", amount, doc));
    let mof_full = Key::Full("000000");

    let mut cases: Vec<Rest> = vec![
        // Authentication and authority.
        rest(
            "no API key",
            Key::None,
            "POST",
            ops,
            Some(appropriate("a", 1)),
            401,
            "api.missing_api_key",
        ),
        rest(
            "unknown API key",
            Key::Bogus,
            "POST",
            ops,
            Some(appropriate("a", 1)),
            401,
            "api.invalid_api_key",
        ),
        rest(
            "read-only key submits",
            Key::Read("000000"),
            "POST",
            ops,
            Some(appropriate("a", 1)),
            403,
            "api.scope_not_granted",
        ),
        rest(
            "no key, oversized body",
            Key::None,
            "POST",
            "/v1/transactions",
            Some("A".repeat(2 << 20)),
            401,
            "api.missing_api_key",
        ),
        rest(
            "no key, malformed JSON",
            Key::None,
            "POST",
            ops,
            Some("{\"op\":".into()),
            401,
            "api.missing_api_key",
        ),
        rest(
            "another org's funds",
            Key::Full("130100"),
            "POST",
            ops,
            Some(appropriate("a", 1)),
            403,
            "api.wrong_org",
        ),
        rest(
            "supervisor moves money",
            Key::Full("991300"),
            "POST",
            ops,
            Some(allocate("991300", "t-edu", "130000", json!(1), "d")),
            403,
            "contract.supervisor_moves_no_money",
        ),
        rest(
            "allocation to a supervisor",
            hebei,
            "POST",
            ops,
            Some(allocate("130000", "t-edu", "991300", json!(1), "d")),
            403,
            "contract.supervisor_moves_no_money",
        ),
        // Malformed bodies.
        rest(
            "malformed JSON",
            mof_full,
            "POST",
            ops,
            Some("{\"op\":".into()),
            400,
            "api.malformed_json",
        ),
        rest(
            "unknown field",
            mof_full,
            "POST",
            ops,
            Some(json!({"op": "appropriate", "surprise": 1}).to_string()),
            400,
            "api.invalid_body",
        ),
        rest(
            "oversized body",
            mof_full,
            "POST",
            "/v1/transactions",
            Some(format!("{{\"envelope\": \"{}\"}}", "A".repeat(2 << 20))),
            413,
            "api.body_too_large",
        ),
        // The contract's field rules, applied before ordering.
        rest(
            "amount zero",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(0), "d"),
            400,
            "contract.bad_amount",
        ),
        rest(
            "amount negative",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(-5), "d"),
            400,
            "contract.bad_amount",
        ),
        rest(
            "amount i64::MIN",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(i64::MIN), "d"),
            400,
            "contract.bad_amount",
        ),
        rest(
            "amount beyond i64",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(u64::MAX), "d"),
            400,
            "api.invalid_body",
        ),
        rest(
            "9 KB document",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(1), &"文".repeat(3 * 1024)),
            400,
            "contract.malformed",
        ),
        rest(
            "path as org code",
            hebei,
            "POST",
            ops,
            Some(allocate("130000", "t-edu", "../../etc", json!(1), "d")),
            400,
            "contract.malformed",
        ),
        rest(
            "5,000-character program id",
            hebei,
            "POST",
            ops,
            Some(allocate(
                "130000",
                &"p".repeat(5000),
                "130100",
                json!(1),
                "d",
            )),
            400,
            "contract.malformed",
        ),
        rest(
            "NUL in document",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(1), "a\u{0}b"),
            400,
            "contract.malformed",
        ),
        rest(
            "ESC in document",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(1), "a\u{1b}[31mb"),
            400,
            "contract.malformed",
        ),
        rest(
            "RLO in document",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(1), "doc\u{202e}gnp"),
            400,
            "contract.malformed",
        ),
        rest(
            "empty document",
            hebei,
            "POST",
            ops,
            hebei_alloc(json!(1), ""),
            400,
            "contract.malformed",
        ),
        rest(
            "unknown recipient org",
            hebei,
            "POST",
            ops,
            Some(allocate("130000", "t-edu", "139999", json!(1), "d")),
            422,
            "contract.unknown_org",
        ),
        // Envelopes: forged, replayed, tampered, for the wrong org.
        rest(
            "forged signature",
            mof_full,
            "POST",
            "/v1/transactions",
            envelope(&forged),
            400,
            "tx.bad_signature",
        ),
        rest(
            "no signature",
            mof_full,
            "POST",
            "/v1/transactions",
            envelope(&unsigned),
            400,
            "tx.bad_encoding",
        ),
        rest(
            "replayed committed envelope",
            mof_full,
            "POST",
            "/v1/transactions",
            Some(json!({"envelope": b64(&committed_env)}).to_string()),
            409,
            "tx.duplicate",
        ),
        rest(
            "another consortium's envelope",
            mof_full,
            "POST",
            "/v1/transactions",
            envelope(&other_consortium),
            400,
            "tx.wrong_consortium",
        ),
        rest(
            "envelope for another org",
            Key::Full("130100"),
            "POST",
            "/v1/transactions",
            envelope(&fresh),
            403,
            "api.wrong_org",
        ),
        rest(
            "envelope not base64",
            mof_full,
            "POST",
            "/v1/transactions",
            Some(json!({"envelope": "%%%"}).to_string()),
            400,
            "api.bad_base64",
        ),
        rest(
            "envelope not protobuf",
            mof_full,
            "POST",
            "/v1/transactions",
            Some(json!({"envelope": b64(b"\xff\xff\xff\xff")}).to_string()),
            400,
            "tx.bad_encoding",
        ),
        // Reads.
        rest(
            "bad page size",
            Key::Read("000000"),
            "GET",
            "/v1/accounts?limit=abc",
            None,
            400,
            "api.bad_query",
        ),
        rest(
            "bad block number",
            Key::Read("000000"),
            "GET",
            "/v1/blocks/not-a-number",
            None,
            400,
            "api.bad_path",
        ),
        rest(
            "negative height",
            Key::Read("000000"),
            "GET",
            "/v1/deadlines/overdue?height=-1",
            None,
            400,
            "api.bad_query",
        ),
        rest(
            "bad tx id",
            Key::Read("000000"),
            "GET",
            "/v1/transactions/zz",
            None,
            400,
            "api.bad_tx_id",
        ),
        rest(
            "unknown tx id",
            Key::Read("000000"),
            "GET",
            &format!("/v1/transactions/{}", "ab".repeat(32)),
            None,
            404,
            "api.not_found",
        ),
        rest(
            "unknown proof kind",
            Key::Read("000000"),
            "GET",
            &format!("/v1/transactions/{}?proof=all", "ab".repeat(32)),
            None,
            400,
            "api.bad_query",
        ),
        rest(
            "forged page cursor",
            Key::Read("000000"),
            "GET",
            "/v1/accounts?cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
            400,
            "api.bad_cursor",
        ),
        // Bulk import.
        rest(
            "empty import",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(String::new()),
            400,
            "import.bad_file",
        ),
        rest(
            "import of a header only",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(import_csv(&[])),
            400,
            "import.bad_file",
        ),
        rest(
            "import in an unknown format",
            mof_full,
            "POST",
            "/v1/imports?format=xml",
            Some(import_csv(&["X1,allocate,000000,t-edu,1,130000,d"])),
            400,
            "api.bad_query",
        ),
        rest(
            "import row with amount zero",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(import_csv(&["X2,allocate,000000,t-edu,0,130000,d"])),
            422,
            "import.invalid_rows",
        ),
        rest(
            "import row for another org",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(import_csv(&["X3,allocate,130000,t-edu,1,130100,d"])),
            422,
            "import.invalid_rows",
        ),
        rest(
            "import row with a control character",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(import_csv(&["X4,allocate,000000,t-edu,1,130000,a\u{1b}b"])),
            422,
            "import.invalid_rows",
        ),
        rest(
            "import row with a path as org",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(import_csv(&["X5,allocate,000000,t-edu,1,../../etc,d"])),
            422,
            "import.invalid_rows",
        ),
        rest(
            "import external id reused with another row",
            mof_full,
            "POST",
            "/v1/imports?format=csv",
            Some(import_csv(&["E1,allocate,000000,t-edu,8,130000,setup"])),
            422,
            "import.invalid_rows",
        ),
    ];
    let i = cases
        .iter()
        .position(|c| c.name == "import external id reused with another row")
        .unwrap();
    cases[i].detail = Some("import.external_id_conflict");
    let mut reused = rest(
        "Idempotency-Key reused with another body",
        mof_full,
        "POST",
        ops,
        Some(appropriate("other", 5)),
        422,
        "api.idempotency_key_reused",
    );
    reused.headers.push(("Idempotency-Key", "setup-1".into()));
    cases.push(reused);
    let mut last_id = rest(
        "unparseable Last-Event-ID",
        Key::Read("000000"),
        "GET",
        "/v1/events?max_blocks=1",
        None,
        400,
        "api.bad_query",
    );
    last_id.headers.push(("Last-Event-ID", "tomorrow".into()));
    cases.push(last_id);

    let mut failures = Vec::new();
    let n_rest = cases.len();
    for c in &cases {
        let (addr, full, read) = net.api(c.member);
        let key = match c.key {
            Key::Full(_) => Some(full),
            Key::Read(_) => Some(read),
            Key::Bogus => Some("fsk_0000000000000000000000000000000000000000000000000"),
            Key::None => None,
        };
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, ctype, body) = call(addr, c.method, &c.path, key, c.body.as_deref(), &headers);
        if status != c.status
            || body["code"] != c.code
            || !ctype.starts_with("application/problem+json")
        {
            failures.push(format!(
                "{}: expected {} {}, got {status} {ctype} {body}",
                c.name, c.status, c.code
            ));
        }
    }

    // gRPC SubmitStream, as MOF's client certificate.
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let grpc = layout["members"][0]["grpc"].as_str().unwrap().to_owned();
    let (hebei_ck, hebei_cid) = client_key(&data, "130000");
    let mut wrong_org = TxPayload::decode(&fresh.payload[..]).unwrap();
    wrong_org.creator_cert_id = hebei_cid.to_vec();
    wrong_org.nonce = 90;
    let wrong_org = seal(&wrong_org, &[(&hebei_ck, hebei_cid)]);
    let mut oversized = TxPayload::decode(&fresh.payload[..]).unwrap();
    oversized.nonce = 91;
    if let Some(fiscus_proto::pb::types::tx_payload::Call::Transfer(t)) = oversized.call.as_mut()
        && let Some(fiscus_proto::pb::transfer::transfer_call::Method::Allocate(a)) =
            t.method.as_mut()
    {
        a.document = "x".repeat(70 * 1024);
    }
    let oversized = seal(&oversized, &[(&mof_ck, mof_cid)]);
    let garbage = Envelope {
        payload: b"\xff\xff\xff".to_vec(),
        signatures: fresh.signatures.clone(),
    };
    let committed = Envelope::decode(&committed_env[..]).unwrap();
    let grpc_cases: Vec<(&str, Envelope, &str)> = vec![
        ("gRPC forged signature", forged.clone(), "tx.bad_signature"),
        ("gRPC envelope for another org", wrong_org, "api.wrong_org"),
        (
            "gRPC replayed committed envelope",
            committed,
            "tx.duplicate",
        ),
        (
            "gRPC another consortium's envelope",
            other_consortium.clone(),
            "tx.wrong_consortium",
        ),
        (
            "gRPC payload over max_tx_bytes",
            oversized,
            "tx.bad_encoding",
        ),
        ("gRPC payload not protobuf", garbage, "tx.bad_encoding"),
    ];
    let n_grpc = grpc_cases.len() + 1;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client = exchange_client(&grpc, &data.join("member-000000/client")).await;
        let ids: Vec<Vec<u8>> = grpc_cases
            .iter()
            .map(|(_, e, _)| fiscus_proto::hash::tx_id(&e.payload).to_vec())
            .collect();
        let mut answers = client
            .submit_stream(futures::stream::iter(
                grpc_cases
                    .iter()
                    .map(|(_, e, _)| e.clone())
                    .collect::<Vec<_>>(),
            ))
            .await
            .unwrap()
            .into_inner();
        let mut got = std::collections::BTreeMap::new();
        while let Some(r) = answers.message().await.unwrap() {
            got.insert(r.tx_id.clone(), r);
            if got.len() == grpc_cases.len() {
                break;
            }
        }
        for ((name, _, code), id) in grpc_cases.iter().zip(&ids) {
            match got.get(id) {
                Some(r) if r.error_code == *code => {}
                other => failures.push(format!("{name}: expected {code}, got {other:?}")),
            }
        }
        // A node certificate may not submit at all.
        let mut node = exchange_client(&grpc, &data.join("member-000000/node-tls")).await;
        match node.submit(fresh.clone()).await {
            Err(s)
                if s.metadata()
                    .get("fiscus-error-code")
                    .and_then(|v| v.to_str().ok())
                    == Some("api.wrong_role") => {}
            other => failures.push(format!(
                "gRPC node certificate submits: expected api.wrong_role, got {other:?}"
            )),
        }
    });

    // A revoked signer: Chang'an's client certificate revokes itself at the
    // CA; once its adapter reloads the CRL, the certificate cannot open a
    // gRPC connection to submit.
    revoke_own_certificate(
        &data,
        &data.join("member-130102/client"),
        "keyCompromise: catalogue case",
    );
    let changan = layout["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == "130102")
        .unwrap()["grpc"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ck, cid) = client_key(&data, "130102");
    let mut p = TxPayload::decode(&fresh.payload[..]).unwrap();
    p.creator_cert_id = cid.to_vec();
    p.nonce = 92;
    let revoked_env = seal(&p, &[(&ck, cid)]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use fiscus_common::tls::{TlsConfig, TlsContext, connect_channel};
        use fiscus_proto::pb::exchange::exchange_client::ExchangeClient;
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let tls =
                TlsContext::load(&TlsConfig::in_dir(&data.join("member-130102/client"))).unwrap();
            let refused =
                match connect_channel(&changan, "127.0.0.1", tls.client_config().unwrap()).await {
                    Err(_) => true,
                    Ok(ch) => ExchangeClient::new(ch)
                        .submit(revoked_env.clone())
                        .await
                        .is_err_and(|s| {
                            s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::Unknown
                        }),
                };
            if refused {
                break;
            }
            assert!(
                Instant::now() < until,
                "a revoked client certificate could still submit over gRPC after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let n_grpc = n_grpc + 1;

    let total = n_rest + n_grpc;
    assert!(total >= 40, "the catalogue has {total} cases");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing changed at any member...
    assert_eq!(snapshot(&net), before, "a refused input changed the chain");
    // ...and nothing was ordered late: the next valid transaction is the next block.
    let r = call(
        mof,
        "POST",
        "/v1/operations?wait=commit",
        Some(mof_key),
        Some(&appropriate("after", 1)),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(
        r.2["block_number"].as_u64().unwrap(),
        before[0].1.as_u64().unwrap() + 1,
        "a refused input was ordered after all"
    );
}
