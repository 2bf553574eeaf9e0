//! `fiscus devnet` as a process, driven through the exchange-adapters' REST
//! API: submit → committed and final at every member → the receipt proof
//! verifies offline with `fiscus verify-receipt`; each bad input gets a
//! problem+json answer and writes nothing; idempotent retries; the OpenAPI
//! document matches the routes; a restart resumes the chain.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use base64::Engine as _;
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::cert_id;
use fiscus_proto::pb::types::TxPayload;
use fiscus_proto::sign::SigningKey;
use prost::Message;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod devnet_support;
use devnet_support::*;

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
                .replace("{id}", "1")
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
            "GET /v1/governance/config",
            "GET /v1/governance/proposals",
            "GET /v1/governance/proposals/{tx_id}",
            "GET /v1/imports/template",
            "GET /v1/programs",
            "GET /v1/trace/{tx_id}",
            "GET /v1/transactions/{tx_id}",
            "GET /v1/webhooks/dead-letters",
            "POST /v1/governance/proposals",
            "POST /v1/governance/proposals/{tx_id}/votes",
            "POST /v1/imports",
            "POST /v1/operations",
            "POST /v1/transactions",
            "POST /v1/webhooks/dead-letters/{id}/ack",
            "POST /v1/webhooks/dead-letters/{id}/replay",
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

    for m in net.members.keys() {
        let until = Instant::now() + Duration::from_secs(60);
        while net.chain(m)["height"].as_u64().unwrap() < block {
            assert!(Instant::now() < until, "{m} did not reach block {block}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    receipts_prove_finality_to_a_third_party(&net, &data, dir.path(), &tx);

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
    // Rows as Excel numbers them: the header is row 1.
    assert_eq!(rows, [3, 4, 5], "{:?}", r.2);
    assert_eq!(
        r.2["detail"]
            .as_str()
            .map(|d| d.contains("3 of 4 rows are invalid")),
        Some(true),
        "counts are of rows: {:?}",
        r.2
    );
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
    wait_committed(hebei, hebei_key, &last_tx, "the imported rows");
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
        message.starts_with("import.external_id_conflict"),
        "{message}"
    );
    assert_eq!(received(&net) - before_import, 123);

    // A CSV saved by Excel on Chinese Windows: GB18030, Chinese headers,
    // 元 with a currency sign, CRLF, and comma-only rows left behind.
    let zh = "外部编号,业务类型,付款单位代码,项目编号,金额（元）,收款单位代码,文号\r\n\
              Z1,下达,000000,t-edu,¥900.05,130000,财预〔2026〕99号\r\n,,,,,,\r\n,,,,,,\r\n";
    let (gbk, _, lossy) = encoding_rs::GB18030.encode(zh);
    assert!(!lossy && std::str::from_utf8(&gbk).is_err());
    let r = call_bytes(
        mof,
        "POST",
        "/v1/imports?format=csv",
        Some(mof_key),
        &gbk,
        &[],
    );
    assert_eq!(
        (r.0, r.2["submitted"].clone()),
        (200, json!(1)),
        "{:?}",
        r.2
    );
    assert_eq!(r.2["results"][0]["row"], json!(2), "{:?}", r.2);
    let z1 = r.2["results"][0]["tx_id"].as_str().unwrap().to_owned();
    wait_committed(hebei, hebei_key, &z1, "the GB18030 row");
    assert_eq!(
        received(&net) - before_import,
        123 + 90_005,
        "¥900.05 is 90005 fen, exactly"
    );
    let export = call(
        mof,
        "GET",
        "/v1/exports/allocations?format=json",
        Some(mof_read),
        None,
        &[],
    );
    assert!(
        export.2.to_string().contains("财预〔2026〕99号"),
        "the Chinese document number comes back unchanged: {:?}",
        export.2
    );

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
    let text = body.as_str().unwrap();
    assert!(text.contains(&last_tx));
    // For Excel on Chinese Windows: a UTF-8 byte-order mark and CRLF, unless asked not to.
    assert!(
        text.starts_with('\u{feff}') && text.contains("\r\n"),
        "{text:?}"
    );
    let (_, _, plain) = call(
        mof,
        "GET",
        "/v1/exports/allocations?format=csv&excel=false",
        Some(mof_read),
        None,
        &[],
    );
    let plain = plain.as_str().unwrap();
    assert!(
        !plain.starts_with('\u{feff}') && !plain.contains('\r'),
        "{plain:?}"
    );

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
    for (n, row) in [(3, "I2"), (4, "I3"), (5, "I4")] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(row) && l.trim_start().starts_with(&n.to_string())),
            "{row} is reported as Excel's row {n}: {table}"
        );
    }
    // A GB18030 file with a bad cell is refused by the CLI before it is sent,
    // naming the row as Excel shows it, the column as the file spells it, and
    // the value.
    let (gbk_bad, _, _) = encoding_rs::GB18030.encode(
        "外部编号,业务类型,付款单位代码,项目编号,金额（元）,收款单位代码,文号\r\n\
         Z9,下达,000000,t-edu,1.234,130000,财预〔2026〕98号\r\n",
    );
    let gbk_file = dir.path().join("gbk-bad.csv");
    std::fs::write(&gbk_file, &gbk_bad).unwrap();
    let out = cli(&["import", gbk_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.trim_start().starts_with('2')
            && l.contains("Z9")
            && l.contains("金额（元）")
            && l.contains("1.234")),
        "{table}"
    );
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
        let mut mof_client = exchange_client(&grpc, &data.join("member-000000/client")).await;
        let ok_env =
            fiscus_proto::pb::types::Envelope::decode(&signed_allocation(&data, 77)[..]).unwrap();
        let ok_id = fiscus_proto::hash::tx_id(&ok_env.payload).to_vec();
        // Signed with Hebei's client key: the wrong org for this caller.
        let (hkey, hid) = signer(&data.join("member-130000/client"));
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
        let mut node_client = exchange_client(&grpc, &data.join("member-000000/node-tls")).await;
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

    // A keep-alive connection authenticated by a client certificate that is
    // revoked afterwards: its next requests are refused (401), not served.
    let changan_client = data.join("member-130102/client");
    let mut conn = keep_alive_tls(&api, &changan_client);
    assert_eq!(conn.get("/v1/chain").0, 200);
    revoke_own_certificate(
        &data,
        &changan_client,
        "keyCompromise: REST keep-alive test",
    );
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = conn.get("/v1/chain");
        if status == 401 {
            assert_eq!(body["code"], "api.certificate_revoked", "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < until,
            "the revoked certificate's open REST connection is still served after 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One HTTP/1.1 keep-alive connection over TLS with a client certificate.
struct KeepAlive(
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    String,
);

fn keep_alive_tls(addr: &str, client_dir: &Path) -> KeepAlive {
    use fiscus_common::tls::{TlsConfig, TlsContext};
    let mut config = (*TlsContext::load(&TlsConfig::in_dir(client_dir))
        .unwrap()
        .client_config()
        .unwrap())
    .clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    KeepAlive(rustls::StreamOwned::new(conn, sock), addr.to_owned())
}

impl KeepAlive {
    /// GET on the same connection; reads exactly one response (Content-Length).
    fn get(&mut self, path: &str) -> (u16, Value) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.1);
        self.0.write_all(req.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.0.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a Content-Length");
        let mut body = vec![0u8; len];
        self.0.read_exact(&mut body).unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// A crafted receipt: what, the proof, a certs dir and a config instead of
/// the devnet's, and the verdict expected.
type Crafted = (
    &'static str,
    fiscus_proto::pb::types::ReceiptProof,
    Option<std::path::PathBuf>,
    Option<std::path::PathBuf>,
    &'static str,
);

/// A node key and certificate id of member `m` in the devnet.
fn node_signer(data: &Path, m: &str) -> (SigningKey, Vec<u8>) {
    let (key, id) = signer(&data.join(format!("member-{m}/node-tls")));
    (key, id.to_vec())
}

fn sign_attestation(
    att: &fiscus_proto::pb::types::Attestation,
    key: &SigningKey,
    cert: &[u8],
) -> fiscus_proto::pb::types::SignedAttestation {
    let bytes = att.encode_to_vec();
    fiscus_proto::pb::types::SignedAttestation {
        signature: Some(fiscus_proto::pb::types::Signature {
            cert_id: cert.to_vec(),
            signature: key.sign(&bytes).to_vec(),
            certificate: Vec::new(),
        }),
        attestation: bytes,
    }
}

/// Issue 20 item 4: one member serves a receipt that proves finality, and the
/// verifier counts only agreeing, valid, unrevoked members of the consortium.
fn receipts_prove_finality_to_a_third_party(net: &Net, data: &Path, dir: &Path, tx: &str) {
    use fiscus_proto::pb::types::{Attestation, ReceiptProof};
    let (mof, _, mof_read) = net.api("000000");
    // ?proof=final: 409 api.not_final until a majority attested, then 200.
    let until = Instant::now() + Duration::from_secs(60);
    let t = loop {
        let t = call(
            mof,
            "GET",
            &format!("/v1/transactions/{tx}?proof=final"),
            Some(mof_read),
            None,
            &[],
        );
        if t.0 == 200 {
            break t;
        }
        assert_eq!(
            (t.0, t.2["code"].as_str()),
            (409, Some("api.not_final")),
            "{:?}",
            t.2
        );
        assert!(Instant::now() < until, "no finality receipt within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t.2["receipt_proof"].as_str().unwrap())
        .unwrap();
    let genuine = ReceiptProof::decode(&bytes[..]).unwrap();
    assert!(genuine.attestations.len() >= 3, "a majority of 5 members");
    let file = dir.join("receipt-final.pb");
    std::fs::write(&file, &bytes).unwrap();
    let (code, v) = verify_receipt(data, &file, None, None);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (v["valid"].clone(), v["final"].clone()),
        (json!(true), json!(true)),
        "{v}"
    );
    assert_eq!(v["tx_id"], tx);
    assert_eq!(v["members"].as_array().unwrap().len(), 5);
    assert_eq!(v["majority"], 3);
    assert!(v["attested_by"].as_array().unwrap().len() >= 3, "{v}");
    // The independent verifier (Python `cryptography`, built from
    // docs/receipts.md) agrees on the genuine receipt.
    let config = data.join("ca/consortium-config.pb");
    let (code, pv) = verify_receipt_py(data, &file, &config, None);
    assert_eq!(code, Some(0), "{pv}");
    assert_eq!(pv["final"], true, "{pv}");
    assert_eq!(pv["attested_by"], v["attested_by"], "{pv} vs {v}");

    // Without a config the receipt is valid but not proven final;
    // --require-final then exits 1.
    let (code, v) = verify_receipt(data, &file, None, Some(Path::new("")));
    assert_eq!(
        (code, v["valid"].clone(), v["final"].clone()),
        (Some(0), json!(true), json!(false)),
        "{v}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["verify-receipt", "--require-final", "--json", "--file"])
        .arg(&file)
        .arg("--root")
        .arg(data.join("ca/ca/root.pem"))
        .arg("--certs-dir")
        .arg(data.join("signers"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let write = |name: &str, p: &ReceiptProof| {
        let f = dir.join(name);
        std::fs::write(&f, p.encode_to_vec()).unwrap();
        f
    };
    let agreed: Attestation =
        Attestation::decode(&genuine.attestations[0].attestation[..]).unwrap();
    let members = ["000000", "130000", "130100", "130102", "991300"];
    let signed_by = |m: &str, att: &Attestation| {
        let (k, id) = node_signer(data, m);
        sign_attestation(
            &Attestation {
                member: m.into(),
                ..att.clone()
            },
            &k,
            &id,
        )
    };
    let two_genuine = || vec![signed_by("000000", &agreed), signed_by("130000", &agreed)];
    let mut crafted: Vec<Crafted> = Vec::new();

    // 1. The proof claims another position: leaf_index is bound to tx_index.
    let mut p = genuine.clone();
    let ip = p.proof.as_mut().unwrap();
    ip.leaf_index += 1;
    crafted.push(("leaf_index moved", p, None, None, "invalid"));
    // 2. tree_size is bound to the header's tx_count.
    let mut p = genuine.clone();
    p.proof.as_mut().unwrap().tree_size += 1;
    crafted.push(("tree_size changed", p, None, None, "invalid"));
    // 3. Two members that diverged (another state hash) are not two more
    //    confirmations: 2 agree + 2 disagree is not a majority of 5.
    let diverged = Attestation {
        state_hash: vec![0xee; 32],
        ..agreed.clone()
    };
    let mut atts = two_genuine();
    atts.push(signed_by("130100", &diverged));
    atts.push(signed_by("130102", &diverged));
    crafted.push((
        "diverging members counted",
        ReceiptProof {
            attestations: atts,
            ..genuine.clone()
        },
        None,
        None,
        "not_final",
    ));
    // 4. A certificate the root issued to a non-member (130200) counts for nothing.
    let ca = fiscus_identity_ca::ca::RootCa::load(&fiscus_identity_ca::ca::CaPaths::new(
        data.join("ca"),
    ))
    .unwrap();
    let extra = dir.join("signers-extra");
    std::fs::create_dir_all(&extra).unwrap();
    for e in std::fs::read_dir(data.join("signers")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), extra.join(e.file_name())).unwrap();
    }
    let issue = |member: &str, spec: fiscus_identity_ca::ca::LeafSpec, name: &str| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let issued = ca.issue_for_key(&key, &spec).unwrap();
        std::fs::write(extra.join(format!("{name}.pem")), issued.pem.as_bytes()).unwrap();
        let sk = SigningKey::from_pkcs8_pem(&key.serialize_pem()).unwrap();
        let id = cert_id(&issued.der);
        let _ = member;
        (sk, id.to_vec())
    };
    let role = fiscus_proto::pb::types::Role::Node;
    let (sk, id) = issue(
        "130200",
        fiscus_identity_ca::ca::LeafSpec::valid_for_days("130200", role, 30),
        "node-130200",
    );
    let mut atts = two_genuine();
    atts.push(sign_attestation(
        &Attestation {
            member: "130200".into(),
            ..agreed.clone()
        },
        &sk,
        &id,
    ));
    crafted.push((
        "non-member counted",
        ReceiptProof {
            attestations: atts,
            ..genuine.clone()
        },
        Some(extra.clone()),
        None,
        "not_final",
    ));
    // 5. An expired signer certificate (a second node certificate of 130100,
    //    valid only before the block) counts for nothing.
    let mut spec = fiscus_identity_ca::ca::LeafSpec::valid_for_days("130100", role, 1);
    spec.not_after = spec.not_before - time::Duration::days(1);
    spec.not_before -= time::Duration::days(30);
    let (sk, id) = issue("130100", spec, "node-130100-expired");
    let mut atts = two_genuine();
    atts.push(sign_attestation(
        &Attestation {
            member: "130100".into(),
            ..agreed.clone()
        },
        &sk,
        &id,
    ));
    crafted.push((
        "expired signer counted",
        ReceiptProof {
            attestations: atts,
            ..genuine.clone()
        },
        Some(extra.clone()),
        None,
        "not_final",
    ));
    // 6. A signer revoked (in the config's CRL) at or before the height counts for nothing.
    let mut cfg =
        fiscus_proto::pb::types::ConsortiumConfig::decode(&std::fs::read(&config).unwrap()[..])
            .unwrap();
    let (_, revoked_id) = node_signer(data, "130100");
    cfg.crl.get_or_insert_with(Default::default).revoked.push(
        fiscus_proto::pb::types::RevokedCertificate {
            cert_id: revoked_id,
            reason: "keyCompromise test".into(),
            effective_height: agreed.height,
        },
    );
    let revoked_cfg = dir.join("config-revoked.pb");
    std::fs::write(&revoked_cfg, cfg.encode_to_vec()).unwrap();
    let mut atts = two_genuine();
    atts.push(signed_by("130100", &agreed));
    crafted.push((
        "revoked signer counted",
        ReceiptProof {
            attestations: atts,
            ..genuine.clone()
        },
        None,
        Some(revoked_cfg),
        "not_final",
    ));
    // 7. The same agreeing three are final (the control for 3 to 6).
    let mut atts = two_genuine();
    atts.push(signed_by("130100", &agreed));
    crafted.push((
        "three agreeing members",
        ReceiptProof {
            attestations: atts,
            ..genuine.clone()
        },
        None,
        None,
        "final",
    ));
    // 8. A flipped byte in the receipt.
    let mut p = genuine.clone();
    p.receipt[12] ^= 1;
    crafted.push(("receipt byte flipped", p, None, None, "invalid"));
    let _ = members;

    for (i, (what, proof, certs, cfg, want)) in crafted.into_iter().enumerate() {
        let f = write(&format!("crafted-{i}.pb"), &proof);
        let (code, v) = verify_receipt(data, &f, certs.as_deref(), cfg.as_deref());
        let got = match (v["valid"].as_bool(), v["final"].as_bool()) {
            (Some(true), Some(true)) => "final",
            (Some(true), Some(false)) => "not_final",
            _ => "invalid",
        };
        assert_eq!(got, want, "{what}: {v}");
        assert_eq!(
            code,
            Some(if want == "invalid" { 1 } else { 0 }),
            "{what}: {v}"
        );
        // The Python verifier reaches the same verdict (with the same inputs).
        let (_, pv) = verify_receipt_py(
            data,
            &f,
            cfg.as_deref().unwrap_or(&config),
            certs.as_deref(),
        );
        let pgot = match (pv["valid"].as_bool(), pv["final"].as_bool()) {
            (Some(true), Some(true)) => "final",
            (Some(true), Some(false)) => "not_final",
            _ => "invalid",
        };
        assert_eq!(pgot, want, "python, {what}: {pv}");
    }
}
