#!/bin/sh
# codekin-hook 1 @HOOK_NAME@
#
# Installed by `codekin hooks install` as post-commit, post-merge, post-checkout and
# post-rewrite (the line `codekin_hook=...` below names which). It records which paths
# this git command changed, so that `codekin sync` (or the language server) brings the
# index up to date later. `codekin hooks uninstall` puts back whatever was here before.
#
# Rules it keeps: it never fails the git command, never prints, never starts Python and
# never runs anything from the repository (only git plumbing; nothing is sourced). A
# failure is one line in .codekin/logs/hooks.log. A hook that was here before codekin
# was installed is kept as <name>.codekin-chained and runs afterwards with the same
# arguments and input; its exit status is the hook's exit status.
#
# One record per event, in .codekin/queue.d/: written as <pid>.<n>.tmp, then renamed to
# <pid>.<n>.ev, so a reader sees whole records only. A record is
#   "codekin-queue 1\n<event>\n<new HEAD>\n<full scan: 0|1>\n\n" + NUL-separated paths.

codekin_hook=@HOOK_NAME@

case $0 in
    */*) codekin_dir=${0%/*} ;;
    *) codekin_dir=. ;;
esac
codekin_chained="$codekin_dir/$codekin_hook.codekin-chained"

codekin_log() {
    {
        [ -d .codekin ] || return 0
        [ -d .codekin/logs ] || mkdir -p .codekin/logs
        printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$codekin_hook" \
            "$(printf '%s' "$1" | tr '\n' ' ')" >>.codekin/logs/hooks.log
    } 2>/dev/null
    return 0
}

# Publish one record. $1: new HEAD, $2: 1 to ask for a full scan, $3: how to list the
# changed paths: "tree FROM" (FROM..HEAD), "root" (HEAD is a root commit), "staged"
# (index vs HEAD), "none".
codekin_publish() {
    codekin_spool=.codekin/queue.d
    [ -d "$codekin_spool" ] || mkdir -p "$codekin_spool" || return 1
    set -C  # noclobber: the .tmp name is claimed atomically (this runs in a subshell)
    codekin_n=0
    while :; do
        codekin_tmp="$codekin_spool/$$.$codekin_n.tmp"
        if [ ! -e "$codekin_spool/$$.$codekin_n.ev" ] && true 2>/dev/null >"$codekin_tmp"; then
            break
        fi
        codekin_n=$((codekin_n + 1))
        [ "$codekin_n" -lt 1000 ] || { echo "cannot claim a record name in $codekin_spool"; return 1; }
    done
    {
        printf 'codekin-queue 1\n%s\n%s\n%s\n\n' "$codekin_hook" "$1" "$2"
        case $3 in
            tree\ *) git diff-tree -r -z --name-only --no-renames "${3#tree }" "$1" ;;
            root) git diff-tree -r -z --name-only --no-renames --no-commit-id --root "$1" ;;
            staged) git diff-index --cached -z --name-only --no-renames "$1" ;;
        esac
    } >|"$codekin_tmp" || { rm -f "$codekin_tmp"; return 1; }
    mv -f "$codekin_tmp" "$codekin_spool/$$.$codekin_n.ev"
}

# Work out what changed for this hook and publish it; a diff that cannot be computed
# becomes a request for a full scan, so no change is ever dropped.
codekin_record() {
    [ -d .codekin ] || return 0  # codekin is not set up in this worktree
    codekin_head=
    codekin_list=none
    codekin_scan=0
    case $codekin_hook in
        post-commit)
            codekin_revs=$(git rev-list -1 --parents HEAD) || codekin_scan=1
            set -- $codekin_revs
            codekin_head=${1:-}
            if [ -n "${2:-}" ]; then codekin_list="tree $2"; else codekin_list=root; fi
            ;;
        post-merge)  # $1: 1 for a squash merge (HEAD stays, the index changed)
            if [ "${1:-0}" = 1 ]; then
                codekin_head=$(git rev-parse -q --verify HEAD) || codekin_scan=1
                codekin_list=staged
            else
                codekin_revs=$(git rev-parse -q --verify HEAD && git rev-parse -q --verify ORIG_HEAD) \
                    || codekin_scan=1
                set -- $codekin_revs
                codekin_head=${1:-}
                codekin_list="tree ${2:-}"
            fi
            ;;
        post-checkout)  # $1 old HEAD, $2 new HEAD, $3: 1 branch switch, 0 file checkout
            codekin_head=${2:-}
            case ${1:-}:${3:-} in
                *:1) [ "$1" = "$2" ] && return 0  # same commit (e.g. checkout -b): nothing to do
                     case $1 in *[!0]*) codekin_list="tree $1" ;; *) codekin_scan=1 ;; esac ;;
                *) codekin_scan=1 ;;  # file checkout: git does not say which files
            esac
            ;;
        post-rewrite)  # $1 amend|rebase; input lines "old new [extra]"
            if [ "${1:-}" = amend ]; then
                set -- $codekin_input
                codekin_head=${2:-}
                codekin_list="tree ${1:-}"
            else
                codekin_revs=$(git rev-parse -q --verify HEAD && git rev-parse -q --verify ORIG_HEAD) \
                    || codekin_scan=1
                set -- $codekin_revs
                codekin_head=${1:-}
                codekin_list="tree ${2:-}"
            fi
            ;;
        *) codekin_scan=1 ;;
    esac
    [ "$codekin_list" != "tree " ] || codekin_scan=1
    [ "$codekin_scan" = 0 ] || codekin_list=none
    if ! codekin_publish "$codekin_head" "$codekin_scan" "$codekin_list"; then
        echo "could not list the changed paths; asked for a full scan instead"
        codekin_publish "$codekin_head" 1 none
        return 1
    fi
}

codekin_input=
if [ "$codekin_hook" = post-rewrite ]; then
    codekin_input=$(cat)
fi
codekin_err=$(codekin_record "$@" 2>&1 >/dev/null) || codekin_log "${codekin_err:-failed}"

if [ -x "$codekin_chained" ]; then
    if [ "$codekin_hook" = post-rewrite ]; then
        printf '%s\n' "$codekin_input" | "$codekin_chained" "$@"
        exit $?
    fi
    exec "$codekin_chained" "$@"
fi
exit 0
