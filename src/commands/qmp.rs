//! Driving a running VM over QMP: the raw form and the verbs built on it.

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use serde_json::{Map, Value, json};

use super::Env;
use super::hotplug::{check_device_driver, check_device_id, check_device_props};
use super::session::{Monitor, connect, not_running};
use crate::deadline::poll_until;

mod cli;
use crate::error::{Error, Result};
use crate::keys;
use crate::layout::RuntimePaths;

use crate::qmp::{Qmp, QmpError};
pub use cli::{Args, Device, Reply, RunState, Sent, Verb, run};

use crate::vm::Runtime;

/// Commands the raw form sends without `--allow-dangerous` (docs/qmp.md):
/// every `query-*` and `x-query-*`, and these, none of which opens a host
/// file, runs a program or listens on a socket. Everything else may
/// (`blockdev-add`, `netdev_add` with a tap script, `chardev-change`,
/// `nbd-server-start`, `migrate "exec:…"`, `device_add` with a `romfile`,
/// …) and is refused: a command QEMU adds in a later version is refused
/// until someone has read what it does. (`qom-list-properties` is out:
/// QEMU 7.2 aborts on some types, e.g. `microvm-machine`, killing the VM.)
pub const ALLOWED: [&str; 25] = [
    "announce-self",
    "balloon",
    "block_set_io_throttle",
    "chardev-send-break",
    "cont",
    "device-list-properties",
    "eject",
    "expire_password",
    "inject-nmi",
    "input-send-event",
    "qom-get",
    "qom-list",
    "qom-list-types",
    "ringbuf-read",
    "ringbuf-write",
    "rtc-reset-reinjection",
    "send-key",
    "set-action",
    "set_link",
    "set_password",
    "stop",
    "system_powerdown",
    "system_reset",
    "system_wakeup",
    "watchdog-set-action",
];

/// Why some commands outside the allow-list are refused, and what to use
/// instead; the rest get a general reason.
const REASONS: [(&str, &str); 10] = [
    (
        "device_del",
        "it would unplug maqet's own disks and NICs too; use `maqet qmp device-del`",
    ),
    (
        "quit",
        "QEMU would exit behind maqet's back; use `maqet stop`",
    ),
    (
        "human-monitor-command",
        "HMP can do anything, including write host files; use the QMP command itself",
    ),
    ("migrate", "an `exec:` migration runs a host command"),
    (
        "screendump",
        "it writes a host file QEMU is given; use `maqet qmp screendump`",
    ),
    ("qmp_capabilities", "maqet negotiates capabilities itself"),
    (
        "device_add",
        "properties such as `romfile` open host files; use `maqet qmp device-add`",
    ),
    (
        "blockdev-add",
        "it opens any host file; add disks to the config",
    ),
    ("netdev_add", "a tap netdev runs its `script` on the host"),
    ("getfd", "file descriptors are maqet's to pass"),
];

/// Prefixes of the commands the raw form sends without `--allow-dangerous`:
/// queries, which read QEMU's state and reach nothing on the host.
pub const ALLOWED_PREFIXES: [&str; 2] = ["query-", "x-query-"];

/// Whether the raw form sends `command` without `--allow-dangerous`.
pub fn is_allowed(command: &str) -> bool {
    ALLOWED_PREFIXES.iter().any(|p| command.starts_with(p)) || ALLOWED.contains(&command)
}

/// Parse `key=value` arguments: numbers, true/false and null as JSON,
/// `{...}` and `[...]` as JSON, anything else as a string.
pub fn parse_args(
    option: &str,
    pairs: &[String],
    json: Option<&str>,
) -> Result<Map<String, Value>> {
    let mut args = match json {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::usage(
                    "--args-json must be a JSON object",
                    "for example --args-json '{\"device\": \"maqet-disk0\"}'",
                ));
            }
            Err(e) => {
                return Err(Error::usage(
                    format!("--args-json is not valid JSON: {e}"),
                    "quote it for the shell: --args-json '{\"key\": 1}'",
                ));
            }
        },
        None => Map::new(),
    };
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            Error::usage(
                format!("`{pair}` is not KEY=VALUE"),
                format!("write each as {option} key=value"),
            )
        })?;
        args.insert(key.to_owned(), typed(value)?);
    }
    Ok(args)
}

