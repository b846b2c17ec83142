//! The `qmp` command line: each verb's arguments, what it runs, and what
//! it prints.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use argh::{ArgsInfo, FromArgs};
use camino::Utf8PathBuf;
use serde::Serialize;
use serde_json::{Value, json};

use super::super::Env;
use crate::error::Result;
use crate::render::{Output, Silent, Written, to_json};
use crate::terminal::safe_field;

/// Drive a running VM over QMP: any command, or a verb.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "qmp",
    note = "`maqet qmp VM COMMAND ...` is short for `maqet qmp command VM COMMAND ...`\n\
            (when VM is not also the name of a verb). docs/qmp.md has every verb and key name.",
    example = "maqet qmp web query-status\nmaqet qmp keys web ctrl alt f2\nmaqet qmp type web root && maqet qmp keys web ret\nmaqet qmp screendump web shot.png"
)]
pub struct Args {
    #[argh(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand)]
pub enum Verb {
    Command(CommandArgs),
    Keys(KeysArgs),
    Type(TypeArgs),
    Screendump(ScreendumpArgs),
    Pause(PauseArgs),
    Resume(ResumeArgs),
    DeviceAdd(DeviceAddArgs),
    DiskAdd(DiskAddArgs),
    DeviceDel(DeviceDelArgs),
    Events(EventsArgs),
}

/// Run any QMP command; prints its result as JSON.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "command",
    note = "Values of --arg are typed: numbers, true/false and null become JSON, {{...}} and [...] are\n\
            parsed as JSON, anything else is a string. Sent without --allow-dangerous: query-*,\n\
            x-query-* and commands that cannot open host files, run programs or listen\n\
            (docs/qmp.md lists them); anything else is refused.",
    example = "maqet qmp command web query-block\nmaqet qmp web query-cpus-fast\nmaqet qmp web set_link --arg name=maqet-nic0 --arg up=false"
)]
pub struct CommandArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the QMP command, e.g. query-status
    #[argh(positional, arg_name = "COMMAND")]
    pub command: String,

    /// an argument as key=value (repeatable)
    #[argh(option, arg_name = "KEY=VALUE")]
    pub arg: Vec<String>,

    /// all arguments as one JSON object
    #[argh(option, arg_name = "JSON")]
    pub args_json: Option<String>,

    /// send commands maqet otherwise refuses (see the note)
    #[argh(switch)]
    pub allow_dangerous: bool,

    /// seconds to wait for QEMU (default 10)
    #[argh(option, arg_name = "SECONDS", default = "10")]
    pub timeout: u64,
}

/// Press keys together, by QEMU key name (ctrl, alt, f2, ret, ...).
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "keys",
    example = "maqet qmp keys web ctrl alt delete"
)]
pub struct KeysArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// QEMU key names, held together
    #[argh(positional, arg_name = "KEY")]
    pub keys: Vec<String>,

    /// milliseconds the keys stay down (default 100)
    #[argh(option, arg_name = "MS", default = "100")]
    pub hold_time: u32,
}

/// Type text on the VM's keyboard (US layout).
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "type",
    example = "maqet qmp type web 'root'\nmaqet qmp keys web ret"
)]
pub struct TypeArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the text; \n in it is typed as Enter only if the shell passes a newline
    #[argh(positional, arg_name = "TEXT")]
    pub text: String,

    /// milliseconds each key stays down (default 30)
    #[argh(option, arg_name = "MS", default = "30")]
    pub hold_time: u32,
}

/// Save a screenshot of the VM's display.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "screendump",
    example = "maqet qmp screendump web shot.png"
)]
pub struct ScreendumpArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// where to write the image
    #[argh(positional, arg_name = "FILE")]
    pub file: Utf8PathBuf,

    /// ppm or png (default: png for a .png file, else ppm)
    #[argh(option, arg_name = "FORMAT")]
    pub format: Option<super::ImageFormat>,
}

/// Pause the VM's CPUs.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "pause")]
pub struct PauseArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
}

/// Resume a paused VM.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(subcommand, name = "resume")]
pub struct ResumeArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,
}

