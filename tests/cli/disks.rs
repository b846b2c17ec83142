//! Disk images and snapshots on real qemu-img and QEMU: the images maqet
//! creates (where, mode, never overwritten, free space), the path filter on
//! backing chains, raw images that look like qcow2, offline and live
//! snapshots checked by content, and cleanup (`rm --clean-storage`,
//! `storage orphans`). docs/storage.md describes what is tested here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::guest::{READY, bios_config, guest_config, have_qemu};
use crate::harness::{Test, mode, tree, trust};

/// True when qemu-img and qemu-io (package qemu-utils) are installed. Without
/// them the caller skips, loudly — unless `MAQET_REQUIRE_QEMU=1`.
pub(crate) fn have_qemu_img(test: &str) -> bool {
    crate::harness::needs(
        test,
        "MAQET_REQUIRE_QEMU",
        crate::harness::runs("qemu-img") && crate::harness::runs("qemu-io"),
        "qemu-img/qemu-io (qemu-utils) are not installed",
    )
}

/// One of guest.rs's configs with `storage` entries added.
fn with_storage(config: &str, storage: &str) -> String {
    let body = config
        .trim_end()
        .strip_suffix(')')
        .expect("a RON struct")
        .trim_end()
        .trim_end_matches(',');
    format!("{body},\n    storage: [{storage}],\n)\n")
}

/// Add `config` from `NAME.ron`; the new VM's id.
fn add(t: &mut Test, name: &str, config: &str) -> String {
    let file = format!("{name}.ron");
    t.file(&file, config);
    t.args(["add", &file])
        .args(trust(config))
        .run()
        .stdout
        .trim_end()
        .to_owned()
}

