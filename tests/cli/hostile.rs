//! Hostile input, table-driven: names, sizes, config files, paths and QMP
//! arguments that try to break maqet. Every case must give the documented
//! exit code (docs/exit-codes.md) and a clear error, leave the store as it
//! was (and create no data dir where there was none), and never echo a raw
//! control character or bidi override.
//!
//! Also the disk-full and file-size-limit faults on the data dir.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Test;

/// One hostile input: what to run, what must come back.
struct Case {
    what: String,
    args: Vec<OsString>,
    status: i32,
    /// A phrase the (human) error must contain.
    says: &'static str,
}

fn case(what: impl Into<String>, args: &[&str], status: i32, says: &'static str) -> Case {
    Case {
        what: what.into(),
        args: args.iter().map(OsString::from).collect(),
        status,
        says,
    }
}

/// A case whose error comes from argh's parsing of an option value (a usage
/// error, exit 2; with `--json` a JSON error like any other).
fn argh_case(what: impl Into<String>, args: &[&str], says: &'static str) -> Case {
    case(what, args, 2, says)
}

/// The first raw control character (other than `\n`, `\t`: C0, DEL, C1) or
/// bidi control in `bytes`, if any.
fn raw_control(bytes: &[u8]) -> Option<char> {
    String::from_utf8_lossy(bytes).chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    })
}

/// `text` with miette's line wrapping undone, for phrase checks.
fn unwrapped(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '│')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_raw(t: &Test, args: &[OsString]) -> std::process::Output {
    t.command(args.iter().cloned()).output().expect("run maqet")
}

/// `--json ls`, raw, for before/after comparison (`None` when no data dir).
fn store_state(t: &Test) -> (bool, String) {
    let exists = t.data_dir().exists();
    let out = run_raw(t, &["--json".into(), "ls".into()]);
    assert_eq!(out.status.code(), Some(0), "ls: {out:?}");
    (exists, String::from_utf8(out.stdout).expect("UTF-8"))
}

/// Run every case twice (human, then `--json`) in two sessions: one with no
/// data dir at all, one with a store holding a VM. Returns the failures.
fn check_cases(cases: &[Case], fresh: &Test, full: &Test) -> Vec<String> {
    check_in(cases, &[fresh, full])
}

fn check_in(cases: &[Case], sessions: &[&Test]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        for &t in sessions {
            let before = store_state(t);
            for json in [false, true] {
                let mut args = c.args.clone();
                if json {
                    args.insert(0, "--json".into());
                }
                let out = run_raw(t, &args);
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                let label = format!("{} ({})", c.what, if json { "--json" } else { "human" });
                if out.status.code() != Some(c.status) {
                    failures.push(format!(
                        "{label}: exit {:?}, expected {}\n{stderr}",
                        out.status, c.status
                    ));
                    continue;
                }
                if !out.stdout.is_empty() {
                    failures.push(format!(
                        "{label}: printed on stdout: {}",
                        String::from_utf8_lossy(&out.stdout)
                    ));
                }
                // JSON too: serde_json escapes only C0, maqet the rest.
                for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                    if let Some(ch) = raw_control(bytes) {
                        failures.push(format!("{label}: raw {ch:?} on {stream}: {stderr:?}"));
                    }
                }
                if json {
                    match serde_json::from_slice::<serde_json::Value>(&out.stderr) {
                        Ok(err) if err["error"]["exit_code"] == c.status => {
                            let message = err["error"]["message"].as_str().unwrap_or("");
                            if message.is_empty() || err["error"]["code"].as_str().is_none() {
                                failures.push(format!("{label}: incomplete JSON error {err}"));
                            }
                        }
                        other => failures.push(format!("{label}: not a JSON error: {other:?}")),
                    }
                } else if !unwrapped(&stderr).contains(&unwrapped(c.says)) {
                    failures.push(format!("{label}: stderr lacks {:?}:\n{stderr}", c.says));
                }
            }
            let after = store_state(t);
            if before != after {
                failures.push(format!(
                    "{}: the store changed (data dir existed {} -> {}):\n{}\n->\n{}",
                    c.what, before.0, after.0, before.1, after.1
                ));
            }
        }
    }
    failures
}

/// A session with no data dir, and one whose store holds `keep`.
fn sessions() -> (Test, Test) {
    let fresh = Test::new();
    let mut full = Test::new();
    full.add_empty("keep");
    (fresh, full)
}

fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Write `bytes` to `relative` in both sessions.
fn write_both(fresh: &Test, full: &Test, relative: &str, bytes: &[u8]) {
    for t in [fresh, full] {
        let path = t.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write");
    }
}

const HOSTILE_NAMES: &[(&str, &str)] = &[
    ("empty", ""),
    (
        "65 characters",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ),
    ("dot", "."),
    ("dot dot", ".."),
    ("slash", "a/b"),
    ("leading dash", "-a"),
    ("leading dot", ".a"),
    ("control character", "a\u{1}b"),
    ("bell", "a\u{7}b"),
    ("newline", "a\nb"),
    ("delete", "a\u{7f}b"),
    ("ANSI escape", "a\u{1b}[31mred"),
    ("OSC 52 clipboard", "a\u{1b}]52;c;aGk=\u{7}"),
    ("right-to-left override", "a\u{202e}gpj.exe"),
    ("NUL-free C1 control", "a\u{9b}31m"),
    ("space", "a b"),
];

#[test]
fn hostile_names_are_refused() {
    let (fresh, full) = sessions();
    let mut cases = Vec::new();
    for (i, (what, name)) in HOSTILE_NAMES.iter().enumerate() {
        cases.push(argh_case(
            format!("--name {what}"),
            &["add", "--empty", "--name", name],
            "is not a valid name",
        ));
        // The same name in a RON file, written raw (RON strings take any
        // character; the escaped forms are parsed to the same string).
        let file = format!("name{i}.ron");
        let escaped: String = name
            .chars()
            .map(|c| match c {
                '"' | '\\' => format!("\\{c}"),
                c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
                c => c.to_string(),
            })
            .collect();
        write_both(
            &fresh,
            &full,
            &file,
            format!("(name: \"{escaped}\")").as_bytes(),
        );
        cases.push(case(
            format!("RON name {what}"),
            &["add", &file],
            3,
            "is not a valid name",
        ));
        let raw = format!("raw{i}.ron");
        write_both(
            &fresh,
            &full,
            &raw,
            format!("(name: \"{name}\")").as_bytes(),
        );
        cases.push(case(format!("raw RON name {what}"), &["add", &raw], 3, ""));
    }
    assert_no_failures(check_cases(&cases, &fresh, &full));
}

const HOSTILE_SIZES: &[(&str, &str)] = &[
    ("zero", "0"),
    ("zero with a unit", "0G"),
    ("negative", "-1G"),
    ("overflow", "99999999999999999999G"),
    ("overflow after the unit", "17179869184T"),
    ("float overflow", "1e309"),
    ("fraction", "1.5G"),
    ("unknown unit", "5Q"),
    ("doubled unit", "2GiBB"),
    ("empty", ""),
    ("spaces", "   "),
    ("unit only", "G"),
    ("escape in unit", "1\u{1b}[31mG"),
    ("right-to-left override", "1\u{202e}G"),
];

#[test]
fn hostile_sizes_are_refused() {
    let (fresh, full) = sessions();
    let mut cases = Vec::new();
    for (i, (what, size)) in HOSTILE_SIZES.iter().enumerate() {
        cases.push(argh_case(
            format!("--memory {what}"),
            &["add", "--empty", "--name", "vm", "--memory", size],
            "--memory",
        ));
        let escaped: String = size
            .chars()
            .map(|c| match c {
                c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
                c => c.to_string(),
            })
            .collect();
        let memory = format!("memory{i}.ron");
        write_both(
            &fresh,
            &full,
            &memory,
            format!("(name: \"vm\", memory: \"{escaped}\")").as_bytes(),
        );
        cases.push(case(format!("RON memory {what}"), &["add", &memory], 3, ""));
        let disk = format!("disk{i}.ron");
        write_both(
            &fresh,
            &full,
            &disk,
            format!("(name: \"vm\", storage: [Qcow2(name: \"root\", size: \"{escaped}\")])")
                .as_bytes(),
        );
        cases.push(case(
            format!("RON disk size {what}"),
            &["add", &disk],
            3,
            "",
        ));
    }
    assert_no_failures(check_cases(&cases, &fresh, &full));
}

