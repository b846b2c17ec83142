//! `maqet run`: add and start in one go.

use crate::guest::{READY, bios_config, guest_config, have_qemu};
use crate::harness::{Test, have_root};

#[test]
fn run_without_a_config_starts_the_default_vm() {
    if !have_qemu("run_without_a_config_starts_the_default_vm") {
        return;
    }
    let mut t = Test::new();
    let out = t
        .args(["--json", "run", "--name", "dflt"])
        .kvm_fallback_ok()
        .run()
        .json();
    let port = out["ssh_port"].as_u64().expect("an ssh port");
    assert!(port > 0);
    assert_eq!(out["auto_remove"], false);
    let info = t.args(["--json", "info", "dflt"]).run().json();
    assert_eq!(info["config"]["memory"], "256M");
    assert_eq!(info["config"]["display"]["kind"], "headless");
    assert_eq!(info["config"]["network"][0]["forwards"][0]["host"], port);
    assert_eq!(info["config"]["network"][0]["forwards"][0]["guest"], 22);
    assert_eq!(
        info["config"]["network"][0]["forwards"][0]["bind"],
        "127.0.0.1"
    );
    // slirp listens on the forwarded port once QEMU runs.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_ok());
    t.args(["stop", "--force", "dflt"]).run();
    assert_eq!(
        t.list()[0]["status"],
        "stopped",
        "without --rm the VM stays"
    );
    // Run again, it is the same VM, with the port it was given.
    let again = t
        .args(["--json", "run", "--name", "dflt"])
        .kvm_fallback_ok()
        .run()
        .json();
    assert_eq!(again["id"], out["id"]);
    assert_eq!(again["ssh_port"], port);
    assert_eq!(again["created"], false);
    assert_eq!(again["already_running"], false);
    t.args(["stop", "--force", "dflt"]).run();
}

/// The README's first command on a host with no /dev/kvm at all: a mount
/// namespace whose /dev holds only null, zero, random and urandom. The
/// default VM runs under TCG, and doctor says why.
#[test]
fn run_starts_the_default_vm_on_a_host_without_dev_kvm() {
    let test = "run_starts_the_default_vm_on_a_host_without_dev_kvm";
    if !have_qemu(test) || !have_root(test) {
        return;
    }
    let mut t = Test::new();
    let no_kvm = |t: &Test, args: &[&str]| {
        let script = "mount -t tmpfs -o mode=755 tmpfs /dev && \
            mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 && \
            mknod -m 666 /dev/random c 1 8 && mknod -m 666 /dev/urandom c 1 9 && \
            [ ! -e /dev/kvm ] && exec \"$@\"";
        let out = t
            .wrapped(
                "unshare",
                &[
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    "sh",
                ],
                args,
            )
            .output()
            .expect("run unshare");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let out = no_kvm(&t, &["run", "--name", "nokvm"]);
    assert!(out.starts_with("started nokvm (pid "), "{out}");
    let status = t.args(["--json", "status", "nokvm"]).run().json();
    assert_eq!(status["state"], "running");
    assert_eq!(status["accel"], "tcg");
    let doctor = no_kvm(&t, &["doctor"]);
    assert!(
        doctor.lines().any(|l| l
            == "warn  kvm            /dev/kvm does not exist (no virtualisation support, or the kvm module is not loaded); VMs use TCG, much slower"),
        "{doctor}"
    );
    t.args(["stop", "--force", "nokvm"]).run();
}

#[test]
fn run_names_the_default_vm_itself() {
    if !have_qemu("run_names_the_default_vm_itself") {
        return;
    }
    let mut t = Test::new();
    let out = t.args(["run"]).kvm_fallback_ok().run();
    let name = out
        .stdout
        .strip_prefix("started ")
        .and_then(|r| r.split(' ').next())
        .expect("started NAME (pid N)")
        .to_owned();
    assert!(name.starts_with("run-") && name.len() == 10, "{name}");
    assert!(
        out.stdout.contains("\nguest ssh: 127.0.0.1:"),
        "{}",
        out.stdout
    );
    t.args(["stop", "--force", &name]).run();
}

#[test]
fn run_rm_removes_the_vm_when_maqet_stops_it() {
    if !have_qemu("run_rm_removes_the_vm_when_maqet_stops_it") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("brief"));
    let out = t.args(["--json", "run", "vm.ron", "--rm"]).run().json();
    assert_eq!(out["auto_remove"], true);
    let id = out["id"].as_str().expect("id").to_owned();
    assert_eq!(t.list()[0]["status"], "running");
    t.args(["stop", "--force", "brief"]).run();
    assert!(t.list().is_empty(), "--rm removed it once stopped");
    assert!(!t.runtime_dir().join(&id).exists());
}

