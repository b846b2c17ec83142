use std::io::IsTerminal;
use std::net::Ipv4Addr;

use argh::{ArgsInfo, FromArgs};
use camino::Utf8PathBuf;

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
    let forward = vm
        .config
        .network
        .iter()
        .flat_map(|n| {
            let crate::config::Network::User(user) = n;
            &user.forwards
        })
        .find(|f| f.guest.0 == 22 && f.protocol == Protocol::Tcp)
        .ok_or_else(|| {
            Error::invalid(
                format!("VM `{}` forwards no host port to guest port 22", vm.name),
                "add one to its network: `forwards: [(host: 2222, guest: 22)]`",
            )
        })?;
    let program = crate::qemu::find_program(&crate::config::Program::new("ssh")).map_err(|_| {
        Error::invalid(
            "ssh is not installed",
            "install OpenSSH's client (Debian and Ubuntu: `apt-get install openssh-client`)",
        )
    })?;
    if vm.status != Status::Running {
        return Err(Error::NotRunning {
            name: vm.name.to_string(),
            status: vm.status.as_str().to_owned(),
            help: format!("`maqet start {}` starts it", vm.name),
        });
    }
    let ci = vm.config.cloud_init.as_ref();
    let user = match (&args.user, ci.and_then(|c| c.user.as_ref())) {
        (Some(user), _) => user.clone(),
        (None, Some(user)) => user.as_str().to_owned(),
        (None, None) => crate::dirs::user_name("give the guest account with --user")?,
    };
    // 0.0.0.0 binds every address; the session goes to this host's own.
    let host = if forward.bind == Ipv4Addr::UNSPECIFIED {
        Ipv4Addr::LOCALHOST
    } else {
        forward.bind
    };
    let known_hosts = known_hosts(env, vm.id.as_str())?;
    let mut argv = vec![
        program.into_string(),
        "-p".to_owned(),
        forward.host.0.to_string(),
        "-o".to_owned(),
        "StrictHostKeyChecking=accept-new".to_owned(),
        "-o".to_owned(),
        format!("UserKnownHostsFile={known_hosts}"),
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
    for key in ci
        .map(|c| c.ssh_authorized_keys.as_slice())
        .unwrap_or_default()
    {
        if let AuthorizedKey::File(public) = key
            && let Some(private) = public.as_path().as_str().strip_suffix(".pub")
            && std::path::Path::new(private).is_file()
        {
            argv.extend(["-i".to_owned(), private.to_owned()]);
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

/// The VM's own known_hosts file: `<data>/known_hosts/<id>`, private
/// (made 0600 here; ssh keeps the mode of a file it appends to).
fn known_hosts(env: &Env, id: &str) -> Result<Utf8PathBuf> {
    let dir = env.dirs.data.join("known_hosts");
    crate::dirs::ensure_private_dir(&env.dirs.data)?;
    crate::dirs::ensure_private_dir(&dir)?;
    let checked = crate::paths::dir::CheckedDir::open(&dir, None)?;
    match checked.create_new(id) {
        Ok(_) => {}
        Err(_) if checked.read_file(id).is_ok() => {}
        Err(e) => return Err(e),
    }
    Ok(dir.join(id))
}

/// Become ssh: its exit status is the command's.
fn exec(argv: &[String]) -> Result<Box<dyn Output>> {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(Error::io("cannot run", argv[0].as_str(), err))
}
