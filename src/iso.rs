//! A minimal ISO 9660 (ECMA-119) image writer: one root directory of small
//! files, with Joliet names. maqet uses it for cloud-init NoCloud seeds, a CD
//! labelled `cidata` holding `user-data`, `meta-data` and `network-config`.
//!
//! The primary tree alone cannot carry those names: ECMA-119 level 1 allows
//! only upper-case 8.3 names without `-`. Linux (and so cloud-init) reads the
//! Joliet tree instead when there is one, which keeps the names exactly as
//! given. Both trees point at the same file data.
//!
//! The output depends only on the inputs (fixed timestamps, no clock, no
//! host names), so a seed can be compared byte for byte.
//!
//! Layout, in 2048-byte sectors:
//!
//! | sector | content                                  |
//! |--------|------------------------------------------|
//! | 0–15   | system area, zero                        |
//! | 16     | primary volume descriptor                |
//! | 17     | Joliet supplementary volume descriptor   |
//! | 18     | volume descriptor set terminator         |
//! | 19–22  | path tables: primary L, M; Joliet L, M   |
//! | 23…    | primary root directory, Joliet root      |
//! | …      | file data, each file from a new sector   |

use std::collections::HashSet;

pub const SECTOR: usize = 2048;

/// Generous for a seed (user-data is usually a few KiB) and keeps the whole
/// image comfortably in memory.
pub const MAX_IMAGE: usize = 16 << 20;

/// Joliet allows 64 UCS-2 characters in a file identifier.
const MAX_NAME: usize = 64;

/// The volume identifier field is 32 bytes; Joliet's UCS-2 copy of it holds
/// only 16 characters.
const MAX_VOLUME_ID: usize = 32;

/// Sector numbers of the fixed part of the layout (see the module comment).
const PVD: usize = 16;
const PATH_TABLES: usize = 19;
const FIRST_DIR: usize = 23;

/// Joliet level 3 (UCS-2, no restrictions on names), as the escape sequence
/// that marks a supplementary volume descriptor as Joliet.
const JOLIET_ESCAPE: &[u8] = b"%/E";

const FLAG_DIRECTORY: u8 = 0x02;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsoError {
    #[error("volume id `{0}` must be 1 to 32 characters of A-Z, a-z, 0-9, `_` and `-`")]
    VolumeId(String),
    #[error(
        "file name `{0}` must be 1 to 64 characters of a-z, 0-9, `.`, `_` and `-`, not ending in `.`"
    )]
    FileName(String),
    #[error("file name `{0}` is given twice")]
    Duplicate(String),
    #[error("the image would be {0} bytes, over the limit of 16 MiB")]
    TooLarge(usize),
}

/// An ISO 9660 image holding `files` (name, contents) in its root directory,
/// with volume id `volume_id`.
///
/// The volume id is written as given, in both descriptors. ECMA-119 asks for
/// upper case in the primary one, but NoCloud seeds made the usual way
/// (genisoimage, as cloud-localds runs it) carry a lower-case `cidata`
/// there, and tools that read only the primary descriptor (`file`, blkid
/// without Joliet) should see the same label. The Joliet copy keeps the first 16 characters,
/// all its field can hold.
pub fn image(volume_id: &str, files: &[(&str, &[u8])]) -> Result<Vec<u8>, IsoError> {
    check_volume_id(volume_id)?;
    let mut seen = HashSet::new();
    for (name, _) in files {
        check_name(name)?;
        if !seen.insert(*name) {
            return Err(IsoError::Duplicate((*name).to_owned()));
        }
    }

    let primary = Tree::new(
        false,
        primary_names(files.iter().map(|(name, _)| *name)),
        FIRST_DIR,
    );
    let joliet_names = files.iter().map(|(name, _)| (*name).to_owned()).collect();
    let joliet = Tree::new(true, joliet_names, primary.root + primary.sectors);

    // Each file starts on its own sector; an empty one takes no sector and
    // points where the next file would start, as genisoimage does.
    let mut next = joliet.root + joliet.sectors;
    let mut extents = Vec::with_capacity(files.len());
    for (_, data) in files {
        extents.push(next);
        next += data.len().div_ceil(SECTOR);
    }
    let total = next * SECTOR;
    if total > MAX_IMAGE {
        return Err(IsoError::TooLarge(total));
    }

    let mut out = vec![0u8; total];
    for tree in [&primary, &joliet] {
        let path_table = PATH_TABLES + 2 * usize::from(tree.joliet);
        write_path_tables(&mut out, path_table, tree.root);
        let descriptor = volume_descriptor(volume_id, tree, next, path_table);
        put(
            &mut out,
            (PVD + usize::from(tree.joliet)) * SECTOR,
            &descriptor,
        );
        put(
            &mut out,
            tree.root * SECTOR,
            &directory(tree, files, &extents),
        );
    }
    let mut terminator = [0u8; 7];
    terminator[0] = 255;
    terminator[1..6].copy_from_slice(b"CD001");
    terminator[6] = 1;
    put(&mut out, (PVD + 2) * SECTOR, &terminator);

    for ((_, data), extent) in files.iter().zip(&extents) {
        put(&mut out, extent * SECTOR, data);
    }
    Ok(out)
}

