#!/usr/bin/env bash
# The CLI benchmark (not part of make check): seeds a store with DELIVERIES deliveries
# (default 1,000,000) through the core API (pli-seed), then prints `pli list` times for
# typical filters (target: under 100 ms each) and receipts per second (target: over 50):
# in process, one `pli receipt` process each, and one `pli receipt --out-dir` for many.
#
#   bench/cli-bench.sh [BUILD_DIR=build] [DELIVERIES=1000000]
# The store is kept in $PLI_BENCH_DIR (default /tmp/pli-bench-N) and reused when it exists.
# PLI_BENCH_STORE=postgresql: the store is a local PostgreSQL 15 cluster in $PLI_BENCH_DIR/pg
# (default /tmp/pli-bench-pg-N; started by the script with default, durable settings and
# stopped at its end; seeded with fsync off, then VACUUM ANALYZE), and the section of
# durable appends is left out (bench/bench.sh measures read POSTs on PostgreSQL).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
PG=$([ "${PLI_BENCH_STORE:-lmdb}" = postgresql ] && echo 1 || echo 0)
DIR=${PLI_BENCH_DIR:-/tmp/pli-bench$([ "$PG" = 1 ] && echo -pg)-$N}
PLI=$BUILD/admin-cli/pli
SEED=$BUILD/bench/pli-seed
for b in "$PLI" "$SEED"; do
    [ -x "$b" ] || { echo "$b is not built (ninja -C $BUILD pli pli-seed)" >&2; exit 1; }
