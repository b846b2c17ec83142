//! `maqet apply`: merging into an existing VM, or creating it.

use serde_json::json;

use crate::harness::{MINIMAL, Test};

#[test]
fn apply_merges_into_an_existing_vm() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL)
        .file("more.ron", r#"(memory: "512M", cpus: 2)"#);
    let id = t.args(["add", "minimal.ron"]).run().stdout;
    let before = t.args(["--json", "info", "minimal"]).run().json();
    // Timestamps have one-second resolution.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t.args(["apply", "minimal", "more.ron"])
        .stdout(&format!("updated minimal ({})\n", &id[..12]))
        .run();
    let after = t.args(["--json", "info", "minimal"]).run().json();
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["config"]["memory"], "512M");
    assert_eq!(after["config"]["cpus"], 2);
    assert_eq!(after["created"], before["created"]);
    assert_ne!(after["updated"], before["updated"]);
    assert_eq!(
        after["sources"],
        json!([t.path("minimal.ron"), t.path("more.ron")])
    );
}

#[test]
fn apply_options_only() {
    let mut t = Test::new();
    t.add_empty("web");
    t.args(["apply", "web", "--cpus", "4"]).run();
    let vm = t.args(["--json", "info", "web"]).run().json();
    assert_eq!(vm["config"]["cpus"], 4);
    assert_eq!(vm["config"]["memory"], "1G");
    assert_eq!(vm["sources"], json!([]));
}

#[test]
fn apply_creates_a_missing_vm() {
    let mut t = Test::new();
    let out = t
        .file("more.ron", r#"(memory: "512M")"#)
        .args(["apply", "web", "more.ron"])
        .run();
    let vms = t.list();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0]["name"], "web");
    assert_eq!(vms[0]["memory"], "512M");
    let id = vms[0]["id"].as_str().expect("id");
    assert_eq!(out.stdout, format!("created web ({})\n", &id[..12]));
}

#[test]
fn apply_as_json() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    let out = t.args(["--json", "apply", "web", "--cpus", "2"]).run();
    assert_eq!(
        out.json(),
        json!({"id": id, "name": "web", "created": false, "pending_restart": false})
    );
    let out = t.args(["--json", "apply", "db", "--cpus", "2"]).run();
    assert_eq!(out.json()["created"], true);
}

#[test]
fn a_file_naming_another_vm_is_refused() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL);
    t.add_empty("web");
    t.args(["apply", "web", "minimal.ron"])
        .status(3)
        .stderr_contains("the config names the VM `minimal`, but it is being applied to `web`")
        .run();
    let vm = t.args(["--json", "info", "web"]).run().json();
    assert_eq!(vm["config"]["memory"], "1G");
    assert_eq!(vm["sources"], json!([]));
    t.args(["info", "minimal"])
        .status(3)
        .stderr_contains("minimal")
        .run();
}

#[test]
fn a_file_naming_the_same_vm_is_fine() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL);
    t.add_empty("minimal");
    t.args(["apply", "minimal", "minimal.ron"]).run();
    assert_eq!(t.list()[0]["memory"], "256M");
}

#[test]
fn apply_name_renames() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.args(["apply", "web", "--name", "www"])
        .stdout(&format!("updated www ({})\n", &id[..12]))
        .run();
    t.args(["info", "web"])
        .status(3)
        .stderr_contains("no VM is named or has an id starting with `web`")
        .run();
    let vm = t.args(["--json", "info", "www"]).run().json();
    assert_eq!(vm["id"], id.as_str());
    // The old name is free again.
    t.add_empty("web");
    assert_eq!(t.list().len(), 2);
}

#[test]
fn renaming_onto_a_taken_name_is_refused() {
    let mut t = Test::new();
    t.add_empty("web");
    t.add_empty("db");
    t.args(["apply", "web", "--name", "db"])
        .status(3)
        .stderr_contains("a VM named `db` already exists")
        .run();
    let names: Vec<_> = t.list().iter().map(|vm| vm["name"].clone()).collect();
    assert_eq!(names, [json!("db"), json!("web")]);
}

#[test]
fn apply_by_id_prefix() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.args(["apply", &id[..6], "--cpus", "3"]).run();
    assert_eq!(t.list()[0]["cpus"], 3);
}

#[test]
fn nothing_to_apply_is_a_usage_error() {
    let mut t = Test::new();
    t.add_empty("web");
    let before = t.args(["--json", "info", "web"]).run().json();
    t.args(["apply", "web"])
        .status(2)
        .stderr_contains("nothing to apply to `web`")
        .run();
    assert_eq!(t.args(["--json", "info", "web"]).run().json(), before);
}

