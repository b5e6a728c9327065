#!/usr/bin/env python3
"""A small milter-protocol client (the MTA's side, as Postfix speaks it) driving the real
pli-milter on its socket: negotiation, the steps it does not answer, the replies it gives.

    milter_client.py SOCKET CASE      (CASE: negotiate, no_reply, unknown_report, store_full)

Exits 0 when the milter answered as expected, 1 with a message otherwise. A tempfail or
reject with a reply set is one SMFIR_REPLYCODE ('y') packet, the reply's code saying which.
"""
import socket
import struct
import sys

# Actions (SMFIF_*) and protocol steps (SMFIP_*) of the milter protocol version 6.
SMFIF_ADDHDRS, SMFIF_DELRCPT, SMFIF_CHGHDRS = 0x01, 0x08, 0x10
SMFIF_ALL = 0x1FF
SMFIP_NOEOH, SMFIP_NR_HDR, SMFIP_NOUNKNOWN = 0x40, 0x80, 0x100
SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_BODY = 0x1000, 0x2000, 0x80000
SMFIP_ALL = 0x1FFFFF


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Milter:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.settimeout(10)

    def send(self, cmd, data=b""):
        self.s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                fail("the milter closed the connection")
            buf += chunk
        return buf

    def reply(self):
        (n,) = struct.unpack(">I", self._read(4))
        body = self._read(n)
        return body[:1], body[1:]

    def silent(self, seconds=0.3):
        """True when the milter sends nothing within `seconds` (a no-reply step)."""
        self.s.settimeout(seconds)
        try:
            data = self.s.recv(1, socket.MSG_PEEK)
            return False if data else fail("the milter closed the connection")
        except socket.timeout:
            return True
        finally:
            self.s.settimeout(10)

    def negotiate(self):
        self.send(b"O", struct.pack(">III", 6, SMFIF_ALL, SMFIP_ALL))
        cmd, data = self.reply()
        if cmd != b"O":
            fail("negotiation answered %r" % cmd)
        return struct.unpack(">III", data[:12])

    def connect(self, host, ip, port):
        self.send(b"C", host + b"\0" + b"4" + struct.pack(">H", port) + ip + b"\0")

    def macro(self, cmd, **values):
        data = cmd
        for k, v in values.items():
            data += k.encode() + b"\0" + v.encode() + b"\0"
        self.send(b"D", data)


def nul(*parts):
    return b"".join(p + b"\0" for p in parts)


def start(path):
    m = Milter(path)
    m.negotiate()
    m.connect(b"client.example", b"127.0.0.1", 40000)
    if not m.silent():
        fail("connect was answered")
    m.send(b"H", nul(b"client.example"))
    if not m.silent():
        fail("HELO was answered")
    return m


def expect(m, want, what):
    cmd, data = m.reply()
    if cmd != want:
        fail("%s: expected %r, got %r %r" % (what, want, cmd, data))
    return data


def begin(m, sender, rcpt, subject):
    """MAIL FROM, RCPT TO and DATA, each answered "continue", then a Subject header."""
    for cmd, arg, what in ((b"M", sender, "MAIL FROM"), (b"R", rcpt, "RCPT"), (b"T", None, "DATA")):
        m.send(cmd, b"" if arg is None else nul(arg))
        expect(m, b"c", what + " of " + sender.decode())
    m.send(b"L", nul(b"Subject", subject))


def main():
    path, case = sys.argv[1], sys.argv[2]
    if case == "negotiate":
        m = Milter(path)
        version, actions, protocol = m.negotiate()
        if actions != SMFIF_CHGHDRS | SMFIF_DELRCPT:
            fail("actions %#x: only CHGHDRS and DELRCPT are used" % actions)
        for bit, name in ((SMFIP_NR_CONN, "NR_CONN"), (SMFIP_NR_HELO, "NR_HELO"),
                          (SMFIP_NR_HDR, "NR_HDR"), (SMFIP_NR_BODY, "NR_BODY"),
                          (SMFIP_NOEOH, "NOEOH"), (SMFIP_NOUNKNOWN, "NOUNKNOWN")):
            if not protocol & bit:
                fail("protocol %#x lacks %s" % (protocol, name))
        for bit, name in ((0x4000, "NR_MAIL"), (0x8000, "NR_RCPT"), (0x10000, "NR_DATA")):
            if protocol & bit:
                fail("protocol %#x: %s must be answered" % (protocol, name))
        # An MTA that cannot delete recipients is refused.
        m2 = Milter(path)
        m2.send(b"O", struct.pack(">III", 6, SMFIF_CHGHDRS | SMFIF_ADDHDRS, SMFIP_ALL))
        try:
            answer = m2.s.recv(5)
        except ConnectionError:
            answer = b""
        if answer[4:5] == b"O":
            fail("an MTA without DELRCPT was accepted")
    elif case == "no_reply":
        m = start(path)
        m.send(b"M", nul(b"<someone@elsewhere.example>"))
        expect(m, b"a", "a non-buyer's MAIL FROM")
        m.send(b"A")
        m.macro(b"M", **{"{auth_authen}": ""})
        begin(m, b"<alice@buyer.example>", b"<bob@remote.example>", b"[AR] Resultat")
        m.send(b"L", nul(b"Message-ID", b"<component-1@buyer.example>"))
        if not m.silent():
            fail("a header was answered")
        m.send(b"B", b"Madame, Monsieur,\r\n")
        if not m.silent():
            fail("the body was answered")
        m.macro(b"E", i="COMP1")
        m.send(b"E")
        # No re-injection listener here: recorded, then tempfailed for the client to retry.
        data = expect(m, b"y", "end of message without a listener")
        if not data.startswith(b"451 4.3.0 pli could not hand the message over"):
            fail("reply %r" % data)
    elif case == "unknown_report":
        m = start(path)
        m.send(b"M", nul(b"<>"))
        expect(m, b"c", "the null sender's MAIL FROM")
        m.send(b"R", nul(b"<pli-bounce+dnosuch@buyer.example>"))
        data = expect(m, b"y", "RCPT of an unknown report address")
        if not data.startswith(b"550 5.1.1 No such delivery report address"):
            fail("reply %r" % data)
    elif case == "store_full":
        m = start(path)
        begin(m, b"<alice@buyer.example>", b"<carol@remote.example>", b"[AR] big")
        line = b"x" * 998 + b"\r\n"
        chunk = line * 60  # under the protocol's 64 KB per body chunk
        for i in range(0, 24 * 1024 * 1024, len(chunk)):
            m.send(b"B", chunk)
        m.send(b"E")
        data = expect(m, b"y", "end of message on a full store")
        if not data.startswith(b"451 4.3.0 pli store full"):
            fail("reply %r" % data)
    else:
        fail("unknown case " + case)
    print("ok", case)


if __name__ == "__main__":
    main()
