//! A small fluent builder for running the real `maqet` binary, in the style
//! of casey/just's tests:
//!
//! ```ignore
//! let mut t = Test::new();
//! t.file("vm.ron", MINIMAL).args(["add", "vm.ron"]).run();
//! t.args(["ls"]).stdout("NAME ...\n").run();
//! ```
//!
//! Every `Test` owns a temp directory that is the child's working directory
//! and its `HOME`, with its own data and runtime dirs, so the real user's
//! store is never touched. The settings of one command (arguments, stdin,
//! environment, expectations) are cleared by `run`; files and the directory
//! stay for the next command of the session.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Skips: seen, recorded, and failures in CI (src/skips.rs).
pub use crate::skips::{needs, runs};

use camino::Utf8PathBuf;
use maqet::config::VmConfig;
use maqet::store::Store;
use maqet::vm::{Status, Timestamp, Vm, VmId};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_maqet");

/// examples/minimal.ron, as shipped.
pub const MINIMAL: &str = include_str!("../../examples/minimal.ron");

pub struct Test {
    dir: TempDir,
    /// `dir`, with symlinks resolved: maqet records canonical paths.
    root: PathBuf,
    cwd: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    umask: Option<u32>,
    status: i32,
    stdout: Option<String>,
    stderr: Option<String>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
    stdout_any: bool,
    kvm_fallback_ok: bool,
}

/// `--trust` when a config carries what only it grants (raw `arguments`, a
/// custom `binary`), for tests that are not about trust.
pub fn trust(config: &str) -> &'static [&'static str] {
    if config.contains("arguments:") || config.contains("binary:") {
        &["--trust"]
    } else {
        &[]
    }
}

/// The warning `start` prints when KVM failed and it used TCG instead
/// (hosts with nested KVM that aborts).
pub const KVM_FALLBACK: &str = "maqet: warning: QEMU failed with KVM";

/// What a command printed, after its expectations held.
#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// stderr parsed as JSON.
    pub fn stderr_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stderr)
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}):\n{}", self.stderr))
    }
}

impl Test {
    pub fn new() -> Test {
        let dir = tempfile::Builder::new()
            .prefix("maqet-test-")
            .tempdir()
            .expect("create a temp dir");
        let root = dir
            .path()
            .canonicalize()
            .expect("canonicalize the temp dir");
        Test {
            cwd: root.clone(),
            dir,
            root,
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: None,
            umask: None,
            status: 0,
            stdout: None,
            stderr: None,
            stdout_contains: Vec::new(),
            stderr_contains: Vec::new(),
            stdout_any: false,
            kvm_fallback_ok: false,
        }
    }

