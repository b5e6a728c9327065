#!/usr/bin/env bash
# A recipient pli truly cannot handle gets a permanent, recorded and logged outcome, never
# a 4xx loop: here an internationalised address (RFC 6531) when the re-injection listener
# does not offer SMTPUTF8. The client's mail is accepted (250); the delivery is Non délivré
# with status 5.6.7, the milter logs decision=recipient_refused, the buyer gets the failure
# notification, and the ASCII recipient of the same mail is registered and delivered.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PFX_REINJECT_OPTIONS="  -o smtputf8_enable=no"
pli_setup
# pli doctor says so before any mail (it exits non-zero: a problem found).
doctor=$($PLI doctor --postfix-config "$PFX_CONF_DIR" --json || true)
fix=$(pli_json '[c["fix"] for c in j["checks"] if "SMTPUTF8" in c["check"] and not c["ok"]][0]' \
    <<<"$doctor") || fail "pli doctor does not report the listener without SMTPUTF8: $doctor"
qgrep -F "smtputf8_enable = yes" <<<"$fix" || fail "pli doctor's fix: $fix"
echo "ok 0 - pli doctor: the re-injection listener does not offer SMTPUTF8"

pfx_smtp --from alice@buyer.example --mail-params SMTPUTF8 --to 'andré@remote.example' \
    --to ok@remote.example --subject "Avis refusé" --header "Message-ID: <refused-1@buyer.example>" \
    --body "Corps du courrier." >/dev/null || fail "the mail was not accepted (a 4xx loop?)"
echo "ok 1 - the mail is accepted, not deferred"

status_of() { # status_of RECIPIENT
    $PLI show refused-1@buyer.example --json |
        pli_json "[d['status'] for d in j['deliveries'] if d['recipient']=='$1'][0]"
}
s=""
for _ in $(seq 1 300); do
    s=$(status_of 'andré@remote.example' 2>/dev/null) || s=""
    [ "$s" = not_delivered ] && break
    sleep 0.2
done
[ "$s" = not_delivered ] || fail "andré: status '$s', expected not_delivered"
$PLI show refused-1@buyer.example --json |
    pli_json "[e['detail'].get('status','') for d in j['deliveries'] if d['recipient']=='andré@remote.example' for e in d['events'] if e['kind']=='failed'][0]" |
    qgrep -x 5.6.7 || fail "the failed event lacks status 5.6.7"
grep -E 'decision=recipient_refused .*SMTPUTF8' "$PLI_WORK/milter.log" >/dev/null ||
    fail "no recipient_refused log line naming SMTPUTF8"
echo "ok 2 - the internationalised recipient: Non délivré, 5.6.7, logged"

for _ in $(seq 1 300); do
    [ "$(status_of ok@remote.example 2>/dev/null)" = delivered ] && break
    sleep 0.2
done
[ "$(status_of ok@remote.example)" = delivered ] || fail "the ASCII recipient was not delivered"
pfx_wait_maildir catchall 1 60
found=""
for f in $(pfx_maildir_files catchall); do
    if pli_mail_part "$f" text/plain | qgrep -F 'andré@remote.example'; then found=$f; fi
done
[ -n "$found" ] || fail "no failure notification naming andré@remote.example for the buyer"
echo "ok 3 - the ASCII recipient is delivered; the buyer is told of the failure"

# Nothing left to retry: the queue drains, no deferral in the log.
pfx_wait_queue_empty 60
! pfx_log_has "status=deferred" || fail "something was deferred"
echo "ok 4 - nothing deferred"
