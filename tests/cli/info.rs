//! `maqet info`: one VM by name, id or id prefix.

use crate::harness::{MINIMAL, Test, seed};

/// examples/full.ron with every file it names, so all of `info` shows.
pub fn full_example(t: &mut Test) {
    t.file("full.ron", include_str!("../../examples/full.ron"));
    for file in ["vmlinuz", "initrd.img", "data.img", "install.iso"] {
        t.file(file, "");
    }
    // A real qcow2: maqet reads the backing chain of `work` at add time.
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(t.path("base.qcow2"))
        .arg("1M")
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "qemu-img create base.qcow2 (qemu-utils is needed)");
    std::fs::create_dir(t.path("shared")).expect("create shared/");
    t.args(["add", "--trust", "full.ron"]).run();
}

#[test]
fn info_shows_the_whole_configuration() {
    let mut t = Test::new();
    full_example(&mut t);
    let out = t.args(["info", "full-example"]).run();
    insta::assert_snapshot!(t.redact(&out.stdout), @"
    name:      full-example
    id:        [ID]
    status:    created
    created:   [TIME]
    updated:   [TIME]
    sources:   [TMP]/full.ron
    trusted:   yes (--trust: raw arguments and binary allowed)
    binary:    qemu-system-x86_64
    machine:   q35
    accel:     auto
    memory:    2G
    cpus:      2
    display:   headless
    vga:       std
    hotplug:   4 ports
    kernel:    [TMP]/vmlinuz
    initrd:    [TMP]/initrd.img
    append:    console=ttyS0 root=/dev/vda1
    storage:   root qcow2 virtio 20G (maqet creates it)
               work qcow2 virtio 10G [TMP]/work.qcow2 backing [TMP]/base.qcow2 (qcow2)
               data raw scsi [TMP]/data.img readonly
               install cdrom sata [TMP]/install.iso
               shared virtfs [TMP]/shared tag=shared mapped-xattr
    network:   net0 user virtio-net mac 52:54:00:12:34:56
                 tcp 127.0.0.1:2222 -> 22
                 tcp 0.0.0.0:8080 -> 80
    arguments: -device virtio-rng-pci
    ");
}

#[test]
fn info_of_a_minimal_vm() {
    let mut t = Test::new();
    t.file("minimal.ron", MINIMAL)
        .args(["add", "minimal.ron"])
        .run();
    let out = t.args(["info", "minimal"]).run();
    insta::assert_snapshot!(t.redact(&out.stdout), @"
    name:    minimal
    id:      [ID]
    status:  created
    created: [TIME]
    updated: [TIME]
    sources: [TMP]/minimal.ron
    trusted: no
    binary:  qemu-system-x86_64
    machine: q35
    accel:   auto
    memory:  256M
    cpus:    1
    display: headless
    vga:     std
    hotplug: 4 ports
    storage: none
    network: none
    ");
}

#[test]
fn info_as_json() {
    let mut t = Test::new();
    full_example(&mut t);
    let out = t.args(["--json", "info", "full-example"]).run();
    insta::assert_snapshot!(t.redact(&out.stdout), @r#"
    {
      "config": {
        "accel": "auto",
        "arguments": [
          "-device",
          "virtio-rng-pci"
        ],
        "binary": "qemu-system-x86_64",
        "boot": {
          "append": "console=ttyS0 root=/dev/vda1",
          "firmware": null,
          "initrd": "[TMP]/initrd.img",
          "kernel": "[TMP]/vmlinuz"
        },
        "cloud_init": null,
        "cpus": 2,
        "display": {
          "kind": "headless"
        },
        "hotplug_ports": 4,
        "machine": "q35",
        "memory": "2G",
        "memory_bytes": 2147483648,
        "network": [
          {
            "forwards": [
              {
                "bind": "127.0.0.1",
                "guest": 22,
                "host": 2222,
                "protocol": "tcp"
              },
              {
                "bind": "0.0.0.0",
                "guest": 80,
                "host": 8080,
                "protocol": "tcp"
              }
            ],
            "kind": "user",
            "mac": "52:54:00:12:34:56",
            "model": "virtio-net",
            "name": "net0"
          }
        ],
        "storage": [
          {
            "backing_file": null,
            "backing_format": null,
            "file": null,
            "interface": "virtio",
            "kind": "qcow2",
            "name": "root",
            "readonly": false,
            "size": "20G",
            "size_bytes": 21474836480
          },
          {
            "backing_file": "[TMP]/base.qcow2",
            "backing_format": "qcow2",
            "file": "[TMP]/work.qcow2",
            "interface": "virtio",
            "kind": "qcow2",
            "name": "work",
            "readonly": false,
            "size": "10G",
            "size_bytes": 10737418240
          },
          {
            "file": "[TMP]/data.img",
            "interface": "scsi",
            "kind": "raw",
            "name": "data",
            "readonly": true,
            "size": null,
            "size_bytes": null
          },
          {
            "file": "[TMP]/install.iso",
            "interface": "sata",
            "kind": "cdrom",
            "name": "install",
            "readonly": true
          },
          {
            "kind": "virtfs",
            "mount_tag": "shared",
            "name": "shared",
            "path": "[TMP]/shared",
            "readonly": false,
            "security_model": "mapped-xattr"
          }
        ],
        "vga": "std"
      },
      "created": "[TIME]",
      "id": "[ID]",
      "name": "full-example",
      "pending_restart": false,
      "sources": [
        "[TMP]/full.ron"
      ],
      "status": "created",
      "trusted": true,
      "updated": "[TIME]"
    }
    "#);
}

#[test]
fn info_by_name_id_and_prefix() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.add_empty("db");
    let want = t.args(["info", "web"]).run().stdout;
    for query in [
        id.clone(),
        id.to_uppercase(),
        id[..4].to_owned(),
        id[..12].to_owned(),
        id[..31].to_owned(),
    ] {
        t.args(["info", &query]).stdout(&want).run();
    }
}

#[test]
fn a_prefix_shorter_than_four_is_not_an_id() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.args(["info", &id[..3]])
        .status(3)
        .stderr_contains(&format!(
            "no VM is named or has an id starting with `{}`",
            &id[..3]
        ))
        .run();
}

#[test]
fn a_name_wins_over_an_id_prefix() {
    // A new name like another VM's id is refused (confinement.rs); a VM
    // added later can still get an id that starts with an older name.
    let mut t = Test::new();
    let (named, web) = (
        "aaaa0000000000000000000000000001",
        "abcd1234000000000000000000000002",
    );
    seed(&t, &[("abcd1234", named), ("web", web)]);
    let out = t.args(["--json", "info", "abcd1234"]).run().json();
    assert_eq!(out["id"], named);
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let mut t = Test::new();
    seed(
        &t,
        &[
            ("web", "abcd0000000000000000000000000000"),
            ("db", "abcd1111111111111111111111111111"),
            ("cache", "abce2222222222222222222222222222"),
        ],
    );
    let out = t.args(["info", "abcd"]).status(3).run();
    insta::assert_snapshot!(out.stderr, @"
    maqet::vm::ambiguous

      × `abcd` matches 2 VMs: web (abcd00000000), db (abcd11111111)
      help: give more characters of the id, or the VM's name
    ");
    // One more character makes it unique.
    t.args(["--json", "info", "abcd1"])
        .stdout_contains("\"name\": \"db\"")
        .run();
    t.args(["--json", "info", "abc"]).status(3).run();
    t.args(["--json", "info", "abce"])
        .stdout_contains("\"name\": \"cache\"")
        .run();
}

#[test]
fn info_of_an_unknown_vm() {
    let mut t = Test::new();
    t.add_empty("web");
    let out = t.args(["info", "nope"]).status(3).run();
    insta::assert_snapshot!(out.stderr, @"
    maqet::vm::not_found

      × no VM is named or has an id starting with `nope`
      help: `maqet ls` lists the VMs; ids may be shortened to 4 or more characters
    ");
}

/// Values a config can fill with anything (`append`, `arguments`, file
/// names) are shown on their own line in `info`: escape sequences, tabs,
/// newlines and bidi overrides come out as `\u{..}`, so a value can neither
/// clear the screen nor print a line that reads like one of maqet's own
/// (here a fake `status:`). `--json info` gives the same values back
/// exactly, as JSON escapes.
#[test]
fn info_escapes_control_characters_in_every_value() {
    let mut t = Test::new();
    t.file("k\t.img", "").file("d\nisk.img", "").file(
        "esc.ron",
        r#"(
    name: "esc",
    boot: (kernel: "k\u{9}.img", append: "quiet \u{1b}[2J\nstatus:   running\u{202e}"),
    storage: [Raw(name: "d", file: "d\nisk.img")],
    arguments: ["-name", "a\nb\u{1b}]0;x\u{7}"],
)"#,
    );
    t.args(["add", "--trust", "esc.ron"]).run();
    let out = t.args(["info", "esc"]).run();
    assert!(
        !out.stdout.contains('\u{1b}'),
        "a raw ESC: {:?}",
        out.stdout
    );
    assert_eq!(
        t.redact(&out.stdout),
        r"name:      esc
id:        [ID]
status:    created
created:   [TIME]
updated:   [TIME]
sources:   [TMP]/esc.ron
trusted:   yes (--trust: raw arguments and binary allowed)
binary:    qemu-system-x86_64
machine:   q35
accel:     auto
memory:    1G
cpus:      1
display:   headless
vga:       std
hotplug:   4 ports
kernel:    [TMP]/k\u{9}.img
append:    quiet \u{1b}[2J\u{a}status:   running\u{202e}
storage:   d raw virtio [TMP]/d\u{a}isk.img
network:   none
arguments: -name a\u{a}b\u{1b}]0;x\u{7}
"
    );
    let out = t.args(["--json", "info", "esc"]).run();
    let raw = out
        .stdout
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || c == '\u{202e}');
    assert_eq!(raw, None, "{}", out.stdout);
    let config = &out.json()["config"];
    assert_eq!(
        config["boot"]["append"],
        "quiet \u{1b}[2J\nstatus:   running\u{202e}"
    );
    assert_eq!(config["arguments"][1], "a\nb\u{1b}]0;x\u{7}");
    assert_eq!(
        config["storage"][0]["file"],
        t.path("d\nisk.img").to_str().expect("UTF-8")
    );
}
