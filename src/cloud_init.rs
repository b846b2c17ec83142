//! cloud-init NoCloud seeds (docs/cloud-init.md): what a cloud image needs
//! to give its user a shell. maqet writes `user-data` (a `#cloud-config`
//! creating the account with its SSH keys) and `meta-data` (instance id
//! and host name) into an ISO 9660 image labelled `cidata`, and attaches
//! it to the VM as a read-only CD-ROM.

use std::fmt::Write as _;

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::{
    Account, AuthorizedKey, CdromDrive, CloudInit, Hostname, Interface, Storage, UserPath, VmConfig,
};
use crate::error::{Error, Result};
use crate::paths::PathPolicy;

/// The volume id cloud-init's NoCloud source looks for, and the name of
/// the CD-ROM among the VM's drives (a config may not use it).
pub const SEED_NAME: &str = "cidata";

/// The key types OpenSSH writes in `*.pub` files.
const KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The largest key file maqet reads: a few keys are a few KiB.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// The largest `user_data` file: cloud-init's own limit is about this.
pub const MAX_USER_DATA: u64 = 1024 * 1024;

/// True when `text` starts with an OpenSSH key type: it is meant as a key
/// line, not a file name.
pub fn looks_like_key(text: &str) -> bool {
    text.split_whitespace()
        .next()
        .is_some_and(|word| KEY_TYPES.contains(&word))
}

/// Check an OpenSSH public key line (`TYPE BASE64 [COMMENT]`): a known
/// type, and a blob that decodes and names the same type. Returns the line
/// tidied (single spaces).
pub fn parse_key(line: &str) -> std::result::Result<String, String> {
    let mut words = line.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err("an OpenSSH public key is `TYPE BASE64 [COMMENT]`".into());
    };
    if !KEY_TYPES.contains(&kind) {
        return Err(format!("`{kind}` is not an OpenSSH public key type"));
    }
    let bytes = base64(blob).ok_or_else(|| format!("the {kind} key is not valid base64"))?;
    let named = bytes
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| bytes.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(format!("the {kind} key's data is not a {kind} key"));
    }
    let comment: Vec<&str> = words.collect();
    if let Some(c) = comment
        .iter()
        .flat_map(|w| w.chars())
        .find(|c| c.is_control())
    {
        return Err(format!(
            "the key's comment holds the control character U+{:04X}",
            u32::from(c)
        ));
    }
    let mut out = format!("{kind} {blob}");
    if !comment.is_empty() {
        out.push(' ');
        out.push_str(&comment.join(" "));
    }
    Ok(out)
}

/// Standard base64 with padding, as OpenSSH writes it.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | u32::from(value(c)?);
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

/// The keys in a key file: each line that is not blank or a `#` comment
/// must be one. Messages never quote the file (a private key or a token
/// given by mistake must not be printed).
pub fn read_key_file(path: &Utf8Path, policy: Option<&PathPolicy>) -> Result<Vec<String>> {
    let check = policy.map(|p| (p, Reader::Keys));
    let text = read_small(path, MAX_KEY_FILE, "SSH key file", check)?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_key(line).map_err(|_| {
            Error::invalid(
                format!(
                    "line {} of SSH key file {path} is not an OpenSSH public key \
                     (`TYPE BASE64 [COMMENT]` of a known type)",
                    n + 1
                ),
                "give the public key (the `.pub` file), one key per line",
            )
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Error::invalid(
            format!("SSH key file {path} holds no key"),
            "give a `.pub` file with an OpenSSH public key",
        ));
    }
    Ok(keys)
}

/// Why a seed's input files must be the user's own.
pub const TRUST_WHY: &str =
    "what it says reaches the guest's cloud-init, which makes accounts and runs programs as root";

/// Who will read a file maqet reads for the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Its whole text reaches the guest (`user_data`): the filter for VM
    /// files.
    Guest,
    /// Only the public keys in it reach the guest (a key file).
    Keys,
}

