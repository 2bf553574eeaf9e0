//! Attestations from every member, by height: finality (a majority of
//! members attest the same block hash, state hash and receipts root) and the
//! divergence alarm (two members attest different hashes for one height).

use crate::chain::Triple;
use fiscus_proto::pb::types::SignedAttestation;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Members that disagree at a height, as the SRE sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub height: u64,
    /// member → "block_hash/state_hash/receipts_root" (hex), as each attested.
    pub attested: BTreeMap<String, String>,
    /// Members outside the largest agreeing group (all of them on a tie).
    pub diverging: Vec<String>,
}

/// What recording one attestation changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Heights that became final, ascending.
    pub newly_final: Vec<u64>,
    /// A new alarm (one per height), or an existing one that grew.
    pub alarm: Option<Alarm>,
    /// The attestation was new (worth passing on).
    pub new: bool,
    /// The height just reached a majority: the agreeing members' signed
    /// attestations, in member order (what a finality receipt carries).
    pub majority: Option<(u64, Vec<SignedAttestation>)>,
}

#[derive(Debug)]
pub struct Finality {
    me: String,
    /// The members now (the latest era).
    members: BTreeSet<String>,
    /// The member sets by the first height they are in force for: a height
    /// is final when a majority of the members *at that height* agree, so a
    /// member that joined later neither counts before it joined nor raises
    /// the majority the history needed.
    eras: BTreeMap<u64, BTreeSet<String>>,
    by_height: BTreeMap<u64, BTreeMap<String, (Triple, SignedAttestation)>>,
    finals: BTreeSet<u64>,
    final_height: u64,
    alarms: BTreeMap<u64, Alarm>,
    /// Heights kept below the final height, for peers that ask late.
    keep: u64,
}

fn show(t: &Triple) -> String {
    let h = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}/{}/{}", h(&t.0), h(&t.1), h(&t.2))
}

impl Finality {
    pub fn new(me: &str, members: BTreeSet<String>, start_height: u64) -> Self {
        Self {
            me: me.to_owned(),
            eras: BTreeMap::from([(0, members.clone())]),
            members,
            by_height: BTreeMap::new(),
            finals: BTreeSet::new(),
            final_height: start_height,
            alarms: BTreeMap::new(),
            keep: 10_000,
        }
    }

    /// Adds member sets by the first height each is in force for (the
    /// history is immutable: a known era is only ever confirmed), and takes
    /// the latest as the members now.
    pub fn add_eras(&mut self, eras: BTreeMap<u64, BTreeSet<String>>) {
        self.eras.extend(eras);
        if let Some((_, m)) = self.eras.last_key_value() {
            self.members = m.clone();
        }
    }

    /// Whether the member set in force from `height` on is known.
    pub fn has_era(&self, height: u64) -> bool {
        self.eras.contains_key(&height)
    }

    /// The members now.
    pub fn members(&self) -> &BTreeSet<String> {
        &self.members
    }

    /// The members at `height` (the oldest known set below every era).
    pub fn members_at(&self, height: u64) -> &BTreeSet<String> {
        self.eras
            .range(..=height)
            .next_back()
            .or_else(|| self.eras.first_key_value())
            .map_or(&self.members, |(_, m)| m)
    }

    /// Highest height such that it and every height below it are final.
    pub fn final_height(&self) -> u64 {
        self.final_height
    }

    pub fn alarms(&self) -> Vec<Alarm> {
        self.alarms.values().cloned().collect()
    }

    /// Whether this member is on the losing side of some alarm.
    pub fn we_diverge(&self) -> Option<u64> {
        self.alarms
            .values()
            .find(|a| a.diverging.contains(&self.me))
            .map(|a| a.height)
    }

    /// Everyone's attestations held for `height`, if any.
    pub fn at(&self, height: u64) -> Option<Vec<SignedAttestation>> {
        self.by_height
            .get(&height)
            .map(|m| m.values().map(|(_, s)| s.clone()).collect())
    }

    /// This member's own attestations for `from..=to`.
    pub fn own(&self, from: u64, to: u64) -> Vec<SignedAttestation> {
        self.by_height
            .range(from..=to)
            .filter_map(|(_, m)| m.get(&self.me).map(|(_, s)| s.clone()))
            .collect()
    }

    /// Whether exactly this signed attestation is already recorded, so that
    /// a copy gossiped again needs no second signature check.
    pub fn holds(&self, member: &str, height: u64, signed: &SignedAttestation) -> bool {
        self.by_height
            .get(&height)
            .and_then(|at| at.get(member))
            .is_some_and(|(_, s)| s == signed)
    }

