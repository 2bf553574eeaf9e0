//! Webhooks for the devnet's exchange-adapters, from `<data-dir>/webhooks.toml`
//! (read at every start), so that an integrator can try deliveries, retries
//! and dead letters on the devnet:
//!
//! ```toml
//! [[webhooks]]
//! name = "my-receiver"                       # letters, digits, '-' or '_'
//! url = "http://127.0.0.1:9000/fiscus"       # or https:// with ca_file
//! secret = "at least sixteen characters"     # the HMAC key
//! members = ["130102"]                       # optional; default: every member
//! # max_attempts = 6, initial_backoff_ms = 500, ca_file = "…" as in the adapter's config
//! ```

use super::Layout;
use anyhow::{Context, Result, bail};
use fiscus_exchange_adapter::hub::{WebhookConfig, default_attempts, default_backoff};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file's name under the data directory.
pub(crate) const FILE: &str = "webhooks.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    #[serde(default)]
    webhooks: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    url: String,
    secret: String,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default = "default_attempts")]
    max_attempts: u32,
    #[serde(default = "default_backoff")]
    initial_backoff_ms: u64,
    /// The members whose adapters deliver to it; empty: every member.
    #[serde(default)]
    members: Vec<String>,
}

/// The webhooks of every member's adapter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Webhooks(Vec<Entry>);

impl Webhooks {
    /// Reads `<data>/webhooks.toml` if it exists; refuses an unreadable file,
    /// an unknown member, a name used twice and settings the adapter would
    /// refuse ([`WebhookConfig::validate`]), and says what each webhook goes to.
    pub(crate) fn load(data: &Path, layout: &Layout) -> Result<Self> {
        let path = data.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file: WebhooksFile =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let codes: Vec<&str> = layout.members.iter().map(|m| m.code.as_str()).collect();
        let mut names = std::collections::BTreeSet::new();
        for e in &file.webhooks {
            if !names.insert(e.name.as_str()) {
                bail!("{}: webhook {:?} is named twice", path.display(), e.name);
            }
            if let Some(m) = e.members.iter().find(|m| !codes.contains(&m.as_str())) {
                bail!(
                    "{}: webhook {:?} names member {m:?}; the devnet's members are {}",
                    path.display(),
                    e.name,
                    codes.join(", ")
                );
            }
            if let Err(problem) = e.config().validate() {
                bail!("{}: webhook {:?}: {problem}", path.display(), e.name);
            }
            let to = if e.members.is_empty() {
                "every member".to_owned()
            } else {
                e.members.join(", ")
            };
            eprintln!("devnet: webhook {} → {} (from {to})", e.name, e.url);
        }
        Ok(Self(file.webhooks))
    }

    /// The webhooks member `code`'s adapter delivers to.
    pub(crate) fn for_member(&self, code: &str) -> Vec<WebhookConfig> {
        self.0
            .iter()
            .filter(|e| e.members.is_empty() || e.members.iter().any(|m| m == code))
            .map(Entry::config)
            .collect()
    }
}

impl Entry {
    fn config(&self) -> WebhookConfig {
        WebhookConfig {
            name: self.name.clone(),
            url: self.url.clone(),
            ca_file: self.ca_file.clone(),
            secret: self.secret.clone(),
            max_attempts: self.max_attempts,
            initial_backoff_ms: self.initial_backoff_ms,
        }
    }
}
