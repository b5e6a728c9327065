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

# The clients: Python's smtplib, one connection per client thread, reconnecting after a 4xx
# or a dropped connection, as mail clients do. Prints one line per message once accepted.
cat >"$W/clients.py" <<'PY'
import smtplib, sys, threading, time
n, port, clients, progress = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
state = {"next": 1, "done": 0, "retries": 0, "failed": []}

def message(i):
    to = ["l%dr%d@remote.example" % (i, k) for k in range(1, 2 + i % 3)]
    body = ("From: alice@buyer.example\r\nTo: %s\r\nSubject: Charge %d\r\n"
            "Message-ID: <load-%d@buyer.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Message de charge numéro %d.\r\n" % (", ".join(to), i, i, i)).encode()
    return to, body

def client():
    conn = None
    while True:
        with lock:
            i = state["next"]; state["next"] += 1
        if i > n:
            break
        to, body = message(i)
        for attempt in range(120):
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=60)
                    conn.ehlo("client.buyer.example")
                conn.sendmail("alice@buyer.example", to, body)
                break
            except smtplib.SMTPRecipientsRefused as e:
                codes = [c for c, _ in e.recipients.values()]
                if any(c >= 500 for c in codes):
                    state["failed"].append((i, str(e))); return
            except smtplib.SMTPResponseException as e:
                if e.smtp_code >= 500:
                    with lock: state["failed"].append((i, "%d %s" % (e.smtp_code, e.smtp_error)))
                    return
            except (smtplib.SMTPServerDisconnected, OSError):
                pass
            with lock: state["retries"] += 1
            try:
                conn and conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.5)
        else:
            with lock: state["failed"].append((i, "still deferred after 120 attempts"))
            return
        with lock:
            state["done"] += 1
            if state["done"] % 20 == 0:
                with open(progress, "w") as f: f.write("%d\n" % state["done"])
    if conn is not None:
        try: conn.quit()
        except Exception: pass

threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
with open(progress, "w") as f: f.write("%d\n" % state["done"])
print("accepted %d, resent %d times" % (state["done"], state["retries"]))
for i, why in state["failed"]:
    print("message %d: %s" % (i, why), file=sys.stderr)
sys.exit(1 if state["failed"] or state["done"] != n else 0)
PY

expected=0
for i in $(seq 1 "$N"); do expected=$((expected + 1 + i % 3)); done
start=$(date +%s)
echo 0 >"$W/progress"
/usr/bin/python3 "$W/clients.py" "$N" "$PFX_PORT_IN" "$CLIENTS" "$W/progress" >"$W/clients.out" 2>&1 &
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
/usr/bin/python3 - "$W/sink.list" "$expected" "$KILL" "$((CLIENTS * 3))" <<'PY' || fail "notices at the sink do not match"
import collections, email, sys
from email import policy
files, expected, kill, bound = open(sys.argv[1]).read().split(), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
ids = collections.defaultdict(set)
count = collections.Counter()
for f in files:
    raw = open(f, "rb").read()
    rcpt = [l.split()[1] for l in raw.decode("utf-8", "replace").splitlines() if l.startswith("X-Rcpt-Args:")]
    msg = email.message_from_bytes(raw, policy=policy.default)
    for r in rcpt:
        count[r] += 1
        ids[r].add(msg["Message-ID"])
assert len(count) == expected, "%d recipients got a notice, %d expected" % (len(count), expected)
copies = sum(count.values()) - expected
for r, s in ids.items():
    assert len(s) == 1, "%s got notices with different Message-IDs %s" % (r, s)
assert copies == 0 or (kill and copies <= bound), "%d copies (kill=%s, bound %d)" % (copies, kill, bound)
print("# %d notices for %d recipients, %d copies of a notice (same Message-ID)" % (sum(count.values()), expected, copies))
PY
echo "ok 1 - $N messages from $CLIENTS concurrent clients (milter killed: $KILL): every one of $expected recipients got its notice"

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
echo "ok 2 - $expected deliveries, each with exactly one sent and one delivered event"
[ "$KILL" = 1 ] && { grep -c 'decision=registered_retry' "$W/milter.log" | sed 's/^/# registered_retry lines: /'; }
echo "# total $(($(date +%s) - start)) s"
