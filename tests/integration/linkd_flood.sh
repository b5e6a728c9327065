#!/usr/bin/env bash
# One link holder cannot flood pli-linkd, over real sockets through a real private Postfix:
# 1. 300 reads of one delivery on one keep-alive connection record one `read` (later ones
#    within linkd.repeat_interval_minutes are counted, not recorded), 50 downloads one
#    `download`;
# 2. replies are capped per delivery (linkd.max_replies_per_delivery: 3, then 403 and
#    nothing stored);
# 3. five uploads held open to an unknown token are answered 404 from their headers, before
#    their bodies, and a real reply meanwhile gets 200 (the upload buffers stay free);
# 4. a reply notice waiting on disk for the re-injection listener holds no /r/ link; the
#    link is minted when it is sent, and it opens the reply.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
PLI_LINKD_YAML="reply_max_mb: 1, max_replies_per_delivery: 3" \
    pli_setup "notify: { retry_first_seconds: 3, poll_seconds: 1 }" >/dev/null
W=$PLI_WORK

printf 'PIECE JOINTE\n' >"$W/piece.txt"
pfx_send --from alice@buyer.example --to bob@remote.example \
    --header "Subject: [REPONSE] Demande de pièces" --header "Message-ID: <flood-1@buyer.example>" \
    --body "Merci de répondre." --attach "@$W/piece.txt"
pfx_wait_sink_count 1 30
link=$(pli_notice_link "$(pfx_sink_files | head -n 1)")
[ -n "$link" ] || fail "no link in the notice"
token=${link##*/}
mid=$($PLI show flood-1@buyer.example --json | pli_json 'j["id"]')
count() { $PLI show "$mid" --json | pli_json "sum(1 for e in j['deliveries'][0]['events'] if e['kind']=='$1')"; }

# 1. repeated reads and downloads on one keep-alive connection
args=()
for _ in $(seq 300); do args+=(-X POST -o /dev/null -w '%{http_code}\n' "$link"); done
codes=$(curl -sS "${args[@]:0:4}" --next "${args[@]:4}" | sort | uniq -c | tr -s ' ')
[ "$codes" = " 300 200" ] || fail "300 reads answered: $codes"
[ "$(count read)" = 1 ] || fail "300 reads within the interval recorded $(count read) read events"
args=()
for _ in $(seq 50); do args+=(-o /dev/null -w '%{http_code}\n' "$link/a/0"); done
codes=$(curl -sS "${args[@]}" | sort | uniq -c | tr -s ' ')
[ "$codes" = " 50 200" ] || fail "50 downloads answered: $codes"
[ "$(count download)" = 1 ] || fail "50 downloads recorded $(count download) download events"
echo "ok 1 - 300 reads and 50 downloads on one connection: one read, one download event"

# 2. the reply cap per delivery
for i in 1 2 3; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -F "text=Réponse $i" "$link/reply")
    [ "$code" = 200 ] || fail "reply $i answered $code"
done
code=$(curl -sS -o "$W/cap.html" -w '%{http_code}' -F "text=Réponse 4" "$link/reply")
[ "$code" = 403 ] || fail "the 4th reply (cap 3) answered $code"
grep -q "Nombre de réponses atteint" "$W/cap.html" || fail "the cap page does not say why"
[ "$(count reply)" = 3 ] || fail "$(count reply) replies recorded, cap 3"
echo "ok 2 - replies capped per delivery: the 4th gets 403, nothing stored"

# 3. uploads held open to an unknown token, then a real reply (on another delivery)
pfx_send --from alice@buyer.example --to carol@remote.example \
    --header "Subject: [REPONSE] Autre demande" --header "Message-ID: <flood-2@buyer.example>" \
    --body "Merci de répondre aussi."
pfx_wait_sink_count 2 30
link2=""
for f in $(pfx_sink_files); do
    if grep -q "^To: <carol@remote.example>" "$f"; then link2=$(pli_notice_link "$f"); fi
done
[ -n "$link2" ] || fail "no link for carol"
curl -fsS -o /dev/null -X POST "$link2" || fail "carol's read failed"
python3 - "$PLI_LINKD_PORT" "$W/held" <<'PY' &
import socket, sys, select, time
port, out = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(5):
    s = socket.create_connection(("127.0.0.1", port))
    body_len = 1000 * 1000
    s.sendall((f"POST /m/UNKNOWNUNKNOWNUNKNOWN{i}/reply HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: multipart/form-data; boundary=b\r\n"
               f"Content-Length: {body_len}\r\n\r\n").encode())
    # As much of the body as the socket takes without waiting, never the end: the upload
    # is held (a daemon that answered at the headers reads no more of it).
    s.setblocking(False)
    try:
        s.send(b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\n"
               + b"x" * 900000)
    except BlockingIOError:
        pass
    s.setblocking(True)
    socks.append(s)
