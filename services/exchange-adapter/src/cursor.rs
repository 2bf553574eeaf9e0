//! Pagination cursors: opaque and bound to whoever got them. The ledger's
//! page token names the next key of the scan, which may be an account of an
//! org the caller may not read; handing it out as is would disclose it. A
//! cursor is that token sealed with ChaCha20-Poly1305 under a key this adapter
//! process holds, with the API client and the list as associated data: a
//! client cannot read it, forge it, or use it for another client or list.
//! A restarted adapter has a new key, so a cursor from before the restart is
//! refused (`api.bad_cursor`) and the listing starts again.

use crate::error::err;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The sealing key for cursors, made when the adapter starts.
pub struct CursorKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

fn bad() -> ServiceError {
    err(
        ErrorKind::InvalidArgument,
        codes::api::BAD_CURSOR,
        "the cursor is not one this API gave you for this list (cursors end when the adapter restarts)",
    )
}

impl CursorKey {
    /// A fresh random key.
    pub fn random() -> Result<Self, ServiceError> {
        let rng = SystemRandom::new();
        let mut bytes = [0u8; 32];
        let internal = |_| {
            err(
                ErrorKind::Internal,
                codes::api::INTERNAL,
                "no randomness for cursors",
            )
        };
        rng.fill(&mut bytes).map_err(internal)?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(internal)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng,
        })
    }

    /// The cursor for the ledger's `token`, bound to `binding` (the client
    /// and the list); None for an empty token (the last page).
    pub fn seal(&self, token: &[u8], binding: &[u8]) -> Result<Option<String>, ServiceError> {
        if token.is_empty() {
            return Ok(None);
        }
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| {
            err(
                ErrorKind::Internal,
                codes::api::INTERNAL,
                "no randomness for cursors",
            )
        })?;
        let mut sealed = token.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding),
                &mut sealed,
            )
            .map_err(|_| {
                err(
                    ErrorKind::Internal,
                    codes::api::INTERNAL,
                    "sealing a cursor failed",
                )
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(Some(B64URL.encode(out)))
    }

    /// The ledger's token inside `cursor`, if this key sealed it for `binding`.
    pub fn open(&self, cursor: &str, binding: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let raw = B64URL.decode(cursor).map_err(|_| bad())?;
        if raw.len() <= NONCE_LEN + CHACHA20_POLY1305.tag_len() || raw.len() > 4096 {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut sealed = sealed.to_vec();
        let token = self
            .key
            .open_in_place(nonce, Aad::from(binding), &mut sealed)
            .map_err(|_| bad())?;
        Ok(token.to_vec())
    }
}

/// What a cursor is bound to: the API client and the list (its key prefix).
pub fn binding(client: &str, list: &[u8]) -> Vec<u8> {
    [client.as_bytes(), &[0u8], list].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_for_the_client_and_list_it_was_sealed_for() {
        let k = CursorKey::random().unwrap();
        let token = b"acct/130102/edu\0\0\0\x07".to_vec();
        let c = k
            .seal(&token, &binding("county", b"acct/"))
            .unwrap()
            .unwrap();
        assert!(!c.contains("130102"), "opaque: {c}");
        assert_eq!(k.open(&c, &binding("county", b"acct/")).unwrap(), token);
        for (client, list) in [
            ("city", b"acct/".as_slice()),
            ("county", b"prog/".as_slice()),
        ] {
            assert_eq!(
                k.open(&c, &binding(client, list)).unwrap_err().code,
                "api.bad_cursor"
            );
        }
        let mut forged = B64URL.decode(&c).unwrap();
        forged[NONCE_LEN] ^= 1;
        assert_eq!(
            k.open(&B64URL.encode(forged), &binding("county", b"acct/"))
                .unwrap_err()
                .code,
            "api.bad_cursor"
        );
        let other = CursorKey::random().unwrap();
        assert!(other.open(&c, &binding("county", b"acct/")).is_err());
        assert_eq!(
            k.seal(&[], b"x").unwrap(),
            None,
            "no cursor after the last page"
        );
    }
}
