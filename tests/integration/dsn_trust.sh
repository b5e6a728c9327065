#!/usr/bin/env bash
# Forged delivery reports through a private Postfix: a report that reaches pli-bounce+ID over
# SMTP (anyone holding the id, here from 127.0.0.1) is an unverified claim recorded with its
# origin; only the organisation's own Postfix (its reports through non_smtpd_milters) sets a
# status. A forged plain-text bounce after a real relay keeps Délivré and mails no one; a
# forged "Action: delivered" after a real bounce keeps Non délivré; a forged failure after a
# read keeps the read. The buyer's notification of a real failure quotes the report's text
# with its links made inert.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

send() { # send RCPT MESSAGE-ID
    pfx_send --from alice@buyer.example --to "$1" --header "Subject: Avis $2" \
        --header "Message-ID: <$2@buyer.example>" --body "Corps du courrier $2."
}
show() { $PLI show "$1@buyer.example" --json; }
status_of() { show "$1" | pli_json 'j["deliveries"][0]["status"]'; }
id_of() { show "$1" | pli_json 'j["deliveries"][0]["id"]'; }
kinds_of() { show "$1" | pli_json '",".join(e["kind"] for e in j["deliveries"][0]["events"])'; }
wait_status() { # wait_status MID STATUS TIMEOUT_S
    local s=""
    for _ in $(seq 1 $(($3 * 5))); do
        s=$(status_of "$1"); [ "$s" = "$2" ] && return 0; sleep 0.2
    done
    fail "$1: status $s, expected $2"
}
wait_kind() { # wait_kind MID KIND TIMEOUT_S
    for _ in $(seq 1 $(($3 * 5))); do
        kinds_of "$1" | tr , '\n' | qgrep -x "$2" && return 0; sleep 0.2
    done
    fail "$1: no $2 event (events: $(kinds_of "$1"))"
}
event() { # event MID KIND FIELD
    show "$1" | pli_json "[e for e in j['deliveries'][0]['events'] if e['kind']=='$2'][-1]['detail'].get('$3','')"
}
forge_dsn() { # forge_dsn DELIVERY RECIPIENT ACTION STATUS FILE
    cat >"$5" <<MSG
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.forger.example>
To: pli-bounce+$1@buyer.example
Subject: Delivery Status Notification
Message-ID: <forged.$RANDOM@mx.forger.example>
Authentication-Results: mx.forger.example; spf=none
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

Report for $2.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.forger.example

Final-Recipient: rfc822; $2
Action: $3
Status: $4
Diagnostic-Code: smtp; 250 2.0.0 forged

--BOUND--
MSG
}

# 1. A forged plain-text bounce after a real relay: Délivré stays, the claim is shown.
send ok@remote.example relay-1
wait_status relay-1 delivered 30
did=$(id_of relay-1)
pfx_smtp --from "" --helo forger.example --to "pli-bounce+$did@buyer.example" \
    --subject "Undelivered Mail Returned to Sender" \
    --body "Your message to ok@remote.example could not be delivered.
550 5.1.1 User unknown. Re-send it at https://phish.example/login now." >/dev/null
wait_kind relay-1 remote_failed 20
[ "$(status_of relay-1)" = delivered ] || fail "a forged bounce changed Délivré"
kinds_of relay-1 | tr , '\n' | qgrep -x failed && fail "a forged bounce was recorded as a failure"
event relay-1 remote_failed client_ip | qgrep -x 127.0.0.1 || fail "claim: no client address"
event relay-1 remote_failed helo | qgrep -x forger.example || fail "claim: no HELO"
human=$($PLI show relay-1@buyer.example)
printf '%s' "$human" | qgrep "Échec signalé par un serveur distant pour ok@remote.example (non vérifié" ||
    fail "pli show does not name the claim: $human"
printf '%s' "$human" | qgrep "reçu de l'adresse IP : 127.0.0.1" || fail "pli show: no origin"
printf '%s' "$human" | qgrep "Délivré" || fail "pli show: the status is not Délivré"
echo "ok 1 - a forged plain-text bounce after a relay: Délivré kept, an unverified claim with its origin"

