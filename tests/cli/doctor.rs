//! `doctor` and `cleanup`.

use std::os::unix::fs::PermissionsExt;

use crate::guest::{bios_config, have_qemu};
use crate::harness::{Test, mode};

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no check `{name}` in {report}"))
}

#[test]
fn doctor_reports_every_check_and_fixes_a_loose_data_dir() {
    if !have_qemu("doctor_reports_every_check_and_fixes_a_loose_data_dir") {
        return;
    }
    let mut t = Test::new();
    t.add_empty("a");
    let report = t.args(["--json", "doctor"]).run().json();
    assert_eq!(report["ok"], true);
    for name in [
        "qemu",
        "qemu-img",
        "kvm",
        "data dir",
        "runtime dir",
        "lingering",
        "database",
        "crashed VMs",
        "runtime files",
        "orphan disks",
    ] {
        let c = check(&report, name);
        assert_ne!(c["status"], "fail", "{name}: {c}");
    }
    assert_eq!(
        check(&report, "database")["detail"],
        format!(
            "{} (1 VM, every record readable, integrity check passed)",
            t.data_dir().join("maqet.redb").display()
        )
    );

    std::fs::set_permissions(t.data_dir(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let report = t
        .args(["--json", "doctor"])
        .status(1)
        .stdout_any()
        .run()
        .json();
    assert_eq!(report["ok"], false);
    assert_eq!(check(&report, "data dir")["status"], "fail");
    assert_eq!(mode(&t.data_dir()), 0o777, "doctor alone changes nothing");

    let report = t.args(["--json", "doctor", "--fix"]).run().json();
    assert_eq!(check(&report, "data dir")["fixed"], "set its mode to 0700");
    assert_eq!(mode(&t.data_dir()), 0o700);
}

#[test]
fn stale_runtime_files_are_found_and_removed() {
    let mut t = Test::new();
    t.add_empty("a");
    let stray = t.runtime_dir().join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&stray).expect("mkdir");
    std::fs::set_permissions(t.runtime_dir(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    let out = t.args(["cleanup", "--dry-run"]).run();
    assert_eq!(out.stdout, format!("would remove {}\n", stray.display()));
    assert!(stray.exists(), "a dry run changes nothing");
    let out = t.args(["cleanup"]).run();
    assert_eq!(out.stdout, format!("removed {}\n", stray.display()));
    assert!(!stray.exists());
    t.args(["cleanup"]).stdout("nothing to clean up\n").run();
}

/// cleanup removes only what maqet makes (VM-id directories and locks),
/// never other files of a runtime directory given by mistake, and refuses
/// one that is not private or not ours (an attacker had it empty another
/// user's directory).
#[test]
fn cleanup_touches_only_maqets_own_names_in_a_private_runtime_dir() {
    let mut t = Test::new();
    let dir = t.path("mistake");
    std::fs::create_dir_all(dir.join(".ssh")).expect("mkdir");
    std::fs::create_dir_all(dir.join("0123456789abcdef0123456789abcdef")).expect("mkdir");
    std::fs::write(dir.join("thesis.txt"), "mine").expect("write");
    std::fs::write(dir.join("fedcba9876543210fedcba9876543210.lock"), "").expect("write");
    // A symlink named like a VM is not followed, nor taken for a VM's dir.
    std::os::unix::fs::symlink(
        t.path("elsewhere"),
        dir.join("00112233445566778899aabbccddeeff"),
    )
    .expect("symlink");
    std::fs::create_dir_all(t.path("elsewhere")).expect("mkdir");
    std::fs::write(t.path("elsewhere/keep"), "keep").expect("write");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let d = dir.to_str().expect("UTF-8");
    let out = t.args(["cleanup", "--runtime-dir", d]).run();
    assert_eq!(
        out.stdout,
        format!(
            "removed {d}/0123456789abcdef0123456789abcdef\nremoved {d}/fedcba9876543210fedcba9876543210.lock\n"
        )
    );
    assert!(dir.join("thesis.txt").exists() && dir.join(".ssh").exists());
    assert!(t.path("elsewhere/keep").exists());
    // Open to others: refused, nothing removed.
    std::fs::create_dir_all(dir.join("0123456789abcdef0123456789abcdef")).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = t
        .args(["--json", "cleanup", "--runtime-dir", d])
        .status(4)
        .run();
    assert_eq!(out.stderr_json()["error"]["exit_code"], 4);
    assert!(dir.join("0123456789abcdef0123456789abcdef").exists());
    let report = t
        .args(["--json", "doctor", "--runtime-dir", d])
        .status(1)
        .stdout_any()
        .run()
        .json();
    assert_eq!(check(&report, "runtime files")["status"], "fail");
    assert!(dir.join("0123456789abcdef0123456789abcdef").exists());
}

#[test]
fn cleanup_reconciles_a_vm_whose_qemu_was_killed() {
    if !have_qemu("cleanup_reconciles_a_vm_whose_qemu_was_killed") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("victim"));
    t.args(["add", "vm.ron"]).run();
    t.args(["start", "victim"]).run();
    let pid = t.args(["--json", "status", "victim"]).run().json()["pid"]
        .as_i64()
        .expect("pid") as i32;
    assert!(pid > 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A dry run says what the real run will mark, and marks nothing.
    let out = t.args(["cleanup", "--dry-run"]).run();
    assert!(
        out.stdout.contains("victim: would be crashed\n"),
        "{}",
        out.stdout
    );
    let out = t.args(["cleanup"]).run();
    assert!(
        out.stdout.contains("victim: now crashed\n"),
        "{}",
        out.stdout
    );
    let report = t.args(["--json", "doctor"]).run().json();
    assert_eq!(check(&report, "crashed VMs")["status"], "warn");
}

/// `doctor` runs QEMU with KVM for a moment instead of only opening
/// /dev/kvm: a QEMU whose KVM aborts (nested virtualisation) is "present
/// but unusable", with QEMU's message. Stand-ins make it mean the same on
/// every host with an openable /dev/kvm.
#[test]
fn doctor_tries_kvm_by_running_qemu() {
    let test = "doctor_tries_kvm_by_running_qemu";
    if !have_qemu(test) {
        return;
    }
    if !crate::harness::have_kvm(test) {
        return;
    }
    let mut t = Test::new();
    let qemu = crate::harness::in_path("qemu-system-x86_64");
    let qemu = qemu.to_str().expect("UTF-8");
    let broken = t.program(
        "broken-kvm",
        &format!("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = kvm ] && {{ echo 'qemu: error: failed to set MSR 0x10a to 0x69' >&2; exit 134; }}; done\nexec {qemu} \"$@\"\n"),
    );
    let working = t.program(
        "working-kvm",
        &format!("#!/bin/bash\nargs=()\nfor a in \"$@\"; do case \"$a\" in kvm) args+=(tcg);; host) args+=(max);; *) args+=(\"$a\");; esac; done\nexec {qemu} \"${{args[@]}}\"\n"),
    );
    for (program, status, detail) in [
        (
            broken,
            "warn",
            "present but unusable: qemu: error: failed to set MSR 0x10a to 0x69; VMs with `accel: Auto` use TCG (much slower)",
        ),
        (
            working,
            "ok",
            "usable: QEMU ran with KVM; VMs run at native speed",
        ),
    ] {
        t.file("cfg/maqet.ron", &format!("(binary: \"{program}\")\n"));
        let settings = t.path("cfg/maqet.ron");
        let report = t
            .env("MAQET_CONFIG", &settings)
            .args(["--json", "doctor"])
            .stdout_any()
            .run()
            .json();
        let kvm = check(&report, "kvm");
        assert_eq!(kvm["status"], status, "{kvm}");
        assert_eq!(kvm["detail"], detail, "{kvm}");
    }
}
