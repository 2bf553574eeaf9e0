//! Creating a devnet's data directory the first time: the CA, every member's
//! and orderer's certificates and keys, the genesis, and the certificates
//! registered with the CA.

use super::CONSORTIUM;
use super::layout::Layout;
use crate::devnet::layout;
use anyhow::{Context, Result};
use fiscus_exchange_adapter::clients::{ClientEntry, ClientsFile, Scope, key_hash, new_api_key};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RootCa, write_file};
use fiscus_identity_ca::genesis::{GenesisBundle, GenesisMember, GenesisOrderer};
use fiscus_identity_ca::registry::Registry;
use fiscus_proto::pb::types::Role;
use prost::Message;
use std::path::{Path, PathBuf};

/// Issues a devnet identity into `out` (`cert.pem`, `key.pem`, `ca.pem`,
/// and the ECDSA P-256 TLS pair `cert-ecdsa.pem`, `key-ecdsa.pem`), and
/// records both certificates in the CA's registry, linked, as if enrolled,
/// so that `fiscus revoke` revokes both and the CA's list and verify calls
/// know them. `valid_from` (Unix ms): a demo devnet's blocks carry a fiscal
/// calendar that starts before today, and a receipt verifier checks each
/// signer's validity at the block's time, so its certificates are valid from
/// a day before that calendar starts.
pub(super) async fn issue(
    ca: &RootCa,
    registry: &Registry,
    member: &str,
    role: Role,
    names: &[&str],
    out: &Path,
    valid_from: Option<i64>,
) -> Result<PathBuf> {
    let mut spec = LeafSpec::valid_for_days(member, role, 825);
    if let Some(ms) = valid_from {
        let from = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000) - 86_400)?;
        spec.not_before = spec.not_before.min(from);
    }
    spec.add_names(names);
    let identity = ca.issue_new_identity(&spec)?;
    identity.write_to(out, ca)?;
    registry.record_issued(&identity.records(), None).await?;
    Ok(out.join("cert.pem"))
}

/// How often devnet services look for a new CRL or certificate (the default
/// for deployed services is 30 s; a devnet shares one machine and one CA file).
pub(super) const DEVNET_TLS_RELOAD_SECS: u64 = 2;

/// The paths of one member's files.
pub(crate) struct MemberDir(pub PathBuf);

impl MemberDir {
    pub(super) fn node(&self) -> PathBuf {
        self.0.join("node-tls")
    }
    pub(super) fn client(&self) -> PathBuf {
        self.0.join("client")
    }
    /// An admin identity (only the Ministry's: the CA's operator, who issues
    /// enrollment secrets to members voted in later).
    pub(crate) fn admin(&self) -> PathBuf {
        self.0.join("admin")
    }
    pub(super) fn clients_file(&self) -> PathBuf {
        self.0.join("api-clients.toml")
    }
}

/// A devnet member's main API client: every scope, custodial signing with
/// its client identity. The founders and a member added later get the same.
pub(super) fn main_client(code: &str, key: &str, dir: &MemberDir) -> ClientEntry {
    ClientEntry {
        name: format!("devnet-{code}"),
        key_sha256: key_hash(key),
        org: code.to_owned(),
        scopes: vec![
            Scope::Submit,
            Scope::Read,
            Scope::Import,
            Scope::Admin,
            Scope::Govern,
        ],
        custodial_cert: Some(dir.client().join("cert.pem")),
        custodial_key: Some(dir.client().join("key.pem")),
    }
}

/// Its line in `api-keys.txt`: member, API address, key, scopes.
pub(super) fn main_key_line(code: &str, api: &str, key: &str) -> String {
    format!("{code}  http://{api}  {key}  submit,read,import,admin,govern\n")
}

pub(super) fn member_dir(data: &Path, code: &str) -> MemberDir {
    MemberDir(data.join(format!("member-{code}")))
}

