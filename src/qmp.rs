//! maqet's own small synchronous QMP client (DESIGN.md §7): one `UnixStream`,
//! one request in flight, replies matched by id, events kept aside.
//!
//! QEMU speaks one JSON object per line (each ending in `\r\n`, because the
//! monitor turns every `\n` into `\r\n`). Nothing a peer sends is trusted: a
//! line is read with a size cap, must be a JSON object of a known shape, and
//! every wait has a deadline.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, ErrorKind};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, sockopt};
use serde_json::{Map, Value};

/// At most this many events wait in the queue; beyond it the oldest are
/// dropped, so a guest that floods events cannot grow our memory without bound.
const MAX_QUEUED_EVENTS: usize = 1024;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket, its directory or the process behind it is not the user's.
    #[error("refusing QMP socket {path}: {reason}")]
    NotOurs { path: Utf8PathBuf, reason: String },

    #[error("cannot connect to QMP socket {path}: {source}")]
    Connect {
        path: Utf8PathBuf,
        #[source]
        source: io::Error,
    },

    /// `what` reads after "waiting for": "the greeting", "the reply to quit".
    #[error("timed out waiting for {what}")]
    Timeout { what: String },

    #[error("QMP connection closed during {during} (did QEMU exit?)")]
    Closed { during: String },

    #[error("a QMP message is larger than {limit} bytes")]
    TooLarge { limit: usize },

    #[error("QMP protocol error: {0}")]
    Protocol(String),

    /// QEMU ran the command and answered `{"error": {"class", "desc"}}`.
    #[error("{class}: {desc}")]
    Command { class: String, desc: String },

    #[error("QMP I/O error: {0}")]
    Io(#[source] io::Error),
}

/// A connected, negotiated QMP session.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    /// The start of a line whose newline has not arrived yet; it survives a
    /// timeout so the next call continues where this one stopped.
    partial: Vec<u8>,
    /// Set after a line overran the cap: its remaining bytes are dropped up
    /// to the next newline instead of being read as a line of their own.
    discarding: bool,
    /// Set when a request was only partly written: QEMU would read its tail
    /// glued to the next request, so no further request may be sent.
    broken: Option<String>,
    events: VecDeque<Value>,
    dropped_events: bool,
    next_id: u64,
    timeout: Duration,
    max_reply: usize,
    version: (u64, u64, u64),
    /// False until the greeting has been read.
    greeted: bool,
    /// The id of the `qmp_capabilities` request whose reply is still unread.
    negotiating: Option<u64>,
}

/// One line from QEMU, sorted by shape.
enum Message {
    Greeting(Map<String, Value>),
    Event(Value),
    Reply {
        id: Option<Value>,
        outcome: Result<Value, QmpError>,
    },
}

impl Qmp {
    pub const DEFAULT_MAX_REPLY: usize = 1 << 20;

    /// Connect to the QMP socket at `path` and negotiate capabilities, all
    /// within `timeout`; later commands each get `timeout` too.
    ///
    /// The socket must be ours and sit in a directory only we can write, so
    /// nobody can swap it between the check and the connect; `SO_PEERCRED`
    /// then confirms the listener belongs to us as well.
    pub fn connect(path: &Utf8Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let deadline = Instant::now() + timeout;
        let mut qmp = Qmp::connect_pipelined(path, timeout)?;
        qmp.finish_handshake(deadline)?;
        Ok(qmp)
    }

