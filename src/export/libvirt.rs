//! A libvirt domain (the QEMU driver, libvirt 9.0 and later) for a stored
//! VM: `maqet export VM --to libvirt`. docs/export.md has the mapping.

use camino::{Utf8Path, Utf8PathBuf};

use super::device::{self, Types};
use super::xml::{Xml, unwritable};
use super::{Exported, Placement, unmappable};
use crate::config::{
    Display, IdeBuses, Interface, Network, NicModel, SecurityModel, Storage, Vga, VmConfig,
};
use crate::error::Result;
use crate::qemu::argv::{Accelerator, user_network_args};
use crate::storage::Chains;

/// The VM being exported, as stored.
pub struct Source<'a> {
    pub name: &'a str,
    pub id: &'a str,
    pub config: &'a VmConfig,
    /// Where maqet keeps the images it created for the VM.
    pub disks_dir: &'a Utf8Path,
    /// The backing chains of its qcow2 drives, as maqet checked them.
    pub chains: &'a Chains,
}

/// Choices the config does not make.
pub struct Options {
    pub accel: Accelerator,
    /// Where the images will be on the host that runs the domain.
    pub image_dir: Option<Utf8PathBuf>,
    /// Where libvirt keeps the serial console's output.
    pub console_log: Utf8PathBuf,
}

/// What a libvirt file name may not hold: XML cannot carry most control
/// characters at all.
fn writable<'v>(field: &str, value: &'v str) -> Result<&'v str> {
    match unwritable(value) {
        None => Ok(value),
        Some(c) => Err(unmappable(
            format!("{field} holds the control character U+{:04X}", u32::from(c)),
            "XML cannot carry it, even escaped: remove it from the config",
        )),
    }
}

/// A file name for the domain: libvirt's schema takes no control
/// character in one (a newline fails `virt-xml-validate`).
fn path_writable<'v>(field: &str, value: &'v str) -> Result<&'v str> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(value),
        Some(c) => Err(unmappable(
            format!(
                "{field}: the path holds the control character U+{:04X}",
                u32::from(c)
            ),
            "libvirt takes no control character in a file name: rename the file",
        )),
    }
}