/// `path` as a string, for building expected output.
fn s(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

/// Run qemu-img; its stdout. The test fails if qemu-img does.
fn qemu_img(args: &[&str]) -> String {
    let out = Command::new("qemu-img")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `qemu-img info` of a qcow2 image, as JSON.
fn qcow2_info(path: &Path) -> Value {
    let text = qemu_img(&["info", "--output=json", "-U", "-f", "qcow2", &s(path)]);
    serde_json::from_str(&text).expect("qemu-img info prints JSON")
}

/// Run one qemu-io command on a qcow2 image; true when it succeeded (a
/// `read -P` whose pattern does not match fails).
fn qemu_io(path: &Path, command: &str) -> bool {
    Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", command])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run qemu-io")
        .success()
}

/// Run `maqet --json ARGS`, expect exit `code` and nothing on stdout;
/// the error's message and help.
#[track_caller]
fn fails(t: &mut Test, args: &[&str], code: i32) -> (String, String) {
    let out = t.arg("--json").args(args).status(code).run();
    let error = &out.stderr_json()["error"];
    assert_eq!(error["exit_code"], code, "{error}");
    (
        error["message"].as_str().expect("a message").to_owned(),
        error["help"].as_str().expect("a help line").to_owned(),
    )
}

/// Stops the VM when the test ends, however it ends, so a failed assertion
/// leaves no QEMU behind.
/// A small tmpfs, unmounted when the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` on `dir`; `None` (after saying so loudly)
    /// when this is not root or mounting fails, as in most containers.
    fn mount(test: &str, dir: &Path, size: &str) -> Option<Tmpfs> {
        if !crate::harness::have_root(test) {
            return None;
        }
        std::fs::create_dir_all(dir).expect("create the mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let why = format!("cannot mount a tmpfs on {}", dir.display());
            crate::harness::needs(test, "MAQET_REQUIRE_ROOT", false, &why);
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Type `line` into the test guest's shell through a piped console session,
/// then wait until the console log has the line `answer`. The line is written
/// so that its echo differs from its answer (`$((6*7))` is printed as 42).
fn guest_runs(t: &mut Test, vm: &str, line: &str, answer: &str) {
    t.args(["console", vm]).stdin(&format!("{line}\n")).run();
    wait_until(
        &format!("`{answer}` on the console"),
        Duration::from_secs(60),
        || {
            let log = t.args(["console", vm, "--log"]).run().stdout;
            log.lines().any(|l| l.trim_end_matches('\r') == answer)
        },
    );
}

/// `snapshot list --json`: each snapshot's name and VM state size.
fn snapshots(t: &mut Test, vm: &str, drive: &str) -> Vec<(String, u64)> {
    let list = t
        .args(["--json", "snapshot", "list", vm, drive])
        .run()
        .json();
    list["snapshots"]
        .as_array()
        .expect("an array of snapshots")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("a name").to_owned(),
                s["vm_state_bytes"].as_u64().expect("a size"),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Images maqet creates
// ---------------------------------------------------------------------------

#[test]
fn a_qcow2_drive_without_a_file_is_created_private_at_start_even_under_umask_000() {
    let test = "a_qcow2_drive_without_a_file_is_created_private_at_start_even_under_umask_000";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    // The user's own image, with a size that differs from the file's: an
    // existing file is used as it is, never recreated.
    let mine = t.path("mine.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&mine), "16M"]);
    assert!(qemu_io(&mine, "write -P 0xaa 0 64k"));
    let config = with_storage(
        &bios_config("made"),
        r#"Qcow2(name: "root", size: "32M"), Qcow2(name: "mine", file: "mine.qcow2", size: "64M")"#,
    );
    t.file("made.ron", &config);
    let id = t
        .umask(0o000)
        .args(["add", "made.ron"])
        .run()
        .stdout
        .trim_end()
        .to_owned();
    let _stop = t.stopper("made");
    t.umask(0o000).args(["start", "made"]).run();
    t.args(["stop", "--force", "made"])
        .stdout("stopped made: QEMU quit\n")
        .run();

    let disks = t.data_dir().join("disks");
    let root = disks.join(&id).join("root.qcow2");
    assert_eq!(
        tree(&disks),
        [id.clone(), format!("{id}/root.qcow2")],
        "only the image without a file is created"
    );
    assert_eq!(mode(&disks), 0o700);
    assert_eq!(mode(&disks.join(&id)), 0o700);
    assert_eq!(mode(&root), 0o600);
    let info = qcow2_info(&root);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 32 * 1024 * 1024);

    let info = qcow2_info(&mine);
    assert_eq!(
        info["virtual-size"],
        16 * 1024 * 1024,
        "mine.qcow2 was recreated"
    );
    assert!(
        qemu_io(&mine, "read -P 0xaa 0 64k"),
        "mine.qcow2 lost its data"
    );
}

#[test]
fn disk_create_makes_an_image_now_and_never_overwrites_one() {
    if !have_qemu_img("disk_create_makes_an_image_now_and_never_overwrites_one") {
        return;
    }
    let mut t = Test::new();
    let mine = t.path("mine.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&mine), "16M"]);
    std::fs::create_dir(t.path("share")).expect("create share/");
    let id = add(
        &mut t,
        "d",
        &with_storage(
            &bios_config("d"),
            r#"Qcow2(name: "root", size: "32M"),
               Qcow2(name: "mine", file: "mine.qcow2", size: "32M"),
               Raw(name: "scratch", file: "scratch.raw", size: "1M"),
               Virtfs(name: "share", path: "share")"#,
        ),
    );
    let root = t.data_dir().join("disks").join(&id).join("root.qcow2");
    t.umask(0o000)
        .args(["disk", "create", "d", "root"])
        .stdout(&format!("{}\n", s(&root)))
        .run();
    assert_eq!(mode(&root), 0o600);
    assert_eq!(mode(root.parent().expect("a parent")), 0o700);
    let info = qcow2_info(&root);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 32 * 1024 * 1024);

    let scratch = t.path("scratch.raw");
    t.umask(0o000)
        .args(["disk", "create", "d", "scratch"])
        .stdout(&format!("{}\n", s(&scratch)))
        .run();
    assert_eq!(mode(&scratch), 0o600);
    assert_eq!(
        std::fs::metadata(&scratch).expect("stat").len(),
        1024 * 1024
    );

    // Created once; asked again, maqet refuses and leaves the file alone.
    assert!(qemu_io(&root, "write -P 0x5a 0 64k"));
    for (drive, path) in [("root", &root), ("mine", &mine), ("scratch", &scratch)] {
        let before = std::fs::read(path).expect("read the image");
        assert_eq!(
            fails(&mut t, &["disk", "create", "d", drive], 4),
            (
                format!(
                    "{} already exists; maqet never overwrites an image",
                    s(path)
                ),
                "remove it yourself first if you want a fresh one".to_owned()
            )
        );
        assert_eq!(
            std::fs::read(path).expect("read the image"),
            before,
            "{drive}"
        );
    }
    assert!(qemu_io(&root, "read -P 0x5a 0 64k"));

    assert_eq!(
        fails(&mut t, &["disk", "create", "d", "nope"], 3),
        (
            "`d` has no drive named `nope`".to_owned(),
            "its drives: root, mine, scratch, share".to_owned()
        )
    );
    assert_eq!(
        fails(&mut t, &["disk", "create", "d", "share"], 3),
        (
            "drive `share` is virtfs, which maqet does not create".to_owned(),
            "only qcow2 and raw drives have images maqet can create".to_owned()
        )
    );
}

#[test]
fn not_enough_free_space_is_a_clear_error_and_leaves_nothing_behind() {
    let test = "not_enough_free_space_is_a_clear_error_and_leaves_nothing_behind";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    let small = t.path("small");
    let Some(_tmpfs) = Tmpfs::mount(test, &small, "4m") else {
        return;
    };
    add(
        &mut t,
        "full",
        &with_storage(
            &bios_config("full"),
            r#"Qcow2(name: "root", file: "small/root.qcow2", size: "32M")"#,
        ),
    );
    let expected = (
        format!(
            "not enough free space to create {}/root.qcow2: 4096 KiB free in {}",
            s(&small),
            s(&small)
        ),
        "free some space (images grow as the guest writes), or put the image elsewhere with `file`"
            .to_owned(),
    );
    assert_eq!(
        fails(&mut t, &["disk", "create", "full", "root"], 3),
        expected
    );
    assert_eq!(tree(&small), Vec::<String>::new());
    let _stop = t.stopper("full");
    assert_eq!(fails(&mut t, &["start", "full"], 3), expected);
    assert_eq!(tree(&small), Vec::<String>::new());
    let status = t.args(["--json", "status", "full"]).run().json();
    assert_eq!(status["state"], "created");
}

// ---------------------------------------------------------------------------
// Offline snapshots
// ---------------------------------------------------------------------------

/// A VM with a created qcow2 `root` (returned) and a raw drive `r`.
fn snapshot_vm(t: &mut Test) -> PathBuf {
    std::fs::write(t.path("r.img"), vec![0u8; 1024 * 1024]).expect("write r.img");
    let id = add(
        t,
        "d",
        &with_storage(
            &bios_config("d"),
            r#"Qcow2(name: "root", size: "32M"), Raw(name: "r", file: "r.img")"#,
        ),
    );
    let root = t.data_dir().join("disks").join(id).join("root.qcow2");
    t.args(["disk", "create", "d", "root"]).run();
    root
}

#[test]
fn offline_snapshots_keep_and_bring_back_the_disk_content() {
    if !have_qemu_img("offline_snapshots_keep_and_bring_back_the_disk_content") {
        return;
    }
    let mut t = Test::new();
    let root = snapshot_vm(&mut t);
    assert!(qemu_io(&root, "write -P 0xaa 0 64k"));
    // `snapshot VM VERB` is the shorthand of `snapshot VERB VM`.
    t.args(["snapshot", "d", "create", "root", "s1"])
        .stdout("created snapshot s1 (offline: this disk)\n")
        .run();
    assert!(qemu_io(&root, "write -P 0x55 0 64k"));
    assert!(!qemu_io(&root, "read -P 0xaa 0 64k"));
    t.args(["snapshot", "load", "d", "root", "s1"])
        .stdout("loaded snapshot s1 (offline: this disk)\n")
        .run();
    assert!(qemu_io(&root, "read -P 0xaa 0 64k"), "s1's content is back");

    let out = t.args(["snapshot", "d", "list", "root"]).run();
    assert_eq!(
        t.redact(&out.stdout),
        "NAME  DATE                  VM STATE  GUEST CLOCK\n\
         s1    [TIME]  -         0s\n"
    );
    let list = t
        .args(["--json", "snapshot", "list", "d", "root"])
        .run()
        .json();
    assert_eq!(list["drive"], "root");
    assert_eq!(list["live"], false);
    let s1 = &list["snapshots"][0];
    assert_eq!(s1["id"], "1");
    assert_eq!(s1["name"], "s1");
    assert_eq!(s1["vm_state_bytes"], 0);
    assert_eq!(s1["guest_clock_seconds"], 0);
    assert_eq!(
        t.redact(s1["date"].as_str().expect("a date")),
        "[TIME]",
        "an RFC 3339 time"
    );
    assert_eq!(list["snapshots"].as_array().map(Vec::len), Some(1));

    // A clash needs --overwrite; the replaced snapshot holds the new content.
    assert!(qemu_io(&root, "write -P 0x55 0 64k"));
    assert_eq!(
        fails(&mut t, &["snapshot", "d", "create", "root", "s1"], 3),
        (
            "drive `root` already has a snapshot named `s1`".to_owned(),
            "choose another name, or add --overwrite to replace it".to_owned()
        )
    );
    t.args(["snapshot", "create", "d", "root", "s1", "--overwrite"])
        .stdout("created snapshot s1 (offline: this disk)\n")
        .run();
    assert_eq!(snapshots(&mut t, "d", "root"), [("s1".to_owned(), 0)]);
    assert!(qemu_io(&root, "write -P 0x77 0 64k"));
    t.args(["snapshot", "d", "load", "root", "s1"]).run();
    assert!(
        qemu_io(&root, "read -P 0x55 0 64k"),
        "the overwritten s1 holds 0x55"
    );

    t.args(["snapshot", "d", "delete", "root", "s1"])
        .stdout("deleted snapshot s1 (offline: this disk)\n")
        .run();
    t.args(["snapshot", "d", "list", "root"])
        .stdout("NAME  DATE  VM STATE  GUEST CLOCK\n")
        .run();
    assert!(
        qemu_io(&root, "read -P 0x55 0 64k"),
        "deleting kept the disk"
    );
}

/// A snapshot name is whatever was written into the image, by maqet or by
/// `qemu-img snapshot -c`: `snapshot list` shows newlines, tabs, escape
/// sequences and bidi overrides in it as `\u{..}`, one row per snapshot
/// with its columns aligned; `--json` gives the name back exactly.
#[test]
fn snapshot_list_escapes_control_characters_in_names() {
    if !have_qemu_img("snapshot_list_escapes_control_characters_in_names") {
        return;
    }
    let mut t = Test::new();
    let image = t.path("s.qcow2");
    let made = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("1M")
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "qemu-img create");
    let hostile = "a\nb\u{1b}[2J\tc\u{202e}";
    let snapped = Command::new("qemu-img")
        .args(["snapshot", "-c", hostile])
        .arg(&image)
        .status()
        .is_ok_and(|s| s.success());
    assert!(snapped, "qemu-img snapshot -c");
    add(
        &mut t,
        "snap",
        r#"(name: "snap", storage: [Qcow2(name: "root", file: "s.qcow2")])"#,
    );
    let out = t.args(["snapshot", "snap", "list", "root"]).run();
    assert!(
        !out.stdout.contains('\u{1b}'),
        "a raw ESC: {:?}",
        out.stdout
    );
    assert_eq!(
        t.redact(&out.stdout),
        "NAME                            DATE                  VM STATE  GUEST CLOCK\n\
         a\\u{a}b\\u{1b}[2J\\u{9}c\\u{202e}  [TIME]  -         0s\n"
    );
    assert_eq!(snapshots(&mut t, "snap", "root"), [(hostile.to_owned(), 0)]);
}

#[test]
fn snapshot_errors_say_what_exists() {
    if !have_qemu_img("snapshot_errors_say_what_exists") {
        return;
    }
    let mut t = Test::new();
    std::fs::write(t.path("r.img"), vec![0u8; 1024 * 1024]).expect("write r.img");
    let id = add(
        &mut t,
        "d",
        &with_storage(
            &bios_config("d"),
            r#"Qcow2(name: "root", size: "32M"), Raw(name: "r", file: "r.img")"#,
        ),
    );
    let root = t.data_dir().join("disks").join(id).join("root.qcow2");
    assert_eq!(
        fails(&mut t, &["snapshot", "d", "create", "root", "s1"], 3),
        (
            format!("drive `root` has no image yet ({})", s(&root)),
            "`maqet disk create d root` or `maqet start d` creates it".to_owned()
        )
    );
    t.args(["disk", "create", "d", "root"]).run();
    assert_eq!(
        fails(&mut t, &["snapshot", "d", "load", "root", "s1"], 3),
        (
            "drive `root` has no snapshot named `s1`".to_owned(),
            "it has no snapshots".to_owned()
        )
    );
    t.args(["snapshot", "d", "create", "root", "s1"]).run();
    t.args(["snapshot", "d", "create", "root", "s2"]).run();
    for verb in ["load", "delete"] {
        assert_eq!(
            fails(&mut t, &["snapshot", "d", verb, "root", "nope"], 3),
            (
                "drive `root` has no snapshot named `nope`".to_owned(),
                "its snapshots: s1, s2".to_owned()
            )
        );
    }
    assert_eq!(
        fails(&mut t, &["snapshot", "d", "create", "r", "s1"], 3),
        (
            "drive `r` is raw, and only qcow2 images hold snapshots".to_owned(),
            "qcow2 drives of `d`: root".to_owned()
        )
    );
    assert_eq!(
        fails(&mut t, &["snapshot", "d", "list", "nope"], 3),
        (
            "`d` has no drive named `nope`".to_owned(),
            "its drives: root, r".to_owned()
        )
    );
    // Nothing changed on the way.
    let names: Vec<String> = snapshots(&mut t, "d", "root")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["s1", "s2"]);
}

/// qcow2 looks a snapshot up by id before name (`qemu-img snapshot -a 1`
/// applies the snapshot whose *id* is 1), so a snapshot named like another
/// snapshot's id must not load the other one.
#[test]
fn a_snapshot_named_like_another_snapshots_id_is_the_one_loaded() {
    if !have_qemu_img("a_snapshot_named_like_another_snapshots_id_is_the_one_loaded") {
        return;
    }
    let mut t = Test::new();
    let root = snapshot_vm(&mut t);
    assert!(qemu_io(&root, "write -P 0x11 0 64k"));
    t.args(["snapshot", "d", "create", "root", "a"]).run();
    assert!(qemu_io(&root, "write -P 0x33 0 64k"));
    // Refusing such a name at create (a usage error) would do too.
    let created = t
        .command(["snapshot", "d", "create", "root", "1"])
        .output()
        .expect("run maqet");
    if created.status.code() == Some(2) {
        assert!(
            String::from_utf8_lossy(&created.stderr).contains("would be read as a snapshot id")
        );
        return;
    }
    assert!(created.status.success(), "{created:?}");
    assert!(qemu_io(&root, "write -P 0x44 0 64k"));
    t.args(["snapshot", "d", "load", "root", "1"]).run();
    assert!(
        qemu_io(&root, "read -P 0x33 0 64k"),
        "`load root 1` applied the snapshot whose id is 1 (named `a`), not the one named `1`"
    );
}

// ---------------------------------------------------------------------------
// Live snapshots
// ---------------------------------------------------------------------------

const LIVE: &str = "live: RAM, devices and every writable qcow2 disk";

#[test]
fn a_live_snapshot_brings_back_the_guests_memory() {
    if !have_qemu("a_live_snapshot_brings_back_the_guests_memory") {
        return;
    }
    let mut t = Test::new();
    add(
        &mut t,
        "live",
        &with_storage(&guest_config("live"), r#"Qcow2(name: "root", size: "32M")"#),
    );
    let _stop = t.stopper("live");
    let ready = format!("console:^{READY}$");
    t.args(["start", "live", "--wait-for", &ready, "--timeout", "120"])
        .run();

    // The guest's /tmp is a tmpfs: the file lives in RAM only.
    guest_runs(
        &mut t,
        "live",
        "echo before > /tmp/m; echo a-$((6*7))",
        "a-42",
    );
    t.args(["snapshot", "live", "create", "root", "live1"])
        .stdout(&format!("created snapshot live1 ({LIVE})\n"))
        .run();
    guest_runs(
        &mut t,
        "live",
        "echo after > /tmp/m; echo b-$((6*7))",
        "b-42",
    );
    t.args(["snapshot", "live", "load", "root", "live1"])
        .stdout(&format!("loaded snapshot live1 ({LIVE})\n"))
        .run();
    guest_runs(
        &mut t,
        "live",
        "echo c-$((6*7))=$(cat /tmp/m)",
        "c-42=before",
    );

    // The RAM went into the drive's image: listed with a VM state size.
    let list = t.args(["snapshot", "live", "list", "root"]).run().stdout;
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| {
            l.split("  ")
                .filter(|c| !c.is_empty())
                .map(str::trim)
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "DATE", "VM STATE", "GUEST CLOCK"],
        "{list}"
    );
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(rows[1][0], "live1", "{list}");
    assert!(rows[1][2].ends_with('M'), "a VM state of some MiB: {list}");
    let json = t
        .args(["--json", "snapshot", "live", "list", "root"])
        .run()
        .json();
    assert_eq!(json["live"], true);
    assert!(
        json["snapshots"][0]["vm_state_bytes"]
            .as_u64()
            .is_some_and(|b| b > 1024 * 1024)
    );

    assert_eq!(
        fails(&mut t, &["snapshot", "live", "create", "root", "live1"], 3),
        (
            "drive `root` already has a snapshot named `live1`".to_owned(),
            "choose another name, or add --overwrite to replace it".to_owned()
        )
    );
    assert_eq!(
        fails(&mut t, &["snapshot", "live", "load", "root", "nope"], 3),
        (
            "drive `root` has no snapshot named `nope`".to_owned(),
            "its snapshots: live1".to_owned()
        )
    );
    t.args(["snapshot", "live", "create", "root", "live1", "--overwrite"])
        .stdout(&format!("created snapshot live1 ({LIVE})\n"))
        .run();
    t.args(["snapshot", "live", "delete", "root", "live1"])
        .stdout(&format!("deleted snapshot live1 ({LIVE})\n"))
        .run();
    t.args(["snapshot", "live", "list", "root"])
        .stdout("NAME  DATE  VM STATE  GUEST CLOCK\n")
        .run();
    let status = t.args(["--json", "status", "live"]).run().json();
    assert_eq!(status["run_state"], "running");
    t.args(["stop", "--force", "live"])
        .stdout("stopped live: QEMU quit\n")
        .run();
}

#[test]
fn a_live_snapshot_covers_every_qcow2_drive_and_says_raw_drives_are_left_out() {
    if !have_qemu("a_live_snapshot_covers_every_qcow2_drive_and_says_raw_drives_are_left_out") {
        return;
    }
    let mut t = Test::new();
    std::fs::write(t.path("scratch.raw"), vec![0u8; 1024 * 1024]).expect("write scratch.raw");
    std::fs::write(t.path("cd.iso"), vec![0u8; 1024 * 1024]).expect("write cd.iso");
    add(
        &mut t,
        "multi",
        &with_storage(
            &bios_config("multi"),
            r#"Qcow2(name: "root", size: "32M"), Qcow2(name: "second", size: "16M", interface: Sata),
               Raw(name: "scratch", file: "scratch.raw", interface: Scsi), Cdrom(name: "cd", file: "cd.iso")"#,
        ),
    );
    let _stop = t.stopper("multi");
    t.args(["start", "multi"]).run();
    // Read-only media need no snapshot; a writable raw disk cannot have one,
    // and the user must hear that without -v.
    let scratch = s(&t.path("scratch.raw"));
    t.args(["snapshot", "multi", "create", "root", "s"])
        .stdout(&format!("created snapshot s ({LIVE})\n"))
        .stderr_contains(&format!(
            "writable raw images are not in the snapshot (raw cannot hold one): {scratch}"
        ))
        .run();
    let root = snapshots(&mut t, "multi", "root");
    let second = snapshots(&mut t, "multi", "second");
    assert_eq!(root.len(), 1);
    assert!(root[0].1 > 0, "the VM state is in root");
    assert_eq!(
        second,
        [("s".to_owned(), 0)],
        "second has the disk state only"
    );
    t.args(["stop", "--force", "multi"]).run();
}

/// The RAM goes into DRIVE; a read-only drive cannot take it, and the
/// user should hear that rather than QEMU's "block device does not exist".
#[test]
fn a_live_snapshot_needs_a_writable_drive_for_the_vm_state() {
    let test = "a_live_snapshot_needs_a_writable_drive_for_the_vm_state";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &s(&t.path("ro.qcow2")),
        "16M",
    ]);
    add(
        &mut t,
        "ro",
        &with_storage(
            &bios_config("ro"),
            r#"Qcow2(name: "root", file: "ro.qcow2", readonly: true), Qcow2(name: "w", size: "16M")"#,
        ),
    );
    let _stop = t.stopper("ro");
    t.args(["start", "ro"]).run();
    // Refused (4): the drive is fine, the request would write into it.
    let (message, help) = fails(&mut t, &["snapshot", "ro", "create", "root", "x"], 4);
    assert!(
        message.contains("read-only") || help.contains("read-only"),
        "{message} / {help}"
    );
    t.args(["snapshot", "ro", "create", "w", "x"])
        .stdout(&format!("created snapshot x ({LIVE})\n"))
        .run();
    t.args(["stop", "--force", "ro"]).run();
}

