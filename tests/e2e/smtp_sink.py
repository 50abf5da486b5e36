"""A tiny SMTP sink for the notification tests (Python 3.12 has no smtpd).

SmtpSink().start() listens on 127.0.0.1 (a free port) in a thread of its own
with an asyncio server that speaks just enough SMTP for libcurl: EHLO/HELO,
MAIL FROM, RCPT TO, DATA (dot-unstuffed), RSET, NOOP, QUIT. Each message
received is appended to .messages as {"from", "to": [...], "data": str}.
"""

import asyncio
import re
import threading


class SmtpSink:
    def __init__(self):
        self.messages = []
        self.port = None
        self._loop = None
        self._server = None
        self._ready = threading.Event()

    async def _session(self, reader, writer):
        def say(line):
            writer.write((line + "\r\n").encode())

        say("220 sink ESMTP")
        mail_from, rcpt = None, []
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                verb = cmd[:4].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 sink")
                elif verb == "MAIL":
                    m = re.search(r"<([^>]*)>", cmd)
                    mail_from, rcpt = (m.group(1) if m else ""), []
                    say("250 OK")
                elif verb == "RCPT":
                    m = re.search(r"<([^>]*)>", cmd)
                    rcpt.append(m.group(1) if m else "")
                    say("250 OK")
                elif verb == "DATA":
                    say("354 go on")
                    await writer.drain()
                    lines = []
                    while True:
                        raw = await reader.readline()
                        if not raw or raw in (b".\r\n", b".\n"):
                            break
                        if raw.startswith(b".."):
                            raw = raw[1:]
                        lines.append(raw.decode("utf-8", "replace"))
                    self.messages.append({"from": mail_from, "to": rcpt, "data": "".join(lines)})
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    break
                elif verb in ("RSET", "NOOP"):
                    say("250 OK")
                else:
                    say("502 not here")
                await writer.drain()
        finally:
            writer.close()

    def _run(self):
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self):
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
