//! The QMP client against a fake QEMU: a listening socket in a 0700 temp
//! directory, served by a thread that plays a script — including the ways a
//! real QEMU (or something pretending to be one) misbehaves. One test at the
//! end drives a real QEMU when it is installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use super::*;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#;

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(5);

/// A temp directory only we can enter, as maqet's runtime directories are.
fn private_dir() -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The QEMU side of one connection.
struct Peer {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Peer {
    /// Write raw bytes, exactly as given (QEMU ends its lines with `\r\n`).
    fn raw(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
    }

    fn line(&mut self, text: &str) {
        self.raw(&format!("{text}\r\n"));
    }

    fn reply(&mut self, id: &Value, value: Value) {
        self.line(&json!({"return": value, "id": id}).to_string());
    }

    fn event(&mut self, name: &str) {
        let event = json!({
            "timestamp": {"seconds": 1, "microseconds": 2},
            "event": name,
        });
        self.line(&event.to_string());
    }

    /// Read the next request, check it runs `command`, and return it.
    fn request(&mut self, command: &str) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let request: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(request["execute"], command, "request: {line}");
        assert!(
            request["id"].is_u64(),
            "request without a numeric id: {line}"
        );
        request
    }

    /// Answer `command` with `value`.
    fn answer(&mut self, command: &str, value: Value) -> Value {
        let request = self.request(command);
        self.reply(&request["id"], value);
        request
    }

    /// What a real QEMU does before anything else.
    fn handshake(&mut self) {
        self.line(GREETING);
        self.answer("qmp_capabilities", json!({}));
    }

    /// Block until the client hangs up, so a test never sees an EOF it did
    /// not ask for.
    fn wait_for_hangup(mut self) {
        let mut sink = Vec::new();
        let _ = self.reader.read_to_end(&mut sink);
    }
}

/// A fake QEMU listening at `path`, playing `script` for one client.
struct Fake {
    _dir: TempDir,
    path: Utf8PathBuf,
    server: Option<JoinHandle<()>>,
}

impl Fake {
    fn new(script: impl FnOnce(Peer) + Send + 'static) -> Fake {
        let dir = private_dir();
        let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).unwrap();
        let listener = UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let writer = stream.try_clone().unwrap();
            script(Peer {
                reader: BufReader::new(stream),
                writer,
            });
        });
        Fake {
            _dir: dir,
            path,
            server: Some(server),
        }
    }

    fn connect(&self) -> Result<Qmp, QmpError> {
        Qmp::connect(&self.path, LONG)
    }

    /// Wait for the script to end; its assertion failures are the test's.
    fn finish(mut self) {
        if let Some(server) = self.server.take() {
            server.join().expect("the fake QEMU's script failed");
        }
    }
}

/// A pipelined session sends the negotiation and its first command before
/// it waits for anything: this QEMU answers nothing until it has read both,
/// so a client that waited for the greeting (or for the negotiation's
/// reply) first would time out.
#[test]
fn a_pipelined_session_costs_one_round_trip() {
    let fake = Fake::new(|mut peer| {
        let caps = peer.request("qmp_capabilities");
        let status = peer.request("query-status");
        peer.line(GREETING);
        peer.reply(&caps["id"], json!({}));
        peer.event("RESUME");
        peer.reply(&status["id"], json!({"status": "running", "running": true}));
        peer.wait_for_hangup();
    });
    let mut qmp = Qmp::connect_pipelined(&fake.path, SHORT).unwrap();
    let reply = qmp.execute("query-status", None).unwrap();
    assert_eq!(reply["status"], "running");
    assert_eq!(qmp.version(), (7, 2, 22));
    let event = qmp.next_event(SHORT).unwrap().unwrap();
    assert_eq!(event["event"], "RESUME");
    drop(qmp);
    fake.finish();
}

