use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::*;
use crate::config::{Forward, Port, UserNetwork};

fn parse(text: &str) -> std::result::Result<WaitFor, String> {
    text.parse()
}

#[test]
fn conditions_parse_and_bad_ones_say_what_is_allowed() {
    assert!(matches!(parse("ssh"), Ok(WaitFor::Ssh)));
    assert!(matches!(parse("qmp"), Ok(WaitFor::Qmp)));
    assert!(matches!(parse("port:2222"), Ok(WaitFor::Port(2222))));
    for bad in ["ssh:22", "sshd", "qmp:x", "console:", "file:", ""] {
        assert_eq!(
            parse(bad).unwrap_err(),
            format!("`{bad}` is not a condition: use qmp, console:REGEX, port:N, ssh or file:PATH")
        );
    }
    for bad in ["port:", "port:0", "port:65536", "port:ssh"] {
        let arg = bad.trim_start_matches("port:");
        assert_eq!(
            parse(bad).unwrap_err(),
            format!("`{arg}` is not a port: give 1 to 65535")
        );
    }
}

fn forward(host: u16, guest: u16, bind: Ipv4Addr, protocol: Protocol) -> Forward {
    Forward {
        host: Port(host),
        guest: Port(guest),
        protocol,
        bind,
    }
}

fn config(forwards: Vec<Forward>) -> VmConfig {
    VmConfig {
        network: vec![Network::User(UserNetwork {
            name: "net0".parse().unwrap(),
            model: Default::default(),
            mac: None,
            forwards,
        })],
        ..VmConfig::default()
    }
}

#[test]
fn ports_resolve_to_the_forwards_that_reach_the_guest() {
    let vm = config(vec![
        forward(2222, 22, Ipv4Addr::UNSPECIFIED, Protocol::Tcp),
        forward(8080, 80, Ipv4Addr::new(10, 1, 2, 3), Protocol::Tcp),
        forward(5353, 53, Ipv4Addr::LOCALHOST, Protocol::Udp),
    ]);
    let answers = |wait_for: WaitFor| match Condition::resolve(&wait_for, &vm).unwrap() {
        Condition::Answers(f) => Some(f),
        Condition::Accepts(addr) => {
            assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
            None
        }
        other => panic!("{other:?}"),
    };
    // A forward bound to every address is reached on 127.0.0.1.
    let ssh = Forwarded {
        addr: "127.0.0.1:2222".parse().unwrap(),
        guest: 22,
        ssh: true,
    };
    assert_eq!(answers(WaitFor::Ssh), Some(ssh.clone()));
    assert_eq!(
        answers(WaitFor::Port(2222)),
        Some(Forwarded { ssh: false, ..ssh })
    );
    assert_eq!(
        answers(WaitFor::Port(8080)),
        Some(Forwarded {
            addr: "10.1.2.3:8080".parse().unwrap(),
            guest: 80,
            ssh: false,
        })
    );
    // A UDP forward, or no forward: the port only has to accept.
    assert_eq!(answers(WaitFor::Port(5353)), None);
    assert_eq!(answers(WaitFor::Port(9)), None);
}

#[test]
fn ssh_without_a_forward_to_port_22_is_a_usage_error() {
    for vm in [
        VmConfig::default(),
        config(vec![forward(
            2222,
            2222,
            Ipv4Addr::LOCALHOST,
            Protocol::Tcp,
        )]),
        config(vec![forward(2222, 22, Ipv4Addr::LOCALHOST, Protocol::Udp)]),
    ] {
        let err = Condition::resolve(&WaitFor::Ssh, &vm).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        assert_eq!(
            err.to_string(),
            "`--wait-for ssh` needs a forward to the guest's port 22, and this VM has none"
        );
    }
}

/// `info usernet` of QEMU 7.2: a silent listener on guest port 80 took a
/// connection; one to port 22 waits for a guest that is still booting.
const USERNET: &str = "Hub -1 (maqet-net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[ESTABLISHED]   19       127.0.0.1 23480       10.0.2.15    80     0     0\r\n  TCP[SYN_SENT]      20       127.0.0.1 23456       10.0.2.15    22     0     0\r\n  TCP[HOST_FORWARD]  15       127.0.0.1 23456       10.0.2.15    22     0     0\r\n  TCP[HOST_FORWARD]  14       127.0.0.1 23480       10.0.2.15    80     0     0\r\n";

#[test]
fn usernet_tells_which_connections_the_guest_took() {
    let at = |addr: &str| addr.parse::<SocketAddr>().unwrap();
    assert!(established(USERNET, at("127.0.0.1:23480"), 80));
    assert!(!established(USERNET, at("127.0.0.1:23456"), 22));
    assert!(!established(USERNET, at("10.1.2.3:23480"), 80));
    assert!(!established(USERNET, at("127.0.0.1:23480"), 81));
    assert!(!established("", at("127.0.0.1:23480"), 80));
}

