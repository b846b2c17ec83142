//! The one place a QEMU command line is built (DESIGN.md §4).
//!
//! Building never spawns anything, so tests and `start --dry-run` see exactly
//! what would run. User text reaches QEMU in only three shapes:
//! - inside JSON (`-blockdev`, `-device`), where no value can become a key;
//! - as the value of a `KEY=VALUE,...` option, escaped by [`escape`], never in
//!   an implied-key position;
//! - as a whole argv word where QEMU takes it verbatim (`-kernel PATH`,
//!   `-append LINE`) or the user's own `arguments`.

use std::fmt::Write as _;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Value, json};

use crate::config::{
    Display, IdeBuses, Interface, Network, NicModel, Storage, UserNetwork, Vga, VmConfig,
};
use crate::layout::RuntimePaths;
use crate::storage::Chains;

/// The accelerator a start will use, after `Auto` was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Kvm,
    Tcg,
}

impl Accelerator {
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }
}

/// The file descriptors QEMU inherits: the listening sockets maqet bound.
pub const QMP_FD: i32 = 3;
pub const CONSOLE_FD: i32 = 4;
pub const EVENTS_FD: i32 = 5;

/// The first descriptor of the images QEMU inherits (after the sockets).
pub const FIRST_IMAGE_FD: i32 = 6;

/// An image QEMU is handed as descriptors maqet opened and checked, in fd
/// set `set` (`-add-fd`, `/dev/fdset/N`): QEMU never opens it by a name
/// that could have been swapped since the check. `fds` are the descriptor
/// numbers QEMU inherits: read-only, and read-write for a writable image
/// (QEMU picks the one matching how it opens the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFd {
    pub path: Utf8PathBuf,
    pub set: u32,
    pub read_only_fd: i32,
    pub read_write_fd: Option<i32>,
}

/// Every image file of a config, with its fd set and descriptor numbers:
/// each drive's backing chain (read-only), then the drive's own file.
/// A file named twice gets one set.
pub fn image_fds(config: &VmConfig, disks_dir: &Utf8Path, chains: &Chains) -> Vec<ImageFd> {
    let mut files: Vec<(Utf8PathBuf, bool)> = Vec::new();
    // By the exact text: paths are canonical, and each set's `opaque` label
    // must be the very path its nodes stand for.
    let mut add = |path: &Utf8Path, writable: bool| match files
        .iter_mut()
        .find(|(p, _)| p.as_str() == path.as_str())
    {
        Some((_, w)) => *w |= writable,
        None => files.push((path.to_owned(), writable)),
    };
    for drive in &config.storage {
        if let Some(chain) = chains.get(drive.name().as_str()) {
            for (path, _) in &chain.backing {
                add(path, false);
            }
        }
        let writable = match drive {
            Storage::Qcow2(q) => !q.readonly,
            Storage::Raw(r) => !r.readonly,
            Storage::Cdrom(_) | Storage::Virtfs(_) => false,
        };
        if let Some(path) = drive.image(disks_dir) {
            add(&path, writable);
        }
    }
    let mut next = FIRST_IMAGE_FD;
    let mut take = || {
        next += 1;
        next - 1
    };
    files
        .into_iter()
        .zip(1..)
        .map(|((path, writable), set)| ImageFd {
            path,
            set,
            read_only_fd: take(),
            read_write_fd: writable.then(&mut take),
        })
        .collect()
}

/// Ids maqet gives its own objects in QEMU.
pub const QMP_CHARDEV: &str = "maqet-qmp";
pub const CONSOLE_CHARDEV: &str = "maqet-console";
pub const EVENTS_CHARDEV: &str = "maqet-events";
/// The hot-plug ports are `maqet-hp0`, `maqet-hp1`, ...
pub const HOTPLUG_PORT_PREFIX: &str = "maqet-hp";

/// Everything the command line depends on.
pub struct Plan<'a> {
    pub name: &'a str,
    pub config: &'a VmConfig,
    pub accel: Accelerator,
    pub runtime: &'a RuntimePaths,
    /// Where maqet keeps the images it creates for this VM.
    pub disks_dir: &'a Utf8Path,
    /// The backing chains maqet checked, by drive: QEMU is given each
    /// member as a node of its own and never opens a file by a name an
    /// image records.
    pub chains: &'a Chains,
}

