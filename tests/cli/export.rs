//! `maqet export`: a VM's definition for libvirt and systemd, checked by
//! the engines' own tools and run by them (docs/export.md).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::guest::{POWEROFF, READY, guest, guest_config, have_qemu};
use crate::harness::{Test, mode, needs, runs};
use crate::libvirt::{Libvirt, have_libvirt, validate};

#[test]
fn bad_options_and_paths_are_refused_and_write_nothing() {
    let mut t = Test::new();
    t.add_empty("web");
    for (args, code, message) in [
        (
            &["--to", "xen"][..],
            2,
            "Error parsing option '--to' with value 'xen': `xen` is not an engine: use libvirt or systemd",
        ),
        (
            &["--to", "libvirt", "--user"][..],
            2,
            "--user does not apply to --to libvirt",
        ),
        (
            &["--to", "systemd", "--image-dir", "/srv"][..],
            2,
            "--image-dir does not apply to --to systemd",
        ),
        (
            &["--to", "libvirt", "--accel", "hvf"][..],
            2,
            "Error parsing option '--accel' with value 'hvf': `hvf` is not an accelerator: use kvm or tcg",
        ),
        (
            &["--to", "libvirt", "--image-dir", "images"][..],
            2,
            "--image-dir images is not an absolute path",
        ),
        (
            &["--to", "systemd", "--restart", "sometimes"][..],
            2,
            "Error parsing option '--restart' with value 'sometimes': `sometimes` is not a restart policy: use no, on-failure or always",
        ),
        (
            &["--to", "libvirt", "--output", "/etc/maqet-web.xml"][..],
            4,
            "path refused",
        ),
    ] {
        let mut all = vec!["--json", "export", "web"];
        all.extend_from_slice(args);
        let out = t.args(&all).status(code).run();
        let error = &out.stderr_json()["error"];
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{args:?}: {error}"
        );
        assert_eq!(out.stdout, "");
    }
    assert!(!Path::new("/etc/maqet-web.xml").exists());
    t.args(["export", "nothing", "--to", "libvirt"])
        .status(3)
        .stderr_contains("no VM is named or has an id starting with `nothing`")
        .run();

    t.file("gtk.ron", "(name: \"gtk\", display: Gtk)\n");
    t.args(["add", "gtk.ron"]).stdout_any().run();
    let out = t
        .args([
            "--json", "export", "gtk", "--to", "libvirt", "--output", "gtk.xml",
        ])
        .status(3)
        .run();
    assert_eq!(
        out.stderr_json()["error"],
        serde_json::json!({
            "code": "maqet::export::unmappable",
            "message": "display: libvirt has no GTK display",
            "help": "set `display: Sdl` or `Vnc(display: N)` (`maqet apply VM file.ron`) and export again",
            "exit_code": 3,
        })
    );
    assert!(
        !t.path("gtk.xml").exists(),
        "a refused export wrote its file"
    );
    t.args([
        "export",
        "web",
        "--to",
        "systemd",
        "--stop-timeout",
        "86401",
    ])
    .status(2)
    .stderr_contains("--stop-timeout is at most 86400 seconds (a day)")
    .run();
}