/// A failed negotiation is the first command's error, not a silent success.
#[test]
fn a_pipelined_negotiation_that_fails_fails_the_first_command() {
    let fake = Fake::new(|mut peer| {
        let caps = peer.request("qmp_capabilities");
        peer.line(GREETING);
        let error =
            json!({"error": {"class": "CommandNotFound", "desc": "no caps"}, "id": caps["id"]});
        peer.line(&error.to_string());
        peer.wait_for_hangup();
    });
    let mut qmp = Qmp::connect_pipelined(&fake.path, LONG).unwrap();
    let err = qmp.execute("query-status", None).unwrap_err();
    assert_eq!(err.to_string(), "CommandNotFound: no caps");
    drop(qmp);
    fake.finish();
}

#[test]
fn greeting_capabilities_and_a_command() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let request = peer.answer(
            "query-status",
            json!({"status": "running", "singlestep": false, "running": true}),
        );
        assert!(request.get("arguments").is_none(), "{request}");
        let request = peer.answer("human-monitor-command", json!("ok\r\n"));
        assert_eq!(
            request["arguments"],
            json!({"command-line": "info version"})
        );
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    assert_eq!(qmp.version(), (7, 2, 22));
    let status = qmp.execute("query-status", None).unwrap();
    assert_eq!(status["status"], "running");
    let args = json!({"command-line": "info version"});
    let out = qmp.execute("human-monitor-command", Some(args)).unwrap();
    assert_eq!(out, "ok\r\n");
    drop(qmp);
    fake.finish();
}

