#!/usr/bin/env bash
# Replies through pli-linkd, through a real private Postfix: a message sent with [REPONSE]
# can be answered (text + attachments, multipart/form-data) once read; the reply is stored
# and recorded (`reply`, status reply_unread); the buyer receives, through the re-injection
# listener, a short notice with a personal link; GETs of that link record nothing; its POST
# records `reply_read`; the reply's attachments come after that only. Limits: empty reply
# (400), too many files (413), too large (413, the daemon keeps serving), no reply option (403).
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup "  # linkd limits for this test" >/dev/null
# Tighter reply limits: restart pli-linkd with them (keys under linkd: are added inline).
sed -i 's|^linkd: { \(.*\) }$|linkd: { \1, reply_max_mb: 1, reply_max_attachments: 2, timeout_seconds: 2 }|' "$PLI_CONFIG"
grep -q "reply_max_attachments: 2" "$PLI_CONFIG" || fail "could not set the reply limits"
kill "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
"$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$PLI_WORK/linkd.log" 2>&1 &
PLI_LINKD_PID=$!
pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
_pfx_wait 20 "pli-linkd to listen again" "" curl -fs -o /dev/null "$PLI_URL/healthz"
# linkd.timeout_seconds: an idle connection is closed by pli-linkd (here after 2 s). read
# tells the two apart: end of file (status 1) when the daemon closed it, > 128 when read's
# own 60 s ran out; no bound on how soon, which would depend on the machine's load.
exec 7<>"/dev/tcp/127.0.0.1/$PLI_LINKD_PORT"
start=$(date +%s)
rc=0; read -r -t 60 -u 7 _ || rc=$?
waited=$(( $(date +%s) - start ))
exec 7>&- 7<&-
[ "$rc" != 0 ] || fail "an idle connection received data"
[ "$rc" = 1 ] || fail "an idle connection stayed open ${waited}s (timeout_seconds: 2)"
echo "ok 0 - an idle connection is closed after linkd.timeout_seconds (${waited}s)"

pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: [REPONSE] [TYPE:complement] Demande de complément" \
    --header "Message-ID: <linkd-reply-1@buyer.example>" \
    --body "Merci de nous transmettre votre attestation."
pfx_send --from alice@buyer.example --to carol@remote.example \
    --header "Subject: Sans réponse possible" \
    --header "Message-ID: <linkd-reply-2@buyer.example>" \
    --body "Pas de réponse ici."
pfx_wait_sink_count 2 30
link=""; link2=""
for f in $(pfx_sink_files); do
    if grep -q "^To: <bob@remote.example>" "$f"; then link=$(pli_notice_link "$f"); fi
    if grep -q "^To: <carol@remote.example>" "$f"; then link2=$(pli_notice_link "$f"); fi
done
[ -n "$link" ] && [ -n "$link2" ] || fail "links not found in the notices"
mid=$($PLI show linkd-reply-1@buyer.example --json | pli_json 'j["id"]')
show() { $PLI show "$mid" --json; }
echo "ok 1 - two notices; the first allows replies"

# the reply form needs the read first; a message without the option refuses replies
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link/reply")
[ "$code" = 403 ] || fail "reply form before the read answered $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -F text=bonjour "$link/reply")
[ "$code" = 403 ] || fail "reply POST before the read answered $code"
curl -sS -o /dev/null -X POST "$link2"
code=$(curl -sS -o /dev/null -w '%{http_code}' -F text=bonjour "$link2/reply")
[ "$code" = 403 ] || fail "reply to a message without [REPONSE] answered $code"
echo "ok 2 - replies refused before the read and without the reply option (403)"

curl -sS -o "$PLI_WORK/content.html" -X POST "$link"
grep -q "href=\"/m/${link##*/}/reply\"" "$PLI_WORK/content.html" || fail "content page lacks the reply link"
curl -sS -o "$PLI_WORK/form.html" "$link/reply"
grep -q 'enctype="multipart/form-data"' "$PLI_WORK/form.html" || fail "reply form is not multipart"
grep -q '<label for="text">' "$PLI_WORK/form.html" || fail "reply form: no label for the text"
grep -q '<label for="files">' "$PLI_WORK/form.html" || fail "reply form: no label for the files"
echo "ok 3 - content page links to the reply form (labelled fields, multipart)"

