//! `fiscus devnet` as a process, driven through the exchange-adapters' REST
//! API: submit → committed and final at every member → the receipt proof
//! verifies offline with `fiscus verify-receipt`; each bad input gets a
//! problem+json answer and writes nothing; idempotent retries; the OpenAPI
//! document matches the routes; a restart resumes the chain.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use base64::Engine as _;
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::cert_id;
use fiscus_proto::pb::transfer::{AccountRef, AllocateArgs, TransferCall, transfer_call::Method};
use fiscus_proto::pb::types::{TxPayload, tx_payload::Call};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Devnet(Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Devnet {
    /// Starts `fiscus devnet` and waits for its "Serving" line.
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(["devnet", "--base-port", "0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let mut lines = lines.map_while(Result::ok);
        for line in lines.by_ref() {
            if line.starts_with("Serving until Ctrl-C") {
                std::thread::spawn(move || for _ in lines {});
                return Self(child);
            }
            seen.push(line);
        }
        let _ = child.kill();
        let status = child.wait();
        panic!("the devnet exited ({status:?}) before serving: {seen:#?}");
    }

    /// Stops it as Ctrl-C would, and waits for a clean exit.
    fn interrupt(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                assert!(s.success(), "the devnet exited with {s}");
                return;
            }
            assert!(
                Instant::now() < until,
                "the devnet did not stop within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One request; returns status, content type and the JSON body.
fn call(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, String, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // The server may answer (413) before reading a large body; ignore a reset.
    let _ = s.write_all(req.as_bytes());
    let _ = s.write_all(body.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    let v = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    (status, ctype, v)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Asserts a problem+json answer with `status` and `code`.
fn problem(r: (u16, String, Value), status: u16, code: &str) {
    assert_eq!(r.0, status, "{:?}", r.2);
    assert!(r.1.starts_with("application/problem+json"), "{r:?}");
    assert_eq!(r.2["code"], code, "{:?}", r.2);
    assert_eq!(r.2["status"], status);
}

struct Net {
    /// member → (api address, full key, read-only key)
    members: BTreeMap<String, (String, String, String)>,
}

impl Net {
    fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("api-keys.txt")).unwrap();
        let mut members: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let e = members.entry(f[0].to_owned()).or_default();
            e.0 = f[1].trim_start_matches("http://").to_owned();
            if f[3] == "read" {
                e.2 = f[2].to_owned();
            } else {
                e.1 = f[2].to_owned();
            }
        }
        Self { members }
    }

    fn api(&self, m: &str) -> (&str, &str, &str) {
        let e = &self.members[m];
        (&e.0, &e.1, &e.2)
    }

    fn chain(&self, m: &str) -> Value {
        let (addr, key, _) = self.api(m);
        let r = call(addr, "GET", "/v1/chain", Some(key), None, &[]);
        assert_eq!(r.0, 200, "{:?}", r.2);
        r.2
    }
}

fn appropriate(doc: &str, amount: i64) -> String {
    json!({"op": "appropriate", "account": {"org_code": "000000", "program_id": "t-edu"},
           "program": {"id": "t-edu", "name": "test education", "kind": "special",
                       "functional_code": "2050202",
                       "fiscal_year": fiscus_gossip_gateway::testkit::fiscal_year_now(),
                       "document": doc},
           "amount_fen": amount, "document": doc})
    .to_string()
}

/// An allocation MOF → Hebei, signed with MOF's client key from the devnet's files.
fn signed_allocation(dir: &Path, nonce: u64) -> Vec<u8> {
    let client = dir.join("member-000000/client");
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(client.join("key.pem")).unwrap())
        .unwrap();
    let pem = std::fs::read(client.join("cert.pem")).unwrap();
    let der = fiscus_common::tls::parse_certs(&client.join("cert.pem"), &pem).unwrap();
    let id = cert_id(&der[0]);
    let payload = TxPayload {
        consortium_id: "fiscus-devnet".into(),
        creator_cert_id: id.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(Call::Transfer(TransferCall {
            method: Some(Method::Allocate(AllocateArgs {
                from: Some(AccountRef {
                    org_code: "000000".into(),
                    program_id: "t-edu".into(),
                }),
                to_org_code: "130000".into(),
                amount_fen: 5_000,
                document: "signed".into(),
            })),
        })),
    };
    seal(&payload, &[(&key, id)]).encode_to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn the_devnet_serves_the_rest_api_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let devnet = Devnet::start(&data);
    let net = Net::read(&data);
    assert_eq!(net.members.len(), 5);
    let (mof, mof_key, mof_read) = net.api("000000");
    let (sjz, sjz_key, _) = net.api("130100");

    // The OpenAPI document lists every route, and each listed route is served.
    let (status, _, doc) = call(mof, "GET", "/openapi.json", None, None, &[]);
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<String> = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
            let concrete = path
                .replace("{number}", "1")
                .replace("{tx_id}", &"00".repeat(32))
                .replace("{org}", "130000")
                .replace("{program}", "t-edu")
                // A refused query answers at once and still proves the route is served.
                .replace("/v1/events", "/v1/events?max_blocks=0");
            let r = call(
                mof,
                &method.to_uppercase(),
                &concrete,
                Some(mof_read),
                Some("{}"),
                &[],
            );
            assert_ne!(
                r.2["code"], "api.no_route",
                "{method} {path} is listed but not served"
            );
        }
    }
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /v1/accounts",
            "GET /v1/accounts/{org}/{program}",
            "GET /v1/accounts/{org}/{program}/history",
            "GET /v1/blocks/{number}",
            "GET /v1/chain",
            "GET /v1/deadlines/overdue",
            "GET /v1/events",
            "GET /v1/exports/accounts",
            "GET /v1/exports/allocations",
            "GET /v1/exports/disbursements",
            "GET /v1/programs",
            "GET /v1/trace/{tx_id}",
            "GET /v1/transactions/{tx_id}",
            "GET /v1/webhooks/dead-letters",
            "POST /v1/imports",
            "POST /v1/operations",
            "POST /v1/transactions",
        ]
    );
    problem(
        call(mof, "GET", "/v1/nothing", Some(mof_key), None, &[]),
        404,
        "api.no_route",
    );
    let (status, ctype, _) = call(mof, "GET", "/docs", None, None, &[]);
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"));

    // Each bad input: problem+json, and nothing reaches the chain.
    let before = net.chain("991300");
    let ops = "/v1/operations?wait=commit";
    problem(
        call(mof, "POST", ops, None, Some(&appropriate("a", 1)), &[]),
        401,
        "api.missing_api_key",
    );
    problem(
        call(
            mof,
            "POST",
            ops,
            Some("fsk_wrong"),
            Some(&appropriate("a", 1)),
            &[],
        ),
        401,
        "api.invalid_api_key",
    );
    problem(
        call(
            mof,
            "POST",
            ops,
            Some(mof_read),
            Some(&appropriate("a", 1)),
            &[],
        ),
        403,
        "api.scope_not_granted",
    );
    problem(
        call(
            mof,
            "POST",
            ops,
            Some(mof_key),
            Some("{\"op\": \"appropriate\","),
            &[],
        ),
        400,
        "api.malformed_json",
    );
    let mut unknown: Value = serde_json::from_str(&appropriate("a", 1)).unwrap();
    unknown["surprise"] = json!(1);
    problem(
        call(
            mof,
            "POST",
            ops,
            Some(mof_key),
            Some(&unknown.to_string()),
            &[],
        ),
        400,
        "api.invalid_body",
    );
    let huge = format!("{{\"envelope\": \"{}\"}}", "A".repeat(2 * 1024 * 1024));
    problem(
        call(
            mof,
            "POST",
            "/v1/transactions",
            Some(mof_key),
            Some(&huge),
            &[],
        ),
        413,
        "api.body_too_large",
    );
    // Authentication comes first: without a key the same oversized body, or
    // malformed JSON, is a 401, and the body is not read.
    for body in [huge.as_str(), "{\"op\": \"appropriate\","] {
        for path in ["/v1/transactions", ops] {
            problem(
                call(mof, "POST", path, None, Some(body), &[]),
                401,
                "api.missing_api_key",
            );
        }
    }
    // Reads too: a bad query or path without a key is a 401, with a key a 400.
    for path in [
        "/v1/accounts?limit=abc",
        "/v1/blocks/not-a-number",
        "/v1/deadlines/overdue?height=-1",
    ] {
        problem(
            call(mof, "GET", path, None, None, &[]),
            401,
            "api.missing_api_key",
        );
        let r = call(mof, "GET", path, Some(mof_read), None, &[]);
        assert_eq!(r.0, 400, "{path}: {:?}", r.2);
    }
    // An unparseable Last-Event-ID is refused like an unparseable from_height.
    problem(
        call(
            mof,
            "GET",
            "/v1/events?max_blocks=1",
            Some(mof_read),
            None,
            &[("Last-Event-ID", "tomorrow")],
        ),
        400,
        "api.bad_query",
    );
    // Shijiazhuang's key may not move MOF's funds, custodial or signed.
    problem(
        call(
            sjz,
            "POST",
            ops,
            Some(sjz_key),
            Some(&appropriate("a", 1)),
            &[],
        ),
        403,
        "api.wrong_org",
    );
    let env = signed_allocation(&data, 1);
    let body = json!({"envelope": b64(&env)}).to_string();
    problem(
        call(
            sjz,
            "POST",
            "/v1/transactions",
            Some(sjz_key),
            Some(&body),
            &[],
        ),
        403,
        "api.wrong_org",
    );
    let mut forged = fiscus_proto::pb::types::Envelope::decode(&env[..]).unwrap();
    forged.signatures[0].signature[0] ^= 1;
    let forged = json!({"envelope": b64(&forged.encode_to_vec())}).to_string();
    problem(
        call(
            mof,
            "POST",
            "/v1/transactions",
            Some(mof_key),
            Some(&forged),
            &[],
        ),
        400,
        "tx.bad_signature",
    );
    // The contract's rules, applied by the adapter before ordering
    // (transfer v2): each refused with the contract's code, nothing ordered.
    let (audit, audit_key, _) = net.api("991300");
    let (hebei, hebei_key, _) = net.api("130000");
    let supervisor_appropriates = json!({"op": "appropriate",
        "account": {"org_code": "991300", "program_id": "audit-own"},
        "program": {"id": "audit-own", "name": "x", "kind": "general", "functional_code": "205",
                    "fiscal_year": fiscus_gossip_gateway::testkit::fiscal_year_now(), "document": "d"},
        "amount_fen": 100, "document": "d"});
    let to_audit = json!({"op": "allocate", "from": {"org_code": "130000", "program_id": "t-edu"},
        "to_org_code": "991300", "amount_fen": 1, "document": "冀财预〔2026〕1号"});
    let mut bad_code: Value = serde_json::from_str(&appropriate("a", 1)).unwrap();
    bad_code["program"]["functional_code"] = json!("");
    let mut no_doc: Value = serde_json::from_str(&appropriate("a", 1)).unwrap();
    no_doc["program"]["document"] = json!("");
    let mut old_kind: Value = serde_json::from_str(&appropriate("a", 1)).unwrap();
    old_kind["program"]["kind"] = json!("direct");
    let bad_uscc = json!({"op": "disburse", "from": {"org_code": "130000", "program_id": "t-edu"},
        "recipient": {"unified_social_credit_code": "123456789012345678", "name": "某单位"},
        "amount_fen": 1, "purpose": "p", "economic_code": "50502"});
    let bad_id = json!({"op": "disburse", "from": {"org_code": "130000", "program_id": "t-edu"},
        "recipient": {"personal_id_number": "110105194912310021", "name": "某人"},
        "amount_fen": 1, "purpose": "p", "economic_code": "50502"});
    let control = json!({"op": "allocate", "from": {"org_code": "130000", "program_id": "t-edu"},
        "to_org_code": "130100", "amount_fen": 1, "document": "doc\u{202e}gnp"});
    let path_org = json!({"op": "allocate", "from": {"org_code": "130000", "program_id": "t-edu"},
        "to_org_code": "../../etc", "amount_fen": 1, "document": "d"});
    let long_program = json!({"op": "allocate", "from": {"org_code": "130000", "program_id": "p".repeat(5000)},
        "to_org_code": "130100", "amount_fen": 1, "document": "d"});
    for (who, key, op, status, code) in [
        (
            audit,
            audit_key,
            &supervisor_appropriates,
            403,
            "contract.supervisor_moves_no_money",
        ),
        (
            hebei,
            hebei_key,
            &to_audit,
            403,
            "contract.supervisor_moves_no_money",
        ),
        (mof, mof_key, &bad_code, 400, "contract.bad_functional_code"),
        (mof, mof_key, &no_doc, 400, "contract.missing_document"),
        (mof, mof_key, &old_kind, 400, "contract.bad_program_kind"),
        (hebei, hebei_key, &bad_uscc, 400, "contract.bad_recipient"),
        (hebei, hebei_key, &bad_id, 400, "contract.bad_id_number"),
        (hebei, hebei_key, &control, 400, "contract.malformed"),
        (hebei, hebei_key, &path_org, 400, "contract.malformed"),
        (hebei, hebei_key, &long_program, 400, "contract.malformed"),
    ] {
        problem(
            call(who, "POST", ops, Some(key), Some(&op.to_string()), &[]),
            status,
            code,
        );
    }
    let after = net.chain("991300");
    assert_eq!(
        before["height"], after["height"],
        "a refused request reached the chain"
    );
    assert_eq!(before["state_hash"], after["state_hash"]);

    // Submit → committed at every member → final.
    let r = call(
        mof,
        "POST",
        "/v1/operations?wait=final",
        Some(mof_key),
        Some(&appropriate("e2e", 100_000)),
        &[("Idempotency-Key", "e2e-1")],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["state"], "final");
    assert_eq!(r.2["receipt"]["status"], "valid");
    let first_block = r.2["block_number"].as_u64().unwrap();
    assert_eq!(
        first_block,
        before["height"].as_u64().unwrap() + 1,
        "the first valid tx lands in the very next block: nothing refused was ordered"
    );
    // The same key again: the first result, not a second appropriation.
    let again = call(
        mof,
        "POST",
        "/v1/operations?wait=commit",
        Some(mof_key),
        Some(&appropriate("e2e", 100_000)),
        &[("Idempotency-Key", "e2e-1")],
    );
    assert_eq!(again.0, 200, "{:?}", again.2);
    assert_eq!(again.2["tx_id"], r.2["tx_id"]);
    assert_eq!(again.2["replayed"], true);
    // The same key with another body: refused before ordering, and nothing
    // is appropriated a second time.
    let balance = || {
        let r = call(
            mof,
            "GET",
            "/v1/accounts/000000/t-edu",
            Some(mof_key),
            None,
            &[],
        );
        assert_eq!(r.0, 200, "{:?}", r.2);
        r.2["balance_fen"].clone()
    };
    let (height, funds) = (net.chain("000000")["height"].clone(), balance());
    problem(
        call(
            mof,
            "POST",
            "/v1/operations?wait=commit",
            Some(mof_key),
            Some(&appropriate("e2e", 999)),
            &[("Idempotency-Key", "e2e-1")],
        ),
        422,
        "api.idempotency_key_reused",
    );
    assert_eq!(net.chain("000000")["height"], height, "nothing was ordered");
    assert_eq!(balance(), funds);

    // A client-signed envelope, final everywhere, then replayed.
    let r = call(
        mof,
        "POST",
        "/v1/transactions?wait=final",
        Some(mof_key),
        Some(&body),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["receipt"]["status"], "valid", "{:?}", r.2);
    let tx = r.2["tx_id"].as_str().unwrap().to_owned();
    let block = r.2["block_number"].as_u64().unwrap();
    problem(
        call(
            mof,
            "POST",
            "/v1/transactions",
            Some(mof_key),
            Some(&body),
            &[],
        ),
        409,
        "tx.duplicate",
    );
    let retry = call(
        mof,
        "POST",
        "/v1/transactions",
        Some(mof_key),
        Some(&body),
        &[("Idempotency-Key", "x")],
    );
    assert_eq!((retry.0, retry.2["replayed"].clone()), (200, json!(true)));

    // Every member committed it; their attestations make one receipt file.
    let mut proof: Option<fiscus_proto::pb::types::ReceiptProof> = None;
    for m in net.members.keys() {
        let until = Instant::now() + Duration::from_secs(60);
        while net.chain(m)["height"].as_u64().unwrap() < block {
            assert!(Instant::now() < until, "{m} did not reach block {block}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (addr, key, _) = net.api(m);
        let t = call(
            addr,
            "GET",
            &format!("/v1/transactions/{tx}"),
            Some(key),
            None,
            &[],
        );
        assert_eq!(t.0, 200, "{m}: {:?}", t.2);
        assert_eq!(t.2["receipt"]["status"], "valid");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t.2["receipt_proof"].as_str().unwrap())
            .unwrap();
        let p = fiscus_proto::pb::types::ReceiptProof::decode(&bytes[..]).unwrap();
        match &mut proof {
            None => proof = Some(p),
            Some(all) => all.attestations.extend(p.attestations),
        }
    }
    let file = dir.path().join("receipt.pb");
    std::fs::write(&file, proof.unwrap().encode_to_vec()).unwrap();
    let verify = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(["verify-receipt", "--json", "--file"])
            .arg(file)
            .arg("--root")
            .arg(data.join("ca/ca/root.pem"))
            .arg("--certs-dir")
            .arg(data.join("signers"))
            .output()
            .unwrap()
    };
    let out = verify(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tx_id"], tx.as_str());
    assert_eq!(v["attested_by"].as_array().unwrap().len(), 5);
    // An attestation signed with MOF's *client* key (root-issued, right org,
    // but not a node certificate) does not make a receipt valid.
    let genuine =
        fiscus_proto::pb::types::ReceiptProof::decode(&std::fs::read(&file).unwrap()[..]).unwrap();
    let att = genuine
        .attestations
        .iter()
        .map(|a| fiscus_proto::pb::types::Attestation::decode(&a.attestation[..]).unwrap())
        .find(|a| a.member == "000000")
        .unwrap();
    let client = data.join("member-000000/client");
    let ckey =
        SigningKey::from_pkcs8_pem(&std::fs::read_to_string(client.join("key.pem")).unwrap())
            .unwrap();
    let cpem = std::fs::read(client.join("cert.pem")).unwrap();
    let cid =
        cert_id(&fiscus_common::tls::parse_certs(&client.join("cert.pem"), &cpem).unwrap()[0]);
    let bytes = att.encode_to_vec();
    let forged = fiscus_proto::pb::types::ReceiptProof {
        attestations: vec![fiscus_proto::pb::types::SignedAttestation {
            signature: Some(fiscus_proto::pb::types::Signature {
                cert_id: cid.to_vec(),
                signature: ckey.sign(&bytes).to_vec(),
            }),
            attestation: bytes,
        }],
        ..genuine
    };
    let forged_file = dir.path().join("forged.pb");
    std::fs::write(&forged_file, forged.encode_to_vec()).unwrap();
    let out = verify(&forged_file);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // One flipped byte in the receipt: refused.
    let mut bad = std::fs::read(&file).unwrap();
    bad[12] ^= 1;
    std::fs::write(&file, bad).unwrap();
    assert_eq!(verify(&file).status.code(), Some(1));

    // Bulk import: a file with bad rows reports every one and submits nothing.
    let header = "external_id,op,org_code,program_id,amount_fen,to_org_code,document\n";
    let bad = format!(
        "{header}I1,allocate,000000,t-edu,100,130000,doc\nI2,allocate,000000,t-edu,0,130000,doc\nI3,allocate,130000,t-edu,5,130100,doc\nI4,allocate,000000,t-edu,5,130100,doc\n"
    );
    let height = net.chain("991300")["height"].clone();
    let r = call(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        Some(&bad),
        &[],
    );
    assert_eq!(r.0, 422, "{:?}", r.2);
    assert_eq!(r.2["code"], "import.invalid_rows");
    let rows: Vec<u64> = r.2["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [2, 3, 4], "{:?}", r.2);
    assert_eq!(
        net.chain("991300")["height"],
        height,
        "a refused import reached the chain"
    );
    // An import interrupted after two rows, then re-run whole: no duplicates.
    let good = format!(
        "{header}I1,allocate,000000,t-edu,100,130000,doc\nI2,allocate,000000,t-edu,20,130000,doc\nI3,allocate,000000,t-edu,3,130000,doc\n"
    );
    let first_two: String = good.lines().take(3).map(|l| format!("{l}\n")).collect();
    let received = |net: &Net| {
        let (addr, key, _) = net.api("130000");
        let r = call(
            addr,
            "GET",
            "/v1/accounts/130000/t-edu",
            Some(key),
            None,
            &[],
        );
        r.2["received_fen"].as_i64().unwrap()
    };
    let before_import = received(&net);
    let r = call(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        Some(&first_two),
        &[],
    );
    assert_eq!(
        (r.0, r.2["submitted"].clone()),
        (200, json!(2)),
        "{:?}",
        r.2
    );
    let r = call(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        Some(&good),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(
        (r.2["submitted"].clone(), r.2["already_imported"].clone()),
        (json!(1), json!(2))
    );
    let last_tx = r.2["results"][2]["tx_id"].as_str().unwrap().to_owned();
    let (hebei, hebei_key, _) = net.api("130000");
    let until = Instant::now() + Duration::from_secs(60);
    while call(
        hebei,
        "GET",
        &format!("/v1/transactions/{last_tx}"),
        Some(hebei_key),
        None,
        &[],
    )
    .0 != 200
    {
        assert!(Instant::now() < until, "the imported rows did not commit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = call(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        Some(&good),
        &[],
    );
    assert_eq!(
        (r.2["submitted"].clone(), r.2["already_imported"].clone()),
        (json!(0), json!(3))
    );
    assert_eq!(
        received(&net) - before_import,
        123,
        "each row moved funds exactly once"
    );
    // A row changed under an external_id already on the chain is refused,
    // never paid a second time.
    let changed = format!("{header}I1,allocate,000000,t-edu,101,130000,doc\n");
    let r = call(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        Some(&changed),
        &[],
    );
    assert_eq!(
        (r.0, r.2["code"].clone()),
        (422, json!("import.invalid_rows")),
        "{:?}",
        r.2
    );
    let message = r.2["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("import.external_id_reused"),
        "{message}"
    );
    assert_eq!(received(&net) - before_import, 123);

    // Pagination cursors are opaque and bound to the client and the list.
    let page = call(
        mof,
        "GET",
        "/v1/accounts?limit=1",
        Some(mof_read),
        None,
        &[],
    );
    assert_eq!(page.0, 200, "{:?}", page.2);
    let cur = page.2["next_cursor"]
        .as_str()
        .expect("two accounts exist by now")
        .to_owned();
    assert!(
        !cur.contains("acct") && !cur.contains("t-edu"),
        "a cursor names no key: {cur}"
    );
    let next = call(
        mof,
        "GET",
        &format!("/v1/accounts?limit=1&cursor={cur}"),
        Some(mof_read),
        None,
        &[],
    );
    assert_eq!(next.0, 200, "{:?}", next.2);
    assert_ne!(next.2["items"], page.2["items"], "the next page");
    for (who, key, path) in [
        (sjz, sjz_key, "/v1/accounts"),
        (mof, mof_key, "/v1/accounts"),
        (mof, mof_read, "/v1/programs"),
    ] {
        problem(
            call(
                who,
                "GET",
                &format!("{path}?limit=1&cursor={cur}"),
                Some(key),
                None,
                &[],
            ),
            400,
            "api.bad_cursor",
        );
    }
    // Bulk import applies the contract's rules too: the same allocation to the
    // audit office that REST refused is refused here, with the same code.
    let to_audit_row = format!("{header}H1,allocate,130000,t-edu,1,991300,冀财预〔2026〕1号\n");
    let r = call(
        hebei,
        "POST",
        "/v1/imports?format=csv",
        Some(hebei_key),
        Some(&to_audit_row),
        &[],
    );
    assert_eq!(r.0, 422, "{:?}", r.2);
    let message = r.2["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("contract.supervisor_moves_no_money"),
        "{message}"
    );
    // A file with a header and no rows, or nothing at all, is a bad file.
    for empty in [header.to_owned(), String::new()] {
        problem(
            call(
                mof,
                "POST",
                "/v1/imports?format=csv",
                Some(mof_key),
                Some(&empty),
                &[],
            ),
            400,
            "import.bad_file",
        );
    }
    // The export lists them, as CSV.
    let (status, ctype, body) = call(
        mof,
        "GET",
        "/v1/exports/allocations?format=csv",
        Some(mof_read),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"));
    assert!(body.as_str().unwrap().contains(&last_tx));

    // The CLI: `import` refuses a bad file with a per-row table and exit 1;
    // `status --json` reads the chain; `export` writes CSV.
    let bad_file = dir.path().join("bad.csv");
    std::fs::write(&bad_file, &bad).unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(args)
            .env("FISCUS_API", format!("http://{mof}"))
            .env("FISCUS_API_KEY", mof_key)
            .output()
            .unwrap()
    };
    let out = cli(&["import", bad_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    for row in ["I2", "I3", "I4"] {
        assert!(table.contains(row), "{table}");
    }
    let out = cli(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["height"].as_u64().unwrap() >= block);
    let csv_file = dir.path().join("allocations.csv");
    let out = cli(&["export", "allocations", "--out", csv_file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_to_string(&csv_file)
            .unwrap()
            .contains(&last_tx)
    );

    // Server-sent events: a replay from height 1, one `block` event per block, each
    // listing its transactions' status.
    let (status, ctype, body) = call(
        mof,
        "GET",
        &format!("/v1/events?from_height={block}&max_blocks=1"),
        Some(mof_read),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let text = body.as_str().unwrap();
    assert!(
        text.starts_with(&format!("id: {block}\nevent: block\ndata: ")),
        "{text}"
    );
    let block_ev: Value =
        serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert!(
        block_ev["txs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tx_id"] == tx.as_str() && t["status"] == "valid"),
        "{block_ev}"
    );
    // Last-Event-ID resumes after the given block.
    let (_, _, body) = call(
        mof,
        "GET",
        "/v1/events?max_blocks=1",
        Some(mof_read),
        None,
        &[("Last-Event-ID", &block.to_string())],
    );
    assert!(
        body.as_str()
            .unwrap()
            .starts_with(&format!("id: {}\n", block + 1)),
        "{body}"
    );
    // A replay from height 0 starts at block 1: block 0 is the genesis
    // configuration and has no receipts to report.
    let (status, _, body) = call(
        mof,
        "GET",
        "/v1/events?from_height=0&max_blocks=1",
        Some(mof_read),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        body.as_str().unwrap().starts_with("id: 1\nevent: block\n"),
        "{body}"
    );

    // The gRPC API: a caller with MOF's client certificate submits on a stream;
    // an envelope signed for another org is refused with its tx id; a node
    // certificate may not submit.
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let grpc = layout["members"][0]["grpc"].as_str().unwrap().to_owned();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use fiscus_common::tls::{TlsConfig, TlsContext, connect_channel};
        use fiscus_proto::pb::exchange::exchange_client::ExchangeClient;
        let connect = |dir: std::path::PathBuf| {
            let grpc = grpc.clone();
            async move {
                let tls = TlsContext::load(&TlsConfig::in_dir(&dir)).unwrap();
                let ch = connect_channel(&grpc, "127.0.0.1", tls.client_config().unwrap())
                    .await
                    .unwrap();
                ExchangeClient::new(ch)
            }
        };
        let mut mof_client = connect(data.join("member-000000/client")).await;
        let ok_env =
            fiscus_proto::pb::types::Envelope::decode(&signed_allocation(&data, 77)[..]).unwrap();
        let ok_id = fiscus_proto::hash::tx_id(&ok_env.payload).to_vec();
        // Signed with Hebei's client key: the wrong org for this caller.
        let hebei = data.join("member-130000/client");
        let hkey =
            SigningKey::from_pkcs8_pem(&std::fs::read_to_string(hebei.join("key.pem")).unwrap())
                .unwrap();
        let hpem = std::fs::read(hebei.join("cert.pem")).unwrap();
        let hid =
            cert_id(&fiscus_common::tls::parse_certs(&hebei.join("cert.pem"), &hpem).unwrap()[0]);
        let mut payload = TxPayload::decode(&ok_env.payload[..]).unwrap();
        payload.creator_cert_id = hid.to_vec();
        payload.nonce = 78;
        let wrong = seal(&payload, &[(&hkey, hid)]);
        let wrong_id = fiscus_proto::hash::tx_id(&wrong.payload).to_vec();
        let mut answers = mof_client
            .submit_stream(futures::stream::iter(vec![ok_env, wrong]))
            .await
            .unwrap()
            .into_inner();
        let mut got = BTreeMap::new();
        while got.len() < 2 {
            let r = answers
                .message()
                .await
                .unwrap()
                .expect("an answer per envelope");
            got.insert(r.tx_id.clone(), r);
        }
        assert!(
            got[&ok_id].error_code.is_empty() && got[&ok_id].block_number > 0,
            "{got:?}"
        );
        assert_eq!(got[&wrong_id].error_code, "api.wrong_org", "{got:?}");
        let mut node_client = connect(data.join("member-000000/node-tls")).await;
        let err = node_client
            .submit(
                fiscus_proto::pb::types::Envelope::decode(&signed_allocation(&data, 79)[..])
                    .unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.metadata()
                .get("fiscus-error-code")
                .unwrap()
                .to_str()
                .unwrap(),
            "api.wrong_role"
        );
    });

    // A restart resumes the chain.
    let height = net.chain("130000")["height"].as_u64().unwrap();
    devnet.interrupt();
    let _devnet = Devnet::start(&data);
    assert!(net.chain("130000")["height"].as_u64().unwrap() >= height);
    let r = call(
        mof,
        "GET",
        &format!("/v1/transactions/{tx}"),
        Some(mof_key),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
}

/// One HTTP/1.1 GET over TLS 1.3 to a devnet REST API, presenting the client
/// certificate in `client_dir` (or none); returns the status and JSON body.
fn tls_get(
    addr: &str,
    client_dir: Option<&Path>,
    root_dir: &Path,
    path: &str,
    key: Option<&str>,
) -> (u16, Value) {
    use fiscus_common::tls::{TlsConfig, TlsContext};
    let mut config = match client_dir {
        Some(dir) => (*TlsContext::load(&TlsConfig::in_dir(dir))
            .unwrap()
            .client_config()
            .unwrap())
        .clone(),
        None => {
            // No certificate of our own: trust the consortium root only.
            let mut roots = rustls::RootCertStore::empty();
            let pem = std::fs::read(root_dir.join("ca.pem")).unwrap();
            for der in fiscus_common::tls::parse_certs(&root_dir.join("ca.pem"), &pem).unwrap() {
                roots.add(der).unwrap();
            }
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    // A close without close_notify still leaves the whole response read.
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn the_rest_api_over_tls_takes_a_client_certificate_or_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let _devnet = Devnet::start_with(&data, &["--rest-tls"]);
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let api = layout["members"][1]["api"].as_str().unwrap().to_owned();
    let hebei_client = data.join("member-130000/client");

    // Hebei's client certificate alone authenticates: it reads as org 130000.
    let (status, body) = tls_get(&api, Some(&hebei_client), &hebei_client, "/v1/chain", None);
    assert_eq!(status, 200, "{body}");
    assert!(body["height"].is_u64(), "{body}");
    let (status, body) = tls_get(
        &api,
        Some(&hebei_client),
        &hebei_client,
        "/v1/accounts?org=130100",
        None,
    );
    assert_eq!(status, 200, "{body}");
    // The disclosure policy applies to certificate callers: Hebei may not read MOF's accounts.
    let (status, body) = tls_get(
        &api,
        Some(&hebei_client),
        &hebei_client,
        "/v1/accounts?org=000000",
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "api.not_disclosed", "{body}");

    // A node certificate is not a client.
    let hebei_node = data.join("member-130000/node-tls");
    let (status, body) = tls_get(&api, Some(&hebei_node), &hebei_client, "/v1/chain", None);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "api.wrong_role", "{body}");

    // No certificate: an API key over TLS works, and nothing at all is refused.
    let keys = std::fs::read_to_string(data.join("api-keys.txt")).unwrap();
    let key = keys
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[0] == "130000")
        .map(|f| f[2].to_owned())
        .unwrap();
    let (status, body) = tls_get(&api, None, &hebei_client, "/v1/chain", Some(&key));
    assert_eq!(status, 200, "{body}");
    let (status, body) = tls_get(&api, None, &hebei_client, "/v1/chain", None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "api.missing_api_key", "{body}");

    // The CLI speaks TLS to it, trusting the consortium root given by --ca-file.
    let root = data.join("ca/ca/root.pem");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(args)
            .env("FISCUS_API", format!("https://{api}"))
            .env("FISCUS_API_KEY", &key)
            .env_remove("FISCUS_CA_FILE")
            .output()
            .unwrap()
    };
    let out = cli(&["status", "--json", "--ca-file", root.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["height"].is_u64(), "{st}");
    let out = cli(&["status", "--json"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ca_file"),
        "{out:?}"
    );

    // ALPN advertises only what is served (HTTP/1.1): a client that offers
    // only h2 is refused at the handshake, and the server keeps serving.
    let h2_only = Command::new("openssl")
        .args(["s_client", "-connect", &api, "-alpn", "h2", "-brief"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed");
    let said = String::from_utf8_lossy(&h2_only.stderr).to_string()
        + &String::from_utf8_lossy(&h2_only.stdout);
    assert!(
        said.contains("no application protocol") || said.contains("alert number 120"),
        "an h2-only client must get no_application_protocol: {said}"
    );
    let http11 = Command::new("openssl")
        .args(["s_client", "-connect", &api, "-alpn", "http/1.1", "-brief"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&http11.stderr).to_string();
    assert!(
        said.contains("CONNECTION ESTABLISHED") && !said.contains("alert"),
        "an http/1.1 client completes the handshake: {said}"
    );
    let (status, _) = tls_get(&api, None, &hebei_client, "/v1/chain", Some(&key));
    assert_eq!(status, 200, "still serving after the h2-only client");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut s = TcpStream::connect(&api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(b"GET /v1/chain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        !String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"),
        "plain HTTP was served"
    );
}