#[test]
fn hostile_config_files_are_refused() {
    let (fresh, full) = sessions();
    let files: Vec<(&str, &str, Vec<u8>, i32, &'static str)> = vec![
        (
            "10 000 [",
            "nested.ron",
            "[".repeat(10_000).into_bytes(),
            3,
            "nested.ron",
        ),
        (
            "10 000 ( in a field",
            "nested2.ron",
            format!("(name: \"x\", arguments: {}", "[".repeat(10_000)).into_bytes(),
            3,
            "nested2.ron",
        ),
        (
            "10 000 variants",
            "nested3.ron",
            format!("(name: \"x\", storage: [{}", "Qcow2(".repeat(10_000)).into_bytes(),
            3,
            "nested3.ron",
        ),
        (
            "invalid UTF-8",
            "latin1.ron",
            b"(name: \"caf\xe9\")".to_vec(),
            3,
            "valid UTF-8",
        ),
        (
            "invalid UTF-8 in a comment",
            "latin1c.ron",
            b"// \xff\xfe\n(name: \"x\")".to_vec(),
            3,
            "valid UTF-8",
        ),
        (
            "duplicate name",
            "dup.ron",
            b"(name: \"a\", name: \"b\")".to_vec(),
            3,
            "given twice",
        ),
        (
            "duplicate memory",
            "dup2.ron",
            b"(name: \"a\", memory: \"1G\", memory: \"2G\")".to_vec(),
            3,
            "given twice",
        ),
        (
            "control characters in an unknown field",
            "field.ron",
            b"(name: \"a\", \x1b[31m: 1)".to_vec(),
            3,
            "field.ron",
        ),
        ("empty file", "empty.ron", Vec::new(), 3, "empty.ron"),
        (
            "NUL bytes",
            "nul.ron",
            b"(name: \"a\0\")".to_vec(),
            3,
            "nul.ron",
        ),
    ];
    let mut cases = Vec::new();
    for (what, file, bytes, status, says) in &files {
        write_both(&fresh, &full, file, bytes);
        cases.push(case(*what, &["add", file], *status, says));
    }
    for t in [&fresh, &full] {
        std::os::unix::fs::symlink("/etc/passwd", t.path("passwd.ron")).expect("symlink");
        std::os::unix::fs::symlink("/etc", t.path("etc")).expect("symlink");
        std::fs::create_dir(t.path("dir.ron")).expect("mkdir");
    }
    cases.push(case(
        "symlink to /etc/passwd",
        &["add", "passwd.ron"],
        4,
        "/etc/passwd",
    ));
    cases.push(case("/etc/passwd", &["add", "/etc/passwd"], 4, "/etc"));
    cases.push(case("symlinked parent", &["add", "etc/passwd"], 4, "/etc"));
    cases.push(case(
        "/proc/self/root",
        &["add", "/proc/self/root/etc/passwd"],
        4,
        "/etc/passwd",
    ));
    cases.push(case(
        "missing file",
        &["add", "nothing.ron"],
        3,
        "nothing.ron",
    ));
    cases.push(case("a directory", &["add", "dir.ron"], 3, "dir.ron"));
    cases.push(case("/dev/zero", &["add", "/dev/zero"], 4, "/dev"));
    assert_no_failures(check_cases(&cases, &fresh, &full));
}

/// Peak RSS in KiB of `maqet ARGS` via GNU time, and its exit code.
fn peak_rss(t: &Test, args: &[&str]) -> Option<(i32, u64)> {
    if !Path::new("/usr/bin/time").exists() {
        return None;
    }
    let report = t.path("rss.txt");
    let report_arg = report.to_str().expect("UTF-8");
    let out = t
        .wrapped("/usr/bin/time", &["-q", "-o", report_arg, "-f", "%M"], args)
        .output()
        .expect("run /usr/bin/time");
    let rss = std::fs::read_to_string(&report).ok()?.trim().parse().ok()?;
    Some((out.status.code().unwrap_or(-1), rss))
}

/// A 100 MB config is refused before it is read (configs are capped at
/// 1 MiB), quickly and in little memory; the store is untouched.
#[test]
fn a_100_mb_config_file_is_refused_without_reading_it() {
    let mut t = Test::new();
    let path = t.path("big.ron");
    {
        use std::io::Write as _;
        let file = std::fs::File::create(&path).expect("create");
        let mut w = std::io::BufWriter::new(file);
        let line = format!("// {}\n", "x".repeat(1020));
        for _ in 0..(100 << 20) / line.len() {
            w.write_all(line.as_bytes()).expect("write");
        }
        w.write_all(b"(name: \"big\", memory: \"2G\")\n")
            .expect("write");
    }
    assert!(std::fs::metadata(&path).expect("stat").len() >= 100 << 20);
    match peak_rss(&t, &["add", "big.ron"]) {
        Some((code, rss)) => {
            assert_eq!(code, 3, "add of a 100 MB file");
            assert!(rss < 32 << 10, "peak RSS {rss} KiB: the file was read");
        }
        None => {
            crate::harness::needs(
                "a_100_mb_config_file_is_refused_without_reading_it",
                "MAQET_REQUIRE_TOOLS",
                false,
                "/usr/bin/time (GNU time) is missing: RSS not measured",
            );
        }
    }
    t.args(["add", "big.ron"])
        .status(3)
        .stderr_contains("1024 KiB")
        .stderr_contains("bytes; maqet reads configs of up to")
        .run();
    assert!(t.list().is_empty());
}

