"""RELIABILITY.md "Bad input": each must get a clear error reply, never a
crash, hang or leak. After every bad input the server must still be alive
(a fresh connection gets 220), its log must show no crash, and it must stop
cleanly (Server.stop asserts exit 0 and no sanitizer report).
"""
import json
import random
import re
import socket
import ssl
import time

from lib import Conn, Server, wait_for

ALICE = "alice@example.test"

# RELIABILITY.md: every one of these inside DATA; only CRLF.CRLF ends DATA.
SMUGGLE = [
    b"\n.\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n",
    b"\r\n.\r", b"\r\n\0.\r\n", b"\r\n.\0\r\n", b"\r\n.\r\r\n",
]

CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation fault",
                 "Aborted", "core dumped", "assertion", "Assertion")


def primary(users=("alice",), extra=None):
    p = Server(role="primary", extra=extra)
    p.setup_domain(users=users)
    return p.start()


def greeted(p, ehlo="client.example.org", timeout=10):
    c = Conn(p.ip, p.port, timeout=timeout)
    code, text = c.reply()
    assert code == 220, text
    if ehlo:
        code, text = c.cmd("EHLO " + ehlo)
        assert code == 250, text
    return c


def assert_alive(p):
    """The server survived: process running, a fresh session works, no crash in the log."""
    assert p.proc is not None and p.proc.poll() is None, "tandem died:\n" + p.log()[-3000:]
    c = Conn(p.ip, p.port, timeout=10)
    code, text = c.reply()
    assert code == 220, "fresh connection: %s" % text
    code, text = c.cmd("EHLO alive.example.org")
    assert code == 250, text
    code, text = c.cmd("QUIT")
    assert code == 221, text
    c.close()
    log = p.log()
    for m in CRASH_MARKERS:
        assert m not in log, "crash marker %r in log:\n%s" % (m, log[-3000:])


def no_more_replies(c):
    """Nothing unsolicited is waiting from the server: the next reply is
    HELP's 214 (a code no other command gets), proved by asking, not by
    waiting a while for silence."""
    assert not c.buf, "unexpected extra server output: %r" % c.buf
    code, text = c.cmd("HELP")
    assert code == 214, "unexpected extra server output before HELP's reply: %r" % text
    assert not c.buf, "unexpected extra server output after HELP's reply: %r" % c.buf


def settle(p):
    """The server done with what it accepted (lib.Server.settle): the
    positive end marker before a test asserts that something did not happen."""
    p.settle()


def queue_json(p):
    return json.loads(p.cli("queue", "list", "--json").stdout or "[]")


def start_data(c, rcpt=ALICE, sender="carol@example.org"):
    code, text = c.cmd("MAIL FROM:<%s>" % sender)
    assert code == 250, text
    code, text = c.cmd("RCPT TO:<%s>" % rcpt)
    assert code == 250, text
    code, text = c.cmd("DATA")
    assert code == 354, text


def send_message(c, body, rcpt=ALICE):
    """A whole transaction on a raw connection; returns the end-of-data reply."""
    start_data(c, rcpt)
    c.send(body)
    c.send(b".\r\n")
    return c.reply()


# --- SMTP smuggling -----------------------------------------------------------------

def smuggle_payload(seq, tag):
    return (b"Subject: carrier " + tag + b"\r\n\r\nhello" + seq +
            b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
            b"Subject: smuggled " + tag + b"\r\n\r\nsmuggled body\r\n")


