//! `fiscus keys`: API keys for a member's exchange-adapter.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;

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
        /// Comma-separated: submit, read, import, admin, govern.
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
                    "govern" => Ok(Scope::Govern),
                    other => bail!("scope {other:?} is not submit, read, import, admin or govern"),
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
