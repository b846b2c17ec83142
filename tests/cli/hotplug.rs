//! Hot-plugging on the default machine (q35): maqet's own PCIe root ports
//! (`hotplug_ports`), `device-add` putting a PCI device on a free one,
//! `qmp disk-add` handing a checked image to QEMU as a descriptor, and
//! `inspect` showing which ports are free. Real QEMU (TCG), with the test
//! guest where the guest must notice.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::confinement::have_landlock;
use crate::disks::have_qemu_img;
use crate::drive::{lines, pci_ids, start, token, wait_until};
use crate::guest::{bios_config, guest_config, have_qemu};
use crate::harness::Test;

/// What `command` prints in the guest, trimmed. It is typed on the console
/// as `echo "ANS-$((N+1)):$(command)"` and read back from the console log:
/// only the shell's answer holds the sum, never the echoed command line.
fn guest_says(t: &mut Test, vm: &str, command: &str) -> String {
    let n = token();
    t.args(["console", vm])
        .stdin(&format!("echo \"ANS-$(({n}+1)):$({command})\"\n"))
        .run();
    let prefix = format!("ANS-{}:", n + 1);
    let mut answer = None;
    wait_until(
        &format!("the answer to `{command}`"),
        Duration::from_secs(60),
        || {
            let log = t.args(["console", vm, "--log"]).run().stdout;
            answer = lines(&log)
                .iter()
                .find_map(|l| l.strip_prefix(&prefix))
                .map(|a| a.trim().to_owned());
            answer.is_some()
        },
    );
    answer.expect("an answer")
}

