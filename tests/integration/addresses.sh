#!/usr/bin/env bash
# Every legal address through the real path (private Postfix, smtp-sink as the remote MX,
# the real pli-milter and pli-linkd): a table of recipient forms that RFC 5321/5322 and
# RFC 6531 (SMTPUTF8) allow. Each is registered, its notice reaches the sink for exactly
# that recipient (envelope and To:), with an xtext (RFC 3461) or utf-8 (RFC 6533) ORCPT
# that Postfix takes, Postfix's relayed DSN becomes `delivered`, pli show and pli list
# show the address, the link's landing page and POST work (the content page names the
# recipient, HTML-escaped), the buyer's read notification leaves and the text of pli
# receipt's PDF holds the address. pli doctor sees that the listener offers SMTPUTF8.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
# Debian's smtp-sink does not offer SMTPUTF8 (Postfix bounces internationalised addresses
# to it with 5.6.7): the UTF-8 domains have an SMTPUTF8 MX of their own, tests/harness/utf8-mx.py.
UTF8_PORT=$(pfx_free_port)
export PFX_EXTRA_TRANSPORT="utf8.example :[127.0.0.1]:$UTF8_PORT
例子.广告 :[127.0.0.1]:$UTF8_PORT"
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS" # pli keygen creates it
pli_setup "keys: { dir: $KEYS }"
$PLI keygen >/dev/null
UTF8_DIR=$PLI_WORK/utf8-mx
mkdir -p "$UTF8_DIR"
/usr/bin/python3 "$PLI_HARNESS_DIR/utf8-mx.py" "$UTF8_PORT" "$UTF8_DIR" >"$PLI_WORK/utf8-mx.log" 2>&1 &
UTF8_PID=$!
pfx_on_exit "kill $UTF8_PID 2>/dev/null; wait $UTF8_PID 2>/dev/null || true"
_pfx_wait 20 "utf8-mx to listen" "" qgrep -x ready "$PLI_WORK/utf8-mx.log"
doctor_smtputf8() {
    local doctor
    doctor=$($PLI doctor --postfix-config "$PFX_CONF_DIR" --json || true)
    pli_json '[c["ok"] for c in j["checks"] if "SMTPUTF8" in c["check"]][0]' <<<"$doctor"
}
[ "$(doctor_smtputf8)" = True ] || fail "pli doctor: the re-injection listener's SMTPUTF8 not seen"

long=$(printf 'a%.0s' $(seq 1 64)) # a 64-character local part, RFC 5321's maximum
CASES=(
    'jean+ao@remote.example'
    'jean.dupont@remote.example'
    '"jean dupont"@remote.example'
    '"a@b"@remote.example'
    '"quoted\"q"@remote.example'
    "o'brien@remote.example"
    'x!y%z@remote.example'
    'Jean.Dupont@remote.example'
    'a=b@remote.example'
    '{}|~#$&*/?^`@remote.example'
    "$long@remote.example"
    'postmaster@[192.0.2.1]'
    'andré@utf8.example'
    '用户@例子.广告'
)

is_utf8() { LC_ALL=C grep -q '[^ -~]' <<<"$1"; }
show() { $PLI show "addr-$1@buyer.example" --json; }

for i in "${!CASES[@]}"; do
    a=${CASES[i]}
    params=()
    if is_utf8 "$a"; then params=(--mail-params SMTPUTF8); fi
    pfx_smtp --from alice@buyer.example "${params[@]}" --to "$a" --subject "Avis $i" \
        --header "Message-ID: <addr-$i@buyer.example>" --body "Corps du courrier $i." >/dev/null ||
        fail "case $i ($a): not accepted by Postfix"
done

