//! A real libvirt for the tests that hand maqet's exported domain XML to it:
//! the daemons (libvirtd, virtlogd) on `qemu:///system`, and `virsh`.
//!
//! ```ignore
//! if !have_libvirt(test) { return; }
//! validate(&xml);
//! let mut libvirt = Libvirt::start();
//! let name = libvirt.define(&xml);
//! ```
//!
//! scripts/setup-libvirt prepares the host; the tests start the daemons
//! themselves (no systemd here or in CI) and stop what they started. One
//! `Libvirt` at a time: the daemons and the domain names are shared by the
//! whole host, so the guard holds a lock for this process's threads and a
//! file lock for other test processes (another checkout's `cargo test`),
//! which would otherwise reuse daemons that this one stops.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

const URI: &str = "qemu:///system";
const LOGS: &str = "/var/log/libvirt";
/// How long libvirtd may take to answer; it answers in 1-2 s here, CI's
/// machines can be slower.
const START_WAIT: Duration = Duration::from_secs(30);
const STOP_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

static LOCK: Mutex<()> = Mutex::new(());
/// Root only (see `have_libvirt`), so /run is writable.
const HOST_LOCK: &str = "/run/maqet-libvirt-tests.lock";

/// True when libvirt can run domains here: root (as root only
/// `qemu:///system` exists), the daemons, `virsh`, `virt-xml-validate`, and
/// a qemu.conf that runs QEMU as root, so it can read the tests' 0700 temp
/// dirs. Otherwise the caller skips, loudly — unless
/// `MAQET_REQUIRE_LIBVIRT=1` (as in CI), where that fails the test.
pub fn have_libvirt(test: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_owned());
    }
    for program in [
        "virsh",
        "libvirtd",
        "virtlogd",
        "virt-xml-validate",
        "xmllint",
    ] {
        if !crate::harness::runs(program) {
            missing.push(program.to_owned());
        }
    }
    if !qemu_runs_as_root() {
        missing.push("user = \"root\" in /etc/libvirt/qemu.conf".to_owned());
    }
    crate::harness::needs(
        test,
        "MAQET_REQUIRE_LIBVIRT",
        missing.is_empty(),
        &format!("needs {}; run scripts/setup-libvirt", missing.join(", ")),
    )
}

fn qemu_runs_as_root() -> bool {
    let Ok(conf) = std::fs::read_to_string("/etc/libvirt/qemu.conf") else {
        return false;
    };
    conf.lines().any(|line| {
        line.split_once('=').is_some_and(|(key, value)| {
            key.trim() == "user" && matches!(value.trim(), "\"root\"" | "\"+0\"")
        })
    })
}

