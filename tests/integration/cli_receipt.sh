#!/usr/bin/env bash
# The receipt through the real path: a buyer's mail with an attachment is delivered and read;
# the buyer gets the read notification with the signed PDF; `pli receipt` writes a PDF whose
# text (pdftotext) holds every field with accents intact; `pli verify` accepts it and rejects
# one changed byte of the embedded evidence, a removed evidence and another key, a forged page
# carrying the genuine evidence (qpdf), a stripped page binding and a changed page stream, and
# says what it did not check; receipt files are 0600 and never follow a planted symlink;
# escape sequences in a subject never reach the terminal; an exchange of 30 events spans
# pages cleanly; a failed delivery notifies the buyer with the diagnostic.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
KEYS=$(mktemp -d "${TMPDIR:-/tmp}/pli-keys.XXXXXX")
pfx_on_exit "rm -rf $(printf '%q' "$KEYS")"
rmdir "$KEYS" # pli keygen creates it (0700)
# Every download recorded (no repeat interval): the receipt below shows 27 of them.
PLI_LINKD_YAML="repeat_interval_minutes: 0" pli_setup "keys: { dir: $KEYS }"
W=$PLI_WORK
command -v pdftotext >/dev/null || skip "pdftotext (poppler-utils) is not installed"
$PLI keygen >"$W/keygen.out"
kid=$($PLI keygen --json --force 2>/dev/null | pli_json 'j["kid"]')   # --force replaces it
[ -n "$kid" ] || fail "keygen --force gave no key id"
set +e; $PLI keygen >/dev/null 2>"$W/err"; rc=$?; set -e
[ "$rc" = 73 ] || fail "keygen over an existing key: exit $rc"
if [ "$(id -u)" = 0 ]; then # root's, readable by the key directory's group (pli)
    [ "$(stat -c %U:%a "$KEYS/receipt.key")" = root:640 ] || fail "receipt.key is not root's, 0640"
else
    [ "$(stat -c %a "$KEYS/receipt.key")" = 600 ] || fail "receipt.key is not 0600"
fi

$PLI consultation set 2022AK_014 --title "Entretien des espaces verts — « lot n°2 »" \
    --object "Marché à bons de commande, œuvre d'été" --deadline "2026-12-15 12:00" >/dev/null
printf '%%PDF-1.4 décision de la commission\n' >"$W/décision.pdf"
pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "From: Alice Martin <alice@buyer.example>" \
    --header "Subject: [TYPE:rejet] [REF:2022AK_014] Résultat — « offre » n°3, œuvre à 5 €" \
    --header "Message-ID: <rc-1@buyer.example>" \
    --body "Madame, Monsieur, nous avons le regret de vous informer que votre offre n'a pas été retenue." \
    --attach "@$W/décision.pdf"
pfx_wait_sink_count 1 30
notice=$(pfx_sink_files | head -n 1)
link=$(pli_notice_link "$notice")
[ -n "$link" ] || fail "no link"
for _ in $(seq 1 150); do
    [ "$($PLI show rc-1@buyer.example --json | pli_json 'j["deliveries"][0]["status"]')" = delivered ] && break
    sleep 0.2
done
curl -fsS -o /dev/null -A "Mozilla/5.0 (test)" -X POST -d open=1 "$link"
json=$($PLI show rc-1@buyer.example --json)
did=$(echo "$json" | pli_json 'j["deliveries"][0]["id"]')
[ "$(echo "$json" | pli_json 'j["deliveries"][0]["status"]')" = read ] || fail "not read"
echo "ok 1 - sent, delivered (relayed DSN), read (POST)"

# The buyer's read notification: never registered (no notice at the sink), the PDF attached.
pfx_wait_maildir catchall 1 30
n=$(pfx_maildir_files catchall | head -n 1)
grep -q "^Auto-Submitted: auto-generated" "$n" || fail "notification lacks Auto-Submitted"
grep -q "^Return-Path: <>" "$n" || fail "notification return path is not null: $(grep ^Return-Path "$n")"
pli_mail_part "$n" text/plain | qgrep "a été lu par son destinataire le" || fail "notification text"
pli_mail_part "$n" text/plain | qgrep "bob@remote.example" || fail "notification names the recipient"
/usr/bin/python3 - "$n" "$W/notified.pdf" <<'PY'
import email, sys
from email import policy
msg = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
pdfs = [p for p in msg.walk() if p.get_content_type() == 'application/pdf']
assert len(pdfs) == 1, "no PDF in the notification"
open(sys.argv[2], 'wb').write(pdfs[0].get_content())
PY
$PLI verify "$W/notified.pdf" >/dev/null || fail "the notification's receipt does not verify"
[ "$(pfx_sink_count)" = 1 ] || fail "the notification went out as registered mail"
echo "ok 2 - the buyer's notification arrived (null return path) with a receipt that verifies"

