#!/usr/bin/env bash
# Component test: the real pli-milter on its unix socket, driven by a milter-protocol
# client of our own (milter_client.py, the MTA's side) without a Postfix: negotiation (the
# actions it asks for, the steps it does not answer), the no-reply steps, a refused report
# address at RCPT, a tempfail when the re-injection listener is unreachable, and a tempfail
# on a full store.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLI_BIN_DIR=${PLI_BIN_DIR:-$HERE/../../build}
MILTER=$PLI_BIN_DIR/milter/pli-milter
[ -x "$MILTER" ] || { echo "FAIL: $MILTER is not built" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/pli-component.XXXXXX")
pid=
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
    rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- milter.log" >&2; cat "$W/milter.log" >&2 || true; exit 1; }

# A closed port for the re-injection listener: nothing listens there.
closed_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/pli.yaml" <<YAML
organisation: { name: "Région Exemple" }
store: { path: $W/store, map_size_mb: 16 }
milter: { socket: "unix:$W/milter.sock" }
policy:
  buyers: ["*@buyer.example"]
  internal_domains: ["buyer.example"]
  trusted_networks: ["127.0.0.0/8"]
reinject: { host: 127.0.0.1, port: $closed_port }
bounce: { address: "pli-bounce@buyer.example" }
linkd: { public_url: "https://pli.example.org" }
notify: { not_delivered: false }
YAML
mkdir -p "$W/store"
"$MILTER" --config "$W/pli.yaml" --foreground >>"$W/milter.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -S "$W/milter.sock" ] && break; sleep 0.1; done
[ -S "$W/milter.sock" ] || fail "no socket"

n=0
for case in negotiate no_reply unknown_report store_full; do
    n=$((n + 1))
    python3 "$HERE/milter_client.py" "$W/milter.sock" "$case" || fail "$case"
    echo "ok $n - $case"
done
grep -q 'decision=tempfail_reinject_unreachable' "$W/milter.log" || fail "no unreachable log line"
grep -q 'decision=tempfail_store_full' "$W/milter.log" || fail "no store-full log line"
grep -q 'decision=reject_unknown_delivery' "$W/milter.log" || fail "no unknown-delivery log line"
echo "ok $((n + 1)) - each decision logged"
