//! Property tests: the invariants of the `qmp` fuzz target
//! (docs/fuzzing.md), run by `cargo test`, against a fake QEMU on a real
//! socket; the whole-line check is the fuzz target's own
//! (src/invariants/qmp.rs).
//!
//! - Whatever bytes follow the handshake, the client never panics or hangs,
//!   and every reply, error and event it returns is one whole line of what
//!   was sent, of the right kind, within the size cap, with an id it sent.
//! - A session of events, late replies, errors, junk and overlong lines
//!   gives the same results however its bytes are split across writes: the
//!   results a line-by-line model of the protocol predicts.

use std::collections::VecDeque;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;
use tempfile::TempDir;

use super::*;
use crate::invariants::qmp::Sent;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

/// A fake QEMU that sends the greeting, answers `qmp_capabilities`, then
/// writes `chunks` (pausing between them so the client sees them apart),
/// closes its side, and swallows requests until the client hangs up. The
/// client's calls run in `client`.
fn session<T>(chunks: Vec<Vec<u8>>, client: impl FnOnce(&Utf8Path) -> T) -> T {
    let dir = TempDir::new().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod 0700");
    let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).expect("UTF-8 temp dir");
    let listener = UnixListener::bind(&path).expect("bind");
    let peer = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut hello = format!("{GREETING}\r\n").into_bytes();
        hello.extend_from_slice(b"{\"return\": {}, \"id\": 1}\r\n");
        let _ = conn.write_all(&hello);
        for chunk in chunks {
            thread::sleep(Duration::from_micros(50));
            if conn.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = conn.shutdown(Shutdown::Write);
        let _ = std::io::copy(&mut conn, &mut std::io::sink());
    });
    let result = client(&path);
    peer.join().expect("the fake QEMU");
    result
}

/// `bytes` cut at `cuts` (positions, in any order, out of range ignored).
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut chunks = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        chunks.push(bytes[from..cut].to_vec());
        from = cut;
    }
    chunks
}

// ---------------------------------------------------------------- any bytes

