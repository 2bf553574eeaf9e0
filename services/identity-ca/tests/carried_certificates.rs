//! The rule for a certificate a signature carries (`Signature.certificate`),
//! with certificates this CA really issues: it counts like one on file when a
//! consortium root signed it and it is the certificate the cert id names;
//! another CA's certificate, or a cert id that names another certificate,
//! stays unknown; a revocation on file applies to it as to any signer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::certs::{CertStatus, Certs, Roots};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RootCa};
use fiscus_proto::pb::types::Role;

fn ca(dir: &std::path::Path, id: &str) -> RootCa {
    RootCa::create(&CaPaths::new(dir), id, 10, false).unwrap()
}

#[test]
fn a_carried_certificate_counts_only_when_a_root_signed_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = ca(&tmp.path().join("a"), "fiscus-test");
    let other = ca(&tmp.path().join("b"), "another-consortium");
    let roots = Roots::from_ders(std::slice::from_ref(&root.root_der));
    let spec = LeafSpec::valid_for_days("130600", Role::Client, 30);
    let baoding = root.issue_new_identity(&spec).unwrap().main;
    let foreign = other.issue_new_identity(&spec).unwrap().main;
    let certs = Certs::default();

    let id = baoding.identity.cert_id;
    match certs.status_carried(&id, &baoding.der, 10, &roots) {
        CertStatus::Valid { org, public_key } => {
            assert_eq!(org, "130600");
            assert_eq!(Some(public_key), baoding.identity.public_key.ed25519());
        }
        s => panic!("a root-signed carried certificate is {s:?}"),
    }
    // Nothing carried: unknown, as before.
    assert_eq!(
        certs.status_carried(&id, &[], 10, &roots),
        CertStatus::Unknown
    );
    // Another CA's certificate.
    assert_eq!(
        certs.status_carried(&foreign.identity.cert_id, &foreign.der, 10, &roots),
        CertStatus::Unknown
    );
    // A cert id naming another certificate than the one carried.
    assert_eq!(
        certs.status_carried(&foreign.identity.cert_id, &baoding.der, 10, &roots),
        CertStatus::Unknown
    );
    // Garbage.
    assert_eq!(
        certs.status_carried(&id, b"not a certificate", 10, &roots),
        CertStatus::Unknown
    );
    // On file and revoked from height 5: the carried copy does not revive it.
    let mut on_file = Certs::default();
    on_file.insert(&baoding.identity);
    on_file.revoke_from(&id, 5);
    assert_eq!(
        on_file.status_carried(&id, &baoding.der, 4, &roots),
        CertStatus::Valid {
            org: "130600".into(),
            public_key: baoding.identity.public_key.ed25519().unwrap()
        }
    );
    assert_eq!(
        on_file.status_carried(&id, &baoding.der, 5, &roots),
        CertStatus::Revoked
    );
}
