"""ETRN in a row does not multiply the work: flushes coalesce.

A backup holds 200 messages for a primary that is broken (it accepts a
connection and hangs up before its greeting, so every attempt defers). A
client then sends ETRN twenty times. The first one starts one attempt per
message; the other nineteen find every message already on its way and
start nothing, with one log line each. While the ETRNs arrive, the broken
primary holds every connection open without a word, so each attempt is
surely still in flight when the next ETRN comes: no race decides the count.
"""
import re
import smtplib
import socket
import threading

from lib import Conn, Server, addr, wait_for

BACKUP_IP = "127.0.9.20"
PRIMARY_IP = "127.0.9.10"
PRIMARY_PORT = 2626
MESSAGES = 200
ETRNS = 20


class BrokenPrimary:
    """Counts connections; hangs up at once, or (hold=True) keeps each one
    open and silent until release()."""

    def __init__(self, ip, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(256)
        self.connections = 0
        self.hold = False
        self.held = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                if self.hold:
                    self.held.append(c)
                    continue
            c.close()

    def release(self):
        with self.lock:
            self.hold = False
            held, self.held = self.held, []
        for c in held:
            c.close()

    def close(self):
        self.release()
        self.sock.close()


def retry_lines(log, attempts):
    return len(re.findall(r"event=retry_at \S+ attempts=%d\b" % attempts, log))


def test_twenty_etrns_start_each_message_once():
    peer = BrokenPrimary(addr(PRIMARY_IP), PRIMARY_PORT)
    b = Server(role="backup", ip=BACKUP_IP, relay_domains=["example.test"],
               extra={"relay": {"primary": "%s:%d" % (addr(PRIMARY_IP), PRIMARY_PORT)},
                      "queue": {"retry_min": "1h", "retry_max": "2h"}})
    b.start()
    try:
        with smtplib.SMTP(b.ip, b.port, timeout=30) as c:
            c.ehlo("client.example.org")
            for i in range(MESSAGES):
                c.sendmail("carol@example.org", ["alice@example.test"],
                           "Subject: %d\r\n\r\nmessage %d\r\n" % (i, i))
        # each tried once on arrival and deferred for an hour
        wait_for(lambda: retry_lines(b.log(), 1) == MESSAGES, timeout=60,
                 what="every message deferred once")
        before = peer.connections
        assert before == MESSAGES, before

        peer.hold = True
        # one ETRN from each of 20 addresses: the per-client rate limit
        # (5 a minute) does not apply, only the scheduler's coalescing does
        for i in range(ETRNS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(30)
            s.bind((addr("127.0.0.%d" % (100 + i)), 0))
            s.connect((b.ip, b.port))
            e = Conn.__new__(Conn)
            e.s, e.buf = s, b""
            assert e.reply()[0] == 220
            assert e.cmd("EHLO client.example.org")[0] == 250
            code, text = e.cmd("ETRN example.test")
            assert code == 253, (i, code, text)   # every one told the truth: 200 on their way
            assert e.cmd("QUIT")[0] == 221
            e.close()

        log = b.log()
        flushes = re.findall(r"event=flush domain=example.test messages=(\d+) started=(\d+) "
                             r"coalesced=(\d+)", log)
        assert len(flushes) == ETRNS, flushes                  # one line per ETRN
        assert sum(int(s) for _, s, _ in flushes) == MESSAGES, flushes
        assert flushes[0] == (str(MESSAGES), str(MESSAGES), "0"), flushes[0]
        assert all(f == (str(MESSAGES), "0", str(MESSAGES)) for f in flushes[1:]), flushes

        peer.release()
        wait_for(lambda: retry_lines(b.log(), 2) == MESSAGES, timeout=60,
                 what="every message attempted once more")
        # the positive end marker: a clean stop, after which nothing runs
        b.stop()
        log = b.log()
        assert retry_lines(log, 3) == 0, "a message was attempted a third time"
        assert retry_lines(log, 2) == MESSAGES
        after = peer.connections - before
        assert after == MESSAGES, (after, MESSAGES)   # not 20x, not 2x: once each
    finally:
        peer.close()