    /// The temp dir: the child's cwd (unless `.cwd` says otherwise) and HOME.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// `$root/data`, given to the child as `MAQET_DATA_DIR`.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// `$root/run`, given to the child as `MAQET_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// Write `contents` to `relative` (parent directories created).
    pub fn file(&mut self, relative: &str, contents: &str) -> &mut Self {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the file's directory");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Run in `relative` (created) instead of the temp dir.
    pub fn cwd(&mut self, relative: &str) -> &mut Self {
        let dir = self.path(relative);
        std::fs::create_dir_all(&dir).expect("create the working directory");
        self.cwd = dir;
        self
    }

    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Unset `key` in the child, including the variables the harness sets
    /// (`MAQET_DATA_DIR`, `MAQET_RUNTIME_DIR`, `HOME`).
    pub fn env_remove(&mut self, key: impl Into<OsString>) -> &mut Self {
        self.env_remove.push(key.into());
        self
    }

    /// Feed this to stdin (by default stdin is /dev/null, never a terminal).
    pub fn stdin(&mut self, input: &str) -> &mut Self {
        self.stdin = Some(input.as_bytes().to_vec());
        self
    }

    /// Run the child under this umask (through `sh`).
    pub fn umask(&mut self, mask: u32) -> &mut Self {
        self.umask = Some(mask);
        self
    }

    /// The expected exit code; 0 unless said.
    pub fn status(&mut self, code: i32) -> &mut Self {
        self.status = code;
        self
    }

    /// Exact stdout. Unless set, a failing command must print nothing on
    /// stdout (it carries results only).
    pub fn stdout(&mut self, text: &str) -> &mut Self {
        self.stdout = Some(text.to_owned());
        self
    }

    /// Exact stderr. Unless set (or `stderr_contains` is used), a successful
    /// command must print nothing on stderr.
    pub fn stderr(&mut self, text: &str) -> &mut Self {
        self.stderr = Some(text.to_owned());
        self
    }

    /// Accept any stdout (for a failing command that still reports, whose
    /// output the test parses itself).
    pub fn stdout_any(&mut self) -> &mut Self {
        self.stdout_any = true;
        self
    }

    pub fn stdout_contains(&mut self, text: &str) -> &mut Self {
        self.stdout_contains.push(text.to_owned());
        self
    }

    pub fn stderr_contains(&mut self, text: &str) -> &mut Self {
        self.stderr_contains.push(text.to_owned());
        self
    }

    /// `program PRE... maqet ARGS...` with the environment `command` gives
    /// maqet: for running it under `sh -c 'ulimit ...; exec "$0" "$@"'`,
    /// GNU time and the like.
    pub fn wrapped(&self, program: &str, pre: &[&str], args: &[&str]) -> Command {
        let base = self.command(args.iter().copied());
        let mut cmd = Command::new(program);
        cmd.args(pre).arg(BIN).args(base.get_args());
        for (key, value) in base.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.current_dir(self.root());
        cmd
    }

    /// A `Command` for the binary with this test's environment, for tests
    /// that need to manage processes themselves (concurrency, kill -9).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut cmd = match self.umask {
            None => {
                let mut c = Command::new(BIN);
                c.args(&args);
                c
            }
            Some(mask) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("umask {mask:03o}; exec \"$0\" \"$@\""))
                    .arg(BIN)
                    .args(&args);
                c
            }
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MAQET_") {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(&self.cwd)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NO_COLOR")
            .env("HOME", &self.root)
            .env("MAQET_DATA_DIR", self.data_dir())
            .env("MAQET_RUNTIME_DIR", self.runtime_dir())
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        cmd
    }

    /// Run the command, check every expectation, and clear the command's
    /// settings for the next one.
    #[track_caller]
    pub fn run(&mut self) -> Output {
        let mut cmd = self.command(self.args.clone());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn maqet");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // The child may exit without reading; a broken pipe is fine.
            let _ = pipe.write_all(&input);
        }
        let out = child.wait_with_output().expect("wait for maqet");
        let output = Output {
            status: out.status.code().unwrap_or_else(|| {
                panic!(
                    "maqet {:?} was killed by a signal: {:?}",
                    self.args, out.status
                )
            }),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        };
        let problems = self.check(&output);
        let args = std::mem::take(&mut self.args);
        self.reset();
        if !problems.is_empty() {
            panic!(
                "maqet {}\n{problems}\n--- stdout ---\n{}--- stderr ---\n{}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                output.stdout,
                output.stderr
            );
        }
        output
    }

    fn check(&self, out: &Output) -> String {
        let mut problems = String::new();
        if out.status != self.status {
            let _ = writeln!(
                problems,
                "exit code: expected {}, got {}",
                self.status, out.status
            );
        }
        let stdout = match (&self.stdout, self.status) {
            (Some(s), _) => Some(s.as_str()),
            (None, _) if self.stdout_any => None,
            (None, 0) => None,
            (None, _) => Some(""),
        };
        if let Some(want) = stdout
            && out.stdout != want
        {
            let _ = writeln!(problems, "stdout differs:\n{}", diff(want, &out.stdout));
        }
        let stderr = match &self.stderr {
            Some(s) => Some(s.as_str()),
            None if self.status == 0 && self.stderr_contains.is_empty() => Some(""),
            None => None,
        };
        let seen: String = if self.kvm_fallback_ok {
            out.stderr
                .lines()
                .filter(|l| !l.starts_with(KVM_FALLBACK))
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            out.stderr.clone()
        };
        if let Some(want) = stderr
            && seen != want
        {
            let _ = writeln!(problems, "stderr differs:\n{}", diff(want, &seen));
        }
        for want in &self.stdout_contains {
            if !out.stdout.contains(want.as_str()) {
                let _ = writeln!(problems, "stdout lacks {want:?}");
            }
        }
        for want in &self.stderr_contains {
            if !out.stderr.contains(want.as_str()) {
                let _ = writeln!(problems, "stderr lacks {want:?}");
            }
        }
        problems
    }

    fn reset(&mut self) {
        self.cwd = self.root.clone();
        self.env.clear();
        self.env_remove.clear();
        self.stdin = None;
        self.umask = None;
        self.status = 0;
        self.stdout = None;
        self.stderr = None;
        self.stdout_contains.clear();
        self.stderr_contains.clear();
        self.stdout_any = false;
        self.kvm_fallback_ok = false;
    }

    /// Accept the KVM fallback warning on stderr: a default (`accel:
    /// Auto`) VM on a host whose KVM aborts runs with TCG and says so.
    pub fn kvm_fallback_ok(&mut self) -> &mut Self {
        self.kvm_fallback_ok = true;
        self
    }

    /// `text` with this test's temp dir written as `[TMP]`, ids as `[ID]`,
    /// 12-character short ids as `[ short-id ]` and RFC 3339 times as `[TIME]`,
    /// so it can be snapshotted.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.replace(self.root.to_str().expect("UTF-8 temp dir"), "[TMP]");
        if let Some(raw) = self.dir.path().to_str() {
            text = text.replace(raw, "[TMP]");
        }
        redact_times(&redact_hex(&text))
    }

    /// Every VM in the store, via `maqet --json ls`.
    pub fn list(&mut self) -> Vec<serde_json::Value> {
        let out = self.args(["--json", "ls"]).run();
        out.json().as_array().expect("ls prints an array").clone()
    }

    /// Add a VM with default settings and return its id.
    pub fn add_empty(&mut self, name: &str) -> String {
        let out = self.args(["add", "--empty", "--name", name]).run();
        let id = out.stdout.trim_end().to_owned();
        assert!(is_id(&id), "add printed {:?}", out.stdout);
        id
    }

    /// The data dir as maqet's own type, for seeding a store through the
    /// library.
    pub fn dirs(&self) -> maqet::dirs::Dirs {
        maqet::dirs::Dirs {
            data: Utf8PathBuf::from_path_buf(self.data_dir()).expect("UTF-8 temp dir"),
            runtime: Utf8PathBuf::from_path_buf(self.runtime_dir()).expect("UTF-8 temp dir"),
        }
    }
}

