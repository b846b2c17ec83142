//! The serial console: attaching a terminal (or a pipe) to a VM's
//! `console.sock`, and reading the log of everything the guest printed.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use camino::Utf8Path;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::termios::{self, SetArg, Termios};

/// Ctrl-] (0x1d), the detach key, as in telnet and `virsh console`.
pub const DETACH_BYTE: u8 = 0x1d;

/// console.log is rotated to console.log.1 when a VM starts with a log
/// larger than this.
pub const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// Why an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The user pressed Ctrl-].
    Detached,
    /// The VM closed the console (QEMU exited).
    Closed,
    /// stdin ended and the guest had nothing more to say.
    InputDone,
    /// SIGTERM, SIGHUP or SIGINT arrived.
    Signalled,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Catch the signals that end a session, so the terminal is restored before
/// maqet exits instead of being left raw. No SA_RESTART: poll returns EINTR.
fn catch_signals() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Raw mode on a terminal for as long as it lives; the saved settings come
/// back on drop, whichever way the session ends.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> io::Result<RawMode<'a>> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSAFLUSH, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSAFLUSH, &self.saved);
    }
}

/// Connect stdin and stdout to the console stream until the user detaches,
/// the VM goes away, or (without a terminal) stdin ends and the guest has
/// been quiet for `linger`.
pub fn attach(stream: &mut UnixStream, tty: bool, linger: Duration) -> io::Result<Ended> {
    catch_signals();
    let stdin = io::stdin();
    let stdin_fd = stdin.as_fd();
    let _raw = if tty {
        Some(RawMode::enter(stdin_fd)?)
    } else {
        None
    };
    let mut stdout = io::stdout().lock();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut quiet_since = Instant::now();
    loop {
        if SIGNALLED.load(Ordering::SeqCst) {
            return Ok(Ended::Signalled);
        }
        let timeout = if stdin_open {
            PollTimeout::from(500u16)
        } else {
            let left = linger.saturating_sub(quiet_since.elapsed());
            if left.is_zero() {
                return Ok(Ended::InputDone);
            }
            PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX))
        };
        let sock_fd = stream.as_fd();
        let mut fds = vec![PollFd::new(sock_fd, PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready = |f: &PollFd<'_>| {
            f.revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let sock_ready = ready(&fds[0]);
        let stdin_ready = stdin_open && ready(&fds[1]);
        drop(fds);
        if sock_ready {
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(Ended::Closed);
            }
            stdout.write_all(&buf[..n])?;
            stdout.flush()?;
            quiet_since = Instant::now();
        }
        if stdin_ready {
            let n = read_fd(stdin_fd.as_raw_fd(), &mut buf)?;
            if n == 0 {
                stdin_open = false;
                quiet_since = Instant::now();
                continue;
            }
            let chunk = &buf[..n];
            if tty && let Some(at) = chunk.iter().position(|b| *b == DETACH_BYTE) {
                stream.write_all(&chunk[..at])?;
                return Ok(Ended::Detached);
            }
            stream.write_all(chunk)?;
        }
    }
}