/// A file a VM names that became a symlink into the system after `add`
/// is refused, as `start` refuses it: libvirt would open it by that name.
/// A symlink to an allowed file is written as it resolves.
#[test]
fn a_file_swapped_for_a_symlink_after_add_is_not_exported() {
    let mut t = Test::new();
    std::fs::write(t.path("disk.raw"), vec![0; 4096]).expect("write");
    std::fs::write(t.path("media.iso"), vec![0; 4096]).expect("write");
    std::fs::write(t.path("real.img"), vec![0; 4096]).expect("write");
    std::fs::create_dir(t.path("share")).expect("mkdir");
    t.file("k", "kernel");
    t.file(
        "vm.ron",
        "(name: \"web\", hotplug_ports: 0, boot: (kernel: \"k\"), storage: [Raw(name: \"r\", \
         file: \"disk.raw\"), Cdrom(name: \"c\", file: \"media.iso\"), Virtfs(name: \"s\", path: \"share\")])\n",
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    std::fs::remove_file(t.path("disk.raw")).expect("rm");
    std::os::unix::fs::symlink("/etc/shadow", t.path("disk.raw")).expect("symlink");
    let out = t
        .args([
            "--json", "export", "web", "--to", "libvirt", "--accel", "tcg",
        ])
        .status(4)
        .run();
    let error = out.stderr_json()["error"].clone();
    assert_eq!(error["code"], "maqet::refused");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("drive `r`: "),
        "{error}"
    );
    assert_eq!(out.stdout, "");
    // Swapped for a symlink to a file that passes: named as it resolves.
    std::fs::remove_file(t.path("disk.raw")).expect("rm");
    std::os::unix::fs::symlink(t.path("real.img"), t.path("disk.raw")).expect("symlink");
    for (name, target) in [
        ("media.iso", "/etc/hostname"),
        ("share", "/etc"),
        ("k", "/etc/passwd"),
    ] {
        let backup = t.path(&format!("{name}.bak"));
        std::fs::rename(t.path(name), &backup).expect("move aside");
        std::os::unix::fs::symlink(target, t.path(name)).expect("symlink");
        t.args(["export", "web", "--to", "libvirt", "--accel", "tcg"])
            .status(4)
            .stderr_contains("maqet::refused")
            .run();
        std::fs::remove_file(t.path(name)).expect("rm");
        std::fs::rename(&backup, t.path(name)).expect("move back");
    }
    let out = t
        .args(["export", "web", "--to", "libvirt", "--accel", "tcg"])
        .run();
    let real = t.path("real.img");
    assert!(
        out.stdout
            .contains(&format!("<source file='{}'/>", real.display())),
        "{}",
        out.stdout
    );
}

