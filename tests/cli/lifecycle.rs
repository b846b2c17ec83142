//! start, stop, status, inspect on real QEMU (TCG), and the crash, hangup
//! and pid-reuse cases the liveness check exists for.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::guest::{POWEROFF, READY, bios_config, guest_config, have_qemu};
use crate::harness::{Test, in_path, mode, tree, trust};

/// The runtime directory of the only VM started in `t`.
fn vm_dir(t: &Test, id: &str) -> PathBuf {
    t.runtime_dir().join(id)
}

fn add(t: &mut Test, file: &str, config: &str) -> String {
    t.file(file, config);
    let out = t.args(["add", file]).args(trust(config)).run();
    out.stdout.trim().to_owned()
}

fn pid_of(t: &mut Test, vm: &str) -> i32 {
    let out = t.args(["--json", "status", vm]).run();
    out.json()["pid"].as_i64().expect("a running VM has a pid") as i32
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; a zombie would still "exist", so also look
    // at its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(pid: i32) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
}

#[test]
fn a_diskless_vm_starts_reports_running_and_stops() {
    if !have_qemu("a_diskless_vm_starts_reports_running_and_stops") {
        return;
    }
    let mut t = Test::new();
    let id = add(&mut t, "vm.ron", &bios_config("tiny"));
    let out = t.args(["start", "tiny"]).run();
    let pid = pid_of(&mut t, "tiny");
    assert_eq!(out.stdout, format!("started tiny (pid {pid})\n"));
    assert!(alive(pid));

    let ls = t.list();
    assert_eq!(ls[0]["status"], "running");
    let status = t.args(["--json", "status", "tiny"]).run().json();
    assert_eq!(status["state"], "running");
    assert_eq!(status["run_state"], "running");
    assert_eq!(status["accel"], "tcg");

    let inspect = t.args(["--json", "inspect", "tiny"]).run().json();
    assert_eq!(inspect["query_kvm"]["enabled"], false);
    assert_eq!(
        inspect["argv"][0],
        in_path("qemu-system-x86_64").to_str().expect("UTF-8")
    );
    assert!(inspect["rss_kib"].as_u64().is_some_and(|k| k > 1024));

    t.args(["stop", "--force", "tiny"])
        .stdout("stopped tiny: QEMU quit\n")
        .run();
    assert!(!alive(pid), "QEMU is gone after stop");
    t.args(["status", "tiny"])
        .stdout_contains("state:  stopped\n")
        .run();
    // Sockets and pidfile are gone; the logs stay for `status` and `console --log`.
    assert_eq!(tree(&vm_dir(&t, &id)), ["console.log", "qemu.log"]);
    // Stopping a stopped VM succeeds.
    t.args(["stop", "tiny"])
        .stdout("tiny is not running (stopped)\n")
        .run();
}

#[test]
fn every_runtime_file_is_private_even_under_umask_000() {
    if !have_qemu("every_runtime_file_is_private_even_under_umask_000") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("private"));
    let id = t
        .umask(0o000)
        .args(["add", "vm.ron"])
        .run()
        .stdout
        .trim()
        .to_owned();
    t.umask(0o000).args(["start", "private"]).run();
    let dir = vm_dir(&t, &id);
    assert_eq!(mode(&t.runtime_dir()), 0o700);
    assert_eq!(mode(&dir), 0o700);
    for file in [
        "qmp.sock",
        "console.sock",
        "qemu.pid",
        "qemu.log",
        "console.log",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&t.data_dir()), 0o700);
    assert_eq!(mode(&t.data_dir().join("maqet.redb")), 0o600);
    t.args(["stop", "--force", "private"]).run();
}

#[test]
fn the_guest_boots_and_powers_off_through_the_acpi_button() {
    if !have_qemu("the_guest_boots_and_powers_off_through_the_acpi_button") {
        return;
    }
    let mut t = Test::new();
    let id = add(&mut t, "guest.ron", &guest_config("guest"));
    t.args([
        "start",
        "guest",
        "--wait-for",
        &format!("console:^{READY}$"),
        "--timeout",
        "120",
    ])
    .run();
    let pid = pid_of(&mut t, "guest");
    t.args(["stop", "guest", "--timeout", "60"])
        .stdout("stopped guest: the guest powered off\n")
        .run();
    assert!(!alive(pid));
    let console =
        std::fs::read_to_string(vm_dir(&t, &id).join("console.log")).expect("console.log");
    assert!(
        console.contains(POWEROFF),
        "the guest printed its poweroff line:\n{console}"
    );
}

