#!/usr/bin/env bash
# Nothing lost: with the re-injection port closed the client gets 4xx and no `sent` is
# recorded, and its retry later delivers exactly once; a milter killed in the middle of a
# message gives the client 4xx (milter_default_action = tempfail), never a silent accept.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

restart_milter() {
    kill "$PLI_MILTER_PID" 2>/dev/null || true
    wait "$PLI_MILTER_PID" 2>/dev/null || true
    rm -f "$PLI_SOCKET"
    pli_start_milter
}

# 1. The re-injection listener is unreachable.
closed=$(pfx_free_port)
sed -i "s|^reinject: .*|reinject: { host: 127.0.0.1, port: $closed }|" "$PLI_CONFIG"
restart_milter
out=$(swaks --server 127.0.0.1 --port "$PFX_PORT_IN" --from alice@buyer.example --to hana@remote.example \
    --header "Subject: Avis" --header "Message-Id: <fail-1@buyer.example>" --body "Corps" 2>&1) && \
    fail "the client was not refused: $out"
echo "$out" | qgrep -E '<\*\* +451 4\.3\.0 ' || fail "expected 451 4.3.0 at end of data: $(echo "$out" | grep '<\*\*')"
grep -q "decision=tempfail_reinject_unreachable" "$W/milter.log" || fail "no tempfail_reinject_unreachable log line"
n=$($PLI show fail-1@buyer.example --json | pli_json 'sum(1 for d in j["deliveries"] for e in d["events"] if e["kind"]=="sent")')
[ "$n" = 0 ] || fail "a sent event was recorded although nothing was handed over"
postqueue -c "$PFX_CONF_DIR" -p | qgrep "hana@remote.example" && fail "the refused message is in Postfix's queue"
echo "ok 1 - re-injection port closed: 451 to the client, no sent event, nothing queued"

# The client retries once the listener is back: one notice, one sent event, same delivery.
# (Message-Id as swaks spells it replaces its own: the resend is the same mail.)
did=$($PLI show fail-1@buyer.example --json | pli_json 'j["deliveries"][0]["id"]')
sed -i "s|^reinject: .*|reinject: { host: 127.0.0.1, port: $PFX_PORT_REINJECT }|" "$PLI_CONFIG"
restart_milter
pfx_send --from alice@buyer.example --to hana@remote.example \
    --header "Subject: Avis" --header "Message-Id: <fail-1@buyer.example>" --body "Corps"
pfx_wait_sink_count 1 30
sleep 1
[ "$(pfx_sink_count)" -eq 1 ] || fail "expected one notice after the retry"
json=$($PLI show fail-1@buyer.example --json)
[ "$(echo "$json" | pli_json 'j["deliveries"][0]["id"]')" = "$did" ] || fail "the retry made a new delivery"
[ "$(echo "$json" | pli_json 'len(j["deliveries"])')" = 1 ] || fail "more than one delivery"
link=$(pli_notice_link "$(pfx_sink_files | head -n 1)")
curl -fsS "$link" | qgrep "Accéder au contenu" || fail "the retried notice's link does not work"
echo "ok 2 - the client's retry delivers exactly once, with a working link"

# 2. The milter dies in the middle of a message.
exec 3<>"/dev/tcp/127.0.0.1/$PFX_PORT_IN"
say() { printf '%s\r\n' "$1" >&3; }
reply() { local l; while IFS= read -r -t 20 l <&3; do l=${l%$'\r'}; echo "$l"; [[ $l =~ ^[0-9]{3}\  ]] && return 0; done; return 1; }
reply >/dev/null
say "EHLO client.buyer.example"; reply >/dev/null
say "MAIL FROM:<alice@buyer.example>"; reply | qgrep '^250' || fail "MAIL refused"
say "RCPT TO:<ivan@remote.example>"; reply | qgrep '^250' || fail "RCPT refused"
say "DATA"; reply | qgrep '^354' || fail "DATA refused"
say "Subject: killed"; say "Message-ID: <killed-1@buyer.example>"; say ""
for i in $(seq 1 200); do say "line $i of a message whose milter dies"; done
kill -9 "$PLI_MILTER_PID"; wait "$PLI_MILTER_PID" 2>/dev/null || true
for i in $(seq 1 200); do say "more $i"; done
say "."
final=$(reply)
say "QUIT"; exec 3>&-
[[ $final =~ ^4[0-9][0-9] ]] || fail "after the milter died the client got: $final"
sleep 1
[ "$(pfx_sink_count)" -eq 1 ] || fail "something was delivered after the milter died"
postqueue -c "$PFX_CONF_DIR" -p | qgrep "ivan@remote.example" && fail "the message was queued"
echo "ok 3 - milter killed mid-message: the client got '$final', nothing queued or delivered"
restart_milter
