#!/usr/bin/env bash
# Self-test of the private-Postfix harness (tests/harness/pfx and lib.sh).
# Exit 0 pass, 1 fail, 77 skip (postfix not installed / not root).
set -euo pipefail

# shellcheck source=../harness/lib.sh
. "$(cd "$(dirname "$0")/../harness" && pwd)/lib.sh"

command -v postfix >/dev/null 2>&1 || skip "postfix is not installed"
pfx_require

t0=$SECONDS
pfx_setup
echo "instance $PFX_DIR: in=$PFX_PORT_IN reinject=$PFX_PORT_REINJECT sink=$PFX_PORT_SINK" \
     "nodsn=$PFX_PORT_NODSN hard=$PFX_PORT_HARD soft=$PFX_PORT_SOFT (started in $((SECONDS - t0))s)"

[ "$(postconf -c "$PFX_CONF_DIR" -h milter_default_action)" = tempfail ] || fail "milter_default_action"
[ -z "$(postconf -c "$PFX_CONF_DIR" -h smtpd_milters)" ] || fail "smtpd_milters set without --milter"
[ "$(stat -c %a "$PFX_DIR")" = 755 ] || fail "$PFX_DIR is not mode 755"

# 1. submission -> relayhost sink, with the smtp-sink headers
tag=selftest-$$-$RANDOM
pfx_send --from alice@buyer.example --to x@remote.example --header "Subject: $tag relay"
pfx_wait_sink_count 1 20
f=$(pfx_sink_files | head -n 1)
grep -qx 'X-Mail-Args: <alice@buyer.example>.*' "$f" || fail "no X-Mail-Args line in $f"
grep -qx 'X-Rcpt-Args: <x@remote.example>.*' "$f" || fail "no X-Rcpt-Args line in $f"
grep -q '^X-Helo-Args: mail.buyer.example$' "$f" || fail "no X-Helo-Args line in $f"
grep -q "^Subject: $tag relay\$" "$f" || fail "subject missing in $f"
grep -q 'by mail.buyer.example (Postfix)' "$f" || fail "Postfix Received header missing in $f"
grep -q 'by sink-main.remote.example (smtp-sink)' "$f" || fail "sink Received header missing in $f"
pfx_wait_log 'pfx/smtp\[[0-9]+\]: .*to=<x@remote.example>.*status=sent' 10
echo "ok 1 - relayed to the sink: $f ($((SECONDS - t0))s)"

# 2. 550 from the hard sink -> NDR to alice, who lands in catchall/
pfx_send --from alice@buyer.example --to hardfail@remote.example --header "Subject: $tag hard"
pfx_wait_maildir catchall 1 20
ndr=$(pfx_maildir_files catchall | head -n 1)
grep -q '^Subject: Undelivered Mail Returned to Sender' "$ndr" || fail "not an NDR: $ndr"
grep -q '^Action: failed' "$ndr" || fail "no Action: failed in $ndr"
grep -q '^Diagnostic-Code: smtp; 550 5.1.1' "$ndr" || fail "no 550 Diagnostic-Code in $ndr"
grep -q '^Delivered-To: alice@buyer.example' "$ndr" || fail "NDR not delivered to alice: $ndr"
[ "$(pfx_sink_count)" -eq 1 ] || fail "hardfail mail reached the main sink"
echo "ok 2 - failure DSN in catchall: $ndr ($((SECONDS - t0))s)"

# 3. reinjection with DSN parameters from the bounce address -> pli-smtp -> "relayed" DSN
qid=$(pfx_smtp --reinject --from "pli-bounce+abc123@buyer.example" --mail-params "RET=HDRS ENVID=abc123" \
      --to y@remote.example --rcpt-params "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;y@remote.example" \
      --subject "$tag reinject")
[ -n "$qid" ] || fail "no queue id from the reinjection port"
pfx_wait_maildir bounce 1 20
dsn=$(pfx_maildir_files bounce | head -n 1)
grep -q '^Subject: Successful Mail Delivery Report' "$dsn" || fail "not a success DSN: $dsn"
grep -q '^Action: relayed' "$dsn" || fail "no Action: relayed in $dsn"
grep -q '^Original-Envelope-Id: abc123' "$dsn" || fail "no Original-Envelope-Id in $dsn"
grep -q '^Delivered-To: pli-bounce+abc123@buyer.example' "$dsn" || fail "wrong DSN recipient in $dsn"
grep -q "X-Postfix-Queue-ID: $qid" "$dsn" || fail "DSN does not name queue id $qid"
pfx_wait_log "pli-smtp/smtp\\[[0-9]+\\]: $qid: to=<y@remote.example>.*status=sent" 10
pfx_log_has 'discarding EHLO keywords' && fail "silent-discard did not silence the EHLO keyword log"
# the next hop got neither NOTIFY nor ENVID (its DSN keyword was hidden)
pfx_wait_sink_count 2 10
f2=$(pfx_sink_files | tail -n 1)
grep -qx 'X-Mail-Args: <pli-bounce+abc123@buyer.example>' "$f2" || fail "unexpected X-Mail-Args in $f2"
grep -qx 'X-Rcpt-Args: <y@remote.example>' "$f2" || fail "unexpected X-Rcpt-Args in $f2"
echo "ok 3 - relayed DSN via pli-smtp in bounce/: $dsn ($((SECONDS - t0))s)"

# 4. stop: nothing of the instance may still listen; stop is idempotent
ports=("$PFX_PORT_IN" "$PFX_PORT_REINJECT" "$PFX_PORT_SINK" "$PFX_PORT_NODSN" "$PFX_PORT_HARD" "$PFX_PORT_SOFT")
"$PFX_BIN" stop "$PFX_DIR" || fail "pfx stop failed"
listening=$(ss -Hltn | awk '{ n = split($4, a, ":"); print a[n] }')
for p in "${ports[@]}"; do
    if grep -qx "$p" <<<"$listening"; then fail "port $p still listening after stop"; fi
done
"$PFX_BIN" stop "$PFX_DIR" || fail "second pfx stop failed"
echo "ok 4 - stopped, no ports left open ($((SECONDS - t0))s in total)"