/// QEMU's snapshot-load stops the VM first and leaves it stopped
/// (`restore-vm`) when the load fails; a snapshot that one drive lacks
/// (taken offline on the other) must not get that far.
#[test]
fn a_live_load_of_a_snapshot_one_drive_lacks_leaves_the_vm_running() {
    if !have_qemu("a_live_load_of_a_snapshot_one_drive_lacks_leaves_the_vm_running")
        || !have_qemu_img("a_live_load_of_a_snapshot_one_drive_lacks_leaves_the_vm_running")
    {
        return;
    }
    let mut t = Test::new();
    add(
        &mut t,
        "half",
        &with_storage(
            &bios_config("half"),
            r#"Qcow2(name: "root", size: "32M"), Qcow2(name: "second", size: "16M")"#,
        ),
    );
    t.args(["disk", "create", "half", "root"]).run();
    t.args(["snapshot", "half", "create", "root", "off1"]).run();
    let _stop = t.stopper("half");
    t.args(["start", "half"]).run();
    let (message, help) = fails(&mut t, &["snapshot", "half", "load", "root", "off1"], 3);
    assert!(message.contains("off1"), "{message} / {help}");
    let status = t.args(["--json", "status", "half"]).run().json();
    assert_eq!(
        status["run_state"], "running",
        "a refused load must leave the guest running ({message} / {help})"
    );
    t.args(["stop", "--force", "half"]).run();
}

