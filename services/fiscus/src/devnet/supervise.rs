//! Supervising the process devnet's children the way Kubernetes supervises a
//! pod's containers: each runs with its own log file and pid file, one that
//! exits is restarted with exponential backoff (0.5 s, doubling to 10 s;
//! back to 0.5 s once it has stayed up 30 s), and every exit and restart is
//! logged. What the supervisor knows is written to `run/status.json`, which
//! `fiscus devnet status` reads.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A process up this long has its backoff reset.
const STABLE: Duration = Duration::from_secs(30);
/// How long a stopping process has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// One supervised process.
#[derive(Debug, Clone)]
pub(crate) struct ProcSpec {
    /// Unique within the devnet, e.g. `orderer-2`, `member-130000-ledger-store`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Its ops endpoint (`/healthz`, `/readyz`, `/metrics`), if it has one.
    pub http: Option<SocketAddr>,
}

/// What `run/status.json` records of one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcStatus {
    pub name: String,
    /// None while it is down (between an exit and its restart).
    pub pid: Option<u32>,
    /// When the current run started (Unix ms).
    pub started_unix_ms: u64,
    pub restarts: u32,
    /// How the last run ended, e.g. "killed by signal 9 (SIGKILL)".
    pub last_exit: Option<String>,
    pub http: Option<SocketAddr>,
    pub log: PathBuf,
    /// Its place in the start order.
    pub seq: usize,
}

/// `run/status.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusFile {
    /// The `fiscus devnet --processes` process that supervises the rest.
    pub supervisor_pid: u32,
    pub processes: Vec<ProcStatus>,
}

pub(crate) fn status_path(data: &Path) -> PathBuf {
    data.join("run").join("status.json")
}

pub(crate) fn read_status(data: &Path) -> Result<Option<StatusFile>> {
    let path = status_path(data);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Whether `pid` is a live process (not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, a)| a.trim_start().to_owned()))
        .is_some_and(|a| !a.starts_with('Z'))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => {
                let name = nix::sys::signal::Signal::try_from(sig)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| "?".into());
                format!("killed by signal {sig} ({name})")
            }
            (None, None) => "ended".into(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    }
}

type Table = Arc<Mutex<BTreeMap<String, ProcStatus>>>;

/// The supervisor: start processes with [`Supervisor::spawn`], stop them all
/// with [`Supervisor::stop`]. Children are killed if it is dropped.
pub(crate) struct Supervisor {
    data: PathBuf,
    table: Table,
    /// Start order (stopped in reverse).
    order: Vec<String>,
    tasks: BTreeMap<String, JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// `RUST_LOG` of the children when the caller's environment sets none.
    log_level: String,
}

impl Supervisor {
    pub(crate) fn new(data: &Path, log_level: &str) -> Result<Self> {
        for dir in ["run", "logs"] {
            std::fs::create_dir_all(data.join(dir))
                .with_context(|| format!("creating {}", data.join(dir).display()))?;
        }
        let s = Self {
            data: data.to_owned(),
            table: Arc::default(),
            order: Vec::new(),
            tasks: BTreeMap::new(),
            stop: watch::channel(false).0,
            log_level: log_level.to_owned(),
        };
        write_status(&s.data, &s.table)?;
        Ok(s)
    }

    pub(crate) fn log_path(&self, name: &str) -> PathBuf {
        self.data.join("logs").join(format!("{name}.log"))
    }

    /// Starts `spec` now (failing if it cannot be executed) and keeps it running.
    pub(crate) fn spawn(&mut self, spec: ProcSpec) -> Result<()> {
        let log = self.log_path(&spec.name);
        let child = launch(&spec, &log, &self.log_level)
            .with_context(|| format!("starting {}", spec.name))?;
        let status = ProcStatus {
            name: spec.name.clone(),
            pid: child.id(),
            started_unix_ms: unix_ms(),
            restarts: 0,
            last_exit: None,
            http: spec.http,
            log: log.clone(),
            seq: self.order.len(),
        };
        write_pid(&self.data, &spec.name, child.id());
        lock(&self.table).insert(spec.name.clone(), status);
        write_status(&self.data, &self.table)?;
        let task = tokio::spawn(supervise(
            spec.clone(),
            child,
            self.data.clone(),
            self.table.clone(),
            self.stop.subscribe(),
            self.log_level.clone(),
        ));
        self.order.push(spec.name.clone());
        self.tasks.insert(spec.name, task);
        Ok(())
    }

    /// The current pid of every running child.
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        lock(&self.table)
            .values()
            .filter_map(|p| Some((p.name.clone(), p.pid?)))
            .collect()
    }

    pub(crate) fn status(&self, name: &str) -> Option<ProcStatus> {
        lock(&self.table).get(name).cloned()
    }

    /// Stops every child, last started first: SIGTERM, then SIGKILL after 10 s.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        for name in self.order.iter().rev() {
            if let Some(task) = self.tasks.remove(name) {
                let _ = task.await;
            }
        }
        let _ = std::fs::remove_file(status_path(&self.data));
    }
}

fn lock(t: &Table) -> std::sync::MutexGuard<'_, BTreeMap<String, ProcStatus>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_pid(data: &Path, name: &str, pid: Option<u32>) {
    let path = data.join("run").join(format!("{name}.pid"));
    let _ = match pid {
        Some(p) => std::fs::write(&path, format!("{p}\n")),
        None => std::fs::remove_file(&path),
    };
}