#[test]
fn run_rm_removes_a_vm_whose_guest_powered_off_while_nobody_watched() {
    if !have_qemu("run_rm_removes_a_vm_whose_guest_powered_off_while_nobody_watched") {
        return;
    }
    let mut t = Test::new();
    let mut config = guest_config("selfstop");
    // A disk maqet creates, to see it go too.
    config = config.replacen(
        "    memory:",
        "    storage: [Qcow2(name: \"root\", size: \"16M\")],\n    memory:",
        1,
    );
    t.file("vm.ron", &config);
    let out = t
        .args([
            "--json",
            "run",
            "vm.ron",
            "--rm",
            "--wait-for",
            &format!("console:^{READY}$"),
            "--timeout",
            "120",
        ])
        .run()
        .json();
    let id = out["id"].as_str().expect("id").to_owned();
    let disk = t.data_dir().join("disks").join(&id).join("root.qcow2");
    assert!(disk.exists());
    // The guest powers itself off (the ACPI button, pressed through raw QMP
    // rather than `maqet stop`, so no maqet is there to see it end).
    t.args(["qmp", "selfstop", "system_powerdown"])
        .stdout("{}\n")
        .run();
    let mut gone = false;
    for _ in 0..200 {
        // Any command that looks notices it stopped, and removes it.
        if t.list().is_empty() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "the VM was removed after its guest powered off");
    assert!(!disk.exists(), "with the disk maqet created for it");
}

#[test]
fn run_with_console_pipes_to_the_guest() {
    if !have_qemu("run_with_console_pipes_to_the_guest") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &guest_config("chatty"));
    // stdin stays open until the guest has answered (not 1.5 s of quiet).
    let (status, stdout, stderr) = crate::harness::type_until(
        t.command([
            "run",
            "vm.ron",
            "--console",
            "--wait-for",
            &format!("console:^{READY}$"),
            "--timeout",
            "120",
        ]),
        "echo run-console-works\n",
        "\nrun-console-works\r\n",
        std::time::Duration::from_secs(300),
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stdout.lines().any(|l| l.trim_end() == "run-console-works"),
        "{stdout}"
    );
    assert_eq!(
        t.list()[0]["status"],
        "running",
        "detaching leaves it running"
    );
    t.args(["stop", "--force", "chatty"]).run();
}

/// `run --rm` of a VM that fails to start removes it, and the error says
/// so instead of pointing at `maqet status` of a VM that is gone.
#[test]
fn run_rm_that_fails_to_start_says_the_vm_is_gone() {
    if !have_qemu("run_rm_that_fails_to_start_says_the_vm_is_gone") {
        return;
    }
    let mut t = Test::new();
    t.file(
        "bad.ron",
        "(name: \"bad\", accel: Tcg, memory: \"64M\", arguments: [\"-bogus-option\"])\n",
    );
    let out = t
        .args(["--json", "run", "--trust", "bad.ron", "--rm"])
        .status(1)
        .run();
    let error = &out.stderr_json()["error"];
    assert_eq!(
        error["help"],
        "`bad` was removed (run --rm); fix what is reported above and run it again"
    );
    assert!(t.list().is_empty());
}

/// `run vm.ron` again: the VM it added is started when its stored config
/// is what the file says, reported when it runs, and left alone, with the
/// difference named, when the file now says something else.
#[test]
fn run_again_starts_the_same_vm_and_refuses_a_different_one() {
    if !have_qemu("run_again_starts_the_same_vm_and_refuses_a_different_one") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("again"));
    let first = t.args(["--json", "run", "vm.ron"]).run().json();
    assert_eq!(first["created"], true);
    assert_eq!(first["already_running"], false);
    let id = first["id"].as_str().expect("id").to_owned();
    let pid = first["pid"].as_u64().expect("pid");

    // Running: nothing to do, and that is success.
    t.args(["run", "vm.ron"])
        .stdout(&format!("again is already running (pid {pid})\n"))
        .run();
    let running = t.args(["--json", "run", "vm.ron"]).run().json();
    assert_eq!(running["id"], id.as_str());
    assert_eq!(running["pid"], pid);
    assert_eq!(running["created"], false);
    assert_eq!(running["already_running"], true);

    // Stopped: started again, the same VM.
    t.args(["stop", "--force", "again"]).stdout_any().run();
    let out = t.args(["run", "vm.ron"]).run();
    assert!(
        out.stdout.starts_with("started again (pid "),
        "{}",
        out.stdout
    );
    let listed = t.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "running");
    t.args(["stop", "--force", "again"]).stdout_any().run();

    // Configured otherwise: refused, saying what differs and what to do;
    // the stored VM is as it was.
    let before = t.args(["--json", "info", "again"]).run().json();
    t.file("cd.iso", "");
    t.file(
        "vm.ron",
        "(name: \"again\", accel: Tcg, memory: \"128M\", storage: [Cdrom(name: \"cd\", file: \"cd.iso\")])\n",
    );
    let error = t
        .args(["--json", "run", "vm.ron", "--cpus", "2", "--rm"])
        .status(3)
        .run()
        .stderr_json();
    assert_eq!(
        error["error"],
        serde_json::json!({
            "code": "maqet::vm::name_taken",
            "exit_code": 3,
            "message": format!(
                "a VM named `again` already exists (id {id}) with another configuration: \
                 memory (stored 64M, given 128M); cpus (stored 1, given 2); storage `cd` \
                 (given, not stored); --rm (the VM was added without it)"
            ),
            "help": "`maqet start again` starts it as it is; `maqet apply again vm.ron --cpus 2` \
                     merges what is given into it (a running VM takes it at its next start); \
                     `maqet rm again` removes it, to run it anew; or give --name to run another VM",
        })
    );
    let out = t.args(["run", "vm.ron"]).status(3).run();
    assert!(
        out.stderr
            .contains("memory (stored 64M, given 128M); storage `cd` (given, not stored)"),
        "{}",
        out.stderr
    );
    assert_eq!(t.args(["--json", "info", "again"]).run().json(), before);
    assert_eq!(t.list()[0]["status"], "stopped", "nothing was started");
}