status = []
for s in socks:
    r, _, _ = select.select([s], [], [], 60)
    status.append(s.recv(64).split(b" ")[1].decode() if r else "none")
with open(out + ".tmp", "w") as f:
    f.write(" ".join(status) + "\n")
import os; os.rename(out + ".tmp", out)
time.sleep(30)  # held open until the test ends (killed then)
PY
HOLDER=$!
pfx_on_exit "kill $HOLDER 2>/dev/null || true"
_pfx_wait 90 "the held uploads to be answered" "" test -s "$W/held"
[ "$(cat "$W/held")" = "404 404 404 404 404" ] || fail "held uploads to an unknown token: $(cat "$W/held")"
head -c 600000 /dev/urandom >"$W/real.bin"
code=$(curl -sS -o /dev/null -w '%{http_code}' -F "text=Vraie réponse" -F files=@"$W/real.bin" "$link2/reply")
[ "$code" = 200 ] || fail "a real reply while uploads are held answered $code"
echo "ok 3 - uploads held to an unknown token get 404 before their body; a real reply gets 200"
kill "$HOLDER" 2>/dev/null || true

# 4. a reply notice waiting in the store's outbox holds no bearer link
listening() { ss -ltnH "sport = :$PFX_PORT_REINJECT" | qgrep .; }
not_listening() { ! listening; }
cp "$PFX_CONF_DIR/master.cf" "$W/master.cf.orig"
pfx_send --from alice@buyer.example --to dave@remote.example \
    --header "Subject: [REPONSE] Troisième" --header "Message-ID: <flood-3@buyer.example>" \
    --body "Réponse attendue."
pfx_wait_sink_count 3 30
link3=""
for f in $(pfx_sink_files); do
    if grep -q "^To: <dave@remote.example>" "$f"; then link3=$(pli_notice_link "$f"); fi
done
[ -n "$link3" ] || fail "no link for dave"
curl -fsS -o /dev/null -X POST "$link3" || fail "dave's read failed"
postconf -c "$PFX_CONF_DIR" -M# "127.0.0.1:$PFX_PORT_REINJECT/inet"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to close" "" not_listening
before=$(pfx_maildir_files catchall | grep -c . || true)
code=$(curl -sS -o /dev/null -w '%{http_code}' -F "text=Réponse de dave" "$link3/reply")
[ "$code" = 200 ] || fail "dave's reply answered $code"
waiting() { grep -q 'outbox=retry_later .*reply_notice' "$W/linkd.log"; }
_pfx_wait 30 "the reply notice to wait for the listener" "" waiting
# (with dave's read notification, queued when the listener closed)
doctor_outbox() {
    $PLI doctor --postfix-config "$PFX_CONF_DIR" --json |
        pli_json '[c for c in j["checks"] if "notification" in c["check"]][0]["check"]' || true
}
doctor_outbox | qgrep -E "^[12] notifications? to buyers wait" ||
    fail "the waiting reply notice is not in the store's outbox: $(doctor_outbox)"
# No record of the store holds a sender's link (its job names the reply only).
if grep -qa "$PLI_URL/r/" "$W/store/data.mdb"; then fail "the store holds a /r/ link"; fi
kill -9 "$PLI_LINKD_PID"; wait "$PLI_LINKD_PID" 2>/dev/null || true
cp "$W/master.cf.orig" "$PFX_CONF_DIR/master.cf"
postfix -c "$PFX_CONF_DIR" reload >/dev/null 2>&1 || fail "postfix reload failed"
_pfx_wait 20 "the re-injection listener to come back" "" listening
"$PLI_BIN_DIR/linkd/pli-linkd" --config "$PLI_CONFIG" --foreground >>"$W/linkd.log" 2>&1 &
PLI_LINKD_PID=$!
pfx_on_exit "kill $PLI_LINKD_PID 2>/dev/null; wait $PLI_LINKD_PID 2>/dev/null || true"
pfx_wait_maildir catchall $((before + 1)) 60
n=$(ls -t "$PFX_MAIL_DIR/catchall/new"/* | head -n 1)
rlink=$(pli_mail_part "$n" text/plain | grep -oE "$PLI_URL/r/[A-Za-z0-9_-]+" | head -n 1)
[ -n "$rlink" ] || fail "the reply notice has no /r/ link: $(pli_mail_part "$n" text/plain)"
curl -fsS -o "$W/rcontent.html" -X POST "$rlink" || fail "the minted /r/ link does not open"
grep -q "Réponse de dave" "$W/rcontent.html" || fail "the minted link does not show the reply"
echo "ok 4 - a reply notice waiting in the store holds no /r/ link; the link minted at sending opens the reply"
