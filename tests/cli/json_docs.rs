//! docs/json.md's examples are the real JSON: every ```` ```json COMMAND ````
//! block is checked against what that command prints, key by key, both ways
//! (a documented key that is missing and a real key that is undocumented
//! both fail). Values differ and are not compared.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::guest::have_qemu;
use crate::harness::Test;

/// The labelled examples of docs/json.md: (command, example), one entry per
/// command a block names.
fn examples() -> Vec<(String, Value)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md");
    let text = std::fs::read_to_string(&path).expect("read docs/json.md");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line.strip_prefix("```json") else {
            continue;
        };
        let label = label.trim();
        assert!(
            !label.is_empty(),
            "docs/json.md: a ```json block names no command"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let value: Value = serde_json::from_str(&body.join("\n"))
            .unwrap_or_else(|e| panic!("docs/json.md: the `{label}` example is not JSON: {e}"));
        for name in label.split(", ") {
            out.push((name.to_owned(), value.clone()));
        }
    }
    out
}

/// Values that are QEMU's replies as they are: their keys vary with the
/// QEMU version, so only the documented ones are required.
fn qemu_own(label: &str, path: &str) -> bool {
    matches!(label, "qmp" | "qmp events")
        || (label == "inspect"
            && [".query_status", ".query_kvm", ".block"]
                .iter()
                .any(|p| path.starts_with(p)))
}

/// Compare `doc`'s keys with `real`'s: in every object the doc shows, and
/// in the first element of every array of objects it shows.
fn compare(label: &str, path: &str, doc: &Value, real: &Value, problems: &mut Vec<String>) {
    match doc {
        Value::Object(doc_map) => {
            let Some(real_map) = real.as_object() else {
                problems.push(format!(
                    "{label}: {path} is an object in the docs, {real} here"
                ));
                return;
            };
            for (key, doc_value) in doc_map {
                let sub = format!("{path}.{key}");
                match real_map.get(key) {
                    None => problems.push(format!("{label}: {sub} is documented but missing")),
                    Some(real_value) => compare(label, &sub, doc_value, real_value, problems),
                }
            }
            if !qemu_own(label, path) {
                for key in real_map.keys().filter(|k| !doc_map.contains_key(*k)) {
                    problems.push(format!("{label}: {path}.{key} is printed but undocumented"));
                }
            }
        }
        Value::Array(doc_items)
            if doc_items
                .first()
                .is_some_and(|v| v.is_object() || v.is_array()) =>
        {
            let sub = format!("{path}[0]");
            match real.as_array().map(|a| a.first()) {
                None => problems.push(format!(
                    "{label}: {path} is an array in the docs, {real} here"
                )),
                Some(None) => problems.push(format!(
                    "{label}: {sub}: the real array is empty, nothing to check the example against"
                )),
                Some(Some(first)) => compare(label, &sub, &doc_items[0], first, problems),
            }
        }
        _ => {}
    }
}

/// An SSH public key, for the docs VM's cloud-init section.
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXUGg5bC/Y0mJHbJ9w1c6X8Fj4Y3w7Xo1pD0rm0Kp2E me@host";

/// `maqet --json ARGS...`, successful, its stdout parsed.
fn json(t: &mut Test, args: &[&str]) -> Value {
    t.arg("--json").args(args).run().json()
}

