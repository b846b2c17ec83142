//! A systemd service that starts a VM at boot and stops it gracefully at
//! shutdown, with maqet's own `start` and `stop`: `maqet export VM --to
//! systemd`. docs/export.md says how to install it.

use std::fmt::Write as _;

use camino::Utf8Path;

use super::{Exported, unmappable};
use crate::error::Result;

/// The VM and how maqet reaches it.
pub struct Source<'a> {
    pub name: &'a str,
    pub id: &'a str,
    /// This maqet program, by absolute path.
    pub maqet: &'a Utf8Path,
    pub data_dir: &'a Utf8Path,
    pub runtime_dir: &'a Utf8Path,
    /// QEMU's pidfile, which systemd follows as the service's main process.
    pub pidfile: &'a Utf8Path,
    /// The settings file in effect, if any: the unit's maqet reads the
    /// same one (`MAQET_CONFIG`), whatever environment systemd gives it.
    pub settings: Option<&'a Utf8Path>,
}

/// When systemd starts the VM again after its QEMU ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    OnFailure,
    Always,
}

impl Restart {
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::No => "no",
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
        }
    }
}

impl std::str::FromStr for Restart {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "no" => Ok(Restart::No),
            "on-failure" => Ok(Restart::OnFailure),
            "always" => Ok(Restart::Always),
            _ => Err(format!(
                "`{s}` is not a restart policy: use no, on-failure or always"
            )),
        }
    }
}

pub struct Options<'a> {
    /// A user unit (`systemctl --user`); else a system unit run as `user`.
    pub user_unit: bool,
    pub user: &'a str,
    pub restart: Restart,
    /// Seconds `maqet stop` gives the guest to power off.
    pub stop_timeout: u64,
}

/// The unit file.
pub fn unit(src: &Source<'_>, opts: &Options<'_>) -> Result<Exported> {
    let maqet = [
        program(src.maqet.as_str())?,
        "--data-dir".into(),
        word(src.data_dir.as_str())?,
        "--runtime-dir".into(),
        word(src.runtime_dir.as_str())?,
    ]
    .join(" ");
    let (systemctl, place, target) = if opts.user_unit {
        (
            "systemctl --user",
            "~/.config/systemd/user",
            "default.target",
        )
    } else {
        ("systemctl", "/etc/systemd/system", "multi-user.target")
    };
    let unit_name = format!("maqet-{}.service", src.name);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# maqet VM {} (id {}), exported by maqet {}.\n\
         # Save as {place}/{unit_name}, then:\n\
         #   {systemctl} daemon-reload && {systemctl} enable --now {unit_name}",
        src.name,
        src.id,
        env!("CARGO_PKG_VERSION"),
    );
    text.push_str("[Unit]\n");
    let _ = writeln!(text, "Description=maqet VM {}", src.name);
    if !opts.user_unit {
        text.push_str("After=network.target\n");
    }
    text.push_str("\n[Service]\n");
    if let Some(file) = src.settings {
        // In quotes, as systemd reads Environment=; `%` escaped.
        let value = specifiers(file.as_str())?;
        if value.contains(['"', '\\']) {
            return Err(unmappable(
                format!("the settings file's path {file} holds a quote or backslash"),
                "move the settings file to a plain path",
            ));
        }
        let _ = writeln!(text, "Environment=\"MAQET_CONFIG={value}\"");
    }
    // `maqet start` returns once QEMU runs; QEMU's pidfile names the
    // process systemd then watches. The VM is named by id, which a rename
    // does not change.
    text.push_str("Type=forking\n");
    let _ = writeln!(text, "ExecStart={maqet} start {}", src.id);
    let _ = writeln!(
        text,
        "ExecStop={maqet} stop {} --timeout {}",
        src.id, opts.stop_timeout
    );
    let _ = writeln!(text, "PIDFile={}", specifiers(src.pidfile.as_str())?);
    // The guest's time to power off, and QEMU's to quit after it.
    let _ = writeln!(
        text,
        "TimeoutStopSec={}",
        opts.stop_timeout.saturating_add(30)
    );
    let _ = writeln!(text, "Restart={}", opts.restart.as_str());
    if opts.restart != Restart::No {
        text.push_str("RestartSec=5\n");
    }
    if !opts.user_unit {
        // Also gives maqet the user's HOME, where its settings are.
        let _ = writeln!(text, "User={}", specifiers(opts.user)?);
    }
    let _ = writeln!(text, "\n[Install]\nWantedBy={target}");
    let mut notes = Vec::new();
    if opts.user_unit {
        notes.push(format!(
            "a user unit starts at boot only with lingering on: `loginctl enable-linger {}`",
            opts.user
        ));
    }
    Ok(Exported {
        text,
        notes,
        copies: Vec::new(),
    })
}

