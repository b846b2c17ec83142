//! A RON config file, loaded and checked as `maqet add FILE` does, then
//! merged onto the defaults and turned into a QEMU command line.
//!
//! Invariants (`maqet::invariants::config`, shared with the proptests):
//! nothing panics; a refusal is a config error (exit code 3 or 4) whose
//! report renders and prints without raw control characters; an accepted
//! config builds an argv that keeps every user string in its place
//! (`maqet::invariants::argv`).

#![no_main]

use std::sync::OnceLock;

use camino::Utf8PathBuf;
use libfuzzer_sys::fuzz_target;
use maqet::invariants::paths::{Sandbox, sandbox_parent};
use tempfile::TempDir;

struct Setup {
    _dir: TempDir,
    sandbox: Sandbox,
    dir: Utf8PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let temp = tempfile::Builder::new()
            .prefix("maqet-fuzz-config.")
            .tempdir_in(sandbox_parent())
            .or_else(|_| TempDir::new())
            .expect("temp dir");
        let sandbox = Sandbox::new(temp.path());
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
        Setup {
            _dir: temp,
            sandbox,
            dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    std::fs::write(setup.dir.join("vm.ron"), data).expect("write the config");
    if let Err(broken) = maqet::invariants::config::check_file(&setup.dir, &setup.sandbox.policy) {
        panic!("{broken}");
    }
});
