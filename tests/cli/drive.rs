//! Driving a running VM: the serial console (pipe, terminal, log) and the
//! `qmp` verbs, on real QEMU (TCG) with the test guest or a diskless SeaBIOS.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use nix::sys::termios::{LocalFlags, Termios, tcgetattr};
use serde_json::Value;

use crate::guest::{POWEROFF, READY, bios_config, guest, guest_config, have_qemu};
use crate::harness::{Stopper, Test, mode, trust};

/// Stops the VM when the test ends, however it ends, so a failed assertion
/// leaves no QEMU behind.
/// Add `config` as `name` and start it; with `ready`, wait for the test
/// guest's READY line on its console.
pub(crate) fn start(t: &mut Test, name: &str, config: &str, ready: bool) -> Stopper {
    let file = format!("{name}.ron");
    t.file(&file, config)
        .args(["add", &file])
        .args(trust(config))
        .run();
    let guard = t.stopper(name);
    if ready {
        let wait = format!("console:^{READY}$");
        t.args(["start", name, "--wait-for", &wait, "--timeout", "120"])
            .run();
    } else {
        t.args(["start", name]).run();
    }
    guard
}

/// The test guest on the i440fx machine, whose ACPI PCI hotplug the guest
/// kernel answers.
fn pc_guest_config(name: &str) -> String {
    let g = guest();
    format!(
        "(\n    name: \"{name}\",\n    accel: Tcg,\n    machine: \"pc\",\n    memory: \"256M\",\n    boot: (\n        kernel: \"{}\",\n        initrd: \"{}\",\n        append: \"console=ttyS0 panic=-1\",\n    ),\n)\n",
        g.kernel.display(),
        g.initrd.display()
    )
}

/// A word no earlier output can contain.
pub(crate) fn token() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    u64::try_from(nanos % 1_000_000_000).expect("below 10^9")
}

/// The lines of console output, without their `\r`.
pub(crate) fn lines(text: &str) -> Vec<&str> {
    text.lines().map(|l| l.trim_end_matches('\r')).collect()
}

