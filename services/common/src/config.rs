//! Service configuration, layered as defaults < TOML file < environment.
//!
//! Environment variables are named `FISCUS_<SERVICE>__<KEY>`, with `__`
//! between nested keys: `FISCUS_LEDGER_STORE__STORE__PATH=/data` sets
//! `store.path` for the `ledger-store` service. A value is read as a TOML
//! value when it parses as one (`8080`, `true`, `["a","b"]`), else as a string.

use serde::{Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("environment variable {var} does not name a config key")]
    EnvKey { var: String },
    #[error("configuration is invalid: {0}")]
    Shape(#[source] toml::de::Error),
    #[error("defaults could not be serialized: {0}")]
    Defaults(#[source] toml::ser::Error),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// A service's configuration: serde defaults plus a semantic check.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default {
    /// The service name, e.g. `"ledger-store"`; it names the env prefix.
    const SERVICE: &'static str;

    /// Checks what types alone cannot, e.g. that a limit is non-zero.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// The env prefix of a service: `ledger-store` → `FISCUS_LEDGER_STORE__`.
pub fn env_prefix(service: &str) -> String {
    format!(
        "FISCUS_{}__",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// Loads `C` from its defaults, an optional TOML file and the process
/// environment, then validates it. A file that is named but missing is an error.
pub fn load<C: ServiceConfig>(file: Option<&Path>) -> Result<C, ConfigError> {
    load_from(file, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (for tests).
pub fn load_from<C: ServiceConfig>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<C, ConfigError> {
    let mut merged = toml::Table::try_from(C::default()).map_err(ConfigError::Defaults)?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        deep_merge(&mut merged, table);
    }
    let prefix = env_prefix(C::SERVICE);
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    // Apply in a fixed order, so the result never depends on the environment's order.
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[prefix.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::EnvKey { var });
        }
        set_path(&mut merged, &path, env_value(&raw)).map_err(|()| ConfigError::EnvKey { var })?;
    }
    let config: C = toml::Value::Table(merged)
        .try_into()
        .map_err(ConfigError::Shape)?;
    config.validate()?;
    Ok(config)
}

fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn deep_merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        listen: String,
        max_batch: u32,
        store: Store,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Store {
        path: String,
        fsync: bool,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                listen: "127.0.0.1:7000".into(),
                max_batch: 100,
                store: Store::default(),
            }
        }
    }

    impl Default for Store {
        fn default() -> Self {
            Self {
                path: "data".into(),
                fsync: true,
            }
        }
    }

    impl ServiceConfig for Demo {
        const SERVICE: &'static str = "demo-svc";
        fn validate(&self) -> Result<(), ConfigError> {
            if self.max_batch == 0 {
                return Err(ConfigError::Invalid {
                    key: "max_batch",
                    message: "must be at least 1".into(),
                });
            }
            Ok(())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_else_is_given() {
        let c: Demo = load_from(None, env(&[])).unwrap();
        assert_eq!(c, Demo::default());
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.toml");
        std::fs::write(&file, "max_batch = 7\n[store]\npath = \"/file\"\n").unwrap();
        let c: Demo = load_from(
            Some(&file),
            env(&[
                ("FISCUS_DEMO_SVC__STORE__PATH", "/env"),
                ("FISCUS_DEMO_SVC__STORE__FSYNC", "false"),
                ("FISCUS_OTHER__MAX_BATCH", "9"),
            ]),
        )
        .unwrap();
        assert_eq!(c.max_batch, 7, "the file wins over the default");
        assert_eq!(c.store.path, "/env", "the environment wins over the file");
        assert!(!c.store.fsync);
        assert_eq!(
            c.listen, "127.0.0.1:7000",
            "untouched keys keep their default"
        );
    }

    #[test]
    fn validation_runs_after_layering() {
        let err = load_from::<Demo>(None, env(&[("FISCUS_DEMO_SVC__MAX_BATCH", "0")])).unwrap_err();
        assert_eq!(err.to_string(), "max_batch: must be at least 1");
    }

    #[test]
    fn a_misspelt_key_is_an_error_not_silently_ignored() {
        let err = load_from::<Demo>(None, env(&[("FISCUS_DEMO_SVC__MAX_BACTH", "5")])).unwrap_err();
        assert!(matches!(err, ConfigError::Shape(_)), "{err}");
    }

    #[test]
    fn a_wrongly_typed_value_is_an_error() {
        let err =
            load_from::<Demo>(None, env(&[("FISCUS_DEMO_SVC__MAX_BATCH", "lots")])).unwrap_err();
        assert!(matches!(err, ConfigError::Shape(_)), "{err}");
    }

    #[test]
    fn a_named_but_missing_file_is_an_error() {
        let err =
            load_from::<Demo>(Some(Path::new("/nonexistent/demo.toml")), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn the_prefix_follows_the_service_name() {
        assert_eq!(env_prefix("ledger-store"), "FISCUS_LEDGER_STORE__");
    }
}
