#!/usr/bin/env bash
# Two pli-linkd replicas on one PostgreSQL store, behind the real Postfix: a notice's link is
# read through replica B although A's address is in the mail; a buyers' area login link asked
# on A and mailed by A works on B, and the session it opens works on A; a client trying unknown
# links on both replicas in turn is stopped after the limit plus one, not twice the limit.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PLI_TEST_STORE=postgresql
PLI_LINKD_YAML="unknown_tokens_per_minute: 4"
pli_setup "buyers_area: { logins_per_hour: 20, logins_per_hour_per_client: 40 }"
W=$PLI_WORK
A=$PLI_URL

# Replica B: the same configuration on another port.
pli_linkd_replica
B=$PLI_REPLICA_URL

# ---- a notice read through B
pfx_send --from alice@buyer.example --to ok1@remote.example \
    --header "Subject: [TYPE:rejet] Réponse à votre offre" \
    --header "Message-ID: <rep1@buyer.example>" --body "Votre offre n'a pas été retenue."
pfx_wait_sink_count 1 60
link=$(pli_notice_link "$(pfx_sink_files | head -n 1)")
[ -n "$link" ] || fail "no link in the notice"
on_b=${link/$A/$B}
[ "$on_b" != "$link" ] || fail "the link $link is not on $A"
curl -fsS -o /dev/null "$on_b"
curl -fsS -o /dev/null -X POST -d open=1 "$on_b"
for _ in $(seq 1 100); do
    s=$($PLI show rep1@buyer.example --json | pli_json "j['deliveries'][0]['status']")
    [ "$s" = read ] && break
    sleep 0.2
done
[ "$s" = read ] || fail "read through replica B: status $s"
echo "ok 1 - a link mailed with A's address is read through B"

# ---- a login link asked on A, used on B; the session works on A
c=$(pli_ask_login "$A" "$W/a.jar" alice@buyer.example)
[ "$c" = 200 ] || fail "asking a login link on A: $c"
login=""
for _ in $(seq 1 150); do
    for f in $(pfx_maildir_files catchall); do
        grep -qi "^To: <alice@buyer.example>" "$f" || continue
        # (alice also gets the read notification of ok 1)
        login=$(pli_mail_part "$f" text/plain | grep -oE "$A/suivi/login/[A-Za-z0-9_-]+" |
            head -n 1 || true)
        [ -n "$login" ] && break 2
    done
    sleep 0.2
done
[ -n "$login" ] || fail "no login mail from A"
curl -fsS -c "$W/b.jar" -b "$W/b.jar" -o "$W/link.html" "${login/$A/$B}"
c=$(curl -sS -c "$W/b.jar" -b "$W/b.jar" -D "$W/login.h" -o /dev/null -w '%{http_code}' \
    --data-urlencode "token=$(grep -o 'name="token" value="[^"]*"' "$W/link.html" | sed 's/.*value="//; s/"$//')" \
    --data-urlencode "csrf=$(pli_csrf "$W/link.html")" "$B/suivi/login")
[ "$c" = 303 ] || fail "A's login link refused on B: $c"
c=$(curl -sS -b "$W/b.jar" -o "$W/list.html" -w '%{http_code}' "$A/suivi/")
[ "$c" = 200 ] || fail "B's session refused on A: $c"
qgrep "Réponse à votre offre" "$W/list.html" || fail "A's page for B's session lacks the exchange"
echo "ok 2 - a login link mailed by A opens a session on B that A honours"

# ---- unknown links on both replicas in turn: 4 per minute in all, plus one
bogus=AAAAAAAAAAAAAAAAAAAAAA
# The shared windows are whole minutes of the clock: start early in one (the 12 requests
# take well under 10 seconds), so that all of them fall in the same window.
while [ $((10#$(date +%S))) -ge 50 ]; do sleep 1; done
n404=0
n429=0
for i in $(seq 1 12); do
    host=$A
    [ $((i % 2)) -eq 0 ] && host=$B
    c=$(curl -sS -o /dev/null -w '%{http_code}' "$host/m/$bogus$i")
    case $c in
    404) n404=$((n404 + 1)) ;;
    429) n429=$((n429 + 1)) ;;
    *) fail "unknown link $i on $host: $c" ;;
    esac
done
[ "$n404" -eq 5 ] || fail "$n404 unknown links answered 404 over two replicas (limit 4: expected 5)"
[ "$n429" -eq 7 ] || fail "$n429 answered 429, expected 7"
# A valid link is always answered, whatever the client's count.
curl -fsS -o /dev/null "$on_b" || fail "a valid link refused after the limit"
echo "ok 3 - the unknown-link limit holds across replicas (5 x 404, then 429 on both)"
