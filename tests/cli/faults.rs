//! Damaged stores, unsafe directories, a missing HOME: clear errors, nothing
//! re-initialised behind the user's back.

use std::os::unix::fs::PermissionsExt;

use crate::guest::{bios_config, have_qemu};
use crate::harness::{Test, seeded};

#[test]
fn a_truncated_store_is_reported_damaged_and_left_as_it_is() {
    let mut t = Test::new();
    t.add_empty("a");
    t.add_empty("b");
    let db = t.data_dir().join("maqet.redb");
    let bytes = std::fs::read(&db).expect("read the store");
    std::fs::write(&db, &bytes[..bytes.len() / 2]).expect("truncate");
    let cut = std::fs::read(&db).expect("read");
    let out = t.args(["ls"]).status(1).run();
    assert!(out.stderr.contains("is damaged"), "{}", out.stderr);
    assert!(
        out.stderr.contains(db.to_str().expect("utf-8")),
        "names the file"
    );
    assert!(out.stderr.contains("restore"), "says what to do");
    t.args(["add", "--empty", "--name", "c"]).status(1).run();
    assert_eq!(
        std::fs::read(&db).expect("read"),
        cut,
        "never re-initialised"
    );
}

/// An empty file where the store should be is what a truncation, a full
/// disk or a botched restore leaves; maqet never makes one (it creates the
/// store beside its name and renames it into place). It used to read as an
/// empty store, and the next `add` made it one: every VM gone, exit 0.
#[test]
fn an_empty_or_headerless_store_is_damaged_not_new() {
    let mut t = Test::new();
    t.add_empty("a");
    let db = t.data_dir().join("maqet.redb");
    let clean = std::fs::read(&db).expect("read the store");
    let commands: &[&[&str]] = &[
        &["ls"],
        &["ls", "--names"],
        &["info", "a"],
        &["status", "a"],
        &["add", "--empty", "--name", "b"],
        &["apply", "a", "--memory", "1G"],
        &["rm", "--force", "a"],
        &["start", "a"],
    ];
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("zeros", vec![0; 100]),
        ("text", b"x".repeat(100)),
    ] {
        std::fs::write(&db, &bytes).expect("damage the store");
        // Long ago, so that any write would show in the mtime.
        let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(&db)
            .and_then(|f| f.set_modified(past))
            .expect("set the mtime");
        for args in commands {
            let err = t.arg("--json").args(*args).status(1).run().stderr_json();
            assert_eq!(
                err["error"]["code"], "maqet::store::damaged",
                "{what}, {args:?}"
            );
            assert_eq!(err["error"]["exit_code"], 1, "{what}, {args:?}");
            let message = err["error"]["message"].as_str().expect("a message");
            assert!(
                message.starts_with(&format!("the store {} is damaged: ", db.display())),
                "{what}, {args:?}: {message}"
            );
            // redb refuses a file without its header on its own; an empty
            // one is maqet's check (`refuse_empty`), which says so.
            if what == "empty" {
                assert_eq!(
                    message,
                    format!("the store {} is damaged: the file is empty", db.display()),
                    "{args:?}"
                );
            }
        }
        // doctor reports it as its failed database check.
        let report = t
            .args(["--json", "doctor"])
            .status(1)
            .stdout_any()
            .run()
            .json();
        let database = report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == "database"))
            .expect("a database check");
        assert_eq!(database["status"], "fail", "{what}: {database}");
        assert!(
            database["detail"]
                .as_str()
                .is_some_and(|d| d.contains("is damaged")),
            "{what}: {database}"
        );
        let meta = std::fs::metadata(&db).expect("the store is still there");
        assert_eq!(
            std::fs::read(&db).expect("read"),
            bytes,
            "{what}: untouched"
        );
        assert_eq!(
            meta.modified().expect("mtime"),
            past,
            "{what}: never written"
        );
    }
    std::fs::write(&db, &clean).expect("restore");
    assert_eq!(t.list().len(), 1, "the restored store has its VM");
    // No file at all is a new store, as ever.
    std::fs::remove_file(&db).expect("remove the store");
    assert_eq!(t.list().len(), 0);
    t.add_empty("b");
    assert_eq!(t.list().len(), 1);
}

