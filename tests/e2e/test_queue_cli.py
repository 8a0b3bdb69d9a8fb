"""`tandem queue ...` and `tandem check-config`, run while the server runs.

On a backup the mail stays in queue/active, so the commands have stable
messages to look at; on a primary a message for a mailbox that cannot be
written defers, which gives a deferred message to flush, hold and release.
"""
import json
import os
import re
import smtplib
import subprocess
import tempfile
import time

import lib
from lib import Server, wait_for

# Own loopback addresses: scenarios of other files (or other checkouts)
# may be listening on the usual 127.0.0.10/20 at the same time.
PRIMARY_IP = "127.0.2.10"
BACKUP_IP = "127.0.2.20"

QID_RE = re.compile(r"queued as ([0-9A-F]{16})")
UNKNOWN = "0123456789ABCDEF"


def send(s, sender, rcpts, subject, body="hello\r\n"):
    msg = ("Subject: %s\r\nFrom: <%s>\r\n\r\n%s" % (subject, sender, body)).encode()
    with smtplib.SMTP(s.ip, s.port, timeout=30) as c:
        c.ehlo("client.example.org")
        assert c.mail(sender)[0] == 250
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = c.data(msg)
        assert code == 250, (code, text)
        return QID_RE.search(text.decode()).group(1), len(msg)


def qjson(s):
    p = s.cli("queue", "list", "--json")
    return {e["id"]: e for e in json.loads(p.stdout)}


def state_of(s, qid):
    for st in ("active", "deferred", "hold", "corrupt"):
        if qid in s.queue_files(st):
            return st
    return None


def fails(s, *args, rc=1, err=None):
    p = s.cli(*args, check=False)
    assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    if err is not None:
        assert re.search(err, p.stderr), (args, p.stderr)
    return p


# --- a backup holding mail ---------------------------------------------------

def test_queue_commands_on_backup():
    b = Server(role="backup", ip=BACKUP_IP, relay_domains=["example.test"])
    b.start()
    q1, n1 = send(b, "carol@example.org", ["alice@example.test"], "first")
    q2, n2 = send(b, "dave@example.net", ["alice@example.test", "bob@example.test"], "second",
                  body="line one\r\n.dot-stuffed\r\n")
    q3, n3 = send(b, "", ["bob@example.test"], "bounce-like")

    # list, text
    out = b.cli("queue", "list").stdout
    for q in (q1, q2, q3):
        assert re.search(r"^%s active +\d+ " % q, out, re.M), out
    assert "<carol@example.org>" in out and "<dave@example.net>" in out and "<>" in out
    assert "-> <alice@example.test>" in out and "-> <bob@example.test>" in out
    assert "-- 3 messages" in out, out

    # list, JSON
    entries = qjson(b)
    assert sorted(entries) == sorted([q1, q2, q3])
    for e in entries.values():
        for field in ("id", "state", "sender", "recipients", "size"):
            assert field in e, (field, e)
        assert e["state"] == "active"
        assert isinstance(e["size"], int)
    assert entries[q1]["sender"] == "carol@example.org"
    assert entries[q3]["sender"] == ""
    assert [r["address"] for r in entries[q2]["recipients"]] == ["alice@example.test",
                                                                 "bob@example.test"]
    assert all(r["done"] is False for r in entries[q2]["recipients"])
    for e in entries.values():
        for r in e["recipients"]:
            # per recipient: its state now and its last result
            for field in ("state", "dsn", "reason", "relay", "reply", "time", "waiting"):
                assert field in r, (field, r)
            assert r["state"] in ("pending", "waiting", "deferred"), r
        assert e["waiting"] is None or isinstance(e["waiting"], dict), e
    # size: the stored message, i.e. ours plus the Received: header
    assert n1 < entries[q1]["size"] < n1 + 1000, (n1, entries[q1]["size"])

    # show
    out = b.cli("queue", "show", q2).stdout
    assert "id: %s\n" % q2 in out and "state: active\n" in out, out
    assert "sender: <dave@example.net>\n" in out
    assert "recipient: <alice@example.test>\n" in out and "recipient: <bob@example.test>\n" in out
    head, _, msg = out.partition("\n\n")
    assert "Subject: second" in msg and "line one" in msg, out
    assert "\n.dot-stuffed" in msg and "..dot-stuffed" not in msg, msg  # stored unstuffed
    assert "Received: from" in msg and q2 in msg

    # hold / release
    p = b.cli("queue", "hold", q1)
    assert "on hold" in p.stdout
    assert state_of(b, q1) == "hold"
    assert qjson(b)[q1]["state"] == "hold"
    assert re.search(r"^%s hold " % q1, b.cli("queue", "list").stdout, re.M)
    assert b.cli("queue", "hold", q1).returncode == 0          # already on hold: fine
    fails(b, "queue", "release", q2, err="not on hold")       # q2 is not held
    p = b.cli("queue", "release", q1)
    assert "released" in p.stdout
    assert state_of(b, q1) == "active" and qjson(b)[q1]["state"] == "active"

    # delete
    p = b.cli("queue", "delete", q3)
    assert "deleted" in p.stdout
    assert state_of(b, q3) is None and q3 not in qjson(b)
    fails(b, "queue", "show", q3, err="no message %s" % q3)
    assert "-- 2 messages" in b.cli("queue", "list").stdout

    # unknown ids: clear error, exit 1
    for verb in ("show", "delete", "hold", "release"):
        fails(b, "queue", verb, UNKNOWN, err="no message %s" % UNKNOWN)
        fails(b, "queue", verb, "not-a-queue-id", err="no message")
        fails(b, "queue", verb, "../active/" + q1, err="no message")
    assert state_of(b, q1) == "active"

    # bad usage: exit 2 with a usage line
    for args in (("queue",), ("queue", "frobnicate"), ("queue", "list", "--xml"),
                 ("queue", "show"), ("queue", "delete", q1, q2), ("queue", "flush", "now")):
        fails(b, *args, rc=2, err="usage")
    assert sorted(qjson(b)) == sorted([q1, q2])

    # after all that (each command done when it returns) the server still
    # holds the two messages, in active/
    assert b.queue_files("active") == sorted([q1, q2])
    b.stop()
    # ...and the commands work with the server stopped, too
    assert "-- 2 messages" in b.cli("queue", "list").stdout


