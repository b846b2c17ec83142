//! maqet as a whole under load and faults (issue 7): 64 concurrent
//! processes of mixed commands checked against a serial history, and
//! `kill -9` of `apply`, `rm` and `start` at random points, checked for
//! whole records, agreeing names and ids, no orphaned QEMU, no stray
//! runtime dirs, and redb's own integrity check.
//!
//! CI runs them as they are. scripts/stress runs them again and again with
//! two knobs: `MAQET_STRESS_SEED=N` replays a failure's choices (every
//! failure names its seed; the kill timings are the clock's, so a replay
//! repeats what was killed, not exactly when), and `MAQET_STRESS_SCALE=N`
//! multiplies the kill tests' rounds (default 1: 300 and 60). Each test
//! ends with one `stress-summary:` line of `key=value` figures for it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Rng, Test, is_id, seeded};

/// `rounds` times `MAQET_STRESS_SCALE` (a whole number from 1; unset is 1,
/// what CI runs).
fn scaled(rounds: usize) -> usize {
    let Ok(scale) = std::env::var("MAQET_STRESS_SCALE") else {
        return rounds;
    };
    match scale.trim().parse::<usize>() {
        Ok(n) if n >= 1 => rounds * n,
        _ => panic!("MAQET_STRESS_SCALE={scale:?}: not a whole number from 1"),
    }
}

/// The one line scripts/stress reads:
/// `stress-summary: TEST seed=N key=value ...`.
fn summary(test: &str, seed: u64, figures: &[(&str, usize)]) {
    let figures: String = figures.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    eprintln!("stress-summary: {test} seed={seed}{figures}");
}

// ---------------------------------------------------------------------------
// 1. Mixed concurrency, checked against the history
// ---------------------------------------------------------------------------

const WORKERS: usize = 64;
const NAMES: usize = 6;
/// Each worker stops after this long or this many operations.
const RUN_FOR: Duration = Duration::from_secs(3);
const MAX_OPS: usize = 60;
/// Distinct `--cpus` values per worker (cpus go up to 1024).
const CPUS_PER_WORKER: u64 = 15;
/// DESIGN.md §3: no command waits for the lock longer than this.
const LOCK_BOUND: Duration = Duration::from_secs(10);
const DEFAULT_MEMORY: u64 = 1 << 30;
const DEFAULT_CPUS: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Add,
    ApplyMemory,
    ApplyCpus,
    Rm,
    Ls,
    Info,
}

#[derive(Debug)]
struct Event {
    worker: usize,
    kind: Kind,
    name: String,
    /// memory bytes or cpus given to `apply`.
    value: u64,
    code: i32,
    stdout: String,
    stderr: String,
    /// Taken before the spawn and after the wait, so they contain the
    /// process's real interval.
    start: Duration,
    end: Duration,
}

impl Event {
    fn describe(&self) -> String {
        format!(
            "worker {} {:?} {} {} -> {} [{:.3}s..{:.3}s]",
            self.worker,
            self.kind,
            self.name,
            self.value,
            self.code,
            self.start.as_secs_f64(),
            self.end.as_secs_f64()
        )
    }

    /// The outcomes the race between workers can give (docs/exit-codes.md):
    /// success; `add` of a name another worker holds (3, name taken); `rm`
    /// or `info` of a name nobody holds (3, not found). `apply` creates a
    /// missing VM, so it always succeeds. A busy store (5) is a failure:
    /// no command waits past the lock's bound.
    fn expected(&self) -> Result<(), String> {
        let ok = match (self.kind, self.code) {
            (_, 0) => true,
            (Kind::Add, 3) => self
                .stderr
                .contains(&format!("a VM named `{}` already exists (id ", self.name)),
            (Kind::Rm | Kind::Info, 3) => self.stderr.contains(&format!(
                "no VM is named or has an id starting with `{}`",
                self.name
            )),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "unexpected outcome: {}\n--- stdout ---\n{}--- stderr ---\n{}",
                self.describe(),
                self.stdout,
                self.stderr
            ))
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}): {}",
                self.describe(),
                self.stdout
            )
        })
    }
}

