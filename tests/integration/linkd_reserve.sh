#!/usr/bin/env bash
# pli-linkd cannot take the space the milter needs: with a 16 MB map, one link holder fills
# the store through replies (big ones, then smaller and smaller, up to text only) until
# pli-linkd refuses them (507, store.linkd_reserve_percent: 10); a buyer's registered mail
# then still goes through the real milter and Postfix (registered, its notice sent).
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
PLI_MAP_MB=16 \
PLI_LINKD_YAML="reply_max_mb: 1, max_replies_per_delivery: 10000, max_reply_mb_per_delivery: 100000" \
    pli_setup >/dev/null
W=$PLI_WORK

pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: [REPONSE] Réponses" --header "Message-ID: <reserve-1@buyer.example>" \
    --body "Répondez."
pfx_wait_sink_count 1 30
link=$(pli_notice_link "$(pfx_sink_files | head -n 1)")
[ -n "$link" ] || fail "no link in the notice"
curl -fsS -o /dev/null -X POST "$link" || fail "read failed"

refused=0
for size in 900000 100000 10000 1000 0; do
    for i in $(seq 400); do
        if [ "$size" -gt 0 ]; then
            head -c "$size" /dev/urandom >"$W/r.bin"
            code=$(curl -sS -o "$W/r.html" -w '%{http_code}' -F "text=R $size $i" -F files=@"$W/r.bin" "$link/reply")
        else
            code=$(curl -sS -o "$W/r.html" -w '%{http_code}' -F "text=R $size $i" "$link/reply")
        fi
        [ "$code" = 200 ] || break
    done
    [ "$code" = 200 ] && fail "400 replies of $size bytes were all accepted by a 16 MB map"
    [ "$code" = 507 ] || fail "a reply of $size bytes into a full store answered $code, not 507"
    refused=$((refused + 1))
done
grep -q "Enregistrement impossible" "$W/r.html" || fail "the 507 page does not say why"
grep -q 'the store keeps its last 1 MB for registered mail' "$W/linkd.log" ||
    fail "pli-linkd does not log why it refused"
echo "ok 1 - replies fill the store until pli-linkd refuses them (507), down to text only"

# the buyers' registered mail still goes through
pfx_send --from alice@buyer.example --to carol@remote.example \
    --header "Subject: Courrier après le remplissage" --header "Message-ID: <reserve-2@buyer.example>" \
    --body "Toujours enregistré." || fail "registered mail refused once pli-linkd filled what it may"
pfx_wait_sink_count 2 30
grep -q "decision=registered .*from=alice@buyer.example" "$W/milter.log" || fail "no registered decision"
[ "$($PLI show reserve-2@buyer.example --json | pli_json 'j["deliveries"][0]["recipient"]')" = carol@remote.example ] ||
    fail "the mail is not in the store"
echo "ok 2 - after that, a buyer's registered mail goes through the milter and Postfix"
