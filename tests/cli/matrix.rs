//! What `add` accepts, `start` runs (issue 13 item 6): every combination of
//! storage kind × interface × readonly × machine type is either refused at
//! `add` (exit 3, a message that names the field and why) or started until
//! QMP answers with the drive attached; every file under examples/ is added
//! and started. One drive per VM, so a failure names its combination; the
//! VMs run a few at a time, diskless BIOS guests under TCG.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use maqet::config::{BootLayer, Display, ImageFormat, Layer, Network, Storage};
use ron::extensions::Extensions;
use serde_json::Value;

use crate::guest::{guest, have_qemu};
use crate::harness::{Test, trust};
use crate::libvirt::{Libvirt, have_libvirt};

/// A maqet command's exit code, stdout and stderr, without the harness's
/// expectations: a matrix collects every failure instead of stopping at the
/// first.
fn maqet(t: &Test, args: &[&str]) -> (i32, String, String) {
    let out = t.command(args.iter().copied()).output().expect("run maqet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn qemu_img(t: &Test, args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .current_dir(t.root())
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `jobs` on a few threads; the problems they report, in job order.
fn in_parallel<J: Sync>(jobs: &[J], run: impl Fn(&J) -> Result<(), String> + Sync) -> Vec<String> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    on_workers(workers, jobs, run)
}

/// [`in_parallel`] on `workers` threads.
fn on_workers<J: Sync>(
    workers: usize,
    jobs: &[J],
    run: impl Fn(&J) -> Result<(), String> + Sync,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if let Err(problem) = run(job) {
                        problems.lock().expect("no panics").push((i, problem));
                    }
                }
            });
        }
    });
    let mut problems = problems.into_inner().expect("no panics");
    problems.sort();
    problems.into_iter().map(|(_, p)| p).collect()
}

/// After a successful `add`: `start` reaches QMP, the VM runs, QEMU has
/// `drives` block devices, and `stop --force` stops it.
fn starts_with_drives(t: &Test, name: &str, drives: usize) -> Result<(), String> {
    let (code, stdout, stderr) = maqet(t, &["start", name]);
    if code != 0 || !stdout.starts_with(&format!("started {name} (pid ")) {
        return Err(format!("`start` exited {code}: {stdout}{stderr}"));
    }
    let result = (|| {
        let (_, ls, _) = maqet(t, &["--json", "ls"]);
        let ls: Value = serde_json::from_str(&ls).map_err(|e| format!("ls: {e}: {ls}"))?;
        if ls[0]["status"] != "running" {
            return Err(format!("after start, ls says {ls}"));
        }
        let (code, block, stderr) = maqet(t, &["qmp", name, "query-block"]);
        let block: Value = serde_json::from_str(&block)
            .map_err(|e| format!("query-block exited {code}: {e}: {block}{stderr}"))?;
        let attached = block.as_array().map_or(0, Vec::len);
        if attached != drives {
            return Err(format!(
                "QEMU has {attached} block devices, not {drives}: {block}"
            ));
        }
        Ok(())
    })();
    let (code, _, stderr) = maqet(t, &["stop", "--force", name]);
    if code != 0 {
        return Err(format!("`stop --force` exited {code}: {stderr}"));
    }
    result
}

