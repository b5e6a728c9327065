#!/usr/bin/python3
# smtp_load.py N PORT CLIENTS PROGRESS: CLIENTS concurrent SMTP clients (smtplib, one
# connection per client thread) submit N registered messages (<load-I@buyer.example>, 1 to 3
# external recipients lI rK @remote.example) to PORT, reconnecting and resending after a 4xx
# or a dropped connection, as mail clients do. Writes the number accepted to PROGRESS every
# 20 messages; at the end prints "accepted A, resent R times (T 4xx answers)". Exit 1 when a
# message was refused (5xx) or still deferred after 120 attempts.
import smtplib, sys, threading, time
n, port, clients, progress = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
state = {"next": 1, "done": 0, "retries": 0, "tempfails": 0, "failed": []}

def message(i):
    to = ["l%dr%d@remote.example" % (i, k) for k in range(1, 2 + i % 3)]
    body = ("From: alice@buyer.example\r\nTo: %s\r\nSubject: Charge %d\r\n"
            "Message-ID: <load-%d@buyer.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Message de charge numéro %d.\r\n" % (", ".join(to), i, i, i)).encode()
    return to, body

def client():
    conn = None
    while True:
        with lock:
            i = state["next"]; state["next"] += 1
        if i > n:
            break
        to, body = message(i)
        for attempt in range(120):
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=60)
                    conn.ehlo("client.buyer.example")
                conn.sendmail("alice@buyer.example", to, body)
                break
            except smtplib.SMTPRecipientsRefused as e:
                codes = [c for c, _ in e.recipients.values()]
                if any(c >= 500 for c in codes):
                    state["failed"].append((i, str(e))); return
                with lock: state["tempfails"] += 1
            except smtplib.SMTPResponseException as e:
                if e.smtp_code >= 500:
                    with lock: state["failed"].append((i, "%d %s" % (e.smtp_code, e.smtp_error)))
                    return
                with lock: state["tempfails"] += 1
            except (smtplib.SMTPServerDisconnected, OSError):
                pass
            with lock: state["retries"] += 1
            try:
                conn and conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.5)
        else:
            with lock: state["failed"].append((i, "still deferred after 120 attempts"))
            return
        with lock:
            state["done"] += 1
            if state["done"] % 20 == 0:
                with open(progress, "w") as f: f.write("%d\n" % state["done"])
    if conn is not None:
        try: conn.quit()
        except Exception: pass

threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
with open(progress, "w") as f: f.write("%d\n" % state["done"])
print("accepted %d, resent %d times (%d 4xx answers)" % (state["done"], state["retries"], state["tempfails"]))
for i, why in state["failed"]:
    print("message %d: %s" % (i, why), file=sys.stderr)
sys.exit(1 if state["failed"] or state["done"] != n else 0)
