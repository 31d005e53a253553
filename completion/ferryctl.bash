# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# bash completion for ferryctl: commands, the options of each command, and
# the live names of the cluster (nodes, VMs, job ids) as the local ferryd
# reports them.
#
# What exists comes from ferryctl itself, so this file never falls behind
# the binary: the commands, their argument synopses and the options of each
# command from `ferryctl --help` (no bus involved), the names from
# `ferryctl __complete nodes|vms|volumes|jobs|active-jobs` (one per line). A
# placeholder in a synopsis says what to offer:
#
#   NODE, NAME|ID      node names          VM     VM names
#   NAME (volume)      volume names
#   ID                 job ids (cancel: only the jobs still under way)
#   on|off, fail|leave the words themselves
#
# Plain bash (compgen-free COMPREPLY), without the bash-completion package's
# helpers. When ferryd cannot be reached, names are simply not offered: the
# error goes nowhere, and ferryctl gives up after 2 s at most.

# _ferryctl_names KIND CUR: append the names of KIND starting with CUR.
_ferryctl_names() {
    local kind=$1 cur=$2 names
    names=$("$_ferryctl_bin" __complete "$kind" 2>/dev/null) || return 0
    _ferryctl_add "$names" "$cur"
}

# _ferryctl_add WORDS CUR: append the newline-separated WORDS that start with
# CUR, quoted for the shell. Not `compgen -W`, which would expand $(...) in
# a name a VM's owner chose.
_ferryctl_add() {
    local w q
    while IFS= read -r w; do
        [[ -n $w && $w == "$2"* ]] || continue
        printf -v q '%q' "$w"
        COMPREPLY+=("$q")
    done <<<"$1"
}

# _ferryctl_values PLACEHOLDER CMD CUR: what a placeholder of the synopsis
# stands for.
_ferryctl_values() {
    local ph=$1 cmd=$2 cur=$3
    case $ph in
        NODE | NAME\|ID) _ferryctl_names nodes "$cur" ;;
        VM) _ferryctl_names vms "$cur" ;;
        NAME) [[ $cmd == volume ]] && _ferryctl_names volumes "$cur" ;;
        ID)
            if [[ $cmd == cancel ]]; then
                _ferryctl_names active-jobs "$cur"
            else
                _ferryctl_names jobs "$cur"
            fi
            ;;
        *[!a-z0-9\|-]* | '') ;;
        *) _ferryctl_add "${ph//|/$'\n'}" "$cur" ;;
    esac
}