/// One read(2) on stdin, bypassing std's buffering so poll stays truthful.
fn read_fd(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(unsafe { BorrowedFd::borrow_raw(fd) }, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => {
                if SIGNALLED.load(Ordering::SeqCst) {
                    return Ok(0);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copy the console log to `out`; with `follow`, keep copying what the guest
/// prints until `keep_going` says stop (checked every 200 ms) or a signal.
pub fn print_log(
    path: &Utf8Path,
    follow: bool,
    out: &mut dyn Write,
    keep_going: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    catch_signals();
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && follow => {
            // Not started yet: wait for QEMU to create it.
            loop {
                if SIGNALLED.load(Ordering::SeqCst) || !keep_going() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
                if let Ok(f) = std::fs::File::open(path) {
                    break f;
                }
            }
        }
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 65536];
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        out.flush()?;
        if !follow || SIGNALLED.load(Ordering::SeqCst) {
            return Ok(());
        }
        if !keep_going() {
            // QEMU may have written its last bytes between the read above
            // and its exit: read once more.
            std::io::copy(&mut file, out)?;
            return out.flush();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Keep one earlier run's log when the current one has grown large.
pub fn rotate_log(path: &Utf8Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > LOG_ROTATE_BYTES => std::fs::rename(path, format!("{path}.1")),
        _ => Ok(()),
    }
}

/// A writer that shows a terminal the guest's control characters instead of
/// obeying them: `console --log` on a terminal. A guest that prints an
/// escape sequence (a window title, a clipboard write, a screen clear)
/// gets it shown as `\x1b]52;…`. Newlines, carriage returns and tabs pass;
/// so does every other byte, UTF-8 included, except the C1 controls
/// (U+0080 to U+009F), shown as `\u{9b}`.
pub struct Visible<'a> {
    out: &'a mut dyn Write,
    /// The last chunk ended in the first byte of a two-byte UTF-8 C1.
    pending_c2: bool,
}

impl<'a> Visible<'a> {
    pub fn new(out: &'a mut dyn Write) -> Visible<'a> {
        Visible {
            out,
            pending_c2: false,
        }
    }
}

impl Write for Visible<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut shown = Vec::with_capacity(buf.len());
        for &b in buf {
            if self.pending_c2 {
                self.pending_c2 = false;
                if (0x80..=0x9f).contains(&b) {
                    shown.extend_from_slice(format!("\\u{{{b:x}}}").as_bytes());
                    continue;
                }
                shown.push(0xc2);
            }
            match b {
                b'\n' | b'\r' | b'\t' => shown.push(b),
                0xc2 => self.pending_c2 = true,
                0..=0x1f | 0x7f => shown.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                _ => shown.push(b),
            }
        }
        self.out.write_all(&shown)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending_c2) {
            self.out.write_all(&[0xc2])?;
        }
        self.out.flush()
    }
}

/// A writer that turns the bytes written to it into JSON lines,
/// `{"line": "..."}` per line of text (invalid UTF-8 replaced, terminal
/// controls escaped), for `console --log` under `--json`.
pub struct JsonLines<'a> {
    out: &'a mut dyn Write,
    pending: Vec<u8>,
}

impl<'a> JsonLines<'a> {
    pub fn new(out: &'a mut dyn Write) -> JsonLines<'a> {
        JsonLines {
            out,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let value = serde_json::json!({ "line": text });
        writeln!(
            self.out,
            "{}",
            crate::terminal::safe_json(&value.to_string())
        )
    }

    /// Write the last, unfinished line, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest)?;
        }
        self.out.flush()
    }
}

impl Write for JsonLines<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1])?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod json_lines_tests {
    use super::*;

    #[test]
    fn console_output_becomes_one_json_object_per_line() {
        let mut out = Vec::new();
        let mut lines = JsonLines::new(&mut out);
        lines
            .write_all(b"boot\r\nevil \x1b[2J\xe2\x80\xae")
            .expect("write");
        lines.write_all(b"end\n\xffpartial").expect("write");
        lines.finish().expect("finish");
        let text = String::from_utf8(out).expect("UTF-8");
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(
            parsed,
            [
                serde_json::json!({"line": "boot"}),
                serde_json::json!({"line": "evil \u{1b}[2J\u{202e}end"}),
                serde_json::json!({"line": "\u{fffd}partial"}),
            ]
        );
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
    }
}

#[cfg(test)]
mod visible_tests {
    use super::*;

    #[test]
    fn a_terminal_is_shown_the_guests_controls_not_given_them() {
        let mut out = Vec::new();
        let mut visible = Visible::new(&mut out);
        // OSC 0 (title), OSC 52 (clipboard), CSI, BEL, DEL, an 8-bit CSI
        // split across two writes, and ordinary UTF-8 that must pass.
        visible
            .write_all(b"login: \x1b]0;PWNED\x07\x1b]52;c;cHduZWQ=\x07\x1b[31mRED\x7f\xc2")
            .expect("write");
        visible
            .write_all(b"\x9b2J caf\xc3\xa9 \xc2\xa0\r\n\tok")
            .expect("write");
        visible.flush().expect("flush");
        let text = String::from_utf8(out).expect("UTF-8");
        assert_eq!(
            text,
            "login: \\x1b]0;PWNED\\x07\\x1b]52;c;cHduZWQ=\\x07\\x1b[31mRED\\x7f\\u{9b}2J café \u{a0}\r\n\tok"
        );
    }
}
