#!/usr/bin/env bash
# pli-linkd over real sockets, through a real private Postfix: the landing page never
# records a read (20 GETs in a row, as scanners do), the POST records `read` with IP and
# user agent, content URLs are refused before the read, hostile subjects and file names
# come out escaped (pages) and sanitised (headers), security headers on every answer,
# the HTML body under its sandboxing CSP, unknown links and their rate limit, an
# over-limit body gets 413 and the daemon keeps serving, X-Forwarded-For trust, /metrics.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
# Every read recorded (no repeat interval): the reads below are told apart by their details.
PLI_LINKD_YAML="repeat_interval_minutes: 0" pli_setup "  # test settings" >/dev/null
# linkd trusts only 127.0.0.1 as a proxy (the default); a second loopback address
# (127.0.0.2) plays an untrusted client.

$PLI consultation set 2022AK_014 --title 'Travaux <b>gras</b> & "lots"' >/dev/null

mail=$PLI_WORK/hostile.eml
cat >"$mail" <<'MAIL'
From: Alice Acheteuse <alice@buyer.example>
To: bob@remote.example
Subject: [REF:2022AK_014] <script>alert("s")</script> l'offre "finale" & ../../etc
Message-ID: <linkd-pages-1@buyer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset=utf-8

Bonjour <b>pas du HTML</b> & "guillemets" MARQUEUR-TEXTE
--b2
Content-Type: text/html; charset=utf-8

<p>MARQUEUR-HTML</p><script>alert('html')</script>
--b2--
--b1
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''..%2F..%2F%3Cscript%3Ex%3C%2Fscript%3E%22%0D%0ASet-Cookie%3A%20pwn%3D1.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK
--b1
Content-Type: text/html; charset=utf-8
Content-Disposition: attachment; filename="rapport \"final\" été.html"

<script>alert(1)</script>
--b1--
MAIL
pfx_send --from alice@buyer.example --to bob@remote.example --data "$mail"
pfx_wait_sink_count 1 30
notice=$(pfx_sink_files | head -n 1)
link=$(pli_notice_link "$notice")
[ -n "$link" ] || fail "no link in the notice"
token=${link##*/}
mid=$($PLI show linkd-pages-1@buyer.example --json | pli_json 'j["id"]')
status_of() { $PLI show "$mid" --json | pli_json 'j["deliveries"][0]["status"]'; }
kinds_of() { $PLI show "$mid" --json | pli_json '",".join(e["kind"] for e in j["deliveries"][0]["events"])'; }
echo "ok 1 - notice with link (message $mid)"

# --- the landing page: 20 GETs, as scanners and previews do, change nothing
before=$(status_of)
hdrs=$PLI_WORK/h.txt
for i in $(seq 1 20); do
    code=$(curl -sS -o "$PLI_WORK/landing.html" -D "$hdrs" -w '%{http_code}' -A "scanner/$i" "$link")
    [ "$code" = 200 ] || fail "GET $i of the landing page answered $code"
done
grep -q '<form method="post" action="/m/'"$token"'">' "$PLI_WORK/landing.html" || fail "landing lacks the form"
grep -q 'Accéder au contenu du courrier' "$PLI_WORK/landing.html" || fail "landing lacks the button"
grep -q '<html lang="fr">' "$PLI_WORK/landing.html" || fail "landing lacks lang=fr"
grep -q 'Travaux &lt;b&gt;gras&lt;&#x2F;b&gt; &amp; &quot;lots&quot;' "$PLI_WORK/landing.html" \
    || fail "landing lacks the escaped consultation title"
grep -q '&lt;script&gt;alert(&quot;s&quot;)&lt;&#x2F;script&gt; l&#39;offre &quot;finale&quot; &amp; ..&#x2F;..&#x2F;etc' "$PLI_WORK/landing.html" \
    || fail "the hostile subject is not escaped on the landing page"
if grep -q '<script' "$PLI_WORK/landing.html"; then fail "markup from the subject got through"; fi
after=$(status_of)
[ "$before" = "$after" ] || fail "20 GETs changed the status from $before to $after"
kinds=$(kinds_of)
case ",$kinds," in *,read,*) fail "a GET recorded a read: $kinds" ;; esac
nfetched=$($PLI show "$mid" --json | pli_json 'sum(1 for e in j["deliveries"][0]["events"] if e["kind"]=="fetched")')
[ "$nfetched" = 1 ] || fail "expected one rate-limited fetched event for 20 GETs, got $nfetched"
echo "ok 2 - 20 GETs: status stays $after, no read, one fetched event"

