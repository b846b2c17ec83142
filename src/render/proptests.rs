//! Property tests: whatever text a report carries, JSON output is JSON that
//! gives that text back, and neither JSON nor human output puts a raw
//! control character or bidi override on the terminal.
//!
//! VM names are validated, but paths, `append`, `arguments`, QMP replies,
//! QEMU's log lines and error messages can hold anything, so every report
//! is filled with the same arbitrary text wherever it carries user text.

use camino::Utf8PathBuf;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

use super::*;
use crate::commands::doctor::{Check, Cleanup, Verdict};
use crate::commands::snapshot::{Action, Outcome};
use crate::commands::status::{Inspection, VmStatus};
use crate::commands::storage::DriveCheck;
use crate::config::{
    Boot, CdromDrive, Interface, Program, Qcow2Drive, RawDrive, SecurityModel, UserPath,
    VirtfsShare,
};
use crate::config::{Storage, VmConfig};
use crate::storage::SnapshotInfo;
use crate::vm::Vm;
use crate::vm::{Confinement, ExitInfo, Runtime, Status, Timestamp, VmId};

/// Text built from pieces that break naive escaping: C0 and C1 controls,
/// DEL, bidi overrides and isolates, quotes, backslashes, text that looks
/// like an escape in JSON or in `terminal::safe`'s own form, lone halves
/// of escapes, and any character at all.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => select(vec![
            "\u{0}", "\u{7}", "\u{8}", "\t", "\n", "\r", "\u{1b}[2J", "\u{1b}]52;c;aGk=\u{7}",
            "\u{7f}", "\u{85}", "\u{9b}", "\u{202a}", "\u{202e}", "\u{2066}", "\u{2069}",
            "\u{200e}", "\u{200f}", "\u{61c}", "\u{2028}", "\u{feff}", "\u{10ffff}", "\"",
            "\\", "\\\\", "\\\"", "\\u{202e}", "\\u202e", "\\ud800", "\\udc00", "\\u", "\\n",
            "\\x1b", "{", "}", "[", "]", ",", ":", "'", "/", "é", "😀",
        ])
        .prop_map(str::to_owned),
        2 => any::<char>().prop_map(String::from),
        1 => "[ -~]{0,6}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

fn name(text: &str) -> crate::config::Name {
    text.parse().expect("a valid name")
}

fn path(text: &str) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("/home/me/{text}"))
}

fn user_path(text: &str) -> UserPath {
    UserPath::checked(path(text))
}

/// A VM with `text` in every field that can hold user text. `running`
/// gives it a runtime (start, status, inspect); otherwise it has a last
/// exit (status of a stopped VM).
fn vm(text: &str, running: bool) -> Vm {
    let p = || user_path(text);
    let mut config = VmConfig {
        binary: Program::new(text),
        boot: Boot {
            kernel: Some(p()),
            initrd: Some(p()),
            append: Some(text.to_owned()),
            firmware: Some(p()),
        },
        arguments: vec![text.to_owned(), "-x".into(), text.to_owned()],
        ..VmConfig::default()
    };
    config.storage = vec![
        Storage::Qcow2(Qcow2Drive {
            name: name("root"),
            file: Some(p()),
            size: None,
            interface: Interface::Virtio,
            backing_file: Some(p()),
            backing_format: None,
            readonly: false,
        }),
        Storage::Raw(RawDrive {
            name: name("raw"),
            file: p(),
            size: None,
            interface: Interface::Sata,
            readonly: true,
        }),
        Storage::Cdrom(CdromDrive {
            name: name("cd"),
            file: p(),
            interface: Interface::Ide,
        }),
        Storage::Virtfs(VirtfsShare {
            name: name("share"),
            path: p(),
            mount_tag: None,
            security_model: SecurityModel::MappedXattr,
            readonly: false,
        }),
    ];
    let runtime = running.then(|| Runtime {
        pid: 42,
        start_ticks: 1,
        dir: path(text),
        qmp_socket: path(text),
        console_socket: path(text),
        pidfile: path(text),
        started: Timestamp(0),
        accel: text.to_owned(),
        argv: vec!["qemu".into(), text.to_owned()],
        accel_note: Some(text.to_owned()),
        confinement: Confinement::None {
            reason: text.to_owned(),
        },
    });
    Vm {
        id: VmId::parse("0123456789abcdef0123456789abcdef").expect("an id"),
        name: name("vm"),
        config,
        sources: vec![path(text)],
        created: Timestamp(0),
        updated: Timestamp(0),
        status: if running {
            crate::vm::Status::Running
        } else {
            crate::vm::Status::Crashed
        },
        runtime,
        last_exit: Some(ExitInfo {
            at: Timestamp(0),
            reason: text.to_owned(),
            log_tail: vec![text.to_owned(), text.to_owned()],
        }),
        owned: vec![path(text)],
        auto_remove: false,
        trusted: true,
    }
}