/// Escape a value for QEMU's `KEY=VALUE,...` option syntax: a comma ends the
/// value unless doubled.
pub fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

/// The whole argv, program first.
pub fn build(plan: &Plan<'_>) -> Vec<String> {
    let c = plan.config;
    let rt = plan.runtime;
    let mut argv: Vec<String> = vec![c.binary.as_str().to_owned()];
    let mut push = |words: &[&str]| argv.extend(words.iter().map(|w| (*w).to_owned()));

    push(&[
        "-name",
        &format!("guest={},debug-threads=on", escape(plan.name)),
    ]);
    // No default devices or user config files: the VM is what the config says.
    push(&["-nodefaults", "-no-user-config"]);
    push(&["-machine", &format!("type={}", escape(c.machine.as_str()))]);
    push(&["-accel", plan.accel.as_str()]);
    if plan.accel == Accelerator::Kvm {
        push(&["-cpu", "host"]);
    }
    push(&["-m", &format!("size={}M", c.memory.0.mib())]);
    push(&["-smp", &format!("cpus={}", c.cpus.0)]);
    match &c.display {
        Display::Headless => push(&["-display", "none"]),
        Display::Gtk => push(&["-display", "gtk"]),
        Display::Sdl => push(&["-display", "sdl"]),
        Display::Vnc { display, bind } => {
            push(&["-display", "none", "-vnc", &format!("{bind}:{display}")]);
        }
    }
    // QEMU's word for no VGA card is `none`; the rest are the config's.
    let vga = match c.vga {
        Vga::Off => "none",
        vga => vga.as_str(),
    };
    push(&["-vga", vga]);

    // The control and console sockets are bound by maqet and inherited.
    push(&[
        "-chardev",
        &format!("socket,id={QMP_CHARDEV},fd={QMP_FD},server=on,wait=off"),
        "-mon",
        &format!("chardev={QMP_CHARDEV},mode=control"),
        "-chardev",
        &format!("socket,id={EVENTS_CHARDEV},fd={EVENTS_FD},server=on,wait=off"),
        "-mon",
        &format!("chardev={EVENTS_CHARDEV},mode=control"),
        "-chardev",
        &format!(
            "socket,id={CONSOLE_CHARDEV},fd={CONSOLE_FD},server=on,wait=off,logfile={},logappend=on",
            escape(rt.console_log.as_str())
        ),
        "-serial",
        &format!("chardev:{CONSOLE_CHARDEV}"),
        "-pidfile",
        rt.pidfile.as_str(),
    ]);

    let boot = &c.boot;
    if let Some(kernel) = &boot.kernel {
        push(&["-kernel", kernel.as_path().as_str()]);
    }
    if let Some(initrd) = &boot.initrd {
        push(&["-initrd", initrd.as_path().as_str()]);
    }
    if let Some(append) = &boot.append {
        push(&["-append", append]);
    }
    if let Some(firmware) = &boot.firmware {
        push(&["-bios", firmware.as_path().as_str()]);
    }

    let images = image_fds(c, plan.disks_dir, plan.chains);
    for image in &images {
        for fd in std::iter::once(image.read_only_fd).chain(image.read_write_fd) {
            push(&[
                "-add-fd",
                &format!(
                    "fd={fd},set={},opaque={}",
                    image.set,
                    escape(image.path.as_str())
                ),
            ]);
        }
    }
    argv.extend(hotplug_port_args(c.hotplug_port_count()));
    argv.extend(storage_args(
        &c.storage,
        plan.disks_dir,
        plan.chains,
        &images,
        IdeBuses::of(c.machine.as_str()),
    ));
    argv.extend(network_args(&c.network));
    argv.extend(c.arguments.iter().cloned());
    argv
}

