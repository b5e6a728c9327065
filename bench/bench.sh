#!/usr/bin/env bash
# bench/bench.sh BUILD_DIR: the benchmark of issue 8 (`make bench`; not a test, not part of
# `make check`). Prints one Markdown table where every figure stands next to a baseline
# measured in the same run (this machine is shared and noisy: ratios, not absolutes):
#   1. MTA throughput: smtp-source (10 sessions) -> private Postfix -> discarding smtp-sink,
#      4 KB and 100 KB, from the first submit until the queue is empty: no milter (baseline),
#      pli-milter pass-through (a sender that is not a buyer), registered AR with 1 and 5
#      recipients, simple mode, and OpenDKIM signing as the milter instead (2048-bit key).
#   2. The milter's added latency per message (one session, MAIL FROM to the final reply),
#      p50 and p99, pass-through and registered, minus the same without milter.
#   3. pli-linkd under wrk (10 and 100 connections): the landing page next to nginx serving the
#      same bytes as a static file, p99; read POSTs (the event durably written) over tokens
#      made through the real milter path.
#   4. Peak RSS (VmHWM) of pli-milter under 50 concurrent SMTP sessions (registered, 100 KB),
#      with its peak anonymous part (sampled; the rest is mostly the store's mmap'd pages),
#      and of pli-linkd after the wrk runs.
#   5. The PostgreSQL store (a local cluster the bench starts): registered AR with 1 recipient
#      next to its own baseline, and read POSTs.
# Environment: BENCH_QUICK=1 (small counts, ~1 min: a smoke run), BENCH_REPS (repetitions of
# the MTA rows, interleaved; medians of the per-repetition ratios; default 2, 1 when quick),
# BENCH_WRK_SECONDS (default 10), BENCH_OUT (also write the table there), BENCH_RESULTS (the
# raw figures, default BUILD_DIR/bench-results.tsv), BENCH_ONLY (a comma-separated subset of
# mta, latency, memory, linkd, pg: run only those sections, e.g. BENCH_ONLY=linkd).
# Needs root (private Postfix) and scripts/install-deps --bench (wrk, nginx, opendkim).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
export PLI_BIN_DIR=$BUILD
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/harness/pli_lib.sh"

for t in smtp-source smtp-sink wrk nginx opendkim opendkim-genkey python3; do
    command -v "$t" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null 2>&1 ||
        fail "'$t' is not installed (scripts/install-deps --bench)"
done
export PATH=$PATH:/usr/sbin:/sbin

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    N4=60 N100=30 NLAT=20 NMEM=60 NTOK=10 WRK_S=${BENCH_WRK_SECONDS:-2} REPS=${BENCH_REPS:-1}
else
    # Every MTA row sends as many messages as its baseline (5 recipients: a fifth as many
    # messages, as many notices): a run's start and its drain (the last notices and DSNs)
    # weigh more on a short run (registered 4 KB: 200 messages ran at ~74 msg/s, 600 at ~89).
    N4=1000 N100=300 NLAT=200 NMEM=300 NTOK=200 WRK_S=${BENCH_WRK_SECONDS:-10} REPS=${BENCH_REPS:-2}
fi

only() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }

# Read notifications off: their receipt PDF and mail are not part of the read-POST figure.
# A 4 GB map: the full run stores more than the tests' 256 MB (a full map answers 451/503).
PLI_MAP_MB=${PLI_MAP_MB:-4096} pli_setup "notify: { read: false }"
W=$PLI_WORK
RES=${BENCH_RESULTS:-$BUILD/bench-results.tsv} # kept: bench/bench-table.py RES prints it again
: >"$RES"
result() { printf '%s\t%s\n' "$1" "$2" >>"$RES"; }
result date "$(date -u '+%Y-%m-%d %H:%M UTC')"
result machine "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo)), load $(cut -d' ' -f1-3 /proc/loadavg) at start"
result mode "$([ "$QUICK" = 1 ] && echo "BENCH_QUICK=1 (smoke: counts too small for real figures)" || echo full), $REPS repetition(s)"

