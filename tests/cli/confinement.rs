//! Attacks on the host through a VM, as docs/security.md lists them: a
//! config with raw arguments, raw QMP commands, a screenshot path that is
//! a symlink, a crafted backing chain, a swapped directory. Each is tried
//! with Landlock in force and, where maqet's own defence does not depend on
//! it, with confinement turned off in the settings.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::guest::{bios_config, have_qemu};
use crate::harness::Test;

/// True when the kernel has Landlock; otherwise the caller skips, loudly —
/// unless `MAQET_REQUIRE_LANDLOCK=1` (CI sets it), where that fails.
pub(crate) fn have_landlock(test: &str) -> bool {
    have_qemu(test)
        && crate::harness::needs(
            test,
            "MAQET_REQUIRE_LANDLOCK",
            maqet::qemu::confine::kernel_abi().is_ok(),
            "this kernel has no Landlock",
        )
}

fn s(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

/// Run maqet with `--json` expecting exit `code`; the error's message and
/// help, unwrapped.
fn fails(t: &mut Test, args: &[&str], code: i32) -> (String, String) {
    let out = t.arg("--json").args(args).status(code).run();
    let error = &out.stderr_json()["error"];
    assert_eq!(error["exit_code"], code, "{error}");
    (
        error["message"].as_str().expect("a message").to_owned(),
        error["help"].as_str().expect("a help line").to_owned(),
    )
}

/// A host file the VM has no business with, and its contents.
fn secret(t: &mut Test) -> (String, &'static str) {
    const TEXT: &str = "the host's secret\n";
    t.file("host/secret", TEXT);
    (s(&t.path("host/secret")), TEXT)
}

/// Settings turning confinement off, for the defences that must hold
/// without Landlock; pass as `MAQET_CONFIG`.
fn unconfined(t: &mut Test) -> String {
    t.file("off/maqet.ron", "(confinement: Off)\n");
    s(&t.path("off/maqet.ron"))
}

#[test]
fn raw_arguments_cannot_reach_host_files_in_a_confined_qemu() {
    let test = "raw_arguments_cannot_reach_host_files_in_a_confined_qemu";
    if !have_landlock(test) {
        return;
    }
    let mut t = Test::new();
    let (secret, _) = secret(&mut t);
    t.file("host/rc.cfg", "[chardev \"x\"]\n  backend = \"null\"\n");
    let rc = s(&t.path("host/rc.cfg"));
    let log = s(&t.path("host/qemu-debug.log"));
    let attacks: [(&[&str], String); 5] = [
        (
            &["-drive", &format!("file={secret},format=raw,if=virtio")],
            format!("Could not open '{secret}': Permission denied"),
        ),
        (
            &["-fw_cfg", &format!("name=opt/x,file={secret}")],
            format!("Failed to open file “{secret}”: Permission denied"),
        ),
        (
            &["-kernel", &secret],
            format!("could not open kernel file '{secret}': Permission denied"),
        ),
        (
            &["-D", &log],
            format!("Error opening logfile {log}: Permission denied"),
        ),
        (&["-readconfig", &rc], "Permission denied".into()),
    ];
    for (i, (arguments, error)) in attacks.iter().enumerate() {
        let name = format!("arg{i}");
        let list = arguments
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        t.file(
            &format!("{name}.ron"),
            &format!("(name: \"{name}\", accel: Tcg, memory: \"64M\", arguments: [{list}])\n"),
        );
        t.args(["add", "--trust", &format!("{name}.ron")])
            .stdout_any()
            .run();
        let _stop = t.stopper(&name);
        let (message, _) = fails(&mut t, &["start", &name], 1);
        assert!(
            message.starts_with(&format!("QEMU exited while starting `{name}`"))
                && message.contains(error.as_str()),
            "{message}"
        );
    }
    assert!(
        !t.path("host/qemu-debug.log").exists(),
        "-D created a host file"
    );
}

#[test]
fn a_config_alone_cannot_bring_raw_arguments_or_a_program() {
    if !have_qemu("a_config_alone_cannot_bring_raw_arguments_or_a_program") {
        return;
    }
    let mut t = Test::new();
    let off = unconfined(&mut t);
    t.file("evil.sh", "#!/bin/sh\ntouch \"$0.ran\"\n");
    t.file(
        "args.ron",
        "(name: \"args\", arguments: [\"-netdev\", \"tap,id=t0,script=./evil.sh\"])\n",
    )
    .file("prog.ron", "(name: \"prog\", binary: \"./evil.sh\")\n");
    for (file, what) in [
        ("args.ron", "raw QEMU `arguments`"),
        ("prog.ron", "a custom `binary`"),
    ] {
        t.env("MAQET_CONFIG", &off);
        let (message, help) = fails(&mut t, &["add", file], 4);
        assert_eq!(
            message,
            format!(
                "VM `{}` has {what}: these act on the host with your rights, and a config file alone cannot grant that",
                file.trim_end_matches(".ron")
            )
        );
        assert!(help.contains("add it again with --trust"), "{help}");
    }
    assert!(t.list().is_empty(), "nothing was added");
    // Trusted on the command line, the VM records it; changing the
    // arguments by `apply` without --trust is refused and changes nothing.
    t.args(["add", "--trust", "args.ron"]).stdout_any().run();
    let info = t.args(["--json", "info", "args"]).run().json();
    assert_eq!(info["trusted"], true);
    t.file(
        "more.ron",
        "(arguments: [\"-device\", \"virtio-rng-pci\"])\n",
    );
    let (_, help) = fails(&mut t, &["apply", "args", "more.ron"], 4);
    assert!(help.contains("apply it with --trust"), "{help}");
    let after = t.args(["--json", "info", "args"]).run().json();
    assert_eq!(after, info, "a refused apply changes nothing");
    assert!(!t.path("evil.sh.ran").exists());
}

#[test]
fn raw_qmp_sends_only_the_allow_list() {
    let test = "raw_qmp_sends_only_the_allow_list";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    let off = unconfined(&mut t);
    let (secret, text) = secret(&mut t);
    t.file("q.ron", &bios_config("q"))
        .args(["add", "q.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("q");
    // Unconfined: the refusal alone must stop these.
    t.env("MAQET_CONFIG", &off)
        .args(["start", "q"])
        .stdout_any()
        .run();
    let attacks: [(&str, String); 7] = [
        (
            "netdev_add",
            r#"{"type":"tap","id":"t0","script":"/bin/true","downscript":"no"}"#.into(),
        ),
        (
            "chardev-change",
            format!(
                r#"{{"id":"maqet-console","backend":{{"type":"file","data":{{"out":"{secret}"}}}}}}"#
            ),
        ),
        (
            "xen-save-devices-state",
            format!(r#"{{"filename":"{secret}"}}"#),
        ),
        (
            "blockdev-change-medium",
            format!(r#"{{"id":"x","filename":"{secret}"}}"#),
        ),
        (
            "block-export-add",
            format!(r#"{{"type":"fuse","id":"e","node-name":"x","mountpoint":"{secret}"}}"#),
        ),
        (
            "nbd-server-start",
            r#"{"addr":{"type":"inet","data":{"host":"127.0.0.1","port":"10809"}}}"#.into(),
        ),
        (
            "blockdev-add",
            format!(r#"{{"driver":"file","filename":"{secret}","node-name":"x"}}"#),
        ),
    ];
    for (command, args) in &attacks {
        let (message, help) = fails(&mut t, &["qmp", "q", command, "--args-json", args], 4);
        assert!(
            message.starts_with(&format!(
                "maqet does not send `{command}` through the raw form: "
            )),
            "{message}"
        );
        assert!(help.contains("--allow-dangerous"), "{help}");
    }
    t.args(["qmp", "q", "query-status"]).stdout_any().run();
    let (message, _) = fails(
        &mut t,
        &["qmp", "q", "device_add", "--arg", "driver=virtio-rng-pci"],
        4,
    );
    assert!(
        message
            .ends_with("properties such as `romfile` open host files; use `maqet qmp device-add`"),
        "{message}"
    );
    let romfile = format!("romfile={secret}");
    let (message, _) = fails(
        &mut t,
        &[
            "qmp",
            "device-add",
            "q",
            "virtio-net-pci",
            "--id",
            "n1",
            "--prop",
            &romfile,
        ],
        4,
    );
    assert_eq!(
        message,
        "the device property `romfile` names a host file or device"
    );
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), text);
}

#[test]
fn a_confined_qemu_refuses_dangerous_qmp_commands_too() {
    let test = "a_confined_qemu_refuses_dangerous_qmp_commands_too";
    if !have_landlock(test) {
        return;
    }
    let mut t = Test::new();
    let (secret, text) = secret(&mut t);
    let saved = s(&t.path("host/saved"));
    t.file("q.ron", &bios_config("q"))
        .args(["add", "q.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("q");
    t.args(["start", "q"]).stdout_any().run();
    let status = t.args(["--json", "status", "q"]).run().json();
    assert_eq!(status["confined"], true, "{status}");
    assert!(
        status["confinement"]
            .as_str()
            .is_some_and(|c| c.starts_with("landlock (ABI ")),
        "{status}"
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("its port").port();
    let agent = t.path("host/agent.sock");
    let unix = std::os::unix::net::UnixListener::bind(&agent).expect("a Unix listener");
    unix.set_nonblocking(true).expect("non-blocking");
    let agent = s(&agent);
    let attacks: [(&str, String, &str); 8] = [
        (
            "blockdev-add",
            format!(r#"{{"driver":"file","filename":"{secret}","node-name":"x"}}"#),
            "Permission denied",
        ),
        (
            "chardev-change",
            format!(
                r#"{{"id":"maqet-console","backend":{{"type":"file","data":{{"out":"{secret}"}}}}}}"#
            ),
            "Permission denied",
        ),
        (
            "xen-save-devices-state",
            format!(r#"{{"filename":"{saved}"}}"#),
            "Permission denied",
        ),
        (
            "nbd-server-start",
            r#"{"addr":{"type":"inet","data":{"host":"127.0.0.1","port":"10809"}}}"#.into(),
            "Failed to bind socket: Permission denied",
        ),
        (
            "netdev_add",
            r#"{"type":"tap","id":"t0","script":"/bin/true","downscript":"no"}"#.into(),
            "/dev/net/tun: Permission denied",
        ),
        (
            // Landlock has no rule for Unix sockets by path (a session bus,
            // docker.sock): the socket filter refuses creating one.
            "chardev-add",
            format!(
                r#"{{"id":"u0","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{agent}"}}}},"server":false}}}}}}"#
            ),
            "Failed to create socket: Permission denied",
        ),
        (
            // Nor for UDP: none without a NIC.
            "chardev-add",
            r#"{"id":"d0","backend":{"type":"udp","data":{"remote":{"type":"inet","data":{"host":"127.0.0.1","port":"9999"}},"local":{"type":"inet","data":{"host":"0.0.0.0","port":"9998"}}}}}"#.into(),
            "Failed to create socket family 2: Permission denied",
        ),
        (
            // No NIC: no outgoing TCP either.
            "chardev-add",
            format!(
                r#"{{"id":"c0","backend":{{"type":"socket","data":{{"addr":{{"type":"inet","data":{{"host":"127.0.0.1","port":"{port}"}}}},"server":false}}}}}}"#
            ),
            "Permission denied",
        ),
    ];
    for (command, args, error) in &attacks {
        let (message, _) = fails(
            &mut t,
            &[
                "qmp",
                "q",
                command,
                "--args-json",
                args,
                "--allow-dangerous",
            ],
            1,
        );
        assert!(message.ends_with(error), "{command}: {message}");
    }
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), text);
    assert!(!t.path("host/saved").exists());
    assert!(
        unix.accept().is_err(),
        "nobody connected to the Unix socket"
    );
    let status = t.args(["--json", "status", "q"]).run().json();
    assert_eq!(status["run_state"], "running");
}

/// A temp dir under /var/tmp, a system directory maqet refuses by default.
/// /var/tmp is writable by everyone on any FHS system; when it is not, the
/// test skips (root can always write it: `MAQET_REQUIRE_ROOT`).
fn var_tmp_dir(test: &str) -> Option<tempfile::TempDir> {
    match tempfile::Builder::new()
        .prefix("maqet-test-")
        .tempdir_in("/var/tmp")
    {
        Ok(dir) => Some(dir),
        Err(e) => {
            let why = format!("/var/tmp is not writable: {e}");
            crate::harness::needs(test, "MAQET_REQUIRE_ROOT", false, &why);
            None
        }
    }
}

#[test]
fn a_screendump_never_lands_outside_through_a_swapped_directory() {
    let test = "a_screendump_never_lands_outside_through_a_swapped_directory";
    if !have_qemu(test) {
        return;
    }
    let Some(victim) = var_tmp_dir(test) else {
        return;
    };
    for confined in [true, false] {
        let mut t = Test::new();
        let off = unconfined(&mut t);
        t.file("q.ron", &bios_config("q"))
            .args(["add", "q.ron"])
            .stdout_any()
            .run();
        let _stop = t.stopper("q");
        if !confined {
            t.env("MAQET_CONFIG", &off);
        }
        t.args(["start", "q"]).stdout_any().run();
        // A link into a system directory is refused outright...
        symlink(victim.path(), t.path("link")).expect("symlink");
        let (message, _) = fails(&mut t, &["qmp", "screendump", "q", "link/shot.ppm"], 4);
        assert!(
            message.contains("inside the system directory /var"),
            "{message}"
        );
        // ...and one swapped in while maqet works (another user who owns
        // `shots/` flips it between a real directory and such a link)
        // never gets the picture into /var/tmp.
        let (shots, real) = (t.path("shots"), t.path("shots.real"));
        std::fs::create_dir(&real).expect("mkdir");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let (stop, shots, real, victim) = (
                stop.clone(),
                shots.clone(),
                real.clone(),
                victim.path().to_owned(),
            );
            std::thread::spawn(move || {
                let link = shots.with_extension("link");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&link);
                    let _ = symlink(&victim, &link);
                    let _ = std::fs::rename(&link, &shots);
                    let _ = std::fs::remove_file(&shots);
                    let _ = symlink(&real, &link);
                    let _ = std::fs::rename(&link, &shots);
                }
            })
        };
        let mut landed = 0;
        for _ in 0..60 {
            let out = t
                .command(["qmp", "screendump", "q", &s(&shots.join("shot.ppm"))])
                .output()
                .expect("run maqet");
            landed += usize::from(out.status.success());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flipper.join().expect("the flipper");
        let leaked: Vec<_> = std::fs::read_dir(victim.path())
            .expect("read the victim dir")
            .collect();
        assert!(leaked.is_empty(), "confined {confined}: {leaked:?}");
        eprintln!("confined {confined}: {landed} of 60 screendumps landed in shots/");
    }
}

/// `qemu-img` with `args`, which must succeed.
fn qemu_img(args: &[&str]) {
    let ok = Command::new("qemu-img")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "qemu-img {args:?}");
}

/// Turn a qcow2 image's backing-format header extension into an unknown
/// one (which QEMU skips), as images written by old tools have none.
fn forget_backing_format(image: &Path) {
    const BACKING_FORMAT: [u8; 4] = [0xe2, 0x79, 0x2a, 0xca];
    let mut bytes = std::fs::read(image).expect("read the image");
    let at = bytes[..4096]
        .windows(4)
        .position(|w| w == BACKING_FORMAT)
        .expect("a backing format extension");
    bytes[at..at + 4].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    std::fs::write(image, bytes).expect("write the image");
}

#[test]
fn a_crafted_backing_chain_is_refused_at_add() {
    if !have_qemu("a_crafted_backing_chain_is_refused_at_add") {
        return;
    }
    let mut t = Test::new();
    let (secret, _) = secret(&mut t);
    // (a) The backing format is not recorded: QEMU would probe it, and a
    // raw file that looks like a qcow2 would name a backing of its own.
    let base = s(&t.path("base.qcow2"));
    let top = s(&t.path("top.qcow2"));
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-b", &secret, "-F", "raw", &base,
    ]);
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-b", &base, "-F", "qcow2", &top,
    ]);
    forget_backing_format(&t.path("top.qcow2"));
    t.file(
        "a.ron",
        &format!("(name: \"a\", storage: [Qcow2(name: \"root\", file: \"{top}\")])\n"),
    );
    let (message, help) = fails(&mut t, &["add", "a.ron"], 4);
    assert_eq!(
        message,
        format!(
            "drive `root`: the backing file `{base}` of {top} has no recorded format, so QEMU would guess it"
        )
    );
    assert!(help.contains("qemu-img rebase -u -F qcow2"), "{help}");
    // The suggested command is quoted: a backing name with `$(...)` in it
    // pasted into a shell ran it.
    let evil = t.path("b $(touch PWNED) ;x");
    std::fs::write(&evil, vec![0u8; 4096]).expect("evil backing");
    let ov = s(&t.path("ov.qcow2"));
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &s(&evil),
        "-F",
        "raw",
        &ov,
    ]);
    forget_backing_format(&t.path("ov.qcow2"));
    t.file(
        "c.ron",
        &format!("(name: \"c\", storage: [Qcow2(name: \"root\", file: \"{ov}\")])\n"),
    );
    let (_, help) = fails(&mut t, &["add", "c.ron"], 4);
    assert!(
        help.contains(&format!(
            "`qemu-img rebase -u -F qcow2 -b '{}' {ov}`",
            s(&evil)
        )),
        "{help}"
    );
    // (b) A vmdk in the chain names its own extents.
    t.file(
        "desc.vmdk",
        &format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"{secret}\" 0\n"
        ),
    );
    let vmdk = s(&t.path("desc.vmdk"));
    let top2 = s(&t.path("top2.qcow2"));
    qemu_img(&["create", "-q", "-f", "qcow2", &top2, "1M"]);
    qemu_img(&[
        "rebase", "-q", "-u", "-f", "qcow2", "-b", &vmdk, "-F", "vmdk", &top2,
    ]);
    t.file(
        "b.ron",
        &format!("(name: \"b\", storage: [Qcow2(name: \"root\", file: \"{top2}\")])\n"),
    );
    let (message, _) = fails(&mut t, &["add", "b.ron"], 4);
    assert_eq!(
        message,
        format!("drive `root`: the backing file `{vmdk}` of {top2} is a `vmdk` image")
    );
    assert!(t.list().is_empty(), "nothing was added");
}