fn storage_args(
    storage: &[Storage],
    disks_dir: &Utf8Path,
    chains: &Chains,
    images: &[ImageFd],
    ide: Option<IdeBuses>,
) -> Vec<String> {
    let fdset = |path: &Utf8Path| {
        images
            .iter()
            .find(|i| i.path.as_str() == path.as_str())
            .map_or_else(|| path.to_string(), |i| format!("/dev/fdset/{}", i.set))
    };
    let mut args = Vec::new();
    let needs = |iface: Interface| {
        storage.iter().any(|d| match d {
            Storage::Qcow2(q) => q.interface == iface,
            Storage::Raw(r) => r.interface == iface,
            Storage::Cdrom(c) => c.interface == iface,
            Storage::Virtfs(_) => false,
        })
    };
    if needs(Interface::Sata) {
        json_arg(
            &mut args,
            "-device",
            json!({"driver": "ich9-ahci", "id": "maqet-ahci"}),
        );
    }
    if needs(Interface::Scsi) {
        json_arg(
            &mut args,
            "-device",
            json!({"driver": "virtio-scsi-pci", "id": "maqet-scsi"}),
        );
    }
    let mut sata_port = 0;
    let mut ide_count = 0;
    let mut fs_index = 0;
    for (index, drive) in storage.iter().enumerate() {
        let (file, format, interface, read_only, cdrom) = match drive {
            Storage::Qcow2(q) => (q.image(disks_dir), "qcow2", q.interface, q.readonly, false),
            Storage::Raw(r) => (
                r.file.as_path().to_owned(),
                "raw",
                r.interface,
                r.readonly,
                false,
            ),
            Storage::Cdrom(c) => (c.file.as_path().to_owned(), "raw", c.interface, true, true),
            Storage::Virtfs(v) => {
                let id = format!("maqet-fs{fs_index}");
                fs_index += 1;
                let model = v.security_model.as_str();
                let mut fsdev = format!(
                    "local,id={id},path={},security_model={model}",
                    escape(v.path.as_path().as_str())
                );
                if v.readonly {
                    fsdev.push_str(",readonly=on");
                }
                push_words(&mut args, &["-fsdev", &fsdev]);
                json_arg(
                    &mut args,
                    "-device",
                    json!({"driver": "virtio-9p-pci", "fsdev": id, "mount_tag": v.tag(), "id": format!("maqet-share{index}")}),
                );
                continue;
            }
        };
        // The backing chain, deepest first, each member read-only and
        // pointing at the one below; the drive's own node points at the
        // nearest. A qcow2 drive with no chain known gets `backing: null`
        // (QEMU then opens no backing file at all).
        let mut below: Value = Value::Null;
        if let Some(chain) = chains.get(drive.name().as_str()) {
            for (depth, (path, member_format)) in chain.backing.iter().enumerate().rev() {
                let node = format!("maqet-drive{index}-b{depth}");
                let mut format_node = json!({
                    "driver": member_format,
                    "file": {"driver": "file", "filename": fdset(path), "read-only": true},
                    "node-name": node,
                    "read-only": true,
                });
                if *member_format == "qcow2" {
                    format_node["backing"] = below;
                }
                json_arg(&mut args, "-blockdev", format_node);
                below = Value::from(node);
            }
        }
        let file_node = format!("maqet-file{index}");
        let format_node = format!("maqet-drive{index}");
        // Formats are always named: a probed format lets a guest that writes
        // a qcow2 header into a raw image take over the host file (CVE-2008-2004).
        json_arg(
            &mut args,
            "-blockdev",
            json!({
                "driver": "file",
                "filename": fdset(&file),
                "node-name": file_node,
                "read-only": read_only,
            }),
        );
        let mut top = json!({
            "driver": format,
            "file": file_node,
            "node-name": format_node,
            "read-only": read_only,
        });
        if format == "qcow2" {
            top["backing"] = below;
        }
        json_arg(&mut args, "-blockdev", top);
        let id = format!("maqet-disk{index}");
        let device = match (interface, cdrom) {
            (Interface::Virtio, _) => {
                json!({"driver": "virtio-blk-pci", "drive": format_node, "id": id})
            }
            (Interface::Sata, _) => {
                let bus = format!("maqet-ahci.{sata_port}");
                sata_port += 1;
                let driver = if cdrom { "ide-cd" } else { "ide-hd" };
                json!({"driver": driver, "drive": format_node, "bus": bus, "id": id})
            }
            (Interface::Ide, _) => {
                let driver = if cdrom { "ide-cd" } else { "ide-hd" };
                let mut device = json!({"driver": driver, "drive": format_node, "id": id});
                // Left to itself QEMU puts every IDE device on the first
                // bus: q35's second fails ("bus supports only 1 units"),
                // the PC's third ("IDE unit 1 is in use").
                if let Some(ide) = ide {
                    let (bus, unit) = ide.place(ide_count);
                    device["bus"] = Value::from(bus);
                    device["unit"] = Value::from(unit);
                }
                ide_count += 1;
                device
            }
            (Interface::Scsi, false) => {
                json!({"driver": "scsi-hd", "drive": format_node, "bus": "maqet-scsi.0", "id": id})
            }
            (Interface::Scsi, true) => {
                json!({"driver": "scsi-cd", "drive": format_node, "bus": "maqet-scsi.0", "id": id})
            }
        };
        json_arg(&mut args, "-device", device);
    }
    args
}