fn status(text: &str, running: bool) -> VmStatus {
    VmStatus {
        vm: vm(text, running),
        state: text.to_owned(),
        pid: running.then_some(42),
        uptime_seconds: running.then_some(5),
        run_state: Some(text.to_owned()),
        unreachable: Some(text.to_owned()),
    }
}

/// A QMP reply with `text` as a key and as values.
fn qmp_reply(text: &str) -> Value {
    json!({ text: [text, { "k": text, "n": 1 }], "file": text })
}

/// How a report's human output is written.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Escaped, a value never adding a line.
    Escaped,
    /// Printed as given (completions, man pages), or a shell line quoted
    /// for pasting (the dry run).
    Verbatim,
    /// A raw QMP result: JSON with or without --json.
    RawJson,
}

/// A report, how its text is written, and where user text comes back in
/// its JSON (pointer, value).
type Case = (Box<dyn Output>, Kind, Fields);

/// Where user text must come back in a report's JSON: (pointer, value).
type Fields = Vec<(&'static str, Value)>;

/// Every report that carries user text, with where that text must come
/// back in its JSON (pointer, value).
fn reports(text: &str) -> Vec<Case> {
    let t = || Value::from(text);
    let p = || Value::from(path(text).as_str());
    let reports: Vec<(Box<dyn Output>, Fields)> = vec![
        (
            Box::new(Outcome::Done {
                action: Action::Create,
                name: text.to_owned(),
                live: false,
            }),
            vec![("/name", t())],
        ),
        (
            Box::new(Outcome::List {
                drive: text.to_owned(),
                live: false,
                snapshots: vec![SnapshotInfo {
                    id: text.to_owned(),
                    name: text.to_owned(),
                    vm_state_size: 0,
                    date: 0,
                    vm_clock: 0,
                }],
            }),
            vec![
                ("/drive", t()),
                ("/snapshots/0/id", t()),
                ("/snapshots/0/name", t()),
            ],
        ),
        (
            Box::new(crate::commands::storage::Orphans {
                files: vec![path(text)],
                deleted: false,
            }),
            vec![("/files/0", p())],
        ),
        (
            Box::new(crate::commands::doctor::Checks(vec![Check {
                name: "qemu",
                verdict: Verdict::Warn,
                detail: text.to_owned(),
                fixed: Some(text.to_owned()),
            }])),
            vec![("/checks/0/detail", t()), ("/checks/0/fixed", t())],
        ),
        (
            Box::new(crate::commands::doctor::Cleaned {
                cleanup: Cleanup {
                    reconciled: vec![(text.to_owned(), Status::Stopped)],
                    removed: vec![path(text)],
                },
                dry_run: true,
            }),
            vec![("/reconciled/0/name", t()), ("/removed/0", p())],
        ),
        (
            Box::new(crate::commands::storage::Verified {
                vm: vm(text, false),
                checks: vec![DriveCheck {
                    drive: text.to_owned(),
                    path: Some(path(text)),
                    problem: Some(text.to_owned()),
                }],
            }),
            vec![
                ("/drives/0/drive", t()),
                ("/drives/0/file", p()),
                ("/drives/0/problem", t()),
            ],
        ),
    ];
    let mut all: Vec<Case> = reports
        .into_iter()
        .map(|(report, fields)| (report, Kind::Escaped, fields))
        .collect();
    all.extend(outputs(text));
    all
}

/// The reports of commands that own their output type.
fn outputs(text: &str) -> Vec<Case> {
    let t = || Value::from(text);
    let p = || Value::from(path(text).as_str());
    use crate::commands::info::Info;
    use crate::commands::ls::Listing;
    use crate::commands::qmp::{Device, Reply, RunState};
    use crate::commands::rm::{Removals, Removed};
    use crate::commands::start::StartOutcome;
    vec![
        (
            Box::new(Text(text.to_owned())),
            Kind::Verbatim,
            vec![("", t())],
        ),
        (
            Box::new(Reply {
                value: qmp_reply(text),
                pretty: false,
            }),
            Kind::RawJson,
            vec![("", qmp_reply(text))],
        ),
        (
            Box::new(Written(path(text))),
            Kind::Escaped,
            vec![("/file", p())],
        ),
        (
            Box::new(RunState {
                name: text.to_owned(),
                run_state: text.to_owned(),
            }),
            Kind::Escaped,
            vec![("/name", t()), ("/run_state", t())],
        ),
        (
            Box::new(Device {
                id: text.to_owned(),
                added: true,
            }),
            Kind::Escaped,
            vec![("/id", t())],
        ),
        (
            Box::new(status(text, false)),
            Kind::Escaped,
            vec![
                ("/state", t()),
                ("/run_state", t()),
                ("/unreachable", t()),
                ("/last_exit/reason", t()),
                ("/last_exit/log_tail/1", t()),
            ],
        ),
        (
            Box::new(Inspection {
                status: status(text, true),
                rss_kib: Some(1024),
                cpu_seconds: Some(0.5),
                threads: Some(3),
                query_status: Some(qmp_reply(text)),
                query_kvm: Some(json!({ "enabled": false, "present": text })),
                block: Some(json!([{ "inserted": {
                    "node-name": "maqet-drive0", "file": text, "drv": text,
                }}])),
                hotplug_ports: Some(vec![crate::commands::hotplug::HotplugPort {
                    id: "maqet-hp0".into(),
                    device: Some(text.to_owned()),
                }]),
            }),
            Kind::Escaped,
            vec![
                ("/accel_note", t()),
                ("/confinement", Value::from(format!("none: {text}"))),
                ("/runtime_dir", p()),
                ("/argv/1", t()),
                ("/query_status", qmp_reply(text)),
                ("/query_kvm/present", t()),
                ("/block/0/inserted/file", t()),
                ("/block/0/inserted/drv", t()),
                ("/hotplug_ports/0/device", t()),
            ],
        ),
        (
            Box::new(Removals(vec![Removed {
                name: name("vm"),
                id: VmId::parse("0123456789abcdef0123456789abcdef").expect("an id"),
                deleted: vec![path(text)],
                kept: vec![path(text)],
                in_use: vec![(path(text), name("child"))],
            }])),
            Kind::Escaped,
            vec![
                ("/0/deleted/0", p()),
                ("/0/kept/0", p()),
                ("/0/in_use/0/file", p()),
            ],
        ),
        (
            Box::new(StartOutcome::DryRun {
                vm: Box::new(vm(text, false)),
                argv: vec![text.to_owned()],
            }),
            Kind::Verbatim,
            vec![("/0", t())],
        ),
        (
            Box::new(StartOutcome::Started {
                vm: Box::new(vm(text, true)),
                run_state: text.to_owned(),
            }),
            Kind::Escaped,
            vec![
                ("/accel", t()),
                ("/accel_note", t()),
                ("/qmp_socket", p()),
                ("/console_socket", p()),
                ("/run_state", t()),
            ],
        ),
        (
            Box::new(Info(vm(text, false))),
            Kind::Escaped,
            vec![
                ("/config/binary", t()),
                ("/config/boot/kernel", p()),
                ("/config/boot/initrd", p()),
                ("/config/boot/append", t()),
                ("/config/boot/firmware", p()),
                ("/config/storage/0/file", p()),
                ("/config/storage/0/backing_file", p()),
                ("/config/storage/1/file", p()),
                ("/config/storage/2/file", p()),
                ("/config/storage/3/path", p()),
                ("/config/arguments/0", t()),
                ("/config/arguments/2", t()),
                ("/sources/0", p()),
            ],
        ),
        (
            Box::new(Listing::Names(vec![text.to_owned()])),
            Kind::Escaped,
            vec![("/0", t())],
        ),
    ]
}

/// Errors whose message or help carries user text.
fn errors(text: &str) -> Vec<Error> {
    vec![
        Error::invalid(text, text),
        Error::Refused {
            message: text.to_owned(),
            help: text.to_owned(),
        },
        Error::from(crate::qmp::QmpError::Command {
            class: text.to_owned(),
            desc: text.to_owned(),
        }),
        Error::io(
            "cannot open",
            path(text),
            std::io::Error::other(text.to_owned()),
        ),
        Error::QemuExited {
            name: "vm".into(),
            log_tail: vec![text.to_owned(), text.to_owned()],
            help: text.to_owned(),
        },
    ]
}

/// The first character a terminal would act on, other than the newlines
/// and tabs of maqet's own layout.
fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
    })
}

