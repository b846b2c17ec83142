//! Hot-plugging into a running VM: maqet's PCIe root ports on q35 and which
//! of them are free, and disks handed to QEMU as descriptors.
//!
//! Which port is free is read from QEMU each time, never stored: a device
//! unplugged by the guest, or added with an explicit `bus`, can then never
//! leave a record that disagrees with the VM.

use std::os::fd::AsFd;

use camino::Utf8Path;
use serde_json::{Map, Value, json};

use super::Env;
use super::session::{Monitor, connect};
use crate::config::{HotplugPorts, ImageFormat};
use crate::error::{Error, Result};
use crate::qemu::argv::HOTPLUG_PORT_PREFIX;
use crate::qmp::{Qmp, QmpError};

/// Refuse an id of maqet's own for a device a user plugs.
pub(crate) fn check_device_id(id: &str) -> Result<()> {
    if id.starts_with(crate::config::RESERVED_ID_PREFIX) {
        return Err(Error::usage(
            format!(
                "ids starting with `{}` are maqet's own",
                crate::config::RESERVED_ID_PREFIX
            ),
            "choose another --id",
        ));
    }
    Ok(())
}

/// Device properties that make QEMU open a host file, directory or device,
/// or use a descriptor, by name: an option ROM, a packet capture, an MTP
/// root, a USB or hidraw device, vhost descriptors, a VFIO device, an NSS
/// database, guest-loader's kernel and initrd, pvrdma's RDMA device, and
/// hv-syndbg's host address (it sends UDP there). Compared without case,
/// with `_` as `-`.
pub const HOST_PROPERTIES: [&str; 23] = [
    "romfile",
    "sysfsdev",
    "host",
    "pcap",
    "rootdir",
    "hostdevice",
    "hostbus",
    "hostaddr",
    "hostport",
    "hidraw",
    "vhostfd",
    "vhostfds",
    "fd",
    "db",
    "file",
    "filename",
    "script",
    "evdev",
    "cdat",
    "kernel",
    "initrd",
    "ibdev",
    "host-ip",
];

/// Words that, inside a property name, say it names a host path or a
/// descriptor (`x-…-file`, `…-path`, `…dir`): refused too, so a property
/// this list does not know yet is not let through.
const HOST_WORDS: [&str; 4] = ["file", "path", "dir", "fd"];

/// Device drivers that reach host devices or files whatever their
/// properties: USB, hidraw and input passthrough, VFIO, vhost devices, MTP
/// shares, smart card readers, and sound cards (they open the host's audio).
pub const HOST_DRIVERS: [&str; 20] = [
    "usb-host",
    "u2f-passthru",
    "vfio-",
    "vhost-",
    "usb-mtp",
    "ccid-card-",
    "vhost-user-",
    "x-",
    "virtio-input-host",
    "usb-audio",
    "intel-hda",
    "ich9-intel-hda",
    "hda-",
    "ac97",
    "es1370",
    "sb16",
    "gus",
    "cs4231a",
    "adlib",
    "pcspk",
];

/// Refuse device properties that name host files QEMU opens itself; a
/// confined QEMU could not open most of them, but it could still write
/// the VM's own files through them (a `pcap` over its disk).
pub(crate) fn check_device_props(props: &Map<String, Value>) -> Result<()> {
    for key in props.keys() {
        let name = key.to_ascii_lowercase().replace('_', "-");
        let named = HOST_PROPERTIES.contains(&name.as_str());
        let worded = name
            .split('-')
            .any(|part| HOST_WORDS.iter().any(|w| part.ends_with(w)));
        if named || worded {
            return Err(Error::Refused {
                message: format!("the device property `{key}` names a host file or device"),
                help: "leave it out; give the VM files through its config (docs/qmp.md lists the refused properties)".into(),
            });
        }
    }
    Ok(())
}

/// Refuse drivers that pass a host device or file to the guest.
pub(crate) fn check_device_driver(driver: &str) -> Result<()> {
    let name = driver.to_ascii_lowercase().replace('_', "-");
    // `usb-host` also stands for `usb-host-…`; `vfio-` for any `vfio-…`.
    let host = HOST_DRIVERS.iter().any(|d| {
        if d.ends_with('-') {
            name.starts_with(*d)
        } else {
            name == *d
                || name
                    .strip_prefix(*d)
                    .is_some_and(|rest| rest.starts_with('-'))
        }
    });
    if host {
        return Err(Error::Refused {
            message: format!("the device `{driver}` passes a host device or file to the guest"),
            help: "put host devices in the VM's config `arguments` (with `maqet add --trust`), where they are reviewed".into(),
        });
    }
    Ok(())
}

/// One of maqet's hot-plug ports in a running QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotplugPort {
    /// `maqet-hp0`, ...: the bus name to give `device_add`.
    pub id: String,
    /// The device plugged into it: its id, or its QOM path when it has
    /// none; `None` when the port is free.
    pub device: Option<String>,
}