/// `add` with these arguments fails with exit 3 and exactly this message
/// (`maqet::config::invalid`, with help), and stores nothing.
fn refused(t: &Test, args: &[&str], message: &str) -> Result<(), String> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = maqet(t, &all);
    let error: Value = serde_json::from_str(&stderr).unwrap_or_default();
    let error = &error["error"];
    let help = error["help"].as_str().unwrap_or_default();
    if code != 3
        || error["code"] != "maqet::config::invalid"
        || error["message"] != message
        || help.is_empty()
    {
        return Err(format!(
            "expected exit 3 and `{message}`, got exit {code}: {stdout}{stderr}"
        ));
    }
    let (_, ls, _) = maqet(t, &["--json", "ls"]);
    if ls.trim() != "[]" {
        return Err(format!("a refused add stored something: {ls}"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `Qcow2` without `file`: maqet creates it at start.
    Qcow2New,
    /// `Qcow2` on an existing image.
    Qcow2File,
    /// A `Qcow2` overlay maqet creates on a qcow2 base.
    Qcow2OverQcow2,
    /// A `Qcow2` overlay maqet creates on a raw base.
    Qcow2OverRaw,
    /// `Raw` on an existing image.
    Raw,
    /// `Raw` with a `size`: maqet creates it at start.
    RawNew,
    Cdrom,
}

impl Kind {
    /// Its image is made by maqet (at start, or by `disk create`).
    fn created_by_maqet(self) -> bool {
        matches!(
            self,
            Kind::Qcow2New | Kind::Qcow2OverQcow2 | Kind::Qcow2OverRaw | Kind::RawNew
        )
    }
}

const KINDS: [Kind; 7] = [
    Kind::Qcow2New,
    Kind::Qcow2File,
    Kind::Qcow2OverQcow2,
    Kind::Qcow2OverRaw,
    Kind::Raw,
    Kind::RawNew,
    Kind::Cdrom,
];

/// Every `interface` the config has.
const INTERFACES: [&str; 4] = ["Virtio", "Sata", "Ide", "Scsi"];

const MACHINES: [&str; 2] = ["q35", "pc"];

#[derive(Debug)]
struct Combo {
    kind: Kind,
    interface: &'static str,
    /// `None`: not written (a `Cdrom` has no `readonly`).
    readonly: Option<bool>,
    machine: &'static str,
}

impl Combo {
    fn all() -> Vec<Combo> {
        let mut all = Vec::new();
        for kind in KINDS {
            let readonly: &[Option<bool>] = if kind == Kind::Cdrom {
                &[None, Some(true)]
            } else {
                &[Some(false), Some(true)]
            };
            for interface in INTERFACES {
                for &readonly in readonly {
                    for machine in MACHINES {
                        all.push(Combo {
                            kind,
                            interface,
                            readonly,
                            machine,
                        });
                    }
                }
            }
        }
        all
    }

    /// The storage entry, after making the files it needs in `t`.
    fn entry(&self, t: &Test) -> String {
        let mut opts = format!("interface: {}", self.interface);
        if let Some(readonly) = self.readonly {
            opts.push_str(&format!(", readonly: {readonly}"));
        }
        match self.kind {
            Kind::Qcow2New => format!("Qcow2(name: \"d\", size: \"16M\", {opts})"),
            Kind::Qcow2File => {
                qemu_img(t, &["create", "-q", "-f", "qcow2", "d.qcow2", "16M"]);
                format!("Qcow2(name: \"d\", file: \"d.qcow2\", {opts})")
            }
            Kind::Qcow2OverQcow2 | Kind::Qcow2OverRaw => {
                let format = if self.kind == Kind::Qcow2OverRaw {
                    "Raw"
                } else {
                    "Qcow2"
                };
                let base = format!("base.{}", format.to_lowercase());
                qemu_img(
                    t,
                    &["create", "-q", "-f", &format.to_lowercase(), &base, "16M"],
                );
                format!(
                    "Qcow2(name: \"d\", file: \"d.qcow2\", size: \"16M\", backing_file: \"{base}\", backing_format: {format}, {opts})"
                )
            }
            Kind::Raw => {
                std::fs::write(t.path("d.raw"), vec![0; 1 << 20]).expect("write d.raw");
                format!("Raw(name: \"d\", file: \"d.raw\", {opts})")
            }
            Kind::RawNew => format!("Raw(name: \"d\", file: \"d.raw\", size: \"1M\", {opts})"),
            Kind::Cdrom => {
                std::fs::write(t.path("d.iso"), vec![0; 1 << 20]).expect("write d.iso");
                format!("Cdrom(name: \"d\", file: \"d.iso\", {opts})")
            }
        }
    }

    /// The message `add` refuses this combination with, if it does.
    fn refusal(&self) -> Option<String> {
        match (self.kind, self.interface, self.readonly) {
            (Kind::Cdrom, _, Some(_)) => {
                Some("vm.ron: unknown field `readonly`: a cdrom is always read-only".into())
            }
            (Kind::Cdrom, "Virtio", _) => {
                Some("vm.ron: cdrom `d` cannot use the Virtio interface".into())
            }
            (_, interface @ ("Sata" | "Ide"), Some(true)) => Some(format!(
                "vm.ron: drive `d`: a read-only disk cannot use the {interface} interface \
                 (QEMU's IDE disk is always writable)"
            )),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        let mut t = Test::new();
        let entry = self.entry(&t);
        t.file(
            "vm.ron",
            &format!(
                "(name: \"vm\", accel: Tcg, memory: \"64M\", machine: \"{}\", storage: [{entry}])\n",
                self.machine
            ),
        );
        let outcome = match self.refusal() {
            Some(message) => refused(&t, &["add", "vm.ron"], &message).map_err(|problem| {
                // Say too whether QEMU took what `add` let through.
                match starts_with_drives(&t, "vm", 1) {
                    Ok(()) => format!("{problem}\n  (and it started)"),
                    Err(start) => format!("{problem}\n  (and then: {start})"),
                }
            }),
            None => match maqet(&t, &["add", "vm.ron"]) {
                (0, _, _) => starts_with_drives(&t, "vm", 1),
                (code, _, stderr) => Err(format!("`add` exited {code}: {stderr}")),
            },
        };
        outcome.map_err(|problem| format!("{self:?}: {problem}"))
    }
}

#[test]
fn every_drive_add_accepts_starts() {
    if !have_qemu("every_drive_add_accepts_starts") {
        return;
    }
    let combos = Combo::all();
    let problems = in_parallel(&combos, Combo::check);
    assert!(
        problems.is_empty(),
        "{} of {} combinations failed:\n{}",
        problems.len(),
        combos.len(),
        problems.join("\n")
    );
}

/// Several drives on one controller: as many as it has ports start (QEMU
/// left to itself put a second IDE disk on q35's first port, a third on
/// the PC's first bus); one more is refused at `add`.
#[test]
fn controllers_take_as_many_drives_as_they_have_ports() {
    if !have_qemu("controllers_take_as_many_drives_as_they_have_ports") {
        return;
    }
    struct Case {
        machine: &'static str,
        interfaces: &'static [&'static str],
        refusal: Option<&'static str>,
    }
    let cases = [
        Case {
            machine: "q35",
            interfaces: &["Ide"; 6],
            refusal: None,
        },
        Case {
            machine: "pc",
            interfaces: &["Ide"; 4],
            refusal: None,
        },
        Case {
            machine: "pc-q35-7.2",
            interfaces: &["Sata", "Ide", "Sata", "Ide", "Sata", "Sata", "Sata", "Sata"],
            refusal: None,
        },
        Case {
            machine: "q35",
            interfaces: &["Ide"; 7],
            refusal: Some(
                "7 drives use `interface: Ide`, but machine `q35` has room for 6 IDE devices",
            ),
        },
        Case {
            machine: "pc-i440fx-7.2",
            interfaces: &["Ide"; 5],
            refusal: Some(
                "5 drives use `interface: Ide`, but machine `pc-i440fx-7.2` has room for 4 IDE devices",
            ),
        },
        Case {
            machine: "pc",
            interfaces: &["Sata"; 7],
            refusal: Some("7 drives use `interface: Sata`, but the SATA controller has 6 ports"),
        },
    ];
    let problems = in_parallel(&cases, |case| {
        let mut t = Test::new();
        std::fs::write(t.path("cd.iso"), vec![0; 1 << 20]).expect("write cd.iso");
        // The last drive on each controller is a CD-ROM: it takes a port too.
        let drives: Vec<String> = case
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, interface)| {
                let last = !case.interfaces[i + 1..].contains(interface);
                if last {
                    format!("Cdrom(name: \"d{i}\", file: \"cd.iso\", interface: {interface})")
                } else {
                    format!("Qcow2(name: \"d{i}\", size: \"16M\", interface: {interface})")
                }
            })
            .collect();
        t.file(
            "vm.ron",
            &format!(
                "(name: \"vm\", accel: Tcg, memory: \"64M\", machine: \"{}\", storage: [{}])\n",
                case.machine,
                drives.join(", ")
            ),
        );
        let outcome = match case.refusal {
            Some(message) => refused(&t, &["add", "vm.ron"], message),
            None => match maqet(&t, &["add", "vm.ron"]) {
                (0, _, _) => starts_with_drives(&t, "vm", drives.len()),
                (code, _, stderr) => Err(format!("`add` exited {code}: {stderr}")),
            },
        };
        outcome.map_err(|p| format!("{} {:?}: {p}", case.machine, case.interfaces))
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The ports are counted on the merged config: two files of four SATA
/// drives each are refused, and so is an `apply` that adds a seventh.
#[test]
fn controller_ports_are_counted_across_files_and_applies() {
    let mut t = Test::new();
    let sata = |from: usize, to: usize| {
        let drives: Vec<String> = (from..to)
            .map(|i| format!("Qcow2(name: \"d{i}\", size: \"16M\", interface: Sata)"))
            .collect();
        format!("(storage: [{}])\n", drives.join(", "))
    };
    t.file("a.ron", &format!("(name: \"vm\",{}", &sata(0, 4)[1..]));
    t.file("b.ron", &sata(4, 8));
    let message = "8 drives use `interface: Sata`, but the SATA controller has 6 ports";
    refused(&t, &["add", "a.ron", "b.ron"], message).unwrap_or_else(|p| panic!("{p}"));
    t.file("c.ron", &sata(4, 6));
    t.file("d.ron", &sata(6, 7));
    t.args(["add", "a.ron", "c.ron"]).stdout_any().run();
    let out = t
        .args(["--json", "apply", "vm", "d.ron"])
        .status(3)
        .run()
        .stderr_json();
    assert_eq!(
        out["error"]["message"],
        "7 drives use `interface: Sata`, but the SATA controller has 6 ports"
    );
    let info = t.args(["--json", "info", "vm"]).run().json();
    assert_eq!(info["config"]["storage"].as_array().map(Vec::len), Some(6));
}

/// A config file parsed as maqet reads one, with its paths as written.
fn parse_layer(text: &str) -> Layer {
    ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES)
        .from_str(text)
        .unwrap_or_else(|e| panic!("parse: {e}"))
}

/// `text` with every `host: N` port forward moved to a free port, so that
/// examples can run on a busy machine and beside each other; and the ports.
fn free_forwards(text: &str) -> (String, Vec<u16>) {
    let mut ports = Vec::new();
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("host:") {
        let (before, after) = rest.split_at(at + "host:".len());
        out.push_str(before);
        let spaces = after.len() - after.trim_start().len();
        let digits = after[spaces..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        out.push_str(&after[..spaces]);
        if digits > 0 {
            let port = crate::harness::claim_port();
            ports.push(port);
            out.push_str(&port.to_string());
        }
        rest = &after[spaces + digits..];
    }
    out.push_str(rest);
    (out, ports)
}

/// Make every file a config names, next to it (`dir`): images, the ISO,
/// shared directories, and the test guest's kernel and initrd as the boot
/// files. Images maqet creates itself (`size` given, file missing) are not
/// made. Returns how many block devices the VM has.
fn make_named_files(t: &Test, dir: &Path, layer: &Layer) -> usize {
    let at = |path: &maqet::config::UserPath| -> PathBuf {
        let text = path.as_path().as_str();
        match text.strip_prefix("~/") {
            Some(rest) => t.root().join(rest),
            None => dir.join(text),
        }
    };
    let image = |path: PathBuf, format: &str| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let path = path.to_str().expect("UTF-8").to_owned();
        qemu_img(t, &["create", "-q", "-f", format, &path, "16M"]);
    };
    if let Some(BootLayer {
        kernel,
        initrd,
        firmware,
        ..
    }) = &layer.boot
    {
        for (path, from) in [(kernel, &guest().kernel), (initrd, &guest().initrd)] {
            if let Some(path) = path {
                std::fs::copy(from, at(path)).expect("copy a test guest file");
            }
        }
        if let Some(firmware) = firmware {
            std::fs::copy("/usr/share/seabios/bios-256k.bin", at(firmware)).expect("copy SeaBIOS");
        }
    }
    let mut drives = 0;
    for drive in layer.storage.iter().flatten() {
        match drive {
            Storage::Qcow2(q) => {
                drives += 1;
                if let Some(base) = &q.backing_file {
                    let format = match q.backing_format {
                        Some(ImageFormat::Raw) => "raw",
                        _ => "qcow2",
                    };
                    image(at(base), format);
                }
                if let Some(file) = &q.file
                    && q.size.is_none()
                {
                    image(at(file), "qcow2");
                }
            }
            Storage::Raw(r) => {
                drives += 1;
                if r.size.is_none() {
                    image(at(&r.file), "raw");
                }
            }
            Storage::Cdrom(c) => {
                drives += 1;
                std::fs::write(at(&c.file), vec![0; 1 << 20]).expect("write an ISO");
            }
            Storage::Virtfs(v) => std::fs::create_dir_all(at(&v.path)).expect("mkdir a share"),
        }
    }
    drives
}

/// The RON files under examples/, sorted.
fn example_files() -> Vec<PathBuf> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .expect("read examples/")
        .map(|e| e.expect("read examples/").path())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "ron")),
        "examples/ holds only RON configs: {files:?}"
    );
    assert!(files.len() >= 2, "{files:?}");
    files
}