/// Writes `run/status.json` whole (a temporary file renamed over it). The
/// table stays locked until the rename: the launcher and every child's
/// watcher write it, and two writers sharing the one temporary file would
/// rename it from under each other (the second rename fails with ENOENT,
/// which stopped a devnet whose ledger-store exited while others started).
fn write_status(data: &Path, table: &Table) -> Result<()> {
    let table = lock(table);
    let file = StatusFile {
        supervisor_pid: std::process::id(),
        processes: {
            let mut all: Vec<ProcStatus> = table.values().cloned().collect();
            all.sort_by_key(|p| p.seq);
            all
        },
    };
    let path = status_path(data);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    drop(table);
    Ok(())
}

/// Appends a supervisor line to a child's log, so that the log tells its
/// whole story.
fn note(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "--- devnet supervisor: {line}");
    }
}

fn launch(spec: &ProcSpec, log: &Path, log_level: &str) -> Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    note(log, &format!("starting {}", spec.name));
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", log_level);
    }
    // Two dozen processes share the machine: each gets one async worker and
    // one CPU-pool thread, as a pod with a one-CPU limit would, instead of
    // one per core each (measured: fewer threads contending, more tx/s, see
    // README). An explicit FISCUS_WORKER_THREADS is passed on as it is.
    if std::env::var_os(crate::WORKER_THREADS_ENV).is_none() {
        cmd.env(crate::WORKER_THREADS_ENV, "1");
    }
    // Should the devnet be killed (SIGKILL: it cannot stop its children),
    // each child notices and stops itself.
    cmd.env(crate::EXIT_WITH_PARENT_ENV, std::process::id().to_string());
    // Whose spans these are: the member (or orderer) as an OpenTelemetry
    // resource attribute, beside any the caller set.
    if let Some(attr) = resource_attribute(&spec.name) {
        let attrs = match std::env::var("OTEL_RESOURCE_ATTRIBUTES") {
            Ok(set) if !set.trim().is_empty() => format!("{set},{attr}"),
            _ => attr,
        };
        cmd.env("OTEL_RESOURCE_ATTRIBUTES", attrs);
    }
    cmd.spawn()
        .with_context(|| format!("executing {}", spec.program.display()))
}

/// `fiscus.member=<code>` for a member's process (and the identity-ca, which
/// is MOF's), `fiscus.orderer=<id>` for an orderer; by process name.
fn resource_attribute(name: &str) -> Option<String> {
    if name == "identity-ca" {
        return Some("fiscus.member=000000".into());
    }
    if let Some(id) = name.strip_prefix("orderer-") {
        return Some(format!("fiscus.orderer={id}"));
    }
    let code = name.strip_prefix("member-")?.split('-').next()?;
    Some(format!("fiscus.member={code}"))
}

/// Returns once the supervisor stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// SIGTERM, then SIGKILL if it has not exited within [`GRACE`].
async fn terminate(child: &mut Child) -> std::io::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        if let Ok(s) = tokio::time::timeout(GRACE, child.wait()).await {
            return s;
        }
    }
    let _ = child.start_kill();
    child.wait().await
}

async fn supervise(
    spec: ProcSpec,
    mut child: Child,
    data: PathBuf,
    table: Table,
    mut stop: watch::Receiver<bool>,
    log_level: String,
) {
    let log = data.join("logs").join(format!("{}.log", spec.name));
    let mut backoff = FIRST_BACKOFF;
    let mut started = Instant::now();
    loop {
        let exit = tokio::select! {
            s = child.wait() => s,
            () = stopped(&mut stop) => {
                let how = describe(terminate(&mut child).await);
                note(&log, &format!("stopped ({how})"));
                write_pid(&data, &spec.name, None);
                return;
            }
        };
        let how = describe(exit);
        if started.elapsed() >= STABLE {
            backoff = FIRST_BACKOFF;
        }
        if let Some(p) = lock(&table).get_mut(&spec.name) {
            p.pid = None;
            p.last_exit = Some(how.clone());
        }
        write_pid(&data, &spec.name, None);
        let _ = write_status(&data, &table);
        let line = format!("{} exited ({how}); restarting in {backoff:?}", spec.name);
        eprintln!("devnet: {line}");
        note(&log, &line);
        // Restart, retrying with the same backoff while it cannot even be executed.
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stopped(&mut stop) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match launch(&spec, &log, &log_level) {
                Ok(c) => {
                    child = c;
                    break;
                }
                Err(e) => {
                    let line = format!("{} could not be restarted: {e:#}", spec.name);
                    eprintln!("devnet: {line}");
                    note(&log, &line);
                }
            }
        }
        started = Instant::now();
        if let Some(p) = lock(&table).get_mut(&spec.name) {
            p.pid = child.id();
            p.started_unix_ms = unix_ms();
            p.restarts += 1;
            eprintln!(
                "devnet: {} restarted (pid {}, restart #{})",
                spec.name,
                p.pid.unwrap_or(0),
                p.restarts
            );
        }
        write_pid(&data, &spec.name, child.id());
        let _ = write_status(&data, &table);
    }
}

#[cfg(test)]
mod tests {
    use super::resource_attribute;

    #[test]
    fn each_process_names_its_member_or_orderer_as_a_resource_attribute() {
        assert_eq!(
            resource_attribute("member-130100-ledger-store").as_deref(),
            Some("fiscus.member=130100")
        );
        assert_eq!(
            resource_attribute("member-991300-exchange-adapter").as_deref(),
            Some("fiscus.member=991300")
        );
        assert_eq!(
            resource_attribute("orderer-2").as_deref(),
            Some("fiscus.orderer=2")
        );
        assert_eq!(
            resource_attribute("identity-ca").as_deref(),
            Some("fiscus.member=000000")
        );
        assert_eq!(resource_attribute("nats-server"), None);
    }
}