fn typed(value: &str) -> Result<Value> {
    if value.starts_with('{') || value.starts_with('[') {
        return serde_json::from_str(value).map_err(|e| {
            Error::usage(
                format!("`{value}` looks like JSON but is not: {e}"),
                "check the brackets and quotes",
            )
        });
    }
    Ok(match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match (value.parse::<i64>(), value.parse::<f64>()) {
            (Ok(n), _) => Value::from(n),
            (_, Ok(f)) if f.is_finite() && !value.is_empty() => Value::from(f),
            _ => Value::from(value),
        },
    })
}

/// Run any QMP command.
pub fn raw(
    env: &Env,
    query: &str,
    command: &str,
    args: Map<String, Value>,
    allow_dangerous: bool,
    timeout: Duration,
) -> Result<Value> {
    if !is_allowed(command) && !allow_dangerous {
        let why = REASONS
            .iter()
            .find(|(name, _)| *name == command)
            .map_or("it is not on maqet's list of commands that cannot open host files, run programs or listen", |(_, why)| why);
        return Err(Error::Refused {
            message: format!("maqet does not send `{command}` through the raw form: {why}"),
            help: "add --allow-dangerous if you really mean it (see docs/qmp.md for the allowed commands)".into(),
        });
    }
    let mut session = connect(env, query, Monitor::Control, timeout)?;
    let args = (!args.is_empty()).then_some(Value::Object(args));
    Ok(session.qmp.execute(command, args)?)
}

/// Press keys together (a chord), e.g. `ctrl alt f2`.
pub fn send_keys(
    env: &Env,
    query: &str,
    names: &[String],
    hold_ms: u32,
    timeout: Duration,
) -> Result<usize> {
    if names.is_empty() {
        return Err(Error::usage(
            "give at least one key",
            "for example: maqet qmp keys web ctrl alt f2",
        ));
    }
    let mut codes = Vec::with_capacity(names.len());
    for name in names {
        match keys::qcode(name) {
            Ok(code) => codes.push(code),
            Err(near) => {
                let help = if near.is_empty() {
                    "docs/qmp.md lists QEMU's key names".to_owned()
                } else {
                    format!(
                        "did you mean {}? docs/qmp.md lists every key",
                        near.join(", ")
                    )
                };
                return Err(Error::usage(
                    format!("`{name}` is not a QEMU key name"),
                    help,
                ));
            }
        }
    }
    let mut session = connect(env, query, Monitor::Control, timeout)?;
    press(&mut session.qmp, &codes, hold_ms)?;
    Ok(codes.len())
}

/// Type US-layout text: every character is checked before the first key is
/// sent, so a bad character leaves the guest untouched.
pub fn type_text(
    env: &Env,
    query: &str,
    text: &str,
    hold_ms: u32,
    timeout: Duration,
) -> Result<usize> {
    let chords = keys::chords_for(text).map_err(|(i, c)| {
        Error::usage(
            format!(
                "character {} ({c:?}, U+{:04X}) cannot be typed on a US keyboard",
                i + 1,
                c as u32
            ),
            "type ASCII text; use `maqet qmp keys` for special keys",
        )
    })?;
    let mut session = connect(env, query, Monitor::Control, timeout)?;
    for chord in &chords {
        press(&mut session.qmp, chord, hold_ms)?;
    }
    Ok(chords.len())
}

fn press(qmp: &mut Qmp, codes: &[&str], hold_ms: u32) -> Result<()> {
    let keys: Vec<Value> = codes
        .iter()
        .map(|c| json!({"type": "qcode", "data": c}))
        .collect();
    qmp.execute(
        "send-key",
        Some(json!({"keys": keys, "hold-time": hold_ms})),
    )?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Ppm,
    Png,
}

impl std::str::FromStr for ImageFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "ppm" => Ok(ImageFormat::Ppm),
            "png" => Ok(ImageFormat::Png),
            _ => Err(format!("`{s}` is not a format: use ppm or png")),
        }
    }
}

