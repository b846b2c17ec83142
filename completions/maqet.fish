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
                case '*:--data-dir' '*:--runtime-dir' '*:--config-dir'
                    set -a store (string replace -r -- '^.*:' '' $want) (string replace -r -- '^~(?=/|$)' $HOME $word)
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
                    'add:--log-file' \
                    'add:--data-dir' \
                    'add:--runtime-dir' \
                    'add:--config-dir' \
                    'apply:--name' \
                    'apply:--memory' \
                    'apply:--cpus' \
                    'apply:--binary' \
                    'apply:--log-file' \
                    'apply:--data-dir' \
                    'apply:--runtime-dir' \
                    'apply:--config-dir' \
                    'ls:--status' \
                    'ls:--log-file' \
                    'ls:--data-dir' \
                    'ls:--runtime-dir' \
                    'ls:--config-dir' \
                    'info:--log-file' \
                    'info:--data-dir' \
                    'info:--runtime-dir' \
                    'info:--config-dir' \
                    'rm:--log-file' \
                    'rm:--data-dir' \
                    'rm:--runtime-dir' \
                    'rm:--config-dir' \
                    'start:--timeout' \
                    'start:--wait-for' \
                    'start:--log-file' \
                    'start:--data-dir' \
                    'start:--runtime-dir' \
                    'start:--config-dir' \
                    'stop:--timeout' \
                    'stop:--log-file' \
                    'stop:--data-dir' \
                    'stop:--runtime-dir' \
                    'stop:--config-dir' \
                    'status:--log-file' \
                    'status:--data-dir' \
                    'status:--runtime-dir' \
                    'status:--config-dir' \
                    'inspect:--log-file' \
                    'inspect:--data-dir' \
                    'inspect:--runtime-dir' \
                    'inspect:--config-dir' \
                    'qmp:--log-file' \
                    'qmp:--data-dir' \
                    'qmp:--runtime-dir' \
                    'qmp:--config-dir' \
                    'qmp command:--arg' \
                    'qmp command:--args-json' \
                    'qmp command:--timeout' \
                    'qmp command:--log-file' \
                    'qmp command:--data-dir' \
                    'qmp command:--runtime-dir' \
                    'qmp command:--config-dir' \
                    'qmp keys:--hold-time' \
                    'qmp keys:--log-file' \
                    'qmp keys:--data-dir' \
                    'qmp keys:--runtime-dir' \
                    'qmp keys:--config-dir' \
                    'qmp type:--hold-time' \
                    'qmp type:--log-file' \
                    'qmp type:--data-dir' \
                    'qmp type:--runtime-dir' \
                    'qmp type:--config-dir' \
                    'qmp screendump:--format' \
                    'qmp screendump:--log-file' \
                    'qmp screendump:--data-dir' \
                    'qmp screendump:--runtime-dir' \
                    'qmp screendump:--config-dir' \
                    'qmp pause:--log-file' \
                    'qmp pause:--data-dir' \
                    'qmp pause:--runtime-dir' \
                    'qmp pause:--config-dir' \
                    'qmp resume:--log-file' \
                    'qmp resume:--data-dir' \
                    'qmp resume:--runtime-dir' \
                    'qmp resume:--config-dir' \
                    'qmp device-add:--id' \
                    'qmp device-add:--prop' \
                    'qmp device-add:--log-file' \
                    'qmp device-add:--data-dir' \
                    'qmp device-add:--runtime-dir' \
                    'qmp device-add:--config-dir' \
                    'qmp disk-add:--id' \
                    'qmp disk-add:--format' \
                    'qmp disk-add:--prop' \
                    'qmp disk-add:--log-file' \
                    'qmp disk-add:--data-dir' \
                    'qmp disk-add:--runtime-dir' \
                    'qmp disk-add:--config-dir' \
                    'qmp device-del:--timeout' \
                    'qmp device-del:--log-file' \
                    'qmp device-del:--data-dir' \
                    'qmp device-del:--runtime-dir' \
                    'qmp device-del:--config-dir' \
                    'qmp events:--filter' \
                    'qmp events:--timeout' \
                    'qmp events:--log-file' \
                    'qmp events:--data-dir' \
                    'qmp events:--runtime-dir' \
                    'qmp events:--config-dir' \
                    'console:--log-file' \
                    'console:--data-dir' \
                    'console:--runtime-dir' \
                    'console:--config-dir' \
                    'run:--name' \
                    'run:--memory' \
                    'run:--cpus' \
                    'run:--binary' \
                    'run:--wait-for' \
                    'run:--image' \
                    'run:--image-format' \
                    'run:--disk-size' \
                    'run:--timeout' \
                    'run:--log-file' \
                    'run:--data-dir' \
                    'run:--runtime-dir' \
                    'run:--config-dir' \
                    'snapshot:--log-file' \
                    'snapshot:--data-dir' \
                    'snapshot:--runtime-dir' \
                    'snapshot:--config-dir' \
                    'snapshot create:--timeout' \
                    'snapshot create:--log-file' \
                    'snapshot create:--data-dir' \
                    'snapshot create:--runtime-dir' \
                    'snapshot create:--config-dir' \
                    'snapshot load:--timeout' \
                    'snapshot load:--log-file' \
                    'snapshot load:--data-dir' \
                    'snapshot load:--runtime-dir' \
                    'snapshot load:--config-dir' \
                    'snapshot list:--log-file' \
                    'snapshot list:--data-dir' \
                    'snapshot list:--runtime-dir' \
                    'snapshot list:--config-dir' \
                    'snapshot delete:--timeout' \
                    'snapshot delete:--log-file' \
                    'snapshot delete:--data-dir' \
                    'snapshot delete:--runtime-dir' \
                    'snapshot delete:--config-dir' \
                    'disk:--log-file' \
                    'disk:--data-dir' \
                    'disk:--runtime-dir' \
                    'disk:--config-dir' \
                    'disk create:--log-file' \
                    'disk create:--data-dir' \
                    'disk create:--runtime-dir' \
                    'disk create:--config-dir' \
                    'storage:--log-file' \
                    'storage:--data-dir' \
                    'storage:--runtime-dir' \
                    'storage:--config-dir' \
                    'storage orphans:--log-file' \
                    'storage orphans:--data-dir' \
                    'storage orphans:--runtime-dir' \
                    'storage orphans:--config-dir' \
                    'storage verify:--log-file' \
                    'storage verify:--data-dir' \
                    'storage verify:--runtime-dir' \
                    'storage verify:--config-dir' \
                    'doctor:--log-file' \
                    'doctor:--data-dir' \
                    'doctor:--runtime-dir' \
                    'doctor:--config-dir' \
                    'cleanup:--log-file' \
                    'cleanup:--data-dir' \
                    'cleanup:--runtime-dir' \
                    'cleanup:--config-dir' \
                    'export:--to' \
                    'export:--output' \
                    'export:--accel' \
                    'export:--image-dir' \
                    'export:--console-log' \
                    'export:--restart' \
                    'export:--stop-timeout' \
                    'export:--log-file' \
                    'export:--data-dir' \
                    'export:--runtime-dir' \
                    'export:--config-dir' \
                    'ssh:--user' \
                    'ssh:--log-file' \
                    'ssh:--data-dir' \
                    'ssh:--runtime-dir' \
                    'ssh:--config-dir' \
                    'completions:--log-file' \
                    'completions:--data-dir' \
                    'completions:--runtime-dir' \
                    'completions:--config-dir' \
                    'man:--dir' \
                    'man:--log-file' \
                    'man:--data-dir' \
                    'man:--runtime-dir' \
                    'man:--config-dir'
                    set want "$cmd:$word"
            end
            continue
        end
        switch $cmd
            case ''
                switch $word
                    case 'add' 'apply' 'ls' 'info' 'rm' 'start' 'stop' 'status' 'inspect' 'qmp' 'console' 'run' 'snapshot' 'disk' 'storage' 'doctor' 'cleanup' 'export' 'ssh' 'completions' 'man'
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
            case 'add:--log-file'
                __fish_complete_path $cur
            case 'add:--data-dir'
                __fish_complete_directories $cur
            case 'add:--runtime-dir'
                __fish_complete_directories $cur
            case 'add:--config-dir'
                __fish_complete_directories $cur
            case 'apply:--log-file'
                __fish_complete_path $cur
            case 'apply:--data-dir'
                __fish_complete_directories $cur
            case 'apply:--runtime-dir'
                __fish_complete_directories $cur
            case 'apply:--config-dir'
                __fish_complete_directories $cur
            case 'ls:--status'
                printf '%s\n' 'created' 'starting' 'running' 'stopped' 'crashed'
            case 'ls:--log-file'
                __fish_complete_path $cur
            case 'ls:--data-dir'
                __fish_complete_directories $cur
            case 'ls:--runtime-dir'
                __fish_complete_directories $cur
            case 'ls:--config-dir'
                __fish_complete_directories $cur
            case 'info:--log-file'
                __fish_complete_path $cur
            case 'info:--data-dir'
                __fish_complete_directories $cur
            case 'info:--runtime-dir'
                __fish_complete_directories $cur
            case 'info:--config-dir'
                __fish_complete_directories $cur
            case 'rm:--log-file'
                __fish_complete_path $cur
            case 'rm:--data-dir'
                __fish_complete_directories $cur
            case 'rm:--runtime-dir'
                __fish_complete_directories $cur
            case 'rm:--config-dir'
                __fish_complete_directories $cur
            case 'start:--log-file'
                __fish_complete_path $cur
            case 'start:--data-dir'
                __fish_complete_directories $cur
            case 'start:--runtime-dir'
                __fish_complete_directories $cur
            case 'start:--config-dir'
                __fish_complete_directories $cur
            case 'stop:--log-file'
                __fish_complete_path $cur
            case 'stop:--data-dir'
                __fish_complete_directories $cur
            case 'stop:--runtime-dir'
                __fish_complete_directories $cur
            case 'stop:--config-dir'
                __fish_complete_directories $cur
            case 'status:--log-file'
                __fish_complete_path $cur
            case 'status:--data-dir'
                __fish_complete_directories $cur
            case 'status:--runtime-dir'
                __fish_complete_directories $cur
            case 'status:--config-dir'
                __fish_complete_directories $cur
            case 'inspect:--log-file'
                __fish_complete_path $cur
            case 'inspect:--data-dir'
                __fish_complete_directories $cur
            case 'inspect:--runtime-dir'
                __fish_complete_directories $cur
            case 'inspect:--config-dir'
                __fish_complete_directories $cur
            case 'qmp:--log-file'
                __fish_complete_path $cur
            case 'qmp:--data-dir'
                __fish_complete_directories $cur
            case 'qmp:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp:--config-dir'
                __fish_complete_directories $cur
            case 'qmp command:--log-file'
                __fish_complete_path $cur
            case 'qmp command:--data-dir'
                __fish_complete_directories $cur
            case 'qmp command:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp command:--config-dir'
                __fish_complete_directories $cur
            case 'qmp keys:--log-file'
                __fish_complete_path $cur
            case 'qmp keys:--data-dir'
                __fish_complete_directories $cur
            case 'qmp keys:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp keys:--config-dir'
                __fish_complete_directories $cur
            case 'qmp type:--log-file'
                __fish_complete_path $cur
            case 'qmp type:--data-dir'
                __fish_complete_directories $cur
            case 'qmp type:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp type:--config-dir'
                __fish_complete_directories $cur
            case 'qmp screendump:--format'
                printf '%s\n' 'ppm' 'png'
            case 'qmp screendump:--log-file'
                __fish_complete_path $cur
            case 'qmp screendump:--data-dir'
                __fish_complete_directories $cur
            case 'qmp screendump:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp screendump:--config-dir'
                __fish_complete_directories $cur
            case 'qmp pause:--log-file'
                __fish_complete_path $cur
            case 'qmp pause:--data-dir'
                __fish_complete_directories $cur
            case 'qmp pause:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp pause:--config-dir'
                __fish_complete_directories $cur
            case 'qmp resume:--log-file'
                __fish_complete_path $cur
            case 'qmp resume:--data-dir'
                __fish_complete_directories $cur
            case 'qmp resume:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp resume:--config-dir'
                __fish_complete_directories $cur
            case 'qmp device-add:--log-file'
                __fish_complete_path $cur
            case 'qmp device-add:--data-dir'
                __fish_complete_directories $cur
            case 'qmp device-add:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp device-add:--config-dir'
                __fish_complete_directories $cur
            case 'qmp disk-add:--format'
                printf '%s\n' 'raw' 'qcow2'
            case 'qmp disk-add:--log-file'
                __fish_complete_path $cur
            case 'qmp disk-add:--data-dir'
                __fish_complete_directories $cur
            case 'qmp disk-add:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp disk-add:--config-dir'
                __fish_complete_directories $cur
            case 'qmp device-del:--log-file'
                __fish_complete_path $cur
            case 'qmp device-del:--data-dir'
                __fish_complete_directories $cur
            case 'qmp device-del:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp device-del:--config-dir'
                __fish_complete_directories $cur
            case 'qmp events:--log-file'
                __fish_complete_path $cur
            case 'qmp events:--data-dir'
                __fish_complete_directories $cur
            case 'qmp events:--runtime-dir'
                __fish_complete_directories $cur
            case 'qmp events:--config-dir'
                __fish_complete_directories $cur
            case 'console:--log-file'
                __fish_complete_path $cur
            case 'console:--data-dir'
                __fish_complete_directories $cur
            case 'console:--runtime-dir'
                __fish_complete_directories $cur
            case 'console:--config-dir'
                __fish_complete_directories $cur
            case 'run:--log-file'
                __fish_complete_path $cur
            case 'run:--data-dir'
                __fish_complete_directories $cur
            case 'run:--runtime-dir'
                __fish_complete_directories $cur
            case 'run:--config-dir'
                __fish_complete_directories $cur
            case 'snapshot:--log-file'
                __fish_complete_path $cur
            case 'snapshot:--data-dir'
                __fish_complete_directories $cur
            case 'snapshot:--runtime-dir'
                __fish_complete_directories $cur
            case 'snapshot:--config-dir'
                __fish_complete_directories $cur
            case 'snapshot create:--log-file'
                __fish_complete_path $cur
            case 'snapshot create:--data-dir'
                __fish_complete_directories $cur
            case 'snapshot create:--runtime-dir'
                __fish_complete_directories $cur
            case 'snapshot create:--config-dir'
                __fish_complete_directories $cur
            case 'snapshot load:--log-file'
                __fish_complete_path $cur
            case 'snapshot load:--data-dir'
                __fish_complete_directories $cur
            case 'snapshot load:--runtime-dir'
                __fish_complete_directories $cur
            case 'snapshot load:--config-dir'
                __fish_complete_directories $cur
            case 'snapshot list:--log-file'
                __fish_complete_path $cur
            case 'snapshot list:--data-dir'
                __fish_complete_directories $cur
            case 'snapshot list:--runtime-dir'
                __fish_complete_directories $cur
            case 'snapshot list:--config-dir'
                __fish_complete_directories $cur
            case 'snapshot delete:--log-file'
                __fish_complete_path $cur
            case 'snapshot delete:--data-dir'
                __fish_complete_directories $cur
            case 'snapshot delete:--runtime-dir'
                __fish_complete_directories $cur
            case 'snapshot delete:--config-dir'
                __fish_complete_directories $cur
            case 'disk:--log-file'
                __fish_complete_path $cur
            case 'disk:--data-dir'
                __fish_complete_directories $cur
            case 'disk:--runtime-dir'
                __fish_complete_directories $cur
            case 'disk:--config-dir'
                __fish_complete_directories $cur
            case 'disk create:--log-file'
                __fish_complete_path $cur
            case 'disk create:--data-dir'
                __fish_complete_directories $cur
            case 'disk create:--runtime-dir'
                __fish_complete_directories $cur
            case 'disk create:--config-dir'
                __fish_complete_directories $cur
            case 'storage:--log-file'
                __fish_complete_path $cur
            case 'storage:--data-dir'
                __fish_complete_directories $cur
            case 'storage:--runtime-dir'
                __fish_complete_directories $cur
            case 'storage:--config-dir'
                __fish_complete_directories $cur
            case 'storage orphans:--log-file'
                __fish_complete_path $cur
            case 'storage orphans:--data-dir'
                __fish_complete_directories $cur
            case 'storage orphans:--runtime-dir'
                __fish_complete_directories $cur
            case 'storage orphans:--config-dir'
                __fish_complete_directories $cur
            case 'storage verify:--log-file'
                __fish_complete_path $cur
            case 'storage verify:--data-dir'
                __fish_complete_directories $cur
            case 'storage verify:--runtime-dir'
                __fish_complete_directories $cur
            case 'storage verify:--config-dir'
                __fish_complete_directories $cur
            case 'doctor:--log-file'
                __fish_complete_path $cur
            case 'doctor:--data-dir'
                __fish_complete_directories $cur
            case 'doctor:--runtime-dir'
                __fish_complete_directories $cur
            case 'doctor:--config-dir'
                __fish_complete_directories $cur
            case 'cleanup:--log-file'
                __fish_complete_path $cur
            case 'cleanup:--data-dir'
                __fish_complete_directories $cur
            case 'cleanup:--runtime-dir'
                __fish_complete_directories $cur
            case 'cleanup:--config-dir'
                __fish_complete_directories $cur
            case 'export:--output'
                __fish_complete_path $cur
            case 'export:--image-dir'
                __fish_complete_directories $cur
            case 'export:--console-log'
                __fish_complete_path $cur
            case 'export:--log-file'
                __fish_complete_path $cur
            case 'export:--data-dir'
                __fish_complete_directories $cur
            case 'export:--runtime-dir'
                __fish_complete_directories $cur
            case 'export:--config-dir'
                __fish_complete_directories $cur
            case 'ssh:--log-file'
                __fish_complete_path $cur
            case 'ssh:--data-dir'
                __fish_complete_directories $cur
            case 'ssh:--runtime-dir'
                __fish_complete_directories $cur
            case 'ssh:--config-dir'
                __fish_complete_directories $cur
            case 'completions:--log-file'
                __fish_complete_path $cur
            case 'completions:--data-dir'
                __fish_complete_directories $cur
            case 'completions:--runtime-dir'
                __fish_complete_directories $cur
            case 'completions:--config-dir'
                __fish_complete_directories $cur
            case 'man:--dir'
                __fish_complete_directories $cur
            case 'man:--log-file'
                __fish_complete_path $cur
            case 'man:--data-dir'
                __fish_complete_directories $cur
            case 'man:--runtime-dir'
                __fish_complete_directories $cur
            case 'man:--config-dir'
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
                    '--empty' 'define a VM with no config file, from defaults and options only' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'apply'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--name' 'rename the VM' \
                    '--memory' 'guest memory, e.g. 2G' \
                    '--cpus' 'virtual CPUs' \
                    '--binary' 'QEMU program name or path' \
                    '--trust' 'allow this VM\'s raw QEMU `arguments` and custom `binary` (see docs/security.md): a config file alone cannot grant them' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'ls'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--status' 'only VMs in this state: created, starting, running, stopped or crashed' \
                    '--names' 'print names only, one per line, as stored (no liveness check; for shell completion)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'info'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'rm'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--all' 'remove every VM' \
                    '--force' 'never ask; remove VMs that are running' \
                    '--clean-storage' 'also delete the disk images maqet created for the VM (never yours)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'start'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for the VM to be ready (default 60)' \
                    '--wait-for' 'what "ready" means: qmp, console:REGEX, port:N, ssh or file:PATH' \
                    '--dry-run' 'print the QEMU command line instead of running it' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'stop'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds the guest gets to power off (default 30, or the settings file\'s stop_timeout)' \
                    '--force' 'do not ask the guest: quit QEMU at once (SIGKILL if it hangs)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'status'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'inspect'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp command'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--arg' 'an argument as key=value (repeatable)' \
                    '--args-json' 'all arguments as one JSON object' \
                    '--allow-dangerous' 'send commands maqet otherwise refuses (see the note)' \
                    '--timeout' 'seconds to wait for QEMU (default 10)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp keys'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--hold-time' 'milliseconds the keys stay down (default 100)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp type'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--hold-time' 'milliseconds each key stays down (default 30)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp screendump'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--format' 'ppm or png (default: png for a .png file, else ppm)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp pause'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp resume'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp device-add'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--id' 'the new device\'s id' \
                    '--prop' 'a device property as key=value (repeatable)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp disk-add'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--id' 'the new device\'s id (at most 22 characters)' \
                    '--format' 'the image\'s format: raw or qcow2 (never guessed)' \
                    '--readonly' 'attach it read-only' \
                    '--prop' 'a property of the virtio-blk device as key=value (repeatable)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp device-del'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for the guest to release it (default 10)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'qmp events'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--follow' 'keep printing until interrupted or the VM stops' \
                    '--filter' 'only events with this name (repeatable)' \
                    '--timeout' 'without --follow: seconds to wait for an event (default 30)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'console'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--log' 'print the console log instead of attaching' \
                    '--follow' 'with --log: keep printing until the VM stops' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'run'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--name' 'the VM\'s name (wins over the files)' \
                    '--memory' 'guest memory, e.g. 2G (wins over the files)' \
                    '--cpus' 'virtual CPUs (wins over the files)' \
                    '--binary' 'QEMU program name or path (wins over the files)' \
                    '--trust' 'allow this VM\'s raw QEMU `arguments` and custom `binary` (see docs/security.md): a config file alone cannot grant them' \
                    '--console' 'attach the serial console in the foreground (Ctrl-] detaches)' \
                    '--rm' 'remove the VM, and the images maqet created for it, once it stops' \
                    '--wait-for' 'what "ready" means: qmp (default; ssh with --image), console:REGEX, port:N, ssh or file:PATH' \
                    '--image' 'a cloud image to boot (qcow2): the root disk is a new overlay on it, which is never written; cloud-init makes your account with your SSH keys, and SSH is forwarded from a free local port' \
                    '--image-format' 'the format of --image: qcow2 (default) or raw' \
                    '--disk-size' 'the size of the root disk with --image (default 20G)' \
                    '--ssh' 'with --image: once SSH answers, open a session (`maqet ssh`)' \
                    '--timeout' 'seconds to wait for the VM to be ready (default 60)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'snapshot'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'snapshot create'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--overwrite' 'replace a snapshot of the same name' \
                    '--timeout' 'seconds to wait for a live snapshot (default 300)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'snapshot load'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for a live load (default 300)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'snapshot list'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'snapshot delete'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--timeout' 'seconds to wait for a live delete (default 300)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'disk'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'disk create'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'storage'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'storage orphans'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--delete' 'delete them' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'storage verify'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'doctor'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--fix' 'repair what is safe to repair' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'cleanup'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--dry-run' 'say what would be done, change nothing' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'export'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--to' 'the engine: libvirt or systemd' \
                    '--output' 'write the definition to FILE (mode 0600) instead of stdout' \
                    '--accel' 'libvirt: the accelerator, kvm or tcg (default: the VM\'s; `Auto` is decided on this host)' \
                    '--image-dir' 'libvirt: the directory the images will be in on the host that runs the domain; the files to copy are listed' \
                    '--console-log' 'libvirt: where libvirt keeps the serial console\'s output (default /var/log/libvirt/qemu/NAME.serial)' \
                    '--trust' 'libvirt: pass the VM\'s raw `arguments` into the domain, where maqet\'s confinement does not reach them' \
                    '--user' 'systemd: a user unit (`systemctl --user`) instead of a system unit' \
                    '--restart' 'systemd: when to start the VM again after QEMU ends: no, on-failure (default) or always' \
                    '--stop-timeout' 'systemd: seconds `maqet stop` gives the guest to power off (default 30, or the settings file\'s stop_timeout)' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'ssh'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--user' 'the guest account (default: the cloud-init user, else your name)' \
                    '--print' 'print the ssh command line instead of running it' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'completions'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
            case 'man'
                printf '%s\t%s\n' '--help' 'display usage information' \
                    '--dir' 'write every page (maqet.1, maqet-COMMAND.1) into this directory' \
                    '-v' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--verbose' 'print more on stderr: -v warnings, -vv info, -vvv debug' \
                    '--log-file' 'append a debug log to this file' \
                    '--data-dir' 'directory for the database and the disks maqet creates' \
                    '--runtime-dir' 'directory for VM sockets, pidfiles and logs' \
                    '--config-dir' 'read settings from DIR/maqet.ron' \
                    '--json' 'print results as JSON'
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
                    'export' 'Print a VM\'s definition for libvirt (domain XML) or systemd (a unit)' \
                    'ssh' 'Open an SSH session in a VM, through its forward to guest port 22' \
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
            case 'export'
                switch $npos
                    case 0
                        __maqet_vms $store
                end
            case 'ssh'
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
                        printf '%s\n' 'add' 'apply' 'ls' 'info' 'rm' 'start' 'stop' 'status' 'inspect' 'qmp' 'console' 'run' 'snapshot' 'disk' 'storage' 'doctor' 'cleanup' 'export' 'ssh' 'completions' 'man'
                end
        end
    end
end

complete -c maqet -f -a '(__maqet_complete)'