fn has_line(text: &str, line: &str) -> bool {
    lines(text).contains(&line)
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for a spawned maqet to exit; kill it and fail after `timeout`.
fn wait_child(child: &mut Child, what: &str, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True once a client is connected to one of the VM's chardevs
/// (`maqet-console`, `maqet-events`): QEMU drops the `disconnected:` prefix
/// of a server socket's filename while a client is attached.
fn client_attached(t: &mut Test, vm: &str, label: &str) -> bool {
    let chardevs = t.args(["qmp", vm, "query-chardev"]).run().json();
    let chardev = chardevs
        .as_array()
        .expect("query-chardev returns an array")
        .iter()
        .find(|c| c["label"] == label)
        .unwrap_or_else(|| panic!("no chardev {label}: {chardevs}"))
        .clone();
    !chardev["filename"]
        .as_str()
        .expect("a filename")
        .starts_with("disconnected:")
}

/// The lines a child prints on stdout, as they come.
fn line_reader(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_event(rx: &Receiver<String>) -> Value {
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("an event within 60 s");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
}

#[test]
fn a_piped_console_session_types_into_the_guest_and_prints_its_answer() {
    if !have_qemu("a_piped_console_session_types_into_the_guest_and_prints_its_answer") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-pipe", &guest_config("drv-pipe"), true);
    let word = format!("hello-{}", token());
    // The guest's terminal echoes the command line, then the shell answers;
    // a serial terminal ends lines with \r\n.
    let answer = format!("\r\n{word}\r\n");
    let (status, out, _) = crate::harness::type_until(
        t.command(["console", "drv-pipe"]),
        &format!("echo {word}\n"),
        &answer,
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(0), "the session ends once stdin has");
    assert!(out.contains(&format!("echo {word}\r\n")), "{out:?}");
    assert!(
        out.contains(&answer),
        "the answer is a line of its own: {out:?}"
    );
    // The log has the session too, and what the guest printed before it.
    let log = t.args(["console", "drv-pipe", "--log"]).run();
    assert!(has_line(&log.stdout, READY), "{}", log.stdout);
    assert!(has_line(&log.stdout, &word), "{}", log.stdout);
}

#[test]
fn a_second_console_session_is_refused_while_one_is_attached() {
    if !have_qemu("a_second_console_session_is_refused_while_one_is_attached") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-single", &bios_config("drv-single"), false);
    let mut first = t
        .command(["console", "drv-single"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the first session");
    wait_until(
        "the first session to attach",
        Duration::from_secs(30),
        || client_attached(&mut t, "drv-single", "maqet-console"),
    );
    t.args(["console", "drv-single"])
        .stdin("echo intruder\n")
        .status(4)
        .stderr_contains(&format!(
            "the console of `drv-single` is already attached (maqet pid {})",
            first.id()
        ))
        .stderr_contains("maqet console VM --log")
        .run();
    // Closing stdin ends the first session (after its linger) with success.
    drop(first.stdin.take());
    let status = wait_child(&mut first, "the first session", Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    // And the console is free again.
    t.args(["console", "drv-single"]).stdin("").run();
}

#[test]
fn the_console_log_outlives_the_vm_and_follow_ends_when_it_stops() {
    if !have_qemu("the_console_log_outlives_the_vm_and_follow_ends_when_it_stops") {
        return;
    }
    let mut t = Test::new();
    t.file("never.ron", &bios_config("drv-never"))
        .args(["add", "never.ron"])
        .run();
    t.args(["console", "drv-never", "--log"])
        .status(3)
        .stderr_contains("`drv-never` has no console log yet")
        .run();
    t.args(["console", "drv-never", "--follow"])
        .status(2)
        .stderr_contains("--follow goes with --log")
        .run();

    let _stop = start(&mut t, "drv-log", &guest_config("drv-log"), true);
    let mut follower = t
        .command(["console", "drv-log", "--log", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the follower");
    t.args(["stop", "drv-log", "--timeout", "60"])
        .stdout("stopped drv-log: the guest powered off\n")
        .run();
    let status = wait_child(&mut follower, "--log --follow", Duration::from_secs(30));
    let out = follower.wait_with_output().expect("the follower's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let followed = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(has_line(&followed, READY), "{followed}");
    assert!(has_line(&followed, POWEROFF), "{followed}");

    // After the stop: the whole log, and --follow just prints it.
    let log = t.args(["console", "drv-log", "--log"]).run();
    assert_eq!(log.stdout, followed, "the follower saw everything");
    t.args(["console", "drv-log", "--log", "--follow"])
        .stdout(&followed)
        .run();
}

#[test]
fn the_console_log_is_rotated_at_start_once_past_8_mib() {
    const LIMIT: usize = 8 * 1024 * 1024;
    if !have_qemu("the_console_log_is_rotated_at_start_once_past_8_mib") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("drv-rotate"));
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    let _stop = t.stopper("drv-rotate");
    t.args(["start", "drv-rotate"]).run();
    t.args(["stop", "--force", "drv-rotate"]).run();
    let log = t.runtime_dir().join(&id).join("console.log");
    let rotated = t.runtime_dir().join(&id).join("console.log.1");

    // Exactly 8 MiB is kept.
    std::fs::write(&log, "x".repeat(LIMIT)).expect("fill console.log");
    t.args(["start", "drv-rotate"]).run();
    t.args(["stop", "--force", "drv-rotate"]).run();
    assert!(!rotated.exists(), "not rotated at 8 MiB");
    let kept = std::fs::metadata(&log).expect("console.log").len();
    assert!(kept >= LIMIT as u64, "appended to: {kept}");

    // One byte more and the next start moves it aside.
    std::fs::write(&log, "y".repeat(LIMIT + 1)).expect("fill console.log");
    t.args(["start", "drv-rotate"]).run();
    assert_eq!(
        std::fs::metadata(&rotated).expect("console.log.1").len(),
        LIMIT as u64 + 1
    );
    assert!(std::fs::metadata(&log).expect("console.log").len() < 4096);
    assert_eq!(mode(&rotated), 0o600);
    assert_eq!(mode(&log), 0o600);
    t.args(["stop", "--force", "drv-rotate"]).run();
}

/// Termios of a terminal, as `stty -a` would show it.
fn termios_of(fd: impl AsFd) -> Termios {
    tcgetattr(fd).expect("tcgetattr")
}

/// Read what the terminal shows into `seen` until `needle` appears.
fn read_until(master: &OwnedFd, seen: &mut Vec<u8>, needle: &str, timeout: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the terminal never showed {needle:?}; it showed {:?}",
            String::from_utf8_lossy(seen)
        );
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, PollTimeout::from(ms)).expect("poll the pty") == 0 {
            continue;
        }
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("read the pty: {e}"),
        }
    }
}

fn cloexec(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // Children of other tests must not hold this terminal open.
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("FD_CLOEXEC");
}

/// `maqet console VM` on a fresh pty; returns the child once it has put the
/// terminal in raw mode.
fn attach_on_pty(t: &Test, vm: &str, slave: &OwnedFd, before: &Termios) -> Child {
    let io = || Stdio::from(slave.try_clone().expect("dup the pty"));
    let child = t
        .command(["console", vm])
        .stdin(io())
        .stdout(io())
        .stderr(io())
        .spawn()
        .expect("spawn console");
    wait_until("raw mode", Duration::from_secs(30), || {
        termios_of(slave) != *before
    });
    let raw = termios_of(slave);
    assert!(
        !raw.local_flags.contains(LocalFlags::ICANON),
        "raw: no lines"
    );
    assert!(!raw.local_flags.contains(LocalFlags::ECHO), "raw: no echo");
    assert!(
        !raw.local_flags.contains(LocalFlags::ISIG),
        "raw: no signals"
    );
    child
}

#[test]
fn detaching_with_ctrl_bracket_restores_the_terminal() {
    if !have_qemu("detaching_with_ctrl_bracket_restores_the_terminal") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-tty", &guest_config("drv-tty"), true);
    let pty = nix::pty::openpty(None, None).expect("openpty");
    cloexec(&pty.master);
    cloexec(&pty.slave);
    let before = termios_of(&pty.slave);
    assert!(
        before.local_flags.contains(LocalFlags::ICANON),
        "a cooked pty"
    );

    let mut child = attach_on_pty(&t, "drv-tty", &pty.slave, &before);
    let mut seen = Vec::new();
    read_until(
        &pty.master,
        &mut seen,
        "connected to the serial console of drv-tty; press Ctrl-] to detach\r\n",
        Duration::from_secs(30),
    );
    // Raw mode: Enter arrives as \r, which the guest's terminal reads as a
    // newline.
    let word = format!("pty-{}", token());
    nix::unistd::write(&pty.master, format!("echo {word}\r").as_bytes()).expect("type");
    read_until(
        &pty.master,
        &mut seen,
        &format!("\n{word}\r\n"),
        Duration::from_secs(60),
    );
    nix::unistd::write(&pty.master, &[0x1d]).expect("press Ctrl-]");
    let status = wait_child(&mut child, "the console session", Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    read_until(
        &pty.master,
        &mut seen,
        "detached\r\n",
        Duration::from_secs(10),
    );
    let after = termios_of(&pty.slave);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
    assert_eq!(after.control_flags, before.control_flags);
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.control_chars, before.control_chars);
    assert_eq!(after, before);

    // A signal ends the session the same way: the terminal comes back.
    let mut child = attach_on_pty(&t, "drv-tty", &pty.slave, &before);
    let pid = i32::try_from(child.id()).expect("a pid");
    assert!(pid > 1, "a real process, not {pid}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the session");
    let status = wait_child(&mut child, "the signalled session", Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(130),
        "a signalled session exits 130 (interrupted)"
    );
    read_until(
        &pty.master,
        &mut seen,
        "interrupted\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(termios_of(&pty.slave), before);
}

/// Wait until SeaBIOS has set its 720x400 text mode (right after start the
/// display is still 640x480), screenshotting to `file`.
fn wait_for_text_mode(t: &mut Test, vm: &str, file: &str) {
    wait_until("SeaBIOS's text mode", Duration::from_secs(60), || {
        t.args(["qmp", "screendump", vm, file]).run();
        std::fs::read(t.path(file)).is_ok_and(|b| b.starts_with(b"P6\n720 400\n255\n"))
    });
}

#[test]
fn screendump_writes_a_ppm_or_png_of_the_display() {
    if !have_qemu("screendump_writes_a_ppm_or_png_of_the_display") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-shot", &bios_config("drv-shot"), false);
    wait_for_text_mode(&mut t, "drv-shot", "warmup.ppm");

    let ppm = t.path("shot.ppm");
    t.args(["qmp", "screendump", "drv-shot", "shot.ppm"])
        .stdout(&format!("{}\n", ppm.display()))
        .run();
    let bytes = std::fs::read(&ppm).expect("read shot.ppm");
    let header = b"P6\n720 400\n255\n";
    assert_eq!(&bytes[..header.len()], header);
    assert_eq!(bytes.len(), header.len() + 720 * 400 * 3);
    assert_eq!(mode(&ppm), 0o600);

    // A relative path is the user's, not QEMU's working directory.
    let png = t.path("shots/shot.png");
    std::fs::create_dir(t.path("shots")).expect("mkdir shots");
    let out = t
        .cwd("shots")
        .args(["--json", "qmp", "screendump", "drv-shot", "shot.png"])
        .run();
    assert_eq!(out.json()["file"], png.to_str().expect("UTF-8"));
    let bytes = std::fs::read(&png).expect("read shot.png");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    assert_eq!(&bytes[16..20], 720u32.to_be_bytes());
    assert_eq!(&bytes[20..24], 400u32.to_be_bytes());
    assert_eq!(mode(&png), 0o600);

    // --format wins over the extension.
    let forced = format!("{}\n", t.path("forced.png").display());
    t.args([
        "qmp",
        "screendump",
        "drv-shot",
        "forced.png",
        "--format",
        "ppm",
    ])
    .stdout(&forced)
    .run();
    assert!(
        std::fs::read(t.path("forced.png"))
            .expect("read")
            .starts_with(b"P6\n")
    );
    t.args(["qmp", "screendump", "drv-shot", "x.gif", "--format", "gif"])
        .status(2)
        .stderr_contains("`gif` is not a format: use ppm or png")
        .run();

    let target = format!("/etc/maqet-shot-{}.ppm", token());
    t.args(["qmp", "screendump", "drv-shot", &target])
        .status(4)
        .stderr_contains(&format!("path refused: `{target}` resolves to `{target}`"))
        .stderr_contains("inside the system directory /etc")
        .run();
    assert!(
        !std::path::Path::new(&target).exists(),
        "QEMU wrote nothing"
    );
    let missing = format!("{} is not a directory", t.path("missing").display());
    t.args(["qmp", "screendump", "drv-shot", "missing/shot.ppm"])
        .status(3)
        .stderr_contains(&missing)
        .run();

    // The path is checked before maqet looks for the VM: a stopped VM gets
    // the same refusal, not "not running".
    t.args(["stop", "--force", "drv-shot"]).run();
    t.args(["qmp", "screendump", "drv-shot", &target])
        .status(4)
        .stderr_contains("inside the system directory /etc")
        .run();
}

#[test]
fn keys_and_text_are_checked_before_anything_is_sent() {
    if !have_qemu("keys_and_text_are_checked_before_anything_is_sent") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-keys", &bios_config("drv-keys"), false);
    t.args(["qmp", "keys", "drv-keys", "ctrl", "alt", "f2"])
        .stdout("")
        .run();
    // Case and the usual aliases.
    t.args(["qmp", "keys", "drv-keys", "Shift", "Enter"]).run();
    let out = t
        .args(["--json", "qmp", "keys", "drv-keys", "ctrl", "alt", "delete"])
        .run();
    assert_eq!(out.json(), serde_json::json!({"sent": 3}));
    t.args(["qmp", "keys", "drv-keys", "ctrl", "ctlr"])
        .status(2)
        .stderr_contains("`ctlr` is not a QEMU key name")
        .stderr_contains("did you mean ctrl, ctrl_r?")
        .run();
    t.args(["qmp", "keys", "drv-keys"])
        .status(2)
        .stderr_contains("give at least one key")
        .run();

    t.args(["qmp", "type", "drv-keys", "hello World!"])
        .stdout("")
        .run();
    let out = t
        .args(["--json", "qmp", "type", "drv-keys", "ls -l\n"])
        .run();
    assert_eq!(out.json(), serde_json::json!({"sent": 6}));
    t.args(["qmp", "type", "drv-keys", "café"])
        .status(2)
        .stderr_contains("character 4 ('é', U+00E9) cannot be typed on a US keyboard")
        .run();

    // Checked before maqet even looks for the VM: with it stopped, a bad
    // key is still a usage error (exit 2), not "not running" (exit 1).
    t.args(["stop", "--force", "drv-keys"]).run();
    t.args(["qmp", "type", "drv-keys", "é"]).status(2).run();
    t.args(["qmp", "keys", "drv-keys", "ctlr"]).status(2).run();
    t.args(["qmp", "keys", "drv-keys", "ctrl"])
        .status(1)
        .stderr_contains("VM `drv-keys` is not running (stopped)")
        .run();
}

#[test]
fn pause_and_resume_show_in_status() {
    if !have_qemu("pause_and_resume_show_in_status") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-pause", &bios_config("drv-pause"), false);
    t.args(["qmp", "pause", "drv-pause"])
        .stdout("drv-pause: paused\n")
        .run();
    t.args(["status", "drv-pause"])
        .stdout_contains("state:    paused\n")
        .stdout_contains("qmp:      paused\n")
        .run();
    let status = t.args(["--json", "status", "drv-pause"]).run().json();
    assert_eq!(status["state"], "paused");
    assert_eq!(status["run_state"], "paused");
    // Pausing a paused VM is not an error.
    let out = t.args(["--json", "qmp", "pause", "drv-pause"]).run();
    assert_eq!(
        out.json(),
        serde_json::json!({"name": "drv-pause", "run_state": "paused"})
    );
    t.args(["qmp", "resume", "drv-pause"])
        .stdout("drv-pause: running\n")
        .run();
    let status = t.args(["--json", "status", "drv-pause"]).run().json();
    assert_eq!(status["state"], "running");
    assert_eq!(status["run_state"], "running");
}

/// The qdev ids of every PCI device, bridges included.
pub(crate) fn pci_ids(t: &mut Test, vm: &str) -> Vec<String> {
    fn walk(bus: &Value, out: &mut Vec<String>) {
        for dev in bus["devices"].as_array().into_iter().flatten() {
            if let Some(id) = dev["qdev_id"].as_str()
                && !id.is_empty()
            {
                out.push(id.to_owned());
            }
            if !dev["pci_bridge"].is_null() {
                walk(&dev["pci_bridge"], out);
            }
        }
    }
    let buses = t.args(["qmp", vm, "query-pci"]).run().json();
    let mut ids = Vec::new();
    for bus in buses.as_array().expect("query-pci returns an array") {
        walk(bus, &mut ids);
    }
    ids
}

#[test]
fn a_device_is_hot_plugged_and_unplugged_in_a_cooperating_guest() {
    if !have_qemu("a_device_is_hot_plugged_and_unplugged_in_a_cooperating_guest") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-hotplug", &pc_guest_config("drv-hotplug"), true);
    assert!(!pci_ids(&mut t, "drv-hotplug").contains(&"rng0".to_owned()));
    t.args([
        "qmp",
        "device-add",
        "drv-hotplug",
        "virtio-rng-pci",
        "--id",
        "rng0",
    ])
    .stdout("added rng0\n")
    .run();
    assert!(pci_ids(&mut t, "drv-hotplug").contains(&"rng0".to_owned()));
    t.args([
        "qmp",
        "device-add",
        "drv-hotplug",
        "virtio-rng-pci",
        "--id",
        "rng0",
    ])
    .status(1)
    .stderr_contains("Duplicate device ID 'rng0'")
    .run();
    t.args([
        "qmp",
        "device-del",
        "drv-hotplug",
        "rng0",
        "--timeout",
        "60",
    ])
    .stdout("removed rng0\n")
    .run();
    assert!(!pci_ids(&mut t, "drv-hotplug").contains(&"rng0".to_owned()));
    t.args(["qmp", "device-del", "drv-hotplug", "rng0"])
        .status(1)
        .stderr_contains("DeviceNotFound: Device 'rng0' not found")
        .run();
    // maqet's own ids are off limits.
    t.args([
        "qmp",
        "device-add",
        "drv-hotplug",
        "virtio-rng-pci",
        "--id",
        "maqet-rng",
    ])
    .status(2)
    .stderr_contains("ids starting with `maqet-` are maqet's own")
    .run();
}

#[test]
fn unplugging_from_a_guest_that_ignores_it_times_out() {
    if !have_qemu("unplugging_from_a_guest_that_ignores_it_times_out") {
        return;
    }
    let mut t = Test::new();
    // SeaBIOS alone never answers the ACPI unplug request.
    let config = "(name: \"drv-stuck\", accel: Tcg, memory: \"64M\", machine: \"pc\")\n";
    let _stop = start(&mut t, "drv-stuck", config, false);
    t.args([
        "qmp",
        "device-add",
        "drv-stuck",
        "virtio-rng-pci",
        "--id",
        "rng0",
    ])
    .stdout("added rng0\n")
    .run();
    t.args(["qmp", "device-del", "drv-stuck", "rng0", "--timeout", "2"])
        .status(5)
        .stderr_contains(
            "timed out after 2 s waiting for the guest of `drv-stuck` to release device `rng0`",
        )
        .run();
    assert!(pci_ids(&mut t, "drv-stuck").contains(&"rng0".to_owned()));
}

#[test]
fn raw_qmp_commands_print_one_json_line() {
    if !have_qemu("raw_qmp_commands_print_one_json_line") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-raw", &bios_config("drv-raw"), false);
    let out = t.args(["qmp", "drv-raw", "query-status"]).run();
    let status = out.json();
    assert_eq!(status["status"], "running");
    assert_eq!(status["running"], true);
    // stdout is a pipe: one compact line.
    let line = out.stdout;
    assert_eq!(line, format!("{status}\n"));
    t.args(["qmp", "command", "drv-raw", "query-status"])
        .stdout(&line)
        .run();

    t.args(["qmp", "drv-raw", "query-bogus"])
        .status(1)
        .stderr_contains("QMP: CommandNotFound: The command query-bogus has not been found")
        .run();
    let err = t
        .args(["--json", "qmp", "drv-raw", "query-bogus"])
        .status(1)
        .run()
        .stderr_json();
    assert_eq!(err["error"]["code"], "maqet::qmp");
    assert_eq!(err["error"]["exit_code"], 1);

    // Concurrent maqet commands queue for the monitor; none times out.
    let children: Vec<Child> = (0..6)
        .map(|_| {
            t.command(["qmp", "drv-raw", "query-status"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn qmp")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for qmp");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), line);
    }

    t.args(["stop", "--force", "drv-raw"]).run();
    t.args(["qmp", "drv-raw", "query-status"])
        .status(1)
        .stderr_contains("VM `drv-raw` is not running (stopped)")
        .stderr_contains("start it with `maqet start drv-raw`")
        .run();
}

/// A raw QMP result is JSON with or without `--json`, so it can be piped to
/// jq. A file name holding a right-to-left override, escape sequences, a
/// C1 control, quotes and a backslash comes back as JSON escapes
/// (`\u202e`): never raw on the terminal, and never in the `\u{202e}` form
/// of human text, which is not JSON.
#[test]
fn raw_qmp_results_stay_json_with_hostile_file_names() {
    if !have_qemu("raw_qmp_results_stay_json_with_hostile_file_names") {
        return;
    }
    let mut t = Test::new();
    let file = "ev\u{202e}gpj\u{1b}[2J\u{9b}\u{7f}\"q\\.img";
    std::fs::write(t.path(file), vec![0u8; 1 << 20]).expect("create the image");
    let written: String = file
        .chars()
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect();
    let config = format!(
        "(name: \"drv-bidi\", accel: Tcg, memory: \"64M\", \
         storage: [Raw(name: \"d\", file: \"./{written}\")])\n"
    );
    let _stop = start(&mut t, "drv-bidi", &config, false);
    let want = t.path(file);
    let want = want.to_str().expect("UTF-8");
    for json in [false, true] {
        // Images go to QEMU by descriptor; the fd set's `opaque` is the path.
        let mut args = vec!["qmp", "drv-bidi", "query-fdsets"];
        if json {
            args.insert(0, "--json");
        }
        let out = t.args(&args).run();
        let files: Vec<Value> = out
            .json()
            .as_array()
            .expect("query-fdsets answers an array")
            .iter()
            .map(|set| set["fds"][0]["opaque"].clone())
            .collect();
        assert_eq!(files, [Value::from(want)], "{args:?}: {}", out.stdout);
        let raw = out
            .stdout
            .chars()
            .find(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c));
        assert_eq!(raw, None, "{args:?}: {}", out.stdout);
        assert!(
            out.stdout
                .contains(r#"ev\u202egpj\u001b[2J\u009b\u007f\"q\\.img"#),
            "{args:?}: {}",
            out.stdout
        );
    }
}

#[test]
fn the_raw_form_refuses_the_deny_list_and_types_arg_values() {
    if !have_qemu("the_raw_form_refuses_the_deny_list_and_types_arg_values") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-args", &bios_config("drv-args"), false);
    for command in [
        "quit",
        "human-monitor-command",
        "migrate",
        "dump-guest-memory",
        "screendump",
        "qmp_capabilities",
    ] {
        t.args(["qmp", "drv-args", command])
            .status(4)
            .stderr_contains(&format!(
                "maqet does not send `{command}` through the raw form"
            ))
            .stderr_contains("add --allow-dangerous if you really mean it")
            .run();
    }
    let status = t.args(["--json", "status", "drv-args"]).run().json();
    assert_eq!(status["run_state"], "running", "quit was not sent");
    // With --allow-dangerous it goes to QEMU (which has its own opinion).
    t.args(["qmp", "drv-args", "qmp_capabilities", "--allow-dangerous"])
        .status(1)
        .stderr_contains("Capabilities negotiation is already complete")
        .run();

    // true is a JSON bool; `yes` stays a string, which QEMU refuses.
    t.args([
        "qmp",
        "drv-args",
        "query-blockstats",
        "--arg",
        "query-nodes=true",
    ])
    .stdout("[]\n")
    .run();
    t.args([
        "qmp",
        "drv-args",
        "query-blockstats",
        "--arg",
        "query-nodes=yes",
    ])
    .status(1)
    .stderr_contains("Invalid parameter type for 'query-nodes', expected: boolean")
    .run();
    t.args([
        "qmp",
        "drv-args",
        "query-blockstats",
        "--args-json",
        r#"{"query-nodes": true}"#,
    ])
    .stdout("[]\n")
    .run();
    // [...] is JSON and a number is a number.
    let ret = r#"keys=[{"type": "qcode", "data": "ret"}]"#;
    t.args([
        "qmp",
        "drv-args",
        "send-key",
        "--arg",
        ret,
        "--arg",
        "hold-time=50",
    ])
    .stdout("{}\n")
    .run();
    t.args([
        "qmp",
        "drv-args",
        "send-key",
        "--arg",
        ret,
        "--arg",
        "hold-time=fifty",
    ])
    .status(1)
    .stderr_contains("Invalid parameter type for 'hold-time', expected: integer")
    .run();
    t.args(["qmp", "drv-args", "send-key", "--arg", "keys=[{\"type\""])
        .status(2)
        .stderr_contains("looks like JSON but is not")
        .run();
    t.args([
        "qmp",
        "drv-args",
        "query-blockstats",
        "--arg",
        "query-nodes",
    ])
    .status(2)
    .stderr_contains("`query-nodes` is not KEY=VALUE")
    .run();
    t.args([
        "qmp",
        "drv-args",
        "query-blockstats",
        "--args-json",
        "[true]",
    ])
    .status(2)
    .stderr_contains("--args-json must be a JSON object")
    .run();

    // Refused before maqet looks for the VM: a stopped VM gets the same.
    t.args(["stop", "--force", "drv-args"]).run();
    t.args(["qmp", "drv-args", "quit"]).status(4).run();
}

#[test]
fn every_verb_on_a_vm_that_is_not_running_fails_with_exit_1() {
    let mut t = Test::new();
    t.add_empty("drv-idle");
    t.file("x.img", "");
    for args in [
        vec!["qmp", "drv-idle", "query-status"],
        vec!["qmp", "keys", "drv-idle", "ret"],
        vec!["qmp", "type", "drv-idle", "x"],
        vec!["qmp", "screendump", "drv-idle", "x.ppm"],
        vec!["qmp", "pause", "drv-idle"],
        vec!["qmp", "resume", "drv-idle"],
        vec![
            "qmp",
            "device-add",
            "drv-idle",
            "virtio-rng-pci",
            "--id",
            "r",
        ],
        vec![
            "qmp", "disk-add", "drv-idle", "x.img", "--id", "x", "--format", "raw",
        ],
        vec!["qmp", "device-del", "drv-idle", "r"],
        vec!["qmp", "events", "drv-idle"],
        vec!["console", "drv-idle"],
    ] {
        t.args(args)
            .status(1)
            .stderr_contains("VM `drv-idle` is not running (created)")
            .run();
    }
    t.args(["qmp", "nosuchvm", "query-status"]).status(3).run();
}

#[test]
fn events_follow_prints_stop_and_resume_as_json_lines() {
    if !have_qemu("events_follow_prints_stop_and_resume_as_json_lines") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-events", &bios_config("drv-events"), false);
    let mut follower = t
        .command(["qmp", "events", "drv-events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the follower");
    let lines = line_reader(&mut follower);
    wait_until("the follower to attach", Duration::from_secs(30), || {
        client_attached(&mut t, "drv-events", "maqet-events")
    });
    // A follower never blocks commands: these go through the other monitor.
    t.args(["qmp", "pause", "drv-events"]).run();
    t.args(["qmp", "resume", "drv-events"]).run();
    let stop = next_event(&lines);
    assert_eq!(stop["event"], "STOP", "{stop}");
    assert!(stop["timestamp"]["seconds"].as_u64().is_some(), "{stop}");
    assert!(
        stop["timestamp"]["microseconds"].as_u64().is_some(),
        "{stop}"
    );
    let resume = next_event(&lines);
    assert_eq!(resume["event"], "RESUME", "{resume}");
    assert!(lines.try_recv().is_err(), "nothing else happened");

    // The stream ends with QEMU.
    t.args(["stop", "--force", "drv-events"]).run();
    let status = wait_child(&mut follower, "events --follow", Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let shutdown = next_event(&lines);
    assert_eq!(shutdown["event"], "SHUTDOWN", "{shutdown}");
    assert_eq!(shutdown["data"]["guest"], false);
}

#[test]
fn events_without_follow_waits_for_the_first_matching_event() {
    if !have_qemu("events_without_follow_waits_for_the_first_matching_event") {
        return;
    }
    let mut t = Test::new();
    let _stop = start(&mut t, "drv-wait", &guest_config("drv-wait"), true);
    t.args([
        "qmp",
        "events",
        "drv-wait",
        "--filter",
        "NO_SUCH_EVENT",
        "--timeout",
        "1",
    ])
    .status(5)
    .stderr_contains("timed out after 1 s waiting for an event")
    .run();
    let mut waiter = t
        .command([
            "qmp",
            "events",
            "drv-wait",
            "--filter",
            "SHUTDOWN",
            "--timeout",
            "120",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the waiter");
    wait_until("the waiter to attach", Duration::from_secs(30), || {
        client_attached(&mut t, "drv-wait", "maqet-events")
    });
    // The power button comes first (POWERDOWN); the filter skips it.
    t.args(["stop", "drv-wait", "--timeout", "60"])
        .stdout("stopped drv-wait: the guest powered off\n")
        .run();
    let status = wait_child(
        &mut waiter,
        "events --filter SHUTDOWN",
        Duration::from_secs(30),
    );
    let out = waiter.wait_with_output().expect("the waiter's output");
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(stdout.lines().count(), 1, "one event: {stdout}");
    let event: Value = serde_json::from_str(&stdout).expect("a JSON line");
    assert_eq!(event["event"], "SHUTDOWN");
    assert_eq!(
        event["data"],
        serde_json::json!({"guest": true, "reason": "guest-shutdown"})
    );
}