# ---------------------------------------------------------------- the discarding sink
SINK_PORT=$(pfx_free_port)
smtp-sink -u postfix -4 "127.0.0.1:$SINK_PORT" 256 </dev/null >>"$W/bench-sink.log" 2>&1 &
SINK_PID=$!
pfx_on_exit "kill $SINK_PID 2>/dev/null; wait $SINK_PID 2>/dev/null || true"
_pfx_wait 10 "the bench sink" "" eval "ss -ltnH 'sport = :$SINK_PORT' | grep -q ."

# ---------------------------------------------------------------- OpenDKIM, signing
mkdir -p "$W/dkim"
opendkim-genkey -b 2048 -d elsewhere.example -s bench -D "$W/dkim"
cat >"$W/dkim/opendkim.conf" <<EOF
Syslog no
Mode s
Domain elsewhere.example
Selector bench
KeyFile $W/dkim/bench.private
Canonicalization relaxed/simple
Socket local:$W/dkim/opendkim.sock
UMask 000
PidFile $W/dkim/opendkim.pid
Background no
RequireSafeKeys no
EOF
opendkim -x "$W/dkim/opendkim.conf" -f >>"$W/dkim/opendkim.log" 2>&1 &
DKIM_PID=$!
pfx_on_exit "kill $DKIM_PID 2>/dev/null; wait $DKIM_PID 2>/dev/null || true"
_pfx_wait 10 "opendkim's socket" "" test -S "$W/dkim/opendkim.sock"

# ---------------------------------------------------------------- Postfix settings
CUR_CONF=""
pfx_conf() { # pfx_conf NAME SMTPD_MILTERS NON_SMTPD_MILTERS RELAY_PORT
    [ "$CUR_CONF" != "$1" ] || return 0
    postconf -c "$PFX_CONF_DIR" -e "smtpd_milters = $2" "non_smtpd_milters = $3" \
        "relayhost = [127.0.0.1]:$4"
    postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1
    CUR_CONF=$1
    sleep 1
}
conf_none() { pfx_conf none "" "" "$SINK_PORT"; }
conf_pli() { pfx_conf pli "unix:$PLI_SOCKET" "unix:$PLI_SOCKET" "$SINK_PORT"; }
conf_dkim() { pfx_conf dkim "unix:$W/dkim/opendkim.sock" "" "$SINK_PORT"; }
conf_tokens() { pfx_conf tokens "unix:$PLI_SOCKET" "unix:$PLI_SOCKET" "$PFX_PORT_SINK"; }

queue_busy() { [ -n "$(find "$PFX_DIR"/queue/{maildrop,incoming,active,deferred,hold} -type f -print -quit 2>/dev/null)" ]; }
wait_drained() { # wait_drained TIMEOUT_S: the queue is empty (polled every 50 ms)
    local deadline=$((SECONDS + $1))
    while queue_busy; do
        [ $SECONDS -lt "$deadline" ] || { pfx_diag; fail "the queue did not drain in $1 s"; }
        sleep 0.05
    done
}
sent_count() { grep -c "relay=127.0.0.1\[127.0.0.1\]:$1, .*status=sent" "$PFX_LOG" || true; }

# send N SIZE RCPTS FROM [SUBJECT] -> prints msg/s from the first submit to an empty queue;
# checks that N * RCPTS messages reached the sink.
send() {
    local n=$1 size=$2 rcpts=$3 from=$4 subject=${5:-}
    local args=(-s 10 -l "$size" -r "$rcpts" -N -f "$from" -t "r@remote.example")
    [ -z "$subject" ] || args+=(-S "$subject")
    smtp-source "${args[@]}" -m 20 "127.0.0.1:$PFX_PORT_IN" # warm-up
    wait_drained 120
    local before t0 t1 after
    before=$(sent_count "$SINK_PORT")
    t0=$(date +%s%N)
    smtp-source "${args[@]}" -m "$n" "127.0.0.1:$PFX_PORT_IN"
    wait_drained 300
    t1=$(date +%s%N)
    sleep 0.3 # postlogd writes asynchronously
    after=$(sent_count "$SINK_PORT")
    [ $((after - before)) -eq $((n * rcpts)) ] ||
        fail "$((after - before)) messages reached the sink for $((n * rcpts)) expected"
    python3 -c "print(round($n / (($t1 - $t0) / 1e9), 1))"
}

