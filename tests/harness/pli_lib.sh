# shellcheck shell=bash
# pli_lib.sh - runs pli-milter and pli-linkd against a private Postfix (tests/harness).
#
#   . "$(dirname "$0")/pli_lib.sh"
#   pli_setup [extra YAML lines appended to pli.yaml]
#   ... $PLI (the CLI with --config), $PLI_URL (linkd), pli_notice_link FILE ...
#
# Needs PLI_BIN_DIR (the build directory; CTest sets it) or finds ./build.

PLI_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLI_SOURCE_DIR=${PLI_SOURCE_DIR:-$(cd "$PLI_HARNESS_DIR/../.." && pwd)}
PLI_BIN_DIR=${PLI_BIN_DIR:-$PLI_SOURCE_DIR/build}
# shellcheck source=lib.sh
. "$PLI_HARNESS_DIR/lib.sh"

# start_pg DIR: a private PostgreSQL 15 cluster in DIR (created), on a unix socket in DIR
# only (no TCP), superuser `pli` trusted, a database `pli`; stopped and removed at exit.
# initdb refuses root: as root, the cluster belongs to `nobody`. Sets PLI_PG_DIR and
# PLI_PG_URL (key=value conninfo). Skips (77) when PostgreSQL 15 is not installed.
PLI_PG_BIN=${PLI_PG_BIN:-/usr/lib/postgresql/15/bin}
start_pg() {
    PLI_PG_DIR=$1
    [ -x "$PLI_PG_BIN/initdb" ] || skip "PostgreSQL 15 is not installed ($PLI_PG_BIN/initdb)"
    mkdir -p "$PLI_PG_DIR"
    _PLI_PG_AS=()
    if [ "$(id -u)" -eq 0 ]; then
        chown nobody "$PLI_PG_DIR"
        _PLI_PG_AS=(runuser -u nobody --)
    fi
    "${_PLI_PG_AS[@]}" "$PLI_PG_BIN/initdb" -D "$PLI_PG_DIR/data" -U pli --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$PLI_PG_DIR/initdb.log" 2>&1 ||
        { cat "$PLI_PG_DIR/initdb.log" >&2; fail "initdb failed"; }
    pfx_on_exit "stop_pg"
    pg_up
    "$PLI_PG_BIN/createdb" -h "$PLI_PG_DIR" -U pli pli || fail "createdb failed"
    PLI_PG_URL="host=$PLI_PG_DIR user=pli dbname=pli"
}

# pg_up / pg_down: start or stop (fast: sessions cut) the cluster of start_pg, waiting.
pg_up() {
    "${_PLI_PG_AS[@]}" "$PLI_PG_BIN/pg_ctl" -D "$PLI_PG_DIR/data" -l "$PLI_PG_DIR/server.log" -w \
        -t 60 -o "-k $PLI_PG_DIR -c listen_addresses=''" start >/dev/null ||
        { tail -n 20 "$PLI_PG_DIR/server.log" >&2; fail "PostgreSQL did not start"; }
}
pg_down() {
    "${_PLI_PG_AS[@]}" "$PLI_PG_BIN/pg_ctl" -D "$PLI_PG_DIR/data" -m fast -w -t 60 stop >/dev/null
}

# stop_pg: stops the cluster (if running) and removes it.
stop_pg() {
    [ -n "${PLI_PG_DIR:-}" ] || return 0
    "${_PLI_PG_AS[@]}" "$PLI_PG_BIN/pg_ctl" -D "$PLI_PG_DIR/data" -m immediate -w -t 60 stop \
        >/dev/null 2>&1 || true
    rm -rf "$PLI_PG_DIR"
}

# pli_on_pg: true when the test runs on PostgreSQL (PLI_TEST_STORE=postgresql).
pli_on_pg() { [ "${PLI_TEST_STORE:-lmdb}" = postgresql ]; }