_ferryctl() {
    COMPREPLY=()
    local _ferryctl_bin=${COMP_WORDS[0]}
    [[ $_ferryctl_bin == */* && -x $_ferryctl_bin ]] || _ferryctl_bin=ferryctl

    local help
    help=$("$_ferryctl_bin" --help 2>/dev/null) || return 0

    # What --help says: the commands with their argument synopses, the
    # options of each command (':global': those of every command) and the
    # placeholder of each option that takes an argument.
    local -A cmd_args=() cmd_opts=() opt_arg=()
    local line section="" syn w arg commands="" i
    local -a words names
    while IFS= read -r line; do
        case $line in
            '') continue ;;
            'Commands:') section=:commands; continue ;;
            'Options (before or after the command):') section=:global; continue ;;
            'Options of '*:) section=${line#Options of }; section=${section%:}; continue ;;
            [!\ ]*) section=""; continue ;;
        esac
        [[ -n $section ]] || continue
        # The synopsis ends where the summary starts: at two blanks, or, if
        # it is too long for its column, at the first capitalised word.
        line=${line#"${line%%[! ]*}"}
        syn=${line%%"  "*}
        read -ra words <<<"$syn"
        for ((i = 1; i < ${#words[@]}; i++)); do
            [[ ${words[i]} == [A-Z][a-z]* ]] || continue
            words=("${words[@]:0:i}")
            break
        done
        ((${#words[@]})) || continue
        if [[ $section == :commands ]]; then
            commands+=${words[0]}$'\n'
            cmd_args[${words[0]}]=${words[*]:1}
            continue
        fi
        names=() arg=""
        for w in "${words[@]}"; do
            if [[ $w == -* ]]; then names+=("$w"); else arg=$w; fi
        done
        for w in "${names[@]}"; do
            [[ $w == --* ]] && cmd_opts[$section]+=" $w"
            [[ -n $arg ]] && opt_arg[$w]=$arg
        done
    done <<<"$help"

    # Where the cursor is: the command, the positional arguments before the
    # cursor, and whether the current word is the argument of an option
    # (`--to node`, or `--to=node`, which bash splits at the '=').
    local cur=${COMP_WORDS[COMP_CWORD]:-} cmd="" value_of="" word
    local -i npos=0 options_done=0
    local -a typed=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((options_done)) || [[ $word != -* || $word == - ]]; then
            if [[ -z $cmd ]]; then cmd=$word; else npos+=1; typed+=("$word"); fi
            continue
        fi
        if [[ $word == -- ]]; then
            options_done=1
            continue
        fi
        [[ -n ${opt_arg[${word%%=*}]:-} && $word != *=* ]] || continue
        # The option's argument: the next word, after a lone '=' if bash
        # split one off.
        if ((i + 1 < COMP_CWORD)) && [[ ${COMP_WORDS[i + 1]} == = ]]; then
            ((i++))
        fi
        ((i + 1 == COMP_CWORD)) && value_of=$word
        ((i++))
    done
    if [[ -n $value_of ]]; then
        [[ $cur == = ]] && cur=""
        _ferryctl_values "${opt_arg[$value_of]}" "$cmd" "$cur"
        return 0
    fi
    if ((!options_done)) && [[ $cur == --*=* && -n ${opt_arg[${cur%%=*}]:-} ]]; then
        # COMP_WORDBREAKS without '=': the word is `--to=no` as typed.
        _ferryctl_values "${opt_arg[${cur%%=*}]}" "$cmd" "${cur#*=}"
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${cur%%=*}=${COMPREPLY[i]}
        done
        return 0
    fi

    if ((!options_done)) && [[ $cur == -* ]]; then
        local opts=${cmd_opts[:global]:-}
        [[ -n $cmd ]] && opts+=${cmd_opts[$cmd]:-}
        _ferryctl_add "${opts// /$'\n'}" "$cur"
        return 0
    fi

    if [[ -z $cmd ]]; then
        _ferryctl_add "$commands" "$cur"
        return 0
    fi

    # The npos-th word of the command's synopsis, an optional one ([...])
    # included, options ([--...]) not; a last word ending in "..." repeats.
    # Where the word is optional, what may stand there instead is offered
    # too: `node [confirm-fenced] NODE` offers the verb and the node names.
    local -a placeholders=() optional=()
    read -ra words <<<"${cmd_args[$cmd]:-}"
    for w in "${words[@]}"; do
        [[ $w == \[-* ]] && continue
        if [[ $w == \[*\] ]]; then
            w=${w:1:-1}
            optional+=(1)
        else
            optional+=(0)
        fi
        placeholders+=("$w")
    done
    # Which placeholder the cursor is at: an optional literal word the user
    # did not type (`node node1`, not `node confirm-fenced`) is skipped.
    local -i k=0
    for w in "${typed[@]}"; do
        while ((k < ${#placeholders[@]})) && ((optional[k])) &&
            [[ ${placeholders[k]} != *[A-Z]* && "|${placeholders[k]}|" != *"|$w|"* ]]; do
            k+=1
        done
        ((k < ${#placeholders[@]})) && [[ ${placeholders[k]} == *... ]] || k+=1
    done
    if ((k < ${#placeholders[@]})); then
        _ferryctl_values "${placeholders[k]%...}" "$cmd" "$cur"
        if ((optional[k] && k + 1 < ${#placeholders[@]})); then
            _ferryctl_values "${placeholders[k + 1]%...}" "$cmd" "$cur"
        fi
    fi
    return 0
}

complete -F _ferryctl ferryctl
