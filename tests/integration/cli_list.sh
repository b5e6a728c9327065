#!/usr/bin/env bash
# pli list and pli show against a store filled through the real path (Postfix, pli-milter,
# DSNs, pli-linkd): each filter alone and combined, pagination edges, accents, the JSON
# shapes, and the error exits (2 unknown id, 64 bad arguments, 78 config).
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS" # pli keygen creates it (0700)
pli_setup "keys: { dir: $KEYS }"
W=$PLI_WORK
$PLI keygen >/dev/null

send() { # send FROM TO... -- SUBJECT MESSAGE-ID BODY
    local from=$1; shift
    local to=""
    while [ "$1" != -- ]; do to=${to:+$to,}$1; shift; done
    shift
    pfx_send --from "$from" --to "$to" --header "Subject: $1" \
        --header "Message-ID: <$2@buyer.example>" --body "$3"
}
status_of() { # status_of MID [INDEX]
    $PLI show "$1@buyer.example" --json | pli_json "j['deliveries'][${2:-0}]['status']"
}
wait_status() { # wait_status MID STATUS [INDEX]
    local s=""
    for _ in $(seq 1 200); do
        s=$(status_of "$1" "${3:-0}"); [ "$s" = "$2" ] && return 0; sleep 0.2
    done
    fail "$1: status $s, expected $2"
}
total() { $PLI list "$@" --json | pli_json 'j["total"]'; }
expect_total() { # expect_total N ARGS...
    local n=$1; shift
    local t; t=$(total "$@")
    [ "$t" = "$n" ] || fail "pli list $*: total $t, expected $n"
}

send alice@buyer.example ok1@remote.example -- "[TYPE:rejet] [REF:2024AK_001] Réponse à votre offre" \
    l1 "Nous avons le regret de vous informer que votre offre n'a pas été retenue."
send alice@buyer.example ok2@remote.example ok3@other.example -- \
    "[TYPE:attribution] [REF:2024AK_001] Attribution du marché" l2 "Votre offre est retenue."
send bernard@buyer.example hardfail@remote.example -- "[TYPE:complement] Demande de complément" \
    l3 "Merci de fournir l'attestation."
send bernard@buyer.example ok4@remote.example -- "Information générale" l4 \
    "Œuvre d'été à l'école du quartier."
send alice@buyer.example ok5@remote.example -- "[TYPE:invitation] Invitation à concourir" l5 \
    "Vous êtes invité à remettre une offre."
pfx_wait_sink_count 5 60
wait_status l1 delivered
wait_status l2 delivered 0
wait_status l2 delivered 1
wait_status l3 not_delivered
wait_status l4 delivered
wait_status l5 delivered
link=$(for f in $(pfx_sink_files); do
    if grep -q "^To: <ok1@remote.example>" "$f"; then pli_notice_link "$f"; fi; done | head -n 1)
[ -n "$link" ] || fail "no notice for ok1"
curl -fsS -o /dev/null -X POST -d open=1 "$link"
wait_status l1 read
echo "ok 1 - 6 deliveries through the real path: 4 delivered, 1 read, 1 not delivered"

expect_total 6
expect_total 4 --status delivered
expect_total 1 --status read
expect_total 1 --status not_delivered
expect_total 0 --status sending
expect_total 1 --type rejet
expect_total 2 --type attribution
expect_total 2 --consultation 2024AK_001 --type attribution
expect_total 3 --consultation 2024AK_001
expect_total 0 --consultation 2024AK_999
expect_total 5 --rcpt remote.example
expect_total 1 --rcpt OK3
expect_total 2 --sender bernard
expect_total 4 --sender ALICE
expect_total 1 --keywords reponse
expect_total 1 --keywords "RÉPONSE offre"
expect_total 1 --keywords "ecole ete"
expect_total 1 --keywords oeuvre
expect_total 0 --keywords "reponse absent"
today=$(TZ=Europe/Paris date +%F)
expect_total 6 --since "$today"
expect_total 6 --until "$today"
expect_total 0 --since "$(TZ=Europe/Paris date -d tomorrow +%F)"
expect_total 0 --until "$(TZ=Europe/Paris date -d yesterday +%F)"
echo "ok 2 - each filter alone: status, type, consultation, rcpt, sender, keywords (accents), dates"

