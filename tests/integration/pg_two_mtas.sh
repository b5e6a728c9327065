#!/usr/bin/env bash
# Two MTA hosts on one PostgreSQL store (README, "Several hosts"): MTA A, where the buyer
# writes (its pli-milter registers and re-injects the notice), relays its outgoing mail
# through MTA B (a plain smtp client passing NOTIFY/ENVID/RET on); B delivers through its
# pli-smtp transport and its own bounce daemon writes the report, which B's pli-milter
# reads through non_smtpd_milters: a trusted report for a delivery A recorded. Each MTA has
# its pli-milter (smtpd and non_smtpd_milters) and its pli-linkd. Checked: the notice passes
# B's smtpd milter untouched and is registered once; it becomes delivered from B's report;
# it is read through linkd B; a login link mailed by linkd A opens a session on linkd B; a
# notice the remote refuses becomes failed from B's report and the buyer is told once; `pli
# list` from a third, admin-host config sees it all and every chain verifies.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
export PLI_TEST_STORE=postgresql
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS"
pli_setup "buyers_area: { logins_per_hour: 20, logins_per_hour_per_client: 40 }" "keys: { dir: $KEYS }"
pli_second_mta
W=$PLI_WORK
A=$PLI_URL
B=$PLI_B_URL
on_b() { pfx_in "$PLI_B_PFX_DIR" "$@"; }

json_of() { $PLI show "$1@buyer.example" --json; }
status_of() { json_of "$1" | pli_json "j['deliveries'][0]['status']"; }
wait_status() { # wait_status MID STATUS
    local s=""
    for _ in $(seq 1 300); do
        s=$(status_of "$1")
        [ "$s" = "$2" ] && return 0
        sleep 0.2
    done
    pli_diag
    fail "$1: status '$s' after 60 s, expected $2"
}
# count MID KIND: how many events of KIND the message's delivery has
count() { json_of "$1" | pli_json "sum(1 for e in j['deliveries'][0]['events'] if e['kind']=='$2')"; }
# detail MID KIND KEY: a detail of the message's last event of KIND
detail() {
    json_of "$1" | pli_json "[e for e in j['deliveries'][0]['events'] if e['kind']=='$2'][-1]['detail'].get('$3','')"
}

# ---- 1. sent through A, relayed by B, delivered from B's own report
pfx_send --from alice@buyer.example --to ok1@remote.example \
    --header "Subject: [TYPE:rejet] [REF:AO-2026-01] Réponse à votre offre" \
    --header "Message-ID: <two1@buyer.example>" --body "Votre offre n'a pas été retenue."
on_b pfx_wait_sink_count 1 60
wait_status two1 delivered
[ "$(detail two1 delivered reporting_mta)" = mta-b.buyer.example ] ||
    fail "the delivered event is not B's report: $(detail two1 delivered reporting_mta)"
# A relayed the notice to B's smtpd (DSN passed on: A reports nothing) and delivered nothing.
pfx_log_has "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$PLI_B_PORT_IN, .*status=sent" ||
    fail "A did not relay the notice through B's smtpd"
[ "$(pfx_sink_count)" = 0 ] || fail "A delivered to its own sink"
pfx_log_has "delivery status notification" && fail "A's bounce daemon reported the relayed notice"
on_b pfx_log_has "/bounce\[[0-9]+\]: .*sender delivery status notification" ||
    fail "B's bounce daemon made no report"
# B's smtpd milter let pli's notice through untouched; nothing was registered twice.
qgrep -F "sent by pli (the bounce address)" "$PLI_B_WORK/milter.log" ||
    fail "B's smtpd milter did not see the relayed notice"
qgrep "decision=registered" "$PLI_B_WORK/milter.log" && fail "B's milter registered a message"
[ "$($PLI list --json | pli_json 'j["total"]')" = 1 ] || fail "more than one message registered"
[ "$(count two1 sent)" = 1 ] || fail "two1: $(count two1 sent) sent events"
[ "$(count two1 delivered)" = 1 ] || fail "two1: $(count two1 delivered) delivered events"
[ "$(on_b pfx_sink_count)" = 1 ] || fail "the remote got $(on_b pfx_sink_count) notices"
echo "ok 1 - a notice sent through A and relayed by B is delivered from B's own report, registered once"

# ---- 2. read through linkd B (A's address is in the notice)
link=$(pli_notice_link "$(on_b pfx_sink_files | head -n 1)")
[ -n "$link" ] || fail "no link in the notice"
link_b=${link/$A/$B}
[ "$link_b" != "$link" ] || fail "the link $link is not on $A"
curl -fsS -o /dev/null "$link_b"
curl -fsS -o /dev/null -X POST -d open=1 "$link_b"
wait_status two1 read
# linkd B told the buyer through B's Postfix
on_b pfx_wait_maildir catchall 1 60
qgrep -l "X-Pli-Notification: read" $(on_b pfx_maildir_files catchall) ||
    fail "no read notification through B"
echo "ok 2 - the notice is read through linkd B"

# ---- 3. a login link mailed by linkd A, used on linkd B
c=$(pli_ask_login "$A" "$W/a.jar" alice@buyer.example)
[ "$c" = 200 ] || fail "asking a login link on A: $c"
login=""
for _ in $(seq 1 300); do
    for f in $(pfx_maildir_files catchall); do
        login=$(pli_mail_part "$f" text/plain | grep -oE "$A/suivi/login/[A-Za-z0-9_-]+" |
            head -n 1 || true)
        [ -n "$login" ] && break 2
    done
    sleep 0.2