/// maqet's hot-plug ports, in order, and what is plugged into each.
///
/// A port's secondary bus lists its device as a `child[N]` link. (Not
/// `query-pci`: it shows a bridge's devices only once the guest has
/// numbered the bus behind it.)
pub fn ports(qmp: &mut Qmp) -> std::result::Result<Vec<HotplugPort>, QmpError> {
    let peripherals = qmp.execute("qom-list", Some(json!({"path": "/machine/peripheral"})))?;
    let mut numbered: Vec<(u8, String)> = peripherals
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"] == "child<pcie-root-port>")
        .filter_map(|p| {
            let id = p["name"].as_str()?;
            let n = id.strip_prefix(HOTPLUG_PORT_PREFIX)?.parse().ok()?;
            Some((n, id.to_owned()))
        })
        .collect();
    numbered.sort();
    let mut ports = Vec::with_capacity(numbered.len());
    for (_, id) in numbered {
        let bus = format!("/machine/peripheral/{id}/{id}");
        let props = qmp.execute("qom-list", Some(json!({"path": bus})))?;
        let link = props.as_array().into_iter().flatten().find_map(|p| {
            p["name"]
                .as_str()
                .filter(|name| name.starts_with("child["))
                .map(str::to_owned)
        });
        let device = match link {
            None => None,
            Some(link) => {
                let path = qmp.execute("qom-get", Some(json!({"path": bus, "property": link})))?;
                let path = path.as_str().unwrap_or_default();
                Some(
                    path.strip_prefix("/machine/peripheral/")
                        .unwrap_or(path)
                        .to_owned(),
                )
            }
        };
        ports.push(HotplugPort { id, device });
    }
    Ok(ports)
}

