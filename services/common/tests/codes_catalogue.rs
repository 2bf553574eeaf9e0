//! The error-code catalogue (`fiscus_common::codes`) is the one place codes
//! are spelled: no service source outside it writes a code as a string
//! literal, and every catalogued code is well formed and listed once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::codes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Strings with a code's shape that are something else: file names and
/// contract event names (`ContractEvent.name`).
const NOT_CODES: &[&str] = &[
    "analytics.sqlite3",
    "ca.pem",
    "ledger.fjall",
    "ledger.redb",
    "orderer.redb",
    "governance.proposed",
    "governance.voted_yes",
    "governance.voted_no",
    "governance.proposal_passed",
    "governance.proposal_inapplicable",
    "governance.proposal_failed",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The quoted `prefix.name` literals of `text` whose prefix is a catalogued one.
fn code_literals(text: &str, prefixes: &BTreeSet<&str>) -> Vec<String> {
    let mut found = Vec::new();
    for part in text.split('"').skip(1).step_by(2) {
        let Some((prefix, name)) = part.split_once('.') else {
            continue;
        };
        let shaped = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if shaped && prefixes.contains(prefix) && !NOT_CODES.contains(&part) {
            found.push(part.to_owned());
        }
    }
    found
}

#[test]
fn every_catalogued_code_is_well_formed_and_listed_once() {
    let mut seen = BTreeSet::new();
    for code in codes::ALL {
        let (prefix, name) = code.split_once('.').expect("prefix.name");
        assert!(!prefix.is_empty() && !name.is_empty(), "{code}");
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'),
            "{code} is not lower-case snake case"
        );
        assert!(seen.insert(*code), "{code} is listed twice");
    }
    assert!(seen.len() > 100, "the catalogue lost its codes");
}

#[test]
fn no_service_source_spells_a_code_outside_the_catalogue() {
    let prefixes: BTreeSet<&str> = codes::ALL
        .iter()
        .map(|c| c.split_once('.').unwrap().0)
        .collect();
    let services = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&services).unwrap() {
        let src = e.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for f in &files {
        if f.ends_with("common/src/codes.rs") || f.components().any(|c| c.as_os_str() == "testkit")
        {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests may spell the wire value they expect.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for code in code_literals(line, &prefixes) {
                offenders.push(format!("{}:{}: \"{code}\"", f.display(), i + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use the fiscus_common::codes constants instead of these literals:\n{}",
        offenders.join("\n")
    );
}