#[test]
fn a_backing_chain_is_given_to_qemu_node_by_node() {
    if !have_qemu("a_backing_chain_is_given_to_qemu_node_by_node") {
        return;
    }
    let mut t = Test::new();
    let base = s(&t.path("base.qcow2"));
    qemu_img(&["create", "-q", "-f", "qcow2", &base, "4M"]);
    t.file(
        "c.ron",
        &format!(
            "(name: \"c\", accel: Tcg, memory: \"64M\", storage: [Qcow2(name: \"root\", size: \"4M\", backing_file: \"{base}\", backing_format: Qcow2)])\n"
        ),
    );
    t.args(["add", "c.ron"]).stdout_any().run();
    let _stop = t.stopper("c");
    t.args(["start", "c"]).stdout_any().run();
    let block = t.args(["qmp", "c", "query-block"]).run().json();
    let backing = &block[0]["inserted"]["image"]["backing-image"]["filename"];
    // QEMU has the base by descriptor, in the fd set labelled with its path.
    let sets = t.args(["qmp", "c", "query-fdsets"]).run().json();
    let set: u64 = backing
        .as_str()
        .and_then(|f| f.strip_prefix("/dev/fdset/"))
        .and_then(|n| n.parse().ok())
        .expect("the backing is an fd set");
    let labelled = sets
        .as_array()
        .expect("fd sets")
        .iter()
        .find(|s| s["fdset-id"] == set)
        .map(|s| s["fds"][0]["opaque"].clone());
    assert_eq!(labelled, Some(serde_json::json!(base)), "{sets}");
    let argv = t
        .args(["start", "c", "--dry-run"])
        .stdout_any()
        .run()
        .stdout;
    assert!(
        argv.contains(r#""backing":"maqet-drive0-b0""#) && argv.contains(r#""backing":null"#),
        "{argv}"
    );
}

#[test]
fn rm_clean_storage_never_deletes_through_a_swapped_directory() {
    if !have_qemu("rm_clean_storage_never_deletes_through_a_swapped_directory") {
        return;
    }
    let mut t = Test::new();
    let imgs = t.path("imgs");
    std::fs::create_dir(&imgs).expect("mkdir imgs");
    t.file(
        "d.ron",
        &format!(
            "(name: \"d\", accel: Tcg, memory: \"64M\", storage: [Qcow2(name: \"root\", file: \"{}/disk.qcow2\", size: \"1M\")])\n",
            s(&imgs)
        ),
    );
    t.args(["add", "d.ron"]).stdout_any().run();
    t.args(["disk", "create", "d", "root"]).stdout_any().run();
    assert!(imgs.join("disk.qcow2").exists());
    // Someone who can write above it moves the directory away and puts a
    // symlink to a directory of theirs (or a victim's) in its place.
    t.file("victim/disk.qcow2", "the victim's file\n");
    std::fs::rename(&imgs, t.path("imgs.moved")).expect("move imgs");
    symlink(t.path("victim"), &imgs).expect("symlink");
    let out = t
        .args(["--json", "rm", "--clean-storage", "d"])
        .run()
        .json();
    assert_eq!(out[0]["deleted"], serde_json::json!([]), "{out}");
    assert_eq!(
        out[0]["kept"],
        serde_json::json!([s(&imgs.join("disk.qcow2"))]),
        "what was not deleted is said to be kept: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(t.path("victim/disk.qcow2")).expect("victim"),
        "the victim's file\n"
    );
    assert!(t.path("imgs.moved/disk.qcow2").exists());
}

#[test]
fn allow_write_in_the_settings_lets_images_into_a_system_directory() {
    if !have_qemu("allow_write_in_the_settings_lets_images_into_a_system_directory") {
        return;
    }
    let Some(dir) = var_tmp_dir("allow_write_in_the_settings_lets_images_into_a_system_directory")
    else {
        return;
    };
    let images = s(dir.path());
    let mut t = Test::new();
    t.file(
        "e.ron",
        &format!(
            "(name: \"e\", accel: Tcg, memory: \"64M\", storage: [Raw(name: \"data\", file: \"{images}/data.raw\", size: \"1M\")])\n"
        ),
    );
    let (message, _) = fails(&mut t, &["add", "e.ron"], 4);
    assert!(
        message.ends_with("inside the system directory /var"),
        "{message}"
    );
    t.file(
        "settings/maqet.ron",
        &format!("(allow_write: [\"{images}\"])\n"),
    );
    let settings = s(&t.path("settings/maqet.ron"));
    t.env("MAQET_CONFIG", &settings)
        .args(["add", "e.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("e");
    t.env("MAQET_CONFIG", &settings)
        .args(["start", "e"])
        .stdout_any()
        .run();
    assert!(dir.path().join("data.raw").exists());
}

#[test]
fn kvm_that_fails_at_start_falls_back_to_tcg_once_per_boot() {
    let test = "kvm_that_fails_at_start_falls_back_to_tcg_once_per_boot";
    if !have_qemu(test) {
        return;
    }
    if !crate::harness::have_kvm(test) {
        return;
    }
    let mut t = Test::new();
    // A QEMU whose KVM aborts, as on hosts with broken nested KVM.
    let qemu = crate::harness::in_path("qemu-system-x86_64");
    let qemu = qemu.to_str().expect("UTF-8");
    let program = t.program(
        "bin/qemu",
        &format!("#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = kvm ]; then\n    echo 'qemu: error: failed to set MSR 0x10a to 0x69' >&2\n    exit 1\n  fi\ndone\nexec {qemu} \"$@\"\n"),
    );
    t.file(
        "settings/maqet.ron",
        &format!("(allow_execute: [\"{qemu}\"])\n"),
    );
    let settings = s(&t.path("settings/maqet.ron"));
    t.file(
        "k.ron",
        &format!("(name: \"k\", memory: \"64M\", binary: \"{program}\")\n"),
    );
    // A VM that fails with TCG too: that is not KVM's fault, and nothing
    // is remembered.
    t.file(
        "bad.ron",
        &format!(
            "(name: \"bad\", memory: \"64M\", binary: \"{program}\", arguments: [\"-bogus-option\"])\n"
        ),
    );
    t.args(["add", "--trust", "bad.ron"]).stdout_any().run();
    t.env("MAQET_CONFIG", &settings);
    let (message, _) = fails(&mut t, &["start", "bad"], 1);
    assert!(
        message.contains("-bogus-option: invalid option"),
        "{message}"
    );
    assert!(!t.runtime_dir().join("kvm-unusable").exists());
    t.args(["add", "--trust", "k.ron"]).stdout_any().run();
    let _stop = t.stopper("k");
    t.env("MAQET_CONFIG", &settings)
        .args(["start", "k"])
        .stdout_any()
        .stderr("maqet: warning: QEMU failed with KVM (qemu: error: failed to set MSR 0x10a to 0x69); started `k` with TCG (software emulation) instead\n")
        .run();
    let status = t.args(["--json", "status", "k"]).run().json();
    assert_eq!(status["accel"], "tcg");
    assert_eq!(
        status["accel_note"],
        "KVM failed at start: qemu: error: failed to set MSR 0x10a to 0x69"
    );
    t.args(["stop", "--force", "k"]).stdout_any().run();
    // Remembered for this boot and this program: no second failed try.
    t.env("MAQET_CONFIG", &settings)
        .args(["start", "k"])
        .stdout_any()
        .run();
    let status = t.args(["--json", "status", "k"]).run().json();
    assert_eq!(status["accel"], "tcg");
    assert_eq!(
        status["accel_note"],
        "KVM failed earlier in this boot: qemu: error: failed to set MSR 0x10a to 0x69"
    );
    // The memo is not a stale runtime file: doctor does not report it and
    // cleanup keeps it.
    t.args(["stop", "--force", "k"]).stdout_any().run();
    let doctor = t.args(["--json", "doctor"]).stdout_any().run().json();
    let files = doctor["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "runtime files")
        .expect("a runtime files check")
        .clone();
    assert_eq!(files["detail"], "no stale files", "{files}");
    t.args(["cleanup"]).stdout_any().run();
    assert!(t.runtime_dir().join("kvm-unusable").exists());
    // `accel: Kvm` never falls back.
    t.file(
        "kvm.ron",
        &format!("(name: \"k2\", memory: \"64M\", accel: Kvm, binary: \"{program}\")\n"),
    );
    t.args(["add", "--trust", "kvm.ron"]).stdout_any().run();
    t.env("MAQET_CONFIG", &settings)
        .args(["start", "k2"])
        .status(1)
        .stderr_contains("failed to set MSR 0x10a")
        .run();
}

#[test]
fn every_kind_of_device_works_in_a_confined_qemu() {
    let test = "every_kind_of_device_works_in_a_confined_qemu";
    if !have_landlock(test) {
        return;
    }
    let mut t = Test::new();
    std::fs::create_dir(t.path("share")).expect("mkdir share");
    std::fs::create_dir(t.path("docs")).expect("mkdir docs");
    std::fs::write(t.path("cd.iso"), vec![0u8; 1 << 20]).expect("cd.iso");
    std::fs::write(t.path("data.raw"), vec![0u8; 1 << 20]).expect("data.raw");
    std::fs::write(t.path("ro.raw"), vec![0u8; 1 << 20]).expect("ro.raw");
    std::fs::copy("/usr/share/seabios/bios-256k.bin", t.path("bios.bin")).expect("bios");
    let port = crate::harness::claim_port();
    t.file(
        "all.ron",
        &format!(
            r#"(name: "all", accel: Tcg, memory: "128M",
    display: Vnc(display: 57),
    boot: (firmware: "bios.bin"),
    storage: [
        Qcow2(name: "root", size: "16M"),
        Qcow2(name: "second", size: "8M", interface: Sata),
        Raw(name: "data", file: "data.raw", interface: Scsi),
        Raw(name: "ro", file: "ro.raw", readonly: true),
        Cdrom(name: "cd", file: "cd.iso"),
        Virtfs(name: "share", path: "share"),
        Virtfs(name: "docs", path: "docs", readonly: true),
    ],
    network: [User(name: "net0", forwards: [(host: {port}, guest: 22)])],
)
"#
        ),
    );
    t.args(["add", "all.ron"]).stdout_any().run();
    let _stop = t.stopper("all");
    t.args(["start", "all"]).stdout_any().run();
    let status = t.args(["--json", "status", "all"]).run().json();
    assert_eq!(status["confined"], true, "{status}");
    let vnc = t.args(["qmp", "all", "query-vnc"]).run().json();
    assert_eq!(vnc["enabled"], true, "{vnc}");
    assert_eq!(vnc["service"], "5957", "{vnc}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", 5957)).is_ok());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let block = t.args(["qmp", "all", "query-block"]).run().json();
    let inserted = block
        .as_array()
        .expect("a list")
        .iter()
        .filter(|b| b["inserted"].is_object())
        .count();
    assert_eq!(inserted, 5, "{block}");
    t.args(["snapshot", "all", "create", "root", "s1"])
        .stdout_any()
        .stderr_contains("writable raw images are not in the snapshot")
        .run();
    t.args(["qmp", "screendump", "all", "shot.png"])
        .stdout_any()
        .run();
    assert!(t.path("shot.png").exists());
}

#[test]
fn a_disk_swapped_for_a_symlink_during_start_is_never_opened() {
    let test = "a_disk_swapped_for_a_symlink_during_start_is_never_opened";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    let off = unconfined(&mut t);
    let (secret, _) = secret(&mut t);
    let disk = t.path("d/disk.raw");
    t.file("d/disk.raw", &"\0".repeat(1 << 16));
    symlink(&secret, t.path("d/evil")).expect("symlink");
    t.file(
        "s.ron",
        &format!(
            "(name: \"s\", accel: Tcg, memory: \"64M\", storage: [Raw(name: \"d\", file: \"{}\")])\n",
            s(&disk)
        ),
    );
    t.args(["add", "s.ron"]).stdout_any().run();
    // Another user who owns d/ swaps the disk and the symlink, atomically,
    // again and again (renameat2 RENAME_EXCHANGE).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        let (a, b) = (
            std::ffi::CString::new(s(&disk)).expect("path"),
            std::ffi::CString::new(s(&t.path("d/evil"))).expect("path"),
        );
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                crate::harness::exchange(&a, &b);
            }
        })
    };
    let mut started = 0;
    for _ in 0..30 {
        let out = t
            .command(["--json", "start", "s"])
            .env("MAQET_CONFIG", &off)
            .output()
            .expect("run maqet");
        if !out.status.success() {
            continue;
        }
        started += 1;
        let status = t.args(["--json", "status", "s"]).run().json();
        let pid = status["pid"].as_i64().expect("a pid");
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("QEMU's fds") {
            let target = std::fs::read_link(fd.expect("an fd").path()).unwrap_or_default();
            assert_ne!(target, Path::new(&secret), "QEMU opened the secret");
        }
        t.args(["stop", "--force", "s"]).stdout_any().run();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().expect("the flipper");
    eprintln!("{started} of 30 starts got the real disk; the others were refused");
}

