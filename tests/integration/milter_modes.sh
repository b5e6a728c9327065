#!/usr/bin/env bash
# Mode simple delivers the original with the VERP return path; a non-buyer's mail and a
# buyer's unauthenticated mail pass byte for byte, the same mail authenticated is
# registered; mode off leaves mail alone.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

pfx_send --from alice@buyer.example --to dora@remote.example \
    --header "Subject: [SIMPLE] Convocation [TYPE:invitation]" \
    --header "Message-ID: <simple-1@buyer.example>" \
    --body "Vous êtes invité à la séance d'ouverture des plis."
pfx_wait_sink_count 1 30
f=$(pfx_sink_files | tail -n 1)
grep -qE '^X-Mail-Args: <pli-bounce\+d[a-z2-7]+@buyer\.example>' "$f" || fail "no VERP return path"
grep -q "séance d'ouverture des plis" "$f" || fail "mode simple must deliver the original body"
grep -q "^Subject: Convocation$" "$f" || fail "tags not removed: $(grep '^Subject' "$f")"
grep -q "/m/" "$f" && fail "mode simple carries no link"
json=$($PLI show simple-1@buyer.example --json)
echo "$json" | pli_json 'j["mode"]' | qgrep -x simple || fail "mode is not simple"
echo "$json" | pli_json 'j["type"]' | qgrep -x invitation || fail "type not applied"
for _ in $(seq 1 100); do
    s=$($PLI show simple-1@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')
    [ "$s" = delivered ] && break; sleep 0.2
done
[ "$s" = delivered ] || fail "mode simple: delivery not tracked (status $s)"
echo "ok 1 - mode simple: the original, VERP return path, delivery tracked"

# A non-buyer's mail is byte-for-byte untouched (the milter accepts it at MAIL FROM).
cat >"$W/plain.eml" <<'MSG'
From: Someone <someone@elsewhere.example>
To: erin@remote.example
Subject: [AR] not a buyer =?utf-8?q?=C3=A9t=C3=A9?=
Message-ID: <plain-1@elsewhere.example>
Date: Sun, 29 Nov 2026 10:00:00 +0100
X-Pli-Options: mode=ar
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Line one.
Ligne deux, accentuée.
MSG
pfx_smtp --from someone@elsewhere.example --to erin@remote.example --data-file "$W/plain.eml" >/dev/null
pfx_wait_sink_count 2 30
f=$(pfx_sink_files | tail -n 1)
grep -q "^X-Mail-Args: <someone@elsewhere.example>" "$f" || fail "envelope changed"
# The sink file: smtp-sink's X- lines, the Received headers, then the message as sent
# (which has a Date and a Message-ID, so that Postfix adds no header of its own).
/usr/bin/python3 - "$f" "$W/plain.eml" <<'PY' || fail "the non-buyer's message was modified"
import sys
got = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
sent = open(sys.argv[2], "rb").read()
sys.exit(0 if sent.rstrip(b"\n") in got else 1)
PY
$PLI list --rcpt erin --json | pli_json 'j["total"]' | qgrep -x 0 || fail "a non-buyer's mail was recorded"
echo "ok 2 - a non-buyer's mail passes byte for byte"

# A buyer address from a client that is neither authenticated nor trusted: untouched.
sed -i 's|  trusted_networks: \["127.0.0.0/8"\]|  trusted_networks: ["192.0.2.0/24"]|' "$PLI_CONFIG"
kill "$PLI_MILTER_PID"; wait "$PLI_MILTER_PID" 2>/dev/null || true
pli_start_milter
pfx_send --from alice@buyer.example --to frank@remote.example \
    --header "Subject: [AR] Forged" --body "forged"
pfx_wait_sink_count 3 30
f=$(pfx_sink_files | tail -n 1)
grep -q "^X-Mail-Args: <alice@buyer.example>" "$f" || fail "unauthenticated buyer mail was registered"
echo "ok 3 - a buyer's address without SMTP AUTH nor a trusted network is not registered"


# The same buyer, same untrusted network, but authenticated: Postfix passes the SASL login
# as {auth_authen}. XCLIENT LOGIN sets it the way a real SMTP AUTH does (the harness
# authorises XCLIENT from 127.0.0.0/8), without a SASL server in the test.
pfx_send --from alice@buyer.example --to gina@remote.example \
    --xclient "LOGIN=alice@buyer.example" \
    --header "Subject: [SIMPLE] Authentifié" \
    --header "Message-ID: <auth-1@buyer.example>" --body "authenticated"
pfx_wait_sink_count 4 30
f=$(pfx_sink_files | tail -n 1)
grep -qE '^X-Mail-Args: <pli-bounce\+d[a-z2-7]+@buyer\.example>' "$f" ||
    fail "authenticated buyer mail was not registered: $(grep '^X-Mail-Args' "$f")"
$PLI show auth-1@buyer.example --json | pli_json 'j["deliveries"][0]["recipient"]' |
    grep -qx gina@remote.example || fail "authenticated buyer mail not recorded"
echo "ok 4 - the same buyer authenticated (SMTP AUTH login) from that network is registered"
