//! A RON config file, loaded and checked as `maqet add FILE` does, then
//! merged onto the defaults and turned into a QEMU command line.
//!
//! Invariants: nothing panics; a refusal is a config error (exit code 3 or
//! 4) whose report renders and prints without raw control characters; an
//! accepted config builds an argv that keeps every user string in its place
//! (`maqet_fuzz::argv`).

#![no_main]

use std::ffi::OsStr;
use std::sync::OnceLock;

use camino::Utf8PathBuf;
use libfuzzer_sys::fuzz_target;
use maqet::Error;
use maqet::config::{VmConfig, load_file, merge};
use maqet::layout::RuntimePaths;
use maqet::qemu::argv::{Accelerator, Plan, build};
use maqet_fuzz::paths::Sandbox;

struct Setup {
    sandbox: Sandbox,
    dir: Utf8PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let sandbox = Sandbox::new();
        let dir = Utf8PathBuf::from_path_buf(sandbox.home.clone()).expect("UTF-8 temp dir");
        // The files examples/full.ron names, so its seeds load, and files
        // whose names QEMU's option syntax would misread if maqet did not
        // escape them (the seeds in fuzz/seeds/config use them).
        for file in [
            "vmlinuz",
            "initrd.img",
            "base.qcow2",
            "data.img",
            "install.iso",
            "OVMF.fd",
            "a,b.img",
            "c,,d=e.iso",
            "f,format=raw.qcow2",
        ] {
            std::fs::write(dir.join(file), b"").expect("file");
        }
        for share in ["shared", "share,readonly=on", "s,id=maqet-fs0"] {
            std::fs::create_dir(dir.join(share)).expect("dir");
        }
        Setup { sandbox, dir }
    })
}

/// Render `err` the way `maqet` prints it, and check what would reach the
/// terminal and what `--json` callers get.
fn report(err: &Error) {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    assert!(
        matches!(
            err,
            Error::Config(_)
                | Error::ConfigUnreadable { .. }
                | Error::Invalid { .. }
                | Error::Path { .. }
        ),
        "a config problem reported as {err:?}"
    );
    assert!(
        matches!(err.exit_code(), 3 | 4),
        "exit code {} for {err}",
        err.exit_code()
    );
    let mut text = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false)
        .render_report(&mut text, err)
        .expect("the report renders");
    let shown = maqet::terminal::safe(&text, false);
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "a raw control character in {shown:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&maqet::render::error_json(err)).expect("error JSON parses");
    assert!(json["error"]["message"].is_string());
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let file = setup.dir.join("vm.ron");
    std::fs::write(&file, data).expect("write the config");
    let loaded = match load_file(OsStr::new("vm.ron"), &setup.dir, &setup.sandbox.policy) {
        Ok(loaded) => loaded,
        Err(err) => return report(&err),
    };
    let (config, name) = match merge(VmConfig::default(), vec![loaded.layer]) {
        Ok(merged) => merged,
        Err(err) => return report(&err),
    };
    let name = name.map_or_else(|| "vm".to_owned(), |n| n.to_string());
    let runtime = RuntimePaths::new(setup.dir.join("run"));
    let plan = Plan {
        name: &name,
        config: &config,
        accel: Accelerator::Tcg,
        runtime: &runtime,
        disks_dir: &setup.dir.join("disks"),
        chains: &maqet::storage::Chains::new(),
    };
    let argv = build(&plan);
    if let Err(broken) = maqet_fuzz::argv::check(&plan, &argv) {
        panic!("{broken}\nargv: {argv:?}");
    }
});
