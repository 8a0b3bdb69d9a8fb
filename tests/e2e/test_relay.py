"""The backup hands what it holds to the primary; a sending tandem follows
the MX records (dnsmasq on loopback) and falls back to the backup."""
import json
import os
import signal
import subprocess

from harness import Dns
from lib import BIN, Server, wait_for


def relay_pair(primary_port=2525):
    p = Server(role="primary", ip="127.0.6.10", port=primary_port)
    p.setup_domain(users=("alice",))
    b = Server(role="backup", ip="127.0.6.20", port=primary_port,
               relay_domains=["example.test"],
               extra={"queue": {"retry_min": "1s", "retry_max": "2s"}})
    return p, b


def test_backup_relays_to_its_configured_primary():
    p, b = relay_pair()
    b.extra.setdefault("relay", {})["primary"] = "%s:%d" % (p.ip, p.port)
    b.write_config()
    b.start()
    subprocess.run(["swaks", "--server", "%s:%d" % (b.ip, b.port), "--from", "carol@example.org",
                    "--to", "alice@example.test", "--h-Subject", "via the backup"],
                   capture_output=True, timeout=30, check=True)
    # The primary is down: the message waits on the backup.
    # The primary is down: the backup marks it so and the message waits.
    wait_for(lambda: "status=down" in b.log() and "status=waiting" in b.log(),
             what="the message waiting on the backup")
    assert len(b.queue_files("active")) == 1
    p.start()
    b.cli("queue", "flush")
    m = wait_for(lambda: p.messages("alice@example.test"), what="delivery through the backup")
    assert len(m) == 1 and b"Subject: via the backup" in m[0]
    assert m[0].count(b"Received: from") == 2   # the backup's hop and the primary's
    wait_for(lambda: b.queued() == [],
             what="the backup's queue empty")
    assert "status=sent" in b.log()
    b.stop()
    p.stop()


def test_sender_follows_mx_and_falls_back_to_the_backup():
    p, b = relay_pair(primary_port=25)
    s = Server(role="primary", ip="127.0.6.30", hostname="mx.example.org")
    dns = Dns(["--mx-host=example.test,mx1.example.test,10",
               "--mx-host=example.test,mx2.example.test,20",
               "--host-record=mx1.example.test,%s" % p.ip,
               "--host-record=mx2.example.test,%s" % b.ip])
    try:
        p.start()
        b.start()
        s.start()
        send = lambda subj: subprocess.run(
            [BIN, "-c", s.conf, "sendmail", "-f", "carol@example.org", "alice@example.test"],
            input="Subject: %s\n\nhello\n" % subj, capture_output=True, text=True, timeout=30,
            check=True)
        send("while the primary is up")
        wait_for(lambda: len(p.messages("alice@example.test")) == 1, what="delivery via MX 10")
        assert b.queued() == []
        p.stop()
        send("while the primary is down")
        # MX 10 refuses connections: the sender falls back to MX 20, which
        # keeps the message (it prunes itself and its worse MXs, no loop).
        wait_for(lambda: "status=waiting" in b.log(), timeout=20, what="the backup holding it")
        assert len(b.queued()) == 1
        assert "event=bounced" not in b.log()
        assert "loops back" not in b.log()
        p.start()
        b.cli("queue", "flush")
        wait_for(lambda: len(p.messages("alice@example.test")) == 2, timeout=20,
                 what="the backup's copy on the primary")
        assert s.queued() == []
    finally:
        dns.stop()
    for srv in (s, b, p):
        srv.stop()


def test_backup_probes_and_drains_when_the_primary_returns():
    """No flush, no ETRN: the probe notices the primary and the backup drains."""
    p, b = relay_pair()
    b.extra["relay"] = {"primary": "%s:%d" % (p.ip, p.port), "probe_interval": "1s"}
    b.extra["queue"] = {"retry_min": "1h", "retry_max": "2h"}   # only the probe can help
    b.write_config()
    b.start()
    for i in range(5):
        subprocess.run(["swaks", "--server", "%s:%d" % (b.ip, b.port), "--from", "carol@example.org",
                        "--to", "alice@example.test", "--h-Subject", "held %d" % i],
                       capture_output=True, timeout=30, check=True)
    wait_for(lambda: "status=down" in b.log(), what="the primary marked down")
    # One message learnt that the primary is down; the others wait without an attempt.
    assert b.log().count("event=smtp_connect") <= 2
    p.start()
    wait_for(lambda: len(p.messages("alice@example.test")) == 5, timeout=15,
             what="all five drained into the primary")
    assert "status=up" in b.log()
    wait_for(lambda: b.queued() == [],
             what="the backup's queue empty")
    b.stop()
    p.stop()


