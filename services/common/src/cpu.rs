//! The process's one pool for CPU-bound work (ADR 0001): rayon's global
//! pool, sized to the machine's cores. The ledger-store's batch signature
//! checks, the contract-executor's parallel waves and the orderer's
//! admission checks all run on it, so a process that hosts several services
//! (`fiscus member`, `fiscus devnet`) never has two pools competing for the
//! same cores.
//!
//! Synchronous callers use rayon directly (`par_chunks`, …). Async callers
//! hand a closure to [`run`] and await its result without blocking a tokio
//! worker.

/// The pool dropped the work: the closure panicked (a fault of this node,
/// never a verdict on the input).
#[derive(Debug, thiserror::Error)]
#[error("the CPU pool dropped the work: it panicked")]
pub struct PoolError;

/// Runs `f` on the CPU pool and resolves with its result. A panic in `f` is
/// caught (rayon would otherwise abort the process) and becomes
/// [`PoolError`].
pub async fn run<R, F>(f: F) -> Result<R, PoolError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // The caller may have stopped waiting; the result is then unwanted.
        let _ = tx.send(out);
    });
    match rx.await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) | Err(_) => Err(PoolError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_calling_thread_and_returns_its_result() {
        let caller = std::thread::current().id();
        let (sum, worker) = run(|| ((1..=100u64).sum::<u64>(), std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(sum, 5050);
        assert_ne!(worker, caller);
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_an_abort() {
        let r: Result<(), _> = run(|| panic!("boom")).await;
        assert!(r.is_err());
        // The pool still works afterwards.
        assert_eq!(run(|| 7).await.unwrap(), 7);
    }
}
