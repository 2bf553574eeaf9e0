//! NATS-style subjects: dot-separated tokens; `*` matches one token, `>` the rest.

use super::{BusError, Result};

const MAX_SUBJECT_LEN: usize = 256;

fn check_tokens(subject: &str, wildcards: bool) -> Result<()> {
    let bad = |reason| BusError::InvalidSubject {
        subject: subject.to_owned(),
        reason,
    };
    if subject.is_empty() {
        return Err(bad("empty"));
    }
    if subject.len() > MAX_SUBJECT_LEN {
        return Err(bad("longer than 256 bytes"));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err(bad("empty token"));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("whitespace or control character"));
        }
        let is_wild = *t == "*" || *t == ">";
        if !wildcards && (t.contains('*') || t.contains('>')) {
            return Err(bad("wildcards are only allowed in subscriptions"));
        }
        if wildcards && !is_wild && (t.contains('*') || t.contains('>')) {
            return Err(bad("a wildcard must be a whole token"));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Err(bad("'>' must be the last token"));
        }
    }
    Ok(())
}

/// A subject to publish on: no wildcards.
pub fn validate_subject(subject: &str) -> Result<()> {
    check_tokens(subject, false)
}

/// A subject pattern to subscribe to: `*` and `>` allowed as whole tokens.
pub fn validate_pattern(pattern: &str) -> Result<()> {
    check_tokens(pattern, true)
}

/// Whether a (valid) pattern matches a (valid) subject.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_token_or_the_rest() {
        assert!(subject_matches(
            "fiscus.c1.130000.blocks",
            "fiscus.c1.130000.blocks"
        ));
        assert!(subject_matches(
            "fiscus.c1.*.blocks",
            "fiscus.c1.130000.blocks"
        ));
        assert!(!subject_matches(
            "fiscus.c1.*.blocks",
            "fiscus.c1.130000.txs"
        ));
        assert!(subject_matches("fiscus.c1.>", "fiscus.c1.130000.txs"));
        assert!(!subject_matches("fiscus.c1.>", "fiscus.c1"));
        assert!(!subject_matches("fiscus.c1", "fiscus.c1.130000"));
    }

    #[test]
    fn malformed_subjects_are_rejected() {
        for bad in ["", "a..b", "a.b.", "a b", "a.*", "a.>", "a.x*"] {
            assert!(validate_subject(bad).is_err(), "{bad:?}");
        }
        for bad in ["a.>.b", "a.x*", ""] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
        assert!(validate_pattern("fiscus.*.>").is_ok());
        assert!(validate_subject(&"a".repeat(300)).is_err());
    }
}