/// An error quotes what it found, shortened, and shows a window of a long
/// line, not the line: 1 MB of junk once gave ~6 MB of stderr.
#[test]
fn a_huge_junk_config_gives_a_short_error() {
    let t = Test::new();
    std::fs::write(t.path("junk.ron"), "x".repeat(1 << 20)).expect("write");
    let out = t.command(["add", "junk.ron"]).output().expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stderr.len() < 16 << 10,
        "{} bytes of error for a 1 MB file",
        out.stderr.len()
    );
}

#[test]
fn hostile_paths_are_refused() {
    let (fresh, full) = sessions();
    let mut cases = Vec::new();
    for t in [&fresh, &full] {
        std::os::unix::fs::symlink("/etc", t.path("linketc")).expect("symlink");
        std::os::unix::fs::symlink("/etc/shadow", t.path("shadow.img")).expect("symlink");
        std::fs::create_dir_all(t.path("sub/deeper")).expect("mkdir");
        std::os::unix::fs::symlink("../linketc", t.path("sub/hop")).expect("symlink");
    }
    let mut disk_paths: Vec<String> = [
        "/etc", "/sys", "/proc", "/dev", "/boot", "/root", "/var", "/usr", "/bin", "/sbin", "/lib",
        "/lib64",
    ]
    .iter()
    .map(|d| format!("{d}/maqet-hostile.img").replacen("//", "/", 1))
    .collect();
    disk_paths.extend(
        [
            "/dev/sda",
            "/etc/passwd",
            "../../../../../../etc/x.img",
            "sub/deeper/../../../../../../../etc/x.img",
            "linketc/x.img",
            "sub/hop/x.img",
            "shadow.img",
            "/proc/self/root/etc/passwd",
            "/proc/self/cwd/../../../etc/x.img",
            "/dev/shm/../../etc/x.img",
            "/tmp/../etc/x.img",
            "/var/tmp/x.img",
            "~root/x.img",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    for (i, path) in disk_paths.iter().enumerate() {
        for (kind, entry) in [
            (
                "Raw",
                format!("Raw(name: \"d\", file: \"{path}\", size: \"1M\")"),
            ),
            (
                "Qcow2",
                format!("Qcow2(name: \"d\", file: \"{path}\", size: \"1M\")"),
            ),
            ("Cdrom", format!("Cdrom(name: \"d\", file: \"{path}\")")),
            (
                "backing_file",
                format!(
                    "Qcow2(name: \"d\", size: \"1M\", backing_file: \"{path}\", backing_format: Raw)"
                ),
            ),
            ("Virtfs", format!("Virtfs(name: \"d\", path: \"{path}\")")),
        ] {
            let file = format!("path{i}-{kind}.ron");
            write_both(
                &fresh,
                &full,
                &file,
                format!("(name: \"vm\", storage: [{entry}])").as_bytes(),
            );
            let status = if path.starts_with("~root") { 3 } else { 4 };
            let says = if status == 4 { "refused here" } else { "" };
            cases.push(case(
                format!("{kind} {path}"),
                &["add", &file],
                status,
                says,
            ));
        }
    }
    for (i, path) in ["/etc/x", "linketc/vmlinuz", "/proc/self/root/etc/passwd"]
        .iter()
        .enumerate()
    {
        for field in ["kernel", "firmware"] {
            let file = format!("boot{i}-{field}.ron");
            write_both(
                &fresh,
                &full,
                &file,
                format!("(name: \"vm\", boot: ({field}: \"{path}\"))").as_bytes(),
            );
            cases.push(case(
                format!("{field} {path}"),
                &["add", &file],
                4,
                "refused here",
            ));
        }
    }
    assert_no_failures(check_cases(&cases, &fresh, &full));
}

/// File names that look like QEMU option syntax are literal names: accepted,
/// and one JSON string in the argv.
#[test]
fn comma_and_protocol_file_names_stay_literal() {
    let mut t = Test::new();
    for (i, name) in [
        "a,format=raw.img",
        "b,driver=nbd,host=evil",
        "json:{\"driver\":\"nbd\",\"host\":\"x\"}",
        "nbd:host:1",
        "c\",\"x\":\"y.img",
        "with space.img",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(t.path(name), vec![0u8; 4096]).expect("create the image");
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        let vm = format!("vm{i}");
        t.file(
            &format!("{vm}.ron"),
            &format!("(name: \"{vm}\", storage: [Raw(name: \"d\", file: \"./{escaped}\")])"),
        );
        t.args(["add", &format!("{vm}.ron")]).stdout_any().run();
        let argv = t.args(["--json", "start", "--dry-run", &vm]).run().json();
        let argv: Vec<&str> = argv
            .as_array()
            .expect("an argv array")
            .iter()
            .map(|a| a.as_str().expect("strings"))
            .collect();
        let want = t.path(name);
        let files: Vec<serde_json::Value> = argv
            .iter()
            .filter_map(|a| serde_json::from_str::<serde_json::Value>(a).ok())
            .filter(|v| v["driver"] == "file")
            .collect();
        assert_eq!(files.len(), 1, "{name}: one file node in {argv:#?}");
        // QEMU gets the file by descriptor; the name is only the escaped
        // `opaque` label of the fd set (`,` doubled, read back as one).
        assert_eq!(files[0]["filename"], "/dev/fdset/1");
        let want_opaque = format!(
            "set=1,opaque={}",
            want.to_str().expect("UTF-8").replace(',', ",,")
        );
        assert!(
            argv.windows(2)
                .any(|w| w[0] == "-add-fd" && w[1].ends_with(&want_opaque)),
            "{name}: {argv:#?}"
        );
        assert!(
            !argv
                .iter()
                .any(|a| a.contains("nbd") && !a.starts_with('{') && !a.contains(",opaque=")),
            "{name}: no other non-JSON option mentions it: {argv:#?}"
        );
    }
}

#[test]
fn hostile_qmp_arguments_are_refused_before_anything_else() {
    let (fresh, mut full) = sessions();
    full.add_empty("vm");
    let mut cases = Vec::new();
    for vm in ["vm", "no-such-vm"] {
        for (what, extra) in [
            ("--arg without =", vec!["--arg", "foo"]),
            ("--arg with an escape", vec!["--arg", "\u{1b}[31m"]),
            ("--arg with an override", vec!["--arg", "a\u{202e}b"]),
            ("bad --args-json", vec!["--args-json", "{bad"]),
            ("truncated --args-json", vec!["--args-json", "{\"a\":"]),
            ("array --args-json", vec!["--args-json", "[1]"]),
            ("string --args-json", vec!["--args-json", "\"s\""]),
            ("number --args-json", vec!["--args-json", "1"]),
            ("null --args-json", vec!["--args-json", "null"]),
            ("empty --args-json", vec!["--args-json", ""]),
            ("escape in --args-json", vec!["--args-json", "{\u{1b}[31m"]),
        ] {
            let mut args = vec!["qmp", vm, "query-status"];
            args.extend(extra);
            cases.push(case(format!("qmp {vm} {what}"), &args, 2, "maqet::usage"));
        }
    }
    let mut failures = check_cases(&cases, &fresh, &full);
    // Valid arguments on a stopped VM: "not running", exit 1, nothing written.
    failures.extend(check_in(
        &[case(
            "valid arguments, stopped VM",
            &["qmp", "keep", "query-status", "--arg", "a=1"],
            1,
            "is not running",
        )],
        &[&full],
    ));
    assert_no_failures(failures);
}

/// Unmounts a tmpfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mount a tmpfs of `size` at `dir`, or say loudly why not.
fn small_tmpfs(dir: &Path, size: &str, test: &str) -> Option<Mount> {
    std::fs::create_dir_all(dir).expect("mkdir");
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(Mount(dir.to_owned())),
        other => {
            let why = format!("cannot mount a tmpfs (needs root): {other:?}");
            crate::harness::needs(test, "MAQET_REQUIRE_ROOT", false, &why);
            None
        }
    }
}

/// Fill `dir` with zeros until the file system is full.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).expect("create the filler");
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// A VM whose record is ~20 KB, so a full disk shows on the next add.
const FAT: &str = "fat.ron";

fn fat_config() -> String {
    format!("(arguments: [\"-append\", \"{}\"])", "z".repeat(20_000))
}

#[test]
fn a_full_disk_fails_the_add_and_keeps_the_store() {
    let mut t = Test::new();
    let Some(_mount) = small_tmpfs(
        &t.path("small"),
        "1m",
        "a_full_disk_fails_the_add_and_keeps_the_store",
    ) else {
        return;
    };
    let data = t.path("small/data");
    let data = data.to_str().expect("UTF-8").to_owned();
    t.file(FAT, &fat_config());
    t.args(["--data-dir", &data, "add", "--empty", "--name", "a"])
        .stdout_any()
        .run();
    t.args(["--data-dir", &data, "add", "--trust", "--name", "b", FAT])
        .stdout_any()
        .run();
    let before = t.args(["--data-dir", &data, "--json", "ls"]).run().stdout;
    fill(&t.path("small/filler"));
    let mut failed = None;
    for i in 0..50 {
        let name = format!("f{i}");
        let out = t
            .command(["--data-dir", &data, "add", "--trust", "--name", &name, FAT])
            .output()
            .expect("run maqet");
        if !out.status.success() {
            failed = Some((name, out));
            break;
        }
    }
    let (name, out) = failed.expect("some add fails on a full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no id printed");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("free some disk space"),
        "says what to do: {stderr}"
    );
    assert!(stderr.contains("maqet.redb"), "names the store: {stderr}");
    // The same failure as JSON.
    let json = t
        .command([
            "--data-dir",
            &data,
            "--json",
            "add",
            "--trust",
            "--name",
            &name,
            FAT,
        ])
        .output()
        .expect("run");
    assert_eq!(json.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&json.stderr).expect("a JSON error");
    assert_eq!(err["error"]["code"], "maqet::io", "{err}");
    // Everything added before is intact, and reads still work on a full disk.
    let full_ls = t.args(["--data-dir", &data, "--json", "ls"]).run().stdout;
    let listed: Vec<serde_json::Value> = serde_json::from_str(&full_ls).expect("JSON");
    assert!(
        !listed.iter().any(|v| v["name"] == name.as_str()),
        "the failed add left nothing"
    );
    let earlier: Vec<serde_json::Value> = serde_json::from_str(&before).expect("JSON");
    for vm in &earlier {
        assert!(listed.contains(vm), "{vm} survived");
    }
    t.args(["--data-dir", &data, "info", "b"])
        .stdout_any()
        .run();
    // Space returns: the next add works.
    std::fs::remove_file(t.path("small/filler")).expect("remove the filler");
    t.args(["--data-dir", &data, "add", "--trust", "--name", &name, FAT])
        .stdout_any()
        .run();
    let after: Vec<serde_json::Value> =
        serde_json::from_str(&t.args(["--data-dir", &data, "--json", "ls"]).run().stdout)
            .expect("JSON");
    assert_eq!(after.len(), listed.len() + 1);
}

