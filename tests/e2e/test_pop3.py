"""POP3 (issue 8 item 3): RFC 1939 with CAPA and RESP-CODES (RFC 2449), STLS
(RFC 2595) and AUTH (RFC 5034), driven by Python's poplib and by raw
sockets where every byte matters. The maildrop is the user's INBOX; sizes
are the octets RETR sends; deletions happen at QUIT only; one session per
maildrop.

The helpers here (pop3_server, deliver, Raw, ...) serve the other
test_pop3_*.py scenarios too.
"""
import os
import poplib
import re
import smtplib
import socket
import ssl

import lib
from lib import Server, wait_for

POP3_PORT = 1110
POP3S_PORT = 1995
ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "secret"
LOGFIELD = re.compile(r'(?:^|\s)([a-z][a-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def pop3_server(extra=None, users=("alice", "bob"), start=True):
    """A primary with [listen] pop3 (STLS) and pop3s, users alice and bob."""
    ex = {"listen": {}}
    for sec, kv in (extra or {}).items():
        ex.setdefault(sec, {}).update(kv)
    ip = lib.addr("127.0.0.10")
    ex["listen"].setdefault("pop3", "%s:%d" % (ip, POP3_PORT))
    ex["listen"].setdefault("pop3s", "%s:%d" % (ip, POP3S_PORT))
    p = Server(role="primary", extra=ex)
    p.setup_domain(users=users, password=PASSWORD)
    if start:
        p.start()
    return p


def cert_path(p):
    return os.path.join(p.data_dir, "tls", "cert.pem")


def tls_context(p):
    """A client context that trusts exactly the server's generated certificate."""
    ctx = ssl.create_default_context(cafile=cert_path(p))
    ctx.check_hostname = False
    return ctx


def deliver(p, rcpt, body, sender="carol@example.org"):
    """One message through tandem's own SMTP; returns when it is delivered."""
    if isinstance(body, str):
        body = body.encode()
    with smtplib.SMTP(p.ip, p.port, timeout=30) as s:
        s.ehlo("client.example.org")
        assert s.mail(sender)[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        code, text = s.data(body)
        assert code == 250, text
    qid = text.decode().split()[-1]
    wait_for(lambda: "%s: event=removed" % qid in p.log(), timeout=30, what="delivery of " + qid)
    return qid


def mailbox_files(p, address):
    """The message files of address's INBOX (new/ and cur/)."""
    return p.maildir(address, "new") + p.maildir(address, "cur")


def write_message(p, address, name, data):
    """A file that appears in the Maildir from elsewhere (the store picks it
    up at the next open)."""
    local, domain = address.split("@")
    d = os.path.join(p.data_dir, "mail", domain, local)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    tmp = os.path.join(d, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(d, "new", name))


def login(p, user=ALICE, tls=False):
    """A poplib session, logged in with USER/PASS."""
    if tls:
        c = poplib.POP3_SSL(p.ip, POP3S_PORT, context=tls_context(p), timeout=30)
    else:
        c = poplib.POP3(p.ip, POP3_PORT, timeout=30)
    c.user(user)
    c.pass_(PASSWORD)
    return c


def log_fields(line):
    body = line.split(": ", 2)[-1] if ": " in line else line
    return LOGFIELD.findall(body)


class Raw:
    """A POP3 connection under the test's control, byte for byte."""

    def __init__(self, p, port=POP3_PORT, timeout=30, greet=True):
        self.p = p
        self.s = socket.create_connection((p.ip, port), timeout=timeout)
        self.buf = bytearray()
        self.pos = 0
        if greet:
            g = self.line()
            assert g.startswith(b"+OK"), g

    def pending(self):
        """What arrived and was not read yet."""
        return bytes(self.buf[self.pos:])

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                ln = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                if self.pos > (1 << 20):
                    del self.buf[:self.pos]
                    self.pos = 0
                return ln
            d = self.s.recv(262144)
            if not d:
                raise EOFError("closed; got %r" % self.pending()[:200])
            self.buf += d

    def multi(self):
        """The lines of a multi-line response up to the dot, as sent (still
        dot-stuffed), and the number of octets they make with CRLFs."""
        lines, octets = [], 0
        while True:
            ln = self.line()
            if ln == b".":
                return lines, octets
            lines.append(ln)
            octets += len(ln) + 2

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def starttls(self):
        self.s = tls_context(self.p).wrap_socket(self.s)

    def closed(self):
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def raw_login(p, user=ALICE, port=POP3_PORT):
    r = Raw(p, port=port)
    if port == POP3S_PORT:
        r.s = tls_context(p).wrap_socket(r.s)
    assert r.cmd("USER " + user).startswith(b"+OK")
    resp = r.cmd("PASS " + PASSWORD)
    assert resp.startswith(b"+OK"), resp
    return r


def unstuff(lines):
    return [ln[1:] if ln.startswith(b".") else ln for ln in lines]


# --- CAPA and the greeting -------------------------------------------------------

def test_capa_lists_what_the_server_does_in_each_state():
    p = pop3_server()
    c = poplib.POP3(p.ip, POP3_PORT, timeout=30)
    assert c.getwelcome().startswith(b"+OK ")
    caps = c.capa()
    for k in ("TOP", "USER", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS"):
        assert k in caps, caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"], caps
    assert caps["EXPIRE"] == ["NEVER"] and caps["IMPLEMENTATION"] == ["tandem"], caps
    c.user(ALICE)
    c.pass_(PASSWORD)
    after = c.capa()
    assert "STLS" not in after and "USER" not in after and "SASL" not in after, after
    assert "UIDL" in after and "TOP" in after and "PIPELINING" in after
    c.quit()
    # over implicit TLS there is no STLS to offer
    s = poplib.POP3_SSL(p.ip, POP3S_PORT, context=tls_context(p), timeout=30)
    caps = s.capa()
    assert "STLS" not in caps and "USER" in caps, caps
    s.quit()
    p.stop()


# --- the maildrop ----------------------------------------------------------------

def test_stat_list_retr_top_uidl_with_exact_octets_and_dot_stuffing():
    p = pop3_server()
    deliver(p, ALICE, "Subject: one\r\n\r\nfirst message\r\n")
    deliver(p, ALICE, "Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\n"
                      "middle . dot\r\nlast\r\n")
    # a file from elsewhere whose last line has its LF, with a line "." alone
    write_message(p, ALICE, "1700000000.M1P1.foreign", b"Subject: three\n\nline\n.\nend\n")
    c = login(p)
    n, size = c.stat()
    assert n == 3
    resp, listing, _ = c.list()
    sizes = {int(a): int(b) for a, b in (ln.split() for ln in listing)}
    assert sorted(sizes) == [1, 2, 3] and sum(sizes.values()) == size, listing
    num = {}
    for i in (1, 2, 3):
        assert c.list(i) == b"+OK %d %d" % (i, sizes[i])
        resp, lines, octets = c.retr(i)
        # poplib counts the octets of the message after undoing the dot-stuffing
        assert octets == sizes[i], (i, octets, sizes[i], lines)
        num[[ln for ln in lines if ln.startswith(b"Subject:")][0][9:]] = i
    assert sorted(num) == [b"dots", b"one", b"three"], num
    # TOP: the header, the blank line, n lines of the body
    resp, lines, _ = c.top(num[b"dots"], 1)
    assert lines[-2:] == [b"", b".starts with a dot"], lines
    resp, lines, _ = c.top(num[b"dots"], 0)
    assert lines[-1] == b"" and b"Subject: dots" in lines, lines
    c.quit()

    # the same bytes on the wire: stuffed, CRLF, terminated by ".\r\n"
    r = raw_login(p)
    assert r.cmd("RETR %d" % num[b"dots"]) == b"+OK %d octets" % sizes[num[b"dots"]]
    lines, octets = r.multi()
    assert b"...two dots" in lines and b".." in lines and b"..starts with a dot" in lines
    assert sum(len(ln) + 2 for ln in unstuff(lines)) == sizes[num[b"dots"]]
    assert r.cmd("RETR %d" % num[b"three"]).startswith(b"+OK")
    lines, _ = r.multi()
    assert lines[-3:] == [b"line", b"..", b"end"], lines
    assert r.cmd("QUIT") == b"+OK Bye"
    r.close()
    p.stop()


def test_uidl_is_stable_across_restarts_and_never_reused():
    p = pop3_server()
    for i in range(3):
        deliver(p, ALICE, "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
    c = login(p)
    _, before, _ = c.uidl()
    ids = [ln.split()[1] for ln in before]
    assert len(set(ids)) == 3 and all(re.fullmatch(rb"[0-9a-f]{16}", u) for u in ids), ids
    assert c.uidl(2).split()[2] == ids[1]
    c.dele(3)
    c.quit()
    p.stop()
    p.start()
    deliver(p, ALICE, "Subject: m3\r\n\r\nbody 3\r\n")
    c = login(p)
    _, after, _ = c.uidl()
    now = [ln.split()[1] for ln in after]
    assert now[:2] == ids[:2], (ids, now)
    assert len(now) == 3 and now[2] not in ids, (ids, now)
    c.quit()
    p.stop()


def test_dele_is_invisible_at_once_rset_undoes_and_quit_removes():
    p = pop3_server()
    for i in range(3):
        deliver(p, ALICE, "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
    c = login(p)
    total = c.stat()
    assert c.dele(2).startswith(b"+OK")
    n, _ = c.stat()
    assert n == 2
    _, listing, _ = c.list()
    assert [ln.split()[0] for ln in listing] == [b"1", b"3"]
    for bad in (lambda: c.retr(2), lambda: c.list(2), lambda: c.top(2, 0), lambda: c.dele(2),
                lambda: c.uidl(2)):
        try:
            bad()
            raise AssertionError("a deleted message answered")
        except poplib.error_proto as e:
            assert str(e).startswith("b'-ERR"), e
    assert c.rset().startswith(b"+OK")
    assert c.stat() == total
    c.dele(1)
    c.dele(3)
    assert c.noop() == b"+OK"
    assert len(mailbox_files(p, ALICE)) == 3   # nothing removed before QUIT
    assert c.quit() == b"+OK Bye"
    wait_for(lambda: "event=logout service=pop3" in p.log(), what="logout line")
    assert len(mailbox_files(p, ALICE)) == 1
    c = login(p)
    _, lines, _ = c.retr(1)
    assert b"Subject: m1" in lines
    c.quit()
    line = [ln for ln in p.log().splitlines() if "event=logout service=pop3" in ln][0]
    assert " retr=0 dele=2 " in line and "expunged=2" in line, line
    p.stop()


def test_a_session_that_drops_without_quit_deletes_nothing():
    p = pop3_server()
    deliver(p, ALICE, "Subject: keep me\r\n\r\nbody\r\n")
    r = raw_login(p)
    assert r.cmd("DELE 1").startswith(b"+OK")
    r.close()
    wait_for(lambda: "quit=no" in p.log(), what="the logout of the dropped session")
    assert len(mailbox_files(p, ALICE)) == 1
    c = login(p)
    assert c.stat()[0] == 1
    c.quit()
    p.stop()


def test_retr_marks_seen_at_quit_and_top_does_not():
    p = pop3_server()
    deliver(p, ALICE, "Subject: a\r\n\r\nx\r\n")
    deliver(p, ALICE, "Subject: b\r\n\r\ny\r\n")
    c = login(p)
    c.retr(1)
    c.top(2, 0)
    c.quit()
    wait_for(lambda: "event=logout service=pop3" in p.log(), what="logout")

    def flags():
        out = {}
        for f in mailbox_files(p, ALICE):
            with open(f, "rb") as fh:
                subj = [ln for ln in fh.read().split(b"\n") if ln.startswith(b"Subject:")][0]
            out[subj] = f.rsplit(":2,", 1)[1] if ":2," in f else ""
        return out
    wait_for(lambda: "S" in flags().get(b"Subject: a", ""), what="\\Seen on the retrieved message")
    assert "S" not in flags()[b"Subject: b"], flags()
    p.stop()


# --- logging in --------------------------------------------------------------------

def test_auth_plain_login_initial_response_and_cancel():
    import base64
    p = pop3_server()
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PASSWORD.encode()).decode()
    # with an initial response
    r = Raw(p)
    assert r.cmd("AUTH PLAIN " + plain).startswith(b"+OK Logged in")
    assert r.cmd("QUIT") == b"+OK Bye"
    # without: an empty challenge first
    r = Raw(p)
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd(plain).startswith(b"+OK")
    r.cmd("QUIT")
    # LOGIN
    r = Raw(p)
    assert r.cmd("AUTH LOGIN").startswith(b"+ ")
    assert r.cmd(base64.b64encode(ALICE.encode()).decode()).startswith(b"+ ")
    assert r.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    r.cmd("QUIT")
    # "*" cancels; the session goes on; a wrong password is refused cleanly
    r = Raw(p)
    assert r.cmd("AUTH LOGIN").startswith(b"+ ")
    assert r.cmd("*").startswith(b"-ERR")
    assert r.cmd("AUTH SCRAM-SHA-1").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN !!!notbase64").startswith(b"-ERR")
    bad = base64.b64encode(b"\0" + ALICE.encode() + b"\0wrong").decode()
    assert r.cmd("AUTH PLAIN " + bad) == b"-ERR [AUTH] Authentication failed"
    # AUTH alone lists the mechanisms
    assert r.cmd("AUTH") == b"+OK"
    assert r.multi()[0] == [b"PLAIN", b"LOGIN"]
    assert r.cmd("AUTH PLAIN " + plain).startswith(b"+OK")
    r.cmd("QUIT")
    # poplib's own AUTH-less path and a wrong USER/PASS
    c = poplib.POP3(p.ip, POP3_PORT, timeout=30)
    c.user(ALICE)
    try:
        c.pass_("nope")
        raise AssertionError("a wrong password logged in")
    except poplib.error_proto as e:
        assert "-ERR [AUTH] Authentication failed" in str(e)
    c.user(ALICE)
    c.pass_(PASSWORD)
    c.quit()
    p.stop()


def test_apop_last_unknown_and_wrong_state_get_a_clean_err():
    p = pop3_server()
    r = Raw(p)
    for cmd in ("APOP alice@example.test 0123456789abcdef0123456789abcdef", "LAST", "XTND",
                "STAT", "RETR 1", "PASS secret", "NOOP"):
        assert r.cmd(cmd).startswith(b"-ERR"), cmd
    r.cmd("QUIT")
    # (a new session: ten errors in one close it, see test_pop3_badinput)
    r = raw_login(p)
    for cmd in ("USER " + ALICE, "PASS x", "AUTH PLAIN", "STLS", "LAST", "APOP a b", "RETR 1",
                "RETR x", "LIST 0", "TOP 1", "DELE 99999999999", "STAT x"):
        assert r.cmd(cmd).startswith(b"-ERR"), cmd
    assert r.cmd("STAT") == b"+OK 0 0"
    assert r.cmd("QUIT") == b"+OK Bye"
    p.stop()


def test_a_second_session_for_the_same_maildrop_gets_in_use():
    p = pop3_server()
    deliver(p, ALICE, "Subject: a\r\n\r\nx\r\n")
    first = raw_login(p)
    second = Raw(p, port=POP3S_PORT, greet=False)
    second.s = tls_context(p).wrap_socket(second.s)
    assert second.line().startswith(b"+OK")
    assert second.cmd("USER " + ALICE) == b"+OK"
    assert second.cmd("PASS " + PASSWORD) == b"-ERR [IN-USE] Mailbox is locked by another POP3 session"
    # another user is not held up
    bob = raw_login(p, BOB)
    assert bob.cmd("STAT") == b"+OK 0 0"
    bob.cmd("QUIT")
    # once the first one has quit the maildrop is free
    assert first.cmd("QUIT") == b"+OK Bye"
    assert first.closed()
    assert second.cmd("USER " + ALICE) == b"+OK"
    assert second.cmd("PASS " + PASSWORD).startswith(b"+OK Logged in, 1 messages")
    second.cmd("QUIT")
    assert "reason=maildrop_in_use" in p.log()
    p.stop()


def test_login_and_logout_lines_with_escaped_network_values():
    p = pop3_server()
    deliver(p, ALICE, "Subject: a\r\n\r\nx\r\n")
    deliver(p, ALICE, "Subject: b\r\n\r\ny\r\n")
    c = login(p)
    c.retr(1)
    c.retr(2)
    c.dele(2)
    c.quit()
    r = Raw(p)
    r.cmd('USER x" client=[6.6.6.6] user=forged')
    assert r.cmd("PASS nothing").startswith(b"-ERR [AUTH]")
    r.cmd("QUIT")
    wait_for(lambda: "event=logout" in p.log(), what="logout")
    log = p.log()
    login_line = [ln for ln in log.splitlines() if "event=login service=pop3" in ln][0]
    fields = dict(log_fields(login_line))
    assert fields["user"].strip('"') == ALICE and re.fullmatch(r"\[127\.[0-9.]+\]", fields["client"])
    assert fields["session"] and login_line.split(": ")[1] == fields["session"], login_line
    out = [ln for ln in log.splitlines() if "event=logout service=pop3" in ln][0]
    assert " retr=2 dele=1 " in out, out
    for line in log.splitlines():
        for k, v in log_fields(line):
            assert not (k == "client" and "6.6.6.6" in v), "forged field in: " + line
            assert not (k == "user" and v == "forged"), "forged field in: " + line
    p.stop()
