#!/usr/bin/env bash
# The buyers' area of pli-linkd (/suivi/) over real sockets, with a store filled through the
# real path (Postfix, pli-milter, DSNs, recipient links, a reply): login by a one-time link
# taken from the mail the private Postfix delivered, the same answer for a non-buyer, an
# expired and a reused link refused, POSTs without their CSRF token refused, rate limits,
# cookie attributes, rights (404 on another buyer's message until they share a team; admins),
# every list filter alone and combined, paging edges, the detail and its timeline, the
# receipt PDF (pdftotext), opening a reply (`reply_read`), the CSV export, logout, English.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
command -v pdftotext >/dev/null || skip "pdftotext (poppler-utils) is not installed"
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS"
export PFX_DELAY_WARNING_TIME=1h
pli_setup "keys: { dir: $KEYS }" \
    "buyers_area: { admins: [\"dsi@buyer.example\"], login_link_minutes: 1, logins_per_hour: 4, logins_per_hour_per_client: 40 }"
W=$PLI_WORK
$PLI keygen >/dev/null
U=$PLI_URL/suivi

restart_linkd() {
    kill "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
    "$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$W/linkd.log" 2>&1 &
    PLI_LINKD_PID=$!
    pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
    _pfx_wait 20 "pli-linkd to listen again" "" curl -fs -o /dev/null "$PLI_URL/healthz"
}
send() { # send FROM TO[,TO...] SUBJECT MESSAGE-ID BODY
    pfx_send --from "$1" --to "$2" --header "Subject: $3" \
        --header "Message-ID: <$4@buyer.example>" --body "$5"
}
status_of() { $PLI show "$1@buyer.example" --json | pli_json "j['deliveries'][${2:-0}]['status']"; }
did() { $PLI show "$1@buyer.example" --json | pli_json "j['deliveries'][${2:-0}]['id']"; }
wait_status() { # wait_status MID STATUS [INDEX]
    local s=""
    for _ in $(seq 1 200); do
        s=$(status_of "$1" "${3:-0}"); [ "$s" = "$2" ] && return 0; sleep 0.2
    done
    fail "$1: status $s, expected $2"
}
csrf_of() { grep -o 'name="csrf" value="[^"]*"' "$1" | head -n 1 | sed 's/.*value="//; s/"$//'; }
code() { curl -sS -o "$W/out" -w '%{http_code}' "$@"; }

# ---- the store, through the real path
send alice@buyer.example ok1@remote.example "[TYPE:rejet] [REF:2024AK_001] Réponse à votre offre" \
    s1 "Nous avons le regret de vous informer que votre offre n'a pas été retenue."
send alice@buyer.example ok2@remote.example "[REPONSE] [TYPE:complement] Demande de complément" \
    s2 "Merci de fournir l'attestation."
send alice@buyer.example hardfail@remote.example "Information générale" s3 "Texte <b>gras</b>."
rcpts=$(for i in 01 02 03 04 05 06 07 08 09 10 11 12; do printf 'p%s@remote.example,' "$i"; done)
send alice@buyer.example "${rcpts%,}" "[TYPE:invitation] Invitation à concourir" s4 \
    "Vous êtes invité à remettre une offre."
send alice@buyer.example softfail@remote.example "Relance" s5 "En attente."
send bernard@buyer.example ok9@remote.example "[TYPE:attribution] Attribution du marché" s6 \
    "Votre offre est retenue."
pfx_wait_sink_count 15 60
wait_status s1 delivered; wait_status s2 delivered; wait_status s3 not_delivered
wait_status s4 delivered 11; wait_status s6 delivered
[ "$(status_of s5)" = sending ] || fail "s5 is not sending"
notice_link() { for f in $(pfx_sink_files); do
    if grep -q "^To: <$1>" "$f"; then pli_notice_link "$f"; fi; done | head -n 1; }
