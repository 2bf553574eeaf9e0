//! Where the devnet's parts listen: a port layout from a base port (or ports
//! from the OS), checked free before anything starts, and the demo clock.

use super::MEMBERS;
use crate::devnet::CONSORTIUM;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What `devnet.json` records: the ports chosen when the data directory was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layout {
    pub consortium_id: String,
    pub ca_grpc: SocketAddr,
    pub orderers: Vec<OrdererPorts>,
    pub members: Vec<MemberPorts>,
    /// Set when the devnet was created for `--demo`: blocks carry a fast
    /// fiscal calendar (see [`demo_clock`]).
    #[serde(default)]
    pub block_clock: Option<fiscus_orderer::BlockClock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrdererPorts {
    pub id: u64,
    pub org: String,
    pub client: SocketAddr,
    pub raft: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberPorts {
    pub code: String,
    pub ledger: SocketAddr,
    pub gateway: SocketAddr,
    pub api: SocketAddr,
    /// The exchange-adapter's gRPC API (absent in devnets made before it existed).
    #[serde(default)]
    pub grpc: Option<SocketAddr>,
    /// The analytics API and dashboard (absent in devnets made before it
    /// existed: such a devnet's analytics takes any free port).
    #[serde(default)]
    pub analytics: Option<SocketAddr>,
}

/// Loopback ports below Linux's ephemeral range (32768–60999), so that no
/// outgoing connection of the devnet itself can take one before the service
/// that owns it binds it (which a port from `bind(":0")` allowed).
pub(super) const FREE_PORTS: std::ops::Range<u16> = 10_000..32_000;

/// The ports this process has leased (see [`lease`]), each with its lock
/// file held open.
static LEASES: Mutex<BTreeMap<u16, File>> = Mutex::new(BTreeMap::new());

/// Where the lock files of leased ports live: one directory per machine (per
/// `TMPDIR`), shared by every devnet on it.
fn lease_dir() -> PathBuf {
    std::env::temp_dir().join("fiscus-devnet-ports")
}

/// Leases `port` to this process until it exits: an exclusive lock on a file
/// named after the port, which every devnet checks before it gives a port
/// out. A probe alone cannot keep two devnets starting side by side from
/// choosing the same free port (each service binds its port seconds after it
/// was chosen); the lease can. The OS drops the lock when the process dies,
/// so a killed devnet leaves no lease behind (the files are empty and stay:
/// removing one would race with a devnet locking it). False when another
/// process holds it.
pub(super) fn lease(port: u16) -> Result<bool> {
    let mut leases = LEASES.lock().unwrap_or_else(|e| e.into_inner());
    if leases.contains_key(&port) {
        return Ok(true);
    }
    let dir = lease_dir();
    if !dir.exists() {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::DirBuilder::new().mode(0o1777).create(&dir) {
            // Shared by every user's devnets, as /tmp is (the umask narrowed it).
            Ok(()) => std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))
                .with_context(|| format!("opening {} to every user", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    let path = dir.join(port.to_string());
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        // Another user's devnet made it; reading is enough to lock it.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            File::open(&path).with_context(|| format!("opening {}", path.display()))?
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match file.try_lock() {
        Ok(()) => {
            leases.insert(port, file);
            Ok(true)
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Gives a lease back (the port turned out to be in use by something else).
fn release(port: u16) {
    LEASES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&port);
}

/// Leases the ports of a devnet being resumed, so that a devnet created
/// meanwhile does not choose them. One that another process holds is left
/// to [`check_free`](super::check_free), which names what holds it.
pub(super) fn lease_all(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<()> {
    for a in addrs {
        if a.ip().is_loopback() {
            lease(a.port())?;
        }
    }
    Ok(())
}

/// `n` loopback ports: consecutive from `base`, or (base 0) free ones not in
/// `avoid`, the ports this devnet has already given out but whose services may
/// not have bound them yet (a probe alone would hand such a port out twice),
/// and not leased by another devnet (see [`lease`]). Each port chosen stays
/// leased to this process.
pub(super) fn ports(base: u16, n: usize, avoid: &[SocketAddr]) -> Result<Vec<SocketAddr>> {
    if base != 0 {
        return (0..n)
            .map(|i| {
                let port = base
                    .checked_add(i as u16)
                    .context("--base-port is too high")?;
                Ok(SocketAddr::from(([127, 0, 0, 1], port)))
            })
            .collect();
    }
    // Probe from a start that differs between concurrent devnets, holding each
    // free port found until all are found.
    let span = u64::from(FREE_PORTS.end - FREE_PORTS.start);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut held = Vec::new();
    for step in 0..span {
        if held.len() == n {
            break;
        }
        let port = FREE_PORTS.start + ((seed + step) % span) as u16;
        if avoid.iter().any(|a| a.port() == port) || !lease(port)? {
            continue;
        }
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => held.push(l),
            Err(_) => release(port),
        }
    }
    if held.len() < n {
        bail!("fewer than {n} free loopback ports in {FREE_PORTS:?}");
    }
    held.iter().map(|l| Ok(l.local_addr()?)).collect()
}

/// Simulated milliseconds per wall millisecond in a demo devnet: one day per 100 ms.
pub(crate) const DEMO_SPEEDUP: u32 = 864_000;

/// The demo's calendar: block time starts at 2026-03-13 00:00 Beijing time
/// (UTC+8) when the devnet is created, and a day passes every 100 ms.
pub(super) fn demo_clock() -> fiscus_orderer::BlockClock {
    let now = now_ms();
    fiscus_orderer::BlockClock {
        // 2026-03-13 00:00 China Standard Time, the day after the NPC approved
        // the 2026 budget (the devnet genesis records that approval).
        start_ms: 1_773_331_200_000,
        anchor_unix_ms: now,
        speedup: DEMO_SPEEDUP,
    }
}

/// Where a demo devnet's calendar stood when it last ran.
const CLOCK_FILE: &str = "demo-clock.json";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedClock {
    /// Block time (Unix ms) the calendar had reached.
    block_time_ms: i64,
}

/// The demo calendar for this start: it goes on from where it stood when
/// the devnet last ran (`demo-clock.json`), so that it does not advance
/// while the devnet is down. A devnet that never ran keeps its clock.
pub(super) fn resume_clock(
    data: &Path,
    clock: fiscus_orderer::BlockClock,
    now_ms: i64,
) -> Result<fiscus_orderer::BlockClock> {
    let file = data.join(CLOCK_FILE);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(clock),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let saved: SavedClock = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "reading {}: remove it to go on from the wall clock",
            file.display()
        )
    })?;
    Ok(fiscus_orderer::BlockClock {
        start_ms: saved.block_time_ms.max(clock.start_ms),
        anchor_unix_ms: now_ms,
        speedup: clock.speedup,
    })
}

/// Records where the demo calendar stands now (write and rename: a kill
/// leaves the old record or the new one).
pub(super) fn save_clock(
    data: &Path,
    clock: &fiscus_orderer::BlockClock,
    now_ms: i64,
) -> Result<()> {
    let file = data.join(CLOCK_FILE);
    let tmp = data.join(format!("{CLOCK_FILE}.tmp"));
    let saved = SavedClock {
        block_time_ms: clock.at(now_ms),
    };
    std::fs::write(&tmp, serde_json::to_vec(&saved)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))
}

/// Wall time now, Unix ms.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn layout(base: u16, demo: bool) -> Result<Layout> {
    let p = ports(base, 1 + 3 * 2 + MEMBERS.len() * 5, &[])?;
    let orderer_orgs = ["000000", "130000", "130100"];
    Ok(Layout {
        consortium_id: CONSORTIUM.into(),
        ca_grpc: p[0],
        orderers: (0..3)
            .map(|i| OrdererPorts {
                id: i as u64 + 1,
                org: orderer_orgs[i].into(),
                client: p[1 + 2 * i],
                raft: p[2 + 2 * i],
            })
            .collect(),
        members: MEMBERS
            .iter()
            .enumerate()
            .map(|(j, (code, _))| MemberPorts {
                code: (*code).into(),
                ledger: p[7 + 3 * j],
                gateway: p[8 + 3 * j],
                api: p[9 + 3 * j],
                grpc: Some(p[7 + 3 * MEMBERS.len() + j]),
                analytics: Some(p[7 + 4 * MEMBERS.len() + j]),
            })
            .collect(),
        block_clock: demo.then(demo_clock),
    })
}

impl Layout {
    /// Every port the layout gives out, with what listens there.
    pub(super) fn addrs(&self) -> Vec<(String, SocketAddr)> {
        let mut all = vec![("identity-ca".to_owned(), self.ca_grpc)];
        for o in &self.orderers {
            all.push((format!("orderer {} client", o.id), o.client));
            all.push((format!("orderer {} raft", o.id), o.raft));
        }
        for m in &self.members {
            all.push((format!("{} ledger-store", m.code), m.ledger));
            all.push((format!("{} gossip-gateway", m.code), m.gateway));
            all.push((format!("{} exchange-adapter", m.code), m.api));
            if let Some(g) = m.grpc {
                all.push((format!("{} exchange gRPC", m.code), g));
            }
            if let Some(a) = m.analytics {
                all.push((format!("{} analytics", m.code), a));
            }
        }
        all
    }
}

/// Fails with the port's name when one of the layout's ports is taken.
pub(super) fn check_free(layout: &Layout) -> Result<()> {
    for (what, addr) in layout.addrs() {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            bail!(
                "port {addr} ({what}, recorded in devnet.json) is not free: {e}. \
                 Is another devnet running? Stop it, or start fresh with --reset (and --base-port)."
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A demo calendar stopped at some day goes on from that day when the
    /// devnet starts again, however long it was down; a record that cannot
    /// be read is refused in words, not ignored.
    #[test]
    fn the_demo_calendar_does_not_advance_while_the_devnet_is_down() {
        let dir = tempfile::tempdir().unwrap();
        let clock = fiscus_orderer::BlockClock {
            start_ms: 1_773_331_200_000,
            anchor_unix_ms: 1_000_000,
            speedup: DEMO_SPEEDUP,
        };
        // Never ran: the clock as made.
        assert_eq!(resume_clock(dir.path(), clock, 5_000_000).unwrap(), clock);
        // Ran for 1 s of wall time (10 demo days), then stopped.
        save_clock(dir.path(), &clock, 1_001_000).unwrap();
        let stopped_at = clock.at(1_001_000);
        // Down for an hour of wall time (a decade of demo days): on start it
        // goes on from where it stopped.
        let later = 1_001_000 + 3_600_000;
        let resumed = resume_clock(dir.path(), clock, later).unwrap();
        assert_eq!(resumed.at(later), stopped_at);
        assert_eq!(
            resumed.at(later + 100),
            stopped_at + 100 * i64::from(DEMO_SPEEDUP)
        );
        assert!(clock.at(later) - stopped_at > 30 * 86_400_000);
        std::fs::write(dir.path().join(CLOCK_FILE), b"{").unwrap();
        let e = resume_clock(dir.path(), clock, later).unwrap_err();
        assert!(format!("{e:#}").contains("demo-clock.json"), "{e:#}");
    }

    /// A port another devnet leased is never given out, though it is free.
    #[test]
    fn a_port_leased_elsewhere_is_not_given_out() {
        let open: Vec<u16> = (FREE_PORTS.start..FREE_PORTS.end)
            .filter(|p| p % 401 == 0)
            .take(12)
            .collect();
        let ours = |p: &u16| LEASES.lock().unwrap().contains_key(p);
        let theirs = *open.iter().find(|p| !ours(p)).unwrap();
        // What another process's lease looks like here: the lock taken through
        // another open file (flock locks belong to the open file, not the process).
        let other = File::create(lease_dir().join(theirs.to_string())).unwrap();
        other.lock().unwrap();
        assert!(!lease(theirs).unwrap(), "{theirs} was leased twice");
        let avoid: Vec<SocketAddr> = (FREE_PORTS.start..FREE_PORTS.end)
            .filter(|p| !open.contains(p))
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let given = ports(0, 3, &avoid).unwrap();
        assert!(given.iter().all(|a| a.port() != theirs), "{given:?}");
        drop(other);
        assert!(lease(theirs).unwrap(), "the lock ends with its file");
    }

    /// A port already given out is never given again, even while it is free
    /// (its service has not bound it yet): the probe skips it.
    #[test]
    fn ports_never_repeats_a_port_given_out() {
        let first = ports(0, 40, &[]).unwrap();
        // Everything in the range but 60 ports given out, ours among them.
        let open: Vec<u16> = (FREE_PORTS.start..FREE_PORTS.end)
            .filter(|p| p % 367 == 0)
            .take(60)
            .collect();
        let avoid: Vec<SocketAddr> = (FREE_PORTS.start..FREE_PORTS.end)
            .filter(|p| !open.contains(p))
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .chain(first.iter().copied())
            .collect();
        let second = ports(0, 5, &avoid).unwrap();
        for a in &second {
            assert!(open.contains(&a.port()), "{a} was given out already");
            assert!(!first.contains(a), "{a} was given out twice");
        }
        let distinct: std::collections::BTreeSet<_> = second.iter().collect();
        assert_eq!(distinct.len(), 5);
    }
}