/// A regular file's text, at most `max` bytes. With a policy, the file is
/// opened once (never through a final symlink), checked by the filter
/// where the opened file really is, and read from that descriptor: a
/// directory swapped on its path after a check reaches nothing.
pub fn read_small(
    path: &Utf8Path,
    max: u64,
    what: &'static str,
    check: Option<(&PathPolicy, Reader)>,
) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("cannot read", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?;
    if !meta.is_file() {
        return Err(Error::not_a_file(what, path, meta.file_type()));
    }
    if let Some((policy, reader)) = check {
        // What it says reaches the guest: nobody else may change it.
        crate::settings::check_trusted_file(path, TRUST_WHY)?;
        let real = crate::paths::dir::real_path(&file, path)?;
        let judged = match reader {
            Reader::Guest => policy.check_vm(real.as_os_str(), Utf8Path::new("/")),
            Reader::Keys => policy.check(real.as_os_str(), Utf8Path::new("/")),
        };
        judged.map_err(|e| Error::Refused {
            message: format!("{what} {path}: {e}"),
            help: e.help(),
        })?;
    }
    if meta.len() > max {
        return Err(Error::invalid(
            format!(
                "{what} {path} is {} bytes, over maqet's limit of {max}",
                meta.len()
            ),
            "give a smaller file",
        ));
    }
    let mut text = String::new();
    file.take(max)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("cannot read", path, e))?;
    Ok(text)
}

/// The user's `~/.ssh/*.pub`, sorted: the keys a VM gets when its config
/// names none.
pub fn default_key_files(home: &Utf8Path) -> Vec<Utf8PathBuf> {
    let dir = home.join(".ssh");
    let mut files: Vec<Utf8PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .filter(|p| p.extension() == Some("pub") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Every key a config gives, read now; or the default key files' when it
/// names none. With a policy, each file is checked as it is read.
pub fn keys(
    ci: &CloudInit,
    home: Option<&Utf8Path>,
    policy: Option<&PathPolicy>,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    if ci.ssh_authorized_keys.is_empty() {
        let files = home.map(default_key_files).unwrap_or_default();
        if files.is_empty() {
            return Err(Error::invalid(
                "cloud_init has no ssh_authorized_keys, and ~/.ssh has no *.pub file to use",
                "create a key with `ssh-keygen -t ed25519`, or list keys in \
                 `ssh_authorized_keys: [\"~/.ssh/KEY.pub\"]`",
            ));
        }
        for file in files {
            keys.extend(read_key_file(&file, policy)?);
        }
    }
    for key in &ci.ssh_authorized_keys {
        match key {
            AuthorizedKey::Key(line) => keys.push(parse_key(line).map_err(|why| {
                Error::invalid(
                    format!("ssh_authorized_keys: {why}"),
                    "give an OpenSSH public key line",
                )
            })?),
            AuthorizedKey::File(path) => keys.extend(read_key_file(path.as_path(), policy)?),
        }
    }
    Ok(keys)
}

/// The files of a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub user_data: Vec<u8>,
    pub meta_data: Vec<u8>,
}

/// What the seed says: the account and its keys, the host name, and the
/// user's own user data as a second part.
pub struct SeedInput<'a> {
    pub vm_id: &'a str,
    pub user: &'a Account,
    pub hostname: &'a Hostname,
    pub keys: &'a [String],
    pub extra: Option<&'a [u8]>,
}

