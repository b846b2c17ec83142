//! Help, version, usage errors, and read-only commands that must leave no
//! trace on disk.

use crate::harness::{Test, tree};

#[test]
fn help_lists_commands_options_and_exit_codes() {
    let out = Test::new().args(["--help"]).run();
    insta::assert_snapshot!(out.stdout, @"
    Usage: maqet [-v] [--log-file <PATH>] [--data-dir <DIR>] [--runtime-dir <DIR>] [--config-dir <DIR>] [--json] [--version] [<command>] [<args>]

    Manage local QEMU virtual machines: one binary, no daemon.

    Options:
      -v, --verbose     print more on stderr: -v warnings, -vv info, -vvv debug
      --log-file        append a debug log to this file
      --data-dir        directory for the database and the disks maqet creates
      --runtime-dir     directory for VM sockets, pidfiles and logs
      --config-dir      read settings from DIR/maqet.ron
      --json            print results as JSON
      --version         print the version and exit
      --help, help      display usage information

    Commands:
      add               Define a new VM from RON config files; prints its id.
      apply             Merge config files and options into a VM, creating it if it
                        does not exist.
      ls                List VMs.
      info              Show a VM's whole configuration.
      rm                Remove VMs from the registry.
      start             Start a VM in the background; returns once it is ready.
      stop              Stop a VM: ACPI power button, then QMP quit, then SIGKILL.
      status            Show whether a VM runs: state, pid, uptime, QEMU's run
                        state.
      inspect           Show a VM's status plus its command line, sockets, process
                        figures and what QEMU reports.
      qmp               Drive a running VM over QMP: any command, or a verb.
      console           Attach to a VM's serial console, or print what it printed.
      run               Add and start a VM in one go: from config files, or the
                        default VM.
      snapshot          Internal qcow2 snapshots: offline with qemu-img, live over
                        QMP.
      disk              Disk images of a VM.
      storage           The files under the data directory: orphans and checks.
      doctor            Check that this host can run VMs and that maqet's files are
                        sound.
      cleanup           Reconcile every VM now and remove stale runtime files.
      export            Print a VM's definition for libvirt (domain XML) or systemd
                        (a unit).
      ssh               Open an SSH session in a VM, through its forward to guest
                        port 22.
      completions       Print a shell completion script.
      man               Print a man page (roff): maqet(1), or one command's.

    Examples:
      maqet add vm.ron
      maqet ls
      maqet --json info web

    Notes:
      Global options go before or after the command: `maqet --json ls` or `maqet ls --json`.
      A VM may be named by its name, its id, or a unique id prefix of 4 or more characters.
      Files live in --data-dir (default $XDG_DATA_HOME/maqet, else ~/.local/share/maqet) and
      --runtime-dir (default $XDG_STATE_HOME/maqet/run, else ~/.local/state/maqet/run);
      MAQET_DATA_DIR and MAQET_RUNTIME_DIR set them too.

    Error codes:
      1 the operation failed
      2 usage error
      3 not found, or invalid configuration
      4 refused for safety or permission
      5 timed out (the store stayed busy)
      130 interrupted
    ");
}

#[test]
fn help_of_a_command() {
    let out = Test::new().args(["add", "--help"]).run();
    insta::assert_snapshot!(out.stdout, @"
    Usage: maqet add [--name <NAME>] [--memory <MEMORY>] [--cpus <CPUS>] [--binary <BINARY>] [--trust] [--empty] [--] [<CONFIG...>]

    Define a new VM from RON config files; prints its id.

    Positional Arguments:
      CONFIG            config files (RON)

    Options:
      --name            the VM's name (wins over the files)
      --memory          guest memory, e.g. 2G (wins over the files)
      --cpus            virtual CPUs (wins over the files)
      --binary          QEMU program name or path (wins over the files)
      --trust           allow this VM's raw QEMU `arguments` and custom `binary`
                        (see docs/security.md): a config file alone cannot grant
                        them
      --empty           define a VM with no config file, from defaults and options
                        only
      --help, help      display usage information

    Examples:
      maqet add vm.ron
      maqet add base.ron big.ron --name web --memory 4G
      maqet add --empty --name scratch

    Notes:
      Later files win; storage and network entries with the same name replace earlier ones.
    ");
}

#[test]
fn version() {
    Test::new()
        .args(["--version"])
        .stdout("maqet 0.1.0\n")
        .run();
}

#[test]
fn version_as_json() {
    Test::new()
        .args(["--json", "--version"])
        .stdout("{\n  \"version\": \"0.1.0\"\n}\n")
        .run();
}

#[test]
fn no_command_is_a_usage_error() {
    let out = Test::new()
        .status(2)
        .stderr_contains("no command given")
        .run();
    insta::assert_snapshot!(out.stderr, @"
    maqet::usage

      × no command given
      help: run `maqet --help` to see the commands
    ");
}

#[test]
fn unknown_option_is_a_usage_error() {
    let out = Test::new()
        .args(["--bogus"])
        .status(2)
        .stderr_contains("--bogus")
        .run();
    insta::assert_snapshot!(out.stderr, @"
    maqet: Unrecognized argument: --bogus
      help: run `maqet --help`, or `maqet COMMAND --help`
    ");
}

#[test]
fn unknown_command_is_a_usage_error() {
    Test::new()
        .args(["frobnicate"])
        .status(2)
        .stderr_contains("frobnicate")
        .run();
}

/// Global options work after the command too, with their values; after
/// `--` they are the command's words.
#[test]
fn global_options_work_after_the_command() {
    let mut t = Test::new();
    t.args(["ls", "--json"]).stdout("[]\n").run();
    t.add_empty("web");
    let data = t.data_dir();
    let data = data.to_str().expect("UTF-8");
    let out = t
        .args(["info", "web", "--json", "--data-dir", data])
        .run()
        .json();
    assert_eq!(out["name"], "web");
    let out = t.args(["info", "nosuch", "-vv", "--json"]).status(3).run();
    assert_eq!(out.stderr_json()["error"]["code"], "maqet::vm::not_found");
    // After `--` nothing moves: `--json` is then a (refused) VM name.
    t.args(["info", "--", "--json"])
        .status(3)
        .stderr_contains("`--json`")
        .run();
}

#[test]
fn read_only_commands_create_nothing() {
    let mut t = Test::new();
    let before = tree(t.root());
    t.args(["--help"]).run();
    t.args(["ls", "--help"]).run();
    t.args(["--version"]).run();
    t.args(["ls"]).run();
    t.args(["--json", "ls"]).stdout("[]\n").run();
    t.args(["ls", "--status", "running"]).run();
    t.args(["info", "web"])
        .status(3)
        .stderr_contains("web")
        .run();
    t.args(["info", "0123"])
        .status(3)
        .stderr_contains("0123")
        .run();
    t.args(["rm", "web"]).status(3).stderr_contains("web").run();
    t.args(["status", "web"])
        .status(3)
        .stderr_contains("web")
        .run();
    t.args(["inspect", "web"])
        .status(3)
        .stderr_contains("web")
        .run();
    t.args(["stop", "web"])
        .status(3)
        .stderr_contains("web")
        .run();
    assert!(!t.data_dir().exists(), "the data dir was created");
    assert!(!t.runtime_dir().exists(), "the runtime dir was created");
    assert_eq!(tree(t.root()), before, "something was written in HOME");
}

#[test]
fn reading_an_existing_store_writes_nothing_new() {
    let mut t = Test::new();
    t.add_empty("web");
    let before = tree(t.root());
    t.args(["ls"]).run();
    t.args(["info", "web"]).run();
    t.args(["status", "web"]).run();
    t.args(["inspect", "web"]).run();
    t.args(["start", "--dry-run", "web"]).run();
    assert_eq!(tree(t.root()), before);
    assert!(!t.runtime_dir().exists(), "the runtime dir was created");
}

#[test]
fn without_maqet_variables_the_store_is_under_home() {
    let mut t = Test::new();
    t.env_remove("MAQET_DATA_DIR")
        .env_remove("MAQET_RUNTIME_DIR");
    t.add_empty("web");
    assert_eq!(
        tree(t.root()),
        [
            ".local",
            ".local/share",
            ".local/share/maqet",
            ".local/share/maqet/maqet.lock",
            ".local/share/maqet/maqet.redb"
        ]
    );
    t.env_remove("MAQET_DATA_DIR");
    assert_eq!(t.list().len(), 1);
}

#[test]
fn xdg_data_home_is_used_when_absolute() {
    let mut t = Test::new();
    let xdg = t.path("xdg");
    t.env_remove("MAQET_DATA_DIR").env("XDG_DATA_HOME", &xdg);
    t.add_empty("web");
    assert!(
        xdg.join("maqet/maqet.redb").is_file(),
        "{:?}",
        tree(t.root())
    );
    // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
    t.env_remove("MAQET_DATA_DIR").env("XDG_DATA_HOME", "xdg");
    t.add_empty("db");
    assert!(t.path(".local/share/maqet/maqet.redb").is_file());
}

#[test]
fn data_dir_flag_wins_over_the_environment() {
    let mut t = Test::new();
    t.args(["--data-dir", "flagged", "add", "--empty", "--name", "web"])
        .run();
    assert!(t.path("flagged/maqet.redb").is_file());
    assert!(!t.data_dir().exists());
}

/// A word after `snapshot` that is no verb, and a missing verb, are said in
/// maqet's words: argh said "Unrecognized argument: nv" and listed `help`
/// among the verbs.
#[test]
fn a_missing_or_unknown_verb_names_the_verbs() {
    let mut t = Test::new();
    t.args(["snapshot", "nv"])
        .status(2)
        .stderr(
            "maqet: `snapshot nv` needs a verb: one of create, load, list, delete, as in `maqet snapshot list nv DRIVE`\n  help: run `maqet --help`, or `maqet COMMAND --help`\n",
        )
        .run();
    t.args(["snapshot", "nv", "lst"])
        .status(2)
        .stderr(
            "maqet: `snapshot nv lst`: neither `nv` nor `lst` is a snapshot verb (create, load, list, delete)\n  help: run `maqet --help`, or `maqet COMMAND --help`\n",
        )
        .run();
    t.args(["snapshot"])
        .status(2)
        .stderr(
            "maqet: a verb is missing: give one of create, load, list, delete\n  help: run `maqet --help`, or `maqet COMMAND --help`\n",
        )
        .run();
    t.args(["qmp"])
        .status(2)
        .stderr(
            "maqet: a verb is missing: give one of command, keys, type, screendump, pause, resume, device-add, disk-add, device-del, events\n  help: run `maqet --help`, or `maqet COMMAND --help`\n",
        )
        .run();
    // The VM-first form and help still work.
    t.args(["snapshot", "nv", "list"])
        .status(2)
        .stderr_contains("DRIVE")
        .run();
    t.args(["snapshot", "help"])
        .stdout_contains("Usage: maqet snapshot <command>")
        .run();
}

/// A property without `=` names the option it came from.
#[test]
fn a_device_property_without_a_value_names_prop() {
    Test::new()
        .args(["qmp", "device-add", "web", "virtio-rng-pci", "--id", "r"])
        .args(["--prop", "max-bytes"])
        .status(2)
        .stderr_contains("`max-bytes` is not KEY=VALUE")
        .stderr_contains("help: write each as --prop key=value")
        .run();
}
