//! The fiscal-year replay behind `make run` (`fiscus devnet --demo`): central
//! appropriations, allocations down to Hebei's 11 cities and on to counties,
//! acknowledgements, disbursements to named recipients, and invalid attempts,
//! all through the members' exchange-adapters; then a bilingual summary.

use crate::devnet::{Devnet, api_keys};
use anyhow::{Context, Result, bail};
use fiscus_common::codes;
use fiscus_exchange_adapter::http_client::Target;
use fiscus_identity_ca::ca::CaPaths;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct Client {
    api: Target,
    key: String,
}

impl Client {
    /// Submits a custodial operation and waits for this member's commit.
    async fn submit(&self, op: Value, idem: &str) -> Result<(u16, Value)> {
        self.api
            .json(
                "POST",
                "/v1/operations?wait=commit",
                &self.key,
                Some(&op),
                &[("Idempotency-Key", idem)],
            )
            .await
            .map_err(Into::into)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self.api.json("GET", path, &self.key, None, &[]).await?;
        if status != 200 {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }
}

/// Submits ops concurrently; every one must commit as `valid`. Returns tx ids.
async fn all_valid(
    c: &Client,
    ops: Vec<(String, Value)>,
    stats: &mut Stats,
) -> Result<Vec<String>> {
    let futs = ops.iter().map(|(idem, op)| c.submit(op.clone(), idem));
    let mut ids = Vec::new();
    for (r, (idem, _)) in futures::future::join_all(futs).await.into_iter().zip(&ops) {
        let (status, v) = r?;
        let receipt_status = v["receipt"]["status"].as_str().unwrap_or("");
        if status != 200 || receipt_status != "valid" {
            bail!("{idem}: HTTP {status}: {v}");
        }
        if v["receipt"]["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x == "deadline.late"))
        {
            stats.late += 1;
        }
        stats.valid += 1;
        ids.push(v["tx_id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(ids)
}

#[derive(Default)]
struct Stats {
    valid: usize,
    rejected: usize,
    late: usize,
}

fn acct(org: &str, program: &str) -> Value {
    json!({"org_code": org, "program_id": program})
}

const YI: i64 = 100_000_000 * 100; // 1 亿元 in fen
const WAN: i64 = 10_000 * 100; // 1 万元 in fen

/// (id, name, kind, attribute, functional code, document, amount). Direct
/// funds and emergencies are attributes of a general or special program.
const PROGRAMS: [(&str, &str, &str, &str, &str, &str, i64); 4] = [
    (
        "edu-2026",
        "城乡义务教育补助经费 (小学教育) / compulsory education, primary",
        "special",
        "",
        "2050202",
        "财教〔2026〕12号",
        120 * YI,
    ),
    (
        "direct-2026",
        "直达资金 义务教育 (初中教育) / direct funds, junior secondary",
        "general",
        "direct",
        "2050203",
        "财预〔2026〕30号",
        40 * YI,
    ),
    (
        "disaster-2026",
        "自然灾害救灾补助 / disaster relief",
        "general",
        "emergency",
        "2240703",
        "财资环〔2026〕5号",
        20 * YI,
    ),
    (
        "agri-2026",
        "农业生产发展资金 / agricultural production subsidy",
        "general",
        "",
        "2130122",
        "财农〔2026〕18号",
        60 * YI,
    ),
];

const CITIES: [&str; 11] = [
    "130100", "130200", "130300", "130400", "130500", "130600", "130700", "130800", "130900",
    "131000", "131100",
];
const COUNTIES: [&str; 4] = ["130102", "130104", "130105", "130107"];

pub(crate) async fn run(net: &Devnet) -> Result<()> {
    let started = Instant::now();
    let keys: BTreeMap<String, String> = api_keys(&net.data)?.into_iter().collect();
    let client = |code: &str| -> Result<Client> {
        let m = net
            .layout
            .members
            .iter()
            .find(|m| m.code == code)
            .with_context(|| format!("no member {code}"))?;
        Ok(Client {
            api: Target::plain(m.api),
            key: keys
                .get(code)
                .cloned()
                .with_context(|| format!("no API key for {code}"))?,
        })
    };
    let (mof, hebei, sjz, changan, audit) = (
        client("000000")?,
        client("130000")?,
        client("130100")?,
        client("130102")?,
        client("991300")?,
    );
    let names: BTreeMap<String, String> = fiscus_identity_ca::genesis::hebei_orgs()
        .into_iter()
        .map(|o| (o.code, o.name))
        .collect();
    let mut stats = Stats::default();
    println!();
    println!("== 财政年度回放 / Replaying fiscal year 2026 ==");

    // 1. Central appropriations.
    let ops = PROGRAMS
        .iter()
        .map(|(id, name, kind, attribute, code, doc, amount)| {
            (
                format!("appropriate-{id}"),
                json!({"op": "appropriate", "account": acct("000000", id),
                    "program": {"id": id, "name": name, "kind": kind, "functional_code": code,
                                "fiscal_year": 2026, "document": doc,
                                "direct": *attribute == "direct",
                                "emergency": *attribute == "emergency"},
                    "amount_fen": amount, "document": doc}),
            )
        })
        .collect();
    all_valid(&mof, ops, &mut stats).await?;
    println!(
        "  [1/7] 中央预算下达 / central appropriations: {} programs",
        PROGRAMS.len()
    );

    // 2. MOF → Hebei, and Hebei acknowledges.
    let ops = PROGRAMS
        .iter()
        .map(|(id, _, _, _, _, doc, amount)| {
            (
                format!("alloc-central-{id}"),
                json!({"op": "allocate", "from": acct("000000", id), "to_org_code": "130000",
                       "amount_fen": amount / 2, "document": doc}),
            )
        })
        .collect();
    let central = all_valid(&mof, ops, &mut stats).await?;
    let ops = central
        .iter()
        .zip(PROGRAMS)
        .map(|(tx, (id, ..))| {
            (
                format!("ack-hebei-{id}"),
                json!({"op": "acknowledge", "account": acct("130000", id), "allocation_tx_id": tx}),
            )
        })
        .collect();
    all_valid(&hebei, ops, &mut stats).await?;
    println!(
        "  [2/7] 中央→河北 下达并确认 / MOF → Hebei, acknowledged: {} allocations",
        central.len()
    );

    // 3. Hebei → every city (education and agriculture), disaster relief to three, direct funds.
    let mut ops = Vec::new();
    for (i, city) in CITIES.iter().enumerate() {
        let share = (i as i64 % 4) + 3; // uneven shares
        ops.push((
            format!("alloc-hebei-edu-{city}"),
            json!({"op": "allocate", "from": acct("130000", "edu-2026"), "to_org_code": city,
                   "amount_fen": share * YI / 2, "document": "冀财教〔2026〕21号"}),
        ));
        ops.push((
            format!("alloc-hebei-agri-{city}"),
            json!({"op": "allocate", "from": acct("130000", "agri-2026"), "to_org_code": city,
                   "amount_fen": share * YI / 3, "document": "冀财农〔2026〕9号"}),
        ));
    }
    for city in ["130100", "130500", "130600"] {
        ops.push((
            format!("alloc-hebei-disaster-{city}"),
            json!({"op": "allocate", "from": acct("130000", "disaster-2026"), "to_org_code": city,
                   "amount_fen": 2 * YI, "document": "冀财资环〔2026〕3号"}),
        ));
    }
    for to in ["130100", "130102"] {
        ops.push((
            format!("alloc-hebei-direct-{to}"),
            json!({"op": "allocate", "from": acct("130000", "direct-2026"), "to_org_code": to,
                   "amount_fen": 3 * YI, "document": "冀财预〔2026〕7号 (直达)"}),
        ));
    }
    let hebei_allocs = all_valid(&hebei, ops.clone(), &mut stats).await?;
    println!(
        "  [3/7] 河北→11个设区市 / Hebei → all 11 cities (and direct funds to Chang'an): {} allocations",
        hebei_allocs.len()
    );
    // 4. Shijiazhuang and Chang'an acknowledge what they received.
    let mut sjz_acks = Vec::new();
    let mut changan_acks = Vec::new();
    for ((idem, op), tx) in ops.iter().zip(&hebei_allocs) {
        let to = op["to_org_code"].as_str().unwrap_or_default();
        let program = op["from"]["program_id"].clone();
        let ack = json!({"op": "acknowledge", "account": {"org_code": to, "program_id": program},
                         "allocation_tx_id": tx});
        match to {
            "130100" => sjz_acks.push((format!("ack-{idem}"), ack)),
            "130102" => changan_acks.push((format!("ack-{idem}"), ack)),
            _ => {}
        }
    }
    all_valid(&sjz, sjz_acks, &mut stats).await?;
    all_valid(&changan, changan_acks, &mut stats).await?;

    // 5. Shijiazhuang → its counties.
    let ops = COUNTIES
        .iter()
        .flat_map(|county| {
            [
                ("edu-2026", "石财教〔2026〕4号", YI / 4),
                ("agri-2026", "石财农〔2026〕2号", YI / 5),
            ]
            .map(|(p, doc, amount)| {
                (
                    format!("alloc-sjz-{p}-{county}"),
                    json!({"op": "allocate", "from": acct("130100", p), "to_org_code": county,
                               "amount_fen": amount, "document": doc}),
                )
            })
        })
        .collect::<Vec<_>>();
    let sjz_allocs = all_valid(&sjz, ops.clone(), &mut stats).await?;
    let acks = ops
        .iter()
        .zip(&sjz_allocs)
        .filter(|((_, op), _)| op["to_org_code"] == "130102")
        .map(|((idem, op), tx)| {
            (
                format!("ack-{idem}"),
                json!({"op": "acknowledge", "account": {"org_code": "130102", "program_id": op["from"]["program_id"]},
                       "allocation_tx_id": tx}),
            )
        })
        .collect();
    all_valid(&changan, acks, &mut stats).await?;
    println!(
        "  [4/7] 石家庄→县区 并确认 / Shijiazhuang → {} counties, acknowledged: {} allocations",
        COUNTIES.len(),
        sjz_allocs.len()
    );

    // 6. Chang'an pays schools and farmers.
    let schools = [
        ("12130102MB0A12342E", "石家庄市长安区育才街小学"),
        ("12130102MB0B234563", "石家庄市长安区建设北大街小学"),
        ("12130102MB0C3456XJ", "石家庄市长安区谈固小学"),
    ];
    let mut ops = Vec::new();
    for (i, (uscc, name)) in schools.iter().enumerate() {
        ops.push((
            format!("disburse-edu-{i}"),
            json!({"op": "disburse", "from": acct("130102", "edu-2026"),
                   "recipient": {"unified_social_credit_code": uscc, "name": name},
                   "amount_fen": (120 + 30 * i as i64) * WAN, "purpose": "2026年春季学期公用经费 / spring term operating funds",
                   "economic_code": "50502"}),
        ));
    }
    for (i, farmer) in ["农户 甲 / farmer A", "农户 乙 / farmer B"]
        .iter()
        .enumerate()
    {
        // A made-up resident id number with a valid check digit; the adapter
        // checks it and stores only its salted hash.
        let first17 = format!("1301021970010100{i}");
        let id_number = format!(
            "{first17}{}",
            fiscus_contract_executor::identifiers::id_number_check_char(&first17).unwrap_or('0')
        );
        ops.push((
            format!("disburse-agri-{i}"),
            json!({"op": "disburse", "from": acct("130102", "agri-2026"),
                   "recipient": {"personal_id_number": id_number, "name": farmer},
                   "amount_fen": 3 * WAN + i as i64 * WAN, "purpose": "耕地地力保护补贴 / farmland protection subsidy",
                   "economic_code": "50901"}),
        ));
    }
    ops.push((
        "disburse-direct-0".into(),
        json!({"op": "disburse", "from": acct("130102", "direct-2026"),
               "recipient": {"unified_social_credit_code": "12130102MB0D45673A", "name": "石家庄市第四十中学"},
               "amount_fen": 500 * WAN, "purpose": "直达资金 初中公用经费 / direct funds, school operating costs",
               "economic_code": "50502"}),
    ));
    let disbursements = all_valid(&changan, ops, &mut stats).await?;
    println!(
        "  [5/7] 长安区 支付到最终收款人 / Chang'an pays final recipients: {} disbursements",
        disbursements.len()
    );

    // A late supplementary allocation: Hebei passes central agricultural funds
    // on 35 days after receiving them (Budget Law art. 52: 30 days from receipt).
    match net.layout.block_clock {
        Some(clock) => {
            let days = 35;
            let wall = Duration::from_millis(days * 86_400_000 / u64::from(clock.speedup));
            tokio::time::sleep(wall).await;
            let late = vec![(
                "alloc-hebei-agri-late-130700".to_owned(),
                json!({"op": "allocate", "from": acct("130000", "agri-2026"), "to_org_code": "130700",
                       "amount_fen": YI, "document": "冀财农〔2026〕11号 (补充下达)"}),
            )];
            let before = stats.late;
            all_valid(&hebei, late, &mut stats).await?;
            println!(
                "        {days} 天后补充下达 / {days} days later, a supplementary allocation to Zhangjiakou: {} flagged late (逾期)",
                stats.late - before
            );
        }
        None => println!(
            "        (this devnet was created without --demo, so blocks carry wall-clock time and no deadline passes; create one with --demo --reset to see late flags)"
        ),
    }

    // 7. Invalid attempts: rejected, with nothing changed.
    let balance = sjz.get("/v1/accounts/130100/edu-2026").await?["balance_fen"]
        .as_i64()
        .unwrap_or(0);
    let (status, v) = sjz
        .submit(
            json!({"op": "allocate", "from": acct("130100", "edu-2026"), "to_org_code": "130104",
                   "amount_fen": balance + YI, "document": "超额下达 / over-allocation"}),
            "invalid-over-allocation",
        )
        .await?;
    let over = v["receipt"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if status != 200 || over != "insufficient_funds" {
        bail!("the over-allocation was not rejected as insufficient funds: {status} {v}");
    }
    stats.rejected += 1;
    let (status, v) = sjz
        .submit(
            json!({"op": "allocate", "from": acct("130000", "edu-2026"), "to_org_code": "130100",
                   "amount_fen": YI, "document": "越权 / wrong org"}),
            "invalid-wrong-org",
        )
        .await?;
    if status != 403 || v["code"] != codes::api::WRONG_ORG {
        bail!("the wrong-org attempt was not refused: {status} {v}");
    }
    stats.rejected += 1;
    let (status, v) = changan
        .submit(
            json!({"op": "allocate", "from": acct("130102", "edu-2026"), "to_org_code": "130200",
                   "amount_fen": WAN, "document": "非下级 / not a child"}),
            "invalid-not-child",
        )
        .await?;
    // The adapter applies the contract's rules before ordering: refused
    // with the contract's code, and nothing reaches the chain.
    let not_child = v["code"].as_str().unwrap_or_default().to_owned();
    if status != 400 || not_child != codes::contract::NOT_DESCENDANT {
        bail!("the allocation to a non-child was not refused: {status} {v}");
    }
    stats.rejected += 1;
    println!(
        "  [6/7] 无效交易被拒绝 / invalid attempts rejected: over-allocation ({over}), wrong org (HTTP 403 api.wrong_org), allocation to a non-child (HTTP 400 {not_child})"
    );

    // Finality everywhere.
    let head = audit.get("/v1/chain").await?["height"]
        .as_u64()
        .unwrap_or(0);
    let until = Instant::now() + Duration::from_secs(60);
    let mut finals = Vec::new();
    loop {
        finals.clear();
        for m in &net.layout.members {
            let c = client(&m.code)?;
            let chain = c.get("/v1/chain").await?;
            finals.push((
                m.code.clone(),
                chain["height"].as_u64().unwrap_or(0),
                chain["final_height"].as_u64().unwrap_or(0),
            ));
        }
        if finals.iter().all(|(_, h, f)| *h >= head && *f >= head) {
            break;
        }
        if Instant::now() > until {
            bail!("not every member reached finality at height {head} within 60 s: {finals:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  [7/7] 全部成员达成最终确认 / every member final at height {head}");

    // ---------------------------------------------------------------- summary
    println!();
    println!("== 汇总 / Summary ==");
    println!(
        "区块 / blocks: {head}   交易 / transactions: {} committed valid, {} rejected   用时 / took {:.1} s",
        stats.valid,
        stats.rejected,
        started.elapsed().as_secs_f64()
    );
    println!("最终确认 / finality (member: height / final):");
    for (code, h, f) in &finals {
        println!("  {code}: {h} / {f}");
    }
    println!();
    print_city_indicators(net, &keys, head, &names).await?;

    // One full lineage.
    let tx = &disbursements[0];
    let trace = audit.get(&format!("/v1/trace/{tx}")).await?;
    println!();
    println!("资金溯源 / lineage of disbursement {}…:", &tx[..16]);
    for s in trace["steps"].as_array().map_or(&[][..], Vec::as_slice) {
        if s["kind"] == "bundle" {
            continue;
        }
        println!(
            "  {:<12} {} → {:<20} {:>14} 万元  {}{}",
            s["kind"].as_str().unwrap_or(""),
            s["from_org"].as_str().unwrap_or(""),
            s["to"].as_str().unwrap_or(""),
            s["amount_fen"].as_i64().unwrap_or(0) as f64 / WAN as f64,
            s["document"].as_str().unwrap_or(""),
            if s["late"] == true {
                "  [逾期 / late]"
            } else {
                ""
            }
        );
    }

    // One finality receipt from one member (a majority's agreeing signed
    // attestations), verified offline against the root and the consortium config.
    let c = client(&net.layout.members[0].code)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let b64 = loop {
        let (status, t) = c
            .api
            .json(
                "GET",
                &format!("/v1/transactions/{tx}?proof=final"),
                &c.key,
                None,
                &[],
            )
            .await?;
        match status {
            200 => break t["receipt_proof"].as_str().unwrap_or_default().to_owned(),
            409 if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            _ => bail!("GET /v1/transactions/{tx}?proof=final: {status} {t}"),
        }
    };
    let file = net.data.join(format!("receipt-{}.pb", &tx[..16]));
    {
        use base64::Engine as _;
        std::fs::write(
            &file,
            base64::engine::general_purpose::STANDARD.decode(b64)?,
        )?;
    }
    let ca = CaPaths::new(net.data.join("ca"));
    let certs = crate::receipt::load_certs(&ca.root_cert(), &net.data.join("signers"))?;
    let config = crate::receipt::read_config(&ca.consortium_config())?;
    let verified =
        crate::receipt::verify(&crate::receipt::read_proof(&file)?, &certs, Some(&config));
    println!();
    match verified {
        Ok(v) => println!(
            "离线验证回执 / receipt verified offline: {} — tx {}… {} in block {}, {} by {} of {} members ({})",
            file.display(),
            &v.tx_id[..16],
            v.status,
            v.block_number,
            if v.is_final {
                "最终确认 / final"
            } else {
                "NOT final"
            },
            v.attested_by.len(),
            v.members.len(),
            v.attested_by.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        // A devnet made by a build before 2026-12-02 has certificates issued
        // after its demo calendar's first blocks: say so, and go on.
        Err(e) => println!(
            "回执未通过离线验证 / the receipt did NOT verify offline: {e:#}\n  (a devnet made by an older build: start fresh with `make run RUN_ARGS=--reset`)"
        ),
    }
    println!(
        "  (again by hand: fiscus verify-receipt --file {} --root {} --certs-dir {} --config {})",
        file.display(),
        ca.root_cert().display(),
        net.data.join("signers").display(),
        ca.consortium_config().display()
    );
    if stats.late > 0 {
        println!("逾期下达 / late allocations flagged: {}", stats.late);
    }
    Ok(())
}

/// The summary's table of Hebei's cities, as the audit office's analytics
/// (统计分析) computes it, once that analytics has applied block `head`.
async fn print_city_indicators(
    net: &Devnet,
    keys: &BTreeMap<String, String>,
    head: u64,
    names: &BTreeMap<String, String>,
) -> Result<()> {
    let audit = "991300";
    let Some(addr) = net.analytics_addr(audit) else {
        println!("(this devnet layout runs no analytics service: no indicator table)");
        return Ok(());
    };
    let c = Client {
        api: Target::plain(addr),
        key: keys
            .get(audit)
            .cloned()
            .with_context(|| format!("no API key for {audit}"))?,
    };
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.get("/v1/analytics/status").await?;
        if s["as_of"]["height"].as_u64().unwrap_or(0) >= head {
            break;
        }
        if Instant::now() > until {
            bail!("the analytics of {audit} did not reach height {head} within 60 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = "/v1/analytics/regions/130000";
    let v = c.get(path).await?;
    println!();
    println!(
        "各设区市指标 / indicators per city (万元 / 10,000 yuan), from analytics http://{addr}{path}:"
    );
    println!(
        "  {:<8} {:>12} {:>12} {:>12} {:>10}  name 名称",
        "code", "received", "disbursed", "held", "支出进度"
    );
    println!(
        "  {:<8} {:>12} {:>12} {:>12} {:>10}",
        "", "收到下达", "支付", "结存", "spent %"
    );
    let wan = |f: &Value, k: &str| f[k].as_i64().unwrap_or(0) as f64 / WAN as f64;
    for child in v["children"].as_array().map_or(&[][..], Vec::as_slice) {
        let code = child["region"]["code"].as_str().unwrap_or("");
        let f = &child["figures"];
        let progress = f["expenditure_progress_bp"]
            .as_i64()
            .map_or("—".to_owned(), |bp| format!("{:.2}%", bp as f64 / 100.0));
        println!(
            "  {:<8} {:>12.2} {:>12.2} {:>12.2} {:>10}  {}",
            code,
            wan(f, "received_fen"),
            wan(f, "disbursed_fen"),
            wan(f, "held_fen"),
            progress,
            names.get(code).map_or("", |s| s.as_str()),
        );
    }
    Ok(())
}
