#!/usr/bin/env bash
# Who may have mail registered as a buyer, and what counts as a retry, through the real
# Postfix: the milter socket is 0660 for the postfix group; a remote inet socket and a bad
# trusted network stop the programs with FILE:LINE (exit 78); an SMTP AUTH login that does
# not own the buyer sender, and `sendmail -f buyer` by a local user, are not registered;
# another mail under a known Message-ID (another body, subject or sender) is registered as
# new while a true resend injects nothing; the daemonised milter (store opened after
# daemon()) registers mail.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

# 1. The socket: 0660, group postfix (Postfix's smtpd and cleanup connect as postfix).
[ "$(stat -c '%a %G' "$PLI_SOCKET")" = "660 postfix" ] ||
    fail "milter socket is $(stat -c '%a %G' "$PLI_SOCKET"), not 660 postfix"
pfx_send --from alice@buyer.example --to anna@remote.example \
    --header "Message-ID: <sock-1@buyer.example>" --header "Subject: Socket" --body "via 0660"
pfx_wait_sink_count 1 30
$PLI show sock-1@buyer.example --json | pli_json 'j["deliveries"][0]["recipient"]' |
    qgrep -x anna@remote.example || fail "Postfix could not register through the 0660 socket"
echo "ok 1 - the milter socket is 0660 for the postfix group, and Postfix registers through it"

# 2. Config that would trust or expose everyone: refused with FILE:LINE, exit 78.
expect_78() { # FILE REGEX CMD...
    local file=$1 regex=$2 rc=0; shift 2
    "$@" >"$W/out" 2>&1 || rc=$?
    [ "$rc" = 78 ] || fail "$* exited $rc, not 78: $(cat "$W/out")"
    qgrep -E "$regex" "$W/out" || fail "$*: unexpected message: $(cat "$W/out")"
}
sed 's|trusted_networks: \["127.0.0.0/8"\]|trusted_networks: ["127.0.0.0/8", "10.0.0.0/x"]|' \
    "$PLI_CONFIG" >"$W/cidr.yaml"
line=$(grep -n trusted_networks "$W/cidr.yaml" | cut -d: -f1)
expect_78 "$W/cidr.yaml" "^$W/cidr.yaml:$line: policy.trusted_networks: '10.0.0.0/x' is not a network" \
    "$PLI_BIN_DIR/admin-cli/pli" --config "$W/cidr.yaml" check-config
expect_78 "$W/cidr.yaml" "^$W/cidr.yaml:$line: .*10.0.0.0/x" \
    "$PLI_BIN_DIR/milter/pli-milter" --config "$W/cidr.yaml" --foreground
port=$(pfx_free_port)
sed "s|^milter: .*|milter: { socket: \"inet:$port@0.0.0.0\" }|" "$PLI_CONFIG" >"$W/inet.yaml"
line=$(grep -n '^milter:' "$W/inet.yaml" | cut -d: -f1)
expect_78 "$W/inet.yaml" "^$W/inet.yaml:$line: milter.socket: 'inet:$port@0.0.0.0' lets any host" \
    "$PLI_BIN_DIR/milter/pli-milter" --config "$W/inet.yaml" --foreground
ss -ltnH "sport = :$port" | qgrep . && fail "pli-milter listened on 0.0.0.0:$port"
sed "s|^milter: .*|milter: { socket: \"inet:$port@0.0.0.0\", allow_remote_inet: true }|" \
    "$PLI_CONFIG" >"$W/inet-ok.yaml"
"$PLI_BIN_DIR/admin-cli/pli" --config "$W/inet-ok.yaml" check-config >/dev/null ||
    fail "allow_remote_inet: true is refused"
echo "ok 2 - '10.0.0.0/x' and a 0.0.0.0 milter socket: exit 78 with FILE:LINE, nothing listens"

# 3. An SMTP AUTH login that does not own the buyer address, from a trusted network.
pfx_send --from alice@buyer.example --to bea@remote.example --xclient "LOGIN=bob@buyer.example" \
    --header "Message-ID: <imp-1@buyer.example>" --header "Subject: Usurpation" --body "bob as alice"
