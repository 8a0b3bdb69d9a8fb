"""`tandem sendmail`: a script hands the primary a message on stdin."""
import os
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


def test_debian_crons_command_line_reaches_roots_alias():
    """cron(8) on Debian runs `sendmail -FCronDaemon -i -B8BITMIME -oem
    MAILTO` with MAILTO often a bare "root": the options are taken, root
    gets [server] origin (the host name's domain), -F names the From:."""
    p = Server(role="primary", ip="127.0.4.10")
    p.setup_domain(users=("alice",))
    p.cli("alias", "add", "root@example.test", "alice@example.test")
    p.start()
    r = sendmail(p, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                 "Subject: Cron <root@mx1> run-parts /etc/cron.daily\n\nd\xe9j\xe0 fait\n")
    assert r.returncode == 0, r.stderr
    m = wait_for(lambda: p.messages("alice@example.test"), what="root's mail")[0]
    assert b"\nFrom: CronDaemon <root@example.test>\n" in m, m[:400]
    assert "d\xe9j\xe0 fait".encode() in m
    # a name that needs quoting gets it
    r = sendmail(p, ["-F", 'Ops, "night" shift', "-f", "ops@example.test", "alice@example.test"],
                 "Subject: q\n\nx\n")
    assert r.returncode == 0, r.stderr
    # (the sendmail's own queued line goes to [server] log_file only: wait
    # for the mailbox)
    wait_for(lambda: len(p.messages("alice@example.test")) == 2, what="the second message")
    got = b"".join(p.messages("alice@example.test"))
    assert b'\nFrom: "Ops, \\"night\\" shift" <ops@example.test>\n' in got, got
    p.stop()


def test_sendmail_t_parses_address_lists_by_rfc_5322():
    p = Server(role="primary", ip="127.0.4.10")
    p.setup_domain(users=("alice", "bob", "carol"))
    p.start()
    r = sendmail(p, ["-t", "-oi"],
                 'From: ops@example.test\nTo: "Doe, Alice" <alice@example.test>,\n'
                 ' bob@example.test (Bob, in a comment)\nCc: team: carol@example.test, '
                 'alice@example.test;\nBcc: undisclosed-recipients:;\nSubject: lists\n\nx\n')
    assert r.returncode == 0, r.stderr
    for u in ("alice", "bob", "carol"):
        got = wait_for(lambda: p.messages(u + "@example.test"), what=u)
        p.settle()
        assert len(got) == 1, (u, got)      # once each, however often named
    # an address list that is none is refused, nothing queued
    r = sendmail(p, ["-t"], "To: alice@example..test\n\nx\n")
    assert r.returncode == 65 and "cannot read the addresses of To:" in r.stderr, r.stderr
    p.stop()


def test_the_options_of_mail_php_git_and_mutt_are_taken(tmp_path):
    p = Server(role="primary", ip="127.0.4.10")
    p.setup_domain(users=("alice",))
    p.start()
    for args in (["-t", "-i"],                                   # PHP's mail()
                 ["-i", "alice@example.test"],                    # git send-email
                 ["-oem", "-oi", "--", "alice@example.test"],      # mutt
                 ["-odi", "-v", "-N", "never", "-R", "hdrs", "-V", "env1", "-L", "x",
                  "-r", "ops@example.test", "alice@example.test"]):
        r = sendmail(p, args, "To: alice@example.test\nSubject: %s\n\nx\n" % " ".join(args))
        assert r.returncode == 0, (args, r.stderr)
    wait_for(lambda: len(p.messages("alice@example.test")) == 4, what="four messages")
    r = sendmail(p, ["-bs"], "")
    assert r.returncode == 64 and "not supported" in r.stderr
    # run as sendmail, mailq and newaliases through links, the config from
    # TANDEM_CONFIG
    for name in ("sendmail", "mailq", "newaliases"):
        os.symlink(os.path.abspath(BIN), str(tmp_path / name))
    env = dict(os.environ, TANDEM_CONFIG=p.conf)
    r = subprocess.run([str(tmp_path / "sendmail"), "-i", "alice@example.test"],
                       input="Subject: via the link\n\nx\n", capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(tmp_path / "newaliases")], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 0 and "nothing to rebuild" in r.stdout, r
    r = subprocess.run([str(tmp_path / "mailq")], capture_output=True, text=True, timeout=30,
                       env=env)
    assert r.returncode == 0, r
    wait_for(lambda: any(b"Subject: via the link" in m for m in p.messages("alice@example.test")),
             what="the message sent through the link")
    p.stop()