# wrk_run NAME ARGS...: one wrk run; prints "req/s p99_ms errors".
wrk_run() {
    local name=$1; shift
    wrk -t1 -d"${WRK_S}s" --latency "$@" >"$W/wrk-$name.txt" 2>&1 || fail "wrk $name failed: $(cat "$W/wrk-$name.txt")"
    python3 - "$W/wrk-$name.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r'Requests/sec:\s+([\d.]+)', t).group(1))
def ms(v, u):
    return float(v) * {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0}[u]
p99 = ms(*re.search(r'\s99%\s+([\d.]+)(us|ms|s|m)\b', t).groups())
bad = sum(int(x) for x in re.findall(r'Non-2xx or 3xx responses: (\d+)', t))
bad += sum(int(x) for x in re.findall(r'(?:connect|read|write|timeout) (\d+)', t))
print(f"{rps:.0f} {p99:.2f} {bad}")
PY
}

# extract_tokens FILE: the link tokens of the notices in the sink, one a line.
extract_tokens() {
python3 - "$PFX_SINK_DIR" "$1" <<'PY'
import email, os, re, sys
from email import policy
out = []
for name in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], name), 'rb') as f:
        msg = email.message_from_binary_file(f, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == 'text/plain':
            m = re.search(r'/m/([A-Za-z0-9_-]+)', part.get_content())
            if m:
                out.append(m.group(1))
            break
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
PY
}

# make_links KEY: $NTOK registered messages with 5 recipients through the milter to the
# file-writing sink, their links in $W/tokens (and their number in $ntok, as result KEY).
make_links() {
    conf_tokens
    find "$PFX_SINK_DIR" -type f -delete
    # -A: a message refused with 451 (see tempfails) is not retried; it makes no links.
    smtp-source -A -s 5 -r 5 -N -f "$BUYER" -t t@remote.example -S "[AR] Lien bench" -m "$NTOK" \
        "127.0.0.1:$PFX_PORT_IN"
    wait_drained 300
    extract_tokens "$W/tokens"
    ntok=$(wc -l <"$W/tokens")
    [ "$ntok" -ge $((NTOK * 5 * 9 / 10)) ] || fail "$1: only $ntok links for $((NTOK * 5)) recipients"
    result "$1" "$ntok"
}