/// The bus a device without `--prop bus=` goes on: the first free
/// hot-plug port for a PCI device on q35; `None` (QEMU's choice) for
/// other devices and machines, whose buses take hot-plugging themselves
/// (`pc`'s pci.0, a USB bus).
pub fn bus_for(qmp: &mut Qmp, vm: &str, driver: &str) -> Result<Option<String>> {
    let ports = ports(qmp)?;
    if ports.is_empty() && !is_q35(qmp)? {
        return Ok(None);
    }
    if !is_pci_device(qmp, driver)? {
        return Ok(None);
    }
    if ports.is_empty() {
        return Err(Error::NoHotplugPort {
            message: format!(
                "VM `{vm}` has no hot-plug ports, and the q35 root bus pcie.0 takes no hot-plugged devices"
            ),
            help: format!(
                "set `hotplug_ports` in its config (default {}, up to {}) and restart it, or name \
                 a hot-pluggable bus with --prop bus=ID",
                HotplugPorts::DEFAULT.0,
                HotplugPorts::MAX
            ),
        });
    }
    match ports.iter().find(|p| p.device.is_none()) {
        Some(port) => Ok(Some(port.id.clone())),
        None => Err(Error::NoHotplugPort {
            message: format!(
                "all {} hot-plug ports of `{vm}` are in use ({})",
                ports.len(),
                ports
                    .iter()
                    .map(|p| format!("{}: {}", p.id, p.device.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            help: format!(
                "unplug a device with `maqet qmp device-del {vm} ID`, or raise `hotplug_ports` \
                 in its config (up to {}) and restart it",
                HotplugPorts::MAX
            ),
        }),
    }
}

/// The running machine is a q35 (`pc-q35-7.2-machine`, ...).
fn is_q35(qmp: &mut Qmp) -> Result<bool> {
    let kind = qmp.execute(
        "qom-get",
        Some(json!({"path": "/machine", "property": "type"})),
    )?;
    Ok(kind.as_str().is_some_and(|k| k.starts_with("pc-q35")))
}

/// `driver` is a PCI device: a type QEMU lists as one, or one of the
/// short names `device_add` takes for a virtio PCI device (`virtio-rng`
/// for `virtio-rng-pci`).
fn is_pci_device(qmp: &mut Qmp, driver: &str) -> Result<bool> {
    let types = qmp.execute(
        "qom-list-types",
        Some(json!({"implements": "pci-device", "abstract": false})),
    )?;
    let alias = format!("{driver}-pci");
    Ok(types
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .any(|name| name == driver || (driver.starts_with("virtio-") && name == alias)))
}

/// A disk to hot-plug.
pub struct NewDisk<'a> {
    pub file: &'a Utf8Path,
    pub id: &'a str,
    /// Named, never probed.
    pub format: ImageFormat,
    pub readonly: bool,
    /// More properties of the virtio-blk device (`bus`, `serial`, ...).
    pub props: Map<String, Value>,
}

/// The name of the block node maqet gives a hot-plugged disk.
fn node_name(id: &str) -> String {
    format!("maqet-hd-{id}")
}

/// QEMU's node names are at most 31 characters; `maqet-hd-` takes 9.
const MAX_DISK_ID: usize = 31 - "maqet-hd-".len();

/// Hot-plug a disk image as a virtio-blk device.
///
/// The image goes through the path filter like every image a VM uses; maqet
/// opens it, checks the open file is the one it checked, and passes the
/// descriptors to QEMU with `add-fd` (SCM_RIGHTS). A confined QEMU could
/// not open it by name, and never needs to: its sandbox stays as it was
/// started.
pub fn disk_add(
    env: &Env,
    query: &str,
    disk: NewDisk<'_>,
    timeout: std::time::Duration,
) -> Result<()> {
    check_device_id(disk.id)?;
    let id_ok = disk.id.len() <= MAX_DISK_ID
        && disk.id.starts_with(|c: char| c.is_ascii_alphabetic())
        && disk
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !id_ok {
        return Err(Error::usage(
            format!("`{}` cannot name a hot-plugged disk", disk.id),
            format!(
                "give an --id of 1 to {MAX_DISK_ID} letters, digits, `-`, `.` and `_`, starting \
                 with a letter (maqet names its block node `maqet-hd-ID`)"
            ),
        ));
    }
    check_device_props(&disk.props)?;
    if let Some(key) = ["driver", "drive", "id"]
        .into_iter()
        .find(|k| disk.props.contains_key(*k))
    {
        return Err(Error::usage(
            format!("`disk-add` sets the `{key}` property itself"),
            "leave it out of --prop",
        ));
    }
    let path = env
        .policy
        .check_vm(disk.file.as_os_str(), &env.cwd)
        .map_err(Error::path)?;
    if !path.exists() {
        return Err(Error::invalid(
            format!("{path} does not exist"),
            "create the image first, e.g. `qemu-img create -f qcow2 FILE 1G`",
        ));
    }
    let read_only = crate::storage::open_image(&path, false)?;
    let read_write = if disk.readonly {
        None
    } else {
        Some(crate::storage::open_image(&path, true)?)
    };
    if disk.format == ImageFormat::Qcow2 {
        crate::storage::check_standalone_qcow2(&read_only, &path)?;
    }

    let mut session = connect(env, query, Monitor::Control, timeout)?;
    let vm = session.vm.name.to_string();
    let qmp = &mut session.qmp;
    let mut props = disk.props;
    if !props.contains_key("bus")
        && let Some(bus) = bus_for(qmp, &vm, "virtio-blk-pci")?
    {
        props.insert("bus".into(), Value::from(bus));
    }

    // One fd set for the image: read-only, and read-write unless the disk
    // is, as at start; QEMU picks the one that matches how it opens it.
    let added = qmp.execute_with_fds(
        "add-fd",
        Some(json!({"opaque": path.as_str()})),
        &[read_only.as_fd()],
    )?;
    let set = added["fdset-id"].as_u64().ok_or_else(|| {
        Error::from(QmpError::Protocol(format!(
            "add-fd returned no fdset-id: {added}"
        )))
    })?;
    // Each step that fails undoes the ones before it, so the id and the
    // image are free for another try; the error reported is the first.
    let remove_set = |qmp: &mut Qmp| {
        let _ = qmp.execute("remove-fd", Some(json!({"fdset-id": set})));
    };
    if let Some(file) = &read_write
        && let Err(err) = qmp.execute_with_fds(
            "add-fd",
            Some(json!({"fdset-id": set, "opaque": path.as_str()})),
            &[file.as_fd()],
        )
    {
        remove_set(qmp);
        return Err(err.into());
    }
    let node = node_name(disk.id);
    let mut format_node = json!({
        "driver": disk.format.as_str(),
        "node-name": node,
        "read-only": disk.readonly,
        "file": {
            "driver": "file",
            "filename": format!("/dev/fdset/{set}"),
            "read-only": disk.readonly,
        },
    });
    if disk.format == ImageFormat::Qcow2 {
        // QEMU opens no backing file, whatever the image names.
        format_node["backing"] = Value::Null;
    }
    if let Err(err) = qmp.execute("blockdev-add", Some(format_node)) {
        remove_set(qmp);
        return Err(err.into());
    }
    props.insert("driver".into(), Value::from("virtio-blk-pci"));
    props.insert("id".into(), Value::from(disk.id));
    props.insert("drive".into(), Value::from(node.as_str()));
    if let Err(err) = qmp.execute("device_add", Some(Value::Object(props))) {
        let _ = qmp.execute("blockdev-del", Some(json!({"node-name": node})));
        remove_set(qmp);
        return Err(err.into());
    }
    Ok(())
}

/// After device `id` is gone: close the disk `disk-add` gave it, if any (its
/// block node and fd set). Returns whether there was one.
pub fn release_disk(qmp: &mut Qmp, id: &str) -> std::result::Result<bool, QmpError> {
    let node = node_name(id);
    let nodes = qmp.execute("query-named-block-nodes", Some(json!({"flat": true})))?;
    let Some(found) = nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["node-name"] == node.as_str())
    else {
        return Ok(false);
    };
    let set = found["file"]
        .as_str()
        .and_then(|f| f.strip_prefix("/dev/fdset/"))
        .and_then(|n| n.parse::<u64>().ok());
    qmp.execute("blockdev-del", Some(json!({"node-name": node})))?;
    // While a monitor is connected QEMU keeps a set's descriptors open
    // even when nothing uses them: remove it.
    if let Some(set) = set {
        qmp.execute("remove-fd", Some(json!({"fdset-id": set})))?;
    }
    Ok(true)
}