def run_smuggling(split):
    p = primary()
    results = {}
    for i, seq in enumerate(SMUGGLE):
        tag = b"#%d" % i
        c = greeted(p)
        if split:
            c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start_data(c)
        payload = smuggle_payload(seq, tag)
        if split:
            # byte by byte, so the sequence straddles every read boundary
            for b in range(len(payload)):
                c.send(payload[b:b + 1])
                if b % 8 == 0:
                    time.sleep(0.002)
        else:
            c.send(payload)
        # the first reply must come only after the real end of data (an
        # early one would be read as the end of data's below, and HELP's
        # 214 would not be the next reply)
        c.send(b"more after the sequence\r\n.\r\n")
        code, text = c.reply()
        results[seq] = (code, text)
        # no reply to a smuggled MAIL/RCPT/DATA may follow: the next reply is HELP's
        code2, text2 = c.cmd("HELP")
        assert code2 == 214, "seq %r: after end of data expected HELP's 214, got %r (first %r)" % (
            seq, text2, text)
        no_more_replies(c)
        assert c.cmd("QUIT")[0] == 221
        c.close()
        has_bare = any(re.search(rb"\r(?!\n)|(?<!\r)\n", s) for s in [seq])
        if has_bare:
            assert 500 <= code < 600, "seq %r with bare CR/LF: expected 5xx at end of data, got %r" % (
                seq, text)
        else:
            assert code in (250,) or 500 <= code < 600, "seq %r: %r" % (seq, text)
    settle(p)
    msgs = p.messages(ALICE)
    for m in msgs:
        hdr = m.split(b"\n\n", 1)[0]
        assert b"Subject: smuggled" not in hdr, "a smuggled message was delivered:\n%r" % m
        assert m.count(b"Return-Path:") == 1
        assert b"evil@example.org>\nDelivered-To" not in m
        # whatever was accepted carries the smuggled text as plain body, and no bare CR
        assert b"\r" not in m, "delivered with a bare CR: %r" % m
        assert b"more after the sequence" in m, "message was cut short: %r" % m
    accepted = [s for s, (code, _) in results.items() if code == 250]
    assert len(msgs) == len(accepted), (len(msgs), accepted)
    # nothing from evil@ is queued or delivered anywhere
    assert all(e["sender"] != "evil@example.org" for e in queue_json(p))
    assert "from=<evil@example.org>" not in p.log()
    assert_alive(p)
    p.stop()
    return results


def test_smuggling_sequences_one_packet():
    run_smuggling(split=False)


def test_smuggling_sequences_byte_by_byte():
    run_smuggling(split=True)


def test_bare_lf_line_endings_rejected_not_split():
    """A client that ends lines with bare LF, including the dot line."""
    p = primary()
    c = greeted(p)
    start_data(c)
    c.send(b"Subject: lf\n\nline one\n.\nMAIL FROM:<evil@example.org>\n")
    # no reply until the real end of data: the first reply is its 5xx
    # (an early 250 would be read here), and HELP's 214 comes next
    c.send(b"\r\n.\r\n")
    code, text = c.reply()
    assert 500 <= code < 600, "bare-LF message: %s" % text
    no_more_replies(c)
    assert c.cmd("NOOP")[0] == 250
    c.close()
    settle(p)
    assert p.messages(ALICE) == []
    assert_alive(p)
    p.stop()


# --- STARTTLS command injection (CVE-2011-0411) -------------------------------------

def test_starttls_buffered_command_injection():
    p = primary()
    c = greeted(p)
    c.send(b"STARTTLS\r\nRSET\r\n")
    code, text = c.reply()
    assert code == 220, text
    assert c.buf == b"", "plaintext bytes after the 220: %r" % c.buf
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(c.s, server_hostname="mx1.example.test")
    tls.settimeout(10)
    c.s = tls
    # the injected RSET must not be answered inside TLS either
    no_more_replies(c)
    code, text = c.cmd("EHLO client.example.org")
    assert code == 250, "first reply after EHLO over TLS: %r" % text
    assert "Hello" in text.splitlines()[0] and "PIPELINING" in text, text
    assert "STARTTLS" not in text, text
    code, text = c.cmd("NOOP")
    assert code == 250, text
    no_more_replies(c)
    c.close()
    assert_alive(p)
    p.stop()


def test_starttls_injected_mail_transaction():
    """A whole transaction injected behind STARTTLS is discarded, never delivered."""
    p = primary()
    c = greeted(p)
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
           b"DATA\r\nSubject: injected\r\n\r\ninjected\r\n.\r\n")
    code, text = c.reply()
    assert code == 220, text
    assert c.buf == b""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        tls = ctx.wrap_socket(c.s, server_hostname="mx1.example.test")
        tls.settimeout(10)
        c.s = tls
        no_more_replies(c)
        code, text = c.cmd("EHLO client.example.org")
        assert code == 250, text
    except (ssl.SSLError, OSError, EOFError):
        pass   # refusing the handshake is also safe; what matters is below
    c.close()
    settle(p)
    assert p.messages(ALICE) == []
    assert "from=<evil@example.org>" not in p.log()
    assert_alive(p)
    p.stop()


# --- relay and unknown users ---------------------------------------------------------------

