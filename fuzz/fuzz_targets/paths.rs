//! The path filter (`PathPolicy::check`) on paths built from a sandbox full
//! of symlinks (to /etc, to /, through /proc/self/root, loops, dangling
//! links, links that climb out with `..`) and from raw bytes.
//!
//! Invariants: nothing panics; an accepted path is absolute, symlink-free,
//! and neither it nor what the user wrote really leads into a system
//! directory outside the exceptions (`maqet::invariants::paths`, shared with the proptests).

#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use maqet::invariants::paths::{Sandbox, WORDS, sandbox_parent};
use tempfile::TempDir;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any bytes at all.
    Raw { base: u8, bytes: Vec<u8> },
    /// A path of words that mean something here.
    Built {
        base: u8,
        start: u8,
        parts: Vec<Part>,
    },
}

#[derive(Debug, Arbitrary)]
enum Part {
    Word(u8),
    Text(String),
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<(TempDir, Sandbox)> = OnceLock::new();
    let (_, sandbox) = SANDBOX.get_or_init(|| {
        let mut builder = tempfile::Builder::new();
        builder.prefix("maqet-fuzz-paths.");
        let dir = builder
            .tempdir_in(sandbox_parent())
            .or_else(|_| builder.tempdir())
            .expect("temp dir");
        let sandbox = Sandbox::new(dir.path());
        (dir, sandbox)
    });
    sandbox
}

fuzz_target!(|input: Input| {
    let sandbox = sandbox();
    let (base, raw) = match input {
        Input::Raw { base, bytes } => (base, OsString::from_vec(bytes)),
        Input::Built { base, start, parts } => {
            let mut text = match start % 6 {
                0 => String::new(),
                1 => "/".to_owned(),
                2 => "~/".to_owned(),
                3 => "~".to_owned(),
                4 => format!("{}/", sandbox.root.display()),
                _ => "~root/".to_owned(),
            };
            let words: Vec<String> = parts
                .into_iter()
                .map(|p| match p {
                    Part::Word(n) => WORDS[usize::from(n) % WORDS.len()].to_owned(),
                    Part::Text(t) => t,
                })
                .collect();
            text.push_str(&words.join("/"));
            (base, OsString::from(text))
        }
    };
    let base = &sandbox.bases[usize::from(base) % sandbox.bases.len()];
    if let Err(broken) = sandbox.check(OsStr::from_bytes(raw.as_bytes()), base) {
        panic!("{broken}");
    }
});