done
mkdir -p "$DIR"
STORE_YAML="{ path: $DIR/store, map_size_mb: 16384 }"
SEED_STORE=(--store "$DIR/store")
if [ "$PG" = 1 ]; then
    PG_BIN=${PLI_PG_BIN:-/usr/lib/postgresql/15/bin}
    [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL 15 is not installed ($PG_BIN/initdb)" >&2; exit 1; }
    AS=()
    [ "$(id -u)" -ne 0 ] || AS=(runuser -u nobody --)
    pg() { # pg start|stop [SERVER OPTIONS]
        if [ "$1" = start ]; then
            "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 120 \
                -o "-k $DIR/pg -c listen_addresses='' ${2:-}" start >/dev/null
        else
            "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w -t 120 stop >/dev/null
        fi
    }
    URL="host=$DIR/pg user=pli dbname=pli"
    STORE_YAML="{ backend: postgresql, url: \"$URL\", path: $DIR/store }"
    SEED_STORE=(--pg-url "$URL")
fi
cat >"$DIR/pli.yaml" <<YAML
organisation: { name: "Région Exemple", locale: fr, timezone: Europe/Paris }
store: $STORE_YAML
milter: { socket: "unix:$DIR/milter.sock" }
policy: { buyers: ["*@buyer.example"] }
bounce: { address: "pli-bounce@buyer.example" }
linkd: { public_url: "https://pli.example" }
keys: { dir: $DIR/keys }
YAML
P="$PLI --config $DIR/pli.yaml"
[ -f "$DIR/keys/receipt.key" ] || $P keygen >/dev/null
if [ ! -f "$DIR/seeded" ]; then
    rm -rf "$DIR/store"
    start=$(date +%s%N)
    if [ "$PG" = 1 ]; then
        rm -rf "$DIR/pg"
        mkdir -p "$DIR/pg"
        [ "$(id -u)" -ne 0 ] || chown nobody "$DIR/pg"
        "${AS[@]}" "$PG_BIN/initdb" -D "$DIR/pg/data" -U pli --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$DIR/pg/initdb.log"
        # Seeding only: no fsync (the store is thrown away if the machine stops meanwhile).
        pg start "-c fsync=off"
        "$PG_BIN/createdb" -h "$DIR/pg" -U pli pli
        echo "Seeding $N deliveries into the PostgreSQL cluster $DIR/pg ..."
        "$SEED" "${SEED_STORE[@]}" --deliveries "$N"
        "$PG_BIN/psql" -qX -h "$DIR/pg" -U pli pli -c "VACUUM ANALYZE" -c CHECKPOINT
        pg stop
        size=$(du -sh "$DIR/pg" | cut -f1)
    else
        echo "Seeding $N deliveries into $DIR/store ..."
        "$SEED" "${SEED_STORE[@]}" --deliveries "$N"
        size=$(du -sh "$DIR/store" | cut -f1)
    fi
    echo "seeded in $((($(date +%s%N) - start) / 1000000000)) s ($size)"
    touch "$DIR/seeded"
fi
if [ "$PG" = 1 ]; then
    pg start
    trap 'pg stop' EXIT
fi
total=$($P list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "store: $total deliveries"

ms() { # ms ARGS...: best of 3 wall-clock runs of `pli list ARGS --json`, in milliseconds
    local best=""
    for _ in 1 2 3; do
        local s e
        s=$(date +%s%N)
        $P list "$@" --json >/dev/null
        e=$(date +%s%N)
        local t=$(((e - s) / 1000000))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    echo "$best"
}
month=$(date -d '30 days ago' +%F)
printf '\n%-62s %8s %8s %8s\n' "pli list (best of 3, whole process)" "ms" "target" "total"
while IFS= read -r args; do
    # shellcheck disable=SC2086
    t=$(ms $args)
    # shellcheck disable=SC2086
    n=$($P list $args --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    flag=$([ "$t" -lt 100 ] && echo "" || echo "  > 100 ms")
    printf '%-62s %8s %8s %8s%s\n' "${args:-(no filter)}" "$t" "< 100" "$n" "$flag"
done <<LIST

--page 5000
--status read
--status not_delivered
--status delivered --status read
--type rejet
--consultation 2024AK_007
--since $month
--status read --since $month
--type rejet --status read
--keywords attribution
--keywords reponse
--keywords attestation --type complement
--keywords marche --status read
--consultation 2024AK_007 --status read
--rcpt contact123@
--rcpt btp-alsace
--sender acheteur7@
--sender acheteur7@ --status read
--rcpt contact123@ --since $month
--type rejet --status not_delivered --since $month
LIST

echo
echo "Receipts (target: over 50/s), the newest deliveries:"
rate() { # rate N START_NS END_NS: N per second, one decimal
    python3 -c "print(round($1 * 1e9 / ($3 - $2), 1))"
}
"$SEED" "${SEED_STORE[@]}" --receipts 200 --keys "$DIR/keys" >"$DIR/seed-receipts.out"
inproc=$(sed -n 's/.*: \([0-9.]*\) receipts\/s in process (\([0-9]*\) KB each).*/\1 \2/p' "$DIR/seed-receipts.out")
ids=$($P list --per-page 100 --json | python3 -c 'import json,sys; print("\n".join(i["id"] for i in json.load(sys.stdin)["items"]))')
n=$(echo "$ids" | wc -l)
rm -rf "$DIR/receipts"
start=$(date +%s%N)
for id in $ids; do $P receipt "$id" -o "$DIR/r.pdf" >/dev/null; done
end=$(date +%s%N)
cli=$(rate "$n" "$start" "$end")
start=$(date +%s%N)
# shellcheck disable=SC2086
$P receipt $ids --out-dir "$DIR/receipts" >/dev/null
end=$(date +%s%N)
batch=$(rate "$n" "$start" "$end")
[ "$(find "$DIR/receipts" -name '*.pdf' | wc -l)" = "$n" ] || { echo "the batch wrote $(ls "$DIR/receipts" | wc -l) of $n receipts" >&2; exit 1; }
# The ceiling of one process each on this machine now: a pli process that reads the config
# and does nothing else.
start=$(date +%s%N)
for _ in $ids; do $P check-config >/dev/null; done
end=$(date +%s%N)
floor=$(rate "$n" "$start" "$end")
printf '%-62s %10s %8s\n' "how" "receipts/s" "target"
printf '%-62s %10s %8s\n' "in process (pli-seed --receipts 200; ${inproc#* } KB each)" "${inproc% *}" "> 50"
# One process per receipt is bounded by a pli process's start-up (next line): no target.
printf '%-62s %10s %8s\n' "pli receipt ID -o FILE, one process per receipt ($n)" "$cli" ""
printf '%-62s %10s %8s\n' "pli receipt ID... --out-dir DIR, one process for $n" "$batch" "> 50"
printf '%-62s %10s %8s\n' "(ceiling of one process each: pli check-config per second)" "$floor" ""

[ "$PG" = 0 ] || exit 0
echo
echo "Durable read events, one per call as pli-linkd records a POST (group commit; target: >= 3,000/s):"
rm -rf "$DIR/writes"
"$SEED" --store "$DIR/writes" --deliveries 10000 >/dev/null
"$SEED" --store "$DIR/writes" --reads 500 --threads 1
"$SEED" --store "$DIR/writes" --reads 3000 --threads 16
"$SEED" --store "$DIR/writes" --reads 5000 --threads 64
if command -v wrk >/dev/null; then
    # POST /m/TOKEN through pli-linkd (64 worker threads, no notification mail), 8 s of wrk.
    "$SEED" --store "$DIR/writes" --tokens 200 --tokens-file "$DIR/tokens.txt"
    port=$((20000 + RANDOM % 20000))
    cat >"$DIR/linkd.yaml" <<YAML
organisation: { name: "Région Exemple", locale: fr, timezone: Europe/Paris }
store: { path: $DIR/writes, map_size_mb: 1024 }
milter: { socket: "unix:$DIR/milter.sock" }
policy: { buyers: ["*@buyer.example"] }
bounce: { address: "pli-bounce@buyer.example" }
linkd: { listen: "127.0.0.1:$port", public_url: "http://127.0.0.1:$port", threads: 64 }
notify: { read: false, not_delivered: false }
keys: { dir: $DIR/keys }
YAML
    cat >"$DIR/post.lua" <<LUA
local tokens = {}
for line in io.lines("$DIR/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/m/" .. tokens[(i % #tokens) + 1], {["Content-Length"] = "0"}, "")
end
done = function(summary) io.write(string.format("non-2xx answers: %d\n", summary.errors.status)) end
LUA
    "$BUILD/linkd/pli-linkd" --config "$DIR/linkd.yaml" --foreground >"$DIR/linkd.log" 2>&1 &
    linkd=$!
    for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    echo "POST /m/TOKEN through pli-linkd (64 threads, wrk -c128 for 8 s):"
    wrk -t2 -c128 -d8s -s "$DIR/post.lua" "http://127.0.0.1:$port/" | grep -E "Requests/sec|non-2xx"
    kill "$linkd"
    wait "$linkd" 2>/dev/null || true
fi
