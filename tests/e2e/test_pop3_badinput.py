"""POP3 under bad input and abuse (issue 8 item 5): over-long lines, NUL,
pipelined commands answered in order, commands pipelined behind STLS
thrown away, the plaintext rule, a client that never reads its RETR, a
50 MB message streamed without being held in memory, password guessing,
the per-user-and-address limit, the error cap, the autologout, shutdown.
"""
import base64
import hashlib
import os
import select
import socket
import time

import lib
from lib import rss_kib
from lib import wait_for
from test_pop3 import (ALICE, BOB, PASSWORD, POP3_PORT, POP3S_PORT, Raw, deliver, login,
                       mailbox_files, pop3_server, raw_login, tls_context, unstuff,
                       write_message)



def test_over_long_lines_get_err_and_the_session_goes_on():
    p = pop3_server()
    r = Raw(p)
    # RFC 2449 says 255 octets; a little more is still a command
    assert r.cmd("USER " + "a" * 300 + "@example.test") == b"+OK"
    assert r.cmd("CAPA " + "x" * 600) == b"-ERR Line too long"
    # a line of 100 KB, in pieces, then a good command
    r.send("NOOP " + "y" * 50000)
    r.send("z" * 50000 + "\r\nCAPA\r\n")
    assert r.line() == b"-ERR Line too long"
    assert r.line() == b"+OK Capability list follows"
    r.multi()
    assert r.cmd("USER " + ALICE) == b"+OK"
    assert r.cmd("PASS " + PASSWORD).startswith(b"+OK")
    r.cmd("QUIT")
    p.stop()


def test_nul_in_a_command_is_refused():
    p = pop3_server()
    r = Raw(p)
    r.send(b"US\0ER alice@example.test\r\n")
    assert r.line() == b"-ERR NUL character in command"
    r.send(b"USER alice@example.test\0\r\n")
    assert r.line() == b"-ERR NUL character in command"
    r.send(b"AUTH PLAIN\r\n")
    assert r.line() == b"+ "
    r.send(b"AG\0Fs\r\n")
    assert r.line().startswith(b"-ERR [AUTH]")
    assert r.cmd("USER " + ALICE) == b"+OK"
    assert r.cmd("PASS " + PASSWORD).startswith(b"+OK")
    r.cmd("QUIT")
    p.stop()


def test_pipelined_commands_are_answered_in_order():
    p = pop3_server()
    for i in range(3):
        deliver(p, ALICE, "Subject: m%d\r\n\r\nbody %d\r\n.line\r\n" % (i, i))
    r = Raw(p)
    r.send("CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nRETR 1\r\nUIDL 2\r\nTOP 3 0\r\n"
           "DELE 1\r\nRETR 1\r\nNOOP\r\nRSET\r\nSTAT\r\nQUIT\r\n" % (ALICE, PASSWORD))
    assert r.line() == b"+OK Capability list follows"
    assert b"PIPELINING" in r.multi()[0]
    assert r.line() == b"+OK"
    assert r.line().startswith(b"+OK Logged in, 3 messages")
    assert r.line().startswith(b"+OK 3 ")
    assert r.line().startswith(b"+OK 3 messages")
    assert len(r.multi()[0]) == 3
    assert r.line().startswith(b"+OK")
    lines, _ = r.multi()
    assert b"Subject: m0" in lines and b"..line" in lines
    assert r.line().startswith(b"+OK 2 ")
    assert r.line() == b"+OK"
    lines, _ = r.multi()
    assert b"Subject: m2" in lines and lines[-1] == b""
    assert r.line() == b"+OK Message 1 deleted"
    assert r.line() == b"-ERR Message 1 already deleted"
    assert r.line() == b"+OK"
    assert r.line().startswith(b"+OK Maildrop has 3 messages")
    assert r.line().startswith(b"+OK 3 ")
    assert r.line() == b"+OK Bye"
    assert r.closed()
    p.stop()