pfx_wait_sink_count 2 30
f=$(pfx_sink_files | tail -n 1)
qgrep "^X-Mail-Args: <alice@buyer.example>" "$f" || fail "bob's login was registered as alice"
$PLI list --rcpt bea --json | pli_json 'j["total"]' | qgrep -x 0 || fail "bob's mail as alice recorded"
qgrep 'reason="the SMTP AUTH login does not own the buyer sender" login=bob@buyer.example' \
    "$W/milter.log" || fail "no log line for the login mismatch"
pfx_send --from alice@buyer.example --to bea@remote.example --xclient "LOGIN=alice@buyer.example" \
    --header "Message-ID: <imp-2@buyer.example>" --header "Subject: Vraie" --body "alice"
pfx_wait_sink_count 3 30
$PLI show imp-2@buyer.example --json | pli_json 'j["deliveries"][0]["recipient"]' |
    qgrep -x bea@remote.example || fail "alice's own login was not registered"
echo "ok 3 - a login that does not own the buyer address is not registered; the owner's is"

# Postfix enforces it too (the master.cf snippet), and pli doctor says so.
doctor_login() { # OK WHAT FIX: "True" when pli doctor has exactly that check
    local json
    json=$($PLI doctor --offline --postfix-config "$PFX_CONF_DIR" --json || true)
    echo "$json" | WHAT=$2 FIX=$3 pli_json "any(c['ok'] == $1 and c['check'] == __import__('os').environ['WHAT'] and (c['fix'] or '') == __import__('os').environ['FIX'] for c in j['checks'])"
}
svc=127.0.0.1:$PFX_PORT_IN
doctor_login False "the $svc service lets an SMTP AUTH login use any sender address (a buyer's included)" \
    "$svc inet n - y - - smtpd
  -o smtpd_sender_login_maps=hash:/etc/postfix/sender_logins
  -o smtpd_sender_restrictions=reject_authenticated_sender_login_mismatch" | qgrep -x True ||
    fail "pli doctor does not name the sender login lines: $($PLI doctor --offline --postfix-config "$PFX_CONF_DIR")"
echo "alice@buyer.example alice@buyer.example" >"$W/sender_logins"
postmap -c "$PFX_CONF_DIR" "$W/sender_logins"
# (smtpd_sasl_auth_enable, as on the snippet's submission service: without it Postfix ignores
# the restriction; XCLIENT LOGIN then stands for the SASL login.)
postconf -c "$PFX_CONF_DIR" -P "$svc/inet/smtpd_sender_login_maps=hash:$W/sender_logins" \
    "$svc/inet/smtpd_sender_restrictions=reject_authenticated_sender_login_mismatch" \
    "$svc/inet/smtpd_sasl_auth_enable=yes"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1
doctor_login True "the submission service checks that the SMTP AUTH login owns the sender address" "" |
    qgrep -x True ||
    fail "pli doctor still reports the sender login lines: $($PLI doctor --offline --postfix-config "$PFX_CONF_DIR")"
refused() { # swaks' transcript shows Postfix's 553 for bob as alice
    local out
    out=$(swaks --server 127.0.0.1 --port "$PFX_PORT_IN" --timeout 20 --from alice@buyer.example \
        --to bea@remote.example --xclient "LOGIN=bob@buyer.example" 2>&1) && return 1
    echo "$out" | qgrep -E '<\*\* +553 5\.7\.1 .*not owned by user bob@buyer\.example'
}
_pfx_wait 20 "Postfix to refuse bob's login as alice" "" refused
pfx_send --from alice@buyer.example --to bea@remote.example --xclient "LOGIN=alice@buyer.example" \
    --header "Message-Id: <imp-3@buyer.example>" --header "Subject: Vraie" --body "alice again"
pfx_wait_sink_count 4 30
echo "ok 3b - with the snippet's two lines Postfix refuses bob as alice (553), and pli doctor checks them"

# 4. sendmail -f alice by a local user (127.0.0.1 is trusted): passes untouched, logged.
printf 'From: <alice@buyer.example>\nTo: <cid@remote.example>\nSubject: Local\nMessage-ID: <local-1@buyer.example>\n\nvia sendmail\n' |
    sendmail -C "$PFX_CONF_DIR" -f alice@buyer.example cid@remote.example ||
    fail "sendmail failed"
