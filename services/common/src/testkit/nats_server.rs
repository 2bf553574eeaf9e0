//! Starts a real `nats-server` (the Debian package) for tests.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to come up on a busy machine.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// A running `nats-server` with JetStream, on a free loopback port, with its
/// own storage directory. Killed and cleaned up on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Finds the binary: see [`crate::bus::nats::server_binary`].
pub fn nats_server_binary() -> Option<PathBuf> {
    crate::bus::nats::server_binary()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl NatsServer {
    /// Starts a server and waits until it accepts clients.
    pub fn start() -> Result<Self, String> {
        let bin = nats_server_binary().ok_or(
            "nats-server not found: run `make deps` (or `apt-get install nats-server`), \
             or point NATS_SERVER_BIN at the binary",
        )?;
        // Another process can grab the port between probing and binding; try a few.
        let mut last_err = String::new();
        for _ in 0..5 {
            match Self::try_start(&bin) {
                Ok(s) => return Ok(s),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn try_start(bin: &PathBuf) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let child = Self::spawn(bin, port, &dir)?;
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    /// Stops the server (SIGKILL: an outage, not a shutdown); its stored
    /// streams stay for [`NatsServer::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Empties the server's storage (call it stopped): it comes back as a
    /// new server that has lost every stream and message.
    pub fn wipe_storage(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self._dir.path())? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same storage.
    pub fn restart(&mut self) -> Result<(), String> {
        let bin = nats_server_binary().ok_or("nats-server not found")?;
        // The port was ours a moment ago; retry while the kernel releases it.
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            match Self::spawn(&bin, self.port, &self._dir) {
                Ok(child) => {
                    self.child = child;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs a server on `port` storing under `dir`, once it accepts clients.
    fn spawn(bin: &PathBuf, port: u16, dir: &tempfile::TempDir) -> Result<Child, String> {
        let mut child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let mut log = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut log);
                }
                return Err(format!("nats-server exited with {status}: {log}"));
            }
            if Self::accepts_clients(port) {
                // Drain the log so that a chatty server never blocks on a full pipe.
                if let Some(err) = child.stderr.take() {
                    std::thread::spawn(move || for _ in BufReader::new(err).lines() {});
                }
                return Ok(child);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "nats-server did not accept clients on port {port} within {STARTUP_DEADLINE:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client connects and the server greets it with INFO.
    fn accepts_clients(port: u16) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
