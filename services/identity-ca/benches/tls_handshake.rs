//! TLS 1.3 handshakes against a server configured as the exchange-adapter's
//! REST port (`TlsContext::server_config(ClientAuth::Optional)`, an identity
//! with both certificates), side by side:
//!
//! - `ed25519`: a client that offers Ed25519 (rustls, OpenSSL, Go, every
//!   Fiscus service) and is served the Ed25519 certificate;
//! - `ecdsa_p256`: a client that offers no Ed25519 (browsers, gRPC's C core,
//!   Java) and is served the ECDSA P-256 certificate.
//!
//! Both ends run in memory on one thread (one core): each iteration is one
//! full handshake, client and server CPU together, no sockets. Handshakes
//! per second on one core are 1 / the median. Run with
//! `cargo bench -p fiscus-identity-ca --bench tls_handshake`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark

use criterion::{Criterion, criterion_group, criterion_main};
use fiscus_common::tls::{ClientAuth, TlsConfig, TlsContext};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RootCa};
use fiscus_proto::pb::types::Role;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection, SignatureScheme};
use std::sync::Arc;

/// A client config trusting `roots` that offers the provider's schemes,
/// without Ed25519 if `no_ed25519`.
fn client(roots: &rustls::RootCertStore, no_ed25519: bool) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if no_ed25519 {
        let mapping: Vec<_> = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .filter(|(s, _)| *s != SignatureScheme::ED25519)
            .copied()
            .collect();
        provider.signature_verification_algorithms.mapping = Box::leak(mapping.into_boxed_slice());
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
    )
}

/// One full handshake in memory; returns the server certificate's length
/// (so that the work is not optimised away, and to check which was served).
fn handshake(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) -> usize {
    let mut c =
        ClientConnection::new(client.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets().unwrap();
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets().unwrap();
    }
    c.peer_certificates().unwrap()[0].len()
}

fn handshakes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = RootCa::create(&CaPaths::new(dir.path()), "bench", 1, false).unwrap();
    let mut spec = LeafSpec::valid_for_days("130000", Role::Node, 30);
    spec.add_names(&["localhost", "127.0.0.1"]);
    let tls = dir.path().join("tls");
    ca.issue_new_identity(&spec)
        .unwrap()
        .write_to(&tls, &ca)
        .unwrap();
    let ctx = TlsContext::load(&TlsConfig::in_dir(&tls)).unwrap();
    let server = ctx.server_config(ClientAuth::Optional).unwrap();
    let roots = ctx.roots();
    let (ed, ec) = (client(&roots, false), client(&roots, true));
    // Ed25519 and ECDSA certificates differ in length: check each client is
    // served the one this bench says it is.
    assert_ne!(handshake(&ed, &server), handshake(&ec, &server));

    let mut g = c.benchmark_group("tls13_handshake_one_core");
    g.bench_function("ed25519", |b| b.iter(|| handshake(&ed, &server)));
    g.bench_function("ecdsa_p256", |b| b.iter(|| handshake(&ec, &server)));
    g.finish();
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