fn worker(t: &Test, w: usize, seed: u64, epoch: Instant, run_for: Duration) -> Vec<Event> {
    let mut rng = Rng::new(seed.wrapping_add(w as u64 * 0x9e37_79b9));
    let mut events = Vec::new();
    let (mut memories, mut cpus) = (0u64, 0u64);
    while events.len() < MAX_OPS && epoch.elapsed() < run_for {
        let name = format!("n{}", rng.below(NAMES as u64));
        let roll = rng.below(100);
        let mut kind = match roll {
            0..20 => Kind::Add,
            20..40 => Kind::ApplyMemory,
            40..55 => Kind::ApplyCpus,
            55..70 => Kind::Rm,
            70..85 => Kind::Ls,
            _ => Kind::Info,
        };
        if kind == Kind::ApplyCpus && cpus == CPUS_PER_WORKER {
            kind = Kind::ApplyMemory;
        }
        let (args, value): (Vec<String>, u64) = match kind {
            Kind::Add => (
                vec![
                    "add".into(),
                    "--empty".into(),
                    "--name".into(),
                    name.clone(),
                ],
                0,
            ),
            Kind::ApplyMemory => {
                // Odd MiB counts, unique to this worker and operation: the
                // final memory names the apply that won (and is never the
                // default 1 GiB).
                let mib = 2 * (w as u64 * MAX_OPS as u64 + memories) + 101;
                memories += 1;
                let args = ["--json", "apply", &name, "--memory", &format!("{mib}M")];
                (args.map(String::from).to_vec(), mib << 20)
            }
            Kind::ApplyCpus => {
                let n = 2 + w as u64 * CPUS_PER_WORKER + cpus;
                cpus += 1;
                let args = ["--json", "apply", &name, "--cpus", &n.to_string()];
                (args.map(String::from).to_vec(), n)
            }
            Kind::Rm => (["--json", "rm", &name].map(String::from).to_vec(), 0),
            Kind::Ls => (["--json", "ls"].map(String::from).to_vec(), 0),
            Kind::Info => (["--json", "info", &name].map(String::from).to_vec(), 0),
        };
        let start = epoch.elapsed();
        let out = t
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run maqet");
        let end = epoch.elapsed();
        events.push(Event {
            worker: w,
            kind,
            name: if kind == Kind::Ls {
                String::new()
            } else {
                name
            },
            value,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            start,
            end,
        });
    }
    events
}

/// `WORKERS` threads, each running maqet commands one after another.
fn run_workers(
    t: &Test,
    workers: usize,
    seed: u64,
    epoch: Instant,
    run_for: Duration,
) -> Vec<Event> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| s.spawn(move || worker(t, w, seed, epoch, run_for)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker panicked"))
            .collect()
    })
}

/// Waiters for the store lock are served in turn, so under sustained
/// contention no command waits far longer than the others, and none runs
/// out of the lock's 10 s bound. Found with the first lock, which polled
/// with a back-off of up to 50 ms: a waiter lost the lock to newcomers again
/// and again, so its wait grew with how long the contention lasted (64
/// writers for 30 s made 2 of 2289 commands fail as busy after 10 s).
///
/// Measured on the 2-core development machine with 16 workers for 6 s: the
/// slowest 1 % of commands took 2.5–3× the median with the blocking lock
/// (also with both cores otherwise busy), and 70–114× with the polling one,
/// which this test therefore fails. The ratio, unlike a fixed time bound,
/// does not move when the machine is loaded: every command slows alike.
#[test]
fn sustained_contention_never_fails_a_command_as_busy() {
    const CONTENDERS: usize = 16;
    const MAX_P99_OVER_MEDIAN: u32 = 20;
    let mut t = Test::new();
    t.add_empty("n0");
    let seed = seeded("sustained_contention_never_fails_a_command_as_busy").seed();
    let epoch = Instant::now();
    let events = run_workers(&t, CONTENDERS, seed, epoch, Duration::from_secs(6));
    let busy: Vec<String> = events
        .iter()
        .filter(|e| e.code == 5)
        .map(Event::describe)
        .collect();
    // Every other outcome is one the race can give, with its message: a
    // command that failed any other way is no less a failure than a busy
    // one.
    let unexpected: Vec<String> = events
        .iter()
        .filter(|e| e.code != 5)
        .filter_map(|e| e.expected().err())
        .collect();
    let mut took: Vec<Duration> = events.iter().map(|e| e.end - e.start).collect();
    took.sort_unstable();
    let (median, p99) = (percentile(&took, 0.5), percentile(&took, 0.99));
    let slowest = took.last().copied().expect("ran");
    let ratio = p99.as_secs_f64() / median.as_secs_f64();
    eprintln!(
        "seed {seed}: {} commands, {} busy, median {:.0} ms, p99 {:.0} ms ({ratio:.1}× the median), slowest {:.2}s",
        events.len(),
        busy.len(),
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        slowest.as_secs_f64()
    );
    summary(
        "sustained_contention_never_fails_a_command_as_busy",
        seed,
        &[("commands", events.len()), ("busy", busy.len())],
    );
    assert!(
        busy.is_empty(),
        "seed {seed}: busy after 10 s:\n{}",
        busy.join("\n")
    );
    assert!(
        unexpected.is_empty(),
        "seed {seed}: {} commands failed otherwise:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        p99 <= median * MAX_P99_OVER_MEDIAN,
        "seed {seed}: the slowest 1 % of commands took {ratio:.1}× the median \
         (at most {MAX_P99_OVER_MEDIAN}×): some waiters are starved"
    );
}