def test_etrn_from_the_primary_starts_the_drain():
    """ETRN (RFC 1985): the primary says it is back; the backup drains at once."""
    from lib import Conn
    p, b = relay_pair()
    b.extra["relay"] = {"primary": "%s:%d" % (p.ip, p.port), "probe_interval": "1h"}
    b.extra["queue"] = {"retry_min": "1h", "retry_max": "2h"}   # only ETRN can help
    b.write_config()
    b.start()
    for i in range(3):
        subprocess.run(["swaks", "--server", "%s:%d" % (b.ip, b.port), "--from", "carol@example.org",
                        "--to", "alice@example.test", "--h-Subject", "held %d" % i],
                       capture_output=True, timeout=30, check=True)
    wait_for(lambda: "status=down" in b.log(), what="the primary marked down")
    p.start()
    c = Conn(b.ip, b.port)
    assert c.reply()[0] == 220
    code, text = c.cmd("EHLO mx1.example.test")
    assert code == 250 and "ETRN" in text
    assert c.cmd("ETRN")[0] == 501
    assert c.cmd("ETRN example.org")[0] == 459          # not a relay domain here
    assert c.cmd("ETRN #queue")[0] == 458
    code, text = c.cmd("ETRN example.test")
    assert code == 253 and "3 pending messages for node example.test" in text, (code, text)
    c.cmd("QUIT")
    c.close()
    wait_for(lambda: len(p.messages("alice@example.test")) == 3, timeout=10,
             what="the held mail on the primary")
    assert "event=etrn domain=example.test" in b.log()
    b.stop()
    p.stop()


