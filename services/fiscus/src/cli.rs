//! Client subcommands against a member's exchange-adapter: `status`,
//! `query`, `trace`, `submit`, `import` (validated first, then submitted in
//! chunks with progress) and `export`. Tables by default, `--json` for scripts.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use fiscus_exchange_adapter::bulk::ImportRow;
use fiscus_exchange_adapter::http_client::Target;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Where the API is and who calls it.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// The member's exchange-adapter, e.g. http://127.0.0.1:7110 or
    /// https://api.hebei.fiscus.internal:8080.
    #[arg(long, env = "FISCUS_API")]
    api: String,
    /// For an https:// API: the PEM certificates of the roots to trust (the
    /// consortium root, e.g. `<devnet>/ca/ca/root.pem`).
    #[arg(long, env = "FISCUS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// An API key (`fsk_…`).
    #[arg(long, env = "FISCUS_API_KEY", hide_env_values = true)]
    key: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Conn {
    fn target(&self) -> Result<Target> {
        Ok(Target::parse(&self.api, self.ca_file.as_deref())?)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self
            .target()?
            .json("GET", path, &self.key, None, &[])
            .await?;
        ok(status, v)
    }
}

/// A 2xx body, or the problem document as an error.
fn ok(status: u16, v: Value) -> Result<Value> {
    if (200..300).contains(&status) {
        Ok(v)
    } else {
        bail!(
            "HTTP {status} {}: {}",
            v["code"].as_str().unwrap_or(""),
            v["detail"]
                .as_str()
                .map_or_else(|| v.to_string(), str::to_owned)
        )
    }
}

fn print(json: bool, v: &Value, table: impl FnOnce(&Value)) {
    if json {
        println!("{v}");
    } else {
        table(v);
    }
}

fn yuan(fen: &Value) -> String {
    let f = fen.as_i64().unwrap_or(0);
    format!("{}.{:02}", f / 100, (f % 100).abs())
}

