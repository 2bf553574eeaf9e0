/// Why a block was refused or a query failed. A refused block changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("block is malformed: {0}")]
    Malformed(#[from] fiscus_proto::Error),
    #[error("block {got} does not follow the head {head}")]
    NotNext { head: u64, got: u64 },
    #[error("block {0} does not link to the previous block's hash")]
    BadLink(u64),
    #[error("block {0}: the orderer signature does not verify or its certificate is unknown")]
    BadOrdererSignature(u64),
    #[error("block {0}: the timestamp goes backwards")]
    BadTimestamp(u64),
    #[error("store: {0}")]
    Store(#[from] fiscus_common::store::StoreError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("block {0} is committed but no majority of members has attested it yet; retry")]
    NotFinal(u64),
    #[error("the store has no genesis configuration; initialise it first")]
    NoGenesis,
    #[error("the store was initialised from a different genesis configuration")]
    GenesisMismatch,
    #[error("{0}")]
    Unsupported(String),
    #[error("the contract-executor failed: {0}")]
    Executor(String),
    #[error(
        "the disk is nearly full ({} MiB free, min_free_bytes is {} MiB): commits are paused; retry",
        free / (1024 * 1024),
        min / (1024 * 1024)
    )]
    DiskFull { free: u64, min: u64 },
    #[error("an internal lock was poisoned by a panic")]
    Poisoned,
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