fn written(report: &dyn Output, json: bool) -> String {
    let mut out = Vec::new();
    report.write(json, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("UTF-8 output")
}

proptest! {
    #[test]
    fn json_output_is_json_that_gives_the_text_back(text in hostile_text()) {
        for (report, kind, fields) in reports(&text) {
            // A raw QMP result is JSON with or without --json.
            let modes: &[bool] = if kind == Kind::RawJson { &[true, false] } else { &[true] };
            for &json in modes {
                let out = written(&*report, json);
                let parsed: Value = match serde_json::from_str(&out) {
                    Ok(v) => v,
                    Err(e) => return Err(TestCaseError::fail(format!("not JSON ({e}): {out}"))),
                };
                prop_assert_eq!(raw_control(&out), None, "{}", out);
                for (pointer, want) in &fields {
                    prop_assert_eq!(parsed.pointer(pointer), Some(want), "{} in {}", pointer, out);
                }
            }
        }
    }

    #[test]
    fn json_errors_are_json_that_give_the_text_back(text in hostile_text()) {
        use miette::Diagnostic as _;
        for err in errors(&text) {
            let out = error_json(&err);
            let parsed: Value = match serde_json::from_str(&out) {
                Ok(v) => v,
                Err(e) => return Err(TestCaseError::fail(format!("not JSON ({e}): {out}"))),
            };
            prop_assert_eq!(raw_control(&out), None, "{}", out);
            prop_assert_eq!(&parsed["error"]["message"], &Value::from(err.to_string()));
            let help = err.help().map(|h| h.to_string());
            prop_assert_eq!(&parsed["error"]["help"], &json!(help));
        }
    }

    /// Human output escapes what a terminal would act on, and a value
    /// never adds a line: the report has as many lines as with plain text.
    #[test]
    fn human_output_keeps_every_value_on_its_line(text in hostile_text()) {
        let plain = reports("plain");
        for ((report, kind, _), (tame, _, _)) in reports(&text).iter().zip(&plain) {
            // Text is printed as given (completions, man pages); the dry
            // run is a shell line, quoted for pasting; a QMP result is JSON.
            if *kind != Kind::Escaped {
                continue;
            }
            let out = written(&**report, false);
            prop_assert_eq!(raw_control(&out), None, "{}", out);
            prop_assert!(!out.contains('\t'), "a raw tab in {}", out);
            let want = written(&**tame, false).lines().count();
            prop_assert_eq!(out.lines().count(), want, "{}", out);
        }
    }
}
