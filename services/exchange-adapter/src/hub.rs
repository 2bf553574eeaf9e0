//! The event hub: live block events fanned out to subscribers (SSE, the
//! webhook loops) and the webhooks' dead-letter list, kept across restarts.
//! The JSON of a block event is defined here (`BlockEvent`).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// One transaction's outcome in a block event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TxEvent {
    pub tx_id: String,
    pub tx_index: u32,
    /// `valid`, or the rejection, e.g. `insufficient_funds`.
    pub status: String,
    pub reason: String,
}

/// What subscribers receive for each committed block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlockEvent {
    pub height: u64,
    pub timestamp_ms: i64,
    pub txs: Vec<TxEvent>,
}

/// A configured webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    /// `http://host:port/path` or `https://host:port/path`.
    pub url: String,
    /// For an `https://` URL: the PEM certificates of the roots to trust
    /// (no system roots are used).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The HMAC-SHA256 key the receiver checks `X-Fiscus-Signature` with.
    pub secret: String,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub initial_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    6
}

fn default_backoff() -> u64 {
    500
}

/// A delivery that failed every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    pub webhook: String,
    pub height: u64,
    pub attempts: u32,
    pub last_error: String,
    pub event: BlockEvent,
}

const MAX_DEAD_LETTERS: usize = 10_000;

/// Live block events, and the dead-letter list.
#[derive(Debug)]
pub struct Hub {
    live: broadcast::Sender<Arc<BlockEvent>>,
    dead: Mutex<VecDeque<DeadLetter>>,
    /// Where dead letters are kept across restarts (JSON lines), if anywhere.
    dead_file: Option<PathBuf>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            live: broadcast::channel(1024).0,
            dead: Mutex::new(VecDeque::new()),
            dead_file: None,
        }
    }
}

impl Hub {
    /// A hub whose dead letters survive restarts: each is appended to `file`
    /// (one JSON line, fsynced) before the webhook's cursor moves past it, and
    /// the newest [`MAX_DEAD_LETTERS`] are read back here. A line that does
    /// not parse is skipped with a warning; a torn last line (a crash during
    /// an append) is cut off.
    pub fn durable(file: PathBuf) -> std::io::Result<Self> {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut dead = VecDeque::new();
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            match serde_json::from_str::<DeadLetter>(line) {
                Ok(d) => keep_newest(&mut dead, d),
                Err(e) => {
                    tracing::warn!(file = %file.display(), line = n + 1, error = %e, "skipping an unreadable dead letter");
                }
            }
        }
        // Cut a torn last line, so that the next letter starts a line of its own.
        if bytes.last().is_some_and(|b| *b != b'\n') {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let f = std::fs::OpenOptions::new().write(true).open(&file)?;
            f.set_len(keep as u64)?;
            f.sync_all()?;
        }
        Ok(Self {
            dead: Mutex::new(dead),
            dead_file: Some(file),
            ..Self::default()
        })
    }

    /// Whether anyone (an SSE stream, a webhook loop) listens for live events.
    pub fn has_subscribers(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// Sends a committed block's event to every live subscriber.
    pub fn publish(&self, ev: BlockEvent) {
        // No subscriber is not an error: the event is in the ledger for replay.
        let _ = self.live.send(Arc::new(ev));
    }

    /// The live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BlockEvent>> {
        self.live.subscribe()
    }

    /// Records a delivery that failed every attempt (durably, for a durable hub).
    pub fn dead_letter(&self, d: DeadLetter) {
        tracing::error!(webhook = %d.webhook, height = d.height, error = %d.last_error, "webhook delivery failed every attempt; dead-lettered");
        let mut q = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        keep_newest(&mut q, d.clone());
        if let Some(file) = &self.dead_file
            && let Err(e) = persist_dead_letter(file, &d, &q)
        {
            tracing::error!(file = %file.display(), error = %e, "could not save a dead letter; it is kept in memory only");
        }
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Adds `d`, dropping the oldest letter beyond [`MAX_DEAD_LETTERS`].
fn keep_newest(q: &mut VecDeque<DeadLetter>, d: DeadLetter) {
    if q.len() >= MAX_DEAD_LETTERS {
        q.pop_front();
    }
    q.push_back(d);
}

/// Appends `d` to `file` with fsync. When the file holds twice the kept
/// number of letters, it is rewritten with the kept ones (temp file, fsync,
/// rename).
fn persist_dead_letter(
    file: &std::path::Path,
    d: &DeadLetter,
    kept: &VecDeque<DeadLetter>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let line = serde_json::to_string(d).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()?;
    let size = f.metadata()?.len();
    drop(f);
    // A rough bound: rewrite once the file is much larger than what is kept.
    let kept_bytes: u64 = (line.len() as u64 + 1) * kept.len() as u64;
    if kept.len() >= MAX_DEAD_LETTERS && size > 2 * kept_bytes {
        let tmp = file.with_extension("tmp");
        let mut out = std::fs::File::create(&tmp)?;
        for k in kept {
            let l = serde_json::to_string(k).map_err(std::io::Error::other)?;
            out.write_all(format!("{l}\n").as_bytes())?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, file)?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}
