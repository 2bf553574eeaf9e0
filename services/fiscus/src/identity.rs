//! `fiscus identity-ca …`, `enroll`, `sign`, `verify`, `revoke`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use fiscus_common::tls::parse_role;
use fiscus_identity_ca::{Config, InitOptions, client};
use fiscus_proto::pb::identity::{RevokeRequest, VerifyRequest};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct IdentityCaCmd {
    #[command(subcommand)]
    command: Option<CaSub>,
    /// Config file (TOML); `FISCUS_IDENTITY_CA__*` variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    check: crate::check_config::CheckArgs,
}

#[derive(Debug, Subcommand)]
enum CaSub {
    /// Create the root CA, the genesis bundle and one-time enrollment secrets.
    Init {
        /// Defaults to the config's `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "fiscus-devnet")]
        consortium_id: String,
        /// Replace an existing CA (its certificates become useless).
        #[arg(long)]
        force: bool,
        /// Every Hebei division as an org, not just the five-org devnet set.
        #[arg(long)]
        all_hebei: bool,
        /// DNS names / IPs of the CA's own serving certificate.
        #[arg(long = "san", default_values = ["localhost", "identity-ca", "127.0.0.1"])]
        sans: Vec<String>,
        #[arg(long, default_value_t = 10)]
        root_validity_years: u32,
    },
    /// One-time enrollment secrets for a member voted in after genesis (the
    /// running CA checks that the chain lists it). Needs an admin
    /// certificate of 000000, the CA's operator, in --tls-dir. Prints them
    /// as JSON, once: hand each to the new member's staff, who run
    /// `fiscus enroll --secret …`.
    Secrets {
        #[command(flatten)]
        endpoint: CaEndpoint,
        /// The new member's code, e.g. 130600.
        #[arg(long)]
        member: String,
        /// A role to enroll (repeatable).
        #[arg(long = "role", default_values = ["node", "client", "admin"])]
        roles: Vec<String>,
    },
}

/// Where to reach the CA.
#[derive(Debug, Args)]
pub(crate) struct CaEndpoint {
    /// `host:port` of the CA's gRPC endpoint.
    #[arg(long, default_value = "127.0.0.1:7100")]
    ca: String,
    /// The name the CA's certificate must carry (SAN).
    #[arg(long, default_value = "localhost")]
    ca_name: String,
    /// The consortium root certificate (PEM).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Directory with this caller's `cert.pem`, `key.pem`, `ca.pem`.
    #[arg(long)]
    tls_dir: Option<PathBuf>,
}

impl CaEndpoint {
    async fn connect(
        &self,
    ) -> Result<
        fiscus_proto::pb::identity::identity_ca_client::IdentityCaClient<tonic::transport::Channel>,
    > {
        let ca_file = match (&self.ca_cert, &self.tls_dir) {
            (Some(f), _) => f.clone(),
            (None, Some(d)) => d.join("ca.pem"),
            (None, None) => bail!("give --ca-cert (the root certificate) or --tls-dir"),
        };
        client::connect(&self.ca, &self.ca_name, self.tls_dir.as_deref(), &ca_file)
            .await
            .with_context(|| format!("connecting to the identity-ca at {}", self.ca))
    }
}