/// Hot-plug a device.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "device-add",
    note = "On q35 a PCI device without --prop bus=... goes on a free hot-plug port of maqet's\n\
            (`hotplug_ports` in the config; `maqet inspect` shows which are free).",
    example = "maqet qmp device-add web virtio-rng-pci --id rng0"
)]
pub struct DeviceAddArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the device driver, e.g. virtio-rng-pci
    #[argh(positional, arg_name = "DRIVER")]
    pub driver: String,

    /// the new device's id
    #[argh(option, arg_name = "ID")]
    pub id: String,

    /// a device property as key=value (repeatable)
    #[argh(option, arg_name = "KEY=VALUE")]
    pub prop: Vec<String>,
}

/// Hot-plug a disk image as a virtio-blk device.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "disk-add",
    note = "The image must exist; it passes the same path checks as a config's images and is\n\
            handed to QEMU as an open file. A qcow2 image must have no backing file. On q35 the\n\
            disk goes on a free hot-plug port. `maqet qmp device-del VM ID` unplugs and closes it.",
    example = "maqet qmp disk-add web data.qcow2 --id data0 --format qcow2\nmaqet qmp device-del web data0"
)]
pub struct DiskAddArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the image file
    #[argh(positional, arg_name = "FILE")]
    pub file: Utf8PathBuf,

    /// the new device's id (at most 22 characters)
    #[argh(option, arg_name = "ID")]
    pub id: String,

    /// the image's format: raw or qcow2 (never guessed)
    #[argh(option, arg_name = "FORMAT")]
    pub format: crate::config::ImageFormat,

    /// attach it read-only
    #[argh(switch)]
    pub readonly: bool,

    /// a property of the virtio-blk device as key=value (repeatable)
    #[argh(option, arg_name = "KEY=VALUE")]
    pub prop: Vec<String>,
}

/// Unplug a device; returns once QEMU reports it gone.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "device-del",
    example = "maqet qmp device-del web rng0"
)]
pub struct DeviceDelArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the device's id
    #[argh(positional, arg_name = "ID")]
    pub id: String,

    /// seconds to wait for the guest to release it (default 10)
    #[argh(option, arg_name = "SECONDS", default = "10")]
    pub timeout: u64,
}

/// Print QMP events as JSON lines.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "events",
    note = "Without --follow, waits for the first matching event, prints it and exits.",
    example = "maqet qmp events web --follow\nmaqet qmp events web --filter SHUTDOWN --timeout 60"
)]
pub struct EventsArgs {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// keep printing until interrupted or the VM stops
    #[argh(switch)]
    pub follow: bool,

    /// only events with this name (repeatable)
    #[argh(option, arg_name = "NAME")]
    pub filter: Vec<String>,

    /// without --follow: seconds to wait for an event (default 30)
    #[argh(option, arg_name = "SECONDS", default = "30")]
    pub timeout: u64,
}

pub fn run(env: &Env, args: Args) -> Result<Box<dyn Output>> {
    let timeout = Duration::from_secs(10);
    Ok(match args.verb {
        Verb::Command(a) => {
            let args = super::parse_args("--arg", &a.arg, a.args_json.as_deref())?;
            let timeout = Duration::from_secs(a.timeout);
            let value = super::raw(env, &a.vm, &a.command, args, a.allow_dangerous, timeout)?;
            // Pretty for people, one line for pipes.
            let pretty = std::io::stdout().is_terminal();
            Box::new(Reply { value, pretty })
        }
        Verb::Keys(a) => {
            let sent = super::send_keys(env, &a.vm, &a.keys, a.hold_time, timeout)?;
            Box::new(Sent { sent })
        }
        Verb::Type(a) => {
            let sent = super::type_text(env, &a.vm, &a.text, a.hold_time, timeout)?;
            Box::new(Sent { sent })
        }
        Verb::Screendump(a) => {
            let path = super::screendump(env, &a.vm, &a.file, a.format, timeout)?;
            Box::new(Written(path))
        }
        Verb::Pause(a) => {
            let (name, run_state) = super::set_paused(env, &a.vm, true, timeout)?;
            Box::new(RunState { name, run_state })
        }
        Verb::Resume(a) => {
            let (name, run_state) = super::set_paused(env, &a.vm, false, timeout)?;
            Box::new(RunState { name, run_state })
        }
        Verb::DeviceAdd(a) => {
            let props = super::parse_args("--prop", &a.prop, None)?;
            super::device_add(env, &a.vm, &a.driver, &a.id, props, timeout)?;
            Box::new(Device {
                id: a.id,
                added: true,
            })
        }
        Verb::DiskAdd(a) => {
            let props = super::parse_args("--prop", &a.prop, None)?;
            let disk = crate::commands::hotplug::NewDisk {
                file: &a.file,
                id: &a.id,
                format: a.format,
                readonly: a.readonly,
                props,
            };
            crate::commands::hotplug::disk_add(env, &a.vm, disk, timeout)?;
            Box::new(Device {
                id: a.id,
                added: true,
            })
        }
        Verb::DeviceDel(a) => {
            super::device_del(env, &a.vm, &a.id, Duration::from_secs(a.timeout))?;
            Box::new(Device {
                id: a.id,
                added: false,
            })
        }
        Verb::Events(a) => {
            let mut out = std::io::stdout().lock();
            let mut print = |event: &Value| {
                let line = crate::terminal::safe_json(&event.to_string());
                writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
            };
            let timeout = Duration::from_secs(a.timeout);
            super::events(env, &a.vm, &a.filter, a.follow, timeout, &mut print)?;
            Box::new(Silent)
        }
    })
}