#[test]
fn garbage_instead_of_a_greeting_is_a_protocol_error() {
    let fake = Fake::new(|mut peer| {
        peer.line("SSH-2.0-OpenSSH_9.2");
        peer.wait_for_hangup();
    });
    let err = fake.connect().err().unwrap();
    assert!(matches!(err, QmpError::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("SSH-2.0"), "{err}");
    fake.finish();
}

#[test]
fn a_reply_before_the_greeting_is_a_protocol_error() {
    let fake = Fake::new(|mut peer| {
        peer.line(r#"{"return": {}}"#);
        peer.wait_for_hangup();
    });
    let err = fake.connect().err().unwrap();
    assert!(
        err.to_string().contains("expected the QMP greeting"),
        "{err}"
    );
    fake.finish();
}

#[test]
fn a_greeting_without_a_version_is_a_protocol_error() {
    let fake = Fake::new(|mut peer| {
        peer.line(r#"{"QMP": {"capabilities": []}}"#);
        peer.wait_for_hangup();
    });
    let err = fake.connect().err().unwrap();
    assert!(err.to_string().contains("version.qemu"), "{err}");
    fake.finish();
}

#[test]
fn lines_split_across_many_writes_are_reassembled() {
    let fake = Fake::new(|mut peer| {
        let greeting = format!("{GREETING}\r\n");
        for piece in greeting.as_bytes().chunks(7) {
            peer.writer.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        let request = peer.request("qmp_capabilities");
        let reply = json!({"return": {}, "id": request["id"]}).to_string();
        let (head, tail) = reply.split_at(5);
        peer.raw(head);
        thread::sleep(Duration::from_millis(20));
        peer.raw(tail);
        thread::sleep(Duration::from_millis(20));
        peer.raw("\r");
        thread::sleep(Duration::from_millis(20));
        peer.raw("\n");
        // Two whole lines in one write must come out as two messages.
        let request = peer.request("query-status");
        let event = json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}});
        let reply = json!({"return": {"status": "paused"}, "id": request["id"]});
        peer.raw(&format!("{event}\r\n{reply}\r\n"));
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    assert_eq!(qmp.version(), (7, 2, 22));
    let status = qmp.execute("query-status", None).unwrap();
    assert_eq!(status["status"], "paused");
    let event = qmp.next_event(SHORT).unwrap().unwrap();
    assert_eq!(event["event"], "STOP");
    drop(qmp);
    fake.finish();
}

#[test]
fn events_between_replies_are_queued_in_order() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let request = peer.request("stop");
        peer.event("ONE");
        peer.event("TWO");
        peer.reply(&request["id"], json!({}));
        let request = peer.request("cont");
        peer.event("THREE");
        peer.reply(&request["id"], json!({}));
        // Arrives only once the client is reading for events.
        thread::sleep(Duration::from_millis(50));
        peer.event("FOUR");
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    assert_eq!(qmp.execute("stop", None).unwrap(), json!({}));
    assert_eq!(qmp.execute("cont", None).unwrap(), json!({}));
    let mut names = Vec::new();
    while let Some(event) = qmp.next_event(LONG).unwrap() {
        names.push(event["event"].as_str().unwrap().to_string());
        if names.len() == 4 {
            break;
        }
    }
    assert_eq!(names, ["ONE", "TWO", "THREE", "FOUR"]);
    let started = Instant::now();
    assert_eq!(qmp.next_event(SHORT).unwrap(), None);
    assert!(started.elapsed() >= SHORT, "{:?}", started.elapsed());
    drop(qmp);
    fake.finish();
}

#[test]
fn a_flood_of_events_keeps_only_the_newest() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let request = peer.request("cont");
        let mut flood = String::new();
        for n in 0..MAX_QUEUED_EVENTS + 100 {
            flood.push_str(&json!({"event": "RTC_CHANGE", "data": {"n": n}}).to_string());
            flood.push_str("\r\n");
        }
        peer.raw(&flood);
        peer.reply(&request["id"], json!({}));
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    qmp.execute("cont", None).unwrap();
    let mut seen = Vec::new();
    while let Some(event) = qmp.next_event(Duration::ZERO).unwrap() {
        seen.push(event["data"]["n"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (100..MAX_QUEUED_EVENTS as u64 + 100).collect();
    assert_eq!(seen, expected);
    drop(qmp);
    fake.finish();
}

#[test]
fn replies_with_other_ids_are_skipped() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let request = peer.request("query-name");
        peer.reply(&json!(999), json!("stale"));
        peer.reply(&json!("not-ours"), json!("stale"));
        peer.reply(&request["id"], json!({"name": "vm1"}));
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    let name = qmp.execute("query-name", None).unwrap();
    assert_eq!(name, json!({"name": "vm1"}));
    drop(qmp);
    fake.finish();
}

#[test]
fn a_late_reply_to_a_timed_out_command_does_not_answer_the_next() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let slow = peer.request("query-block");
        let fast = peer.request("query-name");
        peer.reply(&slow["id"], json!("slow"));
        peer.reply(&fast["id"], json!("fast"));
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    qmp.set_timeout(SHORT);
    let err = qmp.execute("query-block", None).unwrap_err();
    assert!(
        matches!(&err, QmpError::Timeout { what } if what == "the reply to query-block"),
        "{err:?}"
    );
    qmp.set_timeout(LONG);
    assert_eq!(qmp.execute("query-name", None).unwrap(), "fast");
    drop(qmp);
    fake.finish();
}

#[test]
fn a_qmp_error_reply_is_a_command_error() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let request = peer.request("nope");
        let error = json!({
            "id": request["id"],
            "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"},
        });
        peer.line(&error.to_string());
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    let err = qmp.execute("nope", None).unwrap_err();
    let QmpError::Command { class, desc } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(class, "CommandNotFound");
    assert_eq!(desc, "The command nope has not been found");
    assert_eq!(
        err.to_string(),
        "CommandNotFound: The command nope has not been found"
    );
    drop(qmp);
    fake.finish();
}

#[test]
fn an_error_without_an_id_is_about_the_request_in_flight() {
    // What QEMU answers when it cannot parse a request at all.
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        peer.request("query-status");
        peer.line(
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'garbage'"}}"#,
        );
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    let err = qmp.execute("query-status", None).unwrap_err();
    assert!(
        matches!(&err, QmpError::Command { class, .. } if class == "GenericError"),
        "{err:?}"
    );
    drop(qmp);
    fake.finish();
}

