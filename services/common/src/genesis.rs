//! The genesis `ConsortiumConfig` that `fiscus identity-ca init` writes: every
//! service that starts from it reads it here.

use fiscus_proto::pb::types::ConsortiumConfig;
use prost::Message;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("reading the genesis file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a ConsortiumConfig: {source}")]
    Decode {
        path: PathBuf,
        source: prost::DecodeError,
    },
}

/// Reads and decodes the genesis file at `path`.
pub fn read_genesis(path: &Path) -> Result<ConsortiumConfig, GenesisError> {
    let bytes = std::fs::read(path).map_err(|source| GenesisError::Io {
        path: path.to_owned(),
        source,
    })?;
    ConsortiumConfig::decode(&bytes[..]).map_err(|source| GenesisError::Decode {
        path: path.to_owned(),
        source,
    })
}
