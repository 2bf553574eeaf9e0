//! `fiscus governance`: propose changes to the consortium configuration, vote
//! on them, list proposals with their tallies, and show the configuration.
//! The API key needs the `govern` scope to propose and vote (custodial
//! signing by the member), `read` to list.

use super::{Conn, ok, print};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct GovernanceCmd {
    #[command(subcommand)]
    what: GovernanceWhat,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum GovernanceWhat {
    /// Propose a change. The proposing member votes yes with it.
    Propose(ProposeArgs),
    /// Vote on an open proposal (`--yes` or `--no`; a vote never changes).
    Vote {
        /// The proposal id (the tx id `propose` printed).
        proposal: String,
        #[arg(long, conflicts_with = "no", required_unless_present = "no")]
        yes: bool,
        #[arg(long)]
        no: bool,
        #[command(flatten)]
        submit: SubmitOpts,
    },
    /// Proposals, newest first, with their tallies and who voted.
    Proposals {
        /// `open`, `passed`, `failed` or `all`.
        #[arg(long, default_value = "all")]
        status: String,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One proposal.
    Proposal { id: String },
    /// The consortium configuration (members, orgs, policy, CRL, limits).
    Config {
        /// At this height (default: the head).
        #[arg(long)]
        height: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct SubmitOpts {
    /// `ordered`, `commit` or `final`.
    #[arg(long, default_value = "commit")]
    wait: String,
    /// Makes a retry return the first result instead of submitting twice.
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
struct ProposeArgs {
    /// What the change is for, e.g. "保定市财政局加入联盟".
    #[arg(long)]
    title: String,
    #[command(subcommand)]
    change: ChangeArg,
    #[command(flatten)]
    submit: SubmitOpts,
}

#[derive(Debug, Subcommand)]
enum ChangeArg {
    /// A finance bureau joins as a member (its org is added to the registry).
    AddMember {
        /// GB/T 2260 code, e.g. 130600.
        #[arg(long)]
        code: String,
        /// e.g. 保定市财政局.
        #[arg(long)]
        name: String,
        /// `provincial`, `municipal`, `county` or `supervisor`.
        #[arg(long)]
        level: String,
        /// The parent org's code, e.g. 130000.
        #[arg(long)]
        parent: String,
        /// Its gossip-gateway endpoint, e.g. https://gw.baoding.example:7443 (repeatable).
        #[arg(long = "gateway")]
        gateways: Vec<String>,
        /// A name the identity-ca may certify for it (repeatable).
        #[arg(long = "allowed-name")]
        allowed_names: Vec<String>,
        /// Certificate roles it may hold (repeatable).
        #[arg(long = "role", default_values = ["node", "admin", "operator", "client", "auditor"])]
        roles: Vec<String>,
    },
    /// A member leaves: from the next block every certificate of its org is refused.
    RemoveMember {
        #[arg(long)]
        code: String,
        #[arg(long)]
        reason: String,
    },
    /// Any change, as the API's JSON `change` object (see the OpenAPI
    /// document, schema ChangeJson), from a file; `-` reads standard input.
    Json { file: PathBuf },
}

fn change_json(c: &ChangeArg) -> Result<Value> {
    Ok(match c {
        ChangeArg::AddMember {
            code,
            name,
            level,
            parent,
            gateways,
            allowed_names,
            roles,
        } => json!({
            "kind": "add_member",
            "org": {"code": code, "name": name, "level": level, "parent": parent},
            "member": {"org_code": code, "gossip_endpoints": gateways,
                       "roles": roles, "allowed_names": allowed_names},
        }),
        ChangeArg::RemoveMember { code, reason } => {
            json!({"kind": "remove_member", "org_code": code, "reason": reason})
        }
        ChangeArg::Json { file } => {
            let bytes = crate::read_input(file)?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a JSON change", file.display()))?
        }
    })
}

async fn post(conn: &Conn, path: &str, body: &Value, opts: &SubmitOpts) -> Result<Value> {
    let mut extra = Vec::new();
    if let Some(k) = &opts.idempotency_key {
        extra.push(("Idempotency-Key", k.as_str()));
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, v) = conn
        .target()?
        .json(
            "POST",
            &format!("{path}{sep}wait={}", opts.wait),
            conn.key()?,
            Some(body),
            &extra,
        )
        .await?;
    let v = ok(status, v)?;
    // A refusal at commit is the contract's: make it the command's failure.
    if let Some(reason) = v["receipt"]["reason"].as_str().filter(|r| !r.is_empty()) {
        bail!(
            "the chain refused tx {} in block {}: {} ({reason})",
            v["tx_id"].as_str().unwrap_or(""),
            v["block_number"],
            v["receipt"]["status"].as_str().unwrap_or("")
        );
    }
    Ok(v)
}

fn list(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// A one-line summary of a change.
fn describe(c: &Value) -> String {
    match c["kind"].as_str().unwrap_or("") {
        "add_member" => format!(
            "add_member {} {}",
            c["org"]["code"].as_str().unwrap_or(""),
            c["org"]["name"].as_str().unwrap_or("")
        ),
        "remove_member" => format!(
            "remove_member {} ({})",
            c["org_code"].as_str().unwrap_or(""),
            c["reason"].as_str().unwrap_or("")
        ),
        "update_member" => format!(
            "update_member {}",
            c["member"]["org_code"].as_str().unwrap_or("")
        ),
        "upsert_org" => format!(
            "upsert_org {} {}",
            c["org"]["code"].as_str().unwrap_or(""),
            c["org"]["name"].as_str().unwrap_or("")
        ),
        other => other.to_owned(),
    }
}

fn print_proposal(p: &Value) {
    let open = p["status"] == "open";
    println!(
        "{}  {:<7} yes {:<2} no {:<2}{}  {}  「{}」",
        p["id"].as_str().unwrap_or(""),
        p["status"].as_str().unwrap_or(""),
        p["yes"].as_array().map_or(0, Vec::len),
        p["no"].as_array().map_or(0, Vec::len),
        if open {
            format!(" need {:<2}", p["votes_needed"])
        } else {
            String::new()
        },
        describe(&p["change"]),
        p["title"].as_str().unwrap_or("")
    );
    println!(
        "    赞成 yes: {}   反对 no: {}   未投票 not voted: {}{}",
        list(&p["yes"]),
        list(&p["no"]),
        list(&p["not_voted"]),
        match p["decided_height"].as_u64() {
            Some(h) if h > 0 => format!("   decided in block {h}"),
            _ => String::new(),
        }
    );
}

fn print_submitted(v: &Value, what: &str) {
    println!(
        "{what} {}  {} in block {}",
        v["tx_id"].as_str().unwrap_or(""),
        v["state"].as_str().unwrap_or(""),
        v["block_number"],
    );
}

pub(crate) async fn governance(cmd: GovernanceCmd) -> Result<()> {
    let conn = &cmd.conn;
    match &cmd.what {
        GovernanceWhat::Propose(p) => {
            let body = json!({"title": p.title, "change": change_json(&p.change)?});
            let v = post(conn, "/v1/governance/proposals", &body, &p.submit).await?;
            print(conn.json, &v, |v| print_submitted(v, "proposal 提案"));
        }
        GovernanceWhat::Vote {
            proposal,
            yes,
            no: _,
            submit,
        } => {
            let v = post(
                conn,
                &format!("/v1/governance/proposals/{proposal}/votes"),
                &json!({"approve": yes}),
                submit,
            )
            .await?;
            print(conn.json, &v, |v| {
                print_submitted(
                    v,
                    if *yes {
                        "vote yes 赞成"
                    } else {
                        "vote no 反对"
                    },
                );
            });
        }
        GovernanceWhat::Proposals { status, limit } => {
            let mut path = format!("/v1/governance/proposals?status={status}");
            if let Some(l) = limit {
                path.push_str(&format!("&limit={l}"));
            }
            let v = conn.get(&path).await?;
            print(conn.json, &v, |v| {
                println!(
                    "提案 proposals at height {}: {} (showing {})",
                    v["height"],
                    v["total"],
                    v["items"].as_array().map_or(0, Vec::len)
                );
                for p in v["items"].as_array().into_iter().flatten() {
                    print_proposal(p);
                }
            });
        }
        GovernanceWhat::Proposal { id } => {
            let v = conn.get(&format!("/v1/governance/proposals/{id}")).await?;
            print(conn.json, &v, print_proposal);
        }
        GovernanceWhat::Config { height } => {
            let path = match height {
                Some(h) => format!("/v1/governance/config?height={h}"),
                None => "/v1/governance/config".to_owned(),
            };
            let v = conn.get(&path).await?;
            print(conn.json, &v, |v| {
                println!(
                    "联盟配置 consortium {} version {} (changed in block {}, read at height {})",
                    v["consortium_id"].as_str().unwrap_or(""),
                    v["version"],
                    v["changed_at_height"],
                    v["height"]
                );
                println!(
                    "表决 policy: yes × {} > members × {}: {} of {} members",
                    v["policy"]["denominator"],
                    v["policy"]["numerator"],
                    v["votes_needed"],
                    v["members"].as_array().map_or(0, Vec::len)
                );
                let names: std::collections::BTreeMap<&str, &str> = v["orgs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| Some((o["code"].as_str()?, o["name"].as_str()?)))
                    .collect();
                println!("成员 members:");
                for m in v["members"].as_array().into_iter().flatten() {
                    let code = m["org_code"].as_str().unwrap_or("");
                    println!(
                        "  {code} {:<12} {}",
                        names.get(code).copied().unwrap_or(""),
                        list(&m["gossip_endpoints"])
                    );
                }
                for r in v["revoked_orgs"].as_array().into_iter().flatten() {
                    println!(
                        "  已退出 left: {} from block {} ({})",
                        r["org_code"].as_str().unwrap_or(""),
                        r["effective_height"],
                        r["reason"].as_str().unwrap_or("")
                    );
                }
                println!(
                    "机构 orgs: {}   排序节点 orderers: {}   CRL #{} ({} revoked)",
                    v["orgs"].as_array().map_or(0, Vec::len),
                    v["orderers"].as_array().map_or(0, Vec::len),
                    v["crl_number"],
                    v["revoked_certificates"].as_array().map_or(0, Vec::len)
                );
            });
        }
    }
    Ok(())
}