#[test]
fn lines_that_are_not_known_json_objects_are_protocol_errors() {
    for line in [
        "[1, 2]",
        "\"return\"",
        "",
        "{\"return\": {}",
        r#"{"hello": 1}"#,
        r#"{"event": 5}"#,
        r#"{"error": "bad"}"#,
        "{\"return\": \"\u{fffd}\"}\u{1}",
    ] {
        let fake = Fake::new(move |mut peer| {
            peer.handshake();
            peer.request("query-status");
            peer.line(line);
            peer.wait_for_hangup();
        });
        let mut qmp = fake.connect().unwrap();
        let err = qmp.execute("query-status", None).unwrap_err();
        assert!(matches!(err, QmpError::Protocol(_)), "{line:?}: {err:?}");
        drop(qmp);
        fake.finish();
    }
}

#[test]
fn a_line_over_the_cap_is_too_large_and_skipped() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        let request = peer.request("query-qmp-schema");
        let huge = json!({"return": "x".repeat(10_000), "id": request["id"]});
        peer.line(&huge.to_string());
        peer.answer("query-name", json!("after"));
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    qmp.set_max_reply(4096);
    let err = qmp.execute("query-qmp-schema", None).unwrap_err();
    assert!(matches!(err, QmpError::TooLarge { limit: 4096 }), "{err:?}");
    // The rest of the oversized line is dropped, not parsed as a line.
    assert_eq!(qmp.execute("query-name", None).unwrap(), "after");
    drop(qmp);
    fake.finish();
}

#[test]
fn an_endless_line_is_too_large_not_out_of_memory() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        peer.request("query-status");
        let chunk = vec![b'7'; 64 * 1024];
        // Until the client hangs up; 1 GiB if it never does.
        for _ in 0..16 * 1024 {
            if peer.writer.write_all(&chunk).is_err() {
                return;
            }
        }
        panic!("the client kept reading an endless line");
    });
    let mut qmp = fake.connect().unwrap();
    qmp.set_max_reply(4096);
    let err = qmp.execute("query-status", None).unwrap_err();
    assert!(matches!(err, QmpError::TooLarge { limit: 4096 }), "{err:?}");
    drop(qmp);
    fake.finish();
}

#[test]
fn the_peer_closing_mid_reply_is_closed() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        peer.request("query-status");
        peer.raw(r#"{"return": {"status": "#);
    });
    let mut qmp = fake.connect().unwrap();
    let err = qmp.execute("query-status", None).unwrap_err();
    assert!(
        matches!(&err, QmpError::Closed { during } if during == "the reply to query-status"),
        "{err:?}"
    );
    // Still closed, not a hang or a panic.
    let err = qmp.next_event(SHORT).unwrap_err();
    assert!(matches!(err, QmpError::Closed { .. }), "{err:?}");
    fake.finish();
}

#[test]
fn a_peer_gone_before_a_request_is_closed() {
    let fake = Fake::new(|mut peer| peer.handshake());
    let mut qmp = fake.connect().unwrap();
    fake.finish();
    let err = qmp.execute("query-status", None).unwrap_err();
    assert!(
        matches!(&err, QmpError::Closed { during } if during == "sending query-status"),
        "{err:?}"
    );
}

#[test]
fn a_peer_that_never_answers_times_out() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        peer.request("query-status");
        peer.wait_for_hangup();
    });
    let mut qmp = fake.connect().unwrap();
    qmp.set_timeout(SHORT);
    let started = Instant::now();
    let err = qmp.execute("query-status", None).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, QmpError::Timeout { .. }), "{err:?}");
    assert!(took >= SHORT && took < Duration::from_secs(2), "{took:?}");
    drop(qmp);
    fake.finish();
}

