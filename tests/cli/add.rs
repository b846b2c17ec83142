//! `maqet add`: defining VMs from files and options.

use serde_json::json;

use crate::harness::{MINIMAL, Test, is_id, tree};

#[test]
fn add_prints_the_new_id() {
    let mut t = Test::new();
    let out = t
        .file("minimal.ron", MINIMAL)
        .args(["add", "minimal.ron"])
        .run();
    let id = out.stdout.strip_suffix('\n').expect("one line");
    assert!(is_id(id), "not an id: {:?}", out.stdout);
    let vm = t.args(["--json", "info", "minimal"]).run().json();
    assert_eq!(vm["id"], id);
    assert_eq!(vm["config"]["memory"], "256M");
    assert_eq!(vm["config"]["display"], json!({"kind": "headless"}));
    assert_eq!(vm["sources"], json!([t.path("minimal.ron")]));
}

#[test]
fn add_as_json() {
    let mut t = Test::new();
    let out = t
        .file("minimal.ron", MINIMAL)
        .args(["--json", "add", "minimal.ron"])
        .run();
    let value = out.json();
    assert_eq!(value["name"], "minimal");
    assert!(is_id(value["id"].as_str().expect("id is a string")));
    assert_eq!(
        value.as_object().map(serde_json::Map::len),
        Some(2),
        "{value}"
    );
}

#[test]
fn a_taken_name_is_refused_and_the_store_is_unchanged() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL);
    let id = t.args(["add", "minimal.ron"]).run().stdout;
    let before = t.args(["--json", "info", "minimal"]).run().stdout;
    t.args(["add", "minimal.ron", "--memory", "4G"])
        .status(3)
        .stderr(&format!(
            "maqet::vm::name_taken\n\n  \u{d7} a VM named `minimal` already exists (id {})\n  \
             help: choose another name with --name, or change the existing VM with `maqet apply \
             minimal ...`\n",
            id.trim_end()
        ))
        .run();
    t.args(["--json", "info", "minimal"]).stdout(&before).run();
    assert_eq!(t.list().len(), 1);
}

#[test]
fn options_win_over_files() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL).args([
        "add",
        "minimal.ron",
        "--name",
        "web",
        "--memory",
        "3G",
        "--cpus",
        "3",
        "--binary",
        "bin/qemu",
        "--trust",
    ]);
    t.run();
    let vm = t.args(["--json", "info", "web"]).run().json();
    assert_eq!(vm["name"], "web");
    assert_eq!(vm["config"]["memory"], "3G");
    assert_eq!(vm["config"]["memory_bytes"], 3u64 << 30);
    assert_eq!(vm["config"]["cpus"], 3);
    // A path is taken relative to where maqet runs, a bare name is kept.
    assert_eq!(
        vm["config"]["binary"],
        format!("{}/bin/qemu", t.root().display())
    );
    t.args(["info", "minimal"])
        .status(3)
        .stderr_contains("minimal")
        .run();
}

#[test]
fn later_files_win_and_named_entries_merge() {
    let mut t = Test::new();
    t.file("a.img", "")
        .file("b.img", "")
        .file("c.img", "")
        .file("d.img", "")
        .file(
            "base.ron",
            r#"(
                name: "web",
                memory: "1G",
                cpus: 2,
                storage: [Raw(name: "a", file: "a.img"), Raw(name: "b", file: "b.img")],
                network: [User(name: "net0", forwards: [(host: 2222, guest: 22)])],
                arguments: ["-device", "virtio-rng-pci"],
            )"#,
        )
        .file(
            "big.ron",
            r#"(
                memory: "4G",
                storage: [Raw(name: "a", file: "c.img", readonly: true), Raw(name: "d", file: "d.img")],
                arguments: ["-device", "virtio-balloon"],
            )"#,
        );
    t.args(["add", "--trust", "base.ron", "big.ron"]).run();
    let vm = t.args(["--json", "info", "web"]).run().json();
    let c = &vm["config"];
    assert_eq!(c["memory"], "4G");
    assert_eq!(c["cpus"], 2);
    let drives: Vec<(&str, &str, bool)> = c["storage"]
        .as_array()
        .expect("storage is a list")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().expect("name"),
                d["file"].as_str().expect("file"),
                d["readonly"].as_bool().expect("readonly"),
            )
        })
        .collect();
    let file = |f: &str| t.path(f).to_str().expect("UTF-8").to_owned();
    assert_eq!(
        drives,
        [
            ("a", file("c.img").as_str(), true),
            ("b", file("b.img").as_str(), false),
            ("d", file("d.img").as_str(), false),
        ]
    );
    assert_eq!(c["network"][0]["name"], "net0");
    assert_eq!(
        c["arguments"],
        json!(["-device", "virtio-rng-pci", "-device", "virtio-balloon"])
    );
    assert_eq!(vm["sources"], json!([file("base.ron"), file("big.ron")]));
}