/// The PCIe root ports devices are hot-plugged into on q35, whose root bus
/// takes none (as libvirt does it).
///
/// Their places are fixed, so no other device moves when the count
/// changes: eight ports to a slot as functions 0–7 (function 0
/// multifunction), from slot 0x1c — where ICH9 has its own root ports —
/// down to 0x19. QEMU gives other devices the lowest free slots, so these
/// stay out of their way. Each port is its own hot-plug slot: chassis 254,
/// slots 1 to 32, a pair that ports of a config's `arguments` (numbered
/// from chassis 1, slot 0) do not use; QEMU refuses a pair given twice.
pub fn hotplug_port_args(count: u8) -> Vec<String> {
    let mut args = Vec::new();
    for port in 0..count {
        let (slot, function) = (0x1c - port / 8, port % 8);
        let mut device = json!({
            "driver": "pcie-root-port",
            "id": format!("{HOTPLUG_PORT_PREFIX}{port}"),
            "bus": "pcie.0",
            "addr": format!("{slot:#x}.{function}"),
            "chassis": HOTPLUG_CHASSIS,
            "slot": u16::from(port) + 1,
            "port": port,
        });
        if function == 0 {
            device["multifunction"] = Value::Bool(true);
        }
        json_arg(&mut args, "-device", device);
    }
    args
}

/// The PCIe chassis number of maqet's hot-plug ports.
const HOTPLUG_CHASSIS: u8 = 254;

fn json_arg(args: &mut Vec<String>, flag: &str, value: Value) {
    args.push(flag.to_owned());
    args.push(value.to_string());
}

fn push_words(args: &mut Vec<String>, words: &[&str]) {
    args.extend(words.iter().map(|w| (*w).to_owned()));
}

fn network_args(networks: &[Network]) -> Vec<String> {
    let mut args = Vec::new();
    for (index, net) in networks.iter().enumerate() {
        let Network::User(user) = net;
        args.extend(user_network_args(index, user));
    }
    args
}

/// The `-netdev` and `-device` of the `index`th network, a user-mode one:
/// its NIC with the MAC the config gives, and its port forwards, each on
/// its bind address.
pub fn user_network_args(index: usize, user: &UserNetwork) -> [String; 4] {
    let id = format!("maqet-net{index}");
    let mut netdev = format!("user,id={id}");
    for fwd in &user.forwards {
        let proto = fwd.protocol.as_str();
        let _ = write!(
            netdev,
            ",hostfwd={proto}:{}:{}-:{}",
            fwd.bind, fwd.host.0, fwd.guest.0
        );
    }
    // The device is virtio-net-pci; the config calls the model virtio-net.
    let driver = match user.model {
        NicModel::VirtioNet => "virtio-net-pci",
        model => model.as_str(),
    };
    let mut device = json!({"driver": driver, "netdev": id, "id": format!("maqet-nic{index}")});
    if let Some(mac) = &user.mac {
        device["mac"] = Value::from(mac.as_str());
    }
    [
        "-netdev".to_owned(),
        netdev,
        "-device".to_owned(),
        device.to_string(),
    ]
}

/// An argv as one shell-safe line, for `--dry-run` and logs.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                word.clone()
            } else if word.chars().any(char::is_control) {
                // A newline or an escape inside '…' would not survive being
                // shown and pasted: bash's and zsh's $'…' spell them out.
                let mut out = String::from("$'");
                for c in word.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        c if c.is_control() => {
                            let mut buf = [0; 4];
                            for b in c.encode_utf8(&mut buf).bytes() {
                                out.push_str(&format!("\\x{b:02x}"));
                            }
                        }
                        c => out.push(c),
                    }
                }
                out.push('\'');
                out
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
