//! VM configuration: the RON schema, loading and merging config files, and
//! every check a config must pass before it is stored.

mod checks;
mod load;
mod schema;
mod values;

pub use load::{AuthorizedKey, LoadedFile, Program, UserPath, load_file, parse_file, read_text};
pub use schema::*;
pub use values::{
    Account, Bytes, Cpus, DiskSize, Hostname, HotplugPorts, Memory, MountTag, NAME_RULE, Name,
};

use crate::error::{Error, Result};

/// Values given on the command line; they win over every file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub name: Option<Name>,
    pub memory: Option<Memory>,
    pub cpus: Option<Cpus>,
    pub binary: Option<Program>,
}

impl Overrides {
    pub fn into_layer(self) -> Layer {
        Layer {
            name: self.name,
            memory: self.memory,
            cpus: self.cpus,
            binary: self.binary,
            ..Layer::default()
        }
    }
}

/// Merge `layers` in order onto `base`, then check the result as a whole.
/// Returns the config and the name the layers asked for, if any.
pub fn merge(base: VmConfig, layers: Vec<Layer>) -> Result<(VmConfig, Option<Name>)> {
    let mut config = base;
    let mut name = None;
    for mut layer in layers {
        if let Some(n) = layer.name.take() {
            name = Some(n);
        }
        config.merge(layer);
    }
    check_merged(&config)?;
    Ok((config, name))
}

/// Checks that span files: a later file may add the kernel an earlier
/// file's `append` was meant for.
fn check_merged(config: &VmConfig) -> Result<()> {
    let boot = &config.boot;
    if boot.kernel.is_none() && (boot.initrd.is_some() || boot.append.is_some()) {
        return Err(Error::invalid(
            "boot has an initrd or append line but no kernel",
            "add `boot: (kernel: \"...\")`, or remove initrd and append",
        ));
    }
    // Ports asked for that would never be made are a mistake to point out,
    // not to ignore: the user expects them to take hot-plugged devices.
    if let Some(ports) = config.hotplug_ports
        && ports.0 > 0
        && !config.is_q35()
    {
        return Err(Error::invalid(
            format!(
                "hotplug_ports: {} is for q35 machines, and this VM's machine is `{}`",
                ports.0, config.machine
            ),
            "on `pc` (i440fx) devices plug into the root bus pci.0 without ports; \
             set `hotplug_ports: 0`, or leave it out",
        ));
    }
    // Again on the merged config: `apply` lays files over a stored one.
    check_boot_words(boot.initrd.as_ref(), boot.append.as_deref())
        .map_err(|(_, message, help)| Error::invalid(message, help))?;
    let mut forwards: Vec<(&Forward, &Name)> = Vec::new();
    for net in &config.network {
        let Network::User(user) = net;
        for fwd in &user.forwards {
            if let Some((_, other)) = forwards.iter().find(|(f, _)| {
                f.host == fwd.host && f.protocol == fwd.protocol && f.bind == fwd.bind
            }) {
                return Err(Error::invalid(
                    format!(
                        "host port {}:{} is forwarded twice (networks `{}` and `{}`)",
                        fwd.bind, fwd.host.0, other, user.name
                    ),
                    "forward each host port once",
                ));
            }
            forwards.push((fwd, &user.name));
        }
    }
    check_controllers(config)?;
    check_arguments(&config.arguments).map_err(|bad| Error::invalid(bad.message, bad.help))
}

/// The ports of the SATA controller maqet adds for `interface: Sata`
/// (QEMU's `ich9-ahci`: `maqet-ahci.0` to `maqet-ahci.5`).
pub const SATA_PORTS: usize = 6;

/// The IDE buses a machine type has built in, as QEMU names them: `ide.0`,
/// `ide.1`, ... with `units` devices each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdeBuses {
    pub buses: usize,
    pub units: usize,
}

impl IdeBuses {
    /// q35's ICH9 AHCI has six ports of one device each; the i440FX PC's
    /// PIIX two buses of two (master and slave). Other machine types are
    /// not known to maqet (`None`): QEMU places their IDE devices itself.
    pub fn of(machine: &str) -> Option<IdeBuses> {
        if machine == "q35" || machine.starts_with("pc-q35-") {
            Some(IdeBuses { buses: 6, units: 1 })
        } else if machine == "pc" || machine.starts_with("pc-i440fx-") {
            Some(IdeBuses { buses: 2, units: 2 })
        } else {
            None
        }
    }

    pub fn slots(self) -> usize {
        self.buses * self.units
    }