/// `value` with systemd's `%` specifiers escaped; refused when it holds a
/// character a unit file line cannot carry.
fn specifiers(value: &str) -> Result<String> {
    let unsafe_char = |c: &char| c.is_control() || crate::terminal::is_bidi_control(*c);
    if let Some(c) = value.chars().find(unsafe_char) {
        return Err(unmappable(
            format!(
                "`{}` holds the character U+{:04X}, which a unit file cannot carry",
                value.escape_debug(),
                u32::from(c)
            ),
            "rename the path so it has none",
        ));
    }
    Ok(value.replace('%', "%%"))
}

/// The program of an `Exec` line: systemd expands no `$` there, and
/// takes no quote or backslash in it.
fn program(value: &str) -> Result<String> {
    if let Some(c) = value.chars().find(|c| matches!(c, '"' | '\\' | '\'')) {
        return Err(unmappable(
            format!(
                "this maqet's path {value} holds `{c}`, which systemd takes in no program name"
            ),
            "install maqet at a path without quotes or backslashes",
        ));
    }
    let escaped = specifiers(value)?;
    Ok(if escaped.contains(' ') {
        format!("\"{escaped}\"")
    } else {
        escaped
    })
}

/// One word of an `Exec` line: quoted when it holds anything but plain
/// path characters, with `%` and `$` escaped (systemd expands both).
fn word(value: &str) -> Result<String> {
    let escaped = specifiers(value)?.replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@,=%$".contains(&b));
    if plain {
        return Ok(escaped);
    }
    Ok(format!(
        "\"{}\"",
        escaped.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(maqet: &'a str, data: &'a str) -> Source<'a> {
        Source {
            name: "web",
            id: "0123456789abcdef",
            maqet: Utf8Path::new(maqet),
            data_dir: Utf8Path::new(data),
            runtime_dir: Utf8Path::new("/home/me/.local/state/maqet/run"),
            pidfile: Utf8Path::new("/home/me/.local/state/maqet/run/0123456789abcdef/qemu.pid"),
            settings: None,
        }
    }

    #[test]
    fn a_system_unit_runs_maqet_as_the_user() {
        let opts = Options {
            user_unit: false,
            user: "me",
            restart: Restart::OnFailure,
            stop_timeout: 30,
        };
        let out = unit(
            &source("/usr/local/bin/maqet", "/home/me/.local/share/maqet"),
            &opts,
        )
        .unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            out.text,
            format!(
                "# maqet VM web (id 0123456789abcdef), exported by maqet {version}.
# Save as /etc/systemd/system/maqet-web.service, then:
#   systemctl daemon-reload && systemctl enable --now maqet-web.service
[Unit]
Description=maqet VM web
After=network.target

[Service]
Type=forking
ExecStart=/usr/local/bin/maqet --data-dir /home/me/.local/share/maqet --runtime-dir /home/me/.local/state/maqet/run start 0123456789abcdef
ExecStop=/usr/local/bin/maqet --data-dir /home/me/.local/share/maqet --runtime-dir /home/me/.local/state/maqet/run stop 0123456789abcdef --timeout 30
PIDFile=/home/me/.local/state/maqet/run/0123456789abcdef/qemu.pid
TimeoutStopSec=60
Restart=on-failure
RestartSec=5
User=me

[Install]
WantedBy=multi-user.target
"
            )
        );
        assert!(out.notes.is_empty());
    }

    #[test]
    fn a_user_unit_needs_lingering_and_odd_paths_are_quoted() {
        let opts = Options {
            user_unit: true,
            user: "me",
            restart: Restart::No,
            stop_timeout: 5,
        };
        let out = unit(&source("/opt/my tools/maqet", "/data/100%$x\"q"), &opts).unwrap();
        let exec = out
            .text
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap();
        assert_eq!(
            exec,
            r#"ExecStart="/opt/my tools/maqet" --data-dir "/data/100%%$$x\"q" --runtime-dir /home/me/.local/state/maqet/run start 0123456789abcdef"#
        );
        assert!(
            out.text
                .ends_with("TimeoutStopSec=35\nRestart=no\n\n[Install]\nWantedBy=default.target\n"),
            "{}",
            out.text
        );
        assert!(!out.text.contains("After="));
        assert_eq!(
            out.notes,
            ["a user unit starts at boot only with lingering on: `loginctl enable-linger me`"]
        );
        // systemd expands no `$` in the program's own name.
        let out = unit(&source("/opt/a$b/maqet", "/d$"), &opts).unwrap();
        assert!(
            out.text
                .contains("\nExecStart=/opt/a$b/maqet --data-dir /d$$ "),
            "{}",
            out.text
        );
        let err = unit(&source("/opt/a\"b/maqet", "/d"), &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this maqet's path /opt/a\"b/maqet holds `\"`, which systemd takes in no program name"
        );
        let err = unit(&source("/opt/ma\nqet", "/d"), &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`/opt/ma\\nqet` holds the character U+000A, which a unit file cannot carry"
        );
    }
}
