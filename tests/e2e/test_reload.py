"""SIGHUP reloads: the config keys marked reloadable take effect without a
restart, the TLS certificate and key are read again, and the log file is
reopened for logrotate. Queue rescans stay on SIGUSR1.
"""
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import time

from lib import Conn, Server, wait_for

ALICE = "alice@example.test"


def make_cert(path_prefix, cn):
    cert, key = path_prefix + ".crt", path_prefix + ".key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + cn, "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def starttls_fingerprint(p):
    """The SHA-256 of the certificate a STARTTLS session is shown."""
    c = Conn(p.ip, p.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example.org")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(c.s, server_hostname="mx1.example.test")
    der = t.getpeercert(binary_form=True)
    t.close()
    return hashlib.sha256(der).hexdigest()


def rcpt_codes(p, n):
    c = Conn(p.ip, p.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example.org")[0] == 250
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    codes = [c.cmd("RCPT TO:<u%d@example.test>" % i)[0] for i in range(n)]
    c.cmd("QUIT")
    c.close()
    return codes


def reload(p, marker_count):
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: p.log().count("event=reloaded") > marker_count, what="reload logged")


def test_sighup_takes_new_max_recipients_and_certificate_without_restart():
    p = Server(role="primary")
    a_cert, a_key = make_cert(os.path.join(p.tmp, "a"), "mx1.example.test")
    b_cert, b_key = make_cert(os.path.join(p.tmp, "b"), "mx1.example.test")
    p.extra = {"smtp": {"max_recipients": "2"}, "tls": {"cert": a_cert, "key": a_key}}
    p.write_config()
    p.setup_domain()
    p.cli("alias", "add", "@example.test", ALICE)
    p.start()
    pid = p.proc.pid
    fa = starttls_fingerprint(p)
    assert rcpt_codes(p, 3) == [250, 250, 452]
    p.extra = {"smtp": {"max_recipients": "5"}, "tls": {"cert": b_cert, "key": b_key}}
    p.write_config()
    reload(p, 0)
    assert p.proc.pid == pid and p.proc.poll() is None
    assert rcpt_codes(p, 6) == [250] * 5 + [452]
    fb = starttls_fingerprint(p)
    assert fa != fb, "the old certificate is still served"
    p.stop()


def test_sighup_keeps_running_on_a_broken_config_and_says_why():
    p = Server(role="primary", extra={"smtp": {"max_recipients": "2"}})
    p.setup_domain()
    p.cli("alias", "add", "@example.test", ALICE)
    p.start()
    assert rcpt_codes(p, 3) == [250, 250, 452]
    with open(p.conf, "a") as f:
        f.write("\n[smtp]\nno_such_key = 1\n")
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=reload_failed" in p.log(), what="the failed reload logged")
    assert "no_such_key" in p.log()
    assert p.proc.poll() is None
    assert rcpt_codes(p, 3) == [250, 250, 452], "the old max_recipients must stay in force"
    p.stop()


def test_sighup_reopens_the_log_file_for_logrotate():
    p = Server(role="primary")
    logfile = os.path.join(p.tmp, "tandem.log")
    p.extra = {"server": {"log_file": logfile}}
    p.write_config()
    p.setup_domain()
    p.start(wait=False)
    wait_for(lambda: os.path.exists(logfile) and "event=start " in open(logfile).read(),
             what="start in the log file")
    os.rename(logfile, logfile + ".1")
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: os.path.exists(logfile) and "event=reloaded" in open(logfile).read(),
             what="a new log file after SIGHUP")
    c = socket.create_connection((p.ip, p.port), timeout=5)
    c.recv(100)
    c.close()
    wait_for(lambda: "event=connect" in open(logfile).read(), what="new lines in the new file")
    assert "event=connect" not in open(logfile + ".1").read()
    p.stop()


def test_sighup_between_starttls_and_the_switch_keeps_the_old_context_alive():
    """STARTTLS whose 220 cannot leave yet (the client does not read), a
    SIGHUP that replaces the TLS context meanwhile, then the client reads:
    the switch uses the context it was promised (ASan saw a use-after-free)."""
    import threading
    p = Server(role="primary", extra={"smtp": {"timeout": "10m",
                                               "junk_command_limit": "1000000"}})
    p.setup_domain()
    p.start()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((p.ip, p.port))
    c = Conn.__new__(Conn)
    c.s, c.buf = s, b""
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example.org")[0] == 250
    n = 400000
    reply_bytes = n * 2 * len(b"250 2.0.0 Ok\r\n")
    threading.Thread(target=lambda: s.sendall(b"MAIL FROM:<a@b.example>\r\nRSET\r\n" * n +
                                              b"STARTTLS\r\n"), daemon=True).start()
    # read all but the tail, so the 220 is still stuck behind the replies
    got = 0
    while got < reply_bytes - 3200000:
        got += len(s.recv(min(65536, reply_bytes - 3200000 - got)))
    # the server reads the rest of the pipeline (STARTTLS last) and fills the
    # socket; nothing outside it shows when that is done, so give it a moment
    time.sleep(1.5)
    marks = p.log().count("event=reloaded")
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: p.log().count("event=reloaded") > marks, what="the reload")
    rest = b""
    while b"220 2.0.0 Ready" not in rest[-64:]:
        d = s.recv(65536)
        assert d, "closed before the 220"
        rest = rest[-64:] + d
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s, server_hostname="mx1.example.test")
    t.sendall(b"EHLO client.example.org\r\n")
    assert t.recv(100).startswith(b"250"), "no EHLO reply over TLS"
    t.close()
    assert p.proc.poll() is None, p.log()[-3000:]
    p.stop()
