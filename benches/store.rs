//! Registry benchmarks (DESIGN.md §9): what every command pays in-process to
//! open the store and find one VM, and what `ls` pays to read them all.
//!
//! A small std-only harness: the dependency list has no criterion. Each
//! operation is timed one call at a time and reported as median and p90, so
//! a brief disturbance on a shared machine shows in the tail more than in
//! the median.
//!
//!     cargo bench --bench store
//!     MAQET_BENCH_SIZES=1000 cargo bench --bench store     # quick run
//!     MAQET_BENCH_FILL=DIR:100000 cargo bench --bench store # fill DIR, exit
//!
//! The fill mode is how `scripts/bench-cli` makes large stores: adding
//! 100 000 VMs through the binary, one process and one durable commit each,
//! would take far longer than the benchmark itself. It prints
//! `sample NAME ID` for one VM in the middle of the store.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use maqet::commands::ls::Listing;
use maqet::config::VmConfig;
use maqet::dirs::Dirs;
use maqet::render::Output as _;
use maqet::store::{Access, Store};
use maqet::vm::{Status, Timestamp, Vm, VmId, VmRecord};
use redb::{ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};

type BenchResult<T = ()> = Result<T, Box<dyn Error>>;

const DEFAULT_SIZES: &[usize] = &[1_000, 10_000, 100_000];
/// VMs per write transaction while filling. redb's file size depends on
/// it: 100 000 VMs made a 34 MiB file at 1 000 (or 100 000) per commit and
/// a 68 MiB one at 10 000 or 25 000, with the same live pages.
const FILL_BATCH: usize = 1_000;

// The store's table layout, for the breakdown that bypasses `Store`.
const VMS: TableDefinition<&str, &[u8]> = TableDefinition::new("vms");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");

/// Budgets from DESIGN.md §9 that an in-process figure can be held against.
const LOOKUP_BUDGET: Duration = Duration::from_micros(20);
const LOOKUP_BUDGET_SIZE: usize = 100_000;
const LS_BUDGET: Duration = Duration::from_millis(50);
const LS_BUDGET_SIZE: usize = 10_000;

fn main() -> BenchResult {
    if let Ok(spec) = std::env::var("MAQET_BENCH_FILL") {
        return fill_only(&spec);
    }
    let sizes = sizes()?;
    println!(
        "maqet store benchmark: sizes {sizes:?}; times are per call, median and p90 (nearest rank)"
    );
    println!();
    println!(
        "{:>7}  {:<30}  {:>6}  {:>10}  {:>10}  budget",
        "VMs", "operation", "iters", "median", "p90"
    );
    for &n in &sizes {
        bench_size(n)?;
    }
    Ok(())
}

/// `MAQET_BENCH_SIZES=1000,10000`: which store sizes to run.
fn sizes() -> BenchResult<Vec<usize>> {
    match std::env::var("MAQET_BENCH_SIZES") {
        Err(_) => Ok(DEFAULT_SIZES.to_vec()),
        Ok(text) => text
            .split(',')
            .map(|s| s.trim().replace('_', "").parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("MAQET_BENCH_SIZES=`{text}`: {e} (want e.g. 1000,10000)").into()),
    }
}

/// `MAQET_BENCH_FILL=DIR:N`: fill the store in DIR with N VMs and exit.
fn fill_only(spec: &str) -> BenchResult {
    let (dir, n) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("MAQET_BENCH_FILL=`{spec}`: want DIR:N"))?;
    let n: usize = n
        .replace('_', "")
        .parse()
        .map_err(|e| format!("MAQET_BENCH_FILL=`{spec}`: {e}"))?;
    let dirs = Dirs {
        data: Utf8PathBuf::from(dir),
        runtime: Utf8PathBuf::from(dir).join("run"),
    };
    let started = Instant::now();
    let ids = fill(&dirs, n)?;
    eprintln!(
        "filled {} with {n} VMs in {:.2} s ({} bytes)",
        dirs.database(),
        started.elapsed().as_secs_f64(),
        std::fs::metadata(dirs.database())?.len()
    );
    if let Some(id) = ids.get(n / 2) {
        println!("sample {} {id}", name_of(n / 2));
    }
    Ok(())
}

fn name_of(i: usize) -> String {
    format!("vm-{:06}", i + 1)
}

