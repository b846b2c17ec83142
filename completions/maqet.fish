# fish completion for maqet
#
# Generated from maqet's command-line definition (src/cli.rs) by
# `maqet completions fish`; scripts/gen-docs rewrites it. Do not edit.
#
# Install: maqet completions fish > ~/.config/fish/completions/maqet.fish
# Works with fish 3.6 and later.

# VM names, from the store the command line points at.
function __maqet_vms
    command maqet $argv ls --names 2>/dev/null </dev/null
end

function __maqet_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l cur (commandline -ct)
    set -l cmd ''
    set -l want ''
    set -l vm ''
    set -l npos 0
    set -l ddash 0
    set -l store
    for word in $words
        if test -n "$want"
            switch $want
                case ':--data-dir' ':--runtime-dir' ':--config-dir'
                    set -a store (string sub -s 2 -- $want) (string replace -r -- '^~(?=/|$)' $HOME $word)
            end
            set want ''
            continue
        end
        if test $ddash = 0; and string match -q -- '-*' $word
            switch "$cmd:$word"
                case '*:--'
                    set ddash 1
                case ':--log-file' \
                    ':--data-dir' \
                    ':--runtime-dir' \
                    ':--config-dir' \
                    'add:--name' \
                    'add:--memory' \
                    'add:--cpus' \
                    'add:--binary' \
                    'apply:--name' \
                    'apply:--memory' \
                    'apply:--cpus' \
                    'apply:--binary' \
                    'ls:--status' \
                    'start:--timeout' \
                    'start:--wait-for' \
                    'stop:--timeout' \
                    'qmp command:--arg' \
                    'qmp command:--args-json' \
                    'qmp command:--timeout' \
                    'qmp keys:--hold-time' \
                    'qmp type:--hold-time' \
                    'qmp screendump:--format' \
                    'qmp device-add:--id' \
                    'qmp device-add:--prop' \
                    'qmp disk-add:--id' \
                    'qmp disk-add:--format' \
                    'qmp disk-add:--prop' \
                    'qmp device-del:--timeout' \
                    'qmp events:--filter' \
                    'qmp events:--timeout' \
                    'run:--name' \
                    'run:--memory' \
                    'run:--cpus' \
                    'run:--binary' \
                    'run:--wait-for' \
                    'run:--timeout' \
                    'snapshot create:--timeout' \
                    'snapshot load:--timeout' \
                    'snapshot delete:--timeout' \
                    'man:--dir'
                    set want "$cmd:$word"
            end
            continue
        end
        switch $cmd
            case ''
                switch $word
                    case 'add' 'apply' 'ls' 'info' 'rm' 'start' 'stop' 'status' 'inspect' 'qmp' 'console' 'run' 'snapshot' 'disk' 'storage' 'doctor' 'cleanup' 'completions' 'man'
                        set cmd $word
                    case '*'
                        set cmd '!'
                end
            case 'qmp'
                switch $word
                    case 'command' 'keys' 'type' 'screendump' 'pause' 'resume' 'device-add' 'disk-add' 'device-del' 'events'
                        set cmd "$cmd $word"
                    case '*'
                        set cmd 'qmp command'
                        set npos 1
                end
            case 'snapshot'
                switch $word
                    case 'create' 'load' 'list' 'delete'
                        set cmd "$cmd $word"
                        test -n "$vm"; and set npos 1
                    case '*'
                        if test -n "$vm"
                            set cmd '!'
                        else
                            set vm $word
                        end
                end
            case 'disk'
                switch $word
                    case 'create'
                        set cmd "$cmd $word"
                    case '*'
                        set cmd '!'
                end
            case 'storage'
                switch $word
                    case 'orphans' 'verify'
                        set cmd "$cmd $word"
                    case '*'
                        set cmd '!'
                end
            case '*'
                set npos (math $npos + 1)
        end
    end

    if test -n "$want"
        switch $want
            case ':--log-file'
                __fish_complete_path $cur
            case ':--data-dir'
                __fish_complete_directories $cur
            case ':--runtime-dir'
                __fish_complete_directories $cur
            case ':--config-dir'
                __fish_complete_directories $cur
            case 'ls:--status'
                printf '%s\n' 'created' 'starting' 'running' 'stopped' 'crashed'
            case 'qmp screendump:--format'
                printf '%s\n' 'ppm' 'png'
            case 'qmp disk-add:--format'
                printf '%s\n' 'raw' 'qcow2'
            case 'man:--dir'
                __fish_complete_directories $cur
        end
    else if test $ddash = 0; and string match -q -- '-*' $cur
        switch $cmd
            case ''
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON' \
                    '--version' 'print the version and exit'
            case 'add'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--name' 'the VM\'s name (wins over the files)' \
                    '--memory' 'guest memory, e.g. 2G (wins over the files)' \
                    '--cpus' 'virtual CPUs (wins over the files)' \
                    '--binary' 'QEMU program name or path (wins over the files)' \
                    '--trust' 'allow this VM\'s raw QEMU `arguments` and custom `binary` (see docs/security.md): a config file alone cannot grant them' \
                    '--empty' 'define a VM with no config file, from defaults and options only'
            case 'apply'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--name' 'rename the VM' \
                    '--memory' 'guest memory, e.g. 2G' \
                    '--cpus' 'virtual CPUs' \
                    '--binary' 'QEMU program name or path' \
                    '--trust' 'allow this VM\'s raw QEMU `arguments` and custom `binary` (see docs/security.md): a config file alone cannot grant them'
            case 'ls'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--status' 'only VMs in this state: created, starting, running, stopped or crashed' \
                    '--names' 'print names only, one per line, as stored (no liveness check; for shell completion)'
            case 'info'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'rm'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--all' 'remove every VM' \
                    '--force' 'never ask; remove VMs that are running' \
                    '--clean-storage' 'also delete the disk images maqet created for the VM (never yours)'
            case 'start'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for the VM to be ready (default 60)' \
                    '--wait-for' 'what "ready" means: qmp, console:REGEX, port:N or file:PATH' \
                    '--dry-run' 'print the QEMU command line instead of running it'
            case 'stop'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds the guest gets to power off (default 30, or the settings file\'s stop_timeout)' \
                    '--force' 'do not ask the guest: quit QEMU at once (SIGKILL if it hangs)'
            case 'status'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'inspect'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'qmp'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'qmp command'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--arg' 'an argument as key=value (repeatable)' \
                    '--args-json' 'all arguments as one JSON object' \
                    '--allow-dangerous' 'send commands maqet otherwise refuses (see the note)' \
                    '--timeout' 'seconds to wait for QEMU (default 10)'
            case 'qmp keys'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--hold-time' 'milliseconds the keys stay down (default 100)'
            case 'qmp type'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--hold-time' 'milliseconds each key stays down (default 30)'
            case 'qmp screendump'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--format' 'ppm or png (default: png for a .png file, else ppm)'
            case 'qmp pause'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'qmp resume'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'qmp device-add'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--id' 'the new device\'s id' \
                    '--prop' 'a device property as key=value (repeatable)'
            case 'qmp disk-add'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--id' 'the new device\'s id (at most 22 characters)' \
                    '--format' 'the image\'s format: raw or qcow2 (never guessed)' \
                    '--readonly' 'attach it read-only' \
                    '--prop' 'a property of the virtio-blk device as key=value (repeatable)'
            case 'qmp device-del'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for the guest to release it (default 10)'
            case 'qmp events'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--follow' 'keep printing until interrupted or the VM stops' \
                    '--filter' 'only events with this name (repeatable)' \
                    '--timeout' 'without --follow: seconds to wait for an event (default 30)'
            case 'console'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--log' 'print the console log instead of attaching' \
                    '--follow' 'with --log: keep printing until the VM stops'
            case 'run'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--name' 'the VM\'s name (wins over the files)' \
                    '--memory' 'guest memory, e.g. 2G (wins over the files)' \
                    '--cpus' 'virtual CPUs (wins over the files)' \
                    '--binary' 'QEMU program name or path (wins over the files)' \
                    '--trust' 'allow this VM\'s raw QEMU `arguments` and custom `binary` (see docs/security.md): a config file alone cannot grant them' \
                    '--console' 'attach the serial console in the foreground (Ctrl-] detaches)' \
                    '--rm' 'remove the VM, and the images maqet created for it, once it stops' \
                    '--wait-for' 'what "ready" means: qmp, console:REGEX, port:N or file:PATH' \
                    '--timeout' 'seconds to wait for the VM to be ready (default 60)'
            case 'snapshot'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'snapshot create'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--overwrite' 'replace a snapshot of the same name' \
                    '--timeout' 'seconds to wait for a live snapshot (default 300)'
            case 'snapshot load'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for a live load (default 300)'
            case 'snapshot list'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'snapshot delete'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for a live delete (default 300)'
            case 'disk'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'disk create'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'storage'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'storage orphans'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--delete' 'delete them'
            case 'storage verify'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'doctor'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--fix' 'repair what is safe to repair'
            case 'cleanup'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--dry-run' 'say what would be done, change nothing'
            case 'completions'
                printf '%s\t%s\n' '--help' 'display usage information'
            case 'man'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--dir' 'write every page (maqet.1, maqet-COMMAND.1) into this directory'
        end
    else
        switch $cmd
            case ''
                printf '%s\t%s\n' 'add' 'Define a new VM from RON config files; prints its id' \
                    'apply' 'Merge config files and options into a VM, creating it if it does not exist' \
                    'ls' 'List VMs' \
                    'info' 'Show a VM\'s whole configuration' \
                    'rm' 'Remove VMs from the registry' \
                    'start' 'Start a VM in the background; returns once it is ready' \
                    'stop' 'Stop a VM: ACPI power button, then QMP quit, then SIGKILL' \
                    'status' 'Show whether a VM runs: state, pid, uptime, QEMU\'s run state' \
                    'inspect' 'Show a VM\'s status plus its command line, sockets, process figures and what QEMU reports' \
                    'qmp' 'Drive a running VM over QMP: any command, or a verb' \
                    'console' 'Attach to a VM\'s serial console, or print what it printed' \
                    'run' 'Add and start a VM in one go: from config files, or the default VM' \
                    'snapshot' 'Internal qcow2 snapshots: offline with qemu-img, live over QMP' \
                    'disk' 'Disk images of a VM' \
                    'storage' 'The files under the data directory: orphans and checks' \
                    'doctor' 'Check that this host can run VMs and that maqet\'s files are sound' \
                    'cleanup' 'Reconcile every VM now and remove stale runtime files' \
                    'completions' 'Print a shell completion script' \
                    'man' 'Print a man page (roff): maqet(1), or one command\'s'
            case 'add'
                switch $npos
                    case '*'
                        __fish_complete_path $cur
                end
            case 'apply'
                switch $npos
                    case 0
                        __maqet_vms $store
                    case '*'
                        __fish_complete_path $cur
                end
            case 'info'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'rm'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'start'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'stop'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'status'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'inspect'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp'
                printf '%s\t%s\n' 'command' 'Run any QMP command; prints its result as JSON' \
                    'keys' 'Press keys together, by QEMU key name (ctrl, alt, f2, ret, ...)' \
                    'type' 'Type text on the VM\'s keyboard (US layout)' \
                    'screendump' 'Save a screenshot of the VM\'s display' \
                    'pause' 'Pause the VM\'s CPUs' \
                    'resume' 'Resume a paused VM' \
                    'device-add' 'Hot-plug a device' \
                    'disk-add' 'Hot-plug a disk image as a virtio-blk device' \
                    'device-del' 'Unplug a device; returns once QEMU reports it gone' \
                    'events' 'Print QMP events as JSON lines'
                __maqet_vms $store
            case 'qmp command'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp keys'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp type'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp screendump'
                switch $npos
                    case 0
                        __maqet_vms $store
                    case 1
                        __fish_complete_path $cur
                end
            case 'qmp pause'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp resume'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp device-add'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp disk-add'
                switch $npos
                    case 0
                        __maqet_vms $store
                    case 1
                        __fish_complete_path $cur
                end
            case 'qmp device-del'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'qmp events'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'console'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'run'
                switch $npos
                    case '*'
                        __fish_complete_path $cur
                end
            case 'snapshot'
                printf '%s\t%s\n' 'create' 'Take a snapshot' \
                    'load' 'Go back to a snapshot' \
                    'list' 'List a drive\'s snapshots' \
                    'delete' 'Delete a snapshot'
                test -z "$vm"; and __maqet_vms $store
            case 'snapshot create'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'snapshot load'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'snapshot list'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'snapshot delete'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'disk'
                printf '%s\t%s\n' 'create' 'Create a drive\'s image now instead of at start (never overwrites)'
            case 'disk create'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'storage'
                printf '%s\t%s\n' 'orphans' 'List images under the data directory that no VM uses' \
                    'verify' 'Check that a VM\'s images exist, are readable and have the configured format'
            case 'storage verify'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'completions'
                switch $npos
                    case 0
                        printf '%s\n' 'bash' 'zsh' 'fish'
                end
            case 'man'
                switch $npos
                    case 0
                        printf '%s\n' 'add' 'apply' 'ls' 'info' 'rm' 'start' 'stop' 'status' 'inspect' 'qmp' 'console' 'run' 'snapshot' 'disk' 'storage' 'doctor' 'cleanup' 'completions' 'man'
                end
        end
    end
end

complete -c maqet -f -a '(__maqet_complete)'