/// Bytes QEMU might send, or anything else.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(r#"{"return": {"status": "running"}, "id": 2}"#.to_owned()),
        Just(r#"{"return": 7}"#.to_owned()),
        Just(r#"{"return": [], "id": 3}"#.to_owned()),
        Just(r#"{"return": {}, "id": "2"}"#.to_owned()),
        Just(r#"{"error": {"class": "GenericError", "desc": "no"}, "id": 2}"#.to_owned()),
        Just(r#"{"error": {"class": 1}}"#.to_owned()),
        Just(r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#.to_owned()),
        Just(r#"{"event": 5}"#.to_owned()),
        Just(GREETING.to_owned()),
        "[ -~]{0,40}",
        "\\{\"return\": \"[a-z]{0,300}\", \"id\": [0-9]\\}",
        // Valid JSON from any point in its leading blanks: a reader that
        // kept the tail of an overlong line would find a reply in it (with
        // no id, so it answers whichever command reads it).
        (0usize..300).prop_map(|n| format!("{}{{\"return\": {n}}}", " ".repeat(n))),
        any::<String>(),
    ];
    let ending = select(vec!["\r\n", "\n", "", "\r"]);
    prop_oneof![
        4 => prop::collection::vec((line, ending), 0..12).prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(l, e)| [l, e.to_owned()])
                .collect::<String>()
                .into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..400),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replies_and_events_are_whole_lines_of_what_was_sent(
        bytes in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        cap in select(vec![1usize, 16, 64, 256, Qmp::DEFAULT_MAX_REPLY]),
        calls in any::<u8>(),
    ) {
        // The checks are the `qmp` fuzz target's (src/invariants/qmp.rs).
        let sent_stream = Sent::new(&bytes);
        let problems = session(split(&bytes, &cuts), |path| {
            let mut problems = Vec::new();
            let mut qmp = Qmp::connect(path, Duration::from_secs(5)).expect("handshake");
            qmp.set_max_reply(cap);
            let mut sent = 1;
            for bit in 0..8 {
                let checked = if calls & (1 << bit) == 0 {
                    sent_stream.check_next_event(&qmp.next_event(Duration::from_millis(1)))
                } else {
                    sent += 1;
                    sent_stream.check_execute(&qmp.execute("query-status", None), sent, cap)
                };
                problems.extend(checked.err());
            }
            problems
        });
        prop_assert!(problems.is_empty(), "{:?}", problems);
    }
}

// ---------------------------------------------------------------- sessions

/// One line of a scripted session.
#[derive(Debug, Clone)]
enum Line {
    Event(u32),
    /// `{"return": "<pad>", "id": id}`; no id when `None`.
    Reply(Option<u64>, usize),
    Error(Option<u64>),
    /// Not JSON.
    Junk,
    /// A second greeting.
    Greeting,
}

impl Line {
    fn text(&self) -> String {
        let with_id = |mut v: Value, id: Option<u64>| {
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            v.to_string()
        };
        match self {
            Line::Event(n) => {
                json!({"event": format!("E{n}"), "timestamp": {"seconds": n}}).to_string()
            }
            Line::Reply(id, pad) => with_id(json!({"return": "x".repeat(*pad)}), *id),
            Line::Error(id) => with_id(
                json!({"error": {"class": "GenericError", "desc": "d"}}),
                *id,
            ),
            Line::Junk => "SSH-2.0-OpenSSH_9.2".to_owned(),
            Line::Greeting => GREETING.to_owned(),
        }
    }
}

/// What a call returned, in a form the model can predict.
fn outcome<T: std::fmt::Display>(result: Result<T, QmpError>) -> String {
    match result {
        Ok(value) => format!("ok {value}"),
        Err(QmpError::Command { class, desc }) => format!("error {class}: {desc}"),
        Err(QmpError::TooLarge { .. }) => "too large".into(),
        Err(QmpError::Closed { .. }) => "closed".into(),
        Err(QmpError::Protocol(_)) => "protocol".into(),
        Err(other) => format!("unexpected {other:?}"),
    }
}

/// The protocol as docs/qmp.md and DESIGN.md §7 describe it, read one line
/// at a time: a line longer than the cap is an error and is skipped whole;
/// events wait in a queue; a reply is for the command in flight when its id
/// is that command's or absent, and skipped as late otherwise; anything
/// else is a protocol error; the end of the stream closes the session.
struct Model {
    lines: VecDeque<(usize, Line)>,
    /// A last line with no newline: its length.
    unfinished: Option<usize>,
    cap: usize,
    events: VecDeque<String>,
}

impl Model {
    /// The next line, or the error reading it gives.
    fn next_line(&mut self) -> Result<Line, String> {
        match self.lines.pop_front() {
            Some((len, _)) if len > self.cap => Err("too large".into()),
            Some((_, line)) => Ok(line),
            None => match self.unfinished.take() {
                Some(len) if len > self.cap => Err("too large".into()),
                _ => Err("closed".into()),
            },
        }
    }

    fn execute(&mut self, id: u64) -> String {
        loop {
            match self.next_line() {
                Err(e) => return e,
                Ok(Line::Event(n)) => self.events.push_back(format!("E{n}")),
                Ok(Line::Reply(got, pad)) if got.is_none_or(|g| g == id) => {
                    return format!("ok {}", json!("x".repeat(pad)));
                }
                Ok(Line::Error(got)) if got.is_none_or(|g| g == id) => {
                    return "error GenericError: d".into();
                }
                Ok(Line::Reply(..) | Line::Error(_)) => {}
                Ok(Line::Junk | Line::Greeting) => return "protocol".into(),
            }
        }
    }

    fn next_event(&mut self) -> String {
        if let Some(name) = self.events.pop_front() {
            return format!("event {name}");
        }
        loop {
            match self.next_line() {
                Err(e) => return e,
                Ok(Line::Event(n)) => return format!("event E{n}"),
                Ok(Line::Reply(..) | Line::Error(_)) => {}
                Ok(Line::Junk) | Ok(Line::Greeting) => return "protocol".into(),
            }
        }
    }
}

fn script_line() -> impl Strategy<Value = Line> {
    let id = prop::option::of(1u64..8);
    let pad = prop_oneof![0usize..80, 8150usize..8250];
    prop_oneof![
        3 => (0u32..100).prop_map(Line::Event),
        4 => (id.clone(), pad).prop_map(|(id, pad)| Line::Reply(id, pad)),
        1 => id.prop_map(Line::Error),
        1 => Just(Line::Junk),
        1 => Just(Line::Greeting),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sessions_read_the_same_however_the_bytes_are_split(
        script in prop::collection::vec(script_line(), 0..10),
        unfinished in prop::option::of(0usize..100),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        cap in prop_oneof![Just(40usize), Just(100), Just(8200), Just(Qmp::DEFAULT_MAX_REPLY)],
        calls in prop::collection::vec(any::<bool>(), 1..10),
    ) {
        let mut bytes = Vec::new();
        let mut lines = VecDeque::new();
        for line in &script {
            let text = line.text();
            // QEMU ends lines with \r\n; the \r counts towards the cap.
            lines.push_back((text.len() + 1, line.clone()));
            bytes.extend_from_slice(text.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend(std::iter::repeat_n(b'{', unfinished.unwrap_or(0)));
        let mut model = Model { lines, unfinished, cap, events: VecDeque::new() };

        let got = session(split(&bytes, &cuts), |path| {
            let mut qmp = Qmp::connect(path, Duration::from_secs(5)).expect("handshake");
            qmp.set_max_reply(cap);
            calls
                .iter()
                .map(|&execute| {
                    if execute {
                        outcome(qmp.execute("query-status", None))
                    } else {
                        match qmp.next_event(Duration::from_secs(5)) {
                            Ok(Some(event)) => format!("event {}", event["event"].as_str().unwrap_or("?")),
                            Ok(None) => "no event".into(),
                            Err(e) => outcome::<Value>(Err(e)),
                        }
                    }
                })
                .collect::<Vec<_>>()
        });
        let mut id = 1;
        let want: Vec<String> = calls
            .iter()
            .map(|&execute| {
                if execute {
                    id += 1;
                    model.execute(id)
                } else {
                    model.next_event()
                }
            })
            .collect();
        prop_assert_eq!(got, want, "script {:?}", script);
    }
}
