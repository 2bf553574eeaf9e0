//! Fiscus wire types and crypto core.
//!
//! - [`pb`]: the generated protobuf and gRPC types, one module per `fiscus.<area>.v1` package.
//! - [`hash`], [`merkle`], [`sign`]: tx ids, block hashes, RFC 6962 Merkle proofs and Ed25519.
//! - [`envelope`], [`block`]: bounded decoding of network bytes into checked domain types.
#![forbid(unsafe_code)]

pub mod block;
pub mod envelope;
mod error;
pub mod hash;
pub mod limits;
pub mod merkle;
pub mod sign;

pub use error::{Error, Result};
pub use hash::{Hash32, TxId};
pub use limits::DecodeLimits;

/// A receipt status as the API, the receipt verifier and the traces name it:
/// lower case without the `TX_STATUS_` prefix (`valid`, `insufficient_funds`,
/// …); `unknown(n)` for a number no status has.
pub fn tx_status_name(status: i32) -> String {
    pb::types::TxStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("TX_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({status})"))
}

/// Generated protobuf types and gRPC stubs, laid out as the proto packages are.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod pb {
    /// `fiscus.*.v1` packages.
    pub mod fiscus {
        pub mod types {
            pub mod v1 {
                tonic::include_proto!("fiscus.types.v1");
            }
        }
        pub mod transfer {
            pub mod v1 {
                tonic::include_proto!("fiscus.transfer.v1");
            }
        }
        pub mod governance {
            pub mod v1 {
                tonic::include_proto!("fiscus.governance.v1");
            }
        }
        pub mod orderer {
            pub mod v1 {
                tonic::include_proto!("fiscus.orderer.v1");
            }
        }
        pub mod ledger {
            pub mod v1 {
                tonic::include_proto!("fiscus.ledger.v1");
            }
        }
        pub mod executor {
            pub mod v1 {
                tonic::include_proto!("fiscus.executor.v1");
            }
        }
        pub mod identity {
            pub mod v1 {
                tonic::include_proto!("fiscus.identity.v1");
            }
        }
        pub mod gossip {
            pub mod v1 {
                tonic::include_proto!("fiscus.gossip.v1");
            }
        }
        pub mod exchange {
            pub mod v1 {
                tonic::include_proto!("fiscus.exchange.v1");
            }
        }
        pub mod state {
            pub mod v1 {
                tonic::include_proto!("fiscus.state.v1");
            }
        }
        pub mod events {
            pub mod v1 {
                tonic::include_proto!("fiscus.events.v1");
            }
        }
    }

    pub use fiscus::events::v1 as events;
    pub use fiscus::exchange::v1 as exchange;
    pub use fiscus::executor::v1 as executor;
    pub use fiscus::gossip::v1 as gossip;
    pub use fiscus::governance::v1 as governance;
    pub use fiscus::identity::v1 as identity;
    pub use fiscus::ledger::v1 as ledger;
    pub use fiscus::orderer::v1 as orderer;
    pub use fiscus::state::v1 as state;
    pub use fiscus::transfer::v1 as transfer;
    pub use fiscus::types::v1 as types;
}