/// A bug in maqet's own code inside a write transaction is maqet's, not
/// the store's: it used to exit with "the store is damaged … move it aside
/// to start an empty store", advice that loses every VM. The test-only
/// `MAQET_TEST_PANIC_IN=write` (read by debug builds alone) panics in every
/// write once the command's closure has made its changes, before the
/// commit. Byte for byte the file does change: redb marks the file in use
/// when it opens it for writing and records its allocator state when it
/// closes, whatever was committed; what must not change is every record,
/// and the file must be left closed clean.
#[test]
fn a_panic_in_a_write_is_an_internal_error_that_keeps_every_vm() {
    let mut t = Test::new();
    t.add_empty("a");
    t.add_empty("b");
    let db = t.data_dir().join("maqet.redb");
    let records = |t: &mut Test| {
        let listed = t.args(["--json", "ls"]).run().stdout;
        let a = t.args(["--json", "info", "a"]).run().stdout;
        let b = t.args(["--json", "info", "b"]).run().stdout;
        (listed, a, b)
    };
    let before = records(&mut t);
    let writes: &[&[&str]] = &[
        &["add", "--empty", "--name", "c"],
        &["apply", "a", "--memory", "2G"],
        &["apply", "new", "--memory", "2G"],
        &["rm", "--force", "b"],
    ];
    // Closed clean, not left to a repair: the next read-only command opens
    // it read-only and changes no byte (a write abandoned while unwinding
    // leaves the file marked in use, and that `ls` would repair it).
    let closed_clean = |t: &mut Test, args: &[&str]| {
        let closed = std::fs::read(&db).expect("read the store");
        t.args(["ls"]).stdout_any().run();
        assert!(
            std::fs::read(&db).expect("read the store") == closed,
            "{args:?}: reading the store after it needed a repair"
        );
    };
    for args in writes {
        let err = t
            .env("MAQET_TEST_PANIC_IN", "write")
            .arg("--json")
            .args(*args)
            .status(1)
            .run()
            .stderr_json();
        closed_clean(&mut t, args);
        assert_eq!(
            err,
            serde_json::json!({"error": {
                "code": "maqet::internal",
                "message": "internal error: MAQET_TEST_PANIC_IN=write: \
                            a deliberate panic before the commit",
                "help": "this is a bug in maqet; please report it with the command you ran \
                         and what `maqet -vvv ...` prints",
                "exit_code": 1,
            }}),
            "{args:?}"
        );
        let text = t
            .env("MAQET_TEST_PANIC_IN", "write")
            .args(*args)
            .status(1)
            .stderr_contains("maqet::internal")
            .stderr_contains("internal error: MAQET_TEST_PANIC_IN=write")
            .stderr_contains("this is a bug in maqet")
            .run()
            .stderr;
        closed_clean(&mut t, args);
        for advice in ["damaged", "move it aside", "restore", "empty store"] {
            assert!(!text.contains(advice), "{args:?}: {text}");
        }
        assert_eq!(records(&mut t), before, "{args:?}: nothing committed");
    }
    // redb's own check of every page finds nothing wrong.
    // (doctor's exit code is the host's: QEMU, KVM and so on.)
    let out = t
        .command(["--json", "doctor"])
        .output()
        .expect("run doctor");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let database = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == "database"))
        .expect("a database check")
        .clone();
    assert_eq!(database["status"], "ok", "{database}");
    // And without the variable the same commands work.
    t.args(["rm", "--force", "b"]).stdout_any().run();
    assert_eq!(t.list().len(), 1);
}

/// Every command that opens the store, run against a store with flipped
/// bits. Random: the starting seed is printed and named in every failure;
/// `MAQET_STRESS_SEED=<seed> cargo test --test cli -- --exact
/// faults::flipped_bytes_never_crash_maqet` replays the same flips.
const STORE_COMMANDS: &[&[&str]] = &[
    &["ls"],
    &["ls", "--names"],
    &["info", "a"],
    &["status", "a"],
    &["inspect", "a"],
    &["console", "--log", "a"],
    &["export", "--to", "libvirt", "a"],
    &["storage", "orphans"],
    &["start", "--dry-run", "a"],
    // No QEMU on PATH: it fails once it has read the VM, not by booting it.
    &["start", "a"],
    &["stop", "--force", "a"],
    &["qmp", "a", "query-status"],
    &["ssh", "a"],
    &["snapshot", "a", "list", "disk0"],
    &["disk", "create", "a", "disk0"],
    &["storage", "verify", "a"],
    &["add", "--empty", "--name", "d"],
    &["apply", "a", "--memory", "2G"],
    &["rm", "--force", "b"],
    // Adds `r`, then fails: no QEMU on PATH.
    &["run", "--name", "r", "--memory", "128M"],
    &["cleanup"],
    &["doctor"],
];