/// With UEFI the variables live in a writable pflash device, which cannot
/// hold an internal snapshot: a live snapshot would restore RAM that no
/// longer matches the varstore. maqet must explain, not succeed silently.
#[test]
fn a_live_snapshot_of_a_uefi_guest_with_a_writable_varstore_is_explained() {
    let test = "a_live_snapshot_of_a_uefi_guest_with_a_writable_varstore_is_explained";
    if !have_qemu(test) {
        return;
    }
    let ovmf = Path::new("/usr/share/OVMF");
    let (code, vars) = (ovmf.join("OVMF_CODE_4M.fd"), ovmf.join("OVMF_VARS_4M.fd"));
    if !crate::harness::needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        code.exists() && vars.exists(),
        "OVMF (package ovmf) is not installed",
    ) {
        return;
    }
    let mut t = Test::new();
    std::fs::copy(&code, t.path("code.fd")).expect("copy OVMF_CODE");
    std::fs::copy(&vars, t.path("vars.fd")).expect("copy OVMF_VARS");
    let config = format!(
        "(name: \"uefi\", accel: Tcg, memory: \"128M\",\n \
         storage: [Qcow2(name: \"root\", size: \"32M\")],\n \
         arguments: [\"-drive\", \"if=pflash,format=raw,unit=0,readonly=on,file={}\",\n             \
         \"-drive\", \"if=pflash,format=raw,unit=1,file={}\"])\n",
        s(&t.path("code.fd")),
        s(&t.path("vars.fd"))
    );
    add(&mut t, "uefi", &config);
    let _stop = t.stopper("uefi");
    // Raw `-drive` arguments open files only the settings file can allow a
    // confined QEMU (docs/security.md).
    let settings = format!(
        "(allow_read: [\"{}\"], allow_write: [\"{}\"])",
        s(&t.path("code.fd")),
        s(&t.path("vars.fd"))
    );
    t.file("settings/maqet.ron", &settings);
    let settings = t.path("settings/maqet.ron");
    t.env("MAQET_CONFIG", &settings)
        .args(["start", "uefi"])
        .run();
    let (message, help) = fails(&mut t, &["snapshot", "uefi", "create", "root", "u1"], 4);
    assert!(
        format!("{message} {help}").contains("pflash"),
        "{message} / {help}"
    );
    t.args(["stop", "--force", "uefi"]).run();
}

