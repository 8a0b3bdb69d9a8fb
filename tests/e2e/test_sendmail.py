"""`tandem sendmail`: a script hands the primary a message on stdin."""
import subprocess

from lib import BIN, Server, wait_for


def sendmail(srv, args, message):
    return subprocess.run([BIN, "-c", srv.conf, "sendmail"] + args, input=message,
                          capture_output=True, text=True, timeout=30)


def test_sendmail_queues_and_delivers_with_missing_headers_added():
    p = Server(role="primary", ip="127.0.4.10")
    p.setup_domain(users=("alice",))
    p.start()
    r = sendmail(p, ["-f", "cron@example.test", "alice@example.test"],
                 "Subject: nightly\n\nall good\n.\nthis line is after the dot\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    m = wait_for(lambda: p.messages("alice@example.test"), what="delivery")[0]
    assert m.startswith(b"Return-Path: <cron@example.test>\n")
    for field in (b"\nDate: ", b"\nMessage-ID: <", b"\nFrom: cron@example.test\n",
                  b"\nSubject: nightly\n", b"(tandem sendmail, uid "):
        assert field in m, field
    assert m.endswith(b"\n\nall good\n") and b"after the dot" not in m
    p.stop()


def test_sendmail_t_takes_recipients_and_drops_bcc():
    p = Server(role="primary", ip="127.0.4.10")
    p.setup_domain(users=("alice", "bob"))
    p.start()
    r = sendmail(p, ["-t", "-i"], "From: Ops <ops@example.test>\nTo: Alice <alice@example.test>\n"
                 "Bcc: bob@example.test\nDate: Sun, 29 Nov 2026 10:00:00 +0000\n\n.\nend\n")
    assert r.returncode == 0, r.stderr
    a = wait_for(lambda: p.messages("alice@example.test"), what="alice")[0]
    b = wait_for(lambda: p.messages("bob@example.test"), what="bob")[0]
    for m in (a, b):
        assert b"Bcc:" not in m and m.count(b"\nDate: ") == 1 and m.count(b"\nFrom: ") == 1
        assert m.endswith(b"\n\n.\nend\n")   # -i: a lone dot is text
    p.stop()


def test_sendmail_bad_input():
    p = Server(role="primary", ip="127.0.4.10")
    p.setup_domain(users=("alice",))
    r = sendmail(p, ["not an address"], "x\n")
    assert r.returncode == 65 and "bad recipient" in r.stderr
    r = sendmail(p, ["-f", "a@b@c", "alice@example.test"], "x\n")
    assert r.returncode == 65 and "bad sender" in r.stderr
    r = sendmail(p, [], "x\n")
    assert r.returncode == 64 and "no recipients" in r.stderr
    r = sendmail(p, ["-x", "alice@example.test"], "x\n")
    assert r.returncode == 64
    assert p.queue_files() == []
