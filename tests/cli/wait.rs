//! `start --wait-for` and `run --wait-for`: what "ready" means, on real
//! QEMU with the test guest. A port forwarded by QEMU's user network
//! accepts at once, whatever the guest does; these tests pin down that
//! maqet waits for the guest behind it.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::guest::{READY, bios_config, have_qemu, listening_guest_config};
use crate::harness::Test;

/// The error `--json` printed: the last line of stderr (a KVM fallback
/// warning may come before it).
fn error_json(stderr: &str) -> serde_json::Value {
    let line = stderr.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"))
}

#[test]
fn a_bad_condition_is_a_usage_error() {
    let mut t = Test::new();
    t.add_empty("web");
    for (cond, why) in [
        (
            "ssh:22",
            "`ssh:22` is not a condition: use qmp, console:REGEX, port:N, ssh or file:PATH",
        ),
        (
            "sshd",
            "`sshd` is not a condition: use qmp, console:REGEX, port:N, ssh or file:PATH",
        ),
        ("port:0", "`0` is not a port: give 1 to 65535"),
        ("port:ssh", "`ssh` is not a port: give 1 to 65535"),
    ] {
        for command in ["start", "run"] {
            let target = if command == "start" { "web" } else { "--rm" };
            let out = t
                .args(["--json", command, target, "--wait-for", cond])
                .status(2)
                .run();
            let error = &out.stderr_json()["error"];
            assert_eq!(error["code"], "maqet::usage");
            assert_eq!(
                error["message"],
                format!("Error parsing option '--wait-for' with value '{cond}': {why}")
            );
        }
    }
    assert_eq!(t.list().len(), 1, "`run` added nothing");
}