/// What a command ended with: its exit code and its error's code (for
/// doctor, which reports on stdout, its database check).
fn outcome(args: &[&str], out: &std::process::Output) -> (Option<i32>, String) {
    let code = out.status.code();
    if args[0] == "doctor" {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor's report is not JSON ({e})"));
        let database = report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == "database"))
            .expect("a database check");
        let detail = database["detail"].as_str().unwrap_or_default();
        let what = match database["status"].as_str() {
            Some("fail")
                if detail.contains(" is damaged: ")
                    || detail.contains("integrity check found damage") =>
            {
                "maqet::store::damaged"
            }
            Some("fail") if detail.contains("was written by a newer maqet") => {
                "maqet::store::newer"
            }
            Some(status) => status,
            None => "no status",
        };
        return (code, what.to_owned());
    }
    if code == Some(0) {
        return (code, String::new());
    }
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
        panic!(
            "{args:?}: exit {code:?} without a JSON error ({e}; a panic is 101, a signal None)\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        code,
        err["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The commands of `STORE_COMMANDS` that change the store. redb changes
/// the file as soon as it opens it for writing (it marks the file in use)
/// and again when it closes it (it records its allocator state), so when
/// one of these finds the damage inside its transaction, the file is not
/// byte for byte what it was; what it must not change is anything a
/// command reads from it.
const WRITES: &[&str] = &["add", "apply", "rm", "run"];

/// What the commands that read VMs show.
const READS: &[&[&str]] = &[&["ls"], &["info", "a"], &["info", "b"], &["info", "c"]];

/// Flipped bits in the store: every command that opens it either does
/// what it does on the intact store, or refuses the store the way damage
/// is refused (exit 1 "damaged", or exit 4 "newer" when a flip lands in
/// the schema version), with a JSON error, and leaves a store it refuses
/// byte for byte as it was (a write: as every read command sees it, see
/// `WRITES`). A command naming a VM may also meet a different VM or none
/// (exit 3, see `different_vm`). Never a panic (exit 101), an "internal
/// error", "cannot use the store" (an I/O error: redb's "failed to fill
/// whole buffer" for a page past the end of the file, which is damage),
/// a name that points at a VM of another name, or a record of another id
/// (which made `apply` find its own name taken and `stop` miss its VM).
#[test]
fn flipped_bytes_never_crash_maqet() {
    let mut rng = seeded("flipped_bytes_never_crash_maqet");
    let seed = rng.seed();
    let mut t = Test::new();
    for name in ["a", "b", "c"] {
        t.add_empty(name);
    }
    let db = t.data_dir().join("maqet.redb");
    let clean = std::fs::read(&db).expect("read the store");
    std::fs::create_dir(t.path("bin")).expect("mkdir");
    let run = |args: &[&str], bytes: &[u8]| {
        std::fs::write(&db, bytes).expect("write the store");
        let out = t
            .command(["--json"])
            .args(args)
            .env("PATH", t.path("bin"))
            .output()
            .expect("run maqet");
        let after = std::fs::read(&db).expect("read the store");
        (outcome(args, &out), out, after)
    };
    let reads = |bytes: &[u8]| -> Vec<_> {
        READS
            .iter()
            .map(|args| {
                let (_, out, _) = run(args, bytes);
                (out.status.code(), out.stdout, out.stderr)
            })
            .collect()
    };
    let intact: Vec<_> = STORE_COMMANDS
        .iter()
        .map(|args| run(args, &clean).0)
        .collect();
    for (args, outcome) in STORE_COMMANDS.iter().zip(&intact) {
        assert!(
            !outcome.1.starts_with("maqet::store") && outcome.1 != "maqet::internal",
            "{args:?} on the intact store: {outcome:?}"
        );
    }
    // Refused as damage: exit 1 "damaged", or "newer" for a flip in the
    // schema version (exit 4; doctor, which reports every check, exit 1).
    let as_damage = |args: &[&str], got: &(Option<i32>, String)| {
        matches!(
            (args[0], got.0, got.1.as_str()),
            (_, Some(1), "maqet::store::damaged")
                | ("doctor", Some(1), "maqet::store::newer")
                | (_, Some(4), "maqet::store::newer")
        )
    };
    // What a command naming a VM can meet besides: a flip inside a record
    // that still decodes is another, valid VM (maqet's records carry no
    // checksum, and redb verifies its pages only in its integrity check),
    // such as one whose QEMU is `qemu-systum-x86_64` (a custom binary no
    // one granted: refused, exit 4); a flip in a name's key leaves a store
    // nothing can tell from one without that VM.
    let as_different_vm = |args: &[&str], got: &(Option<i32>, String)| {
        args.iter().any(|a| ["a", "b"].contains(a))
            && matches!(
                (got.0, got.1.as_str()),
                (
                    Some(3),
                    "maqet::vm::not_found" | "maqet::config::invalid" | "maqet::export::unmappable"
                ) | (Some(4), "maqet::refused")
            )
    };
    let mut refused = 0;
    for round in 0..40 {
        let mut bytes = clean.clone();
        let mut flips = Vec::new();
        for _ in 0..8 {
            let at = rng.below(bytes.len() as u64) as usize;
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            flips.push((at, bit));
        }
        for (args, expected) in STORE_COMMANDS.iter().zip(&intact) {
            let (got, out, after) = run(args, &bytes);
            let context = format!(
                "seed {seed} round {round} (flips {flips:?}), {args:?}: got {got:?}, \
                 on the intact store {expected:?}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if got == *expected {
                continue;
            }
            assert!(
                as_damage(args, &got) || as_different_vm(args, &got),
                "{context}"
            );
            refused += 1;
            if after == bytes {
                continue;
            }
            assert!(
                WRITES.contains(&args[0]),
                "{context}: the refused store was changed"
            );
            assert!(
                reads(&after) == reads(&bytes),
                "{context}: the refused write changed what the store reads as"
            );
        }
    }
    eprintln!("flipped_bytes_never_crash_maqet: seed {seed}, {refused} refusals");
    std::fs::write(&db, &clean).expect("restore");
    assert_eq!(t.list().len(), 3);
}

/// Flips that make redb 4.6 panic when it next allocates a page: bits of
/// the allocator state it saves on close, in a store of three VMs, found
/// by flipping bits at random and keeping the flips that alone made `add`
/// exit 101. That panic poisoned redb's locks, and the close in the
/// store's destructor panicked again, outside the store's guard: Rust's
/// message and exit 101, after the store had seemed to fail cleanly.
const PANICKING_FLIPS: [(usize, u8); 4] = [(4242, 0), (4305, 6), (8330, 3), (20513, 4)];

#[test]
fn a_store_that_makes_redb_panic_fails_cleanly() {
    let mut t = Test::new();
    for name in ["a", "b", "c"] {
        t.add_empty(name);
    }
    let before = t.list();
    let db = t.data_dir().join("maqet.redb");
    let clean = std::fs::read(&db).expect("read the store");
    let log = t.path("maqet.log");
    let writes: &[&[&str]] = &[
        &["add", "--empty", "--name", "d"],
        &["apply", "a", "--memory", "2G"],
        &["rm", "--force", "a"],
        &["start", "a"],
    ];
    for (at, bit) in PANICKING_FLIPS {
        for args in writes {
            let mut bytes = clean.clone();
            bytes[at] ^= 1 << bit;
            std::fs::write(&db, &bytes).expect("damage the store");
            let _ = std::fs::remove_file(&log);
            let err = t
                .args(["--json", "--log-file"])
                .arg(&log)
                .args(*args)
                .status(1)
                .run()
                .stderr_json();
            let context = format!("flip {at}:{bit}, {args:?}");
            assert_eq!(err["error"]["code"], "maqet::store::damaged", "{context}");
            // The test is only worth something while redb does panic here.
            let logged = std::fs::read_to_string(&log).expect("read the log");
            // Raised in redb's own source: the only panic that is damage.
            assert!(
                logged.contains("debug: panic: panicked at") && logged.contains("/redb-"),
                "{context}: redb no longer panics on this flip; find new ones \
                 (see PANICKING_FLIPS)\n{logged}"
            );
            // Nothing was committed, and the store still reads.
            assert_eq!(t.list(), before, "{context}");
        }
        let mut bytes = clean.clone();
        bytes[at] ^= 1 << bit;
        std::fs::write(&db, &bytes).expect("damage the store");
        for args in [&["ls"][..], &["info", "a"], &["status", "a"], &["doctor"]] {
            let out = t
                .command(["--json"])
                .args(args)
                .output()
                .expect("run maqet");
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "flip {at}:{bit}, {args:?}: exit {:?} (a panic is 101)\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn a_running_vm_is_unaffected_by_a_damaged_store() {
    if !have_qemu("a_running_vm_is_unaffected_by_a_damaged_store") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("steady"));
    t.args(["add", "vm.ron"]).run();
    t.args(["start", "steady"]).run();
    let pid = t.args(["--json", "status", "steady"]).run().json()["pid"]
        .as_i64()
        .expect("pid");
    let db = t.data_dir().join("maqet.redb");
    let clean = std::fs::read(&db).expect("read");
    std::fs::write(&db, b"not a database").expect("damage");
    t.args(["status", "steady"]).status(1).run();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU keeps running"
    );
    std::fs::write(&db, clean).expect("restore");
    t.args(["stop", "--force", "steady"]).run();
}

#[test]
fn an_unsafe_runtime_dir_is_refused_before_anything_starts() {
    if !have_qemu("an_unsafe_runtime_dir_is_refused_before_anything_starts") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("careful"));
    t.args(["add", "vm.ron"]).run();
    std::fs::create_dir_all(t.runtime_dir()).expect("mkdir");
    std::fs::set_permissions(t.runtime_dir(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    t.args(["start", "careful"])
        .status(4)
        .stderr_contains("group or others can get in")
        .run();
    std::fs::remove_dir(t.runtime_dir()).expect("rmdir");
    std::os::unix::fs::symlink(t.path("elsewhere"), t.runtime_dir()).expect("symlink");
    std::fs::create_dir(t.path("elsewhere")).expect("mkdir");
    t.args(["start", "careful"])
        .status(4)
        .stderr_contains("symbolic link")
        .run();
    assert_eq!(t.list()[0]["status"], "created", "nothing started");
}

#[test]
fn without_home_maqet_asks_for_a_directory_instead_of_guessing() {
    let mut t = Test::new();
    t.env_remove("HOME")
        .env_remove("MAQET_DATA_DIR")
        .env_remove("MAQET_RUNTIME_DIR")
        .args(["ls"])
        .status(2)
        .stderr_contains("HOME is not set")
        .stderr_contains("--data-dir")
        .run();
    // With the directories given, HOME is not needed.
    t.env_remove("HOME")
        .args(["ls"])
        .stdout("NAME  ID  STATUS  MEMORY  CPUS\n")
        .run();
}

/// Flips in the definition of the store's `list` table (found by a
/// black-box attack, 2026-12-07): one made its count 120 GB's worth of
/// VMs, and `ls`, `doctor` and `cleanup` aborted allocating room for them
/// (exit 134); others let `ls` list VMs every other command called damage.
/// The count is now checked against the other tables and bounded, and
/// every command calls such a store damaged. The offsets are from the
/// table names redb 4.6 keeps side by side in its table tree.
#[test]
fn a_damaged_list_table_is_damage_for_every_command() {
    let mut t = Test::new();
    for name in ["v1", "v2", "v3"] {
        t.add_empty(name);
    }
    let db = t.data_dir().join("maqet.redb");
    let clean = std::fs::read(&db).expect("read the store");
    let names = clean
        .windows(16)
        .position(|w| w == b"listmetanamesvms")
        .expect("redb keeps the table names together; find the new layout");
    for (offset, bit) in [(54, 0), (76, 0), (226, 2)] {
        let mut bytes = clean.clone();
        bytes[names + offset] ^= 1 << bit;
        for args in [
            &["ls"][..],
            &["cleanup", "--dry-run"],
            &["add", "--empty", "--name", "v4"],
            &["rm", "--all", "--force"],
            &["doctor"],
        ] {
            std::fs::write(&db, &bytes).expect("damage the store");
            let out = t
                .command(["--json"])
                .args(args)
                .output()
                .expect("run maqet");
            let context = format!("flip +{offset}:{bit}, {args:?}");
            // `add` reads no count: where its pages are whole, it adds.
            if args[0] == "add" && out.status.code() == Some(0) {
                continue;
            }
            assert_eq!(out.status.code(), Some(1), "{context}: {out:?}");
            if args[0] != "doctor" {
                let err: serde_json::Value =
                    serde_json::from_slice(&out.stderr).expect("a JSON error");
                assert_eq!(err["error"]["code"], "maqet::store::damaged", "{context}");
            }
        }
    }
}