/// Validate a domain XML against libvirt's schema (`virt-xml-validate`).
pub fn validate(xml_path: &Path) {
    let out = Command::new("virt-xml-validate")
        .arg(xml_path)
        .arg("domain")
        .env("LC_ALL", "C")
        .output()
        .expect("run virt-xml-validate");
    assert!(
        out.status.success(),
        "{} is not a valid libvirt domain:\n{}{}",
        xml_path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The running libvirt, for one test at a time. Dropping it destroys and
/// undefines the domains it defined, then stops the daemons it started;
/// daemons that were already running are left running.
pub struct Libvirt {
    domains: Vec<String>,
    /// Started by this guard, in start order.
    started: Vec<Daemon>,
    /// Holds the pidfiles of `started`.
    _pids: Option<TempDir>,
    /// Last, so they are released after the cleanup: the file lock (held
    /// while the file is open), then the thread lock.
    _host_lock: std::fs::File,
    _lock: MutexGuard<'static, ()>,
}

struct Daemon {
    name: &'static str,
    pid: Pid,
}

impl Libvirt {
    /// Take the locks, and start virtlogd and libvirtd unless libvirt
    /// already answers on `qemu:///system`.
    pub fn start() -> Libvirt {
        // A test that panicked holding the lock has cleaned up in Drop.
        let lock = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let host_lock =
            std::fs::File::create(HOST_LOCK).unwrap_or_else(|e| panic!("open {HOST_LOCK}: {e}"));
        host_lock
            .lock()
            .unwrap_or_else(|e| panic!("lock {HOST_LOCK}: {e}"));
        let mut libvirt = Libvirt {
            domains: Vec::new(),
            started: Vec::new(),
            _pids: None,
            _host_lock: host_lock,
            _lock: lock,
        };
        if libvirt.answers().is_ok() {
            return libvirt;
        }
        let pids = tempfile::tempdir().expect("temp dir for the pidfiles");
        // virtlogd first: libvirtd hands it each QEMU's output.
        for name in ["virtlogd", "libvirtd"] {
            let pidfile = pids.path().join(format!("{name}.pid"));
            // `-d` returns once the daemon is set up (pidfile written); the
            // daemon itself is not our child.
            let status = Command::new(name)
                .arg("-d")
                .arg("-p")
                .arg(&pidfile)
                .stdin(Stdio::null())
                .status()
                .unwrap_or_else(|e| panic!("run {name}: {e}"));
            assert!(status.success(), "{name} -d: {status}{}", logs());
            let pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} wrote no pid to {}", pidfile.display()));
            libvirt.started.push(Daemon {
                name,
                pid: Pid::from_raw(pid),
            });
        }
        libvirt._pids = Some(pids);
        let deadline = Instant::now() + START_WAIT;
        loop {
            match libvirt.answers() {
                Ok(()) => return libvirt,
                Err(stderr) if Instant::now() > deadline => panic!(
                    "libvirtd did not answer on {URI} within {START_WAIT:?}: {stderr}{}",
                    logs()
                ),
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    fn answers(&self) -> Result<(), String> {
        let out = self.virsh(&["version"]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn command(args: &[&str]) -> Command {
        let mut command = Command::new("virsh");
        command.env("LC_ALL", "C").args(["-c", URI]).args(args);
        command
    }

    /// `virsh -c qemu:///system ARGS`, in the C locale.
    pub fn virsh(&self, args: &[&str]) -> Output {
        Libvirt::command(args).output().expect("run virsh")
    }

    /// `virsh define XML_PATH`: the new domain's name, which is destroyed
    /// and undefined when the guard drops.
    pub fn define(&mut self, xml_path: &Path) -> String {
        let path = xml_path.to_str().expect("a UTF-8 path");
        let out = self.virsh(&["define", path]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "virsh define {path}:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "Domain 'NAME' defined from PATH" (libvirt 9; older: no quotes).
        let name = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Domain ")?.split_once(" defined from "))
            .map(|(name, _)| name.trim_matches('\'').to_owned())
            .unwrap_or_else(|| panic!("virsh define {path} printed no domain name:\n{stdout}"));
        self.track(&name);
        name
    }

    /// Destroy and undefine the domain `name` when the guard drops (for a
    /// domain made other than by `define`).
    pub fn track(&mut self, name: &str) {
        if !self.domains.iter().any(|d| d == name) {
            self.domains.push(name.to_owned());
        }
    }

    /// `virsh dumpxml NAME`: the domain as libvirt completed it.
    pub fn dumpxml(&self, name: &str) -> String {
        self.ok(&["dumpxml", name])
    }

    /// `virsh domstate --reason NAME`, e.g. "shut off (shutdown)".
    pub fn domstate_reason(&self, name: &str) -> String {
        self.ok(&["domstate", "--reason", name]).trim().to_owned()
    }

    /// A QMP command sent to the domain's QEMU through libvirt
    /// (`virsh qemu-monitor-command`): the reply's `return` value. Panics
    /// on a QMP error.
    pub fn qemu_monitor(&self, name: &str, json: &serde_json::Value) -> serde_json::Value {
        let stdout = self.ok(&["qemu-monitor-command", name, &json.to_string()]);
        let mut reply: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("QMP reply from {name} is not JSON ({e}):\n{stdout}"));
        assert!(
            reply.get("error").is_none(),
            "QMP {json} on {name}: {reply}"
        );
        reply["return"].take()
    }

    /// The stdout of a virsh command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.virsh(args);
        assert!(
            out.status.success(),
            "virsh {}:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Libvirt {
    // No panics here: a test that already failed would abort the run.
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            Libvirt::command(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        for name in std::mem::take(&mut self.domains) {
            // Fails when it is not running; a transient domain is gone after.
            quiet(&["destroy", &name]);
            if quiet(&["domstate", &name])
                // --nvram: a UEFI domain's variables file goes too.
                && !quiet(&["undefine", "--nvram", &name])
            {
                eprintln!("\n!!! libvirt: could not undefine domain {name} !!!\n");
            }
        }
        // libvirtd first: it talks to virtlogd until it exits.
        for daemon in self.started.drain(..).rev() {
            let _ = kill(daemon.pid, Signal::SIGTERM);
            if !gone_within(daemon.pid, STOP_WAIT) {
                eprintln!(
                    "\n!!! libvirt: {} (pid {}) outlived SIGTERM by {STOP_WAIT:?}; killed !!!\n",
                    daemon.name, daemon.pid
                );
                let _ = kill(daemon.pid, Signal::SIGKILL);
                gone_within(daemon.pid, STOP_WAIT);
            }
        }
    }
}

/// Whether `pid` exited within `wait`. The daemons are not our children and
/// whoever inherits them may never reap them: a zombie counts as gone.
fn gone_within(pid: Pid, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let running = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        });
        if !running {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The ends of the daemons' logs, for a failure message.
fn logs() -> String {
    let mut text = String::new();
    for log in ["virtlogd.log", "libvirtd.log"] {
        let path = Path::new(LOGS).join(log);
        let tail = match std::fs::read_to_string(&path) {
            Ok(content) => {
                let lines: Vec<_> = content.lines().collect();
                lines[lines.len().saturating_sub(20)..].join("\n")
            }
            Err(e) => format!("({e})"),
        };
        text.push_str(&format!(
            "\n--- {} (last lines) ---\n{tail}",
            path.display()
        ));
    }
    text
}

#[test]
fn libvirt_fixture_defines_and_starts_a_domain() {
    let test = "libvirt_fixture_defines_and_starts_a_domain";
    if !have_libvirt(test) {
        return;
    }
    // The pid: a domain left by a run that was killed never collides.
    let name = format!("maqet-libvirt-selftest-{}", std::process::id());
    let dir = tempfile::tempdir().expect("temp dir");
    let xml = dir.path().join("domain.xml");
    std::fs::write(
        &xml,
        format!(
            "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
</domain>
"
        ),
    )
    .expect("write domain.xml");
    validate(&xml);

    let mut libvirt = Libvirt::start();
    let started: Vec<Pid> = libvirt.started.iter().map(|d| d.pid).collect();
    assert_eq!(libvirt.define(&xml), name);
    assert!(
        libvirt
            .dumpxml(&name)
            .contains(&format!("<name>{name}</name>"))
    );
    assert_eq!(libvirt.domstate_reason(&name), "shut off (unknown)");
    let out = libvirt.virsh(&["start", &name]);
    assert!(
        out.status.success(),
        "virsh start {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = libvirt.qemu_monitor(&name, &serde_json::json!({"execute": "query-status"}));
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(libvirt.domstate_reason(&name), "running (booted)");
    libvirt.ok(&["destroy", &name]);
    assert_eq!(libvirt.domstate_reason(&name), "shut off (destroyed)");
    drop(libvirt);

    for pid in started {
        assert!(gone_within(pid, Duration::ZERO), "pid {pid} still runs");
    }
    // A libvirt started anew would still list a domain left defined.
    let mut libvirt = Libvirt::start();
    // So that a failure here does not leave it either.
    libvirt.track(&name);
    let listed = libvirt.ok(&["list", "--all", "--name"]);
    assert!(
        !listed.lines().any(|l| l == name),
        "{name} is left:\n{listed}"
    );
}