/// Raw `arguments` reach a libvirt domain only with --trust: there maqet's
/// confinement does not reach them. A `binary` given as a path is never
/// run by `export` (not to ask about KVM, nor about a device).
#[test]
fn arguments_need_trust_and_a_custom_binary_is_never_run() {
    let mut t = Test::new();
    let marker = t.path("ran");
    t.program(
        "bin/qemu-system-x86_64",
        &format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec qemu-system-x86_64 \"$@\"\n",
            marker.display()
        ),
    );
    t.file(
        "vm.ron",
        "(name: \"web\", binary: \"bin/qemu-system-x86_64\", arguments: [\"-device\", \"virtio-rng-pci,id=r\"])\n",
    );
    t.args(["add", "--trust", "vm.ron"]).stdout_any().run();
    t.args(["export", "web", "--to", "libvirt"])
        .status(4)
        .stderr_contains(
            "VM `web` has raw `arguments`; in a libvirt domain they run outside maqet's confinement",
        )
        .run();
    let out = t
        .args(["--json", "export", "web", "--to", "libvirt", "--trust"])
        .status(3)
        .run();
    assert_eq!(
        out.stderr_json()["error"]["message"],
        "arguments: maqet asks QEMU what device `virtio-rng-pci` takes only of a QEMU found by \
         name in PATH, and this VM's binary is not one"
    );
    t.file(
        "json.ron",
        r#"(arguments: ["-device", "{\"driver\": \"virtio-rng-pci\"}"])"#,
    );
    t.file(
        "vm.ron",
        "(name: \"web\", binary: \"bin/qemu-system-x86_64\")\n",
    );
    t.args(["rm", "web"]).stdout_any().run();
    t.args(["add", "--trust", "vm.ron", "json.ron"])
        .stdout_any()
        .run();
    let out = t
        .args(["export", "web", "--to", "libvirt", "--trust"])
        .stderr_contains("maqet: warning: accel Auto: the domain uses ")
        .run();
    assert!(out.stdout.contains("<emulator>"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(r#"<qemu:arg value='{"driver": "virtio-rng-pci"}'/>"#),
        "{}",
        out.stdout
    );
    assert!(!marker.exists(), "export ran the VM's own binary");
}

/// `--console-log` is a file the guest's output is appended to: it goes
/// through the path filter, or is in libvirt's own log directory.
#[test]
fn the_console_log_is_filtered_like_every_path_given() {
    let mut t = Test::new();
    t.add_empty("web");
    let export = |t: &mut Test, log: &str, code: i32, message: &str| {
        t.args([
            "export",
            "web",
            "--to",
            "libvirt",
            "--accel",
            "tcg",
            "--console-log",
            log,
        ])
        .status(code)
        .stderr_contains(message)
        .stdout_any()
        .run();
    };
    export(&mut t, "/etc/cron.d/maqet", 4, "path refused");
    export(&mut t, "/root/.bashrc", 4, "path refused");
    export(&mut t, "/dev/null", 4, "path refused");
    nix::unistd::mkfifo(&t.path("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let fifo = t.path("fifo").to_str().unwrap().to_owned();
    export(
        &mut t,
        &fifo,
        3,
        "is a FIFO (named pipe), not a regular file",
    );
    export(&mut t, "/var/log/libvirt/qemu/web.serial", 0, "");
    let mine = t.path("console.log").to_str().unwrap().to_owned();
    export(&mut t, &mine, 0, "");
}

/// The diskless default VM, whole: what a user pipes into `virsh define`.
#[test]
fn a_default_vm_exports_to_this_domain() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    let out = t
        .args(["export", "web", "--to", "libvirt", "--accel", "tcg"])
        .stderr("")
        .run();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        out.stdout,
        format!(
            "<domain type='qemu'>
  <name>web</name>
  <description>maqet VM web (id {id}), exported by maqet {version}</description>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <features>
    <acpi/>
  </features>
  <devices>
    <controller type='usb' model='none'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <controller type='pci' index='2' model='pcie-root-port'/>
    <controller type='pci' index='3' model='pcie-root-port'/>
    <controller type='pci' index='4' model='pcie-root-port'/>
    <serial type='pty'>
      <log file='/var/log/libvirt/qemu/web.serial' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <video>
      <model type='vga'/>
    </video>
    <memballoon model='none'/>
  </devices>
</domain>
"
        )
    );
    // `Auto` is decided here, and said so.
    let out = t
        .args(["export", "web", "--to", "libvirt"])
        .stderr_contains("maqet: warning: accel Auto: the domain uses ")
        .run();
    let kind = if out.stdout.starts_with("<domain type='kvm'>") {
        "kvm"
    } else {
        "tcg"
    };
    assert!(
        out.stderr.starts_with(&format!(
            "maqet: warning: accel Auto: the domain uses {kind} as this host would"
        )),
        "{}",
        out.stderr
    );
}

/// `--output` goes through the path filter as it resolves: a symlink into
/// a system directory is refused; a file is written private (0600),
/// whatever the umask.
#[test]
fn output_is_a_private_file_and_a_symlink_cannot_aim_it_at_the_system() {
    let mut t = Test::new();
    t.add_empty("web");
    std::os::unix::fs::symlink("/etc/maqet-export-victim", t.path("aimed.xml")).expect("symlink");
    t.args([
        "export",
        "web",
        "--to",
        "libvirt",
        "--accel",
        "tcg",
        "--output",
        "aimed.xml",
    ])
    .status(4)
    .stderr_contains("path refused")
    .run();
    assert!(!Path::new("/etc/maqet-export-victim").exists());
    let out = t
        .args([
            "--json", "export", "web", "--to", "libvirt", "--accel", "tcg", "--output", "web.xml",
        ])
        .umask(0o000)
        .run();
    let json = out.json();
    let written = t.path("web.xml");
    assert_eq!(json["file"], written.to_str().expect("UTF-8"));
    assert_eq!(mode(&written), 0o600);
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        json["definition"].as_str().unwrap()
    );
    assert_eq!(json["notes"], serde_json::json!([]));
    assert_eq!(json["copies"], serde_json::json!([]));
}

fn have_systemd_analyze(test: &str) -> bool {
    needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        runs("systemd-analyze"),
        "systemd-analyze is not installed (Debian: systemd)",
    )
}

/// `systemd-analyze verify` of a unit: it must pass with nothing to say
/// (it exits 0 even for a line it ignores).
fn verify(unit: &Path, user_runtime: Option<&Path>) {
    let mut command = Command::new("systemd-analyze");
    if let Some(dir) = user_runtime {
        command.arg("--user").env("XDG_RUNTIME_DIR", dir);
    }
    let out = command
        .arg("verify")
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.is_empty(),
        "{}:\n{said}",
        unit.display()
    );
}