def test_queue_empty():
    b = Server(role="backup", ip=BACKUP_IP, relay_domains=["example.test"])
    b.start()
    assert b.cli("queue", "list").stdout.strip() == "queue is empty"
    assert json.loads(b.cli("queue", "list", "--json").stdout) == []
    assert b.cli("queue", "flush").returncode == 0
    b.stop()


# --- a primary with a deferred message ---------------------------------------

def attempts_logged(s, qid):
    return len(re.findall(r"%s: event=deferred " % qid, s.log()))


def test_deferred_flush_hold_release_on_primary():
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice", "bob"))
    p.cli("alias", "add", "fwd@example.test", "bob@example.test")
    # bob's mailbox path is a plain file: delivery to him fails, for now
    blocker = os.path.join(p.data_dir, "mail", "example.test", "bob")
    os.makedirs(os.path.dirname(blocker), exist_ok=True)
    with open(blocker, "w") as f:
        f.write("not a maildir\n")
    p.start()
    qid, _ = send(p, "carol@example.org", ["fwd@example.test", "alice@example.test"], "to-forward")

    # alice gets her copy; bob's defers
    wait_for(lambda: state_of(p, qid) == "deferred", what="message deferred")
    wait_for(lambda: p.messages("alice@example.test"), what="alice's copy")
    e = qjson(p)[qid]
    assert e["state"] == "deferred"
    assert e["attempts"] == 1, e
    assert "mailbox bob@example.test" in e["last_error"], e
    assert e["next_attempt"] > time.time() + 60, e              # retry_min 5m: far off
    done = {r["address"]: r["done"] for r in e["recipients"]}
    assert done == {"fwd@example.test": False, "alice@example.test": True}, done
    # the last result of each recipient, as data
    fwd, alice = e["recipients"]
    assert fwd["state"] == "deferred" and fwd["dsn"] == "4.3.0", fwd
    assert "mailbox bob@example.test" in fwd["reason"] and fwd["relay"] is None, fwd
    assert alice["state"] == "delivered" and alice["dsn"] == "2.0.0", alice
    assert abs(fwd["time"] - time.time()) < 3600 and e["waiting"] is None, e
    out = p.cli("queue", "list").stdout
    assert "-> <alice@example.test> (delivered)" in out and "attempts 1" in out, out
    assert re.search(r"-> <fwd@example.test> deferred: 4\.3\.0 mailbox bob@example.test", out), out
    # the log: one line per recipient result, with the delay since arrival
    assert re.search(r"%s: event=delivered to=<alice@example.test> relay=local status=sent "
                     r"dsn=2\.0\.0 delay=\d+\.\d\d" % qid, p.log()), p.log()
    assert attempts_logged(p, qid) == 1

    # flush: a new attempt now, not in five minutes
    assert "flush requested" in p.cli("queue", "flush").stdout
    wait_for(lambda: qjson(p)[qid]["attempts"] == 2, what="attempt after flush")
    wait_for(lambda: attempts_logged(p, qid) == 2, what="second attempt logged")
    assert re.search(r"%s: event=retry_at .*attempts=2" % qid, p.log())
    assert len(p.messages("alice@example.test")) == 1           # alice not delivered again
    p.cli("queue", "flush")
    wait_for(lambda: qjson(p)[qid]["attempts"] == 3, what="another attempt after flush")

    # hold: no attempts while held, not even on flush
    p.cli("queue", "hold", qid)
    assert state_of(p, qid) == "hold" and qjson(p)[qid]["state"] == "hold"
    flushes = p.log().count("event=flush")
    p.cli("queue", "flush")
    # the server has taken the flush (and scanned its queue); an attempt of
    # the held message would also show below, as a 4th deferral logged
    # before the release (bob's mailbox is still blocked until then)
    wait_for(lambda: p.log().count("event=flush") > flushes, what="the server's event=flush")
    assert attempts_logged(p, qid) == 3 and qjson(p)[qid]["attempts"] == 3
    assert state_of(p, qid) == "hold"

    # repair the mailbox, release: delivered at once
    os.unlink(blocker)
    assert "released" in p.cli("queue", "release", qid).stdout
    wait_for(lambda: state_of(p, qid) is None, what="delivery after release")
    msgs = p.messages("bob@example.test")
    assert len(msgs) == 1, len(msgs)
    assert b"Delivered-To: bob@example.test\n" in msgs[0] and b"Subject: to-forward" in msgs[0]
    assert len(p.messages("alice@example.test")) == 1      # alice's copy was not repeated
    assert re.search(r"%s: event=removed" % qid, p.log())
    assert attempts_logged(p, qid) == 3, "an attempt while the message was held"
    assert qjson(p) == {}
    p.stop()