def test_relay_denied_foreign_domain():
    p = primary()
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    for rcpt in ("bob@example.org", "victim@gmail.example", "alice@EXAMPLE.ORG",
                 "alice@example.test.example.org", "alice@sub.example.test",
                 "@example.test:bob@example.org", "alice@[127.0.0.1]"):
        code, text = c.cmd("RCPT TO:<%s>" % rcpt)
        assert code in (550, 554), "RCPT %s: %s" % (rcpt, text)
        if "@example.test" not in rcpt or rcpt.startswith("@"):
            assert code == 554 and "5.7.1" in text, "RCPT %s: %s" % (rcpt, text)
    for rcpt in ("bob%example.org@example.test", "\"bob@example.org\"@example.test",
                 "bob!example.org@example.test"):
        code, text = c.cmd("RCPT TO:<%s>" % rcpt)
        assert code in (501, 550, 553, 554), "RCPT %s: %s" % (rcpt, text)
    code, text = c.cmd("DATA")
    assert code in (503, 554), text
    c.close()
    assert p.queue_files() == []
    assert_alive(p)
    p.stop()


def test_unknown_local_user_550_511():
    p = primary()
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    code, text = c.cmd("RCPT TO:<nobody@example.test>")
    assert code == 550 and "5.1.1" in text, text
    code, text = c.cmd("RCPT TO:<%s>" % ALICE)
    assert code == 250, text
    assert "reason=" in p.log() and "nobody@example.test" in p.log(), "reject not logged"
    c.close()
    assert_alive(p)
    p.stop()


# --- over-long input -----------------------------------------------------------------------------

def test_command_line_over_512_500():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("NOOP " + "x" * 600)
    assert code == 500, "600-octet NOOP: %s" % text
    code, text = c.cmd("HELO " + "h" * 600)
    assert code == 500, "600-octet HELO: %s" % text
    # the session is still usable
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("EHLO client.example.org")[0] == 250
    code, text = send_message(c, b"Subject: after long\r\n\r\nstill fine\r\n")
    assert code == 250, text
    c.close()
    assert b"still fine" in wait_for(lambda: p.messages(ALICE), what="delivery")[0]
    assert_alive(p)
    p.stop()


def test_line_over_2048_without_newline_500():
    p = primary()
    c = greeted(p)
    c.send(b"NOOP " + b"z" * 5000)          # no line end at all
    code, text = c.reply()
    assert code == 500, text
    c.send(b"z" * 100 + b"\r\n")             # the rest of that line is skipped
    code, text = c.cmd("NOOP")
    assert code == 250, text
    no_more_replies(c)
    code, text = send_message(c, b"Subject: after huge line\r\n\r\nusable\r\n")
    assert code == 250, text
    c.close()
    wait_for(lambda: p.messages(ALICE), what="delivery")
    assert_alive(p)
    p.stop()


def test_local_part_over_64_501():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("MAIL FROM:<%s@example.org>" % ("a" * 65))
    assert code == 501, "MAIL with 65-octet local part: %s" % text
    assert c.cmd("MAIL FROM:<%s@example.org>" % ("a" * 64))[0] == 250
    code, text = c.cmd("RCPT TO:<%s@example.test>" % ("b" * 65))
    assert code == 501, "RCPT with 65-octet local part: %s" % text
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert_alive(p)
    p.stop()


def test_domain_over_255_501():
    p = primary()
    c = greeted(p)
    long_dom = ".".join(["d" * 63] * 4) + ".example"   # 264 octets, labels legal
    assert len(long_dom) > 255
    code, text = c.cmd("MAIL FROM:<carol@%s>" % long_dom)
    assert code == 501, "MAIL with %d-octet domain: %s" % (len(long_dom), text)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    code, text = c.cmd("RCPT TO:<alice@%s>" % long_dom)
    assert code == 501, "RCPT with %d-octet domain: %s" % (len(long_dom), text)
    code, text = c.cmd("RCPT TO:<alice@%s.example>" % ("l" * 64))
    assert code == 501, "RCPT with a 64-octet label: %s" % text
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert_alive(p)
    p.stop()