/// `storage verify VM`, which must find a problem: the first drive's, and
/// the whole report.
fn verify_problem(t: &mut Test, vm: &str) -> (String, serde_json::Value) {
    let out = t
        .args(["--json", "storage", "verify", vm])
        .status(1)
        .stdout_any()
        .run()
        .json();
    let problem = out["drives"][0]["problem"].as_str().unwrap_or_default();
    (problem.to_owned(), out)
}

#[test]
fn storage_verify_checks_the_backing_chain_as_start_does() {
    if !have_qemu("storage_verify_checks_the_backing_chain_as_start_does") {
        return;
    }
    let mut t = Test::new();
    let base = s(&t.path("base.qcow2"));
    let top = s(&t.path("top.qcow2"));
    qemu_img(&["create", "-q", "-f", "qcow2", &base, "1M"]);
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-b", &base, "-F", "qcow2", &top,
    ]);
    t.file(
        "v.ron",
        &format!("(name: \"v\", storage: [Qcow2(name: \"root\", file: \"{top}\")])\n"),
    );
    t.args(["add", "v.ron"]).stdout_any().run();
    t.args(["storage", "verify", "v"]).stdout_any().run();
    // The base goes away: not ok.
    std::fs::remove_file(&base).expect("rm base");
    let (problem, out) = verify_problem(&mut t, "v");
    assert!(
        problem.contains("is missing or not a regular file"),
        "{out}"
    );
    // The chain is bent to a system file: refused, not ok.
    qemu_img(&[
        "rebase",
        "-q",
        "-u",
        "-f",
        "qcow2",
        "-b",
        "/etc/hostname",
        "-F",
        "raw",
        &top,
    ]);
    let (problem, out) = verify_problem(&mut t, "v");
    assert!(
        problem.contains("inside the system directory /etc"),
        "{out}"
    );
}

