#!/usr/bin/env bash
# Faults around the re-injection listener and pli-linkd, with the real Postfix and daemons:
# 1. Postfix's re-injection listener goes away (its master.cf entry commented out, reload):
#    buyers' mail gets 451 4.3.0, no `sent`, nothing queued; once it is back (reload) the
#    clients' retries are registered, each recipient gets exactly one notice, one `sent`.
# 2. pli-linkd is killed (SIGKILL) while a reply is being uploaded: no reply and no `reply`
#    event are recorded; after a restart the recipient uploads again and it is recorded once.
# 3. and 4. The buyer's read notification (pli-linkd) and failure notification (pli-milter),
#    waiting for the re-injection listener, survive a SIGKILL of their daemon (the outbox is
#    in the store) and leave exactly once after the restart.
# 5. pli-milter's re-injection session is kept between messages and replaced once closed.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
# Short outbox delays: a notification refused once is tried again after 3 s (then 12 s...).
pli_setup "notify: { retry_first_seconds: 3, poll_seconds: 1 }"
W=$PLI_WORK
listening() { ss -ltnH "sport = :$PFX_PORT_REINJECT" | qgrep .; }
not_listening() { ! listening; }

cp "$PFX_CONF_DIR/master.cf" "$W/master.cf.orig"
postconf -c "$PFX_CONF_DIR" -M# "127.0.0.1:$PFX_PORT_REINJECT/inet"
grep -q "^#127.0.0.1:$PFX_PORT_REINJECT" "$PFX_CONF_DIR/master.cf" || fail "could not comment out the listener"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to close" "" not_listening

send() { # send I: message I to down$I@remote.example; the swaks output in $W/down-I.out
    swaks --server 127.0.0.1 --port "$PFX_PORT_IN" --from alice@buyer.example \
        --to "down$1@remote.example,down$1b@remote.example" --header "Subject: Hors service $1" \
        --header "Message-ID: <down-$1@buyer.example>" --body "Message $1" >"$W/down-$1.out" 2>&1
}
for i in 1 2 3; do
    send "$i" && fail "message $i was accepted while the re-injection listener was down"
    grep -qE '<\*\* +451 4\.3\.0 ' "$W/down-$i.out" || fail "message $i: $(grep '<\*\*' "$W/down-$i.out")"
done
grep -q 'decision=tempfail_reinject_unreachable' "$W/milter.log" || fail "no tempfail_reinject_unreachable line"
n=$($PLI export --format json | pli_json 'sum(1 for d in (j["items"] if isinstance(j, dict) else j) for e in d["events"] if e["kind"]=="sent")')
[ "$n" = 0 ] || fail "$n sent events while the listener was down"
postqueue -c "$PFX_CONF_DIR" -p | qgrep "down1@remote.example" && fail "a refused message is in the queue"
echo "ok 1 - re-injection listener down: 451 4.3.0 for each message, no sent event, nothing queued"

cp "$W/master.cf.orig" "$PFX_CONF_DIR/master.cf"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to come back" "" listening
for i in 1 2 3; do send "$i" || fail "retry $i refused: $(grep '<\*\*' "$W/down-$i.out")"; done
pfx_wait_sink_count 6 30
sleep 1
[ "$(pfx_sink_count)" = 6 ] || fail "$(pfx_sink_count) notices for 6 recipients"
for i in 1 2 3; do
    $PLI show "down-$i@buyer.example" --json | pli_json '[sum(1 for e in d["events"] if e["kind"]=="sent") for d in j["deliveries"]]' |
        grep -qx '\[1, 1\]' || fail "message $i: not one sent per delivery"
done
echo "ok 2 - listener back: the retries are registered, 6 notices, one sent per delivery"

# 2. A reply upload cut by SIGKILL.
pfx_send --from alice@buyer.example --to rep@remote.example --header "Subject: [REPONSE] Question" \
    --header "Message-ID: <upload-1@buyer.example>" --body "Merci de répondre."
pfx_wait_sink_count 7 30
link=$(pli_notice_link "$(grep -l 'rep@remote.example' $(pfx_sink_files) | head -n 1)")
curl -fsS -o /dev/null -X POST "$link" || fail "read failed"
head -c 3000000 /dev/urandom >"$W/big.bin"
curl -sS -o /dev/null --limit-rate 300k -F text="Ma réponse" -F files=@"$W/big.bin" "$link/reply" \
    >"$W/upload.out" 2>&1 &
