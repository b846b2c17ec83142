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
                ":--data-dir" | ":--runtime-dir" | ":--config-dir")
                    [[ $word == "~" || $word == "~/"* ]] && word=$HOME${word:1}
                    store+=("${want#:}" "$word")
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
                "apply:--name" | \
                "apply:--memory" | \
                "apply:--cpus" | \
                "apply:--binary" | \
                "ls:--status" | \
                "start:--timeout" | \
                "start:--wait-for" | \
                "stop:--timeout" | \
                "qmp command:--arg" | \
                "qmp command:--args-json" | \
                "qmp command:--timeout" | \
                "qmp keys:--hold-time" | \
                "qmp type:--hold-time" | \
                "qmp screendump:--format" | \
                "qmp device-add:--id" | \
                "qmp device-add:--prop" | \
                "qmp disk-add:--id" | \
                "qmp disk-add:--format" | \
                "qmp disk-add:--prop" | \
                "qmp device-del:--timeout" | \
                "qmp events:--filter" | \
                "qmp events:--timeout" | \
                "run:--name" | \
                "run:--memory" | \
                "run:--cpus" | \
                "run:--binary" | \
                "run:--wait-for" | \
                "run:--timeout" | \
                "snapshot create:--timeout" | \
                "snapshot load:--timeout" | \
                "snapshot delete:--timeout" | \
                "man:--dir")
                    want=$cmd:$word
                    ;;
            esac
            continue
        fi
        case $cmd in
            "")
                case $word in
                    "add" | "apply" | "ls" | "info" | "rm" | "start" | "stop" | "status" | "inspect" | "qmp" | "console" | "run" | "snapshot" | "disk" | "storage" | "doctor" | "cleanup" | "completions" | "man")
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
            "ls:--status") _maqet_words "created starting running stopped crashed" ;;
            "qmp screendump:--format") _maqet_words "ppm png" ;;
            "qmp disk-add:--format") _maqet_words "raw qcow2" ;;
            "man:--dir") _maqet_dirs ;;
        esac
    elif [[ -z $ddash && $cur == -* ]]; then
        case $cmd in
            "") _maqet_words "--help -v --verbose --log-file --data-dir --runtime-dir --config-dir --json --version" ;;
            "add") _maqet_words "--help --name --memory --cpus --binary --trust --empty" ;;
            "apply") _maqet_words "--help --name --memory --cpus --binary --trust" ;;
            "ls") _maqet_words "--help --status --names" ;;
            "info") _maqet_words "--help" ;;
            "rm") _maqet_words "--help --all --force --clean-storage" ;;
            "start") _maqet_words "--help --timeout --wait-for --dry-run" ;;
            "stop") _maqet_words "--help --timeout --force" ;;
            "status") _maqet_words "--help" ;;
            "inspect") _maqet_words "--help" ;;
            "qmp") _maqet_words "--help" ;;
            "qmp command") _maqet_words "--help --arg --args-json --allow-dangerous --timeout" ;;
            "qmp keys") _maqet_words "--help --hold-time" ;;
            "qmp type") _maqet_words "--help --hold-time" ;;
            "qmp screendump") _maqet_words "--help --format" ;;
            "qmp pause") _maqet_words "--help" ;;
            "qmp resume") _maqet_words "--help" ;;
            "qmp device-add") _maqet_words "--help --id --prop" ;;
            "qmp disk-add") _maqet_words "--help --id --format --readonly --prop" ;;
            "qmp device-del") _maqet_words "--help --timeout" ;;
            "qmp events") _maqet_words "--help --follow --filter --timeout" ;;
            "console") _maqet_words "--help --log --follow" ;;
            "run") _maqet_words "--help --name --memory --cpus --binary --trust --console --rm --wait-for --timeout" ;;
            "snapshot") _maqet_words "--help" ;;
            "snapshot create") _maqet_words "--help --overwrite --timeout" ;;
            "snapshot load") _maqet_words "--help --timeout" ;;
            "snapshot list") _maqet_words "--help" ;;
            "snapshot delete") _maqet_words "--help --timeout" ;;
            "disk") _maqet_words "--help" ;;
            "disk create") _maqet_words "--help" ;;
            "storage") _maqet_words "--help" ;;
            "storage orphans") _maqet_words "--help --delete" ;;
            "storage verify") _maqet_words "--help" ;;
            "doctor") _maqet_words "--help --fix" ;;
            "cleanup") _maqet_words "--help --dry-run" ;;
            "completions") _maqet_words "--help" ;;
            "man") _maqet_words "--help --dir" ;;
        esac
    else
        case $cmd in
            "") _maqet_words "add apply ls info rm start stop status inspect qmp console run snapshot disk storage doctor cleanup completions man" ;;
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
            "completions")
                case $npos in
                    0) _maqet_words "bash zsh fish" ;;
                esac
                ;;
            "man")
                case $npos in
                    0) _maqet_words "add apply ls info rm start stop status inspect qmp console run snapshot disk storage doctor cleanup completions man" ;;
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
