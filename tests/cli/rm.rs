//! `maqet rm`: removing one VM or all of them.

use crate::harness::{Test, seed};

#[test]
fn rm_by_name() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.add_empty("db");
    t.args(["rm", "web"])
        .stdout(&format!("removed web ({})\n", &id[..12]))
        .run();
    let vms = t.list();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0]["name"], "db");
    t.args(["info", "web"])
        .status(3)
        .stderr_contains("`web`")
        .run();
    t.args(["info", &id]).status(3).stderr_contains(&id).run();
    // The name is free again.
    t.add_empty("web");
}

#[test]
fn rm_by_id_prefix_as_json() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    let out = t.args(["--json", "rm", &id[..5]]).run();
    assert_eq!(
        out.json(),
        serde_json::json!([{"id": id, "name": "web", "deleted": [], "kept": [], "in_use": []}])
    );
    assert!(t.list().is_empty());
}

#[test]
fn rm_of_an_unknown_vm() {
    let mut t = Test::new();
    t.add_empty("web");
    t.args(["rm", "nope"])
        .status(3)
        .stderr_contains("no VM is named or has an id starting with `nope`")
        .run();
    assert_eq!(t.list().len(), 1);
}

#[test]
fn rm_all_without_a_terminal_needs_force() {
    let mut t = Test::new();
    t.add_empty("web");
    t.add_empty("db");
    let out = t.args(["rm", "--all"]).status(4).run();
    insta::assert_snapshot!(out.stderr, @"
    maqet::refused

      × refusing to remove every VM without confirmation
      help: stdin is not a terminal, so maqet cannot ask; add --force
    ");
    // An answer on a pipe is not a terminal's answer either.
    t.args(["rm", "--all"]).stdin("y\n").status(4).run();
    assert_eq!(t.list().len(), 2);
}

#[test]
fn rm_all_force_removes_everything() {
    let mut t = Test::new();
    let web = t.add_empty("web");
    let db = t.add_empty("db");
    t.args(["rm", "--all", "--force"])
        .stdout(&format!(
            "removed db ({})\nremoved web ({})\n",
            &db[..12],
            &web[..12]
        ))
        .run();
    assert!(t.list().is_empty());
    // Nothing left to remove is not an error.
    t.args(["rm", "--all", "--force"]).stdout("").run();
}

/// Put `n` VMs named vm-000... straight into the store.
fn seed_vms(t: &Test, n: usize) {
    let store = maqet::store::Store::open(&t.dirs()).expect("open the store");
    store
        .write(|tx| {
            for i in 0..n {
                let name = format!("vm-{i:03}").parse().expect("a name");
                let vm = maqet::vm::Vm::new(name, Default::default(), Vec::new(), false)?;
                tx.put(&vm)?;
            }
            Ok(())
        })
        .expect("seed the VMs");
}

/// `rm --all --force --json` under `ulimit LIMITS`.
fn rm_all_limited(t: &Test, limits: &str) -> std::process::Output {
    let script = format!("ulimit {limits}; exec \"$0\" \"$@\"");
    t.wrapped(
        "sh",
        &["-c", &script],
        &["--json", "rm", "--all", "--force"],
    )
    .output()
    .expect("run maqet")
}

/// Refused for want of open files, `rm --all --force` has stopped nothing:
/// the check comes before any running VM is stopped.
#[test]
fn rm_all_refused_for_open_files_stops_nothing() {
    if !crate::guest::have_qemu("rm_all_refused_for_open_files_stops_nothing") {
        return;
    }
    let mut t = Test::new();
    seed_vms(&t, 100);
    t.file("live.ron", &crate::guest::bios_config("live"));
    t.args(["add", "live.ron"]).stdout_any().run();
    t.args(["start", "live"]).stdout_any().run();
    let out = rm_all_limited(&t, "-n 80");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = t.args(["--json", "status", "live"]).run().json();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(t.list().len(), 101);
    t.args(["stop", "--force", "live"]).stdout_any().run();
}

/// `rm --all` holds a lock file per VM while it removes them: more VMs than
/// the soft limit on open files (1024 on most hosts) raise the limit, and
/// more than the hard limit are refused before anything is removed.
#[test]
fn rm_all_of_more_vms_than_the_open_file_limit() {
    let mut t = Test::new();
    seed_vms(&t, 100);
    // Hard limit 80: 100 locks cannot be held. Nothing is removed.
    let out = rm_all_limited(&t, "-n 80");
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).expect("a JSON error");
    assert_eq!(
        (out.status.code(), &err["error"]["message"]),
        (
            Some(4),
            &serde_json::json!(
                "cannot lock 100 VMs at once: maqet holds an open file for each while it removes them, and this process may open at most 80"
            )
        )
    );
    assert_eq!(t.list().len(), 100);
    // Soft limit 40, hard as it is: raised, and every VM goes.
    let out = rm_all_limited(&t, "-Sn 40");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(removed.as_array().map(Vec::len), Some(100));
    assert_eq!(removed[0]["name"], "vm-000");
    assert!(t.list().is_empty());
}