upload=$!
sleep 3
kill -0 "$upload" 2>/dev/null || fail "the upload finished before linkd was killed"
kill -9 "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
wait "$upload" && fail "the cut upload reported success"
"$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$W/linkd.log" 2>&1 &
PLI_LINKD_PID=$!
pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
_pfx_wait 20 "pli-linkd to listen again" "" curl -fs -o /dev/null "$PLI_URL/healthz"
replies() { $PLI show upload-1@buyer.example --json | pli_json 'sum(1 for e in j["deliveries"][0]["events"] if e["kind"]=="reply")'; }
[ "$(replies)" = 0 ] || fail "a cut upload recorded a reply"
echo "ok 3 - linkd killed during a 3 MB reply upload: no reply recorded"

code=$(curl -sS -o "$W/sent.html" -w '%{http_code}' -F text="Ma réponse" -F files=@"$W/big.bin" "$link/reply")
[ "$code" = 200 ] || fail "the second upload answered $code"
[ "$(replies)" = 1 ] || fail "not exactly one reply after the second upload"
$PLI show upload-1@buyer.example --json |
    pli_json '[e["detail"].get("attachments") for e in j["deliveries"][0]["events"] if e["kind"]=="reply"]' |
    grep -qx "\['1'\]" || fail "the reply event does not name its one attachment"
# the buyer's reply notice (to alice@buyer.example, delivered locally), queued once
reply_notice() { grep -q 'event=reply_notice .*queued as' "$W/linkd.log"; }
_pfx_wait 30 "the buyer's reply notice" "" reply_notice
[ "$(grep -c 'event=reply_notice' "$W/linkd.log")" = 1 ] || fail "not one reply notice"
echo "ok 4 - the recipient uploads again: one reply with its file, the buyer notified"

# 3. The buyer's read notification outlives pli-linkd: the listener is down when the
#    recipient reads, linkd is killed while the notification waits for its retry, the
#    listener comes back, linkd restarts: the notification leaves at once, exactly once.
pfx_send --from alice@buyer.example --to later@remote.example --header "Subject: Lu pendant la panne" \
    --header "Message-ID: <outage-1@buyer.example>" --body "À lire."
pfx_wait_sink_count 8 30
link=$(pli_notice_link "$(grep -l 'later@remote.example' $(pfx_sink_files) | head -n 1)")
pfx_wait_maildir catchall 1 30 # the reply notice of part 2
before=$(pfx_maildir_files catchall | grep -c .)
postconf -c "$PFX_CONF_DIR" -M# "127.0.0.1:$PFX_PORT_REINJECT/inet"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to close" "" not_listening
curl -fsS -o /dev/null -X POST -d open=1 "$link" || fail "the read failed while the listener was down"
waiting() { grep -q 'outbox=retry_later .*read_notification' "$W/linkd.log"; }
_pfx_wait 30 "the read notification to wait for a retry" "" waiting
# pli doctor tells the admin a notification waits in the store's outbox.
doctor_outbox() {
    $PLI doctor --postfix-config "$PFX_CONF_DIR" --json |
        pli_json '[c for c in j["checks"] if "notification" in c["check"]][0]["check"]' || true
}
doctor_outbox | qgrep "^1 notification to buyers waits for the re-injection listener (the oldest for 0 min, in the store's outbox)" ||
    fail "pli doctor does not report the waiting notification: $(doctor_outbox)"