l1=$(notice_link ok1@remote.example); l2=$(notice_link ok2@remote.example)
curl -fsS -o /dev/null -X POST "$l1"
curl -fsS -o /dev/null -X POST "$l2"
printf '%%PDF-1.4 attestation du candidat\n' >"$W/attestation.pdf"
curl -fsS -o /dev/null -F 'text=Voici <notre> attestation.' \
    -F "files=@$W/attestation.pdf;type=application/pdf" "$l2/reply"
wait_status s1 read; wait_status s2 reply_unread
echo "ok 1 - 17 deliveries: read, reply_unread, not_delivered, 12 delivered, sending (alice), 1 (bernard)"

# ---- login
touch "$W/seen"
login_mail() { # login_mail ADDRESS: the link of a new login mail to ADDRESS
    local f l
    for _ in $(seq 1 150); do
        for f in $(pfx_maildir_files catchall); do
            grep -qxF "$f" "$W/seen" && continue
            grep -qi "^To: <$1>" "$f" || continue
            l=$(pli_mail_part "$f" text/plain | grep -oE "$U/login/[A-Za-z0-9_-]+" | head -n 1)
            if [ -n "$l" ]; then echo "$f" >>"$W/seen"; echo "$l"; return 0; fi
        done
        sleep 0.2
    done
    fail "no login mail for $1"
}
ask() { # ask JAR ADDRESS [CURL ARGS]: the login form, then asks for a link; prints the code
    local jar=$1 addr=$2; shift 2
    curl -fsS -c "$jar" -b "$jar" -o "$W/form.html" "$@" "$U/"
    curl -sS -c "$jar" -b "$jar" -o "$W/asked.html" -w '%{http_code}' "$@" \
        --data-urlencode "email=$addr" --data-urlencode "csrf=$(csrf_of "$W/form.html")" "$U/"
}
use_link() { # use_link JAR LINK: GET the link page, POST its form; prints the code
    local jar=$1
    curl -fsS -c "$jar" -b "$jar" -o "$W/link.html" "$2"
    curl -sS -c "$jar" -b "$jar" -D "$W/login.h" -o /dev/null -w '%{http_code}' \
        --data-urlencode "token=$(grep -o 'name="token" value="[^"]*"' "$W/link.html" | sed 's/.*value="//; s/"$//')" \
        --data-urlencode "csrf=$(csrf_of "$W/link.html")" "$U/login"
}
login() { # login JAR ADDRESS
    [ "$(ask "$1" "$2")" = 200 ] || fail "asking a link for $2: $(cat "$W/asked.html")"
    [ "$(use_link "$1" "$(login_mail "$2")")" = 303 ] || fail "login of $2 refused"
}

code "$U/" >/dev/null
grep -q '<label for="email">Adresse électronique</label>' "$W/out" || fail "no login form"
[ "$(ask "$W/a.jar" alice@buyer.example)" = 200 ] || fail "alice's request"
cp "$W/asked.html" "$W/asked-alice.html"
grep -q "Si l'adresse alice@buyer.example est celle d'un acheteur" "$W/asked-alice.html" || fail "no confirmation"
nsink=$(pfx_sink_count)
[ "$(ask "$W/e.jar" eve@remote.example)" = 200 ] || fail "a non-buyer's request was not answered 200"
sed 's/alice@buyer.example/X/g; s/name="csrf" value="[^"]*"/CSRF/' "$W/asked-alice.html" >"$W/p1"
sed 's/eve@remote.example/X/g; s/name="csrf" value="[^"]*"/CSRF/' "$W/asked.html" >"$W/p2"
diff -u "$W/p1" "$W/p2" >&2 || fail "a non-buyer gets another page than a buyer"
link=$(login_mail alice@buyer.example)
mail=$(tail -n 1 "$W/seen")
grep -q "^From: .*<pli-bounce@buyer.example>" "$mail" || fail "login mail From"
grep -q "^Auto-Submitted: auto-generated" "$mail" || fail "login mail is not auto-generated"
sleep 1
[ "$(pfx_sink_count)" = "$nsink" ] || fail "something was mailed out for a non-buyer"
if grep -rqs "eve@remote.example" "$PFX_MAIL_DIR"; then fail "a mail went to the non-buyer"; fi
echo "ok 2 - a buyer and a non-buyer get the same page; only the buyer is mailed a link"

[ "$(use_link "$W/a.jar" "$link")" = 303 ] || fail "login refused"
tr -d '\r' <"$W/login.h" | qgrep -i '^Location: /suivi/$' || fail "no redirect to /suivi/"
sc=$(tr -d '\r' <"$W/login.h" | grep -i '^Set-Cookie: pli_session=')
for attr in HttpOnly SameSite=Strict Path=/suivi/ Max-Age=28800; do
    echo "$sc" | qgrep "; $attr" || fail "session cookie without $attr: $sc"
done
if echo "$sc" | qgrep Secure; then fail "Secure cookie over http"; fi
code -b "$W/a.jar" "$U/" >/dev/null
grep -q "Connecté : alice@buyer.example" "$W/out" || fail "not signed in"
grep -q 'id="results-title">16 courriers' "$W/out" || fail "alice does not see her 16 deliveries"
echo "ok 3 - the mailed link signs in (303, cookie HttpOnly SameSite=Strict Path Max-Age 8 h)"

[ "$(use_link "$W/x.jar" "$link")" != 303 ] || fail "a used link signed in again"
c=$(code "$link"); [ "$c" = 410 ] || fail "a used link's page answered $c"
grep -q "Lien de connexion non valable" "$W/out" || fail "used link page"
c=$(code "$U/login/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); [ "$c" = 410 ] || fail "an unknown link answered $c"
echo "ok 4 - a used link and an unknown one are refused (410)"

# a link asked now is checked for expiry at the end (login_link_minutes: 1)
[ "$(ask "$W/late.jar" alice@buyer.example)" = 200 ] || fail "second request"
late_link=$(login_mail alice@buyer.example)
curl -fsS -c "$W/late.jar" -b "$W/late.jar" -o "$W/late.html" "$late_link"
late_started=$(date +%s)

# CSRF
c=$(code -b "$W/e.jar" --data-urlencode "email=alice@buyer.example" "$U/"); [ "$c" = 403 ] || fail "login request without CSRF: $c"
c=$(code -b "$W/e.jar" --data-urlencode "email=alice@buyer.example" --data-urlencode "csrf=forged-forged-forged-forged" "$U/")
[ "$c" = 403 ] || fail "login request with a forged CSRF: $c"
c=$(code -b "$W/a.jar" -X POST "$U/logout"); [ "$c" = 403 ] || fail "logout without CSRF: $c"
code -b "$W/a.jar" "$U/" >/dev/null; grep -q "Connecté : alice" "$W/out" || fail "a refused logout ended the session"
echo "ok 5 - POSTs without their CSRF token are refused (403)"

# rate limit per address (logins_per_hour: 4), counted alike for buyers and non-buyers
for i in 1 2 3 4; do [ "$(ask "$W/z.jar" zed@elsewhere.example)" = 200 ] || fail "request $i for zed"; done
c=$(ask "$W/z.jar" zed@elsewhere.example); [ "$c" = 429 ] || fail "5th request for one address: $c"
# per client address (through the trusted proxy 127.0.0.1)
for i in $(seq 1 40); do ask "$W/c.jar" "n$i@elsewhere.example" -H "X-Forwarded-For: 192.0.2.7" >/dev/null; done
c=$(ask "$W/c.jar" n41@elsewhere.example -H "X-Forwarded-For: 192.0.2.7"); [ "$c" = 429 ] || fail "41st request from one client: $c"
c=$(ask "$W/c2.jar" n42@elsewhere.example -H "X-Forwarded-For: 192.0.2.8"); [ "$c" = 200 ] || fail "another client was limited: $c"
echo "ok 6 - login requests limited per address (4/h) and per client address (40/h): 429"

# ---- the list: every filter alone and combined
total() { # total QUERY: the count the list page shows
    curl -fsS -b "$W/a.jar" -o "$W/list.html" "$U/?$1"
    sed -n 's/.*id="results-title">\([0-9]*\) courrier.*/\1/p' "$W/list.html"
}
rows() { grep -c 'data-label="Objet"' "$W/list.html" || true; }
unesc() { /usr/bin/python3 -c 'import html,sys; sys.stdout.write(html.unescape(sys.stdin.read()))' <"$1"; }
expect() { local t; t=$(total "$2"); [ "$t" = "$1" ] || fail "?$2: $t, expected $1"; }
expect 16 ""
expect 1 "status=read"; expect 1 "status=reply_unread"; expect 1 "status=not_delivered"
expect 12 "status=delivered"; expect 1 "status=sending"; expect 0 "status=reply_read"
expect 13 "status=read&status=delivered"
expect 12 "q=concourir"; expect 13 "q=offre"; expect 1 "q=REPONSE"; expect 0 "q=inexistant"
expect 12 "type=invitation"; expect 1 "type=rejet"; expect 0 "type=attribution"
expect 9 "rcpt=p0"; expect 1 "rcpt=HARDFAIL"; expect 0 "rcpt=ok9"
expect 1 "consultation=2024AK_001"; expect 0 "consultation=2024AK_999"
today=$(TZ=Europe/Paris date +%F); yesterday=$(TZ=Europe/Paris date -d yesterday +%F); tomorrow=$(TZ=Europe/Paris date -d tomorrow +%F)
expect 16 "since=$today"; expect 16 "until=$today"; expect 0 "until=$yesterday"; expect 0 "since=$tomorrow"
expect 16 "since=$yesterday&until=$today"
expect 3 "type=invitation&rcpt=p1"; expect 1 "status=read&q=offre&type=rejet&consultation=2024AK_001&since=$today"
expect 0 "status=not_delivered&type=invitation"
for bad in "since=31/12/2024" "until=2024-13-45" "since=$today&until=$yesterday" "type=bogus"; do
    c=$(code -b "$W/a.jar" "$U/?$bad"); [ "$c" = 400 ] || fail "?$bad answered $c"
    grep -q 'class="warning" role="alert"' "$W/out" || fail "?$bad: no error shown"
done
total "status=read&q=offre" >/dev/null
grep -q 'id="st-read" name="status" value="read" checked' "$W/list.html" || fail "the filter form does not keep the status"
grep -q 'id="q" name="q" value="offre"' "$W/list.html" || fail "the filter form does not keep the keywords"
echo "ok 7 - every filter alone and combined gives the same totals as the data; bad dates 400"

# paging
total "" >/dev/null; [ "$(rows)" = 10 ] || fail "page 1: $(rows) rows"
grep -q 'aria-current="page"><span class="sr-only">Page </span>1<' "$W/list.html" || fail "page 1 not current"
grep -q '16 courriers – page 1 sur 2' "$W/list.html" || fail "no page count"
total "page=2" >/dev/null; [ "$(rows)" = 6 ] || fail "page 2: $(rows) rows"
grep -q 'Page précédente' "$W/list.html" || fail "no previous link on page 2"
if grep -q 'Page suivante' "$W/list.html"; then fail "a next link on the last page"; fi
total "page=3" >/dev/null; [ "$(rows)" = 0 ] || fail "page 3 has rows"
grep -q "Aucun résultat sur cette page" "$W/list.html" || fail "page 3 does not say it is empty"
total "page=0" >/dev/null; [ "$(rows)" = 10 ] || fail "page 0 is not page 1"
total "page=abc" >/dev/null; [ "$(rows)" = 10 ] || fail "page abc is not page 1"
total "per_page=25" >/dev/null; [ "$(rows)" = 16 ] || fail "25 a page: $(rows) rows"
if grep -q 'aria-label="Pages de résultats"' "$W/list.html"; then fail "pagination on a single page"; fi
total "per_page=50&status=delivered" >/dev/null; [ "$(rows)" = 12 ] || fail "50 a page"
total "per_page=7" >/dev/null; [ "$(rows)" = 10 ] || fail "per_page=7 is not 10"
total "status=delivered&page=2" >/dev/null; [ "$(rows)" = 2 ] || fail "delivered page 2: $(rows)"
unesc "$W/list.html" | qgrep 'href="/suivi/?status=delivered&page=1"' || fail "page links lose the filters"
echo "ok 8 - paging: 10 a page, 25 and 50 on choice, page numbers keep the filters, edges"

# rows: status with E/D/L/R, type, subject, recipient, start of the body; escaping
total "status=read" >/dev/null
grep -q '<span class="status status-read">Lu par le destinataire</span>' "$W/list.html" || fail "row status"
for letter in E D L; do unesc "$W/list.html" | qgrep "<abbr title=\"[^\"]*\">$letter</abbr> [0-9][0-9]/[0-9][0-9]/20[0-9][0-9] - " || fail "row lacks $letter date"; done
grep -q '<td data-label="Type">Courrier de rejet</td>' "$W/list.html" || fail "row type"
grep -q 'Réponse à votre offre</a>' "$W/list.html" || fail "row subject"
grep -q 'Nous avons le regret' "$W/list.html" || fail "row body start"
total "rcpt=hardfail" >/dev/null
grep -q 'Texte &lt;b&gt;gras&lt;&#x2F;b&gt;.' "$W/list.html" || fail "body start not escaped"
echo "ok 9 - each row: status with its dates, type, subject (link), recipient, body start (escaped)"

# ---- rights
d1=$(did s1); d2=$(did s2); d6=$(did s6)
c=$(code -b "$W/a.jar" "$U/d/$d6"); [ "$c" = 404 ] || fail "alice opened bernard's message: $c"
cp "$W/out" "$W/denied.html"
c=$(code -b "$W/a.jar" "$U/d/dnonexistentdelivery0"); [ "$c" = 404 ] || fail "unknown id: $c"
cmp -s "$W/out" "$W/denied.html" || fail "another's message and an unknown id answer differently"
c=$(code -b "$W/a.jar" "$U/d/$d6/receipt.pdf"); [ "$c" = 404 ] || fail "alice got bernard's receipt: $c"
c=$(code -b "$W/a.jar" "$U/?sender=bernard"); grep -q 'results-title">16 courriers' "$W/out" || fail "a sender parameter widened the rights"
login "$W/b.jar" bernard@buyer.example
curl -fsS -b "$W/b.jar" -o "$W/out" "$U/"; grep -q 'results-title">1 courrier<' "$W/out" || fail "bernard does not see exactly his one"
c=$(code -b "$W/b.jar" "$U/d/$d1"); [ "$c" = 404 ] || fail "bernard opened alice's message: $c"
login "$W/dsi.jar" dsi@buyer.example
curl -fsS -b "$W/dsi.jar" -o "$W/out" "$U/"; grep -q 'results-title">17 courriers' "$W/out" || fail "the admin does not see all"
grep -q "(administrateur)" "$W/out" || fail "admin not shown"
c=$(code -b "$W/dsi.jar" "$U/d/$d6"); [ "$c" = 200 ] || fail "admin detail: $c"
c=$(code "$U/d/$d1"); [ "$c" = 303 ] || fail "a detail without a session answered $c"
echo "ok 10 - rights: 404 on another buyer's message (same page as an unknown id), admin sees all"

# ---- the detail, the receipt, the reply
c=$(code -b "$W/a.jar" "$U/d/$d1"); [ "$c" = 200 ] || fail "detail: $c"
for s in "<h2 id=\"info-title\">Informations</h2>" "<h2 id=\"ex-title\">Echanges</h2>" \
    "Envoi du courrier par alice@buyer.example" "Courrier délivré à ok1@remote.example" \
    "Courrier lu par ok1@remote.example" "serveur distant" "2024AK_001" "Courrier de rejet" \
    "Télécharger au format PDF"; do
    grep -qF "$s" "$W/out" || fail "detail lacks: $s"
done
curl -fsS -b "$W/a.jar" -D "$W/pdf.h" -o "$W/r.pdf" "$U/d/$d1/receipt.pdf"
tr -d '\r' <"$W/pdf.h" | qgrep -i '^Content-Type: application/pdf' || fail "receipt content type"
tr -d '\r' <"$W/pdf.h" | qgrep -i "^Content-Disposition: attachment; filename=\"accuse-de-reception-$d1.pdf\"" || fail "receipt file name"
pdftotext "$W/r.pdf" "$W/r.txt"
grep -q "Courrier lu par ok1@remote.example" "$W/r.txt" || fail "the PDF lacks the read"
$PLI verify "$W/r.pdf" >/dev/null || fail "the downloaded receipt does not verify"
echo "ok 11 - detail: informations, timeline with the DSN evidence; the receipt PDF (pdftotext, pli verify)"

c=$(code -b "$W/a.jar" "$U/d/$d2"); [ "$c" = 200 ] || fail "detail 2: $c"
action=$(unesc "$W/out" | grep -o 'action="/suivi/d/[^"]*/reply/[^"]*"' | head -n 1 | sed 's/action="//; s/"$//')
[ -n "$action" ] || fail "no form to open the reply"
if grep -q "Voici &lt;notre&gt; attestation" "$W/out"; then fail "the reply shows before it is opened"; fi
c=$(code -b "$W/a.jar" "$PLI_URL$action/a/0"); [ "$c" = 403 ] || fail "a reply's file before the reply was opened: $c"
c=$(code -b "$W/a.jar" -X POST "$PLI_URL$action"); [ "$c" = 403 ] || fail "opening a reply without CSRF: $c"
[ "$(status_of s2)" = reply_unread ] || fail "a refused POST recorded reply_read"
c=$(code -b "$W/a.jar" --data-urlencode "csrf=$(csrf_of "$W/out")" "$PLI_URL$action"); [ "$c" = 303 ] || fail "opening the reply: $c"
[ "$(status_of s2)" = reply_read ] || fail "opening the reply did not record reply_read"
$PLI show s2@buyer.example --json | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="reply_read"][0]["detail"]["by"]' \
    | qgrep -x alice@buyer.example || fail "reply_read does not say by whom"
code -b "$W/a.jar" "$U/d/$d2" >/dev/null
grep -q "Voici &lt;notre&gt; attestation." "$W/out" || fail "the opened reply is not shown (escaped)"
unesc "$W/out" | qgrep "href=\"$action/a/0\" download>attestation.pdf</a>" || fail "the reply's file is not listed"
curl -fsS -b "$W/a.jar" -o "$W/got.pdf" "$PLI_URL$action/a/0"
cmp -s "$W/got.pdf" "$W/attestation.pdf" || fail "the reply's file differs"
c=$(code -b "$W/b.jar" "$PLI_URL$action/a/0"); [ "$c" = 404 ] || fail "bernard got alice's reply file: $c"
expect 1 "status=reply_read"
echo "ok 12 - opening a reply in the detail records reply_read (by alice), then shows it and its file"

# ---- CSV
curl -fsS -b "$W/a.jar" -D "$W/csv.h" -o "$W/e.csv" "$U/export.csv?status=delivered"
tr -d '\r' <"$W/csv.h" | qgrep -i '^Content-Type: text/csv; charset=utf-8' || fail "CSV type"
[ "$(head -c 3 "$W/e.csv" | od -An -tx1 | tr -d ' ')" = efbbbf ] || fail "CSV has no BOM"
[ "$(wc -l <"$W/e.csv")" = 13 ] || fail "CSV rows: $(wc -l <"$W/e.csv")"
grep -q ',Invitation à concourir,' "$W/e.csv" || fail "CSV lacks the subject"
curl -fsS -b "$W/a.jar" -o "$W/all.csv" "$U/export.csv"
[ "$(wc -l <"$W/all.csv")" = 17 ] || fail "alice's whole CSV: $(wc -l <"$W/all.csv") lines"
if grep -q ok9@remote.example "$W/all.csv"; then fail "alice's CSV holds bernard's message"; fi
curl -fsS -b "$W/a.jar" -o "$W/list.html" "$U/?status=delivered"
unesc "$W/list.html" | qgrep 'href="/suivi/export.csv?status=delivered"' || fail "no export link with the filters"
echo "ok 13 - CSV export of the filtered list (BOM, 12 + header rows), within the rights"
curl -fsS -o "$W/metrics.txt" "$PLI_URL/metrics"
grep -Eq '^pli_linkd_requests_total\{route="suivi",status="303"\} [1-9]' "$W/metrics.txt" || fail "metrics: no suivi 303"
grep -Eq '^pli_linkd_requests_total\{route="suivi",status="404"\} [1-9]' "$W/metrics.txt" || fail "metrics: no suivi 404"
echo "ok 13b - /metrics counts the buyers' area's answers (route suivi: 303, 404 ...)"

# ---- teams: alice and bernard share one; sessions survive the restart (stored)
sed -i 's|^buyers_area: { admins|buyers_area: { teams: { marches: ["alice@buyer.example", "BERNARD@buyer.example"] }, admins|' "$PLI_CONFIG"
restart_linkd
c=$(code -b "$W/a.jar" "$U/d/$d6"); [ "$c" = 200 ] || fail "alice does not see bernard's message in their team: $c"
expect 17 ""
grep -q "envoyé par bernard@buyer.example" "$W/list.html" || fail "the team list does not name senders"
echo "ok 14 - once in one team, alice sees bernard's message (and the session outlived a restart)"

# ---- expiry of the link asked earlier (valid 1 minute)
while [ $(( $(date +%s) - late_started )) -lt 62 ]; do sleep 1; done
c=$(curl -sS -c "$W/late.jar" -b "$W/late.jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "token=${late_link##*/}" --data-urlencode "csrf=$(csrf_of "$W/late.html")" "$U/login")
[ "$c" = 410 ] || fail "an expired link answered $c"
if grep -q pli_session "$W/late.jar"; then fail "an expired link set a session"; fi
echo "ok 15 - an expired link (past login_link_minutes) is refused (410)"

# ---- logout
code -b "$W/a.jar" "$U/" >/dev/null
alice_secret=$(awk '$6=="pli_session"{print $7}' "$W/a.jar")
[ -n "$alice_secret" ] || fail "no session in alice's cookie jar"
c=$(curl -sS -b "$W/a.jar" -c "$W/a.jar" -D "$W/out.h" -o "$W/out" -w '%{http_code}' --data-urlencode "csrf=$(csrf_of "$W/out")" "$U/logout")
[ "$c" = 200 ] || fail "logout: $c"
tr -d '\r' <"$W/out.h" | qgrep -i '^Set-Cookie: pli_session=; .*Max-Age=0' || fail "logout does not clear the cookie"
grep -q "Vous êtes déconnecté" "$W/out" || fail "no logout page"
c=$(code -H "Cookie: pli_session=$alice_secret" "$U/d/$d1"); [ "$c" = 303 ] || fail "the session outlived the logout ($c)"
code -H "Cookie: pli_session=$alice_secret" "$U/" >/dev/null
grep -q '<label for="email">' "$W/out" || fail "a logged-out session still shows the list"
dsi_secret=$(awk '$6=="pli_session"{print $7}' "$W/dsi.jar")
c=$(code -H "Cookie: pli_session=$dsi_secret" "$U/d/$d1"); [ "$c" = 200 ] || fail "another session ended with alice's"
echo "ok 16 - logout deletes the session (its cookie, replayed, opens nothing) and clears the cookie"

# ---- English
sed -i 's|locale: fr|locale: en|' "$PLI_CONFIG"
restart_linkd
curl -fsS -o "$W/en.html" "$U/"
grep -q '<html lang="en">' "$W/en.html" && grep -q "E-mail address" "$W/en.html" || fail "English login page"
curl -fsS -b "$W/dsi.jar" -o "$W/en.html" "$U/?status=delivered"
grep -q "Sent mail tracking" "$W/en.html" && grep -q 'results-title">13 mails' "$W/en.html" || fail "English list"
echo "ok 17 - English pages with organisation.locale: en"
