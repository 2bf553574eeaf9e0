//! Every member's analytics (统计分析) on a demo devnet, from the outside:
//! its figures against the exchange-adapter's accounts (another service,
//! another code path), its disclosure and bad-input refusals, its CSV
//! against its JSON, the dashboard in a real browser (Debian's `chromium`:
//! overview, drill-down to a county, the language toggle kept across
//! loads, numbers on the page equal to the API's, screenshots under
//! `target/analytics-dashboard/`), and a devnet killed mid-replay whose
//! analytics resumes and ends with the same tables as a rebuild from the
//! ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod devnet_support;

use devnet_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// member → analytics address, from the endpoints the devnet printed.
fn analytics_addrs(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l
                .trim()
                .strip_prefix("analytics 统计分析  dashboard http://")?;
            let (addr, rest) = rest.split_once('/')?;
            let code = rest.rsplit_once("/v1/analytics/regions/")?.1;
            let code = code.split_whitespace().next()?;
            Some((code.to_owned(), addr.to_owned()))
        })
        .collect()
}

fn get(addr: &str, path: &str, key: &str) -> Value {
    let r = call(addr, "GET", path, Some(key), None, &[]);
    assert_eq!(r.0, 200, "GET {path}: {:?}", r.2);
    r.2
}

/// Waits until the analytics at `addr` has applied block `height`.
fn wait_applied(addr: &str, key: &str, height: u64) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let s = get(addr, "/v1/analytics/status", key);
        if s["as_of"]["height"].as_u64().unwrap() >= height {
            return;
        }
        assert!(Instant::now() < until, "analytics stuck at {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The org's accounts as the exchange-adapter reads them from the ledger's state, summed.
fn adapter_totals(net: &Net, member: &str, org: &str) -> BTreeMap<&'static str, i64> {
    let (addr, key, _) = net.api(member);
    let page = get(addr, &format!("/v1/accounts?org={org}&limit=1000"), key);
    let keys = [
        "balance_fen",
        "appropriated_fen",
        "received_fen",
        "allocated_out_fen",
        "disbursed_fen",
        "recovered_out_fen",
        "recovered_in_fen",
    ];
    // A supervisor holds no account: all zeros.
    let mut t: BTreeMap<&'static str, i64> = keys.iter().map(|k| (*k, 0)).collect();
    for a in page["items"].as_array().unwrap() {
        for k in keys {
            *t.entry(k).or_default() += a[k].as_i64().unwrap();
        }
    }
    assert!(page["next_cursor"].is_null(), "{page}");
    t
}

fn target_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/analytics-dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium on `url` with the profile `profile`, returning the DOM
/// after the page's scripts ran; and a screenshot when `shot` is given.
fn chromium(profile: &Path, url: &str, shot: Option<&Path>) -> String {
    let run = |extra: &[String]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1280,3200",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium runs (make deps installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom".to_owned()]);
    if let Some(shot) = shot {
        let _ = std::fs::remove_file(shot);
        run(&[format!("--screenshot={}", shot.display())]);
        assert!(
            std::fs::metadata(shot).is_ok_and(|m| m.len() > 10_000),
            "no screenshot at {}",
            shot.display()
        );
    }
    dom
}

