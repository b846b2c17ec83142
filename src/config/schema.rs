//! The VM configuration: what a RON file may say, and what the store keeps.
//!
//! One set of types serves both. A config file is parsed into a [`Layer`]
//! (every field optional, so files can be stacked); layers are merged onto
//! [`VmConfig::default`] or onto a VM's stored config. Storage and network
//! entries are complete in each file: a later entry with the same name
//! replaces the earlier one whole.

use std::net::Ipv4Addr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::load::{AuthorizedKey, Program, UserPath};
use super::values::{Account, Cpus, DiskSize, Hostname, HotplugPorts, Memory, MountTag, Name};

pub const DEFAULT_BINARY: &str = "qemu-system-x86_64";
pub const DEFAULT_MACHINE: &str = "q35";
pub const DEFAULT_MEMORY: &str = "1G";

/// One config file, or the command-line overrides, before merging.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub name: Option<Name>,
    pub binary: Option<Program>,
    pub machine: Option<Name>,
    pub accel: Option<Accel>,
    pub memory: Option<Memory>,
    pub cpus: Option<Cpus>,
    pub display: Option<Display>,
    pub vga: Option<Vga>,
    pub hotplug_ports: Option<HotplugPorts>,
    pub boot: Option<BootLayer>,
    pub storage: Option<Vec<Storage>>,
    pub network: Option<Vec<Network>>,
    pub arguments: Option<Vec<String>>,
    pub cloud_init: Option<CloudInit>,
}

/// Direct kernel boot and firmware; merged field by field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootLayer {
    pub kernel: Option<UserPath>,
    pub initrd: Option<UserPath>,
    pub append: Option<String>,
    pub firmware: Option<UserPath>,
}

/// A VM's whole configuration, as stored: every path absolute and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmConfig {
    pub binary: Program,
    pub machine: Name,
    pub accel: Accel,
    pub memory: Memory,
    pub cpus: Cpus,
    pub display: Display,
    pub vga: Vga,
    /// Free PCIe root ports for hot-plugging on q35; `None` is the default
    /// ([`HotplugPorts::DEFAULT`]), which other machines ignore.
    pub hotplug_ports: Option<HotplugPorts>,
    pub boot: Boot,
    pub storage: Vec<Storage>,
    pub network: Vec<Network>,
    pub arguments: Vec<String>,
    /// A cloud-init NoCloud seed maqet writes and attaches (docs/cloud-init.md).
    pub cloud_init: Option<CloudInit>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            binary: Program::new(DEFAULT_BINARY),
            machine: DEFAULT_MACHINE
                .parse()
                .expect("the default machine is a valid name"),
            accel: Accel::Auto,
            memory: Memory::parse(DEFAULT_MEMORY).expect("the default memory is valid"),
            cpus: Cpus(1),
            display: Display::Headless,
            vga: Vga::Std,
            hotplug_ports: None,
            boot: Boot::default(),
            storage: Vec::new(),
            network: Vec::new(),
            arguments: Vec::new(),
            cloud_init: None,
        }
    }
}

impl VmConfig {
    /// Lay `layer` over this config: set fields win, boot merges field by
    /// field, storage and network entries replace same-named ones or are
    /// appended, arguments are appended.
    pub fn merge(&mut self, layer: Layer) {
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        set(&mut self.binary, layer.binary);
        set(&mut self.machine, layer.machine);
        set(&mut self.accel, layer.accel);
        set(&mut self.memory, layer.memory);
        set(&mut self.cpus, layer.cpus);
        set(&mut self.display, layer.display);
        set(&mut self.vga, layer.vga);
        if layer.hotplug_ports.is_some() {
            self.hotplug_ports = layer.hotplug_ports;
        }
        if let Some(boot) = layer.boot {
            let b = &mut self.boot;
            b.kernel = boot.kernel.or(b.kernel.take());
            b.initrd = boot.initrd.or(b.initrd.take());
            b.append = boot.append.or(b.append.take());
            b.firmware = boot.firmware.or(b.firmware.take());
        }
        merge_named(
            &mut self.storage,
            layer.storage.unwrap_or_default(),
            Storage::name,
        );
        merge_named(
            &mut self.network,
            layer.network.unwrap_or_default(),
            Network::name,
        );
        self.arguments.extend(layer.arguments.unwrap_or_default());
        // Whole, like a storage entry: a later file's section replaces it.
        if layer.cloud_init.is_some() {
            self.cloud_init = layer.cloud_init;
        }
    }
}