for i in "${!CASES[@]}"; do
    a=${CASES[i]}
    s=""
    for _ in $(seq 1 300); do
        s=$(show "$i" 2>/dev/null | pli_json 'j["deliveries"][0]["status"]' 2>/dev/null) || s=""
        [ "$s" = delivered ] && break
        sleep 0.2
    done
    [ "$s" = delivered ] || fail "case $i ($a): status '$s', expected delivered"
    json=$(show "$i")
    r=$(echo "$json" | pli_json 'j["deliveries"][0]["recipient"]')
    [ "$r" = "$a" ] || fail "case $i: pli show has recipient '$r', expected '$a'"
    did=$(echo "$json" | pli_json 'j["deliveries"][0]["id"]')
    # The notice at the sink for exactly this recipient: its envelope and its To: header.
    notice=""
    for f in $(pfx_sink_files) "$UTF8_DIR"/*.eml; do
        [ -f "$f" ] || continue
        if grep -qF "pli-bounce+$did@buyer.example" "$f"; then notice=$f; break; fi
    done
    [ -n "$notice" ] || fail "case $i ($a): no notice at the sink"
    grep -qF "X-Rcpt-Args: <$a>" "$notice" || fail "case $i ($a): sink envelope: $(head -c 600 "$notice")"
    grep -qxF "To: <$a>"$'\r' "$notice" || grep -qxF "To: <$a>" "$notice" ||
        fail "case $i ($a): notice To: $(grep '^To:' "$notice")"
    # The landing page and the read POST.
    link=$(pli_notice_link "$notice")
    [ -n "$link" ] || fail "case $i ($a): no link in the notice"
    curl -fsS -o /dev/null "$link" || fail "case $i ($a): landing page"
    page=$(curl -fsS -X POST -d open=1 "$link")
    qgrep "Corps du courrier $i" <<<"$page" || fail "case $i ($a): content page"
    # The page names the recipient, HTML-escaped: unescaped, it is the address itself.
    ADDR=$a /usr/bin/python3 -c 'import html, os, sys; sys.exit(0 if os.environ["ADDR"] in html.unescape(sys.stdin.read()) else 1)' \
        <<<"$page" || fail "case $i ($a): the content page does not show the recipient"
    $PLI show "addr-$i@buyer.example" | qgrep -F -- "$a" || fail "case $i ($a): not in pli show"
    st=$(show "$i" | pli_json 'j["deliveries"][0]["status"]')
    [ "$st" = read ] || fail "case $i ($a): status '$st' after the POST, expected read"
    # The buyer's read notification leaves, and the text of pli receipt's PDF (pdftotext)
    # holds the address as it is.
    for _ in $(seq 1 300); do
        grep -q "notify=read delivery=$did outcome=sent" "$PLI_WORK/linkd.log" && break
        sleep 0.2
    done
    grep -q "notify=read delivery=$did outcome=sent" "$PLI_WORK/linkd.log" ||
        fail "case $i ($a): the read notification did not leave"
    $PLI receipt "$did" -o "$PLI_WORK/r-$i.pdf" >/dev/null || fail "case $i ($a): pli receipt"
    # (a long address wraps: compared without white space)
    pdftotext -raw "$PLI_WORK/r-$i.pdf" - | ADDR=$a /usr/bin/python3 -c \
        'import os, sys; k = lambda s: "".join(s.split()); sys.exit(0 if k(os.environ["ADDR"]) in k(sys.stdin.read()) else 1)' ||
        fail "case $i ($a): the receipt does not show the address: $(pdftotext -raw "$PLI_WORK/r-$i.pdf" - | head -20)"
    echo "ok $((i + 1)) - $a: registered, notice at the sink, delivered, read"
done

# pli list finds each address (the recipient filter) and shows it as it is.
for i in "${!CASES[@]}"; do
    a=${CASES[i]}
    got=$($PLI list --rcpt "$a" --json |
        pli_json '"\n".join(r.get("recipient","") for r in j["items"])')
    qgrep -xF -- "$a" <<<"$got" || fail "pli list --rcpt '$a' shows: $got"
done
echo "ok $((${#CASES[@]} + 1)) - pli list finds every address"