/// Add the example `file` in a new test directory, with only what this
/// machine needs changed: its files made beside it, TCG, small memory,
/// free ports for its forwards, and no window; its name prefixed with
/// `prefix`. Returns the test, the VM's name, how many block devices it
/// has, and its config.
fn add_example(file: &Path, prefix: &str) -> Result<(Test, String, usize, Layer), String> {
    let stem = file.file_stem().and_then(|s| s.to_str()).expect("UTF-8");
    let text = std::fs::read_to_string(file).expect("read an example");
    let (text, ports) = free_forwards(&text);
    let layer = parse_layer(&text);
    for net in layer.network.iter().flatten() {
        let Network::User(user) = net;
        for fwd in &user.forwards {
            assert!(
                ports.contains(&fwd.host.0),
                "{stem}: the forward from host port {} was not moved to a free port",
                fwd.host.0
            );
        }
    }
    let mut t = Test::new();
    let copy = format!("examples/{stem}.ron");
    t.file(&copy, &text);
    let drives = make_named_files(&t, &t.path("examples"), &layer);
    let display = match layer.display {
        None | Some(Display::Headless) => "",
        // No screen here, and a VNC display is a fixed port.
        Some(_) => ", display: Headless",
    };
    t.file(
        "this-machine.ron",
        &format!("(accel: Tcg, memory: \"128M\"{display})\n"),
    );
    let name = layer
        .name
        .as_ref()
        .map_or_else(|| format!("example-{stem}"), ToString::to_string);
    let name = format!("{prefix}{name}");
    let mut args = vec!["add"];
    args.extend_from_slice(trust(&text));
    args.extend([copy.as_str(), "this-machine.ron", "--name", &name]);
    match maqet(&t, &args) {
        (0, _, _) => Ok((t, name, drives, layer)),
        (code, _, stderr) => Err(format!(
            "examples/{stem}.ron: `add` exited {code}: {stderr}"
        )),
    }
}

