//! The argv invariant (DESIGN.md §4): no user string adds, removes or
//! overrides an option maqet builds.
//!
//! Checked against an argv from `qemu::argv::build`:
//! - the argv is maqet's options, one flag and its value at a time, then the
//!   VM's own `arguments` unchanged;
//! - every `KEY=VALUE,...` word, split the way QEMU splits it ([`super::opts`]),
//!   has exactly the keys maqet puts there, and the user's text comes back
//!   whole as the value of its key;
//! - every `-blockdev` and `-device` word is a JSON object with exactly
//!   maqet's keys, whose strings are the user's text unchanged;
//! - words QEMU takes verbatim (`-kernel PATH`, `-append LINE`) are the
//!   user's text unchanged.

use std::collections::BTreeSet;

use crate::config::{Display, Storage, VmConfig};
use crate::layout::owned_image;
use crate::qemu::argv::Plan;
use camino::Utf8PathBuf;
use serde_json::{Map, Value};

/// How QEMU reads the word after each option maqet writes.
#[derive(Clone, Copy)]
enum Kind {
    /// No value.
    Bare,
    /// `KEY=VALUE,...`, with the key a first bare element stands for.
    Opts(&'static str),
    /// JSON (the word starts with `{`).
    Json,
    /// Taken as it is.
    Verbatim,
    /// A fixed word of maqet's own (`-vga std`, `-cpu host`).
    Fixed,
}

fn kind(flag: &str) -> Option<Kind> {
    Some(match flag {
        "-nodefaults" | "-no-user-config" => Kind::Bare,
        "-name" => Kind::Opts("guest"),
        "-machine" => Kind::Opts("type"),
        "-m" => Kind::Opts("size"),
        "-smp" => Kind::Opts("cpus"),
        "-chardev" => Kind::Opts("backend"),
        "-mon" => Kind::Opts("chardev"),
        "-fsdev" => Kind::Opts("fsdriver"),
        "-netdev" => Kind::Opts("type"),
        "-vnc" => Kind::Opts("vnc"),
        "-display" => Kind::Opts("type"),
        "-accel" => Kind::Opts("accel"),
        "-add-fd" => Kind::Opts("fd"),
        "-blockdev" | "-device" => Kind::Json,
        "-kernel" | "-initrd" | "-append" | "-bios" | "-pidfile" => Kind::Verbatim,
        "-cpu" | "-vga" | "-serial" => Kind::Fixed,
        _ => return None,
    })
}

/// One option of maqet's, as QEMU will read it.
enum Parsed {
    Bare,
    Opts(Vec<(String, String)>),
    Json(Map<String, Value>),
    Word(String),
}

impl Parsed {
    fn keys(&self) -> Vec<&str> {
        match self {
            Parsed::Opts(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            Parsed::Json(map) => map.keys().map(String::as_str).collect(),
            Parsed::Bare | Parsed::Word(_) => Vec::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        match self {
            Parsed::Opts(pairs) => pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Parsed::Json(map) => map.get(key).and_then(Value::as_str),
            Parsed::Bare | Parsed::Word(_) => None,
        }
    }

    fn word(&self) -> Option<&str> {
        match self {
            Parsed::Word(w) => Some(w),
            _ => None,
        }
    }
}

/// Check the invariant; the error says which word breaks it.
pub fn check(plan: &Plan<'_>, argv: &[String]) -> Result<(), String> {
    let config = plan.config;
    let user_args = &config.arguments;
    if argv.len() < 1 + user_args.len() {
        return Err(format!(
            "argv is shorter than the VM's own arguments: {argv:?}"
        ));
    }
    if argv[0] != config.binary.as_str() {
        return Err(format!(
            "argv[0] is {:?}, not the binary {:?}",
            argv[0],
            config.binary.as_str()
        ));
    }
    let (own, tail) = argv[1..].split_at(argv.len() - 1 - user_args.len());
    if tail != user_args.as_slice() {
        return Err(format!(
            "the VM's arguments are not passed through unchanged: {tail:?}"
        ));
    }

    // maqet's own part: flag, value, flag, value...
    let mut options: Vec<(&str, Parsed)> = Vec::new();
    let mut words = own.iter();
    while let Some(flag) = words.next() {
        let kind = kind(flag).ok_or_else(|| format!("{flag:?} is not an option maqet writes"))?;
        let parsed = match kind {
            Kind::Bare => Parsed::Bare,
            _ => {
                let value = words.next().ok_or_else(|| format!("{flag} has no value"))?;
                match kind {
                    Kind::Opts(implied) => {
                        if value.starts_with('{') {
                            return Err(format!("{flag} {value:?} would be read as JSON"));
                        }
                        Parsed::Opts(super::opts::parse(value, implied))
                    }
                    Kind::Json => match serde_json::from_str::<Value>(value) {
                        Ok(Value::Object(map)) => Parsed::Json(map),
                        _ => return Err(format!("{flag} {value:?} is not a JSON object")),
                    },
                    _ => Parsed::Word(value.clone()),
                }
            }
        };
        options.push((flag.as_str(), parsed));
    }
    let all = |flag: &str| -> Vec<&Parsed> {
        options
            .iter()
            .filter(|(f, _)| *f == flag)
            .map(|(_, p)| p)
            .collect()
    };
    let one = |flag: &str| -> Result<&Parsed, String> {
        match all(flag).as_slice() {
            [p] => Ok(*p),
            other => Err(format!("{flag} appears {} times, not once", other.len())),
        }
    };
    let expect_keys = |flag: &str, parsed: &Parsed, keys: &[&str]| -> Result<(), String> {
        if parsed.keys() == keys {
            Ok(())
        } else {
            Err(format!(
                "{flag} has keys {:?}, maqet writes {keys:?}",
                parsed.keys()
            ))
        }
    };
    let expect_value = |flag: &str, parsed: &Parsed, key: &str, want: &str| -> Result<(), String> {
        match parsed.get(key) {
            Some(got) if got == want => Ok(()),
            got => Err(format!("{flag} {key} reads back as {got:?}, not {want:?}")),
        }
    };

    let name = one("-name")?;
    expect_keys("-name", name, &["guest", "debug-threads"])?;
    expect_value("-name", name, "guest", plan.name)?;
    let machine = one("-machine")?;
    expect_keys("-machine", machine, &["type"])?;
    expect_value("-machine", machine, "type", config.machine.as_str())?;
    expect_keys("-m", one("-m")?, &["size"])?;
    expect_keys("-smp", one("-smp")?, &["cpus"])?;
    expect_keys("-accel", one("-accel")?, &["accel"])?;
    expect_keys("-display", one("-display")?, &["type"])?;
    match (&config.display, all("-vnc").as_slice()) {
        (Display::Vnc { .. }, [vnc]) => expect_keys("-vnc", vnc, &["vnc"])?,
        (Display::Vnc { .. }, _) => return Err("a VNC display without exactly one -vnc".into()),
        (_, []) => {}
        (_, _) => return Err("-vnc without a VNC display".into()),
    }

    // The three sockets; only the console's carries a user-influenced path.
    let chardevs = all("-chardev");
    if chardevs.len() != 3 {
        return Err(format!("{} -chardev options, not 3", chardevs.len()));
    }
    let plain = ["backend", "id", "fd", "server", "wait"];
    let logged = [
        "backend",
        "id",
        "fd",
        "server",
        "wait",
        "logfile",
        "logappend",
    ];
    let mut logfiles = 0;
    for chardev in &chardevs {
        if chardev.keys() == logged {
            logfiles += 1;
            expect_value(
                "-chardev",
                chardev,
                "logfile",
                plan.runtime.console_log.as_str(),
            )?;
        } else {
            expect_keys("-chardev", chardev, &plain)?;
        }
    }
    if logfiles != 1 {
        return Err(format!("{logfiles} chardevs with a logfile, not 1"));
    }
    for mon in all("-mon") {
        expect_keys("-mon", mon, &["chardev", "mode"])?;
    }

    // Verbatim words.
    let verbatim = |flag: &str, want: Option<&str>| -> Result<(), String> {
        let got: Vec<&str> = all(flag).iter().filter_map(|p| p.word()).collect();
        if got == want.into_iter().collect::<Vec<_>>() {
            Ok(())
        } else {
            Err(format!("{flag} carries {got:?}, not {want:?}"))
        }
    };
    let boot = &config.boot;
    verbatim(
        "-kernel",
        boot.kernel.as_ref().map(|p| p.as_path().as_str()),
    )?;
    verbatim(
        "-initrd",
        boot.initrd.as_ref().map(|p| p.as_path().as_str()),
    )?;
    verbatim("-append", boot.append.as_deref())?;
    verbatim(
        "-bios",
        boot.firmware.as_ref().map(|p| p.as_path().as_str()),
    )?;
    verbatim("-pidfile", Some(plan.runtime.pidfile.as_str()))?;

    check_storage(
        plan,
        &all("-blockdev"),
        &all("-add-fd"),
        &all("-fsdev"),
        &all("-device"),
    )?;
    check_network(config, &all("-netdev"), &all("-device"))
}

fn json_keys(parsed: &Parsed) -> BTreeSet<&str> {
    parsed.keys().into_iter().collect()
}

fn set<'a>(keys: &[&'a str]) -> BTreeSet<&'a str> {
    keys.iter().copied().collect()
}