# --- security headers on the page
for h in "Content-Security-Policy: .*frame-ancestors 'none'" "Referrer-Policy: no-referrer" \
         "Cache-Control: no-store" "X-Content-Type-Options: nosniff"; do
    grep -qiE "^$h" "$hdrs" || fail "landing lacks header $h"
done
echo "ok 3 - security headers"

# --- content URLs before the read
for path in html a/0 a/1 reply; do
    code=$(curl -sS -o "$PLI_WORK/refused.html" -w '%{http_code}' "$link/$path")
    [ "$code" = 403 ] || [ "$code" = 404 ] || fail "$path before the read answered $code"
done
code=$(curl -sS -o "$PLI_WORK/refused.html" -w '%{http_code}' "$link/a/0")
[ "$code" = 403 ] || fail "download before the read answered $code, not 403"
grep -q "accusé de réception" "$PLI_WORK/refused.html" || fail "the refusal page does not say why"
case ",$(kinds_of)," in *,download,*) fail "a refused download was recorded" ;; esac
echo "ok 4 - html, attachments refused before the read (403)"

# --- the POST records the read with IP and user agent, every time
curl -sS -o "$PLI_WORK/content.html" -D "$hdrs" -A "Navigateur/1.0 (test)" -X POST "$link"
grep -q "Accusé de réception enregistré" "$PLI_WORK/content.html" || fail "content lacks the receipt line"
grep -q "MARQUEUR-TEXTE" "$PLI_WORK/content.html" || fail "content lacks the text body"
grep -q 'Bonjour &lt;b&gt;pas du HTML&lt;&#x2F;b&gt; &amp; &quot;guillemets&quot;' "$PLI_WORK/content.html" \
    || fail "the text body is not escaped"
if grep -q "MARQUEUR-HTML" "$PLI_WORK/content.html"; then fail "the HTML body was inlined"; fi
grep -q '<iframe class="body-html" title="[^"]*" sandbox src="/m/'"$token"'/html">' "$PLI_WORK/content.html" \
    || fail "no sandboxed iframe for the HTML body"
if grep -qi '<script' "$PLI_WORK/content.html"; then fail "markup from the message got through"; fi
# the milter keeps the last path component and drops CR/LF; the page escapes the rest
grep -q 'a/0" download>script&gt;&quot;Set-Cookie: pwn=1.pdf</a>' "$PLI_WORK/content.html" \
    || fail "the hostile file name is not shown escaped: $(grep -o 'a/0" download>[^<]*' "$PLI_WORK/content.html")"
[ "$(status_of)" = read ] || fail "status after POST is $(status_of)"
json=$($PLI show "$mid" --json)
echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="read"][0]["detail"]["user_agent"]' \
    | qgrep -x "Navigateur/1.0 (test)" || fail "read lacks the user agent"
echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="read"][0]["detail"]["ip"]' \
    | qgrep -x "127.0.0.1" || fail "read lacks the IP"
curl -sS -o /dev/null -A "Second/2.0" -X POST "$link"
nread=$($PLI show "$mid" --json | pli_json 'sum(1 for e in j["deliveries"][0]["events"] if e["kind"]=="read")')
[ "$nread" = 2 ] || fail "a second POST should record a second read, got $nread"
echo "ok 5 - POST records read (IP, user agent), again on a second open"

# --- the HTML body: own URL, sandboxing CSP, framable only by us
curl -sS -o "$PLI_WORK/body.html" -D "$hdrs" "$link/html"
grep -q "MARQUEUR-HTML" "$PLI_WORK/body.html" || fail "the HTML body URL lacks the body"
grep -qiE "^Content-Security-Policy: sandbox; default-src 'none'.*frame-ancestors 'self'" "$hdrs" \
    || fail "the HTML body lacks its sandboxing CSP"
echo "ok 6 - HTML body served under CSP sandbox"