#[test]
fn a_symlink_among_the_runtime_files_is_refused_as_unsafe() {
    if !have_qemu("a_symlink_among_the_runtime_files_is_refused_as_unsafe") {
        return;
    }
    let mut t = Test::new();
    let (secret, text) = secret(&mut t);
    t.file("r.ron", &bios_config("r"));
    let id = t.args(["add", "r.ron"]).run().stdout.trim().to_owned();
    t.args(["start", "r"]).stdout_any().run();
    t.args(["stop", "--force", "r"]).stdout_any().run();
    let log = t.runtime_dir().join(&id).join("qemu.log");
    std::fs::remove_file(&log).expect("rm qemu.log");
    symlink(&secret, &log).expect("symlink");
    let (message, _) = fails(&mut t, &["start", "r"], 4);
    assert_eq!(
        message,
        format!("{} is not safe to use: it is a symlink", s(&log))
    );
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), text);
}

/// KVM under confinement: /dev/kvm is the one device QEMU may drive. (The
/// config asks for `-cpu qemu64`: on hosts whose nested KVM aborts with
/// `-cpu host`, that model still runs.)
#[test]
fn kvm_works_in_a_confined_qemu() {
    let test = "kvm_works_in_a_confined_qemu";
    if !have_landlock(test) {
        return;
    }
    if !crate::harness::have_kvm(test) {
        return;
    }
    let mut t = Test::new();
    t.file(
        "kv.ron",
        "(name: \"kv\", accel: Kvm, memory: \"64M\", arguments: [\"-cpu\", \"qemu64\"])\n",
    );
    t.args(["add", "--trust", "kv.ron"]).stdout_any().run();
    let _stop = t.stopper("kv");
    t.args(["start", "kv"]).stdout_any().run();
    let status = t.args(["--json", "status", "kv"]).run().json();
    assert_eq!(status["accel"], "kvm");
    assert_eq!(status["confined"], true);
    let kvm = t.args(["qmp", "kv", "query-kvm"]).run().json();
    assert_eq!(kvm, serde_json::json!({"enabled": true, "present": true}));
}

