#!/usr/bin/env bash
# The transactional outbox on one PostgreSQL store shared by two pli-linkd: a notice is read
# through replica A while the re-injection listener accepts connections but never answers,
# so that A holds the buyer's read notification claimed (leased) when it is killed -9;
# replica B sends it once the lease has passed, and the buyer gets exactly one notification.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PLI_TEST_STORE=postgresql
# A short lease and poll (the defaults are 5 min and 5 s).
pli_setup "notify: { lease_seconds: 8, poll_seconds: 1, retry_first_seconds: 2 }"
W=$PLI_WORK
A=$PLI_URL
listening() { ss -ltnH "sport = :$PFX_PORT_REINJECT" | qgrep .; }
not_listening() { ! listening; }

# Replica B: the same configuration on another port.
pli_linkd_replica
B=$PLI_REPLICA_URL

link=$(pli_first_link "Lu sur A" "outbox-1@buyer.example" "À lire.")
[ -n "$link" ] || fail "no link in the notice"
case "$link" in "$A"/*) ;; *) fail "the link $link is not on $A" ;; esac

# The re-injection listener becomes a hole: it accepts, and never answers.
cp "$PFX_CONF_DIR/master.cf" "$W/master.cf.orig"
postconf -c "$PFX_CONF_DIR" -M# "127.0.0.1:$PFX_PORT_REINJECT/inet"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to close" "" not_listening
/usr/bin/python3 - "$PFX_PORT_REINJECT" "$W/hole.log" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    with open(sys.argv[2], "a") as f:
        f.write("connect\n")
PY
HOLE=$!
pfx_on_exit "kill $HOLE 2>/dev/null; wait $HOLE 2>/dev/null || true"
_pfx_wait 20 "the hole to listen" "" listening

before=$(pfx_maildir_files catchall | grep -c . || true)
curl -fsS -o /dev/null -X POST -d open=1 "$link" || fail "the read through A failed"
# A claimed the notification and is sending it, into the hole.
hole_connected() { [ -s "$W/hole.log" ]; }
_pfx_wait 30 "replica A to connect to the listener" "" hole_connected
claimed_at=$(date +%s)
kill -9 "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
grep -q 'notify=read .*outcome=' "$W/linkd.log" && fail "A finished the notification before it was killed"
kill "$HOLE"; wait "$HOLE" 2>/dev/null || true
cp "$W/master.cf.orig" "$PFX_CONF_DIR/master.cf"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to come back" "" listening
echo "ok 1 - replica A killed -9 while it holds the read notification claimed"

# B sends it, once A's lease has passed.
sent_by_b() { grep -q 'notify=read .*outcome=sent' "$W/linkd-b.log"; }
_pfx_wait 60 "replica B to send the read notification" "" sent_by_b
[ $(($(date +%s) - claimed_at)) -ge 5 ] || fail "B sent it before A's lease could have passed"
pfx_wait_maildir catchall $((before + 1)) 30
n=$(ls -t "$PFX_MAIL_DIR/catchall/new"/* | head -n 1)
grep -qi "^To: <alice@buyer.example>" "$n" || fail "not the buyer's notification"
grep -q "^X-Pli-Notification: read" "$n" || fail "not a read notification"
grep -q "^Message-ID: <job\.linkd\." "$n" || fail "its Message-ID is not its job's"
sleep 3
[ "$(pfx_maildir_files catchall | grep -c .)" = $((before + 1)) ] ||
    fail "not exactly one notification: $(pfx_maildir_files catchall | grep -c .) mails for $((before + 1))"
doctor_outbox() {
    $PLI doctor --postfix-config "$PFX_CONF_DIR" --json |
        pli_json '[c["check"] for c in j["checks"] if "notification" in c["check"]]' || true
}
doctor_outbox | qgrep "^\['no notification" || fail "a job is left in the store's outbox: $(doctor_outbox)"
echo "ok 2 - replica B sends the read notification after the lease: exactly one arrives"