/// The domain XML. `device_types` gives the property types of a device
/// driver (from the VM's QEMU) for `-device` arguments written the old way.
pub fn domain(
    src: &Source<'_>,
    opts: Options,
    device_types: &mut dyn FnMut(&str) -> Result<Types>,
) -> Result<Exported> {
    let c = src.config;
    let mut notes = Vec::new();
    let mut place = Placement::new(opts.image_dir).owned_by(src.disks_dir, src.name);
    let arch = arch(c.binary.as_str())?;
    // Built first: the root element declares the qemu namespace only when
    // the domain needs it.
    let commandline = commandline(c, device_types, &mut notes)?;

    let mut x = Xml::default();
    let kind = match opts.accel {
        Accelerator::Kvm => "kvm",
        Accelerator::Tcg => "qemu",
    };
    let mut root: Vec<(&str, &str)> = vec![("type", kind)];
    if !commandline.is_empty() {
        root.push(("xmlns:qemu", "http://libvirt.org/schemas/domain/qemu/1.0"));
    }
    x.open("domain", &root);
    x.text("name", &[], src.name);
    x.text(
        "description",
        &[],
        &format!(
            "maqet VM {} (id {}), exported by maqet {}",
            src.name,
            src.id,
            env!("CARGO_PKG_VERSION")
        ),
    );
    x.text("memory", &[("unit", "MiB")], &c.memory.0.mib().to_string());
    x.text("vcpu", &[], &c.cpus.0.to_string());

    x.open("os", &[]);
    x.text(
        "type",
        &[("arch", arch), ("machine", c.machine.as_str())],
        "hvm",
    );
    let boot = &c.boot;
    if let Some(firmware) = &boot.firmware {
        let path = place.place("boot.firmware", firmware.as_path())?;
        x.text(
            "loader",
            &[("type", "rom")],
            path_writable("boot.firmware", path.as_str())?,
        );
    }
    if let Some(kernel) = &boot.kernel {
        let path = place.place("boot.kernel", kernel.as_path())?;
        x.text("kernel", &[], path_writable("boot.kernel", path.as_str())?);
    }
    if let Some(initrd) = &boot.initrd {
        let path = place.place("boot.initrd", initrd.as_path())?;
        x.text("initrd", &[], path_writable("boot.initrd", path.as_str())?);
    }
    if let Some(append) = &boot.append {
        x.text("cmdline", &[], writable("boot.append", append)?);
    }
    if boot.kernel.is_none() && c.storage.iter().any(|d| matches!(d, Storage::Cdrom(_))) {
        // libvirt's default is the disks only; QEMU's firmware goes on to
        // the CD-ROMs when no disk boots.
        x.empty("boot", &[("dev", "hd")]);
        x.empty("boot", &[("dev", "cdrom")]);
    }
    x.close();
    if matches!(arch, "x86_64" | "i686") {
        // Without it libvirt turns ACPI off, and the guest would not see
        // the power button `virsh shutdown` (and `maqet stop`) press.
        x.open("features", &[]);
        x.empty("acpi", &[]);
        x.close();
    }
    if opts.accel == Accelerator::Kvm {
        x.empty("cpu", &[("mode", "host-passthrough")]);
    }

    x.open("devices", &[]);
    if c.binary.as_str().contains('/') {
        x.text("emulator", &[], path_writable("binary", c.binary.as_str())?);
        notes.push(format!(
            "binary: the domain runs {}, which must exist on the host that runs it",
            c.binary.as_str()
        ));
    }
    let disks = disks(&mut x, src, &mut place, &mut notes)?;
    if disks.scsi {
        x.empty(
            "controller",
            &[("type", "scsi"), ("index", "0"), ("model", "virtio-scsi")],
        );
    }
    // maqet's QEMU has no USB controller (-nodefaults); neither has the
    // domain.
    x.empty("controller", &[("type", "usb"), ("model", "none")]);
    // Spare ports to hot-plug into. libvirt puts its own PCIe devices on
    // the first free root ports, so there is one more for each of those.
    // Index 0 is q35's root bus itself.
    let ports = match c.hotplug_port_count() {
        0 => 0,
        spare => spare + on_root_ports(c, &disks),
    };
    for index in 1..=ports {
        let index = index.to_string();
        x.empty(
            "controller",
            &[
                ("type", "pci"),
                ("index", &index),
                ("model", "pcie-root-port"),
            ],
        );
    }
    shares(&mut x, c, place.moving().then_some(&mut notes))?;
    for net in &c.network {
        let Network::User(user) = net;
        if !user.forwards.is_empty() {
            continue;
        }
        x.open("interface", &[("type", "user")]);
        if let Some(mac) = &user.mac {
            x.empty("mac", &[("address", mac.as_str())]);
        }
        let model = match user.model {
            NicModel::VirtioNet => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::Rtl8139 => "rtl8139",
        };
        x.empty("model", &[("type", model)]);
        x.close();
    }
    x.open("serial", &[("type", "pty")]);
    x.empty(
        "log",
        &[
            (
                "file",
                path_writable("--console-log", opts.console_log.as_str())?,
            ),
            ("append", "on"),
        ],
    );
    x.empty("target", &[("port", "0")]);
    x.close();
    x.open("console", &[("type", "pty")]);
    x.empty("target", &[("type", "serial"), ("port", "0")]);
    x.close();
    match c.display {
        Display::Headless => {}
        Display::Vnc { display, bind } => {
            let port = (5900 + u32::from(display)).to_string();
            let listen = bind.to_string();
            x.empty(
                "graphics",
                &[
                    ("type", "vnc"),
                    ("port", &port),
                    ("autoport", "no"),
                    ("listen", &listen),
                ],
            );
        }
        Display::Sdl => {
            x.empty("graphics", &[("type", "sdl")]);
            notes.push(
                "display Sdl: the window opens only where the libvirt daemon has a desktop \
                 session (a system daemon has none; use Vnc there)"
                    .into(),
            );
        }
        Display::Gtk => {
            return Err(unmappable(
                "display: libvirt has no GTK display",
                "set `display: Sdl` or `Vnc(display: N)` (`maqet apply VM file.ron`) and export again",
            ));
        }
    }
    // Written out: a headless domain would otherwise get no video card,
    // and screenshots need one.
    let video = match c.vga {
        Vga::Std => "vga",
        Vga::Virtio => "virtio",
        Vga::Qxl => "qxl",
        Vga::Cirrus => "cirrus",
        Vga::Off => "none",
    };
    x.open("video", &[]);
    x.empty("model", &[("type", video)]);
    x.close();
    // maqet's QEMU has no balloon either.
    x.empty("memballoon", &[("model", "none")]);
    x.close();

    if !commandline.is_empty() {
        x.open("qemu:commandline", &[]);
        for word in &commandline {
            x.empty("qemu:arg", &[("value", word)]);
        }
        x.close();
    }
    Ok(Exported {
        text: x.finish(),
        notes,
        copies: place.into_copies(),
    })
}

