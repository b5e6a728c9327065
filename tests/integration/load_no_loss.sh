#!/usr/bin/env bash
# Load without loss: 20 concurrent SMTP clients submit 300 registered messages with 1 to 3
# external recipients each (resending on 4xx, as clients do); afterwards every recipient got
# exactly one notice, and every delivery has its `sent` and its `delivered`.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK
N=${PLI_LOAD_MESSAGES:-300}

cat >"$W/client.sh" <<'SH'
#!/usr/bin/env bash
# client.sh I PORT: message I with 1 + I % 3 recipients; resends on a temporary failure.
i=$1 port=$2
to=""
for k in $(seq 1 $((1 + i % 3))); do to+="${to:+,}l${i}r${k}@remote.example"; done
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    out=$(swaks --server 127.0.0.1 --port "$port" --from alice@buyer.example --to "$to" \
        --header "Subject: Charge $i" --header "Message-ID: <load-$i@buyer.example>" \
        --body "Message de charge numéro $i." 2>&1) && exit 0
    echo "$out" | grep -qE '<\*\* +4[0-9][0-9] ' || { echo "message $i refused: $(echo "$out" | grep '<\*\*')" >&2; exit 1; }
    sleep 1
done
echo "message $i: still deferred after 10 attempts" >&2
exit 1
SH
chmod +x "$W/client.sh"
expected=0
for i in $(seq 1 "$N"); do expected=$((expected + 1 + i % 3)); done
seq 1 "$N" | xargs -P 20 -I{} "$W/client.sh" {} "$PFX_PORT_IN" || fail "a client gave up"
pfx_wait_sink_count "$expected" 180
sleep 2
got=$(pfx_sink_count)
[ "$got" -eq "$expected" ] || fail "$got notices at the sink for $expected recipients"
distinct=$(cat $(pfx_sink_files) | grep -h '^X-Rcpt-Args:' | awk '{print $2}' | sort -u | wc -l)
[ "$distinct" -eq "$expected" ] || fail "$distinct distinct recipients among $got notices"
echo "ok 1 - $N messages from 20 concurrent clients: $expected notices, one per recipient"

for _ in $(seq 1 300); do
    delivered=$($PLI list --status delivered --per-page 1 --json | pli_json 'j["total"]')
    [ "$delivered" -eq "$expected" ] && break
    sleep 0.5
done
total=$($PLI list --per-page 1 --json | pli_json 'j["total"]')
[ "$total" -eq "$expected" ] || fail "$total deliveries recorded for $expected recipients"
[ "$delivered" -eq "$expected" ] || fail "$delivered of $expected deliveries delivered"
$PLI export --format json >"$W/export.json"
/usr/bin/python3 - "$W/export.json" "$expected" <<'PY' || fail "events do not match"
import json, sys
data = json.load(open(sys.argv[1]))
items = data["items"] if isinstance(data, dict) and "items" in data else data
sent = delivered = 0
for d in items:
    kinds = [e["kind"] for e in d.get("events", [])]
    assert kinds.count("sent") == 1, (d.get("id"), kinds)
    assert kinds.count("delivered") == 1, (d.get("id"), kinds)
    sent += 1; delivered += 1
assert sent == int(sys.argv[2]), (sent, sys.argv[2])
PY
echo "ok 2 - every delivery has exactly one sent and one delivered event"