#[test]
fn banner_lines_find_the_ssh_line_and_note_the_others() {
    let mut seen = None;
    let mut pending = b"220 mail ready\r\nSSH-2.0-Open".to_vec();
    assert!(!banner_lines(&mut pending, &mut seen, 22));
    assert_eq!(
        seen.as_deref(),
        Some("guest port 22 sent `220 mail ready`, not an SSH banner")
    );
    assert_eq!(pending, b"SSH-2.0-Open");
    pending.extend_from_slice(b"SSH_9.2\r\n");
    assert!(banner_lines(&mut pending, &mut seen, 22));
    // No SSH line is longer than 255 bytes: a longer one is not a banner.
    let mut pending = vec![b'x'; 300];
    assert!(!banner_lines(&mut pending, &mut seen, 22));
    assert!(pending.is_empty());
    assert!(seen.is_some_and(|s| s.starts_with("guest port 22 sent `xxxx")));
}

/// A stand-in for slirp's side of a forward: accepts on 127.0.0.1 and
/// does `serve` with each connection, keeping it open if `serve` gives it
/// back, until dropped.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn new(
        serve: impl Fn(std::net::TcpStream) -> Option<std::net::TcpStream> + Send + 'static,
    ) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut open = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            stream.set_nonblocking(false).unwrap();
                            open.extend(serve(stream));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Server {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn forward(&self, ssh: bool) -> Forwarded {
        Forwarded {
            addr: self.addr,
            guest: 22,
            ssh,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Poll like `start` does for up to `time`: whether the probe was met.
fn watch(
    probe: &mut Probe,
    fwd: &Forwarded,
    time: Duration,
    ask: &mut dyn FnMut() -> std::result::Result<bool, String>,
) -> bool {
    let deadline = Instant::now() + time;
    while Instant::now() < deadline {
        if probe.poll(fwd, ask) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn never_asked() -> std::result::Result<bool, String> {
    panic!("QEMU was asked, but the connection already said enough")
}

#[test]
fn a_connection_the_guest_side_closes_is_never_ready() {
    let server = Server::new(|_| None);
    for ssh in [false, true] {
        let mut probe = Probe::new();
        assert!(!watch(
            &mut probe,
            &server.forward(ssh),
            Duration::from_millis(600),
            &mut never_asked
        ));
        assert_eq!(
            probe.seen.as_deref(),
            Some("the guest side closed the connection: nothing listens on guest port 22")
        );
    }
    // It tried again after each close, a pause apart.
    let tries = server.accepted.load(Ordering::Relaxed);
    assert!((3..=8).contains(&tries), "{tries} connections");
}

#[test]
fn any_data_makes_a_forwarded_port_ready_but_only_a_banner_makes_ssh_ready() {
    let server = Server::new(|mut s| {
        let _ = s.write_all(b"220 hello\r\n");
        Some(s)
    });
    let mut probe = Probe::new();
    assert!(watch(
        &mut probe,
        &server.forward(false),
        Duration::from_secs(5),
        &mut never_asked
    ));
    let mut probe = Probe::new();
    assert!(!watch(
        &mut probe,
        &server.forward(true),
        Duration::from_millis(300),
        &mut || Ok(true)
    ));
    assert_eq!(
        probe.seen.as_deref(),
        Some("guest port 22 sent `220 hello`, not an SSH banner")
    );

    let server = Server::new(|mut s| {
        let _ = s.write_all(b"SSH-2.0-maqet-test\r\n");
        Some(s)
    });
    let mut probe = Probe::new();
    assert!(watch(
        &mut probe,
        &server.forward(true),
        Duration::from_secs(5),
        &mut never_asked
    ));
}

#[test]
fn a_silent_connection_is_ready_only_once_qemu_says_the_guest_took_it() {
    let server = Server::new(Some);
    let fwd = server.forward(false);

    // slirp still sends SYNs to a guest that does not answer.
    let mut probe = Probe::new();
    assert!(!watch(
        &mut probe,
        &fwd,
        Duration::from_millis(1500),
        &mut || Ok(false)
    ));
    assert_eq!(
        probe.seen.as_deref(),
        Some("no answer from the guest yet: QEMU is still trying to reach guest port 22")
    );
    assert!(
        server.accepted.load(Ordering::Relaxed) >= 2,
        "a connection the guest did not take for a second is replaced"
    );

    let mut probe = Probe::new();
    assert!(watch(&mut probe, &fwd, Duration::from_secs(5), &mut || Ok(
        true
    )));

    // For ssh, taken but silent is not enough.
    let mut probe = Probe::new();
    assert!(!watch(
        &mut probe,
        &server.forward(true),
        Duration::from_millis(500),
        &mut || Ok(true)
    ));
    assert_eq!(probe.seen.as_deref(), Some("connected, no SSH banner yet"));

    let mut probe = Probe::new();
    assert!(!watch(
        &mut probe,
        &fwd,
        Duration::from_millis(500),
        &mut || Err("QMP: timed out waiting for the greeting".into())
    ));
    assert_eq!(
        probe.seen.as_deref(),
        Some(
            "connected, but QEMU did not say whether the guest accepted: QMP: timed out waiting for the greeting"
        )
    );
}

#[test]
fn a_port_nobody_listens_on_says_so() {
    let addr = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap()
    };
    let mut probe = Probe::new();
    let fwd = Forwarded {
        addr,
        guest: 22,
        ssh: true,
    };
    assert!(!probe.poll(&fwd, &mut never_asked));
    assert_eq!(
        probe.seen,
        Some(format!("nothing accepts connections on {addr}"))
    );
}