/// Every file under examples/ is added and started as it is, with only
/// what this machine needs changed: its files made beside it, TCG, small
/// memory, free ports for its forwards, and no window. A new example that
/// does not start fails here.
#[test]
fn every_example_is_added_and_started() {
    if !have_qemu("every_example_is_added_and_started") {
        return;
    }
    let files = example_files();
    let problems = in_parallel(&files, |file| {
        let (t, name, drives, _) = add_example(file, "")?;
        starts_with_drives(&t, &name, drives).map_err(|p| format!("{}: {p}", file.display()))
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Many images: each is two descriptors QEMU inherits (read-only and
/// read-write), placed from 6 up. With 15 writable disks or more their
/// numbers used to reach the Landlock ruleset's own descriptor, which was
/// then overwritten before it was enforced: QEMU never ran ("File
/// descriptor in bad state"). SCSI, so that no PCI slots run out first.
#[test]
fn a_vm_with_forty_disks_starts() {
    if !have_qemu("a_vm_with_forty_disks_starts") {
        return;
    }
    let mut t = Test::new();
    let drives: Vec<String> = (0..40)
        .map(|i| format!("Qcow2(name: \"d{i}\", size: \"16M\", interface: Scsi)"))
        .collect();
    t.file(
        "vm.ron",
        &format!(
            "(name: \"vm\", accel: Tcg, memory: \"64M\", storage: [{}])\n",
            drives.join(", ")
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    starts_with_drives(&t, "vm", 40).unwrap_or_else(|p| panic!("{p}"));
}

/// The VM `name` of `t`, exported, checked by libvirt's schema, defined
/// and started: it runs with `drives` disks. The domain is gone after
/// (and should a check panic, the fixture's cleanup of leftover domains
/// is not needed: nothing here panics).
fn runs_under_libvirt(
    t: &Test,
    libvirt: &Libvirt,
    name: &str,
    drives: usize,
) -> Result<(), String> {
    let xml = t.path("domain.xml");
    let console = t.path("console.log");
    let (code, _, stderr) = maqet(
        t,
        &[
            "export",
            name,
            "--to",
            "libvirt",
            "--accel",
            "tcg",
            // The examples' raw arguments: what this test checks is the mapping.
            "--trust",
            "--console-log",
            console.to_str().expect("UTF-8"),
            "--output",
            xml.to_str().expect("UTF-8"),
        ],
    );
    if code != 0 {
        return Err(format!("`export` exited {code}: {stderr}"));
    }
    let text = std::fs::read_to_string(&xml).expect("read the export");
    let out = Command::new("virt-xml-validate")
        .arg(&xml)
        .arg("domain")
        .output()
        .expect("run virt-xml-validate");
    if !out.status.success() {
        return Err(format!(
            "not a valid domain: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let virsh = |args: &[&str]| {
        let out = libvirt.virsh(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "virsh {args:?}: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    virsh(&["define", xml.to_str().expect("UTF-8")])?;
    let result = (|| {
        let virsh = |args: &[&str]| {
            let out = libvirt.virsh(args);
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(format!(
                    "virsh {args:?}: {}\n{text}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        virsh(&["start", name])?;
        let status = virsh(&[
            "qemu-monitor-command",
            name,
            r#"{"execute":"query-status"}"#,
        ])?;
        if !status.contains(r#""status":"running""#) {
            return Err(format!("not running: {status}"));
        }
        let live = virsh(&["dumpxml", name])?;
        let disks = live.matches("<disk type=").count();
        if disks != drives {
            return Err(format!(
                "the domain has {disks} disks, not {drives}:\n{live}"
            ));
        }
        Ok(())
    })();
    let _ = libvirt.virsh(&["destroy", name]);
    let _ = libvirt.virsh(&["undefine", name]);
    result
}

/// A domain name no other run's leftover has.
fn domain_prefix() -> String {
    format!("mq{}-", std::process::id())
}

/// Every drive `add` accepts (the matrix above) runs under libvirt too,
/// exported: on its bus, with its backing chain, read-only where asked.
#[test]
fn every_drive_add_accepts_runs_under_libvirt() {
    let test = "every_drive_add_accepts_runs_under_libvirt";
    if !have_qemu(test) || !have_libvirt(test) {
        return;
    }
    // A new image and an existing one make the same domain: one of each.
    let combos: Vec<Combo> = Combo::all()
        .into_iter()
        .filter(|c| c.refusal().is_none() && !matches!(c.kind, Kind::Qcow2New | Kind::RawNew))
        .collect();
    let libvirt = Libvirt::start();
    let jobs: Vec<(usize, &Combo)> = combos.iter().enumerate().collect();
    // libvirt takes over a second to tear a domain down, mostly waiting:
    // more workers than cores.
    let problems = on_workers(6, &jobs, |&(i, combo)| {
        let mut t = Test::new();
        let entry = combo.entry(&t);
        let name = format!("{}d{i}", domain_prefix());
        t.file(
            "vm.ron",
            &format!(
                "(name: \"{name}\", accel: Tcg, memory: \"64M\", machine: \"{}\", storage: [{entry}])\n",
                combo.machine
            ),
        );
        let made = match maqet(&t, &["add", "vm.ron"]) {
            (0, _, _) if combo.kind.created_by_maqet() => {
                match maqet(&t, &["disk", "create", &name, "d"]) {
                    (0, _, _) => Ok(()),
                    (code, _, stderr) => Err(format!("`disk create` exited {code}: {stderr}")),
                }
            }
            (0, _, _) => Ok(()),
            (code, _, stderr) => Err(format!("`add` exited {code}: {stderr}")),
        };
        made.and_then(|()| runs_under_libvirt(&t, &libvirt, &name, 1))
            .map_err(|problem| format!("{combo:?}: {problem}"))
    });
    assert!(
        problems.is_empty(),
        "{} of {} combinations failed under libvirt:\n{}",
        problems.len(),
        combos.len(),
        problems.join("\n")
    );
}

/// Every file under examples/, exported, runs under libvirt; and so do
/// the networks and displays the examples do not show.
#[test]
fn every_example_and_network_runs_under_libvirt() {
    let test = "every_example_and_network_runs_under_libvirt";
    if !have_qemu(test) || !have_libvirt(test) {
        return;
    }
    let libvirt = Libvirt::start();
    let mut problems = Vec::new();
    for file in example_files() {
        let outcome = add_example(&file, &domain_prefix()).and_then(|(t, name, drives, layer)| {
            // The drives maqet creates at start are made now.
            for drive in layer.storage.iter().flatten() {
                let sized = match drive {
                    Storage::Qcow2(q) => q.size.is_some(),
                    Storage::Raw(r) => r.size.is_some(),
                    _ => false,
                };
                let drive = drive.name().to_string();
                if sized
                    && let (code @ 1.., _, stderr) = maqet(&t, &["disk", "create", &name, &drive])
                {
                    return Err(format!("`disk create {drive}` exited {code}: {stderr}"));
                }
            }
            runs_under_libvirt(&t, &libvirt, &name, drives)
        });
        if let Err(problem) = outcome {
            problems.push(format!("{}: {problem}", file.display()));
        }
    }
    // Full controllers: every SATA port, IDE unit and more, at once.
    let raw = |interfaces: &[&str]| {
        let drives: Vec<String> = interfaces
            .iter()
            .enumerate()
            .map(|(i, iface)| {
                format!("Raw(name: \"d{i}\", file: \"d{i}.img\", size: \"1M\", interface: {iface})")
            })
            .collect();
        (
            format!("storage: [{}]", drives.join(", ")),
            interfaces.len(),
        )
    };
    let mut cases = vec![
        raw(&["Sata"; 6]),
        raw(&[
            "Ide", "Ide", "Ide", "Sata", "Sata", "Sata", "Scsi", "Scsi", "Virtio", "Virtio",
        ]),
        {
            let (storage, n) = raw(&["Ide"; 4]);
            (format!("machine: \"pc\", {storage}"), n)
        },
    ];
    cases.extend(
        [
            "machine: \"pc\", network: [User(name: \"a\", model: E1000, mac: \"52:54:00:aa:00:01\"), User(name: \"b\", model: Rtl8139)]",
            "network: [User(name: \"a\"), User(name: \"b\", model: E1000, forwards: [(host: PORT, guest: 22, protocol: Udp)])]",
            "display: Vnc(display: 77), vga: Virtio, hotplug_ports: 0",
            "vga: Off, cpus: 2",
            "vga: Cirrus, machine: \"pc\"",
            "vga: Qxl, hotplug_ports: 12",
            "boot: (firmware: \"bios.bin\")",
        ]
        .map(|extra| (extra.replace("PORT", &crate::harness::claim_port().to_string()), 0)),
    );
    for (i, (extra, drives)) in cases.iter().enumerate() {
        let mut t = Test::new();
        let name = format!("{}n{i}", domain_prefix());
        if extra.contains("bios.bin") {
            std::fs::copy("/usr/share/seabios/bios-256k.bin", t.path("bios.bin"))
                .expect("copy SeaBIOS");
        }
        t.file(
            "vm.ron",
            &format!("(name: \"{name}\", accel: Tcg, memory: \"64M\", {extra})\n"),
        );
        let mut outcome = match maqet(&t, &["add", "vm.ron"]) {
            (0, _, _) => Ok(()),
            (code, _, stderr) => Err(format!("`add` exited {code}: {stderr}")),
        };
        for d in 0..*drives {
            outcome = outcome.and_then(|()| {
                match maqet(&t, &["disk", "create", &name, &format!("d{d}")]) {
                    (0, _, _) => Ok(()),
                    (code, _, stderr) => Err(format!("`disk create` exited {code}: {stderr}")),
                }
            });
        }
        if let Err(problem) =
            outcome.and_then(|()| runs_under_libvirt(&t, &libvirt, &name, *drives))
        {
            problems.push(format!("{extra}: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
