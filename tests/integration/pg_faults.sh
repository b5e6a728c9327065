#!/usr/bin/env bash
# The PostgreSQL store goes away and comes back, through the real Postfix: 10 concurrent SMTP
# clients submit registered mail (tests/harness/smtp_load.py) while the database server is
# stopped for a few seconds and started again, the daemons left running.
#   1. While it is down: the clients get 4xx answers (pli-milter tempfails, decision
#      tempfail_store_error) and resend; pli-linkd answers a link with a 503 page (French,
#      Retry-After) instead of a 500; `pli list` says so in one line and exits 74.
#   2. Once it is back, without restarting anything: the same link answers 200, and every
#      message ends registered exactly once: one delivery per recipient (`pli list --json`),
#      each with one `sent` and one `delivered` event, a notice for every recipient (copies
#      only with the same Message-ID, as when a milter dies between the injection and the
#      `sent` record: load_no_loss.sh says why).
# PLI_FAULT_MESSAGES (200) changes the load.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PLI_TEST_STORE=postgresql
pli_setup
W=$PLI_WORK
N=${PLI_FAULT_MESSAGES:-200}
CLIENTS=10

# pli doctor on PostgreSQL: the database answers, its schema is this pli's, the role has its
# rights; a role created after the migration (no grants) lacks them, and the fix says so.
doctor_db() { # CONFIG: the database's checks, "ok|check|fix" per line
    $PLI_BIN_DIR/admin-cli/pli --config "$1" doctor --postfix-config "$PFX_CONF_DIR" --json |
        pli_json '"\n".join("%s|%s|%s" % (c["ok"], c["check"].replace("\n", " "), c.get("fix", "")) for c in j["checks"] if "database" in c["check"] or "role" in c["check"] or "schema" in c["check"])' || true
}
doctor_db "$PLI_CONFIG" >"$W/doctor.out"
qgrep "^True|the store's database .* answers" "$W/doctor.out" || fail "doctor: $(cat "$W/doctor.out")"
qgrep "^True|the database's schema is version" "$W/doctor.out" || fail "doctor: $(cat "$W/doctor.out")"
qgrep "^True|the role has the rights linkd needs" "$W/doctor.out" || fail "doctor: $(cat "$W/doctor.out")"
psql "$PLI_PG_URL" -qc "CREATE ROLE pli_linkd LOGIN" || fail "cannot create the role pli_linkd"
sed "s/ user=pli / user=pli_linkd /" "$PLI_CONFIG" >"$W/linkd-role.yaml"
doctor_db "$W/linkd-role.yaml" >"$W/doctor-linkd.out"
qgrep "^False|the role lacks rights linkd needs.*|pli store migrate-schema" "$W/doctor-linkd.out" ||
    fail "doctor with an ungranted role: $(cat "$W/doctor-linkd.out")"
if grep -q "milter needs\|admin needs" "$W/doctor-linkd.out"; then
    fail "doctor checked pli_linkd for another program's rights: $(cat "$W/doctor-linkd.out")"
fi
echo "ok 0 - pli doctor: the database, its schema and the role's rights, with the fix"

# A delivery whose link is followed before, during and after the outage.
link=$(pli_first_link "Avant la panne" fault-link@buyer.example \
    "Un message enregistré avant la panne de la base.")
[ -n "$link" ] || fail "no link in the first notice"
code=$(curl -s -o /dev/null -w '%{http_code}' "$link")
[ "$code" = 200 ] || fail "the link answered $code before the outage"

expected=1 # bob
for i in $(seq 1 "$N"); do expected=$((expected + 1 + i % 3)); done
echo 0 >"$W/progress"
/usr/bin/python3 "$PLI_HARNESS_DIR/smtp_load.py" "$N" "$PFX_PORT_IN" "$CLIENTS" "$W/progress" \
    >"$W/clients.out" 2>&1 &
clients_pid=$!
pfx_on_exit "kill $clients_pid 2>/dev/null || true"
for _ in $(seq 1 1200); do
    [ "$(cat "$W/progress")" -ge $((N / 4)) ] && break
    kill -0 "$clients_pid" 2>/dev/null || break
    sleep 0.25
done
kill -0 "$clients_pid" 2>/dev/null || fail "the load ended before the outage ($(cat "$W/clients.out"))"