def test_too_many_recipients_452():
    users = ("alice", "bob", "carol", "dave")
    p = primary(users=users, extra={"smtp": {"max_recipients": "3"}})
    c = greeted(p)
    assert c.cmd("MAIL FROM:<erin@example.org>")[0] == 250
    for u in users[:3]:
        assert c.cmd("RCPT TO:<%s@example.test>" % u)[0] == 250
    code, text = c.cmd("RCPT TO:<dave@example.test>")
    assert code == 452 and "4.5.3" in text, text
    assert c.cmd("DATA")[0] == 354
    code, text = c.cmd("Subject: many\r\n\r\nto three\r\n.")
    assert code == 250, text
    c.close()
    for u in users[:3]:
        wait_for(lambda: p.messages("%s@example.test" % u), what="delivery to " + u)
    settle(p)
    assert p.messages("dave@example.test") == []
    assert_alive(p)
    p.stop()


def test_text_line_over_1000_552():
    p = primary()
    c = greeted(p)
    # 998 octets + CRLF = 1000: the longest legal line
    code, text = send_message(c, b"Subject: ok\r\n\r\n" + b"a" * 998 + b"\r\n")
    assert code == 250, "1000-octet line: %s" % text
    # 999 octets + CRLF = 1001: too long
    code, text = send_message(c, b"Subject: long\r\n\r\n" + b"b" * 999 + b"\r\n")
    assert code == 552, "1001-octet line: %s" % text
    code, text = send_message(c, b"Subject: longer\r\n\r\n" + b"c" * 50000 + b"\r\n")
    assert code == 552, "50000-octet line: %s" % text
    assert c.cmd("NOOP")[0] == 250
    c.close()
    wait_for(lambda: p.messages(ALICE), what="delivery")
    settle(p)
    msgs = p.messages(ALICE)
    assert len(msgs) == 1 and b"a" * 998 + b"\n" in msgs[0], [m[:100] for m in msgs]
    assert_alive(p)
    p.stop()


# --- synchronisation ----------------------------------------------------------------------------

def test_pipelining_without_ehlo_554():
    p = primary()
    c = greeted(p, ehlo=None)
    code, text = c.cmd("HELO client.example.org")
    assert code == 250, text
    c.send(b"MAIL FROM:<carol@example.org>\r\nRCPT TO:<alice@example.test>\r\n")
    code, text = c.reply()
    assert code == 554 and "5.5.0" in text, text
    assert c.closed(), "connection still open after the synchronisation error"
    c.close()
    settle(p)
    assert p.queue_files() == [] and p.messages(ALICE) == []
    assert_alive(p)
    p.stop()


def test_command_after_data_without_pipelining_554():
    """Without PIPELINING the DATA command may not carry the message with it."""
    p = primary()
    c = greeted(p, ehlo=None)
    assert c.cmd("HELO client.example.org")[0] == 250
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    c.send(b"DATA\r\nSubject: early\r\n\r\ntoo early\r\n.\r\n")
    code, text = c.reply()
    assert code == 554 and "5.5.0" in text, text
    assert c.closed()
    c.close()
    settle(p)
    assert p.messages(ALICE) == []
    assert_alive(p)
    p.stop()


