//! Errors for scripts (`--json`) and the exit codes of docs/exit-codes.md.

use serde_json::json;

use crate::harness::Test;

#[test]
fn json_errors_go_to_stderr_as_one_object() {
    let mut t = Test::new();
    t.add_empty("web");
    let out = t.args(["--json", "info", "nope"]).status(3).run();
    assert!(out.stderr.ends_with("}\n"), "{:?}", out.stderr);
    assert_eq!(
        out.stderr_json(),
        json!({
            "error": {
                "code": "maqet::vm::not_found",
                "message": "no VM is named or has an id starting with `nope`",
                "help": "`maqet ls` lists the VMs; ids may be shortened to 4 or more characters",
                "exit_code": 3,
            }
        })
    );
}

#[test]
fn json_errors_carry_each_exit_code() {
    let mut t = Test::new();
    t.add_empty("web");
    let cases: [(&[&str], i32, &str); 4] = [
        (&["--json", "rm"], 2, "maqet::usage"),
        (
            &["--json", "add", "--empty", "--name", "web"],
            3,
            "maqet::vm::name_taken",
        ),
        (&["--json", "rm", "--all"], 4, "maqet::refused"),
        (&["--json", "add", "/etc/hostname"], 4, "maqet::path"),
    ];
    for (args, code, name) in cases {
        let out = t.args(args).status(code).run();
        let err = &out.stderr_json()["error"];
        assert_eq!(err["code"], name, "{args:?}");
        assert_eq!(err["exit_code"], code, "{args:?}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(err["help"].as_str().is_some_and(|h| !h.is_empty()));
    }
}

#[test]
fn config_errors_as_json() {
    let mut t = Test::new();
    let out = t
        .file("vm.ron", r#"(name: "web", memroy: "2G")"#)
        .args(["--json", "add", "vm.ron"])
        .status(3)
        .run();
    assert_eq!(
        out.stderr_json(),
        json!({
            "error": {
                "code": "maqet::config::invalid",
                "message": "vm.ron: unknown field `memroy`",
                "help": "did you mean `memory`? Fields allowed here: name, binary, machine, \
                         accel, memory, cpus, display, vga, hotplug_ports, boot, storage, network, \
                         arguments, cloud_init",
                "exit_code": 3,
            }
        })
    );
}

/// A path the filter refuses carries the filter's code, `maqet::path`, and
/// exit 4 whether it was given on the command line or written in a config
/// file (where it was reported as `maqet::config::invalid`); the error
/// still points at the value in the file. A path the filter cannot read
/// (`~other`) is `maqet::path` with exit 3, as on the command line.
#[test]
fn a_path_refused_in_a_config_file_has_the_path_code() {
    let mut t = Test::new();
    t.file(
        "vm.ron",
        "(\n    name: \"web\",\n    storage: [Raw(name: \"root\", file: \"/etc/shadow\")],\n)\n",
    );
    let out = t.args(["--json", "add", "vm.ron"]).status(4).run();
    assert_eq!(
        out.stderr_json(),
        json!({
            "error": {
                "code": "maqet::path",
                "message": "vm.ron: `/etc/shadow` resolves to `/etc/shadow`, inside the system \
                            directory /etc",
                "help": "maqet never points QEMU at system directories; use a path under your \
                         home directory, your temp directory or /dev/shm",
                "exit_code": 4,
            }
        })
    );
    let out = t.args(["add", "vm.ron"]).status(4).run();
    insta::assert_snapshot!(out.stderr, @r#"
    maqet::path

      × vm.ron: `/etc/shadow` resolves to `/etc/shadow`, inside the system directory /etc
       ╭─[vm.ron:3:39]
     2 │     name: "web",
     3 │     storage: [Raw(name: "root", file: "/etc/shadow")],
       ·                                       ──────┬──────
       ·                                             ╰── refused here
     4 │ )
       ╰────
      help: maqet never points QEMU at system directories; use a path under your home directory, your
            temp directory or /dev/shm
    "#);
    t.file(
        "other.ron",
        r#"(name: "web", storage: [Raw(name: "root", file: "~nobody/x.img")])"#,
    );
    let out = t.args(["--json", "add", "other.ron"]).status(3).run();
    assert_eq!(out.stderr_json()["error"]["code"], "maqet::path");
    assert!(!t.data_dir().exists(), "nothing was stored");
}

/// Exit code 1: the operation failed (here, the store is not a redb file),
/// and it is called damage, not an I/O error on a path to check.
#[test]
fn a_damaged_store_fails_with_exit_1() {
    let mut t = Test::new();
    t.add_empty("web");
    t.file("data/maqet.redb", "this is not a database");
    let db = t.data_dir().join("maqet.redb");
    let damaged = format!("the store {} is damaged", db.display());
    t.args(["ls"]).status(1).stderr_contains(&damaged).run();
    t.args(["add", "--empty", "--name", "db"])
        .status(1)
        .stderr_contains(&damaged)
        .run();
    assert_eq!(
        std::fs::read_to_string(t.data_dir().join("maqet.redb")).expect("read the store"),
        "this is not a database",
        "a damaged store must be left as it is"
    );
}

#[test]
fn an_unopenable_log_file_fails_with_exit_1() {
    Test::new()
        .args(["--log-file", "no/such/dir/maqet.log", "ls"])
        .status(1)
        .stderr_contains("cannot open the log file")
        .run();
}

/// A log over maqet's own store (or anything in its directories) is
/// refused before anything is written: an attacker's `ls --log-file
/// .../maqet.redb` left a store every later command called damaged.
#[test]
fn a_log_file_in_maqets_own_directories_is_refused() {
    let mut t = Test::new();
    t.add_empty("web");
    let store = t.data_dir().join("maqet.redb");
    let before = std::fs::read(&store).expect("read the store");
    let log = store.to_str().expect("UTF-8").to_owned();
    let out = t
        .args(["--json", "ls", "--log-file", &log, "-vvv"])
        .status(4)
        .run();
    assert_eq!(out.stderr_json()["error"]["code"], "maqet::path");
    assert_eq!(std::fs::read(&store).expect("read the store"), before);
    let runtime_log = t.runtime_dir().join("maqet.log");
    t.args(["ls", "--log-file", runtime_log.to_str().expect("UTF-8")])
        .status(4)
        .stderr_contains("inside maqet's own directory")
        .run();
    assert_eq!(t.list()[0]["name"], "web");
}

#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    Test::new()
        .arg("info")
        .arg(std::ffi::OsStr::from_bytes(b"web\xff"))
        .status(2)
        .stderr_contains("not valid UTF-8")
        .run();
}

/// A panic outside the store's guards is caught around the whole command:
/// exit 1, "internal error" (JSON under --json), never Rust's panic message
/// and exit 101. `MAQET_TEST_PANIC_IN=command` (debug builds alone) panics
/// as the command starts.
#[test]
fn a_panic_in_a_command_is_an_internal_error() {
    let mut t = Test::new();
    let err = t
        .env("MAQET_TEST_PANIC_IN", "command")
        .args(["--json", "ls"])
        .status(1)
        .run()
        .stderr_json();
    assert_eq!(
        err,
        serde_json::json!({"error": {
            "code": "maqet::internal",
            "message": "internal error: MAQET_TEST_PANIC_IN=command: \
                        a deliberate panic as the command starts",
            "help": "this is a bug in maqet; please report it with the command you ran \
                     and what `maqet -vvv ...` prints",
            "exit_code": 1,
        }})
    );
    let text = t
        .env("MAQET_TEST_PANIC_IN", "command")
        .args(["ls"])
        .status(1)
        .stderr_contains("internal error: MAQET_TEST_PANIC_IN=command")
        .stderr_contains("this is a bug in maqet")
        .run()
        .stderr;
    assert!(!text.contains("panicked at"), "{text}");
}

/// `maqet ... 2>&1 | head -0`: stderr's reader is gone. Writing to it
/// fails, and `eprintln!` turns that into a panic: logs, errors and the
/// report of a caught panic all ended in exit 101.
#[test]
fn diagnostics_into_a_closed_pipe_keep_their_exit_code() {
    let mut t = Test::new();
    t.add_empty("web");
    for (args, code) in [
        (&["-vvv", "ls"][..], 0),
        (&["info", "nothing"], 3),
        (&["--json", "info", "nothing"], 3),
        (&["--nonsense"], 2),
        (&["--json", "--nonsense"], 2),
    ] {
        let (reader, writer) = std::io::pipe().expect("make a pipe");
        drop(reader);
        let out = t
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .status()
            .expect("run maqet");
        assert_eq!(out.code(), Some(code), "{args:?}");
    }
}