#[derive(Debug, Args)]
pub(crate) struct StatusCmd {
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn status(cmd: StatusCmd) -> Result<()> {
    let v = cmd.conn.get("/v1/chain").await?;
    print(cmd.conn.json, &v, |v| {
        println!("height 高度        {}", v["height"]);
        println!("final 最终确认      {}", v["final_height"]);
        println!(
            "last block 最新区块 {}",
            v["last_block_hash"].as_str().unwrap_or("")
        );
        println!(
            "state hash 状态哈希 {}",
            v["state_hash"].as_str().unwrap_or("")
        );
    });
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct QueryCmd {
    #[command(subcommand)]
    what: QueryWhat,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum QueryWhat {
    /// One account: `query account 130100 edu-2026`.
    Account { org: String, program: String },
    /// Accounts of one org (or every readable one), all pages.
    Accounts {
        #[arg(long)]
        org: Option<String>,
    },
    /// A transaction's receipt; `--save F` writes its receipt proof for `verify-receipt`.
    Tx {
        tx_id: String,
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// A block's header and tx ids.
    Block { number: u64 },
    /// Programs.
    Programs,
    /// Funds held past their Budget Law art. 52 deadline and not passed down
    /// (at the head, or at `--height`).
    Overdue {
        #[arg(long)]
        height: Option<u64>,
    },
}

pub(crate) async fn query(cmd: QueryCmd) -> Result<()> {
    let c = &cmd.conn;
    match cmd.what {
        QueryWhat::Overdue { height } => {
            let path = match height {
                Some(h) => format!("/v1/deadlines/overdue?height={h}"),
                None => "/v1/deadlines/overdue".to_owned(),
            };
            let v = c.get(&path).await?;
            print(c.json, &v, |v| {
                println!(
                    "逾期未下达 / overdue and not passed down at height {} ({}):",
                    v["height"],
                    v["as_of_date"].as_str().unwrap_or("")
                );
                println!(
                    "  {:<8} {:<16} {:>16} {:<18} {:<12} {:>5}",
                    "org", "program", "amount (fen)", "rule", "due", "days"
                );
                for i in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "  {:<8} {:<16} {:>16} {:<18} {:<12} {:>5}",
                        i["org_code"].as_str().unwrap_or(""),
                        i["program_id"].as_str().unwrap_or(""),
                        i["amount_fen"],
                        i["rule"].as_str().unwrap_or(""),
                        i["due_date"].as_str().unwrap_or(""),
                        i["days_overdue"]
                    );
                }
            });
        }
        QueryWhat::Account { org, program } => {
            let v = c.get(&format!("/v1/accounts/{org}/{program}")).await?;
            print(c.json, &v, |v| account_table(std::slice::from_ref(v)));
        }
        QueryWhat::Accounts { org } => {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = "/v1/accounts?limit=1000".to_owned();
                if let Some(o) = &org {
                    path.push_str(&format!("&org={o}"));
                }
                if let Some(cur) = &cursor {
                    path.push_str(&format!("&cursor={cur}"));
                }
                let page = c.get(&path).await?;
                all.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(n) => cursor = Some(n.to_owned()),
                    None => break,
                }
            }
            let v = Value::Array(all);
            print(c.json, &v, |v| {
                account_table(v.as_array().map_or(&[][..], Vec::as_slice))
            });
        }
        QueryWhat::Tx { tx_id, save } => {
            let v = c.get(&format!("/v1/transactions/{tx_id}")).await?;
            if let Some(path) = save {
                let b64 = v["receipt_proof"].as_str().context("no receipt_proof")?;
                std::fs::write(&path, b64)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("receipt proof written to {}", path.display());
            }
            print(c.json, &v, |v| {
                let r = &v["receipt"];
                println!("tx        {}", r["tx_id"].as_str().unwrap_or(""));
                println!("block     {} (index {})", r["block_number"], r["tx_index"]);
                println!(
                    "status    {} {}",
                    r["status"].as_str().unwrap_or(""),
                    r["reason"].as_str().unwrap_or("")
                );
                for a in v["attestations"].as_array().map_or(&[][..], Vec::as_slice) {
                    println!(
                        "attested  by {} at height {}",
                        a["member"].as_str().unwrap_or(""),
                        a["height"]
                    );
                }
            });
        }
        QueryWhat::Block { number } => {
            let v = c.get(&format!("/v1/blocks/{number}")).await?;
            print(c.json, &v, |v| {
                println!(
                    "block {}  hash {}",
                    v["number"],
                    v["hash"].as_str().unwrap_or("")
                );
                println!(
                    "time_ms {}  orderer {}",
                    v["timestamp_ms"],
                    v["orderer_id"].as_str().unwrap_or("")
                );
                for t in v["tx_ids"].as_array().map_or(&[][..], Vec::as_slice) {
                    println!("  tx {}", t.as_str().unwrap_or(""));
                }
            });
        }
        QueryWhat::Programs => {
            let v = c.get("/v1/programs?limit=1000").await?;
            print(c.json, &v, |v| {
                println!(
                    "{:<16} {:<9} {:<9} {:<6} name 名称",
                    "id", "kind", "function", "year"
                );
                for p in v["items"].as_array().map_or(&[][..], Vec::as_slice) {
                    println!(
                        "{:<16} {:<9} {:<9} {:<6} {}",
                        p["id"].as_str().unwrap_or(""),
                        p["kind"].as_str().unwrap_or(""),
                        p["functional_code"].as_str().unwrap_or(""),
                        p["fiscal_year"],
                        p["name"].as_str().unwrap_or("")
                    );
                }
            });
        }
    }
    Ok(())
}

fn account_table(rows: &[Value]) {
    println!(
        "{:<8} {:<16} {:>18} {:>18} {:>18} {:>18}",
        "org", "program", "balance 余额", "received 收到", "allocated 下达", "disbursed 支付"
    );
    for a in rows {
        println!(
            "{:<8} {:<16} {:>18} {:>18} {:>18} {:>18}",
            a["org_code"].as_str().unwrap_or(""),
            a["program_id"].as_str().unwrap_or(""),
            yuan(&a["balance_fen"]),
            yuan(&a["received_fen"]),
            yuan(&a["allocated_out_fen"]),
            yuan(&a["disbursed_fen"])
        );
    }
    println!("(amounts in yuan 元)");
}