#[test]
fn an_offline_snapshot_never_follows_an_image_swapped_for_a_symlink() {
    if !have_qemu("an_offline_snapshot_never_follows_an_image_swapped_for_a_symlink") {
        return;
    }
    let mut t = Test::new();
    let (shared, victim) = (
        t.path("shared/snap.qcow2"),
        t.path("private/important.qcow2"),
    );
    std::fs::create_dir_all(t.path("shared")).expect("mkdir");
    std::fs::create_dir_all(t.path("private")).expect("mkdir");
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&shared), "1M"]);
    qemu_img(&["create", "-q", "-f", "qcow2", &s(&victim), "1M"]);
    qemu_img(&["snapshot", "-c", "golden", &s(&victim)]);
    t.file(
        "sn.ron",
        &format!(
            "(name: \"sn\", storage: [Qcow2(name: \"r\", file: \"{}\")])\n",
            s(&shared)
        ),
    );
    t.args(["add", "sn.ron"]).stdout_any().run();
    // Whoever owns shared/ puts a symlink to your other image in its place.
    std::fs::remove_file(&shared).expect("rm");
    symlink(&victim, &shared).expect("symlink");
    for action in ["delete", "load", "create"] {
        let (message, _) = fails(&mut t, &["snapshot", "sn", action, "r", "golden"], 4);
        assert_eq!(
            message,
            format!(
                "{} changed since maqet checked it (it is now a symlink)",
                s(&shared)
            ),
            "{action}"
        );
    }
    let list = Command::new("qemu-img")
        .args(["snapshot", "-l", &s(&victim)])
        .output()
        .expect("qemu-img");
    let list = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.matches("golden").count(), 1, "{list}");
}

#[test]
fn creating_an_image_never_writes_through_a_name_swapped_after_the_claim() {
    let test = "creating_an_image_never_writes_through_a_name_swapped_after_the_claim";
    if !have_qemu(test) {
        return;
    }
    let mut t = Test::new();
    let (victim_text, victim) = ("the victim's file\n", t.path("private/victim"));
    t.file("private/victim", victim_text);
    let image = t.path("shared/disk.qcow2");
    std::fs::create_dir_all(t.path("shared")).expect("mkdir");
    t.file(
        "cr.ron",
        &format!(
            "(name: \"cr\", storage: [Qcow2(name: \"r\", file: \"{}\", size: \"1M\")])\n",
            s(&image)
        ),
    );
    t.args(["add", "cr.ron"]).stdout_any().run();
    // Whoever owns shared/ waits for maqet's claim and renames a symlink
    // to your file over it, before qemu-img writes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let (stop, image, victim) = (stop.clone(), image.clone(), victim.clone());
        std::thread::spawn(move || {
            let link = image.with_extension("link");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let regular = std::fs::symlink_metadata(&image).is_ok_and(|m| m.is_file());
                if regular {
                    let _ = std::fs::remove_file(&link);
                    let _ = symlink(&victim, &link);
                    let _ = std::fs::rename(&link, &image);
                }
            }
        })
    };
    for _ in 0..20 {
        let _ = std::fs::remove_file(&image);
        let _ = t
            .command(["disk", "create", "cr", "r"])
            .output()
            .expect("run maqet");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    racer.join().expect("the racer");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("the victim"),
        victim_text
    );
}

