//! The shipped example config parses and validates, so the docs cannot drift from the code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use std::path::Path;

#[test]
fn the_analytics_example_config_loads_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/analytics.example.toml");
    let c: fiscus_analytics::service::Config =
        fiscus_common::config::load_from(Some(&path), Vec::new()).unwrap();
    assert_eq!(c.ledger.server_name, "ledger-130000");
    assert_eq!(
        c,
        fiscus_analytics::service::Config {
            tls: c.tls.clone(),
            ledger: c.ledger.clone(),
            genesis_file: c.genesis_file.clone(),
            ..Default::default()
        },
        "every other value in the example is the default"
    );
}