pg_down
echo "# PostgreSQL stopped after $(cat "$W/progress") accepted messages"
curl -s -D "$W/down.headers" -o "$W/down.html" "$link" || true
head -n 1 "$W/down.headers" | qgrep " 503" || fail "pli-linkd answered $(head -n 1 "$W/down.headers") while the database was down"
qgrep -i "^Retry-After: " "$W/down.headers" || fail "the 503 has no Retry-After"
qgrep "Service indisponible" "$W/down.html" || fail "the 503 page does not say the service is unavailable"
# The read (POST) cannot be recorded: 503 too, never a 500 nor a page shown unrecorded.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$link")
[ "$code" = 503 ] || fail "the read (POST) answered $code while the database was down"
rc=0
$PLI list >"$W/list.out" 2>"$W/list.err" || rc=$?
[ "$rc" -eq 74 ] || fail "pli list exited $rc while the database was down (74 expected)"
[ "$(wc -l <"$W/list.err")" -eq 1 ] || fail "pli list said more than one line: $(cat "$W/list.err")"
qgrep "^pli: " "$W/list.err" || fail "pli list's error: $(cat "$W/list.err")"
echo "# pli list while down: $(cat "$W/list.err")"
doctor_db "$PLI_CONFIG" >"$W/doctor-down.out"
qgrep "^False|the store's database .* answers: .*|check store.url" "$W/doctor-down.out" ||
    fail "doctor while the database is down: $(cat "$W/doctor-down.out")"
echo "ok 1 - database down: 503 with Retry-After from pli-linkd, pli list exits 74 in one line, doctor says it"

# Long enough for every client to meet the outage (the clients resend every 0.5 s).
sleep 3
pg_up
echo "# PostgreSQL started again"
wait "$clients_pid" || { cat "$W/clients.out" >&2; fail "a client gave up"; }
echo "# clients: $(cat "$W/clients.out")"
tempfails=$(sed -n 's/.*(\([0-9]*\) 4xx answers).*/\1/p' "$W/clients.out")
[ "${tempfails:-0}" -gt 0 ] || fail "no client got a 4xx while the database was down"
qgrep "decision=tempfail_store_error" "$W/milter.log" || fail "pli-milter logged no tempfail_store_error"
code=$(curl -s -o /dev/null -w '%{http_code}' "$link")
[ "$code" = 200 ] || fail "the link answered $code after the database came back"
echo "ok 2 - database back: $tempfails 4xx answers were resent, the link answers 200 again, no restart"

# Reports deferred during the outage are retried by Postfix's queue runs: flush them.
for _ in $(seq 1 600); do
    delivered=$($PLI list --status delivered --per-page 1 --json | pli_json 'j["total"]')
    [ "$delivered" -ge "$expected" ] && break
    [ $((SECONDS % 10)) -eq 0 ] && pfx_flush
    sleep 0.5
done
[ "$delivered" -eq "$expected" ] || fail "$delivered of $expected deliveries delivered"
pfx_wait_sink_count "$expected" 60
pfx_sink_files >"$W/sink.list"
/usr/bin/python3 "$PLI_HARNESS_DIR/sink_notices.py" "$W/sink.list" "$expected" 1 "$((CLIENTS * 3))" ||
    fail "notices at the sink do not match"
[ "$expected" -le 1000 ] || fail "PLI_FAULT_MESSAGES too large for one page of pli list"
$PLI list --per-page 1000 --json >"$W/list.json"
/usr/bin/python3 - "$W/list.json" "$expected" <<'PY' || fail "deliveries do not match"
import collections, json, sys
j = json.load(open(sys.argv[1]))
per = collections.Counter(d["recipient"] for d in j["items"])
assert j["total"] == int(sys.argv[2]) == len(j["items"]), (j["total"], len(j["items"]), sys.argv[2])
twice = [r for r, n in per.items() if n != 1]
assert not twice, "recipients with several deliveries: %s" % twice[:5]
PY
$PLI export --format json >"$W/export.json"
/usr/bin/python3 "$PLI_HARNESS_DIR/export_events.py" "$W/export.json" "$expected" ||
    fail "events do not match"
echo "ok 3 - every one of $expected recipients has exactly one delivery, one sent, one delivered"
