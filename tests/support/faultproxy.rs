//! A small HTTP/1.1 proxy in front of a real API server (moto, the Nova
//! stand-in) that injects the failures the real server never produces:
//! throttling, capacity and quota errors, 5xx, dropped connections, lost
//! replies (the request reached the server, the answer never came back),
//! hangs and slow replies. Every connection carries one request; the
//! proxy answers `Connection: close` so clients never reuse a socket the
//! proxy is about to drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status, content type and body; never forwarded.
    Reply(u16, &'static str, String),
    /// Close the connection without an answer; never forwarded.
    Drop,
    /// Forward, let the server act, then close without an answer.
    LoseReply,
    /// Hold the connection this long without an answer; never forwarded.
    Hang(Duration),
    /// Forward and answer, after this delay.
    Slow(Duration),
}

impl Fault {
    /// An EC2 API error reply (the documented XML error structure).
    pub fn ec2(status: u16, code: &str) -> Fault {
        Fault::Reply(
            status,
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>injected {code}</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
            ),
        )
    }
}

struct Rule {
    /// Matches requests whose form body has `Action=<action>`, or whose
    /// method and path start with this text ("POST /v2.1/servers").
    matches: String,
    fault: Fault,
    times: u32,
}

/// Faults at random: each request not caught by a rule gets one of
/// `faults` with probability `percent`/100 (seeded, so a run repeats).
struct Chaos {
    state: u64,
    percent: u64,
    faults: Vec<(String, Fault)>,
}

impl Chaos {
    fn roll(&mut self, what: &str) -> Option<(String, Fault)> {
        let mut next = || {
            self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        if next() % 100 >= self.percent {
            return None;
        }
        // Only faults that fit this request (capacity errors are for
        // RunInstances, say): the name's prefix before ':' is the action.
        let fitting: Vec<&(String, Fault)> = self
            .faults
            .iter()
            .filter(|(name, _)| match name.split_once(':') {
                Some((action, _)) => what == action,
                None => true,
            })
            .collect();
        let pick = next() as usize % fitting.len().max(1);
        fitting.get(pick).map(|f| (*f).clone())
    }
}

#[derive(Default)]
struct Shared {
    rules: Vec<Rule>,
    chaos: Option<Chaos>,
    /// Faults injected at random, by name.
    injected: std::collections::BTreeMap<String, u32>,
    /// What each request was (its EC2 Action or "METHOD path"), in order.
    log: Vec<String>,
}

pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(conn, upstream, &s));
            }
        });
        FaultProxy { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Injects `fault` into the next `times` requests that match.
    pub fn inject(&self, matches: &str, fault: Fault, times: u32) {
        self.shared.lock().unwrap().rules.push(Rule {
            matches: matches.to_string(),
            fault,
            times,
        });
    }

    /// From now on, `percent`% of the requests no rule catches get one of
    /// `faults` (name, fault), chosen by a generator seeded with `seed`.
    /// A name `Action:label` applies only to that EC2 action.
    pub fn chaos(&self, seed: u64, percent: u64, faults: Vec<(String, Fault)>) {
        self.shared.lock().unwrap().chaos = Some(Chaos {
            state: seed,
            percent,
            faults,
        });
    }

    /// Random faults injected so far, by name.
    pub fn injected(&self) -> std::collections::BTreeMap<String, u32> {
        self.shared.lock().unwrap().injected.clone()
    }

    pub fn clear(&self) {
        let mut s = self.shared.lock().unwrap();
        s.rules.clear();
        s.chaos = None;
    }

    pub fn log(&self) -> Vec<String> {
        self.shared.lock().unwrap().log.clone()
    }

    pub fn count(&self, what: &str) -> usize {
        self.log().iter().filter(|l| l.as_str() == what).count()
    }
}

/// Reads one request: its head and a Content-Length body.
fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The request's identity for rules and the log.
fn what(head: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return a.to_string();
    }
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    format!("{method} {path}")
}

/// The request with `Connection: close`, so the server closes after it.
fn close_head(head: &str) -> String {
    let mut out: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    out.push("Connection: close");
    out.join("\r\n") + "\r\n\r\n"
}

fn forward(upstream: u16, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    up.write_all(close_head(head).as_bytes()).ok()?;
    up.write_all(body).ok()?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).ok()?;
    // The reply goes back with `Connection: close` too.
    let end = find(&resp, b"\r\n\r\n")? + 4;
    let rhead = String::from_utf8_lossy(&resp[..end]).to_string();
    let mut out = close_head(&rhead).into_bytes();
    out.extend_from_slice(&resp[end..]);
    Some(out)
}

fn serve(mut conn: TcpStream, upstream: u16, shared: &Mutex<Shared>) {
    let Some((head, body)) = read_request(&mut conn) else {
        return;
    };
    let what = what(&head, &body);
    let fault = {
        let mut s = shared.lock().unwrap();
        s.log.push(what.clone());
        let hit = s
            .rules
            .iter_mut()
            .find(|r| r.times > 0 && what.starts_with(&r.matches));
        let ruled = hit.map(|r| {
            r.times -= 1;
            r.fault.clone()
        });
        let rolled = match (&ruled, s.chaos.as_mut()) {
            (None, Some(c)) => c.roll(&what),
            _ => None,
        };
        match rolled {
            Some((name, f)) => {
                *s.injected.entry(name).or_default() += 1;
                Some(f)
            }
            None => ruled,
        }
    };
    match fault {
        None => {
            if let Some(resp) = forward(upstream, &head, &body) {
                let _ = conn.write_all(&resp);
            }
        }
        Some(Fault::Reply(status, ctype, body)) => {
            let resp = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
        Some(Fault::Drop) => {}
        Some(Fault::LoseReply) => {
            let _ = forward(upstream, &head, &body);
        }
        Some(Fault::Hang(d)) => {
            // The client's own deadline ends the call; the proxy only
            // has to stay silent longer than that.
            std::thread::sleep(d);
        }
        Some(Fault::Slow(d)) => {
            std::thread::sleep(d);
            if let Some(resp) = forward(upstream, &head, &body) {
                let _ = conn.write_all(&resp);
            }
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
}
