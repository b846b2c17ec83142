//! What `start --wait-for` waits for, and how each condition is watched.
//!
//! A port forwarded by QEMU's user network (slirp) needs care: slirp
//! listens on the host port as soon as QEMU runs and accepts every
//! connection at once, whether or not anything in the guest listens. Only
//! then does it try the guest: a guest that refuses makes it close the host
//! side (EOF); a guest that does not answer yet (still booting) leaves the
//! host side open, silent, until the guest answers one of slirp's resent
//! SYNs (measured figures in docs/lifecycle.md). So an open, silent
//! connection means nothing by itself; maqet asks QEMU (`info usernet`)
//! whether the guest took the connection.

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::Env;
use crate::config::{Network, Protocol, VmConfig};
use crate::error::{Error, Result};
use crate::qmp::Qmp;

/// What `start` waits for before it returns, as given on the command line.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// QMP answers `qmp_capabilities` and `query-status`.
    Qmp,
    /// The guest printed a line matching the pattern on its serial console.
    Console(regex_lite::Regex),
    /// A host TCP port: through a forward, the guest answers on it; else
    /// 127.0.0.1 accepts connections on it.
    Port(u16),
    /// An SSH banner through the forward of guest port 22.
    Ssh,
    /// A file exists.
    File(Utf8PathBuf),
}

impl FromStr for WaitFor {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "qmp" if arg.is_empty() => Ok(WaitFor::Qmp),
            "ssh" if arg.is_empty() => Ok(WaitFor::Ssh),
            "console" if !arg.is_empty() => regex_lite::Regex::new(arg)
                .map(WaitFor::Console)
                .map_err(|e| format!("`{arg}` is not a valid pattern: {e}")),
            "port" => arg
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(WaitFor::Port)
                .ok_or_else(|| format!("`{arg}` is not a port: give 1 to 65535")),
            "file" if !arg.is_empty() => Ok(WaitFor::File(arg.into())),
            _ => Err(format!(
                "`{s}` is not a condition: use qmp, console:REGEX, port:N, ssh or file:PATH"
            )),
        }
    }
}

/// A `WaitFor` made concrete for one VM: ports resolved against its
/// forwards, paths checked.
#[derive(Debug, Clone)]
pub enum Condition {
    Qmp,
    Console(regex_lite::Regex),
    /// A port that is none of the VM's forwards: a connection is accepted.
    Accepts(SocketAddr),
    /// A forwarded port: the guest answers behind it.
    Answers(Forwarded),
    File(Utf8PathBuf),
}

/// A TCP forward of the VM, and what counts as its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Where maqet connects: the forward's bind address (127.0.0.1 for a
    /// forward bound to every address) and host port.
    pub addr: SocketAddr,
    pub guest: u16,
    /// Ready only on an `SSH-` line, not on any answer.
    pub ssh: bool,
}

impl Condition {
    /// Resolve `wait_for` for a VM with `config`. `--wait-for ssh` on a VM
    /// that forwards no port to the guest's 22 is a usage error, found
    /// before anything starts.
    pub fn of(env: &Env, wait_for: &WaitFor, config: &VmConfig) -> Result<Condition> {
        match wait_for {
            WaitFor::File(path) => Ok(Condition::File(
                env.policy
                    .check(path.as_os_str(), &env.cwd)
                    .map_err(Error::path)?,
            )),
            _ => Condition::resolve(wait_for, config),
        }
    }

