//! The config as people and scripts read it: `info`'s lines and the
//! config's JSON (docs/json.md), shared by `info` and `inspect`. The JSON
//! is written by hand: it adds fields the config does not store
//! (`memory_bytes`, `kind`, `mount_tag` as resolved) and names others
//! differently from the RON schema.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::key_values;
use crate::config::{AuthorizedKey, Display, Network, Storage, VmConfig};
use crate::vm::Vm;

/// `info`'s key/value block: the record, then the whole config.
pub fn info_text(vm: &Vm) -> String {
    let c = &vm.config;
    let mut rows: Vec<(&str, String)> = vec![
        ("name", vm.name.to_string()),
        ("id", vm.id.to_string()),
        ("status", vm.status.to_string()),
        ("created", vm.created.rfc3339()),
        ("updated", vm.updated.rfc3339()),
    ];
    if vm.pending_restart() {
        rows.push((
            "pending",
            "the running QEMU has the config from before this update; it applies at the next start"
                .into(),
        ));
    }
    for (i, source) in vm.sources.iter().enumerate() {
        rows.push((if i == 0 { "sources" } else { "" }, source.to_string()));
    }
    rows.push((
        "trusted",
        if vm.trusted {
            "yes (--trust: raw arguments and binary allowed)".into()
        } else {
            "no".into()
        },
    ));
    rows.extend([
        ("binary", c.binary.as_str().to_owned()),
        ("machine", c.machine.to_string()),
        ("accel", c.accel.as_str().to_owned()),
        ("memory", c.memory.0.human()),
        ("cpus", c.cpus.0.to_string()),
        ("display", display_text(&c.display)),
        ("vga", c.vga.as_str().to_owned()),
    ]);
    if c.is_q35() {
        rows.push(("hotplug", ports_text(c.hotplug_port_count().into())));
    }
    let boot = &c.boot;
    for (key, value) in [
        (
            "kernel",
            boot.kernel.as_ref().map(|p| p.as_path().to_string()),
        ),
        (
            "initrd",
            boot.initrd.as_ref().map(|p| p.as_path().to_string()),
        ),
        ("append", boot.append.clone()),
        (
            "firmware",
            boot.firmware.as_ref().map(|p| p.as_path().to_string()),
        ),
    ] {
        if let Some(v) = value {
            rows.push((key, v));
        }
    }
    let storage = if c.storage.is_empty() {
        vec!["none".to_owned()]
    } else {
        c.storage.iter().map(storage_line).collect()
    };
    for (i, line) in storage.into_iter().enumerate() {
        rows.push((if i == 0 { "storage" } else { "" }, line));
    }
    let network = if c.network.is_empty() {
        vec!["none".to_owned()]
    } else {
        c.network.iter().flat_map(network_lines).collect()
    };
    for (i, line) in network.into_iter().enumerate() {
        rows.push((if i == 0 { "network" } else { "" }, line));
    }
    if !c.arguments.is_empty() {
        rows.push(("arguments", c.arguments.join(" ")));
    }
    if let Some(ci) = &c.cloud_init {
        let user = ci.user.as_ref().map_or("yours", |u| u.as_str());
        let keys = if ci.ssh_authorized_keys.is_empty() {
            "~/.ssh/*.pub".to_owned()
        } else {
            format!("{} given", ci.ssh_authorized_keys.len())
        };
        let mut line = format!("user {user}, keys {keys}");
        if let Some(host) = &ci.hostname {
            line.push_str(&format!(", hostname {}", host.as_str()));
        }
        if let Some(extra) = &ci.user_data {
            line.push_str(&format!(", user data {}", extra.as_path()));
        }
        rows.push(("cloud-init", line));
    }
    key_values(&rows)
}

/// `no ports`, `1 port`, `4 ports`: maqet's hot-plug ports.
pub fn ports_text(n: usize) -> String {
    match n {
        0 => "no ports".into(),
        1 => "1 port".into(),
        n => format!("{n} ports"),
    }
}

fn storage_line(drive: &Storage) -> String {
    match drive {
        Storage::Qcow2(d) => {
            let mut line = format!("{} qcow2 {}", d.name, d.interface.as_str());
            if let Some(size) = d.size {
                let _ = write!(line, " {}", size.0);
            }
            match &d.file {
                Some(f) => {
                    let _ = write!(line, " {}", f.as_path());
                }
                None => line.push_str(" (maqet creates it)"),
            }
            if let Some(b) = &d.backing_file {
                let format = d
                    .backing_format
                    .unwrap_or(crate::config::ImageFormat::Qcow2)
                    .as_str();
                let _ = write!(line, " backing {} ({format})", b.as_path());
            }
            if d.readonly {
                line.push_str(" readonly");
            }
            line
        }
        Storage::Raw(d) => {
            let mut line = format!("{} raw {}", d.name, d.interface.as_str());
            if let Some(size) = d.size {
                let _ = write!(line, " {}", size.0);
            }
            let _ = write!(line, " {}", d.file.as_path());
            if d.readonly {
                line.push_str(" readonly");
            }
            line
        }
        Storage::Cdrom(d) => format!(
            "{} cdrom {} {}",
            d.name,
            d.interface.as_str(),
            d.file.as_path()
        ),
        Storage::Virtfs(d) => format!(
            "{} virtfs {} tag={} {}{}",
            d.name,
            d.path.as_path(),
            d.tag(),
            d.security_model.as_str(),
            if d.readonly { " readonly" } else { "" }
        ),
    }
}