kill -9 "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
cp "$W/master.cf.orig" "$PFX_CONF_DIR/master.cf"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to come back" "" listening
"$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$W/linkd.log" 2>&1 &
PLI_LINKD_PID=$!
pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
pfx_wait_maildir catchall $((before + 1)) 60
n=$(ls -t "$PFX_MAIL_DIR/catchall/new"/* | head -n 1)
pli_mail_part "$n" text/plain | qgrep "later@remote.example" || fail "the notification does not name the reader"
sleep 2
[ "$(pfx_maildir_files catchall | grep -c .)" = $((before + 1)) ] || fail "the notification arrived twice"
grep -q "^Message-ID: <job\.linkd\." "$n" || fail "the notification's Message-ID is not its job's: $(grep -i '^Message-ID' "$n")"
doctor_outbox | qgrep "^no notification" || fail "the sent notification still waits: $(doctor_outbox)"
echo "ok 5 - a read notification waiting for the listener survives pli-linkd's SIGKILL and leaves once after the restart"

# 4. The same for pli-milter's failure notification: the notice to hardfail@ waits in the
#    queue (defer_transports) while the listener goes down; then Postfix delivers it, the
#    remote refuses it (550), the milter records `failed` from Postfix's report and its
#    notification to the buyer waits; pli-milter is killed, the listener comes back, the
#    milter restarts: the notification leaves, once.
postconf -c "$PFX_CONF_DIR" -e "defer_transports = smtp pli-smtp"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
pfx_send --from alice@buyer.example --to hardfail@remote.example --header "Subject: Refusé pendant la panne" \
    --header "Message-ID: <outage-2@buyer.example>" --body "Sera refusé."
before=$(pfx_maildir_files catchall | grep -c .)
postconf -c "$PFX_CONF_DIR" -M# "127.0.0.1:$PFX_PORT_REINJECT/inet"
postconf -c "$PFX_CONF_DIR" -e "defer_transports ="
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to close" "" not_listening
postqueue -c "$PFX_CONF_DIR" -f
status() { $PLI show outage-2@buyer.example --json | pli_json 'j["deliveries"][0]["status"]'; }
failed() { [ "$(status)" = not_delivered ]; }
_pfx_wait 60 "the failure to be recorded" "" failed
milter_waits() { grep -q 'outbox=retry_later .*failure_notification' "$W/milter.log"; }
_pfx_wait 30 "the failure notification to wait for a retry" "" milter_waits
doctor_outbox | qgrep "^1 notification to buyers waits" || fail "pli doctor: $(doctor_outbox)"
kill -9 "$PLI_MILTER_PID"; wait "$PLI_MILTER_PID" 2>/dev/null || true
cp "$W/master.cf.orig" "$PFX_CONF_DIR/master.cf"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to come back" "" listening
rm -f "$PLI_SOCKET"
pli_start_milter
pfx_wait_maildir catchall $((before + 1)) 60
n=$(ls -t "$PFX_MAIL_DIR/catchall/new"/* | head -n 1)
pli_mail_part "$n" text/plain | qgrep "n'a pas pu être délivré à hardfail@remote.example" ||
    fail "not the failure notification: $(pli_mail_part "$n" text/plain)"
sleep 2
[ "$(pfx_maildir_files catchall | grep -c .)" = $((before + 1)) ] || fail "the failure notification arrived twice"
doctor_outbox | qgrep "^no notification" || fail "the sent failure notification still waits: $(doctor_outbox)"
echo "ok 6 - a failure notification waiting for the listener survives pli-milter's SIGKILL and leaves once after the restart"

# 5. pli-milter keeps its re-injection session open between messages; when Postfix closes it
#    meanwhile (here its smtpd is stopped), the next message goes on a new session: no 451.
reinject_sessions() { grep -c 'pfx/reinject/smtpd\[[0-9]*\]: connect from' "$PFX_LOG" || true; }
sessions_before=$(reinject_sessions)
tempfails() { grep -c 'decision=tempfail' "$W/milter.log" || true; }
tempfails_before=$(tempfails)
sink_before=$(pfx_sink_count)
for i in 1 2; do
    pfx_send --from alice@buyer.example --to "kept$i@remote.example" --header "Subject: Session $i" \
        --header "Message-ID: <kept-$i@buyer.example>" --body "Message $i"
done
pfx_wait_sink_count $((sink_before + 2)) 30
sleep 1 # postlogd writes asynchronously
[ "$(reinject_sessions)" = $((sessions_before + 1)) ] ||
    fail "two messages in a row opened $(($(reinject_sessions) - sessions_before)) re-injection sessions, not 1"
pkill -f "smtpd -n 127.0.0.1:$PFX_PORT_REINJECT " || fail "no smtpd of the re-injection listener to stop"
sleep 1
pfx_send --from alice@buyer.example --to kept3@remote.example --header "Subject: Session 3" \
    --header "Message-ID: <kept-3@buyer.example>" --body "Message 3" ||
    fail "the message after the closed session was refused"
pfx_wait_sink_count $((sink_before + 3)) 30
for i in 1 2 3; do
    $PLI show "kept-$i@buyer.example" --json | pli_json '[sum(1 for e in d["events"] if e["kind"]=="sent") for d in j["deliveries"]]' |
        grep -x '\[1\]' >/dev/null || fail "message kept-$i: not one sent"
done
sleep 1
[ "$(reinject_sessions)" = $((sessions_before + 2)) ] || fail "the closed session was not replaced by one new session"
[ "$(tempfails)" = "$tempfails_before" ] || fail "a tempfail: $(grep 'decision=tempfail' "$W/milter.log" | tail -n 1)"
echo "ok 7 - the re-injection session is kept between messages, and replaced when Postfix closes it"