# 2. A real bounce (Postfix's own report): Non délivré, and the buyer's notification quotes
# the remote server's words with inert links. A forged "Action: delivered" keeps Non délivré.
send hardfail@remote.example fail-1
wait_status fail-1 not_delivered 30
fid=$(id_of fail-1)
pfx_wait_maildir catchall 1 30
notif=$(grep -l "X-Pli-Notification: not_delivered; delivery=$fid" $(pfx_maildir_files catchall) | head -n 1)
[ -n "$notif" ] || fail "no notification for the real bounce"
text=$(pli_mail_part "$notif" text/plain)
printf '%s' "$text" | qgrep -F "> Diagnostic : 550 5.1.1 <hardfail@remote[.]example>: user unknown" ||
    fail "the diagnostic is not quoted with inert links: $text"
printf '%s' "$text" | qgrep -F "hardfail@remote.example>" && fail "a live host name in the quote: $text"
# The forged bounce of part 1 was recorded before this one: its notification would be here.
for f in $(pfx_maildir_files catchall); do
    qgrep "delivery=$did" "$f" && fail "the buyer was mailed about the forged bounce"
    qgrep -F "phish" "$f" && fail "the forged text reached the buyer"
done
forge_dsn "$fid" hardfail@remote.example delivered 2.0.0 "$W/forged-delivered.eml"
pfx_smtp --from "" --to "pli-bounce+$fid@buyer.example" --data-file "$W/forged-delivered.eml" >/dev/null
wait_kind fail-1 remote_delivered 20
[ "$(status_of fail-1)" = not_delivered ] || fail "a forged 'Action: delivered' undid Non délivré"
event fail-1 remote_delivered authentication_results | qgrep "spf=none" ||
    fail "claim: Authentication-Results not kept"
event fail-1 remote_delivered reporting_mta | qgrep -x mx.forger.example || fail "claim: reporting MTA"
echo "ok 2 - a real bounce: Non délivré, notification quotes inertly; a forged success keeps Non délivré"

# 3. A forged failure after a read: the read stays, the claim is shown as unverified.
send read@remote.example read-1
wait_status read-1 delivered 30
rid=$(id_of read-1)
notice=$(grep -l "read@remote.example" $(pfx_sink_files) | head -n 1)
link=$(pli_notice_link "$notice")
[ -n "$link" ] || fail "no link in the notice"
curl -sS -o /dev/null -X POST "$link"
wait_status read-1 read 20
forge_dsn "$rid" read@remote.example failed 5.1.1 "$W/forged-failed.eml"
pfx_smtp --from "" --to "pli-bounce+$rid@buyer.example" --data-file "$W/forged-failed.eml" >/dev/null
wait_kind read-1 remote_failed 20
[ "$(status_of read-1)" = read ] || fail "a forged failure undid the read"
kinds_of read-1 | tr , '\n' | qgrep -x failed && fail "a forged failure entered the timeline as a failure"
$PLI show read-1@buyer.example | qgrep "non vérifié" || fail "pli show: the claim is not marked unverified"
echo "ok 3 - a forged failure after a read: Lu kept, the claim shown as unverified"

# 4. Every mail pli sends writes its From display name so that it parses as one mailbox.
pfx_wait_maildir catchall 2 30
for f in $(pfx_maildir_files catchall); do
    /usr/bin/python3 - "$f" <<'PY' || fail "From of $f does not parse as one mailbox"
import sys
from email import policy
from email.parser import BytesParser
with open(sys.argv[1], 'rb') as fh:
    msg = BytesParser(policy=policy.default).parse(fh)
addrs = msg['From'].addresses
assert len(addrs) == 1, addrs
assert addrs[0].display_name == 'Région Exemple (pli)', addrs[0].display_name
assert addrs[0].addr_spec == 'pli-bounce@buyer.example', addrs[0].addr_spec
PY
done
kill -0 "$PLI_LINKD_PID" || fail "pli-linkd died"
echo "ok 4 - the not-delivered and read notifications: one From mailbox with its display name"