expect_total 2 --status read --status not_delivered
expect_total 5 --status read --status delivered
expect_total 2 --consultation 2024AK_001 --status delivered
expect_total 1 --sender alice --type rejet --status read
expect_total 0 --sender bernard --status read
expect_total 3 --rcpt remote.example --status delivered --since "$today"
expect_total 1 --keywords offre --sender alice --consultation 2024AK_001 --status read
# Totals from the counts of an address in a status and of a word in a type.
expect_total 1 --sender alice --status read
expect_total 3 --sender ALICE --status delivered
expect_total 4 --sender alice --status delivered --status read
expect_total 1 --sender bernard --status not_delivered
expect_total 0 --sender nobody --status read
expect_total 3 --rcpt remote.example --status delivered
expect_total 1 --rcpt OK1 --status read
expect_total 1 --keywords attestation --type complement
expect_total 0 --keywords attestation --type rejet
expect_total 2 --keywords offre --type attribution
expect_total 1 --keywords "reponse offre" --type rejet --since "$today"
echo "ok 3 - filters combine"

p=$($PLI list --per-page 4 --json)
[ "$(echo "$p" | pli_json 'j["pages"]')" = 2 ] || fail "6 rows of 4: 2 pages"
[ "$(echo "$p" | pli_json 'len(j["items"])')" = 4 ] || fail "page 1 holds 4"
[ "$($PLI list --per-page 4 --page 2 --json | pli_json 'len(j["items"])')" = 2 ] || fail "page 2 holds 2"
p3=$($PLI list --per-page 4 --page 3 --json)
[ "$(echo "$p3" | pli_json 'len(j["items"]), j["total"]')" = "0 6" ] || fail "past the end: empty, total kept"
[ "$($PLI list --per-page 6 --json | pli_json 'j["pages"]')" = 1 ] || fail "6 of 6: one page"
[ "$($PLI list --per-page 1 --page 6 --json | pli_json 'j["items"][0]["recipient"]')" = ok1@remote.example ] \
    || fail "the oldest is last"
newest=$($PLI list --json | pli_json 'j["items"][0]["recipient"]')
[ "$newest" = ok5@remote.example ] || fail "newest first: got $newest"
# Pages do not overlap and together hold every row.
all=$(for pg in 1 2 3; do $PLI list --per-page 2 --page $pg --json | pli_json '"\n".join(i["id"] for i in j["items"])'; done | sort)
[ "$(echo "$all" | sort -u | wc -l)" = 6 ] || fail "pages overlap or miss rows"
text=$($PLI list --per-page 4 --page 2)
echo "$text" | head -n 1 | qgrep -x "6 résultats — page 2/2" || fail "header: $(echo "$text" | head -n 1)"
echo "$text" | tail -n 1 | qgrep -x "6 résultats — page 2/2" || fail "footer"
$PLI list --per-page 4 --page 3 | qgrep "Aucun résultat sur cette page" || fail "empty page text"
echo "ok 4 - pagination edges: last page, past the end, one per page, no overlap, header and footer"

text=$($PLI list)
for s in "Lu par le destinataire" "Non délivré" "Délivré" "Courrier de rejet" "Réponse à votre offre" \
    "Œuvre d'été" "Statut" "Délivré (D)" "Début du message"; do
    echo "$text" | qgrep -F "$s" || fail "list text lacks '$s'"
done
echo "$text" | grep -E "Réponse à votre offre" | qgrep -E "[0-9]{2}/[0-9]{2}/[0-9]{4} - [0-9]{2}:[0-9]{2}:[0-9]{2}" \
    || fail "no dd/mm/yyyy - HH:MM:SS time"
show=$($PLI show l1@buyer.example)
for s in "Courrier lu par ok1@remote.example" "Envoi du courrier par alice@buyer.example" \
    "Courrier délivré à ok1@remote.example" "adresse IP : 127.0.0.1" "Consultation"; do
    echo "$show" | qgrep -F "$s" || fail "show lacks '$s'"
done
echo "ok 5 - accents and the platform's labels in tables"