/// Save the VM's display to a file. QEMU writes the picture into the VM's
/// own runtime directory (a confined QEMU can write nowhere else); maqet
/// then puts it at the user's path through a checked directory descriptor,
/// replacing the name rather than writing through it (docs/security.md).
pub fn screendump(
    env: &Env,
    query: &str,
    file: &Utf8PathBuf,
    format: Option<ImageFormat>,
    timeout: Duration,
) -> Result<Utf8PathBuf> {
    let (dir, name) = super::output_file(env, file)?;
    let format = format.unwrap_or(if camino::Utf8Path::new(&name).extension() == Some("png") {
        ImageFormat::Png
    } else {
        ImageFormat::Ppm
    });
    let mut session = connect(env, query, Monitor::Control, timeout)?;
    let rt = session
        .vm
        .runtime
        .clone()
        .ok_or_else(|| not_running(&session.vm))?;
    // One screendump at a time per VM: the QMP lock is held.
    let shot = RuntimePaths::new(rt.dir).screendump;
    let _ = std::fs::remove_file(&shot);
    let mut args = json!({"filename": shot.as_str()});
    if format == ImageFormat::Png {
        args["format"] = json!("png");
    }
    match session.qmp.execute("screendump", Some(args)) {
        Ok(_) => {}
        Err(QmpError::Command { desc, .. }) if format == ImageFormat::Png => {
            return Err(Error::invalid(
                format!("this QEMU cannot write PNG screenshots: {desc}"),
                "use --format ppm (QEMU 7.1 or later built with libpng writes PNG)",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    drop(session);
    let bytes = read_private(&shot);
    let _ = std::fs::remove_file(&shot);
    dir.replace_file(&name, &bytes?)
}

/// Read a file QEMU wrote in a runtime directory (never through a symlink).
fn read_private(path: &Utf8PathBuf) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = Vec::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io("cannot read the screenshot QEMU wrote to", path.clone(), e))?;
    Ok(bytes)
}

/// Pause (`stop`) or resume (`cont`) the guest's CPUs; returns the new run
/// state.
pub fn set_paused(
    env: &Env,
    query: &str,
    paused: bool,
    timeout: Duration,
) -> Result<(String, String)> {
    let mut session = connect(env, query, Monitor::Control, timeout)?;
    session
        .qmp
        .execute(if paused { "stop" } else { "cont" }, None)?;
    let status = session.qmp.execute("query-status", None)?;
    let state = status["status"].as_str().unwrap_or("unknown").to_owned();
    Ok((session.vm.name.to_string(), state))
}

/// Hot-plug a device. A PCI device without a `bus` goes on a free
/// hot-plug port on q35 (see [`super::hotplug`]).
pub fn device_add(
    env: &Env,
    query: &str,
    driver: &str,
    id: &str,
    props: Map<String, Value>,
    timeout: Duration,
) -> Result<()> {
    check_device_id(id)?;
    check_device_driver(driver)?;
    check_device_props(&props)?;
    let mut args = props;
    let mut session = connect(env, query, Monitor::Control, timeout)?;
    // The monitor stays locked from the choice to the plug: two maqets
    // cannot pick the same port.
    if !args.contains_key("bus")
        && let Some(bus) =
            super::hotplug::bus_for(&mut session.qmp, session.vm.name.as_str(), driver)?
    {
        args.insert("bus".into(), Value::from(bus));
    }
    args.insert("driver".into(), Value::from(driver));
    args.insert("id".into(), Value::from(id));
    session
        .qmp
        .execute("device_add", Some(Value::Object(args)))?;
    Ok(())
}

/// Unplug a device and wait until it is gone. `device_del` only asks the
/// guest, which may take its time or refuse; the monitor is let go between
/// checks so other commands on the VM are not held up meanwhile. A disk
/// `disk-add` plugged is closed once its device is gone.
pub fn device_del(env: &Env, query: &str, id: &str, timeout: Duration) -> Result<()> {
    // maqet's own devices (its disks, NICs, ports) stay: on `pc` QEMU would
    // unplug them.
    check_device_id(id)?;
    let vm_name = {
        let mut session = connect(env, query, Monitor::Control, Duration::from_secs(10))?;
        match session.qmp.execute("device_del", Some(json!({"id": id}))) {
            Ok(_) => {}
            // The device went after an earlier `device-del` gave up
            // waiting: what is left is its disk, to close now.
            Err(QmpError::Command { class, .. })
                if class == "DeviceNotFound"
                    && super::hotplug::release_disk(&mut session.qmp, id)? =>
            {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        session.vm.name.to_string()
    };
    let deadline = Instant::now() + timeout;
    let gone = poll_until(deadline, Duration::from_millis(100), || {
        let mut session = connect(env, query, Monitor::Control, Duration::from_secs(10))?;
        let devices = session
            .qmp
            .execute("qom-list", Some(json!({"path": "/machine/peripheral"})))?;
        let present = devices
            .as_array()
            .is_some_and(|d| d.iter().any(|p| p["name"] == id));
        if !present {
            super::hotplug::release_disk(&mut session.qmp, id)?;
        }
        Ok::<_, Error>((!present).then_some(()))
    })?;
    gone.ok_or_else(|| Error::TimedOut {
        what: format!("the guest of `{vm_name}` to release device `{id}`"),
        seconds: timeout.as_secs(),
        last_seen: None,
        help:
            "the guest must cooperate with unplugging (ACPI hotplug); check it runs an OS that does"
                .into(),
    })
}

/// Stream events as NDJSON lines to `out` (via the events monitor). Without
/// `follow`, stop after the first matching event.
pub fn events(
    env: &Env,
    query: &str,
    filter: &[String],
    follow: bool,
    timeout: Duration,
    out: &mut dyn FnMut(&Value) -> bool,
) -> Result<usize> {
    let mut session = connect(env, query, Monitor::Events, Duration::from_secs(5))?;
    let rt: Runtime = session
        .vm
        .runtime
        .clone()
        .ok_or_else(|| not_running(&session.vm))?;
    let wanted =
        |name: &str| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(name));
    let deadline = (!follow).then(|| Instant::now() + timeout);
    let mut count = 0;
    loop {
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(1),
        };
        if deadline.is_some() && wait.is_zero() {
            return Err(Error::TimedOut {
                what: "an event".into(),
                seconds: timeout.as_secs(),
                last_seen: None,
                help: "add --follow to keep listening, or a longer --timeout".into(),
            });
        }
        match session.qmp.next_event(wait) {
            Ok(Some(event)) => {
                if wanted(event["event"].as_str().unwrap_or("")) {
                    count += 1;
                    if !out(&event) || !follow {
                        return Ok(count);
                    }
                }
            }
            Ok(None) => {}
            // QEMU exited: the stream ends with it.
            Err(QmpError::Closed { .. }) => return Ok(count),
            Err(e) => return Err(e.into()),
        }
        if follow && !rt.pidfile.exists() {
            return Ok(count);
        }
    }
}

#[cfg(test)]
mod allow_list {
    use super::*;

    /// docs/qmp.md lists exactly the commands the code allows.
    #[test]
    fn docs_list_the_allowed_commands() {
        let doc = include_str!("../../docs/qmp.md");
        let start = doc.find("<!-- allow-list:").expect("the allow-list marker");
        let end = doc.find("<!-- end allow-list -->").expect("its end");
        let listed: Vec<&str> = doc[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("- `")?.strip_suffix('`'))
            .collect();
        assert_eq!(listed, ALLOWED);
    }

    #[test]
    fn queries_are_allowed_and_host_reaching_commands_are_not() {
        for ok in ["query-status", "x-query-numa", "stop", "cont", "send-key"] {
            assert!(is_allowed(ok), "{ok}");
        }
        for refused in [
            "netdev_add",
            "chardev-change",
            "chardev-add",
            "xen-save-devices-state",
            "blockdev-change-medium",
            "block-export-add",
            "nbd-server-start",
            "blockdev-add",
            "device_add",
            "migrate",
            "quit",
            "human-monitor-command",
            "dump-guest-memory",
            "screendump",
            "object-add",
            "getfd",
            "add-fd",
            "memsave",
            "qom-set",
            "",
        ] {
            assert!(!is_allowed(refused), "{refused}");
        }
    }
}