pfx_wait_sink_count 5 30
f=$(pfx_sink_files | tail -n 1)
qgrep "^X-Mail-Args: <alice@buyer.example>" "$f" || fail "sendmail -f alice was registered"
qgrep "^Subject: Local" "$f" || fail "the local mail did not pass"
$PLI list --rcpt cid --json | pli_json 'j["total"]' | qgrep -x 0 || fail "sendmail -f alice recorded"
qgrep 'reason="local submission (sendmail) not registered"' "$W/milter.log" ||
    fail "no log line for the local submission"
echo "ok 4 - sendmail -f buyer (a local submission): not registered, passes untouched, logged"

# 5. One Message-ID, four mails: another subject+body, another sender, then a true resend.
send_dup() { # FROM SUBJECT BODY
    pfx_send --from "$1" --to dora@remote.example \
        --header "Message-Id: <dup-1@buyer.example>" --header "Subject: $2" --body "$3"
}
send_dup alice@buyer.example "Lot 1" "Premier envoi"
pfx_wait_sink_count 6 30
send_dup alice@buyer.example "Lot 2" "Un autre courrier"
pfx_wait_sink_count 7 30
send_dup carl@buyer.example "Lot 1" "Premier envoi"
pfx_wait_sink_count 8 30
n=$($PLI list --rcpt dora --json | pli_json 'j["total"]')
[ "$n" = 3 ] || fail "expected 3 registered deliveries to dora under one Message-ID, got $n"
for f in $(pfx_sink_files | tail -n 3); do
    pli_notice_link "$f" | qgrep "/m/" || fail "$f is not a notice with a link"
done
# The identical mail again (Postfix writes a new Received, swaks a new Date): a retry.
send_dup alice@buyer.example "Lot 1" "Premier envoi"
pfx_wait_log "milter-discard.*to=<dora@remote.example>" 30
grep -c "decision=registered_retry" "$W/milter.log" | qgrep -x 1 || fail "the resend was not a retry"
sleep 1
[ "$(pfx_sink_count)" = 8 ] || fail "the true resend was injected again"
[ "$($PLI list --rcpt dora --json | pli_json 'j["total"]')" = 3 ] || fail "the resend was recorded"
$PLI show dup-1@buyer.example --json | pli_json 'j["sender"]' | qgrep -x carl@buyer.example ||
    fail "pli show <Message-ID> does not show the latest message with it"
echo "ok 5 - a known Message-ID with another subject, body or sender is registered and sent; the identical resend is not"

# 6. The daemonised milter (no --foreground): the store is opened after daemon().
kill "$PLI_MILTER_PID"; wait "$PLI_MILTER_PID" 2>/dev/null || true
rm -f "$PLI_SOCKET"
"$PLI_BIN_DIR/milter/pli-milter" --config "$PLI_CONFIG" || fail "pli-milter did not start"
daemon_pid() { # the daemon started above: this exact binary and config
    local p
    for p in /proc/[0-9]*; do
        [ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" = "$PLI_BIN_DIR/milter/pli-milter --config $PLI_CONFIG " ] &&
            { echo "${p#/proc/}"; return 0; }
    done
    return 1
}
_pfx_wait 20 "the daemonised pli-milter" "" daemon_pid
dpid=$(daemon_pid)
pfx_on_exit "kill $dpid 2>/dev/null || true"
_pfx_wait 20 "pli-milter's socket" "" test -S "$PLI_SOCKET"
pfx_send --from alice@buyer.example --to eve@remote.example \
    --header "Message-ID: <daemon-1@buyer.example>" --header "Subject: Daemon" --body "forked"
pfx_wait_sink_count 9 30
$PLI show daemon-1@buyer.example --json | pli_json 'j["deliveries"][0]["events"][-1]["kind"]' |
    qgrep -E 'sent|delivered' || fail "the daemonised milter did not register the mail"
kill "$dpid"
echo "ok 6 - the daemonised pli-milter registers mail"
