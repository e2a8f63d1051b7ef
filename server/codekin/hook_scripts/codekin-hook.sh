#!/bin/sh
# codekin-hook 2 @HOOK_NAME@
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
# One record per event, in .codekin/queue.d/<pid>.<n>.ev, claimed with noclobber and
# ended by a trailer line, so a reader can tell a whole record from one being written
# (no rename: that would cost one more process). A record is
#   "codekin-queue 2\n<event>\n<full scan: 0|1>\n\n" + "<new HEAD>\0" + "<path>\0"... + "codekin-end\n"

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

# Publish one record. $1: 1 to ask for a full scan; $2: how to list the new HEAD and
# the changed paths: "commit" (HEAD against its first parent), "trees FROM TO",
# "staged" (index against HEAD, for a squash merge), "head SHA" (no paths).
codekin_publish() {
    codekin_spool=.codekin/queue.d
    [ -d "$codekin_spool" ] || mkdir -p "$codekin_spool" || return 1
    set -C  # noclobber: a record name is claimed atomically (this runs in a subshell)
    codekin_n=0
    until true 2>/dev/null >"$codekin_spool/$$.$codekin_n.ev"; do
        codekin_n=$((codekin_n + 1))
        [ "$codekin_n" -lt 1000 ] || { echo "cannot claim a record name in $codekin_spool" >&2; return 1; }
    done
    codekin_record_file="$codekin_spool/$$.$codekin_n.ev"
    set -- "$1" $2
    {
        printf 'codekin-queue 2\n%s\n%s\n\n' "$codekin_hook" "$1" &&
        case $2 in
            commit) git diff-tree -r -z --name-only --no-renames --root --diff-merges=first-parent HEAD ;;
            trees) printf '%s\0' "$4" && git diff-tree -r -z --name-only --no-renames "$3" "$4" ;;
            staged) printf '\0' && git diff-index --cached -z --name-only --no-renames HEAD ;;
            head) printf '%s\0' "${3:-}" ;;
        esac &&
        printf 'codekin-end\n'
    } >|"$codekin_record_file" || { rm -f "$codekin_record_file"; return 1; }
}

# Work out what changed for this hook and publish it; a diff that cannot be computed
# becomes a request for a full scan, so no change is ever dropped.
codekin_record() {
    [ -d .codekin ] || return 0  # codekin is not set up in this worktree
    codekin_how=
    codekin_head=
    case $codekin_hook in
        post-commit) codekin_how=commit ;;
        post-merge)  # $1: 1 for a squash merge (HEAD stays, the index changed)
            if [ "${1:-0}" = 1 ]; then
                codekin_how=staged
            else
                codekin_revs=$(git rev-parse ORIG_HEAD HEAD) &&
                    codekin_how="trees $codekin_revs"
            fi
            ;;
        post-checkout)  # $1 old HEAD, $2 new HEAD, $3: 1 branch switch, 0 file checkout
            codekin_head=${2:-}
            case ${1:-}:${3:-} in
                *:1) [ "$1" = "$2" ] && return 0  # same commit (e.g. checkout -b): nothing to do
                     case $1 in *[!0]*) codekin_how="trees $1 $2" ;; esac ;;
            esac  # a file checkout (git does not say which files) or a clone: full scan
            ;;
        post-rewrite)  # $1 amend|rebase; input lines "old new [extra]"
            if [ "${1:-}" = amend ]; then
                set -- $codekin_input
                codekin_head=${2:-}
                [ -n "${2:-}" ] && codekin_how="trees $1 $2"
            else
                codekin_revs=$(git rev-parse ORIG_HEAD HEAD) &&
                    codekin_how="trees $codekin_revs"
            fi
            ;;
    esac
    if [ -z "$codekin_how" ]; then
        codekin_publish 1 "head $codekin_head"
    elif ! codekin_publish 0 "$codekin_how"; then
        echo "could not list the changed paths ($codekin_how); asked for a full scan instead" >&2
        codekin_publish 1 "head $codekin_head"
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