/// The guest architecture, from the QEMU program's name
/// (`qemu-system-x86_64`): libvirt needs it, and a domain names no program
/// unless the config gave a path.
fn arch(binary: &str) -> Result<&str> {
    let file = binary.rsplit('/').next().unwrap_or(binary);
    match file.strip_prefix("qemu-system-") {
        Some("i386") => Ok("i686"),
        Some(arch)
            if !arch.is_empty() && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok(arch)
        }
        _ => Err(unmappable(
            format!(
                "binary: `{binary}` is not named qemu-system-ARCH, so the guest's architecture is unknown"
            ),
            "set `binary` to a qemu-system-* program (a wrapper can be a symlink of that name)",
        )),
    }
}

/// What the disks need of the domain.
struct Disks {
    /// A disk is on SCSI: the domain needs its virtio-scsi controller.
    scsi: bool,
    /// Disks on virtio, each a PCIe device of its own.
    virtio: u8,
}

/// How many root ports libvirt gives the domain's own devices on q35:
/// each virtio disk, the SCSI controller, each share and each virtio NIC
/// has one; the older PCI NICs share one bridge.
fn on_root_ports(c: &VmConfig, disks: &Disks) -> u8 {
    let shares = c
        .storage
        .iter()
        .filter(|d| matches!(d, Storage::Virtfs(_)))
        .count();
    let native = c.network.iter().filter_map(|n| {
        let Network::User(user) = n;
        user.forwards.is_empty().then_some(user.model)
    });
    let (virtio_nics, pci_nics): (Vec<_>, Vec<_>) = native.partition(|m| *m == NicModel::VirtioNet);
    let count = usize::from(disks.virtio)
        + usize::from(disks.scsi)
        + shares
        + virtio_nics.len()
        + usize::from(!pci_nics.is_empty());
    u8::try_from(count).unwrap_or(u8::MAX)
}

