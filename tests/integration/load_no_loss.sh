#!/usr/bin/env bash
# Load without loss: 20 concurrent SMTP clients submit 2,000 registered messages with 1 to 3
# external recipients each, resending on 4xx as clients do; pli-milter is killed (SIGKILL) once
# in the middle and restarted. Afterwards every recipient has exactly one delivery, one `sent`
# and one `delivered` event, and at least one notice at the sink; nothing is lost or doubled.
#
# What may be doubled, and why: a milter killed after Postfix accepted a notice on the
# re-injection port but before its `sent` is recorded cannot know, on the client's retry,
# whether the notice left: it injects it again (never lose, may duplicate). The retry reuses
# the recorded delivery, so the second notice carries the same Message-ID (<DELIVERYID@domain>,
# a recipient's client can drop the copy), a link to the same delivery, and its success report
# records nothing more (one `delivered` per delivery). So the test tolerates extra notices only
# (a) when the milter was killed, (b) each a copy with the same Message-ID and recipient, and
# (c) at most as many as the recipients that 20 clients can have in flight (20 x 3).
#
# PLI_LOAD_MESSAGES (2000) and PLI_LOAD_KILL (1; 0: no kill, no copy tolerated) change the run.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK
N=${PLI_LOAD_MESSAGES:-2000}
KILL=${PLI_LOAD_KILL:-1}
CLIENTS=20


expected=0
for i in $(seq 1 "$N"); do expected=$((expected + 1 + i % 3)); done
start=$(date +%s)
echo 0 >"$W/progress"
/usr/bin/python3 "$PLI_HARNESS_DIR/smtp_load.py" "$N" "$PFX_PORT_IN" "$CLIENTS" "$W/progress" >"$W/clients.out" 2>&1 &
clients_pid=$!
pfx_on_exit "kill $clients_pid 2>/dev/null || true"
if [ "$KILL" = 1 ]; then
    # Half-way: SIGKILL, a second without a milter (clients get 4xx), then a new milter.
    for _ in $(seq 1 1200); do
        [ "$(cat "$W/progress")" -ge $((N / 2)) ] && break
        kill -0 "$clients_pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -9 "$PLI_MILTER_PID"
    wait "$PLI_MILTER_PID" 2>/dev/null || true
    echo "# milter killed after $(cat "$W/progress") accepted messages"
    sleep 1
    rm -f "$PLI_SOCKET"
    pli_start_milter
fi
wait "$clients_pid" || { cat "$W/clients.out" >&2; fail "a client gave up"; }
echo "# clients: $(cat "$W/clients.out"), $(($(date +%s) - start)) s"

pfx_wait_sink_count "$expected" 300
for _ in $(seq 1 600); do
    delivered=$($PLI list --status delivered --per-page 1 --json | pli_json 'j["total"]')
    [ "$delivered" -ge "$expected" ] && break
    sleep 0.5
done
echo "# all delivered after $(($(date +%s) - start)) s"
sleep 2
pfx_sink_files >"$W/sink.list"
got=$(wc -l <"$W/sink.list")
/usr/bin/python3 "$PLI_HARNESS_DIR/sink_notices.py" "$W/sink.list" "$expected" "$KILL" "$((CLIENTS * 3))" || fail "notices at the sink do not match"
echo "ok 1 - $N messages from $CLIENTS concurrent clients (milter killed: $KILL): every one of $expected recipients got its notice"

total=$($PLI list --per-page 1 --json | pli_json 'j["total"]')
[ "$total" -eq "$expected" ] || fail "$total deliveries recorded for $expected recipients"
[ "$delivered" -eq "$expected" ] || fail "$delivered of $expected deliveries delivered"
$PLI export --format json >"$W/export.json"
/usr/bin/python3 "$PLI_HARNESS_DIR/export_events.py" "$W/export.json" "$expected" || fail "events do not match"
echo "ok 2 - $expected deliveries, each with exactly one sent and one delivered event"
[ "$KILL" = 1 ] && { grep -c 'decision=registered_retry' "$W/milter.log" | sed 's/^/# registered_retry lines: /'; }
echo "# total $(($(date +%s) - start)) s"