#[test]
fn a_guest_that_ignores_the_button_is_quit_after_the_timeout() {
    if !have_qemu("a_guest_that_ignores_the_button_is_quit_after_the_timeout") {
        return;
    }
    let mut t = Test::new();
    add(&mut t, "vm.ron", &bios_config("stubborn"));
    t.args(["start", "stubborn"]).run();
    let pid = pid_of(&mut t, "stubborn");
    let started = Instant::now();
    t.args(["stop", "stubborn", "--timeout", "1"])
        .stdout("stopped stubborn: the guest did not power off in time; QEMU quit\n")
        .run();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for the guest"
    );
    assert!(!alive(pid));
}

#[test]
fn a_vm_survives_the_hangup_of_the_session_that_started_it() {
    if !have_qemu("a_vm_survives_the_hangup_of_the_session_that_started_it") {
        return;
    }
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to give the session a terminal");
    }
    let mut t = Test::new();
    add(&mut t, "vm.ron", &bios_config("sticky"));
    let xdg_runtime = t.path("xdg-runtime");
    std::fs::create_dir_all(&xdg_runtime).expect("mkdir");
    // A new session with a pty, like an SSH login: start the VM, then linger.
    let bin = crate::harness::BIN;
    // The harness's environment (data and runtime dirs, HOME).
    let template = t.command(["--version"]);
    let shell_line = format!("'{bin}' start sticky && sleep 600");
    let mut session = Command::new("setsid");
    // A login starts with SIGHUP at its default; the test may not (under
    // `nohup`, every process it starts would ignore the hangup).
    // SAFETY: between fork and exec, only the async-signal-safe sigaction.
    unsafe {
        session.pre_exec(|| {
            use nix::sys::signal::{SigHandler, Signal, signal};
            signal(Signal::SIGHUP, SigHandler::SigDfl)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut session = session
        .args(["script", "-qec", &shell_line, "/dev/null"])
        .envs(
            template
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("XDG_RUNTIME_DIR", &xdg_runtime)
        .current_dir(t.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the session");
    let leader = session.id() as i32;
    wait_until("the VM to run", Duration::from_secs(30), || {
        t.args(["--json", "ls"]).run().json()[0]["status"] == "running"
    });
    let pid = pid_of(&mut t, "sticky");
    // What a dropped SSH connection does: the shell on the terminal (the
    // pty session's leader, `script`'s child) and its process group get
    // SIGHUP, and the terminal goes away with whatever held it open.
    let children = std::fs::read_to_string(format!("/proc/{leader}/task/{leader}/children"))
        .expect("read the session's children");
    let shell: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the terminal's shell");
    // Never through kill(1): procps reads `kill -HUP -PGID` as options and
    // signals every process (-1). Checked, then sent to that group alone.
    assert!(shell > 1, "a real process, not {shell}");
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(shell))).expect("getpgid");
    assert_eq!(pgid.as_raw(), shell, "the shell leads its process group");
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP the session");
    let _ = session.kill();
    let _ = session.wait();
    wait_until(
        "the terminal's shell to die",
        Duration::from_secs(10),
        || !alive(shell),
    );
    // And what the last logout does without lingering.
    std::fs::remove_dir_all(&xdg_runtime).expect("remove XDG_RUNTIME_DIR");
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid), "QEMU outlived its session");
    let status = t.args(["--json", "status", "sticky"]).run().json();
    assert_eq!(status["state"], "running");
    assert_eq!(status["run_state"], "running", "QMP is still reachable");
    t.args(["stop", "--force", "sticky"]).run();
}

#[test]
fn a_killed_qemu_is_reported_crashed_and_starts_again() {
    if !have_qemu("a_killed_qemu_is_reported_crashed_and_starts_again") {
        return;
    }
    let mut t = Test::new();
    let id = add(&mut t, "vm.ron", &bios_config("fragile"));
    t.args(["start", "fragile"]).run();
    let pid = pid_of(&mut t, "fragile");
    kill9(pid);
    wait_until("QEMU to die", Duration::from_secs(10), || !alive(pid));
    assert_eq!(t.list()[0]["status"], "crashed");
    let status = t.args(["--json", "status", "fragile"]).run().json();
    assert_eq!(status["state"], "crashed");
    assert_eq!(
        status["last_exit"]["reason"],
        "QEMU ended without cleaning up (killed, or crashed)"
    );
    assert_eq!(
        tree(&vm_dir(&t, &id)),
        ["console.log", "qemu.log"],
        "stale files removed"
    );
    t.args(["start", "fragile"]).run();
    t.args(["stop", "--force", "fragile"]).run();
}

