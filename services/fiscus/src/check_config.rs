//! `fiscus <service> --check-config FILE`: validate a service's config without
//! starting anything. Exit 0 with one `ok` line, or exit 2 with one line naming
//! the key path and what is wrong.
//!
//! The checks, in order: the file is readable TOML; every key is known and
//! has the right type (the configs deny unknown keys); the service's own
//! semantic checks (`ServiceConfig::validate`); then, unless `--skip-files`,
//! the files it names: the TLS certificate, key, CA and CRL load and belong
//! together, the genesis bundle decodes, directories exist (or, for data
//! directories, can be created). `--skip-files` is for configs checked away
//! from where they run, such as the ones the Helm charts render (their files
//! are Secrets mounted at run time).

use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::tls::{TlsConfig, TlsContext};
use std::path::{Path, PathBuf};

/// What a config names on disk.
pub(crate) enum FileRef {
    /// Certificate, key, CA and optional CRL, loaded together.
    Tls(&'static str, TlsConfig),
    /// A file that must exist and be readable.
    File(&'static str, PathBuf),
    /// The consortium config (protobuf) that must decode.
    Genesis(&'static str, PathBuf),
    /// A directory that must exist.
    Dir(&'static str, PathBuf),
    /// A directory the service creates: it, or its parent, must exist.
    DataDir(&'static str, PathBuf),
}

/// The files a service config names.
pub(crate) trait FileRefs {
    fn file_refs(&self) -> Vec<FileRef>;
}

impl FileRefs for fiscus_ledger_store::server::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![
            FileRef::Tls("tls", self.tls.clone()),
            FileRef::Genesis("genesis_file", self.genesis_file.clone()),
            FileRef::Dir("signers_dir", self.signers_dir.clone()),
            FileRef::DataDir("data_dir", self.data_dir.clone()),
        ]
    }
}

impl FileRefs for fiscus_gossip_gateway::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![
            FileRef::Tls("tls", self.tls.clone()),
            FileRef::Genesis("genesis_file", self.genesis_file.clone()),
            FileRef::Dir("signers_dir", self.signers_dir.clone()),
        ]
    }
}

impl FileRefs for fiscus_exchange_adapter::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![
            FileRef::Tls("tls", self.tls.clone()),
            FileRef::Genesis("genesis_file", self.genesis_file.clone()),
            FileRef::Dir("signers_dir", self.signers_dir.clone()),
            FileRef::File("clients_file", self.clients_file.clone()),
            FileRef::DataDir("data_dir", self.data_dir.clone()),
        ]
    }
}

impl FileRefs for fiscus_analytics::service::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![
            FileRef::Tls("tls", self.tls.clone()),
            FileRef::Genesis("genesis_file", self.genesis_file.clone()),
            FileRef::File("clients_file", self.clients_file.clone()),
            FileRef::DataDir("data_dir", self.data_dir.clone()),
        ]
    }
}

impl FileRefs for fiscus_orderer::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![
            FileRef::Tls("tls", self.tls.clone()),
            FileRef::Dir("signers_dir", self.signers_dir.clone()),
            FileRef::DataDir("data_dir", self.data_dir.clone()),
        ]
    }
}

impl FileRefs for fiscus_contract_executor::server::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![FileRef::Tls("tls", self.tls.clone())]
    }
}

impl FileRefs for fiscus_identity_ca::Config {
    fn file_refs(&self) -> Vec<FileRef> {
        let paths = fiscus_identity_ca::ca::CaPaths::new(&self.data_dir);
        vec![
            FileRef::Dir("data_dir", self.data_dir.clone()),
            FileRef::File("data_dir (root certificate)", paths.root_cert()),
            FileRef::File("data_dir (root key)", paths.root_key()),
            FileRef::File("data_dir (genesis.json)", paths.genesis_json()),
        ]
    }
}