/// True for a full VM id: 32 lowercase hex characters.
pub fn is_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Mode bits (permissions only) of a path, not following symlinks.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// Every path under `dir`, relative and sorted: to show that a command
/// wrote nothing.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(
                path.strip_prefix(base)
                    .expect("under base")
                    .display()
                    .to_string(),
            );
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs of exactly 32 or 12 lowercase hex characters (not part of a longer
/// word) become `[ID]` and `[ short-id ]`.
fn redact_hex(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let at_word_start = i == 0 || !is_word(bytes[i - 1]);
        if at_word_start && bytes[i].is_ascii_alphanumeric() {
            let end = (i..bytes.len())
                .find(|&j| !is_word(bytes[j]))
                .unwrap_or(bytes.len());
            let word = &text[i..end];
            let hex = word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            // A hex word with a digit: `cafe` stays a word, `a1b2...` is an id.
            let digit = word.bytes().any(|b| b.is_ascii_digit());
            match word.len() {
                32 if hex => out.push_str("[ID]"),
                // As wide as what it replaces, so tables stay aligned.
                12 if hex && digit => out.push_str("[ short-id ]"),
                _ => out.push_str(word),
            }
            i = end;
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `2026-11-28T18:01:51Z` becomes `[TIME]`.
fn redact_times(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let fits = bytes.len() - i >= SHAPE.len()
            && SHAPE.iter().zip(&bytes[i..]).all(|(&s, &b)| match s {
                b'd' => b.is_ascii_digit(),
                other => other == b,
            });
        if fits {
            out.push_str("[TIME]");
            i += SHAPE.len();
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// A line-by-line diff, enough to see what changed.
fn diff(want: &str, got: &str) -> String {
    let want_lines: Vec<&str> = want.lines().collect();
    let got_lines: Vec<&str> = got.lines().collect();
    let mut out = String::new();
    for i in 0..want_lines.len().max(got_lines.len()) {
        match (want_lines.get(i), got_lines.get(i)) {
            (Some(w), Some(g)) if w == g => {
                let _ = writeln!(out, "  {w}");
            }
            (w, g) => {
                if let Some(w) = w {
                    let _ = writeln!(out, "- {w}");
                }
                if let Some(g) = g {
                    let _ = writeln!(out, "+ {g}");
                }
            }
        }
    }
    if want.ends_with('\n') != got.ends_with('\n') {
        let _ = writeln!(
            out,
            "(expected {} final newline, got {})",
            if want.ends_with('\n') { "a" } else { "no" },
            if got.ends_with('\n') { "one" } else { "none" }
        );
    }
    out
}

/// A small xorshift generator for random choices and delays. Tests take it
/// from [`seeded`], which prints the starting seed and replays one given in
/// `MAQET_STRESS_SEED`.
pub struct Rng(u64);

/// A randomised test's random source: `MAQET_STRESS_SEED` if set (a
/// failure's seed, to replay its choices; scripts/stress sets a fresh one
/// per iteration), else the clock. The starting seed is printed first, so
/// even a failure inside the harness (whose message cannot name it) shows
/// it beside the captured output; tests name it in their own failures too,
/// as `seed()` read before the first draw (the generator's state moves on
/// with every draw).
pub fn seeded(test: &str) -> Rng {
    let rng = match std::env::var("MAQET_STRESS_SEED") {
        Ok(seed) => Rng::new(
            seed.trim()
                .parse()
                .unwrap_or_else(|e| panic!("MAQET_STRESS_SEED={seed:?}: {e}")),
        ),
        Err(_) => Rng::from_time(),
    };
    eprintln!("{test}: seed {}", rng.seed());
    rng
}

impl Rng {
    /// Private: a test takes its generator from [`seeded`], so that every
    /// random choice prints its seed and replays from `MAQET_STRESS_SEED`.
    fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos());
        Rng::new(u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(1))
    }

    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn seed(&self) -> u64 {
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

/// Five draws of a [`seeded`] generator, printed; run on its own, in a
/// process of its own, by the next test.
#[test]
fn seeded_draws() {
    let mut rng = seeded("seeded_draws");
    let draws: Vec<u64> = (0..5).map(|_| rng.below(1_000_000_007)).collect();
    eprintln!("draws {draws:?}");
}

/// `MAQET_STRESS_SEED` (what scripts/stress sets and prints) replays a
/// test's random choices: the seed printed is the one given, and two runs
/// with it draw alike.
#[test]
fn the_stress_seed_replays_a_tests_choices() {
    let run = |seed: &str| {
        let out = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", "harness::seeded_draws", "--nocapture"])
            .env("MAQET_STRESS_SEED", seed)
            .output()
            .expect("run the test binary");
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let draws = stderr
            .lines()
            .find(|l| l.starts_with("draws "))
            .unwrap_or_else(|| panic!("no draws printed: {stderr}"))
            .to_owned();
        (stderr, draws)
    };
    let (first, draws) = run("12345");
    assert!(
        first.contains("seeded_draws: seed 12345\n"),
        "the seed given is the seed printed: {first}"
    );
    assert_eq!(run("12345").1, draws, "the same seed draws alike");
    assert_ne!(run("54321").1, draws, "another seed draws otherwise");
}

/// A local TCP port for a VM's forward, claimed until the test binary
/// exits: a socket bound to 127.0.0.1:PORT with SO_REUSEADDR that never
/// listens. While it is held the kernel gives the port to no other
/// `bind(0)` and no outgoing connection, and a listener without
/// SO_REUSEADDR cannot take it; QEMU, whose user network sets SO_REUSEADDR,
/// binds and listens beside it. A port found free and then let go (the old
/// way) could be taken by any program, or by another test, before QEMU
/// bound it.
pub fn claim_port() -> u16 {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
        sockopt,
    };
    static CLAIMS: std::sync::Mutex<Vec<std::os::fd::OwnedFd>> = std::sync::Mutex::new(Vec::new());
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a socket");
    setsockopt(&fd, sockopt::ReuseAddr, &true).expect("SO_REUSEADDR");
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .expect("bind 127.0.0.1:0");
    let port = getsockname::<SockaddrIn>(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .expect("getsockname")
        .port();
    CLAIMS.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
    port
}

/// A piped console session (`console`, `run --console`): types `input`,
/// keeps stdin open until stdout holds `until` (or `within` is up), then
/// closes it and waits for the session to end. Returns its exit status,
/// stdout and stderr. stdin stays open on purpose: once it ends, a session
/// lingers only while the guest keeps talking (1.5 s of quiet ends it),
/// and a TCG guest on a loaded machine may be slower than that to answer.
pub fn type_until(
    mut cmd: Command,
    input: &str,
    until: &str,
    within: std::time::Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::{Read as _, Write as _};
    use std::time::Instant;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the session");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("type the input");
    let (mut stdout, mut stderr) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + within;
    while !String::from_utf8_lossy(&printed).contains(until) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => printed.extend(chunk),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{until:?} not printed within {within:?} ({e}): {:?}",
                    String::from_utf8_lossy(&printed)
                );
            }
        }
    }
    drop(stdin);
    // Ends after its linger; the bound only stops a hung test.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the session") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the session did not end a minute after its stdin did");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    reader.join().expect("the stdout reader");
    printed.extend(rx.try_iter().flatten());
    let stderr = errors.join().expect("the stderr reader");
    (
        status,
        String::from_utf8_lossy(&printed).into_owned(),
        stderr,
    )
}

/// Where `program` is found in `PATH`, as maqet finds it (QEMU need not
/// be in /usr/bin).
pub fn in_path(program: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| panic!("{program} is not in PATH"))
}