/// The port `run` chooses for the default VM's SSH forward is held from
/// the moment it is chosen until QEMU has bound it, so the kernel hands it
/// to nobody else meanwhile; and a program that takes it anyway (binding
/// that very port with SO_REUSEADDR) costs a second choice, not a failed
/// `run`. It used to find a free port, let it go, and give QEMU a port
/// anyone could have taken since.
#[test]
fn the_default_vms_port_is_held_until_qemu_binds_it_and_chosen_again_if_taken() {
    let test = "the_default_vms_port_is_held_until_qemu_binds_it_and_chosen_again_if_taken";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    // Stands in for QEMU: it shows the test its arguments, waits for `go`
    // (a minute at most, so that a failing test ends), then runs QEMU
    // under TCG (this host's KVM aborts).
    let qemu = crate::harness::in_path("qemu-system-x86_64");
    let wrapper = t.program(
        "bin/qemu",
        &format!(
            "#!/bin/bash\necho \"$@\" >\"$0.args.tmp\" && mv \"$0.args.tmp\" \"$0.args\"\n\
             i=0\nwhile [ ! -e \"$0.go\" ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done\n\
             args=()\nfor a in \"$@\"; do case \"$a\" in kvm) args+=(tcg);; host) args+=(max);; *) args+=(\"$a\");; esac; done\n\
             exec {} \"${{args[@]}}\"\n",
            qemu.display()
        ),
    );
    // The wrapper writes outside the VM's own files: not confined.
    t.file("cfg/maqet.ron", "(confinement: Off)\n");
    let settings = t.path("cfg/maqet.ron");
    let run = t
        .command(["run", "--name", "held", "--binary", &wrapper, "--trust"])
        .env("MAQET_CONFIG", &settings)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn run");
    let _stop = t.stopper("held");
    let args_file = std::path::PathBuf::from(format!("{wrapper}.args"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let args = loop {
        if let Ok(args) = std::fs::read_to_string(&args_file) {
            break args;
        }
        assert!(std::time::Instant::now() < deadline, "QEMU never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let port: u16 = args
        .split("hostfwd=tcp:127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no SSH forward in {args}"));

    // Between the choice and QEMU's bind, the port is not free: a plain
    // bind (no SO_REUSEADDR, as most programs and the kernel's own choice)
    // is refused.
    {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, socket};
        use std::os::fd::AsRawFd as _;
        let plain = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("a socket");
        assert_eq!(
            bind(plain.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)),
            Err(nix::errno::Errno::EADDRINUSE),
            "port {port} was free for the taking before QEMU bound it"
        );
    }
    // A listener with SO_REUSEADDR (std sets it) takes it all the same.
    let thief = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    std::fs::write(format!("{wrapper}.go"), "").expect("let QEMU go");
    let out = run.wait_with_output().expect("wait for run");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let info = t.args(["--json", "info", "held"]).run().json();
    let moved = info["config"]["network"][0]["forwards"][0]["host"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("a forward");
    assert_ne!(moved, port, "the forward moved off the taken port");
    let pid = t.args(["--json", "status", "held"]).run().json()["pid"]
        .as_i64()
        .expect("running");
    assert_eq!(
        stdout,
        format!("started held (pid {pid})\nguest ssh: 127.0.0.1:{moved}\n")
    );
    assert!(
        stderr.contains(&format!(
            "another program took port {port} before QEMU could; forwarding the guest's SSH from port {moved} instead"
        )),
        "{stderr}"
    );
    // QEMU listens on the new port; the other program keeps its own.
    assert!(std::net::TcpStream::connect(("127.0.0.1", moved)).is_ok());
    assert_eq!(thief.local_addr().expect("its address").port(), port);
}
