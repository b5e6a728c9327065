#!/usr/bin/env bash
# Store faults, with the real daemons and Postfix:
# 1. A full store (LMDB map full): the milter answers 451 4.3.0 at end of data, logs
#    decision=tempfail_store_full with what to do, records nothing half; after the map is
#    made larger (store.map_size_mb, daemons restarted) the client's retry is registered once,
#    and linkd and the CLI work on the grown store.
# 2. A corrupted record (a delivery's bytes overwritten with mdb_load): `pli show` and
#    `pli list` fail with one sentence and exit 74, pli-linkd answers its error page and keeps
#    serving, the milter tempfails the DSN for it (451) and keeps registering other mail.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
command -v mdb_load >/dev/null || skip "mdb_load (lmdb-utils) missing"
pli_setup
W=$PLI_WORK
sed -i 's|map_size_mb: 256|map_size_mb: 16|' "$PLI_CONFIG"
grep -q 'map_size_mb: 16' "$PLI_CONFIG" || fail "could not set store.map_size_mb"

restart_daemons() {
    kill "$PLI_MILTER_PID" "$PLI_LINKD_PID" 2>/dev/null || true
    wait "$PLI_MILTER_PID" "$PLI_LINKD_PID" 2>/dev/null || true
    rm -f "$PLI_SOCKET"
    pli_start_milter
    "$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$W/linkd.log" 2>&1 &
    PLI_LINKD_PID=$!
    pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
    _pfx_wait 20 "pli-linkd to listen" "" curl -fs -o /dev/null "$PLI_URL/healthz"
}
# The store was created with 256 MB by the first daemons: start again on a new, 16 MB store.
kill "$PLI_MILTER_PID" "$PLI_LINKD_PID"; wait "$PLI_MILTER_PID" "$PLI_LINKD_PID" 2>/dev/null || true
rm -rf "$W/store"
restart_daemons

# send N: a message with a 3 MB attachment of its own (random bytes: nothing shared).
send() {
    head -c 3000000 /dev/urandom >"$W/att-$1.bin"
    swaks --server 127.0.0.1 --port "$PFX_PORT_IN" --from alice@buyer.example --to "full$1@remote.example" \
        --header "Subject: Pièce $1" --header "Message-ID: <full-$1@buyer.example>" \
        --body "Pièce jointe $1" --attach "@$W/att-$1.bin" >"$W/swaks-$1.out" 2>&1
}
accepted=0
refused=""
for i in 1 2 3 4 5 6; do
    if send "$i"; then
        accepted=$((accepted + 1))
    else
        refused=$i
        break
    fi
done
[ -n "$refused" ] || fail "six 7 MB messages fitted in a 16 MB store"
grep -qE '<\*\* +451 4\.3\.0 .*store full' "$W/swaks-$refused.out" ||
    fail "message $refused: expected 451 4.3.0 store full: $(grep '<\*\*' "$W/swaks-$refused.out")"
grep -q 'decision=tempfail_store_full .*map_size_mb' "$W/milter.log" || fail "no clear store-full log line"
$PLI show "full-$refused@buyer.example" >/dev/null 2>&1 && fail "the refused message was half recorded"
pfx_wait_sink_count "$accepted" 30
echo "ok 1 - store full after $accepted messages: 451 4.3.0 to the client, decision=tempfail_store_full logged, nothing recorded"

# Make space: a larger map, daemons restarted; the client's retry goes through once.
sed -i 's|map_size_mb: 16|map_size_mb: 64|' "$PLI_CONFIG"
restart_daemons
send "$refused" || fail "the retry after growing the store failed: $(grep '<\*\*' "$W/swaks-$refused.out")"
pfx_wait_sink_count $((accepted + 1)) 30
n=$($PLI show "full-$refused@buyer.example" --json | pli_json 'sum(1 for d in j["deliveries"] for e in d["events"] if e["kind"]=="sent")')
[ "$n" = 1 ] || fail "$n sent events for the retried message"
f=$(grep -l "full$refused@remote.example" $(pfx_sink_files) | head -n 1)
link=$(pli_notice_link "$f")
curl -fsS -X POST -o "$W/content.html" "$link" || fail "linkd cannot read the grown store"
grep -q "att-$refused.bin" "$W/content.html" || fail "the content page lacks the attachment"
echo "ok 2 - store.map_size_mb 16 -> 64 and a restart: the retry is registered once, linkd serves it"

# 2. A corrupted record: the first delivery's bytes replaced by garbage.
did=$($PLI show full-1@buyer.example --json | pli_json 'j["deliveries"][0]["id"]')
link1=$(pli_notice_link "$(grep -l "full1@remote.example" $(pfx_sink_files) | head -n 1)")
{
    printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n'
    printf ' %s\n' "$(printf '%s' "$did" | od -An -tx1 | tr -d ' \n')"
    printf ' ffff0a03787878\n'
    printf 'DATA=END\n'
} >"$W/corrupt.dump"
mdb_load -s deliveries -f "$W/corrupt.dump" "$W/store" || fail "mdb_load failed"
set +e
$PLI show "$did" >"$W/show.out" 2>"$W/show.err"; rc=$?
set -e
[ "$rc" = 74 ] || fail "pli show on a corrupted delivery: exit $rc ($(cat "$W/show.err"))"
[ "$(wc -l <"$W/show.err")" = 1 ] && grep -q 'undecodable record' "$W/show.err" ||
    fail "pli show: not one clear sentence: $(cat "$W/show.err")"
set +e
$PLI list >"$W/list.out" 2>"$W/list.err"; rc=$?
set -e
[ "$rc" = 74 ] || [ "$rc" = 0 ] || fail "pli list on a corrupted store: exit $rc ($(cat "$W/list.err"))"
echo "ok 3 - pli show: '$(cat "$W/show.err")' (exit 74); pli list: exit $rc"

code=$(curl -sS -o "$W/corrupt.html" -w '%{http_code}' "$link1")
[[ $code =~ ^5 ]] || fail "linkd on a corrupted delivery answered $code"
curl -fsS "$PLI_URL/healthz" >/dev/null || fail "linkd stopped serving"
curl -fsS -o /dev/null "$link" || fail "linkd no longer serves the other deliveries"
kill -0 "$PLI_LINKD_PID" || fail "linkd died"
echo "ok 4 - linkd: $code for the corrupted delivery, still serving the others"

# A DSN for the corrupted delivery: 451 (retried later), the milter keeps running.
out=$(swaks --server 127.0.0.1 --port "$PFX_PORT_IN" --from '<>' --to "pli-bounce+$did@buyer.example" \
    --header "Subject: Undelivered Mail Returned to Sender" --body "550 5.1.1 user unknown" 2>&1) &&
    fail "a DSN for a corrupted delivery was accepted: $out"
echo "$out" | qgrep -E '<\*\* +451 4\.3\.0 ' || fail "DSN for a corrupted delivery: $(echo "$out" | grep '<\*\*')"
grep -q "decision=tempfail_store_error .*undecodable" "$W/milter.log" || fail "no clear log line for the corrupted delivery"
kill -0 "$PLI_MILTER_PID" || fail "the milter died"
pfx_send --from alice@buyer.example --to after@remote.example --header "Subject: Après" \
    --header "Message-ID: <after-1@buyer.example>" --body "Toujours là"
pfx_wait_sink_count $((accepted + 2)) 30
echo "ok 5 - milter: 451 for a DSN of the corrupted delivery, and still registers other mail"
