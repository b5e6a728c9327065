#!/usr/bin/env bash
# Text that is not valid UTF-8, through the real pli-linkd and Postfix: a read POST with
# `User-Agent: Mozilla\xff\xfe` and a reply whose text, file name and User-Agent are not
# UTF-8 are recorded repaired (U+FFFD); afterwards the other recipient's read, pli show,
# pli receipt, a DSN for the message, the buyer's reply link, pli export --format json,
# pli store check and pli purge all work (before, the first POST poisoned the message's
# chain and every one of them failed).
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS" # pli keygen creates it
pli_setup "keys: { dir: $KEYS }"
W=$PLI_WORK
$PLI keygen >/dev/null
FFFD=$'\xef\xbf\xbd'

pfx_send --from alice@buyer.example --to bob@remote.example,carol@remote.example \
    --header "Subject: [REPONSE] Demande de complément" \
    --header "Message-ID: <hostile-utf8-1@buyer.example>" --body "Merci de répondre."
pfx_wait_sink_count 2 30
bob=""; carol=""
for f in $(pfx_sink_files); do
    if grep -q "^To: <bob@remote.example>" "$f"; then bob=$(pli_notice_link "$f"); fi
    if grep -q "^To: <carol@remote.example>" "$f"; then carol=$(pli_notice_link "$f"); fi
done
[ -n "$bob" ] && [ -n "$carol" ] || fail "links not found in the notices"
mid=$($PLI show hostile-utf8-1@buyer.example --json | pli_json 'j["id"]')

code=$(curl -sS -o /dev/null -w '%{http_code}' -A $'Mozilla\xff\xfe' -X POST "$bob")
[ "$code" = 200 ] || fail "the read with a non-UTF-8 user agent answered $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -A "Carol/1.0" -X POST "$carol")
[ "$code" = 200 ] || fail "the other recipient's read answered $code"
$PLI show "$mid" --json >"$W/show.json" || fail "pli show failed after the read"
ua=$(pli_json '[e for d in j["deliveries"] for e in d["events"] if e["kind"]=="read" and d["recipient"]=="bob@remote.example"][0]["detail"]["user_agent"]' <"$W/show.json")
[ "$ua" = "Mozilla$FFFD$FFFD" ] || fail "the user agent was recorded as '$ua'"
n=$(pli_json 'sum(1 for d in j["deliveries"] for e in d["events"] if e["kind"]=="read")' <"$W/show.json")
[ "$n" = 2 ] || fail "$n reads recorded, expected 2"
echo "ok 1 - a read with User-Agent Mozilla\\xff\\xfe is recorded repaired; the other recipient's read too"

printf 'offre' >"$W/offre.txt"
code=$(curl -sS -o "$W/sent.html" -w '%{http_code}' -A $'R\xe9pondeur\xff' \
    -F $'text=Voici notre offre \xe9t\xe9' \
    -F "files=@$W/offre.txt;type=text/plain;filename="$'offre\xff.txt' "$bob/reply")
[ "$code" = 200 ] || fail "the reply with non-UTF-8 text answered $code"
$PLI show "$mid" --json >"$W/show.json" || fail "pli show failed after the reply"
ev=$(pli_json '[e for d in j["deliveries"] for e in d["events"] if e["kind"]=="reply"][0]["detail"]["user_agent"]' <"$W/show.json")
[ "$ev" = "Répondeur$FFFD" ] || [ "$ev" = "R${FFFD}pondeur$FFFD" ] || fail "reply user agent '$ev'"
notice=""
for _ in $(seq 1 100); do
    for f in $(pfx_maildir_files catchall); do
        if grep -q "/r/" <(pli_mail_part "$f" text/plain); then notice=$f; fi
    done
    [ -n "$notice" ] && break
    sleep 0.2
done
[ -n "$notice" ] || fail "no reply notice in alice's mailbox"
rlink=$(pli_mail_part "$notice" text/plain | grep -oE "$PLI_URL/r/[A-Za-z0-9_-]+" | head -n 1)
code=$(curl -sS -o "$W/reply.html" -w '%{http_code}' -X POST "$rlink")
[ "$code" = 200 ] || fail "the buyer's reply page answered $code"
grep -q "Voici notre offre" "$W/reply.html" || fail "the reply page lacks the text"
grep -q "offre.*\.txt" "$W/reply.html" || fail "the reply page lacks the file"
echo "ok 2 - a reply with non-UTF-8 text, file name and user agent: recorded, the buyer opens it"

$PLI receipt "$mid" --recipient bob@remote.example -o "$W/r.pdf" >/dev/null 2>"$W/err" ||
    fail "pli receipt failed: $(cat "$W/err")"
$PLI verify "$W/r.pdf" >/dev/null 2>"$W/err" || fail "pli verify refused the receipt: $(cat "$W/err")"
echo "ok 3 - pli receipt and pli verify work"

# A remote server's DSN for carol (the MX listener): recorded as a remote claim, its
# diagnostic repaired, not a 4xx.
did=$(pli_json '[d["id"] for d in j["deliveries"] if d["recipient"]=="carol@remote.example"][0]' <"$W/show.json")
cat >"$W/dsn.eml" <<MSG
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.remote.example>
To: pli-bounce+$did@buyer.example
Subject: Returned mail
Message-ID: <hostile-dsn-1@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

Failed.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; carol@remote.example
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Bo$(printf '\xff')te pleine

--BOUND--
MSG
pfx_smtp --from "" --to "pli-bounce+$did@buyer.example" --data-file "$W/dsn.eml" >"$W/dsn.out" ||
    fail "the DSN was refused: $(cat "$W/dsn.out")"
for _ in $(seq 1 100); do
    $PLI show "$mid" --json | qgrep '"kind": *"remote_failed"' && break
    sleep 0.2
done
$PLI show "$mid" --json >"$W/show2.json"
qgrep '"kind": *"remote_failed"' <"$W/show2.json" || fail "the DSN was not recorded"
diag=$(pli_json '[e["detail"].get("diagnostic","") for d in j["deliveries"] for e in d["events"] if e["kind"]=="remote_failed"][0]' <"$W/show2.json")
[[ $diag == *"Bo"$'\xef\xbf\xbd'"te pleine"* ]] || fail "the diagnostic was not repaired: $diag"
echo "ok 4 - a DSN for the message is recorded (a remote claim), its diagnostic repaired"

$PLI export --format json -o "$W/export.json" 2>/dev/null || fail "pli export failed"
n=$(pli_json 'sum(len(i["events"]) for i in j["items"])' <"$W/export.json")
[ "$n" -ge 5 ] || fail "the export holds $n events"
$PLI store check --json >"$W/check.json" || fail "pli store check found damage: $(cat "$W/check.json")"
$PLI purge --older-than 0 >/dev/null || fail "pli purge failed"
[ "$($PLI list --json | pli_json 'j["total"]')" = 0 ] || fail "purge left deliveries"
echo "ok 5 - pli export --format json, pli store check, pli purge work"
