//! The adapter's Prometheus metrics (served by its ops server at `/metrics`).

/// Webhook deliveries, for the `FiscusWebhookDeadLettersGrowing` alert and
/// the Member detail and API dashboards.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Webhook POSTs (each attempt, replays included), by webhook and
    /// outcome (`ok`, `error`).
    pub webhook_attempts: prometheus::IntCounterVec,
    /// Events put on the dead-letter list after their last attempt, by webhook.
    pub dead_letters: prometheus::IntCounterVec,
}

impl Metrics {
    pub fn register(r: &prometheus::Registry) -> prometheus::Result<Self> {
        let m = Self::unregistered()?;
        r.register(Box::new(m.webhook_attempts.clone()))?;
        r.register(Box::new(m.dead_letters.clone()))?;
        Ok(m)
    }

    /// The same metrics, registered nowhere (for callers that export none).
    pub fn unregistered() -> prometheus::Result<Self> {
        Ok(Self {
            webhook_attempts: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "fiscus_webhook_delivery_attempts_total",
                    "Webhook POSTs, each attempt and replay, by webhook and outcome (ok, error)",
                ),
                &["webhook", "outcome"],
            )?,
            dead_letters: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "fiscus_webhook_dead_letters_total",
                    "Webhook events dead-lettered after their last attempt, by webhook",
                ),
                &["webhook"],
            )?,
        })
    }

    /// Counts one delivery attempt of `webhook`.
    pub fn attempt(&self, webhook: &str, ok: bool) {
        self.webhook_attempts
            .with_label_values(&[webhook, if ok { "ok" } else { "error" }])
            .inc();
    }
}