fn check_file(r: &FileRef) -> Result<(), String> {
    let exists = |key: &str, p: &Path| -> Result<(), String> {
        std::fs::metadata(p)
            .map(|_| ())
            .map_err(|e| format!("{key}: {}: {e}", p.display()))
    };
    match r {
        FileRef::Tls(key, tls) => {
            for (sub, p) in [
                ("cert_file", Some(&tls.cert_file)),
                ("key_file", Some(&tls.key_file)),
                ("ca_file", Some(&tls.ca_file)),
                ("crl_file", tls.crl_file.as_ref()),
            ] {
                if let Some(p) = p {
                    std::fs::File::open(p)
                        .map_err(|e| format!("{key}.{sub}: {}: {e}", p.display()))?;
                }
            }
            TlsContext::load(tls)
                .map(|_| ())
                .map_err(|e| format!("{key}: {}", chain(&e)))
        }
        FileRef::File(key, p) => {
            exists(key, p)?;
            std::fs::File::open(p)
                .map(|_| ())
                .map_err(|e| format!("{key}: {}: {e}", p.display()))
        }
        FileRef::Genesis(key, p) => fiscus_common::genesis::read_genesis(p)
            .map(|_| ())
            .map_err(|e| format!("{key}: {}: {e}", p.display())),
        FileRef::Dir(key, p) => {
            if p.is_dir() {
                Ok(())
            } else {
                Err(format!("{key}: {} is not a directory", p.display()))
            }
        }
        FileRef::DataDir(key, p) => {
            let parent = p.parent().filter(|q| !q.as_os_str().is_empty());
            if p.is_dir() || parent.is_none_or(Path::is_dir) {
                Ok(())
            } else {
                Err(format!(
                    "{key}: neither {} nor its parent directory exists",
                    p.display()
                ))
            }
        }
    }
}

/// One line for a config that does not load.
fn describe(e: &ConfigError) -> String {
    match e {
        ConfigError::Read { path, source } => format!("{}: {source}", path.display()),
        ConfigError::Parse { path, source } => {
            format!("{}: not valid TOML: {}", path.display(), one_line(source))
        }
        ConfigError::Shape(source) => one_line(source),
        other => other.to_string(),
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks `file` as a config of `C`; returns the `ok` line or the problem.
pub(crate) fn check<C: ServiceConfig + FileRefs>(
    file: &Path,
    skip_files: bool,
) -> Result<String, String> {
    let config: C = fiscus_common::config::load(Some(file)).map_err(|e| describe(&e))?;
    if !skip_files {
        for r in config.file_refs() {
            check_file(&r)?;
        }
    }
    Ok(format!(
        "ok: {} config {}{}",
        C::SERVICE.replace('_', "-"),
        file.display(),
        if skip_files {
            " (keys and values; files not checked)"
        } else {
            ""
        }
    ))
}

/// `--check-config FILE [--skip-files]` on a service subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CheckArgs {
    /// Validate this config file (keys, types, values, and the files it
    /// names) without starting anything: exit 0, or 2 with one line naming
    /// the key and the problem.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// With --check-config: check keys and values only, not the files the
    /// config names (for configs rendered away from where they run).
    #[arg(long, requires = "check_config")]
    skip_files: bool,
}

impl CheckArgs {
    /// Checks and exits if `--check-config` was given; returns otherwise.
    pub(crate) fn run_if_asked<C: ServiceConfig + FileRefs>(&self) {
        if let Some(file) = &self.check_config {
            run::<C>(file, self.skip_files);
        }
    }
}

/// Runs the check and exits: 0 with the `ok` line on stdout, 2 with the
/// problem on stderr.
pub(crate) fn run<C: ServiceConfig + FileRefs>(file: &Path, skip_files: bool) -> ! {
    match check::<C>(file, skip_files) {
        Ok(line) => {
            println!("{line}");
            std::process::exit(0)
        }
        Err(problem) => {
            eprintln!("{}: {problem}", C::SERVICE.replace('_', "-"));
            std::process::exit(2)
        }
    }
}