#[derive(Debug, Args)]
pub(crate) struct EnrollCmd {
    #[command(flatten)]
    endpoint: CaEndpoint,
    /// Member code (GB/T 2260), e.g. 130000.
    #[arg(long)]
    member: String,
    /// node, orderer, admin, operator, auditor or client.
    #[arg(long)]
    role: String,
    /// One-time enrollment secret; without it, --tls-dir must hold an admin certificate.
    #[arg(long, env = "FISCUS_ENROLLMENT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    #[arg(long = "ip")]
    ips: Vec<String>,
    /// Where to write cert.pem, key.pem and ca.pem (and cert-ecdsa.pem, key-ecdsa.pem).
    #[arg(long)]
    out: PathBuf,
    /// The main key: `ed25519` (signs transactions and TLS), or `ecdsa-p256`
    /// for an API client that needs TLS only (role `client`).
    #[arg(long, default_value = "ed25519", value_parser = ["ed25519", "ecdsa-p256"])]
    key_type: String,
    /// Do not also ask for the ECDSA P-256 TLS certificate that clients
    /// without Ed25519 (browsers, gRPC's C core, Java) are served.
    #[arg(long)]
    no_ecdsa: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RenewCmd {
    /// `host:port` of the CA's gRPC endpoint.
    #[arg(long, default_value = "127.0.0.1:7100")]
    ca: String,
    /// The name the CA's certificate must carry (SAN).
    #[arg(long, default_value = "localhost")]
    ca_name: String,
    /// The identity to renew (`cert.pem`, `key.pem`, `ca.pem`, and the ECDSA
    /// pair if any): the call is made as it, and the new files replace the old.
    #[arg(long)]
    tls_dir: PathBuf,
    /// Also get an ECDSA P-256 certificate when the directory has none.
    #[arg(long)]
    add_ecdsa: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SignCmd {
    /// Ed25519 PKCS#8 PEM key.
    #[arg(long)]
    key: PathBuf,
    /// The bytes to sign.
    #[arg(long = "in")]
    input: PathBuf,
    /// Where to write the 64-byte signature; hex on stdout if absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyCmd {
    #[command(flatten)]
    endpoint: CaEndpoint,
    /// The signer's certificate chain (PEM, leaf first).
    #[arg(long)]
    chain: PathBuf,
    #[arg(long = "in")]
    input: PathBuf,
    /// The signature: a file of 64 raw bytes or 128 hex characters.
    #[arg(long)]
    sig: PathBuf,
    /// Check revocation as of this CRL number (0: latest).
    #[arg(long, default_value_t = 0)]
    crl_number: u64,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeCmd {
    #[command(flatten)]
    endpoint: CaEndpoint,
    /// The certificate to revoke (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Why; a first word naming an RFC 5280 reason (keyCompromise,
    /// cACompromise, affiliationChanged, superseded, cessationOfOperation,
    /// privilegeWithdrawn) becomes the CRL entry's reason code.
    #[arg(long)]
    reason: String,
}

pub(crate) async fn identity_ca(cmd: IdentityCaCmd) -> Result<()> {
    cmd.check.run_if_asked::<Config>();
    let config: Config =
        fiscus_common::config::load(cmd.config.as_deref()).context("loading identity-ca config")?;
    match cmd.command {
        Some(CaSub::Init {
            data_dir,
            consortium_id,
            force,
            all_hebei,
            sans,
            root_validity_years,
        }) => {
            let opts = InitOptions {
                data_dir: data_dir.unwrap_or(config.data_dir.clone()),
                consortium_id,
                force,
                all_hebei,
                server_names: sans,
                root_validity_years,
                cert_validity_days: config.cert_validity_days,
            };
            let report = fiscus_identity_ca::init(&opts).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!(
                "identity-ca init: wrote the root CA and genesis bundle to {}; enrollment secrets ({}) are in {} (mode 0600)",
                opts.data_dir.display(),
                report.secrets_issued,
                report.enrollment_secrets.display()
            );
            Ok(())
        }
        Some(CaSub::Secrets {
            endpoint,
            member,
            roles,
        }) => {
            let roles = roles
                .iter()
                .map(|r| {
                    parse_role(r)
                        .map(|r| r as i32)
                        .with_context(|| format!("unknown role {r:?}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut ca = endpoint.connect().await?;
            let issued = ca
                .issue_secrets(fiscus_proto::pb::identity::IssueSecretsRequest {
                    org_code: member.clone(),
                    roles,
                })
                .await
                .map_err(|s| fiscus_identity_ca::Error::from_status(&s))?
                .into_inner();
            let secrets: Vec<fiscus_identity_ca::EnrollmentSecret> = issued
                .secrets
                .iter()
                .map(|s| fiscus_identity_ca::EnrollmentSecret {
                    member: member.clone(),
                    role: fiscus_proto::pb::types::Role::try_from(s.role)
                        .map(fiscus_common::tls::role_name)
                        .unwrap_or("unknown")
                        .to_owned(),
                    secret: s.secret.clone(),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&secrets)?);
            Ok(())
        }
        None => {
            let _telemetry = fiscus_common::telemetry::init("identity-ca", config.json_logs)?;
            let running = fiscus_identity_ca::start(config).await?;
            // One machine-readable line for scripts and tests.
            println!(
                "identity-ca ready grpc={} http={}",
                running.grpc_addr, running.http_addr
            );
            std::io::stdout().flush()?;
            fiscus_common::shutdown_signal().await;
            running.stop().await?;
            Ok(())
        }
    }
}

pub(crate) async fn enroll(cmd: EnrollCmd) -> Result<()> {
    let role = parse_role(&cmd.role).with_context(|| format!("unknown role {:?}", cmd.role))?;
    let mut ca = cmd.endpoint.connect().await?;
    let cert = client::enroll(
        &mut ca,
        &client::EnrollArgs {
            member: cmd.member,
            role,
            secret: cmd.secret,
            dns_names: cmd.dns_names,
            ips: cmd.ips,
            out_dir: cmd.out,
            key_type: if cmd.key_type == "ecdsa-p256" {
                fiscus_identity_ca::ca::KeyType::EcdsaP256
            } else {
                fiscus_identity_ca::ca::KeyType::Ed25519
            },
            ecdsa_certificate: !cmd.no_ecdsa,
        },
    )
    .await?;
    println!("{}", cert.display());
    Ok(())
}

pub(crate) async fn renew(cmd: RenewCmd) -> Result<()> {
    let mut ca = client::connect(
        &cmd.ca,
        &cmd.ca_name,
        Some(&cmd.tls_dir),
        &cmd.tls_dir.join("ca.pem"),
    )
    .await
    .with_context(|| format!("connecting to the identity-ca at {}", cmd.ca))?;
    let cert = client::renew(&mut ca, &cmd.tls_dir, cmd.add_ecdsa).await?;
    println!("{}", cert.display());
    Ok(())
}

pub(crate) fn sign(cmd: SignCmd) -> Result<()> {
    let msg =
        std::fs::read(&cmd.input).with_context(|| format!("reading {}", cmd.input.display()))?;
    let sig = client::sign_with_key_file(&cmd.key, &msg)?;
    match cmd.out {
        Some(out) => {
            std::fs::write(&out, &sig).with_context(|| format!("writing {}", out.display()))?
        }
        None => println!("{}", hex::encode(sig)),
    }
    Ok(())
}

fn read_signature(path: &PathBuf) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if raw.len() == 64 {
        return Ok(raw);
    }
    let text = String::from_utf8_lossy(&raw);
    hex::decode(text.trim())
        .with_context(|| format!("{} is neither 64 raw bytes nor hex", path.display()))
}

/// Exit code 0 when valid, 1 when the CA says invalid.
pub(crate) async fn verify(cmd: VerifyCmd) -> Result<bool> {
    let chain = client::read_pem_certs(&cmd.chain)?;
    let message =
        std::fs::read(&cmd.input).with_context(|| format!("reading {}", cmd.input.display()))?;
    let signature = read_signature(&cmd.sig)?;
    let mut ca = cmd.endpoint.connect().await?;
    let resp = ca
        .verify(VerifyRequest {
            chain,
            message,
            signature,
            crl_number: cmd.crl_number,
        })
        .await
        .map_err(|s| fiscus_identity_ca::Error::from_status(&s))?
        .into_inner();
    let role = match fiscus_proto::pb::types::Role::try_from(resp.role) {
        Ok(fiscus_proto::pb::types::Role::Unspecified) | Err(_) => "",
        Ok(r) => fiscus_common::tls::role_name(r),
    };
    println!(
        "{}",
        serde_json::json!({ "valid": resp.valid, "reason": resp.reason, "member": resp.org_code, "role": role })
    );
    Ok(resp.valid)
}

pub(crate) async fn revoke(cmd: RevokeCmd) -> Result<()> {
    let cert = client::read_pem_certs(&cmd.cert)?;
    let cert_id = fiscus_proto::hash::cert_id(&cert[0]);
    let mut ca = cmd.endpoint.connect().await?;
    let crl = ca
        .revoke(RevokeRequest {
            cert_id: cert_id.to_vec(),
            reason: cmd.reason,
        })
        .await
        .map_err(|s| fiscus_identity_ca::Error::from_status(&s))?
        .into_inner()
        .crl
        .unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({ "revoked": cert_id.to_hex(), "crl_number": crl.number })
    );
    Ok(())
}