# pli_setup [YAML...]: a work dir, Postfix with the milter on both paths, pli.yaml,
# pli-milter and pli-linkd in the foreground (logs in $PLI_WORK/*.log), all stopped at exit.
# PLI_LINKD_YAML adds keys to the linkd map ("reply_max_mb: 1, threads: 2"); PLI_STORE_YAML
# to the store map, PLI_MILTER_YAML to the milter map; PLI_MAP_MB sets the map size.
# PLI_TEST_STORE=postgresql: the store is a private PostgreSQL cluster (start_pg, in
# $PLI_WORK/pg) whose schema `pli store migrate-schema` creates before the daemons start.
pli_setup() {
    for b in milter/pli-milter linkd/pli-linkd admin-cli/pli; do
        [ -x "$PLI_BIN_DIR/$b" ] || fail "$PLI_BIN_DIR/$b is not built"
    done
    PLI_WORK=$(mktemp -d "${TMPDIR:-/tmp}/pli-test.XXXXXX")
    chmod 755 "$PLI_WORK"
    pfx_on_exit "rm -rf $(printf '%q' "$PLI_WORK")"
    PLI_SOCKET=$PLI_WORK/milter.sock
    local postfix_spec="unix:$PLI_SOCKET" pli_spec="unix:$PLI_SOCKET"
    if [ -n "${PLI_MILTER_INET:-}" ]; then # the milter on TCP instead of a unix socket
        PLI_MILTER_PORT=$(pfx_free_port)
        postfix_spec="inet:127.0.0.1:$PLI_MILTER_PORT"
        pli_spec="inet:$PLI_MILTER_PORT@127.0.0.1"
    fi
    pfx_setup --milter "$postfix_spec" --non-smtpd-milter "$postfix_spec" \
        --bounce-address pli-bounce@buyer.example
    PLI_LINKD_PORT=$(pfx_free_port)
    PLI_URL=http://127.0.0.1:$PLI_LINKD_PORT
    PLI_CONFIG=$PLI_WORK/pli.yaml
    local pg_yaml=""
    if pli_on_pg; then
        start_pg "$PLI_WORK/pg"
        pg_yaml=", backend: postgresql, url: \"$PLI_PG_URL\""
    fi
    cat >"$PLI_CONFIG" <<YAML
organisation: { name: "Région Exemple", locale: fr, timezone: Europe/Paris }
store: { path: $PLI_WORK/store, map_size_mb: ${PLI_MAP_MB:-256}$pg_yaml${PLI_STORE_YAML:+, $PLI_STORE_YAML} }
milter: { socket: "$pli_spec"${PLI_MILTER_YAML:+, $PLI_MILTER_YAML} }
policy:
  buyers: ["*@buyer.example"]
  internal_domains: ["buyer.example"]
  trusted_networks: ["127.0.0.0/8"]
  default_mode: ar
reinject: { host: 127.0.0.1, port: $PFX_PORT_REINJECT }
bounce: { address: "pli-bounce@buyer.example" }
linkd: { listen: "127.0.0.1:$PLI_LINKD_PORT", public_url: "$PLI_URL"${PLI_LINKD_YAML:+, $PLI_LINKD_YAML} }
YAML
    for line in "$@"; do echo "$line" >>"$PLI_CONFIG"; done
    export PLI_CONFIG
    PLI="$PLI_BIN_DIR/admin-cli/pli --config $PLI_CONFIG"
    if pli_on_pg; then
        $PLI store migrate-schema >"$PLI_WORK/migrate.log" 2>&1 ||
            { cat "$PLI_WORK/migrate.log" >&2; fail "pli store migrate-schema failed"; }
    fi
    pli_start_milter
    "$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$PLI_WORK/linkd.log" 2>&1 &
    PLI_LINKD_PID=$!
    pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
    _pfx_wait 20 "pli-linkd to listen" "" curl -fs -o /dev/null "$PLI_URL/healthz"
    if pli_on_pg && [ -e "$PLI_WORK/store/data.mdb" ]; then
        fail "on PostgreSQL, a daemon opened an LMDB store in $PLI_WORK/store"
    fi
    # On failure, the daemons' logs (runs before the teardown registered earlier).
    pfx_on_exit '[ "$_PFX_EXIT_RC" -eq 0 ] || pli_diag'
}

pli_start_milter() {
    "$PLI_BIN_DIR/milter/pli-milter" --config "$PLI_CONFIG" --foreground >>"$PLI_WORK/milter.log" 2>&1 &
    PLI_MILTER_PID=$!
    pfx_on_exit "kill $PLI_MILTER_PID 2>/dev/null; wait $PLI_MILTER_PID 2>/dev/null || true"
    if [ -n "${PLI_MILTER_PORT:-}" ]; then
        _pfx_wait 20 "pli-milter's port" "" eval "ss -ltnH 'sport = :$PLI_MILTER_PORT' | grep -q ."
    else
        _pfx_wait 20 "pli-milter's socket" "" test -S "$PLI_SOCKET"
    fi
}

