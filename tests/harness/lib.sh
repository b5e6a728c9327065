# shellcheck shell=bash
# lib.sh - helpers for pli shell integration tests against a private Postfix.
#
#   #!/usr/bin/env bash
#   set -euo pipefail
#   . "$(dirname "$0")/../harness/lib.sh"
#   pfx_setup                                  # or: pfx_setup --milter unix:/path/milter.sock
#   pfx_send --from alice@buyer.example --to x@remote.example
#   pfx_wait_sink_count 1
#
# Exit codes: 0 pass, 1 fail, 77 skip (CTest: SKIP_RETURN_CODE 77).
#
# Functions (all need the variables of ports.env, which pfx_setup sources):
#   fail MSG...                 print "FAIL: MSG" on stderr, exit 1
#   skip MSG...                 print "SKIP: MSG" on stderr, exit 77
#   pfx_require                 skip unless root and postfix, smtp-sink, swaks, ss are present
#   pfx_on_exit CMD...          add a cleanup command; all run at exit, last added first.
#                               One argument is eval'd as a string; several are quoted as argv.
#                               Use this instead of "trap ... EXIT" (that would replace ours).
#   pfx_setup [pfx start options]
#                               temp dir under ${TMPDIR:-/tmp}, "pfx start", source ports.env,
#                               stop + remove at exit (PFX_KEEP=1: stop but keep the dir)
#   pfx_sink_files              complete message files of $PFX_SINK_DIR, oldest first
#                               (PFX_SINK_DIR=$PFX_SINK_NODSN_DIR pfx_sink_files for the -N sink)
#   pfx_sink_count              number of those files
#   pfx_wait_sink_count N [TIMEOUT_S=20]
#   pfx_maildir_files BOX       files in $PFX_MAIL_DIR/BOX/new, oldest first (BOX: bounce,
#                               catchall, postmaster)
#   pfx_wait_maildir BOX N [TIMEOUT_S=20]
#   pfx_log_has REGEX           grep -E the maillog (status only, no wait)
#   pfx_wait_log REGEX [TIMEOUT_S=20]
#   pfx_queue_empty             status: the queue (incoming/active/deferred/hold) is empty
#   pfx_wait_queue_empty [TIMEOUT_S=20]
#   pfx_flush                   postqueue -f (retry deferred mail now)
#   pfx_send SWAKS_ARGS...      swaks --server 127.0.0.1 --port $PFX_PORT_IN ...; silent on
#                               success, transcript on stderr and swaks' exit code on failure.
#                               A later --port overrides (e.g. --port "$PFX_PORT_REINJECT").
#   pfx_smtp OPTIONS...         raw SMTP client (bash /dev/tcp) for ESMTP parameters, which this
#                               swaks version cannot send; prints the queue id on success.
#                               --port P | --reinject   (default $PFX_PORT_IN)
#                               --helo NAME             (default client.buyer.example)
#                               --from ADDR             (use "" for the null sender)
#                               --mail-params "RET=HDRS ENVID=x"
#                               --to ADDR [--rcpt-params "NOTIFY=SUCCESS ORCPT=rfc822;ADDR"]...
#                               --subject S --header "Name: value"... --body TEXT
#                               --data-file FILE        (a complete message instead)
#   pfx_diag                    maillog tail and queue listing on stderr
#   pfx_in DIR CMD...           runs CMD (a function above) on another instance, the one in
#                               DIR, in a subshell with DIR's ports.env (a test's second MTA)
#   pfx_free_port               a free loopback port for a test's own daemon (reserved for
#                               120 s against concurrent pfx starts; "pfx ports N" for more)
#   _pfx_wait TIMEOUT DESC STATUS_FN CMD...
#                               poll CMD every 0.2 s; on timeout pfx_diag + fail, adding the
#                               output of STATUS_FN (or nothing if "") to the message
#
# Timeouts are whole seconds. Wait functions call fail (exit 1) on timeout, after pfx_diag.

