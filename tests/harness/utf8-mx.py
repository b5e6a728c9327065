#!/usr/bin/python3
"""utf8-mx.py PORT DIR: a remote MX that offers SMTPUTF8 (RFC 6531), on 127.0.0.1:PORT.

Postfix's smtp-sink (Debian 12) does not offer SMTPUTF8, and Postfix refuses to relay a
message with an internationalised address to a server that does not (5.6.7). This server,
aiosmtpd from Debian, accepts everything and writes each message to DIR as smtp-sink -d
does: "X-Mail-Args:" and one "X-Rcpt-Args: <ADDRESS>" line per recipient (raw UTF-8), then
the message. A file is written as DIR/.NAME and renamed, so that a file seen is complete.
It runs until killed."""
import asyncio
import os
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%d.%06d.eml" % (os.getpid(), self.count)
        head = "X-Mail-Args: <%s> %s\r\n" % (envelope.mail_from, " ".join(envelope.mail_options))
        for i, rcpt in enumerate(envelope.rcpt_tos):
            options = envelope.rcpt_options[i] if i < len(envelope.rcpt_options) else []
            head += "X-Rcpt-Args: <%s> %s\r\n" % (rcpt, " ".join(options))
        tmp = os.path.join(self.directory, "." + name)
        with open(tmp, "wb") as f:
            f.write(head.encode("utf-8") + envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 2.0.0 Ok: queued as utf8-mx-%d" % self.count


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Handler(directory), hostname="127.0.0.1", port=port,
                            enable_SMTPUTF8=True, decode_data=False,
                            server_hostname="mx.utf8.example")
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
