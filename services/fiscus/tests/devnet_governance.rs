//! Governance through the exchange-adapter's REST API and the CLI, on a
//! running `fiscus devnet`: a member proposes that a finance bureau join,
//! the others vote (custodially and with a client-signed envelope) until it
//! passes, and the configuration shows it from the next block; a member is
//! voted out and can no longer propose. Every bad input is refused with the
//! contract's code before anything is ordered, and leaves the chain as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_proto::pb::governance::{GovernanceCall, VoteArgs, governance_call};
use fiscus_proto::pb::types::tx_payload::Call;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod devnet_support;
use devnet_support::*;

fn post(addr: &str, key: &str, path: &str, body: &Value) -> (u16, String, Value) {
    call(addr, "POST", path, Some(key), Some(&body.to_string()), &[])
}

fn height(net: &Net) -> u64 {
    net.chain("130000")["height"].as_u64().unwrap()
}

/// Asserts a committed, valid submission; returns its block.
fn committed(r: (u16, String, Value)) -> (String, u64) {
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert!(
        r.2["state"] == "committed" || r.2["state"] == "final",
        "{:?}",
        r.2
    );
    assert_eq!(r.2["receipt"]["status"], "valid", "{:?}", r.2);
    (
        r.2["tx_id"].as_str().unwrap().to_owned(),
        r.2["block_number"].as_u64().unwrap(),
    )
}

fn vote_custodial(net: &Net, m: &str, id: &str, approve: bool) -> (u16, String, Value) {
    let (addr, key, _) = net.api(m);
    post(
        addr,
        key,
        &format!("/v1/governance/proposals/{id}/votes?wait=commit"),
        &json!({"approve": approve}),
    )
}