# --- corrupt files ---------------------------------------------------------------

def test_corrupt_files_go_to_corrupt_and_are_never_delivered_twice():
    """A queue file or a meta file that cannot be parsed goes to corrupt/:
    not to hold/ (a release would undo it), and never to a second delivery
    of a recipient already served (the meta file is what says so)."""
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice", "bob"))
    blocker = os.path.join(p.data_dir, "mail", "example.test", "bob")
    os.makedirs(os.path.dirname(blocker), exist_ok=True)
    with open(blocker, "w") as f:
        f.write("not a maildir\n")
    p.start()
    # q1: alice served, bob deferred; q2: bob only, deferred
    q1, _ = send(p, "carol@example.org", ["alice@example.test", "bob@example.test"], "half done")
    q2, _ = send(p, "carol@example.org", ["bob@example.test"], "not yet")
    wait_for(lambda: state_of(p, q1) == "deferred" and state_of(p, q2) == "deferred",
             what="both deferred")
    assert len(p.messages("alice@example.test")) == 1
    p.stop()
    os.unlink(blocker)   # bob's mailbox would work now
    meta = os.path.join(p.data_dir, "queue", "meta", q1)
    with open(meta, "wb") as f:
        f.write(b"A1:1\nD1:0\nthis is not a record")        # damaged
    with open(os.path.join(p.data_dir, "queue", "deferred", q2), "wb") as f:
        f.write(b"TQ1\nS5:carol")                             # cut short
    p.start()
    p.cli("queue", "flush")   # q2's next attempt is minutes away: now
    for q, why in ((q1, "meta file cannot be parsed"), (q2, "queue file cannot be parsed")):
        # the log line comes just after the move: wait for it, not a race
        wait_for(lambda: re.search(r"%s: event=corrupt reason=\"%s\" status=corrupt" % (q, why),
                                   p.log()), what="%s logged corrupt" % q)
        assert state_of(p, q) == "corrupt"
    # nobody was served twice, and nothing else was attempted
    assert len(p.messages("alice@example.test")) == 1
    assert p.messages("bob@example.test") == []
    wait_for(lambda: "event=flush messages=" in p.log(), what="the flush")
    assert "event=delivered" not in p.log().split("event=start ")[-1]
    # queue list shows them (and says why), a flush does not touch them
    entries = qjson(p)
    assert entries[q1]["state"] == "corrupt" and entries[q1]["problem"] == "meta file cannot be parsed"
    assert [r["address"] for r in entries[q1]["recipients"]] == ["alice@example.test", "bob@example.test"]
    assert entries[q2]["state"] == "corrupt" and entries[q2]["problem"] == "queue file cannot be parsed"
    assert entries[q2]["sender"] is None and entries[q2]["recipients"] == [], entries[q2]
    out = p.cli("queue", "list").stdout
    assert re.search(r"^%s corrupt " % q1, out, re.M) and re.search(r"^%s corrupt " % q2, out, re.M), out
    assert "queue delete %s" % q2 in out, out
    p.cli("queue", "flush")
    # hold and release would hand it back to the scheduler: refused
    fails(p, "queue", "release", q1, err="corrupt")
    fails(p, "queue", "hold", q1, err="corrupt")
    assert state_of(p, q1) == "corrupt"
    fails(p, "queue", "show", q2, err="cannot be parsed")
    assert "meta: cannot be parsed" in p.cli("queue", "show", q1).stdout
    # delete works
    for q in (q1, q2):
        assert "deleted" in p.cli("queue", "delete", q).stdout
        assert state_of(p, q) is None
    assert not os.path.exists(meta)
    assert qjson(p) == {}
    assert len(p.messages("alice@example.test")) == 1 and p.messages("bob@example.test") == []
    p.stop()