$PLI list --json | pli_json 'sorted(j.keys())' | qgrep -xF "['format_version', 'items', 'page', 'pages', 'per_page', 'total']" \
    || fail "list JSON keys: $($PLI list --json | pli_json 'sorted(j.keys())')"
$PLI list --json | pli_json 'all({"id","message","recipient","status","events"} <= set(i) for i in j["items"])' \
    | qgrep -x True || fail "DELIVERY keys"
$PLI list --json | pli_json 'all(set(e)=={"kind","at","detail"} for i in j["items"] for e in i["events"])' \
    | qgrep -x True || fail "event keys"
$PLI list --json | pli_json 'all(__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", e["at"]) is not None for i in j["items"] for e in i["events"])' \
    | qgrep -x True || fail "event times are not ISO 8601 with offset"
sj=$($PLI show l2@buyer.example --json)
echo "$sj" | pli_json '{"format_version","id","message_id","subject","type","mode","reply_allowed","consultation","sender","sent_at","attachments","deliveries"} <= set(j)' \
    | qgrep -x True || fail "show JSON keys: $(echo "$sj" | pli_json 'sorted(j)')"
echo "$sj" | pli_json 'len(j["deliveries"]), j["type"], j["consultation"], j["message_id"]' \
    | qgrep -xF "2 attribution 2024AK_001 l2@buyer.example" || fail "show JSON values"
did=$(echo "$sj" | pli_json 'j["deliveries"][1]["id"]')
[ "$($PLI show "$did" --json | pli_json 'len(j["deliveries"])')" = 1 ] || fail "show by delivery id: that delivery only"
mid=$(echo "$sj" | pli_json 'j["id"]')
[ "$($PLI show "<l2@buyer.example>" --json | pli_json 'j["id"]')" = "$mid" ] || fail "show by <Message-ID>"
echo "ok 6 - JSON shapes of list and show (format_version, DELIVERY, events, ISO times)"

expect_exit() { # expect_exit STATUS ARGS...
    local want=$1; shift
    set +e; $PLI "$@" >"$W/out" 2>"$W/err"; local rc=$?; set -e
    [ "$rc" = "$want" ] || fail "pli $*: exit $rc, expected $want ($(cat "$W/err"))"
    if [ "$want" != 0 ]; then
        [ "$(wc -l <"$W/err")" = 1 ] || fail "pli $*: the error is not one line: $(cat "$W/err")"
    fi
}
expect_exit 2 show dnope
grep -q "no message or delivery 'dnope'" "$W/err" || fail "unknown id message"
expect_exit 2 receipt nope@buyer.example -o "$W/x.pdf"
expect_exit 64 list --status lu
grep -q "unknown status 'lu'" "$W/err" || fail "bad status message"
expect_exit 64 list --type nimportequoi
expect_exit 64 list --since 2024-13-45
expect_exit 64 list --page 0
expect_exit 64 list --per-page 5000
expect_exit 64 list --bogus
expect_exit 64 frobnicate
expect_exit 64 receipt l2@buyer.example -o "$W/x.pdf"   # two recipients, none chosen
grep -q "choose one with --recipient" "$W/err" || fail "several recipients message"
set +e; "$PLI_BIN_DIR/admin-cli/pli" --config "$W/none.yaml" list >/dev/null 2>"$W/err"; rc=$?; set -e
[ "$rc" = 78 ] || fail "missing config: exit $rc"
printf 'organisation: { name: "x" }\nstore: { path: /tmp/x }\nbogus: 1\n' >"$W/bad.yaml"
set +e; "$PLI_BIN_DIR/admin-cli/pli" --config "$W/bad.yaml" check-config >/dev/null 2>"$W/err"; rc=$?; set -e
[ "$rc" = 78 ] || fail "bad config: exit $rc"
grep -q "^$W/bad.yaml:3: unknown key 'bogus'" "$W/err" || fail "config error: $(cat "$W/err")"
$PLI check-config | qgrep -x "$PLI_CONFIG: ok" || fail "check-config"
$PLI --check-config | qgrep -x "$PLI_CONFIG: ok" || fail "--check-config"
set +e; $PLI >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 64 ] || fail "no command: exit $rc"
echo "ok 7 - error exits: 2 unknown id, 64 bad arguments, 78 config; one sentence each"
