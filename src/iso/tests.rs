//! The writer's output read back two ways: by ECMA-119 offsets here, and by
//! independent readers (isoinfo, 7z, file, blkid, the Linux kernel).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

type Files = Vec<(String, Vec<u8>)>;

fn build(volume_id: &str, files: &Files) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    image(volume_id, &refs).expect("valid input")
}

fn refuse(volume_id: &str, files: &[(&str, &[u8])]) -> String {
    image(volume_id, files).expect_err("refused").to_string()
}

/// Every byte value, in an order no sector-sized pattern repeats.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// A seed as maqet writes one.
fn seed() -> Files {
    vec![
        (
            "user-data".into(),
            b"#cloud-config\nhostname: vm1\n".to_vec(),
        ),
        (
            "meta-data".into(),
            b"instance-id: vm1\nlocal-hostname: vm1\n".to_vec(),
        ),
        ("network-config".into(), b"version: 2\n".to_vec()),
    ]
}

/// Sizes at and around sector boundaries, and one of many sectors. The
/// empty file comes last, so its extent is the (unused) sector just past
/// the end of the volume.
fn edges() -> Files {
    vec![
        ("exactly-2048".into(), noise(2048)),
        ("just-over-2048".into(), noise(2049)),
        ("megabyte.bin".into(), noise((1 << 20) + 3)),
        ("empty".into(), Vec::new()),
    ]
}

/// Names that all map to the same 8.3 stem, and enough long ones that each
/// root directory spans several sectors.
fn crowd() -> Files {
    (0..60)
        .map(|i| {
            (
                format!("{:-<60}{i:04}", "user-data"),
                format!("{i}\n").into_bytes(),
            )
        })
        .collect()
}

fn fixtures() -> Vec<(&'static str, Files)> {
    vec![("seed", seed()), ("edges", edges()), ("crowd", crowd())]
}

// --- reading the image by offsets -------------------------------------------

fn both32(img: &[u8], at: usize) -> usize {
    let le = u32::from_le_bytes(img[at..at + 4].try_into().unwrap());
    let be = u32::from_be_bytes(img[at + 4..at + 8].try_into().unwrap());
    assert_eq!(le, be, "both-endian u32 at byte {at}");
    le as usize
}

fn both16(img: &[u8], at: usize) -> usize {
    let le = u16::from_le_bytes(img[at..at + 2].try_into().unwrap());
    let be = u16::from_be_bytes(img[at + 2..at + 4].try_into().unwrap());
    assert_eq!(le, be, "both-endian u16 at byte {at}");
    le as usize
}

#[derive(Debug, PartialEq)]
struct Entry {
    id: Vec<u8>,
    extent: usize,
    size: usize,
    flags: u8,
}

/// The records of the root directory of the descriptor at `sector`, checking
/// on the way that none crosses a sector boundary and all are well formed.
fn root(img: &[u8], sector: usize) -> Vec<Entry> {
    let d = sector * SECTOR;
    let extent = both32(img, d + 156 + 2);
    let size = both32(img, d + 156 + 10);
    assert_eq!(size % SECTOR, 0);
    let mut entries = Vec::new();
    let mut at = extent * SECTOR;
    while at < (extent * SECTOR + size) {
        let len = usize::from(img[at]);
        if len == 0 {
            at = (at / SECTOR + 1) * SECTOR;
            continue;
        }
        assert_eq!(
            at / SECTOR,
            (at + len - 1) / SECTOR,
            "record at {at} crosses a sector"
        );
        assert_eq!(len % 2, 0, "odd record length at {at}");
        let id_len = usize::from(img[at + 32]);
        assert_eq!(len, 33 + id_len + (id_len + 1) % 2);
        assert_eq!(both16(img, at + 28), 1, "volume sequence number");
        assert_eq!(
            &img[at + 18..at + 25],
            &[70, 1, 1, 0, 0, 0, 0],
            "recording date"
        );
        entries.push(Entry {
            id: img[at + 33..at + 33 + id_len].to_vec(),
            extent: both32(img, at + 2),
            size: both32(img, at + 10),
            flags: img[at + 25],
        });
        at += len;
    }
    entries
}