// ---------------------------------------------------------------------------
// The path filter on images
// ---------------------------------------------------------------------------

/// Images that make QEMU open something outside the path filter, and what
/// maqet says about each (`{dir}` is the test's directory).
fn evil_images(t: &Test) -> Vec<(&'static str, String)> {
    let dir = s(t.root());
    let at = |name: &str| s(&t.path(name));
    let create = |name: &str, backing: &str| {
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            backing,
            "-F",
            "raw",
            "-u",
            &at(name),
            "16M",
        ]);
    };
    create("passwd.qcow2", "/etc/passwd");
    std::os::unix::fs::symlink("/etc/passwd", t.path("link.img")).expect("symlink");
    create("link.qcow2", &at("link.img"));
    create("nbd.qcow2", "nbd:localhost:10809");
    // A data file can only be named with `amend` without creating it.
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={}", at("data.raw")),
        &at("datafile.qcow2"),
        "16M",
    ]);
    qemu_img(&[
        "amend",
        "-f",
        "qcow2",
        "-o",
        "data_file=/etc/maqet-test/data.raw",
        &at("datafile.qcow2"),
    ]);
    // The evil image one level down a chain that starts clean.
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &at("passwd.qcow2"),
        "-F",
        "qcow2",
        "-u",
        &at("deep.qcow2"),
        "16M",
    ]);
    let system = "resolves to `/etc/passwd`, inside the system directory /etc";
    vec![
        (
            "passwd.qcow2",
            format!(
                "the backing file `/etc/passwd` of {dir}/passwd.qcow2 is refused: `/etc/passwd` {system}"
            ),
        ),
        (
            "link.qcow2",
            format!(
                "the backing file `{dir}/link.img` of {dir}/link.qcow2 is refused: `{dir}/link.img` {system}"
            ),
        ),
        (
            "nbd.qcow2",
            format!(
                "the backing file `nbd:localhost:10809` of {dir}/nbd.qcow2 is not a local file"
            ),
        ),
        (
            "datafile.qcow2",
            format!(
                "the data file `/etc/maqet-test/data.raw` of {dir}/datafile.qcow2 is an external data file, which maqet does not attach"
            ),
        ),
        (
            "deep.qcow2",
            format!(
                "the backing file `/etc/passwd` of {dir}/passwd.qcow2 is refused: `/etc/passwd` {system}"
            ),
        ),
    ]
}