#[test]
fn a_data_file_or_a_fifo_as_an_image_is_refused_at_add() {
    if !have_qemu("a_data_file_or_a_fifo_as_an_image_is_refused_at_add") {
        return;
    }
    let mut t = Test::new();
    // QEMU resolves a relative data file against its own working directory
    // (the VM's runtime dir), not the image's: `qemu.pid` would be its own.
    std::fs::create_dir(t.path("dl")).expect("mkdir");
    let image = s(&t.path("dl/pid.qcow2"));
    let made = Command::new("qemu-img")
        .current_dir(t.path("dl"))
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            "data_file=qemu.pid,data_file_raw=on",
        ])
        .arg(&image)
        .arg("1M")
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "qemu-img create with a data file");
    t.file(
        "pid.ron",
        &format!("(name: \"pid\", storage: [Qcow2(name: \"r\", file: \"{image}\")])\n"),
    );
    let (message, help) = fails(&mut t, &["add", "pid.ron"], 4);
    assert_eq!(
        message,
        format!(
            "drive `r`: the data file `qemu.pid` of {image} is an external data file, which maqet does not attach"
        )
    );
    assert!(help.contains("qemu-img convert -O qcow2"), "{help}");
    // A FIFO is no image: refused at once, not a qemu-img that blocks.
    let fifo = t.path("disk.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    for kind in ["Qcow2", "Raw"] {
        let name = kind.to_lowercase();
        t.file(
            &format!("{name}.ron"),
            &format!(
                "(name: \"{name}\", storage: [{kind}(name: \"r\", file: \"{}\")])\n",
                s(&fifo)
            ),
        );
        // A qemu-img that opened the FIFO would block for ever: the minute
        // only ends such a test; a refusal takes milliseconds.
        let mut child = t
            .command(["--json", "add", &format!("{name}.ron")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run maqet");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().expect("poll maqet").is_none() {
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                panic!("{kind}: `add` of a FIFO image still ran after a minute");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let out = child.wait_with_output().expect("wait for maqet");
        assert!(!out.status.success(), "{kind}: {out:?}");
    }
    assert!(t.list().is_empty());
}

#[test]
fn a_config_cannot_reach_maqets_own_files_or_share_what_holds_them() {
    let mut t = Test::new();
    t.add_empty("first");
    let store = t.data_dir().join("maqet.redb");
    assert!(store.exists());
    let data = s(&t.data_dir());
    let root = s(t.root());
    for (name, drive, message) in [
        (
            "db",
            format!("Raw(name: \"d\", file: \"{}\")", s(&store)),
            format!(
                "`{0}` resolves to `{0}`, inside maqet's own directory {data}",
                s(&store)
            ),
        ),
        (
            "share",
            format!("Virtfs(name: \"s\", path: \"{root}\")"),
            format!("virtfs `s`: the shared directory `{root}` holds maqet's own files ({data})"),
        ),
    ] {
        t.file(
            &format!("{name}.ron"),
            &format!("(name: \"{name}\", storage: [{drive}])\n"),
        );
        // (The harness's HOME is the test dir; here it is elsewhere.)
        t.env("HOME", "/nonexistent");
        let (got, help) = fails(&mut t, &["add", &format!("{name}.ron")], 4);
        assert!(got.ends_with(&message), "{got}\nwanted: {message}");
        assert!(!help.is_empty());
    }
    // Sharing your home would give the guest ~/.ssh.
    let home = t.path("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    t.file(
        "home.ron",
        &format!(
            "(name: \"home\", storage: [Virtfs(name: \"h\", path: \"{}\")])\n",
            s(&home)
        ),
    );
    t.env("HOME", &home);
    let (got, _) = fails(&mut t, &["add", "home.ron"], 4);
    assert!(got.contains("holds your home directory"), "{got}");
    assert_eq!(t.list().len(), 1, "only `first`");
}

#[test]
fn the_log_file_is_never_written_through_a_symlink() {
    let mut t = Test::new();
    let (secret, text) = secret(&mut t);
    symlink(&secret, t.path("maqet.log")).expect("symlink");
    let log = s(&t.path("maqet.log"));
    let (message, _) = fails(&mut t, &["--log-file", &log, "ls"], 4);
    assert_eq!(
        message,
        format!(
            "{log} is not safe to use: the log file is a symlink, a hard link or not a regular file"
        )
    );
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), text);
    // Nor through a hard link, nor into a FIFO (which would block).
    std::fs::remove_file(t.path("maqet.log")).expect("rm");
    std::fs::hard_link(&secret, t.path("maqet.log")).expect("link");
    fails(&mut t, &["--log-file", &log, "ls"], 4);
    std::fs::remove_file(t.path("maqet.log")).expect("rm");
    nix::unistd::mkfifo(
        &t.path("maqet.log"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    fails(&mut t, &["--log-file", &log, "ls"], 4);
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), text);
}

