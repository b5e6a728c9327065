#!/usr/bin/env bash
# Guards against the ~40 ms per-message stalls of milters over TCP (POSTFIX-NOTES §6):
# one SMTP session sends messages back to back with the milter on inet:, then on a unix
# socket (no Nagle there). Pass-through and registered mail over TCP must cost about what
# they cost over the unix socket. A bound, not a benchmark.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PLI_MILTER_INET=1
pli_setup
command -v smtp-source >/dev/null || skip "smtp-source is not installed"

per_message_ms() { # per_message_ms COUNT SMTP-SOURCE-ARGS...: average wall time per message
    local n=$1; shift
    local t0 t1
    t0=$(date +%s%N)
    smtp-source -s 1 -m "$n" "$@" "127.0.0.1:$PFX_PORT_IN" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 / n ))
}
measure() {
    smtp-source -s 1 -m 3 -f someone@elsewhere.example -t w@remote.example "127.0.0.1:$PFX_PORT_IN" >/dev/null
    pass=$(per_message_ms 40 -f someone@elsewhere.example -t x@remote.example)
    reg=$(per_message_ms 20 -f alice@buyer.example -t "$1")
}

measure tcp@remote.example
pass_tcp=$pass reg_tcp=$reg
# The same with the milter on a unix socket.
pfx_start_args=(--milter "unix:$PLI_SOCKET" --non-smtpd-milter "unix:$PLI_SOCKET" --bounce-address pli-bounce@buyer.example)
sed -i "s|^milter: .*|milter: { socket: \"unix:$PLI_SOCKET\" }|" "$PLI_CONFIG"
kill "$PLI_MILTER_PID"; wait "$PLI_MILTER_PID" 2>/dev/null || true
PLI_MILTER_PORT=
"$PFX_BIN" start "$PFX_DIR" "${pfx_start_args[@]}" >/dev/null
pli_start_milter
measure unix@remote.example
pass_unix=$pass reg_unix=$reg
echo "ms per message, one session — pass-through: tcp $pass_tcp, unix $pass_unix; registered: tcp $reg_tcp, unix $reg_unix"
# Relative bounds (a stall adds ~40 ms per message), so that a loaded machine, which slows
# both sockets alike, does not fail the guard.
[ "$pass_tcp" -lt $((pass_unix + 25)) ] || fail "pass-through over TCP costs $pass_tcp ms vs $pass_unix over unix: a stall"
[ "$reg_tcp" -lt $((reg_unix + 25)) ] || fail "registered over TCP costs $reg_tcp ms vs $reg_unix over unix: a stall"
for r in tcp unix; do
    n=$($PLI list --rcpt "$r@remote.example" --json | pli_json 'j["total"]')
    [ "$n" -ge 1 ] || fail "no registered delivery to $r@remote.example recorded"
done
echo "ok 1 - no per-message stall over TCP"
