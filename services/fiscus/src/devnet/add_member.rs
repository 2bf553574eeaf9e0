//! `fiscus devnet add-member`: a finance bureau joins a running devnet the way
//! it joins a deployed consortium, step by step: a member proposes it through
//! its exchange-adapter, the others vote until the proposal passes, the CA's
//! operator (the devnet's 000000 admin) asks the CA for its enrollment
//! secrets (the CA checks that the chain lists it), its node, client and
//! admin identities are enrolled, and its services start as one `fiscus
//! member` process that catches up from genesis and attests. Its
//! certificates are in nobody's `signers` directory: what it signs carries
//! them (`Signature.certificate`).

use super::layout::{Layout, ports};
use super::processes::ProcPorts;
use super::setup::member_dir;
use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_common::tls::{Endpoint, TlsConfig, is_member_code};
use fiscus_exchange_adapter::clients::{ClientsFile, new_api_key};
use fiscus_exchange_adapter::http_client::Target;
use fiscus_identity_ca::ca::{CaPaths, KeyType, write_file};
use fiscus_identity_ca::client::{self, EnrollArgs};
use fiscus_proto::pb::identity::IssueSecretsRequest;
use fiscus_proto::pb::types::Role;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub(crate) struct AddMemberCmd {
    /// The running devnet's data directory.
    #[arg(long, default_value = "devnet-data")]
    data_dir: PathBuf,
    /// The bureau's GB/T 2260 code, e.g. 130600.
    #[arg(long)]
    code: String,
    /// Its name, e.g. 保定市财政局.
    #[arg(long)]
    name: String,
    /// `municipal`, `county`, `provincial` or `supervisor`.
    #[arg(long, default_value = "municipal")]
    level: String,
    /// The parent org's code.
    #[arg(long, default_value = "130000")]
    parent: String,
    /// The member that proposes it.
    #[arg(long, default_value = "130000")]
    proposer: String,
    /// Stop the new member once it attests, instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

/// How long each step may take before the command gives up.
const STEP_LIMIT: Duration = Duration::from_secs(120);

struct Api {
    target: Target,
    key: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, v) = self.target.json(method, path, &self.key, body, &[]).await?;
        if !(200..300).contains(&status) {
            bail!(
                "{method} {path}: HTTP {status} {}: {}",
                v["code"].as_str().unwrap_or(""),
                v["detail"].as_str().unwrap_or("")
            );
        }
        if let Some(r) = v["receipt"]["reason"].as_str().filter(|r| !r.is_empty()) {
            bail!("{method} {path}: the chain refused it: {r}");
        }
        Ok(v)
    }
}

fn api_of(data: &Path, layout: &Layout, code: &str) -> Result<Api> {
    let key = super::api_keys(data)?
        .into_iter()
        .find(|(m, _)| m == code)
        .map(|(_, k)| k)
        .with_context(|| format!("no API key of member {code} in api-keys.txt"))?;
    let m = layout
        .members
        .iter()
        .find(|m| m.code == code)
        .with_context(|| format!("{code} is not a member of this devnet"))?;
    Ok(Api {
        target: Target::parse(&format!("http://{}", m.api), None)?,
        key,
    })
}

