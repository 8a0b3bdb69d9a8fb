"""The mailbox as an administrator manages it: quotas that SMTP enforces
(452 4.2.2 over the quota, 552 5.2.2 for a message that can never fit),
`tandem user show` with the usage, `tandem user del` that moves the
mailbox aside so a new user of the same name starts empty, and
`tandem mailbox verify|repair` finding a file the index does not know.
"""
import os
import shutil
import smtplib

from lib import Server, wait_for

IP = "127.0.9.30"
ALICE = "alice@example.test"


def lines(ch, n):
    """About n bytes of body in lines SMTP allows."""
    return (ch * 76 + b"\r\n") * (n // 78)


def send(s, rcpt, body=b"hello\r\n", size=None):
    with smtplib.SMTP(s.ip, s.port, timeout=30) as c:
        c.ehlo("client.example.org")
        opts = ["SIZE=%d" % size] if size else []
        assert c.mail("carol@example.org", opts)[0] == 250
        code, text = c.rcpt(rcpt)
        if code != 250:
            c.rset()
            return code, text
        return c.data(b"Subject: quota\r\n\r\n" + body)


def test_quota_enforced_at_rcpt_and_delivery():
    s = Server(role="primary", ip=IP)
    s.setup_domain(users=("alice", "bob"))
    s.cli("user", "quota", ALICE, "20k")
    out = s.cli("user", "show", ALICE).stdout
    assert "quota:  20.0 KiB (20480 bytes)" in out, out
    s.start()
    # SIZE larger than the whole quota: it can never fit.
    code, text = send(s, ALICE, size=30000)
    assert code == 552 and text.startswith(b"5.2.2"), (code, text)
    code, _ = send(s, ALICE, body=lines(b"x", 15000))
    assert code == 250
    wait_for(lambda: s.messages(ALICE), what="the first delivery")
    # SIZE that would take the mailbox over: refused for now, not for ever.
    code, text = send(s, ALICE, size=8000)
    assert code == 452 and text.startswith(b"4.2.2"), (code, text)
    # Without SIZE it is taken, and delivery defers it (4.2.2) rather than
    # store it over the quota.
    code, _ = send(s, ALICE, body=lines(b"y", 8000))
    assert code == 250
    wait_for(lambda: "event=over_quota to=<alice@example.test>" in s.log(),
             what="the delivery over the quota deferred")
    assert len(s.messages(ALICE)) == 1
    # An admin lowers the quota under the usage: every RCPT gets 452 now;
    # bob is not affected.
    s.cli("user", "quota", ALICE, "10k")
    code, text = send(s, ALICE)
    assert code == 452 and text.startswith(b"4.2.2"), (code, text)
    assert send(s, "bob@example.test")[0] == 250
    out = s.cli("user", "show", ALICE).stdout
    assert "in 1 message " in out and "INBOX" in out, out
    # No quota: mail flows again.
    s.cli("user", "quota", ALICE, "0")
    assert send(s, ALICE)[0] == 250
    assert "quota:  none" in s.cli("user", "show", ALICE).stdout
    s.stop()


def test_user_del_moves_the_mailbox_aside():
    s = Server(role="primary", ip=IP)
    s.setup_domain(users=("alice",))
    s.start()
    assert send(s, ALICE, body=b"for the first alice\r\n")[0] == 250
    wait_for(lambda: s.messages(ALICE), what="delivery to alice")
    s.settle()
    s.stop()
    p = s.cli("user", "del", ALICE)
    assert "mailbox was moved to" in p.stdout, p.stdout
    moved = p.stdout.split("moved to ", 1)[1].split(" ", 1)[0]
    assert os.path.isdir(moved) and "/.removed/" in moved, moved
    # A new alice starts empty and cannot read the old alice's mail.
    s.cli("user", "add", ALICE, input="other\n")
    assert s.messages(ALICE) == []
    out = s.cli("user", "show", ALICE).stdout
    assert "in 0 messages" in out, out
    p = s.cli("user", "del", "nobody@example.test", check=False)
    assert p.returncode == 1 and "no such user" in p.stderr


def test_mailbox_verify_and_repair():
    s = Server(role="primary", ip=IP)
    s.setup_domain(users=("alice",))
    s.start()
    assert send(s, ALICE)[0] == 250
    wait_for(lambda: s.messages(ALICE), what="delivery to alice")
    s.settle()
    s.stop()
    p = s.cli("mailbox", "verify", ALICE)
    assert "index and files agree" in p.stdout, p.stdout
    # A file from elsewhere (a migration) that the index does not know.
    src = s.maildir(ALICE)[0]
    cur = os.path.join(os.path.dirname(os.path.dirname(src)), "cur")
    shutil.copy(src, os.path.join(cur, "1700000000.migrated.host:2,S"))
    p = s.cli("mailbox", "verify", ALICE, check=False)
    assert p.returncode == 1 and "1 finding" in p.stdout, p.stdout
    p = s.cli("mailbox", "repair", ALICE)
    assert "repaired" in p.stdout, p.stdout
    p = s.cli("mailbox", "verify", ALICE)
    assert "index and files agree" in p.stdout, p.stdout