fn check_volume_id(id: &str) -> Result<(), IsoError> {
    let ok = (1..=MAX_VOLUME_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IsoError::VolumeId(id.to_owned()))
    }
}

/// Besides the character set: `.` and `..` would shadow the directory's own
/// records, and Linux drops a trailing `.` from Joliet names, so `a.` would
/// read back as `a`.
fn check_name(name: &str) -> Result<(), IsoError> {
    let ok = (1..=MAX_NAME).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(IsoError::FileName(name.to_owned()))
    }
}

/// One of the two directory trees, each a root directory only.
struct Tree {
    joliet: bool,
    /// Each file's name in this tree, in the order of `files`.
    names: Vec<String>,
    /// Sector of the root directory, and how many it takes.
    root: usize,
    sectors: usize,
}

impl Tree {
    fn new(joliet: bool, names: Vec<String>, root: usize) -> Tree {
        let mut tree = Tree {
            joliet,
            names,
            root,
            sectors: 0,
        };
        tree.sectors = dir_sectors((0..tree.names.len()).map(|i| tree.id(i).len()));
        tree
    }

    /// The file identifier as recorded: d-characters in the primary tree,
    /// UCS-2 big-endian in the Joliet one.
    fn id(&self, i: usize) -> Vec<u8> {
        if self.joliet {
            ucs2(&self.names[i])
        } else {
            self.names[i].clone().into_bytes()
        }
    }
}

/// Level 1 identifiers (`NAME.EXT;1`, d-characters only), unique among
/// `names`: `user-data` becomes `USER_DAT.;1`. A clash is settled by a
/// counter at the end of the name part (`USER_D01.;1`), since readers of
/// the primary tree only need the names to differ.
fn primary_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let d_chars = |s: &str, max: usize| -> String {
        s.bytes()
            .take(max)
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    b.to_ascii_uppercase() as char
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut taken = HashSet::new();
    let mut out = Vec::new();
    for name in names {
        let (stem, ext) = split(name);
        let (stem, ext) = (d_chars(stem, 8), d_chars(ext, 3));
        let mut candidate = format!("{stem}.{ext};1");
        let mut n = 0u32;
        while !taken.insert(candidate.clone()) {
            n += 1;
            let digits = format!("{n:02}");
            let keep = stem.len().min(8usize.saturating_sub(digits.len()));
            candidate = format!("{}{digits}.{ext};1", &stem[..keep]);
        }
        out.push(candidate);
    }
    out
}

/// Name and extension, split at the last `.`.
fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('.').unwrap_or((name, ""))
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// ECMA-119 9.3 orders records by name, then extension, each compared as
/// if padded with spaces; every allowed character sorts after a space, so
/// that is plain byte order on the two parts, a shorter prefix first. The
/// Joliet tree follows the same rule on the names as given (ASCII, whose
/// UCS-2 bytes sort the same way).
fn sort_key(name: &str) -> (&str, &str) {
    split(name.strip_suffix(";1").unwrap_or(name))
}

/// Sectors a directory takes of `.`, `..` and files with identifiers of
/// `id_lens` bytes: a record never crosses a sector boundary (ECMA-119
/// 6.8.1.1).
fn dir_sectors(id_lens: impl Iterator<Item = usize>) -> usize {
    let lens = [1, 1].into_iter().chain(id_lens).map(record_len);
    let mut sectors = 1;
    let mut used = 0;
    for len in lens {
        if used + len > SECTOR {
            sectors += 1;
            used = 0;
        }
        used += len;
    }
    sectors
}

/// 33 fixed bytes, the identifier, and a pad byte that keeps records at
/// even lengths.
fn record_len(id_len: usize) -> usize {
    33 + id_len + (id_len + 1) % 2
}

fn directory(tree: &Tree, files: &[(&str, &[u8])], extents: &[usize]) -> Vec<u8> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| sort_key(&tree.names[i]));
    let mut records = vec![root_record(tree, 0), root_record(tree, 1)];
    records.extend(
        order
            .into_iter()
            .map(|i| record(extents[i], files[i].1.len(), 0, &tree.id(i))),
    );
    let mut out = Vec::with_capacity(tree.sectors * SECTOR);
    for rec in records {
        if out.len() % SECTOR + rec.len() > SECTOR {
            out.resize(out.len().next_multiple_of(SECTOR), 0);
        }
        out.extend_from_slice(&rec);
    }
    out
}

/// The root's record for itself (`id` 0, also the one in the volume
/// descriptor) or for its parent (`id` 1); the root is its own parent.
fn root_record(tree: &Tree, id: u8) -> Vec<u8> {
    record(tree.root, tree.sectors * SECTOR, FLAG_DIRECTORY, &[id])
}