fn ucs2_names(entries: &[Entry]) -> Vec<String> {
    entries[2..]
        .iter()
        .map(|e| {
            let units: Vec<u16> =
                e.id.chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
            String::from_utf16(&units).unwrap()
        })
        .collect()
}

fn ascii_names(entries: &[Entry]) -> Vec<String> {
    entries[2..]
        .iter()
        .map(|e| String::from_utf8(e.id.clone()).unwrap())
        .collect()
}

// --- structure -----------------------------------------------------------

#[test]
fn system_area_is_empty_and_descriptors_are_at_16_17_18() {
    let img = build("cidata", &seed());
    assert!(img[..16 * SECTOR].iter().all(|&b| b == 0));
    for (sector, kind) in [(16, 1), (17, 2), (18, 255)] {
        let d = &img[sector * SECTOR..];
        assert_eq!(d[0], kind, "type at sector {sector}");
        assert_eq!(&d[1..7], b"CD001\x01", "id and version at sector {sector}");
    }
    assert!(img[18 * SECTOR + 7..19 * SECTOR].iter().all(|&b| b == 0));
    // The Joliet level 3 escape, and none in the primary descriptor.
    assert_eq!(
        &img[17 * SECTOR + 88..17 * SECTOR + 120],
        b"%/E\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
    );
    assert!(
        img[16 * SECTOR + 88..16 * SECTOR + 120]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn volume_id_is_as_given_in_both_descriptors() {
    let img = build("cidata", &seed());
    assert_eq!(
        &img[16 * SECTOR + 40..16 * SECTOR + 72],
        format!("{:<32}", "cidata").as_bytes()
    );
    let mut joliet = b"\0c\0i\0d\0a\0t\0a".to_vec();
    joliet.extend([0, b' '].repeat(10));
    assert_eq!(&img[17 * SECTOR + 40..17 * SECTOR + 72], joliet.as_slice());

    // Joliet's field holds 16 UCS-2 characters; the primary one all 32.
    let long = "Abcdefghijklmnop-qrstuvwxyz_0123";
    let img = build(long, &seed());
    assert_eq!(&img[16 * SECTOR + 40..16 * SECTOR + 72], long.as_bytes());
    let first16: Vec<u8> = long[..16].bytes().flat_map(|b| [0, b]).collect();
    assert_eq!(&img[17 * SECTOR + 40..17 * SECTOR + 72], first16.as_slice());
}

#[test]
fn descriptor_fields_are_consistent() {
    for (what, files) in fixtures() {
        let img = build("cidata", &files);
        assert_eq!(img.len() % SECTOR, 0, "{what}");
        for (sector, l_table) in [(16, 19), (17, 21)] {
            let d = sector * SECTOR;
            assert_eq!(
                both32(&img, d + 80) * SECTOR,
                img.len(),
                "{what}: volume space size"
            );
            assert_eq!(both16(&img, d + 120), 1, "volume set size");
            assert_eq!(both16(&img, d + 124), 1, "volume sequence number");
            assert_eq!(both16(&img, d + 128), SECTOR, "logical block size");
            assert_eq!(both32(&img, d + 132), 10, "path table size");
            let l = u32::from_le_bytes(img[d + 140..d + 144].try_into().unwrap()) as usize;
            let m = u32::from_be_bytes(img[d + 148..d + 152].try_into().unwrap()) as usize;
            assert_eq!((l, m), (l_table, l_table + 1));
            assert_eq!(&img[d + 144..d + 148], &[0; 4], "no optional L table");
            assert_eq!(&img[d + 152..d + 156], &[0; 4], "no optional M table");
            assert_eq!(
                &img[d + 813..d + 830],
                b"1970010100000000\0",
                "creation date"
            );
            assert_eq!(
                &img[d + 830..d + 847],
                b"1970010100000000\0",
                "modification date"
            );
            assert_eq!(
                &img[d + 847..d + 864],
                b"0000000000000000\0",
                "expiration date"
            );
            assert_eq!(img[d + 881], 1, "file structure version");

            // The root record: 34 bytes, a directory, identifier 0x00.
            assert_eq!(img[d + 156], 34);
            assert_eq!(img[d + 156 + 25], 2);
            assert_eq!(&img[d + 156 + 32..d + 156 + 34], &[1, 0]);
            let root_extent = both32(&img, d + 156 + 2);

            // Each path table: the root alone, its own parent.
            let mut le = vec![1, 0];
            le.extend(u32::try_from(root_extent).unwrap().to_le_bytes());
            le.extend([1, 0, 0, 0]);
            let mut be = vec![1, 0];
            be.extend(u32::try_from(root_extent).unwrap().to_be_bytes());
            be.extend([0, 1, 0, 0]);
            assert_eq!(&img[l * SECTOR..l * SECTOR + 10], le.as_slice());
            assert_eq!(&img[m * SECTOR..m * SECTOR + 10], be.as_slice());
            assert!(
                img[l * SECTOR + 10..(l + 1) * SECTOR]
                    .iter()
                    .all(|&b| b == 0)
            );
            assert!(
                img[m * SECTOR + 10..(m + 1) * SECTOR]
                    .iter()
                    .all(|&b| b == 0)
            );

            // `.` is the descriptor's root record; `..` the same, id 0x01.
            let entries = root(&img, sector);
            let dot = root_extent * SECTOR;
            assert_eq!(&img[dot..dot + 34], &img[d + 156..d + 190], "{what}: `.`");
            assert_eq!(entries[1].id, [1]);
            assert_eq!(
                (entries[1].extent, entries[1].size),
                (entries[0].extent, entries[0].size)
            );
            assert!(entries[..2].iter().all(|e| e.flags == 2));
        }
        // The Joliet root follows the primary one.
        assert_eq!(both32(&img, 16 * SECTOR + 158), 23, "{what}");
        let primary_sectors = root(&img, 16)[0].size / SECTOR;
        assert_eq!(
            both32(&img, 17 * SECTOR + 158),
            23 + primary_sectors,
            "{what}"
        );
    }
}

#[test]
fn both_trees_share_the_file_data() {
    for (what, files) in fixtures() {
        let img = build("cidata", &files);
        let primary = root(&img, 16);
        let joliet = root(&img, 17);
        let names = ucs2_names(&joliet);
        assert_eq!(names.len(), files.len(), "{what}");
        for (name, data) in &files {
            let i = names.iter().position(|n| n == name).expect(name) + 2;
            let e = &joliet[i];
            assert_eq!((e.size, e.flags), (data.len(), 0), "{what}: {name}");
            if data.is_empty() {
                continue;
            }
            let at = e.extent * SECTOR;
            assert!(img[at..at + e.size] == *data, "{what}: {name}");
            // Past the end of the file, up to its last sector: zeros.
            let end = (at + e.size).next_multiple_of(SECTOR);
            assert!(
                img[at + e.size..end].iter().all(|&b| b == 0),
                "{what}: {name}"
            );
        }

        // The primary tree points at the same extents, and no two files'
        // data overlap each other or the directories.
        let extents = |entries: &[Entry]| {
            let mut v: Vec<(usize, usize)> =
                entries[2..].iter().map(|e| (e.extent, e.size)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(extents(&primary), extents(&joliet), "{what}");
        let mut free = both32(&img, 17 * SECTOR + 158) * SECTOR + joliet[0].size;
        for (extent, size) in extents(&joliet) {
            assert!(
                extent * SECTOR >= free,
                "{what}: overlap at sector {extent}"
            );
            free = (extent * SECTOR + size).next_multiple_of(SECTOR);
        }
        assert_eq!(free, img.len(), "{what}: the image ends with the last file");
    }
}

#[test]
fn sizes_at_sector_boundaries_take_exactly_their_sectors() {
    // Roots at 23 and 24; data from 25: 1, 2, 513 and 0 sectors.
    let img = build("cidata", &edges());
    assert_eq!(img.len(), (25 + 1 + 2 + 513) * SECTOR);
    let joliet = root(&img, 17);
    let at: Vec<(String, usize, usize)> = ucs2_names(&joliet)
        .into_iter()
        .zip(&joliet[2..])
        .map(|(n, e)| (n, e.extent, e.size))
        .collect();
    assert_eq!(
        at,
        [
            ("empty".into(), 541, 0),
            ("exactly-2048".into(), 25, 2048),
            ("just-over-2048".into(), 26, 2049),
            ("megabyte.bin".into(), 28, (1 << 20) + 3),
        ]
    );
}

#[test]
fn no_files_is_a_valid_empty_volume() {
    let img = image("cidata", &[]).unwrap();
    assert_eq!(img.len(), 25 * SECTOR);
    assert_eq!(root(&img, 16).len(), 2);
    assert_eq!(root(&img, 17).len(), 2);
}

#[test]
fn primary_names_are_unique_level_1_identifiers_in_order() {
    let img = build("cidata", &seed());
    assert_eq!(
        ascii_names(&root(&img, 16)),
        ["META_DAT.;1", "NETWORK_.;1", "USER_DAT.;1"]
    );
    assert_eq!(
        ucs2_names(&root(&img, 17)),
        ["meta-data", "network-config", "user-data"]
    );

    // ECMA-119 9.3 pads name and extension with spaces before comparing:
    // `X.B` sorts before `X.B1` though `;` is above `1`.
    let files: Files = [
        "x.b1",
        "x.b",
        ".profile",
        "a-b.tar.gz",
        "user-data",
        "user-data2",
    ]
    .into_iter()
    .map(|n| (n.to_owned(), Vec::new()))
    .collect();
    let img = build("cidata", &files);
    assert_eq!(
        ascii_names(&root(&img, 16)),
        [
            ".PRO;1",
            "A_B_TAR.GZ;1",
            "USER_D01.;1",
            "USER_DAT.;1",
            "X.B;1",
            "X.B1;1"
        ]
    );
    assert_eq!(
        ucs2_names(&root(&img, 17)),
        [
            ".profile",
            "a-b.tar.gz",
            "user-data",
            "user-data2",
            "x.b",
            "x.b1"
        ]
    );

    let img = build("cidata", &crowd());
    let names = ascii_names(&root(&img, 16));
    assert_eq!(names.len(), 60);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names, "unique and sorted");
    for n in &names {
        let (stem, ext) = n.strip_suffix(";1").unwrap().split_once('.').unwrap();
        assert!(stem.len() <= 8 && ext.len() <= 3, "{n}");
        assert!(
            format!("{stem}{ext}")
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{n}"
        );
    }
    assert_eq!(names[..3], ["USER_D01.;1", "USER_D02.;1", "USER_D03.;1"]);
    assert_eq!(names[59], "USER_DAT.;1");
    // Primary records are 44 bytes: `.`, `..` and 60 files take 2728, two
    // sectors. Joliet's are 162: 12 fit beside `.` and `..` (34 each), then
    // 12 per sector, so five sectors.
    assert_eq!(root(&img, 16)[0].size, 2 * SECTOR);
    assert_eq!(root(&img, 17)[0].size, 5 * SECTOR);
}

#[test]
fn output_depends_only_on_the_input() {
    assert_eq!(build("cidata", &edges()), build("cidata", &edges()));
    let a = build("cidata", &seed());
    let mut reversed = seed();
    reversed.reverse();
    let b = build("cidata", &reversed);
    assert_eq!(a.len(), b.len());
    // Records are sorted, so only the data order differs.
    assert_eq!(ascii_names(&root(&a, 16)), ascii_names(&root(&b, 16)));
}

#[test]
fn largest_image_is_16_mib() {
    // Roots at 23 and 24, data from 25.
    let fits = vec![7; MAX_IMAGE - 25 * SECTOR];
    let img = image("cidata", &[("big", &fits)]).unwrap();
    assert_eq!(img.len(), MAX_IMAGE);
    assert_eq!(
        refuse("cidata", &[("big", &fits), ("one", b"1")]),
        "the image would be 16779264 bytes, over the limit of 16 MiB"
    );
}

#[test]
fn refuses_bad_volume_ids() {
    for id in [
        "",
        "ci data",
        "cidätä",
        "ci.data",
        "ci/data",
        &"a".repeat(33),
    ] {
        assert_eq!(
            refuse(id, &[]),
            format!("volume id `{id}` must be 1 to 32 characters of A-Z, a-z, 0-9, `_` and `-`")
        );
    }
    assert!(image(&"A".repeat(32), &[]).is_ok());
}

#[test]
fn refuses_bad_and_repeated_names() {
    let long = "a".repeat(65);
    for name in [
        "",
        "User-data",
        "user data",
        "a/b",
        "../x",
        ".",
        "..",
        "a.",
        "ü",
        "a;1",
        &long,
    ] {
        assert_eq!(
            refuse("cidata", &[("meta-data", b""), (name, b"x")]),
            format!(
                "file name `{name}` must be 1 to 64 characters of a-z, 0-9, `.`, `_` and `-`, \
                 not ending in `.`"
            )
        );
    }
    assert!(image("cidata", &[(&long[1..], b"x")]).is_ok());
    assert_eq!(
        refuse(
            "cidata",
            &[("user-data", b"a"), ("meta-data", b""), ("user-data", b"b")]
        ),
        "file name `user-data` is given twice"
    );
}

// --- independent readers -------------------------------------------------

/// Whether `tool` can run. Missing, the test is skipped loudly, or fails
/// when `MAQET_REQUIRE_TOOLS=1` (as in CI).
fn have(tool: &str, test: &str) -> bool {
    let found = Command::new(tool).arg("--help").output().is_ok();
    crate::skips::needs(
        test,
        "MAQET_REQUIRE_TOOLS",
        found,
        &format!("{tool} is not installed"),
    )
}

fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool).args(args).output().expect(tool);
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(tool: &str, args: &[&str]) -> String {
    String::from_utf8(run(tool, args)).unwrap()
}

/// Each fixture, written as `<name>.iso` in `dir`.
fn written(dir: &Path) -> Vec<(PathBuf, Files)> {
    fixtures()
        .into_iter()
        .map(|(what, files)| {
            let path = dir.join(format!("{what}.iso"));
            std::fs::write(&path, build("cidata", &files)).unwrap();
            (path, files)
        })
        .collect()
}

fn sorted_names(files: &Files) -> Vec<String> {
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    names
}

#[test]
fn isoinfo_finds_joliet_and_reads_every_file() {
    if !have("isoinfo", "isoinfo_finds_joliet_and_reads_every_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (iso, files) in written(dir.path()) {
        let iso = iso.to_str().unwrap();
        let info = text("isoinfo", &["-d", "-i", iso]);
        let sectors = std::fs::metadata(iso).unwrap().len() / 2048;
        for line in [
            "CD-ROM is in ISO 9660 format",
            "Volume id: cidata",
            "Logical block size is: 2048",
            &format!("Volume size is: {sectors}"),
            "Joliet with UCS level 3 found",
        ] {
            assert!(
                info.lines().any(|l| l == line),
                "{iso}: no `{line}` in\n{info}"
            );
        }

        let listed = text("isoinfo", &["-f", "-J", "-i", iso]);
        let expected: String = sorted_names(&files)
            .iter()
            .map(|n| format!("/{n}\n"))
            .collect();
        assert_eq!(listed, expected, "{iso}");

        for (name, data) in &files {
            let got = run("isoinfo", &["-J", "-x", &format!("/{name}"), "-i", iso]);
            assert!(
                got == *data,
                "{iso}: /{name} reads back {} bytes, not {}",
                got.len(),
                data.len()
            );
        }
    }
    // The primary tree as well, by its 8.3 names.
    let iso = dir.path().join("seed.iso");
    let got = run(
        "isoinfo",
        &["-x", "/USER_DAT.;1", "-i", iso.to_str().unwrap()],
    );
    assert_eq!(got, seed()[0].1);
}

#[test]
fn seven_zip_extracts_identical_files() {
    if !have("7z", "seven_zip_extracts_identical_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (iso, files) in written(dir.path()) {
        let out = dir.path().join(iso.file_stem().unwrap());
        run(
            "7z",
            &[
                "x",
                "-y",
                &format!("-o{}", out.display()),
                iso.to_str().unwrap(),
            ],
        );
        let mut found: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        found.sort();
        assert_eq!(found, sorted_names(&files), "{}", iso.display());
        for (name, data) in &files {
            assert!(
                std::fs::read(out.join(name)).unwrap() == *data,
                "{}: {name}",
                iso.display()
            );
        }
    }
}

#[test]
fn file_and_blkid_see_the_label() {
    let test = "file_and_blkid_see_the_label";
    if !have("file", test) || !have("blkid", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (iso, _) in written(dir.path()) {
        let iso = iso.to_str().unwrap();
        assert_eq!(
            text("file", &["-b", iso]),
            "ISO 9660 CD-ROM filesystem data 'cidata'\n"
        );
        assert_eq!(
            text("blkid", &["-o", "value", "-s", "LABEL", iso]),
            "cidata\n"
        );
        assert_eq!(
            text("blkid", &["-o", "value", "-s", "TYPE", iso]),
            "iso9660\n"
        );
    }
    // A label longer than Joliet's 16 characters: blkid completes it from
    // the primary descriptor.
    let long = "Abcdefghijklmnop-qrstuvwxyz_0123";
    let iso = dir.path().join("long.iso");
    std::fs::write(&iso, build(long, &seed())).unwrap();
    let label = text(
        "blkid",
        &["-o", "value", "-s", "LABEL", iso.to_str().unwrap()],
    );
    assert_eq!(label, format!("{long}\n"));
}

/// The kernel as a reader: needs root and a kernel with ISO 9660 support.
/// CI's kernel has none (and cannot load modules), so this test does not
/// run there: it is ignored, which libtest reports, rather than passing
/// without checking anything. Run it where it can with
/// `cargo test --lib -- --ignored linux_mounts`; there a missing need fails it.
#[test]
#[ignore = "needs root and an iso9660 kernel, which CI lacks: cargo test --lib -- --ignored linux_mounts"]
fn linux_mounts_the_image_and_reads_the_files() {
    assert!(nix::unistd::geteuid().is_root(), "mounting needs root");
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    assert!(
        filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("iso9660")),
        "this kernel has no iso9660 filesystem"
    );
    let dir = tempfile::tempdir().unwrap();
    for (iso, files) in written(dir.path()) {
        let at = dir.path().join(format!(
            "{}.mnt",
            iso.file_stem().unwrap().to_str().unwrap()
        ));
        std::fs::create_dir(&at).unwrap();
        let at_str = at.to_str().unwrap();
        run(
            "mount",
            &[
                "-o",
                "loop,ro",
                "-t",
                "iso9660",
                iso.to_str().unwrap(),
                at_str,
            ],
        );
        let mounted = Unmount(at_str);
        let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&at)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        drop(mounted);
        found.sort();
        let mut expected = files.clone();
        expected.sort();
        assert!(
            found == expected,
            "{}: {:?}",
            iso.display(),
            found.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
    }
}

/// Unmounts even when reading the mounted image panics.
struct Unmount<'a>(&'a str);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        run("umount", &[self.0]);
    }
}