/// maqet's own lookups go by id: a VM *named* like another VM's id is never
/// taken for it.
#[test]
fn rm_removes_the_vm_asked_for_when_another_is_named_like_its_id() {
    // Such a name is refused now (confinement.rs), but a store may hold
    // one from before: `web`'s id is another VM's name.
    let mut t = Test::new();
    let (web, lookalike) = (
        "abcd1234abcd1234abcd1234abcd1234",
        "aaaa0000000000000000000000000001",
    );
    seed(&t, &[(web, lookalike), ("web", web)]);
    t.args(["rm", "web"])
        .stdout(&format!("removed web ({})\n", &web[..12]))
        .run();
    let left = t.list();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0]["name"].as_str(), left[0]["id"].as_str()),
        (Some(web), Some(lookalike))
    );
}

#[test]
fn rm_all_on_a_fresh_data_dir_creates_nothing() {
    let mut t = Test::new();
    t.args(["rm", "--all", "--force"]).stdout("").run();
    assert!(!t.data_dir().exists());
}

#[test]
fn rm_needs_exactly_one_target() {
    let mut t = Test::new();
    t.add_empty("web");
    t.args(["rm", "web", "--all"])
        .status(2)
        .stderr_contains("give a VM or --all, not both")
        .run();
    t.args(["rm"])
        .status(2)
        .stderr_contains("rm needs a VM or --all")
        .run();
    assert_eq!(t.list().len(), 1);
}

/// An image maqet made for one VM that another VM uses — as its backing
/// file, or as a drive of its own — is kept by `rm --clean-storage`, and
/// said to be.
#[test]
fn rm_clean_storage_keeps_images_other_vms_use() {
    if !crate::guest::have_qemu("rm_clean_storage_keeps_images_other_vms_use") {
        return;
    }
    let mut t = Test::new();
    t.file(
        "base.ron",
        "(name: \"base\", storage: [Qcow2(name: \"root\", file: \"golden.qcow2\", size: \"1M\"), Raw(name: \"shared\", file: \"shared.raw\", size: \"1M\")])\n",
    );
    t.args(["add", "base.ron"]).stdout_any().run();
    t.args(["disk", "create", "base", "root"])
        .stdout_any()
        .run();
    t.args(["disk", "create", "base", "shared"])
        .stdout_any()
        .run();
    // (Images in maqet's data directory cannot be named by a config: a
    // golden image is a file of your own.)
    let root = t.path("golden.qcow2");
    let shared = t.path("shared.raw");
    t.file(
        "child.ron",
        &format!(
            "(name: \"child\", accel: Tcg, memory: \"64M\", storage: [Qcow2(name: \"root\", size: \"1M\", backing_file: \"{}\", backing_format: Qcow2), Raw(name: \"s\", file: \"shared.raw\")])\n",
            root.display()
        ),
    );
    t.args(["add", "child.ron"]).stdout_any().run();
    let out = t
        .args(["--json", "rm", "--clean-storage", "base"])
        .run()
        .json();
    assert_eq!(out[0]["deleted"], serde_json::json!([]), "{out}");
    assert_eq!(
        out[0]["in_use"],
        serde_json::json!([
            {"file": root.to_str().expect("UTF-8"), "by": "child"},
            {"file": shared.to_str().expect("UTF-8"), "by": "child"},
        ]),
        "{out}"
    );
    assert!(root.exists() && shared.exists());
    // The child still starts on them.
    t.args(["start", "child"]).stdout_any().run();
    t.args(["stop", "--force", "child"]).stdout_any().run();
    // Nor are they orphans.
    t.args(["storage", "orphans"]).stdout("").run();
}

/// The backing chain a qcow2 image records counts as a use too, not only
/// what configs name.
#[test]
fn rm_clean_storage_keeps_an_image_another_vms_image_is_based_on() {
    if !crate::guest::have_qemu("rm_clean_storage_keeps_an_image_another_vms_image_is_based_on") {
        return;
    }
    let mut t = Test::new();
    t.file(
        "base.ron",
        "(name: \"base\", storage: [Qcow2(name: \"root\", file: \"golden.qcow2\", size: \"1M\")])\n",
    );
    t.args(["add", "base.ron"]).stdout_any().run();
    t.args(["disk", "create", "base", "root"])
        .stdout_any()
        .run();
    let golden = t.path("golden.qcow2");
    let child = t.path("child.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&golden)
        .arg(&child)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "qemu-img create");
    t.file(
        "child.ron",
        "(name: \"child\", storage: [Qcow2(name: \"root\", file: \"child.qcow2\")])\n",
    );
    t.args(["add", "child.ron"]).stdout_any().run();
    let out = t
        .args(["--json", "rm", "--clean-storage", "base"])
        .run()
        .json();
    assert_eq!(
        out[0]["in_use"],
        serde_json::json!([{"file": golden.to_str().expect("UTF-8"), "by": "child"}]),
        "{out}"
    );
    assert!(golden.exists());
}