fn record(extent: usize, size: usize, flags: u8, id: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; record_len(id.len())];
    r[0] = u8::try_from(r.len()).expect("a record is at most 33 + 128 + 1 bytes");
    both32(&mut r[2..10], extent);
    both32(&mut r[10..18], size);
    r[18..25].copy_from_slice(&RECORD_TIME);
    r[25] = flags;
    both16(&mut r[28..32], 1);
    r[32] = u8::try_from(id.len()).expect("an identifier is at most 128 bytes");
    r[33..33 + id.len()].copy_from_slice(id);
    r
}

/// Every date in the image: 1970-01-01 00:00:00 UTC, so the output never
/// depends on when it was made. As a directory record stores it: years since
/// 1900, month, day, hour, minute, second, offset from UTC.
const RECORD_TIME: [u8; 7] = [70, 1, 1, 0, 0, 0, 0];
/// The same moment as a volume descriptor stores it (ECMA-119 8.4.26.1):
/// digits for year to hundredths, then the offset from UTC.
const DESCRIPTOR_TIME: &[u8; 17] = b"1970010100000000\0";
/// "Not specified", for the expiration and effective dates.
const NO_TIME: &[u8; 17] = b"0000000000000000\0";

/// The root-only path table at sectors `at` (little-endian, type L) and
/// `at + 1` (big-endian, type M): one 10-byte record.
fn write_path_tables(out: &mut [u8], at: usize, root: usize) {
    let root = u32::try_from(root).expect("the image is at most 16 MiB");
    for (sector, little) in [(at, true), (at + 1, false)] {
        let o = sector * SECTOR;
        out[o] = 1; // identifier length: the root's single 0x00
        let (extent, parent) = if little {
            (root.to_le_bytes(), 1u16.to_le_bytes())
        } else {
            (root.to_be_bytes(), 1u16.to_be_bytes())
        };
        out[o + 2..o + 6].copy_from_slice(&extent);
        out[o + 6..o + 8].copy_from_slice(&parent);
    }
}

const PATH_TABLE_LEN: usize = 10;

fn volume_descriptor(volume_id: &str, tree: &Tree, sectors: usize, path_table: usize) -> Vec<u8> {
    let joliet = tree.joliet;
    let mut d = vec![0u8; SECTOR];
    d[0] = if joliet { 2 } else { 1 };
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    // Text fields are space-padded; Joliet's hold UCS-2, so its space is 0x00 0x20.
    let text = |d: &mut [u8], range: std::ops::Range<usize>, s: &str| {
        let field = &mut d[range];
        let bytes = if joliet {
            ucs2(s)
        } else {
            s.as_bytes().to_vec()
        };
        let pad: &[u8] = if joliet { &[0, b' '] } else { b" " };
        for (i, b) in field.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(pad[i % pad.len()]);
        }
    };
    text(&mut d, 8..40, ""); // system identifier
    text(&mut d, 40..72, volume_id);
    both32(&mut d[80..88], sectors);
    if joliet {
        d[88..91].copy_from_slice(JOLIET_ESCAPE);
    }
    both16(&mut d[120..124], 1); // volume set size
    both16(&mut d[124..128], 1); // volume sequence number
    both16(&mut d[128..132], SECTOR);
    both32(&mut d[132..140], PATH_TABLE_LEN);
    let l = u32::try_from(path_table).expect("the image is at most 16 MiB");
    d[140..144].copy_from_slice(&l.to_le_bytes());
    d[148..152].copy_from_slice(&(l + 1).to_be_bytes());
    d[156..190].copy_from_slice(&root_record(tree, 0));
    // Volume set, publisher, preparer, application, and three file ids.
    for range in [
        190..318,
        318..446,
        446..574,
        574..702,
        702..739,
        739..776,
        776..813,
    ] {
        text(&mut d, range, "");
    }
    d[813..830].copy_from_slice(DESCRIPTOR_TIME); // creation
    d[830..847].copy_from_slice(DESCRIPTOR_TIME); // modification
    d[847..864].copy_from_slice(NO_TIME); // expiration
    d[864..881].copy_from_slice(NO_TIME); // effective
    d[881] = 1; // file structure version
    d
}

/// ECMA-119 7.3.3: little-endian then big-endian, so readers of either
/// byte order take the value as is.
fn both32(field: &mut [u8], value: usize) {
    let v = u32::try_from(value).expect("the image is at most 16 MiB");
    field[..4].copy_from_slice(&v.to_le_bytes());
    field[4..8].copy_from_slice(&v.to_be_bytes());
}

fn both16(field: &mut [u8], value: usize) {
    let v = u16::try_from(value).expect("both-endian 16-bit fields hold small constants");
    field[..2].copy_from_slice(&v.to_le_bytes());
    field[2..4].copy_from_slice(&v.to_be_bytes());
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests;
