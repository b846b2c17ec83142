//! The argv builder with arbitrary text in every field a user controls.
//!
//! Paths, the kernel command line, the QEMU binary and maqet's own runtime
//! and disk directories take any string; names, mount tags and MAC addresses
//! go through their parsers (an invalid one is replaced, as the config
//! loader would have refused it). Invariant: `maqet::invariants::argv::check` — no
//! user string adds, removes or overrides an option key.

#![no_main]

use std::net::Ipv4Addr;

use arbitrary::Arbitrary;
use camino::Utf8PathBuf;
use libfuzzer_sys::fuzz_target;
use maqet::config::{
    Boot, Bytes, CdromDrive, Cpus, Display, Forward, ImageFormat, Interface, Mac, Memory, MountTag,
    Name, Network, NicModel, Port, Program, Protocol, Qcow2Drive, RawDrive, SecurityModel, Storage,
    UserNetwork, UserPath, Vga, VirtfsShare, VmConfig,
};
use maqet::layout::RuntimePaths;
use maqet::qemu::argv::{Accelerator, Plan, build};

#[derive(Debug, Arbitrary)]
struct Input {
    vm_name: String,
    machine: String,
    binary: String,
    kvm: bool,
    memory_mib: u32,
    cpus: u16,
    display: u8,
    vnc_display: u8,
    vnc_bind: [u8; 4],
    vga: u8,
    kernel: Option<String>,
    initrd: Option<String>,
    append: Option<String>,
    firmware: Option<String>,
    storage: Vec<Drive>,
    network: Vec<Net>,
    hotplug_ports: Option<u8>,
    arguments: Vec<String>,
    runtime_dir: String,
    disks_dir: String,
}

#[derive(Debug, Arbitrary)]
enum Drive {
    Qcow2 {
        name: String,
        file: Option<String>,
        interface: u8,
        backing: Option<String>,
        readonly: bool,
    },
    Raw {
        name: String,
        file: String,
        interface: u8,
        readonly: bool,
    },
    Cdrom {
        name: String,
        file: String,
        interface: u8,
    },
    Virtfs {
        name: String,
        path: String,
        tag: Option<String>,
        model: u8,
        readonly: bool,
    },
}

#[derive(Debug, Arbitrary)]
struct Net {
    name: String,
    model: u8,
    mac: Option<String>,
    forwards: Vec<(u16, u16, bool, [u8; 4])>,
}

/// `text` if it is a valid name, else a stand-in (the loader refuses it).
fn name(text: &str, fallback: &str) -> Name {
    text.parse()
        .unwrap_or_else(|_| fallback.parse().expect("fallback name"))
}

fn path(text: &str) -> UserPath {
    UserPath::checked(Utf8PathBuf::from(text))
}

fn interface(n: u8) -> Interface {
    [
        Interface::Virtio,
        Interface::Sata,
        Interface::Ide,
        Interface::Scsi,
    ][usize::from(n % 4)]
}

impl Input {
    fn config(&self) -> VmConfig {
        let storage = self
            .storage
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let fallback = format!("d{i}");
                match d {
                    Drive::Qcow2 {
                        name: n,
                        file,
                        interface: f,
                        backing,
                        readonly,
                    } => Storage::Qcow2(Qcow2Drive {
                        name: name(n, &fallback),
                        file: file.as_deref().map(path),
                        size: None,
                        interface: interface(*f),
                        backing_file: backing.as_deref().map(path),
                        backing_format: backing.as_ref().map(|_| ImageFormat::Qcow2),
                        readonly: *readonly,
                    }),
                    Drive::Raw {
                        name: n,
                        file,
                        interface: f,
                        readonly,
                    } => Storage::Raw(RawDrive {
                        name: name(n, &fallback),
                        file: path(file),
                        size: None,
                        interface: interface(*f),
                        readonly: *readonly,
                    }),
                    Drive::Cdrom {
                        name: n,
                        file,
                        interface: f,
                    } => Storage::Cdrom(CdromDrive {
                        name: name(n, &fallback),
                        file: path(file),
                        interface: interface(*f),
                    }),
                    Drive::Virtfs {
                        name: n,
                        path: p,
                        tag,
                        model,
                        readonly,
                    } => Storage::Virtfs(VirtfsShare {
                        name: name(n, &fallback),
                        path: path(p),
                        mount_tag: tag.as_deref().and_then(|t| MountTag::new(t).ok()),
                        security_model: [
                            SecurityModel::MappedXattr,
                            SecurityModel::MappedFile,
                            SecurityModel::Passthrough,
                        ][usize::from(model % 3)],
                        readonly: *readonly,
                    }),
                }
            })
            .collect();
        let network = self
            .network
            .iter()
            .enumerate()
            .map(|(i, n)| {
                Network::User(UserNetwork {
                    name: name(&n.name, &format!("n{i}")),
                    model: [NicModel::VirtioNet, NicModel::E1000, NicModel::Rtl8139]
                        [usize::from(n.model % 3)],
                    mac: n.mac.as_deref().and_then(|m| Mac::new(m).ok()),
                    forwards: n
                        .forwards
                        .iter()
                        .map(|&(host, guest, udp, bind)| Forward {
                            host: Port(host.max(1)),
                            guest: Port(guest.max(1)),
                            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                            bind: Ipv4Addr::from(bind),
                        })
                        .collect(),
                })
            })
            .collect();
        VmConfig {
            binary: Program::new(&self.binary),
            machine: name(&self.machine, "q35"),
            accel: maqet::config::Accel::Auto,
            memory: Memory(Bytes(u64::from(self.memory_mib.clamp(16, 4 << 20)) << 20)),
            cpus: Cpus(u32::from(self.cpus).clamp(1, Cpus::MAX)),
            display: match self.display % 4 {
                0 => Display::Headless,
                1 => Display::Gtk,
                2 => Display::Sdl,
                _ => Display::Vnc {
                    display: self.vnc_display,
                    bind: Ipv4Addr::from(self.vnc_bind),
                },
            },
            vga: [Vga::Std, Vga::Virtio, Vga::Qxl, Vga::Cirrus, Vga::Off]
                [usize::from(self.vga % 5)],
            boot: Boot {
                kernel: self.kernel.as_deref().map(path),
                initrd: self.initrd.as_deref().map(path),
                append: self.append.clone(),
                firmware: self.firmware.as_deref().map(path),
            },
            storage,
            network,
            hotplug_ports: self
                .hotplug_ports
                .map(|n| maqet::config::HotplugPorts(n % 33)),
            arguments: self.arguments.clone(),
            // The argv builder does not read it: `start` writes the seed
            // and attaches it as a drive of `storage`.
            cloud_init: None,
        }
    }
}

fuzz_target!(|input: Input| {
    let config = input.config();
    let vm_name = name(&input.vm_name, "vm");
    let runtime = RuntimePaths::new(Utf8PathBuf::from(&input.runtime_dir));
    let disks_dir = Utf8PathBuf::from(&input.disks_dir);
    let plan = Plan {
        name: vm_name.as_str(),
        config: &config,
        accel: if input.kvm {
            Accelerator::Kvm
        } else {
            Accelerator::Tcg
        },
        runtime: &runtime,
        disks_dir: &disks_dir,
        chains: &maqet::storage::Chains::new(),
    };
    let argv = build(&plan);
    if let Err(broken) = maqet::invariants::argv::check(&plan, &argv) {
        panic!("{broken}\nargv: {argv:?}");
    }
});
