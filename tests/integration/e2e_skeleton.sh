#!/usr/bin/env bash
# The walking skeleton, end to end through real Postfix, real sockets and the real binaries:
# a buyer's mail becomes a notice with a personal link at the remote MX (the sink), Postfix's
# own "relayed" DSN becomes a `delivered` event, a GET of the link records no read, the
# form's POST records `read`, and `pli show --json` shows sent, delivered, read.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup

pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: [TYPE:rejet] Résultat de la consultation" \
    --header "Message-ID: <e2e-1@buyer.example>" \
    --body "Madame, Monsieur, nous avons le regret de vous informer que votre offre n'a pas été retenue."

pfx_wait_sink_count 1 30
notice=$(pfx_sink_files | head -n 1)
grep -q "^Subject: " "$notice" || fail "no Subject in the notice"
grep -qi "^From: .*alice@buyer.example" "$notice" || fail "the notice is not From the buyer"
pli_mail_part "$notice" text/plain | qgrep "Courrier de rejet" || fail "notice lacks the type label"
pli_mail_part "$notice" text/plain | qgrep "accusé de réception" || fail "notice lacks the AR sentence"
if pli_mail_part "$notice" text/plain | qgrep "regret de vous informer"; then
    fail "the notice must never carry the body"
fi
link=$(pli_notice_link "$notice")
[ -n "$link" ] || fail "no link in the notice"
# The envelope of the notice: the VERP return path names one delivery.
grep -qE "pli-bounce\+d[a-z2-7]+@buyer\.example" "$notice" || fail "no VERP return path at the sink"
echo "ok 1 - notice at the remote MX with link $link"

mid=$($PLI show e2e-1@buyer.example --json | pli_json 'j["id"]')
[ -n "$mid" ] || fail "pli show by Message-ID found nothing"
# Postfix's relayed DSN comes back through non_smtpd_milters and becomes `delivered`.
for _ in $(seq 1 150); do
    status=$($PLI show "$mid" --json | pli_json 'j["deliveries"][0]["status"]')
    [ "$status" = delivered ] && break
    sleep 0.2
done
[ "$status" = delivered ] || fail "no delivered event (status $status)"
echo "ok 2 - relayed DSN recorded as delivered"
# The DSN was discarded after recording: nothing in the bounce mailbox.
[ -z "$(pfx_maildir_files bounce 2>/dev/null)" ] || fail "the DSN should have been discarded"

page=$(curl -fsS -A "e2e-scanner/1.0" "$link")
echo "$page" | qgrep "Accéder au contenu du courrier" || fail "landing page lacks the button"
echo "$page" | qgrep '<form method="post"' || fail "landing page lacks the form"
status=$($PLI show "$mid" --json | pli_json 'j["deliveries"][0]["status"]')
[ "$status" = delivered ] || fail "a GET changed the status to $status"
echo "ok 3 - GET shows the landing page and records no read"

content=$(curl -fsS -A "e2e-browser/1.0" -X POST -d "open=1" "$link")
echo "$content" | qgrep "regret de vous informer" || fail "content page lacks the body"
echo "$content" | qgrep "Accusé de réception enregistré" || fail "content page lacks the receipt line"
json=$($PLI show "$mid" --json)
kinds=$(echo "$json" | pli_json '",".join(e["kind"] for e in j["deliveries"][0]["events"] if e["kind"] != "fetched")')
[ "$kinds" = "sent,delivered,read" ] || fail "events are '$kinds', expected sent,delivered,read"
echo "$json" | pli_json 'j["deliveries"][0]["status"]' | qgrep -x read || fail "status is not read"
echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="read"][0]["detail"]["user_agent"]' \
    | qgrep -x "e2e-browser/1.0" || fail "read event lacks the user agent"
echo "$json" | pli_json 'j["type"]' | qgrep -x rejet || fail "type tag not applied"
echo "$json" | pli_json 'j["subject"]' | qgrep -x "Résultat de la consultation" || fail "tag not removed from the subject"
echo "ok 4 - POST records read; pli show --json: $kinds"