    /// The bus and unit of the `n`th IDE device (0-based, `n < slots`).
    pub fn place(self, n: usize) -> (String, usize) {
        (format!("ide.{}", n / self.units), n % self.units)
    }
}

/// Drives beyond what their controller has ports for: QEMU would refuse
/// them at start ("Bus 'maqet-ahci.6' not found", "IDE unit 1 is in use").
fn check_controllers(config: &VmConfig) -> Result<()> {
    let on = |iface: Interface| {
        config
            .storage
            .iter()
            .filter(|d| match d {
                Storage::Qcow2(q) => q.interface == iface,
                Storage::Raw(r) => r.interface == iface,
                Storage::Cdrom(c) => c.interface == iface,
                Storage::Virtfs(_) => false,
            })
            .count()
    };
    let sata = on(Interface::Sata);
    if sata > SATA_PORTS {
        return Err(Error::invalid(
            format!(
                "{sata} drives use `interface: Sata`, but the SATA controller has {SATA_PORTS} ports"
            ),
            "put the others on `interface: Virtio` or `Scsi`",
        ));
    }
    let machine = config.machine.as_str();
    let ide = on(Interface::Ide);
    if let Some(buses) = IdeBuses::of(machine)
        && ide > buses.slots()
    {
        return Err(Error::invalid(
            format!(
                "{ide} drives use `interface: Ide`, but machine `{machine}` has room for {} IDE devices",
                buses.slots()
            ),
            "put the others on `interface: Sata`, `Virtio` or `Scsi`",
        ));
    }
    Ok(())
}

/// QEMU options maqet sets itself (DESIGN.md §4). Passing them again would
/// open a second monitor, daemonize behind maqet's back or redirect the
/// serial console maqet attaches to. `-qtest` is no option of maqet's but a
/// control channel like a monitor: it reads and writes guest memory and
/// drives the clock, and QEMU then runs no real accelerator.
const OWNED_OPTIONS: [&str; 13] = [
    "qmp",
    "qmp-pretty",
    "monitor",
    "mon",
    "qtest",
    "daemonize",
    "pidfile",
    "incoming",
    "runas",
    "chroot",
    "run-with",
    "nographic",
    "serial",
];

/// Ids maqet gives its own chardevs and devices.
pub const RESERVED_ID_PREFIX: &str = "maqet-";

pub struct BadArgument {
    pub word: String,
    pub message: String,
    pub help: String,
}

/// Refuse boot values QEMU would misread: the field at fault (to point at),
/// the message and the help.
pub fn check_boot_words(
    initrd: Option<&UserPath>,
    append: Option<&str>,
) -> std::result::Result<(), (&'static str, String, String)> {
    if append.is_some_and(|a| a.contains('\0')) {
        return Err((
            "append",
            "the `append` line contains a NUL character".into(),
            "QEMU's command line cannot carry a NUL byte: remove it from `append`".into(),
        ));
    }
    if let Some(initrd) = initrd
        && initrd.as_path().as_str().contains(',')
    {
        // For a multiboot kernel QEMU reads -initrd as a comma-separated
        // list of modules: `a.img,/etc/shadow` would load a host file into
        // guest memory. There is no escape that works for every kernel.
        return Err((
            "initrd",
            format!("the initrd path {} contains a comma", initrd.as_path()),
            "QEMU splits -initrd at commas (multiboot modules), so part of the path would be \
             read as another file; rename the file or its directory so the path has no comma"
                .into(),
        ));
    }
    Ok(())
}