#[test]
fn redaction_replaces_ids_short_ids_and_times() {
    let text = "web  0123456789ab  created\nid: 0123456789abcdef0123456789abcdef\n\
                at 2026-11-28T18:01:51Z; cafe decade deadbeefcafe 0123456789abc";
    assert_eq!(
        redact_times(&redact_hex(text)),
        "web  [ short-id ]  created\nid: [ID]\n\
         at [TIME]; cafe decade deadbeefcafe 0123456789abc"
    );
}

/// Put VMs with chosen ids straight into the store: random ids share a
/// 4-character prefix only after some 300 `add`s.
pub fn seed(t: &Test, vms: &[(&str, &str)]) {
    let store = Store::open(&t.dirs()).expect("open the store");
    store
        .write(|tx| {
            for (name, id) in vms {
                let vm = Vm {
                    id: VmId::parse(id).expect("a valid id"),
                    name: name.parse().expect("a valid name"),
                    config: VmConfig::default(),
                    sources: Vec::new(),
                    created: Timestamp(1_700_000_000),
                    updated: Timestamp(1_700_000_000),
                    status: Status::Created,
                    runtime: None,
                    last_exit: None,
                    owned: Vec::new(),
                    auto_remove: false,
                    trusted: false,
                };
                tx.put(&vm)?;
            }
            Ok(())
        })
        .expect("seed the store");
}