def test_commands_pipelined_behind_stls_are_discarded():
    p = pop3_server()
    r = Raw(p)
    # USER before STLS is forgotten after it (RFC 2595 §4)
    assert r.cmd("USER " + ALICE) == b"+OK"
    r.send("STLS\r\nCAPA\r\nPASS %s\r\n" % PASSWORD)
    assert r.line() == b"+OK Begin TLS negotiation now"
    assert r.pending() == b""
    r.starttls()
    # had CAPA or PASS been kept, their replies would come before this one
    assert r.cmd("PASS " + PASSWORD) == b"-ERR USER first"
    assert r.cmd("CAPA") == b"+OK Capability list follows"
    caps = r.multi()[0]
    assert b"STLS" not in caps and b"USER" in caps, caps
    assert r.cmd("STLS") == b"-ERR Command not permitted when TLS active"
    assert r.cmd("USER " + ALICE) == b"+OK"
    assert r.cmd("PASS " + PASSWORD).startswith(b"+OK Logged in")
    r.cmd("QUIT")
    wait_for(lambda: "tls=yes" in p.log(), what="the login over TLS")
    p.stop()


def test_no_plaintext_password_without_tls_where_auth_plaintext_says_never():
    p = pop3_server(extra={"auth": {"plaintext": "never"}})
    r = Raw(p)
    assert r.cmd("CAPA").startswith(b"+OK")
    caps = r.multi()[0]
    assert b"STLS" in caps and b"USER" not in caps, caps
    assert not any(c.startswith(b"SASL") for c in caps), caps
    msg = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections"
    assert r.cmd("USER " + ALICE) == msg
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PASSWORD.encode()).decode()
    assert r.cmd("AUTH PLAIN " + plain) == msg
    assert r.cmd("AUTH LOGIN") == msg
    assert r.cmd("AUTH") == b"+OK"
    assert r.multi()[0] == []
    assert r.cmd("STLS").startswith(b"+OK")
    r.starttls()
    assert r.cmd("CAPA").startswith(b"+OK")
    caps = r.multi()[0]
    assert b"USER" in caps and b"SASL PLAIN LOGIN" in caps, caps
    assert r.cmd("AUTH PLAIN " + plain).startswith(b"+OK Logged in")
    r.cmd("QUIT")
    c = login(p, tls=True)
    c.quit()
    assert "event=login service=pop3" in p.log()
    p.stop()


def test_a_client_that_never_reads_its_retr_keeps_memory_bounded():
    p = pop3_server()
    big = b"Subject: big\n\n" + (b"x" * 998 + b"\n") * (32 * 1024)   # 32 MB
    write_message(p, ALICE, "1700000001.M1P1.big", big)
    r = raw_login(p)
    base = rss_kib(p.proc.pid)
    r.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    r.send("RETR 1\r\n")
    # the server fills the socket buffers and its watermark, then waits:
    # its log shows no end of the session and it keeps serving others
    other = raw_login(p, BOB)
    assert other.cmd("STAT") == b"+OK 0 0"
    other.cmd("QUIT")
    grown = rss_kib(p.proc.pid) - base
    if not lib.ASAN:
        assert grown < 16 * 1024, "server grew by %d KiB with a 32 MB RETR unread" % grown
    # now read it all: every byte arrives
    assert r.line().startswith(b"+OK ")
    lines, octets = r.multi()
    assert octets == len(big) + big.count(b"\n")
    assert r.cmd("QUIT") == b"+OK Bye"
    p.stop()


def test_a_50_mb_message_streams_whole_and_exact():
    p = pop3_server()
    body = os.urandom(36 << 20)
    enc = base64.encodebytes(body)      # 76-char lines with LF: ~49 MB
    msg = (b"Subject: huge\nContent-Type: application/octet-stream\n"
           b"Content-Transfer-Encoding: base64\n\n" + enc)
    write_message(p, ALICE, "1700000002.M1P1.huge", msg)
    r = raw_login(p)
    r.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    assert r.cmd("LIST 1") == b"+OK 1 %d" % (len(msg) + msg.count(b"\n"))
    base = rss_kib(p.proc.pid)
    r.send("RETR 1\r\n")
    assert r.line() == b"+OK %d octets" % (len(msg) + msg.count(b"\n"))
    h = hashlib.sha256()
    got, peak = 0, 0
    while True:
        ln = r.line()
        if ln == b".":
            break
        if got % 64 == 0:
            peak = max(peak, rss_kib(p.proc.pid) - base)
        got += 1
        h.update(ln + b"\n")
    assert h.hexdigest() == hashlib.sha256(msg).hexdigest()
    if not lib.ASAN:
        assert peak < 16 * 1024, "server grew by %d KiB streaming 50 MB" % peak
    assert r.cmd("QUIT") == b"+OK Bye"
    p.stop()