/// One VM id's life as the successful operations tell it.
#[derive(Default)]
struct Life<'a> {
    name: String,
    created: Option<&'a Event>,
    removed: Option<&'a Event>,
    /// Successful applies to it, by kind.
    memory: Vec<&'a Event>,
    cpus: Vec<&'a Event>,
}

impl Life<'_> {
    /// Could this id have existed at some moment of `[start, end]`?
    fn maybe_alive(&self, start: Duration, end: Duration) -> bool {
        self.created.is_some_and(|c| c.start < end) && self.removed.is_none_or(|r| r.end > start)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn mixed_concurrent_commands_equal_a_serial_history() {
    let mut t = Test::new();
    let seed = seeded("mixed_concurrent_commands_equal_a_serial_history").seed();
    let epoch = Instant::now();
    let mut events = run_workers(&t, WORKERS, seed, epoch, RUN_FOR);
    let wall = epoch.elapsed();
    events.sort_by_key(|e| e.start);
    let ctx = format!("seed {seed}");

    // Latency per kind.
    let mut by_kind: BTreeMap<Kind, Vec<Duration>> = BTreeMap::new();
    for e in &events {
        by_kind.entry(e.kind).or_default().push(e.end - e.start);
    }
    eprintln!(
        "{ctx}: {} commands by {WORKERS} workers in {:.2}s",
        events.len(),
        wall.as_secs_f64()
    );
    for (kind, times) in &mut by_kind {
        times.sort();
        eprintln!(
            "  {:<12} n={:<4} p50={:>7.1}ms p99={:>7.1}ms max={:>7.1}ms",
            format!("{kind:?}"),
            times.len(),
            percentile(times, 0.5).as_secs_f64() * 1e3,
            percentile(times, 0.99).as_secs_f64() * 1e3,
            times.last().expect("one").as_secs_f64() * 1e3
        );
    }
    let slowest = events
        .iter()
        .max_by_key(|e| e.end - e.start)
        .expect("some commands ran");
    assert!(
        slowest.end - slowest.start < LOCK_BOUND,
        "{ctx}: a command took longer than the lock bound: {}",
        slowest.describe()
    );

    // Exit codes: success, or 3 for a name taken / not found. Nothing else.
    for e in &events {
        if let Err(problem) = e.expected() {
            panic!("{ctx}: {problem}");
        }
        if e.code == 0 && e.kind != Kind::Ls && e.kind != Kind::Info && e.kind != Kind::Add {
            assert!(e.stderr.is_empty(), "{ctx}: {}: {}", e.describe(), e.stderr);
        }
    }

    // Every id's life from the successful mutations.
    let mut lives: BTreeMap<String, Life<'_>> = BTreeMap::new();
    let mut creators = 0;
    for e in events.iter().filter(|e| e.code == 0) {
        match e.kind {
            Kind::Add => {
                let id = e.stdout.trim_end().to_owned();
                assert!(is_id(&id), "{ctx}: {}: {:?}", e.describe(), e.stdout);
                let life = lives.entry(id.clone()).or_default();
                assert!(life.created.is_none(), "{ctx}: {id} created twice");
                life.created = Some(e);
                life.name.clone_from(&e.name);
                creators += 1;
            }
            Kind::ApplyMemory | Kind::ApplyCpus => {
                let json = e.json();
                assert_eq!(json["name"], e.name.as_str(), "{ctx}: {}", e.describe());
                let id = json["id"].as_str().expect("apply prints the id").to_owned();
                let life = lives.entry(id.clone()).or_default();
                if json["created"] == true {
                    assert!(life.created.is_none(), "{ctx}: {id} created twice");
                    life.created = Some(e);
                    life.name.clone_from(&e.name);
                    creators += 1;
                }
                if e.kind == Kind::ApplyMemory {
                    life.memory.push(e);
                } else {
                    life.cpus.push(e);
                }
            }
            Kind::Rm => {
                let json = e.json();
                let removed = json.as_array().expect("rm prints an array");
                assert_eq!(removed.len(), 1, "{ctx}: {}: {json}", e.describe());
                assert_eq!(
                    removed[0]["name"],
                    e.name.as_str(),
                    "{ctx}: {}",
                    e.describe()
                );
                let id = removed[0]["id"].as_str().expect("id").to_owned();
                let life = lives.entry(id.clone()).or_default();
                assert!(life.removed.is_none(), "{ctx}: {id} removed twice");
                life.removed = Some(e);
            }
            Kind::Ls | Kind::Info => {}
        }
    }
    for (id, life) in &lives {
        let created = life
            .created
            .unwrap_or_else(|| panic!("{ctx}: {id} was changed or removed but never created"));
        for e in life.removed.iter().chain(&life.memory).chain(&life.cpus) {
            assert_eq!(e.name, life.name, "{ctx}: {id} under two names");
            assert!(
                e.end > created.start,
                "{ctx}: {} acted on {id} before it was created by {}",
                e.describe(),
                created.describe()
            );
        }
        if let Some(rm) = life.removed {
            for e in life.memory.iter().chain(&life.cpus) {
                assert!(
                    e.start < rm.end,
                    "{ctx}: {} changed {id} after {} removed it",
                    e.describe(),
                    rm.describe()
                );
            }
        }
    }
    // Two ids of one name are never surely alive at the same time.
    let by_name: BTreeMap<&str, Vec<(&String, &Life<'_>)>> =
        lives.iter().fold(BTreeMap::new(), |mut m, (id, life)| {
            m.entry(life.name.as_str()).or_default().push((id, life));
            m
        });
    for (name, ids) in &by_name {
        for (i, (a, la)) in ids.iter().enumerate() {
            for (b, lb) in &ids[i + 1..] {
                let sure = |l: &Life<'_>| {
                    (
                        l.created.expect("checked").end,
                        l.removed.map_or(Duration::MAX, |r| r.start),
                    )
                };
                let ((a0, a1), (b0, b1)) = (sure(la), sure(lb));
                assert!(
                    a1 <= b0 || b1 <= a0,
                    "{ctx}: {name} was {a} and {b} at once"
                );
            }
        }
    }

    // What readers saw existed at the time.
    for e in events.iter().filter(|e| e.code == 0) {
        let seen: Vec<serde_json::Value> = match e.kind {
            Kind::Info => vec![e.json()],
            Kind::Ls => e.json().as_array().expect("ls prints an array").clone(),
            _ => continue,
        };
        let mut names = BTreeSet::new();
        for vm in &seen {
            let id = vm["id"].as_str().expect("id");
            let name = vm["name"].as_str().expect("name");
            assert!(
                names.insert(name),
                "{ctx}: {} lists {name} twice",
                e.describe()
            );
            let life = lives
                .get(id)
                .unwrap_or_else(|| panic!("{ctx}: {} saw {id}, never created", e.describe()));
            assert_eq!(life.name, name, "{ctx}: {}", e.describe());
            assert!(
                life.maybe_alive(e.start, e.end),
                "{ctx}: {} saw {id} outside its life",
                e.describe()
            );
        }
        if e.kind == Kind::Info {
            let vm = &seen[0];
            assert_eq!(vm["name"], e.name.as_str(), "{ctx}: {}", e.describe());
            let life = &lives[vm["id"].as_str().expect("id")];
            let mem = vm["config"]["memory_bytes"].as_u64().expect("memory_bytes");
            let cpus = vm["config"]["cpus"].as_u64().expect("cpus");
            let from = |list: &[&Event], v: u64, default: u64| {
                v == default || list.iter().any(|a| a.value == v && a.start < e.end)
            };
            assert!(
                from(&life.memory, mem, DEFAULT_MEMORY),
                "{ctx}: {} memory {mem}",
                e.describe()
            );
            assert!(
                from(&life.cpus, cpus, DEFAULT_CPUS),
                "{ctx}: {} cpus {cpus}",
                e.describe()
            );
        }
    }

    // The final store is the serial replay: exactly the ids created and not
    // removed, each with the value of an apply nothing later overwrote.
    let want: BTreeMap<&str, &str> = lives
        .iter()
        .filter(|(_, l)| l.removed.is_none())
        .map(|(id, l)| (l.name.as_str(), id.as_str()))
        .collect();
    assert_eq!(
        want.len(),
        lives.values().filter(|l| l.removed.is_none()).count(),
        "{ctx}: two live ids of one name"
    );
    let listed = t.list();
    let got: BTreeMap<String, String> = listed
        .iter()
        .map(|vm| {
            (
                vm["name"].as_str().expect("name").to_owned(),
                vm["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    let want_owned: BTreeMap<String, String> = want
        .iter()
        .map(|(n, i)| ((*n).to_owned(), (*i).to_owned()))
        .collect();
    assert_eq!(got, want_owned, "{ctx}: the final store is not the replay");
    for (name, id) in &got {
        let vm = t.args(["--json", "info", name]).run().json();
        assert_eq!(vm["id"], id.as_str(), "{ctx}");
        let by_id = t.args(["--json", "info", id]).run().json();
        assert_eq!(by_id["name"], name.as_str(), "{ctx}");
        let life = &lives[id];
        for (list, field, default) in [
            (&life.memory, "memory_bytes", DEFAULT_MEMORY),
            (&life.cpus, "cpus", DEFAULT_CPUS),
        ] {
            let value = vm["config"][field].as_u64().expect("a number");
            if list.is_empty() {
                assert_eq!(value, default, "{ctx}: {name} {field} came from nowhere");
                continue;
            }
            let winner = list
                .iter()
                .find(|a| a.value == value)
                .unwrap_or_else(|| panic!("{ctx}: {name} {field} = {value}: no apply set it"));
            for other in list.iter() {
                assert!(
                    other.start <= winner.end,
                    "{ctx}: {name} {field}: {} won, but {} came wholly after it",
                    winner.describe(),
                    other.describe()
                );
            }
        }
    }
    let failures = events.iter().filter(|e| e.code != 0).count();
    eprintln!(
        "{ctx}: {} ids created, {} removed, {} left; {failures} commands exited 3",
        creators,
        lives.values().filter(|l| l.removed.is_some()).count(),
        got.len()
    );
    summary(
        "mixed_concurrent_commands_equal_a_serial_history",
        seed,
        &[("commands", events.len()), ("exited_3", failures)],
    );
    // The run actually exercised the interesting cases.
    for kind in [Kind::Add, Kind::ApplyMemory, Kind::ApplyCpus, Kind::Rm] {
        assert!(
            events.iter().any(|e| e.kind == kind && e.code == 0),
            "{ctx}: no {kind:?} succeeded"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. kill -9 at random points
// ---------------------------------------------------------------------------

/// What the test believes one VM is.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    id: String,
    memory: u64,
    cpus: u64,
}

/// The quickest of three runs of `args` (each given a fresh name by
/// `prepare`), in microseconds.
fn time_of(t: &mut Test, mut prepare: impl FnMut(&mut Test, usize) -> Vec<String>) -> u64 {
    (0..3)
        .map(|i| {
            let args = prepare(t, i);
            let start = Instant::now();
            let status = t
                .command(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run maqet");
            assert!(status.success(), "{args:?}");
            u64::try_from(start.elapsed().as_micros()).expect("a short time")
        })
        .min()
        .expect("three runs")
}

fn config_of(vm: &serde_json::Value) -> (u64, u64) {
    (
        vm["config"]["memory_bytes"].as_u64().expect("memory_bytes"),
        vm["config"]["cpus"].as_u64().expect("cpus"),
    )
}

/// The store opens; it lists exactly the VMs the test knows, with their
/// configs; every name resolves to its id and every id to its name; and the
/// runtime root holds nothing for an id without a record.
fn check_store(t: &mut Test, known: &BTreeMap<String, Known>, ctx: &str) -> usize {
    let listed: BTreeMap<String, String> = t
        .list()
        .iter()
        .map(|vm| {
            (
                vm["name"].as_str().expect("name").to_owned(),
                vm["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = known
        .iter()
        .map(|(n, k)| (n.clone(), k.id.clone()))
        .collect();
    assert_eq!(listed, want, "{ctx}: ls");
    for (name, k) in known {
        let by_name = t.args(["--json", "info", name]).run().json();
        assert_eq!(by_name["id"], k.id.as_str(), "{ctx}: info {name}");
        assert_eq!(
            config_of(&by_name),
            (k.memory, k.cpus),
            "{ctx}: info {name}"
        );
        let by_id = t.args(["--json", "info", &k.id]).run().json();
        assert_eq!(by_id["name"], name.as_str(), "{ctx}: info {}", k.id);
    }
    stray_runtime_entries(t, known, ctx)
}

/// Asserts that no runtime dir belongs to an id without a record; returns
/// how many `<id>.lock` files of such ids there are (harmless, reported).
fn stray_runtime_entries(t: &Test, known: &BTreeMap<String, Known>, ctx: &str) -> usize {
    let ids: BTreeSet<&str> = known.values().map(|k| k.id.as_str()).collect();
    let Ok(entries) = std::fs::read_dir(t.runtime_dir()) else {
        return 0;
    };
    let mut stray_locks = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".lock") {
            if !ids.contains(id) {
                stray_locks += 1;
            }
        } else {
            assert!(
                ids.contains(name.as_str()),
                "{ctx}: stray runtime entry {name} without a record: {:?}",
                crate::harness::tree(&entry.path())
            );
        }
    }
    stray_locks
}

/// redb's own check, through the library, with no maqet running.
fn check_integrity(t: &Test, ctx: &str) {
    let path = t.data_dir().join("maqet.redb");
    let mut db = redb::Database::open(&path)
        .unwrap_or_else(|e| panic!("{ctx}: redb cannot open {}: {e}", path.display()));
    match db.check_integrity() {
        Ok(true) => {}
        other => panic!(
            "{ctx}: redb integrity check of {}: {other:?}",
            path.display()
        ),
    }
}

fn kill_after(child: &mut std::process::Child, micros: u64) -> bool {
    std::thread::sleep(Duration::from_micros(micros));
    // It may have finished already; then it simply stays finished.
    let _ = child.kill();
    child.wait().expect("wait for maqet").code() == Some(0)
}

#[test]
fn apply_and_rm_killed_at_random_points_leave_whole_records() {
    let rounds = scaled(300);
    let mut t = Test::new();
    let mut rng = seeded("apply_and_rm_killed_at_random_points_leave_whole_records");
    let seed = rng.seed();
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    let mut next = 0;
    let mut add = |t: &mut Test, known: &mut BTreeMap<String, Known>| {
        let name = format!("v{next}");
        next += 1;
        let id = t.add_empty(&name);
        known.insert(
            name,
            Known {
                id,
                memory: DEFAULT_MEMORY,
                cpus: DEFAULT_CPUS,
            },
        );
    };
    for _ in 0..3 {
        add(&mut t, &mut known);
    }
    let one_apply = time_of(&mut t, |_, i| {
        ["apply", "v0", "--cpus", &(i + 2).to_string()]
            .map(String::from)
            .to_vec()
    });
    known.get_mut("v0").expect("v0").cpus = 4;
    let one_rm = time_of(&mut t, |t, i| {
        let name = format!("timed{i}");
        t.add_empty(&name);
        ["rm".to_owned(), name].to_vec()
    });
    let started = Instant::now();
    let (mut killed, mut finished, mut stray_locks) = (0, 0, 0);
    for round in 0..rounds {
        let ctx = format!("seed {seed}, round {round}");
        while known.len() < 3 {
            add(&mut t, &mut known);
        }
        let names: Vec<String> = known.keys().cloned().collect();
        let name = names[rng.below(names.len() as u64) as usize].clone();
        let old = known[&name].clone();
        if round % 2 == 0 {
            // memory and cpus change together or not at all.
            let memory = (64 + rng.below(4000)) << 20;
            let memory = if memory == old.memory {
                memory + (1 << 20)
            } else {
                memory
            };
            let cpus = 1 + (old.cpus + rng.below(60)) % 64;
            let cpus = if cpus == old.cpus {
                cpus % 64 + 1
            } else {
                cpus
            };
            let mut child = t
                .command([
                    "apply",
                    &name,
                    "--memory",
                    &format!("{}M", memory >> 20),
                    "--cpus",
                    &cpus.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn maqet");
            let done = kill_after(&mut child, rng.below(2 * one_apply));
            let vm = t.args(["--json", "info", &name]).run().json();
            assert_eq!(vm["id"], old.id.as_str(), "{ctx}: {name} changed id");
            let got = config_of(&vm);
            let new = (memory, cpus);
            assert!(
                got == (old.memory, old.cpus) || got == new,
                "{ctx}: {name} is neither old {:?} nor new {new:?} but {got:?}",
                (old.memory, old.cpus)
            );
            if done {
                assert_eq!(got, new, "{ctx}: apply succeeded, but {name} is {got:?}");
            }
            let k = known.get_mut(&name).expect("known");
            (k.memory, k.cpus) = got;
            if done { finished += 1 } else { killed += 1 }
        } else {
            let mut child = t
                .command(["rm", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn maqet");
            let done = kill_after(&mut child, rng.below(2 * one_rm));
            let out = t
                .command(["--json", "info", &name])
                .output()
                .expect("run maqet");
            match out.status.code().unwrap_or(-1) {
                0 => {
                    assert!(!done, "{ctx}: rm succeeded, but {name} is still there");
                    let vm: serde_json::Value =
                        serde_json::from_slice(&out.stdout).expect("info prints JSON");
                    assert_eq!(vm["id"], old.id.as_str(), "{ctx}: {name} changed id");
                    assert_eq!(config_of(&vm), (old.memory, old.cpus), "{ctx}: {name}");
                }
                3 => {
                    known.remove(&name);
                    // Its id is gone as well.
                    t.args(["info", &old.id])
                        .status(3)
                        .stderr_contains("no VM")
                        .run();
                }
                code => panic!(
                    "{ctx}: info {name} exited {code}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
            if done { finished += 1 } else { killed += 1 }
        }
        stray_locks = check_store(&mut t, &known, &ctx);
        if round % 30 == 29 {
            check_integrity(&t, &ctx);
        }
    }
    check_integrity(&t, &format!("seed {seed}, at the end"));
    // And it still takes writes.
    add(&mut t, &mut known);
    check_store(&mut t, &known, &format!("seed {seed}, after"));
    eprintln!(
        "seed {seed}: {rounds} rounds in {:.1}s (apply {one_apply}µs, rm {one_rm}µs): \
         {killed} killed mid-command, {finished} finished; {stray_locks} stray lock files",
        started.elapsed().as_secs_f64()
    );
    summary(
        "apply_and_rm_killed_at_random_points_leave_whole_records",
        seed,
        &[
            ("rounds", rounds),
            ("killed", killed),
            ("finished", finished),
        ],
    );
    assert!(
        killed >= rounds / 5,
        "seed {seed}: only {killed} of {rounds} kills landed before the command finished"
    );
}

/// Live QEMUs whose command line holds `marker`.
fn qemus(marker: &str) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|&pid| {
            // Alive (not a zombie) and really a QEMU with our marker.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z');
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            !stat.is_empty()
                && !zombie
                && cmdline.contains("qemu-system")
                && cmdline.contains(marker)
        })
        .collect()
}

/// Last resort for a QEMU maqet lost track of: SIGKILL by checked pid.
fn kill_orphans(marker: &str) {
    for pid in qemus(marker) {
        assert!(pid > 1, "refusing to signal pid {pid}");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A `start` killed at a random point, then `status`, `ls` and `stop
/// --force`: a VM shown running has exactly its QEMU, one shown stopped has
/// none, and nothing survives `stop --force`. It found that a start killed
/// after spawning QEMU left a QEMU no record knew (and the next start ran a
/// second one beside it), and later, under load, two moments around the
/// child's exec when `status` misread a start it had interrupted.
#[test]
fn start_killed_at_random_points_leaves_no_orphaned_qemu() {
    if !crate::guest::have_qemu("start_killed_at_random_points_leaves_no_orphaned_qemu") {
        return;
    }
    let rounds = scaled(60);
    let mut t = Test::new();
    let mut rng = seeded("start_killed_at_random_points_leaves_no_orphaned_qemu");
    let seed = rng.seed();
    let name = format!("ks{}", std::process::id());
    // This test's own runtime root, on every QEMU it starts: a VM name may
    // be another test's (or another checkout's) too.
    let marker = format!("{}/", t.runtime_dir().display());
    t.file("vm.ron", &crate::guest::bios_config(&name));
    let id = t.args(["add", "vm.ron"]).run().stdout.trim_end().to_owned();
    let config = config_of(&t.args(["--json", "info", &name]).run().json());
    let mut known = BTreeMap::new();
    known.insert(
        name.clone(),
        Known {
            id: id.clone(),
            memory: config.0,
            cpus: config.1,
        },
    );
    let one_start = (0..2)
        .map(|_| {
            let start = Instant::now();
            t.args(["start", &name]).run();
            let took = u64::try_from(start.elapsed().as_micros()).expect("short");
            t.args(["stop", "--force", &name]).run();
            took
        })
        .min()
        .expect("two runs");
    let started = Instant::now();
    let (mut killed, mut running_after, mut orphans) = (0, 0, Vec::new());
    let mut tried_second_start = false;
    // Kills land at random points up to `ceiling`, which follows how long a
    // start takes now: measured once, a start slowed by load while it was
    // measured let later, faster starts finish before most kills.
    let mut ceiling = one_start + one_start / 4;
    for round in 0..rounds {
        let ctx = format!("seed {seed}, round {round}");
        let mut child = t
            .command(["start", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn maqet");
        let done = kill_after(&mut child, rng.below(ceiling));
        if done {
            ceiling = (ceiling * 3 / 4).max(1_000);
        } else {
            killed += 1;
            ceiling += ceiling / 16;
        }
        let status = t.args(["--json", "status", &name]).run().json();
        let ls = t.list();
        assert_eq!(ls.len(), 1, "{ctx}: {ls:?}");
        assert_eq!(
            ls[0]["status"], status["state"],
            "{ctx}: ls and status disagree"
        );
        let live = qemus(&marker);
        let state = status["state"].as_str().expect("state").to_owned();
        if done {
            assert_eq!(state, "running", "{ctx}: start succeeded");
        }
        let verdict = if state == "running" {
            running_after += 1;
            let pid = status["pid"].as_i64().expect("a running VM has a pid") as i32;
            (live == [pid]).then_some(()).ok_or_else(|| {
                format!("{ctx}: status says running as pid {pid}, live QEMUs {live:?}")
            })
        } else if live.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{ctx}: status says {state}, but QEMU {live:?} runs for the VM (orphaned)"
            ))
        };
        stray_runtime_entries(&t, &known, &ctx);
        let mut problems = Vec::new();
        if let Err(problem) = verdict {
            problems.push(problem);
            if !tried_second_start {
                // What an orphan leads to: does the next `start` see it?
                tried_second_start = true;
                let out = t.command(["start", &name]).output().expect("run maqet");
                let after = qemus(&marker);
                if after.len() > 1 {
                    problems.push(format!(
                        "{ctx}: and the next `start` (exit {:?}) ran a second QEMU beside it: {after:?}",
                        out.status.code()
                    ));
                }
            }
        }
        // Clean up whatever the killed start left: `stop --force` must
        // always work, and must leave no QEMU.
        t.args(["stop", "--force", &name]).stdout_any().run();
        let left = qemus(&marker);
        if !left.is_empty() {
            kill_orphans(&marker);
            problems.push(format!("{ctx}: QEMU {left:?} survived `stop --force`"));
        }
        orphans.extend(problems);
        let status = t.args(["--json", "status", &name]).run().json();
        assert_ne!(
            status["state"], "running",
            "{ctx}: still running after stop"
        );
        check_store(&mut t, &known, &ctx);
    }
    check_integrity(&t, &format!("seed {seed}, at the end"));
    t.args(["rm", &name]).run();
    kill_orphans(&marker);
    eprintln!(
        "seed {seed}: {rounds} killed starts in {:.1}s (start {one_start}µs): \
         {killed} killed mid-command, {running_after} left running",
        started.elapsed().as_secs_f64()
    );
    summary(
        "start_killed_at_random_points_leaves_no_orphaned_qemu",
        seed,
        &[
            ("rounds", rounds),
            ("killed", killed),
            ("running_after", running_after),
            ("problems", orphans.len()),
        ],
    );
    assert!(
        orphans.is_empty(),
        "seed {seed}: {} problems in {rounds} rounds:\n{}",
        orphans.len(),
        orphans.join("\n")
    );
    assert!(
        killed >= rounds / 3,
        "seed {seed}: only {killed} of {rounds} kills landed before start finished"
    );
}