/// Ask the guest until it says `expected`: it notices a hot-plug a moment
/// after QEMU has done it.
fn guest_sees(t: &mut Test, vm: &str, command: &str, expected: &str) {
    let mut last = String::new();
    for _ in 0..30 {
        last = guest_says(t, vm, command);
        if last == expected {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the guest answers `{command}` with {last:?}, not {expected:?}");
}

/// `inspect --json`'s hot-plug ports as (port, device) pairs.
fn ports(t: &mut Test, vm: &str) -> Vec<(String, Option<String>)> {
    let inspect = t.args(["--json", "inspect", vm]).run().json();
    inspect["hotplug_ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no hotplug_ports array: {inspect}"))
        .iter()
        .map(|p| {
            assert_eq!(p["free"], p["device"].is_null(), "{p}");
            (
                p["id"].as_str().expect("an id").to_owned(),
                p["device"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn port(id: &str, device: Option<&str>) -> (String, Option<String>) {
    (id.to_owned(), device.map(str::to_owned))
}

/// The hot-plug lines of `inspect`'s table.
fn inspect_hotplug_lines(t: &mut Test, vm: &str) -> Vec<String> {
    let out = t.args(["inspect", vm]).run().stdout;
    let mut rows = Vec::new();
    let mut inside = false;
    for line in out.lines() {
        if line.starts_with("hotplug:") {
            inside = true;
        } else if inside && !line.starts_with(' ') {
            break;
        }
        if inside {
            rows.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    rows
}

/// `maqet --json ARGS` failing with exit `code`: its error's code, message
/// and help, unwrapped.
fn fails(t: &mut Test, code: i32, args: &[&str]) -> (String, String, String) {
    let out = t.arg("--json").args(args).status(code).run();
    let error = &out.stderr_json()["error"];
    let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
    (text("code"), text("message"), text("help"))
}

/// A VM's QMP reply, as JSON.
fn qmp(t: &mut Test, vm: &str, command: &str) -> Value {
    t.args(["qmp", vm, command]).run().json()
}

#[test]
fn on_the_default_machine_a_device_and_a_disk_hot_plug_into_free_ports() {
    if !have_qemu("on_the_default_machine_a_device_and_a_disk_hot_plug_into_free_ports") {
        return;
    }
    let mut t = Test::new();
    let vm = "hp-guest";
    // No `machine:`: q35, with maqet's four ports.
    let _stop = start(&mut t, vm, &guest_config(vm), true);
    let free = |n: usize| (0..n).map(|i| port(&format!("maqet-hp{i}"), None));
    assert_eq!(ports(&mut t, vm), free(4).collect::<Vec<_>>());
    let rng = "cat /sys/class/misc/hw_random/rng_available";
    assert_eq!(guest_says(&mut t, vm, rng), "");

    // A device: on the first free port, and the guest has a new RNG.
    t.args(["qmp", "device-add", vm, "virtio-rng-pci", "--id", "rng0"])
        .stdout("added rng0\n")
        .run();
    assert!(pci_ids(&mut t, vm).contains(&"rng0".to_owned()));
    guest_sees(&mut t, vm, rng, "virtio_rng.0");

    // A disk: an image the confined QEMU could not open by name, handed
    // over open; on the next free port, and the guest has a /dev/vda.
    let image = t.path("data.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(4 << 20))
        .expect("make a 4 MiB raw image");
    let added = t
        .args(["--json", "qmp", "disk-add", vm, "data.img"])
        .args(["--id", "data0", "--format", "raw"])
        .run()
        .json();
    assert_eq!(added, json!({"id": "data0", "added": true}));
    guest_sees(&mut t, vm, "cat /sys/block/vda/size", "8192");
    guest_sees(&mut t, vm, "cat /sys/block/vda/ro", "0");
    assert_eq!(
        ports(&mut t, vm),
        [
            port("maqet-hp0", Some("rng0")),
            port("maqet-hp1", Some("data0")),
            port("maqet-hp2", None),
            port("maqet-hp3", None),
        ]
    );
    assert_eq!(
        inspect_hotplug_lines(&mut t, vm),
        [
            "hotplug: 4 ports, 2 free",
            "maqet-hp0 rng0",
            "maqet-hp1 data0",
            "maqet-hp2 (free)",
            "maqet-hp3 (free)",
        ]
    );
    // `inspect` names the disk and its file, not the fd set QEMU got.
    let inspect = t.args(["inspect", vm]).run().stdout;
    assert!(
        inspect.contains(&format!("data0 raw {}\n", image.display())),
        "{inspect}"
    );

    // Unplugged, each is gone from QEMU and from the guest, and its port
    // is free again; the disk's image is closed.
    t.args(["qmp", "device-del", vm, "data0", "--timeout", "60"])
        .stdout("removed data0\n")
        .run();
    guest_sees(&mut t, vm, "ls /sys/block | grep -c ^vd", "0");
    assert_eq!(qmp(&mut t, vm, "query-fdsets"), json!([]));
    let nodes = t
        .args(["qmp", vm, "query-named-block-nodes", "--arg", "flat=true"])
        .run()
        .json();
    assert_eq!(nodes, json!([]));
    assert_eq!(
        ports(&mut t, vm),
        [
            port("maqet-hp0", Some("rng0")),
            port("maqet-hp1", None),
            port("maqet-hp2", None),
            port("maqet-hp3", None),
        ]
    );
    let removed = t
        .args(["--json", "qmp", "device-del", vm, "rng0", "--timeout", "60"])
        .run()
        .json();
    assert_eq!(removed, json!({"id": "rng0", "removed": true}));
    assert!(!pci_ids(&mut t, vm).contains(&"rng0".to_owned()));
    guest_sees(&mut t, vm, rng, "");
    assert_eq!(ports(&mut t, vm), free(4).collect::<Vec<_>>());

    // The same id and image plug again, read-only this time; a qcow2 too.
    t.args(["qmp", "disk-add", vm, "data.img", "--id", "data0"])
        .args(["--format", "raw", "--readonly"])
        .stdout("added data0\n")
        .run();
    guest_sees(&mut t, vm, "cat /sys/block/vda/ro", "1");
    if have_qemu_img("on_the_default_machine_a_device_and_a_disk_hot_plug_into_free_ports") {
        let made = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(t.path("more.qcow2"))
            .arg("2M")
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "qemu-img create more.qcow2");
        t.args(["qmp", "disk-add", vm, "more.qcow2", "--id", "more"])
            .args(["--format", "qcow2"])
            .stdout("added more\n")
            .run();
        guest_sees(&mut t, vm, "cat /sys/block/vdb/size", "4096");
        t.args(["qmp", "device-del", vm, "more", "--timeout", "60"])
            .stdout("removed more\n")
            .run();
    }
    t.args(["qmp", "device-del", vm, "data0", "--timeout", "60"])
        .stdout("removed data0\n")
        .run();
    guest_sees(&mut t, vm, "ls /sys/block | grep -c ^vd", "0");
    assert_eq!(qmp(&mut t, vm, "query-fdsets"), json!([]));
}

#[test]
fn ports_run_out_and_hotplug_ports_0_has_none() {
    if !have_qemu("ports_run_out_and_hotplug_ports_0_has_none") {
        return;
    }
    let mut t = Test::new();
    // Plugging needs no guest (unplugging does): SeaBIOS alone will do.
    let two = bios_config("hp-two").replace(
        ")\n",
        ", hotplug_ports: 2, arguments: [\"-device\", \"qemu-xhci,id=xhci\"])\n",
    );
    let _stop_two = start(&mut t, "hp-two", &two, false);
    for id in ["rng0", "rng1"] {
        t.args(["qmp", "device-add", "hp-two", "virtio-rng-pci", "--id", id])
            .stdout(&format!("added {id}\n"))
            .run();
    }
    let (code, message, help) = fails(
        &mut t,
        1,
        &["qmp", "device-add", "hp-two", "virtio-rng", "--id", "rng2"],
    );
    assert_eq!(code, "maqet::hotplug::no_port");
    assert_eq!(
        message,
        "all 2 hot-plug ports of `hp-two` are in use (maqet-hp0: rng0, maqet-hp1: rng1)"
    );
    assert_eq!(
        help,
        "unplug a device with `maqet qmp device-del hp-two ID`, or raise `hotplug_ports` in its \
         config (up to 32) and restart it"
    );
    // An explicit bus is the user's, even a wrong one.
    t.args([
        "qmp",
        "device-add",
        "hp-two",
        "virtio-rng-pci",
        "--id",
        "rng2",
    ])
    .args(["--prop", "bus=pcie.0"])
    .status(1)
    .stderr_contains("Bus 'pcie.0' does not support hotplugging")
    .run();
    // A device that is not PCI goes where QEMU puts it: on the USB bus.
    t.args(["qmp", "device-add", "hp-two", "usb-kbd", "--id", "kbd0"])
        .stdout("added kbd0\n")
        .run();
    assert_eq!(
        ports(&mut t, "hp-two"),
        [
            port("maqet-hp0", Some("rng0")),
            port("maqet-hp1", Some("rng1"))
        ]
    );
    assert!(!pci_ids(&mut t, "hp-two").contains(&"rng2".to_owned()));

    let zero = bios_config("hp-zero").replace(")\n", ", hotplug_ports: 0)\n");
    let _stop_zero = start(&mut t, "hp-zero", &zero, false);
    let no_ports = (
        "maqet::hotplug::no_port".to_owned(),
        "VM `hp-zero` has no hot-plug ports, and the q35 root bus pcie.0 takes no hot-plugged \
         devices"
            .to_owned(),
        "set `hotplug_ports` in its config (default 4, up to 32) and restart it, or name a \
         hot-pluggable bus with --prop bus=ID"
            .to_owned(),
    );
    assert_eq!(
        fails(
            &mut t,
            1,
            &[
                "qmp",
                "device-add",
                "hp-zero",
                "virtio-rng-pci",
                "--id",
                "rng0"
            ]
        ),
        no_ports
    );
    t.args([
        "qmp", "disk-add", "hp-zero", "x.img", "--id", "d", "--format", "raw",
    ])
    .status(3)
    .stderr_contains("does not exist")
    .run();
    std::fs::File::create(t.path("x.img"))
        .and_then(|f| f.set_len(1 << 20))
        .expect("make an image");
    assert_eq!(
        fails(
            &mut t,
            1,
            &[
                "qmp", "disk-add", "hp-zero", "x.img", "--id", "d", "--format", "raw"
            ]
        ),
        no_ports
    );
    // Nothing of the failed plug is left behind.
    assert_eq!(qmp(&mut t, "hp-zero", "query-fdsets"), json!([]));
    assert!(ports(&mut t, "hp-zero").is_empty());
    assert_eq!(
        inspect_hotplug_lines(&mut t, "hp-zero"),
        ["hotplug: no ports"]
    );
}

#[test]
fn hotplug_ports_is_checked_at_add_and_shown_by_info_and_dry_run() {
    let mut t = Test::new();
    t.file("many.ron", "(name: \"many\", hotplug_ports: 33)\n")
        .args(["add", "many.ron"])
        .status(3)
        .stderr_contains("hotplug_ports must be between 0 and 32, not 33")
        .run();
    t.file("neg.ron", "(name: \"neg\", hotplug_ports: -1)\n")
        .args(["add", "neg.ron"])
        .status(3)
        .stderr_contains("hotplug_ports must be between 0 and 32, not -1")
        .run();
    t.file(
        "pc.ron",
        "(name: \"pc\", machine: \"pc\", hotplug_ports: 2)\n",
    );
    let (code, message, help) = fails(&mut t, 3, &["add", "pc.ron"]);
    assert_eq!(code, "maqet::config::invalid");
    assert_eq!(
        message,
        "hotplug_ports: 2 is for q35 machines, and this VM's machine is `pc`"
    );
    assert_eq!(
        help,
        "on `pc` (i440fx) devices plug into the root bus pci.0 without ports; set \
         `hotplug_ports: 0`, or leave it out"
    );
    // Across files too: a later file that picks `pc`.
    t.file("eight.ron", "(name: \"two\", hotplug_ports: 8)\n")
        .file("to-pc.ron", "(machine: \"pc-i440fx-7.2\")\n")
        .args(["add", "eight.ron", "to-pc.ron"])
        .status(3)
        .stderr_contains("hotplug_ports: 8 is for q35 machines")
        .run();
    t.file(
        "pc0.ron",
        "(name: \"pc0\", machine: \"pc\", hotplug_ports: 0)\n",
    )
    .args(["add", "pc0.ron"])
    .stdout_any()
    .run();
    t.file(
        "q.ron",
        "(name: \"q\", machine: \"pc-q35-7.2\", hotplug_ports: 9)\n",
    )
    .args(["add", "q.ron"])
    .stdout_any()
    .run();
    t.add_empty("plain");

    let hotplug = |t: &mut Test, vm: &str| -> Vec<String> {
        let info = t.args(["info", vm]).run().stdout;
        info.lines()
            .filter(|l| l.starts_with("hotplug:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(hotplug(&mut t, "plain"), ["hotplug: 4 ports"]);
    assert_eq!(hotplug(&mut t, "q"), ["hotplug: 9 ports"]);
    assert_eq!(hotplug(&mut t, "pc0"), Vec::<String>::new());
    let count = |t: &mut Test, vm: &str| {
        t.args(["--json", "info", vm]).run().json()["config"]["hotplug_ports"].clone()
    };
    assert_eq!(count(&mut t, "plain"), 4);
    assert_eq!(count(&mut t, "q"), 9);
    assert_eq!(count(&mut t, "pc0"), 0);

    // `start --dry-run` shows them on the command line.
    let ports_in = |t: &mut Test, vm: &str| -> Vec<Value> {
        let argv = t.args(["--json", "start", "--dry-run", vm]).run().json();
        let argv: Vec<String> = serde_json::from_value(argv).expect("an array of words");
        argv.windows(2)
            .filter(|w| w[0] == "-device" && w[1].contains("pcie-root-port"))
            .map(|w| serde_json::from_str(&w[1]).expect("JSON"))
            .collect()
    };
    let plain = ports_in(&mut t, "plain");
    assert_eq!(
        plain[0],
        json!({"driver": "pcie-root-port", "id": "maqet-hp0", "bus": "pcie.0",
               "addr": "0x1c.0", "multifunction": true, "chassis": 254, "slot": 1, "port": 0})
    );
    assert_eq!(
        plain.iter().map(|p| p["id"].clone()).collect::<Vec<_>>(),
        ["maqet-hp0", "maqet-hp1", "maqet-hp2", "maqet-hp3"]
    );
    assert_eq!(ports_in(&mut t, "q")[8]["addr"], "0x1b.0");
    assert!(ports_in(&mut t, "pc0").is_empty());
    let text = t.args(["start", "--dry-run", "plain"]).run().stdout;
    assert!(
        text.contains(r#"-device '{"addr":"0x1c.3","bus":"pcie.0","chassis":254,"driver":"pcie-root-port","id":"maqet-hp3","port":3,"slot":4}'"#),
        "{text}"
    );

    // `apply` keeps to the same rule.
    t.file("zero.ron", "(hotplug_ports: 0)\n")
        .args(["apply", "plain", "zero.ron"])
        .stdout_any()
        .run();
    assert_eq!(hotplug(&mut t, "plain"), ["hotplug: no ports"]);
    assert!(ports_in(&mut t, "plain").is_empty());
}

#[test]
fn disk_add_checks_the_image_like_a_configs_and_qemu_stays_confined() {
    let test = "disk_add_checks_the_image_like_a_configs_and_qemu_stays_confined";
    if !have_qemu(test) || !have_qemu_img(test) {
        return;
    }
    let mut t = Test::new();
    let vm = "hp-check";
    let _stop = start(&mut t, vm, &bios_config(vm), false);
    let qemu_img = |args: &[&str]| {
        let ok = Command::new("qemu-img")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "qemu-img {args:?}");
    };
    let base = t.path("base.qcow2");
    let overlay = t.path("overlay.qcow2");
    let plain = t.path("plain.img");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        base.to_str().expect("UTF-8"),
        "1M",
    ]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        base.to_str().expect("UTF-8"),
        overlay.to_str().expect("UTF-8"),
    ]);
    std::fs::File::create(&plain)
        .and_then(|f| f.set_len(1 << 20))
        .expect("make a raw image");
    // Each refusal: exit code, error code, and words of the message.
    let refused = |t: &mut Test, args: &[&str], exit: i32, code: &str, words: &str| {
        let mut all = vec!["qmp", "disk-add", vm];
        all.extend_from_slice(args);
        let (got, message, help) = fails(t, exit, &all);
        assert_eq!(got, code, "{args:?}: {message}");
        assert!(
            message.contains(words) || help.contains(words),
            "{args:?}: {message} / {help}"
        );
    };
    let raw = ["--id", "d0", "--format", "raw"];
    let with = |file: &'static str, rest: &[&'static str]| {
        let mut args = vec![file];
        args.extend_from_slice(rest);
        args
    };

    // The path filter, as for a config's images.
    refused(
        &mut t,
        &with("/etc/passwd", &raw),
        4,
        "maqet::path",
        "inside the system directory /etc",
    );
    std::fs::create_dir(t.path(".hidden")).expect("mkdir .hidden");
    std::fs::copy(&plain, t.path(".hidden/x.img")).expect("copy");
    refused(
        &mut t,
        &with(".hidden/x.img", &raw),
        4,
        "maqet::path",
        ".hidden",
    );
    refused(
        &mut t,
        &with("missing.img", &raw),
        3,
        "maqet::config::invalid",
        "missing.img does not exist",
    );
    std::fs::create_dir(t.path("dir.img")).expect("mkdir");
    refused(
        &mut t,
        &with("dir.img", &raw),
        4,
        "maqet::refused",
        "is not a regular file",
    );
    // An overlay would need its base, which QEMU is never told to open.
    let (code, message, _) = fails(
        &mut t,
        4,
        &[
            "qmp",
            "disk-add",
            vm,
            "overlay.qcow2",
            "--id",
            "d0",
            "--format",
            "qcow2",
        ],
    );
    assert_eq!(code, "maqet::refused");
    assert_eq!(
        message,
        format!(
            "{} has a backing file ({}); a hot-plugged image must stand alone",
            overlay.display(),
            base.display()
        )
    );
    // The wrong format is qemu-img's to find; nothing is guessed.
    refused(
        &mut t,
        &["plain.img", "--id", "d0", "--format", "qcow2"],
        3,
        "maqet::config::invalid",
        "qcow2",
    );
    refused(
        &mut t,
        &["plain.img", "--id", "d0", "--format", "vmdk"],
        2,
        "maqet::usage",
        "`vmdk` is not a disk format: use raw or qcow2",
    );
    // Ids: not maqet's, short enough to name the block node; no property
    // disk-add sets itself, none that opens a host file.
    let refusals: [(&[&str], i32, &str, &str); 4] = [
        (
            &["--id", "maqet-disk0", "--format", "raw"],
            2,
            "maqet::usage",
            "ids starting with `maqet-` are maqet's own",
        ),
        (
            &["--id", "a23456789012345678901234", "--format", "raw"],
            2,
            "maqet::usage",
            "give an --id of 1 to 22 letters",
        ),
        (
            &[
                "--id",
                "d0",
                "--format",
                "raw",
                "--prop",
                "drive=maqet-drive0",
            ],
            2,
            "maqet::usage",
            "`disk-add` sets the `drive` property itself",
        ),
        (
            &[
                "--id",
                "d0",
                "--format",
                "raw",
                "--prop",
                "romfile=/etc/passwd",
            ],
            4,
            "maqet::refused",
            "the device property `romfile` names a host file or device",
        ),
    ];
    for (rest, exit, code, words) in refusals {
        refused(&mut t, &with("plain.img", rest), exit, code, words);
    }
    assert_eq!(qmp(&mut t, vm, "query-fdsets"), json!([]));

    // What the filter let through plugs in; a second disk of the same id
    // fails in QEMU and leaves nothing behind.
    t.args(["qmp", "disk-add", vm, "plain.img"])
        .args(raw)
        .stdout("added d0\n")
        .run();
    let (code, message, _) = fails(
        &mut t,
        1,
        &[
            "qmp",
            "disk-add",
            vm,
            "base.qcow2",
            "--id",
            "d0",
            "--format",
            "qcow2",
        ],
    );
    assert_eq!(code, "maqet::qmp");
    assert!(message.contains("maqet-hd-d0"), "{message}");
    let sets = qmp(&mut t, vm, "query-fdsets");
    assert_eq!(sets.as_array().map(Vec::len), Some(1), "{sets}");
    assert_eq!(sets[0]["fds"][0]["opaque"], plain.to_str().expect("UTF-8"));

    // The image was handed over open: the confined QEMU itself still
    // cannot open it, or anything else it was not given.
    if have_landlock(test) {
        let args = json!({"driver": "raw", "node-name": "sneak",
                          "file": {"driver": "file", "filename": base.to_str().expect("UTF-8")}});
        t.args([
            "qmp",
            vm,
            "blockdev-add",
            "--allow-dangerous",
            "--args-json",
        ])
        .arg(args.to_string())
        .status(1)
        .stderr_contains("Permission denied")
        .run();
    }
}

/// Devices and properties that make QEMU open host files are refused, on
/// the VM's own files too (a packet capture over its console log or disk,
/// as an attacker tried): confinement alone would let those through.
/// maqet's own devices cannot be unplugged.
#[test]
fn device_add_refuses_what_opens_host_files_and_device_del_keeps_maqets_devices() {
    let test = "device_add_refuses_what_opens_host_files_and_device_del_keeps_maqets_devices";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    std::fs::write(t.path("data.raw"), vec![7u8; 1 << 16]).expect("data.raw");
    let vm = "hp-host";
    let config = bios_config(vm).replace(
        "memory: \"64M\"",
        "memory: \"64M\", machine: \"pc\", storage: [Raw(name: \"data\", file: \"data.raw\")]",
    );
    assert!(config.contains("data.raw"), "{config}");
    let _stop = start(&mut t, vm, &config, false);
    let id = t.args(["--json", "info", vm]).run().json()["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let log = t.runtime_dir().join(&id).join("console.log");
    let disk = t.path("data.raw");
    for (driver, prop) in [
        ("usb-kbd", format!("pcap={}", log.display())),
        ("usb-kbd", format!("PCAP={}", disk.display())),
        ("virtio-rng-pci", "romfile=".to_owned()),
        ("virtio-net-pci", "x-some-new-file=/etc/passwd".to_owned()),
        ("virtio-net-pci", "vhostfd=3".to_owned()),
        ("virtio-net-pci", "host_path=/etc".to_owned()),
    ] {
        let (code, message, _) = fails(
            &mut t,
            4,
            &[
                "qmp",
                "device-add",
                vm,
                driver,
                "--id",
                "x1",
                "--prop",
                &prop,
            ],
        );
        assert_eq!(code, "maqet::refused", "{prop}");
        let key = prop.split('=').next().expect("a key");
        assert_eq!(
            message,
            format!("the device property `{key}` names a host file or device")
        );
    }
    for driver in [
        "usb-mtp",
        "usb-host",
        "u2f-passthru",
        "vfio-pci",
        "vhost-vsock-pci",
    ] {
        let (code, message, _) = fails(&mut t, 4, &["qmp", "device-add", vm, driver, "--id", "x2"]);
        assert_eq!(code, "maqet::refused", "{driver}");
        assert_eq!(
            message,
            format!("the device `{driver}` passes a host device or file to the guest")
        );
    }
    // Nothing was written over: the disk still holds its bytes.
    assert_eq!(
        std::fs::read(&disk).expect("read data.raw"),
        vec![7u8; 1 << 16]
    );
    // On `pc`, QEMU would unplug maqet's own disk and NIC: refused.
    for own in ["maqet-disk0", "maqet-nic0"] {
        let (code, message, _) = fails(&mut t, 2, &["qmp", "device-del", vm, own]);
        assert_eq!(code, "maqet::usage");
        assert_eq!(message, "ids starting with `maqet-` are maqet's own");
    }
    let block = qmp(&mut t, vm, "query-block");
    assert!(
        block.to_string().contains("data.raw") || block.to_string().contains("maqet-drive0"),
        "{block}"
    );
}