# limits
code=$(curl -sS -o /dev/null -w '%{http_code}' -F "text=   " "$link/reply")
[ "$code" = 400 ] || fail "an empty reply answered $code"
printf 'a' >"$PLI_WORK/f1"; printf 'b' >"$PLI_WORK/f2"; printf 'c' >"$PLI_WORK/f3"
code=$(curl -sS -o /dev/null -w '%{http_code}' -F text=trop -F files=@"$PLI_WORK/f1" \
    -F files=@"$PLI_WORK/f2" -F files=@"$PLI_WORK/f3" "$link/reply")
[ "$code" = 413 ] || fail "3 files (limit 2) answered $code"
head -c 1200000 /dev/urandom >"$PLI_WORK/big.bin"
code=$(curl -sS -o "$PLI_WORK/413.html" -w '%{http_code}' -F text=gros -F files=@"$PLI_WORK/big.bin" "$link/reply" || true)
[ "$code" = 413 ] || fail "a 1.2 MB reply (limit 1 MB) answered $code"
grep -q "Envoi trop volumineux" "$PLI_WORK/413.html" || fail "the 413 page does not say why"
curl -fsS "$PLI_URL/healthz" >/dev/null || fail "the daemon stopped serving after a 413"
nreply=$(show | pli_json 'sum(1 for e in j["deliveries"][0]["events"] if e["kind"]=="reply")')
[ "$nreply" = 0 ] || fail "a refused reply was recorded"
echo "ok 4 - empty reply 400, too many files 413, too large 413; nothing recorded"

# the reply
printf '%%PDF-1.4 attestation\n' >"$PLI_WORK/attestation.pdf"
printf 'ligne 1\nligne 2\n' >"$PLI_WORK/notes.txt"
curl -sS -o "$PLI_WORK/sent.html" -w '%{http_code}' -A "Repondeur/1.0" \
    -F 'text=Veuillez trouver <b>ci-joint</b> notre attestation.' \
    -F "files=@$PLI_WORK/attestation.pdf;type=application/pdf;filename=../../<attestation>.pdf" \
    -F "files=@$PLI_WORK/notes.txt;type=text/plain" "$link/reply" >"$PLI_WORK/code"
[ "$(cat "$PLI_WORK/code")" = 200 ] || fail "the reply answered $(cat "$PLI_WORK/code")"
grep -q "Votre réponse a été transmise" "$PLI_WORK/sent.html" || fail "no confirmation page"
if grep -q "warning" "$PLI_WORK/sent.html"; then fail "the sender's notice failed"; fi
json=$(show)
[ "$(echo "$json" | pli_json 'j["deliveries"][0]["status"]')" = reply_unread ] || fail "status is not reply_unread"
ev=$(echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="reply"][0]["detail"]')
echo "$ev" | qgrep "'user_agent': 'Repondeur/1.0'" || fail "reply event lacks the user agent: $ev"
echo "$ev" | qgrep "'attachments': '2'" || fail "reply event lacks the attachment count: $ev"
echo "ok 5 - reply recorded (status reply_unread, user agent, 2 attachments)"

# the sender's notice: through the re-injection listener to alice's mailbox
notice=""
for _ in $(seq 1 100); do
    for f in $(pfx_maildir_files catchall); do
        if grep -q "/r/" <(pli_mail_part "$f" text/plain); then notice=$f; fi
    done
    [ -n "$notice" ] && break
    sleep 0.2
done
[ -n "$notice" ] || fail "no reply notice in alice's mailbox"
body=$(pli_mail_part "$notice" text/plain)
echo "$body" | qgrep "bob@remote.example a répondu à votre courrier « Demande de complément »" \
    || fail "the notice does not say who replied to what: $body"
if echo "$body" | qgrep "ci-joint"; then fail "the notice carries the reply itself"; fi
grep -q "^To: <alice@buyer.example>" "$notice" || fail "the notice is not to the sender"
rlink=$(echo "$body" | grep -oE "$PLI_URL/r/[A-Za-z0-9_-]+" | head -n 1)
[ -n "$rlink" ] || fail "no reply link in the notice"
echo "ok 6 - the sender's notice names the replier, carries a personal link, not the reply"

