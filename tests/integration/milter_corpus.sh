#!/usr/bin/env bash
# Every message of the MIME corpus ($PLI_CORPUS_DIR/mime) goes through pli-milter in mode AR: no crash, a
# notice for each, and the stored attachments' SHA-256 are those of the original parts.
# The recipients' MX offers SMTPUTF8 (tests/harness/utf8-mx.py): a message whose From is an
# internationalised address (RFC 6532) makes a notice that Postfix may only relay with it.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
CORPUS=${PLI_CORPUS_DIR:-$PLI_SOURCE_DIR/../shared/corpus}
[ -d "$CORPUS/mime" ] || skip "no corpus at $CORPUS"
MX_PORT=$(pfx_free_port)
export PFX_EXTRA_TRANSPORT="corpus.example :[127.0.0.1]:$MX_PORT"
pli_setup
W=$PLI_WORK
MX_DIR=$W/mx
mkdir -p "$MX_DIR"
/usr/bin/python3 "$PLI_HARNESS_DIR/utf8-mx.py" "$MX_PORT" "$MX_DIR" >"$W/utf8-mx.log" 2>&1 &
MX_PID=$!
pfx_on_exit "kill $MX_PID 2>/dev/null; wait $MX_PID 2>/dev/null || true"
_pfx_wait 20 "utf8-mx to listen" "" qgrep -x ready "$W/utf8-mx.log"

mapfile -t files < <(find "$CORPUS/mime" -type f ! -name '*.tsv' | sort)
# The attachments' hashes of one corpus message against what pli stored (show --json).
cat >"$W/hashes.py" <<'PY'
import base64, email, hashlib, json, re, sys
from email import policy
raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=policy.compat32)
hashes = set()
def add(data):
    if data is None:
        return
    # Line endings may differ (CRLF on the wire, LF in the file), and so may the last line
    # break of a part that has no closing boundary (parsers differ on who owns it).
    for v in (data, data.replace(b"\r\n", b"\n"), data.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")):
        t = v.rstrip(b"\r\n")
        for w in (v, t, t + b"\n", t + b"\r\n", t + b"\n\n", t + b"\r\n\r\n"):
            hashes.add(hashlib.sha256(w).hexdigest())
for part in msg.walk():
    if part.is_multipart():
        continue
    try:
        add(part.get_payload(decode=True))
    except Exception:
        pass
    payload = part.get_payload()
    if isinstance(payload, str):
        add(payload.encode("utf-8", "surrogateescape"))
        if str(part.get("content-transfer-encoding", "")).strip().lower() == "base64":
            # Lenient base64 (characters outside the alphabet skipped, as GMime does).
            clean = re.sub(rb"[^A-Za-z0-9+/]", b"", payload.encode("ascii", "ignore"))
            clean = clean[: len(clean) - len(clean) % 4]
            add(base64.b64decode(clean))
shown = json.load(open(sys.argv[2]))
# Where Python itself cannot find the parts (boundary defects), it is no oracle: say so.
if any(d.__class__.__name__ in ("StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect")
       for p in msg.walk() for d in p.defects):
    print("oracle-unavailable")
    sys.exit(0)
bad = [a for a in shown["attachments"]
       # message/* parts: Python parses them into objects (no raw bytes to compare)
       if not a["media_type"].startswith("message/") and a["size"] > 0 and a["sha256"] not in hashes]
for a in bad:
    print("  %s: %s (%s, %d bytes) matches no part" % (sys.argv[1].rsplit("/", 1)[-1], a["name"], a["media_type"], a["size"]), file=sys.stderr)
print(len(shown["attachments"]))
sys.exit(1 if bad else 0)
PY
i=0
for f in "${files[@]}"; do
    i=$((i + 1))
    pfx_smtp --from alice@buyer.example --to "c$i@corpus.example" --data-file "$f" >/dev/null \
        || fail "$(basename "$f") was refused"
done
for _ in $(seq 1 600); do
    n=$(find "$MX_DIR" -maxdepth 1 -name '*.eml' | wc -l)
    [ "$n" -ge "${#files[@]}" ] && break
    sleep 0.2
done
[ "$n" -ge "${#files[@]}" ] || fail "$n notices reached the MX, not ${#files[@]}"
kill -0 "$PLI_MILTER_PID" || fail "pli-milter died"
grep -q "tempfail_internal" "$W/milter.log" && fail "internal errors: $(grep tempfail_internal "$W/milter.log" | head -3)"
echo "ok 1 - ${#files[@]} corpus messages registered, ${#files[@]} notices, no crash"

i=0; checked=0; atts=0; skipped=0
for f in "${files[@]}"; do
    i=$((i + 1))
    mid=$($PLI list --rcpt "c$i@corpus.example" --json | pli_json 'j["items"][0]["message"]')
    $PLI show "$mid" --json >"$W/show.json"
    r=$(/usr/bin/python3 "$W/hashes.py" "$f" "$W/show.json") || fail "$(basename "$f"): stored attachment hashes differ from the original parts"
    if [ "$r" = oracle-unavailable ]; then
        skipped=$((skipped + 1)); echo "  (not compared: Python finds no parts in $(basename "$f"))"
    else
        checked=$((checked + 1)); atts=$((atts + r))
    fi
done
[ "$checked" -ge 130 ] || fail "only $checked messages could be compared"
echo "ok 2 - $checked messages, $atts attachments: each stored SHA-256 is that of an original part ($skipped not comparable)"
