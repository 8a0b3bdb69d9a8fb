"""Helpers shared by the IMAP scenarios: a primary with its IMAP listeners
and two users, an imaplib login, a raw line-level IMAP connection, and SMTP
delivery into a mailbox."""
import imaplib
import smtplib
import socket
import ssl

from lib import Server, wait_for

IMAP_PORT = 1143
IMAPS_PORT = 1993
PASSWORD = "secret"
ALICE = "alice@example.test"
BOB = "bob@example.test"


def imap_server(extra=None, users=("alice", "bob"), start=True):
    ex = {"listen": {}}
    for sec, kv in (extra or {}).items():
        ex.setdefault(sec, {}).update(kv)
    s = Server(role="primary", extra=ex)
    s.extra["listen"].update({"imap": "%s:%d" % (s.ip, IMAP_PORT),
                              "imaps": "%s:%d" % (s.ip, IMAPS_PORT)})
    s.write_config()
    s.setup_domain(users=users, password=PASSWORD)
    if start:
        s.start()
    return s


def login(s, user=ALICE, password=PASSWORD):
    m = imaplib.IMAP4(s.ip, IMAP_PORT)
    typ, _ = m.login(user, password)
    assert typ == "OK"
    return m


def tls_context(s):
    ctx = ssl.create_default_context(cafile=s.data_dir + "/tls/cert.pem")
    ctx.check_hostname = False
    return ctx


def deliver(s, to=ALICE, subject="hello", body="Hello there.\r\n", sender="carol@example.org"):
    """Send one message through tandem's own SMTP and wait for its delivery."""
    msg = ("From: Carol <%s>\r\nTo: %s\r\nSubject: %s\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
           "Message-ID: <%s@example.org>\r\n\r\n%s" % (sender, to, subject,
                                                      abs(hash(subject + body)), body))
    with smtplib.SMTP(s.ip, s.port) as c:
        c.sendmail(sender, [to], msg.encode())
    s.settle()
    return msg


class Raw:
    """A raw IMAP connection for the cases that must control every byte."""

    def __init__(self, host, port=IMAP_PORT, timeout=10, sock=None):
        self.s = sock or socket.create_connection((host, port), timeout=timeout)
        self.s.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed; got %r" % self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def until(self, prefix):
        """Lines up to and including the first that starts with prefix."""
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(prefix):
                return out

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag + " ")

    def closed(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def raw_login(s, user=ALICE):
    r = Raw(s.ip)
    assert r.line().startswith("* OK")
    out = r.cmd("l", "LOGIN %s %s" % (user, PASSWORD))
    assert out[-1].startswith("l OK"), out
    return r


__all__ = ["imap_server", "login", "deliver", "Raw", "raw_login", "tls_context", "wait_for",
           "ALICE", "BOB", "PASSWORD", "IMAP_PORT", "IMAPS_PORT"]
