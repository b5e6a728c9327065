#!/usr/bin/env bash
# The browser test of the buyers' area: mail through the real private Postfix (one read,
# one delivered), then Debian's chromium logs in with the link mailed through Postfix,
# filters on "Lu par le destinataire", opens a detail, downloads the receipt PDF (read back
# with pdftotext) and logs out; axe-core checks the login, list and detail pages. The
# screenshots (suivi-list.png ...) stay in $PLI_BIN_DIR/browser-artifacts.
set -euo pipefail
BROWSER_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BROWSER_DIR/../harness/pli_lib.sh"
pfx_require
command -v node >/dev/null || fail "node is not installed (scripts/install-deps installs it)"
command -v pdftotext >/dev/null || fail "pdftotext is not installed (scripts/install-deps installs poppler-utils)"
CHROMIUM=${PLI_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is not installed (scripts/install-deps installs chromium)"
. "$BROWSER_DIR/prepare.sh"
browser_prepare "$BROWSER_DIR"
ARTIFACTS=${PLI_BIN_DIR:-$PLI_SOURCE_DIR/build}/browser-artifacts
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/suivi-*

KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS"
pli_setup "keys: { dir: $KEYS }" >/dev/null
$PLI keygen >/dev/null
for n in 1 2; do
    pfx_send --from alice@buyer.example --to "ok$n@remote.example" \
        --header "Subject: [TYPE:rejet] [REF:2024AK_00$n] Résultat de la consultation $n" \
        --header "Message-ID: <suivi-$n@buyer.example>" --body "Courrier numéro $n au candidat."
done
pfx_wait_sink_count 2 30
for _ in $(seq 1 100); do
    s=$($PLI show suivi-2@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')
    [ "$s" = delivered ] && break; sleep 0.2
done
link=$(for f in $(pfx_sink_files); do
    if grep -q "^To: <ok1@remote.example>" "$f"; then pli_notice_link "$f"; fi; done | head -n 1)
curl -fsS -o /dev/null -X POST "$link"
[ "$($PLI show suivi-1@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')" = read ] \
    || fail "the first mail is not read"

(cd "$BROWSER_RUN" && node suivi.mjs "$PLI_URL" "$PFX_MAIL_DIR/catchall/new" alice@buyer.example "$ARTIFACTS") \
    || fail "the browser run failed (screenshots in $ARTIFACTS)"
[ -s "$ARTIFACTS/suivi-list.png" ] || fail "no screenshot of the list kept"
echo "ok - screenshot of the list: $ARTIFACTS/suivi-list.png"