/// Write the disks.
fn disks(
    x: &mut Xml,
    src: &Source<'_>,
    place: &mut Placement,
    notes: &mut Vec<String>,
) -> Result<Disks> {
    let c = src.config;
    let ide = IdeBuses::of(c.machine.as_str());
    let (mut vd, mut sd, mut hd) = (0, 0, 0);
    let (mut sata, mut scsi, mut ide_n) = (0, 0, 0);
    for drive in &c.storage {
        let (interface, readonly, cdrom) = match drive {
            Storage::Qcow2(q) => (q.interface, q.readonly, false),
            Storage::Raw(r) => (r.interface, r.readonly, false),
            Storage::Cdrom(d) => (d.interface, true, true),
            Storage::Virtfs(_) => continue,
        };
        let field = format!("storage `{}`", drive.name());
        let image = drive.image(src.disks_dir).expect("a drive with an image");
        // The seed is written by the caller once the domain is made.
        let seed = drive.name().as_str() == crate::cloud_init::SEED_NAME;
        if !seed && !image.exists() {
            return Err(unmappable(
                format!("{field}: {image} does not exist yet"),
                format!(
                    "maqet creates a VM's images at its first start; create it now with `maqet \
                     disk create {} {}`, then export",
                    src.name,
                    drive.name()
                ),
            ));
        }
        let interface = match (interface, ide) {
            (Interface::Ide, Some(buses)) if buses.units == 1 => {
                notes.push(format!(
                    "{field}: libvirt has no IDE bus on q35; the drive is on SATA, as the \
                     machine's own controller runs it"
                ));
                Interface::Sata
            }
            (Interface::Ide, None) => {
                return Err(unmappable(
                    format!(
                        "{field}: maqet does not know where machine `{}` puts IDE drives",
                        c.machine
                    ),
                    "put the drive on `interface: Sata`, `Virtio` or `Scsi`",
                ));
            }
            (i, _) => i,
        };
        if readonly && !cdrom && matches!(interface, Interface::Sata | Interface::Ide) {
            return Err(unmappable(
                format!(
                    "{field}: libvirt refuses read-only {} disks",
                    interface.as_str()
                ),
                "put the drive on `interface: Virtio` or `Scsi`",
            ));
        }
        // A CD-ROM on virtio is a read-only virtio disk, as maqet runs it:
        // libvirt's virtio bus has no removable media.
        let device = if cdrom && interface != Interface::Virtio {
            "cdrom"
        } else {
            "disk"
        };
        let format = match drive {
            Storage::Qcow2(_) => "qcow2",
            _ => "raw",
        };
        x.open("disk", &[("type", "file"), ("device", device)]);
        x.empty("driver", &[("name", "qemu"), ("type", format)]);
        let path = place.place(&field, &image)?;
        x.empty("source", &[("file", path_writable(&field, path.as_str())?)]);
        if format == "qcow2" {
            // The chain maqet checked, each member named: libvirt then
            // opens these and never a name an image records itself.
            let chain = src
                .chains
                .get(drive.name().as_str())
                .map(|c| c.backing.as_slice())
                .unwrap_or_default();
            for (member, member_format) in chain {
                let path = place.place(&field, member)?;
                x.open("backingStore", &[("type", "file")]);
                x.empty("format", &[("type", member_format)]);
                x.empty("source", &[("file", path_writable(&field, path.as_str())?)]);
            }
            x.empty("backingStore", &[]);
            for _ in chain {
                x.close();
            }
        }
        let (dev, bus, address) = match interface {
            Interface::Virtio => (letters("vd", &mut vd), "virtio", None),
            Interface::Sata => {
                let unit = sata;
                sata += 1;
                (
                    letters("sd", &mut sd),
                    "sata",
                    Some((unit / 6, 0, unit % 6)),
                )
            }
            Interface::Scsi => {
                let unit = scsi;
                scsi += 1;
                (letters("sd", &mut sd), "scsi", Some((0, 0, unit)))
            }
            Interface::Ide => {
                let n = ide_n;
                ide_n += 1;
                let units = ide.map_or(2, |b| b.units);
                (
                    letters("hd", &mut hd),
                    "ide",
                    Some((0, n / units, n % units)),
                )
            }
        };
        x.empty("target", &[("dev", &dev), ("bus", bus)]);
        if readonly && device == "disk" {
            x.empty("readonly", &[]);
        }
        if let Some((controller, bus, unit)) = address {
            let (controller, bus, unit) =
                (controller.to_string(), bus.to_string(), unit.to_string());
            x.empty(
                "address",
                &[
                    ("type", "drive"),
                    ("controller", &controller),
                    ("bus", &bus),
                    ("target", "0"),
                    ("unit", &unit),
                ],
            );
        }
        x.close();
    }
    Ok(Disks {
        scsi: scsi > 0,
        virtio: u8::try_from(vd).unwrap_or(u8::MAX),
    })
}