# pli_second_mta: after pli_setup on PostgreSQL, a second MTA host on the same store, and
# MTA A (pli_setup's) relaying its outgoing mail through it (README, "Several hosts"):
# - MTA B: its own private Postfix (myhostname mta-b.buyer.example: an smtp client refuses a
#   next hop that greets with its own name), its own pli-milter on both paths (smtpd and
#   non_smtpd_milters), its own pli-linkd, its own store.path; its pli-smtp transport
#   delivers to its sinks, so its bounce daemon writes the reports;
# - MTA A: relayhost = B's smtpd, and no pli-smtp (no sender-dependent transport, no
#   transport table): a plain smtp client passes NOTIFY, ENVID and RET on to B, which
#   announces DSN, so A reports nothing itself.
# Sets PLI_B_WORK, PLI_B_PFX_DIR (pfx_in "$PLI_B_PFX_DIR" CMD... runs a harness function on
# B), PLI_B_PORT_IN, PLI_B_PORT_REINJECT, PLI_B_CONFIG, PLI_B (the CLI on B's config),
# PLI_B_URL (B's linkd, also its linkd.public_url), PLI_B_MILTER_PID, PLI_B_LINKD_PID. The
# PFX_* variables stay A's.
pli_second_mta() {
    pli_on_pg || fail "pli_second_mta: two MTAs share a PostgreSQL store (PLI_TEST_STORE=postgresql)"
    [ -z "${PLI_MILTER_INET:-}" ] || fail "pli_second_mta: PLI_MILTER_INET is not supported"
    local a_dir=$PFX_DIR
    PLI_B_WORK=$PLI_WORK/b
    mkdir -p "$PLI_B_WORK"
    chmod 755 "$PLI_B_WORK"
    local b_socket=$PLI_B_WORK/milter.sock
    pfx_setup --milter "unix:$b_socket" --non-smtpd-milter "unix:$b_socket" \
        --bounce-address pli-bounce@buyer.example --param myhostname=mta-b.buyer.example
    PLI_B_PFX_DIR=$PFX_DIR
    PLI_B_PORT_IN=$PFX_PORT_IN
    PLI_B_PORT_REINJECT=$PFX_PORT_REINJECT
    # shellcheck source=/dev/null
    . "$a_dir/ports.env" # the PFX_* variables are A's again
    # A relays through B's smtpd (a reload: same ports, same milter).
    "$PFX_BIN" start "$PFX_DIR" --milter "unix:$PLI_SOCKET" --non-smtpd-milter "unix:$PLI_SOCKET" \
        --bounce-address pli-bounce@buyer.example --param "relayhost=[127.0.0.1]:$PLI_B_PORT_IN" \
        --param transport_maps= --param sender_dependent_default_transport_maps= ||
        fail "reconfiguring MTA A to relay through B failed"
    pfx_wait_log "reload -- version" 30
    local b_port
    b_port=$(pfx_free_port)
    PLI_B_URL=http://127.0.0.1:$b_port
    PLI_B_CONFIG=$PLI_B_WORK/pli.yaml
    sed -e "s|path: $PLI_WORK/store,|path: $PLI_B_WORK/store,|" \
        -e "s|unix:$PLI_SOCKET\"|unix:$b_socket\"|" \
        -e "s|port: $PFX_PORT_REINJECT }|port: $PLI_B_PORT_REINJECT }|" \
        -e "s|127.0.0.1:$PLI_LINKD_PORT\"|127.0.0.1:$b_port\"|g" "$PLI_CONFIG" >"$PLI_B_CONFIG"
    for want in "path: $PLI_B_WORK/store," "unix:$b_socket" "port: $PLI_B_PORT_REINJECT }" \
        "listen: \"127.0.0.1:$b_port\"" "public_url: \"$PLI_B_URL\""; do
        qgrep -F "$want" "$PLI_B_CONFIG" || fail "pli_second_mta: B's pli.yaml lacks $want"
    done
    PLI_B="$PLI_BIN_DIR/admin-cli/pli --config $PLI_B_CONFIG"
    "$PLI_BIN_DIR/milter/pli-milter" --config "$PLI_B_CONFIG" --foreground >>"$PLI_B_WORK/milter.log" 2>&1 &
    PLI_B_MILTER_PID=$!
    pfx_on_exit "kill $PLI_B_MILTER_PID 2>/dev/null; wait $PLI_B_MILTER_PID 2>/dev/null || true"
    _pfx_wait 20 "B's pli-milter socket" "" test -S "$b_socket"
    "$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_B_CONFIG" --foreground >>"$PLI_B_WORK/linkd.log" 2>&1 &
    PLI_B_LINKD_PID=$!
    pfx_on_exit "kill $PLI_B_LINKD_PID 2>/dev/null; wait $PLI_B_LINKD_PID 2>/dev/null || true"
    _pfx_wait 20 "B's pli-linkd to listen" "" curl -fs -o /dev/null "$PLI_B_URL/healthz"
    [ ! -e "$PLI_B_WORK/store/data.mdb" ] || fail "B's daemons opened an LMDB store"
    pfx_on_exit '[ "$_PFX_EXIT_RC" -eq 0 ] || pli_diag_second'
}

