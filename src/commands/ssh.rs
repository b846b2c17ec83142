use std::io::IsTerminal;
use std::net::Ipv4Addr;

use argh::{ArgsInfo, FromArgs};
use camino::{Utf8Path, Utf8PathBuf};

use super::Env;
use crate::config::{AuthorizedKey, Protocol};
use crate::error::{Error, Result};
use crate::render::{Output, Text};
use crate::vm::Status;

/// Open an SSH session in a VM, through its forward to guest port 22.
#[derive(Debug, FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "ssh",
    note = "Runs the system's `ssh` to the host port forwarded to guest port 22, as the \
            cloud-init user (or yours), with the identity of the configured key file. The \
            guest's host key is kept in a known_hosts file of the VM's own, under maqet's data \
            directory: accepted the first time, and a changed one is refused. The exit status \
            is ssh's, so a command's status passes through.",
    example = "maqet ssh web\nmaqet ssh web -- uname -a\nmaqet ssh web --print"
)]
pub struct Args {
    /// the VM: name, id or id prefix
    #[argh(positional, arg_name = "VM")]
    pub vm: String,

    /// the guest account (default: the cloud-init user, else your name)
    #[argh(option, arg_name = "USER")]
    pub user: Option<String>,

    /// print the ssh command line instead of running it
    #[argh(switch)]
    pub print: bool,

    /// the command to run in the guest (after `--`)
    #[argh(positional, greedy, arg_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(env: &Env, args: Args) -> Result<Box<dyn Output>> {
    let argv = command(env, &args)?;
    if args.print {
        return Ok(Box::new(Text(format!(
            "{}\n",
            crate::qemu::argv::shell_line(&argv)
        ))));
    }
    exec(&argv)
}

/// The ssh command line for the VM.
pub fn command(env: &Env, args: &Args) -> Result<Vec<String>> {
    let vm = super::find_reconciled(env, &args.vm)?;
    let configured = vm
        .config
        .network
        .iter()
        .flat_map(|n| {
            let crate::config::Network::User(user) = n;
            &user.forwards
        })
        .any(|f| f.guest.0 == 22 && f.protocol == Protocol::Tcp);
    if !configured {
        return Err(Error::invalid(
            format!("VM `{}` forwards no host port to guest port 22", vm.name),
            "add one to its network: `forwards: [(host: 2222, guest: 22)]`",
        ));
    }
    let program = crate::qemu::find_program(&crate::config::Program::new("ssh")).map_err(|_| {
        Error::invalid(
            "ssh is not installed",
            "install OpenSSH's client (Debian and Ubuntu: `apt-get install openssh-client`)",
        )
    })?;
    let running = match (&vm.runtime, vm.status) {
        (Some(rt), Status::Running) => rt,
        _ => {
            return Err(Error::NotRunning {
                name: vm.name.to_string(),
                status: vm.status.as_str().to_owned(),
                help: format!("`maqet start {}` starts it", vm.name),
            });
        }
    };
    // The forward of the QEMU that runs, not of the stored config: after
    // an `apply` the stored port is not yet bound, and another user's VM
    // could listen there.
    let (bind, port) = running_forward(&running.argv).ok_or_else(|| {
        Error::invalid(
            format!(
                "the running VM `{}` forwards no host port to guest port 22 (its stored config \
                 does: that takes effect at its next start)",
                vm.name
            ),
            format!("`maqet stop {0}` and `maqet start {0}`", vm.name),
        )
    })?;
    let ci = vm.config.cloud_init.as_ref();
    let user = match (&args.user, ci.and_then(|c| c.user.as_ref())) {
        (Some(user), _) => crate::config::Account::new(user)
            .map_err(|why| Error::usage(format!("--user: {why}"), "give the guest account's name"))?
            .as_str()
            .to_owned(),
        (None, Some(user)) => user.as_str().to_owned(),
        (None, None) => crate::dirs::user_name("give the guest account with --user")?,
    };
    // 0.0.0.0 binds every address; the session goes to this host's own.
    let host = if bind == Ipv4Addr::UNSPECIFIED {
        Ipv4Addr::LOCALHOST
    } else {
        bind
    };
    let known_hosts = known_hosts(env, &vm.id)?;
    let mut argv = vec![
        program.into_string(),
        "-p".to_owned(),
        port.to_string(),
        "-o".to_owned(),
        "StrictHostKeyChecking=accept-new".to_owned(),
        "-o".to_owned(),
        format!("UserKnownHostsFile={}", option_path(&known_hosts)?),
        // The VM's key is known by the VM, not by a port another VM may
        // forward next time.
        "-o".to_owned(),
        format!("HostKeyAlias=maqet-{}", vm.id),
    ];
    // With nobody at a terminal, a refused key is an error, not a password
    // prompt that waits forever.
    if !std::io::stdin().is_terminal() {
        argv.extend(["-o".to_owned(), "BatchMode=yes".to_owned()]);
    }
    // The key files the seed was made from (with none listed, the
    // `$HOME/.ssh/*.pub` maqet took), each with its private key: ssh's own
    // defaults come from the password database's home, not `$HOME`.
    let listed = ci
        .map(|c| c.ssh_authorized_keys.as_slice())
        .unwrap_or_default();
    let files: Vec<Utf8PathBuf> = if ci.is_some() && listed.is_empty() {
        std::env::var("HOME")
            .map(|home| crate::cloud_init::default_key_files(Utf8Path::new(&home)))
            .unwrap_or_default()
    } else {
        listed
            .iter()
            .filter_map(|key| match key {
                AuthorizedKey::File(public) => Some(public.as_path().to_owned()),
                AuthorizedKey::Key(_) => None,
            })
            .collect()
    };
    for public in &files {
        if let Some(private) = public.as_str().strip_suffix(".pub")
            && std::path::Path::new(private).is_file()
        {
            argv.extend([
                "-o".to_owned(),
                format!("IdentityFile={}", option_path(Utf8Path::new(private))?),
            ]);
        }
    }
    // ssh reads options after the destination too, unless `--` ended
    // them: a command (or an account) starting with `-` is not one. ssh
    // joins the command's words with spaces for the guest's shell.
    argv.push("--".to_owned());
    argv.push(format!("{user}@{host}"));
    argv.extend(args.command.iter().cloned());
    Ok(argv)
}