out=$($PLI receipt rc-1@buyer.example -o "$W/r.pdf")
code=$(echo "$out" | grep -oE '[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}')
[ -n "$code" ] || fail "no verification code in: $out"
pdftotext -layout "$W/r.pdf" "$W/r.txt" 2>"$W/pdftotext.err"
# A real ToUnicode map (libharu's own makes every poppler tool warn).
[ ! -s "$W/pdftotext.err" ] || fail "pdftotext complains: $(cat "$W/pdftotext.err")"
orig=$(echo "$json" | pli_json 'j["original_sha256"]')
att=$(echo "$json" | pli_json 'j["attachments"][0]["sha256"]')
for s in "Région Exemple" "Accusé de réception" "2022AK_014" "Entretien des espaces verts — « lot n°2 »" \
    "Marché à bons de commande, œuvre d'été" "15/12/2026 - 12:00:00" "Courrier de rejet" \
    "Résultat — « offre » n°3, œuvre à 5 €" "Alice Martin" "alice@buyer.example" "bob@remote.example" \
    "Envoi du courrier par alice@buyer.example" "Courrier délivré à bob@remote.example" \
    "Courrier lu par bob@remote.example" "serveur distant : 127.0.0.1" "diagnostic : 250" \
    "adresse IP : 127.0.0.1" "navigateur : Mozilla/5.0 (test)" "Date limite de remise des plis" \
    "$orig" "$att" "décision.pdf" "$code" "Code de vérification" "$kid"; do
    grep -qF -- "$s" "$W/r.txt" || fail "the receipt's text lacks '$s'"
done
grep -qE "Courrier lu par bob@remote.example" "$W/r.txt"
grep -E "^ *[0-9]{2}/[0-9]{2}/[0-9]{4} - [0-9]{2}:[0-9]{2}:[0-9]{2} +Courrier lu par" "$W/r.txt" >/dev/null \
    || fail "the read event has no dd/mm/yyyy - HH:MM:SS time on its line"
[ "$(pdfinfo "$W/r.pdf" 2>/dev/null | awk '/^Pages:/{print $2}')" = 1 ] || fail "one page expected"
pdffonts "$W/r.pdf" 2>/dev/null | qgrep "DejaVuSans.*emb=\?yes\|DejaVuSans.*yes" || pdffonts "$W/r.pdf" 2>/dev/null | qgrep "DejaVuSans" \
    || fail "DejaVuSans is not embedded"
echo "ok 3 - the receipt's text holds every field, accents intact"

v=$($PLI verify "$W/r.pdf")
echo "$v" | head -n 1 | qgrep "^VALIDE : signature Ed25519 de la clé $kid ; code de vérification $code" \
    || fail "verify: $(echo "$v" | head -n 1)"
echo "$v" | qgrep "bob@remote.example" || fail "verify prints the evidence"
$PLI verify "$W/r.pdf" --json | pli_json 'j["valid"], j["kid"], j["evidence"]["delivery"]["id"]' \
    | qgrep -xF "True $kid $did" || fail "verify --json"
pdfdetach -list "$W/r.pdf" 2>/dev/null | qgrep "evidence.json" || fail "pdfdetach does not list evidence.json"
echo "ok 4 - pli verify: valid, key id and code named, evidence printed"

