"""IMAP bad input and limits (issue 8, item 5), each with raw sockets: a
literal over the limit refused before any "+" and without allocating its
size, an over-long line, 1000-deep parentheses, NUL in a quoted string,
commands pipelined after STARTTLS, the per-user-per-address session limit,
and folder names that try to leave the account. The memory of idle
sessions is measured too."""
import imaplib
import os
import socket
import threading
import time

import lib
from lib import rss_kib
from imap_util import ALICE, BOB, PASSWORD, IMAP_PORT, IMAPS_PORT, Raw, imap_server, login, raw_login, tls_context



def test_literal_over_the_limit_is_refused_before_any_continuation():
    s = imap_server()
    before = rss_kib(s.proc.pid)
    r = Raw(s.ip)
    r.line()
    # before login too: nothing is allocated for the declared size
    r.send("a LOGIN {999999999}\r\n")
    line = r.line()
    assert line.startswith("a NO [TOOBIG]"), line
    out = r.cmd("l", "LOGIN %s %s" % (ALICE, PASSWORD))
    assert out[-1].startswith("l OK"), out
    r.send("b APPEND INBOX {999999999}\r\n")
    line = r.line()
    assert line.startswith("b NO [TOOBIG]"), line
    # a synchronising literal within the limit gets its "+"
    r.send("c APPEND INBOX {20}\r\n")
    assert r.line().startswith("+ ")
    r.send("Subject: x\r\n\r\nhello\r\n")
    assert r.until("c ")[-1].startswith("c OK [APPENDUID"), r.buf
    assert r.cmd("d", "NOOP")[-1].startswith("d OK")
    # a non-synchronising literal over the limit ends the session
    r.send("e APPEND INBOX {999999999+}\r\nxx")
    assert r.until("* BYE")[-1].startswith("* BYE [TOOBIG]")
    assert r.closed()
    assert rss_kib(s.proc.pid) - before < 20 * 1024, "no allocation of the declared size"
    s.stop()


def test_long_lines_deep_parens_and_nul_get_bad_and_the_session_goes_on():
    s = imap_server()
    r = raw_login(s)
    r.cmd("s", "SELECT INBOX")
    r.send("a NOOP " + "x" * 70000 + "\r\n")
    assert r.until("a BAD")[-1].startswith("a BAD")
    assert r.cmd("b", "NOOP")[-1].startswith("b OK")
    r.send("c SEARCH " + "(" * 1000 + "ALL" + ")" * 1000 + "\r\n")
    assert r.until("c BAD")[-1].startswith("c BAD")
    assert r.cmd("d", "NOOP")[-1].startswith("d OK")
    r.send(b'e LOGIN "ali\x00ce" "x"\r\n')
    assert r.until("e BAD")[-1].startswith("e BAD")
    r.send(b"f SELECT {3}\r\n")
    assert r.line().startswith("+ ")
    r.send(b"a\x00b\r\n")
    assert r.until("f ")[-1].startswith(("f BAD", "f NO"))
    assert r.cmd("g", "NOOP")[-1].startswith("g OK")
    r.close()
    s.stop()


def test_commands_pipelined_after_starttls_are_discarded():
    s = imap_server()
    sock = socket.create_connection((s.ip, IMAP_PORT), timeout=10)
    r = Raw(s.ip, sock=sock)
    r.line()
    r.send("a STARTTLS\r\nb LOGIN %s %s\r\n" % (ALICE, PASSWORD))
    assert r.until("a ")[-1].startswith("a OK")
    assert r.buf == b"", r.buf
    tls = tls_context(s).wrap_socket(sock, server_hostname="mx1.example.test")
    t = Raw(s.ip, sock=tls)
    out = t.cmd("c", "NOOP")
    assert out == ["c OK NOOP completed"], out          # nothing answered "b"
    assert t.cmd("d", "SELECT INBOX")[-1].startswith("d BAD")   # not logged in
    assert t.cmd("e", "STARTTLS")[-1].startswith("e BAD")
    t.close()
    assert "user=<alice@example.test>" not in s.log().split("event=stopping")[0] or \
        "event=login" not in s.log()
    s.stop()


def test_sessions_per_user_and_address_are_limited():
    s = imap_server(extra={"imap": {"max_connections_per_user_ip": "2"}})
    a = login(s)
    # imap and imaps count together
    b = imaplib.IMAP4_SSL(s.ip, IMAPS_PORT, ssl_context=tls_context(s))
    assert b.login(ALICE, PASSWORD)[0] == "OK"
    r = Raw(s.ip)
    r.line()
    out = r.cmd("x", "LOGIN %s %s" % (ALICE, PASSWORD))
    assert out[-1].startswith("x NO [LIMIT]"), out
    # another user is not counted against alice
    out = r.cmd("y", "LOGIN %s %s" % (BOB, PASSWORD))
    assert out[-1].startswith("y OK"), out
    a.logout()
    lib.wait_for(lambda: s.log().count("event=logout service=imap user=<alice@") >= 1,
                 what="the first session's end")
    c = login(s)
    c.logout()
    b.logout()
    r.close()
    assert "reason=too_many_sessions_per_user_ip" in s.log()
    s.stop()


BAD_NAMES = ["..", "../alice", "../../example.test/alice/.Secret", "INBOX/../x", "INBOX/..",
             "/Secret", "Secret/", "./Secret", "&Lw-", "&Lw-Secret", "INBOX&Lw-..&Lw-alice",
             "&AC4ALg-", "a\\b", "~alice", "\u00e9".encode("utf-8").decode("latin-1")]


