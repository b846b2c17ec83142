//! The store under pressure: a held lock, parallel writers, and writers
//! killed mid-flight.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::harness::{Test, seeded};

#[test]
fn a_busy_store_times_out_with_exit_5() {
    let mut t = Test::new();
    t.add_empty("web");
    let before = t.list();
    let lock_path = t.data_dir().join("maqet.lock");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .expect("open the lock file");
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("take the lock");
    let out = t
        .env("MAQET_LOCK_TIMEOUT_MS", "300")
        .args(["add", "--empty", "--name", "db"])
        .status(5)
        .stderr_contains("the maqet store is busy")
        .stderr_contains(lock_path.to_str().expect("UTF-8"))
        .run();
    assert!(out.stderr.contains("maqet::busy"), "{}", out.stderr);
    // Readers wait for the lock as well.
    t.env("MAQET_LOCK_TIMEOUT_MS", "300")
        .args(["ls"])
        .status(5)
        .run();
    drop(lock);
    assert_eq!(t.list(), before);
    t.add_empty("db");
}

#[test]
fn a_lock_held_briefly_is_waited_for() {
    let mut t = Test::new();
    t.add_empty("web");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(t.data_dir().join("maqet.lock"))
        .expect("open the lock file");
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("take the lock");
    let mut child = t
        .command(["add", "--empty", "--name", "db"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn maqet");
    // Released only once the kernel shows the child queued for it: a child
    // that gave up, or never asked, fails here rather than passing late.
    wait_until_queued(&mut child, &t.data_dir().join("maqet.lock"));
    drop(lock);
    let status = wait(child);
    assert_eq!(status, Some(0));
    assert_eq!(t.list().len(), 2);
}

/// Wait until `child` is blocked in `flock` on `path`: /proc/locks lists a
/// blocked request as `N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ...`.
/// Fails if the child exits first. The bound only stops a hung test: a
/// queued child shows within milliseconds.
fn wait_until_queued(child: &mut Child, path: &std::path::Path) {
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(path).expect("stat the lock").ino();
    let (pid, inode) = (child.id().to_string(), inode.to_string());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let locks = std::fs::read_to_string("/proc/locks").expect("read /proc/locks");
        let queued = locks.lines().any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() >= 7
                && f[1..5] == ["->", "FLOCK", "ADVISORY", "WRITE"]
                && f[5] == pid
                && f[6].rsplit(':').next() == Some(inode.as_str())
        });
        if queued {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll maqet") {
            panic!("maqet exited ({status}) instead of waiting for the lock");
        }
        assert!(
            Instant::now() < deadline,
            "maqet never queued for the lock:\n{locks}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait(mut child: Child) -> Option<i32> {
    child.wait().expect("wait for maqet").code()
}

#[test]
fn parallel_adds_all_land() {
    let mut t = Test::new();
    let children: Vec<(String, Child)> = (0..32)
        .map(|i| {
            let name = format!("vm{i:02}");
            let child = t
                .command(["add", "--empty", "--name", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn maqet");
            (name, child)
        })
        .collect();
    for (name, child) in children {
        let out = child.wait_with_output().expect("wait for maqet");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let vms = t.list();
    let names: Vec<String> = vms
        .iter()
        .map(|vm| vm["name"].as_str().expect("name").to_owned())
        .collect();
    let want: Vec<String> = (0..32).map(|i| format!("vm{i:02}")).collect();
    assert_eq!(names, want);
}

#[test]
fn parallel_adds_of_one_name_let_exactly_one_win() {
    let mut t = Test::new();
    for round in 0..10 {
        let name = format!("vm{round}");
        let children: Vec<Child> = (0..2)
            .map(|_| {
                t.command(["add", "--empty", "--name", &name])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn maqet")
            })
            .collect();
        let mut codes: Vec<i32> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("wait for maqet");
                let code = out.status.code().expect("exited");
                if code == 3 {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert!(stderr.contains("already exists"), "{stderr}");
                }
                code
            })
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [0, 3], "round {round}");
    }
    assert_eq!(t.list().len(), 10);
}

/// Every VM `ls` shows resolves by name and by id to the same record.
fn check_consistent(t: &mut Test, context: &str) -> BTreeMap<String, String> {
    let out = t.args(["--json", "ls"]).run();
    let mut listed = BTreeMap::new();
    for vm in out.json().as_array().expect("ls prints an array") {
        let name = vm["name"].as_str().expect("name").to_owned();
        let id = vm["id"].as_str().expect("id").to_owned();
        assert!(
            listed.insert(name.clone(), id).is_none(),
            "{context}: {name} listed twice"
        );
    }
    for (name, id) in &listed {
        let by_name = t.args(["--json", "info", name]).run().json();
        assert_eq!(by_name["id"], id.as_str(), "{context}: info {name}");
        let by_id = t.args(["--json", "info", id]).run().json();
        assert_eq!(by_id["name"], name.as_str(), "{context}: info {id}");
    }
    listed
}

/// How long an `add` takes here (the quickest of three, in a fresh data
/// dir, as the first `add` also creates it), so that kills can be spread
/// over a whole run however fast or loaded the machine is.
fn time_one_add() -> u64 {
    (0..3)
        .map(|_| {
            let t = Test::new();
            let start = Instant::now();
            let status = t
                .command(["add", "--empty", "--name", "timed"])
                .stdout(Stdio::null())
                .status()
                .expect("run maqet");
            assert!(status.success());
            u64::try_from(start.elapsed().as_micros()).expect("a short time")
        })
        .min()
        .expect("three runs")
}

#[test]
fn writers_killed_mid_flight_leave_a_consistent_store() {
    let mut t = Test::new();
    let mut rng = seeded("writers_killed_mid_flight_leave_a_consistent_store");
    let seed = rng.seed();
    let one_add = time_one_add();
    let mut survivors: Vec<String> = Vec::new();
    let mut killed: Vec<String> = Vec::new();
    for round in 0..40 {
        // Three writers queue for the lock; one of them dies at a random
        // point of the first two thirds of the time the three take.
        let children: Vec<(String, Child)> = (0..3)
            .map(|i| {
                let name = format!("r{round}-{i}");
                let child = t
                    .command(["add", "--empty", "--name", &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn maqet");
                (name, child)
            })
            .collect();
        let victim = usize::try_from(rng.below(3)).expect("small");
        std::thread::sleep(Duration::from_micros(rng.below(2 * one_add)));
        for (i, (name, mut child)) in children.into_iter().enumerate() {
            if i == victim {
                // It may have finished already; then it simply stays.
                let _ = child.kill();
                let status = child.wait().expect("wait for maqet");
                if status.code() == Some(0) {
                    survivors.push(name);
                } else {
                    killed.push(name);
                }
            } else {
                assert_eq!(
                    wait(child),
                    Some(0),
                    "seed {seed}, round {round}: {name} should have been added"
                );
                survivors.push(name);
            }
        }
        // The store always opens.
        t.args(["ls"]).run();
    }
    assert!(
        killed.len() >= 3,
        "seed {seed}: only {} of 40 kills landed before the writer finished; \
         the test did not test much",
        killed.len()
    );
    let listed = check_consistent(&mut t, &format!("seed {seed}"));
    for name in &survivors {
        assert!(listed.contains_key(name), "seed {seed}: {name} was lost");
    }
    for name in listed.keys() {
        assert!(
            survivors.contains(name) || killed.contains(name),
            "seed {seed}: {name} came from nowhere"
        );
    }
    // And it still takes writes.
    t.add_empty("after");
}

#[test]
fn killing_the_first_add_leaves_a_usable_data_dir() {
    // A kill lands in the unsafe moment of an in-place initialisation in
    // about one round in twelve: 15 rounds missed it one run in three, 40
    // miss it about one run in thirty.
    const ROUNDS: u64 = 40;
    let mut rng = seeded("killing_the_first_add_leaves_a_usable_data_dir");
    let seed = rng.seed();
    let one_add = time_one_add();
    let mut landed = 0;
    for round in 0..ROUNDS {
        let mut t = Test::new();
        let mut child = t
            .command(["add", "--empty", "--name", "first"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn maqet");
        std::thread::sleep(Duration::from_micros(rng.below(one_add)));
        let _ = child.kill();
        let finished = child.wait().expect("wait for maqet").code() == Some(0);
        if !finished {
            landed += 1;
        }
        let context = format!("seed {seed}, round {round}");
        let listed = check_consistent(&mut t, &context);
        assert!(
            listed.is_empty() || listed.contains_key("first"),
            "{context}: {listed:?}"
        );
        if finished {
            assert!(listed.contains_key("first"), "{context}: first was lost");
        }
        t.add_empty("second");
        assert_eq!(check_consistent(&mut t, &context).len(), listed.len() + 1);
    }
    assert!(
        landed >= 3,
        "seed {seed}: only {landed} of {ROUNDS} kills landed"
    );
}