#[test]
fn a_peer_that_never_greets_times_out() {
    // What a second client sees while QEMU serves the first.
    let fake = Fake::new(Peer::wait_for_hangup);
    let started = Instant::now();
    let err = Qmp::connect(&fake.path, SHORT).err().unwrap();
    let took = started.elapsed();
    assert!(
        matches!(&err, QmpError::Timeout { what } if what == "the greeting"),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    fake.finish();
}

#[test]
fn a_full_listen_backlog_times_out_the_connect() {
    use nix::sys::socket::{Backlog, bind, listen};
    let dir = private_dir();
    let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).unwrap();
    let listener: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        listener.as_raw_fd(),
        &UnixAddr::new(path.as_std_path()).unwrap(),
    )
    .unwrap();
    // Backlog 0 still queues one connection; the next connect() blocks.
    listen(&listener, Backlog::new(0).unwrap()).unwrap();
    let _first = UnixStream::connect(&path).unwrap();
    let started = Instant::now();
    let err = Qmp::connect(&path, SHORT).err().unwrap();
    let took = started.elapsed();
    assert!(
        matches!(&err, QmpError::Timeout { what } if what.starts_with("QEMU to accept")),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_trickle_of_events_cannot_extend_a_command() {
    let fake = Fake::new(|mut peer| {
        peer.handshake();
        peer.request("query-status");
        for _ in 0..100 {
            thread::sleep(Duration::from_millis(20));
            if peer
                .writer
                .write_all(b"{\"event\": \"RTC_CHANGE\", \"data\": {\"offset\": 0}}\r\n")
                .is_err()
            {
                return;
            }
        }
    });
    let mut qmp = fake.connect().unwrap();
    qmp.set_timeout(SHORT);
    let started = Instant::now();
    let err = qmp.execute("query-status", None).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, QmpError::Timeout { .. }), "{err:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The events that came meanwhile were kept.
    let event = qmp.next_event(Duration::ZERO).unwrap().unwrap();
    assert_eq!(event["event"], "RTC_CHANGE");
    drop(qmp);
    fake.finish();
}

#[test]
fn a_request_qemu_does_not_read_times_out_and_poisons_the_connection() {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let fake = Fake::new(move |mut peer| {
        peer.handshake();
        // Hold the connection open without reading from it.
        let _ = wait.recv();
    });
    let mut qmp = fake.connect().unwrap();
    // The timeout covers serializing the request too, so leave room for a
    // slow debug build on a busy machine.
    qmp.set_timeout(Duration::from_secs(1));
    // More than a unix socket buffers (about 208 KiB), so the write blocks
    // part-way.
    let args = json!({"data": "y".repeat(512 << 10)});
    let err = qmp.execute("guest-file-write", Some(args)).unwrap_err();
    assert!(
        matches!(&err, QmpError::Timeout { what } if what == "QEMU to read the guest-file-write request"),
        "{err:?}"
    );
    let err = qmp.execute("query-status", None).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    drop(qmp);
    done.send(()).unwrap();
    fake.finish();
}

#[test]
fn a_regular_file_is_not_ours() {
    let dir = private_dir();
    let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).unwrap();
    std::fs::write(&path, "").unwrap();
    let err = Qmp::connect(&path, SHORT).err().unwrap();
    assert!(matches!(err, QmpError::NotOurs { .. }), "{err:?}");
    assert!(err.to_string().contains("not a socket"), "{err}");
}

#[test]
fn a_symlink_to_a_socket_is_not_ours() {
    let fake = Fake::new(|_| {});
    let link = fake.path.with_file_name("link.sock");
    std::os::unix::fs::symlink(&fake.path, &link).unwrap();
    let err = Qmp::connect(&link, SHORT).err().unwrap();
    assert!(err.to_string().contains("not a socket"), "{err}");
    // Unblock the fake's accept().
    drop(UnixStream::connect(&fake.path).unwrap());
    fake.finish();
}