    /// Connect and send `qmp_capabilities` without waiting for QEMU: the
    /// greeting and the negotiation's reply are read with the reply to the
    /// first command, so a one-command session costs one round trip, not
    /// three. An `Ok` says only that the socket passed maqet's checks and
    /// connected; whether QEMU answers shows in the first `execute`.
    pub fn connect_pipelined(path: &Utf8Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let deadline = Instant::now() + timeout;
        let stream = connect_private(path, deadline)?;
        let mut qmp = Qmp {
            reader: BufReader::with_capacity(READ_CHUNK, stream),
            partial: Vec::new(),
            discarding: false,
            broken: None,
            events: VecDeque::new(),
            dropped_events: false,
            next_id: 1,
            timeout,
            max_reply: Self::DEFAULT_MAX_REPLY,
            version: (0, 0, 0),
            greeted: false,
            negotiating: None,
        };
        // Without `arguments`, no optional capability (such as out-of-band
        // execution) is enabled, so replies stay strictly in order. QEMU
        // reads what waits in the socket once it has sent its greeting, and
        // runs the requests one after the other.
        let id = qmp.send_request("qmp_capabilities", None, deadline, &[])?;
        qmp.negotiating = Some(id);
        Ok(qmp)
    }

    /// Read the greeting and the reply to `qmp_capabilities`, if not yet
    /// read. Events that come with them are queued.
    fn finish_handshake(&mut self, deadline: Instant) -> Result<(), QmpError> {
        if !self.greeted {
            // QEMU serves one QMP client at a time; a second one is accepted
            // into the listen backlog and then hears nothing until the first
            // leaves. That silence is why the greeting wait needs its deadline.
            let line = self.read_line(deadline, "the greeting")?;
            let Message::Greeting(greeting) = parse_message(&line)? else {
                return Err(QmpError::Protocol(format!(
                    "expected the QMP greeting, got {}",
                    excerpt(&line)
                )));
            };
            self.version = greeting_version(&greeting)?;
            self.greeted = true;
        }
        if let Some(id) = self.negotiating {
            self.await_reply(id, "qmp_capabilities", deadline)?;
            self.negotiating = None;
        }
        Ok(())
    }

    /// The QEMU version from the greeting: (major, minor, micro).
    pub fn version(&self) -> (u64, u64, u64) {
        self.version
    }