#[test]
fn an_image_whose_chain_leaves_the_path_filter_is_refused_at_add() {
    if !have_qemu_img("an_image_whose_chain_leaves_the_path_filter_is_refused_at_add") {
        return;
    }
    let mut t = Test::new();
    for (file, why) in evil_images(&t) {
        t.file(
            "evil.ron",
            &with_storage(
                &bios_config("evil"),
                &format!(r#"Qcow2(name: "root", file: "{file}")"#),
            ),
        );
        let (message, help) = fails(&mut t, &["add", "evil.ron"], 4);
        assert_eq!(message, format!("drive `root`: {why}"), "{file}");
        assert!(!help.is_empty());
        // The same image as the base of an image maqet would create.
        t.file(
            "evil.ron",
            &with_storage(
                &bios_config("evil"),
                &format!(r#"Qcow2(name: "root", size: "32M", backing_file: "{file}")"#),
            ),
        );
        let (message, _) = fails(&mut t, &["add", "evil.ron"], 4);
        assert_eq!(message, format!("drive `root`: {why}"), "{file} as a base");
    }
    assert_eq!(t.list(), Vec::<Value>::new(), "nothing was stored");
    assert!(!t.data_dir().join("disks").exists());
}

#[test]
fn an_evil_image_is_refused_by_apply_and_when_swapped_in_by_start() {
    let test = "an_evil_image_is_refused_by_apply_and_when_swapped_in_by_start";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    let evil = evil_images(&t);
    let good = t.path("good.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&good), "16M"]);
    add(
        &mut t,
        "g",
        &with_storage(
            &bios_config("g"),
            r#"Qcow2(name: "root", file: "good.qcow2")"#,
        ),
    );
    let stored =
        |t: &mut Test| t.args(["--json", "info", "g"]).run().json()["config"]["storage"].clone();
    let before = stored(&mut t);
    t.file(
        "evil.ron",
        r#"(storage: [Qcow2(name: "root", file: "passwd.qcow2")])"#,
    );
    let (message, _) = fails(&mut t, &["apply", "g", "evil.ron"], 4);
    assert_eq!(message, format!("drive `root`: {}", evil[0].1));
    assert_eq!(stored(&mut t), before, "the stored config is unchanged");

    // The file the VM was added with is replaced behind maqet's back.
    let _stop = t.stopper("g");
    let dir = s(t.root());
    for (file, why) in &evil {
        std::fs::copy(t.path(file), &good).expect("swap the image");
        let why = why.replace(&format!("{dir}/{file}"), &s(&good));
        let (message, _) = fails(&mut t, &["start", "g"], 4);
        assert_eq!(message, format!("drive `root`: {why}"), "{file}");
        let status = t.args(["--json", "status", "g"]).run().json();
        assert_eq!(status["state"], "created", "{file}");
    }
}

/// The path filter runs when a file is added; a file replaced by a symlink
/// into /etc afterwards must be refused when QEMU is about to open it.
#[test]
fn a_drive_file_swapped_for_a_symlink_into_etc_is_refused_at_start() {
    let test = "a_drive_file_swapped_for_a_symlink_into_etc_is_refused_at_start";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    std::fs::write(t.path("disk.raw"), vec![0u8; 1024 * 1024]).expect("write disk.raw");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &s(&t.path("disk.qcow2")),
        "16M",
    ]);
    // Read-only, so that even while the bug is there QEMU cannot write to
    // /etc/passwd.
    for (name, drive) in [
        (
            "sw-raw",
            r#"Raw(name: "d", file: "disk.raw", readonly: true)"#,
        ),
        (
            "sw-qcow2",
            r#"Qcow2(name: "d", file: "disk.qcow2", readonly: true)"#,
        ),
    ] {
        add(&mut t, name, &with_storage(&bios_config(name), drive));
    }
    for (name, file) in [("sw-raw", "disk.raw"), ("sw-qcow2", "disk.qcow2")] {
        std::fs::remove_file(t.path(file)).expect("remove the image");
        std::os::unix::fs::symlink("/etc/passwd", t.path(file)).expect("symlink");
        let _stop = t.stopper(name);
        let (message, _) = fails(&mut t, &["start", name], 4);
        assert!(message.contains("/etc/passwd"), "{name}: {message}");
    }
}

/// `qemu-img snapshot` opens the backing chain; an image swapped for one
/// with an evil backing after `add` must be checked before it is opened.
#[test]
fn an_offline_snapshot_checks_the_chain_before_qemu_img_opens_it() {
    if !have_qemu_img("an_offline_snapshot_checks_the_chain_before_qemu_img_opens_it") {
        return;
    }
    let mut t = Test::new();
    let evil = evil_images(&t);
    let good = t.path("good.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&good), "16M"]);
    add(
        &mut t,
        "g",
        &with_storage(
            &bios_config("g"),
            r#"Qcow2(name: "root", file: "good.qcow2")"#,
        ),
    );
    let dir = s(t.root());
    for (file, why) in &evil {
        std::fs::copy(t.path(file), &good).expect("swap the image");
        let why = why.replace(&format!("{dir}/{file}"), &s(&good));
        let (message, _) = fails(&mut t, &["snapshot", "g", "create", "root", "s"], 4);
        assert_eq!(message, format!("drive `root`: {why}"), "{file}");
    }
}

// ---------------------------------------------------------------------------
// Formats are named, never probed
// ---------------------------------------------------------------------------

#[test]
fn a_raw_image_that_starts_with_a_qcow2_header_is_attached_as_raw() {
    let test = "a_raw_image_that_starts_with_a_qcow2_header_is_attached_as_raw";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    let image = t.path("x.img");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&image), "16M"]);
    let before = std::fs::read(&image).expect("read x.img");
    add(
        &mut t,
        "rawq",
        &with_storage(&bios_config("rawq"), r#"Raw(name: "r", file: "x.img")"#),
    );
    // A problem found is exit 1, with the table on stdout.
    let expected = format!(
        "DRIVE  STATE                                                                       FILE\n\
         r      the file looks like qcow2, but the config says raw (it is attached as raw)  {}\n",
        image.display()
    );
    t.args(["storage", "verify", "rawq"])
        .status(1)
        .stdout(&expected)
        .run();
    let json = t
        .args(["--json", "storage", "verify", "rawq"])
        .status(1)
        .stdout_any()
        .run()
        .json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["drives"][0]["ok"], false);

    let _stop = t.stopper("rawq");
    t.args(["start", "rawq"]).run();
    let inspect = t.args(["--json", "inspect", "rawq"]).run().json();
    let block = inspect["block"]
        .as_array()
        .expect("inspect lists block devices")
        .iter()
        .find(|b| b["inserted"]["node-name"] == "maqet-drive0")
        .expect("the drive's node")
        .clone();
    assert_eq!(block["inserted"]["drv"], "raw", "{block}");
    assert_eq!(block["inserted"]["image"]["format"], "raw", "{block}");
    // The file's size in whole sectors, not the 16 MiB its header claims.
    assert_eq!(
        block["inserted"]["image"]["virtual-size"],
        before.len().div_ceil(512) * 512,
        "{block}"
    );
    let argv: Vec<&str> = inspect["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        argv.contains(
            &r#"{"driver":"raw","file":"maqet-file0","node-name":"maqet-drive0","read-only":false}"#
        ),
        "{argv:?}"
    );
    t.args(["stop", "--force", "rawq"]).run();
    assert_eq!(std::fs::read(&image).expect("read x.img"), before);
}