/// True when this user can open /dev/kvm, so maqet tries KVM
/// (`MAQET_REQUIRE_KVM`).
pub fn have_kvm(test: &str) -> bool {
    let openable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    needs(
        test,
        "MAQET_REQUIRE_KVM",
        openable,
        "/dev/kvm cannot be opened here, so maqet never tries KVM",
    )
}

/// Swap two names atomically (renameat2 RENAME_EXCHANGE), as another user
/// racing maqet would; errors are ignored (the racer just tries again).
pub fn exchange(a: &std::ffi::CStr, b: &std::ffi::CStr) {
    // SAFETY: two valid C strings; the call only renames.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_renameat2,
            nix::libc::AT_FDCWD,
            a.as_ptr(),
            nix::libc::AT_FDCWD,
            b.as_ptr(),
            nix::libc::RENAME_EXCHANGE,
        );
    }
}

impl Test {
    /// Write an executable script `relative` (a stand-in program); its
    /// absolute path.
    pub fn program(&mut self, relative: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        self.file(relative, body);
        std::fs::set_permissions(self.path(relative), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        self.path(relative).to_str().expect("UTF-8").to_owned()
    }
}

/// True when the tests run as root (`MAQET_REQUIRE_ROOT`).
pub fn have_root(test: &str) -> bool {
    needs(
        test,
        "MAQET_REQUIRE_ROOT",
        nix::unistd::geteuid().is_root(),
        "needs root",
    )
}

/// Stops a VM when the test ends, however it ends.
pub struct Stopper(Command);

impl Drop for Stopper {
    fn drop(&mut self) {
        let _ = self.0.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

impl Test {
    /// `maqet stop --force VM` when the returned guard is dropped.
    pub fn stopper(&self, vm: &str) -> Stopper {
        Stopper(self.command(["stop", "--force", vm]))
    }
}
