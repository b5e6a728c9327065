#!/usr/bin/env bash
# Memory of the bounce path through a private Postfix: four concurrent ~9 MB forged reports
# to a delivery that was sent, and four to delivery ids nobody issued, at the MX listener.
# Unknown ids are refused at RCPT (550 5.1.1) and nothing of them is read; the reports over
# bounce.max_report_kb (1024) are refused (552 5.3.4) without being parsed; pli-milter's
# peak RSS (VmHWM, from /proc) stays under the 64 MB target; Postfix's own reports still work.
set -euo pipefail
. "$(dirname "$0")/../harness/pli_lib.sh"
pli_setup
W=$PLI_WORK

show() { $PLI show "$1@buyer.example" --json; }
status_of() { show "$1" | pli_json 'j["deliveries"][0]["status"]'; }
wait_status() { # wait_status MID STATUS TIMEOUT_S
    local s=""
    for _ in $(seq 1 $(($3 * 5))); do
        s=$(status_of "$1"); [ "$s" = "$2" ] && return 0; sleep 0.2
    done
    fail "$1: status $s, expected $2"
}
send() { # send RCPT MESSAGE-ID
    pfx_send --from alice@buyer.example --to "$1" --header "Subject: Avis $2" \
        --header "Message-ID: <$2@buyer.example>" --body "Corps du courrier $2."
}

send ok@remote.example flood-1
wait_status flood-1 delivered 30
did=$(show flood-1 | pli_json 'j["deliveries"][0]["id"]')
events_before=$(show flood-1 | pli_json 'len(j["deliveries"][0]["events"])')
hwm_before=$(awk '/VmHWM/ {print $2}' "/proc/$PLI_MILTER_PID/status")

/usr/bin/python3 - "$PFX_PORT_IN" "$did" >"$W/flood.out" <<'PY'
import smtplib, sys, threading
port, did = int(sys.argv[1]), sys.argv[2]
line = ("The mailbox is full, the report goes on and on and on and on and on. " * 1)[:74] + "\r\n"
body = line * (9_000_000 // len(line))
def report(rcpt):
    return ("From: Mail Delivery Subsystem <MAILER-DAEMON@mx.forger.example>\r\n"
            f"To: {rcpt}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\n" + body +
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.forger.example\r\n\r\n"
            "Final-Recipient: rfc822; ok@remote.example\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n--B--\r\n")
results = {}
def one(i, rcpt):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
            s.ehlo("forger.example")
            s.sendmail("", [rcpt], report(rcpt).encode())
            results[i] = "accepted"
    except smtplib.SMTPRecipientsRefused as e:
        results[i] = "rcpt %d" % list(e.recipients.values())[0][0]
    except smtplib.SMTPDataError as e:
        results[i] = "data %d" % e.smtp_code
    except Exception as e:
        results[i] = "error %r" % (e,)
rcpts = [f"pli-bounce+{did}@buyer.example"] * 4 + [f"pli-bounce+dnosuch{i}@buyer.example" for i in range(4)]
threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(rcpts)]
for t in threads: t.start()
for t in threads: t.join()
for i in range(len(rcpts)):
    print(results[i])
PY
cat "$W/flood.out"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PLI_MILTER_PID/status")
echo "pli-milter VmHWM: ${hwm_before} kB before the flood, ${hwm} kB after"
[ "$hwm" -lt 65536 ] || fail "pli-milter's peak RSS ${hwm} kB is over the 64 MB target"
[ "$(head -n 4 "$W/flood.out" | grep -c '^data 552$')" = 4 ] ||
    fail "the oversized reports were not refused with 552: $(cat "$W/flood.out")"
[ "$(tail -n 4 "$W/flood.out" | grep -c '^rcpt 550$')" = 4 ] ||
    fail "the unknown ids were not refused at RCPT with 550: $(cat "$W/flood.out")"
[ "$(grep -c 'decision=reject_report_too_large' "$W/milter.log")" = 4 ] ||
    fail "the oversized reports were not logged"
[ "$(grep -c 'decision=reject_unknown_delivery' "$W/milter.log")" = 4 ] ||
    fail "the unknown ids were not logged"
[ "$(show flood-1 | pli_json 'len(j["deliveries"][0]["events"])')" = "$events_before" ] ||
    fail "an oversized report was recorded"
echo "ok 1 - 4 concurrent 9 MB reports and 4 unknown ids: refused (552, 550), peak RSS ${hwm} kB"

# Postfix's own reports are unaffected.
send hardfail@remote.example flood-2
wait_status flood-2 not_delivered 30
echo "ok 2 - Postfix's own report still turns a delivery Non délivré"