done
[ -n "$login" ] || fail "no login mail from linkd A in A's mailboxes"
curl -fsS -c "$W/b.jar" -b "$W/b.jar" -o "$W/link.html" "${login/$A/$B}"
c=$(curl -sS -c "$W/b.jar" -b "$W/b.jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "token=$(grep -o 'name="token" value="[^"]*"' "$W/link.html" | sed 's/.*value="//; s/"$//')" \
    --data-urlencode "csrf=$(pli_csrf "$W/link.html")" "$B/suivi/login")
[ "$c" = 303 ] || fail "A's login link refused on B: $c"
c=$(curl -sS -b "$W/b.jar" -o "$W/list.html" -w '%{http_code}' "$B/suivi/")
[ "$c" = 200 ] || fail "the session opened on B: $c"
qgrep "Réponse à votre offre" "$W/list.html" || fail "B's buyers' area lacks the exchange"
echo "ok 3 - a login link mailed by linkd A opens a session on linkd B"

# ---- 4. refused by the remote: failed from B's report, the buyer told once
pfx_send --from alice@buyer.example --to hardfail@remote.example \
    --header "Subject: [REF:AO-2026-02] Demande de précisions" \
    --header "Message-ID: <two2@buyer.example>" --body "Merci de préciser votre offre."
wait_status two2 not_delivered
[ "$(detail two2 failed reporting_mta)" = mta-b.buyer.example ] ||
    fail "the failed event is not B's report: $(detail two2 failed reporting_mta)"
qgrep -F "550 5.1.1" <<<"$(detail two2 failed diagnostic)" ||
    fail "the failure lacks the remote's reply: $(detail two2 failed diagnostic)"
[ "$(count two2 failed)" = 1 ] || fail "two2: $(count two2 failed) failed events"
fid=$(json_of two2 | pli_json 'j["deliveries"][0]["id"]')
notified() { # notified PFX_DIR: failure notifications for two2 in that MTA's mailboxes
    local files
    files=$(pfx_in "$1" pfx_maildir_files catchall)
    [ -n "$files" ] || { echo 0; return; }
    grep -l "X-Pli-Notification: not_delivered; delivery=$fid" $files | grep -c . || true
}
for _ in $(seq 1 300); do
    [ "$(notified "$PLI_B_PFX_DIR")" -ge 1 ] && break
    sleep 0.2
done
[ "$(notified "$PLI_B_PFX_DIR")" = 1 ] || fail "B sent $(notified "$PLI_B_PFX_DIR") failure notifications for $fid"
# Nothing more comes: both queues empty, still one notification, none through A.
on_b pfx_wait_queue_empty 60
pfx_wait_queue_empty 60
[ "$(notified "$PLI_B_PFX_DIR")" = 1 ] || fail "B sent $(notified "$PLI_B_PFX_DIR") failure notifications for $fid"
[ "$(notified "$PFX_DIR")" = 0 ] || fail "A sent a failure notification for $fid too"
echo "ok 4 - a notice refused by the remote is failed from B's report; the buyer is told once"

# ---- 5. an admin host's pli (a third config) sees it all; the chains verify
ADMIN=$W/admin
mkdir -p "$ADMIN"
cat >"$ADMIN/pli.yaml" <<YAML
organisation: { name: "Région Exemple", locale: fr, timezone: Europe/Paris }
store: { path: $ADMIN/store, backend: postgresql, url: "$PLI_PG_URL" }
milter: { socket: "unix:$ADMIN/unused.sock" }
policy: { buyers: ["*@buyer.example"] }
bounce: { address: "pli-bounce@buyer.example" }
linkd: { public_url: "$A" }
keys: { dir: $KEYS }
YAML
PLI_ADMIN="$PLI_BIN_DIR/admin-cli/pli --config $ADMIN/pli.yaml"
$PLI keygen >/dev/null
out=$($PLI_ADMIN list --json)
echo "$out" | pli_json 'j["total"]' | qgrep -x 2 || fail "admin host's pli list: $out"
$PLI_ADMIN list --status read --json | pli_json 'j["total"]' | qgrep -x 1 ||
    fail "admin host: the read delivery is not listed as read"
$PLI_ADMIN list --status not_delivered --json | pli_json 'j["total"]' | qgrep -x 1 ||
    fail "admin host: the refused delivery is not listed as not delivered"
[ "$($PLI_ADMIN show two1@buyer.example --json)" = "$($PLI_B show two1@buyer.example --json)" ] ||
    fail "the admin host and B show two1 otherwise"
out=$($PLI_ADMIN store check --json) || fail "pli store check: $out"
echo "$out" | pli_json 'j["unreadable"] == 0 and not j["damaged"]' | qgrep -x True ||
    fail "pli store check: $out"
# A copy reads every message back and verifies its hash chain (A's, B's and linkd B's events).
out=$($PLI_ADMIN store copy --to "lmdb:$ADMIN/copy" --json) || fail "pli store copy: $out"
echo "$out" | pli_json 'j["ok"] and j["messages"] == 2 and j["verified"] == 2' | qgrep -x True ||
    fail "the chains do not verify: $out"
$PLI_ADMIN receipt two1@buyer.example -o "$W/two1.pdf" >/dev/null
$PLI_ADMIN verify "$W/two1.pdf" >/dev/null || fail "two1's receipt does not verify"
[ ! -e "$ADMIN/store/data.mdb" ] || fail "the admin host's pli opened an LMDB store"
echo "ok 5 - pli on an admin host lists both messages; their chains and a receipt verify"
