//! cloud-init seeds, `maqet ssh` and `run --image` (docs/cloud-init.md),
//! against the test guest: with `maqet.seed` it finds the seed by its
//! label, prints the sha256 of each file, and runs an SSH server for the
//! seed's user and keys, with a new host key at every boot.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::guest::{READY, guest, have_qemu};
use crate::harness::{Test, needs};

/// A key pair in `dir` (`NAME` and `NAME.pub`); the public line.
fn keygen(dir: &Path, name: &str) -> String {
    std::fs::create_dir_all(dir).expect("mkdir");
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tester@maqet", "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(key.with_extension("pub"))
        .expect("read the public key")
        .trim()
        .to_owned()
}

/// True when `program` is an executable file in PATH (some have no
/// `--version` to run).
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn have_ssh(test: &str) -> bool {
    needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        ["isoinfo", "ssh", "ssh-keygen", "sha256sum"]
            .iter()
            .all(|p| on_path(p)),
        "isoinfo (genisoimage), ssh, ssh-keygen or sha256sum is missing",
    )
}

/// A new, empty qcow2 image.
fn new_qcow2(path: &Path, size: &str) {
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test guest with a seed: its user-data read by the guest, which
/// runs Dropbear on guest port 22, forwarded from `port`.
fn seeded_config(name: &str, port: u16, cloud_init: &str) -> String {
    let g = guest();
    format!(
        "(name: \"{name}\", accel: Tcg, memory: \"256M\",
 boot: (kernel: \"{}\", initrd: \"{}\", append: \"console=ttyS0 panic=-1 maqet.seed\"),
 network: [User(name: \"net0\", forwards: [(host: {port}, guest: 22)])],
 cloud_init: {cloud_init})
",
        g.kernel.display(),
        g.initrd.display()
    )
}

/// A file of the seed, read by isoinfo (genisoimage), not by maqet.
fn seed_file(seed: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("isoinfo")
        .args(["-J", "-x", &format!("/{name}"), "-i"])
        .arg(seed)
        .output()
        .expect("run isoinfo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_owned()
}

fn wait_for_console(console: &Path, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let text = std::fs::read_to_string(console).unwrap_or_default();
        if text.contains(marker) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {marker} in:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seed maqet writes is what the guest reads (the sha256 of each file
/// as the guest's kernel sees it equals isoinfo's, and user-data is the
/// `#cloud-config` docs/cloud-init.md shows); `maqet ssh` logs in with the
/// key and passes the exit status through; a changed host key and a key
/// the guest does not know are refused.
#[test]
fn the_guest_reads_the_seed_and_maqet_ssh_logs_in() {
    let test = "the_guest_reads_the_seed_and_maqet_ssh_logs_in";
    if !have_qemu(test) || !have_ssh(test) {
        return;
    }
    let mut t = Test::new();
    let key = keygen(&t.path(".ssh"), "id_ed25519");
    let port = crate::harness::claim_port();
    t.file(
        "vm.ron",
        &seeded_config(
            "ci",
            port,
            "(user: \"tester\", ssh_authorized_keys: [\"~/.ssh/id_ed25519.pub\"], hostname: \"seeded\")",
        ),
    );
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    let _stop = t.stopper("ci");
    t.args(["start", "ci", "--wait-for", "ssh", "--timeout", "180"])
        .stdout_any()
        .kvm_fallback_ok()
        .run();
    let seed = t.data_dir().join("disks").join(&id).join("cidata.iso");
    assert_eq!(crate::harness::mode(&seed), 0o600);
    let user_data = seed_file(&seed, "user-data");
    let meta_data = seed_file(&seed, "meta-data");
    assert_eq!(
        String::from_utf8_lossy(&user_data),
        format!(
            "#cloud-config
users:
  - name: \"tester\"
    shell: /bin/bash
    sudo: \"ALL=(ALL) NOPASSWD:ALL\"
    lock_passwd: true
    ssh_authorized_keys:
      - \"{key}\"
hostname: \"seeded\"
"
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&meta_data),
        format!("instance-id: maqet-{id}\nlocal-hostname: seeded\n")
    );
    let console = t.runtime_dir().join(&id).join("console.log");
    let text = wait_for_console(&console, READY);
    assert!(
        text.contains(&format!("MAQET-SEED user-data {}", sha256(&user_data))),
        "{text}"
    );
    assert!(
        text.contains(&format!("MAQET-SEED meta-data {}", sha256(&meta_data))),
        "{text}"
    );

    let known = t.data_dir().join("known_hosts").join(&id);
    let private = t.path(".ssh/id_ed25519");
    t.args(["ssh", "ci", "--print"])
        .stdout(&format!(
            "/usr/bin/ssh -p {port} -o StrictHostKeyChecking=accept-new -o \
             'UserKnownHostsFile=\"{}\"' -o HostKeyAlias=maqet-{id} -o BatchMode=yes -o \
             'IdentityFile=\"{}\"' -- tester@127.0.0.1\n",
            known.display(),
            private.display()
        ))
        .run();
    t.args(["ssh", "ci", "--", "echo", "ok", "$(hostname)"])
        .stdout("ok seeded\n")
        .stderr_contains("Permanently added")
        .run();
    assert_eq!(crate::harness::mode(&known), 0o600);
    t.args(["ssh", "ci", "--", "exit", "7"]).status(7).run();

    // A new boot has a new host key: refused, not accepted again.
    t.args(["stop", "ci"]).stdout_any().run();
    t.args(["start", "ci", "--wait-for", "ssh", "--timeout", "180"])
        .stdout_any()
        .kvm_fallback_ok()
        .run();
    t.args(["ssh", "ci", "--", "true"])
        .status(255)
        .stderr_contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        .run();

    // A key the seed does not hold is refused by the guest.
    std::fs::remove_file(&known).expect("forget the host key");
    let other = keygen(&t.path("other"), "key");
    t.file(
        "other.ron",
        &format!("(cloud_init: (user: \"tester\", ssh_authorized_keys: [\"{other}\"]))\n"),
    );
    t.args(["apply", "ci", "other.ron"]).stdout_any().run();
    t.args(["stop", "ci"]).stdout_any().run();
    t.args(["start", "ci", "--wait-for", "ssh", "--timeout", "180"])
        .stdout_any()
        .kvm_fallback_ok()
        .run();
    t.args(["ssh", "ci", "--", "true"])
        .status(255)
        .stderr_contains("Permission denied (publickey)")
        .run();
}

/// What `maqet ssh` cannot do is said before anything runs.
#[test]
fn maqet_ssh_says_what_is_missing() {
    let mut t = Test::new();
    t.add_empty("bare");
    t.args(["ssh", "bare"])
        .status(3)
        .stderr_contains("VM `bare` forwards no host port to guest port 22")
        .run();
    t.file(
        "fwd.ron",
        "(name: \"fwd\", network: [User(name: \"n\", forwards: [(host: 2222, guest: 22)])])\n",
    );
    t.args(["add", "fwd.ron"]).stdout_any().run();
    t.args(["ssh", "fwd", "--", "true"])
        .status(1)
        .stderr_contains("VM `fwd` is not running (created)")
        .run();
    let empty = t.path("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    t.args(["ssh", "fwd"])
        .env("PATH", &empty)
        .status(3)
        .stderr_contains("ssh is not installed")
        .run();
}

/// A cloud_init section is checked at `add` like every other field, and
/// a refusal quotes no key file (it may be a private key given by mistake).
#[test]
fn a_bad_cloud_init_section_is_refused_at_add() {
    let mut t = Test::new();
    let test = "a_bad_cloud_init_section_is_refused_at_add";
    if !needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        on_path("ssh-keygen"),
        "ssh-keygen is missing",
    ) {
        return;
    }
    keygen(&t.path("keys"), "k");
    let private = std::fs::read_to_string(t.path("keys/k")).expect("read");
    for (section, message) in [
        (
            "(ssh_authorized_keys: [\"ssh-ed25519 AAAA\"])",
            "the ssh-ed25519 key's data is not a ssh-ed25519 key",
        ),
        (
            "(ssh_authorized_keys: [\"keys/k\"])",
            "line 1 of SSH key file",
        ),
        (
            "(user: \"Root\", ssh_authorized_keys: [\"keys/k.pub\"])",
            "`Root` is not an account name",
        ),
        (
            "(hostname: \"-x\", ssh_authorized_keys: [\"keys/k.pub\"])",
            "`-x` is not a host name",
        ),
        (
            "(user_data: \"keys/k.pub\", ssh_authorized_keys: [\"keys/k.pub\"])",
            "cloud_init.user_data does not start with a line cloud-init knows",
        ),
        (
            "()",
            "cloud_init has no ssh_authorized_keys, and ~/.ssh has no *.pub file",
        ),
    ] {
        t.file(
            "vm.ron",
            &format!("(name: \"vm\", cloud_init: {section})\n"),
        );
        let out = t
            .args(["add", "vm.ron"])
            .status(3)
            .stderr_contains(message)
            .run();
        assert!(
            !out.stderr.contains(private.lines().nth(1).unwrap()),
            "{}",
            out.stderr
        );
    }
    t.file(
        "vm.ron",
        "(name: \"vm\", storage: [Raw(name: \"cidata\", file: \"d.img\", size: \"1M\")])\n",
    );
    t.args(["add", "vm.ron"])
        .status(3)
        .stderr_contains("the drive name `cidata` is maqet's, for the cloud-init seed")
        .run();
    assert!(t.list().is_empty(), "a refused add stored a VM");
}

/// `run --image`: the root disk is a new overlay on the image, which is
/// never written; cloud-init is attached; `--rm` removes the VM and its
/// overlay once it stops.
#[test]
fn run_image_boots_an_overlay_and_never_writes_the_base() {
    let test = "run_image_boots_an_overlay_and_never_writes_the_base";
    if !have_qemu(test) || !have_ssh(test) {
        return;
    }
    let mut t = Test::new();
    keygen(&t.path(".ssh"), "id_ed25519");
    new_qcow2(&t.path("base.qcow2"), "64M");
    let before = sha256(&std::fs::read(t.path("base.qcow2")).expect("read"));
    let out = t
        .args([
            "--json",
            "run",
            "--image",
            "base.qcow2",
            "--name",
            "img",
            "--rm",
            "--wait-for",
            "qmp",
            "--disk-size",
            "1G",
        ])
        .kvm_fallback_ok()
        .run();
    assert_eq!(out.json()["name"], "img");
    let _stop = t.stopper("img");
    let info = t.args(["--json", "info", "img"]).run().json();
    let root = &info["config"]["storage"][0];
    assert_eq!(root["backing_file"], t.path("base.qcow2").to_str().unwrap());
    assert_eq!(root["backing_format"], "qcow2");
    assert_eq!(root["size"], "1G");
    assert!(info["config"]["cloud_init"].is_object(), "{info}");
    let block = t.args(["qmp", "img", "query-block"]).run().json();
    let files: Vec<&str> = block
        .as_array()
        .expect("an array")
        .iter()
        .map(|b| b["qdev"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(files.len(), 2, "{block}");
    t.args(["stop", "--force", "img"]).stdout_any().run();
    assert!(t.list().is_empty(), "--rm left the VM");
    assert_eq!(
        sha256(&std::fs::read(t.path("base.qcow2")).expect("read")),
        before
    );
    let disks = t.data_dir().join("disks");
    let left: Vec<_> = std::fs::read_dir(&disks)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|d| std::fs::read_dir(d).map_or(true, |mut e| e.next().is_none())),
        "--rm left images: {left:?}"
    );

    // Read as qcow2 unless told otherwise: a raw image is not probed.
    std::fs::write(t.path("raw.img"), vec![0; 1 << 20]).expect("write");
    t.args(["run", "--image", "raw.img", "--wait-for", "qmp"])
        .status(3)
        .stderr_contains("Image is not in")
        .run();
    t.args(["run", "--ssh"])
        .status(2)
        .stderr_contains("--ssh goes with --image")
        .run();
    t.args(["run", "--image", "base.qcow2", "--", "uname"])
        .status(2)
        .stderr_contains("--image runs a VM of its own and takes no config files")
        .run();
    assert!(t.list().is_empty());
}

/// True when a QEMU for the VM `name` runs (its `-name guest=NAME,`).
fn qemu_runs(name: &str) -> bool {
    let needle = format!("guest={name},");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
}

/// Found by a black-box attack: `maqet ssh` went to the stored config's
/// port after an `apply`, which another user's VM could be listening on;
/// it goes to the running QEMU's forward. And a `run --rm` whose wait
/// timed out removed the VM but left its QEMU running, unnamed.
#[test]
fn ssh_follows_the_running_forward_and_a_timed_out_run_rm_leaves_no_qemu() {
    let test = "ssh_follows_the_running_forward_and_a_timed_out_run_rm_leaves_no_qemu";
    if !have_qemu(test) || !have_ssh(test) {
        return;
    }
    let mut t = Test::new();
    let (first, second) = (crate::harness::claim_port(), crate::harness::claim_port());
    t.file(
        "vm.ron",
        &format!(
            "(name: \"fw\", accel: Tcg, memory: \"64M\", network: [User(name: \"n\", forwards: [(host: {first}, guest: 22)])])\n"
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    let _stop = t.stopper("fw");
    t.args(["start", "fw"]).stdout_any().kvm_fallback_ok().run();
    t.file(
        "moved.ron",
        &format!("(network: [User(name: \"n\", forwards: [(host: {second}, guest: 22)])])\n"),
    );
    t.args(["apply", "fw", "moved.ron"]).stdout_any().run();
    let out = t.args(["ssh", "fw", "--print"]).run();
    assert!(
        out.stdout.contains(&format!(" -p {first} ")),
        "{}",
        out.stdout
    );
    t.args(["stop", "--force", "fw"]).stdout_any().run();
    let known = t.data_dir().join("known_hosts");
    t.args(["rm", "fw"]).stdout_any().run();
    assert_eq!(
        std::fs::read_dir(&known).map(|d| d.count()).unwrap_or(0),
        0,
        "rm left the VM's known_hosts file"
    );

    // A data directory with a space and a percent sign reaches ssh quoted.
    let odd = t.path("my vms 100%");
    std::fs::create_dir(&odd).expect("mkdir");
    let data = odd.join("data");
    let data = data.to_str().unwrap();
    t.args(["--data-dir", data, "add", "vm.ron", "--name", "odd"])
        .stdout_any()
        .run();
    let _stop_odd = t.stopper("odd");
    let _ = t
        .args(["--data-dir", data, "start", "odd"])
        .stdout_any()
        .kvm_fallback_ok()
        .run();
    let out = t.args(["--data-dir", data, "ssh", "odd", "--print"]).run();
    assert!(
        out.stdout.contains(&format!(
            "'UserKnownHostsFile=\"{}/known_hosts/",
            data.replace('%', "%%")
        )),
        "{}",
        out.stdout
    );
    t.args(["--data-dir", data, "stop", "--force", "odd"])
        .stdout_any()
        .run();

    // --rm with a wait that times out: the VM and its QEMU both go.
    let name = format!("rmto{}", std::process::id());
    keygen(&t.path(".ssh"), "id_ed25519");
    new_qcow2(&t.path("blank.qcow2"), "16M");
    t.args([
        "run",
        "--image",
        "blank.qcow2",
        "--name",
        &name,
        "--rm",
        "--memory",
        "64M",
        "--timeout",
        "2",
    ])
    .status(5)
    .stderr_contains("was removed (run --rm)")
    .kvm_fallback_ok()
    .run();
    assert!(!qemu_runs(&name), "a QEMU of the removed VM still runs");
    assert!(t.list().is_empty());
}

/// Found by a black-box attack: the user data was checked by name and read
/// again by name, so a directory swapped in between put a hidden file of
/// the home into the seed; a hard link did too; and a key file's bad line
/// was quoted in the error.
#[test]
fn user_data_is_read_where_it_was_checked_with_one_name_and_key_files_are_not_quoted() {
    let test = "user_data_is_read_where_it_was_checked_with_one_name_and_key_files_are_not_quoted";
    if !have_ssh(test) {
        return;
    }
    let mut t = Test::new();
    let key = keygen(&t.path("keys"), "k");
    std::fs::create_dir(t.path(".config")).expect("mkdir");
    t.file(".config/ud.yaml", "#cloud-config\n# TOKEN=topsecret\n");
    std::fs::create_dir(t.path("share")).expect("mkdir");
    t.file("share/sub/ud.yaml", "#cloud-config\n# nothing secret\n");
    std::os::unix::fs::symlink(t.path(".config"), t.path("share/lnk")).expect("symlink");
    t.file(
        "vm.ron",
        &format!(
            "(name: \"ud\", cloud_init: (ssh_authorized_keys: [\"{key}\"], user_data: \"share/sub/ud.yaml\"))\n"
        ),
    );
    let id = t.args(["add", "vm.ron"]).run().stdout.trim().to_owned();
    let seed = t.data_dir().join("disks").join(&id).join("cidata.iso");
    // Another process swaps `sub` and `lnk` as fast as it can while the
    // seed is written again and again (`export` writes it as `start` does).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (a, b) = (t.path("share/sub"), t.path("share/lnk"));
        std::thread::spawn(move || {
            let (a, b) = (
                std::ffi::CString::new(a.to_str().unwrap()).unwrap(),
                std::ffi::CString::new(b.to_str().unwrap()).unwrap(),
            );
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                crate::harness::exchange(&a, &b);
            }
        })
    };
    let mut leaked = 0;
    for _ in 0..150 {
        let out = t
            .command(["export", "ud", "--to", "libvirt", "--accel", "tcg"])
            .output()
            .expect("run maqet");
        if out.status.success()
            && String::from_utf8_lossy(&seed_file(&seed, "user-data")).contains("topsecret")
        {
            leaked += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().expect("the swapper");
    assert_eq!(leaked, 0, "a hidden file of the home reached the seed");

    // A hard link to a hidden file: refused at add, and at start.
    std::fs::hard_link(t.path(".config/ud.yaml"), t.path("linked.yaml")).expect("link");
    t.file(
        "linked.ron",
        &format!("(name: \"hl\", cloud_init: (ssh_authorized_keys: [\"{key}\"], user_data: \"linked.yaml\"))\n"),
    );
    t.args(["add", "linked.ron"])
        .status(3)
        .stderr_contains("has 2 names (hard links)")
        .run();

    // A key file's lines are never quoted.
    t.file("token.env", "GITHUB_TOKEN=ghp_s3cret # ci\n");
    t.file(
        "tok.ron",
        "(name: \"tok\", cloud_init: (ssh_authorized_keys: [\"token.env\"]))\n",
    );
    let out = t.args(["--json", "add", "tok.ron"]).status(3).run();
    assert!(!out.stderr.contains("ghp_s3cret"), "{}", out.stderr);
    assert!(!out.stderr.contains("GITHUB_TOKEN"), "{}", out.stderr);
    assert_eq!(
        out.stderr_json()["error"]["message"],
        format!(
            "tok.ron: line 1 of SSH key file {} is not an OpenSSH public key (`TYPE BASE64 \
             [COMMENT]` of a known type)",
            t.path("token.env").display()
        )
    );
}

/// Found by the real-image check: with no keys listed, maqet seeds every
/// `$HOME/.ssh/*.pub`, but ssh looks for its keys in the password
/// database's home; `maqet ssh` names the seeded ones. And `rm --force`
/// of a running `run --rm` VM, which its own stop removes, reports it
/// removed instead of "not found".
#[test]
fn ssh_offers_the_seeded_default_keys_and_rm_force_of_a_run_rm_vm_succeeds() {
    let test = "ssh_offers_the_seeded_default_keys_and_rm_force_of_a_run_rm_vm_succeeds";
    if !have_qemu(test) || !have_ssh(test) {
        return;
    }
    let mut t = Test::new();
    keygen(&t.path(".ssh"), "id_ed25519");
    let port = crate::harness::claim_port();
    t.file(
        "vm.ron",
        &format!(
            "(name: \"dk\", accel: Tcg, memory: \"64M\", network: [User(name: \"n\", forwards: [(host: {port}, guest: 22)])], cloud_init: ())\n"
        ),
    );
    t.args(["add", "vm.ron"]).stdout_any().run();
    let _stop = t.stopper("dk");
    t.args(["start", "dk"]).stdout_any().kvm_fallback_ok().run();
    let out = t.args(["ssh", "dk", "--print"]).run();
    let key = t.path(".ssh/id_ed25519");
    assert!(
        out.stdout
            .contains(&format!("'IdentityFile=\"{}\"'", key.display())),
        "{}",
        out.stdout
    );
    t.args(["stop", "--force", "dk"]).stdout_any().run();

    t.args(["run", "--rm", "--name", "gone"])
        .stdout_any()
        .kvm_fallback_ok()
        .run();
    let _stop_gone = t.stopper("gone");
    t.args(["rm", "--force", "gone"])
        .stdout_contains("removed gone")
        .run();
    assert!(t.list().iter().all(|vm| vm["name"] != "gone"));
}

/// Found by a second black-box attack: a user data or key file another
/// user can write would let them add a key or a `runcmd` to the guest's
/// cloud-init (which runs as root there); such files are refused.
#[test]
fn seed_inputs_others_can_write_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mut t = Test::new();
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXUGg5bC/Y0mJHbJ9w1c6X8Fj4Y3w7Xo1pD0rm0Kp2E me@host";
    t.file("k.pub", &format!("{key}\n"));
    t.file("ud.yaml", "#cloud-config\nruncmd: [true]\n");
    for (file, section) in [
        ("k.pub", "(ssh_authorized_keys: [\"k.pub\"])".to_owned()),
        (
            "ud.yaml",
            format!("(ssh_authorized_keys: [\"{key}\"], user_data: \"ud.yaml\")"),
        ),
    ] {
        std::fs::set_permissions(t.path(file), std::fs::Permissions::from_mode(0o666))
            .expect("chmod");
        t.file(
            "vm.ron",
            &format!("(name: \"vm\", cloud_init: {section})\n"),
        );
        t.args(["add", "vm.ron"])
            .status(3)
            .stderr_contains("others can write it (mode 0666)")
            .run();
        std::fs::set_permissions(t.path(file), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        t.args(["add", "vm.ron"]).stdout_any().run();
        t.args(["rm", "vm"]).stdout_any().run();
    }
}