/// Write `n` VMs in a few transactions; returns their ids, in name order.
fn fill(dirs: &Dirs, n: usize) -> BenchResult<Vec<VmId>> {
    let store = Store::open(dirs)?;
    let mut ids = Vec::with_capacity(n);
    let now = Timestamp::now();
    let mut next = 0;
    while next < n {
        let end = (next + FILL_BATCH).min(n);
        store.write(|tx| {
            for i in next..end {
                let id = VmId::random()?;
                let name = name_of(i);
                let vm = Vm {
                    // A typical VM made by `maqet add vm.ron`: default config
                    // plus the one file it came from.
                    sources: vec![Utf8PathBuf::from(format!("/home/user/vms/{name}.ron"))],
                    name: name.parse().expect("generated names are valid"),
                    id: id.clone(),
                    config: VmConfig::default(),
                    created: now,
                    updated: now,
                    status: Status::Created,
                    runtime: None,
                    last_exit: None,
                    owned: Vec::new(),
                    auto_remove: false,
                    trusted: false,
                };
                tx.put(&vm)?;
                ids.push(id);
            }
            Ok(())
        })?;
        next = end;
    }
    Ok(ids)
}

fn bench_size(n: usize) -> BenchResult {
    let tmp = tempfile::tempdir()?;
    // A directory of its own: the store refuses one open to others, and
    // a temp dir's mode depends on the umask.
    let data = Utf8PathBuf::from_path_buf(tmp.path().join("data"))
        .map_err(|p| format!("temp dir {} is not UTF-8", p.display()))?;
    let dirs = Dirs {
        runtime: data.join("run"),
        data,
    };
    let started = Instant::now();
    let ids = fill(&dirs, n)?;
    let fill_time = started.elapsed();
    let bytes = std::fs::metadata(dirs.database())?.len();
    println!(
        "{n:>7}  fill: {:.2} s, {:.1} µs/VM, file {:.1} MiB ({} B/VM)",
        fill_time.as_secs_f64(),
        fill_time.as_secs_f64() * 1e6 / n as f64,
        bytes as f64 / (1024.0 * 1024.0),
        bytes / n as u64
    );

    let names: Vec<String> = (0..n).map(name_of).collect();
    let full: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
    let prefixes = prefixes(&ids);
    let mut rng = Rng(0x6d61_7165_7420_6265 ^ n as u64);

    // Every command pays this: stat, lock, redb open, schema check; and the
    // close when the store is dropped. `ls`/`info` read, `rm` writes.
    for (label, access) in [("Read", Access::Read), ("Write", Access::Write)] {
        let mut open = Vec::new();
        let mut close = Vec::new();
        for _ in 0..iters(n, [300, 300, 100]) {
            let t = Instant::now();
            let store =
                Store::open_existing(&dirs, access)?.ok_or("the filled store is missing")?;
            open.push(t.elapsed());
            let t = Instant::now();
            drop(black_box(store));
            close.push(t.elapsed());
        }
        row(n, &format!("open_existing({label})"), &open, None);
        row(n, &format!("drop(Store) after {label}"), &close, None);
    }

    let store = Store::open_existing(&dirs, Access::Read)?.ok_or("the filled store is missing")?;
    let lookup_budget = (n == LOOKUP_BUDGET_SIZE).then_some(LOOKUP_BUDGET);
    for (label, queries) in [
        ("find(name)", &names),
        ("find(full id)", &full),
        ("find(8-char id prefix)", &prefixes),
    ] {
        // Check once, outside the timing, that every kind of query hits.
        let i = rng.below(n);
        assert_eq!(
            store.find(&queries[i])?.id,
            ids[i],
            "{label} found another VM"
        );
        let mut times = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let q = &queries[rng.below(n)];
            let t = Instant::now();
            black_box(store.find(black_box(q))?);
            times.push(t.elapsed());
        }
        row(n, label, &times, lookup_budget);
    }

    let ls_budget = (n == LS_BUDGET_SIZE).then_some(LS_BUDGET);
    let list_iters = iters(n, [200, 50, 7]);
    let mut times = Vec::new();
    let mut with_render = Vec::new();
    for _ in 0..list_iters {
        let t = Instant::now();
        let (vms, _) = black_box(maqet::rows::Rows::read(&store)?);
        times.push(t.elapsed());
        assert_eq!(vms.len(), n);
        let t = Instant::now();
        black_box(Listing::Rows(vms).text());
        with_render.push(t.elapsed() + times[times.len() - 1]);
    }
    row(n, "rows() (what ls reads)", &times, None);
    row(n, "rows() + table render", &with_render, None);
    drop(store);

    // What one command does in-process, from a fresh handle: open, read,
    // close. redb's page cache starts empty each time, as in a new process
    // (the OS page cache stays warm).
    let mut times = Vec::new();
    for _ in 0..iters(n, [300, 300, 100]) {
        let q = &names[rng.below(n)];
        let t = Instant::now();
        let store = Store::open_existing(&dirs, Access::Read)?.ok_or("the store is missing")?;
        black_box(store.find(black_box(q))?);
        drop(store);
        times.push(t.elapsed());
    }
    row(n, "open + find(name) + close", &times, None);
    let mut times = Vec::new();
    for _ in 0..list_iters {
        let t = Instant::now();
        let store = Store::open_existing(&dirs, Access::Read)?.ok_or("the store is missing")?;
        let (vms, _) = maqet::rows::Rows::read(&store)?;
        drop(store);
        black_box(Listing::Rows(vms).text());
        times.push(t.elapsed());
    }
    row(n, "open + rows + close + render", &times, ls_budget);

    breakdown(&dirs, n, &mut rng)?;
    Ok(())
}

