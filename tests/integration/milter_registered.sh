#!/usr/bin/env bash
# pli-milter through a private Postfix: several recipients, attachments with accented
# names, subject tags and X-Pli-Options, internal recipients, a retried message.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

# A buyer's mail to two external and one internal recipient, with two attachments whose
# names are RFC 2231 / RFC 2047 encoded, and options in the subject and the header.
/usr/bin/python3 - "$W/msg.eml" <<'PY'
import sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Alice Martin <alice@buyer.example>"
m["To"] = "bob@remote.example, carol@other.example, colleague@buyer.example"
m["Subject"] = "[AR] [REF:2022AK_014] Décision d'attribution [lot 2]"
m["Message-ID"] = "<registered-1@buyer.example>"
m["X-Pli-Options"] = "type=attribution; reply=yes"
m.set_content("Madame, Monsieur,\nveuillez trouver la décision ci-jointe.\n")
m.add_attachment(b"%PDF-1.4 decision\n" * 50, maintype="application", subtype="pdf",
                 filename="Décision d'attribution – lot n°2.pdf")
m.add_attachment("Tableau des notes, é à ç\n".encode(), maintype="text", subtype="csv",
                 filename="notes_œuvre.csv")
open(sys.argv[1], "wb").write(bytes(m))
PY
pfx_smtp --from alice@buyer.example --to bob@remote.example --to carol@other.example \
    --to colleague@buyer.example --data-file "$W/msg.eml" >/dev/null

pfx_wait_sink_count 2 30
pfx_wait_maildir catchall 1 30
mapfile -t notices < <(pfx_sink_files)
[ ${#notices[@]} -eq 2 ] || fail "expected 2 notices, got ${#notices[@]}"
links=()
for n in "${notices[@]}"; do
    grep -qE '^X-Mail-Args: <pli-bounce\+d[a-z2-7]+@buyer\.example>' "$n" || fail "no VERP return path in $n"
    rcpt=$(sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' "$n")
    grep -qi "^To: <$rcpt>" "$n" || fail "notice for $rcpt is addressed elsewhere"
    text=$(pli_mail_part "$n" text/plain)
    echo "$text" | qgrep "Courrier d'attribution" || fail "no type label"
    echo "$text" | qgrep "2022AK_014" || fail "no consultation reference"
    echo "$text" | qgrep "Décision d'attribution \[lot 2\]" || fail "subject not in the notice"
    echo "$text" | qgrep "répondre" || fail "reply option not announced"
    if echo "$text" | qgrep "veuillez trouver"; then fail "the notice carries the body"; fi
    grep -q "PDF-1.4" "$n" && fail "the notice carries an attachment"
    subject=$(/usr/bin/python3 -c "import email,sys
from email import policy
print(email.message_from_binary_file(open(sys.argv[1],'rb'),policy=policy.default)['subject'])" "$n")
    [ "$subject" = "Décision d'attribution [lot 2]" ] || fail "delivered subject is '$subject'"
    links+=("$(pli_notice_link "$n")")
done
[ "${links[0]}" != "${links[1]}" ] || fail "both notices have the same link"
echo "ok 1 - two notices with different links, VERP return paths, tags removed"

internal=$(pfx_maildir_files catchall | head -n 1)
grep -q "^X-Pli-Options" "$internal" && fail "X-Pli-Options reached the internal recipient"
subject=$(/usr/bin/python3 -c "import email,sys
from email import policy
print(email.message_from_binary_file(open(sys.argv[1],'rb'),policy=policy.default)['subject'])" "$internal")
[ "$subject" = "Décision d'attribution [lot 2]" ] || fail "internal subject is '$subject'"
pli_mail_part "$internal" text/plain | qgrep "veuillez trouver la décision" || fail "internal copy lacks the body"
grep -q "notes_" "$internal" || fail "internal copy lacks the attachment"
grep -qE "^Delivered-To: (bob|carol)@" "$internal" && fail "external recipients reached the mailbox"
echo "ok 2 - the internal recipient got the original, without pli's options"

json=$($PLI show registered-1@buyer.example --json)
echo "$json" | pli_json 'j["type"]' | qgrep -x attribution || fail "type from X-Pli-Options not applied"
echo "$json" | pli_json 'j["reply_allowed"]' | qgrep -x True || fail "reply option not applied"
echo "$json" | pli_json 'j["consultation"]' | qgrep -x 2022AK_014 || fail "reference not applied"
echo "$json" | pli_json 'len(j["deliveries"])' | qgrep -x 2 || fail "expected 2 deliveries"
names=$(echo "$json" | pli_json '"|".join(sorted(a["name"] for a in j["attachments"]))')
[ "$names" = "Décision d'attribution – lot n°2.pdf|notes_œuvre.csv" ] || fail "attachment names: $names"
# The stored attachments' SHA-256 are those of the parts that were sent.
expected=$(/usr/bin/python3 - "$W/msg.eml" <<'PY'
import email, hashlib, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
print("|".join(sorted(hashlib.sha256(p.get_payload(decode=True)).hexdigest()
                      for p in m.iter_attachments())))
PY
)
got=$(echo "$json" | pli_json '"|".join(sorted(a["sha256"] for a in j["attachments"]))')
[ "$got" = "$expected" ] || fail "attachment hashes differ: $got vs $expected"
echo "ok 3 - stored: type, reply, reference, attachments with their names and SHA-256"

# The same message again (a client retrying): nothing is injected twice.
pfx_smtp --from alice@buyer.example --to bob@remote.example --to carol@other.example \
    --to colleague@buyer.example --data-file "$W/msg.eml" >/dev/null
pfx_wait_maildir catchall 2 30
sleep 2
[ "$(pfx_sink_count)" -eq 2 ] || fail "a retried message was injected again ($(pfx_sink_count) notices)"
n=$($PLI show registered-1@buyer.example --json | pli_json 'sum(1 for d in j["deliveries"] for e in d["events"] if e["kind"]=="sent")')
[ "$n" -eq 2 ] || fail "expected 2 sent events after the retry, got $n"
grep -q "decision=registered_retry" "$W/milter.log" || fail "no registered_retry log line"
echo "ok 4 - a retried message injects nothing twice"

# One log line per registered message, with the queue id and the delivery ids, no content.
line=$(grep "decision=registered " "$W/milter.log" | head -n 1)
echo "$line" | qgrep -E '^[0-9A-F]+: decision=registered mode=ar message=m[a-z2-7]+ deliveries=d[a-z2-7]+,d[a-z2-7]+' \
    || fail "log line: $line"
grep -q "veuillez" "$W/milter.log" && fail "message content in the log"
echo "ok 5 - one log line per message: $line"
