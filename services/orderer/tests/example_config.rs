//! The shipped example configs parse and validate, so the docs cannot drift from the code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use std::path::Path;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(name)
}

#[test]
fn the_orderer_example_config_loads_and_validates() {
    let c: fiscus_orderer::Config =
        fiscus_common::config::load_from(Some(&example("orderer.example.toml")), Vec::new())
            .unwrap();
    assert_eq!(c.peers.len(), 3);
    let mut expected = fiscus_orderer::Config {
        peers: c.peers.clone(),
        data_dir: c.data_dir.clone(),
        ..Default::default()
    };
    expected.tls.crl_file = c.tls.crl_file.clone();
    assert_eq!(
        c, expected,
        "every other value in the example is the default"
    );
}

#[test]
fn the_identity_ca_example_config_is_exactly_the_defaults() {
    let c: fiscus_identity_ca::Config =
        fiscus_common::config::load_from(Some(&example("identity-ca.example.toml")), Vec::new())
            .unwrap();
    assert_eq!(c, fiscus_identity_ca::Config::default());
}
