//! Client subcommands against a member's exchange-adapter: `status`,
//! `query`, `trace`, `submit`, `import` (validated first, then submitted in
//! chunks with progress), `export` and `governance`. Tables by default, `--json` for scripts.

mod bulk;
mod governance;
mod keys;
mod submit;

pub(crate) use bulk::{ExportCmd, ImportCmd, export, import};
pub(crate) use governance::{GovernanceCmd, governance};
pub(crate) use keys::{KeysCmd, keys};
pub(crate) use submit::{SubmitCmd, submit};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use fiscus_exchange_adapter::http_client::Target;
use serde_json::Value;
use std::path::PathBuf;

/// Where the API is and who calls it.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// The member's exchange-adapter, e.g. http://127.0.0.1:7110 or
    /// https://api.hebei.fiscus.internal:8080.
    /// Required by every command that calls the API.
    #[arg(long, env = "FISCUS_API")]
    api: Option<String>,
    /// For an https:// API: the PEM certificates of the roots to trust (the
    /// consortium root, e.g. `<devnet>/ca/ca/root.pem`).
    #[arg(long, env = "FISCUS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// An API key (`fsk_…`).
    /// Required by every command that calls the API.
    #[arg(long, env = "FISCUS_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Conn {
    fn target(&self) -> Result<Target> {
        let api = self.api.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "which API? give --api URL (or set FISCUS_API), e.g. http://127.0.0.1:7110"
            )
        })?;
        Ok(Target::parse(api, self.ca_file.as_deref())?)
    }

    /// The API key (`--key` or FISCUS_API_KEY).
    fn key(&self) -> Result<&str> {
        self.key
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no API key: give --key fsk_… (or set FISCUS_API_KEY)"))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self
            .target()?
            .json("GET", path, self.key()?, None, &[])
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
    fiscus_exchange_adapter::import_file::fen_to_yuan(i128::from(fen.as_i64().unwrap_or(0)))
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