/// `ulimit -f`: the kernel kills a writer past the limit with SIGXFSZ. The
/// store must survive the kill, and the next unlimited command works.
#[test]
fn a_file_size_limit_never_damages_the_store() {
    let mut t = Test::new();
    t.file(FAT, &fat_config());
    let limited = |t: &Test, args: &[&str]| {
        t.wrapped("sh", &["-c", "ulimit -f 16; exec \"$0\" \"$@\""], args)
            .output()
            .expect("run sh")
    };
    // The very first add, limited: it cannot create a store.
    let out = limited(&t, &["add", "--empty", "--name", "first"]);
    assert!(!out.status.success(), "{out:?}");
    if let Some(sig) = out.status.signal() {
        assert_eq!(sig, nix::sys::signal::Signal::SIGXFSZ as i32, "{out:?}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
    }
    assert_eq!(t.list().len(), 0);
    t.add_empty("a");
    let mut before = t.list();
    for args in [
        &["add", "--trust", "--name", "big", FAT][..],
        &["add", "--empty", "--name", "small"][..],
        &["rm", "a"][..],
    ] {
        let out = limited(&t, args);
        let now = t.list();
        if out.status.success() {
            assert_ne!(now, before, "{args:?} succeeded under ulimit -f 16");
            before = now;
        } else {
            assert_eq!(
                out.status.signal(),
                Some(nix::sys::signal::Signal::SIGXFSZ as i32),
                "{args:?}: {out:?}"
            );
            assert_eq!(now, before, "{args:?} killed: the store is as it was");
        }
    }
    // Without the limit everything works again.
    t.args(["add", "--trust", "--name", "big2", FAT])
        .stdout_any()
        .run();
    t.args(["rm", "big2"]).stdout_any().run();
    assert_eq!(t.list(), before);
}

/// With `--json`, errors from argh's option parsing (`--name ''`,
/// `--memory 5Q`, an unknown option) are one JSON error object on stderr
/// with exit 2, as docs/exit-codes.md promises, not argh's text.
#[test]
fn usage_errors_are_json_with_json() {
    let mut t = Test::new();
    for args in [
        &["--json", "add", "--empty", "--name", ""][..],
        &["--json", "add", "--empty", "--name", "vm", "--memory", "5Q"][..],
        &["--json", "add", "--bogus"][..],
    ] {
        let out = t.args(args).status(2).stderr_contains("").run();
        assert_eq!(out.stderr_json()["error"]["exit_code"], 2, "{args:?}");
    }
}

/// `--json` errors carry no raw DEL, C1 control (U+009B is CSI on
/// terminals that honour 8-bit controls) or bidi override: serde_json
/// escapes only U+0000-U+001F, so maqet escapes the rest.
#[test]
fn json_errors_escape_every_control() {
    let mut t = Test::new();
    for name in ["a\u{7f}b", "a\u{9b}31m", "a\u{202e}b"] {
        t.file("vm.ron", &format!("(name: \"{name}\")"));
        let out = t
            .command(["--json", "add", "vm.ron"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(raw_control(&out.stderr), None, "{name:?}");
    }
}

/// Editors on some systems start UTF-8 files with a byte-order mark; maqet
/// skips it.
#[test]
fn a_config_starting_with_a_byte_order_mark_is_read() {
    let mut t = Test::new();
    std::fs::write(t.path("bom.ron"), b"\xef\xbb\xbf(name: \"bom\")").expect("write");
    t.args(["add", "bom.ron"]).run();
    assert_eq!(t.list()[0]["name"], "bom");
}

/// Run `cmd`, failing the test if it has not ended within `limit`: a
/// regression that blocks must fail, not hang the suite.
fn output_within(mut cmd: Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn maqet");
    while child.try_wait().expect("wait for maqet").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap maqet");
            panic!(
                "maqet {:?} still ran after {limit:?}: {}",
                cmd.get_args().collect::<Vec<_>>(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("wait for maqet")
}

/// `ulimit -v` for commands that, broken, would read a device without end:
/// they fail on memory instead of taking the machine's.
const MEMORY_LIMIT: &[&str] = &["-c", "ulimit -v 1000000; exec \"$0\" \"$@\""];

/// What maqet says about a config or settings file that is not a regular
/// file, as its `--json` error.
fn not_a_file(what: &str, path: &Path, kind: &str) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": "maqet::config::not_a_file",
            "message": format!("{what} {} is {kind}, not a regular file", path.display()),
            "help": "maqet reads only regular files here, since a pipe or device could block \
                     forever or never end; save the contents to a file and give that file's path",
            "exit_code": 3,
        }
    })
}

/// Only regular files are read as configs. A FIFO with no writer used to
/// block `add` forever (and one fed 300 MB was read whole, past the 1 MiB
/// cap); a device like /dev/zero was read without end. Now each is refused
/// at once with exit 3, before a byte is read; nothing is added and no data
/// dir is created.
#[test]
fn a_config_that_is_not_a_regular_file_is_refused_at_once() {
    let t = Test::new();
    nix::unistd::mkfifo(&t.path("fifo.ron"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    std::fs::create_dir(t.path("dir.ron")).expect("mkdir");
    let socket = std::os::unix::net::UnixListener::bind(t.path("socket.ron")).expect("bind");
    let mut cases = vec![
        ("fifo.ron", "a FIFO (named pipe)"),
        ("dir.ron", "a directory"),
        ("socket.ron", "a socket"),
    ];
    // The device of /dev/zero, where the path filter lets maqet look (it
    // refuses /dev itself). Making one needs root; without it only the
    // device case is skipped.
    if crate::harness::have_root(
        "a_config_that_is_not_a_regular_file_is_refused_at_once (the device case)",
    ) {
        nix::sys::stat::mknod(
            &t.path("zero.ron"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::S_IRUSR,
            nix::sys::stat::makedev(1, 5),
        )
        .expect("mknod as root");
        cases.push(("zero.ron", "a character device"));
    }
    for (file, kind) in cases {
        for json in [false, true] {
            let mut args = vec!["add", file];
            if json {
                args.insert(0, "--json");
            }
            // Refused before it is opened: a FIFO's open never returns and
            // a device's read never ends (or ends on the memory limit, not
            // with exit 3). The minute only ends a hung test; a refusal
            // takes milliseconds, however loaded the machine.
            let out = output_within(
                t.wrapped("sh", MEMORY_LIMIT, &args),
                Duration::from_secs(60),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{file}: {stderr}");
            assert!(out.stdout.is_empty(), "{file}: nothing on stdout");
            if json {
                let err: serde_json::Value =
                    serde_json::from_slice(&out.stderr).expect("a JSON error");
                assert_eq!(err, not_a_file("config file", &t.path(file), kind));
            } else {
                assert!(
                    unwrapped(&stderr).contains(&format!("is {kind}, not a regular file")),
                    "{file}: {stderr}"
                );
            }
        }
    }
    assert!(!t.data_dir().exists(), "no data dir was created");
    drop(socket);
}

/// The settings file is read the same way. It is the user's own and not
/// put through the path filter, so `MAQET_CONFIG=/dev/zero` reached the
/// reader: it read until memory ran out.
#[test]
fn a_settings_file_that_is_not_a_regular_file_is_refused_at_once() {
    let t = Test::new();
    std::fs::create_dir(t.path("conf")).expect("mkdir");
    nix::unistd::mkfifo(&t.path("conf/maqet.ron"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    std::fs::create_dir_all(t.path("dirconf/maqet.ron")).expect("mkdir");
    for (env, dir, path, kind) in [
        (
            None,
            Some("conf"),
            t.path("conf/maqet.ron"),
            "a FIFO (named pipe)",
        ),
        (
            None,
            Some("dirconf"),
            t.path("dirconf/maqet.ron"),
            "a directory",
        ),
        (
            Some("/dev/zero"),
            None,
            PathBuf::from("/dev/zero"),
            "a character device",
        ),
    ] {
        for json in [false, true] {
            let mut args = Vec::new();
            if json {
                args.push("--json");
            }
            if let Some(dir) = dir {
                args.extend(["--config-dir", dir]);
            }
            args.push("ls");
            let mut cmd = t.wrapped("sh", MEMORY_LIMIT, &args);
            if let Some(file) = env {
                cmd.env("MAQET_CONFIG", file);
            }
            let out = output_within(cmd, Duration::from_secs(10));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
            if json {
                let err: serde_json::Value =
                    serde_json::from_slice(&out.stderr).expect("a JSON error");
                assert_eq!(err, not_a_file("settings file", &path, kind));
            } else {
                assert!(
                    unwrapped(&stderr).contains(&format!("is {kind}, not a regular file")),
                    "{args:?}: {stderr}"
                );
            }
        }
    }
    assert!(!t.data_dir().exists(), "no data dir was created");
}

/// The 1 MiB cap is enforced by the read, not by `st_size`: a file that
/// says it is empty but is not (procfs reports 0 for its files) is read
/// no further than the cap. Here that is the command line of a process
/// started with 1.5 MB of arguments, `/proc/PID/cmdline`, which every
/// Linux has; the settings file is not path-filtered, so it can be named.
#[test]
fn the_size_cap_holds_for_a_file_whose_size_is_not_known_in_advance() {
    let word = "x".repeat(100 << 10);
    // `read`, a builtin: sh never execs another program over its arguments.
    let child = Command::new("sh")
        .args(["-c", "read _", "sh"])
        .args(std::iter::repeat_n(&word, 15))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start a process with a long command line");
    let child = Reaper(child);
    let cmdline = PathBuf::from(format!("/proc/{}/cmdline", child.0.id()));
    assert_eq!(std::fs::metadata(&cmdline).expect("stat").len(), 0);
    // spawn returns once exec is past the point of no return, before the
    // new command line is in place: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut read = 0;
    while read == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        read = std::fs::read(&cmdline).expect("read").len();
    }
    assert!(read > 1 << 20, "{read} bytes in {}", cmdline.display());
    let mut t = Test::new();
    let out = t
        .env("MAQET_CONFIG", &cmdline)
        .args(["--json", "ls"])
        .status(3)
        .run();
    assert_eq!(
        out.stderr_json()["error"]["message"],
        format!(
            "settings file {} is more than 1048576 bytes; maqet reads configs of up to 1024 KiB",
            cmdline.display()
        )
    );
}

/// Kills and reaps a child when the test ends, however it ends.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