    pub fn record(
        &mut self,
        member: &str,
        height: u64,
        triple: Triple,
        signed: SignedAttestation,
    ) -> Outcome {
        let mut out = Outcome::default();
        let members = self.members_at(height);
        if !members.contains(member) || height + self.keep < self.final_height {
            return out;
        }
        let majority = members.len() / 2 + 1;
        let at = self.by_height.entry(height).or_default();
        if at.get(member).is_some_and(|(t, _)| *t == triple) {
            return out;
        }
        at.insert(member.to_owned(), (triple, signed));
        out.new = true;
        let mut groups: BTreeMap<&Triple, Vec<&String>> = BTreeMap::new();
        for (m, (t, _)) in at.iter() {
            groups.entry(t).or_default().push(m);
        }
        if let Some((agreed, _)) = groups.iter().find(|(_, g)| g.len() >= majority)
            && self.finals.insert(height)
        {
            let signed = at
                .values()
                .filter(|(t, _)| t == *agreed)
                .map(|(_, s)| s.clone())
                .collect();
            out.majority = Some((height, signed));
        }
        if groups.len() > 1 {
            let largest = groups.values().map(Vec::len).max().unwrap_or(0);
            let winners: Vec<&Vec<&String>> =
                groups.values().filter(|g| g.len() == largest).collect();
            let diverging: Vec<String> = at
                .keys()
                .filter(|m| winners.len() > 1 || !winners[0].contains(m))
                .cloned()
                .collect();
            let alarm = Alarm {
                height,
                attested: at.iter().map(|(m, (t, _))| (m.clone(), show(t))).collect(),
                diverging,
            };
            if self.alarms.get(&height) != Some(&alarm) {
                self.alarms.insert(height, alarm.clone());
                out.alarm = Some(alarm);
            }
        }
        while self.finals.contains(&(self.final_height + 1)) {
            self.final_height += 1;
            out.newly_final.push(self.final_height);
        }
        let floor = self.final_height.saturating_sub(self.keep);
        while self
            .by_height
            .first_key_value()
            .is_some_and(|(h, _)| *h < floor)
        {
            self.by_height.pop_first();
        }
        while self.finals.first().is_some_and(|h| *h < floor) {
            self.finals.pop_first();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(x: u8) -> Triple {
        (vec![x], vec![x], vec![x])
    }

    fn members() -> BTreeSet<String> {
        ["a", "b", "c", "d"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn a_height_is_final_once_a_majority_agrees_and_final_height_is_contiguous() {
        let mut f = Finality::new("a", members(), 0);
        let s = SignedAttestation::default();
        assert!(f.record("a", 2, t(2), s.clone()).newly_final.is_empty());
        f.record("b", 2, t(2), s.clone());
        assert!(
            f.record("c", 2, t(2), s.clone()).newly_final.is_empty(),
            "1 not final yet"
        );
        f.record("a", 1, t(1), s.clone());
        f.record("b", 1, t(1), s.clone());
        let out = f.record("c", 1, t(1), s.clone());
        assert_eq!(out.newly_final, vec![1, 2]);
        assert_eq!(out.majority.map(|(h, v)| (h, v.len())), Some((1, 3)));
        assert_eq!(f.final_height(), 2);
        // A non-member counts for nothing.
        assert_eq!(f.record("z", 3, t(3), s), Outcome::default());
    }

    #[test]
    fn each_height_needs_a_majority_of_the_members_at_that_height() {
        // a, b, c, d at genesis; e joins in block 4 (in force from 5).
        let mut f = Finality::new("e", members(), 0);
        let mut five = members();
        five.insert("e".into());
        f.add_eras(BTreeMap::from([(5, five.clone())]));
        assert_eq!(f.members(), &five);
        assert_eq!(f.members_at(4).len(), 4);
        let s = SignedAttestation::default();
        // Before it joined: three of four, and e's attestation is not counted.
        assert_eq!(f.record("e", 1, t(1), s.clone()), Outcome::default());
        f.record("a", 1, t(1), s.clone());
        f.record("b", 1, t(1), s.clone());
        assert_eq!(f.record("c", 1, t(1), s.clone()).newly_final, vec![1]);
        for h in 2..=4 {
            for m in ["a", "b", "c"] {
                f.record(m, h, t(h as u8), s.clone());
            }
        }
        assert_eq!(f.final_height(), 4);
        // After: three of five is a majority too, but only with e's when two
        // founders are silent: a, b and e.
        f.record("a", 5, t(5), s.clone());
        assert!(f.record("b", 5, t(5), s.clone()).newly_final.is_empty());
        let out = f.record("e", 5, t(5), s.clone());
        assert_eq!(out.newly_final, vec![5]);
        assert_eq!(out.majority.map(|(h, v)| (h, v.len())), Some((5, 3)));
    }

    #[test]
    fn different_hashes_at_one_height_raise_an_alarm_naming_the_minority() {
        let mut f = Finality::new("d", members(), 0);
        let s = SignedAttestation::default();
        f.record("a", 1, t(1), s.clone());
        f.record("b", 1, t(1), s.clone());
        f.record("c", 1, t(1), s.clone());
        let out = f.record("d", 1, t(9), s);
        assert_eq!(out.majority, None, "height 1 reached its majority before");
        let alarm = out.alarm.unwrap();
        assert_eq!(alarm.diverging, vec!["d".to_owned()]);
        assert_eq!(f.we_diverge(), Some(1));
        assert_eq!(f.final_height(), 1, "the majority is still final");
    }
}