/// The seed's files.
pub fn seed(input: &SeedInput<'_>) -> Result<Seed> {
    let mut config = String::from("#cloud-config\n");
    let _ = writeln!(
        config,
        "users:\n  - name: \"{}\"\n    shell: /bin/bash\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    lock_passwd: true\n    ssh_authorized_keys:",
        input.user.as_str()
    );
    for key in input.keys {
        let _ = writeln!(config, "      - \"{}\"", yaml_escape(key));
    }
    let _ = writeln!(config, "hostname: \"{}\"", input.hostname.as_str());
    let user_data = match input.extra {
        None => config.into_bytes(),
        Some(extra) => multipart(&config, extra)?,
    };
    let meta_data = format!(
        "instance-id: maqet-{}\nlocal-hostname: {}\n",
        input.vm_id,
        input.hostname.as_str()
    )
    .into_bytes();
    Ok(Seed {
        user_data,
        meta_data,
    })
}

/// Inside a YAML double-quoted string.
fn yaml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The MIME type cloud-init gives a user-data part, from its first line.
fn part_type(extra: &[u8]) -> Option<&'static str> {
    let first = extra.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = std::str::from_utf8(first).ok()?.trim_end();
    [
        ("#cloud-config", "text/cloud-config"),
        ("#!", "text/x-shellscript"),
        ("#cloud-boothook", "text/cloud-boothook"),
        ("#include", "text/x-include-url"),
        ("#part-handler", "text/part-handler"),
        ("#upstart-job", "text/upstart-job"),
        ("#jinja", "text/jinja2"),
        ("## template: jinja", "text/jinja2"),
    ]
    .into_iter()
    .find(|(start, _)| first.starts_with(start))
    .map(|(_, kind)| kind)
}

/// The boundary between the parts of a user data with the user's own.
const BOUNDARY: &str = "==maqet-cloud-init-part==";

/// Check the user's own user data: a kind cloud-init knows by its first
/// line, and nothing that would end its part early. Returns its MIME type.
pub fn check_user_data(extra: &[u8]) -> Result<&'static str> {
    let kind = part_type(extra).ok_or_else(|| {
        Error::invalid(
            "cloud_init.user_data does not start with a line cloud-init knows \
             (`#cloud-config`, `#!`, `#include`, `#cloud-boothook`, `## template: jinja`, ...)",
            "start the file with `#cloud-config` (YAML) or `#!/bin/sh` (a script)",
        )
    })?;
    if extra
        .windows(BOUNDARY.len())
        .any(|w| w == BOUNDARY.as_bytes())
    {
        return Err(Error::invalid(
            format!("cloud_init.user_data contains `{BOUNDARY}`, which maqet uses between parts"),
            "remove it from the file",
        ));
    }
    Ok(kind)
}

/// maqet's `#cloud-config` and the user's part, as MIME multipart, which
/// cloud-init merges in order: lists appended, so the user's `users` add
/// to maqet's account rather than replace it.
fn multipart(config: &str, extra: &[u8]) -> Result<Vec<u8>> {
    let kind = check_user_data(extra)?;
    let boundary = BOUNDARY;
    let mut out = format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n\
         --{boundary}\nContent-Type: text/cloud-config; charset=\"utf-8\"\n\
         Content-Disposition: attachment; filename=\"maqet.cfg\"\n\n{config}\
         --{boundary}\nContent-Type: {kind}; charset=\"utf-8\"\n\
         Merge-Type: list(append)+dict(no_replace,recurse_list)+str()\n\
         Content-Disposition: attachment; filename=\"user-data\"\n\n"
    )
    .into_bytes();
    out.extend_from_slice(extra);
    if !extra.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("--{boundary}--\n").as_bytes());
    Ok(out)
}

/// `config` with its seed attached as the read-only drive `cidata`, as it
/// runs: `start` and `export` see it, the store does not. On virtio, not
/// as a SATA CD-ROM: distributions' cloud kernels (Debian's among them)
/// have no AHCI driver, and cloud-init finds the seed by its label on any
/// block device.
pub fn attach(config: &VmConfig, seed: &Utf8Path) -> VmConfig {
    let mut out = config.clone();
    out.storage.push(Storage::Cdrom(CdromDrive {
        name: SEED_NAME.parse().expect("a valid drive name"),
        file: UserPath::checked(seed.to_owned()),
        interface: Interface::Virtio,
    }));
    out
}

