//! The serial numbers the current CRL revokes, shared by every connection a
//! process serves, so that a connection authenticated by a certificate that
//! is revoked later is closed, not kept forever.

use std::collections::BTreeSet;
use std::sync::Mutex;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// A serial number without leading zero bytes, so that DER encodings that
/// differ only in a sign byte compare equal.
fn normalize(serial: &[u8]) -> Vec<u8> {
    let first = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial[first..].to_vec()
}

/// The revoked serials and the CRL number they came from, with a signal
/// that fires on every change.
#[derive(Debug)]
pub struct Revocations {
    state: Mutex<(Option<u64>, BTreeSet<Vec<u8>>)>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            state: Mutex::new((None, BTreeSet::new())),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// The CRL number and revoked serials of a DER X.509 CRL.
pub fn crl_serials(der: &[u8]) -> Option<(Option<u64>, BTreeSet<Vec<u8>>)> {
    let (_, crl) = CertificateRevocationList::from_der(der).ok()?;
    let number = crl.crl_number().and_then(|n| u64::try_from(n).ok());
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| normalize(r.raw_serial()))
        .collect();
    Some((number, serials))
}

impl Revocations {
    /// Whether the CRL numbered `number` may replace the current one: never an
    /// older one (a stale cache file must not undo a revocation).
    pub fn accepts(&self, number: Option<u64>) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        !matches!((state.0, number), (Some(have), Some(n)) if n < have)
    }

    /// Installs the serials of a CRL; wakes every connection to re-check.
    pub fn install(&self, number: Option<u64>, serials: BTreeSet<Vec<u8>>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = (number.or(state.0), serials);
        drop(state);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Whether the certificate with this serial is revoked now.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        let n = normalize(serial);
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .contains(&n)
    }

    /// The number of the CRL in force, if it carries one.
    pub fn crl_number(&self) -> Option<u64> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Resolves once `serial` is revoked (at once if it already is).
    pub async fn revoked(&self, serial: &[u8]) {
        let mut rx = self.changed.subscribe();
        loop {
            if self.is_revoked(serial) {
                return;
            }
            if rx.changed().await.is_err() {
                // The context is gone; so is the server.
                std::future::pending::<()>().await;
            }
        }
    }
}