#[test]
fn a_pid_reused_by_another_process_is_never_taken_for_the_vm() {
    if !have_qemu("a_pid_reused_by_another_process_is_never_taken_for_the_vm") {
        return;
    }
    let mut t = Test::new();
    let id = add(&mut t, "vm.ron", &bios_config("reused"));
    t.args(["start", "reused"]).run();
    let pid = pid_of(&mut t, "reused");
    kill9(pid);
    wait_until("QEMU to die", Duration::from_secs(10), || !alive(pid));
    // Point the record at an unrelated process, as if the kernel had given
    // QEMU's pid to a `sleep`.
    let mut sleeper = Command::new("sleep").arg("600").spawn().expect("sleep");
    let dirs = t.dirs();
    {
        let store = maqet::store::Store::open(&dirs).expect("open store");
        store
            .write(|tx| {
                let mut vm = tx.find("reused")?;
                vm.runtime.as_mut().expect("runtime").pid = sleeper.id() as i32;
                tx.put(&vm)
            })
            .expect("rewrite the record");
    }
    std::fs::write(
        vm_dir(&t, &id).join("qemu.pid"),
        format!("{}\n", sleeper.id()),
    )
    .expect("write a stale pidfile");
    t.args(["stop", "--force", "reused"])
        .stdout("reused is not running (crashed)\n")
        .run();
    assert!(
        sleeper.try_wait().expect("poll sleep").is_none(),
        "the unrelated process was not signalled"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn a_bad_qemu_argument_fails_fast_with_qemus_message() {
    if !have_qemu("a_bad_qemu_argument_fails_fast_with_qemus_message") {
        return;
    }
    let mut t = Test::new();
    add(
        &mut t,
        "bad.ron",
        "(name: \"bad\", accel: Tcg, arguments: [\"-m\", \"banana\"])",
    );
    // A blind wait would sit out the whole --timeout (300 s); QEMU's exit
    // takes well under a second. Half the timeout leaves a loaded machine
    // minutes of margin and still tells the two apart.
    let started = Instant::now();
    t.args(["start", "bad", "--timeout", "300"])
        .status(1)
        .stderr_contains("QEMU exited while starting `bad`")
        .stderr_contains("-m banana: Parameter 'size' expects a non-negative number")
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(150),
        "failed as QEMU exited, not at the timeout: {:?}",
        started.elapsed()
    );
    let status = t.args(["--json", "status", "bad"]).run().json();
    assert_eq!(status["state"], "stopped");
    assert_eq!(
        status["last_exit"]["reason"],
        "QEMU exited with status 1 while starting"
    );
}

#[test]
fn a_missing_qemu_binary_says_what_to_install() {
    let mut t = Test::new();
    add(
        &mut t,
        "vm.ron",
        "(name: \"nobin\", binary: \"/nonexistent/qemu-system-x86_64\")",
    );
    t.args(["start", "nobin"])
        .status(3)
        .stderr_contains("cannot find the QEMU program `/nonexistent/qemu-system-x86_64`")
        .stderr_contains("apt-get install qemu-system-x86 qemu-utils")
        .run();
    assert!(!t.runtime_dir().exists(), "nothing was created");
}

#[test]
fn a_socket_path_too_long_for_unix_sockets_is_refused_before_anything_starts() {
    let mut t = Test::new();
    add(&mut t, "vm.ron", &bios_config("longpath"));
    let long = t.path(&"r".repeat(90));
    t.env("MAQET_RUNTIME_DIR", &long)
        .args(["start", "longpath"])
        .status(3)
        .stderr_contains("Unix sockets allow at most 107")
        .run();
    assert!(!long.exists(), "nothing was created");
}

/// The live (not zombie) QEMUs whose command line names `dir`: a test's
/// own runtime root is unique to it, unlike a VM name another test (or
/// another run of this suite on the machine) may also use.
fn qemus_under(dir: &std::path::Path) -> Vec<i32> {
    let dir = dir.to_str().expect("UTF-8").to_owned() + "/";
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            alive(pid) && cmdline.contains("qemu-system") && cmdline.contains(&dir)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// `started NAME (pid N)\n`: N.
fn started_pid(name: &str, stdout: &str) -> Option<i32> {
    stdout
        .strip_prefix(&format!("started {name} (pid "))?
        .strip_suffix(")\n")?
        .parse()
        .ok()
}

#[test]
fn two_concurrent_starts_give_exactly_one_qemu() {
    if !have_qemu("two_concurrent_starts_give_exactly_one_qemu") {
        return;
    }
    let mut t = Test::new();
    add(&mut t, "vm.ron", &bios_config("once"));
    let spawn = |t: &Test| {
        t.command(["start", "once"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn start")
    };
    let (a, b) = (spawn(&t), spawn(&t));
    let mut outs: Vec<(i32, String, String)> = [a, b]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect();
    outs.sort();
    let codes: Vec<i32> = outs.iter().map(|o| o.0).collect();
    assert_eq!(
        codes,
        [0, 4],
        "one start wins, the other is refused: {outs:#?}"
    );
    let (won, refused) = (&outs[0], &outs[1]);
    let pid = started_pid("once", &won.1).unwrap_or_else(|| panic!("the winner: {won:#?}"));
    // The loser names the winner's QEMU.
    assert!(
        refused
            .2
            .contains(&format!("VM `once` is already running (pid {pid})")),
        "the refused start: {refused:#?}"
    );
    assert!(refused.1.is_empty(), "the refused start: {refused:#?}");
    let qemus = qemus_under(&t.runtime_dir());
    t.args(["stop", "--force", "once"]).run();
    assert_eq!(qemus, [pid], "exactly one QEMU for the VM, the winner's");
}

#[test]
fn dry_run_prints_the_command_line_and_starts_nothing() {
    let mut t = Test::new();
    let id = add(&mut t, "vm.ron", &bios_config("dry"));
    let out = t.args(["--json", "start", "dry", "--dry-run"]).run().json();
    let argv: Vec<&str> = out
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect();
    assert_eq!(argv[0], "qemu-system-x86_64");
    let pidfile = format!("{}/{id}/qemu.pid", t.runtime_dir().display());
    assert!(argv.windows(2).any(|w| w == ["-pidfile", pidfile.as_str()]));
    assert!(argv.windows(2).any(|w| w == ["-accel", "tcg"]));
    assert!(!t.runtime_dir().exists(), "a dry run creates nothing");
    assert_eq!(t.list()[0]["status"], "created");
}

#[test]
fn rm_force_stops_a_running_vm_first() {
    if !have_qemu("rm_force_stops_a_running_vm_first") {
        return;
    }
    let mut t = Test::new();
    let id = add(&mut t, "vm.ron", &bios_config("doomed"));
    t.args(["start", "doomed"]).run();
    let pid = pid_of(&mut t, "doomed");
    t.args(["rm", "doomed"])
        .status(4)
        .stderr_contains("VM `doomed` is running")
        .run();
    t.args(["rm", "--force", "doomed"])
        .stdout(&format!("removed doomed ({})\n", &id[..12]))
        .run();
    assert!(!alive(pid));
    assert!(!vm_dir(&t, &id).exists(), "its runtime files went with it");
}

/// What one command of the start/stop/rm race may end with, by its exit
/// code and what it says (docs/exit-codes.md); `Err` for anything else.
fn race_outcome(
    verb: &str,
    name: &str,
    code: i32,
    stdout: &str,
    stderr: &str,
) -> Result<(), String> {
    // A `start` or `stop` that looked the VM up before an `rm` took it.
    const GONE: &str = "no VM is named or has an id starting with `";
    let short_id = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = match (verb, code) {
        ("start", 0) => started_pid(name, stdout).is_some(),
        // The other start won.
        ("start", 4) => stderr.contains(&format!("VM `{name}` is already running (pid ")),
        ("stop", 0) => [
            format!("stopped {name}: QEMU quit\n"),
            format!("stopped {name}: QEMU was killed\n"),
            format!("{name} is not running (created)\n"),
            format!("{name} is not running (stopped)\n"),
        ]
        .contains(&stdout.to_owned()),
        ("rm", 0) => stdout
            .strip_prefix(&format!("removed {name} ("))
            .and_then(|rest| rest.strip_suffix(")\n"))
            .is_some_and(short_id),
        // A start slipped in between rm's stop and its removal.
        ("rm", 4) => stderr.contains(&format!(
            "VM `{name}` is running again (started while being removed)"
        )),
        ("start" | "stop" | "rm", 3) => stderr.contains(GONE),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{verb} {name}` exited {code}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        ))
    }
}

/// Concurrent `start`, `stop --force` and `rm --force` of one VM, round
/// after round: never two QEMUs, never a record that says running without
/// its process, never a QEMU left behind with no record; and every command
/// ends with an outcome the race can give, never a failure, a timeout or
/// a crash.
#[test]
fn concurrent_start_stop_and_rm_never_leave_two_or_orphaned_qemus() {
    if !have_qemu("concurrent_start_stop_and_rm_never_leave_two_or_orphaned_qemus") {
        return;
    }
    let mut t = Test::new();
    let name = "race".to_owned();
    let qemus = |t: &Test| qemus_under(&t.runtime_dir()).len();
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..6 {
        if t.list().is_empty() {
            add(&mut t, "vm.ron", &bios_config(&name));
        }
        let verbs: [&[&str]; 6] = [
            &["start"],
            &["start"],
            &["stop", "--force"],
            &["rm", "--force"],
            &["start"],
            &["stop", "--force"],
        ];
        let children: Vec<_> = verbs
            .iter()
            .map(|verb| {
                let mut args: Vec<&str> = verb.to_vec();
                args.push(&name);
                let child = t
                    .command(args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn maqet");
                (verb[0], child)
            })
            .collect();
        for (verb, child) in children {
            let out = child.wait_with_output().expect("wait for maqet");
            let code = out.status.code().unwrap_or(-1);
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            if let Err(problem) = race_outcome(verb, &name, code, &stdout, &stderr) {
                panic!("round {round}: {problem}");
            }
            seen.insert((verb, code));
        }
        let running = qemus(&t);
        assert!(running <= 1, "round {round}: {running} QEMUs for one VM");
        let listed = t.list();
        match listed.first() {
            Some(vm) if vm["status"] == "running" => {
                assert_eq!(
                    running, 1,
                    "round {round}: the record says running, but no QEMU"
                )
            }
            Some(_) => assert_eq!(running, 0, "round {round}: a QEMU the record does not know"),
            None => assert_eq!(running, 0, "round {round}: a QEMU left behind by rm"),
        }
    }
    eprintln!("(verb, exit code) seen: {seen:?}");
    if !t.list().is_empty() {
        t.args(["rm", "--force", &name]).run();
    }
    assert_eq!(qemus(&t), 0);
}

/// The runtime directory deleted under a running VM: maqet still sees the
/// QEMU (start time matches), says its control socket is gone, and never
/// starts a second QEMU on the same disks.
#[test]
fn a_vm_whose_runtime_dir_was_deleted_is_never_started_twice() {
    if !have_qemu("a_vm_whose_runtime_dir_was_deleted_is_never_started_twice") {
        return;
    }
    let mut t = Test::new();
    let id = add(&mut t, "vm.ron", &bios_config("unmoored"));
    t.args(["start", "unmoored"]).run();
    let pid = pid_of(&mut t, "unmoored");
    std::fs::remove_dir_all(vm_dir(&t, &id)).expect("delete the runtime dir");
    let status = t.args(["--json", "status", "unmoored"]).run().json();
    assert_eq!(status["state"], "running");
    assert!(
        status["unreachable"]
            .as_str()
            .is_some_and(|u| u.contains("runtime files")),
        "{status}"
    );
    t.args(["start", "unmoored"])
        .status(4)
        .stderr_contains(&format!("already running (pid {pid})"))
        .run();
    t.args(["qmp", "unmoored", "query-status"])
        .status(1)
        .stderr_contains("runtime files were deleted")
        .run();
    t.args(["stop", "--force", "unmoored"]).run();
    assert!(!alive(pid), "stop still reaches it, through its pid");
}

/// A QEMU that is stopped (SIGSTOP) never greets on QMP: `stop` must not
/// wait past `--timeout` for it, but kill it within about a second more.
#[test]
fn stop_of_a_hung_qemu_keeps_to_its_timeout() {
    if !crate::guest::have_qemu("stop_of_a_hung_qemu_keeps_to_its_timeout") {
        return;
    }
    for force in [false, true] {
        let mut t = Test::new();
        t.file("h.ron", &crate::guest::bios_config("h"));
        t.args(["add", "h.ron"]).stdout_any().run();
        t.args(["start", "h"]).stdout_any().run();
        let status = t.args(["--json", "status", "h"]).run().json();
        let pid = status["pid"].as_i64().expect("a pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .expect("SIGSTOP");
        let started = std::time::Instant::now();
        let mut args = vec!["stop", "h", "--timeout", "1"];
        if force {
            args.push("--force");
        }
        if force {
            t.args(&args).stdout("stopped h: QEMU was killed\n").run();
        } else {
            t.args(&args)
                .stdout("stopped h: QEMU was killed\n")
                .stderr_contains("cannot reach QMP")
                .run();
        }
        let took = started.elapsed();
        // 1 s for the guest (none with --force), 0.9 s for `quit`, then
        // SIGKILL: 1.9 s of timers (0.9 s with --force). It took 15 s and
        // 10 s before, sitting out 5 s waits for QMP and for `quit` in
        // full. The timers are wall-clock, so load adds only scheduling
        // and process start-up: 5.5 s leaves 3.6 s for that, and any one
        // 5 s wait sat out still fails it.
        assert!(
            took < std::time::Duration::from_millis(5500),
            "force {force}: {took:?}"
        );
        let status = t.args(["--json", "status", "h"]).run().json();
        assert_eq!(status["state"], "stopped");
    }
}

/// A start killed before it spawned QEMU leaves the VM `starting` (with
/// no pid): the next start settles it and starts the VM.
#[test]
fn a_vm_left_starting_by_a_killed_start_starts_again() {
    if !crate::guest::have_qemu("a_vm_left_starting_by_a_killed_start_starts_again") {
        return;
    }
    let mut t = Test::new();
    t.file("s.ron", &crate::guest::bios_config("s"));
    let id = t.args(["add", "s.ron"]).run().stdout.trim().to_owned();
    let store = maqet::store::Store::open(&t.dirs()).expect("the store");
    store
        .write(|tx| {
            let mut vm = tx.get(&maqet::vm::VmId::parse(&id).expect("an id"))?;
            vm.status = maqet::vm::Status::Starting;
            vm.runtime = Some(maqet::reconcile::placeholder(
                &camino::Utf8PathBuf::from_path_buf(t.runtime_dir().join(&id)).expect("utf-8"),
            ));
            tx.put(&vm)
        })
        .expect("write");
    drop(store);
    let listed = t
        .args(["--json", "ls", "--status", "starting"])
        .run()
        .json();
    assert!(listed.as_array().is_some_and(|l| l.len() <= 1));
    t.args(["start", "s"]).stdout_any().run();
    let status = t.args(["--json", "status", "s"]).run().json();
    assert_eq!(status["state"], "running");
    t.args(["stop", "--force", "s"]).stdout_any().run();
}

/// A stand-in for a QEMU, killed when the test ends however it ends: a
/// python3 process that, as asked, passes `-pidfile PIDFILE` on its command
/// line and holds the write lock QEMU keeps on its pidfile (`fcntl`, as
/// QEMU takes it). Each of the identity check's discriminators can then be
/// failed alone.
struct Impostor {
    child: std::process::Child,
}

impl Impostor {
    fn spawn(pidfile: &std::path::Path, names_pidfile: bool, locks: bool) -> Impostor {
        use std::io::BufRead as _;
        let script = "import fcntl, os, sys, time\n\
                      if os.environ['LOCK'] == '1':\n\
                      \x20   f = open(os.environ['PIDFILE'], 'w')\n\
                      \x20   fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
                      print('ready', flush=True)\n\
                      time.sleep(600)\n";
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(script);
        if names_pidfile {
            cmd.arg("-pidfile").arg(pidfile);
        }
        let mut child = cmd
            .env("PIDFILE", pidfile)
            .env("LOCK", if locks { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("read the impostor's ready line");
        assert_eq!(line, "ready\n", "the impostor is set up");
        Impostor { child }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Still running: nobody signalled it.
    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("poll the impostor").is_none()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Field 22 of /proc/PID/stat.
fn start_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    fields[19].parse().expect("a start time")
}

/// A VM `v` with no QEMU of its own, and its runtime directory (made 0700,
/// as `start` makes it) with the pidfile path in it.
fn impostor_vm(t: &mut Test) -> (String, PathBuf, PathBuf) {
    use std::os::unix::fs::DirBuilderExt as _;
    let id = t.add_empty("v");
    let dir = vm_dir(t, &id);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .expect("the runtime dir");
    let pidfile = dir.join("qemu.pid");
    (id, dir, pidfile)
}

/// Record `pid`, started at `ticks`, as the running QEMU of VM `v`.
fn record_running(t: &Test, dir: &std::path::Path, pid: i32, ticks: u64) {
    let store = maqet::store::Store::open(&t.dirs()).expect("open store");
    store
        .write(|tx| {
            let mut vm = tx.find("v")?;
            let mut rt = maqet::reconcile::placeholder(
                &camino::Utf8PathBuf::from_path_buf(dir.to_owned()).expect("utf-8"),
            );
            rt.pid = pid;
            rt.start_ticks = ticks;
            vm.status = maqet::vm::Status::Running;
            vm.runtime = Some(rt);
            tx.put(&vm)
        })
        .expect("record the impostor");
}

/// The message of the error a command fails with (in `--json` form, so
/// not wrapped), after checking it exits 4, refused.
#[track_caller]
fn refusal(t: &mut Test, args: &[&str]) -> String {
    let out = t
        .arg("--json")
        .args(args.iter().copied())
        .status(4)
        .run()
        .stderr_json();
    assert_eq!(out["error"]["exit_code"], 4, "{out}");
    out["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {out}"))
        .to_owned()
}

fn have_python(test: &str) -> bool {
    crate::harness::needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        crate::harness::runs("python3"),
        "python3 is not installed",
    )
}

/// The identity check's four discriminators, each failed alone by a live
/// process at the VM's recorded pid: `stop` never signals it. And the same
/// process passing all four is stopped, so it is each discriminator, not the
/// stand-in, that holds `stop` back.
#[test]
fn stop_signals_only_a_process_proven_to_be_the_vms_qemu() {
    if !have_python("stop_signals_only_a_process_proven_to_be_the_vms_qemu") {
        return;
    }
    // (names its pidfile, holds the lock, recorded start time is its own)
    let refused = |pid: i32, why: &str| {
        format!(
            "refusing to signal pid {pid}: it has VM `v`'s recorded start time but {why}, so it may not be the VM's QEMU"
        )
    };
    // The start time differs: another process under a reused pid. The VM
    // is found gone (its stale pidfile says crashed); nothing is signalled.
    {
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, true, true);
        record_running(&t, &dir, p.pid(), start_ticks(p.pid()) + 1);
        t.args(["stop", "--force", "v"])
            .stdout("v is not running (crashed)\n")
            .run();
        assert!(p.alive(), "a process with another start time was signalled");
        // `stop` checks the start time twice (the identity check, then the
        // pidfd); a reading command, once.
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, true, true);
        record_running(&t, &dir, p.pid(), start_ticks(p.pid()) + 1);
        assert_eq!(t.list()[0]["status"], "crashed");
        assert!(p.alive());
    }
    // It holds no lock on the VM's pidfile.
    {
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        std::fs::write(&pidfile, "1\n").expect("an unlocked pidfile");
        let mut p = Impostor::spawn(&pidfile, true, false);
        record_running(&t, &dir, p.pid(), start_ticks(p.pid()));
        assert_eq!(
            refusal(&mut t, &["stop", "--force", "v"]),
            refused(p.pid(), "does not hold the VM's pidfile lock")
        );
        assert!(
            p.alive(),
            "a process without the pidfile lock was signalled"
        );
        assert_eq!(
            refusal(&mut t, &["start", "v"]),
            format!(
                "VM `v` is recorded as running (pid {0}), and pid {0} runs with the recorded start time but does not hold the VM's pidfile lock",
                p.pid()
            )
        );
        assert!(p.alive());
    }
    // Its command line does not name the VM's pidfile (it holds the lock).
    {
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, false, true);
        record_running(&t, &dir, p.pid(), start_ticks(p.pid()));
        assert_eq!(
            refusal(&mut t, &["stop", "--force", "v"]),
            refused(
                p.pid(),
                "does not name the VM's pidfile on its command line",
            )
        );
        assert!(p.alive(), "a process not naming the pidfile was signalled");
        let status = t.args(["--json", "status", "v"]).run().json();
        assert_eq!(status["state"], "running");
        assert_eq!(
            status["unreachable"],
            format!(
                "pid {} runs with the recorded start time but does not name the VM's pidfile on its command line; maqet will not signal it",
                p.pid()
            )
        );
        assert_eq!(
            refusal(&mut t, &["rm", "--force", "v"]),
            refused(
                p.pid(),
                "does not name the VM's pidfile on its command line",
            )
        );
        assert!(p.alive(), "rm --force signalled it");
    }
    // Not QEMU at all: a `sleep` under the recorded pid and start time.
    {
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        std::fs::write(&pidfile, "1\n").expect("an unlocked pidfile");
        let mut sleeper = Impostor {
            child: Command::new("sleep").arg("600").spawn().expect("sleep"),
        };
        let pid = sleeper.pid();
        record_running(&t, &dir, pid, start_ticks(pid));
        assert_eq!(
            refusal(&mut t, &["stop", "--force", "v"]),
            refused(pid, "does not name the VM's pidfile on its command line",)
        );
        assert!(sleeper.alive(), "the sleep was signalled");
    }
    // All four pass: the stand-in is taken for the VM's QEMU and killed.
    {
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, true, true);
        record_running(&t, &dir, p.pid(), start_ticks(p.pid()));
        t.args(["stop", "--force", "v"])
            .stdout("stopped v: QEMU was killed\n")
            .run();
        assert!(!p.alive(), "the proven process was not stopped");
    }
}

/// A process no record names is adopted as the VM's QEMU (and then
/// stopped) only when it holds the VM's pidfile lock and names that
/// pidfile on its command line; a pid a killed `start` wrote is adopted
/// only when its command line names the pidfile.
#[test]
fn stop_adopts_only_a_process_that_names_the_vms_pidfile() {
    if !have_python("stop_adopts_only_a_process_that_names_the_vms_pidfile") {
        return;
    }
    // No record says it runs; it holds the pidfile lock but its command
    // line does not name the pidfile.
    {
        let mut t = Test::new();
        let (_, _, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, false, true);
        t.args(["stop", "--force", "v"])
            .stdout("v is not running (created)\n")
            .run();
        assert!(
            p.alive(),
            "a lock holder not naming the pidfile was adopted"
        );
    }
    // Naming it too, it is this VM's orphaned QEMU: adopted and stopped.
    {
        let mut t = Test::new();
        let (_, _, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, true, true);
        t.args(["stop", "--force", "v"])
            .stdout("stopped v: QEMU was killed\n")
            .run();
        assert!(!p.alive(), "the orphaned lock holder was not stopped");
    }
    // A killed start left the VM `starting` and the pid of its child in
    // spawn.pid; the kernel gave that pid to something else.
    for names in [false, true] {
        let mut t = Test::new();
        let (_, dir, pidfile) = impostor_vm(&mut t);
        let mut p = Impostor::spawn(&pidfile, names, false);
        std::fs::write(dir.join("spawn.pid"), format!("{}\n", p.pid())).expect("spawn.pid");
        let store = maqet::store::Store::open(&t.dirs()).expect("open store");
        store
            .write(|tx| {
                let mut vm = tx.find("v")?;
                vm.status = maqet::vm::Status::Starting;
                vm.runtime = Some(maqet::reconcile::placeholder(
                    &camino::Utf8PathBuf::from_path_buf(dir.clone()).expect("utf-8"),
                ));
                tx.put(&vm)
            })
            .expect("record a start under way");
        drop(store);
        if names {
            // Adopted, but it holds no lock: still not proven, not signalled.
            assert_eq!(
                refusal(&mut t, &["stop", "--force", "v"]),
                format!(
                    "refusing to signal pid {}: it has VM `v`'s recorded start time but does not hold the VM's pidfile lock, so it may not be the VM's QEMU",
                    p.pid()
                )
            );
        } else {
            t.args(["stop", "--force", "v"])
                .stdout("v is not running (stopped)\n")
                .run();
            let status = t.args(["--json", "status", "v"]).run().json();
            assert_eq!(
                status["last_exit"]["reason"],
                "the start was interrupted before QEMU ran"
            );
        }
        assert!(
            p.alive(),
            "names {names}: the spawn.pid process was signalled"
        );
    }
}