def test_folder_names_never_leave_the_account():
    s = imap_server()
    a = login(s)
    assert a.create("Secret")[0] == "OK"
    assert a.append("Secret", None, None, b"Subject: alice only\r\n\r\nprivate\r\n")[0] == "OK"
    a.logout()
    r = raw_login(s, BOB)
    for name in BAD_NAMES + ["Secret", ".Secret", "%2f", "alice", "example.test"]:
        q = '"%s"' % name.replace("\\", "\\\\")
        for cmd in ("SELECT", "EXAMINE", "STATUS %s (MESSAGES)", "DELETE", "CREATE", "APPEND %s {1+}\r\nx"):
            line = cmd % q if "%s" in cmd else "%s %s" % (cmd, q)
            out = r.cmd("t", line)
            if cmd == "CREATE" and out[-1].startswith("t OK"):
                continue   # a name of bob's own (e.g. "%2f", stored encoded)
            assert not any("alice only" in o for o in out), out
            if cmd in ("SELECT", "EXAMINE"):
                assert not out[-1].startswith("t OK") or "* 0 EXISTS" in out, (line, out)
    # a NUL inside a name, as a literal
    r.send("u SELECT {3}\r\n")
    assert r.line().startswith("+")
    r.send(b"a\x00b\r\n")
    assert not r.until("u ")[-1].startswith("u OK")
    out = r.cmd("v", 'LIST "" "*"')
    assert not any("Secret" in o and "alice" in o for o in out), out
    r.close()
    # on disk: nothing outside the two accounts, alice's folder intact
    mail = os.path.join(s.data_dir, "mail")
    for root, dirs, files in os.walk(mail):
        rel = os.path.relpath(root, mail)
        assert rel in (".", "example.test") or rel.startswith(("example.test/alice",
                                                               "example.test/bob")), rel
    a = login(s)
    assert a.status("Secret", "(MESSAGES)")[1] == [b'"Secret" (MESSAGES 1)']
    a.logout()
    s.stop()


def test_memory_of_idle_logged_in_sessions():
    if lib.ASAN:
        return
    s = imap_server(extra={"imap": {"max_connections_per_user_ip": "0"},
                           "server": {"max_connections_per_client": "0",
                                      "max_connections_per_net": "0"}})
    warm = [raw_login(s) for _ in range(5)]
    for r in warm:
        r.cmd("s", "SELECT INBOX")
    before = rss_kib(s.proc.pid)
    conns = []
    for _ in range(100):
        r = raw_login(s)
        r.cmd("s", "SELECT INBOX")
        conns.append(r)
    after = rss_kib(s.proc.pid)
    per = (after - before) * 1024 / 100
    print("IMAP idle session: %.0f bytes of RSS each (100 sessions)" % per)
    assert per < 64 * 1024, per
    for r in conns + warm:
        r.close()
    s.stop()


def test_too_many_bad_commands_and_too_many_connections_end_the_session():
    s = imap_server(extra={"imap": {"max_connections": "2"}})
    r = Raw(s.ip)
    r.line()
    for i in range(19):
        assert r.cmd("t%d" % i, "BOGUS")[-1].startswith("t%d BAD" % i)
    r.send("last BOGUS\r\n")
    assert r.until("* BYE")[-1] == "* BYE Too many invalid commands"
    assert r.closed()
    r.close()
    a = Raw(s.ip)
    b = Raw(s.ip)
    assert a.line().startswith("* OK") and b.line().startswith("* OK")
    c = Raw(s.ip)
    assert c.line().startswith("* BYE [UNAVAILABLE]")
    assert c.closed()
    for x in (a, b, c):
        x.close()
    s.stop()


def test_a_client_that_does_not_log_in_is_closed_on_imap_and_pop3():
    """Before login a line may take 60 s and the whole session 120 s: a
    client that says nothing is logged out at the first limit, one that
    sends a command every 20 s (each line in time: NOOP, CAPA) at the second, on IMAP and
    on POP3 alike; both get a last line that says why."""
    s = imap_server(extra={"listen": {"pop3": "%s:%d" % (lib.addr("127.0.0.10"), 1110)}})
    got = {}

    def last_line(name, port, greeting, noop):
        sock = socket.create_connection((s.ip, port), timeout=200)
        buf = b""
        lines = []
        try:
            next_noop = 0.0
            sock.settimeout(1)
            stop = time.monotonic() + 200
            while time.monotonic() < stop:
                if noop and time.monotonic() >= next_noop and lines:
                    sock.sendall(noop)
                    next_noop = time.monotonic() + 20
                try:
                    d = sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not d:
                    break
                buf += d
                while b"\n" in buf:
                    ln, buf = buf.split(b"\n", 1)
                    lines.append(ln.rstrip(b"\r").decode())
            got[name] = lines
        finally:
            sock.close()
        assert lines and lines[0].startswith(greeting), lines

    jobs = [("imap silent", IMAP_PORT, "* OK", None),
            ("imap noop", IMAP_PORT, "* OK", b"n NOOP\r\n"),
            ("pop3 silent", 1110, "+OK", None),
            ("pop3 noop", 1110, "+OK", b"CAPA\r\n")]
    threads = [threading.Thread(target=last_line, args=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert got["imap silent"][-1] == "* BYE Autologout; idle for too long", got
    assert got["imap noop"][-1] == "* BYE Autologout; no login in time", got
    assert any(x.startswith("n OK") for x in got["imap noop"]), got
    assert got["pop3 silent"][-1] == "-ERR [SYS/TEMP] Autologout: idle for too long", got
    assert got["pop3 noop"][-1] == "-ERR [SYS/TEMP] Autologout: no login in time", got
    assert "+OK Capability list follows" in got["pop3 noop"], got
    log = s.log()
    assert "event=timeout service=imap" in log and "state=login limit=session" in log
    assert "state=authorization limit=session" in log
    s.stop()