/// Where a VM's seed is: beside the images maqet creates for it.
pub fn seed_path(disks_dir: &Utf8Path) -> Utf8PathBuf {
    disks_dir.join(format!("{SEED_NAME}.iso"))
}

/// Write the seed of a VM with a `cloud_init` section into its disks
/// directory: [`seed_image`], then [`store_seed`]. Returns its path;
/// `None` for a VM without the section.
pub fn write_seed(
    vm: &crate::vm::Vm,
    disks_dir: &Utf8Path,
    policy: &PathPolicy,
) -> Result<Option<Utf8PathBuf>> {
    seed_image(vm, policy)?
        .map(|image| store_seed(disks_dir, &image))
        .transpose()
}

/// The seed image of a VM with a `cloud_init` section, its inputs (key
/// files, user data) read now; `None` for a VM without the section.
pub fn seed_image(vm: &crate::vm::Vm, policy: &PathPolicy) -> Result<Option<Vec<u8>>> {
    let Some(ci) = &vm.config.cloud_init else {
        return Ok(None);
    };
    let account = match &ci.user {
        Some(user) => user.clone(),
        None => invoking_account()?,
    };
    let hostname = ci
        .hostname
        .clone()
        .unwrap_or_else(|| Hostname::from_name(vm.name.as_str()));
    let home = std::env::var("HOME").ok().map(Utf8PathBuf::from);
    let keys = keys(ci, home.as_deref(), Some(policy))?;
    let extra = match &ci.user_data {
        // Checked again as it is read: its whole text goes to the guest.
        Some(path) => Some(
            read_small(
                path.as_path(),
                MAX_USER_DATA,
                "user data file",
                Some((policy, Reader::Guest)),
            )?
            .into_bytes(),
        ),
        None => None,
    };
    let files = seed(&SeedInput {
        vm_id: vm.id.as_str(),
        user: &account,
        hostname: &hostname,
        keys: &keys,
        extra: extra.as_deref(),
    })?;
    let image = crate::iso::image(
        SEED_NAME,
        &[
            ("meta-data", files.meta_data.as_slice()),
            ("user-data", files.user_data.as_slice()),
        ],
    )
    .map_err(|e| {
        Error::invalid(
            format!("cannot write the cloud-init seed: {e}"),
            "report this",
        )
    })?;
    Ok(Some(image))
}

/// Put a seed image into the VM's disks directory (0600), unless it
/// already holds these very bytes. Returns its path.
pub fn store_seed(disks_dir: &Utf8Path, image: &[u8]) -> Result<Utf8PathBuf> {
    crate::dirs::ensure_private_dir(disks_dir)?;
    let dir = crate::paths::dir::CheckedDir::open(disks_dir, None)?;
    let name = format!("{SEED_NAME}.iso");
    if dir.read_file(&name).ok().as_deref() != Some(image) {
        dir.replace_file(&name, image)?;
    }
    Ok(seed_path(disks_dir))
}