/// The `data-fen` of the cell `k` in the table row of `code`.
fn row_fen(dom: &str, code: &str, k: &str) -> i64 {
    let row = dom
        .split("<tr ")
        .find(|r| r.starts_with(&format!("data-code=\"{code}\"")))
        .unwrap_or_else(|| panic!("no row for {code} in the page"));
    let cell = row
        .split("<td ")
        .find(|c| c.starts_with(&format!("data-k=\"{k}\"")))
        .unwrap_or_else(|| panic!("no {k} cell in the row of {code}"));
    cell.split("data-fen=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The `data-v` of the KPI `k`.
fn kpi(dom: &str, k: &str) -> String {
    let card = dom
        .split("<div class=\"kpi\" ")
        .find(|c| c.starts_with(&format!("data-k=\"{k}\"")))
        .unwrap_or_else(|| panic!("no KPI {k} in the page"));
    card.split("data-v=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn analytics_agrees_with_the_ledger_discloses_by_region_and_renders_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let (devnet, lines) = Devnet::start_collecting(&data, &["--demo"]);
    let addrs = analytics_addrs(&lines);
    assert_eq!(addrs.len(), 5, "{lines:#?}");
    let net = Net::read(&data);
    let head = net.chain("991300")["height"].as_u64().unwrap();

    // Each member's analytics, for its own department, against its adapter's accounts.
    for (member, addr) in &addrs {
        let (_, key, read_key) = net.api(member);
        wait_applied(addr, key, head);
        let v = get(addr, &format!("/v1/analytics/regions/{member}"), read_key);
        let d = &v["department"];
        let t = adapter_totals(&net, member, member);
        let f = |k: &str| d[k].as_i64().unwrap();
        assert_eq!(f("held_fen"), t["balance_fen"], "{member}: {v}");
        assert_eq!(f("appropriated_fen"), t["appropriated_fen"], "{member}");
        assert_eq!(
            f("received_fen") + f("adjusted_in_fen"),
            t["received_fen"],
            "{member}"
        );
        assert_eq!(
            f("allocated_fen") + f("adjusted_out_fen"),
            t["allocated_out_fen"],
            "{member}"
        );
        assert_eq!(f("disbursed_fen"), t["disbursed_fen"], "{member}");
        assert_eq!(f("recovered_out_fen"), t["recovered_out_fen"], "{member}");
        assert_eq!(f("recovered_in_fen"), t["recovered_in_fen"], "{member}");
    }
    // The audit office's view of every city, each against the adapter.
    let audit = &addrs["991300"];
    let (_, audit_key, _) = net.api("991300");
    let hebei = get(audit, "/v1/analytics/regions/130000", audit_key);
    let children = hebei["children"].as_array().unwrap();
    assert_eq!(children.len(), 11, "{hebei}");
    let mut spent = 0;
    for c in children {
        let code = c["region"]["code"].as_str().unwrap();
        let dep = get(audit, &format!("/v1/analytics/regions/{code}"), audit_key);
        let t = adapter_totals(&net, "991300", code);
        assert_eq!(dep["department"]["held_fen"], t["balance_fen"], "{code}");
        spent += c["figures"]["disbursed_fen"].as_i64().unwrap();
    }
    assert!(spent > 0, "the demo pays recipients below Hebei");
    assert_eq!(spent, hebei["total"]["disbursed_fen"].as_i64().unwrap());

    // Disclosure: Chang'an reads its own region, not Hebei's, in JSON or CSV.
    let changan = &addrs["130102"];
    let (_, changan_key, _) = net.api("130102");
    let own = get(changan, "/v1/analytics/regions/130102", changan_key);
    assert_eq!(own["region"]["level"], "county");
    for path in [
        "/v1/analytics/regions/130000",
        "/v1/analytics/regions/130000/children.csv",
        "/v1/analytics/regions/130100/months",
        "/v1/analytics/regions/000000/programs.csv",
    ] {
        let r = call(changan, "GET", path, Some(changan_key), None, &[]);
        let held = hebei["total"]["held_fen"].to_string();
        assert!(!r.2.to_string().contains(&held), "{path} leaked {held}");
        problem(r, 403, "api.not_disclosed");
    }
    // The breadcrumb stops where disclosure does.
    let crumbs: Vec<&str> = own["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(crumbs, ["130102"]);

    // Bad input: typed 4xx with stable codes.
    for (path, status, code) in [
        (
            "/v1/analytics/regions/999999",
            404,
            "analytics.unknown_region",
        ),
        (
            "/v1/analytics/regions/130102?from_month=2026-13",
            400,
            "analytics.bad_month",
        ),
        (
            "/v1/analytics/regions/130102?from_month=2026-05&to_month=2026-01",
            400,
            "analytics.bad_month",
        ),
        (
            "/v1/analytics/regions/130102?program=no-such",
            404,
            "analytics.unknown_program",
        ),
        ("/v1/analytics/regions/130102?limit=5", 400, "api.bad_query"),
        ("/v1/analytics/nothing", 404, "api.no_route"),
    ] {
        problem(
            call(changan, "GET", path, Some(changan_key), None, &[]),
            status,
            code,
        );
    }
    problem(
        call(
            changan,
            "GET",
            "/v1/analytics/regions/130102",
            None,
            None,
            &[],
        ),
        401,
        "api.missing_api_key",
    );

    // CSV equals JSON, row for row.
    let r = call(
        audit,
        "GET",
        "/v1/analytics/regions/130000/children.csv",
        Some(audit_key),
        None,
        &[],
    );
    assert_eq!(r.0, 200);
    assert!(r.1.starts_with("text/csv"), "{}", r.1);
    let text =
        r.2.as_str()
            .unwrap()
            .trim_start_matches('\u{feff}')
            .to_owned();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let head = rows.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let mut seen = 0;
    for rec in rows.records() {
        let rec = rec.unwrap();
        if &rec[col("row")] != "child" {
            continue;
        }
        let c = children
            .iter()
            .find(|c| c["region"]["code"] == rec[col("code")])
            .unwrap();
        for k in ["received_fen", "disbursed_fen", "held_fen"] {
            assert_eq!(
                rec[col(k)].parse::<i64>().unwrap(),
                c["figures"][k].as_i64().unwrap()
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 11);
    // The same table as an Excel workbook, numbers as numbers.
    let raw = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(audit).unwrap();
        write!(
            s,
            "GET /v1/analytics/regions/130000/children.xlsx HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {audit_key}\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&out[..at]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("spreadsheetml"), "{head}");
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        out[at + 4..].to_vec()
    };
    use calamine::{DataType as _, Reader as _};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(raw)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<_> = sheet.rows().collect();
    let hcol = |name: &str| {
        rows[0]
            .iter()
            .position(|c| c.get_string() == Some(name))
            .unwrap()
    };
    let mut seen = 0;
    for row in &rows[1..] {
        if row[hcol("row")].get_string() != Some("child") {
            continue;
        }
        let c = children
            .iter()
            .find(|c| c["region"]["code"] == row[hcol("code")].to_string())
            .unwrap();
        assert_eq!(
            row[hcol("held_fen")].as_f64().unwrap() as i64,
            c["figures"]["held_fen"].as_i64().unwrap()
        );
        seen += 1;
    }
    assert_eq!(seen, 11);
    problem(
        call(
            audit,
            "GET",
            "/v1/analytics/regions/130000/children.pdf",
            Some(audit_key),
            None,
            &[],
        ),
        404,
        "api.no_route",
    );

    // Art. 52: the late allocations analytics lists are the ones the ledger's
    // trace (read through the exchange-adapter) marks late.
    let dl = get(audit, "/v1/analytics/regions/000000/deadlines", audit_key);
    let late = dl["late"].as_array().unwrap();
    assert!(!late.is_empty(), "the demo makes a late allocation: {dl}");
    assert_eq!(late.len() as i64, dl["total"]["late"].as_i64().unwrap());
    let (adapter, _, _) = net.api("991300");
    for item in late {
        let tx = item["tx_id"].as_str().unwrap();
        let theirs = get(adapter, &format!("/v1/trace/{tx}"), audit_key);
        assert_eq!(theirs["steps"][0]["late"], true, "{theirs}");
        assert_eq!(theirs["steps"][0]["amount_fen"], item["amount_fen"]);
        let ours = get(audit, item["trace"].as_str().unwrap(), audit_key);
        assert_eq!(ours, theirs);
        assert!(item["days_late"].as_i64().unwrap() > 0, "{item}");
    }
    let first_late = late[0]["tx_id"].as_str().unwrap().to_owned();
    // Idle funds: none with a cut-off ten years back; with one day, at most what is held.
    let idle = get(
        audit,
        "/v1/analytics/regions/000000/idle?days=3650",
        audit_key,
    );
    assert_eq!(idle["idle_fen"], 0, "{idle}");
    let idle = get(
        audit,
        "/v1/analytics/regions/000000/idle?days=1&limit=1000",
        audit_key,
    );
    let nation = get(audit, "/v1/analytics/regions/000000", audit_key);
    let idle_fen = idle["idle_fen"].as_i64().unwrap();
    assert!(
        idle_fen <= nation["total"]["held_fen"].as_i64().unwrap(),
        "{idle}"
    );
    let listed: i64 = idle["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["idle_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(listed, idle_fen);
    // Waits: the money passed down and paid, per level, adds up to the
    // allocations and disbursements the regions count; the demo's direct funds reached recipients.
    let timing = get(audit, "/v1/analytics/regions/000000/timing", audit_key);
    let paid: i64 = timing["payment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["amount_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(
        paid,
        nation["total"]["disbursed_fen"].as_i64().unwrap(),
        "{timing}"
    );
    for w in timing["pass_down"]
        .as_array()
        .unwrap()
        .iter()
        .chain(timing["payment"].as_array().unwrap())
    {
        assert!(
            w["median_days"].as_i64().unwrap() <= w["p90_days"].as_i64().unwrap(),
            "{w}"
        );
    }
    assert!(
        timing["direct_inflow_fen"].as_i64().unwrap() > 0,
        "{timing}"
    );
    // Anomaly flags: the page and the CSV list the same flags.
    let an = get(
        audit,
        "/v1/analytics/regions/000000/anomalies?limit=1000",
        audit_key,
    );
    let total = an["flags_total"].as_u64().unwrap() as usize;
    assert_eq!(an["flags"].as_array().unwrap().len(), total, "{an}");
    let r = call(
        audit,
        "GET",
        "/v1/analytics/regions/000000/anomalies.csv",
        Some(audit_key),
        None,
        &[],
    );
    assert_eq!(r.0, 200);
    assert_eq!(r.2.as_str().unwrap().trim_end().lines().count(), total + 1);
    problem(
        call(
            audit,
            "GET",
            "/v1/analytics/regions/000000/anomalies?limit=0",
            Some(audit_key),
            None,
            &[],
        ),
        400,
        "analytics.bad_limit",
    );
    for (path, status, code) in [
        (
            "/v1/analytics/regions/000000/idle?days=0",
            400,
            "analytics.bad_days",
        ),
        (
            "/v1/analytics/regions/000000/idle?limit=5000",
            400,
            "analytics.bad_limit",
        ),
        (
            "/v1/analytics/regions/000000/deadlines?after=x",
            400,
            "analytics.bad_after",
        ),
        ("/v1/analytics/trace/zz", 400, "api.bad_tx_id"),
    ] {
        problem(
            call(audit, "GET", path, Some(audit_key), None, &[]),
            status,
            code,
        );
    }

    // The dashboard in a real browser: Hebei's overview as the audit office sees it.
    let shots = target_dir();
    let profile = dir.path().join("chromium-profile");
    let dom = chromium(
        &profile,
        &format!("http://{audit}/?region=130000#key={audit_key}"),
        Some(&shots.join("overview-zh.png")),
    );
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page did not load: {dom}"
    );
    assert!(
        dom.contains("财政转移支付统计分析"),
        "not in Chinese by default"
    );
    for c in children {
        let code = c["region"]["code"].as_str().unwrap();
        for k in ["disbursed_fen", "held_fen"] {
            assert_eq!(
                row_fen(&dom, code, k),
                c["figures"][k].as_i64().unwrap(),
                "{code} {k}"
            );
        }
    }
    assert_eq!(
        kpi(&dom, "held_fen"),
        hebei["total"]["held_fen"].to_string()
    );
    // Drill down by the link the page shows: Hebei → Shijiazhuang → Chang'an.
    for (from, to) in [("130000", "130100"), ("130100", "130102")] {
        let link = format!("href=\"?region={to}\"");
        let page = chromium(
            &profile,
            &format!("http://{audit}/?region={from}#key={audit_key}"),
            None,
        );
        assert!(page.contains(&link), "{from} does not link to {to}");
    }
    let county = get(audit, "/v1/analytics/regions/130102", audit_key);
    let dom = chromium(
        &profile,
        &format!("http://{audit}/?region=130102#key={audit_key}"),
        Some(&shots.join("county-zh.png")),
    );
    assert_eq!(
        kpi(&dom, "held_fen"),
        county["total"]["held_fen"].to_string()
    );
    assert_eq!(
        kpi(&dom, "disbursed_fen"),
        county["total"]["disbursed_fen"].to_string()
    );
    // A late allocation, listed and traced on the page.
    let dom = chromium(
        &profile,
        &format!("http://{audit}/?region=000000&trace={first_late}#key={audit_key}"),
        Some(&shots.join("deadlines-trace-zh.png")),
    );
    assert!(
        dom.contains(&format!("data-tx=\"{first_late}\"")),
        "no late row"
    );
    assert!(
        dom.contains(&format!("data-step=\"{first_late}\"")),
        "no trace"
    );
    assert!(dom.contains("沉淀资金"), "no idle funds section");
    assert!(dom.contains("异常提示"), "no anomaly section");
    assert!(dom.contains("资金下达与支付时间"), "no timing section");
    // English, chosen once, stays chosen in the same browser profile.
    let dom = chromium(
        &profile,
        &format!("http://{audit}/?region=130000&lang=en#key={audit_key}"),
        None,
    );
    assert!(dom.contains("Fiscal transfer analytics"), "no English page");
    let dom = chromium(
        &profile,
        &format!("http://{audit}/?region=130000#key={audit_key}"),
        Some(&shots.join("overview-en.png")),
    );
    assert!(
        dom.contains("Fiscal transfer analytics") && dom.contains("lang=\"en\""),
        "English was not kept"
    );
    // The page loads nothing from elsewhere: its one script is served here.
    let page = call(audit, "GET", "/", None, None, &[]);
    let html = page.2.as_str().unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page names another origin"
    );
    let js = call(audit, "GET", "/assets/echarts.min.js", None, None, &[]);
    assert_eq!(js.0, 200);
    drop(devnet);
}

#[test]
fn analytics_killed_mid_replay_resumes_to_the_tables_of_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    // Killed outright while the demo replays (after a few blocks).
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(["devnet", "--base-port", "0", "--demo", "--data-dir"])
            .arg(&data)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::BufRead;
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in out.lines().map_while(Result::ok) {
            if line.contains("[3/7]") {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Started again: the demo finishes, each analytics resumes from its cursor.
    let (devnet, lines) = Devnet::start_collecting(&data, &["--demo"]);
    let addrs = analytics_addrs(&lines);
    let net = Net::read(&data);
    let head = net.chain("130000")["height"].as_u64().unwrap();
    let (_, key, _) = net.api("130000");
    wait_applied(&addrs["130000"], key, head);

    // A rebuild from the live ledger into a new store, by the command the devnet names.
    let config = data.join("config/member-130000-analytics.toml");
    let rebuilt = dir.path().join("rebuilt");
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["analytics", "rebuild", "--config"])
        .arg(&config)
        .env("FISCUS_ANALYTICS__DATA_DIR", &rebuilt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("analytics rebuilt"),
        "{out:?}"
    );
    let resumed = data.join("member-130000/analytics/analytics.sqlite3");
    let dump = |path: &Path| -> Vec<String> {
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut out = Vec::new();
        for sql in [
            "SELECT height, idx, hex(tx_id), kind, from_org, to_org, program, day, month, amount_fen, recipient, hex(refers) FROM movement WHERE height <= ?1 ORDER BY height, idx",
            "SELECT kind, from_org, to_org, program, month, sum(amount_fen), sum(tx_count) FROM flow GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
            "SELECT kind, from_org, to_org, amount_fen, tx_count FROM edge ORDER BY 1, 2, 3",
            "SELECT * FROM program ORDER BY id",
        ] {
            let mut st = conn.prepare(sql).unwrap();
            let n = st.column_count();
            let params: &[&dyn rusqlite::ToSql] = if sql.contains("?1") {
                &[&(head as i64)]
            } else {
                &[]
            };
            let rows = st
                .query_map(params, |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    };
    // Nothing commits while we compare: the demo is done and nobody submits.
    let (a, b) = (dump(&resumed), dump(&rebuilt.join("analytics.sqlite3")));
    assert!(a.len() > 60, "{}", a.len());
    assert_eq!(a, b);
    drop(devnet);
}