/// Where a `find` spends its time, below `Store`: the same tables read
/// through redb directly (opened read-only, as `ls` and `info` do), one step
/// at a time.
fn breakdown(dirs: &Dirs, n: usize, rng: &mut Rng) -> BenchResult {
    let path = dirs.database();
    let mut open = Vec::new();
    for _ in 0..iters(n, [300, 300, 100]) {
        let t = Instant::now();
        let db = ReadOnlyDatabase::open(&path)?;
        open.push(t.elapsed());
        drop(db);
    }
    row(n, "  redb ReadOnlyDatabase::open", &open, None);

    let db = ReadOnlyDatabase::open(&path)?;
    let mut begin = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        let txn = db.begin_read()?;
        let vms = txn.open_table(VMS)?;
        let names = txn.open_table(NAMES)?;
        begin.push(t.elapsed());
        black_box((&vms, &names));
    }
    row(n, "  begin_read + open 2 tables", &begin, None);

    let txn = db.begin_read()?;
    let vms = txn.open_table(VMS)?;
    let names = txn.open_table(NAMES)?;
    let mut get = Vec::with_capacity(20_000);
    let mut decode = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let name = name_of(rng.below(n));
        let t = Instant::now();
        let id = names.get(name.as_str())?.ok_or("name missing")?;
        let bytes = vms.get(id.value())?.ok_or("record missing")?;
        get.push(t.elapsed());
        let t = Instant::now();
        black_box(VmRecord::decode(bytes.value())?);
        decode.push(t.elapsed());
    }
    row(n, "  2 gets in an open txn", &get, None);
    row(n, "  decode one record", &decode, None);

    // list() without its sort by name: the rest is what sorting costs.
    let mut times = Vec::new();
    for _ in 0..iters(n, [200, 50, 7]) {
        let t = Instant::now();
        let mut all = Vec::with_capacity(n);
        for entry in vms.iter()? {
            all.push(VmRecord::decode(entry?.1.value())?);
        }
        times.push(t.elapsed());
        black_box(all);
    }
    row(n, "  iterate + decode all, no sort", &times, None);
    Ok(())
}

/// 8-character id prefixes, or 12 where 8 are ambiguous: 32 bits collide
/// about once among 100 000 ids (n²/2³³), and an ambiguous prefix is an
/// error, not a lookup.
fn prefixes(ids: &[VmId]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    for id in ids {
        *seen.entry(&id.as_str()[..8]).or_insert(0) += 1;
    }
    ids.iter()
        .map(|id| {
            let short = &id.as_str()[..8];
            let len = if seen[short] > 1 { 12 } else { 8 };
            id.as_str()[..len].to_owned()
        })
        .collect()
}

/// Iterations for an operation whose cost grows with the store: `small`
/// up to 1 000 VMs, `medium` up to 10 000, `large` beyond.
fn iters(n: usize, [small, medium, large]: [usize; 3]) -> usize {
    match n {
        0..=1_000 => small,
        1_001..=10_000 => medium,
        _ => large,
    }
}

fn row(n: usize, label: &str, times: &[Duration], budget: Option<Duration>) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let median = sorted[(sorted.len() - 1) / 2];
    let p90 = sorted[(sorted.len() * 9).div_ceil(10) - 1];
    let verdict = budget.map_or(String::new(), |b| {
        let mark = if median <= b { "ok" } else { "MISSED" };
        format!("≤ {} {mark}", show(b))
    });
    println!(
        "{n:>7}  {label:<30}  {:>6}  {:>10}  {:>10}  {verdict}",
        sorted.len(),
        show(median),
        show(p90)
    );
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.2} µs")
    }
}

/// splitmix64: enough randomness to pick VMs, with no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}
