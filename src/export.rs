//! Definitions of a stored VM for the engines that go past one host:
//! a libvirt domain ([`libvirt`]) and a systemd unit ([`systemd`])
//! (docs/export.md). Exporting reads the config and the images' backing
//! chains; it never starts, changes or stores anything.

pub mod device;
pub mod libvirt;
pub mod systemd;
mod xml;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};

/// An export: the definition, what the user should know about it, and the
/// files to copy when the images were placed elsewhere (`--image-dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub text: String,
    pub notes: Vec<String>,
    pub copies: Vec<Copy>,
}

/// A file the definition names at `to`, found here at `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub from: Utf8PathBuf,
    pub to: Utf8PathBuf,
}

/// Where the definition says each file is: where it is here, or in
/// `--image-dir` on the target host under its own file name; a file maqet
/// keeps for the VM (its disks, its seed) under the VM's name and its own,
/// so two VMs' `root.qcow2` or `cidata.iso` do not land on one file.
#[derive(Debug, Default)]
pub struct Placement {
    dir: Option<Utf8PathBuf>,
    /// The VM's own directory here, and its name.
    own: Option<(Utf8PathBuf, String)>,
    copies: Vec<Copy>,
}

impl Placement {
    pub fn new(dir: Option<Utf8PathBuf>) -> Placement {
        Placement {
            dir,
            own: None,
            copies: Vec::new(),
        }
    }

    /// Files in `disks` are the VM `name`'s own.
    pub fn owned_by(mut self, disks: &Utf8Path, name: &str) -> Placement {
        self.own = Some((disks.to_owned(), name.to_owned()));
        self
    }

    /// The path the definition names for the file at `path` here.
    pub fn place(&mut self, field: &str, path: &Utf8Path) -> Result<Utf8PathBuf> {
        let Some(dir) = &self.dir else {
            return Ok(path.to_owned());
        };
        let name = path.file_name().ok_or_else(|| {
            unmappable(
                format!("{field}: {path} has no file name to place in {dir}"),
                "export without --image-dir",
            )
        })?;
        let to = match &self.own {
            Some((disks, vm)) if path.starts_with(disks) => dir.join(format!("{vm}-{name}")),
            _ => dir.join(name),
        };
        match self.copies.iter().find(|c| c.to == to) {
            Some(c) if c.from == path => {}
            Some(c) => {
                return Err(unmappable(
                    format!(
                        "{field}: {path} and {} would both be {to} in --image-dir",
                        c.from
                    ),
                    "rename one of the files, or export without --image-dir",
                ));
            }
            None => self.copies.push(Copy {
                from: path.to_owned(),
                to: to.clone(),
            }),
        }
        Ok(to)
    }

    /// True when the files go to another place (`--image-dir`).
    pub fn moving(&self) -> bool {
        self.dir.is_some()
    }

    pub fn into_copies(self) -> Vec<Copy> {
        self.copies
    }
}

/// What a target cannot express: the export is refused, naming the field.
pub fn unmappable(message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::Unmappable {
        message: message.into(),
        help: help.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_files_keep_their_names_and_may_not_collide() {
        let mut p = Placement::new(Some("/srv/vm".into()));
        let a = p.place("storage `a`", "/h/a/disk.qcow2".into()).unwrap();
        assert_eq!(a, "/srv/vm/disk.qcow2");
        // The same file twice is one copy.
        p.place("storage `a2`", "/h/a/disk.qcow2".into()).unwrap();
        let err = p
            .place("storage `b`", "/h/b/disk.qcow2".into())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "storage `b`: /h/b/disk.qcow2 and /h/a/disk.qcow2 would both be /srv/vm/disk.qcow2 in --image-dir"
        );
        assert_eq!(
            p.into_copies(),
            [Copy {
                from: "/h/a/disk.qcow2".into(),
                to: "/srv/vm/disk.qcow2".into()
            }]
        );
        let mut own = Placement::new(Some("/srv/vm".into())).owned_by("/d/disks/01".into(), "web");
        assert_eq!(
            own.place("storage `root`", "/d/disks/01/root.qcow2".into())
                .unwrap(),
            "/srv/vm/web-root.qcow2"
        );
        assert_eq!(
            own.place("storage `base`", "/h/base.qcow2".into()).unwrap(),
            "/srv/vm/base.qcow2"
        );
        let mut here = Placement::new(None);
        assert_eq!(here.place("x", "/h/x".into()).unwrap(), "/h/x");
        assert!(here.into_copies().is_empty());
    }
}