#[derive(Debug, Args)]
pub(crate) struct TraceCmd {
    /// A disbursement's or allocation's tx id.
    tx_id: String,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn trace(cmd: TraceCmd) -> Result<()> {
    let v = cmd.conn.get(&format!("/v1/trace/{}", cmd.tx_id)).await?;
    print(cmd.conn.json, &v, |v| {
        println!("lineage 资金溯源 at height {}:", v["height"]);
        for s in v["steps"].as_array().map_or(&[][..], Vec::as_slice) {
            if s["kind"] == "bundle" {
                continue;
            }
            println!(
                "  {:<12} {} → {:<20} {:>18} 元  {}{}",
                s["kind"].as_str().unwrap_or(""),
                s["from_org"].as_str().unwrap_or(""),
                s["to"].as_str().unwrap_or(""),
                yuan(&s["amount_fen"]),
                s["document"].as_str().unwrap_or(""),
                if s["late"] == true {
                    "  [逾期 / late]"
                } else {
                    ""
                }
            );
        }
    });
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct SubmitCmd {
    #[command(subcommand)]
    op: SubmitOp,
    /// `ordered`, `commit` or `final`.
    #[arg(long, default_value = "commit", global = true)]
    wait: String,
    /// Makes a retry return the first result instead of submitting twice.
    #[arg(long, global = true)]
    idempotency_key: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum SubmitOp {
    /// Allocate from the client's org to a child org (custodial signing).
    Allocate {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount_fen: i64,
        #[arg(long)]
        document: String,
    },
    /// Acknowledge an allocation the client's org received.
    Acknowledge {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        allocation_tx_id: String,
    },
    /// Pay a final recipient, identified by unified social credit code.
    Disburse {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        recipient_uscc: String,
        #[arg(long)]
        recipient_name: String,
        #[arg(long)]
        amount_fen: i64,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        economic_code: String,
    },
    /// Freeze an account (a supervisor's API client only).
    Freeze {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        reason: String,
    },
    /// Unfreeze an account (a supervisor's API client only).
    Unfreeze {
        #[arg(long)]
        org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        reason: String,
    },
    /// A correction between two accounts of one program. The contract needs
    /// both orgs' signatures, which custodial signing cannot give: the API
    /// refuses it with `contract.needs_both_parties`; submit a client-signed
    /// envelope carrying both signatures (`POST /v1/transactions`) instead.
    Adjust {
        #[arg(long)]
        org: String,
        #[arg(long)]
        to_org: String,
        #[arg(long)]
        program: String,
        #[arg(long)]
        amount_fen: i64,
        /// The tx id this corrects.
        #[arg(long)]
        corrects: String,
        #[arg(long)]
        reason: String,
    },
}

pub(crate) async fn submit(cmd: SubmitCmd) -> Result<()> {
    let op = match &cmd.op {
        SubmitOp::Allocate {
            org,
            program,
            to,
            amount_fen,
            document,
        } => json!({"op": "allocate", "from": {"org_code": org, "program_id": program},
                    "to_org_code": to, "amount_fen": amount_fen, "document": document}),
        SubmitOp::Acknowledge {
            org,
            program,
            allocation_tx_id,
        } => json!({"op": "acknowledge", "account": {"org_code": org, "program_id": program},
                    "allocation_tx_id": allocation_tx_id}),
        SubmitOp::Disburse {
            org,
            program,
            recipient_uscc,
            recipient_name,
            amount_fen,
            purpose,
            economic_code,
        } => json!({"op": "disburse", "from": {"org_code": org, "program_id": program},
                    "recipient": {"unified_social_credit_code": recipient_uscc, "name": recipient_name},
                    "amount_fen": amount_fen, "purpose": purpose, "economic_code": economic_code}),
        SubmitOp::Freeze {
            org,
            program,
            reason,
        } => json!({"op": "freeze", "account": {"org_code": org, "program_id": program},
                    "reason": reason}),
        SubmitOp::Unfreeze {
            org,
            program,
            reason,
        } => json!({"op": "unfreeze", "account": {"org_code": org, "program_id": program},
                    "reason": reason}),
        SubmitOp::Adjust {
            org,
            to_org,
            program,
            amount_fen,
            corrects,
            reason,
        } => json!({"op": "adjust", "from": {"org_code": org, "program_id": program},
                    "to": {"org_code": to_org, "program_id": program},
                    "amount_fen": amount_fen, "corrects_tx_id": corrects, "reason": reason}),
    };
    let mut extra = Vec::new();
    if let Some(k) = &cmd.idempotency_key {
        extra.push(("Idempotency-Key", k.as_str()));
    }
    let (status, v) = cmd
        .conn
        .target()?
        .json(
            "POST",
            &format!("/v1/operations?wait={}", cmd.wait),
            &cmd.conn.key,
            Some(&op),
            &extra,
        )
        .await?;
    let v = ok(status, v)?;
    print(cmd.conn.json, &v, |v| {
        println!(
            "tx {}  {} in block {}{}",
            v["tx_id"].as_str().unwrap_or(""),
            v["state"].as_str().unwrap_or(""),
            v["block_number"],
            v["receipt"]["status"]
                .as_str()
                .map(|s| format!(
                    "  receipt: {s} {}",
                    v["receipt"]["reason"].as_str().unwrap_or("")
                ))
                .unwrap_or_default()
        );
    });
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct ImportCmd {
    /// A CSV file (header row) or a JSON array of rows; see docs/bulk-import.md.
    file: PathBuf,
    /// Rows per request after validation (each request reports progress).
    #[arg(long, default_value_t = 500)]
    chunk: usize,
    /// Validate only.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    conn: Conn,
}

fn read_rows(path: &std::path::Path) -> Result<Vec<ImportRow>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if is_json {
        return serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a JSON array of import rows", path.display()));
    }
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(&bytes[..]);
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} data row {}", path.display(), i + 1)))
        .collect()
}

pub(crate) async fn import(cmd: ImportCmd) -> Result<bool> {
    let rows = read_rows(&cmd.file)?;
    let target = cmd.conn.target()?;
    let post = |rows: &[ImportRow], dry: bool| {
        let body = serde_json::to_string(rows);
        let key = cmd.conn.key.clone();
        let target = target.clone();
        async move {
            target
                .request(
                    "POST",
                    &format!("/v1/imports?format=json&dry_run={dry}"),
                    &key,
                    Some(&body?),
                    &[],
                )
                .await
        }
    };
    // The whole file is validated first: one bad row and nothing is submitted.
    eprintln!("import: validating {} rows…", rows.len());
    let (status, raw) = post(&rows, true).await?;
    let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if status == 422 {
        if cmd.conn.json {
            println!("{v}");
        } else {
            println!(
                "导入被拒绝 / import refused: {}",
                v["detail"].as_str().unwrap_or("")
            );
            println!("{:>6}  {:<20} message", "row", "external_id");
            for e in v["errors"].as_array().map_or(&[][..], Vec::as_slice) {
                println!(
                    "{:>6}  {:<20} {}",
                    e["row"].as_u64().unwrap_or(0),
                    e["external_id"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
        }
        return Ok(false);
    }
    let v = ok(status, v)?;
    if cmd.dry_run {
        print(cmd.conn.json, &v, |v| {
            println!(
                "{} rows valid ({} already imported); nothing submitted (--dry-run)",
                v["rows"], v["already_imported"]
            );
        });
        return Ok(true);
    }
    let (mut submitted, mut already, mut results) = (0u64, 0u64, Vec::new());
    let total = rows.len();
    for (i, chunk) in rows.chunks(cmd.chunk.max(1)).enumerate() {
        let offset = (i * cmd.chunk.max(1)) as u64;
        let (status, raw) = post(chunk, false).await?;
        let mut v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        // The server numbers each chunk's rows from 1; report them as file rows.
        for list in ["results", "errors"] {
            if let Some(items) = v[list].as_array_mut() {
                for item in items {
                    if let Some(r) = item["row"].as_u64() {
                        item["row"] = json!(r + offset);
                    }
                }
            }
        }
        let v = ok(status, v).with_context(|| {
            format!(
                "chunk from file row {} (rows before it were submitted; re-running the file skips them)",
                offset + 1
            )
        })?;
        submitted += v["submitted"].as_u64().unwrap_or(0);
        already += v["already_imported"].as_u64().unwrap_or(0);
        results.extend(v["results"].as_array().cloned().unwrap_or_default());
        let done = (i * cmd.chunk.max(1) + chunk.len()).min(total);
        eprintln!(
            "import: [{:<30}] {done}/{total} rows ({submitted} submitted, {already} already imported)",
            "#".repeat(done * 30 / total.max(1))
        );
    }
    let out = json!({"rows": total, "submitted": submitted, "already_imported": already, "results": results});
    print(cmd.conn.json, &out, |_| {
        println!(
            "导入完成 / import done: {total} rows, {submitted} submitted, {already} already imported"
        );
    });
    Ok(true)
}

#[derive(Debug, Args)]
pub(crate) struct ExportCmd {
    /// `accounts`, `allocations` (with deadline status) or `disbursements`.
    what: String,
    /// `csv` or `json`.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn export(cmd: ExportCmd) -> Result<()> {
    if !["accounts", "allocations", "disbursements"].contains(&cmd.what.as_str()) {
        bail!(
            "export what? accounts, allocations or disbursements (not {:?})",
            cmd.what
        );
    }
    let (status, raw) = cmd
        .conn
        .target()?
        .request(
            "GET",
            &format!("/v1/exports/{}?format={}", cmd.what, cmd.format),
            &cmd.conn.key,
            None,
            &[],
        )
        .await?;
    if status != 200 {
        ok(status, serde_json::from_slice(&raw).unwrap_or(Value::Null))?;
    }
    match &cmd.out {
        Some(p) => {
            std::fs::write(p, &raw).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("export: {} bytes written to {}", raw.len(), p.display());
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&raw)?;
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCmd {
    /// A new API key and its `[[client]]` entry for the adapter's clients file. The key
    /// is printed once; the file keeps only its SHA-256.
    ApiKey {
        #[arg(long)]
        name: String,
        /// The org (GB/T 2260 code) the client acts for.
        #[arg(long)]
        org: String,
        /// Comma-separated: submit, read, import, admin.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        scopes: Vec<String>,
    },
    /// What a certificate says: its id (as envelopes name it), member, role and validity.
    Show { cert: PathBuf },
}

pub(crate) fn keys(cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::ApiKey { name, org, scopes } => {
            use fiscus_exchange_adapter::clients::{
                ClientEntry, ClientsFile, Scope, key_hash, new_api_key,
            };
            if !fiscus_common::tls::is_member_code(&org) {
                bail!("--org {org:?} is not a six-digit GB/T 2260 code");
            }
            let scopes = scopes
                .iter()
                .map(|s| match s.trim() {
                    "submit" => Ok(Scope::Submit),
                    "read" => Ok(Scope::Read),
                    "import" => Ok(Scope::Import),
                    "admin" => Ok(Scope::Admin),
                    other => bail!("scope {other:?} is not submit, read, import or admin"),
                })
                .collect::<Result<Vec<_>>>()?;
            let key = new_api_key();
            let entry = ClientsFile {
                clients: vec![ClientEntry {
                    name,
                    key_sha256: key_hash(&key),
                    org,
                    scopes,
                    custodial_cert: None,
                    custodial_key: None,
                }],
            };
            eprintln!("API key (give it to the client; it is not stored anywhere): {key}");
            println!("# append to the exchange-adapter's clients file");
            print!("{}", toml::to_string(&entry)?);
        }
        KeysCmd::Show { cert } => {
            let pem =
                std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
            let der = fiscus_common::tls::parse_certs(&cert, &pem)?;
            let leaf = der.first().context("no certificate in the file")?;
            let id = fiscus_common::tls::PeerIdentity::from_der(leaf)?;
            println!("cert id   {}", id.cert_id);
            println!("member    {}", id.member);
            println!("role      {:?}", id.role);
            println!(
                "valid     {} .. {} (Unix seconds)",
                id.not_before, id.not_after
            );
            println!("serial    {}", hex::encode(&id.serial));
        }
    }
    Ok(())
}