/// `prefix` and the `n`th name after it (`vda` ... `vdz`, `vdaa` ...), as
/// libvirt names disks; counts `n` on.
fn letters(prefix: &str, n: &mut usize) -> String {
    let mut index = *n;
    *n += 1;
    let mut tail = Vec::new();
    loop {
        tail.push(b'a' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    tail.reverse();
    format!(
        "{prefix}{}",
        String::from_utf8(tail).expect("ASCII letters")
    )
}

/// The shared directories; with `notes` (the images are moving to
/// another host), a note that each must exist there.
fn shares(x: &mut Xml, c: &VmConfig, mut notes: Option<&mut Vec<String>>) -> Result<()> {
    for drive in &c.storage {
        let Storage::Virtfs(share) = drive else {
            continue;
        };
        let field = format!("storage `{}`", share.name);
        let mode = match share.security_model {
            SecurityModel::MappedXattr => "mapped",
            SecurityModel::Passthrough => "passthrough",
            SecurityModel::MappedFile => {
                return Err(unmappable(
                    format!("{field}: libvirt has no mapped-file security model"),
                    "use `security_model: MappedXattr` (the default), which keeps guest owners \
                     in extended attributes instead",
                ));
            }
        };
        x.open("filesystem", &[("type", "mount"), ("accessmode", mode)]);
        x.empty("driver", &[("type", "path")]);
        x.empty(
            "source",
            &[("dir", path_writable(&field, share.path.as_path().as_str())?)],
        );
        x.empty("target", &[("dir", writable(&field, share.tag())?)]);
        if share.readonly {
            x.empty("readonly", &[]);
        }
        x.close();
        if let Some(notes) = notes.as_deref_mut() {
            notes.push(format!(
                "{field}: the directory {} is shared as it is named; it must exist on the host \
                 that runs the domain",
                share.path.as_path()
            ));
        }
    }
    Ok(())
}

/// What the domain passes to QEMU itself: user networks with port forwards
/// (libvirt 9.0 accepts `<portForward>` only for its passt backend and
/// otherwise binds no port) and the config's `arguments`.
fn commandline(
    c: &VmConfig,
    device_types: &mut dyn FnMut(&str) -> Result<Types>,
    notes: &mut Vec<String>,
) -> Result<Vec<String>> {
    let mut words = Vec::new();
    for (index, net) in c.network.iter().enumerate() {
        let Network::User(user) = net;
        if user.forwards.is_empty() {
            continue;
        }
        words.extend(user_network_args(index, user));
        notes.push(format!(
            "network `{}`: its port forwards are passed to QEMU as <qemu:commandline>, which \
             libvirt marks as tainting the domain",
            user.name
        ));
    }
    let mut args = c.arguments.iter();
    while let Some(word) = args.next() {
        writable("arguments", word)?;
        // QEMU takes `--opt` as well as `-opt`.
        let option = word
            .strip_prefix('-')
            .map(|o| o.strip_prefix('-').unwrap_or(o));
        words.push(word.clone());
        if let Some(legacy @ ("hda" | "hdb" | "hdc" | "hdd" | "cdrom" | "fda" | "fdb" | "usb")) =
            option
        {
            return Err(unmappable(
                format!(
                    "arguments: `-{legacy}` makes QEMU add a device before libvirt's, taking a \
                     place libvirt gave one of its own"
                ),
                "describe the drive with `-blockdev` (or `-drive if=none`) and a `-device` in \
                 JSON form instead",
            ));
        }
        let (Some(option @ ("device" | "nic" | "net" | "drive")), Some(value)) =
            (option, args.clone().next())
        else {
            continue;
        };
        args.next();
        let value = writable("arguments", value)?;
        let json = value.trim_start().starts_with('{');
        // QEMU takes the last of a key given twice.
        let interface = device::split_options(value)
            .iter()
            .rev()
            .find_map(|p| p.strip_prefix("if=").map(str::to_owned));
        if option == "device" && !json {
            let driver = device::driver(value).ok_or_else(|| {
                unmappable(
                    format!("arguments: `-device {value}` names no driver"),
                    "write it as `-device DRIVER,...` or in JSON form",
                )
            })?;
            words.push(device::to_json(value, &device_types(&driver)?)?.to_string());
        } else if option == "device" || (option == "drive" && interface.as_deref() == Some("none"))
        {
            words.push(value.to_owned());
        } else {
            return Err(unmappable(
                format!(
                    "arguments: `{word} {value}` makes QEMU add a device before libvirt's, \
                     taking a PCI slot libvirt gave one of its own"
                ),
                "describe the device with `-netdev` (or `-drive if=none`) and a `-device` in \
                 JSON form instead",
            ));
        }
    }
    if !c.arguments.is_empty() {
        notes.push(
            "arguments: passed to QEMU as <qemu:commandline>, outside maqet's confinement: files \
             they name are opened with the rights libvirt gives QEMU (libvirt marks the domain \
             tainted)"
                .into(),
        );
    }
    Ok(words)
}

#[cfg(test)]
mod tests;