/// The words of a unit's `key=` line (the tests' paths need no quoting).
fn unit_line(unit: &str, key: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// The unit passes systemd's own check, and its commands do what systemd
/// will rely on: ExecStart returns with QEMU running and its pid in
/// PIDFile; ExecStop powers the guest off gracefully.
#[test]
fn the_systemd_unit_verifies_and_its_commands_start_and_stop_the_vm() {
    let test = "the_systemd_unit_verifies_and_its_commands_start_and_stop_the_vm";
    if !have_qemu(test) || !have_systemd_analyze(test) {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &guest_config("web"));
    t.args(["add", "vm.ron"]).stdout_any().run();
    t.args([
        "export",
        "web",
        "--to",
        "systemd",
        "--output",
        "maqet-web.service",
    ])
    .stdout_any()
    .run();
    std::fs::create_dir(t.path("user")).expect("mkdir");
    t.args([
        "export",
        "web",
        "--to",
        "systemd",
        "--user",
        "--restart",
        "always",
        "--output",
        "user/maqet-web.service",
    ])
    .stdout_any()
    .stderr_contains("loginctl enable-linger")
    .run();
    verify(&t.path("maqet-web.service"), None);
    let runtime = tempfile::tempdir().expect("tempdir");
    verify(&t.path("user/maqet-web.service"), Some(runtime.path()));

    let unit = std::fs::read_to_string(t.path("maqet-web.service")).expect("read the unit");
    let user = std::fs::read_to_string(t.path("user/maqet-web.service")).expect("read");
    assert!(unit.contains("\nType=forking\n") && unit.contains("\nRestart=on-failure\n"));
    assert!(user.contains("\nRestart=always\n") && !user.contains("\nUser="));
    // Run as systemd would: another directory, none of maqet's variables.
    let home = t.root().to_owned();
    let run = |words: &[String]| {
        let out = Command::new(&words[0])
            .args(&words[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .current_dir("/")
            .output()
            .expect("run a unit command");
        assert!(
            out.status.success(),
            "{words:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let _stop = t.stopper("web");
    run(&unit_line(&unit, "ExecStart"));
    let pidfile = unit_line(&unit, "PIDFile").join(" ");
    let pid = std::fs::read_to_string(&pidfile).expect("QEMU wrote its pidfile");
    let status = t.args(["--json", "status", "web"]).run().json();
    assert_eq!(status["state"], "running");
    assert_eq!(
        status["pid"].as_i64().map(|p| p.to_string()),
        Some(pid.trim().to_owned())
    );
    let console = t
        .runtime_dir()
        .join(status["id"].as_str().unwrap())
        .join("console.log");
    let wait_for = |marker: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !std::fs::read_to_string(&console)
            .unwrap_or_default()
            .contains(marker)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no {marker} in {}",
                console.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(READY);
    run(&unit_line(&unit, "ExecStop"));
    wait_for(POWEROFF);
    let status = t.args(["--json", "status", "web"]).run().json();
    assert_eq!(status["state"], "stopped");
}

/// A name no other run's leftover domain has.
fn domain_name(base: &str) -> String {
    format!("mq{}-{base}", std::process::id())
}

/// Wait until `file` holds `marker`.
fn wait_for_marker(file: &Path, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !std::fs::read_to_string(file)
        .unwrap_or_default()
        .contains(marker)
    {
        assert!(
            Instant::now() < deadline,
            "no {marker} in {}:\n{}",
            file.display(),
            std::fs::read_to_string(file).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `(local address, port)` of every listening TCP socket.
fn tcp_listeners() -> Vec<(std::net::Ipv4Addr, u16)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // State 0A is LISTEN.
            if fields.get(3) != Some(&"0A") {
                return None;
            }
            let (addr, port) = fields.get(1)?.split_once(':')?;
            let addr = u32::from_str_radix(addr, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some((std::net::Ipv4Addr::from(addr.swap_bytes()), port))
        })
        .collect()
}

/// The root ports of a running domain that no device sits on.
fn free_root_ports(live: &str) -> usize {
    let ports: Vec<u32> = live
        .lines()
        .filter(|l| l.contains("<controller type='pci'") && l.contains("model='pcie-root-port'"))
        .filter_map(|l| l.split("index='").nth(1)?.split('\'').next()?.parse().ok())
        .collect();
    let used: Vec<u32> = live
        .lines()
        .filter(|l| l.contains("<address type='pci'"))
        .filter_map(|l| {
            let bus = l.split("bus='").nth(1)?.split('\'').next()?;
            u32::from_str_radix(bus.trim_start_matches("0x"), 16).ok()
        })
        .collect();
    ports.iter().filter(|p| !used.contains(p)).count()
}

/// The test guest, exported with disks on three buses, a backing chain, a
/// CD-ROM, a share, a port forward and a device in `arguments`, runs
/// under libvirt as it runs under maqet: it boots, its sizes and disks are
/// the config's, the forward is bound on 127.0.0.1 only and reaches the
/// guest, four hot-plug ports are free, and `virsh shutdown` powers it off
/// through ACPI.
#[test]
fn the_exported_test_guest_runs_under_libvirt() {
    let test = "the_exported_test_guest_runs_under_libvirt";
    if !have_qemu(test) || !have_libvirt(test) {
        return;
    }
    let g = guest();
    let name = domain_name("guest");
    let port = crate::harness::claim_port();
    let mut t = Test::new();
    let root = t.root().to_owned();
    let root = root.to_str().expect("UTF-8");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &format!("{root}/base.qcow2"),
        "64M",
    ]);
    std::fs::write(t.path("data.img"), vec![0; 1 << 20]).expect("write data.img");
    std::fs::write(t.path("media.iso"), vec![0; 1 << 20]).expect("write media.iso");
    std::fs::create_dir(t.path("share")).expect("mkdir share");
    t.file(
        "vm.ron",
        &format!(
            "(
    name: \"{name}\",
    memory: \"256M\",
    cpus: 2,
    boot: (kernel: \"{}\", initrd: \"{}\", append: \"console=ttyS0 panic=-1 maqet.listen=80:hello\"),
    storage: [
        Qcow2(name: \"root\", size: \"64M\", backing_file: \"base.qcow2\", backing_format: Qcow2),
        Raw(name: \"data\", file: \"data.img\", interface: Scsi, readonly: true),
        Cdrom(name: \"media\", file: \"media.iso\"),
        Virtfs(name: \"share\", path: \"share\", readonly: true),
    ],
    network: [User(name: \"net0\", forwards: [(host: {port}, guest: 80)])],
    arguments: [\"-device\", \"virtio-rng-pci,max-bytes=1024,period=1000\"],
)
",
            g.kernel.display(),
            g.initrd.display()
        ),
    );
    let id = t
        .args(["add", "--trust", "vm.ron"])
        .run()
        .stdout
        .trim()
        .to_owned();
    let overlay = t
        .args(["disk", "create", &name, "root"])
        .run()
        .stdout
        .trim()
        .to_owned();
    let console = t.path("console.log");
    t.args([
        "export",
        &name,
        "--to",
        "libvirt",
        "--accel",
        "tcg",
        "--trust",
        "--console-log",
        console.to_str().expect("UTF-8"),
        "--output",
        "domain.xml",
    ])
    .stdout_any()
    .stderr(
        "maqet: warning: network `net0`: its port forwards are passed to QEMU as <qemu:commandline>, which libvirt marks as tainting the domain\n\
         maqet: warning: arguments: passed to QEMU as <qemu:commandline>, outside maqet's confinement: files they name are opened with the rights libvirt gives QEMU (libvirt marks the domain tainted)\n",
    )
    .run();
    validate(&t.path("domain.xml"));

    let mut libvirt = Libvirt::start();
    assert_eq!(libvirt.define(&t.path("domain.xml")), name);
    let started = libvirt.virsh(&["start", &name]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    wait_for_marker(&console, READY);
    assert_eq!(
        libvirt.qemu_monitor(&name, &serde_json::json!({"execute": "query-status"}))["status"],
        "running"
    );
    let live = libvirt.dumpxml(&name);
    assert!(
        live.contains("<memory unit='KiB'>262144</memory>"),
        "{live}"
    );
    assert!(live.contains(">2</vcpu>"), "{live}");
    assert!(
        live.contains(&format!("<description>maqet VM {name} (id {id})")),
        "{live}"
    );
    let sources: Vec<&str> = live
        .lines()
        .filter_map(|l| l.trim().strip_prefix("<source file='"))
        .map(|l| l.split('\'').next().unwrap_or_default())
        .collect();
    assert_eq!(
        sources,
        [
            overlay.as_str(),
            &format!("{root}/base.qcow2"),
            &format!("{root}/data.img"),
            &format!("{root}/media.iso"),
        ]
    );
    assert_eq!(free_root_ports(&live), 4, "{live}");
    // The forward: on 127.0.0.1 only, and through to the guest.
    let listeners = tcp_listeners();
    assert!(
        listeners.contains(&(std::net::Ipv4Addr::LOCALHOST, port)),
        "{listeners:?}"
    );
    assert_eq!(
        listeners.iter().filter(|(_, p)| *p == port).count(),
        1,
        "{listeners:?}"
    );
    let mut answer = String::new();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut stream), &mut answer)
        .expect("the guest answers through the forward");
    assert_eq!(answer, "hello\r\n");
    // The device from `arguments`: virtio-rng, vendor 0x1af4, device
    // 0x1005 (transitional, as on the root bus) or 0x1044.
    let pci = libvirt.qemu_monitor(&name, &serde_json::json!({"execute": "query-pci"}));
    let devices = pci[0]["devices"].as_array().expect("devices");
    assert!(
        devices.iter().any(|d| d["id"]["vendor"] == 0x1af4
            && (d["id"]["device"] == 0x1005 || d["id"]["device"] == 0x1044)),
        "{pci}"
    );
    let shutdown = libvirt.virsh(&["shutdown", &name]);
    assert!(shutdown.status.success());
    wait_for_marker(&console, POWEROFF);
    let deadline = Instant::now() + Duration::from_secs(60);
    while libvirt.domstate_reason(&name) != "shut off (shutdown)" {
        assert!(
            Instant::now() < deadline,
            "{}",
            libvirt.domstate_reason(&name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--image-dir`: the domain names the copies, the export lists them,
/// and the domain boots from them with the originals gone, its overlay
/// reading the copied base (no rebase).
#[test]
fn an_export_with_image_dir_runs_from_the_copies() {
    let test = "an_export_with_image_dir_runs_from_the_copies";
    if !have_qemu(test) || !have_libvirt(test) {
        return;
    }
    let g = guest();
    let name = domain_name("moved");
    let mut t = Test::new();
    let root = t.root().to_str().expect("UTF-8").to_owned();
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &format!("{root}/base.qcow2"),
        "64M",
    ]);
    t.file(
        "vm.ron",
        &format!(
            "(name: \"{name}\", memory: \"256M\", boot: (kernel: \"{}\", initrd: \"{}\", append: \"console=ttyS0 panic=-1\"), storage: [Qcow2(name: \"root\", size: \"64M\", backing_file: \"base.qcow2\", backing_format: Qcow2)])\n",
            g.kernel.display(),
            g.initrd.display()
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    let overlay = t
        .args(["disk", "create", &name, "root"])
        .run()
        .stdout
        .trim()
        .to_owned();
    let moved = format!("{root}/moved");
    let console = format!("{root}/console.log");
    let out = t
        .args([
            "--json",
            "export",
            &name,
            "--to",
            "libvirt",
            "--accel",
            "tcg",
            "--image-dir",
            &moved,
            "--console-log",
            &console,
            "--output",
            "domain.xml",
        ])
        .stderr_contains("maqet: warning: copy these files to the host that runs the domain: ")
        .run()
        .json();
    let copies = out["copies"].as_array().expect("copies");
    let pairs: Vec<(&str, &str)> = copies
        .iter()
        .map(|c| (c["from"].as_str().unwrap(), c["to"].as_str().unwrap()))
        .collect();
    let kernel = g.kernel.to_str().unwrap();
    let initrd = g.initrd.to_str().unwrap();
    assert_eq!(
        pairs,
        [
            (kernel, format!("{moved}/vmlinuz").as_str()),
            (initrd, format!("{moved}/initramfs.gz").as_str()),
            (
                overlay.as_str(),
                format!("{moved}/{name}-root.qcow2").as_str()
            ),
            (
                format!("{root}/base.qcow2").as_str(),
                format!("{moved}/base.qcow2").as_str()
            ),
        ]
    );
    std::fs::create_dir(&moved).expect("mkdir");
    for (from, to) in &pairs {
        std::fs::copy(from, to).expect("copy");
    }
    // The images that stay behind are gone: only the copies can boot it.
    std::fs::remove_file(&overlay).expect("rm overlay");
    std::fs::remove_file(format!("{root}/base.qcow2")).expect("rm base");
    validate(&t.path("domain.xml"));
    let mut libvirt = Libvirt::start();
    libvirt.define(&t.path("domain.xml"));
    let started = libvirt.virsh(&["start", &name]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    wait_for_marker(Path::new(&console), READY);
    let live = libvirt.dumpxml(&name);
    assert!(
        live.contains(&format!("<source file='{moved}/base.qcow2'/>")),
        "{live}"
    );
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Found by a second black-box attack: `--output` wrote through a symlink
/// (another user's, in /tmp) to the file it named; two VMs' own files got
/// one name in `--image-dir`; a refused export still rewrote the seed;
/// `storage orphans` listed (and deleted) a seed only an export had
/// written; the unit dropped the settings file in effect.
#[test]
fn outputs_never_follow_a_symlink_and_exports_keep_their_vms_apart() {
    let mut t = Test::new();
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXUGg5bC/Y0mJHbJ9w1c6X8Fj4Y3w7Xo1pD0rm0Kp2E me@host";
    t.file(
        "vm.ron",
        &format!("(name: \"web\", cloud_init: (ssh_authorized_keys: [\"{key}\"]))\n"),
    );
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    t.file("victim", "keep\n");
    std::os::unix::fs::symlink(t.path("victim"), t.path("out.xml")).expect("symlink");
    t.args([
        "export", "web", "--to", "libvirt", "--accel", "tcg", "--output", "out.xml",
    ])
    .status(4)
    .stderr_contains("is a symlink; maqet writes no file through or over one")
    .run();
    assert_eq!(std::fs::read_to_string(t.path("victim")).unwrap(), "keep\n");
    assert!(
        !t.data_dir()
            .join("disks")
            .join(&id)
            .join("cidata.iso")
            .exists(),
        "a refused export wrote the seed"
    );
    // Refused by the mapping: the seed is not written either.
    t.file(
        "gtk.ron",
        &format!("(name: \"gtk\", display: Gtk, cloud_init: (ssh_authorized_keys: [\"{key}\"]))\n"),
    );
    let gtk = t.args(["add", "gtk.ron"]).run().stdout.trim().to_owned();
    t.args(["export", "gtk", "--to", "libvirt", "--accel", "tcg"])
        .status(3)
        .stderr_contains("libvirt has no GTK display")
        .run();
    assert!(
        !t.data_dir()
            .join("disks")
            .join(&gtk)
            .join("cidata.iso")
            .exists()
    );
    std::fs::create_dir(t.path("a-dir")).expect("mkdir");
    t.args([
        "export", "web", "--to", "libvirt", "--accel", "tcg", "--output", "a-dir",
    ])
    .status(4)
    .stderr_contains("exists and is not a regular file")
    .run();
    assert!(
        !t.data_dir()
            .join("disks")
            .join(&id)
            .join("cidata.iso")
            .exists()
    );

    // The seed an export wrote is this VM's, not an orphan; in
    // --image-dir it is named for the VM.
    let out = t
        .args([
            "--json",
            "export",
            "web",
            "--to",
            "libvirt",
            "--accel",
            "tcg",
            "--image-dir",
            "/srv/vm",
        ])
        .stderr_contains("copy these files")
        .run()
        .json();
    assert_eq!(out["copies"][0]["to"], "/srv/vm/web-cidata.iso");
    t.args(["--json", "storage", "orphans"])
        .stdout("{\n  \"deleted\": false,\n  \"files\": []\n}\n")
        .run();

    // The settings file in effect goes into the unit.
    std::fs::create_dir(t.path("cfg")).expect("mkdir");
    t.file("cfg/maqet.ron", "(stop_timeout: 40)\n");
    let out = t
        .args(["--config-dir", "cfg", "export", "web", "--to", "systemd"])
        .run();
    assert!(
        out.stdout.contains(&format!(
            "\nEnvironment=\"MAQET_CONFIG={}\"\n",
            t.path("cfg/maqet.ron").display()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" --timeout 40\n"), "{}", out.stdout);
}