#[test]
fn a_socket_in_a_world_writable_dir_is_not_ours() {
    let fake = Fake::new(|_| {});
    let dir = fake.path.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Qmp::connect(&fake.path, SHORT).err().unwrap();
    assert!(matches!(err, QmpError::NotOurs { .. }), "{err:?}");
    assert!(err.to_string().contains("mode 0777"), "{err}");
    drop(UnixStream::connect(&fake.path).unwrap());
    fake.finish();
}

#[test]
fn a_missing_socket_is_a_connect_error() {
    let dir = private_dir();
    let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).unwrap();
    let err = Qmp::connect(&path, SHORT).err().unwrap();
    assert!(matches!(err, QmpError::Connect { .. }), "{err:?}");
}

#[test]
fn a_socket_nobody_listens_on_is_a_connect_error() {
    let dir = private_dir();
    let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).unwrap();
    drop(UnixListener::bind(&path).unwrap());
    let err = Qmp::connect(&path, SHORT).err().unwrap();
    let QmpError::Connect { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// The QEMU binary, or `None` when it is not installed (a skip, or a
/// failure under `MAQET_REQUIRE_QEMU=1`).
fn qemu_binary(test: &str) -> Option<&'static str> {
    const QEMU: &str = "qemu-system-x86_64";
    crate::skips::needs(
        test,
        "MAQET_REQUIRE_QEMU",
        crate::skips::runs(QEMU),
        &format!("{QEMU} is not installed"),
    )
    .then_some(QEMU)
}

/// Kills and reaps QEMU if the test fails part-way.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn real_qemu_status_version_and_quit() {
    let Some(qemu) = qemu_binary("real_qemu_status_version_and_quit") else {
        return;
    };
    let dir = private_dir();
    let path = Utf8PathBuf::try_from(dir.path().join("q.sock")).unwrap();
    let child = Command::new(qemu)
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
        ])
        .arg(format!("unix:{path},server=on,wait=off"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut qemu = Reaper(child);

    // QEMU binds the socket a moment before it listens on it; maqet itself
    // avoids that window by listening before it starts QEMU.
    let started = Instant::now();
    let mut qmp = loop {
        match Qmp::connect(&path, LONG) {
            Ok(qmp) => break qmp,
            Err(err) if started.elapsed() < LONG => {
                assert!(qemu.0.try_wait().unwrap().is_none(), "QEMU exited: {err}");
                thread::sleep(Duration::from_millis(5));
            }
            Err(err) => panic!("QEMU's QMP never answered: {err:?}"),
        }
    };

    let status = qmp.execute("query-status", None).unwrap();
    assert_eq!(status["running"], true, "{status}");
    assert!(status["status"].is_string(), "{status}");

    let version = qmp.execute("query-version", None).unwrap();
    let qemu_version = &version["qemu"];
    assert_eq!(
        qmp.version(),
        (
            qemu_version["major"].as_u64().unwrap(),
            qemu_version["minor"].as_u64().unwrap(),
            qemu_version["micro"].as_u64().unwrap(),
        )
    );

    let err = qmp.execute("no-such-command", None).unwrap_err();
    assert!(
        matches!(&err, QmpError::Command { class, .. } if class == "CommandNotFound"),
        "{err:?}"
    );

    // QEMU may exit before its reply to `quit` reaches us.
    match qmp.execute("quit", None) {
        Ok(value) => assert_eq!(value, json!({})),
        Err(QmpError::Closed { .. }) => {}
        Err(err) => panic!("quit: {err:?}"),
    }
    let shutdown = qmp.next_event(LONG).unwrap().unwrap();
    assert_eq!(shutdown["event"], "SHUTDOWN", "{shutdown}");
    assert_eq!(shutdown["data"]["reason"], "host-qmp-quit", "{shutdown}");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = qemu.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < LONG, "QEMU did not exit after quit");
        thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}
