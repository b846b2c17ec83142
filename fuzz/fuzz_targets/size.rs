//! The size parser (`Bytes::parse`, `Memory::parse`, `DiskSize::parse`).
//!
//! Invariants: nothing panics; each accepts exactly the sizes docs/config.md
//! describes, within its range, and returns digits × unit as computed in
//! u128 (so never a wrapped value); an accepted size written back as text
//! (how it is stored) reads back the same.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(broken) = maqet::invariants::sizes::check(&text) {
        panic!("{broken}");
    }
});