#[test]
fn json_docs_match_real_output() {
    if !have_qemu("json_docs_match_real_output") {
        return;
    }
    let mut t = Test::new();
    let mut real: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut put = |label: &'static str, value: Value| real.entry(label).or_default().push(value);

    let port = crate::harness::claim_port();
    // One qcow2 drive (snapshots, storage verify, block), one forward
    // (network), and a USB controller: a USB device unplugs without the
    // guest's help, and this guest is only SeaBIOS.
    t.file(
        "docs.ron",
        &format!(
            "(name: \"docs\", accel: Tcg, memory: \"64M\",\n \
             storage: [Qcow2(name: \"root\", file: \"golden.qcow2\", size: \"16M\")],\n \
             network: [User(name: \"net0\", forwards: [(host: {port}, guest: 22)])],\n \
             arguments: [\"-device\", \"qemu-xhci,id=xhci\"],\n \
             cloud_init: (user: \"me\", ssh_authorized_keys: [\"{KEY}\"]))\n"
        ),
    );
    let added = json(&mut t, &["add", "--trust", "docs.ron"]);
    let id = added["id"].as_str().expect("add printed an id").to_owned();
    put("add", added);
    put("apply", json(&mut t, &["apply", "docs", "--cpus", "1"]));
    put("ls", json(&mut t, &["ls"]));
    put("info", json(&mut t, &["info", "docs"]));
    put("status", json(&mut t, &["status", "docs"]));
    put(
        "start --dry-run",
        json(&mut t, &["start", "--dry-run", "docs"]),
    );
    put(
        "disk create",
        json(&mut t, &["disk", "create", "docs", "root"]),
    );
    put(
        "storage verify",
        json(&mut t, &["storage", "verify", "docs"]),
    );
    // Its notes go to stderr too.
    put(
        "export",
        t.args([
            "--json",
            "export",
            "docs",
            "--to",
            "libvirt",
            "--accel",
            "tcg",
            "--trust",
            "--image-dir",
            "/srv/vm",
        ])
        .stderr_contains("maqet: warning: copy these files")
        .run()
        .json(),
    );
    // Offline snapshots, then live ones.
    put(
        "snapshot create",
        json(&mut t, &["snapshot", "create", "docs", "root", "s1"]),
    );
    put(
        "snapshot list",
        json(&mut t, &["snapshot", "list", "docs", "root"]),
    );
    put(
        "snapshot delete",
        json(&mut t, &["snapshot", "delete", "docs", "root", "s1"]),
    );

    put("start", json(&mut t, &["start", "docs"]));
    put("status", json(&mut t, &["status", "docs"]));
    put("inspect", json(&mut t, &["inspect", "docs"]));
    put("qmp", json(&mut t, &["qmp", "docs", "query-status"]));
    put(
        "qmp keys",
        json(&mut t, &["qmp", "keys", "docs", "shift", "a"]),
    );
    put("qmp type", json(&mut t, &["qmp", "type", "docs", "ab"]));
    put(
        "qmp screendump",
        json(&mut t, &["qmp", "screendump", "docs", "shot.ppm"]),
    );
    put("qmp pause", json(&mut t, &["qmp", "pause", "docs"]));
    put("qmp resume", json(&mut t, &["qmp", "resume", "docs"]));
    put(
        "qmp device-add",
        json(
            &mut t,
            &[
                "qmp",
                "device-add",
                "docs",
                "usb-kbd",
                "--id",
                "kbd0",
                "--prop",
                "bus=xhci.0",
            ],
        ),
    );
    put(
        "qmp device-del",
        json(
            &mut t,
            &["qmp", "device-del", "docs", "kbd0", "--timeout", "20"],
        ),
    );
    put(
        "snapshot create",
        json(&mut t, &["snapshot", "create", "docs", "root", "s2"]),
    );
    put(
        "snapshot list",
        json(&mut t, &["snapshot", "list", "docs", "root"]),
    );
    put(
        "snapshot load",
        json(&mut t, &["snapshot", "load", "docs", "root", "s2"]),
    );
    put(
        "snapshot delete",
        json(&mut t, &["snapshot", "delete", "docs", "root", "s2"]),
    );

    // A disk on a free hot-plug port. SeaBIOS never lets it go again: it
    // stays until the VM stops.
    std::fs::File::create(t.path("extra.img"))
        .and_then(|f| f.set_len(1 << 20))
        .expect("make a raw image");
    put(
        "qmp disk-add",
        json(
            &mut t,
            &[
                "qmp",
                "disk-add",
                "docs",
                "extra.img",
                "--id",
                "extra",
                "--format",
                "raw",
            ],
        ),
    );
    put("inspect", json(&mut t, &["inspect", "docs"]));

    // `qmp events` without --follow prints the first event and exits; the
    // follower may connect after a pause, so pause and resume until it has
    // seen one.
    let mut events = t
        .command([
            "--json",
            "qmp",
            "events",
            "docs",
            "--filter",
            "STOP",
            "--timeout",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qmp events");
    let deadline = Instant::now() + Duration::from_secs(30);
    while events.try_wait().expect("poll qmp events").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        t.args(["qmp", "pause", "docs"]).stdout_any().run();
        t.args(["qmp", "resume", "docs"]).stdout_any().run();
    }
    let status = events.wait().expect("wait for qmp events");
    let mut lines = String::new();
    events
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut lines)
        .expect("read qmp events");
    assert!(status.success(), "qmp events: {status}: {lines}");
    let first = lines.lines().next().expect("qmp events printed a line");
    put(
        "qmp events",
        serde_json::from_str(first).expect("an event is JSON"),
    );

    // A console log line (SeaBIOS prints nothing on the serial port).
    let log = t.runtime_dir().join(&id).join("console.log");
    std::fs::write(&log, "hello from the guest\n").expect("write the console log");
    let out = t.args(["--json", "console", "docs", "--log"]).run();
    let first = out
        .stdout
        .lines()
        .next()
        .expect("console --log printed a line");
    put(
        "console --log",
        serde_json::from_str(first).expect("a log line is JSON"),
    );

    put("stop", json(&mut t, &["stop", "--force", "docs"]));
    put("stop", json(&mut t, &["stop", "docs"]));

    // A VM whose QEMU died behind maqet's back, for cleanup's `reconciled`.
    t.file("run.ron", &crate::guest::bios_config("docs-run"));
    let ran = json(&mut t, &["run", "run.ron"]);
    let pid = ran["pid"].as_i64().expect("run printed a pid");
    put("run", ran);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    put("cleanup", json(&mut t, &["cleanup", "--dry-run"]));
    put("cleanup", json(&mut t, &["cleanup"]));

    put("storage orphans", json(&mut t, &["storage", "orphans"]));
    // `doctor` exits 1 when a check fails on this host; its JSON is the same.
    let doctor = t
        .command(["--json", "doctor"])
        .output()
        .expect("run doctor");
    assert!(
        matches!(doctor.status.code(), Some(0 | 1)),
        "doctor: {doctor:?}"
    );
    put(
        "doctor",
        serde_json::from_slice(&doctor.stdout).expect("doctor printed JSON"),
    );

    // An image of `docs` that another VM uses as its backing file.
    let golden = t.path("golden.qcow2");
    t.file(
        "child.ron",
        &format!(
            "(name: \"child\", storage: [Qcow2(name: \"root\", size: \"16M\", backing_file: \"{}\", backing_format: Qcow2)])\n",
            golden.display()
        ),
    );
    t.args(["add", "child.ron"]).stdout_any().run();
    put("rm", json(&mut t, &["rm", "--clean-storage", "docs"]));
    put("--version", json(&mut t, &["--version"]));

    let mut problems = Vec::new();
    let docs = examples();
    for (label, doc) in &docs {
        match real.get(label.as_str()) {
            None => problems.push(format!(
                "{label}: documented, but this test does not run it"
            )),
            Some(outputs) => {
                for output in outputs {
                    compare(label, "", doc, output, &mut problems);
                }
            }
        }
    }
    for label in real.keys() {
        if !docs.iter().any(|(l, _)| l == label) {
            problems.push(format!(
                "{label}: prints JSON but docs/json.md has no example"
            ));
        }
    }
    problems.dedup();
    assert!(
        problems.is_empty(),
        "docs/json.md and the real JSON differ:\n{}",
        problems.join("\n")
    );
}
