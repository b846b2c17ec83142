# bash completion for maqet
#
# Generated from maqet's command-line definition (src/cli.rs) by
# `maqet completions bash`; scripts/gen-docs rewrites it. Do not edit.
#
# Install: maqet completions bash > ~/.local/share/bash-completion/completions/maqet
# (or source this file from ~/.bashrc).

# Readline splits words at COMP_WORDBREAKS (= and : among them), so
# `--wait-for port:22` arrives as three words: join what was typed without
# spaces back into the word maqet will see, up to the cursor.
_maqet_split() {
    local line=${COMP_LINE:0:COMP_POINT} rest word i
    words=()
    cword=-1
    for ((i = 0; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        rest=${line#"${line%%[![:space:]]*}"}
        ((i == COMP_CWORD)) && word=$rest
        if ((i > 0 && ${#rest} == ${#line})); then
            words[cword]+=$word
        else
            words+=("$word")
            cword=$((cword + 1))
        fi
        line=${rest:${#word}}
    done
}

_maqet_words() {
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_maqet_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
}

_maqet_dirs() {
    compopt -o filenames 2>/dev/null
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur")
}

# VM names, from the store the command line points at.
_maqet_vms() {
    _maqet_words "$(command maqet "${store[@]}" ls --names 2>/dev/null </dev/null)"
}

_maqet() {
    local -a words=() store=()
    local cword
    _maqet_split
    local cur=${words[cword]} cmd= want= vm= npos=0 ddash= word i
    COMPREPLY=()
    for ((i = 1; i < cword; i++)); do
        word=${words[i]}
        if [[ -n $want ]]; then
            case $want in
                *":--data-dir" | *":--runtime-dir" | *":--config-dir")
                    [[ $word == "~" || $word == "~/"* ]] && word=$HOME${word:1}
                    store+=("${want##*:}" "$word")
                    ;;
            esac
            want=
            continue
        fi
        if [[ -z $ddash && $word == -* ]]; then
            case $cmd:$word in
                *:--) ddash=1 ;;
                ":--log-file" | \
                ":--data-dir" | \
                ":--runtime-dir" | \
                ":--config-dir" | \
                "add:--name" | \
                "add:--memory" | \
                "add:--cpus" | \
                "add:--binary" | \
                "add:--log-file" | \
                "add:--data-dir" | \
                "add:--runtime-dir" | \
                "add:--config-dir" | \
                "apply:--name" | \
                "apply:--memory" | \
                "apply:--cpus" | \
                "apply:--binary" | \
                "apply:--log-file" | \
                "apply:--data-dir" | \
                "apply:--runtime-dir" | \
                "apply:--config-dir" | \
                "ls:--status" | \
                "ls:--log-file" | \
                "ls:--data-dir" | \
                "ls:--runtime-dir" | \
                "ls:--config-dir" | \
                "info:--log-file" | \
                "info:--data-dir" | \
                "info:--runtime-dir" | \
                "info:--config-dir" | \
                "rm:--log-file" | \
                "rm:--data-dir" | \
                "rm:--runtime-dir" | \
                "rm:--config-dir" | \
                "start:--timeout" | \
                "start:--wait-for" | \
                "start:--log-file" | \
                "start:--data-dir" | \
                "start:--runtime-dir" | \
                "start:--config-dir" | \
                "stop:--timeout" | \
                "stop:--log-file" | \
                "stop:--data-dir" | \
                "stop:--runtime-dir" | \
                "stop:--config-dir" | \
                "status:--log-file" | \
                "status:--data-dir" | \
                "status:--runtime-dir" | \
                "status:--config-dir" | \
                "inspect:--log-file" | \
                "inspect:--data-dir" | \
                "inspect:--runtime-dir" | \
                "inspect:--config-dir" | \
                "qmp:--log-file" | \
                "qmp:--data-dir" | \
                "qmp:--runtime-dir" | \
                "qmp:--config-dir" | \
                "qmp command:--arg" | \
                "qmp command:--args-json" | \
                "qmp command:--timeout" | \
                "qmp command:--log-file" | \
                "qmp command:--data-dir" | \
                "qmp command:--runtime-dir" | \
                "qmp command:--config-dir" | \
                "qmp keys:--hold-time" | \
                "qmp keys:--log-file" | \
                "qmp keys:--data-dir" | \
                "qmp keys:--runtime-dir" | \
                "qmp keys:--config-dir" | \
                "qmp type:--hold-time" | \
                "qmp type:--log-file" | \
                "qmp type:--data-dir" | \
                "qmp type:--runtime-dir" | \
                "qmp type:--config-dir" | \
                "qmp screendump:--format" | \
                "qmp screendump:--log-file" | \
                "qmp screendump:--data-dir" | \
                "qmp screendump:--runtime-dir" | \
                "qmp screendump:--config-dir" | \
                "qmp pause:--log-file" | \
                "qmp pause:--data-dir" | \
                "qmp pause:--runtime-dir" | \
                "qmp pause:--config-dir" | \
                "qmp resume:--log-file" | \
                "qmp resume:--data-dir" | \
                "qmp resume:--runtime-dir" | \
                "qmp resume:--config-dir" | \
                "qmp device-add:--id" | \
                "qmp device-add:--prop" | \
                "qmp device-add:--log-file" | \
                "qmp device-add:--data-dir" | \
                "qmp device-add:--runtime-dir" | \
                "qmp device-add:--config-dir" | \
                "qmp disk-add:--id" | \
                "qmp disk-add:--format" | \
                "qmp disk-add:--prop" | \
                "qmp disk-add:--log-file" | \
                "qmp disk-add:--data-dir" | \
                "qmp disk-add:--runtime-dir" | \
                "qmp disk-add:--config-dir" | \
                "qmp device-del:--timeout" | \
                "qmp device-del:--log-file" | \
                "qmp device-del:--data-dir" | \
                "qmp device-del:--runtime-dir" | \
                "qmp device-del:--config-dir" | \
                "qmp events:--filter" | \
                "qmp events:--timeout" | \
                "qmp events:--log-file" | \
                "qmp events:--data-dir" | \
                "qmp events:--runtime-dir" | \
                "qmp events:--config-dir" | \
                "console:--log-file" | \
                "console:--data-dir" | \
                "console:--runtime-dir" | \
                "console:--config-dir" | \
                "run:--name" | \
                "run:--memory" | \
                "run:--cpus" | \
                "run:--binary" | \
                "run:--wait-for" | \
                "run:--image" | \
                "run:--image-format" | \
                "run:--disk-size" | \
                "run:--timeout" | \
                "run:--log-file" | \
                "run:--data-dir" | \
                "run:--runtime-dir" | \
                "run:--config-dir" | \
                "snapshot:--log-file" | \
                "snapshot:--data-dir" | \
                "snapshot:--runtime-dir" | \
                "snapshot:--config-dir" | \
                "snapshot create:--timeout" | \
                "snapshot create:--log-file" | \
                "snapshot create:--data-dir" | \
                "snapshot create:--runtime-dir" | \
                "snapshot create:--config-dir" | \
                "snapshot load:--timeout" | \
                "snapshot load:--log-file" | \
                "snapshot load:--data-dir" | \
                "snapshot load:--runtime-dir" | \
                "snapshot load:--config-dir" | \
                "snapshot list:--log-file" | \
                "snapshot list:--data-dir" | \
                "snapshot list:--runtime-dir" | \
                "snapshot list:--config-dir" | \
                "snapshot delete:--timeout" | \
                "snapshot delete:--log-file" | \
                "snapshot delete:--data-dir" | \
                "snapshot delete:--runtime-dir" | \
                "snapshot delete:--config-dir" | \
                "disk:--log-file" | \
                "disk:--data-dir" | \
                "disk:--runtime-dir" | \
                "disk:--config-dir" | \
                "disk create:--log-file" | \
                "disk create:--data-dir" | \
                "disk create:--runtime-dir" | \
                "disk create:--config-dir" | \
                "storage:--log-file" | \
                "storage:--data-dir" | \
                "storage:--runtime-dir" | \
                "storage:--config-dir" | \
                "storage orphans:--log-file" | \
                "storage orphans:--data-dir" | \
                "storage orphans:--runtime-dir" | \
                "storage orphans:--config-dir" | \
                "storage verify:--log-file" | \
                "storage verify:--data-dir" | \
                "storage verify:--runtime-dir" | \
                "storage verify:--config-dir" | \
                "doctor:--log-file" | \
                "doctor:--data-dir" | \
                "doctor:--runtime-dir" | \
                "doctor:--config-dir" | \
                "cleanup:--log-file" | \
                "cleanup:--data-dir" | \
                "cleanup:--runtime-dir" | \
                "cleanup:--config-dir" | \
                "export:--to" | \
                "export:--output" | \
                "export:--accel" | \
                "export:--image-dir" | \
                "export:--console-log" | \
                "export:--restart" | \
                "export:--stop-timeout" | \
                "export:--log-file" | \
                "export:--data-dir" | \
                "export:--runtime-dir" | \
                "export:--config-dir" | \
                "ssh:--user" | \
                "ssh:--log-file" | \
                "ssh:--data-dir" | \
                "ssh:--runtime-dir" | \
                "ssh:--config-dir" | \
                "completions:--log-file" | \
                "completions:--data-dir" | \
                "completions:--runtime-dir" | \
                "completions:--config-dir" | \
                "man:--dir" | \
                "man:--log-file" | \
                "man:--data-dir" | \
                "man:--runtime-dir" | \
                "man:--config-dir")
                    want=$cmd:$word
                    ;;
            esac
            continue
        fi
        case $cmd in
            "")
                case $word in
                    "add" | "apply" | "ls" | "info" | "rm" | "start" | "stop" | "status" | "inspect" | "qmp" | "console" | "run" | "snapshot" | "disk" | "storage" | "doctor" | "cleanup" | "export" | "ssh" | "completions" | "man")
                        cmd=$word
                        ;;
                    *) cmd=! ;;
                esac
                ;;
            "qmp")
                case $word in
                    "command" | "keys" | "type" | "screendump" | "pause" | "resume" | "device-add" | "disk-add" | "device-del" | "events")
                        cmd="$cmd $word"
                        ;;
                    *) cmd="qmp command" npos=1 ;;
                esac
                ;;
            "snapshot")
                case $word in
                    "create" | "load" | "list" | "delete")
                        cmd="$cmd $word"
                        [[ -n $vm ]] && npos=1
                        ;;
                    *) if [[ -n $vm ]]; then cmd=!; else vm=$word; fi ;;
                esac
                ;;
            "disk")
                case $word in
                    "create")
                        cmd="$cmd $word"
                        ;;
                    *) cmd=! ;;
                esac
                ;;
            "storage")
                case $word in
                    "orphans" | "verify")
                        cmd="$cmd $word"
                        ;;
                    *) cmd=! ;;
                esac
                ;;
            *) npos=$((npos + 1)) ;;
        esac
    done

    if [[ -n $want ]]; then
        case $want in
            ":--log-file") _maqet_files ;;
            ":--data-dir") _maqet_dirs ;;
            ":--runtime-dir") _maqet_dirs ;;
            ":--config-dir") _maqet_dirs ;;
            "add:--log-file") _maqet_files ;;
            "add:--data-dir") _maqet_dirs ;;
            "add:--runtime-dir") _maqet_dirs ;;
            "add:--config-dir") _maqet_dirs ;;
            "apply:--log-file") _maqet_files ;;
            "apply:--data-dir") _maqet_dirs ;;
            "apply:--runtime-dir") _maqet_dirs ;;
            "apply:--config-dir") _maqet_dirs ;;
            "ls:--status") _maqet_words "created starting running stopped crashed" ;;
            "ls:--log-file") _maqet_files ;;
            "ls:--data-dir") _maqet_dirs ;;
            "ls:--runtime-dir") _maqet_dirs ;;
            "ls:--config-dir") _maqet_dirs ;;
            "info:--log-file") _maqet_files ;;
            "info:--data-dir") _maqet_dirs ;;
            "info:--runtime-dir") _maqet_dirs ;;
            "info:--config-dir") _maqet_dirs ;;
            "rm:--log-file") _maqet_files ;;
            "rm:--data-dir") _maqet_dirs ;;
            "rm:--runtime-dir") _maqet_dirs ;;
            "rm:--config-dir") _maqet_dirs ;;
            "start:--log-file") _maqet_files ;;
            "start:--data-dir") _maqet_dirs ;;
            "start:--runtime-dir") _maqet_dirs ;;
            "start:--config-dir") _maqet_dirs ;;
            "stop:--log-file") _maqet_files ;;
            "stop:--data-dir") _maqet_dirs ;;
            "stop:--runtime-dir") _maqet_dirs ;;
            "stop:--config-dir") _maqet_dirs ;;
            "status:--log-file") _maqet_files ;;
            "status:--data-dir") _maqet_dirs ;;
            "status:--runtime-dir") _maqet_dirs ;;
            "status:--config-dir") _maqet_dirs ;;
            "inspect:--log-file") _maqet_files ;;
            "inspect:--data-dir") _maqet_dirs ;;
            "inspect:--runtime-dir") _maqet_dirs ;;
            "inspect:--config-dir") _maqet_dirs ;;
            "qmp:--log-file") _maqet_files ;;
            "qmp:--data-dir") _maqet_dirs ;;
            "qmp:--runtime-dir") _maqet_dirs ;;
            "qmp:--config-dir") _maqet_dirs ;;
            "qmp command:--log-file") _maqet_files ;;
            "qmp command:--data-dir") _maqet_dirs ;;
            "qmp command:--runtime-dir") _maqet_dirs ;;
            "qmp command:--config-dir") _maqet_dirs ;;
            "qmp keys:--log-file") _maqet_files ;;
            "qmp keys:--data-dir") _maqet_dirs ;;
            "qmp keys:--runtime-dir") _maqet_dirs ;;
            "qmp keys:--config-dir") _maqet_dirs ;;
            "qmp type:--log-file") _maqet_files ;;
            "qmp type:--data-dir") _maqet_dirs ;;
            "qmp type:--runtime-dir") _maqet_dirs ;;
            "qmp type:--config-dir") _maqet_dirs ;;
            "qmp screendump:--format") _maqet_words "ppm png" ;;
            "qmp screendump:--log-file") _maqet_files ;;
            "qmp screendump:--data-dir") _maqet_dirs ;;
            "qmp screendump:--runtime-dir") _maqet_dirs ;;
            "qmp screendump:--config-dir") _maqet_dirs ;;
            "qmp pause:--log-file") _maqet_files ;;
            "qmp pause:--data-dir") _maqet_dirs ;;
            "qmp pause:--runtime-dir") _maqet_dirs ;;
            "qmp pause:--config-dir") _maqet_dirs ;;
            "qmp resume:--log-file") _maqet_files ;;
            "qmp resume:--data-dir") _maqet_dirs ;;
            "qmp resume:--runtime-dir") _maqet_dirs ;;
            "qmp resume:--config-dir") _maqet_dirs ;;
            "qmp device-add:--log-file") _maqet_files ;;
            "qmp device-add:--data-dir") _maqet_dirs ;;
            "qmp device-add:--runtime-dir") _maqet_dirs ;;
            "qmp device-add:--config-dir") _maqet_dirs ;;
            "qmp disk-add:--format") _maqet_words "raw qcow2" ;;
            "qmp disk-add:--log-file") _maqet_files ;;
            "qmp disk-add:--data-dir") _maqet_dirs ;;
            "qmp disk-add:--runtime-dir") _maqet_dirs ;;
            "qmp disk-add:--config-dir") _maqet_dirs ;;
            "qmp device-del:--log-file") _maqet_files ;;
            "qmp device-del:--data-dir") _maqet_dirs ;;
            "qmp device-del:--runtime-dir") _maqet_dirs ;;
            "qmp device-del:--config-dir") _maqet_dirs ;;
            "qmp events:--log-file") _maqet_files ;;
            "qmp events:--data-dir") _maqet_dirs ;;
            "qmp events:--runtime-dir") _maqet_dirs ;;
            "qmp events:--config-dir") _maqet_dirs ;;
            "console:--log-file") _maqet_files ;;
            "console:--data-dir") _maqet_dirs ;;
            "console:--runtime-dir") _maqet_dirs ;;
            "console:--config-dir") _maqet_dirs ;;
            "run:--log-file") _maqet_files ;;
            "run:--data-dir") _maqet_dirs ;;
            "run:--runtime-dir") _maqet_dirs ;;
            "run:--config-dir") _maqet_dirs ;;
            "snapshot:--log-file") _maqet_files ;;
            "snapshot:--data-dir") _maqet_dirs ;;
            "snapshot:--runtime-dir") _maqet_dirs ;;
            "snapshot:--config-dir") _maqet_dirs ;;
            "snapshot create:--log-file") _maqet_files ;;
            "snapshot create:--data-dir") _maqet_dirs ;;
            "snapshot create:--runtime-dir") _maqet_dirs ;;
            "snapshot create:--config-dir") _maqet_dirs ;;
            "snapshot load:--log-file") _maqet_files ;;
            "snapshot load:--data-dir") _maqet_dirs ;;
            "snapshot load:--runtime-dir") _maqet_dirs ;;
            "snapshot load:--config-dir") _maqet_dirs ;;
            "snapshot list:--log-file") _maqet_files ;;
            "snapshot list:--data-dir") _maqet_dirs ;;
            "snapshot list:--runtime-dir") _maqet_dirs ;;
            "snapshot list:--config-dir") _maqet_dirs ;;
            "snapshot delete:--log-file") _maqet_files ;;
            "snapshot delete:--data-dir") _maqet_dirs ;;
            "snapshot delete:--runtime-dir") _maqet_dirs ;;
            "snapshot delete:--config-dir") _maqet_dirs ;;
            "disk:--log-file") _maqet_files ;;
            "disk:--data-dir") _maqet_dirs ;;
            "disk:--runtime-dir") _maqet_dirs ;;
            "disk:--config-dir") _maqet_dirs ;;
            "disk create:--log-file") _maqet_files ;;
            "disk create:--data-dir") _maqet_dirs ;;
            "disk create:--runtime-dir") _maqet_dirs ;;
            "disk create:--config-dir") _maqet_dirs ;;
            "storage:--log-file") _maqet_files ;;
            "storage:--data-dir") _maqet_dirs ;;
            "storage:--runtime-dir") _maqet_dirs ;;
            "storage:--config-dir") _maqet_dirs ;;
            "storage orphans:--log-file") _maqet_files ;;
            "storage orphans:--data-dir") _maqet_dirs ;;
            "storage orphans:--runtime-dir") _maqet_dirs ;;
            "storage orphans:--config-dir") _maqet_dirs ;;
            "storage verify:--log-file") _maqet_files ;;
            "storage verify:--data-dir") _maqet_dirs ;;
            "storage verify:--runtime-dir") _maqet_dirs ;;
            "storage verify:--config-dir") _maqet_dirs ;;
            "doctor:--log-file") _maqet_files ;;
            "doctor:--data-dir") _maqet_dirs ;;
            "doctor:--runtime-dir") _maqet_dirs ;;
            "doctor:--config-dir") _maqet_dirs ;;
            "cleanup:--log-file") _maqet_files ;;
            "cleanup:--data-dir") _maqet_dirs ;;
            "cleanup:--runtime-dir") _maqet_dirs ;;
            "cleanup:--config-dir") _maqet_dirs ;;
            "export:--output") _maqet_files ;;
            "export:--image-dir") _maqet_dirs ;;
            "export:--console-log") _maqet_files ;;
            "export:--log-file") _maqet_files ;;
            "export:--data-dir") _maqet_dirs ;;
            "export:--runtime-dir") _maqet_dirs ;;
            "export:--config-dir") _maqet_dirs ;;
            "ssh:--log-file") _maqet_files ;;
            "ssh:--data-dir") _maqet_dirs ;;
            "ssh:--runtime-dir") _maqet_dirs ;;
            "ssh:--config-dir") _maqet_dirs ;;
            "completions:--log-file") _maqet_files ;;
            "completions:--data-dir") _maqet_dirs ;;
            "completions:--runtime-dir") _maqet_dirs ;;
            "completions:--config-dir") _maqet_dirs ;;
            "man:--dir") _maqet_dirs ;;
            "man:--log-file") _maqet_files ;;
            "man:--data-dir") _maqet_dirs ;;
            "man:--runtime-dir") _maqet_dirs ;;
            "man:--config-dir") _maqet_dirs ;;
        esac
    elif [[ -z $ddash && $cur == -* ]]; then
        case $cmd in
            "") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json --version" ;;
            "add") _maqet_words "--help --name --memory --cpus --binary --trust --empty -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "apply") _maqet_words "--help --name --memory --cpus --binary --trust -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "ls") _maqet_words "--help --status --names -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "info") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "rm") _maqet_words "--help --all --force --clean-storage -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "start") _maqet_words "--help --timeout --wait-for --dry-run -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "stop") _maqet_words "--help --timeout --force -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "status") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "inspect") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp command") _maqet_words "--help --arg --args-json --allow-dangerous --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp keys") _maqet_words "--help --hold-time -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp type") _maqet_words "--help --hold-time -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp screendump") _maqet_words "--help --format -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp pause") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp resume") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp device-add") _maqet_words "--help --id --prop -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp disk-add") _maqet_words "--help --id --format --readonly --prop -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp device-del") _maqet_words "--help --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "qmp events") _maqet_words "--help --follow --filter --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "console") _maqet_words "--help --log --follow -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "run") _maqet_words "--help --name --memory --cpus --binary --trust --console --rm --wait-for --image --image-format --disk-size --ssh --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "snapshot") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "snapshot create") _maqet_words "--help --overwrite --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "snapshot load") _maqet_words "--help --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "snapshot list") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "snapshot delete") _maqet_words "--help --timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "disk") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "disk create") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "storage") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "storage orphans") _maqet_words "--help --delete -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "storage verify") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "doctor") _maqet_words "--help --fix -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "cleanup") _maqet_words "--help --dry-run -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "export") _maqet_words "--help --to --output --accel --image-dir --console-log --trust --user --restart --stop-timeout -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "ssh") _maqet_words "--help --user --print -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "completions") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
            "man") _maqet_words "--help --dir -v --verbose --log-file --data-dir --runtime-dir --config-dir --json" ;;
        esac
    else
        case $cmd in
            "") _maqet_words "add apply ls info rm start stop status inspect qmp console run snapshot disk storage doctor cleanup export ssh completions man" ;;
            "add")
                case $npos in
                    *) _maqet_files ;;
                esac
                ;;
            "apply")
                case $npos in
                    0) _maqet_vms ;;
                    *) _maqet_files ;;
                esac
                ;;
            "info")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "rm")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "start")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "stop")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "status")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "inspect")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp") _maqet_words "command keys type screendump pause resume device-add disk-add device-del events"; _maqet_vms ;;
            "qmp command")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp keys")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp type")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp screendump")
                case $npos in
                    0) _maqet_vms ;;
                    1) _maqet_files ;;
                esac
                ;;
            "qmp pause")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp resume")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp device-add")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp disk-add")
                case $npos in
                    0) _maqet_vms ;;
                    1) _maqet_files ;;
                esac
                ;;
            "qmp device-del")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "qmp events")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "console")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "run")
                case $npos in
                    *) _maqet_files ;;
                esac
                ;;
            "snapshot") _maqet_words "create load list delete"; [[ -z $vm ]] && _maqet_vms ;;
            "snapshot create")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "snapshot load")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "snapshot list")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "snapshot delete")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "disk") _maqet_words "create" ;;
            "disk create")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "storage") _maqet_words "orphans verify" ;;
            "storage verify")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "export")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "ssh")
                case $npos in
                    0) _maqet_vms ;;
                esac
                ;;
            "completions")
                case $npos in
                    0) _maqet_words "bash zsh fish" ;;
                esac
                ;;
            "man")
                case $npos in
                    0) _maqet_words "add apply ls info rm start stop status inspect qmp console run snapshot disk storage doctor cleanup export ssh completions man" ;;
                esac
                ;;
        esac
    fi

    # Readline replaces only the part of the word after its last = or :.
    local breaks=
    [[ $COMP_WORDBREAKS == *=* ]] && breaks+="="
    [[ $COMP_WORDBREAKS == *:* ]] && breaks+=":"
    if [[ -n $breaks && $cur == *["$breaks"]* ]]; then
        local prefix=${cur%"${cur##*["$breaks"]}"}
        COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
    fi
    return 0
}

complete -F _maqet maqet