def test_etrn_starts_only_the_named_domains_mail():
    """ETRN names a node: only mail for that domain is attempted, and the
    reply says how many messages (RFC 1985 251/253)."""
    from lib import Conn
    p, b = relay_pair()
    p.setup_domain(domain="other.test", users=("bob",))
    b.relay_domains = ["example.test", "other.test", "quiet.test"]
    b.extra["relay"] = {"primary": "%s:%d" % (p.ip, p.port), "probe_interval": "1h"}
    b.extra["queue"] = {"retry_min": "1h", "retry_max": "2h"}   # only ETRN can help
    b.write_config()
    b.start()
    for rcpt in ("alice@example.test", "alice@example.test", "bob@other.test"):
        subprocess.run(["swaks", "--server", "%s:%d" % (b.ip, b.port), "--from",
                        "carol@example.org", "--to", rcpt], capture_output=True, timeout=30,
                       check=True)
    wait_for(lambda: "domain=example.test" in b.log() and "domain=other.test" in b.log()
             and b.log().count("status=down") >= 2, what="both domains marked down")
    p.start()
    c = Conn(b.ip, b.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO mx1.example.test")[0] == 250
    code, text = c.cmd("ETRN quiet.test")
    assert code == 251 and "no messages waiting for node quiet.test" in text, (code, text)
    code, text = c.cmd("ETRN Example.TEST")
    assert code == 253 and "2 pending messages for node example.test" in text, (code, text)
    wait_for(lambda: len(p.messages("alice@example.test")) == 2, timeout=10,
             what="example.test's mail on the primary")
    # other.test was not named: its message still waits on the backup. The
    # end of example.test's flush (both its messages gone from the backup)
    # comes first; the log order below proves no attempt came later either.
    wait_for(lambda: len(b.queued()) == 1 and b.log().count("event=removed") == 2,
             what="example.test's two messages removed from the backup")
    assert p.messages("bob@other.test") == []
    code, text = c.cmd("ETRN other.test")
    assert code == 253 and "1 pending messages for node other.test" in text, (code, text)
    wait_for(lambda: len(p.messages("bob@other.test")) == 1, timeout=10,
             what="other.test's mail on the primary")
    wait_for(lambda: b.queued() == [],
             what="the backup's queue empty")
    code, text = c.cmd("ETRN example.test")
    assert code == 251, (code, text)
    c.cmd("QUIT")
    c.close()
    assert "event=flush domain=example.test messages=2" in b.log()
    # bob's message was handed over once, after the ETRN that named other.test
    log = b.log()
    sent = [i for i, l in enumerate(log.splitlines())
            if "event=delivered to=<bob@other.test>" in l and "status=sent" in l]
    etrn = [i for i, l in enumerate(log.splitlines()) if "event=etrn domain=other.test" in l]
    assert len(sent) == 1 and len(etrn) == 1 and etrn[0] < sent[0], log
    assert "to=<bob@other.test>" not in "\n".join(log.splitlines()[:etrn[0]]), log
    b.stop()
    p.stop()


def held_on_backup(n, probe="1h"):
    """A backup holding n messages for a primary that is down; only ETRN
    can make it try again (probe and retries an hour away)."""
    p, b = relay_pair()
    b.extra["relay"] = {"primary": "%s:%d" % (p.ip, p.port), "probe_interval": probe}
    b.extra["queue"] = {"retry_min": "1h", "retry_max": "2h"}
    b.write_config()
    b.start()
    for i in range(n):
        subprocess.run(["swaks", "--server", "%s:%d" % (b.ip, b.port), "--from", "carol@example.org",
                        "--to", "alice@example.test", "--h-Subject", "held %d" % i],
                       capture_output=True, timeout=30, check=True)
    wait_for(lambda: "status=down" in b.log(), what="the primary marked down")
    wait_for(lambda: len(b.queued()) == n,
             what="%d messages held" % n)
    return p, b


def test_primary_sends_etrn_to_its_backups_when_it_starts():
    p, b = held_on_backup(3)
    p.extra["server"] = {"backups": "%s:%d" % (b.ip, b.port)}
    p.extra["relay"] = {"probe_interval": "1s"}
    p.write_config()
    p.start()
    wait_for(lambda: len(p.messages("alice@example.test")) == 3, timeout=10,
             what="the held mail on the primary")
    log = p.log()
    assert "event=etrn host=%s:%d domain=example.test reply=\"253 " % (b.ip, b.port) in log, log
    assert "etrn_failed" not in log
    assert "event=etrn domain=example.test" in b.log()
    wait_for(lambda: b.queued() == [],
             what="the backup's queue empty")
    b.stop()
    p.stop()


def test_primary_asks_an_unreachable_backup_again():
    """The backup is away when the primary starts: the primary keeps asking
    every probe_interval, and the backup drains as soon as it is back."""
    p, b = held_on_backup(2)
    b.stop()
    p.extra["server"] = {"backups": "%s:%d" % (b.ip, b.port)}
    p.extra["relay"] = {"probe_interval": "1s"}
    p.write_config()
    p.start()
    wait_for(lambda: "event=etrn_failed host=%s:%d" % (b.ip, b.port) in p.log(),
             what="the first ETRN failing")
    assert p.messages("alice@example.test") == []
    b.start()
    wait_for(lambda: len(p.messages("alice@example.test")) == 2, timeout=10,
             what="the held mail on the primary")
    wait_for(lambda: "event=etrn host=%s:%d domain=example.test" % (b.ip, b.port) in p.log(),
             what="the ETRN asked again and answered")
    b.stop()
    p.stop()


def test_queue_list_says_why_mail_waits():
    p, b = held_on_backup(2)
    text = b.cli("queue", "list").stdout
    assert text.count("waiting: example.test is down since") == 2, text
    # the real reason: nothing listens there (refused), not a timeout
    assert "%s[%s]:%d: cannot connect: Connection refused" % (p.ip, p.ip, p.port) in text, text
    entries = json.loads(b.cli("queue", "list", "--json").stdout)
    assert len(entries) == 2, entries
    for e in entries:
        w = e["waiting"]   # data, not prose
        assert w["domain"] == "example.test" and w["addr"] == p.ip and w["port"] == p.port, w
        assert "refused" in w["reason"].lower() and w["probe_interval"] > 0, w
        assert isinstance(w["since"], int) and w["since"] > 0, w
        assert [r["state"] for r in e["recipients"]] == ["waiting"], e
    b.stop()
    # nobody probes while the server is stopped: no claim about it
    assert "waiting:" not in b.cli("queue", "list").stdout


def test_alias_to_another_domain_is_forwarded():
    """An alias whose target is in another domain: alice gets her copy here,
    and a copy goes out through MX to the other domain's server, with the
    original sender (bounces go to carol) and a Delivered-To: naming the alias."""
    p = Server(role="primary", ip="127.0.6.10")
    p.setup_domain(users=("alice",))
    p.cli("alias", "add", "team@example.test", "alice@example.test", "dave@example.net")
    other = Server(role="primary", ip="127.0.6.40", port=25, hostname="mx.example.net")
    other.setup_domain(domain="example.net", users=("dave",))
    dns = Dns(["--mx-host=example.net,mx.example.net,10",
               "--host-record=mx.example.net,%s" % other.ip])
    try:
        p.start()
        other.start()
        subprocess.run(["swaks", "--server", "%s:%d" % (p.ip, p.port), "--from", "carol@example.org",
                        "--to", "team@example.test", "--h-Subject", "to the team"],
                       capture_output=True, timeout=30, check=True)
        wait_for(lambda: len(p.messages("alice@example.test")) == 1, what="alice's copy")
        m = wait_for(lambda: other.messages("dave@example.net"), timeout=15,
                     what="dave's copy at the other domain")
        assert len(m) == 1
        assert b"Return-Path: <carol@example.org>" in m[0], m[0]
        assert b"Delivered-To: team@example.test" in m[0], m[0]
        assert b"Subject: to the team" in m[0]
        assert "forwarded_for=" in p.log()
        wait_for(lambda: p.queued() == [],
                 what="the primary's queue empty")
    finally:
        dns.stop()
    other.stop()
    p.stop()
