//! Subscriptions: server-sent events and webhooks, both fed from the member's
//! ledger-store one committed block at a time.
//!
//! - **SSE** (`GET /v1/events`): one `block` event per committed block with
//!   every transaction's status; `from_height` or `Last-Event-ID` replays from
//!   the ledger first, then follows live.
//! - **Webhooks** (configured per adapter): each block's event is POSTed as
//!   JSON, signed with HMAC-SHA256 (`X-Fiscus-Signature: sha256=<hex>` over
//!   `<X-Fiscus-Timestamp>.<body>`, so that a receiver that refuses old
//!   timestamps cannot be sent a captured delivery again; see [`verify`]),
//!   retried with exponential backoff, and after `max_attempts`
//!   put on a dead-letter list (`GET /v1/webhooks/dead-letters`). Each webhook
//!   follows the chain on its own cursor, kept in `data_dir`, so a restart
//!   resumes where it stopped and a slow receiver never loses events.

use crate::backend::from_status;
use crate::clients::Scope;
use crate::context::Api;
use crate::error::err;
use crate::hub::{BlockEvent, DeadLetter, LetterState, TxEvent, WebhookConfig};
use crate::json::status_name;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::pb::ledger::GetBlockRequest;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use utoipa::IntoParams;

impl Api {
    pub(crate) async fn head(&self) -> Result<u64, ServiceError> {
        Ok(self.backend.chain_info().await?.height)
    }

    pub(crate) async fn block_event(&self, height: u64) -> Result<BlockEvent, ServiceError> {
        let r = self
            .backend
            .ledger()
            .await?
            .get_block_receipts(GetBlockRequest {
                number: height,
                hash: Vec::new(),
            })
            .await
            .map_err(|s| from_status("block receipts", &s))?
            .into_inner();
        Ok(BlockEvent {
            height,
            timestamp_ms: r.timestamp_ms,
            txs: r
                .receipts
                .iter()
                .map(|x| TxEvent {
                    tx_id: hex::encode(&x.tx_id),
                    tx_index: x.tx_index,
                    status: status_name(x.status),
                    reason: x.reason.clone(),
                })
                .collect(),
        })
    }
}

const POLL: Duration = Duration::from_millis(50);

