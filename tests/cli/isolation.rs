//! Nothing of a user's VMs is reachable by another user: not the QMP,
//! events or console socket, not the database, not the runtime directory.

use std::os::unix::fs::PermissionsExt;
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