# --- downloads: type, nosniff, RFC 6266/5987 names without CR/LF, quotes or directories
curl -sS -o "$PLI_WORK/a0" -D "$hdrs" -A "DL/1.0" "$link/a/0"
tr -d '\r' <"$hdrs" >"$hdrs.lf"
grep -qi '^Content-Type: application/pdf$' "$hdrs.lf" || fail "attachment 0 type: $(grep -i content-type "$hdrs.lf")"
grep -qi '^X-Content-Type-Options: nosniff$' "$hdrs.lf" || fail "attachment lacks nosniff"
if grep -qi '^Set-Cookie' "$hdrs.lf"; then fail "a file name injected a header"; fi
cd_line=$(grep -i '^Content-Disposition:' "$hdrs.lf")
echo "$cd_line" | grep -E "^Content-Disposition: attachment; filename=\"[^\"/\\\\]*\"; filename\*=UTF-8''[A-Za-z0-9!#$&+.^_\`|~%-]+$" >/dev/null \
    || fail "bad Content-Disposition: $cd_line"
case "$cd_line" in *../*|*'..%2F'*) fail "the name keeps directories: $cd_line" ;; esac
head -c 5 "$PLI_WORK/a0" | qgrep '%PDF-' || fail "attachment 0 has the wrong bytes"
curl -sS -o "$PLI_WORK/a1" -D "$hdrs" "$link/a/1"
tr -d '\r' <"$hdrs" >"$hdrs.lf"
grep -qi "^Content-Disposition: attachment; filename=\"rapport _final_ __t__.html\"; filename\*=UTF-8''rapport%20%22final%22%20%C3%A9t%C3%A9.html$" "$hdrs.lf" \
    || fail "bad Content-Disposition for a quoted UTF-8 name: $(grep -i disposition "$hdrs.lf")"
grep -qi "^Content-Security-Policy: .*sandbox\|^Content-Security-Policy: default-src 'none'" "$hdrs.lf" \
    || fail "an HTML attachment lacks a CSP"
ndl=$($PLI show "$mid" --json | pli_json 'sum(1 for e in j["deliveries"][0]["events"] if e["kind"]=="download")')
[ "$ndl" = 2 ] || fail "expected 2 download events, got $ndl"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link/a/9")
[ "$code" = 404 ] || fail "a missing attachment answered $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link/a/..%2F..%2Fetc")
[ "$code" = 404 ] || fail "a path attack answered $code"
echo "ok 7 - downloads: type, nosniff, safe RFC 6266/5987 names, download events"

# --- replies are refused when the message does not allow them
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link/reply")
[ "$code" = 403 ] || fail "reply form on a message without [REPONSE] answered $code"
echo "ok 8 - no reply without the reply option"

# --- an over-limit body: 413 at once, and the daemon keeps serving
head -c 200000 /dev/zero | tr '\0' 'a' >"$PLI_WORK/big"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary @"$PLI_WORK/big" "$link" || true)
[ "$code" = 413 ] || fail "a 200 kB POST answered $code, not 413"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H "Transfer-Encoding: chunked" \
    --data-binary @"$PLI_WORK/big" "$link" || true)
[ "$code" = 413 ] || [ "$code" = 000 ] || fail "a chunked 200 kB POST answered $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link")
[ "$code" = 200 ] || fail "after the 413, the landing page answered $code"
curl -fsS "$PLI_URL/healthz" | qgrep -x ok || fail "healthz after 413"
big_header=$(head -c 70000 /dev/zero | tr '\0' 'x')
hcode=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Big: $big_header" "$link" || true)
[ "$hcode" = 431 ] || [ "$hcode" = 413 ] || fail "a 70 kB header answered $hcode"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link")
[ "$code" = 200 ] || fail "after the oversized header, the landing page answered $code"
echo "ok 9 - over-limit body gets 413, a 70 kB header $hcode; the daemon keeps serving"

# --- X-Forwarded-For: believed from the trusted proxy only
curl -sS -o /dev/null -H "X-Forwarded-For: 198.51.100.7, 203.0.113.9" -A "ViaProxy/1" -X POST "$link"
curl -sS -o /dev/null --interface 127.0.0.2 -H "X-Forwarded-For: 203.0.113.66" -A "Spoofer/1" -X POST "$link"
json=$($PLI show "$mid" --json)
ip_of() { echo "$json" | pli_json "[e for e in j['deliveries'][0]['events'] if e['kind']=='read' and e['detail'].get('user_agent')=='$1'][0]['detail']['ip']"; }
[ "$(ip_of ViaProxy/1)" = 203.0.113.9 ] || fail "X-Forwarded-For from the trusted proxy not used: $(ip_of ViaProxy/1)"
[ "$(ip_of Spoofer/1)" = 127.0.0.2 ] || fail "X-Forwarded-For from an untrusted peer was believed: $(ip_of Spoofer/1)"
echo "ok 10 - X-Forwarded-For used from trusted proxies only"

# --- unknown links: a clear page, nothing revealed, then 429 per client address
code=$(curl -sS -o "$PLI_WORK/unknown.html" -w '%{http_code}' --interface 127.0.0.2 "$PLI_URL/m/AAAAAAAAAAAAAAAAAAAAAA")
[ "$code" = 404 ] || fail "an unknown token answered $code"
grep -q "Lien inconnu" "$PLI_WORK/unknown.html" || fail "no 'Lien inconnu' page"
for i in $(seq 2 20); do
    curl -sS -o /dev/null --interface 127.0.0.2 "$PLI_URL/m/BBBBBBBBBBBBBBBBBBBBB$i"
done
code=$(curl -sS -o "$PLI_WORK/429.html" -D "$hdrs" -w '%{http_code}' --interface 127.0.0.2 "$PLI_URL/m/CCCCCCCCCCCCCCCCCCCCCC")
[ "$code" = 429 ] || fail "the 21st unknown token in a minute answered $code, not 429"
grep -qi '^Retry-After: 60' "$hdrs" || fail "429 without Retry-After"
# the blocked address may be a whole NAT: its valid links still answer, unknown ones do not
code=$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "$link")
[ "$code" = 200 ] || fail "a blocked address is locked out of a valid link ($code)"
code=$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -X POST "$link")
[ "$code" = 200 ] || fail "a blocked address cannot open a valid link ($code)"
code=$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "$PLI_URL/m/DDDDDDDDDDDDDDDDDDDDDD")
[ "$code" = 429 ] || fail "the blocked address got an unknown token answered ($code)"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$link")
[ "$code" = 200 ] || fail "another address is blocked too ($code)"
echo "ok 11 - unknown links: 404 page, 429 after 20 a minute for that address's unknown links only"

# --- pages that are not links; /metrics for loopback clients without a proxy
code=$(curl -sS -o /dev/null -D "$hdrs" -w '%{http_code}' "$PLI_URL/nothing/here")
[ "$code" = 404 ] || fail "an unknown path answered $code"
grep -qi "^Content-Security-Policy:" "$hdrs" || fail "the 404 page lacks the CSP"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: 198.51.100.7" "$PLI_URL/metrics")
[ "$code" = 404 ] || fail "/metrics through the proxy answered $code"
curl -fsS "$PLI_URL/metrics" >"$PLI_WORK/metrics.txt"
m() { grep -E "^$1 " "$PLI_WORK/metrics.txt" | awk '{print $2}'; }
[ "$(m 'pli_linkd_requests_total\{route="landing",status="200"\}')" -ge 21 ] || fail "metrics: landing 200 count"
[ "$(m 'pli_linkd_reads_total')" -ge 4 ] || fail "metrics: reads"
[ "$(m 'pli_linkd_downloads_total')" = 2 ] || fail "metrics: downloads"
[ "$(m 'pli_linkd_requests_total\{route="open",status="413"\}')" -ge 1 ] || fail "metrics: 413"
[ "$(m 'pli_linkd_events_total\{kind="rate_limited"\}')" -ge 2 ] || fail "metrics: rate limited"
grep -q '^pli_linkd_request_duration_seconds_bucket{le="+Inf"} ' "$PLI_WORK/metrics.txt" || fail "metrics: histogram"
grep -q '^# TYPE pli_linkd_request_duration_seconds histogram' "$PLI_WORK/metrics.txt" || fail "metrics: TYPE"
echo "ok 12 - 404 page, /metrics (Prometheus text) for local clients only"
