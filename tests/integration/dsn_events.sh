#!/usr/bin/env bash
# Delivery events from real DSNs through a private Postfix: relayed (a sink that advertises
# DSN, through the pli-smtp transport), failed (550 from the remote), delayed (450 with a
# short delay_warning_time), and DSNs "from the world" arriving at the MX listener:
# RFC 3464, plain text, duplicated, and for an unknown delivery. Those are unverified claims
# (remote_failed ...) that keep the status Postfix's own reports gave (dsn_trust.sh).
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PFX_DELAY_WARNING_TIME=20s
pli_setup
W=$PLI_WORK

send() { # send RCPT MESSAGE-ID
    pfx_send --from alice@buyer.example --to "$1" --header "Subject: Avis $2" \
        --header "Message-ID: <$2@buyer.example>" --body "Corps du courrier $2."
}
status_of() { $PLI show "$1@buyer.example" --json | pli_json 'j["deliveries"][0]["status"]'; }
wait_status() { # wait_status MID STATUS TIMEOUT_S
    local s=""
    for _ in $(seq 1 $(($3 * 5))); do
        s=$(status_of "$1"); [ "$s" = "$2" ] && return 0; sleep 0.2
    done
    fail "$1: status $s, expected $2"
}
event() { # event MID KIND FIELD
    $PLI show "$1@buyer.example" --json |
        pli_json "[e for e in j['deliveries'][0]['events'] if e['kind']=='$2'][-1]['detail'].get('$3','')"
}

send ok@remote.example relayed-1
send hardfail@remote.example failed-1
send softfail@remote.example delayed-1
send late@remote.example remote-1

wait_status relayed-1 delivered 30
event relayed-1 delivered action | qgrep -x relayed || fail "relayed: action"
event relayed-1 delivered diagnostic | qgrep "^250 " || fail "relayed: no 250 evidence"
event relayed-1 delivered remote_mta | qgrep -x 127.0.0.1 || fail "relayed: remote_mta"
pfx_log_has "pli-smtp/smtp.*to=<ok@remote.example>.*status=sent" || fail "not sent through pli-smtp"
echo "ok 1 - relayed (the sink advertises DSN; pli-smtp hides it): Délivré, with the 250 reply"

wait_status failed-1 not_delivered 30
event failed-1 failed status | qgrep -x 5.1.1 || fail "failed: status"
event failed-1 failed diagnostic | qgrep "550 5.1.1" || fail "failed: diagnostic"
echo "ok 2 - a 550 from the remote: Non délivré, status 5.1.1 and the diagnostic kept"

# The delayed DSN comes ~delay_warning_time after arrival; the status stays "sending".
for _ in $(seq 1 300); do
    [ -n "$(event delayed-1 delayed status 2>/dev/null)" ] && break; sleep 0.2
done
event delayed-1 delayed status | qgrep -x 4.2.1 || fail "no delayed event with status 4.2.1"
[ "$(status_of delayed-1)" = sending ] || fail "delayed: status should stay sending"
echo "ok 3 - a 450 for a while: a delayed event, status En cours d'envoi"

# A later bounce from the remote server itself, at the MX listener (null sender, VERP).
wait_status remote-1 delivered 30
did=$($PLI show remote-1@buyer.example --json | pli_json 'j["deliveries"][0]["id"]')
cat >"$W/remote-dsn.eml" <<MSG
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.remote.example>
To: pli-bounce+$did@buyer.example
Subject: Returned mail: see transcript for details
Date: Sun, 29 Nov 2026 10:00:00 +0100
Message-ID: <remote-dsn-1@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

The mailbox of late@remote.example is full.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example
Arrival-Date: Sun, 29 Nov 2026 09:59:00 +0100

Final-Recipient: rfc822; late@remote.example
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

--BOUND--
MSG
pfx_smtp --from "" --helo mx.remote.example --to "pli-bounce+$did@buyer.example" \
    --data-file "$W/remote-dsn.eml" >/dev/null
for _ in $(seq 1 100); do
    [ -n "$(event remote-1 remote_failed reporting_mta 2>/dev/null)" ] && break; sleep 0.2
done
event remote-1 remote_failed reporting_mta | qgrep -x mx.remote.example || fail "remote DSN: reporting_mta"
event remote-1 remote_failed diagnostic | qgrep "552 5.2.2" || fail "remote DSN: diagnostic"
event remote-1 remote_failed client_ip | qgrep -x 127.0.0.1 || fail "remote DSN: client_ip"
event remote-1 remote_failed helo | qgrep -x mx.remote.example || fail "remote DSN: helo"
[ "$(status_of remote-1)" = delivered ] || fail "remote DSN: the local relay's Délivré should stay"
# The same DSN again: nothing recorded twice.
pfx_smtp --from "" --helo mx.remote.example --to "pli-bounce+$did@buyer.example" \
    --data-file "$W/remote-dsn.eml" >/dev/null
sleep 1
n=$($PLI show remote-1@buyer.example --json | pli_json 'sum(1 for e in j["deliveries"][0]["events"] if e["kind"]=="remote_failed")')
[ "$n" = 1 ] || fail "a duplicate DSN was recorded ($n remote_failed events)"
[ -z "$(pfx_maildir_files bounce)" ] || fail "DSNs should be discarded after recording"
echo "ok 4 - a remote server's DSN at the MX: an unverified failure claim beside Délivré; its duplicate ignored"

# A plain-text bounce from an old server: attributed by the return path, inferred from text.
send old@remote.example plain-1
wait_status plain-1 delivered 30
did=$($PLI show plain-1@buyer.example --json | pli_json 'j["deliveries"][0]["id"]')
pfx_smtp --from "" --to "pli-bounce+$did@buyer.example" --subject "Non remis : Avis plain-1" \
    --body "Votre message n'a pas pu être remis à old@remote.example.
Raison : 550 5.1.1 Utilisateur inconnu" >/dev/null
for _ in $(seq 1 100); do
    [ -n "$(event plain-1 remote_failed inferred 2>/dev/null)" ] && break; sleep 0.2
done
event plain-1 remote_failed inferred | qgrep -x yes || fail "plain-text bounce: not marked inferred"
event plain-1 remote_failed status | qgrep -x 5.1.1 || fail "plain-text bounce: status"
[ "$(status_of plain-1)" = delivered ] || fail "plain-text bounce: the status changed"
echo "ok 5 - a plain-text French bounce: an unverified failure claim, inferred from the text"

# A DSN for a delivery id nobody issued: refused at RCPT (never buffered), logged.
out=$(pfx_smtp --from "" --to "pli-bounce+dnosuchdelivery@buyer.example" \
    --data-file "$W/remote-dsn.eml" 2>&1) && fail "a report for an unknown delivery was accepted"
printf '%s' "$out" | qgrep "<- 550 5.1.1" || fail "unknown delivery: no 550 5.1.1 at RCPT: $out"
grep -q 'decision=reject_unknown_delivery reason="unknown delivery" delivery=dnosuchdelivery' \
    "$W/milter.log" || fail "unknown delivery not logged"
echo "ok 6 - a DSN for an unknown delivery id is refused at RCPT (550 5.1.1) and logged"
