#!/usr/bin/env bash
# pli store copy through the real CLI: a store filled through Postfix, pli-milter, DSNs and
# pli-linkd, copied from LMDB to a private PostgreSQL cluster and back; what `pli list`,
# `pli show` and `pli verify` see is the same on the three; a re-run adds nothing; a copy
# killed (kill -9) halfway and run again ends with identical counts and verified chains.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS"
pli_setup "keys: { dir: $KEYS }"
W=$PLI_WORK
$PLI keygen >/dev/null
SEED=$PLI_BIN_DIR/bench/pli-seed
[ -x "$SEED" ] || fail "$SEED is not built"

# --- A store filled the real way (LMDB, the configured store).
for i in 1 2 3; do
    pfx_send --from alice@buyer.example --to "ok$i@remote.example" \
        --header "Subject: [TYPE:rejet] [REF:AO-2026-0$i] Réponse à votre offre" \
        --header "Message-ID: <copy$i@buyer.example>" \
        --body "Votre offre n'a pas été retenue ; lot $i."
done
pfx_wait_sink_count 3 60
status_of() { $PLI show "$1@buyer.example" --json | pli_json "j['deliveries'][0]['status']"; }
for i in 1 2 3; do
    for _ in $(seq 1 200); do [ "$(status_of copy$i)" = delivered ] && break; sleep 0.2; done
    [ "$(status_of copy$i)" = delivered ] || fail "copy$i: not delivered"
done
link=$(for f in $(pfx_sink_files); do
    if grep -q "^To: <ok1@remote.example>" "$f"; then pli_notice_link "$f"; fi; done | head -n 1)
[ -n "$link" ] || fail "no notice for ok1"
curl -fsS -o /dev/null -X POST -d open=1 "$link"
for _ in $(seq 1 200); do [ "$(status_of copy1)" = read ] && break; sleep 0.2; done
[ "$(status_of copy1)" = read ] || fail "copy1: not read"

# --- Into PostgreSQL.
start_pg "$W/pg"
URL="postgresql:///pli?host=$W/pg&user=pli"
$PLI store migrate-schema --url "$URL" >/dev/null
out=$($PLI store copy --to "$URL" --json) || fail "pli store copy failed: $out"
echo "$out" | pli_json 'j["ok"] and j["messages"] == 3 and j["added"] == 3 and j["verified"] == 3' |
    qgrep -x True || fail "first copy: $out"
sed "s|^store: {|store: { backend: postgresql, url: \"${URL//&/\\&}\",|" "$PLI_CONFIG" >"$W/pg.yaml"
PG="$PLI_BIN_DIR/admin-cli/pli --config $W/pg.yaml"
same() { # same CMD...: the JSON of `pli CMD` on LMDB and on PostgreSQL
    local a b
    a=$($PLI "$@" --json) b=$($PG "$@" --json)
    [ "$a" = "$b" ] || fail "pli $* differs: LMDB $a, PostgreSQL $b"
}
same list
same list --status read
same list --type rejet --keywords retenue
same show copy1@buyer.example
same show copy3@buyer.example
$PG receipt copy1@buyer.example -o "$W/from-pg.pdf" >/dev/null
$PG verify "$W/from-pg.pdf" >/dev/null || fail "a receipt made from the PostgreSQL copy does not verify"

# --- A re-run adds nothing.
out=$($PLI store copy --to "$URL" --json)
echo "$out" | pli_json 'j["ok"] and j["unchanged"] == 3 and j["added"] == 0 and j["other_records_written"] == 0' |
    qgrep -x True || fail "re-run: $out"

# --- Events recorded since (another read) complete the copy on the next run.
curl -fsS -o /dev/null -X POST -d open=1 "$link"
sleep 0.1
out=$($PLI store copy --to "$URL" --json)
echo "$out" | pli_json 'j["ok"]' | qgrep -x True || fail "third run: $out"
same show copy1@buyer.example

# --- And back to LMDB: a backup that reads without a server.
out=$($PG store copy --to "lmdb:$W/back" --json) || fail "copy back failed: $out"
echo "$out" | pli_json 'j["ok"] and j["added"] == 3' | qgrep -x True || fail "copy back: $out"
sed "s|path: $W/store|path: $W/back|" "$PLI_CONFIG" >"$W/back.yaml"
BACK="$PLI_BIN_DIR/admin-cli/pli --config $W/back.yaml"
[ "$($BACK list --json)" = "$($PLI list --json)" ] || fail "the LMDB copy lists otherwise"
$BACK receipt copy1@buyer.example -o "$W/from-back.pdf" >/dev/null
$BACK verify "$W/from-back.pdf" >/dev/null || fail "a receipt from the copied-back store does not verify"

# --- A copy killed halfway, then run again: identical counts, every chain verified.
"$SEED" --store "$W/big" --deliveries 6000 >/dev/null
"$PLI_PG_BIN/createdb" -h "$W/pg" -U pli big
$PLI store migrate-schema --url "postgresql:///big?host=$W/pg&user=pli" >/dev/null
BIG="postgresql:///big?host=$W/pg&user=pli"
$PLI store copy --from "lmdb:$W/big" --to "$BIG" >"$W/copy.out" 2>"$W/copy.err" &
copier=$!
for _ in $(seq 1 600); do
    qgrep "messages copiés" "$W/copy.err" && break
    kill -0 $copier 2>/dev/null || break
    sleep 0.1
done
kill -9 $copier 2>/dev/null || true
wait $copier 2>/dev/null && fail "the copy ended before it could be interrupted"
qgrep "messages copiés" "$W/copy.err" || fail "the copy printed no progress: $(cat "$W/copy.err")"
out=$($PLI store copy --from "lmdb:$W/big" --to "$BIG" --json) || fail "re-run after kill: $out"
echo "$out" | pli_json 'j["ok"] and j["added"] > 0 and j["unchanged"] > 0 and j["source_deliveries"] == j["copy_deliveries"] == 6000 and j["verified"] == j["messages"]' |
    qgrep -x True || fail "re-run after kill: $out"
echo "store_copy: ok"