#[test]
fn wait_for_ssh_needs_a_forward_to_guest_port_22() {
    let mut t = Test::new();
    let port = crate::harness::claim_port();
    // A forward, but not to port 22.
    t.file(
        "vm.ron",
        &format!(
            "(name: \"nossh\", accel: Tcg, memory: \"64M\", network: [User(name: \"n\", forwards: [(host: {port}, guest: 2222)])])"
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    let expected = serde_json::json!({
        "code": "maqet::usage",
        "exit_code": 2,
        "message": "`--wait-for ssh` needs a forward to the guest's port 22, and this VM has none",
        "help": "add one to the VM's user network, e.g. `forwards: [(host: 2222, guest: 22)]`, or wait with `port:N` or `console:REGEX`",
    });
    let out = t
        .args(["--json", "start", "nossh", "--wait-for", "ssh"])
        .status(2)
        .run();
    assert_eq!(out.stderr_json()["error"], expected);
    assert!(
        !t.runtime_dir().exists(),
        "refused before anything was made"
    );
    assert_eq!(t.list()[0]["status"], "created");

    // `run` refuses before it adds the VM.
    t.file("other.ron", &bios_config("other"));
    let out = t
        .args(["--json", "run", "other.ron", "--wait-for", "ssh"])
        .status(2)
        .run();
    assert_eq!(out.stderr_json()["error"], expected);
    assert_eq!(t.list().len(), 1);
}

/// The issue this guards against: `start --wait-for port:N` returned in
/// 43 ms on a guest that was not even booted, because slirp accepts on the
/// host side at once.
#[test]
fn a_forward_to_a_guest_that_never_answers_is_not_ready_but_other_ports_only_need_to_accept() {
    let test =
        "a_forward_to_a_guest_that_never_answers_is_not_ready_but_other_ports_only_need_to_accept";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    let port = crate::harness::claim_port();
    // SeaBIOS finds nothing to boot: nothing ever answers behind the forward.
    t.file(
        "vm.ron",
        &format!(
            "(name: \"ported\", accel: Tcg, memory: \"64M\", network: [User(name: \"n\", forwards: [(host: {port}, guest: 22)])])"
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    // Stopped however the test ends: a failed assertion leaks no QEMU.
    let _stop = t.stopper("ported");
    let out = t
        .args([
            "--json",
            "start",
            "ported",
            "--wait-for",
            &format!("port:{port}"),
            "--timeout",
            "3",
        ])
        .status(5)
        .run();
    let error = &out.stderr_json()["error"];
    assert_eq!(error["code"], "maqet::timeout");
    assert_eq!(
        error["message"],
        format!(
            "timed out after 3 s waiting for the guest to answer on port 22 (forwarded from 127.0.0.1:{port}); \
             last seen: no answer from the guest yet: QEMU is still trying to reach guest port 22"
        )
    );
    assert_eq!(t.list()[0]["status"], "running", "the VM itself started");
    t.args(["stop", "--force", "ported"]).run();

    // A port that is not one of the VM's forwards only has to accept.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let other = listener.local_addr().expect("address").port();
    t.args(["start", "ported", "--wait-for", &format!("port:{other}")])
        .stdout_any()
        .run();
    t.args(["stop", "--force", "ported"]).run();
    drop(listener);
    t.args([
        "start",
        "ported",
        "--wait-for",
        "file:never-there",
        "--timeout",
        "1",
    ])
    .status(5)
    .stderr_contains("timed out after 1 s waiting for")
    .stderr_contains("never-there to exist")
    .run();
    assert_eq!(t.list()[0]["status"], "running");
    t.args(["stop", "--force", "ported"]).run();
}

/// Two guests boot side by side, neither listening: once up, each refuses
/// the forwarded connection, which slirp passes on by closing the host side.
#[test]
fn a_guest_without_a_listener_times_out_and_keeps_running() {
    if !have_qemu("a_guest_without_a_listener_times_out_and_keeps_running") {
        return;
    }
    let mut t = Test::new();
    let (port_a, port_b) = (crate::harness::claim_port(), crate::harness::claim_port());
    for (name, port) in [("deaf-port", port_a), ("deaf-ssh", port_b)] {
        t.file(
            &format!("{name}.ron"),
            &listening_guest_config(name, &[(port, 22)], &[]),
        );
        t.args(["add", &format!("{name}.ron")]).stdout_any().run();
    }
    let _stop = [t.stopper("deaf-port"), t.stopper("deaf-ssh")];
    // Long enough for both to boot even on a busy host.
    let timeout = 20;
    let started = Instant::now();
    let children: Vec<_> = [
        ("deaf-port", format!("port:{port_a}")),
        ("deaf-ssh", "ssh".into()),
    ]
    .into_iter()
    .map(|(name, cond)| {
        t.command([
            "--json",
            "start",
            name,
            "--wait-for",
            &cond,
            "--timeout",
            &timeout.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn maqet")
    })
    .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for maqet"))
        .collect();
    assert!(started.elapsed() >= Duration::from_secs(timeout));
    let closed = "the guest side closed the connection: nothing listens on guest port 22";
    for (out, what) in outs.iter().zip([
        format!("the guest to answer on port 22 (forwarded from 127.0.0.1:{port_a})"),
        format!("an SSH banner from guest port 22 (forwarded from 127.0.0.1:{port_b})"),
    ]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            error_json(&stderr)["error"]["message"],
            format!("timed out after {timeout} s waiting for {what}; last seen: {closed}")
        );
    }
    for vm in t.list() {
        assert_eq!(vm["status"], "running", "{}", vm["name"]);
        let name = vm["name"].as_str().expect("a name").to_owned();
        let log = t.args(["console", &name, "--log"]).run().stdout;
        assert!(log.contains(READY), "{name} booted:\n{log}");
        t.args(["stop", "--force", &name]).run();
    }
}

#[test]
fn ssh_and_a_silent_port_are_ready_once_the_guest_listens() {
    if !have_qemu("ssh_and_a_silent_port_are_ready_once_the_guest_listens") {
        return;
    }
    let mut t = Test::new();
    let (ssh, web) = (crate::harness::claim_port(), crate::harness::claim_port());
    t.file(
        "vm.ron",
        &listening_guest_config(
            "listener",
            &[(ssh, 22), (web, 80)],
            &["22:SSH-2.0-maqet-test", "80:"],
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    let _stop = t.stopper("listener");

    let out = t
        .args(["start", "listener", "--wait-for", "ssh", "--timeout", "120"])
        .run();
    assert!(
        out.stdout.starts_with("started listener (pid "),
        "{}",
        out.stdout
    );
    let stream = TcpStream::connect(("127.0.0.1", ssh)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut banner = String::new();
    BufReader::new(stream)
        .read_line(&mut banner)
        .expect("the banner");
    assert_eq!(banner, "SSH-2.0-maqet-test\r\n");
    t.args(["stop", "--force", "listener"]).run();

    // The guest on port 80 takes the connection and says nothing: only
    // QEMU can tell that from a guest that is still booting.
    t.args([
        "start",
        "listener",
        "--wait-for",
        &format!("port:{web}"),
        "--timeout",
        "120",
    ])
    .stdout_any()
    .run();
    let mut stream = TcpStream::connect(("127.0.0.1", web)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let silent = stream.read(&mut [0u8; 16]);
    assert!(
        silent
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::WouldBlock),
        "the connection stays open and silent: {silent:?}"
    );
    t.args(["stop", "--force", "listener"]).run();
}

/// `maqet run` without a config forwards a free port to the guest's 22, so
/// `--wait-for ssh` works there; its guest (SeaBIOS) never answers.
#[test]
fn run_waits_for_ssh_on_the_default_vm() {
    if !have_qemu("run_waits_for_ssh_on_the_default_vm") {
        return;
    }
    let mut t = Test::new();
    let _stop = t.stopper("dflt");
    let out = t
        .args([
            "--json",
            "run",
            "--name",
            "dflt",
            "--wait-for",
            "ssh",
            "--timeout",
            "3",
        ])
        .kvm_fallback_ok()
        .status(5)
        .run();
    let info = t.args(["--json", "info", "dflt"]).run().json();
    let port = &info["config"]["network"][0]["forwards"][0]["host"];
    assert_eq!(
        error_json(&out.stderr)["error"]["message"],
        format!(
            "timed out after 3 s waiting for an SSH banner from guest port 22 (forwarded from 127.0.0.1:{port}); \
             last seen: no answer from the guest yet: QEMU is still trying to reach guest port 22"
        )
    );
    assert_eq!(t.list()[0]["status"], "running");
    t.args(["stop", "--force", "dflt"]).run();
}