#[test]
fn a_screendump_refuses_a_target_that_is_not_a_file() {
    if !have_qemu("a_screendump_refuses_a_target_that_is_not_a_file") {
        return;
    }
    let mut t = Test::new();
    t.file("q.ron", &bios_config("q"))
        .args(["add", "q.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("q");
    t.args(["start", "q"]).stdout_any().run();
    let fifo = t.path("shot.ppm");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let (message, _) = fails(&mut t, &["qmp", "screendump", "q", "shot.ppm"], 4);
    assert_eq!(
        message,
        format!("{} exists and is not a regular file", s(&fifo))
    );
    let meta = std::fs::symlink_metadata(&fifo).expect("still there");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
}

#[test]
fn qemu_inherits_no_descriptor_of_its_caller() {
    if !have_qemu("qemu_inherits_no_descriptor_of_its_caller") {
        return;
    }
    let mut t = Test::new();
    let (secret, _) = secret(&mut t);
    t.file("q.ron", &bios_config("q"))
        .args(["add", "q.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("q");
    // The caller leaves a descriptor open (a shell redirection, a build's
    // jobserver): QEMU must not get it.
    let out = t
        .wrapped(
            "sh",
            &["-c", &format!("exec 9<'{secret}'; exec \"$0\" \"$@\"")],
            &["start", "q"],
        )
        .output()
        .expect("run maqet");
    assert!(out.status.success(), "{out:?}");
    let status = t.args(["--json", "status", "q"]).run().json();
    let pid = status["pid"].as_i64().expect("a pid");
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("QEMU's fds")
        .map(|fd| std::fs::read_link(fd.expect("an fd").path()).unwrap_or_default())
        .collect();
    assert!(!fds.iter().any(|f| f == Path::new(&secret)), "{fds:?}");
}

#[test]
fn a_settings_file_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mut t = Test::new();
    t.file("cfg/maqet.ron", "(allow_write: [\"/\"])\n");
    let settings = t.path("cfg/maqet.ron");
    std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    t.env("MAQET_CONFIG", &settings);
    let (message, help) = fails(&mut t, &["ls"], 4);
    assert_eq!(
        message,
        format!(
            "{} is not safe to use: others can write it (mode 0666)",
            s(&settings)
        )
    );
    assert!(help.contains("chmod go-w"), "{help}");
    // Nor in a directory where others could replace it.
    std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::set_permissions(t.path("cfg"), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    t.env("MAQET_CONFIG", &settings);
    let (message, _) = fails(&mut t, &["ls"], 4);
    assert_eq!(
        message,
        format!(
            "{} is not safe to use: others can replace the settings file in it (mode 0777)",
            s(&t.path("cfg"))
        )
    );
    std::fs::set_permissions(t.path("cfg"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Owned by another user: only root can make such a file.
    if crate::harness::have_root(
        "a_settings_file_others_can_write_is_refused (another user's settings)",
    ) {
        let nobody = nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .expect("the nobody user");
        std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        nix::unistd::chown(&settings, Some(nobody.uid), None).expect("chown");
        t.env("MAQET_CONFIG", &settings);
        let (message, _) = fails(&mut t, &["ls"], 4);
        assert!(message.contains("it belongs to another user"), "{message}");
        // A directory of yours inside another user's: they can rename it
        // and put their own in its place.
        t.file("theirs/mine/maqet.ron", "(allow_write: [\"/\"])\n");
        nix::unistd::chown(&t.path("theirs"), Some(nobody.uid), None).expect("chown");
        let deep = t.path("theirs/mine/maqet.ron");
        t.env("MAQET_CONFIG", &deep);
        let (message, _) = fails(&mut t, &["ls"], 4);
        assert_eq!(
            message,
            format!(
                "{} is not safe to use: the settings file's directory belongs to another user (uid {})",
                s(&t.path("theirs")),
                nobody.uid
            )
        );
    }
}

#[test]
fn creating_an_image_never_lands_through_a_swapped_directory() {
    if !have_qemu("creating_an_image_never_lands_through_a_swapped_directory") {
        return;
    }
    let mut t = Test::new();
    std::fs::create_dir_all(t.path("shared/vm")).expect("mkdir");
    std::fs::create_dir_all(t.path("victim")).expect("mkdir");
    symlink(t.path("victim"), t.path("shared/lnk")).expect("symlink");
    let image = t.path("shared/vm/b.raw");
    t.file(
        "cr.ron",
        &format!(
            "(name: \"cr\", storage: [Raw(name: \"b\", file: \"{}\", size: \"1M\")])\n",
            s(&image)
        ),
    );
    t.args(["add", "cr.ron"]).stdout_any().run();
    // Whoever owns shared/ swaps vm/ and a symlink to another directory.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Held by the test while it cleans up between tries, so it never
    // deletes through the symlink (which would hide a leak).
    let pause = std::sync::Arc::new(std::sync::Mutex::new(()));
    let flipper = {
        let (stop, pause) = (stop.clone(), pause.clone());
        let (a, b) = (
            std::ffi::CString::new(s(&t.path("shared/vm"))).expect("path"),
            std::ffi::CString::new(s(&t.path("shared/lnk"))).expect("path"),
        );
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _held = pause.lock().expect("the pause lock");
                crate::harness::exchange(&a, &b);
            }
        })
    };
    for _ in 0..40 {
        let _ = t
            .command(["disk", "create", "cr", "b"])
            .output()
            .expect("run maqet");
        let _held = pause.lock().expect("the pause lock");
        for entry in ["shared/vm", "shared/lnk"] {
            let real = std::fs::symlink_metadata(t.path(entry)).is_ok_and(|m| m.is_dir());
            if real {
                let _ = std::fs::remove_file(t.path(entry).join("b.raw"));
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().expect("the flipper");
    let leaked: Vec<_> = std::fs::read_dir(t.path("victim"))
        .expect("victim dir")
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

#[test]
fn a_config_or_an_image_cannot_hand_your_keys_to_the_guest() {
    if !have_qemu("a_config_or_an_image_cannot_hand_your_keys_to_the_guest") {
        return;
    }
    let mut t = Test::new();
    // The harness's HOME is the test dir.
    t.file(".ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    let key = s(&t.path(".ssh/id_ed25519"));
    t.file(
        "raw.ron",
        "(name: \"raw\", storage: [Raw(name: \"k\", file: \"~/.ssh/id_ed25519\", readonly: true)])\n",
    );
    let (message, help) = fails(&mut t, &["add", "raw.ron"], 4);
    assert_eq!(
        message,
        format!(
            "raw.ron: `~/.ssh/id_ed25519` is inside `{}`, a hidden file or directory of your home",
            s(&t.path(".ssh"))
        )
    );
    assert!(help.contains("allow_write"), "{help}");
    // A downloaded image naming the key as its backing file.
    std::fs::create_dir(t.path("Downloads")).expect("mkdir");
    let image = s(&t.path("Downloads/cool.qcow2"));
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-F", "raw", "-b", &key, &image, "1M",
    ]);
    t.file(
        "img.ron",
        &format!("(name: \"img\", storage: [Qcow2(name: \"root\", file: \"{image}\")])\n"),
    );
    let (message, _) = fails(&mut t, &["add", "img.ron"], 4);
    assert!(
        message.starts_with(&format!(
            "drive `root`: the backing file `{key}` of {image} is refused"
        )),
        "{message}"
    );
    assert!(t.list().is_empty());
    // The settings file can allow a hidden directory of VM files.
    t.file(".vms/disk.raw", &"\0".repeat(4096));
    t.file(
        "vms.ron",
        "(name: \"vms\", storage: [Raw(name: \"d\", file: \"~/.vms/disk.raw\")])\n",
    );
    t.file(
        "cfg/maqet.ron",
        &format!("(allow_write: [\"{}\"])\n", s(&t.path(".vms"))),
    );
    let settings = s(&t.path("cfg/maqet.ron"));
    t.env("MAQET_CONFIG", &settings)
        .args(["add", "vms.ron"])
        .stdout_any()
        .run();
}

#[test]
fn qemu_gets_none_of_the_callers_secrets_from_the_environment() {
    if !have_qemu("qemu_gets_none_of_the_callers_secrets_from_the_environment") {
        return;
    }
    let mut t = Test::new();
    t.file("q.ron", &bios_config("q"))
        .args(["add", "q.ron"])
        .stdout_any()
        .run();
    let _stop = t.stopper("q");
    t.env("AWS_SECRET_ACCESS_KEY", "hunter2")
        .env("LANG", "C.UTF-8")
        .args(["start", "q"])
        .stdout_any()
        .run();
    let status = t.args(["--json", "status", "q"]).run().json();
    let pid = status["pid"].as_i64().expect("a pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("QEMU's environment");
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(vars.iter().any(|v| v == "LANG=C.UTF-8"), "{vars:?}");
    assert!(
        vars.iter().all(|v| maqet::qemu::spawn::QEMU_ENVIRONMENT
            .iter()
            .any(|k| v.starts_with(&format!("{k}=")))),
        "{vars:?}"
    );
}

/// The sandbox itself, probed from inside: a trusted `binary` that is a
/// Python script runs where QEMU would, under the same ruleset and socket
/// filter, and reports what it could do.
#[test]
fn a_program_in_the_sandbox_reaches_nothing_it_should_not() {
    let test = "a_program_in_the_sandbox_reaches_nothing_it_should_not";
    if !have_landlock(test)
        || !crate::harness::needs(
            test,
            "MAQET_REQUIRE_TOOLS",
            Path::new("/usr/bin/python3").exists(),
            "/usr/bin/python3 is missing",
        )
    {
        return;
    }
    let mut t = Test::new();
    let (secret, _) = secret(&mut t);
    t.file(
        "probe",
        &format!(
            r#"#!/usr/bin/python3
import os, socket
results = []
def attempt(name, make):
    try:
        make()
        results.append(name + " ok")
    except OSError as e:
        results.append(name + " " + str(e.errno))
attempt("tcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
attempt("mptcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close())
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close())
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
attempt("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close())
attempt("secret", lambda: open("{secret}").read())
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("exec", lambda: os.execv("/bin/true", ["true"]))
open("probe.txt", "w").write("\n".join(results) + "\n")
"#
        ),
    );
    std::fs::set_permissions(
        t.path("probe"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    t.file(
        "p.ron",
        &format!(
            "(name: \"p\", accel: Tcg, memory: \"64M\", binary: \"{}\")\n",
            s(&t.path("probe"))
        ),
    );
    let id = t
        .args(["add", "--trust", "p.ron"])
        .run()
        .stdout
        .trim()
        .to_owned();
    // It is no QEMU: the start fails once it exits.
    fails(&mut t, &["start", "p", "--timeout", "20"], 1);
    let report = std::fs::read_to_string(t.runtime_dir().join(&id).join("probe.txt"))
        .expect("the probe's report");
    assert_eq!(
        report,
        "tcp ok\nmptcp 13\nraw 13\nudp 13\nunix 13\nnetlink 13\nsecret 13\nshadow 13\nexec 13\n"
    );
}

#[test]
fn a_vm_cannot_be_named_like_another_vms_id() {
    let mut t = Test::new();
    let id = t.add_empty("first");
    for name in [&id[..8], id.as_str()] {
        t.file("imp.ron", &format!("(name: \"{name}\")\n"));
        let (message, _) = fails(&mut t, &["add", "imp.ron"], 3);
        assert_eq!(
            message,
            format!("the name `{name}` is the id, or the start of the id, of VM {id}")
        );
    }
    // The settings file is maqet's own too: a VM may not use it.
    t.file("cfg/maqet.ron", "()\n");
    let settings = s(&t.path("cfg/maqet.ron"));
    t.file(
        "cfg.ron",
        &format!("(name: \"cfg\", storage: [Raw(name: \"c\", file: \"{settings}\")])\n"),
    );
    t.env("MAQET_CONFIG", &settings);
    let (message, _) = fails(&mut t, &["add", "cfg.ron"], 4);
    assert!(
        message.contains("inside maqet's own directory"),
        "{message}"
    );
    assert_eq!(t.list().len(), 1);
}

/// As root maqet could read anyone's files: another account's hidden files
/// and /run (tokens, sockets, other users' runtime dirs) are refused like
/// your own keys and /etc. An attacker had a crafted image's backing file
/// hand `/home/mallory/.ssh/id_rsa` and a file under /run to the guest.
#[test]
fn other_accounts_hidden_files_and_run_are_refused() {
    let test = "other_accounts_hidden_files_and_run_are_refused";
    if !have_qemu(test) || !crate::harness::have_root(test) {
        return;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let home = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| l.split(':').nth(5))
        .expect("a nobody account")
        .to_owned();
    let made_home = !Path::new(&home).exists();
    if made_home {
        std::fs::create_dir_all(format!("{home}/.ssh")).expect("mkdir");
    }
    let secret = format!("{home}/.ssh/maqet-test-{}", std::process::id());
    std::fs::write(&secret, "key").expect("write the secret");
    let run_dir = format!("/run/maqet-test-{}", std::process::id());
    std::fs::create_dir_all(&run_dir).expect("mkdir /run/...");
    std::fs::write(format!("{run_dir}/token"), "TOPSECRET").expect("write token");
    let mut t = Test::new();
    t.file(
        "home.ron",
        &format!("(name: \"h\", storage: [Raw(name: \"k\", file: \"{secret}\")])\n"),
    )
    .file(
        "run.ron",
        &format!("(name: \"r\", storage: [Raw(name: \"k\", file: \"{run_dir}/token\")])\n"),
    );
    let home_refused = fails(&mut t, &["add", "home.ron"], 4);
    let run_refused = fails(&mut t, &["add", "run.ron"], 4);
    // A backing file naming them is refused too.
    let image = s(&t.path("cool.qcow2"));
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-F", "raw", "-b", &secret, &image, "1M",
    ]);
    t.file(
        "img.ron",
        &format!("(name: \"img\", storage: [Qcow2(name: \"root\", file: \"{image}\")])\n"),
    );
    let backing_refused = fails(&mut t, &["add", "img.ron"], 4);
    let _ = std::fs::remove_file(&secret);
    if made_home {
        let _ = std::fs::remove_dir_all(&home);
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    assert!(
        home_refused
            .0
            .ends_with("a hidden file or directory of the home of another account"),
        "{home_refused:?}"
    );
    assert!(
        run_refused.0.contains(&format!(
            "resolves to `{run_dir}/token`, inside the system directory /run"
        )),
        "{run_refused:?}"
    );
    assert!(
        backing_refused.0.contains("the home of another account"),
        "{backing_refused:?}"
    );
    assert!(t.list().is_empty());
}

/// A hard link passes every check of its own name; as root it may be a
/// second name of /etc/shadow. maqet refuses images with more than one name
/// when it runs as root (or the file is not yours), at start and disk-add.
#[test]
fn a_hard_linked_image_is_refused_as_root() {
    let test = "a_hard_linked_image_is_refused_as_root";
    if !have_qemu(test) || !crate::harness::have_root(test) {
        return;
    }
    let mut t = Test::new();
    std::fs::write(t.path("orig.raw"), vec![0u8; 1 << 16]).expect("orig.raw");
    std::fs::hard_link(t.path("orig.raw"), t.path("link.raw")).expect("link");
    t.file(
        "hl.ron",
        "(name: \"hl\", accel: Tcg, memory: \"64M\", storage: [Raw(name: \"d\", file: \"link.raw\")])\n",
    );
    t.args(["add", "hl.ron"]).stdout_any().run();
    let (message, help) = fails(&mut t, &["start", "hl"], 4);
    assert_eq!(
        message,
        format!(
            "{} has 2 names (hard links); maqet cannot tell where the others are",
            s(&t.path("link.raw"))
        )
    );
    assert!(help.contains("cp --reflink=auto"), "{help}");
    // disk-add of either name, into a running VM, is refused the same way.
    t.file(
        "plain.ron",
        "(name: \"plain\", accel: Tcg, memory: \"64M\")\n",
    );
    t.args(["add", "plain.ron"]).stdout_any().run();
    let _stop = t.stopper("plain");
    t.args(["start", "plain"]).stdout_any().run();
    let orig = s(&t.path("orig.raw"));
    let (message, _) = fails(
        &mut t,
        &[
            "qmp", "disk-add", "plain", &orig, "--id", "d1", "--format", "raw",
        ],
        4,
    );
    assert!(
        message.ends_with("has 2 names (hard links); maqet cannot tell where the others are"),
        "{message}"
    );
    // A kernel or initrd QEMU opens by name: refused at start too (a
    // root-made link to /etc/shadow as the initrd was read into guest RAM).
    std::fs::write(t.path("k.bin"), b"not a kernel").expect("k.bin");
    std::fs::hard_link(t.path("k.bin"), t.path("k2.bin")).expect("link");
    t.file(
        "kern.ron",
        "(name: \"kern\", accel: Tcg, memory: \"64M\", boot: (kernel: \"k2.bin\"))\n",
    );
    t.args(["add", "kern.ron"]).stdout_any().run();
    let (message, _) = fails(&mut t, &["start", "kern"], 4);
    assert_eq!(
        message,
        format!(
            "kernel: {} has 2 names (hard links); maqet cannot tell where the others are",
            s(&t.path("k2.bin"))
        )
    );
}

/// A hard link of maqet's settings file (or store) used as a VM's disk
/// would let the guest rewrite it (`confinement: Off`): a settings file or
/// store with more than one name is refused, whoever runs maqet.
#[test]
fn a_settings_file_or_store_with_two_names_is_refused() {
    let mut t = Test::new();
    t.file("cfg/maqet.ron", "(confinement: Auto)\n");
    std::fs::hard_link(t.path("cfg/maqet.ron"), t.path("disk.raw")).expect("link");
    let settings = t.path("cfg/maqet.ron");
    t.env("MAQET_CONFIG", &settings);
    let (message, _) = fails(&mut t, &["ls"], 4);
    assert_eq!(
        message,
        format!(
            "{} is not safe to use: it has 2 names (hard links); one may be a VM's disk",
            s(&settings)
        )
    );
    std::fs::remove_file(t.path("disk.raw")).expect("unlink");
    t.add_empty("web");
    let store = t.data_dir().join("maqet.redb");
    std::fs::hard_link(&store, t.path("store.raw")).expect("link");
    let (message, _) = fails(&mut t, &["add", "--empty", "--name", "db"], 4);
    assert_eq!(
        message,
        format!(
            "{} is not safe to use: it has 2 names (hard links); another may be a VM's disk",
            s(&store)
        )
    );
}