tamper() { # tamper IN OUT PYTHON-EXPR-ON-b
    /usr/bin/python3 -c "import sys; b=open(sys.argv[1],'rb').read(); $3; open(sys.argv[2],'wb').write(b)" "$1" "$2"
}
expect_invalid() { # expect_invalid FILE WHAT
    set +e; $PLI verify "$1" >"$W/vout" 2>&1; local rc=$?; set -e
    [ "$rc" = 1 ] || fail "$2: verify exit $rc ($(cat "$W/vout"))"
    grep -q "^INVALIDE" "$W/vout" || fail "$2: $(cat "$W/vout")"
}
tamper "$W/r.pdf" "$W/t1.pdf" "i=b.index(b'\"recipient\":\"bob@remote'); b=b[:i+14]+b'c'+b[i+15:]"
cmp -s "$W/r.pdf" "$W/t1.pdf" && fail "tampering changed nothing"
expect_invalid "$W/t1.pdf" "one byte of the evidence"
tamper "$W/r.pdf" "$W/t2.pdf" "i=b.index(b'\"sig\":\"')+8; b=b[:i]+bytes([b[i]^1])+b[i+1:]"
expect_invalid "$W/t2.pdf" "one byte of the signature"
tamper "$W/r.pdf" "$W/t3.pdf" "b=b.replace(b'/Filespec', b'/Filespez')"
expect_invalid "$W/t3.pdf" "no embedded evidence"
grep -q "preuve signée" "$W/vout" || fail "unsigned: $(cat "$W/vout")"
head -c 2000 "$W/r.pdf" >"$W/t4.pdf"
expect_invalid "$W/t4.pdf" "a truncated file"
echo "ok 5 - one changed byte, a broken signature, no evidence, a truncated file: exit 1"

# The page is bound: verify says so and what it did not check, in French and in --json.
echo "$v" | qgrep "^Pages : le contenu des 1 page(s) est celui qui a été signé" || fail "verify: pages: $v"
echo "$v" | qgrep "n'est pas signé" || fail "verify does not say the whole PDF is unsigned: $v"
$PLI verify "$W/r.pdf" --json | pli_json 'j["pages"], len(j["not_checked"]) > 1' | qgrep -xF "bound True" \
    || fail "verify --json: pages, not_checked"
