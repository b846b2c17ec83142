//! The QMP client's line reader, fed by a fake QEMU over a real socket: a
//! valid greeting, then the fuzz input, then end of stream.
//!
//! Input: byte 0 picks the reply size cap set after connecting, byte 1 which
//! calls follow (`execute` or `next_event`, one bit each), byte 2 how the
//! rest is cut into writes (so lines arrive in pieces), and the rest is what
//! "QEMU" sends.
//!
//! Invariants: nothing panics or hangs; the version is the greeting's; every
//! reply, event and command error the client returns is one whole line of
//! the input (never a fragment of an overlong line, never two lines glued),
//! of the right kind, within the cap, and a reply's id is absent or one the
//! client sent (`maqet::invariants::qmp`, shared with the proptests).

#![no_main]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::OnceLock;
use std::time::Duration;

use camino::Utf8PathBuf;
use libfuzzer_sys::fuzz_target;
use maqet::invariants::qmp::Sent;
use maqet::qmp::Qmp;
use tempfile::TempDir;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

const CAPS: [usize; 6] = [1, 16, 64, 256, 8 * 1024, Qmp::DEFAULT_MAX_REPLY];

/// Bytes per write; 0 writes everything at once.
const PIECES: [usize; 5] = [0, 3, 16, 100, 1000];

struct Server {
    _dir: TempDir,
    path: Utf8PathBuf,
    listener: UnixListener,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        maqet_fuzz::ignore_sigpipe();
        let dir = TempDir::new().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 0700");
        let path = Utf8PathBuf::try_from(dir.path().join("qmp.sock")).expect("UTF-8 temp dir");
        let listener = UnixListener::bind(&path).expect("bind");
        Server {
            _dir: dir,
            path,
            listener,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let server = server();
    let (cap, ops, piece, stream) = match data {
        [cap, ops, piece, stream @ ..] => (
            CAPS[usize::from(*cap) % CAPS.len()],
            *ops,
            PIECES[usize::from(*piece) % PIECES.len()],
            stream.to_vec(),
        ),
        _ => return,
    };
    let peer = {
        let stream = stream.clone();
        std::thread::spawn(move || {
            let (mut conn, _) = server.listener.accept().expect("accept");
            let _ = conn.write_all(format!("{GREETING}\r\n").as_bytes());
            for chunk in stream.chunks(if piece == 0 {
                stream.len().max(1)
            } else {
                piece
            }) {
                if piece != 0 {
                    // Long enough for the client to read what is there.
                    std::thread::sleep(Duration::from_micros(20));
                }
                if conn.write_all(chunk).is_err() {
                    break;
                }
            }
            let _ = conn.shutdown(Shutdown::Write);
            // Take whatever the client sends until it hangs up.
            let _ = std::io::copy(&mut conn, &mut std::io::sink());
            let _ = conn.read(&mut [0]);
        })
    };

    let sent_stream = Sent::new(&stream);
    if let Ok(mut qmp) = Qmp::connect(&server.path, Duration::from_secs(5)) {
        assert_eq!(qmp.version(), (7, 2, 22));
        qmp.set_max_reply(cap);
        let mut sent = 1u64;
        for bit in 0..8 {
            let checked = if ops & (1 << bit) != 0 {
                sent += 1;
                sent_stream.check_execute(&qmp.execute("query-status", None), sent, cap)
            } else {
                sent_stream.check_next_event(&qmp.next_event(Duration::from_millis(1)))
            };
            if let Err(broken) = checked {
                panic!("{broken}");
            }
        }
    }
    peer.join().expect("the fake QEMU");
});