pli_diag_second() {
    echo "---- MTA B: maillog tail" >&2; tail -n 30 "$PLI_B_PFX_DIR/log/maillog" >&2 2>/dev/null || true
    echo "---- MTA B: milter log" >&2; tail -n 30 "$PLI_B_WORK/milter.log" >&2 2>/dev/null || true
    echo "---- MTA B: linkd log" >&2; tail -n 20 "$PLI_B_WORK/linkd.log" >&2 2>/dev/null || true
}

# pli_first_link SUBJECT MESSAGE-ID BODY: alice@buyer.example sends a registered mail to
# bob@remote.example as the test's first; prints the link of its notice (the sink's only mail).
pli_first_link() {
    pfx_send --from alice@buyer.example --to bob@remote.example \
        --header "Subject: $1" --header "Message-ID: <$2>" --body "$3"
    pfx_wait_sink_count 1 30
    pli_notice_link "$(pfx_sink_files | head -n 1)"
}

# pli_mail_part FILE TYPE: the decoded text/plain or text/html part of a message file.
pli_mail_part() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import email, sys
from email import policy
with open(sys.argv[1], 'rb') as f:
    msg = email.message_from_binary_file(f, policy=policy.default)
for part in msg.walk():
    if part.get_content_type() == sys.argv[2]:
        sys.stdout.write(part.get_content())
        break
PY
}

# pli_notice_link FILE: the personal link in a notice.
pli_notice_link() {
    pli_mail_part "$1" text/plain | grep -oE "$PLI_URL/m/[A-Za-z0-9_-]+" | head -n 1
}

# pli_json_get JSON_EXPR: evaluates a Python expression on the JSON read from stdin (as j).
# pli_linkd_replica: a second pli-linkd with pli_setup's pli.yaml on another port
# ($PLI_WORK/b.yaml, log linkd-b.log), stopped at exit; sets PLI_REPLICA_URL, PLI_REPLICA_PID.
pli_linkd_replica() {
    local port
    port=$(pfx_free_port)
    PLI_REPLICA_URL=http://127.0.0.1:$port
    sed "s|listen: \"127.0.0.1:$PLI_LINKD_PORT\"|listen: \"127.0.0.1:$port\"|" "$PLI_CONFIG" \
        >"$PLI_WORK/b.yaml"
    "$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_WORK/b.yaml" --foreground \
        >>"$PLI_WORK/linkd-b.log" 2>&1 &
    PLI_REPLICA_PID=$!
    pfx_on_exit "kill $PLI_REPLICA_PID 2>/dev/null; wait $PLI_REPLICA_PID 2>/dev/null || true"
    _pfx_wait 20 "replica B to listen" "" curl -fs -o /dev/null "$PLI_REPLICA_URL/healthz"
}

# pli_csrf FILE: the csrf field of the first form of an HTML page.
pli_csrf() { grep -o 'name="csrf" value="[^"]*"' "$1" | head -n 1 | sed 's/.*value="//; s/"$//'; }

# pli_ask_login URL JAR ADDRESS: asks the buyers' area at URL for a login link for ADDRESS
# (cookies in JAR); prints the HTTP status.
pli_ask_login() {
    curl -fsS -c "$2" -b "$2" -o "$2.form.html" "$1/suivi/" || return 1
    curl -sS -c "$2" -b "$2" -o "$2.asked.html" -w '%{http_code}' \
        --data-urlencode "email=$3" --data-urlencode "csrf=$(pli_csrf "$2.form.html")" "$1/suivi/"
}

pli_json() {
    /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

pli_diag() {
    pfx_diag
    echo "---- milter log" >&2; tail -n 30 "$PLI_WORK/milter.log" >&2 2>/dev/null || true
    echo "---- linkd log" >&2; tail -n 20 "$PLI_WORK/linkd.log" >&2 2>/dev/null || true
    if [ -n "${PLI_PG_DIR:-}" ]; then
        echo "---- PostgreSQL log" >&2; tail -n 20 "$PLI_PG_DIR/server.log" >&2 2>/dev/null || true
    fi
}
