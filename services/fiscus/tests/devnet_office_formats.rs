//! Finance-office formats on `fiscus devnet`, through the adapter's REST API
//! and the CLI: the import template; an `.xlsx` saved with Chinese headers,
//! 元 typed as numbers and an empty row imports, once; its Chinese text, the
//! amounts and the `external_id` come back in every export; an exported
//! workbook, read back with calamine, holds the JSON export's values cell
//! for cell, typed (元 and fen as numbers, CST date-times, booleans).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use calamine::{Data, Reader as _};
use fiscus_exchange_adapter::export::{
    AccountExport, AllocationExport, Column, DisbursementExport, ExportRow, Kind, cst,
};
use fiscus_exchange_adapter::import_file::{TEMPLATE, yuan_to_fen};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

mod devnet_support;
use devnet_support::*;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One HTTP/1.0 request (no chunked answer): status, header lines, raw body.
fn raw(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: {XLSX}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, out[end + 4..].to_vec())
}

/// A header's value in the header lines `raw` returns ("" if absent).
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The cells of a workbook's sheet (`None`: the first), row by row.
fn sheet(bytes: &[u8], name: Option<&str>) -> Vec<Vec<Data>> {
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let name = name.map_or_else(|| book.sheet_names()[0].clone(), str::to_owned);
    let range = book.worksheet_range(&name).unwrap();
    assert_eq!(range.start(), Some((0, 0)), "{name} starts at A1");
    range.rows().map(<[Data]>::to_vec).collect()
}

/// An Excel serial date-time (a CST wall clock) as `YYYY-MM-DD HH:MM:SS`.
fn serial_as_cst(serial: f64) -> String {
    // Days since 1899-12-30; 25569 of them before 1970-01-01.
    let wall_s = ((serial - 25_569.0) * 86_400.0).round() as i64;
    cst((wall_s - 8 * 3600) * 1000)
}

/// Asserts that a workbook export holds exactly the JSON export's rows:
/// Chinese headers in order, then each value typed by its column.
fn assert_workbook_equals_json<T: ExportRow>(book: &[u8], json: &Value) {
    let rows = sheet(book, Some(T::SHEET));
    let zh: Vec<&str> = T::COLUMNS.iter().map(|c| c.zh).collect();
    let header: Vec<String> = rows[0].iter().map(|d| d.to_string()).collect();
    assert_eq!(header, zh);
    let items = json.as_array().unwrap();
    assert_eq!(rows.len() - 1, items.len(), "one sheet row per JSON item");
    for (cells, item) in rows[1..].iter().zip(items) {
        for (i, Column { field, kind, .. }) in T::COLUMNS.iter().enumerate() {
            let want = &item[*field];
            let got = cells.get(i).cloned().unwrap_or(Data::Empty);
            let same = match (kind, &got, want) {
                (_, Data::Empty, Value::String(s)) => s.is_empty(),
                (Kind::Text, Data::String(g), Value::String(w)) => g == w,
                (Kind::Int, Data::Float(g), Value::Number(w)) => *g == w.as_f64().unwrap(),
                (Kind::Int, Data::Int(g), Value::Number(w)) => Some(*g) == w.as_i64(),
                (Kind::Yuan, Data::Float(g), Value::String(w)) => {
                    (*g * 100.0).round() as i64 == yuan_to_fen(w).unwrap()
                }
                (Kind::Time, Data::DateTime(g), Value::String(w)) => {
                    serial_as_cst(g.as_f64()) == *w
                }
                (Kind::Bool, Data::Bool(g), Value::Bool(w)) => g == w,
                _ => false,
            };
            assert!(
                same,
                "{} {field}: the workbook has {got:?}, the JSON {want}",
                T::SHEET
            );
        }
    }
}