# A forged page: a new document saying "lu le 01/01/2020" carrying the genuine evidence.
command -v qpdf >/dev/null || fail "qpdf is not installed (scripts/install-deps)"
mkdir "$W/att"
pdfdetach -saveall -o "$W/att/" "$W/r.pdf" 2>/dev/null
[ -s "$W/att/pages.json" ] && [ -s "$W/att/evidence.json" ] || fail "pdfdetach: $(ls "$W/att")"
/usr/bin/python3 - "$W/page.pdf" <<'PY'
import sys
content = b"BT /F1 14 Tf 60 760 Td (Courrier lu par bob@remote.example le 01/01/2020) Tj ET\n"
objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
out = bytearray(b"%PDF-1.4\n")
offsets = []
for i, o in enumerate(objs, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for off in offsets:
    out += b"%010d 00000 n \n" % off
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(sys.argv[1], "wb").write(out)
PY
pdftotext "$W/page.pdf" - 2>/dev/null | qgrep "01/01/2020" || fail "the forged page does not read"
attach() { # attach IN OUT FILE...
    local in=$1 out=$2; shift 2
    local args=()
    for f in "$@"; do args+=(--add-attachment "$W/att/$f" --mimetype=application/json --); done
    qpdf "$in" --compress-streams=n "${args[@]}" "$out" # uncompressed, as pli writes them
}
attach "$W/page.pdf" "$W/forged.pdf" evidence.json evidence.sig pages.json pages.sig
pdfdetach -list "$W/forged.pdf" 2>/dev/null | qgrep "evidence.sig" || fail "the forged file lacks the evidence"
expect_invalid "$W/forged.pdf" "a forged page with the genuine evidence and binding"
grep -q "page 1\|la page 1" "$W/vout" || fail "forged: $(cat "$W/vout")"
attach "$W/page.pdf" "$W/forged2.pdf" evidence.json evidence.sig
expect_invalid "$W/forged2.pdf" "a forged page with the genuine evidence only"
grep -q "liaison" "$W/vout" || fail "forged2: $(cat "$W/vout")"
# The genuine receipt with its page's content changed (one byte), rewritten by qpdf.
qpdf --qdf --object-streams=disable "$W/r.pdf" "$W/r.qdf"
/usr/bin/python3 - "$W/r.qdf" "$W/r2.qdf" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
i = b.index(b"%% Contents for page 1")
j = b.index(b"Tj", i)
open(sys.argv[2], "wb").write(b[:j] + b" " + b[j:])
PY
fix-qdf "$W/r2.qdf" >"$W/changed.pdf"
expect_invalid "$W/changed.pdf" "a changed page content stream"
grep -q "le contenu de la page 1 n'est pas celui qui a été signé" "$W/vout" || fail "changed: $(cat "$W/vout")"
# Rewritten but unchanged (qpdf recompresses everything): the decoded content still binds.
qpdf --object-streams=generate --recompress-flate "$W/r.pdf" "$W/rewritten.pdf"
$PLI verify "$W/rewritten.pdf" >"$W/vout" || fail "a receipt rewritten by qpdf: $(cat "$W/vout")"
echo "ok 5b - the page is bound: a forged page, a stripped binding, a changed content stream: exit 1"

# Receipt files are 0600 whatever the umask (they hold the reader's IP); a planted symlink at
# the output path is replaced, never followed.
[ "$(stat -c %a "$W/r.pdf")" = 600 ] || fail "r.pdf is $(stat -c %a "$W/r.pdf")"
echo untouched >"$W/victim"
ln -s "$W/victim" "$W/planted.pdf"
(umask 000; $PLI receipt rc-1@buyer.example -o "$W/planted.pdf" >/dev/null)
[ "$(cat "$W/victim")" = untouched ] || fail "pli receipt followed a planted symlink"
[ -f "$W/planted.pdf" ] && [ ! -L "$W/planted.pdf" ] && [ "$(stat -c %a "$W/planted.pdf")" = 600 ] \
    || fail "planted.pdf: $(ls -l "$W/planted.pdf")"
echo "ok 5c - receipt files are 0600 and never follow a planted symlink"

# Text from outside never drives the terminal: a subject with an OSC title and a clear-screen.
pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: $(printf 'Offre \033]0;pwned\007\033[2J retenue')" \
    --header "Message-ID: <rc-esc@buyer.example>" --body "Bonjour."
for _ in $(seq 1 150); do
    $PLI show rc-esc@buyer.example --json >/dev/null 2>&1 && break
    sleep 0.2
done
$PLI show rc-esc@buyer.example >"$W/esc-show.txt"
$PLI list >"$W/esc-list.txt"
$PLI show rc-esc@buyer.example --json >"$W/esc-show.json"
for f in esc-show.txt esc-list.txt esc-show.json; do
    grep -q "retenue" "$W/$f" || fail "$f lacks the subject"
    ! grep -q "$(printf '\033')" "$W/$f" || fail "$f holds an escape character"
    ! grep -q "$(printf '\007')" "$W/$f" || fail "$f holds a bell"
done
echo "ok 5d - escape sequences in a subject never reach the terminal (pli show, pli list, --json)"

# 30 events for one delivery: 27 downloads after sent, delivered and read.
for _ in $(seq 1 27); do curl -fsS -o /dev/null "$link/a/0"; done
n_events=$($PLI show "$did" --json | pli_json 'len([e for e in j["deliveries"][0]["events"] if e["kind"]!="fetched"])')
[ "$n_events" -ge 30 ] || fail "only $n_events events"
$PLI receipt "$did" -o "$W/long.pdf" >/dev/null
pages=$(pdfinfo "$W/long.pdf" 2>/dev/null | awk '/^Pages:/{print $2}')
[ "$pages" -ge 2 ] || fail "30 events on $pages page"
total_rows=0
for p in $(seq 1 "$pages"); do
    pdftotext -layout -f "$p" -l "$p" "$W/long.pdf" "$W/p$p.txt" 2>/dev/null
    grep -qF "Page $p / $pages" "$W/p$p.txt" || fail "page $p lacks 'Page $p / $pages'"
    rows=$(grep -cE "^ *[0-9]{2}/[0-9]{2}/[0-9]{4} - [0-9:]{8} +(Envoi|Courrier|Pièce jointe|Lien)" "$W/p$p.txt" || true)
    if [ "$rows" -gt 0 ]; then
        grep -qF "Date et heure" "$W/p$p.txt" || fail "page $p has timeline rows without the table header"
    fi
    total_rows=$((total_rows + rows))
done
[ "$(grep -c "téléchargée par bob@remote.example" "$W/p"*.txt | awk -F: '{s+=$2} END {print s}')" = 27 ] \
    || fail "the 27 downloads are not all there exactly once"
[ "$total_rows" = "$n_events" ] || fail "$total_rows timeline rows for $n_events events"
$PLI verify "$W/long.pdf" >/dev/null || fail "the long receipt does not verify"
echo "ok 6 - 30 events span $pages pages cleanly: numbered, header repeated, every row once"

# A failed delivery: the buyer is told, with the remote server's diagnostic.
pfx_send --from alice@buyer.example --to hardfail@remote.example \
    --header "Subject: [TYPE:complement] Demande de pièces" --header "Message-ID: <rc-2@buyer.example>" \
    --body "Merci de compléter votre dossier."
pfx_wait_maildir catchall 2 60
f=$(pfx_maildir_files catchall | tail -n 1)
pli_mail_part "$f" text/plain | qgrep "n'a pas pu être délivré à hardfail@remote.example" \
    || fail "failure notification text: $(pli_mail_part "$f" text/plain)"
pli_mail_part "$f" text/plain | qgrep "550 5.1.1" || fail "failure notification lacks the diagnostic"
grep -q "^Subject: " "$f"
echo "ok 7 - a failed delivery notifies the buyer with the diagnostic"

# Another key: old receipts name their key, which is no longer the configured one.
$PLI keygen --force >/dev/null
expect_invalid "$W/r.pdf" "another key"
grep -q "$kid" "$W/vout" || fail "verify does not name the signing key"
echo "ok 8 - a receipt signed by another key is rejected, naming the key"

# Receipts in bulk: every recipient of each message ID, or every delivery of a consultation,
# one DELIVERY.pdf each, in one process; an unknown ID writes nothing.
did2=$($PLI show rc-2@buyer.example --json | pli_json 'j["deliveries"][0]["id"]')
$PLI receipt rc-1@buyer.example rc-2@buyer.example --out-dir "$W/all" --json >"$W/all.json"
[ "$(pli_json 'j["count"]' <"$W/all.json")" = 2 ] || fail "bulk: $(cat "$W/all.json")"
for d in "$did" "$did2"; do
    [ -f "$W/all/$d.pdf" ] || fail "bulk: no $d.pdf in $(ls "$W/all")"
    $PLI verify "$W/all/$d.pdf" >/dev/null || fail "bulk: $d.pdf does not verify"
    [ "$(stat -c %a "$W/all/$d.pdf")" = 600 ] || fail "bulk: $d.pdf is $(stat -c %a "$W/all/$d.pdf")"
done
pdftotext -layout "$W/all/$did2.pdf" "$W/all2.txt" 2>/dev/null
grep -q "hardfail@remote.example" "$W/all2.txt" || fail "bulk: the second receipt is not hardfail's"
$PLI receipt --consultation 2022AK_014 --out-dir "$W/cons" >/dev/null
[ "$(ls "$W/cons")" = "$did.pdf" ] || fail "consultation: $(ls "$W/cons")"
set +e; $PLI receipt rc-1@buyer.example nosuchid --out-dir "$W/none" 2>/dev/null; rc=$?; set -e
[ "$rc" = 2 ] && [ ! -e "$W/none" ] || fail "bulk with an unknown id: exit $rc, $(ls "$W/none" 2>&1)"
set +e; $PLI receipt rc-1@buyer.example rc-2@buyer.example -o "$W/two.pdf" 2>/dev/null; rc=$?; set -e
[ "$rc" = 64 ] || fail "-o with two ids: exit $rc"
echo "ok 9 - receipts in bulk (--out-dir): every ID's, a consultation's; an unknown ID writes nothing"

# Text the compiled-in subset lacks (Greek) is drawn with the whole DejaVuSans.
pdffonts "$W/all/$did.pdf" >"$W/fonts1.txt" 2>/dev/null
grep -q "PLIDJV+DejaVuSans" "$W/fonts1.txt" || fail "the subset is not used: $(cat "$W/fonts1.txt")"
$PLI consultation set 2022AK_014 --title "Προμήθεια — Łódź, « lot » n°2" >/dev/null
$PLI receipt rc-1@buyer.example -o "$W/greek.pdf" >/dev/null
pdftotext -layout "$W/greek.pdf" "$W/greek.txt" 2>/dev/null
grep -qF "Προμήθεια — Łódź, « lot » n°2" "$W/greek.txt" \
    || fail "the Greek title does not read back: $(grep Intitul "$W/greek.txt")"
pdffonts "$W/greek.pdf" >"$W/fonts2.txt" 2>/dev/null
grep "DejaVuSans" "$W/fonts2.txt" | qgrep -v "PLIDJV" || fail "not the whole font: $(cat "$W/fonts2.txt")"
$PLI verify "$W/greek.pdf" >/dev/null || fail "the Greek receipt does not verify"
echo "ok 10 - a Greek title: the whole font draws it, pdftotext reads it back"