    /// `of`, for every condition but `file:`, whose path needs the path
    /// filter.
    fn resolve(wait_for: &WaitFor, config: &VmConfig) -> Result<Condition> {
        Ok(match wait_for {
            WaitFor::Qmp => Condition::Qmp,
            WaitFor::Console(re) => Condition::Console(re.clone()),
            WaitFor::Port(port) => match tcp_forwards(config).find(|f| f.0.port() == *port) {
                Some((addr, guest)) => Condition::Answers(Forwarded {
                    addr,
                    guest,
                    ssh: false,
                }),
                None => Condition::Accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, *port))),
            },
            WaitFor::Ssh => match tcp_forwards(config).find(|f| f.1 == 22) {
                Some((addr, guest)) => Condition::Answers(Forwarded {
                    addr,
                    guest,
                    ssh: true,
                }),
                None => {
                    return Err(Error::usage(
                        "`--wait-for ssh` needs a forward to the guest's port 22, and this VM has none",
                        "add one to the VM's user network, e.g. `forwards: [(host: 2222, guest: 22)]`, or wait with `port:N` or `console:REGEX`",
                    ));
                }
            },
            WaitFor::File(path) => Condition::File(path.clone()),
        })
    }

    /// What is awaited, after "waiting for".
    pub fn describe(&self) -> String {
        match self {
            Condition::Qmp => "QMP".into(),
            Condition::Console(re) => format!("a console line matching /{}/", re.as_str()),
            Condition::Accepts(addr) => format!("{addr} to accept connections"),
            Condition::Answers(f) if f.ssh => format!(
                "an SSH banner from guest port {} (forwarded from {})",
                f.guest, f.addr
            ),
            Condition::Answers(f) => format!(
                "the guest to answer on port {} (forwarded from {})",
                f.guest, f.addr
            ),
            Condition::File(path) => format!("{path} to exist"),
        }
    }
}

/// The VM's TCP forwards: where to connect, and the guest port.
fn tcp_forwards(config: &VmConfig) -> impl Iterator<Item = (SocketAddr, u16)> + '_ {
    config
        .network
        .iter()
        .flat_map(|net| match net {
            Network::User(user) => user.forwards.iter(),
        })
        .filter(|f| f.protocol == Protocol::Tcp)
        .map(|f| {
            let ip = if f.bind.is_unspecified() {
                Ipv4Addr::LOCALHOST
            } else {
                f.bind
            };
            (SocketAddr::from((ip, f.host.0)), f.guest.0)
        })
}

/// Watches one condition while QEMU runs, remembering what it last saw.
pub struct Watch<'a> {
    condition: &'a Condition,
    qmp_socket: &'a Utf8Path,
    console: ConsoleTail,
    probe: Probe,
}

impl<'a> Watch<'a> {
    /// Start watching; only what the console prints from now on counts.
    pub fn new(condition: &'a Condition, console_log: &Utf8Path, qmp_socket: &'a Utf8Path) -> Self {
        Watch {
            condition,
            qmp_socket,
            console: ConsoleTail::new(console_log.to_owned()),
            probe: Probe::new(),
        }
    }