def test_flush_with_server_stopped_is_harmless():
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice",))
    p.start()
    p.stop()
    r = p.cli("queue", "flush", check=False)
    assert r.returncode == 0, r


# --- check-config --------------------------------------------------------------

def check_config(text):
    d = tempfile.mkdtemp(prefix="tandem-cc-")
    path = os.path.join(d, "tandem.conf")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([lib.BIN, "-c", path, "check-config"], capture_output=True, text=True,
                       timeout=30)
    return path, p


def test_check_config_errors_name_file_line_key():
    path, p = check_config(
        "[server]\n"                        # 1
        "hostname = mx1.example.test\n"     # 2
        "role = tertiary\n"                 # 3
        "data_dir = /tmp/tandem-cc-data\n"  # 4
        "colour = blue\n"                   # 5
        "\n"                                # 6
        "[queue]\n"                         # 7
        "retry_min = soonish\n"             # 8
        "min_free = lots\n"                 # 9
        "\n"                                # 10
        "[smtp]\n"                          # 11
        "timeout = 5 minutes\n"             # 12
        "[nosuch]\n"                        # 13
        "key = value\n")                    # 14
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    err = p.stderr
    expect = [
        (3, "server", "role"),
        (5, "server", "colour"),
        (8, "queue", "retry_min"),
        (9, "queue", "min_free"),
        (12, "smtp", "timeout"),
        (14, "nosuch", "key"),
    ]
    for line, sec, key in expect:
        assert re.search(r"^%s:%d: \[%s\] %s: \S" % (re.escape(path), line, sec, key), err, re.M), \
            (line, sec, key, err)
    assert re.search(r"\[server\] colour: unknown key", err), err
    assert re.search(r"\[nosuch\] key: unknown section", err), err
    assert "primary or backup" in err
    assert "ok" not in p.stdout


def test_check_config_good():
    path, p = check_config(
        "[server]\n"
        "hostname = mx2.example.test\n"
        "role = backup\n"
        "data_dir = /tmp/tandem-cc-data\n"
        "\n"
        "[listen]\n"
        "smtp = 127.0.0.20:2525\n"
        "\n"
        "[relay]\n"
        "domains = example.test\n"
        "\n"
        "[queue]\n"
        "retry_min = 30s\n"
        "retry_max = 2h\n"
        "min_free = 64M\n")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.startswith(path + ": ok"), p.stdout
    assert "role backup" in p.stdout


def test_check_config_semantic_errors():
    # a backup without relay domains; retry_max below retry_min
    path, p = check_config(
        "[server]\n"
        "role = backup\n"
        "data_dir = /tmp/tandem-cc-data\n"
        "[queue]\n"
        "retry_min = 1h\n"
        "retry_max = 5m\n")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "[relay] domains" in p.stderr and "[queue] retry_max" in p.stderr, p.stderr
    assert p.stderr.count(path) >= 2