# the sender's link: GETs record nothing; the POST records reply_read
for i in 1 2 3; do curl -fsS -o "$PLI_WORK/rland.html" -A "scanner/$i" "$rlink"; done
grep -q '<form method="post" action="/r/' "$PLI_WORK/rland.html" || fail "reply landing lacks its form"
grep -q "Réponse de</dt><dd>bob@remote.example" "$PLI_WORK/rland.html" || fail "reply landing lacks the replier"
[ "$(show | pli_json 'j["deliveries"][0]["status"]')" = reply_unread ] || fail "a GET of the reply link changed the status"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$rlink/a/0")
[ "$code" = 403 ] || fail "reply attachment before opening the reply answered $code"
curl -fsS -o "$PLI_WORK/reply.html" -A "Acheteur/1.0" -X POST "$rlink"
grep -q "Veuillez trouver &lt;b&gt;ci-joint&lt;&#x2F;b&gt; notre attestation." "$PLI_WORK/reply.html" \
    || fail "the reply text is missing or not escaped"
grep -q 'download>&lt;attestation&gt;.pdf</a>' "$PLI_WORK/reply.html" || fail "the reply file name is not sanitised and escaped"
json=$(show)
[ "$(echo "$json" | pli_json 'j["deliveries"][0]["status"]')" = reply_read ] || fail "status is not reply_read"
echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="reply_read"][0]["detail"]["user_agent"]' \
    | qgrep -x "Acheteur/1.0" || fail "reply_read lacks the user agent"
curl -fsS -o "$PLI_WORK/r0" -D "$PLI_WORK/rh" "$rlink/a/0"
cmp -s "$PLI_WORK/r0" "$PLI_WORK/attestation.pdf" || fail "the reply attachment differs"
tr -d '\r' <"$PLI_WORK/rh" | qgrep -i "^Content-Disposition: attachment; filename=\"_attestation_.pdf\"; filename\*=UTF-8''%3Cattestation%3E.pdf$" \
    || fail "reply attachment disposition: $(grep -i disposition "$PLI_WORK/rh")"
tr -d '\r' <"$PLI_WORK/rh" | qgrep -i "^Content-Type: application/pdf$" || fail "reply attachment type"
echo "ok 7 - sender's link: GETs record nothing, POST records reply_read, attachments after"

# a recipient token is not a sender token and vice versa
code=$(curl -sS -o /dev/null -w '%{http_code}' "$PLI_URL/r/${link##*/}")
[ "$code" = 404 ] || fail "a recipient token opened a reply page ($code)"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$PLI_URL/m/${rlink##*/}")
[ "$code" = 404 ] || fail "a sender token opened a recipient page ($code)"
echo "ok 8 - link purposes are not interchangeable"

curl -fsS "$PLI_URL/metrics" >"$PLI_WORK/metrics.txt"
grep -q '^pli_linkd_replies_total 1$' "$PLI_WORK/metrics.txt" || fail "metrics: replies_total"
grep -q '^pli_linkd_events_total{kind="reply_read"} 1$' "$PLI_WORK/metrics.txt" || fail "metrics: reply_read"
grep -q '^pli_linkd_errors_total{kind="notify"} 0$' "$PLI_WORK/metrics.txt" || fail "metrics: notify errors"
echo "ok 9 - metrics count the reply"

# a browser's form with no file chosen sends an empty part with filename="": no attachment
printf -- '--XyZ\r\nContent-Disposition: form-data; name="text"\r\n\r\nDeuxième réponse, sans fichier.\r\n--XyZ\r\nContent-Disposition: form-data; name="files"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--XyZ--\r\n' >"$PLI_WORK/form.bin"
code=$(curl -sS -o "$PLI_WORK/sent2.html" -w '%{http_code}' -H "Content-Type: multipart/form-data; boundary=XyZ" \
    --data-binary @"$PLI_WORK/form.bin" "$link/reply")
[ "$code" = 200 ] || fail "a reply without files answered $code"
json=$(show)
[ "$(echo "$json" | pli_json 'j["deliveries"][0]["status"]')" = reply_unread ] || fail "a second reply does not make the status reply_unread again"
n=$(echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="reply"][-1]["detail"]["attachments"]')
[ "$n" = 0 ] || fail "an empty file part became an attachment ($n)"
echo "ok 10 - a second reply, from a form with no file chosen: no attachment, status reply_unread"