    /// One look: is the condition met? Takes a fraction of a second (a
    /// connect, a short read, at most one QMP round trip).
    pub fn met(&mut self) -> bool {
        let before = self.probe.seen.clone();
        let met = match self.condition {
            Condition::Qmp => true,
            Condition::Console(re) => self.console.poll_match(re),
            Condition::Accepts(addr) => match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
                Ok(_) => true,
                Err(e) => {
                    self.probe.seen = Some(connect_failed(*addr, &e));
                    false
                }
            },
            Condition::Answers(fwd) => {
                let qmp_socket = self.qmp_socket;
                self.probe
                    .poll(fwd, &mut || guest_accepted(qmp_socket, fwd))
            }
            Condition::File(path) => path.exists(),
        };
        if let Some(seen) = &self.probe.seen
            && self.probe.seen != before
        {
            crate::log::debug(format_args!("waiting: {seen}"));
        }
        met
    }

    /// What the watch last saw, for the timeout message.
    pub fn last_seen(&self) -> Option<String> {
        match self.condition {
            Condition::Accepts(_) | Condition::Answers(_) => self.probe.seen.clone(),
            _ => self.console.last.clone(),
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// How long one look waits for data on a connection.
const STEP: Duration = Duration::from_millis(50);
/// Silence on a fresh connection for this long before QEMU is asked: a
/// guest that refuses closes it within a few ms (measured 0–13 ms).
const ASK_AFTER: Duration = Duration::from_millis(100);
const ASK_EVERY: Duration = Duration::from_millis(250);
/// A connection the guest has not taken after this long is replaced: slirp
/// resends its SYN only seconds apart (a guest up at ~3.5 s refused the
/// first connection only 6 s after it was made), so a fresh connection
/// reaches a guest that just came up sooner.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Pause after the guest closed a connection before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// An SSH server may send other lines before its banner, each at most 255
/// bytes (RFC 4253 §4.2); beyond this, give up on the connection.
const MAX_PRELUDE: usize = 8 * 1024;
const MAX_LINE: usize = 255;

/// Follows a forwarded port through one connection at a time.
struct Probe {
    conn: Option<Conn>,
    retry_at: Instant,
    seen: Option<String>,
}

struct Conn {
    stream: TcpStream,
    opened: Instant,
    asked: Option<Instant>,
    /// QEMU said the guest took the connection.
    accepted: bool,
    /// An unfinished line.
    pending: Vec<u8>,
    received: usize,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            conn: None,
            retry_at: Instant::now(),
            seen: None,
        }
    }

    /// One look at `fwd`. `ask` tells whether QEMU holds a connection
    /// through it that the guest accepted.
    fn poll(
        &mut self,
        fwd: &Forwarded,
        ask: &mut dyn FnMut() -> std::result::Result<bool, String>,
    ) -> bool {
        let now = Instant::now();
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None if now < self.retry_at => return false,
            None => match connect(fwd.addr) {
                Ok(stream) => self.conn.insert(Conn {
                    stream,
                    opened: now,
                    asked: None,
                    accepted: false,
                    pending: Vec::new(),
                    received: 0,
                }),
                Err(e) => {
                    self.seen = Some(connect_failed(fwd.addr, &e));
                    self.retry_at = now + RETRY_PAUSE;
                    return false;
                }
            },
        };
        let mut buf = [0u8; 512];
        match conn.stream.read(&mut buf) {
            Ok(0) => self.closed(fwd),
            Ok(_) if !fwd.ssh => true,
            Ok(n) => {
                // Data came from the guest: no need to ask QEMU about it.
                conn.accepted = true;
                conn.received += n;
                conn.pending.extend_from_slice(&buf[..n]);
                if banner_lines(&mut conn.pending, &mut self.seen, fwd.guest) {
                    return true;
                }
                if conn.received > MAX_PRELUDE {
                    self.conn = None;
                    self.retry_at = now + RETRY_PAUSE;
                }
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if conn.accepted
                    || conn.opened.elapsed() < ASK_AFTER
                    || conn.asked.is_some_and(|t| t.elapsed() < ASK_EVERY)
                {
                    return false;
                }
                conn.asked = Some(Instant::now());
                match ask() {
                    Ok(true) if !fwd.ssh => return true,
                    Ok(true) => {
                        conn.accepted = true;
                        self.seen = Some("connected, no SSH banner yet".into());
                    }
                    Ok(false) => {
                        self.seen = Some(format!(
                            "no answer from the guest yet: QEMU is still trying to reach guest port {}",
                            fwd.guest
                        ));
                        if conn.opened.elapsed() >= RECONNECT_AFTER {
                            self.conn = None;
                        }
                    }
                    Err(e) => {
                        self.seen = Some(format!(
                            "connected, but QEMU did not say whether the guest accepted: {e}"
                        ));
                    }
                }
                false
            }
            Err(e) if is_reset(&e) => self.closed(fwd),
            Err(e) => {
                self.seen = Some(format!("reading from {}: {e}", fwd.addr));
                self.conn = None;
                self.retry_at = now + RETRY_PAUSE;
                false
            }
        }
    }

    /// The connection ended. Before the guest took it, that is slirp
    /// passing on the guest's refusal.
    fn closed(&mut self, fwd: &Forwarded) -> bool {
        let (accepted, received) = self
            .conn
            .as_ref()
            .map_or((false, 0), |c| (c.accepted, c.received));
        if received == 0 {
            self.seen = Some(if accepted {
                format!(
                    "guest port {} accepted the connection, then closed it without an SSH banner",
                    fwd.guest
                )
            } else {
                format!(
                    "the guest side closed the connection: nothing listens on guest port {}",
                    fwd.guest
                )
            });
        }
        self.conn = None;
        self.retry_at = Instant::now() + RETRY_PAUSE;
        false
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(STEP))?;
    Ok(stream)
}