def test_password_guessing_is_delayed_and_logged_once_per_failure():
    p = pop3_server()
    r = Raw(p)
    for i in range(4):
        assert r.cmd("USER " + ALICE) == b"+OK"
        assert r.cmd("PASS wrong%d" % i) == b"-ERR [AUTH] Authentication failed"
    wait_for(lambda: p.log().count("event=auth_failed service=pop3") >= 4, what="4 failure lines")
    assert p.log().count("event=auth_failed service=pop3") == 4
    assert r.cmd("USER " + ALICE) == b"+OK"
    assert r.cmd("PASS " + PASSWORD).startswith(b"+OK Logged in")
    r.cmd("QUIT")
    p.stop()


def test_sessions_of_one_user_from_one_address_are_limited():
    p = pop3_server(extra={"pop3": {"max_connections_per_user_ip": "1"}})
    first = raw_login(p)
    second = Raw(p)
    assert second.cmd("USER " + ALICE) == b"+OK"
    assert second.cmd("PASS " + PASSWORD) == \
        b"-ERR [IN-USE] Too many sessions for this user from your address"
    assert "reason=too_many_sessions_per_user_ip" in p.log()
    # another user from the same address is not concerned
    assert second.cmd("USER " + BOB) == b"+OK"
    assert second.cmd("PASS " + PASSWORD).startswith(b"+OK")
    second.cmd("QUIT")
    first.cmd("QUIT")
    p.stop()


def test_ten_errors_close_the_session():
    p = pop3_server()
    r = Raw(p)
    for i in range(9):
        assert r.cmd("BOGUS%d" % i) == b"-ERR Unknown command"
    assert r.cmd("BOGUS") == b"-ERR Unknown command"
    assert r.line() == b"-ERR Too many errors, closing connection"
    assert r.closed()
    assert "reason=too_many_errors" in p.log()
    p.stop()


def test_an_idle_session_is_logged_out_without_its_deletions():
    p = pop3_server(extra={"pop3": {"timeout": "60s"}})
    deliver(p, ALICE, "Subject: a\r\n\r\nx\r\n")
    r = raw_login(p)
    r.s.settimeout(300)
    assert r.cmd("DELE 1").startswith(b"+OK")
    # nothing more from us: the server ends it after [pop3] timeout
    assert r.line() == b"-ERR [SYS/TEMP] Autologout: idle for too long"
    assert r.closed()
    wait_for(lambda: "quit=no" in p.log(), what="logout line")
    assert len(mailbox_files(p, ALICE)) == 1
    p.stop()


def test_shutdown_ends_sessions_without_their_deletions():
    p = pop3_server()
    deliver(p, ALICE, "Subject: a\r\n\r\nx\r\n")
    r = raw_login(p)
    assert r.cmd("DELE 1").startswith(b"+OK")
    a = Raw(p, port=POP3S_PORT, greet=False)
    a.s = tls_context(p).wrap_socket(a.s)
    assert a.line().startswith(b"+OK")
    p.stop()
    # the goodbye may be lost to the close; the connection ends either way
    for c in (r, a):
        try:
            assert c.line() == b"-ERR [SYS/TEMP] Server shutting down"
        except (EOFError, ConnectionResetError):
            pass
    assert "quit=no" in p.log()
    assert len(mailbox_files(p, ALICE)) == 1


def test_connections_over_pop3_max_connections_get_sys_temp():
    p = pop3_server(extra={"pop3": {"max_connections": "1"}})
    first = Raw(p)
    second = Raw(p, greet=False)
    assert second.line() == b"-ERR [SYS/TEMP] Too many connections, try again later"
    assert second.closed()
    assert first.cmd("USER " + ALICE) == b"+OK"
    first.cmd("QUIT")
    assert "reason=too_many_connections" in p.log()
    p.stop()


def test_a_message_file_removed_under_a_session_is_an_err_not_a_crash():
    p = pop3_server()
    deliver(p, ALICE, "Subject: a\r\n\r\nx\r\n")
    deliver(p, ALICE, "Subject: b\r\n\r\ny\r\n")
    r = raw_login(p)
    for f in mailbox_files(p, ALICE):
        os.unlink(f)
    assert r.cmd("RETR 1").startswith(b"-ERR")
    assert r.cmd("TOP 2 0").startswith(b"-ERR")
    assert r.cmd("DELE 1").startswith(b"+OK")
    assert r.cmd("QUIT") == b"+OK Bye"
    assert r.closed()
    assert p.proc.poll() is None
    c = login(p)
    assert c.stat()[0] == 0
    c.quit()
    p.stop()
