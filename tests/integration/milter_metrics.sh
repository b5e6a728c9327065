#!/usr/bin/env bash
# pli-milter's decisions counted and served on its loopback /metrics (milter.metrics_listen),
# read after mail sent through Postfix: a registered mail, a non-buyer's mail and a report
# address pli never issued. Then the same milter daemonised (no --foreground): the store is
# opened in the child (LMDB's environment is guarded against use in another process than
# the one that opened it), so that it still registers mail and serves its counters.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
METRICS_PORT=$(pfx_free_port)
PLI_MILTER_YAML="metrics_listen: \"127.0.0.1:$METRICS_PORT\""
pli_setup
W=$PLI_WORK
M=http://127.0.0.1:$METRICS_PORT/metrics

counter() { # counter OUTCOME: its value in /metrics
    curl -fsS "$M" | sed -n "s/^pli_milter_decisions_total{outcome=\"$1\"} \([0-9]*\)$/\1/p"
}
wait_counter() { # wait_counter OUTCOME VALUE
    for _ in $(seq 1 100); do
        [ "$(counter "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1 is $(counter "$1"), not $2"
}

body=$(curl -fsS -D "$W/headers" "$M")
grep -qi '^Content-Type: text/plain; version=0.0.4' "$W/headers" || fail "not Prometheus text: $(cat "$W/headers")"
echo "$body" | qgrep -x '# TYPE pli_milter_decisions_total counter' || fail "no TYPE line"
[ "$(counter registered)" = 0 ] || fail "registered before any mail"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/")" = 404 ] || fail "/ is not 404"
echo "ok 1 - /metrics: every outcome at 0, Prometheus text"

pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: [AR] Résultat" --header "Message-ID: <metrics-1@buyer.example>" \
    --body "Madame, Monsieur,"
pfx_wait_sink_count 1 30
wait_counter registered 1
pfx_send --from someone@elsewhere.example --to erin@remote.example \
    --header "Subject: hello" --body "not registered"
pfx_wait_sink_count 2 30
wait_counter accept_untouched 1
out=$(pfx_smtp --from "" --to "pli-bounce+dnosuchdelivery@buyer.example" \
    --subject report 2>&1 || true)
echo "$out" | qgrep "550 5.1.1" || fail "unknown report address not refused: $out"
wait_counter reject_unknown_delivery 1
grep -q 'decision=registered ' "$W/milter.log" || fail "no registered log line"
echo "ok 2 - registered, accept_untouched, reject_unknown_delivery counted through Postfix"

# The same milter daemonised.
kill "$PLI_MILTER_PID"
wait "$PLI_MILTER_PID" 2>/dev/null || true
rm -f "$PLI_SOCKET"
"$PLI_BIN_DIR/milter/pli-milter" --config "$PLI_CONFIG" || fail "pli-milter did not daemonise"
_pfx_wait 20 "the daemon's socket" "" test -S "$PLI_SOCKET"
daemon_pid=$(ss -xlpH "src $PLI_SOCKET" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$daemon_pid" ] || fail "no process listens on $PLI_SOCKET"
pfx_on_exit "kill $daemon_pid 2>/dev/null || true"
pfx_send --from alice@buyer.example --to carol@remote.example \
    --header "Subject: [AR] Résultat 2" --header "Message-ID: <metrics-2@buyer.example>" \
    --body "Madame, Monsieur,"
pfx_wait_sink_count 3 30
wait_counter registered 1 # a new process: its own counters
$PLI show metrics-2@buyer.example --json | pli_json 'j["deliveries"][0]["recipient"]' |
    qgrep -x carol@remote.example || fail "the daemon did not register the mail"
kill "$daemon_pid"
for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "the daemon did not stop"
echo "ok 3 - daemonised: the store opened in the child, mail registered, counters served"