fn connect_failed(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => format!("nothing accepts connections on {addr}"),
        _ => format!("connecting to {addr}: {e}"),
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Take the complete lines out of `pending` (and one over 255 bytes, which
/// no SSH line may be): true if one is the SSH banner; others are noted in
/// `seen`.
fn banner_lines(pending: &mut Vec<u8>, seen: &mut Option<String>, guest: u16) -> bool {
    loop {
        let end = match pending.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if pending.len() > MAX_LINE => pending.len(),
            None => return false,
        };
        let raw: Vec<u8> = pending.drain(..end).collect();
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.starts_with("SSH-") {
            return true;
        }
        let shown: String = line.chars().take(80).collect();
        *seen = Some(format!(
            "guest port {guest} sent `{}`, not an SSH banner",
            shown.escape_debug()
        ));
    }
}

/// Whether QEMU's user network holds a connection through `fwd` that the
/// guest accepted, from `info usernet` over QMP.
fn guest_accepted(qmp_socket: &Utf8Path, fwd: &Forwarded) -> std::result::Result<bool, String> {
    let mut qmp =
        Qmp::connect_pipelined(qmp_socket, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    let out = qmp
        .execute(
            "human-monitor-command",
            Some(serde_json::json!({"command-line": "info usernet"})),
        )
        .map_err(|e| e.to_string())?;
    let text = out
        .as_str()
        .ok_or_else(|| format!("`info usernet` answered {out}"))?;
    Ok(established(text, fwd.addr, fwd.guest))
}

/// True if `info usernet` lists a TCP connection from `addr` (the host
/// side of the forward) to guest port `guest` as ESTABLISHED: the guest
/// answered slirp's SYN. Lines look like
/// `  TCP[ESTABLISHED]   19       127.0.0.1 23480       10.0.2.15    80     0     0`
/// (state, QEMU's fd, source address and port, destination address and port,
/// queues).
fn established(usernet: &str, addr: SocketAddr, guest: u16) -> bool {
    usernet.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        matches!(
            words.as_slice(),
            ["TCP[ESTABLISHED]", _, src, sport, _, dport, ..]
                if src.parse::<IpAddr>().is_ok_and(|ip| ip == addr.ip())
                    && sport.parse::<u16>().is_ok_and(|p| p == addr.port())
                    && dport.parse::<u16>().is_ok_and(|p| p == guest)
        )
    })
}

/// Follows console.log as QEMU appends to it.
struct ConsoleTail {
    path: Utf8PathBuf,
    offset: u64,
    pending: String,
    last: Option<String>,
}

impl ConsoleTail {
    fn new(path: Utf8PathBuf) -> ConsoleTail {
        // Only what this run prints counts: console.log keeps earlier runs.
        let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
        ConsoleTail {
            path,
            offset,
            pending: String::new(),
            last: None,
        }
    }

    /// Read what was added and test each line (and the unfinished last
    /// one, for prompts) against `re`.
    fn poll_match(&mut self, re: &regex_lite::Regex) -> bool {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return false;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return false;
        }
        self.offset += bytes.len() as u64;
        self.pending.push_str(&String::from_utf8_lossy(&bytes));
        let mut matched = false;
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\r', '\n']);
            if !line.trim().is_empty() {
                self.last = Some(line.to_owned());
            }
            matched |= re.is_match(line);
        }
        matched || (!self.pending.is_empty() && re.is_match(&self.pending))
    }
}

#[cfg(test)]
mod tests;