#[test]
fn add_needs_a_file_or_empty() {
    Test::new()
        .args(["add"])
        .status(2)
        .stderr_contains("add needs a config file")
        .run();
    Test::new()
        .file("minimal.ron", MINIMAL)
        .args(["add", "--empty", "minimal.ron"])
        .status(2)
        .stderr_contains("--empty")
        .run();
}

#[test]
fn empty_vm_from_defaults() {
    let mut t = Test::new();
    t.args(["add", "--empty", "--name", "scratch"]).run();
    let vm = t.args(["--json", "info", "scratch"]).run().json();
    assert_eq!(vm["sources"], json!([]));
    assert_eq!(
        vm["config"],
        json!({
            "accel": "auto",
            "arguments": [],
            "binary": "qemu-system-x86_64",
            "boot": {"append": null, "firmware": null, "initrd": null, "kernel": null},
            "cloud_init": null,
            "cpus": 1,
            "display": {"kind": "headless"},
            "hotplug_ports": 4,
            "machine": "q35",
            "memory": "1G",
            "memory_bytes": 1u64 << 30,
            "network": [],
            "storage": [],
            "vga": "std",
        })
    );
}

#[test]
fn a_vm_needs_a_name() {
    let mut t = Test::new();
    t.args(["add", "--empty"])
        .status(3)
        .stderr_contains("the VM has no name")
        .run();
    t.file("anon.ron", r#"(memory: "2G")"#)
        .args(["add", "anon.ron"])
        .status(3)
        .stderr_contains("the VM has no name")
        .run();
    assert!(!t.data_dir().exists());
}

#[test]
fn invalid_names_are_usage_errors() {
    Test::new()
        .args(["add", "--empty", "--name", "-web"])
        .status(2)
        .run();
    Test::new()
        .args(["add", "--empty", "--name", "a/b"])
        .status(2)
        .stderr_contains("not a valid name")
        .run();
}

#[test]
fn relative_paths_resolve_against_the_config_file() {
    let mut t = Test::new();
    t.file("conf/disk.img", "").file(
        "conf/vm.ron",
        r#"(name: "web", storage: [Raw(name: "root", file: "disk.img")])"#,
    );
    t.cwd("elsewhere").args(["add", "../conf/vm.ron"]).run();
    let vm = t.args(["--json", "info", "web"]).run().json();
    assert_eq!(
        vm["config"]["storage"][0]["file"],
        t.path("conf/disk.img").to_str().expect("UTF-8")
    );
    assert_eq!(vm["sources"], json!([t.path("conf/vm.ron")]));
}

#[test]
fn unknown_field_points_at_it() {
    let mut t = Test::new();
    let out = t
        .file("vm.ron", "(\n    name: \"web\",\n    memroy: \"2G\",\n)\n")
        .args(["add", "vm.ron"])
        .status(3)
        .run();
    insta::assert_snapshot!(out.stderr, @r#"
    maqet::config::invalid

      × vm.ron: unknown field `memroy`
       ╭─[vm.ron:3:5]
     2 │     name: "web",
     3 │     memroy: "2G",
       ·     ───┬──
       ·        ╰── here
     4 │ )
       ╰────
      help: did you mean `memory`? Fields allowed here: name, binary, machine, accel, memory, cpus,
            display, vga, hotplug_ports, boot, storage, network, arguments, cloud_init
    "#);
    assert!(!t.data_dir().exists());
}

#[test]
fn bad_memory_is_invalid() {
    let mut t = Test::new();
    t.file("vm.ron", r#"(name: "web", memory: "2X")"#)
        .args(["add", "vm.ron"])
        .status(3)
        .stderr_contains("`X` in `2X` is not a unit")
        .run();
    t.args(["add", "--empty", "--name", "web", "--memory", "2X"])
        .status(2)
        .stderr_contains("2X")
        .run();
    // A bare number gets the unit hint the command line gives, not
    // "Expected string"; a disk size too.
    t.file("vm.ron", r#"(name: "web", memory: 512)"#)
        .args(["add", "vm.ron"])
        .status(3)
        .stderr_contains(
            r#"`512` has no unit: write the size in quotes with one, like "512M" or "512G""#,
        )
        .run();
    t.file(
        "vm.ron",
        r#"(name: "web", storage: [Qcow2(name: "root", size: 20)])"#,
    )
    .args(["add", "vm.ron"])
    .status(3)
    .stderr_contains(r#"`20` has no unit"#)
    .run();
    t.file("vm.ron", r#"(name: "web", memory: -1)"#)
        .args(["add", "vm.ron"])
        .status(3)
        .stderr_contains("`-1` is not a size")
        .run();
    assert!(!t.data_dir().exists());
}

#[test]
fn a_system_file_as_disk_is_refused() {
    let mut t = Test::new();
    let out = t
        .file(
            "vm.ron",
            r#"(name: "web", storage: [Raw(name: "root", file: "/etc/passwd")])"#,
        )
        .args(["add", "vm.ron"])
        .status(4)
        .stderr_contains("inside the system directory /etc")
        .run();
    assert!(out.stderr.contains("refused here"), "{}", out.stderr);
    assert!(!t.data_dir().exists());
}

#[test]
fn a_symlink_into_a_system_dir_is_refused() {
    let mut t = Test::new();
    std::os::unix::fs::symlink("/etc/passwd", t.path("disk.img")).expect("symlink");
    t.file(
        "vm.ron",
        r#"(name: "web", storage: [Raw(name: "root", file: "disk.img")])"#,
    )
    .args(["add", "vm.ron"])
    .status(4)
    .stderr_contains("resolves to `/etc/passwd`")
    .run();
    assert!(!t.data_dir().exists());
}

#[test]
fn a_config_file_in_a_system_dir_is_refused() {
    let t = &mut Test::new();
    t.args(["add", "/etc/hostname"]).status(4).run();
    t.args(["add", "missing.ron"])
        .status(3)
        .stderr_contains("missing.ron")
        .run();
    assert!(!t.data_dir().exists());
}

#[test]
fn options_maqet_owns_are_refused_in_arguments() {
    let mut t = Test::new();
    for (arguments, message) in [
        (r#"["-qmp", "x"]"#, "`-qmp` is set by maqet"),
        (r#"["-daemonize"]"#, "`-daemonize` is set by maqet"),
        (r#"["--monitor", "stdio"]"#, "`--monitor` is set by maqet"),
        (r#"["-pidfile", "p"]"#, "`-pidfile` is set by maqet"),
        (r#"["-serial", "stdio"]"#, "`-serial` is set by maqet"),
        (
            r#"["-chardev", "socket,id=maqet-qmp,path=x"]"#,
            "uses the `maqet-` prefix",
        ),
        (
            r#"["-device virtio-rng-pci"]"#,
            "holds an option and its value",
        ),
    ] {
        t.file(
            "vm.ron",
            &format!("(name: \"web\", arguments: {arguments})"),
        )
        .args(["add", "vm.ron"])
        .status(3)
        .stderr_contains(message)
        .run();
    }
    assert!(!t.data_dir().exists(), "{:?}", tree(t.root()));
}

#[test]
fn files_that_must_exist() {
    let mut t = Test::new();
    t.file(
        "vm.ron",
        r#"(name: "web", storage: [Cdrom(name: "cd", file: "install.iso")])"#,
    )
    .args(["add", "vm.ron"])
    .status(3)
    .stderr_contains("does not exist")
    .run();
    t.file(
        "vm.ron",
        r#"(name: "web", boot: (append: "console=ttyS0"))"#,
    )
    .args(["add", "vm.ron"])
    .status(3)
    .stderr_contains("no kernel")
    .run();
    assert!(!t.data_dir().exists());
}

#[test]
fn duplicate_drive_names_in_one_file() {
    Test::new()
        .file("a.img", "")
        .file(
            "vm.ron",
            r#"(name: "web", storage: [Raw(name: "d", file: "a.img"), Raw(name: "d", file: "a.img")])"#,
        )
        .args(["add", "vm.ron"])
        .status(3)
        .stderr_contains("`d`")
        .run();
}

/// What QEMU cannot use is refused when the VM is defined, not first at
/// start: a directory as a disk image, a NUL byte (QEMU's argv cannot
/// carry one), and a comma in an initrd path (QEMU splits -initrd at
/// commas for multiboot kernels: `a.img,/etc/shadow` would load a host
/// file into guest memory). Exit 3, a message that names the drive or
/// field, and nothing stored.
#[test]
fn what_would_fail_at_start_is_refused_at_add() {
    let mut t = Test::new();
    std::fs::create_dir(t.path("images")).expect("mkdir");
    t.file("vmlinuz", "").file("initrd,x.img", "");
    let dir = t.path("images");
    let dir = dir.to_str().expect("UTF-8");
    let cases: [(&str, String, String); 8] = [
        (
            r#"storage: [Raw(name: "root", file: "images")]"#,
            format!("raw drive `root`: {dir} is a directory, not an image file"),
            "point `file` at an image file".into(),
        ),
        (
            r#"storage: [Raw(name: "root", file: "images", size: "1G")]"#,
            format!("raw drive `root`: {dir} is a directory, not an image file"),
            "point `file` at an image file".into(),
        ),
        (
            r#"storage: [Qcow2(name: "disk", file: "images")]"#,
            format!("qcow2 drive `disk`: {dir} is a directory, not an image file"),
            "point `file` at an image file".into(),
        ),
        (
            r#"storage: [Cdrom(name: "media", file: "images")]"#,
            format!("cdrom `media`: {dir} is a directory, not an image file"),
            "point `file` at an image file".into(),
        ),
        (
            r#"boot: (kernel: "vmlinuz", append: "quiet\u{0}init=/bin/sh")"#,
            "the `append` line contains a NUL character".into(),
            "QEMU's command line cannot carry a NUL byte: remove it from `append`".into(),
        ),
        (
            r#"arguments: ["-name", "a\u{0}b"]"#,
            "an `arguments` element contains a NUL character: `a\0b`".into(),
            "QEMU's command line cannot carry a NUL byte (a word ends at the first one); remove it"
                .into(),
        ),
        (
            r#"boot: (kernel: "vmlinuz", initrd: "initrd,x.img")"#,
            format!(
                "the initrd path {} contains a comma",
                t.path("initrd,x.img").display()
            ),
            INITRD_COMMA_HELP.into(),
        ),
        (
            r#"boot: (kernel: "vmlinuz", initrd: "a.img,/etc/shadow")"#,
            format!(
                "the initrd path {} contains a comma",
                t.path("a.img,/etc/shadow").display()
            ),
            INITRD_COMMA_HELP.into(),
        ),
    ];
    for (i, (body, message, help)) in cases.iter().enumerate() {
        let file = format!("vm{i}.ron");
        t.file(&file, &format!("(name: \"vm\", {body})"));
        let out = t.args(["--json", "add", "--trust", &file]).status(3).run();
        assert_eq!(
            out.stderr_json(),
            json!({
                "error": {
                    "code": "maqet::config::invalid",
                    "message": format!("{file}: {message}"),
                    "help": help,
                    "exit_code": 3,
                }
            }),
            "{body}"
        );
    }
    assert!(!t.data_dir().exists(), "nothing was stored");
    // In human form the error points at the field.
    let out = t.args(["add", "vm6.ron"]).status(3).run();
    insta::assert_snapshot!(t.redact(&out.stderr), @r#"
    maqet::config::invalid

      × vm6.ron: the initrd path [TMP]/initrd,x.img contains a comma
       ╭─[vm6.ron:1:40]
     1 │ (name: "vm", boot: (kernel: "vmlinuz", initrd: "initrd,x.img"))
       ·                                        ───┬──
       ·                                           ╰── here
       ╰────
      help: QEMU splits -initrd at commas (multiboot modules), so part of the path would be read as
            another file; rename the file or its directory so the path has no comma
    "#);
}

const INITRD_COMMA_HELP: &str = "QEMU splits -initrd at commas (multiboot modules), so part of \
                                 the path would be read as another file; rename the file or its \
                                 directory so the path has no comma";

/// What QEMU would refuse at start is refused at add: a read-only disk on
/// IDE or SATA ("Block node is read-only").
#[test]
fn a_read_only_ide_or_sata_disk_is_refused_at_add() {
    let mut t = Test::new();
    t.file("ro.raw", "");
    for interface in ["Sata", "Ide"] {
        t.file(
            "ro.ron",
            &format!(
                "(name: \"ro\", storage: [Raw(name: \"d\", file: \"ro.raw\", interface: {interface}, readonly: true)])\n"
            ),
        );
        let out = t.args(["--json", "add", "ro.ron"]).status(3).run();
        let message = out.stderr_json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(&format!(
                "drive `d`: a read-only disk cannot use the {interface} interface"
            )),
            "{message}"
        );
    }
    assert!(t.list().is_empty());
}
