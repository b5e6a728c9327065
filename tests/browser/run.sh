#!/usr/bin/env bash
# The browser test: a buyer's mail through the real private Postfix, then Debian's chromium
# (headless, driven by playwright-core) opens the notice's link, presses the button, sees
# the content, downloads an attachment and sends a reply; axe-core checks the landing,
# content, reply and error pages (and the buyer's reply pages). The store must then show
# read, download, reply and reply_read. Screenshots stay in $PLI_BIN_DIR/browser-artifacts.
set -euo pipefail
BROWSER_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BROWSER_DIR/../harness/pli_lib.sh"
pfx_require
command -v node >/dev/null || fail "node is not installed (scripts/install-deps installs it)"
CHROMIUM=${PLI_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is not installed (scripts/install-deps installs chromium)"
. "$BROWSER_DIR/prepare.sh"
browser_prepare "$BROWSER_DIR"
ARTIFACTS=${PLI_BIN_DIR:-$PLI_SOURCE_DIR/build}/browser-artifacts
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/recipient-* "$ARTIFACTS"/sender-* "$ARTIFACTS"/downloaded-* # not suivi-*

pli_setup >/dev/null

mail=$PLI_WORK/browser.eml
cat >"$mail" <<'MAIL'
From: Alice Acheteuse <alice@buyer.example>
To: bob@remote.example
Subject: [REPONSE] [TYPE:complement] Demande de pièces complémentaires
Message-ID: <browser-1@buyer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset=utf-8

Madame, Monsieur, merci de compléter votre dossier. MARQUEUR-NAVIGATEUR
--b2
Content-Type: text/html; charset=utf-8

<p>Madame, Monsieur, merci de compléter votre dossier. <b>HTML-NAVIGATEUR</b></p>
--b2--
--b1
Content-Type: application/pdf
Content-Disposition: attachment; filename="liste des pièces.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK
--b1--
MAIL
pfx_send --from alice@buyer.example --to bob@remote.example --data "$mail"
pfx_wait_sink_count 1 30
link=$(pli_notice_link "$(pfx_sink_files | head -n 1)")
[ -n "$link" ] || fail "no link in the notice"
printf '%%PDF-1.4 piece du candidat\n' >"$PLI_WORK/kbis.pdf"

(cd "$BROWSER_RUN" && node linkd.mjs recipient "$link" "$ARTIFACTS" "liste des pièces.pdf" "$PLI_WORK/kbis.pdf") \
    || fail "the browser run failed (screenshots in $ARTIFACTS)"

json=$($PLI show browser-1@buyer.example --json)
kinds=$(echo "$json" | pli_json '",".join(sorted(set(e["kind"] for e in j["deliveries"][0]["events"])))')
for k in read download reply; do
    case ",$kinds," in *,$k,*) ;; *) fail "the store lacks a $k event: $kinds" ;; esac
done
echo "$json" | pli_json '[e for e in j["deliveries"][0]["events"] if e["kind"]=="read"][0]["detail"]["user_agent"]' \
    | grep -q "HeadlessChrome\|Chrome" || fail "the read event lacks the browser's user agent"
echo "ok - pli show: $kinds"

rlink=""
for _ in $(seq 1 100); do
    for f in $(pfx_maildir_files catchall); do
        l=$(pli_mail_part "$f" text/plain | grep -oE "$PLI_URL/r/[A-Za-z0-9_-]+" | head -n 1 || true)
        [ -n "$l" ] && rlink=$l
    done
    [ -n "$rlink" ] && break
    sleep 0.2
done
[ -n "$rlink" ] || fail "no reply notice reached the buyer"
(cd "$BROWSER_RUN" && node linkd.mjs sender "$rlink" "$ARTIFACTS") \
    || fail "the browser run of the buyer's reply pages failed (screenshots in $ARTIFACTS)"
status=$($PLI show browser-1@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')
[ "$status" = reply_read ] || fail "status after the buyer opened the reply: $status"
ls "$ARTIFACTS"/*.png >/dev/null || fail "no screenshot kept"
echo "ok - status reply_read; screenshots in $ARTIFACTS"