/// Refuse `arguments` that take over options maqet owns, or that QEMU's
/// command line cannot carry.
pub fn check_arguments(args: &[String]) -> std::result::Result<(), BadArgument> {
    let mut previous: Option<&str> = None;
    for word in args {
        if let Some(before) = previous
            && option_name(before).is_some_and(|option| CHARDEV_OPTIONS.contains(&option))
            && let Some(device) = word.strip_prefix("mon:")
        {
            // QEMU reads `mon:` before a character device as "multiplex an
            // HMP monitor onto it" (tested on 7.2: Ctrl-A c gives `(qemu)`).
            return Err(BadArgument {
                word: word.clone(),
                message: format!(
                    "`{before} {word}` opens a QEMU monitor, which is set by maqet and cannot be passed in `arguments`"
                ),
                help: format!(
                    "drop the `mon:` prefix (`{before} {device}`); use `maqet qmp` to talk to the VM"
                ),
            });
        }
        if let Some(before) = previous
            && option_name(before) == Some("object")
            && is_qtest_object(word)
        {
            return Err(BadArgument {
                word: word.clone(),
                message: format!(
                    "`{before} {word}` opens QEMU's qtest channel, a monitor by another name, which is set by maqet and cannot be passed in `arguments`"
                ),
                help: "use `maqet qmp` to talk to the VM".into(),
            });
        }
        previous = Some(word);
        if word.contains('\0') {
            return Err(BadArgument {
                word: word.clone(),
                message: format!("an `arguments` element contains a NUL character: `{word}`"),
                help: "QEMU's command line cannot carry a NUL byte (a word ends at the first \
                       one); remove it"
                    .into(),
            });
        }
        if let Some(option) = option_name(word) {
            if OWNED_OPTIONS.contains(&option) {
                return Err(BadArgument {
                    word: word.clone(),
                    message: format!("`{word}` is set by maqet and cannot be passed in `arguments`"),
                    help: match option {
                        "nographic" | "serial" => "maqet puts the first serial port on its console socket (`maqet console`); use `display: Headless` for no window".into(),
                        "daemonize" => "maqet already detaches QEMU from your terminal".into(),
                        _ => "maqet gives QEMU its own QMP socket and pidfile; use `maqet qmp` to talk to the VM".into(),
                    },
                });
            }
            if option.chars().any(char::is_whitespace) {
                return Err(BadArgument {
                    word: word.clone(),
                    message: format!("`{word}` holds an option and its value in one element"),
                    help: "write each word as its own element: [\"-device\", \"virtio-rng-pci\"]"
                        .into(),
                });
            }
        }
        if uses_reserved_id(word) {
            return Err(BadArgument {
                word: word.clone(),
                message: format!(
                    "`{word}` uses the `{RESERVED_ID_PREFIX}` prefix, which maqet reserves for its own ids"
                ),
                help: "choose ids that do not start with `maqet-`".into(),
            });
        }
    }
    Ok(())
}

/// Options whose value is a character device spec in QEMU's legacy syntax,
/// where a `mon:` prefix adds a monitor (`-serial` is owned outright).
const CHARDEV_OPTIONS: [&str; 3] = ["parallel", "debugcon", "gdb"];

/// True for an `-object` value of type `qtest`, in either syntax
/// (`qtest,id=q,chardev=c`, `{"qom-type": "qtest", ...}`).
fn is_qtest_object(word: &str) -> bool {
    if word.trim_start().starts_with('{') {
        return serde_json::from_str::<serde_json::Value>(word)
            .is_ok_and(|value| value["qom-type"] == "qtest");
    }
    word.split(',')
        .enumerate()
        .any(|(i, part)| part == "qom-type=qtest" || (i == 0 && part == "qtest"))
}

/// The option a word names, without its dashes (QEMU accepts `--opt` as
/// well as `-opt`) and anything from `=` on; `None` for a word that is no
/// option.
fn option_name(word: &str) -> Option<&str> {
    let option = word.strip_prefix('-')?;
    let option = option.strip_prefix('-').unwrap_or(option);
    Some(option.split('=').next().unwrap_or(option))
}

/// True when a word names one of maqet's ids: `id=maqet-qmp`,
/// `chardev=maqet-console`, `chardev:maqet-console`, a `maqet-` value in a
/// JSON option (`-device {"chardev": "maqet-console", ...}`), or a `-set` /
/// `-global` key that reaches into one (`chardev.maqet-qmp.server=off`,
/// `isa-serial.chardev=maqet-console`).
fn uses_reserved_id(word: &str) -> bool {
    const ID_KEYS: [&str; 7] = [
        "id",
        "chardev",
        "netdev",
        "drive",
        "node-name",
        "fsdev",
        "mon",
    ];
    if word.trim_start().starts_with('{')
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(word)
    {
        return json_names_reserved(&value);
    }
    word.split(',').any(|part| match part.split_once('=') {
        Some((key, value)) => {
            let last = key.rsplit('.').next().unwrap_or(key);
            (ID_KEYS.contains(&last) && value.starts_with(RESERVED_ID_PREFIX))
                || key
                    .split('.')
                    .any(|segment| segment.starts_with(RESERVED_ID_PREFIX))
        }
        None => part.contains(&format!("chardev:{RESERVED_ID_PREFIX}")),
    })
}

/// Any string in a JSON option that is one of maqet's ids.
fn json_names_reserved(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.starts_with(RESERVED_ID_PREFIX),
        serde_json::Value::Array(items) => items.iter().any(json_names_reserved),
        serde_json::Value::Object(map) => map.values().any(json_names_reserved),
        _ => false,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