/// The TCP forward to guest port 22 in a QEMU command line maqet built:
/// `-netdev user,...,hostfwd=tcp:BIND:PORT-:22,...`.
fn running_forward(argv: &[String]) -> Option<(Ipv4Addr, u16)> {
    argv.windows(2)
        .filter(|w| w[0] == "-netdev")
        .flat_map(|w| w[1].split(','))
        .filter_map(|part| {
            let rest = part.strip_prefix("hostfwd=tcp:")?;
            let (host, guest) = rest.split_once('-')?;
            let (bind, port) = host.rsplit_once(':')?;
            let guest_port = guest.rsplit_once(':')?.1;
            (guest_port == "22").then_some(())?;
            Some((bind.parse().ok()?, port.parse().ok()?))
        })
        .next()
}

/// A path as the value of an ssh `-o` option: ssh's config syntax splits
/// at spaces unless quoted, and expands `%` tokens. A path that holds a
/// quote, a backslash or a control character is refused.
fn option_path(path: &Utf8Path) -> Result<String> {
    if let Some(c) = path
        .as_str()
        .chars()
        .find(|c| matches!(c, '"' | '\\') || c.is_control())
        .or_else(|| path.as_str().contains("${").then_some('$'))
    {
        return Err(Error::invalid(
            format!("ssh cannot be given the path {path}: it holds {c:?}"),
            "use a data directory and key files whose paths have no quotes, backslashes, `${` \
             or control characters (ssh gives them meanings of its own)",
        ));
    }
    Ok(format!("\"{}\"", path.as_str().replace('%', "%%")))
}

/// The VM's own known_hosts file (`VmPaths::known_hosts`), private: made
/// 0600 here, and ssh keeps the mode of a file it appends to.
fn known_hosts(env: &Env, id: &crate::vm::VmId) -> Result<Utf8PathBuf> {
    let path = env.dirs.vm(id).known_hosts;
    let dir = path.parent().expect("a file in a directory");
    crate::dirs::ensure_private_dir(&env.dirs.data)?;
    crate::dirs::ensure_private_dir(dir)?;
    let checked = crate::paths::dir::CheckedDir::open(dir, None)?;
    let name = id.as_str();
    if checked.read_file(name).is_err() {
        checked.create_new(name).map_err(|_| Error::Refused {
            message: format!("{path} is not a regular file of maqet's"),
            help: "someone put something else there; remove it, and maqet makes a new one".into(),
        })?;
    }
    Ok(path)
}

/// Become ssh: its exit status is the command's.
fn exec(argv: &[String]) -> Result<Box<dyn Output>> {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(Error::io("cannot run", argv[0].as_str(), err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_forward_is_read_from_the_command_line() {
        let argv: Vec<String> = [
            "qemu",
            "-netdev",
            "user,id=maqet-net0,hostfwd=udp:127.0.0.1:5353-:53,hostfwd=tcp:127.0.0.2:2201-:22",
            "-netdev",
            "user,id=maqet-net1,hostfwd=tcp:127.0.0.1:2202-:22",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            running_forward(&argv),
            Some((Ipv4Addr::new(127, 0, 0, 2), 2201))
        );
        assert_eq!(
            running_forward(&argv[3..]),
            Some((Ipv4Addr::LOCALHOST, 2202))
        );
        assert_eq!(
            running_forward(&["-netdev".into(), "user,id=n".into()]),
            None
        );
    }

    #[test]
    fn option_paths_are_quoted_and_their_percent_signs_doubled() {
        assert_eq!(
            option_path(Utf8Path::new("/my vms/100%/kh")).unwrap(),
            "\"/my vms/100%%/kh\""
        );
        assert!(option_path(Utf8Path::new("/a\"b")).is_err());
        assert!(option_path(Utf8Path::new("/a\nb")).is_err());
        assert!(option_path(Utf8Path::new("/d${HOME}/x")).is_err());
    }
}