/// The account of the user running maqet, as the guest's.
fn invoking_account() -> Result<Account> {
    let name = crate::dirs::user_name("set `cloud_init: (user: \"NAME\")`")?;
    Account::new(&name).map_err(|why| {
        Error::invalid(
            format!("your user name cannot be the guest's: {why}"),
            "set `cloud_init: (user: \"NAME\")`",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXUGg5bC/Y0mJHbJ9w1c6X8Fj4Y3w7Xo1pD0rm0Kp2E me@host";

    #[test]
    fn key_lines_are_checked_as_openssh_writes_them() {
        assert!(looks_like_key(ED25519));
        assert!(!looks_like_key("~/.ssh/id_ed25519.pub"));
        assert_eq!(parse_key(&format!("  {ED25519}  ")).unwrap(), ED25519);
        assert_eq!(
            parse_key(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHXUGg5bC/Y0mJHbJ9w1c6X8Fj4Y3w7Xo1pD0rm0Kp2E"
            ),
            Err("the ssh-rsa key's data is not a ssh-rsa key".into())
        );
        assert_eq!(
            parse_key("ssh-ed25519 AAAA!!!"),
            Err("the ssh-ed25519 key is not valid base64".into())
        );
        assert_eq!(
            parse_key("ssh-ed25519"),
            Err("an OpenSSH public key is `TYPE BASE64 [COMMENT]`".into())
        );
        assert_eq!(
            parse_key(&format!("{ED25519}\u{1b}[2J")),
            Err("the key's comment holds the control character U+001B".into())
        );
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64("aGk=").unwrap(), b"hi");
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(base64("aA=="), Some(b"h".to_vec()));
        assert_eq!(base64("a==="), None);
        assert_eq!(base64("aGk=aGk="), None);
        assert_eq!(base64("aGk"), None);
    }

    #[test]
    fn the_seed_creates_the_account_with_its_keys() {
        let user = Account::new("me").unwrap();
        let hostname = Hostname::new("web").unwrap();
        let keys = [
            ED25519.to_owned(),
            "ssh-ed25519 AAAA \"quoted\\\"".to_owned(),
        ];
        let seed = seed(&SeedInput {
            vm_id: "0123",
            user: &user,
            hostname: &hostname,
            keys: &keys,
            extra: None,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(seed.user_data).unwrap(),
            format!(
                "#cloud-config
users:
  - name: \"me\"
    shell: /bin/bash
    sudo: \"ALL=(ALL) NOPASSWD:ALL\"
    lock_passwd: true
    ssh_authorized_keys:
      - \"{ED25519}\"
      - \"ssh-ed25519 AAAA \\\"quoted\\\\\\\"\"
hostname: \"web\"
"
            )
        );
        assert_eq!(
            String::from_utf8(seed.meta_data).unwrap(),
            "instance-id: maqet-0123\nlocal-hostname: web\n"
        );
    }

    #[test]
    fn user_data_of_the_users_own_is_a_second_part() {
        let user = Account::new("me").unwrap();
        let hostname = Hostname::new("web").unwrap();
        let input = |extra: &'static [u8]| SeedInput {
            vm_id: "0123",
            user: &user,
            hostname: &hostname,
            keys: &[],
            extra: Some(extra),
        };
        let seed = seed(&input(b"#!/bin/sh\necho hi")).unwrap();
        let text = String::from_utf8(seed.user_data).unwrap();
        assert!(text.starts_with(
            "Content-Type: multipart/mixed; boundary=\"==maqet-cloud-init-part==\"\n"
        ));
        assert!(text.contains("Content-Type: text/x-shellscript; charset=\"utf-8\"\nMerge-Type: list(append)+dict(no_replace,recurse_list)+str()\n"));
        assert!(
            text.ends_with("\n\n#!/bin/sh\necho hi\n--==maqet-cloud-init-part==--\n"),
            "{text}"
        );
        let err = super::seed(&input(b"users: []\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cloud_init.user_data does not start"),
            "{err}"
        );
        let err =
            super::seed(&input(b"#cloud-config\n--==maqet-cloud-init-part==--\n")).unwrap_err();
        assert!(
            err.to_string().contains("which maqet uses between parts"),
            "{err}"
        );
    }

    #[test]
    fn host_names_and_accounts_are_what_cloud_init_takes() {
        assert_eq!(Hostname::from_name("web_1.test").as_str(), "web-1-test");
        assert_eq!(Hostname::from_name("_x_").as_str(), "x");
        assert!(Account::new("Me").is_err());
        assert!(Account::new("1me").is_err());
        assert!(Account::new("me-2_x").is_ok());
        assert!(Account::new("me\"\nx").is_err());
    }
}