fn network_lines(net: &Network) -> Vec<String> {
    let Network::User(n) = net;
    let mut head = format!("{} user {}", n.name, n.model.as_str());
    if let Some(mac) = &n.mac {
        let _ = write!(head, " mac {}", mac.as_str());
    }
    let mut lines = vec![head];
    for f in &n.forwards {
        lines.push(format!("  {}", forward_text(f)));
    }
    lines
}

fn display_text(d: &Display) -> String {
    match d {
        Display::Headless => "headless".into(),
        Display::Gtk => "gtk".into(),
        Display::Sdl => "sdl".into(),
        Display::Vnc { display, bind } => format!("vnc {bind}:{display}"),
    }
}

/// The config's `--json` form (docs/json.md `info`).
pub fn config_json(c: &VmConfig) -> Value {
    let path = |p: &Option<crate::config::UserPath>| p.as_ref().map(|p| p.as_path().to_string());
    let display = match &c.display {
        Display::Vnc { display, bind } => {
            json!({ "kind": "vnc", "display": display, "bind": bind.to_string() })
        }
        other => json!({ "kind": display_text(other) }),
    };
    json!({
        "binary": c.binary.as_str(),
        "machine": c.machine.as_str(),
        "accel": c.accel.as_str(),
        "memory": c.memory.0.human(),
        "memory_bytes": c.memory.0.0,
        "cpus": c.cpus.0,
        "display": display,
        "vga": c.vga.as_str(),
        "hotplug_ports": c.hotplug_port_count(),
        "boot": {
            "kernel": path(&c.boot.kernel),
            "initrd": path(&c.boot.initrd),
            "append": c.boot.append,
            "firmware": path(&c.boot.firmware),
        },
        "storage": c.storage.iter().map(storage_json).collect::<Vec<_>>(),
        "network": c.network.iter().map(network_json).collect::<Vec<_>>(),
        "arguments": c.arguments,
        "cloud_init": c.cloud_init.as_ref().map(|ci| json!({
            "user": ci.user.as_ref().map(|u| u.as_str()),
            "ssh_authorized_keys": ci.ssh_authorized_keys.iter().map(|k| match k {
                AuthorizedKey::Key(key) => key.clone(),
                AuthorizedKey::File(path) => path.as_path().to_string(),
            }).collect::<Vec<_>>(),
            "user_data": path(&ci.user_data),
            "hostname": ci.hostname.as_ref().map(|h| h.as_str()),
        })),
    })
}

fn storage_json(drive: &Storage) -> Value {
    let path = |p: &crate::config::UserPath| p.as_path().to_string();
    let size = |s: Option<crate::config::DiskSize>| s.map(|s| s.0.human());
    let size_bytes = |s: Option<crate::config::DiskSize>| s.map(|s| s.0.0);
    match drive {
        Storage::Qcow2(d) => json!({
            "name": d.name.as_str(),
            "kind": "qcow2",
            "file": d.file.as_ref().map(path),
            "size": size(d.size),
            "size_bytes": size_bytes(d.size),
            "interface": d.interface.as_str(),
            "backing_file": d.backing_file.as_ref().map(path),
            "backing_format": d.backing_format.map(crate::config::ImageFormat::as_str),
            "readonly": d.readonly,
        }),
        Storage::Raw(d) => json!({
            "name": d.name.as_str(),
            "kind": "raw",
            "file": path(&d.file),
            "size": size(d.size),
            "size_bytes": size_bytes(d.size),
            "interface": d.interface.as_str(),
            "readonly": d.readonly,
        }),
        Storage::Cdrom(d) => json!({
            "name": d.name.as_str(),
            "kind": "cdrom",
            "file": path(&d.file),
            "interface": d.interface.as_str(),
            "readonly": true,
        }),
        Storage::Virtfs(d) => json!({
            "name": d.name.as_str(),
            "kind": "virtfs",
            "path": path(&d.path),
            "mount_tag": d.tag(),
            "security_model": d.security_model.as_str(),
            "readonly": d.readonly,
        }),
    }
}

pub fn network_json(net: &Network) -> Value {
    let Network::User(n) = net;
    json!({
        "name": n.name.as_str(),
        "kind": "user",
        "model": n.model.as_str(),
        "mac": n.mac.as_ref().map(|m| m.as_str()),
        "forwards": n.forwards.iter().map(|f| json!({
            "protocol": f.protocol.as_str(),
            "bind": f.bind.to_string(),
            "host": f.host.0,
            "guest": f.guest.0,
        })).collect::<Vec<_>>(),
    })
}

/// `tcp 127.0.0.1:2222 -> 22`
pub fn forward_text(f: &crate::config::Forward) -> String {
    format!(
        "{} {}:{} -> {}",
        f.protocol.as_str(),
        f.bind,
        f.host.0,
        f.guest.0
    )
}
