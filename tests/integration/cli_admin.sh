#!/usr/bin/env bash
# pli revoke, export and purge on a store filled through the real path: a revoked link stops
# working (410) and the event is recorded; export gives CSV (UTF-8 with BOM, one row per
# delivery, accents intact) and JSON; purge --dry-run lists without deleting, purge deletes.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

pfx_send --from alice@buyer.example --to "bob@remote.example,carol@other.example" \
    --header "Subject: [TYPE:notification] Notification du marché « été »" \
    --header "Message-ID: <ad-1@buyer.example>" --body "Le marché vous est attribué."
pfx_send --from alice@buyer.example --to dan@remote.example \
    --header "Subject: Courrier, avec \"guillemets\"; et virgule" \
    --header "Message-ID: <ad-2@buyer.example>" --body "Texte."
pfx_wait_sink_count 3 30
link_bob=$(for f in $(pfx_sink_files); do
    if grep -q "^To: <bob@remote.example>" "$f"; then pli_notice_link "$f"; fi; done | head -n 1)
link_carol=$(for f in $(pfx_sink_files); do
    if grep -q "^To: <carol@other.example>" "$f"; then pli_notice_link "$f"; fi; done | head -n 1)
[ -n "$link_bob" ] && [ -n "$link_carol" ] || fail "notices not found"
json=$($PLI show ad-1@buyer.example --json)
mid=$(echo "$json" | pli_json 'j["id"]')
bob=$(echo "$json" | pli_json '[d["id"] for d in j["deliveries"] if d["recipient"]=="bob@remote.example"][0]')

out=$($PLI revoke ad-1@buyer.example --recipient bob@remote.example)
echo "$out" | qgrep "Lien de bob@remote.example ($bob) révoqué" || fail "revoke: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d open=1 "$link_bob")
[ "$code" = 410 ] || fail "a revoked link answers $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$link_carol")
[ "$code" = 200 ] || fail "the other recipient's link answers $code"
$PLI show "$bob" --json | pli_json '[e["kind"] for e in j["deliveries"][0]["events"]]' | qgrep "'revoked'" \
    || fail "no revoked event"
$PLI revoke "$bob" | qgrep "déjà révoqué" || fail "a second revoke"
[ "$($PLI show "$bob" --json | pli_json 'len([e for e in j["deliveries"][0]["events"] if e["kind"]=="revoked"])')" = 1 ] \
    || fail "a second revoke recorded another event"
set +e; $PLI revoke dnope >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || fail "revoke of an unknown id: exit $rc"
$PLI revoke "$mid" | qgrep "carol@other.example" || fail "revoke of a whole message"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$link_carol")" = 410 ] || fail "carol's link still works"
echo "ok 1 - revoke: the link answers 410, one revoked event, others untouched until revoked"

$PLI export >"$W/export.csv"
head -c 3 "$W/export.csv" | od -An -tx1 | tr -d ' \n' | qgrep -x efbbbf || fail "no UTF-8 BOM"
[ "$(wc -l <"$W/export.csv")" = 4 ] || fail "header + 3 rows expected, got $(wc -l <"$W/export.csv")"
/usr/bin/python3 - "$W/export.csv" <<'PY' || fail "the CSV does not parse as expected"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding='utf-8-sig', newline='')))
assert len(rows) == 3, rows
subjects = sorted(r['subject'] for r in rows)
assert subjects[0] == 'Courrier, avec "guillemets"; et virgule', subjects
assert subjects[1] == 'Notification du marché « été »', subjects
assert {r['revoked'] for r in rows if r['recipient'] != 'dan@remote.example'} == {'yes'}
assert all(r['sent_at'][:2] == '20' and r['delivery_id'].startswith('d') for r in rows)
assert {r['type'] for r in rows} == {'notification', 'libre'}
PY
$PLI export --format json | pli_json 'j["format_version"], j["total"], len(j["items"]), sorted(j["items"][0])' \
    | qgrep "^1 3 3 \[" || fail "JSON export: $($PLI export --format json | head -c 300)"
[ "$($PLI export --since "$(TZ=Europe/Paris date -d tomorrow +%F)" --format json | pli_json 'j["total"]')" = 0 ] \
    || fail "export --since tomorrow is not empty"
$PLI export -o "$W/out.csv" 2>/dev/null && cmp -s "$W/out.csv" "$W/export.csv" || fail "export -o"
set +e; $PLI export --format xml >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 64 ] || fail "export --format xml: exit $rc"
echo "ok 2 - export: CSV with BOM (quotes, commas, accents), JSON, --since, -o"

out=$($PLI purge --older-than 30)
echo "$out" | qgrep "^0 courrier(s)" || fail "recent mail was purged: $out"
out=$($PLI purge --older-than 0 --dry-run)
echo "$out" | qgrep "^2 courrier(s) envoyé(s) avant le .* seraient supprimés : 3 remise(s)" || fail "dry run: $out"
echo "$out" | qgrep "$mid" || fail "dry run does not list $mid"
$PLI show "$mid" >/dev/null || fail "a dry run deleted"
$PLI purge --older-than 0 --json | pli_json 'j["dry_run"], len(j["messages"]), j["deliveries"]' \
    | qgrep -x "False 2 3" || fail "purge --json"
set +e; $PLI show "$mid" >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || fail "a purged message is still there (exit $rc)"
[ "$($PLI list --json | pli_json 'j["total"]')" = 0 ] || fail "the list still shows purged rows"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$link_carol")" = 404 ] || fail "a purged link does not answer 404"
echo "ok 3 - purge: --dry-run lists and keeps, purge deletes messages, rows and links"
