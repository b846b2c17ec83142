//! `maqet export`: a VM's definition for libvirt and systemd, checked by
//! the engines' own tools and run by them (docs/export.md).

use std::path::Path;
use std::process::Command;

use crate::guest::{POWEROFF, READY, guest_config, have_qemu};
use crate::harness::{Test, mode, needs, runs};

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
      <log file='/var/log/libvirt/qemu/web-console.log' append='on'/>
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
