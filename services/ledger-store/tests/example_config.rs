//! The shipped example configs of the ledger-store and the contract-executor
//! parse and validate, so the docs cannot drift from the code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use std::path::Path;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(name)
}

#[test]
fn the_ledger_store_example_config_loads_and_validates() {
    let c: fiscus_ledger_store::server::Config =
        fiscus_common::config::load_from(Some(&example("ledger-store.example.toml")), Vec::new())
            .unwrap();
    assert_eq!(c.orderers.len(), 3);
    assert_eq!(c.executor.as_ref().unwrap().server_name, "executor-130000");
    assert_eq!(c.threads, 2);
    assert_eq!(c.listen.port(), 7300);
}

#[test]
fn the_contract_executor_example_config_loads_and_validates() {
    let c: fiscus_contract_executor::server::Config = fiscus_common::config::load_from(
        Some(&example("contract-executor.example.toml")),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(c.listen.port(), 7400);
    assert_eq!(c.threads, 2);
}