/// `fiscus identity-ca secrets` against the devnet's CA as the identity in
/// `tls_dir`: the exit code, stdout and stderr.
fn ca_secrets(data: &Path, tls_dir: &Path, member: &str) -> (Option<i32>, String, String) {
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args([
            "identity-ca",
            "secrets",
            "--ca",
            layout["ca_grpc"].as_str().unwrap(),
        ])
        .arg("--ca-cert")
        .arg(data.join("ca/ca/root.pem"))
        .arg("--tls-dir")
        .arg(tls_dir)
        .args(["--member", member])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asks for `member`'s secrets until the CA's answer contains `want` (the CA
/// re-reads the chain's member list every second), within 60 s.
fn ca_secrets_until(data: &Path, member: &str, want: &str) -> (Option<i32>, String, String) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let r = ca_secrets(data, &data.join("member-000000/admin"), member);
        if r.1.contains(want) || r.2.contains(want) {
            return r;
        }
        assert!(
            Instant::now() < until,
            "the CA never answered {want:?}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn add_baoding() -> Value {
    json!({"title": "保定市财政局加入联盟", "change": {
        "kind": "add_member",
        "org": {"code": "130600", "name": "保定市财政局", "level": "municipal", "parent": "130000"},
        "member": {"org_code": "130600", "gossip_endpoints": ["https://127.0.0.1:9"],
                   "roles": ["node", "client", "admin"], "allowed_names": ["127.0.0.1", "localhost"]}}})
}

#[test]
fn members_propose_and_vote_through_the_api_and_bad_input_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("devnet");
    let _devnet = Devnet::start(&data);
    let net = Net::read(&data);
    let (hebei, hebei_key, hebei_read) = net.api("130000");
    let proposals = "/v1/governance/proposals?wait=commit";

    // Bad input, refused before ordering.
    let h0 = height(&net);
    problem(
        post(hebei, hebei_read, proposals, &add_baoding()),
        403,
        "api.scope_not_granted",
    );
    problem(
        post(
            hebei,
            hebei_key,
            proposals,
            &json!({"title": "x", "change": {"kind": "remove_member", "org_code": "130600", "reason": "not one"}}),
        ),
        400,
        "governance.invalid_proposal",
    );
    let mut bad_level = add_baoding();
    bad_level["change"]["org"]["level"] = json!("town");
    problem(
        post(hebei, hebei_key, proposals, &bad_level),
        400,
        "governance.invalid_proposal",
    );
    let mut both = add_baoding();
    both["envelope"] = json!(b64(&signed_allocation(&data, 1)));
    problem(
        post(hebei, hebei_key, proposals, &both),
        400,
        "api.invalid_body",
    );
    // A transfer is not a proposal, even when signed by the caller's org.
    let (mof, mof_key, _) = net.api("000000");
    problem(
        post(
            mof,
            mof_key,
            proposals,
            &json!({"envelope": b64(&signed_allocation(&data, 2))}),
        ),
        400,
        "governance.invalid_proposal",
    );
    problem(
        vote_custodial(&net, "130100", &"ab".repeat(32), true),
        422,
        "governance.unknown_proposal",
    );
    // Unknown fields are refused, not ignored.
    problem(
        post(
            hebei,
            hebei_key,
            proposals,
            &json!({"title": "x", "change": {"kind": "update_policy", "policy": {"numerator": 2, "denominator": 3, "quorum": 1}}}),
        ),
        400,
        "api.invalid_body",
    );
    assert_eq!(
        height(&net),
        h0,
        "a refused governance call changed the chain"
    );

    // The CA certifies only members the chain lists: Baoding is not one yet.
    let (code, _, stderr) = ca_secrets(&data, &data.join("member-000000/admin"), "130600");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ca.unknown_member"), "{stderr}");
    // Only the CA's operator (an admin of 000000) issues secrets.
    let (code, _, stderr) = ca_secrets(&data, &data.join("member-000000/client"), "130000");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ca.permission_denied"), "{stderr}");

    // Hebei proposes; it votes yes with it.
    let (id, proposed_in) = committed(post(hebei, hebei_key, proposals, &add_baoding()));
    let r = call(
        hebei,
        "GET",
        "/v1/governance/proposals?status=open",
        Some(hebei_read),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["total"], 1, "{:?}", r.2);
    let p = &r.2["items"][0];
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["status"], "open");
    assert_eq!(p["proposer_org"], "130000");
    assert_eq!(p["yes"], json!(["130000"]));
    assert_eq!(
        p["not_voted"],
        json!(["000000", "130100", "130102", "991300"])
    );
    assert_eq!(p["votes_needed"], 3, "a strict majority of five");
    assert_eq!(p["change"]["kind"], "add_member");
    assert_eq!(p["change"]["org"]["name"], "保定市财政局");

    // A member votes once.
    let h1 = height(&net);
    problem(
        vote_custodial(&net, "130000", &id, false),
        422,
        "governance.already_voted",
    );
    // MOF votes with an envelope its own client certificate signed.
    let proposal_tx_id = hex::decode(&id).unwrap();
    let vote = |approve: bool, nonce: u64| {
        signed_call(
            &data,
            "000000",
            nonce,
            Call::Governance(GovernanceCall {
                method: Some(governance_call::Method::Vote(VoteArgs {
                    proposal_tx_id: proposal_tx_id.clone(),
                    approve,
                })),
            }),
        )
    };
    problem(
        post(
            mof,
            mof_key,
            &format!("/v1/governance/proposals/{}/votes", "cd".repeat(32)),
            &json!({"envelope": b64(&vote(true, 7))}),
        ),
        400,
        "governance.invalid_proposal",
    );
    assert_eq!(height(&net), h1, "a refused vote changed the chain");
    committed(post(
        mof,
        mof_key,
        &format!("/v1/governance/proposals/{id}/votes?wait=commit"),
        &json!({"envelope": b64(&vote(true, 8))}),
    ));
    committed(vote_custodial(&net, "130100", &id, false));
    let (changan_vote, passed_in) = committed(vote_custodial(&net, "130102", &id, true));

    let r = call(
        hebei,
        "GET",
        &format!("/v1/governance/proposals/{id}"),
        Some(hebei_read),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["status"], "passed", "{:?}", r.2);
    assert_eq!(r.2["yes"], json!(["000000", "130000", "130102"]));
    assert_eq!(r.2["no"], json!(["130100"]));
    assert_eq!(r.2["decided_height"], passed_in);
    problem(
        vote_custodial(&net, "991300", &id, true),
        422,
        "governance.proposal_closed",
    );

    // The configuration before and after.
    let config = |q: &str| {
        let r = call(
            hebei,
            "GET",
            &format!("/v1/governance/config{q}"),
            Some(hebei_read),
            None,
            &[],
        );
        assert_eq!(r.0, 200, "{:?}", r.2);
        r.2
    };
    let now = config("");
    assert_eq!(now["version"], 2, "{now:?}");
    assert_eq!(now["changed_at_height"], passed_in);
    assert_eq!(now["votes_needed"], 4, "a strict majority of six");
    let members: Vec<&str> = now["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["org_code"].as_str().unwrap())
        .collect();
    assert!(members.contains(&"130600"), "{members:?}");
    let before = config(&format!("?height={proposed_in}"));
    assert_eq!(before["version"], 1);
    assert_eq!(before["members"].as_array().unwrap().len(), 5);
    problem(
        call(
            hebei,
            "GET",
            "/v1/governance/config?height=0",
            Some(hebei_read),
            None,
            &[],
        ),
        400,
        "api.bad_query",
    );

    // Voted in: the CA issues Baoding's secrets, and one enrolls its node.
    let (code, stdout, stderr) = ca_secrets_until(&data, "130600", "\"secret\"");
    assert_eq!(code, Some(0), "{stderr}");
    let secrets: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let roles: Vec<&str> = secrets
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["node", "admin", "client"], "{secrets:?}");
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let node_dir = tmp.path().join("baoding-node");
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["enroll", "--ca", layout["ca_grpc"].as_str().unwrap()])
        .arg("--ca-cert")
        .arg(data.join("ca/ca/root.pem"))
        .args(["--member", "130600", "--role", "node", "--ip", "127.0.0.1"])
        .args(["--secret", secrets[0]["secret"].as_str().unwrap()])
        .arg("--out")
        .arg(&node_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(node_dir.join("cert.pem").exists());

    // Chang'an is voted out (four of six needed), and cannot propose again.
    let (out, _) = committed(post(
        hebei,
        hebei_key,
        proposals,
        &json!({"title": "长安区财政局退出联盟", "change": {"kind": "remove_member", "org_code": "130102", "reason": "撤并 merged"}}),
    ));
    committed(vote_custodial(&net, "000000", &out, true));
    committed(vote_custodial(&net, "130100", &out, true));
    let (_, removed_in) = committed(vote_custodial(&net, "991300", &out, true));
    let now = config("");
    assert_eq!(now["version"], 3);
    assert_eq!(
        now["revoked_orgs"],
        json!([{"org_code": "130102", "reason": "撤并 merged", "effective_height": removed_in + 1}])
    );
    let (changan, changan_key, _) = net.api("130102");
    let h2 = height(&net);
    problem(
        post(
            changan,
            changan_key,
            proposals,
            &json!({"title": "x", "change": {"kind": "remove_member", "org_code": "130100", "reason": "y"}}),
        ),
        403,
        "governance.not_member",
    );
    assert_eq!(height(&net), h2);
    // Nor can it get certificates again.
    let (code, _, stderr) = ca_secrets_until(&data, "130102", "ca.unknown_member");
    assert_eq!(code, Some(2), "{stderr}");
    // An envelope its client certificate signed is refused before ordering,
    // with the code the ledger gives it, at its own adapter and at Hebei's.
    let env = signed_call(
        &data,
        "130102",
        77,
        Call::Governance(GovernanceCall {
            method: Some(governance_call::Method::Vote(VoteArgs {
                proposal_tx_id: proposal_tx_id.clone(),
                approve: true,
            })),
        }),
    );
    // (An adapter reads the chain's config every second; until it has read
    // this one another check refuses the vote.)
    for (addr, key) in [(changan, changan_key), (hebei, hebei_key)] {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let r = post(
                addr,
                key,
                "/v1/transactions?wait=commit",
                &json!({"envelope": b64(&env)}),
            );
            assert_eq!(r.0, 403, "{:?}", r.2);
            if r.2["code"] == "tx.revoked_certificate" {
                break;
            }
            // Refused for another reason meanwhile: the contract's check, or
            // (at Hebei's) the envelope is not Hebei's.
            assert!(
                r.2["code"] == "governance.not_member" || r.2["code"] == "api.wrong_org",
                "{:?}",
                r.2
            );
            assert!(Instant::now() < until, "{:?}", r.2);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(height(&net), h2);
    // Its past transactions stay readable and provable: its vote, final by
    // the members of its day, with the config at that height (a later one
    // would count Baoding, who joined after it; docs/receipts.md §9).
    let r = call(
        hebei,
        "GET",
        &format!("/v1/transactions/{changan_vote}?proof=final"),
        Some(hebei_key),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    assert_eq!(r.2["receipt"]["status"], "valid", "{:?}", r.2);
    let proof = tmp.path().join("changan-vote.b64");
    std::fs::write(&proof, r.2["receipt_proof"].as_str().unwrap()).unwrap();
    let cfg = tmp.path().join("config-then.b64");
    std::fs::write(
        &cfg,
        // In force for block h: the state after block h - 1.
        config(&format!("?height={}", passed_in - 1))["config_protobuf"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let (code, v) = verify_receipt(&data, &proof, None, Some(&cfg));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["final"], true, "{v}");
    assert_eq!(v["tx_id"], changan_vote, "{v}");
    assert!(
        v["members"].as_array().unwrap().contains(&json!("130102")),
        "a member at that height: {v}"
    );

    // The CLI reads the same, as tables and as JSON.
    let (addr, key, _) = net.api("130100");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .arg("governance")
            .args(args)
            .env("FISCUS_API", format!("http://{addr}"))
            .env("FISCUS_API_KEY", key)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = cli(&["proposals", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list["total"], 2, "{list:?}");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "passed")
    );
    let (code, stdout, stderr) = cli(&["config"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("version 3"), "{stdout}");
    assert!(stdout.contains("130600 保定市财政局"), "{stdout}");
    assert!(stdout.contains("left: 130102"), "{stdout}");
    // A refusal is the command's failure, with the contract's code.
    let (code, _, stderr) = cli(&["vote", &id, "--yes"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("governance.proposal_closed"), "{stderr}");

    // The same reads over the adapter's gRPC API (a client certificate).
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let grpc = layout["members"][0]["grpc"].as_str().unwrap().to_owned();
    let rest = config("");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use fiscus_proto::pb::exchange::{ConfigRequest, ProposalsRequest};
        let mut c = exchange_client(&grpc, &data.join("member-000000/client")).await;
        let cfg = c
            .get_config(ConfigRequest { height: 0 })
            .await
            .unwrap()
            .into_inner();
        let members: Vec<String> = cfg
            .config
            .unwrap()
            .members
            .iter()
            .map(|m| m.org_code.clone())
            .collect();
        assert!(
            members.contains(&"130600".to_owned()) && !members.contains(&"130102".to_owned()),
            "{members:?}"
        );
        assert_eq!(cfg.votes_needed, rest["votes_needed"].as_u64().unwrap());
        assert_eq!(
            cfg.changed_at_height,
            rest["changed_at_height"].as_u64().unwrap()
        );
        let list = c
            .list_proposals(ProposalsRequest {
                status: "passed".into(),
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.total, 2);
        assert!(list.items.iter().any(|p| hex::encode(&p.tx_id) == id));
        let e = c
            .list_proposals(ProposalsRequest {
                status: "nope".into(),
                limit: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(
            e.metadata()
                .get("fiscus-error-code")
                .and_then(|v| v.to_str().ok()),
            Some("api.bad_query")
        );
    });
}

/// `fiscus devnet add-member`: Baoding (130600) joins a running devnet (every
/// service its own process) by proposal, votes, enrollment and its own
/// `fiscus member` process, which catches up from genesis and attests. Its
/// certificates are on no other member's file: what it signs carries them,
/// and every member accepts its transactions; the chain stays final with six
/// members. With two founding members silenced, a block is final only with
/// Baoding's attestation, and its receipt verifies offline.
#[test]
fn a_bureau_joins_a_running_devnet_catches_up_and_its_signatures_count() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("devnet");
    // Every service its own process, as in production; Baoding's services
    // are one `fiscus member` process.
    let devnet = Devnet::start_with(&data, &["--processes"]);
    let net = Net::read(&data);
    // Some history to catch up on: more blocks than a gateway tracks in
    // memory after a restart (64), so that the founding members answer the
    // newcomer's requests for old attestations from the majorities their
    // ledgers kept.
    let (mof, mof_key, _) = net.api("000000");
    for i in 1..=70 {
        let mut op: Value = serde_json::from_str(&appropriate("财预〔2026〕1号", 1_000)).unwrap();
        op["document"] = json!(format!("财预〔2026〕{i}号"));
        committed(post(mof, mof_key, "/v1/operations?wait=commit", &op));
    }
    assert!(height(&net) >= 70);
    let until = Instant::now() + Duration::from_secs(60);
    while net.chain("130000")["final_height"].as_u64().unwrap() < 70 {
        assert!(Instant::now() < until, "the history never became final");
        std::thread::sleep(Duration::from_millis(100));
    }
    devnet.interrupt();
    let _devnet = Devnet::start_with(&data, &["--processes"]);
    let net = Net::read(&data);
    let (hebei, hebei_key, _) = net.api("130000");
    let (mof, mof_key, _) = net.api("000000");

    let mut add = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["devnet", "add-member", "--data-dir"])
        .arg(&data)
        .args(["--code", "130600", "--name", "保定市财政局"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(tmp.path().join("add-member.stderr")).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
    let stdout = add.stdout.take().unwrap();
    let add = Kill(add);
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let done = line.starts_with("Serving until");
        printed.push(line);
        if done {
            break;
        }
    }
    let err = std::fs::read_to_string(tmp.path().join("add-member.stderr")).unwrap_or_default();
    for step in ["1. ", "2. ", "3. ", "4. ", "5. ", "6. "] {
        assert!(
            printed.iter().any(|l| l.starts_with(step)),
            "step {step} missing: {printed:#?}\n{err}"
        );
    }
    let net = Net::read(&data);
    let (baoding, baoding_key, _) = net.api("130600");

    // Caught up: the same chain as Hebei's.
    let hebei_chain = net.chain("130000");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let ours = net.chain("130600");
        if ours["height"] == hebei_chain["height"] {
            assert_eq!(ours["state_hash"], hebei_chain["state_hash"]);
            assert_eq!(ours["last_block_hash"], hebei_chain["last_block_hash"]);
            break;
        }
        assert!(Instant::now() < until, "130600 did not catch up: {ours:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Baoding signs a governance proposal with its new client certificate
    // (custodial: its adapter has no file of it either, so the envelope
    // carries it); the orderers admit it and every member's ledger accepts it.
    let (tx, block) = committed(post(
        baoding,
        baoding_key,
        "/v1/governance/proposals?wait=final",
        &json!({"title": "保定市建议调整确认期限", "change": {"kind": "update_deadline_policy",
                "policy": {"emergency_days": 10, "acknowledge_days": 15}}}),
    ));
    for m in ["000000", "130000", "130100", "130102", "991300"] {
        let (addr, key, _) = net.api(m);
        wait_committed(addr, key, &tx, "Baoding's proposal");
        let r = call(
            addr,
            "GET",
            &format!("/v1/transactions/{tx}"),
            Some(key),
            None,
            &[],
        );
        assert_eq!(r.2["receipt"]["status"], "valid", "at {m}: {:?}", r.2);
    }
    let r = call(
        hebei,
        "GET",
        &format!("/v1/governance/proposals/{tx}"),
        Some(hebei_key),
        None,
        &[],
    );
    assert_eq!(r.2["proposer_org"], "130600", "{:?}", r.2);
    assert_eq!(r.2["votes_needed"], 4, "a majority of six");
    // Final everywhere: six members, four attestations needed.
    let until = Instant::now() + Duration::from_secs(60);
    while net.chain("130000")["final_height"].as_u64().unwrap() < block {
        assert!(
            Instant::now() < until,
            "block {block} never became final at 130000"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Two founding members fall silent (their ledger-stores stopped with
    // SIGSTOP): of six members four must agree, and only four are left, so
    // a block is final only with Baoding's attestation counted.
    let _silent = Stopped::new(
        &data,
        &["member-130100-ledger-store", "member-130102-ledger-store"],
    );
    let (tx, block) = committed(post(mof, mof_key, "/v1/operations?wait=final", &{
        let mut op: Value = serde_json::from_str(&appropriate("财预〔2026〕1号", 500_000)).unwrap();
        op["document"] = json!("财预〔2026〕100号");
        op
    }));
    let r = call(
        mof,
        "GET",
        &format!("/v1/transactions/{tx}?proof=final"),
        Some(mof_key),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    let proof = tmp.path().join("receipt.b64");
    std::fs::write(&proof, r.2["receipt_proof"].as_str().unwrap()).unwrap();
    // The configuration at that block, as the chain has it (six members).
    let c = call(
        mof,
        "GET",
        &format!("/v1/governance/config?height={block}"),
        Some(mof_key),
        None,
        &[],
    );
    assert_eq!(c.0, 200, "{:?}", c.2);
    let config = tmp.path().join("config.b64");
    std::fs::write(&config, c.2["config_protobuf"].as_str().unwrap()).unwrap();
    // Verified offline by `fiscus verify-receipt` and by the independent
    // Python verifier, with a certificates directory that has no file of
    // Baoding's: its attestation carries its certificate.
    for (who, (code, v)) in [
        (
            "fiscus verify-receipt",
            verify_receipt(&data, &proof, None, Some(&config)),
        ),
        (
            "verify_receipt.py",
            verify_receipt_py(&data, &proof, &config, None),
        ),
    ] {
        assert_eq!(code, Some(0), "{who}: {v}");
        assert_eq!(v["final"], true, "{who}: {v}");
        assert_eq!(v["block_number"], block, "{who}: {v}");
        assert_eq!(v["majority"], 4, "{who}: {v}");
        assert_eq!(v["members"].as_array().unwrap().len(), 6, "{who}: {v}");
        assert_eq!(
            v["attested_by"],
            json!(["000000", "130000", "130600", "991300"]),
            "{who}: the silent members cannot have attested, so Baoding's attestation made it final: {v}"
        );
    }
    drop(add);
}

/// Processes of a `--processes` devnet stopped with SIGSTOP, continued on drop.
struct Stopped(Vec<nix::unistd::Pid>);

impl Stopped {
    fn new(data: &Path, names: &[&str]) -> Self {
        let status: Value =
            serde_json::from_slice(&std::fs::read(data.join("run/status.json")).unwrap()).unwrap();
        let pids = names
            .iter()
            .map(|n| {
                let p = status["processes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == *n)
                    .unwrap_or_else(|| panic!("no process {n}: {status}"));
                nix::unistd::Pid::from_raw(p["pid"].as_u64().unwrap() as i32)
            })
            .collect::<Vec<_>>();
        for p in &pids {
            nix::sys::signal::kill(*p, nix::sys::signal::Signal::SIGSTOP).unwrap();
        }
        Self(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = nix::sys::signal::kill(*p, nix::sys::signal::Signal::SIGCONT);
        }
    }
}
