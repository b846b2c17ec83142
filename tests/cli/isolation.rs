//! Nothing of a user's VMs is reachable by another user: not the QMP,
//! events or console socket, not the database, not the runtime directory.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::guest::{bios_config, have_qemu};
use crate::harness::{Test, have_root};

/// Run `args` as the `nobody` user.
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .expect("run setpriv")
}

fn connect_as_nobody(socket: &str) -> Output {
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint('connected')";
    as_nobody(&["/usr/bin/python3", "-c", script, socket])
}

/// Everything at once: the 0700 directories alone already stop `nobody`
/// here, so the sockets' own modes are tested apart, below.
#[test]
fn another_user_cannot_reach_anything_of_a_running_vm() {
    if !have_qemu("another_user_cannot_reach_anything_of_a_running_vm") {
        return;
    }
    if !have_root("another_user_cannot_reach_anything_of_a_running_vm") {
        return;
    }
    let mut t = Test::new();
    // Open the test's own directory to everyone, so only maqet's modes
    // stand between `nobody` and the files.
    std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t.file("vm.ron", &bios_config("private"));
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    t.args(["start", "private"]).run();
    let vm_dir = t.runtime_dir().join(&id);
    for socket in ["qmp.sock", "events.sock", "console.sock"] {
        let out = connect_as_nobody(vm_dir.join(socket).to_str().expect("utf-8"));
        assert!(!out.status.success(), "nobody connected to {socket}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("PermissionError"),
            "{socket}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let db = t.data_dir().join("maqet.redb");
    let out = as_nobody(&["cat", db.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "nobody read the database");
    let out = as_nobody(&["ls", vm_dir.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "nobody listed the runtime directory");
    let out = as_nobody(&["ls", t.runtime_dir().to_str().expect("utf-8")]);
    assert!(!out.status.success(), "nobody listed the runtime root");
    // And the owner still can.
    t.args(["--json", "status", "private"]).run();
    t.args(["stop", "--force", "private"]).run();
}

/// The message of the error a command fails with (in `--json` form, so
/// not wrapped), after checking it exits 4, refused, as not maqet's socket.
#[track_caller]
fn refusal(t: &mut Test, args: &[&str]) -> String {
    let out = t
        .arg("--json")
        .args(args.iter().copied())
        .status(4)
        .stdout_any()
        .run()
        .stderr_json();
    assert_eq!(out["error"]["exit_code"], 4, "{out}");
    assert_eq!(out["error"]["code"], "maqet::qmp", "{out}");
    out["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {out}"))
        .to_owned()
}

/// The sockets maqet makes for a VM.
const SOCKETS: [&str; 3] = ["console.sock", "events.sock", "qmp.sock"];

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// What `nobody` gets connecting to each socket: "connected", or the
/// error's name.
fn nobody_connects(vm_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    SOCKETS
        .iter()
        .map(|socket| {
            let out = connect_as_nobody(vm_dir.join(socket).to_str().expect("utf-8"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let seen = if out.status.success() {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            } else if stderr.contains("PermissionError") {
                "PermissionError".to_owned()
            } else {
                format!("other: {stderr}")
            };
            (*socket, seen)
        })
        .collect()
}

/// Each of the two layers between another user and a VM's sockets holds
/// alone: the sockets' own 0600, as maqet made them, with the directories
/// opened for passing through (0711); and the 0700 directories, as maqet
/// made them, with the sockets opened to everyone. With both opened,
/// `nobody` connects — so it is each layer that stops it, not the test's
/// set-up.
#[test]
fn each_layer_alone_keeps_another_user_from_the_sockets() {
    let test = "each_layer_alone_keeps_another_user_from_the_sockets";
    if !have_qemu(test) || !have_root(test) {
        return;
    }
    let mut t = Test::new();
    chmod(t.root(), 0o755);
    t.file("vm.ron", &bios_config("layers"));
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    t.args(["start", "layers"]).run();
    let _stop = t.stopper("layers");
    let vm_dir = t.runtime_dir().join(&id);
    let dirs = [t.runtime_dir(), vm_dir.clone()];
    let sockets: Vec<_> = SOCKETS.iter().map(|s| vm_dir.join(s)).collect();
    let made: Vec<(PathBuf, u32)> = dirs
        .iter()
        .chain(&sockets)
        .map(|p| (p.clone(), crate::harness::mode(p)))
        .collect();
    let every = |seen: &str| -> Vec<(&'static str, String)> {
        SOCKETS.iter().map(|s| (*s, seen.to_owned())).collect()
    };

    // The sockets as maqet made them; the directories opened.
    for dir in &dirs {
        chmod(dir, 0o711);
    }
    let sockets_alone = nobody_connects(&vm_dir);
    // Neither layer: the sockets opened too.
    for socket in &sockets {
        chmod(socket, 0o666);
    }
    let neither = nobody_connects(&vm_dir);
    // The directories as maqet made them; the sockets still open.
    for (path, mode) in &made[..dirs.len()] {
        chmod(path, *mode);
    }
    let dirs_alone = nobody_connects(&vm_dir);
    // Everything as maqet made it: it refuses open directories.
    for (path, mode) in &made {
        chmod(path, *mode);
    }

    assert_eq!(sockets_alone, every("PermissionError"), "the sockets alone");
    assert_eq!(neither, every("connected"), "neither layer");
    assert_eq!(
        dirs_alone,
        every("PermissionError"),
        "the directories alone"
    );
    t.args(["stop", "--force", "layers"])
        .stdout("stopped layers: QEMU quit\n")
        .run();
}

/// Every socket maqet makes for a VM — found by walking its runtime
/// directory, so a new one is not missed — is ours, 0600, in a 0700
/// directory, whatever the umask.
#[test]
fn every_socket_of_a_vm_is_private() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !have_qemu("every_socket_of_a_vm_is_private") {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("sockets"));
    let id = t
        .umask(0o000)
        .args(["add", "vm.ron"])
        .run()
        .stdout
        .trim()
        .to_owned();
    t.umask(0o000).args(["start", "sockets"]).run();
    let _stop = t.stopper("sockets");
    let vm_dir = t.runtime_dir().join(&id);
    let mut sockets = Vec::new();
    for entry in std::fs::read_dir(&vm_dir).expect("read the runtime dir") {
        let entry = entry.expect("an entry");
        let meta = std::fs::symlink_metadata(entry.path()).expect("lstat");
        if meta.file_type().is_socket() {
            let name = entry.file_name().into_string().expect("utf-8");
            assert_eq!(meta.mode() & 0o7777, 0o600, "{name}");
            assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw(), "{name}");
            sockets.push(name);
        }
    }
    sockets.sort();
    assert_eq!(sockets, SOCKETS, "the sockets maqet makes");
    assert_eq!(crate::harness::mode(&vm_dir), 0o700);
    assert_eq!(crate::harness::mode(&t.runtime_dir()), 0o700);
    t.args(["stop", "--force", "sockets"]).stdout_any().run();
}

/// The lstat checks before connecting, each failed alone on a running VM
/// whose QEMU still listens: a socket another user owns, a directory
/// another user owns, a directory others can enter. Each is refused as
/// not ours, with what was wrong — for QMP and the console alike.
#[test]
fn a_socket_or_directory_not_ours_is_refused() {
    let test = "a_socket_or_directory_not_ours_is_refused";
    if !have_qemu(test) || !have_root(test) {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("owned"));
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    t.args(["start", "owned"]).run();
    let _stop = t.stopper("owned");
    let vm_dir = t.runtime_dir().join(&id);
    let refused = |socket: &str, reason: &str| {
        format!(
            "QMP: refusing QMP socket {}: {reason}",
            vm_dir.join(socket).display()
        )
    };

    for (socket, args) in [
        ("qmp.sock", &["qmp", "owned", "query-status"][..]),
        ("console.sock", &["console", "owned"][..]),
    ] {
        let path = vm_dir.join(socket);
        std::os::unix::fs::lchown(&path, Some(65534), None).expect("chown the socket");
        let message = refusal(&mut t, args);
        std::os::unix::fs::lchown(&path, Some(0), None).expect("chown it back");
        assert_eq!(
            message,
            refused(socket, "it is owned by uid 65534, not 0"),
            "{socket}"
        );
    }

    let qmp = ["qmp", "owned", "query-status"];
    std::os::unix::fs::lchown(&vm_dir, Some(65534), None).expect("chown the dir");
    let message = refusal(&mut t, &qmp);
    std::os::unix::fs::lchown(&vm_dir, Some(0), None).expect("chown it back");
    assert_eq!(
        message,
        refused(
            "qmp.sock",
            &format!(
                "its directory {} is owned by uid 65534, not 0",
                vm_dir.display()
            )
        )
    );

    chmod(&vm_dir, 0o711);
    let message = refusal(&mut t, &qmp);
    chmod(&vm_dir, 0o700);
    assert_eq!(
        message,
        refused(
            "qmp.sock",
            &format!(
                "its directory {} has mode 0711; others could replace the socket",
                vm_dir.display()
            )
        )
    );

    // All checks passing, the same command reaches QEMU.
    t.args(qmp).stdout_contains("running").run();
}

/// A child process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A listener running as another user, on a socket that passes every lstat
/// check (ours, 0600, in our 0700 directory): bound by root, which then
/// becomes `nobody` and listens, as a process that took over the path
/// would. `SO_PEERCRED` names whoever called listen(), so maqet sees
/// `nobody` and refuses — though the impostor answers QMP like QEMU.
#[test]
fn a_listener_running_as_another_user_is_refused() {
    use std::io::BufRead as _;
    let test = "a_listener_running_as_another_user_is_refused";
    if !have_qemu(test) || !have_root(test) {
        return;
    }
    let mut t = Test::new();
    t.file("vm.ron", &bios_config("peer"));
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    t.args(["start", "peer"]).run();
    let _stop = t.stopper("peer");
    let vm_dir = t.runtime_dir().join(&id);
    let script = r#"
import json, os, socket, sys
path = sys.argv[1]
os.umask(0o077)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o600)
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    try:
        f.write(b'{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}\r\n')
        f.flush()
        for line in f:
            req = json.loads(line)
            reply = {"return": {"status": "impostor", "running": True, "singlestep": False}, "id": req.get("id")}
            f.write((json.dumps(reply) + "\r\n").encode())
            f.flush()
    except OSError:
        pass
    c.close()
"#;
    for (socket, args) in [
        ("qmp.sock", &["qmp", "peer", "query-status"][..]),
        ("console.sock", &["console", "peer"][..]),
    ] {
        let path = vm_dir.join(socket);
        std::fs::remove_file(&path).expect("remove QEMU's socket");
        let mut impostor = Killed(
            std::process::Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3"),
        );
        let mut line = String::new();
        std::io::BufReader::new(impostor.0.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the impostor's ready line");
        assert_eq!(line, "ready\n");
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600), "{socket}");
        let message = refusal(&mut t, args);
        drop(impostor);
        assert_eq!(
            message,
            format!(
                "QMP: refusing QMP socket {}: the process listening on it runs as uid 65534, not 0",
                path.display()
            ),
            "{socket}"
        );
    }
    t.args(["stop", "--force", "peer"])
        .stdout("stopped peer: QEMU was killed\n")
        .run();
}
