//! Sizes as docs/config.md defines them: a whole number and a binary unit
//! (`K`, `M`, `G`, `T`, also `KiB`, `MB`, ...; any case), spaces around
//! either allowed. Computed in u128, so nothing here can overflow.

use crate::config::{Bytes, DiskSize, Memory};

const MIB: u128 = 1 << 20;
const TIB: u128 = 1 << 40;

/// What a size text means, or `None` when it is not a size. A value beyond
/// `u64::MAX` is returned as it is: the caller decides it is too large.
pub fn meaning(text: &str) -> Option<u128> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let power = match unit.trim().to_ascii_lowercase().as_str() {
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    // Leading zeros do not count; more than 30 significant digits is far
    // beyond u64 (20 digits) and would not fit u128 for long.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 30 {
        return Some(u128::MAX);
    }
    let number: u128 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    Some(number.saturating_mul(1 << power))
}

/// Check `Bytes::parse`, `Memory::parse` and `DiskSize::parse` on `text`
/// against [`meaning`]: each accepts exactly the sizes in its range and
/// returns the same number; whatever it accepts also survives being written
/// back as text (how configs show it) and being stored (postcard).
pub fn check(text: &str) -> Result<(), String> {
    check_bytes(text)?;
    check_memory(text)?;
    check_disk_size(text)
}

/// The size in bytes, when `text` is one u64 can hold.
fn bytes_meant(text: &str) -> Option<u128> {
    meaning(text).filter(|&n| n <= u128::from(u64::MAX))
}

/// `Bytes::parse` accepts exactly the sizes, as digits × unit.
pub fn check_bytes(text: &str) -> Result<(), String> {
    let want = bytes_meant(text);
    let bytes = Bytes::parse(text);
    match (want, &bytes) {
        (Some(n), Ok(b)) if u128::from(b.0) == n => {}
        (None, Err(_)) => {}
        _ => {
            return Err(format!(
                "Bytes::parse({text:?}) = {bytes:?}, the size is {want:?}"
            ));
        }
    }
    let _ = bytes.map(|b| (b.human(), b.human_approx(), b.mib()));
    Ok(())
}

/// `Memory::parse` accepts whole MiB from 16 MiB to 4 TiB, and what it
/// accepts survives being written as text and being stored.
pub fn check_memory(text: &str) -> Result<(), String> {
    let memory = Memory::parse(text);
    let want = bytes_meant(text).filter(|&n| n % MIB == 0 && (16 * MIB..=4 * TIB).contains(&n));
    match (want, &memory) {
        (Some(n), Ok(m)) if u128::from(m.0.0) == n => {
            let again = Memory::parse(&m.0.human());
            if again != Ok(*m) {
                return Err(format!(
                    "memory {text:?} is written as {:?}, read back as {again:?}",
                    m.0.human()
                ));
            }
            stored_and_read_back(m)
        }
        (None, Err(_)) => Ok(()),
        _ => Err(format!(
            "Memory::parse({text:?}) = {memory:?}, expected {want:?}"
        )),
    }
}

/// `value` encoded as the store encodes it (postcard) decodes the same.
fn stored_and_read_back<T>(value: &T) -> Result<(), String>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let stored = postcard::to_allocvec(value).map_err(|e| format!("{value:?}: {e}"))?;
    let back: T = postcard::from_bytes(&stored).map_err(|e| format!("{value:?}: {e}"))?;
    if back == *value {
        Ok(())
    } else {
        Err(format!("{value:?} is stored and read back as {back:?}"))
    }
}

/// `DiskSize::parse` accepts whole 512-byte sectors from 1 MiB to 64 TiB,
/// and what it accepts survives being written as text and being stored.
pub fn check_disk_size(text: &str) -> Result<(), String> {
    let disk = DiskSize::parse(text);
    let want = bytes_meant(text).filter(|&n| n % 512 == 0 && (MIB..=64 * TIB).contains(&n));
    match (want, &disk) {
        (Some(n), Ok(d)) if u128::from(d.0.0) == n => {
            let again = DiskSize::parse(&d.0.human());
            if again != Ok(*d) {
                return Err(format!(
                    "disk size {text:?} is written as {:?}, read back as {again:?}",
                    d.0.human()
                ));
            }
            stored_and_read_back(d)
        }
        (None, Err(_)) => Ok(()),
        _ => Err(format!(
            "DiskSize::parse({text:?}) = {disk:?}, expected {want:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meaning_follows_the_documented_grammar() {
        assert_eq!(meaning("2G"), Some(2 << 30));
        assert_eq!(meaning(" 1 kib "), Some(1024));
        assert_eq!(meaning("007M"), Some(7 << 20));
        assert_eq!(
            meaning("18446744073709551615T"),
            Some(u128::from(u64::MAX) << 40)
        );
        for bad in ["", "512", "G", "-1G", "1.5G", "1 P", "1GiBB"] {
            assert_eq!(meaning(bad), None, "{bad}");
        }
        assert!(
            check("17179869184G").is_ok(),
            "2^64 bytes is refused as too large"
        );
    }
}
