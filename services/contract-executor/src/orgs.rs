//! The org registry (part of the consortium configuration): levels and parents.

use fiscus_proto::pb::types::{ConsortiumConfig, OrgLevel};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orgs {
    by_code: BTreeMap<String, (OrgLevel, String)>,
}

impl Orgs {
    pub fn from_config(c: &ConsortiumConfig) -> Self {
        let by_code = c
            .orgs
            .iter()
            .map(|o| {
                (
                    o.code.clone(),
                    (
                        OrgLevel::try_from(o.level).unwrap_or(OrgLevel::Unspecified),
                        o.parent.clone(),
                    ),
                )
            })
            .collect();
        Self { by_code }
    }

    /// Adds an org (tests and builders).
    pub fn with(mut self, code: &str, level: OrgLevel, parent: &str) -> Self {
        self.by_code
            .insert(code.to_owned(), (level, parent.to_owned()));
        self
    }

    pub fn level(&self, code: &str) -> Option<OrgLevel> {
        self.by_code.get(code).map(|(l, _)| *l)
    }

    pub fn parent(&self, code: &str) -> Option<&str> {
        self.by_code
            .get(code)
            .map(|(_, p)| p.as_str())
            .filter(|p| !p.is_empty())
    }

    pub fn contains(&self, code: &str) -> bool {
        self.by_code.contains_key(code)
    }

    /// Whether `descendant` lies below `ancestor` (not equal). Bounded by the
    /// registry size, so a cycle in bad config cannot loop forever.
    pub fn is_descendant(&self, ancestor: &str, descendant: &str) -> bool {
        let mut cur = descendant;
        for _ in 0..=self.by_code.len() {
            match self.parent(cur) {
                Some(p) if p == ancestor => return true,
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    }

    /// Whether any finance department (not a supervisor) names `code` as its
    /// parent: someone funds can be passed down to.
    pub fn has_children(&self, code: &str) -> bool {
        self.by_code
            .values()
            .any(|(l, p)| p == code && *l != OrgLevel::Supervisor)
    }

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.by_code.keys().map(String::as_str)
    }
}