PFX_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PFX_BIN=$PFX_HARNESS_DIR/pfx

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
# qgrep ARGS...: grep -q that reads all its input. After `producer | grep -q`, the producer's
# next write after the first match dies of SIGPIPE, and under `pipefail` the pipeline fails
# although the text was found (seen with `echo "$text" | grep -q`).
qgrep() { grep "$@" >/dev/null; }

pfx_require() {
    local t
    for t in postfix postconf smtp-sink swaks ss; do
        command -v "$t" >/dev/null 2>&1 || skip "'$t' is not installed"
    done
    [ "$(id -u)" -eq 0 ] || skip "a private Postfix instance needs root"
    return 0
}

# ------------------------------------------------------------------ cleanup at exit

_PFX_EXIT_CMDS=()
_PFX_EXIT_RC=0
_PFX_DIAG_DONE=0

pfx_on_exit() {
    [ $# -gt 0 ] || return 0
    if [ $# -eq 1 ]; then
        _PFX_EXIT_CMDS+=("$1")
    else
        _PFX_EXIT_CMDS+=("$(printf '%q ' "$@")")
    fi
}

_pfx_exit_handler() {
    _PFX_EXIT_RC=$?
    trap - EXIT
    set +eu
    local i
    for ((i = ${#_PFX_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
        eval "${_PFX_EXIT_CMDS[i]}"
    done
    exit "$_PFX_EXIT_RC"
}
trap _pfx_exit_handler EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

_pfx_teardown() {
    local dir=$1
    if [ "$_PFX_EXIT_RC" -ne 0 ] && [ "$_PFX_EXIT_RC" -ne 77 ] && [ "$_PFX_DIAG_DONE" = 0 ] \
       && [ -f "$dir/log/maillog" ]; then
        echo "---- maillog tail ($dir/log/maillog)" >&2
        tail -n 30 "$dir/log/maillog" >&2
        echo "----" >&2
    fi
    if [ "${PFX_KEEP:-0}" = 1 ]; then
        "$PFX_BIN" stop "$dir" || echo "warning: pfx stop $dir failed" >&2
        echo "pfx: kept $dir (PFX_KEEP=1)" >&2
    else
        "$PFX_BIN" stop "$dir" --rm || echo "warning: pfx stop $dir --rm failed" >&2
    fi
}

# ------------------------------------------------------------------ setup

pfx_setup() {
    pfx_require
    local base=${TMPDIR:-/tmp} dir
    # instances left behind by killed tests (their owner process is gone)
    "$PFX_BIN" gc "$base" || true
    dir=$(mktemp -d "$base/pfx.XXXXXX") || fail "mktemp -d in $base failed"
    echo "$$" >"$dir/owner.pid"
    pfx_on_exit "_pfx_teardown $(printf '%q' "$dir")"
    "$PFX_BIN" start "$dir" "$@" || fail "pfx start $dir $* failed"
    # shellcheck source=/dev/null
    . "$dir/ports.env"
}

pfx_in() {
    local dir=${1:?usage: pfx_in DIR CMD...}; shift
    [ -f "$dir/ports.env" ] || fail "pfx_in: no instance in $dir"
    (
        # shellcheck source=/dev/null
        . "$dir/ports.env"
        "$@"
    )
}

pfx_free_port() {
    "$PFX_BIN" ports 1 || fail "pfx ports failed"
}

_pfx_need_env() {
    [ -n "${PFX_DIR:-}" ] || fail "${FUNCNAME[1]}: no instance (call pfx_setup first)"
}

# ------------------------------------------------------------------ diagnostics

pfx_diag() {
    _PFX_DIAG_DONE=1
    [ -n "${PFX_DIR:-}" ] || return 0
    {
        echo "---- maillog tail ($PFX_LOG)"
        tail -n 40 "$PFX_LOG" 2>/dev/null || echo "(no maillog)"
        echo "---- queue"
        postqueue -c "$PFX_CONF_DIR" -p 2>&1 | head -n 30 || true
        echo "----"
    } >&2
}

# _pfx_wait TIMEOUT DESCRIPTION STATUS_FN COMMAND...: poll COMMAND every 0.2 s; on timeout
# print diagnostics and fail, adding the output of STATUS_FN (if not "") to the message.
_pfx_wait() {
    local timeout=$1 what=$2 statusfn=$3; shift 3
    [[ $timeout =~ ^[0-9]+$ ]] || fail "bad timeout '$timeout' (whole seconds)"
    local deadline=$((SECONDS + timeout)) now=""
    while ! "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            [ -z "$statusfn" ] || now=" ($($statusfn))"
            pfx_diag
            fail "timed out after ${timeout}s waiting for $what$now"
        fi
        sleep 0.2
    done
}

# ------------------------------------------------------------------ sink files

# A sink file is created at MAIL FROM and written while the transaction runs; smtp-sink
# deletes it if the transaction is aborted. So a file is complete once no sink process has
# it open. List first, then look at the open files: a listed file that is not open is done.
pfx_sink_files() {
    _pfx_need_env
    local dir=${PFX_SINK_DIR:?} list pidf pid f
    local -a entries=("$dir"/*) procs=()
    local -A open=()
    [ -e "${entries[0]}" ] || return 0
    list=$(find "$dir" -maxdepth 1 -type f -printf '%T@ %p\n' 2>/dev/null | sort -n | cut -d' ' -f2-) || true
    [ -n "$list" ] || return 0
    for pidf in "$PFX_DIR"/run/sink-*.pid; do
        [ -f "$pidf" ] && read -r pid <"$pidf" && [ -d "/proc/$pid/fd" ] && procs+=("/proc/$pid/fd")
    done
    if [ ${#procs[@]} -gt 0 ]; then
        while IFS= read -r f; do
            [ -n "$f" ] && open[$f]=1
        done < <(find "${procs[@]}" -maxdepth 1 -lname "$dir/*" -printf '%l\n' 2>/dev/null || true)
    fi
    while IFS= read -r f; do
        [ -n "$f" ] && [ -z "${open[$f]:-}" ] && [ -f "$f" ] && printf '%s\n' "$f"
    done <<<"$list"
    return 0
}

pfx_sink_count() {
    local files
    files=$(pfx_sink_files)
    if [ -z "$files" ]; then echo 0; else wc -l <<<"$files"; fi
}

_pfx_sink_status() { echo "found $(pfx_sink_count)"; }

_pfx_sink_has() {
    local -a entries=("${PFX_SINK_DIR:?}"/*)
    [ -e "${entries[0]}" ] && [ ${#entries[@]} -ge "$1" ] || return 1   # cheap pre-check
    [ "$(pfx_sink_count)" -ge "$1" ]
}

pfx_wait_sink_count() {
    _pfx_need_env
    local n=${1:?usage: pfx_wait_sink_count N [TIMEOUT_S]} timeout=${2:-20}
    _pfx_wait "$timeout" "$n message file(s) in ${PFX_SINK_DIR}" _pfx_sink_status _pfx_sink_has "$n"
}

# ------------------------------------------------------------------ maildirs

pfx_maildir_files() {
    _pfx_need_env
    local box=${1:?usage: pfx_maildir_files BOX}
    find "$PFX_MAIL_DIR/$box/new" -maxdepth 1 -type f -printf '%T@ %p\n' 2>/dev/null \
        | sort -n | cut -d' ' -f2- || true
}

_pfx_maildir_status() { echo "found $(pfx_maildir_files "$_PFX_BOX" | grep -c . || true)"; }

_pfx_maildir_has() {
    local -a entries=("$PFX_MAIL_DIR/$1/new"/*)
    [ -e "${entries[0]}" ] && [ ${#entries[@]} -ge "$2" ]
}

pfx_wait_maildir() {
    _pfx_need_env
    local box=${1:?usage: pfx_wait_maildir BOX N [TIMEOUT_S]} n=${2:?usage: pfx_wait_maildir BOX N [TIMEOUT_S]}
    local timeout=${3:-20}
    _PFX_BOX=$box
    _pfx_wait "$timeout" "$n message(s) in $PFX_MAIL_DIR/$box/new" _pfx_maildir_status \
        _pfx_maildir_has "$box" "$n"
}

# ------------------------------------------------------------------ log and queue

pfx_log_has() {
    _pfx_need_env
    [ -f "$PFX_LOG" ] && grep -Eq -- "${1:?usage: pfx_log_has REGEX}" "$PFX_LOG"
}

pfx_wait_log() {
    _pfx_need_env
    local re=${1:?usage: pfx_wait_log REGEX [TIMEOUT_S]} timeout=${2:-20}
    _pfx_wait "$timeout" "maillog line matching /$re/" "" pfx_log_has "$re"
}

pfx_queue_empty() {
    _pfx_need_env
    local out
    out=$(postqueue -c "$PFX_CONF_DIR" -p 2>&1) || return 1
    grep -q '^Mail queue is empty' <<<"$out"
}

pfx_wait_queue_empty() {
    _pfx_need_env
    _pfx_wait "${1:-20}" "an empty queue" "" pfx_queue_empty
}

pfx_flush() {
    _pfx_need_env
    postqueue -c "$PFX_CONF_DIR" -f
}

# ------------------------------------------------------------------ sending

pfx_send() {
    _pfx_need_env
    local out rc=0
    out=$(swaks --server 127.0.0.1 --port "$PFX_PORT_IN" --timeout 20 "$@" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
        {
            echo "pfx_send: swaks failed (exit $rc): swaks $*"
            printf '%s\n' "$out"
        } >&2
    fi
    return "$rc"
}

# _pfx_smtp_reply FD: read one (multi-line) reply into _PFX_SMTP_REPLY (last line) and
# _PFX_SMTP_CODE, append all lines to _PFX_SMTP_LOG.
_pfx_smtp_reply() {
    local fd=$1 line
    _PFX_SMTP_CODE=""; _PFX_SMTP_REPLY=""
    while :; do
        if ! IFS= read -r -t 30 -u "$fd" line; then
            _PFX_SMTP_LOG+="<- (no reply: timeout or connection closed)"$'\n'
            return 1
        fi
        line=${line%$'\r'}
        _PFX_SMTP_LOG+="<- $line"$'\n'
        if [[ $line =~ ^([0-9]{3})\ (.*)$ || $line =~ ^([0-9]{3})$ ]]; then
            _PFX_SMTP_CODE=${BASH_REMATCH[1]}
            _PFX_SMTP_REPLY=$line
            return 0
        fi
        [[ $line =~ ^[0-9]{3}- ]] || { _PFX_SMTP_LOG+="<- (malformed reply)"$'\n'; return 1; }
    done
}

# _pfx_smtp_cmd FD EXPECTED_PREFIX COMMAND
_pfx_smtp_cmd() {
    local fd=$1 want=$2 cmd=$3
    _PFX_SMTP_LOG+="-> $cmd"$'\n'
    printf '%s\r\n' "$cmd" >&"$fd" || return 1
    _pfx_smtp_reply "$fd" || return 1
    [[ $_PFX_SMTP_CODE == "$want"* ]]
}

# the SMTP dialogue of pfx_smtp; uses pfx_smtp's locals (bash dynamic scoping)
_pfx_smtp_session() {
    local i line msg
    _pfx_smtp_reply "$fd" && [ "$_PFX_SMTP_CODE" = 220 ] || return 1
    _pfx_smtp_cmd "$fd" 250 "EHLO $helo" || return 1
    _pfx_smtp_cmd "$fd" 250 "MAIL FROM:<$from>${mail_params:+ $mail_params}" || return 1
    for i in "${!rcpts[@]}"; do
        _pfx_smtp_cmd "$fd" 25 "RCPT TO:<${rcpts[i]}>${rparams[i]:+ ${rparams[i]}}" || return 1
    done
    _pfx_smtp_cmd "$fd" 354 "DATA" || return 1
    if [ -n "$data_file" ]; then
        msg=$(cat "$data_file"; echo x); msg=${msg%x}
    else
        msg="Date: $(date -R)"$'\n'
        msg+="From: <$from>"$'\n'
        msg+="To: $(IFS=,; echo "${rcpts[*]}")"$'\n'
        msg+="Subject: $subject"$'\n'
        msg+="Message-ID: <pfx.$$.$RANDOM.$(date +%s%N)@buyer.example>"$'\n'
        for line in "${headers[@]}"; do msg+="$line"$'\n'; done
        msg+=$'\n'"$body"$'\n'
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        [[ $line == .* ]] && line=".$line"
        printf '%s\r\n' "$line"
    done <<<"${msg%$'\n'}" >&"$fd"
    _PFX_SMTP_LOG+="-> (message, $(wc -l <<<"$msg") lines)"$'\n'
    _pfx_smtp_cmd "$fd" 250 "." || return 1
    if [[ $_PFX_SMTP_REPLY =~ queued\ as\ ([0-9A-Za-z]+) ]]; then qid=${BASH_REMATCH[1]}; fi
    return 0
}

pfx_smtp() {
    _pfx_need_env
    local port=$PFX_PORT_IN helo=client.buyer.example from=unset mail_params=""
    local subject="pfx_smtp test" body="Test message from pfx_smtp." data_file=""
    local -a rcpts=() rparams=() headers=()
    while [ $# -gt 0 ]; do
        case $1 in
            --port) port=${2:?}; shift 2 ;;
            --reinject) port=$PFX_PORT_REINJECT; shift ;;
            --helo) helo=${2:?}; shift 2 ;;
            --from) from=$2; shift 2 ;;
            --mail-params) mail_params=$2; shift 2 ;;
            --to) rcpts+=("${2:?}"); rparams+=(""); shift 2 ;;
            --rcpt-params)
                [ ${#rcpts[@]} -gt 0 ] || fail "pfx_smtp: --rcpt-params must follow a --to"
                rparams[${#rparams[@]} - 1]=$2; shift 2 ;;
            --subject) subject=$2; shift 2 ;;
            --header) headers+=("$2"); shift 2 ;;
            --body) body=$2; shift 2 ;;
            --data-file) data_file=${2:?}; shift 2 ;;
            *) fail "pfx_smtp: unknown option '$1'" ;;
        esac
    done
    [ "$from" != unset ] || fail "pfx_smtp: --from is required"
    [ ${#rcpts[@]} -gt 0 ] || fail "pfx_smtp: at least one --to is required"
    [ -z "$data_file" ] || [ -r "$data_file" ] || fail "pfx_smtp: cannot read $data_file"

    local fd ok=1 qid=""
    _PFX_SMTP_LOG=""
    if ! exec {fd}<>"/dev/tcp/127.0.0.1/$port"; then
        echo "pfx_smtp: cannot connect to 127.0.0.1:$port" >&2
        return 1
    fi
    _pfx_smtp_session || ok=0
    _pfx_smtp_cmd "$fd" 221 "QUIT" >/dev/null 2>&1 || true
    exec {fd}>&-
    if [ $ok = 0 ]; then
        {
            echo "pfx_smtp: transaction to 127.0.0.1:$port failed; transcript:"
            printf '%s' "$_PFX_SMTP_LOG"
        } >&2
        return 1
    fi
    [ -z "$qid" ] || echo "$qid"
    return 0
}