// ---------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------

#[test]
fn rm_clean_storage_deletes_what_maqet_created_and_keeps_the_users_image() {
    if !have_qemu_img("rm_clean_storage_deletes_what_maqet_created_and_keeps_the_users_image") {
        return;
    }
    let mut t = Test::new();
    let mine = t.path("mine.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&mine), "16M"]);
    let config = with_storage(
        &bios_config("c"),
        r#"Qcow2(name: "root", size: "32M"), Raw(name: "made", file: "made.raw", size: "1M"),
           Qcow2(name: "mine", file: "mine.qcow2")"#,
    );
    let disks = t.data_dir().join("disks");

    // Without --clean-storage every image stays.
    let id = add(&mut t, "c", &config);
    t.args(["disk", "create", "c", "root"]).run();
    t.args(["rm", "c"])
        .stdout(&format!(
            "removed c ({})\n  kept {} (not created by maqet)\n",
            &id[..12],
            s(&mine)
        ))
        .run();
    assert_eq!(tree(&disks), [id.clone(), format!("{id}/root.qcow2")]);
    std::fs::remove_dir_all(disks.join(&id)).expect("clean up");

    let id = add(&mut t, "c", &config);
    t.args(["disk", "create", "c", "root"]).run();
    t.args(["disk", "create", "c", "made"]).run();
    let made = s(&t.path("made.raw"));
    t.args(["rm", "c", "--clean-storage"])
        .stdout(&format!(
            "removed c ({})\n  deleted {}\n  deleted {}\n  kept {} (not created by maqet)\n",
            &id[..12],
            s(&disks.join(&id).join("root.qcow2")),
            made,
            s(&mine)
        ))
        .run();
    assert_eq!(
        tree(&disks),
        Vec::<String>::new(),
        "the VM's directory went too"
    );
    assert!(!t.path("made.raw").exists());
    assert_eq!(qcow2_info(&mine)["virtual-size"], 16 * 1024 * 1024);
    // The same, as JSON.
    let id = add(&mut t, "c", &config);
    t.args(["disk", "create", "c", "root"]).run();
    let out = t
        .args(["--json", "rm", "c", "--clean-storage"])
        .run()
        .json();
    assert_eq!(out[0]["id"], id.as_str());
    assert_eq!(out[0]["deleted"][0], s(&disks.join(&id).join("root.qcow2")));
    assert_eq!(out[0]["kept"][0], s(&mine));
}

#[test]
fn storage_orphans_lists_and_deletes_files_no_vm_uses() {
    if !have_qemu_img("storage_orphans_lists_and_deletes_files_no_vm_uses") {
        return;
    }
    let mut t = Test::new();
    t.args(["storage", "orphans"]).stdout("").run();
    let config =
        |name: &str| with_storage(&bios_config(name), r#"Qcow2(name: "root", size: "32M")"#);
    let keep = add(&mut t, "keep", &config("keep"));
    t.args(["disk", "create", "keep", "root"]).run();
    let gone = add(&mut t, "gone", &config("gone"));
    t.args(["disk", "create", "gone", "root"]).run();
    t.args(["rm", "gone"]).run();
    let disks = t.data_dir().join("disks");
    std::fs::write(disks.join("stray.img"), "x").expect("write a stray file");
    std::fs::create_dir(disks.join("junk")).expect("mkdir junk");
    std::fs::write(disks.join("junk/old.qcow2"), "y").expect("write a stray file");
    // Symlinks are not maqet's images: neither listed nor said deleted
    // (they were reported deleted and left in place).
    std::fs::write(t.path("victim.qcow2"), "v").expect("write the victim");
    std::os::unix::fs::symlink(t.path("victim.qcow2"), disks.join("l.qcow2")).expect("symlink");

    let mut orphans = [
        disks.join(&gone).join("root.qcow2"),
        disks.join("junk/old.qcow2"),
        disks.join("stray.img"),
    ];
    orphans.sort();
    let listed: String = orphans.iter().map(|p| format!("{}\n", s(p))).collect();
    t.args(["storage", "orphans"]).stdout(&listed).run();
    let json = t.args(["--json", "storage", "orphans"]).run().json();
    assert_eq!(json["deleted"], false);
    assert_eq!(
        json["files"],
        serde_json::json!(orphans.iter().map(|p| s(p)).collect::<Vec<_>>())
    );

    let deleted: String = orphans
        .iter()
        .map(|p| format!("deleted {}\n", s(p)))
        .collect();
    t.args(["storage", "orphans", "--delete"])
        .stdout(&deleted)
        .run();
    t.args(["storage", "orphans"]).stdout("").run();
    std::fs::remove_file(disks.join("l.qcow2")).expect("the symlink is still there");
    assert!(t.path("victim.qcow2").exists());
    assert_eq!(tree(&disks), [keep.clone(), format!("{keep}/root.qcow2")]);
}

/// Before the first start, a raw image with a size is one start will make.
#[test]
fn storage_verify_says_start_creates_a_sized_raw_image() {
    let mut t = Test::new();
    t.file(
        "r.ron",
        "(name: \"r\", storage: [Raw(name: \"d\", file: \"d.raw\", size: \"1M\")])\n",
    );
    t.args(["add", "r.ron"]).stdout_any().run();
    let out = t
        .args(["--json", "storage", "verify", "r"])
        .status(1)
        .stdout_any()
        .run()
        .json();
    assert_eq!(
        out["drives"][0]["problem"],
        "missing (maqet creates it at start)"
    );
}
