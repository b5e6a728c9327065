#!/usr/bin/env bash
# pli-linkd over real sockets: a link revoked with `pli revoke` gets the 410 page for every
# URL and records nothing more; with organisation.locale: en the pages are in English
# (landing, content, revoked, unknown), with lang="en".
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup >/dev/null

pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: Premier courrier" --header "Message-ID: <linkd-rev-1@buyer.example>" \
    --attach-type text/plain --attach-name "note.txt" --attach-body "pièce" --body "Corps un."
pfx_wait_sink_count 1 30
link=$(pli_notice_link "$(pfx_sink_files | head -n 1)")
[ -n "$link" ] || fail "no link in the first notice"
curl -fsS -o /dev/null -X POST "$link"
mid=$($PLI show linkd-rev-1@buyer.example --json | pli_json 'j["id"]')
$PLI revoke "$mid" >/dev/null
events_before=$($PLI show "$mid" --json | pli_json 'len(j["deliveries"][0]["events"])')
for method_path in "GET " "POST " "GET /a/0" "GET /html"; do
    method=${method_path%% *}; path=${method_path#* }
    code=$(curl -sS -o "$PLI_WORK/rev.html" -D "$PLI_WORK/h" -w '%{http_code}' -X "$method" "$link$path")
    [ "$code" = 410 ] || fail "$method $path of a revoked link answered $code"
    grep -q "Lien révoqué" "$PLI_WORK/rev.html" || fail "$method $path: no 'Lien révoqué' page"
    grep -qi "^Cache-Control: no-store" "$PLI_WORK/h" || fail "the 410 page lacks Cache-Control"
done
events_after=$($PLI show "$mid" --json | pli_json 'len(j["deliveries"][0]["events"])')
[ "$events_before" = "$events_after" ] || fail "a revoked link recorded events ($events_before -> $events_after)"
echo "ok 1 - revoked link: 410 for landing, open, download and HTML; nothing recorded"

# English: restart pli-linkd with organisation.locale: en
sed -i 's/locale: fr/locale: en/' "$PLI_CONFIG"
grep -q "locale: en" "$PLI_CONFIG" || fail "could not switch the locale"
kill "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
"$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$PLI_WORK/linkd.log" 2>&1 &
PLI_LINKD_PID=$!
pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
_pfx_wait 20 "pli-linkd to listen again" "" curl -fs -o /dev/null "$PLI_URL/healthz"

code=$(curl -sS -o "$PLI_WORK/rev.html" -w '%{http_code}' "$link")
[ "$code" = 410 ] || fail "revoked link in English answered $code"
grep -q '<html lang="en">' "$PLI_WORK/rev.html" || fail "the English page lacks lang=en"
grep -q "Link revoked" "$PLI_WORK/rev.html" || fail "no 'Link revoked' page"
code=$(curl -sS -o "$PLI_WORK/unk.html" -w '%{http_code}' "$PLI_URL/m/ZZZZZZZZZZZZZZZZZZZZZZ")
[ "$code" = 404 ] && grep -q "Unknown link" "$PLI_WORK/unk.html" || fail "no English unknown-link page ($code)"
echo "ok 2 - English revoked and unknown pages"

pfx_send --from alice@buyer.example --to carol@remote.example \
    --header "Subject: [TYPE:attribution] Second courrier" --header "Message-ID: <linkd-rev-2@buyer.example>" \
    --body "Body two."
pfx_wait_sink_count 2 30
link2=""
for f in $(pfx_sink_files); do
    grep -q "^To: <carol@remote.example>" "$f" && link2=$(pli_notice_link "$f")
done
[ -n "$link2" ] || fail "no link in the second notice"
curl -fsS -o "$PLI_WORK/land.html" "$link2"
grep -q '<html lang="en">' "$PLI_WORK/land.html" || fail "English landing lacks lang=en"
grep -q "Open the content of the mail" "$PLI_WORK/land.html" || fail "English landing lacks its button"
grep -q "Sent on" "$PLI_WORK/land.html" || fail "English landing lacks its facts"
curl -fsS -o "$PLI_WORK/content.html" -X POST "$link2"
grep -q "Acknowledgment of receipt recorded on" "$PLI_WORK/content.html" || fail "English content lacks the receipt line"
grep -q "Body two." "$PLI_WORK/content.html" || fail "English content lacks the body"
[ "$($PLI show linkd-rev-2@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')" = read ] \
    || fail "the English POST did not record the read"
echo "ok 3 - English landing and content pages; the read is recorded"
