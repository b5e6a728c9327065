#!/usr/bin/env python3
"""smtp-latency.py PORT COUNT SIZE FROM TO [SUBJECT]: one SMTP session sends COUNT messages
of about SIZE bytes back to back and prints the p50 and p99 of the time from MAIL FROM to the
reply to the final dot, in milliseconds ("p50 p99"). Each message has its own Message-ID.
Used by bench/bench.sh for the milter's added latency (with minus without the milter)."""
import smtplib
import sys
import time
import uuid


def main():
    port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sender, rcpt = sys.argv[4], sys.argv[5]
    subject = sys.argv[6] if len(sys.argv) > 6 else "bench"
    line = "X" * 76 + "\r\n"
    body = line * max(1, size // len(line))
    times = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("bench.buyer.example")
        for i in range(count):
            msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject} {i}\r\n"
                   f"Message-ID: <{uuid.uuid4().hex}@bench.buyer.example>\r\n\r\n{body}")
            t0 = time.perf_counter()
            refused = s.sendmail(sender, [rcpt], msg.encode())
            times.append((time.perf_counter() - t0) * 1000.0)
            if refused:
                sys.exit(f"smtp-latency: refused {refused}")
    times.sort()

    def pct(p):
        return times[min(len(times) - 1, int(round(p / 100.0 * (len(times) - 1))))]

    print(f"{pct(50):.2f} {pct(99):.2f}")


if __name__ == "__main__":
    main()