# write_post_lua: wrk's script of read POSTs over the links in $W/tokens.
write_post_lua() {
cat >"$W/post.lua" <<EOF
local tokens = {}
local i = 0
function init(args)
  for line in io.lines("$W/tokens") do tokens[#tokens + 1] = line end
  i = math.random(#tokens)
end
function request()
  i = i % #tokens + 1
  return wrk.format("POST", "/m/" .. tokens[i],
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, "open=1")
end
EOF
}

# ---------------------------------------------------------------- 1 + 2: MTA rows
PASS_FROM=someone@elsewhere.example
BUYER=alice@buyer.example
for rep in $(seq 1 "$REPS"); do
    only mta || break
    for size in 4 100; do
        n=$([ $size = 4 ] && echo "$N4" || echo "$N100")
        bytes=$((size * 1024))
        log "rep $rep, $size KB: no milter"
        conf_none
        result "mta.$size.none.$rep" "$(send "$n" $bytes 1 "$PASS_FROM")"
        log "rep $rep, $size KB: OpenDKIM"
        conf_dkim
        result "mta.$size.dkim.$rep" "$(send "$n" $bytes 1 "$PASS_FROM")"
        conf_pli
        log "rep $rep, $size KB: pli pass-through"
        result "mta.$size.pass.$rep" "$(send "$n" $bytes 1 "$PASS_FROM")"
        log "rep $rep, $size KB: pli registered AR, 1 recipient"
        result "mta.$size.ar1.$rep" "$(send "$n" $bytes 1 "$BUYER" "[AR] Avis bench")"
        log "rep $rep, $size KB: pli registered AR, 5 recipients"
        result "mta.$size.ar5.$rep" "$(send $((n / 5)) $bytes 5 "$BUYER" "[AR] Avis bench")"
        log "rep $rep, $size KB: pli simple mode"
        result "mta.$size.simple.$rep" "$(send "$n" $bytes 1 "$BUYER" "[SIMPLE] Avis bench")"
    done
done
if only latency; then
LAT=$HERE/smtp-latency.py
log "latency: no milter, then pli pass-through and registered ($NLAT messages each)"
conf_none
result lat.none "$(python3 "$LAT" "$PFX_PORT_IN" "$NLAT" 4096 "$PASS_FROM" lat@remote.example)"
result lat.none_buyer "$(python3 "$LAT" "$PFX_PORT_IN" "$NLAT" 4096 "$BUYER" lat@remote.example)"
conf_pli
result lat.pass "$(python3 "$LAT" "$PFX_PORT_IN" "$NLAT" 4096 "$PASS_FROM" lat@remote.example)"
result lat.ar1 "$(python3 "$LAT" "$PFX_PORT_IN" "$NLAT" 4096 "$BUYER" lat@remote.example "[AR] Latence")"
wait_drained 120
fi

# ---------------------------------------------------------------- 4a: milter memory
if only memory; then
log "pli-milter memory: 50 sessions, registered 100 KB ($NMEM messages)"
kill "$PLI_MILTER_PID"; wait "$PLI_MILTER_PID" 2>/dev/null || true
rm -f "$PLI_SOCKET" # pli_start_milter waits for a new socket
pli_start_milter
(while kill -0 "$PLI_MILTER_PID" 2>/dev/null; do
    awk '/RssAnon/ {print $2}' "/proc/$PLI_MILTER_PID/status"; sleep 0.2
done) >"$W/milter-anon.txt" 2>/dev/null &
ANON_PID=$!
smtp-source -s 50 -l 102400 -N -f "$BUYER" -t m@remote.example -S "[AR] Mémoire" -m "$NMEM" \
    "127.0.0.1:$PFX_PORT_IN"
wait_drained 300
result rss.milter "$(awk '/VmHWM/ {print $2}' "/proc/$PLI_MILTER_PID/status")"
kill "$ANON_PID" 2>/dev/null; wait "$ANON_PID" 2>/dev/null || true
result rss.milter.anon "$(sort -n "$W/milter-anon.txt" | tail -n 1)"
fi

# ---------------------------------------------------------------- 3: pli-linkd
if only linkd; then
log "tokens: $NTOK registered messages with 5 recipients through the milter"
make_links tokens
result tempfails "$(grep -c 'decision=tempfail' "$W/milter.log" || true)"

# the landing page, once (records its `fetched`), and the same bytes for nginx
tok1=$(head -n 1 "$W/tokens")
mkdir -p "$W/www" "$W/nginx"
curl -fsS -o "$W/www/page.html" "$PLI_URL/m/$tok1"
result page.bytes "$(stat -c %s "$W/www/page.html")"
NGINX_PORT=$(pfx_free_port)
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $W/nginx/body;
    proxy_temp_path $W/nginx/proxy;
    fastcgi_temp_path $W/nginx/fastcgi;
    uwsgi_temp_path $W/nginx/uwsgi;
    scgi_temp_path $W/nginx/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=100;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $W/www;
        location /m/ {
            default_type "text/html; charset=utf-8";
            add_header Cache-Control no-store;
            add_header Referrer-Policy no-referrer;
            add_header Content-Security-Policy "default-src 'none'; style-src 'self'; frame-ancestors 'none'";
            add_header X-Content-Type-Options nosniff;
            try_files /page.html =404;
        }
    }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' >>"$W/nginx/out.log" 2>&1 &
NGINX_PID=$!
pfx_on_exit "kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null || true"
_pfx_wait 10 "nginx" "" curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/m/$tok1"
cmp -s "$W/www/page.html" <(curl -fsS "http://127.0.0.1:$NGINX_PORT/m/$tok1") ||
    fail "nginx does not serve the landing page's bytes"

# wrk_run NAME ARGS...: requests/s, p99 (ms) and errors of one wrk run
write_post_lua
for c in 10 100; do
    log "wrk GET, $c connections: nginx then pli-linkd (${WRK_S} s each)"
    result "get.nginx.$c" "$(wrk_run "get-nginx-$c" -c"$c" "http://127.0.0.1:$NGINX_PORT/m/$tok1")"
    result "get.linkd.$c" "$(wrk_run "get-linkd-$c" -c"$c" "$PLI_URL/m/$tok1")"
done
for c in 10 100; do
    log "wrk POST (reads), $c connections over $ntok links (${WRK_S} s)"
    result "post.linkd.$c" "$(wrk_run "post-linkd-$c" -c"$c" -s "$W/post.lua" "$PLI_URL")"
done
reads=$($PLI list --status read --per-page 1 --json | pli_json 'j["total"]')
[ "$reads" -gt 0 ] || fail "no delivery is read after the POST runs"
result reads.deliveries "$reads"
result rss.linkd "$(awk '/VmHWM/ {print $2}' "/proc/$PLI_LINKD_PID/status")"
fi

# ---------------------------------------------------------------- 5: the PostgreSQL store
# The same daemons on a local PostgreSQL 15 cluster (default durable settings, a unix socket):
# registered AR with 1 recipient next to its own bare-Postfix baseline measured just before,
# and read POSTs over links made through the milter on that store.
if only pg && [ -x "${PLI_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
log "PostgreSQL: a local cluster, the daemons restarted on it"
kill "$PLI_MILTER_PID" "$PLI_LINKD_PID" 2>/dev/null || true
wait "$PLI_MILTER_PID" "$PLI_LINKD_PID" 2>/dev/null || true
start_pg "$W/pg"
sed -i "s|^store: {|store: { backend: postgresql, url: \"$PLI_PG_URL\",|" "$PLI_CONFIG"
$PLI store migrate-schema >/dev/null
rm -f "$PLI_SOCKET"
pli_start_milter
"$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$W/linkd.log" 2>&1 &
PLI_LINKD_PID=$!
pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
_pfx_wait 20 "pli-linkd on PostgreSQL" "" curl -fs -o /dev/null "$PLI_URL/healthz"
for rep in $(seq 1 "$REPS"); do
    for size in 4 100; do
        n=$([ $size = 4 ] && echo "$N4" || echo "$N100")
        log "PostgreSQL rep $rep, $size KB: no milter, then registered AR, 1 recipient"
        conf_none
        result "mta.$size.none_pg.$rep" "$(send "$n" $((size * 1024)) 1 "$PASS_FROM")"
        conf_pli
        result "mta.$size.ar1_pg.$rep" "$(send "$n" $((size * 1024)) 1 "$BUYER" "[AR] Avis bench")"
    done
done
log "PostgreSQL: $NTOK registered messages with 5 recipients, then read POSTs"
make_links tokens_pg
write_post_lua
for c in 10 100; do
    log "PostgreSQL: wrk POST (reads), $c connections over $ntok links (${WRK_S} s)"
    result "post.pg.$c" "$(wrk_run "post-pg-$c" -c"$c" -s "$W/post.lua" "$PLI_URL")"
done
fi

python3 "$HERE/bench-table.py" "$RES" | tee "${BENCH_OUT:-/dev/null}"
