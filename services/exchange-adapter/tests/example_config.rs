//! The shipped example config parses and validates, so the docs cannot drift from the code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use std::path::Path;

#[test]
fn the_exchange_adapter_example_config_loads_and_validates() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/exchange-adapter.example.toml");
    let c: fiscus_exchange_adapter::Config =
        fiscus_common::config::load_from(Some(&path), Vec::new()).unwrap();
    assert_eq!(c.orderers.len(), 3);
    assert_eq!(c.ledger.server_name, "ledger-130000");
    assert_eq!(
        c,
        fiscus_exchange_adapter::Config {
            tls: c.tls.clone(),
            ledger: c.ledger.clone(),
            orderers: c.orderers.clone(),
            signers_dir: c.signers_dir.clone(),
            genesis_file: c.genesis_file.clone(),
            ..Default::default()
        },
        "every other value in the example is the default"
    );
}
