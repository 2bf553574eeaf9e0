//! The exchange-adapter's org registry is the chain's: when governance adds an
//! org, the API's disclosure policy (and its submit checks, which use the same
//! registry) see it without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod devnet_support;

use devnet_support::*;
use fiscus_proto::pb::governance::{
    GovernanceCall, Proposal, ProposeArgs, UpsertOrg, VoteArgs, governance_call, proposal::Change,
};
use fiscus_proto::pb::types::{Org, OrgLevel, tx_payload::Call};
use prost::Message;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// A governance call signed by member `m`'s client certificate.
fn governance(data: &Path, m: &str, nonce: u64, method: governance_call::Method) -> Vec<u8> {
    signed_call(
        data,
        m,
        nonce,
        Call::Governance(GovernanceCall {
            method: Some(method),
        }),
    )
}

/// Submits a client-signed envelope as member `m` and waits for its receipt.
fn submit(net: &Net, m: &str, envelope: &[u8]) -> serde_json::Value {
    let (addr, key, _) = net.api(m);
    let body = json!({ "envelope": b64(envelope) }).to_string();
    let r = call(
        addr,
        "POST",
        "/v1/transactions?wait=commit",
        Some(key),
        Some(&body),
        &[],
    );
    assert_eq!(r.0, 200, "{m}: {:?}", r.2);
    assert_eq!(r.2["receipt"]["status"], "valid", "{m}: {:?}", r.2);
    r.2
}

#[test]
fn an_org_added_by_governance_reaches_the_api_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let _devnet = Devnet::start(&data);
    let net = Net::read(&data);
    let (sjz, sjz_key, _) = net.api("130100");
    let read = || {
        call(
            sjz,
            "GET",
            "/v1/accounts/130199/t-edu",
            Some(sjz_key),
            None,
            &[],
        )
    };

    // 130199 is not in the registry: to the disclosure policy it is not below
    // Shijiazhuang, so Shijiazhuang may not read its accounts.
    problem(read(), 403, "api.not_disclosed");

    // Governance adds it as a county under Shijiazhuang: proposed by the MOF,
    // voted by Hebei and Shijiazhuang (3 of the 5 members).
    let propose = governance(
        &data,
        "000000",
        9_001,
        governance_call::Method::Propose(ProposeArgs {
            proposal: Some(Proposal {
                title: "a new county under Shijiazhuang".into(),
                change: Some(Change::UpsertOrg(UpsertOrg {
                    org: Some(Org {
                        code: "130199".into(),
                        name: "Test County Finance Bureau 测试县财政局".into(),
                        level: OrgLevel::County as i32,
                        parent: "130100".into(),
                    }),
                })),
            }),
        }),
    );
    let proposal_id = fiscus_proto::hash::tx_id(
        &fiscus_proto::pb::types::Envelope::decode(&propose[..])
            .unwrap()
            .payload,
    );
    submit(&net, "000000", &propose);
    for (m, nonce) in [("130000", 9_002), ("130100", 9_003)] {
        let vote = governance(
            &data,
            m,
            nonce,
            governance_call::Method::Vote(VoteArgs {
                proposal_tx_id: proposal_id.to_vec(),
                approve: true,
            }),
        );
        submit(&net, m, &vote);
    }

    // The adapter follows gov/config: within a few of its polls, the account
    // read is no longer refused by the disclosure policy (the account does not
    // exist yet, so the answer is 404).
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = read();
        if r.0 != 403 {
            problem(r, 404, "api.not_found");
            break;
        }
        assert!(
            Instant::now() < until,
            "the adapter still refuses after 30 s: {:?}",
            r.2
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
