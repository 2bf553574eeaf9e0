//! Where actors run, and how tokio code talks to them (ADR 0001).
//!
//! - Actors live on actix Arbiters: one OS thread each, each with its own
//!   single-threaded runtime. An [`ActorRuntime`] owns the actix `System`
//!   on a thread of its own.
//! - CPU-bound work (batch signature checks) goes to the process's one CPU
//!   pool, [`crate::cpu`], not to actors.
//! - tonic servers and the async-nats client run on the tokio multi-thread
//!   runtime. They reach actors only through `Addr<A>`, which is `Send + Clone`:
//!   `addr.send(msg).await` waits for mailbox room (back-pressure), and
//!   `addr.try_send(msg)` fails at once when the mailbox is full.
//! - Every actor bounds its mailbox with `ctx.set_mailbox_capacity(..)`.

use actix::{Actor, Addr, Arbiter, ArbiterHandle, Context, System};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Why the actor runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the actor system thread")]
    Spawn(#[source] std::io::Error),
    #[error("the actor system has stopped")]
    Stopped,
}

/// An actix `System` on a dedicated thread, usable from any tokio task.
#[derive(Debug)]
pub struct ActorRuntime {
    system: System,
    thread: Option<JoinHandle<()>>,
    /// The Arbiters started by [`Self::spawn`], joined on shutdown so that no
    /// actor handles a message once [`Self::shutdown`] has returned.
    arbiters: std::sync::Mutex<Vec<Arbiter>>,
}

impl ActorRuntime {
    /// Starts the actor system on its own thread.
    pub fn start(name: &str) -> Result<Self, RuntimeError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-actors"))
            .spawn(move || {
                let sys = System::new();
                // The receiver is waiting right below; it only vanishes if start() itself panicked.
                let _ = tx.send(System::current());
                sys.run().ok();
            })
            .map_err(RuntimeError::Spawn)?;
        let system = rx.recv().map_err(|_| RuntimeError::Stopped)?;
        Ok(Self {
            system,
            thread: Some(thread),
            arbiters: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on the system's own thread, where actix APIs that need a
    /// current `System` work, and returns its result.
    fn on_system<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let (tx, rx) = mpsc::channel();
        let sent = self.system.arbiter().spawn_fn(move || {
            let _ = tx.send(f());
        });
        if !sent {
            return Err(RuntimeError::Stopped);
        }
        rx.recv().map_err(|_| RuntimeError::Stopped)
    }

    /// Starts `actor` on a new Arbiter: a thread of its own.
    pub fn spawn<A>(
        &self,
        make: impl FnOnce() -> A + Send + 'static,
    ) -> Result<Addr<A>, RuntimeError>
    where
        A: Actor<Context = Context<A>> + Send,
    {
        let arbiter: Arbiter = self.on_system(Arbiter::new)?;
        let handle: ArbiterHandle = arbiter.handle();
        self.arbiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(arbiter);
        Ok(A::start_in_arbiter(&handle, move |_| make()))
    }

    /// Stops every actor and waits for the system thread to end.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.system.stop();
        let arbiters =
            std::mem::take(&mut *self.arbiters.lock().unwrap_or_else(|e| e.into_inner()));
        for a in arbiters {
            a.stop();
            let _ = a.join();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ActorRuntime {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Handler, Message};

    struct Tally {
        total: u64,
    }

    impl Actor for Tally {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.set_mailbox_capacity(64);
        }
    }

    struct Add(u64);
    impl Message for Add {
        type Result = u64;
    }

    impl Handler<Add> for Tally {
        type Result = u64;
        fn handle(&mut self, msg: Add, _: &mut Context<Self>) -> u64 {
            self.total += msg.0;
            self.total
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokio_tasks_reach_actors_on_arbiters_through_their_addr() {
        let rt = ActorRuntime::start("test").unwrap();
        let tally = rt.spawn(|| Tally { total: 0 }).unwrap();
        let mut tasks = Vec::new();
        for i in 1..=10u64 {
            let addr = tally.clone();
            tasks.push(tokio::spawn(
                async move { addr.send(Add(i)).await.unwrap() },
            ));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Whatever the interleaving, the actor saw every message exactly once.
        assert_eq!(tally.send(Add(0)).await.unwrap(), 55);
        rt.shutdown();
    }

    #[tokio::test]
    async fn an_addr_of_a_stopped_runtime_reports_mailbox_closed() {
        let rt = ActorRuntime::start("test").unwrap();
        let tally = rt.spawn(|| Tally { total: 0 }).unwrap();
        rt.shutdown();
        let err = tally.send(Add(1)).await.unwrap_err();
        assert!(matches!(err, actix::MailboxError::Closed), "{err}");
    }
}