/// A raw QMP result: JSON for people too (`maqet qmp VM ... | jq`).
pub struct Reply {
    pub value: Value,
    /// Pretty-printed (a person at a terminal), or one line (a pipe).
    pub pretty: bool,
}

impl Output for Reply {
    fn json(&self) -> Value {
        self.value.clone()
    }

    fn text(&self) -> String {
        let text = if self.pretty {
            serde_json::to_string_pretty(&self.value)
        } else {
            serde_json::to_string(&self.value)
        };
        format!("{}\n", text.unwrap_or_default())
    }

    fn write(&self, json: bool, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let text = if json {
            crate::render::pretty(&self.value)
        } else {
            self.text()
        };
        out.write_all(crate::terminal::safe_json(&text).as_bytes())
    }
}

/// Key presses sent (`keys`, `type`): nothing for people.
#[derive(Serialize)]
pub struct Sent {
    pub sent: usize,
}

impl Output for Sent {
    fn json(&self) -> Value {
        to_json(self)
    }

    fn text(&self) -> String {
        String::new()
    }
}

/// QEMU's run state after `pause` or `resume`.
#[derive(Serialize)]
pub struct RunState {
    pub name: String,
    pub run_state: String,
}

impl Output for RunState {
    fn json(&self) -> Value {
        to_json(self)
    }

    fn text(&self) -> String {
        format!(
            "{}: {}\n",
            safe_field(&self.name),
            safe_field(&self.run_state)
        )
    }
}

/// A device plugged (`device-add`, `disk-add`) or unplugged (`device-del`).
pub struct Device {
    pub id: String,
    pub added: bool,
}

impl Output for Device {
    /// Says what happened: `device-add` added, `device-del` removed.
    fn json(&self) -> Value {
        if self.added {
            json!({ "id": self.id, "added": true })
        } else {
            json!({ "id": self.id, "removed": true })
        }
    }

    fn text(&self) -> String {
        let verb = if self.added { "added" } else { "removed" };
        format!("{verb} {}\n", safe_field(&self.id))
    }
}

#[cfg(test)]
mod tests {
    use argh::ArgsInfo;

    use super::CommandArgs;

    /// The note of `qmp command` says what is sent without
    /// `--allow-dangerous` the way the code decides it: the query prefixes,
    /// and the list docs/qmp.md holds (a test there keeps it equal to
    /// `ALLOWED`). It names no command of its own that could drift.
    #[test]
    fn the_command_note_says_what_the_allow_list_allows() {
        let info = CommandArgs::get_args_info();
        let note = info.notes.join(" ").replace('\n', " ");
        let (allowed, refused) = note
            .split_once("Sent without --allow-dangerous:")
            .and_then(|(_, rest)| rest.split_once("anything else is refused"))
            .expect("the note says what is sent and what is refused");
        let prefixes: Vec<String> = allowed
            .split([',', ' '])
            .filter_map(|w| w.strip_suffix('*'))
            .map(str::to_owned)
            .collect();
        assert_eq!(prefixes, super::super::ALLOWED_PREFIXES);
        assert!(allowed.contains("(docs/qmp.md lists them)"), "{allowed}");
        assert!(
            refused.trim_start_matches('.').trim().is_empty(),
            "{refused}"
        );
        for name in super::super::ALLOWED {
            let mut named = note.split(|c: char| c.is_whitespace() || ",.:;()`".contains(c));
            assert!(!named.any(|w| w == name), "the note names `{name}`");
        }
    }
}