/// Publishes each newly committed block to the live channel, from the head
/// at start-up on, while anyone subscribes to it.
pub async fn follow(api: web::Data<Api>) {
    let mut next = loop {
        match api.head().await {
            Ok(h) => break h + 1,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    loop {
        match api.head().await {
            Ok(head) => {
                while next <= head {
                    if !api.hub.has_subscribers() {
                        // Nobody listens: skip reading the receipts. A stream
                        // that subscribes later reads the head after
                        // subscribing and replays up to it, so it misses none.
                        next = head + 1;
                        break;
                    }
                    match api.block_event(next).await {
                        Ok(ev) => {
                            // No subscriber is fine.
                            api.hub.publish(ev);
                            next += 1;
                        }
                        Err(e) => {
                            tracing::warn!(height = next, error = %e, "reading a block's receipts");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "the ledger-store is not answering"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The header carrying the Unix time (seconds) a delivery was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Fiscus-Timestamp";

/// How far a receiver should let a delivery's timestamp be from its own
/// clock, by default: 5 minutes.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<sha2::Sha256> {
    // HMAC accepts a key of any length.
    let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the
/// `X-Fiscus-Signature` of a delivery whose `X-Fiscus-Timestamp` is `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Why a receiver refuses a delivery ([`verify`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("X-Fiscus-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the delivery was signed {0} s away from now: too old (a replay?) or from the future")]
    Stale(i64),
    #[error("X-Fiscus-Signature is not sha256=<64 hex digits>")]
    BadSignature,
    #[error("the signature does not match: another secret, or an altered body or timestamp")]
    Mismatch,
}

/// What a receiver does with a delivery: checks the signature over the
/// timestamp and the exact body bytes (in constant time), and refuses a
/// timestamp more than `tolerance_s` from `now_unix`.
pub fn verify(
    secret: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_s: i64,
) -> Result<(), Refused> {
    let ts: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| Refused::BadTimestamp)?;
    let expected = signature_header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 32)
        .ok_or(Refused::BadSignature)?;
    mac(secret, ts, body)
        .verify_slice(&expected)
        .map_err(|_| Refused::Mismatch)?;
    let skew = now_unix.saturating_sub(ts);
    if skew.abs() > tolerance_s {
        return Err(Refused::Stale(skew));
    }
    Ok(())
}

fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn post_once(hook: &WebhookConfig, body: &str, height: u64) -> Result<(), String> {
    let target = crate::http_client::Target::parse(&hook.url, hook.ca_file.as_deref())
        .map_err(|e| e.to_string())?;
    // Signed afresh at every attempt: a retry carries its own time.
    let ts = unix_now();
    let sig = signature(&hook.secret, ts, body.as_bytes());
    let id = height.to_string();
    let ts = ts.to_string();
    let headers = [
        ("X-Fiscus-Signature", sig.as_str()),
        (TIMESTAMP_HEADER, ts.as_str()),
        ("X-Fiscus-Event-Id", id.as_str()),
    ];
    let send = target.send("POST", Some(body), &headers);
    match tokio::time::timeout(Duration::from_secs(10), send).await {
        Err(_) => Err("no answer within 10 s".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok((status, _))) if (200..300).contains(&status) => Ok(()),
        Ok(Ok((status, _))) => Err(format!("HTTP {status}")),
    }
}

/// Delivers one event with retries; `Err` after the last attempt.
pub async fn deliver(hook: &WebhookConfig, ev: &BlockEvent) -> Result<u32, (u32, String)> {
    deliver_counted(hook, ev, None).await
}

/// [`deliver`], counting each attempt in `metrics`.
pub async fn deliver_counted(
    hook: &WebhookConfig,
    ev: &BlockEvent,
    metrics: Option<&crate::metrics::Metrics>,
) -> Result<u32, (u32, String)> {
    let body = serde_json::to_string(ev).unwrap_or_default();
    let mut backoff = Duration::from_millis(hook.initial_backoff_ms.max(1));
    let attempts = hook.max_attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        let outcome = post_once(hook, &body, ev.height).await;
        if let Some(m) = metrics {
            m.attempt(&hook.name, outcome.is_ok());
        }
        match outcome {
            Ok(()) => return Ok(attempt),
            Err(e) => {
                tracing::warn!(webhook = %hook.name, height = ev.height, attempt, error = %e, "webhook delivery failed");
                last = e;
            }
        }
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
    Err((attempts, last))
}

/// One webhook's delivery loop: block after block, from its saved cursor.
pub async fn webhook_loop(api: web::Data<Api>, hook: WebhookConfig, cursor_file: PathBuf) {
    let saved = std::fs::read_to_string(&cursor_file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut next = match saved {
        Some(h) => h.saturating_add(1),
        None => {
            let head = loop {
                match api.head().await {
                    Ok(h) => break h,
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            };
            // Saved at once, so that a restart before the first delivery
            // resumes here rather than at a later head.
            if let Err(e) = save_cursor(&cursor_file, head) {
                tracing::warn!(file = %cursor_file.display(), error = %e, "saving the webhook cursor");
            }
            head + 1
        }
    };
    tracing::info!(webhook = %hook.name, from = next, "webhook deliveries start");
    loop {
        let head = api.head().await.unwrap_or(0);
        if next > head {
            tokio::time::sleep(POLL).await;
            continue;
        }
        let ev = match api.block_event(next).await {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(height = next, error = %e, "reading a block's receipts");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Err((attempts, last_error)) = deliver_counted(&hook, &ev, Some(&api.metrics)).await {
            api.metrics
                .dead_letters
                .with_label_values(&[hook.name.as_str()])
                .inc();
            api.hub.dead_letter(DeadLetter {
                id: 0,
                webhook: hook.name.clone(),
                height: ev.height,
                attempts,
                last_error,
                failed_at_ms: unix_now_ms(),
                state: LetterState::Open,
                resolved_at_ms: None,
                resolved_by: None,
                event: ev,
            });
        }
        if let Err(e) = save_cursor(&cursor_file, next) {
            tracing::warn!(file = %cursor_file.display(), error = %e, "saving the webhook cursor");
        }
        next += 1;
    }
}

/// Writes the last handled height durably (temp file, fsync, rename).
fn save_cursor(path: &std::path::Path, height: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(height.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Replay from this height (default: only new blocks). `Last-Event-ID` (a
    /// height) resumes after that block.
    pub from_height: Option<u64>,
    /// End the stream after this many blocks (default: never).
    pub max_blocks: Option<u64>,
}

/// Where one server-sent-events stream is.
struct Sse {
    api: web::Data<Api>,
    live: broadcast::Receiver<Arc<BlockEvent>>,
    next: u64,
    sent: u64,
    done: bool,
    /// The head last read from the ledger; replay runs up to it.
    replay_to: u64,
    /// Replay is over: blocks come from the live channel.
    caught_up: bool,
}

fn sse(ev: &BlockEvent) -> actix_web::web::Bytes {
    let data = serde_json::to_string(ev).unwrap_or_default();
    actix_web::web::Bytes::from(format!("id: {}\nevent: block\ndata: {data}\n\n", ev.height))
}

/// Server-sent events: every committed block with its transactions' status.
#[utoipa::path(tag = "subscribe", params(EventsQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this height")),
    responses((status = 200, description = "text/event-stream of `block` events, each a BlockEvent", body = BlockEvent, content_type = "text/event-stream")),
    security(("api_key" = [])))]
#[get("/v1/events")]
async fn events(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let last_id = match req.headers().get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    err(
                        ErrorKind::InvalidArgument,
                        codes::api::BAD_QUERY,
                        "Last-Event-ID must be a block height (a whole number)",
                    )
                })?,
        ),
    };
    let head = api.head().await?;
    let from = match last_id {
        Some(h) => h.checked_add(1).ok_or_else(|| {
            err(
                ErrorKind::InvalidArgument,
                codes::api::BAD_QUERY,
                "Last-Event-ID is not a height",
            )
        })?,
        None => q.from_height.unwrap_or(head + 1),
    }
    // Block 0 is the genesis configuration, which has no receipts: a replay
    // "from the beginning" starts at the first block of transactions.
    .max(1);
    let max = q.max_blocks.unwrap_or(u64::MAX);
    if max == 0 {
        return Err(err(
            ErrorKind::InvalidArgument,
            codes::api::BAD_QUERY,
            "max_blocks must be positive",
        ));
    }
    let live = api.hub.subscribe();
    let state = Sse {
        api: api.clone(),
        live,
        next: from,
        sent: 0,
        done: false,
        replay_to: head,
        caught_up: false,
    };
    let stream = futures::stream::unfold(state, move |mut st| async move {
        if st.done || st.sent >= max {
            return None;
        }
        // Replay from the ledger while behind its head (asking for the head once
        // per stretch replayed, not per block), then follow live.
        if !st.caught_up && st.next > st.replay_to {
            st.replay_to = st.api.head().await.unwrap_or(0);
            st.caught_up = st.next > st.replay_to;
        }
        if !st.caught_up {
            return Some(match st.api.block_event(st.next).await {
                Ok(ev) => {
                    st.next += 1;
                    st.sent += 1;
                    (Ok::<_, actix_web::Error>(sse(&ev)), st)
                }
                Err(e) => {
                    st.done = true;
                    let msg = format!("event: error\ndata: {}\n\n", e.message);
                    (Ok(actix_web::web::Bytes::from(msg)), st)
                }
            });
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(15), st.live.recv()).await {
                Err(_) => {
                    return Some((
                        Ok(actix_web::web::Bytes::from_static(b": keep-alive\n\n")),
                        st,
                    ));
                }
                Ok(Ok(ev)) if ev.height < st.next => continue,
                Ok(Ok(ev)) if ev.height == st.next => {
                    st.next += 1;
                    st.sent += 1;
                    return Some((Ok(sse(&ev)), st));
                }
                // A gap (lagged, or a block published before we subscribed): read it.
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    let ev = st.api.block_event(st.next).await.ok()?;
                    st.next += 1;
                    st.sent += 1;
                    return Some((Ok(sse(&ev)), st));
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(stream))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersQuery {
    /// `open` (default): not yet delivered or acknowledged; `all`: every
    /// kept letter, resolved ones too.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub state: StateFilter,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    #[default]
    Open,
    All,
}

/// Webhook deliveries that failed every attempt, oldest first (the newest
/// 10,000 are kept, across restarts). Admin scope.
#[utoipa::path(tag = "subscribe", params(DeadLettersQuery),
    responses((status = 200, body = Vec<DeadLetter>)), security(("api_key" = [])))]
#[get("/v1/webhooks/dead-letters")]
async fn dead_letters(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<DeadLettersQuery>,
) -> Result<web::Json<Vec<DeadLetter>>, ServiceError> {
    api.caller(&req, Scope::Admin)?;
    let mut letters = api.hub.dead_letters();
    if q.state == StateFilter::Open {
        letters.retain(|d| d.state == LetterState::Open);
    }
    Ok(web::Json(letters))
}

fn already_resolved(id: u64, state: LetterState) -> ServiceError {
    let state = match state {
        LetterState::Open => "open",
        LetterState::Delivered => "delivered",
        LetterState::Acknowledged => "acknowledged",
    };
    err(
        ErrorKind::Conflict,
        codes::webhook::ALREADY_RESOLVED,
        format!("dead letter {id} is already {state}; nothing changed"),
    )
}

fn unknown_letter(id: u64) -> ServiceError {
    err(
        ErrorKind::NotFound,
        codes::webhook::UNKNOWN_DEAD_LETTER,
        format!("no dead letter has id {id}"),
    )
}

/// Delivers an open dead letter's event to its webhook again, once (signed
/// with the current time). Delivered: the letter is `delivered` and
/// returned. Not delivered: 503 `webhook.delivery_failed`; the letter stays
/// open with the attempt, its error and time recorded. A delivered or
/// acknowledged letter: 409 `webhook.already_resolved` (a receiver that lost
/// a block reads it again with `GET /v1/events?from_height=`). Admin scope.
#[utoipa::path(tag = "subscribe",
    params(("id" = u64, Path, description = "The dead letter's id")),
    responses((status = 200, body = DeadLetter),
        (status = 404, description = "No such letter (`webhook.unknown_dead_letter`)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already delivered or acknowledged (`webhook.already_resolved`), or its webhook is no longer configured (`webhook.unknown_webhook`)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The receiver did not accept it (`webhook.delivery_failed`)", body = crate::error::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[post("/v1/webhooks/dead-letters/{id}/replay")]
async fn replay_dead_letter(
    api: web::Data<Api>,
    req: HttpRequest,
    id: web::Path<u64>,
) -> Result<web::Json<DeadLetter>, ServiceError> {
    let client = api.caller(&req, Scope::Admin)?;
    let id = id.into_inner();
    let letter = api
        .hub
        .dead_letter_by_id(id)
        .ok_or_else(|| unknown_letter(id))?;
    if letter.state != LetterState::Open {
        return Err(already_resolved(id, letter.state));
    }
    let hook = api
        .webhooks
        .iter()
        .find(|h| h.name == letter.webhook)
        .ok_or_else(|| {
            err(
                ErrorKind::Conflict,
                codes::webhook::UNKNOWN_WEBHOOK,
                format!(
                    "webhook {:?} is no longer configured on this adapter; acknowledge the letter instead",
                    letter.webhook
                ),
            )
        })?;
    let body = serde_json::to_string(&letter.event).unwrap_or_default();
    let outcome = post_once(hook, &body, letter.height).await;
    api.metrics.attempt(&hook.name, outcome.is_ok());
    let now = unix_now_ms();
    let updated = api
        .hub
        .update_dead_letter(id, |d| {
            if d.state != LetterState::Open {
                // Resolved meanwhile by another call: keep what it recorded.
                return d.clone();
            }
            d.attempts = d.attempts.saturating_add(1);
            match &outcome {
                Ok(()) => {
                    d.state = LetterState::Delivered;
                    d.resolved_at_ms = Some(now);
                    d.resolved_by = Some(client.name.clone());
                }
                Err(e) => {
                    d.last_error.clone_from(e);
                    d.failed_at_ms = now;
                }
            }
            d.clone()
        })
        .ok_or_else(|| unknown_letter(id))?;
    match outcome {
        Ok(()) => {
            tracing::info!(webhook = %hook.name, id, height = letter.height, client = %client.name, "dead letter replayed and delivered");
            Ok(web::Json(updated))
        }
        Err(e) => Err(err(
            ErrorKind::Unavailable,
            codes::webhook::DELIVERY_FAILED,
            format!(
                "webhook {:?} did not accept the replay of dead letter {id}: {e}",
                hook.name
            ),
        )),
    }
}

/// Marks an open dead letter as dealt with (e.g. the receiver read the
/// block from `GET /v1/events?from_height=`); it leaves the default list.
/// 409 `webhook.already_resolved` if it was delivered or acknowledged
/// already. Admin scope.
#[utoipa::path(tag = "subscribe",
    params(("id" = u64, Path, description = "The dead letter's id")),
    responses((status = 200, body = DeadLetter),
        (status = 404, description = "No such letter (`webhook.unknown_dead_letter`)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already delivered or acknowledged (`webhook.already_resolved`)", body = crate::error::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[post("/v1/webhooks/dead-letters/{id}/ack")]
async fn ack_dead_letter(
    api: web::Data<Api>,
    req: HttpRequest,
    id: web::Path<u64>,
) -> Result<web::Json<DeadLetter>, ServiceError> {
    let client = api.caller(&req, Scope::Admin)?;
    let id = id.into_inner();
    let now = unix_now_ms();
    api.hub
        .update_dead_letter(id, |d| {
            if d.state != LetterState::Open {
                return Err(already_resolved(id, d.state));
            }
            d.state = LetterState::Acknowledged;
            d.resolved_at_ms = Some(now);
            d.resolved_by = Some(client.name.clone());
            Ok(d.clone())
        })
        .ok_or_else(|| unknown_letter(id))?
        .map(|d| {
            tracing::info!(webhook = %d.webhook, id, client = %client.name, "dead letter acknowledged");
            web::Json(d)
        })
}

pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(events)
        .service(dead_letters)
        .service(replay_dead_letter)
        .service(ack_dead_letter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() {
        // Computed independently, with Python's standard library:
        // hmac.new(b"Jefe", b"1767196800.{}", "sha256").hexdigest()
        assert_eq!(
            signature("Jefe", 1_767_196_800, b"{}"),
            "sha256=9ea11ab6ab8833b4b06814c16d6f8c8c2d43fbc514008ac7194bf15b0a6a11b7"
        );
    }

    #[test]
    fn a_receiver_refuses_an_altered_or_old_delivery() {
        let (secret, body, ts) = ("s3cret", br#"{"height":7}"#.as_slice(), 1_767_196_800);
        let sig = signature(secret, ts, body);
        let ok = |t: &str, s: &str, b: &[u8], now| verify(secret, t, s, b, now, 300);
        assert_eq!(ok("1767196800", &sig, body, ts + 10), Ok(()));
        // A captured delivery replayed an hour later.
        assert_eq!(
            ok("1767196800", &sig, body, ts + 3600),
            Err(Refused::Stale(3600))
        );
        // ... with its timestamp moved forward to look fresh.
        assert_eq!(
            ok("1767200400", &sig, body, ts + 3600),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            ok("1767196800", &sig, br#"{"height":8}"#, ts),
            Err(Refused::Mismatch)
        );
        assert_eq!(ok("yesterday", &sig, body, ts), Err(Refused::BadTimestamp));
        assert_eq!(
            ok("1767196800", "md5=00", body, ts),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify("another", "1767196800", &sig, body, ts, 300),
            Err(Refused::Mismatch)
        );
    }
}
