//! Which subject alternative names a member's certificates may carry.
//!
//! Each member of the consortium config has an allow-list (`allowed_names`):
//! DNS names, `*.`-wildcards over a domain of at least two labels, and IP
//! addresses. The identity-ca issues a SAN only if the requesting member's list
//! allows it; the genesis bundle and governance proposals are checked with
//! [`check_allow_list`]. One rule, used by both.
//!
//! Loopback names (`localhost`, `127.0.0.0/8`, `::1`) may appear in several
//! members' lists: a single-machine devnet has every service on loopback, and a
//! loopback name never reaches another host. Any other name belongs to one
//! member only.

use std::net::IpAddr;

/// The most entries one member's allow-list may hold.
pub const MAX_ALLOWED_NAMES: usize = 64;
/// RFC 1035's limit on a DNS name.
pub const MAX_DNS_NAME_LEN: usize = 253;

/// One allow-list entry (or requested SAN), classified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dns(String),
    /// `*.domain`: the domain, without the `*.`.
    Wildcard(String),
    Ip(IpAddr),
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn parse(entry: &str) -> Result<Entry, String> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(Entry::Ip(ip));
    }
    if entry.is_empty() || entry.len() > MAX_DNS_NAME_LEN {
        return Err(format!("{entry:?} is empty or longer than 253 bytes"));
    }
    if entry != entry.to_ascii_lowercase() {
        return Err(format!("{entry:?} must be lowercase"));
    }
    let (wild, domain) = match entry.strip_prefix("*.") {
        Some(d) => (true, d),
        None => (false, entry),
    };
    if entry == "*" || (wild && domain.split('.').count() < 2) {
        return Err(format!(
            "{entry:?}: a wildcard must cover a domain of at least two labels, e.g. *.hebei.example"
        ));
    }
    if !domain.split('.').all(is_label) {
        return Err(format!(
            "{entry:?} is not a DNS name (lowercase letters, digits and '-' per label; '*' only as the whole first label)"
        ));
    }
    Ok(if wild {
        Entry::Wildcard(domain.to_owned())
    } else {
        Entry::Dns(entry.to_owned())
    })
}

/// Whether `name` (a DNS name or an IP address) is a loopback name.
pub fn is_loopback(name: &str) -> bool {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => name == "localhost",
    }
}

/// Checks one member's allow-list: at most [`MAX_ALLOWED_NAMES`] entries, each
/// a lowercase DNS name, a wildcard over at least two labels, or an IP address.
pub fn check_allow_list(entries: &[String]) -> Result<(), String> {
    if entries.len() > MAX_ALLOWED_NAMES {
        return Err(format!(
            "{} allowed names (at most {MAX_ALLOWED_NAMES})",
            entries.len()
        ));
    }
    entries.iter().try_for_each(|e| parse(e).map(|_| ()))
}

/// Checks that no non-loopback entry appears in two members' lists.
/// `lists` pairs each member's code with its allow-list.
pub fn check_disjoint<'a>(
    lists: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Result<(), String> {
    let mut owner: std::collections::BTreeMap<&str, &str> = Default::default();
    for (member, list) in lists {
        for e in list.iter().filter(|e| !is_loopback(e)) {
            if let Some(other) = owner.insert(e.as_str(), member)
                && other != member
            {
                return Err(format!(
                    "allowed name {e:?} is listed for both {other} and {member}; a name belongs to one member"
                ));
            }
        }
    }
    Ok(())
}

/// Whether the allow-list permits the requested SAN `name`: an equal entry
/// (DNS names compared case-insensitively, IP addresses by value), or a
/// `*.domain` entry and a name one label below that domain. A requested
/// wildcard is permitted only by the same wildcard entry.
pub fn name_allowed(entries: &[String], name: &str) -> bool {
    let lowered = name.to_ascii_lowercase();
    let Ok(wanted) = parse(&lowered) else {
        return false;
    };
    entries.iter().filter_map(|e| parse(e).ok()).any(|e| {
        e == wanted
            || matches!((&e, &wanted), (Entry::Wildcard(d), Entry::Dns(n))
                if n.strip_suffix(d.as_str())
                    .and_then(|h| h.strip_suffix('.'))
                    .is_some_and(is_label))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_lone_star_a_short_wildcard_and_odd_names_are_refused_in_a_list() {
        for bad in [
            "*",
            "*.example",
            "a.*.example.org",
            "Hebei.example",
            "",
            "-a.example",
            "a..b",
        ] {
            assert!(check_allow_list(&list(&[bad])).is_err(), "{bad}");
        }
        check_allow_list(&list(&[
            "localhost",
            "127.0.0.1",
            "::1",
            "hebei.example",
            "*.hebei.example",
        ]))
        .unwrap();
        assert!(check_allow_list(&vec!["a.example".to_owned(); MAX_ALLOWED_NAMES + 1]).is_err());
    }

    #[test]
    fn a_wildcard_entry_covers_one_label_below_its_domain_only() {
        let l = list(&["*.hebei.example", "10.1.2.3", "gw.hebei.example"]);
        assert!(name_allowed(&l, "node.hebei.example"));
        assert!(name_allowed(&l, "NODE.Hebei.Example"));
        assert!(name_allowed(&l, "*.hebei.example"));
        assert!(name_allowed(&l, "gw.hebei.example"));
        assert!(name_allowed(&l, "10.1.2.3"));
        assert!(!name_allowed(&l, "hebei.example"));
        assert!(!name_allowed(&l, "a.b.hebei.example"));
        assert!(!name_allowed(&l, "xhebei.example"));
        assert!(!name_allowed(&l, "*"));
        assert!(!name_allowed(&l, "*.example"));
        assert!(!name_allowed(&l, "10.1.2.4"));
        assert!(!name_allowed(&l, "identity-ca"));
        assert!(!name_allowed(&[], "localhost"));
    }

    #[test]
    fn only_loopback_names_may_be_shared_between_members() {
        let a = list(&["localhost", "127.0.0.1", "a.example"]);
        let b = list(&["localhost", "127.0.0.1", "b.example"]);
        check_disjoint([("130000", &a[..]), ("130100", &b[..])]).unwrap();
        let c = list(&["a.example"]);
        let e = check_disjoint([("130000", &a[..]), ("130100", &c[..])]).unwrap_err();
        assert!(e.contains("a.example") && e.contains("130100"), "{e}");
    }
}