fn check_storage(
    plan: &Plan<'_>,
    blockdevs: &[&Parsed],
    add_fds: &[&Parsed],
    fsdevs: &[&Parsed],
    devices: &[&Parsed],
) -> Result<(), String> {
    let mut files: Vec<(Utf8PathBuf, &str)> = Vec::new();
    let mut shares = Vec::new();
    for drive in &plan.config.storage {
        match drive {
            Storage::Qcow2(q) => files.push((
                q.file.as_ref().map_or_else(
                    || owned_image(plan.disks_dir, q.name.as_str()),
                    |f| f.as_path().to_owned(),
                ),
                "qcow2",
            )),
            Storage::Raw(r) => files.push((r.file.as_path().to_owned(), "raw")),
            Storage::Cdrom(c) => files.push((c.file.as_path().to_owned(), "raw")),
            Storage::Virtfs(v) => shares.push(v),
        }
    }
    if blockdevs.len() != 2 * files.len() {
        return Err(format!(
            "{} -blockdev for {} drives",
            blockdevs.len(),
            files.len()
        ));
    }
    let file_keys = set(&["driver", "filename", "node-name", "read-only"]);
    for (pair, (file, format)) in blockdevs.chunks(2).zip(&files) {
        let (file_node, format_node) = (pair[0], pair[1]);
        // A qcow2 node always names its backing (null without a chain).
        let format_keys = if *format == "qcow2" {
            set(&["driver", "file", "node-name", "read-only", "backing"])
        } else {
            set(&["driver", "file", "node-name", "read-only"])
        };
        if json_keys(file_node) != file_keys || json_keys(format_node) != format_keys {
            return Err(format!(
                "-blockdev keys {:?} / {:?}",
                json_keys(file_node),
                json_keys(format_node)
            ));
        }
        // The file goes by descriptor: its node names an fd set, and that
        // set's `-add-fd`s carry the path, whole, as their `opaque`.
        let fd_set = file_node
            .get("filename")
            .and_then(|f| f.strip_prefix("/dev/fdset/"));
        let carried: Vec<&&Parsed> = add_fds
            .iter()
            .filter(|a| fd_set.is_some() && a.get("set") == fd_set)
            .collect();
        if file_node.get("driver") != Some("file")
            || carried.is_empty()
            || carried.iter().any(|a| {
                a.keys() != ["fd", "set", "opaque"] || a.get("opaque") != Some(file.as_str())
            })
        {
            return Err(format!("file node does not read back as {file:?}"));
        }
        if format_node.get("driver") != Some(format) {
            return Err(format!(
                "format node driver is {:?}, not {format}",
                format_node.get("driver")
            ));
        }
    }

    if fsdevs.len() != shares.len() {
        return Err(format!(
            "{} -fsdev for {} shares",
            fsdevs.len(),
            shares.len()
        ));
    }
    let ninep: Vec<&&Parsed> = devices
        .iter()
        .filter(|d| d.get("driver") == Some("virtio-9p-pci"))
        .collect();
    if ninep.len() != shares.len() {
        return Err(format!(
            "{} virtio-9p devices for {} shares",
            ninep.len(),
            shares.len()
        ));
    }
    for ((fsdev, device), share) in fsdevs.iter().zip(ninep).zip(shares) {
        let mut keys = vec!["fsdriver", "id", "path", "security_model"];
        if share.readonly {
            keys.push("readonly");
        }
        if fsdev.keys() != keys {
            return Err(format!(
                "-fsdev has keys {:?}, maqet writes {keys:?}",
                fsdev.keys()
            ));
        }
        if fsdev.get("path") != Some(share.path.as_path().as_str()) {
            return Err(format!(
                "-fsdev path reads back as {:?}, not {:?}",
                fsdev.get("path"),
                share.path.as_path()
            ));
        }
        if json_keys(device) != set(&["driver", "fsdev", "mount_tag", "id"]) {
            return Err(format!("virtio-9p device keys {:?}", json_keys(device)));
        }
        if device.get("mount_tag") != Some(share.tag()) {
            return Err(format!(
                "mount_tag is {:?}, not {:?}",
                device.get("mount_tag"),
                share.tag()
            ));
        }
    }

    // Every other device has one of maqet's shapes; the first two are the
    // hot-plug root ports (function 0 of a slot is multifunction).
    let port = ["driver", "id", "bus", "addr", "chassis", "slot", "port"];
    let shapes = [
        set(&port),
        set(&[&port[..], &["multifunction"]].concat()),
        set(&["driver", "id"]),
        set(&["driver", "drive", "id"]),
        set(&["driver", "drive", "bus", "id"]),
        // An IDE disk placed on a bus and unit (q35 and the PC).
        set(&["driver", "drive", "bus", "unit", "id"]),
        set(&["driver", "fsdev", "mount_tag", "id"]),
        set(&["driver", "netdev", "id"]),
        set(&["driver", "netdev", "id", "mac"]),
    ];
    for device in devices {
        if !shapes.contains(&json_keys(device)) {
            return Err(format!("-device with keys {:?}", json_keys(device)));
        }
    }
    let ports = devices
        .iter()
        .filter(|d| d.get("driver") == Some("pcie-root-port"))
        .count();
    if ports != usize::from(plan.config.hotplug_port_count()) {
        return Err(format!(
            "{ports} hot-plug ports, the config asks for {}",
            plan.config.hotplug_port_count()
        ));
    }
    let disks = devices.iter().filter(|d| d.get("drive").is_some()).count();
    if disks != files.len() {
        return Err(format!("{disks} disk devices for {} drives", files.len()));
    }
    Ok(())
}

fn check_network(
    config: &VmConfig,
    netdevs: &[&Parsed],
    devices: &[&Parsed],
) -> Result<(), String> {
    if netdevs.len() != config.network.len() {
        return Err(format!(
            "{} -netdev for {} networks",
            netdevs.len(),
            config.network.len()
        ));
    }
    let nics: Vec<&&Parsed> = devices
        .iter()
        .filter(|d| d.get("netdev").is_some())
        .collect();
    if nics.len() != config.network.len() {
        return Err(format!(
            "{} NICs for {} networks",
            nics.len(),
            config.network.len()
        ));
    }
    for ((netdev, nic), net) in netdevs.iter().zip(nics).zip(&config.network) {
        let crate::config::Network::User(user) = net;
        let mut keys = vec!["type", "id"];
        keys.extend(std::iter::repeat_n("hostfwd", user.forwards.len()));
        if netdev.keys() != keys {
            return Err(format!(
                "-netdev has keys {:?}, maqet writes {keys:?}",
                netdev.keys()
            ));
        }
        if nic.get("mac") != user.mac.as_ref().map(|m| m.as_str()) {
            return Err(format!("NIC mac is {:?}", nic.get("mac")));
        }
    }
    Ok(())
}