#[test]
fn apply_checks_files_like_add() {
    let mut t = Test::new();
    t.add_empty("web");
    t.file("bad.ron", r#"(arguments: ["-daemonize"])"#)
        .args(["apply", "web", "bad.ron"])
        .status(3)
        .stderr_contains("`-daemonize` is set by maqet")
        .run();
    t.file(
        "bad.ron",
        r#"(storage: [Raw(name: "root", file: "/etc/shadow")])"#,
    )
    .args(["apply", "web", "bad.ron"])
    .status(4)
    .run();
    assert_eq!(t.list()[0]["memory"], "1G");
}

/// `apply` refuses what `add` refuses before QEMU would fail on it: a
/// directory as a disk, a NUL in `append`, a comma in an initrd path. The
/// merged result is checked too, so a VM stored before these checks (here
/// put straight into the store) cannot be carried forward by an unrelated
/// change. The VM is left as it was.
#[test]
fn apply_refuses_what_would_fail_at_start() {
    let mut t = Test::new();
    t.add_empty("web");
    std::fs::create_dir(t.path("images")).expect("mkdir");
    t.file("vmlinuz", "");
    let before = t.args(["--json", "info", "web"]).run().json();
    for (body, says) in [
        (
            r#"storage: [Raw(name: "root", file: "images")]"#,
            "raw drive `root`: ",
        ),
        (
            r#"boot: (kernel: "vmlinuz", append: "a\u{0}b")"#,
            "the `append` line contains a NUL character",
        ),
        (
            r#"boot: (kernel: "vmlinuz", initrd: "a.img,/etc/shadow")"#,
            "contains a comma",
        ),
    ] {
        t.file("bad.ron", &format!("({body})"));
        let err = t
            .args(["--json", "apply", "web", "bad.ron"])
            .status(3)
            .run()
            .stderr_json();
        let message = err["error"]["message"].as_str().expect("a message");
        assert!(message.contains(says), "{body}: {err}");
        assert_eq!(err["error"]["code"], "maqet::config::invalid");
    }
    assert_eq!(t.args(["--json", "info", "web"]).run().json(), before);

    // A stored VM whose `append` holds a NUL.
    let store = maqet::store::Store::open(&t.dirs()).expect("open the store");
    let kernel = camino::Utf8PathBuf::from_path_buf(t.path("vmlinuz")).expect("UTF-8");
    store
        .write(|tx| {
            let mut config = maqet::config::VmConfig::default();
            config.boot.kernel = Some(maqet::config::UserPath::checked(kernel));
            config.boot.append = Some("a\0b".into());
            let vm = maqet::vm::Vm::new("old".parse().expect("a name"), config, vec![], false)?;
            tx.put(&vm)
        })
        .expect("seed the store");
    drop(store);
    let err = t
        .args(["--json", "apply", "old", "--cpus", "2"])
        .status(3)
        .run()
        .stderr_json();
    assert_eq!(
        err["error"]["message"],
        "the `append` line contains a NUL character"
    );
    assert_eq!(
        t.args(["--json", "info", "old"]).run().json()["config"]["cpus"],
        1
    );
}

/// `apply` to a running VM says the change waits for the next start, and
/// `status` and `info` say it is pending until then, also within the
/// second of the start.
#[test]
fn apply_to_a_running_vm_says_the_change_waits_for_the_next_start() {
    if !crate::guest::have_qemu("apply_to_a_running_vm_says_the_change_waits_for_the_next_start") {
        return;
    }
    let mut t = Test::new();
    t.file("r.ron", &crate::guest::bios_config("r"));
    t.args(["add", "r.ron"]).stdout_any().run();
    t.args(["start", "r"]).stdout_any().run();
    // At once: the record keeps whole seconds, and an apply within the
    // second of the start used to read as already in effect.
    t.args(["apply", "r", "--memory", "128M"])
        .stdout_contains("it is running: the change applies at its next start")
        .run();
    let status = t.args(["--json", "status", "r"]).run().json();
    assert_eq!(status["pending_restart"], true);
    let info = t.args(["--json", "info", "r"]).run().json();
    assert_eq!(info["pending_restart"], true);
    t.args(["status", "r"]).stdout_contains("pending:").run();
    t.args(["stop", "--force", "r"]).stdout_any().run();
    // Started again at once, within the second the apply was counted in:
    // this QEMU runs the new config.
    t.args(["start", "r"]).stdout_any().run();
    let status = t.args(["--json", "status", "r"]).run().json();
    assert_eq!(status["pending_restart"], false);
    t.args(["apply", "r", "--cpus", "2"])
        .stdout_contains("it is running: the change applies at its next start")
        .run();
    t.args(["stop", "--force", "r"]).stdout_any().run();
}

/// `apply` while `start` works is not undone by start's own writes: here
/// QEMU (a stand-in that runs until the apply is done, then fails) makes
/// start write the record again after the apply.
#[test]
fn apply_racing_start_is_not_undone() {
    if !crate::guest::have_qemu("apply_racing_start_is_not_undone") {
        return;
    }
    let mut t = Test::new();
    // It says it runs, then waits for `go` (a minute at most, so that a
    // failing test ends).
    let running = t.path("slow-qemu.running");
    let go = t.path("slow-qemu.go");
    t.file(
        "slow-qemu",
        &format!(
            "#!/bin/sh\n: >'{}'\ni=0\nwhile [ ! -e '{}' ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done\nexit 1\n",
            running.display(),
            go.display()
        ),
    );
    std::fs::set_permissions(
        t.path("slow-qemu"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    // Not about confinement: the stand-in runs `sleep`.
    t.file("cfg/maqet.ron", "(confinement: Off)\n");
    let settings = t.path("cfg/maqet.ron");
    t.file(
        "r.ron",
        &format!(
            "(name: \"r\", accel: Tcg, memory: \"64M\", binary: \"{}\")\n",
            t.path("slow-qemu").display()
        ),
    );
    t.args(["add", "--trust", "r.ron"]).stdout_any().run();
    let mut start = t
        .command(["start", "r"])
        .env("MAQET_CONFIG", &settings)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    // The apply lands while start waits on its QEMU, not before start has
    // read the record nor after it has written it back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !running.exists() {
        assert!(std::time::Instant::now() < deadline, "QEMU never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    t.args(["apply", "r", "--cpus", "3"]).stdout_any().run();
    std::fs::write(&go, "").expect("let QEMU fail");
    let status = start.wait().expect("start");
    assert_eq!(status.code(), Some(1), "the stand-in fails");
    let info = t.args(["--json", "info", "r"]).run().json();
    assert_eq!(info["config"]["cpus"], 3, "the apply stands");
    assert_eq!(info["status"], "stopped", "and so does start's record");
}

/// Applying the same files twice gives the same VM: `arguments` from the
/// files replace the stored list instead of piling up ("Duplicate ID" at
/// the next start).
#[test]
fn apply_twice_gives_the_same_vm() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL);
    t.file(
        "hp.ron",
        "(arguments: [\"-device\", \"pcie-root-port,id=hp0,chassis=1\"])\n",
    );
    t.args(["add", "minimal.ron"]).stdout_any().run();
    let name = t.list()[0]["name"].as_str().expect("a name").to_owned();
    let mut seen = Vec::new();
    for _ in 0..2 {
        t.args(["apply", &name, "minimal.ron", "hp.ron", "--trust"])
            .stdout_any()
            .run();
        let mut info = t.args(["--json", "info", &name]).run().json();
        info.as_object_mut().expect("an object").remove("updated");
        seen.push(info);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(
        seen[1]["config"]["arguments"],
        serde_json::json!(["-device", "pcie-root-port,id=hp0,chassis=1"])
    );
    // An empty list clears them.
    t.file("none.ron", "(arguments: [])\n");
    t.args(["apply", &name, "none.ron"]).stdout_any().run();
    let info = t.args(["--json", "info", &name]).run().json();
    assert_eq!(info["config"]["arguments"], serde_json::json!([]));
}

/// Every example applied twice onto itself is the same VM.
#[test]
fn every_example_applied_twice_is_the_same_vm() {
    let mut t = Test::new();
    crate::info::full_example(&mut t);
    t.file("minimal.ron", MINIMAL);
    t.args(["add", "minimal.ron"]).stdout_any().run();
    for (vm, file) in [("full-example", "full.ron"), ("minimal", "minimal.ron")] {
        let mut seen = Vec::new();
        for _ in 0..2 {
            t.args(["apply", vm, file, "--trust"]).stdout_any().run();
            let mut info = t.args(["--json", "info", vm]).run().json();
            info.as_object_mut().expect("an object").remove("updated");
            seen.push(info);
        }
        assert_eq!(seen[0], seen[1], "{file}");
    }
}

/// apply checks images (qemu-img) without holding the store. Another
/// command that changes the VM meanwhile does not wait for it, and is not
/// undone: apply is applied to the VM as stored when it writes, as if one
/// ran after the other; it checks the images again only if the other
/// command changed which they are.
#[test]
fn an_apply_overtaken_by_another_keeps_both() {
    if !crate::guest::have_qemu("an_apply_overtaken_by_another_keeps_both") {
        return;
    }
    let mut t = Test::new();
    for disk in ["disk.qcow2", "more.qcow2"] {
        let made = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(t.path(disk))
            .arg("1M")
            .status()
            .expect("run qemu-img");
        assert!(made.success());
    }
    t.file(
        "vm.ron",
        r#"(name: "web", storage: [Qcow2(name: "root", file: "disk.qcow2")])"#,
    )
    .file(
        "more.ron",
        r#"(storage: [Qcow2(name: "more", file: "more.qcow2")])"#,
    );
    t.args(["add", "vm.ron"]).run();
    // Each run of this qemu-img leaves a line; a run that finds `slow`
    // takes it away and waits for `go` (a minute at most, so that a
    // failing test ends) before it runs the real one.
    let qemu_img = crate::harness::in_path("qemu-img");
    let counter = t.program(
        "bin/qemu-img",
        &format!(
            "#!/bin/sh\necho >>\"$0.ran\"\nif rm \"$0.slow\" 2>/dev/null; then\n  i=0\n  while [ ! -e \"$0.go\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n  rm -f \"$0.go\"\nfi\nexec {} \"$@\"\n",
            qemu_img.display()
        ),
    );
    let ran = std::path::PathBuf::from(format!("{counter}.ran"));
    let path = format!(
        "{}:{}",
        t.path("bin").display(),
        std::env::var("PATH").expect("PATH")
    );
    let runs = || std::fs::read_to_string(&ran).map_or(0, |r| r.lines().count());
    // How many runs one apply's check of the one disk takes.
    t.args(["apply", "web", "--cpus", "1"])
        .env("PATH", &path)
        .run();
    let per_check = runs();
    assert!(per_check > 0, "apply checked no image");

    // `other` runs while `apply --memory 512M` is in its slow qemu-img.
    let race = |t: &mut Test, memory: &str, other: &[&str]| {
        std::fs::remove_file(&ran).expect("reset the count");
        std::fs::write(format!("{counter}.slow"), "").expect("make it slow");
        let mut first = t.command(["apply", "web", "--memory", memory]);
        first
            .env("PATH", &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let first = first.spawn().expect("spawn apply");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while runs() == 0 {
            assert!(std::time::Instant::now() < deadline, "qemu-img never ran");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The first apply's qemu-img holds until `go`: `other` succeeds
        // only if it never waits for it (waiting, it would run out of the
        // store lock's bound and fail as busy).
        t.args(other.iter().copied()).stdout_any().run();
        std::fs::write(format!("{counter}.go"), "").expect("let qemu-img go");
        let out = first.wait_with_output().expect("wait for apply");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.args(["--json", "info", "web"]).run().json()
    };
    // The other changes no image: one check.
    let vm = race(&mut t, "512M", &["apply", "web", "--cpus", "2"]);
    assert_eq!(runs(), per_check);
    assert_eq!(vm["config"]["cpus"], 2);
    assert_eq!(vm["config"]["memory"], "512M");
    // The other adds a disk: the images are checked again, the new one too.
    let vm = race(&mut t, "768M", &["apply", "web", "more.ron"]);
    assert!(runs() > 2 * per_check, "checked {} times", runs());
    assert_eq!(vm["config"]["memory"], "768M");
    assert_eq!(vm["config"]["storage"].as_array().map(Vec::len), Some(2));
}

/// `apply` reconciles first: a VM whose QEMU died unnoticed is not taken
/// for a running one (it said the change waited for a next start of a VM
/// that had already crashed).
#[test]
fn apply_to_a_vm_whose_qemu_died_does_not_say_it_runs() {
    if !crate::guest::have_qemu("apply_to_a_vm_whose_qemu_died_does_not_say_it_runs") {
        return;
    }
    let mut t = Test::new();
    t.file("d.ron", &crate::guest::bios_config("d"));
    let id = t.args(["add", "d.ron"]).run().stdout.trim().to_owned();
    t.args(["start", "d"]).stdout_any().run();
    let pid = t.args(["--json", "status", "d"]).run().json()["pid"]
        .as_i64()
        .expect("a pid") as i32;
    assert!(pid > 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    // Until the kernel has reaped it, QEMU still counts as running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "QEMU did not die");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // No command has looked at the VM since: `apply` is the first.
    let out = t.args(["apply", "d", "--cpus", "2"]).run();
    assert_eq!(out.stdout, format!("updated d ({})\n", &id[..12]));
    let info = t.args(["--json", "info", "d"]).run().json();
    assert_eq!(info["status"], "crashed");
    assert_eq!(info["pending_restart"], false);
}