impl VmConfig {
    /// What differs between this (stored) config and `given`, field by
    /// field, in words for a message: `memory (stored 1G, given 2G)`,
    /// ``storage `data` (given, not stored)``. Empty when they are equal.
    pub fn differences(&self, given: &VmConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut value = |field: &str, stored: String, wanted: String| {
            if stored != wanted {
                out.push(format!("{field} (stored {stored}, given {wanted})"));
            }
        };
        value(
            "binary",
            self.binary.as_str().to_owned(),
            given.binary.as_str().to_owned(),
        );
        value(
            "machine",
            self.machine.to_string(),
            given.machine.to_string(),
        );
        value(
            "accel",
            format!("{:?}", self.accel),
            format!("{:?}", given.accel),
        );
        value("memory", self.memory.0.human(), given.memory.0.human());
        value("cpus", self.cpus.0.to_string(), given.cpus.0.to_string());
        value(
            "display",
            format!("{:?}", self.display),
            format!("{:?}", given.display),
        );
        value("vga", format!("{:?}", self.vga), format!("{:?}", given.vga));
        value(
            "hotplug_ports",
            self.hotplug_port_count().to_string(),
            given.hotplug_port_count().to_string(),
        );
        let (a, b) = (&self.boot, &given.boot);
        for (field, differs) in [
            ("boot.kernel", a.kernel != b.kernel),
            ("boot.initrd", a.initrd != b.initrd),
            ("boot.append", a.append != b.append),
            ("boot.firmware", a.firmware != b.firmware),
        ] {
            if differs {
                out.push(field.to_owned());
            }
        }
        named_differences(
            &mut out,
            "storage",
            &self.storage,
            &given.storage,
            Storage::name,
        );
        named_differences(
            &mut out,
            "network",
            &self.network,
            &given.network,
            Network::name,
        );
        if self.arguments != given.arguments {
            out.push("arguments".to_owned());
        }
        if self.cloud_init != given.cloud_init {
            out.push("cloud_init".to_owned());
        }
        out
    }
}

/// Entries of a named list that differ, were removed or were added; or
/// the order, when only that changed.
fn named_differences<T: PartialEq>(
    out: &mut Vec<String>,
    field: &str,
    stored: &[T],
    given: &[T],
    name: fn(&T) -> &Name,
) {
    let before = out.len();
    for old in stored {
        match given.iter().find(|new| name(new) == name(old)) {
            None => out.push(format!("{field} `{}` (stored, not given)", name(old))),
            Some(new) if new != old => out.push(format!("{field} `{}`", name(old))),
            Some(_) => {}
        }
    }
    for new in given {
        if !stored.iter().any(|old| name(old) == name(new)) {
            out.push(format!("{field} `{}` (given, not stored)", name(new)));
        }
    }
    if out.len() == before && stored != given {
        out.push(format!("{field} (the order)"));
    }
}

impl VmConfig {
    /// True for QEMU's q35 machine (`q35`, `pc-q35-7.2`, ...), whose PCIe
    /// root bus takes no hot-plugged devices.
    pub fn is_q35(&self) -> bool {
        let machine = self.machine.as_str();
        machine.starts_with("q35") || machine.starts_with("pc-q35")
    }

