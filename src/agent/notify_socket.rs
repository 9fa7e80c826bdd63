//! systemd's notify protocol (`Type=notify`): datagrams to
//! `$NOTIFY_SOCKET`, a path or an abstract socket (`@name`).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct NotifySocket {
    target: Option<(UnixDatagram, String)>,
}

impl NotifySocket {
    pub fn from_env() -> NotifySocket {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty())
            .and_then(|p| UnixDatagram::unbound().ok().map(|s| (s, p)));
        NotifySocket { target }
    }

    /// Sends a state line; systemd not listening is not an error.
    pub fn send(&self, state: &str) {
        let Some((sock, path)) = &self.target else {
            return;
        };
        if let Some(name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
                let _ = sock.send_to_addr(state.as_bytes(), &addr);
            }
        } else {
            let _ = sock.send_to(state.as_bytes(), path);
        }
    }
}

/// Half of `$WATCHDOG_USEC`, when systemd set one for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(100)))
}