/// Creates the CA, certificates, genesis and API keys.
pub(super) async fn create(data: &Path, base_port: u16, demo: bool) -> Result<Layout> {
    let layout = layout(base_port, demo)?;
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let ca_dir = data.join("ca");
    fiscus_identity_ca::init(&fiscus_identity_ca::InitOptions {
        data_dir: ca_dir.clone(),
        consortium_id: CONSORTIUM.into(),
        force: false,
        all_hebei: true,
        server_names: vec!["127.0.0.1".into(), "localhost".into()],
        root_validity_years: 10,
        cert_validity_days: 825,
    })
    .await
    .context("creating the consortium root CA")?;
    let paths = CaPaths::new(&ca_dir);
    let ca = RootCa::load(&paths)?;
    let registry = Registry::open(&paths.registry())?;
    let signers = data.join("signers");
    std::fs::create_dir_all(&signers)?;
    let valid_from = layout.block_clock.as_ref().map(|c| c.start_ms);
    for o in &layout.orderers {
        let name = format!("orderer-{}", o.id);
        let cert = issue(
            &ca,
            &registry,
            &o.org,
            Role::Orderer,
            &[&name, "127.0.0.1", "localhost"],
            &data.join(&name).join("tls"),
            valid_from,
        )
        .await?;
        std::fs::copy(&cert, signers.join(format!("{name}.pem")))?;
    }
    let mut keys = String::from(
        "# Devnet API keys (plaintext; the adapters store only their SHA-256).\n# member  api  key  scopes\n",
    );
    for m in &layout.members {
        let dir = member_dir(data, &m.code);
        let cert = issue(
            &ca,
            &registry,
            &m.code,
            Role::Node,
            &["127.0.0.1", "localhost"],
            &dir.node(),
            valid_from,
        )
        .await?;
        std::fs::copy(&cert, signers.join(format!("node-{}.pem", m.code)))?;
        let cert = issue(
            &ca,
            &registry,
            &m.code,
            Role::Client,
            &[],
            &dir.client(),
            valid_from,
        )
        .await?;
        std::fs::copy(&cert, signers.join(format!("client-{}.pem", m.code)))?;
        if m.code == "000000" {
            issue(
                &ca,
                &registry,
                &m.code,
                Role::Admin,
                &[],
                &dir.admin(),
                valid_from,
            )
            .await?;
        }
        let key = new_api_key();
        let read_key = new_api_key();
        keys.push_str(&main_key_line(&m.code, &m.api.to_string(), &key));
        keys.push_str(&format!("{}  http://{}  {read_key}  read\n", m.code, m.api));
        let file = ClientsFile {
            clients: vec![
                main_client(&m.code, &key, &dir),
                ClientEntry {
                    name: format!("devnet-{}-read-only", m.code),
                    key_sha256: key_hash(&read_key),
                    org: m.code.clone(),
                    scopes: vec![Scope::Read],
                    custodial_cert: None,
                    custodial_key: None,
                },
            ],
        };
        write_file(
            &dir.clients_file(),
            toml::to_string(&file)?.as_bytes(),
            0o600,
        )?;
    }
    write_file(&data.join("api-keys.txt"), keys.as_bytes(), 0o600)?;
    drop(registry);

    // The genesis: every Hebei division as an org, five of them members.
    let mut bundle: GenesisBundle =
        serde_json::from_slice(&std::fs::read(paths.genesis_json())?).context("genesis.json")?;
    bundle.members = layout
        .members
        .iter()
        .map(|m| GenesisMember {
            org_code: m.code.clone(),
            roles: ["node", "admin", "operator", "client", "auditor"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            gossip_endpoints: vec![format!("https://{}", m.gateway)],
            allowed_names: fiscus_identity_ca::genesis::devnet_allowed_names(&m.code),
        })
        .collect();
    bundle.orderers = layout
        .orderers
        .iter()
        .map(|o| GenesisOrderer {
            raft_id: o.id,
            node_id: format!("orderer-{}", o.id),
            org_code: o.org.clone(),
            endpoint: o.client.to_string(),
        })
        .collect();
    write_file(
        &paths.genesis_json(),
        &serde_json::to_vec_pretty(&bundle)?,
        0o644,
    )?;
    write_file(
        &paths.consortium_config(),
        &bundle.to_consortium_config(&ca.root_der).encode_to_vec(),
        0o644,
    )?;
    write_file(
        &data.join("devnet.json"),
        &serde_json::to_vec_pretty(&layout)?,
        0o644,
    )?;
    Ok(layout)
}