    /// How many hot-plug ports maqet adds when the VM starts: the config's
    /// count (4 unless it says otherwise) on q35, none on other machines.
    pub fn hotplug_port_count(&self) -> u8 {
        if self.is_q35() {
            self.hotplug_ports.unwrap_or(HotplugPorts::DEFAULT).0
        } else {
            0
        }
    }
}

fn merge_named<T>(into: &mut Vec<T>, new: Vec<T>, name: fn(&T) -> &Name) {
    for item in new {
        match into.iter_mut().find(|old| name(old) == name(&item)) {
            Some(old) => *old = item,
            None => into.push(item),
        }
    }
}

/// What maqet puts in a VM's cloud-init seed: the account to create, its
/// SSH keys, the guest's host name, and more user data of the user's own.
/// Unset fields take their defaults when the seed is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudInit {
    /// The guest account; default: the name of the user running maqet.
    #[serde(default)]
    pub user: Option<Account>,
    /// OpenSSH public keys, each a key line or a file of them; default:
    /// every `~/.ssh/*.pub`.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<AuthorizedKey>,
    /// More user data (a `#cloud-config` file, a script, ...), handed to
    /// cloud-init as a second part, merged after maqet's.
    #[serde(default)]
    pub user_data: Option<UserPath>,
    /// The guest's host name; default: the VM's name.
    #[serde(default)]
    pub hostname: Option<Hostname>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Accel {
    /// KVM when /dev/kvm is usable at start, else TCG.
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Display {
    /// No window: the guest is reached through the serial console and QMP.
    /// (Not `None`: with implicit `Some`, `None` would mean "unset".)
    Headless,
    Gtk,
    Sdl,
    /// A VNC server on `bind:5900+display`.
    Vnc {
        display: u8,
        #[serde(default = "localhost")]
        bind: Ipv4Addr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vga {
    Std,
    Virtio,
    Qxl,
    Cirrus,
    Off,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Boot {
    pub kernel: Option<UserPath>,
    pub initrd: Option<UserPath>,
    pub append: Option<String>,
    pub firmware: Option<UserPath>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Storage {
    Qcow2(Qcow2Drive),
    Raw(RawDrive),
    Cdrom(CdromDrive),
    Virtfs(VirtfsShare),
}

impl Storage {
    pub fn name(&self) -> &Name {
        match self {
            Storage::Qcow2(d) => &d.name,
            Storage::Raw(d) => &d.name,
            Storage::Cdrom(d) => &d.name,
            Storage::Virtfs(d) => &d.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Storage::Qcow2(_) => "qcow2",
            Storage::Raw(_) => "raw",
            Storage::Cdrom(_) => "cdrom",
            Storage::Virtfs(_) => "virtfs",
        }
    }
}

/// A qcow2 disk. Without `file`, maqet keeps it at
/// `$data_dir/disks/<vm-id>/<name>.qcow2` and creates it at `size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qcow2Drive {
    pub name: Name,
    #[serde(default)]
    pub file: Option<UserPath>,
    #[serde(default)]
    pub size: Option<DiskSize>,
    #[serde(default)]
    pub interface: Interface,
    #[serde(default)]
    pub backing_file: Option<UserPath>,
    #[serde(default)]
    pub backing_format: Option<ImageFormat>,
    #[serde(default)]
    pub readonly: bool,
}

/// A raw disk image: an existing file, or one maqet creates at `size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrive {
    pub name: Name,
    pub file: UserPath,
    #[serde(default)]
    pub size: Option<DiskSize>,
    #[serde(default)]
    pub interface: Interface,
    #[serde(default)]
    pub readonly: bool,
}

/// CD-ROM media (an ISO image), always read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdromDrive {
    pub name: Name,
    pub file: UserPath,
    #[serde(default = "cdrom_interface")]
    pub interface: Interface,
}

/// A host directory shared with the guest over virtio-9p.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtfsShare {
    pub name: Name,
    pub path: UserPath,
    /// Defaults to the share's name.
    #[serde(default)]
    pub mount_tag: Option<MountTag>,
    #[serde(default)]
    pub security_model: SecurityModel,
    #[serde(default)]
    pub readonly: bool,
}

impl VirtfsShare {
    pub fn tag(&self) -> &str {
        self.mount_tag
            .as_ref()
            .map_or(self.name.as_str(), MountTag::as_str)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interface {
    #[default]
    Virtio,
    Sata,
    Ide,
    Scsi,
}

fn cdrom_interface() -> Interface {
    Interface::Sata
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    Qcow2,
    Raw,
}

/// As a command line names it (`qmp disk-add --format`, `run
/// --image-format`).
impl std::str::FromStr for ImageFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "raw" => Ok(ImageFormat::Raw),
            "qcow2" => Ok(ImageFormat::Qcow2),
            _ => Err(format!("`{s}` is not a disk format: use raw or qcow2")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityModel {
    /// Guest ownership and modes kept in extended attributes; the safe default.
    #[default]
    MappedXattr,
    MappedFile,
    Passthrough,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Network {
    /// QEMU's user-mode network (slirp): no privileges, NAT, port forwards.
    User(UserNetwork),
}

impl Network {
    pub fn name(&self) -> &Name {
        match self {
            Network::User(n) => &n.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserNetwork {
    pub name: Name,
    #[serde(default)]
    pub model: NicModel,
    #[serde(default)]
    pub mac: Option<Mac>,
    #[serde(default)]
    pub forwards: Vec<Forward>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NicModel {
    #[default]
    VirtioNet,
    E1000,
    Rtl8139,
}

/// A host port forwarded to a guest port. Bound to 127.0.0.1 unless `bind`
/// says otherwise, so a VM's SSH is not opened to the network by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub host: Port,
    pub guest: Port,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default = "localhost")]
    pub bind: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

fn localhost() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}

/// A TCP/UDP port, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u16::deserialize(d)? {
            0 => Err(de::Error::custom("port 0 is not a port: give 1 to 65535")),
            n => Ok(Port(n)),
        }
    }
}

/// A MAC address `xx:xx:xx:xx:xx:xx`, unicast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Mac(String);

impl Mac {
    pub fn new(text: &str) -> Result<Mac, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let hex_ok = parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        if !hex_ok {
            return Err(format!(
                "`{text}` is not a MAC address: write six hex pairs, like \"52:54:00:12:34:56\""
            ));
        }
        let first = u8::from_str_radix(parts[0], 16).map_err(|e| e.to_string())?;
        if first & 1 == 1 {
            return Err(format!(
                "`{text}` is a multicast MAC address; a NIC needs a unicast one"
            ));
        }
        Ok(Mac(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Mac::new(&text).map_err(de::Error::custom)
    }
}

/// Each enum's name as `info` shows it and `--json` writes it, in one
/// table. QEMU's option values are the same words except where
/// `qemu::argv` says otherwise (`-vga none`, the `virtio-net-pci` device).
macro_rules! names {
    ($($ty:ident { $($variant:ident => $name:literal),+ $(,)? })+) => {$(
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }
    )+};
}

names! {
    Accel { Auto => "auto", Kvm => "kvm", Tcg => "tcg" }
    Vga { Std => "std", Virtio => "virtio", Qxl => "qxl", Cirrus => "cirrus", Off => "off" }
    Interface { Virtio => "virtio", Sata => "sata", Ide => "ide", Scsi => "scsi" }
    ImageFormat { Qcow2 => "qcow2", Raw => "raw" }
    SecurityModel {
        MappedXattr => "mapped-xattr",
        MappedFile => "mapped-file",
        Passthrough => "passthrough",
    }
    NicModel { VirtioNet => "virtio-net", E1000 => "e1000", Rtl8139 => "rtl8139" }
    Protocol { Tcp => "tcp", Udp => "udp" }
}