    /// Run `command` and return its `return` value.
    ///
    /// Events that arrive first are queued for [`Qmp::next_event`]. A reply
    /// with an id we are not waiting for is skipped with a debug note: it is
    /// the late answer to an earlier command that timed out, and treating it
    /// as an error would make every command after a timeout fail too.
    pub fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        let deadline = Instant::now() + self.timeout;
        self.execute_until(command, args, deadline, &[])
    }

    /// Run `command` with `fds` passed along with it (`SCM_RIGHTS` on the
    /// request's first bytes), as `add-fd` takes them: QEMU then uses a
    /// file maqet opened and checked, not a name it opens itself.
    pub fn execute_with_fds(
        &mut self,
        command: &str,
        args: Option<Value>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<Value, QmpError> {
        let deadline = Instant::now() + self.timeout;
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        self.execute_until(command, args, deadline, &raw)
    }

    /// The next event, oldest first; `Ok(None)` if none arrives in `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>, QmpError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        let deadline = Instant::now() + timeout;
        match self.finish_handshake(deadline) {
            // The negotiation's reply is late, and so would be any event.
            Err(QmpError::Timeout { .. }) if self.greeted => return Ok(None),
            done => done?,
        }
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        loop {
            let line = match self.read_line(deadline, "an event") {
                Ok(line) => line,
                Err(QmpError::Timeout { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            match parse_message(&line)? {
                Message::Event(event) => return Ok(Some(event)),
                Message::Reply { id, .. } => crate::log::debug(format_args!(
                    "QMP: skipped a late reply (id {}) while waiting for an event",
                    id.unwrap_or(Value::Null)
                )),
                Message::Greeting(_) => {
                    return Err(QmpError::Protocol("a second QMP greeting".to_string()));
                }
            }
        }
    }

    /// The deadline for each later command.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The largest line (in bytes, without its newline) accepted from QEMU.
    pub fn set_max_reply(&mut self, bytes: usize) {
        self.max_reply = bytes;
    }

    fn execute_until(
        &mut self,
        command: &str,
        args: Option<Value>,
        deadline: Instant,
        fds: &[RawFd],
    ) -> Result<Value, QmpError> {
        let id = self.send_request(command, args, deadline, fds)?;
        self.finish_handshake(deadline)?;
        self.await_reply(id, command, deadline)
    }

    /// Send one request; its id.
    fn send_request(
        &mut self,
        command: &str,
        args: Option<Value>,
        deadline: Instant,
        fds: &[RawFd],
    ) -> Result<u64, QmpError> {
        if let Some(reason) = &self.broken {
            return Err(QmpError::Protocol(format!(
                "the connection is unusable: {reason}"
            )));
        }
        let id = self.next_id;
        self.next_id += 1;

        let mut request = Map::new();
        request.insert("execute".to_string(), Value::from(command));
        if let Some(args) = args {
            request.insert("arguments".to_string(), args);
        }
        request.insert("id".to_string(), Value::from(id));
        let mut bytes = Value::Object(request).to_string().into_bytes();
        bytes.push(b'\n');
        self.send(&bytes, command, deadline, fds)?;
        Ok(id)
    }

    /// The reply to request `id`; events that come first are queued.
    fn await_reply(
        &mut self,
        id: u64,
        command: &str,
        deadline: Instant,
    ) -> Result<Value, QmpError> {
        let what = format!("the reply to {command}");
        loop {
            let line = self.read_line(deadline, &what)?;
            match parse_message(&line)? {
                Message::Event(event) => self.queue_event(event),
                Message::Reply { id: Some(got), .. } if got.as_u64() != Some(id) => {
                    crate::log::debug(format_args!(
                        "QMP: skipped a late reply (id {got}) while waiting for {command} (id {id})"
                    ))
                }
                // QEMU drops the id only when it could not read the request at
                // all (a JSON parse error); with one request in flight, that
                // error is about this one.
                Message::Reply { outcome, .. } => return outcome,
                Message::Greeting(_) => {
                    return Err(QmpError::Protocol("a second QMP greeting".to_string()));
                }
            }
        }
    }

    fn queue_event(&mut self, event: Value) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            // Once per connection: a flood would otherwise flood stderr too.
            if !self.dropped_events {
                self.dropped_events = true;
                crate::log::warn(format_args!(
                    "QMP: more than {MAX_QUEUED_EVENTS} events unread; dropping the oldest"
                ));
            }
        }
        self.events.push_back(event);
    }

    /// Write all of `bytes` by `deadline`; `fds` go with the first bytes.
    fn send(
        &mut self,
        bytes: &[u8],
        command: &str,
        deadline: Instant,
        fds: &[RawFd],
    ) -> Result<(), QmpError> {
        let mut sent = 0;
        while sent < bytes.len() {
            let with = if sent == 0 { fds } else { &[] };
            match self.send_some(&bytes[sent..], command, deadline, with) {
                Ok(n) => sent += n,
                Err(e) => {
                    if sent > 0 {
                        self.broken = Some(format!("the {command} request was cut short"));
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// One `send()`: as many bytes as the socket takes before `deadline`.
    fn send_some(
        &self,
        bytes: &[u8],
        command: &str,
        deadline: Instant,
        fds: &[RawFd],
    ) -> Result<usize, QmpError> {
        let timed_out = || QmpError::Timeout {
            what: format!("QEMU to read the {command} request"),
        };
        let stream = self.reader.get_ref();
        let left = remaining(deadline).ok_or_else(timed_out)?;
        stream.set_write_timeout(Some(left)).map_err(QmpError::Io)?;
        // MSG_NOSIGNAL: a QEMU that exited must give us EPIPE, not a SIGPIPE
        // that kills maqet if SIGPIPE is at its default disposition.
        let sent = if fds.is_empty() {
            socket::send(stream.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL)
        } else {
            socket::sendmsg::<()>(
                stream.as_raw_fd(),
                &[io::IoSlice::new(bytes)],
                &[socket::ControlMessage::ScmRights(fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
        };
        match sent {
            Ok(n) => Ok(n),
            Err(Errno::EINTR) => Ok(0),
            Err(Errno::EAGAIN) => Err(timed_out()),
            Err(Errno::EPIPE | Errno::ECONNRESET) => Err(QmpError::Closed {
                during: format!("sending {command}"),
            }),
            Err(e) => Err(QmpError::Io(e.into())),
        }
    }

    /// One line from QEMU, without its newline, by `deadline`.
    fn read_line(&mut self, deadline: Instant, what: &str) -> Result<Vec<u8>, QmpError> {
        loop {
            if self.reader.buffer().is_empty() {
                let Some(left) = remaining(deadline) else {
                    return Err(QmpError::Timeout {
                        what: what.to_string(),
                    });
                };
                self.reader
                    .get_ref()
                    .set_read_timeout(Some(left))
                    .map_err(QmpError::Io)?;
            }
            let available = match self.reader.fill_buf() {
                Ok([]) => {
                    return Err(QmpError::Closed {
                        during: what.to_string(),
                    });
                }
                Ok(available) => available,
                Err(e) => match e.kind() {
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                        continue;
                    }
                    // A QEMU that exits with our bytes unread resets the
                    // connection instead of closing it cleanly.
                    ErrorKind::ConnectionReset => {
                        return Err(QmpError::Closed {
                            during: what.to_string(),
                        });
                    }
                    _ => return Err(QmpError::Io(e)),
                },
            };
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = newline.unwrap_or(available.len());
            let used = newline.map_or(chunk, |n| n + 1);
            if self.discarding {
                self.reader.consume(used);
                self.discarding = newline.is_none();
                continue;
            }
            if self.partial.len() + chunk > self.max_reply {
                self.reader.consume(used);
                self.partial.clear();
                self.discarding = newline.is_none();
                return Err(QmpError::TooLarge {
                    limit: self.max_reply,
                });
            }
            self.partial.extend_from_slice(&available[..chunk]);
            self.reader.consume(used);
            if newline.is_some() {
                return Ok(std::mem::take(&mut self.partial));
            }
        }
    }
}

/// Time left until `deadline`, or `None` once it has passed. Never zero:
/// `set_read_timeout(Some(ZERO))` is an error rather than "don't wait".
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

/// lstat checks: a socket we own, in a directory only we can enter.
fn check_ownership(path: &Utf8Path) -> Result<(), QmpError> {
    let refuse = |reason: String| QmpError::NotOurs {
        path: path.to_owned(),
        reason,
    };
    let euid = nix::unistd::geteuid().as_raw();
    let meta = std::fs::symlink_metadata(path).map_err(|e| QmpError::Connect {
        path: path.to_owned(),
        source: e,
    })?;
    if !meta.file_type().is_socket() {
        return Err(refuse("it is not a socket".to_string()));
    }
    if meta.uid() != euid {
        return Err(refuse(format!(
            "it is owned by uid {}, not {euid}",
            meta.uid()
        )));
    }

    let dir = match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir,
        _ => Utf8Path::new("."),
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| QmpError::Connect {
        path: path.to_owned(),
        source: e,
    })?;
    if !meta.is_dir() {
        return Err(refuse(format!("{dir} is not a directory")));
    }
    if meta.uid() != euid {
        return Err(refuse(format!(
            "its directory {dir} is owned by uid {}, not {euid}",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "its directory {dir} has mode {mode:04o}; others could replace the socket"
        )));
    }
    Ok(())
}

/// Connect to one of maqet's sockets (QMP or the serial console): it must be
/// ours and sit in a directory only we can write, so nobody can swap it
/// between the check and the connect; `SO_PEERCRED` then confirms the
/// listener belongs to us as well.
pub fn connect_private(path: &Utf8Path, deadline: Instant) -> Result<UnixStream, QmpError> {
    check_ownership(path)?;
    let stream = connect_socket(path, deadline)?;
    // For a socket bound by maqet and handed to QEMU, SO_PEERCRED names
    // whoever called listen() — maqet — so only the uid is meaningful.
    let creds =
        socket::getsockopt(&stream, sockopt::PeerCredentials).map_err(|e| QmpError::Connect {
            path: path.to_owned(),
            source: e.into(),
        })?;
    let euid = nix::unistd::geteuid().as_raw();
    if creds.uid() != euid {
        return Err(QmpError::NotOurs {
            path: path.to_owned(),
            reason: format!(
                "the process listening on it runs as uid {}, not {euid}",
                creds.uid()
            ),
        });
    }
    Ok(stream)
}

/// A blocking connect that gives up at `deadline`.
fn connect_socket(path: &Utf8Path, deadline: Instant) -> Result<UnixStream, QmpError> {
    let connect_err = |source: io::Error| QmpError::Connect {
        path: path.to_owned(),
        source,
    };
    let timed_out = || QmpError::Timeout {
        what: format!("QEMU to accept the connection on {path}"),
    };
    let addr = UnixAddr::new(path.as_std_path()).map_err(|e| connect_err(e.into()))?;
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| connect_err(e.into()))?;
    let stream = UnixStream::from(fd);
    loop {
        // With a full listen backlog a unix connect() sleeps until there is
        // room; Linux bounds that sleep by SO_SNDTIMEO, so set it first.
        let left = remaining(deadline).ok_or_else(timed_out)?;
        stream.set_write_timeout(Some(left)).map_err(connect_err)?;
        match socket::connect(stream.as_raw_fd(), &addr) {
            Ok(()) => return Ok(stream),
            // An interrupted unix connect leaves the socket unconnected, so
            // trying again is safe.
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::EINPROGRESS) => return Err(timed_out()),
            Err(e) => return Err(connect_err(e.into())),
        }
    }
}

/// Sort one line by its shape; anything but a known JSON object is an error.
fn parse_message(line: &[u8]) -> Result<Message, QmpError> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| QmpError::Protocol(format!("not JSON ({e}): {}", excerpt(line))))?;
    let Value::Object(mut object) = value else {
        return Err(QmpError::Protocol(format!(
            "not a JSON object: {}",
            excerpt(line)
        )));
    };
    if let Some(greeting) = object.remove("QMP") {
        return match greeting {
            Value::Object(greeting) => Ok(Message::Greeting(greeting)),
            _ => Err(QmpError::Protocol(format!(
                "a greeting that is not an object: {}",
                excerpt(line)
            ))),
        };
    }
    if let Some(name) = object.get("event") {
        if !name.is_string() {
            return Err(QmpError::Protocol(format!(
                "an event without a name: {}",
                excerpt(line)
            )));
        }
        return Ok(Message::Event(Value::Object(object)));
    }
    let id = object.remove("id");
    if let Some(value) = object.remove("return") {
        return Ok(Message::Reply {
            id,
            outcome: Ok(value),
        });
    }
    if let Some(error) = object.remove("error") {
        let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_string);
        return match (text("class"), text("desc")) {
            (Some(class), Some(desc)) => Ok(Message::Reply {
                id,
                outcome: Err(QmpError::Command { class, desc }),
            }),
            _ => Err(QmpError::Protocol(format!(
                "an error reply without class and desc: {}",
                excerpt(line)
            ))),
        };
    }
    Err(QmpError::Protocol(format!(
        "neither a reply nor an event: {}",
        excerpt(line)
    )))
}

/// `greeting.QMP.version.qemu` as (major, minor, micro).
fn greeting_version(greeting: &Map<String, Value>) -> Result<(u64, u64, u64), QmpError> {
    let qemu = greeting
        .get("version")
        .and_then(|v| v.get("qemu"))
        .ok_or_else(|| QmpError::Protocol("the greeting has no version.qemu".to_string()))?;
    let part = |key: &str| {
        qemu.get(key).and_then(Value::as_u64).ok_or_else(|| {
            QmpError::Protocol(format!("the greeting's version.qemu.{key} is not a number"))
        })
    };
    Ok((part("major")?, part("minor")?, part("micro")?))
}

/// The start of a line, for an error message: enough to recognise it, never
/// a megabyte of it.
fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX)]);
    let text = text.trim_end();
    if line.len() > MAX {
        format!("`{text}…` ({} bytes)", line.len())
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