/// Waits until `f` answers `Some`, every 200 ms, for at most [`STEP_LIMIT`].
async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + STEP_LIMIT;
    let mut last_error = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            bail!(
                "{what}: not within {} s{}",
                STEP_LIMIT.as_secs(),
                last_error
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn add_member(cmd: AddMemberCmd) -> Result<()> {
    let data = &cmd.data_dir;
    let layout: Layout =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).with_context(|| {
            format!(
                "{} holds no devnet (run `fiscus devnet` first)",
                data.display()
            )
        })?)?;
    if !is_member_code(&cmd.code) {
        bail!("--code {:?} is not a six-digit GB/T 2260 code", cmd.code);
    }
    let dir = member_dir(data, &cmd.code);
    if dir.0.exists() {
        bail!(
            "{} exists: {} already joined this devnet (start it with `fiscus member --config {}`)",
            dir.0.display(),
            cmd.code,
            dir.0.join("member.toml").display()
        );
    }
    let admin = member_dir(data, "000000").admin();
    if !admin.join("cert.pem").exists() {
        bail!(
            "{} has no CA operator identity ({}); this devnet predates `add-member`: recreate it with --reset",
            data.display(),
            admin.display()
        );
    }
    let proposer = api_of(data, &layout, &cmd.proposer)?;
    let started = Instant::now();
    // Not a port the devnet gave out: a service being restarted has let its go.
    let mut taken: Vec<SocketAddr> = layout.addrs().into_iter().map(|(_, a)| a).collect();
    taken.extend(ProcPorts::read(data)?.iter().flat_map(ProcPorts::addrs));
    let p = ports(0, 6, &taken)?;
    let (ledger, ledger_http, gateway, gateway_http, api, api_http) =
        (p[0], p[1], p[2], p[3], p[4], p[5]);

    // 1. The proposal.
    let change = json!({
        "kind": "add_member",
        "org": {"code": cmd.code, "name": cmd.name, "level": cmd.level, "parent": cmd.parent},
        "member": {"org_code": cmd.code, "gossip_endpoints": [format!("https://{gateway}")],
                   "roles": ["node", "admin", "operator", "client", "auditor"],
                   "allowed_names": fiscus_identity_ca::genesis::devnet_allowed_names(&cmd.code)},
    });
    let title = format!("{}加入联盟 / {} joins the consortium", cmd.name, cmd.code);
    let v = proposer
        .call(
            "POST",
            "/v1/governance/proposals?wait=commit",
            Some(&json!({"title": title, "change": change})),
        )
        .await
        .context("proposing")?;
    let id = v["tx_id"].as_str().unwrap_or_default().to_owned();
    let proposed_in = v["block_number"].as_u64().unwrap_or(0);
    println!(
        "1. 提案 proposal {id} by {} in block {proposed_in}",
        cmd.proposer
    );

    // 2. The votes, until it passes.
    let mut passed_in = None;
    for m in layout.members.iter().filter(|m| m.code != cmd.proposer) {
        let voter = api_of(data, &layout, &m.code)?;
        let v = voter
            .call(
                "POST",
                &format!("/v1/governance/proposals/{id}/votes?wait=commit"),
                Some(&json!({"approve": true})),
            )
            .await
            .with_context(|| format!("{} voting", m.code))?;
        let block = v["block_number"].as_u64().unwrap_or(0);
        // The tally as the voter's member sees it: it has committed the vote
        // (another member may not have yet, and would show the vote missing).
        let p = voter
            .call("GET", &format!("/v1/governance/proposals/{id}"), None)
            .await?;
        println!(
            "2. 投票 vote yes by {} in block {block}: {} yes{}",
            m.code,
            p["yes"].as_array().map_or(0, Vec::len),
            if p["status"] == "open" {
                format!(", {} needed", p["votes_needed"])
            } else {
                String::new()
            }
        );
        if p["status"] == "passed" {
            passed_in = Some(block);
            break;
        }
    }
    let passed_in = passed_in.context("the proposal did not pass with every member's vote")?;
    println!(
        "   通过 passed in block {passed_in}; {} is a member from block {}",
        cmd.code,
        passed_in + 1
    );

    // 3. Enrollment: secrets from the CA (which must see the chain list it), then the identities.
    let ca_paths = CaPaths::new(data.join("ca"));
    let ca_addr = layout.ca_grpc.to_string();
    let mut operator = client::connect(&ca_addr, "localhost", Some(&admin), &ca_paths.root_cert())
        .await
        .context("connecting to the devnet's identity-ca as its operator")?;
    let roles = [Role::Node, Role::Client, Role::Admin];
    let secrets = until("the CA to list the new member", async || {
        match operator
            .issue_secrets(IssueSecretsRequest {
                org_code: cmd.code.clone(),
                roles: roles.iter().map(|r| *r as i32).collect(),
            })
            .await
        {
            Ok(r) => Ok(Some(r.into_inner().secrets)),
            Err(s) if s.message().contains("not a member") => Ok(None),
            Err(s) => Err(fiscus_identity_ca::Error::from_status(&s).into()),
        }
    })
    .await?;
    let mut anonymous = client::connect(&ca_addr, "localhost", None, &ca_paths.root_cert()).await?;
    for s in &secrets {
        let role = Role::try_from(s.role).unwrap_or(Role::Unspecified);
        let (out, ips) = match role {
            Role::Node => (dir.node(), vec!["127.0.0.1".to_owned()]),
            Role::Client => (dir.client(), Vec::new()),
            _ => (dir.admin(), Vec::new()),
        };
        client::enroll(
            &mut anonymous,
            &EnrollArgs {
                member: cmd.code.clone(),
                role,
                secret: Some(s.secret.clone()),
                dns_names: if role == Role::Node {
                    vec!["localhost".into()]
                } else {
                    Vec::new()
                },
                ips,
                out_dir: out.clone(),
                key_type: KeyType::Ed25519,
                ecdsa_certificate: role == Role::Node,
            },
        )
        .await
        .with_context(|| {
            format!(
                "enrolling the {} identity",
                fiscus_common::tls::role_name(role)
            )
        })?;
    }
    println!(
        "3. 证书 enrolled node, client and admin identities under {}",
        dir.0.display()
    );

    // 4. Its configuration and API key, then its services as one process.
    let key = new_api_key();
    let clients = ClientsFile {
        clients: vec![super::setup::main_client(&cmd.code, &key, &dir)],
    };
    write_file(
        &dir.clients_file(),
        toml::to_string(&clients)?.as_bytes(),
        0o600,
    )?;
    let config = crate::member::MemberConfig {
        member: cmd.code.clone(),
        tls: TlsConfig {
            crl_file: Some(ca_paths.crl()),
            reload_interval_secs: super::setup::DEVNET_TLS_RELOAD_SECS,
            ..TlsConfig::in_dir(&dir.node())
        },
        server_name: "127.0.0.1".into(),
        genesis_file: ca_paths.consortium_config(),
        signers_dir: data.join("signers"),
        data_dir: dir.0.join("data"),
        orderers: layout
            .orderers
            .iter()
            .map(|o| Endpoint {
                addr: o.client.to_string(),
                server_name: format!("orderer-{}", o.id),
            })
            .collect(),
        clients_file: dir.clients_file(),
        ledger_listen: ledger,
        ledger_http_listen: ledger_http,
        gateway_listen: gateway,
        gateway_http_listen: gateway_http,
        api_listen: api,
        api_http_listen: api_http,
        // Plain HTTP like the other devnet adapters; the ledger executes in process.
        api_tls: false,
        executor: false,
        ..Default::default()
    };
    let config_file = dir.0.join("member.toml");
    write_file(&config_file, toml::to_string(&config)?.as_bytes(), 0o644)?;
    let mut keys = std::fs::read_to_string(data.join("api-keys.txt"))?;
    keys.push_str(&super::setup::main_key_line(
        &cmd.code,
        &api.to_string(),
        &key,
    ));
    write_file(&data.join("api-keys.txt"), keys.as_bytes(), 0o600)?;
    std::fs::create_dir_all(data.join("logs"))?;
    let log = data.join("logs").join(format!("member-{}.log", cmd.code));
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("member")
        .arg("--config")
        .arg(&config_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting `fiscus member`")?;
    println!(
        "4. 启动 started its services (fiscus member --config {}), API http://{api}, log {}",
        config_file.display(),
        log.display()
    );

    // 5. Catch-up from genesis, and 6. its attestations counting toward finality.
    let own = Api {
        target: Target::parse(&format!("http://{api}"), None)?,
        key: key.clone(),
    };
    let head = proposer.call("GET", "/v1/chain", None).await?["height"]
        .as_u64()
        .unwrap_or(0);
    let catching = Instant::now();
    let reached = until("the new member to catch up", async || {
        if let Ok(Some(status)) = child.try_wait() {
            bail!("`fiscus member` exited ({status}); see {}", log.display());
        }
        let h = own.call("GET", "/v1/chain", None).await?["height"]
            .as_u64()
            .unwrap_or(0);
        Ok((h >= head).then_some(h))
    })
    .await?;
    let secs = catching.elapsed().as_secs_f64().max(0.001);
    println!(
        "5. 同步 caught up from genesis to block {reached} in {secs:.1} s ({:.0} blocks/s)",
        reached as f64 / secs
    );
    let final_height = until("a final block the new member attested", async || {
        let c = own.call("GET", "/v1/chain", None).await?;
        let f = c["final_height"].as_u64().unwrap_or(0);
        Ok((f >= head).then_some(f))
    })
    .await?;
    let members = proposer.call("GET", "/v1/governance/config", None).await?["members"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "6. 见证 attesting: its gateway holds block {final_height} final, agreed by a majority \
         ({}) of the {members} members; {} joined in {:.1} s",
        members / 2 + 1,
        cmd.code,
        started.elapsed().as_secs_f64()
    );
    println!(
        "   API key 接口密钥 {key} (also in {})",
        data.join("api-keys.txt").display()
    );
    if cmd.exit {
        child.kill().await.ok();
        return Ok(());
    }
    println!(
        "Serving until Ctrl-C (按 Ctrl-C 停止); later: fiscus member --config {}",
        config_file.display()
    );
    tokio::select! {
        () = fiscus_common::shutdown_signal() => {
            child.kill().await.ok();
        }
        status = child.wait() => {
            bail!("`fiscus member` exited ({:?}); see {}", status.ok(), log.display());
        }
    }
    Ok(())
}