#[test]
fn an_xlsx_imports_once_and_comes_back_in_every_export_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let _devnet = Devnet::start(&data);
    let net = Net::read(&data);
    let (mof, mof_key, mof_read) = net.api("000000");
    let r = call(
        mof,
        "POST",
        "/v1/operations?wait=commit",
        Some(mof_key),
        Some(&appropriate("财预〔2026〕1号", 10_000_000)),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);

    // The template needs no key; its first sheet is the header row to fill in.
    let (status, head, template) = raw(mof, "GET", "/v1/imports/template?format=xlsx", None, b"");
    assert_eq!(
        (status, header(&head, "content-type").as_str()),
        (200, XLSX)
    );
    let headers: Vec<String> = sheet(&template, None)[0]
        .iter()
        .map(|d| d.to_string())
        .collect();
    let expected: Vec<&str> = TEMPLATE.iter().map(|c| c.1).collect();
    assert_eq!(headers, expected);

    // A workbook as a clerk fills it in: Chinese headers, amounts in 元 as
    // numbers, codes typed as numbers, an empty row under the header. The
    // allocating org's code is `org` (text, or a number as Excel keeps it).
    let workbook = |org: Value, disburse_yuan: f64| {
        let mut book = rust_xlsxwriter::Workbook::new();
        let s = book.add_worksheet();
        let rows: [[Value; 11]; 3] = [
            [
                "外部编号",
                "业务类型",
                "付款单位代码",
                "项目编号",
                "金额（元）",
                "收款单位代码",
                "文号",
                "统一社会信用代码",
                "收款人名称",
                "用途",
                "经济分类",
            ]
            .map(|h| json!(h)),
            [
                json!("XL-A1"),
                json!("下达"),
                org,
                json!("t-edu"),
                json!(1234.56),
                json!(130000),
                json!("财预〔2026〕88号"),
                json!(""),
                json!(""),
                json!(""),
                json!(""),
            ],
            [
                json!("XL-D1"),
                json!("支付"),
                json!("000000"),
                json!("t-edu"),
                json!(disburse_yuan),
                json!(""),
                json!(""),
                json!("12130100MB0E11116J"),
                json!("石家庄市第一中学"),
                json!("教辅材料"),
                json!(30201),
            ],
        ];
        for (r, row) in rows.iter().enumerate() {
            // Excel's row 2 stays empty.
            let r = if r == 0 { 0 } else { r as u32 + 1 };
            for (c, v) in row.iter().enumerate() {
                match v {
                    Value::String(t) if t.is_empty() => {}
                    Value::String(t) => {
                        s.write_string(r, c as u16, t).unwrap();
                    }
                    other => {
                        s.write_number(r, c as u16, other.as_f64().unwrap())
                            .unwrap();
                    }
                }
            }
        }
        book.save_to_buffer().unwrap()
    };
    let fixed = |yuan: f64| workbook(json!("000000"), yuan);
    let file = workbook(json!(0), 200.5);
    // The org code 000000 typed as a number reads as "0": refused, on Excel's row.
    let (status, _, body) = raw(mof, "POST", "/v1/imports", Some(mof_key), &file);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["row"], 3, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("org_code 0 "),
        "{v}"
    );

    // Fixed the way the template does it: the org code as text.
    let (status, _, body) = raw(mof, "POST", "/v1/imports", Some(mof_key), &fixed(200.5));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["submitted"].clone()), (200, json!(2)), "{v}");
    let rows: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [3, 4], "Excel's row numbers: {v}");
    for r in v["results"].as_array().unwrap() {
        wait_committed(
            mof,
            mof_read,
            r["tx_id"].as_str().unwrap(),
            "an imported row",
        );
    }
    // Again: nothing new. With the payment's amount changed: refused, never paid twice.
    let (_, _, body) = raw(mof, "POST", "/v1/imports", Some(mof_key), &fixed(200.5));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["submitted"].clone(), v["already_imported"].clone()),
        (json!(0), json!(2)),
        "{v}"
    );
    let (status, _, body) = raw(mof, "POST", "/v1/imports", Some(mof_key), &fixed(200.51));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 422, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("import.external_id_conflict"),
        "{v}"
    );

    // A REST Idempotency-Key never stands for an import row.
    let r = call(
        mof,
        "POST",
        "/v1/operations",
        Some(mof_key),
        Some(&appropriate("财预〔2026〕1号", 1)),
        &[("Idempotency-Key", "import:XL-D1")],
    );
    problem(r, 400, "api.bad_idempotency_key");

    // JSON exports: names, 元, CST times and the external_id beside the codes.
    let export = |what: &str, query: &str| {
        call(
            mof,
            "GET",
            &format!("/v1/exports/{what}?{query}"),
            Some(mof_read),
            None,
            &[],
        )
    };
    let pays = export("disbursements", "format=json").2;
    let pay = pays
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["external_id"] == "XL-D1")
        .unwrap_or_else(|| panic!("no XL-D1 in {pays}"))
        .clone();
    assert_eq!(pay["recipient_name"], "石家庄市第一中学");
    assert_eq!(pay["purpose"], "教辅材料");
    assert_eq!(pay["economic_code"], "30201");
    assert_eq!(
        (pay["amount_yuan"].clone(), pay["amount_fen"].clone()),
        (json!("200.50"), json!(20_050))
    );
    assert_eq!(pay["program_name"], "test education");
    assert!(
        pay["org_name"].as_str().unwrap().contains("财政部"),
        "{pay}"
    );
    assert_eq!(pay["at"], cst(pay["at_ms"].as_i64().unwrap()));
    let allocations = export("allocations", "format=json").2;
    let alloc = allocations
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["external_id"] == "XL-A1")
        .unwrap_or_else(|| panic!("no XL-A1 in {allocations}"))
        .clone();
    assert_eq!(alloc["document"], "财预〔2026〕88号");
    assert_eq!(alloc["amount_yuan"], "1234.56");
    assert!(
        alloc["to_org_name"].as_str().unwrap().contains("河北"),
        "{alloc}"
    );
    let accounts = export("accounts", "format=json").2;
    // The trace shows the senders' own ids at each step.
    let trace = call(
        mof,
        "GET",
        &format!("/v1/trace/{}", pay["tx_id"].as_str().unwrap()),
        Some(mof_read),
        None,
        &[],
    );
    assert_eq!(trace.0, 200, "{:?}", trace.2);
    assert_eq!(trace.2["steps"][0]["external_id"], "XL-D1", "{:?}", trace.2);

    // Each export names the height it was read at: rows and names alike.
    let chain = call(mof, "GET", "/v1/chain", Some(mof_read), None, &[]).2;
    // Each workbook export holds the JSON export's values, typed, and names
    // the height it was read at.
    for (what, json) in [
        ("accounts", &accounts),
        ("allocations", &allocations),
        ("disbursements", &pays),
    ] {
        let (status, head, book) = raw(
            mof,
            "GET",
            &format!("/v1/exports/{what}?format=xlsx"),
            Some(mof_read),
            b"",
        );
        assert_eq!(
            (status, header(&head, "content-type").as_str()),
            (200, XLSX),
            "{what}"
        );
        let height: u64 = header(&head, "x-fiscus-height").parse().unwrap();
        assert!(
            height >= chain["height"].as_u64().unwrap(),
            "{what}: {height} {chain}"
        );
        match what {
            "accounts" => assert_workbook_equals_json::<AccountExport>(&book, json),
            "allocations" => assert_workbook_equals_json::<AllocationExport>(&book, json),
            _ => assert_workbook_equals_json::<DisbursementExport>(&book, json),
        }
    }
    // A CSV for Excel with Chinese headers keeps the Chinese text as it was.
    let (status, head, csv) = raw(
        mof,
        "GET",
        "/v1/exports/disbursements?format=csv&headers=zh",
        Some(mof_read),
        b"",
    );
    assert_eq!(
        (
            status,
            header(&head, "content-type").starts_with("text/csv")
        ),
        (200, true)
    );
    let text = String::from_utf8(csv).unwrap();
    assert!(
        text.starts_with("\u{feff}交易编号,外部编号,付款单位代码"),
        "{text}"
    );
    assert!(
        text.contains("XL-D1") && text.contains("石家庄市第一中学,200.50,20050,教辅材料,30201"),
        "{text}"
    );

    // The CLI: the template, and an export workbook (which must go to a file).
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(args)
            .env("FISCUS_API", format!("http://{mof}"))
            .env("FISCUS_API_KEY", mof_read)
            .output()
            .unwrap()
    };
    // The template needs no API: no --api, no key.
    let t = dir.path().join("template.xlsx");
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["import", "--template", t.to_str().unwrap()])
        .env_remove("FISCUS_API")
        .env_remove("FISCUS_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let headers: Vec<String> = sheet(&std::fs::read(&t).unwrap(), None)[0]
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(headers, expected);
    let out = cli(&["export", "disbursements", "--format", "xlsx"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--out"),
        "{out:?}"
    );
    let x = dir.path().join("pays.xlsx");
    let out = cli(&[
        "export",
        "disbursements",
        "--format",
        "xlsx",
        "--out",
        x.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_workbook_equals_json::<DisbursementExport>(&std::fs::read(&x).unwrap(), &pays);
}
