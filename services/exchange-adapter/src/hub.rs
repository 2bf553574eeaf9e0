//! The event hub: live block events fanned out to subscribers (SSE, the
//! webhook loops) and the webhooks' dead-letter list, kept across restarts.
//! The JSON of a block event is defined here (`BlockEvent`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

impl WebhookConfig {
    /// The one rule for a webhook's settings (the adapter's config and the
    /// devnet's `webhooks.toml` both apply it): a name of letters, digits,
    /// '-' or '_'; an `http://` URL, or `https://` with a readable `ca_file`;
    /// a secret of at least 16 characters; at least one attempt.
    pub fn validate(&self) -> Result<(), &'static str> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err("a webhook name is 1 to 64 letters, digits, '-' or '_'");
        }
        if let Err(e) = crate::http_client::Target::parse(&self.url, self.ca_file.as_deref()) {
            tracing::error!(webhook = %self.name, error = %e, "bad webhook target");
            return Err(
                "a webhook url must be http://host:port/path, or https://host:port/path with a readable ca_file",
            );
        }
        if self.secret.len() < 16 {
            return Err("a webhook secret must be at least 16 characters");
        }
        if self.max_attempts == 0 {
            return Err("a webhook's max_attempts must be at least 1");
        }
        Ok(())
    }
}

pub fn default_attempts() -> u32 {
    6
}

pub fn default_backoff() -> u64 {
    500
}

/// Where a dead letter stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LetterState {
    /// Failed every attempt; nobody has dealt with it yet.
    #[default]
    Open,
    /// A replay reached the receiver.
    Delivered,
    /// An operator acknowledged it (dealt with it another way).
    Acknowledged,
}

/// A delivery that failed every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// This adapter's number for the letter, for replay and acknowledgement
    /// (assigned by [`Hub::dead_letter`]; unique within the adapter).
    #[serde(default)]
    pub id: u64,
    pub webhook: String,
    pub height: u64,
    /// Attempts so far, replays included.
    pub attempts: u32,
    pub last_error: String,
    /// When the last attempt failed (Unix ms, the adapter's clock).
    #[serde(default)]
    pub failed_at_ms: i64,
    #[serde(default)]
    pub state: LetterState,
    /// When it was delivered by a replay or acknowledged (Unix ms), and by
    /// which API client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    pub event: BlockEvent,
}

const MAX_DEAD_LETTERS: usize = 10_000;

/// The dead letters by id, and how many lines their file holds.
#[derive(Debug, Default)]
struct Letters {
    by_id: BTreeMap<u64, DeadLetter>,
    next_id: u64,
    file_lines: usize,
}

/// Live block events, and the dead-letter list.
#[derive(Debug)]
pub struct Hub {
    live: broadcast::Sender<Arc<BlockEvent>>,
    dead: Mutex<Letters>,
    /// Where dead letters are kept across restarts (JSON lines), if anywhere.
    dead_file: Option<PathBuf>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            live: broadcast::channel(1024).0,
            dead: Mutex::new(Letters {
                next_id: 1,
                ..Letters::default()
            }),
            dead_file: None,
        }
    }
}

impl Hub {
    /// A hub whose dead letters survive restarts. Every change to a letter
    /// (its failure, a replay, an acknowledgement) is appended to `file` as
    /// the letter's whole new version (one JSON line, fsynced) before it is
    /// answered; reading back, a later line for an id replaces an earlier
    /// one, and the newest [`MAX_DEAD_LETTERS`] are kept. A line that does
    /// not parse is skipped with a warning; a torn last line (a crash during
    /// an append) is cut off. Letters saved before ids existed get ids in
    /// file order.
    pub fn durable(file: PathBuf) -> std::io::Result<Self> {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut letters = Letters {
            next_id: 1,
            ..Letters::default()
        };
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            letters.file_lines += 1;
            match serde_json::from_str::<DeadLetter>(line) {
                Ok(mut d) => {
                    if d.id == 0 {
                        d.id = letters.next_id;
                    }
                    letters.next_id = letters.next_id.max(d.id + 1);
                    keep_newest(&mut letters.by_id, d);
                }
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
            dead: Mutex::new(letters),
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

    fn letters(&self) -> std::sync::MutexGuard<'_, Letters> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a delivery that failed every attempt (durably, for a durable
    /// hub), under a new id, which it returns.
    pub fn dead_letter(&self, mut d: DeadLetter) -> u64 {
        let mut letters = self.letters();
        d.id = letters.next_id;
        letters.next_id += 1;
        tracing::error!(webhook = %d.webhook, height = d.height, id = d.id, error = %d.last_error, "webhook delivery failed every attempt; dead-lettered");
        let id = d.id;
        self.save(&mut letters, d);
        id
    }

    /// Stores a new version of a letter: in memory, and appended to the file.
    fn save(&self, letters: &mut Letters, d: DeadLetter) {
        keep_newest(&mut letters.by_id, d.clone());
        if let Some(file) = &self.dead_file {
            match persist_dead_letter(file, &d, letters) {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "could not save a dead letter; it is kept in memory only");
                }
            }
        }
    }

    /// Every kept letter, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.letters().by_id.values().cloned().collect()
    }

    /// One letter.
    pub fn dead_letter_by_id(&self, id: u64) -> Option<DeadLetter> {
        self.letters().by_id.get(&id).cloned()
    }

    /// Applies `change` to letter `id` and stores the new version; `None`
    /// when no letter has that id. The change sees the current version, so
    /// two concurrent calls cannot both resolve an open letter.
    pub fn update_dead_letter<T>(
        &self,
        id: u64,
        change: impl FnOnce(&mut DeadLetter) -> T,
    ) -> Option<T> {
        let mut letters = self.letters();
        let mut d = letters.by_id.get(&id)?.clone();
        let out = change(&mut d);
        if letters.by_id.get(&id) != Some(&d) {
            self.save(&mut letters, d);
        }
        Some(out)
    }
}

/// Adds (or replaces) `d`, dropping the oldest letters beyond [`MAX_DEAD_LETTERS`].
fn keep_newest(q: &mut BTreeMap<u64, DeadLetter>, d: DeadLetter) {
    q.insert(d.id, d);
    while q.len() > MAX_DEAD_LETTERS {
        q.pop_first();
    }
}

/// Appends `d` to `file` with fsync. When the file holds more than twice
/// the kept number of lines (versions of letters, or dropped ones), it is
/// rewritten with the kept letters (temp file, fsync, rename).
fn persist_dead_letter(
    file: &std::path::Path,
    d: &DeadLetter,
    letters: &mut Letters,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let line = serde_json::to_string(d).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()?;
    drop(f);
    letters.file_lines += 1;
    if letters.file_lines > 2 * letters.by_id.len().max(64) {
        let tmp = file.with_extension("tmp");
        let mut out = std::fs::File::create(&tmp)?;
        for k in letters.by_id.values() {
            let l = serde_json::to_string(k).map_err(std::io::Error::other)?;
            out.write_all(format!("{l}\n").as_bytes())?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, file)?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        letters.file_lines = letters.by_id.len();
    }
    Ok(())
}