def test_talking_before_greeting_554():
    # [smtp] greet_pause delays the banner; a client that talks first is a
    # protocol violator (RFC 5321 4.3.1 / postscreen's pregreet test).
    p = Server(role="primary", extra={"smtp": {"greet_pause": "1500ms"}})
    p.setup_domain(users=("alice",))
    # lib's readiness probe waits only 0.5s for the banner; probe with a bare connect
    p.start(wait=False)

    def listening():
        assert p.proc.poll() is None, "tandem exited at start:\n" + p.log()
        try:
            socket.create_connection((p.ip, p.port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(listening, timeout=20, what="tandem to listen")
    c = Conn(p.ip, p.port, timeout=10)
    c.send(b"EHLO eager.example.org\r\n")
    code, text = c.reply()
    assert code == 554 and "5.5.0" in text, text
    assert c.closed()
    c.close()
    # a patient client gets the greeting after the pause
    t0 = time.monotonic()
    c = Conn(p.ip, p.port, timeout=10)
    code, text = c.reply()
    assert code == 220, text
    assert time.monotonic() - t0 >= 1.0, "greeting came before greet_pause"
    c.close()
    assert_alive(p)
    p.stop()


# --- mail loops ----------------------------------------------------------------------------------

def received_lines(n):
    return b"".join(b"Received: from hop%d.example.org by hop%d.example.org; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1) for i in range(n))


def test_mail_loop_101_received_554():
    p = primary()
    c = greeted(p)
    code, text = send_message(c, received_lines(101) + b"Subject: loop\r\n\r\nloop\r\n")
    assert code == 554 and "5.4.6" in text, "101 Received: %s" % text
    code, text = send_message(c, received_lines(100) + b"Subject: nearly\r\n\r\nnot yet a loop\r\n")
    assert code == 250, "100 Received: %s" % text
    c.close()
    msgs = wait_for(lambda: p.messages(ALICE), what="delivery")
    settle(p)
    msgs = p.messages(ALICE)
    assert len(msgs) == 1 and b"not yet a loop" in msgs[0]
    assert_alive(p)
    p.stop()


# --- NUL bytes and garbage --------------------------------------------------------------------

def test_nul_bytes_in_commands():
    p = primary()
    c = greeted(p)
    for line in (b"NOOP\0\r\n", b"\0\r\n", b"EHLO foo\0bar\r\n",
                 b"MAIL FROM:<carol\0@example.org>\r\n"):
        c.send(line)
        code, text = c.reply()
        assert code in (500, 501), "%r: %s" % (line, text)
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    c.send(b"RCPT TO:<alice@example.test\0>\r\n")
    code, text = c.reply()
    assert code in (500, 501), text
    c.close()
    assert_alive(p)
    p.stop()


def test_binary_garbage():
    p = primary()
    rnd = random.Random(20240229)
    for round_ in range(5):
        c = greeted(p, ehlo="garbage.example.org" if round_ % 2 else None)
        garbage = bytes(rnd.randrange(256) for _ in range(rnd.choice((100, 3000, 20000))))
        try:
            c.send(garbage)
            c.send(b"\r\n")
        except OSError:
            pass   # the server may close on us halfway; fine
        # read whatever comes back until close or quiet
        c.s.settimeout(2)
        data = c.buf
        try:
            while True:
                d = c.s.recv(65536)
                if not d:
                    break
                data += d
        except (socket.timeout, ConnectionResetError):
            pass
        for line in data.split(b"\r\n"):
            if line:
                assert re.match(rb"^[45]\d\d[ -]", line), "reply to garbage: %r" % line
        c.close()
        assert_alive(p)
    settle(p)
    assert p.queue_files() == [] and p.messages(ALICE) == []
    p.stop()


def test_binary_garbage_inside_data():
    """All 256 byte values in the body (CRLF-framed): no crash; a clear reply."""
    p = primary()
    c = greeted(p)
    start_data(c)
    body = b"Subject: bytes\r\n\r\n"
    for i in range(0, 256, 16):
        chunk = bytes(range(i, i + 16)).replace(b"\r", b"").replace(b"\n", b"")
        body += chunk + b"\r\n"
    c.send(body + b".\r\n")
    code, text = c.reply()
    assert code == 250 or 500 <= code < 600, text
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert_alive(p)
    p.stop()


# --- disconnects and error limits -----------------------------------------------------------

def test_disconnect_mid_data_nothing_delivered():
    p = primary()
    for how in ("close", "rst"):
        c = greeted(p)
        start_data(c)
        c.send(b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 200 + b"no end")
        if how == "rst":
            c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    wait_for(lambda: p.log().count("event=disconnect") >= 2 and
             p.log().count("event=disconnect") == p.log().count("event=connect"),
             timeout=5, what="both sessions' disconnects logged")
    assert "state=data" in p.log(), "the lost connection in DATA is not logged"
    settle(p)
    assert p.messages(ALICE) == []
    assert queue_json(p) == []
    for sub in ("active", "deferred", "hold", "incoming", "tmp"):
        assert p.queue_files(sub) == [], "leftover in queue/%s: %r" % (sub, p.queue_files(sub))
    assert_alive(p)
    p.stop()


def test_too_many_errors_421():
    p = primary(extra={"smtp": {"max_errors": "3"}})
    c = greeted(p)
    codes = []
    closed = False
    for i in range(5):
        try:
            c.send("BOGUS%d\r\n" % i)
            code, text = c.reply()
        except (EOFError, OSError):
            closed = True
            break
        codes.append(code)
        if code == 421:
            closed = c.closed()
            break
    assert 421 in codes, "no 421 after repeated errors: %r" % codes
    assert codes.index(421) <= 3, "421 came late: %r" % codes
    assert closed, "connection open after 421"
    c.close()
    assert "too_many_errors" in p.log()
    assert_alive(p)
    p.stop()
