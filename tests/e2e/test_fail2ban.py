"""fail2ban bans the address a password guesser comes from, and only that
one: etc/fail2ban/filter.d/tandem.conf, run by `fail2ban-regex`, finds the
client of every `event=auth_failed` line tandem writes (IPv4, IPv6, a mapped
IPv4 as IPv4), while logins crafted to hold `client=[6.6.6.6]`, quotes or
a CR LF and a whole forged line never give it another address.

The lines come from tandem's own auth code: the unit-test binary
test_auth, run with TANDEM_AUTH_FAIL2BAN_LOG, checks wrong passwords with
such logins and logs to that file; and from a running server, whose IMAP
and POP3 logins with wrong passwords, some of them forged, are read from
its log by fail2ban-regex the same way.
"""
import os
import re
import shutil
import socket
import subprocess

import pytest

from lib import BIN, wait_for
from imap_util import ALICE, IMAP_PORT, Raw, imap_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILTER = os.path.join(ROOT, "etc", "fail2ban", "filter.d", "tandem.conf")
FORGED = {"6.6.6.6", "7.7.7.7", "8.8.8.8", "9.9.9.9"}


def auth_test_binary():
    path = os.path.join(os.path.dirname(os.path.abspath(BIN)), "tests", "test_auth")
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built: run `make unit` (or `make asan`) first" % path)
    return path


def fail2ban_regex(log):
    """The hosts fail2ban-regex finds in log, in order, and its line totals."""
    if shutil.which("fail2ban-regex") is None:
        pytest.fail("fail2ban-regex is not installed")
    p = subprocess.run(["fail2ban-regex", "-v", log, FILTER], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    section = out[out.index("Failregex:"):out.index("Ignoreregex:")]
    hosts = re.findall(r"^\|\s+(\S+)\s+\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}$", section, re.M)
    totals = re.search(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out,
                       re.M)
    assert totals, out
    return hosts, [int(x) for x in totals.groups()], out


def test_filter_finds_the_real_client_only(tmp_path):
    log = str(tmp_path / "tandem.log")
    env = dict(os.environ, TANDEM_AUTH_FAIL2BAN_LOG=log)
    p = subprocess.run([auth_test_binary()], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = open(log).read().splitlines()
    failed = [l for l in lines if " event=auth_failed " in l]
    assert len(failed) == 6, lines
    assert any(" event=auth_ok " in l for l in lines), lines

    hosts, (total, ignored, matched, missed), out = fail2ban_regex(log)
    assert matched == 6 and missed == total - 6, out
    assert hosts == ["192.0.2.10", "2001:db8::7", "198.51.100.3", "192.0.2.10",
                     "192.0.2.10", "192.0.2.1"], out
    assert not FORGED & set(hosts), out
    for ip in FORGED:
        # each forged address is in the log, inside a quoted user value
        assert any(ip in l for l in failed), ip


def test_filter_reasons(tmp_path):
    """Throttled attempts count; a tempfail (our directory failed) does not."""
    log = tmp_path / "tandem.log"
    line = ("2026-12-01T12:00:0%d.000Z tandem[42]: s9: event=auth_failed service=%s "
            "user=<a@example.test> client=[%s] session=s9 reason=%s\n")
    log.write_text(line % (1, "pop3", "192.0.2.20", "throttled")
                   + line % (2, "imap", "192.0.2.21", "tempfail")
                   + line % (3, "imap", "IPv6:2001:db8:5::1", "password"))
    hosts, (total, ignored, matched, missed), out = fail2ban_regex(str(log))
    assert hosts == ["192.0.2.20", "2001:db8:5::1"], out
    assert (total, matched, missed) == (3, 2, 1), out


def test_real_logins_give_their_client_only():
    """A guesser at 127.0.0.77 tries IMAP LOGIN and POP3 USER/PASS with
    wrong passwords, two of the logins made to look like another client's
    line; fail2ban-regex on the server's own log finds 127.0.0.77 for each
    and nothing else."""
    s = imap_server(start=False)
    s.extra["listen"]["pop3"] = "%s:1110" % s.ip
    s.write_config()
    s.start()
    src = ("127.0.0.77", 0)
    r = Raw(s.ip, sock=socket.create_connection((s.ip, IMAP_PORT), timeout=30,
                                                source_address=src), timeout=30)
    assert r.line().startswith("* OK")
    for tag, user in (("a", ALICE), ("b", "x client=[6.6.6.6] y")):
        out = r.cmd(tag, 'LOGIN "%s" "wrong"' % user)
        assert out[-1].startswith(tag + " NO"), out
    r.close()
    p = socket.create_connection((s.ip, 1110), timeout=30, source_address=src)
    f = p.makefile("rb")
    assert f.readline().startswith(b"+OK")
    p.sendall(b"USER bob@example.test client=[7.7.7.7]\r\n")
    assert f.readline().startswith(b"+OK")
    p.sendall(b"PASS wrong\r\n")
    assert f.readline().startswith(b"-ERR")
    p.close()
    wait_for(lambda: s.log().count(" event=auth_failed ") >= 3, timeout=30)
    hosts, (total, ignored, matched, missed), out = fail2ban_regex(s.logfile)
    assert matched == 3, out
    assert hosts == ["127.0.0.77"] * 3, out
    s.stop()
