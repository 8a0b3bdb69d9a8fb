"""The two roles: a primary delivers into Maildir through its directory
(users, aliases, catch-alls); a backup holds mail for its relay domains in
the queue. Neither is ever an open relay.
"""
import json
import os
import smtplib

from harness import DnsRcode
from lib import DNS_PORT, Conn, Server, wait_for

ALICE = "alice@example.test"
CAROL = "carol@example.test"

# RCPT addresses no role may accept for relay (the domain is not ours)
FOREIGN = ["victim@example.org", "victim@EXAMPLE.ORG", "alice@example.test.example.org",
           "alice@sub.example.test", "alice@[127.0.0.1]", "@example.test:victim@example.org",
           "@mx1.example.test,@mx2.example.test:victim@example.org", "postmaster@localhost"]


def primary(users=("alice",)):
    p = Server(role="primary")
    p.setup_domain(users=users)
    return p


def backup(domains=("example.test",)):
    return Server(role="backup", ip="127.0.0.20", relay_domains=list(domains))


def send(p, rcpts, body=b"Subject: t\r\n\r\nhello\r\n", sender="erin@example.org"):
    """One message over smtplib; returns the refused dict."""
    with smtplib.SMTP(p.ip, p.port, timeout=15) as c:
        c.ehlo("client.example.org")
        return c.sendmail(sender, rcpts, body)


def rcpt_reply(p, rcpt, sender="erin@example.org"):
    c = Conn(p.ip, p.port)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.example.org")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        return c.cmd("RCPT TO:<%s>" % rcpt)
    finally:
        c.close()


def delivered(p, addr, n=1, timeout=10):
    return wait_for(lambda: len(p.messages(addr)) >= n and p.messages(addr),
                    timeout=timeout, what="%d message(s) for %s" % (n, addr))


def settle(*servers):
    """Each server done with what it accepted (lib.Server.settle): the
    positive end marker before a test asserts that something did not happen."""
    for s in servers:
        s.settle()


def queue_json(p):
    r = p.cli("queue", "list", "--json")
    return json.loads(r.stdout or "[]")


def all_mailboxes(p):
    """Every file under data_dir/mail/*/*/new."""
    root = os.path.join(p.data_dir, "mail")
    out = []
    for dp, dn, fn in os.walk(root):
        if os.path.basename(dp) == "new":
            out += [os.path.join(dp, f) for f in fn]
    return out


def assert_foreign_refused(p):
    for rcpt in FOREIGN:
        code, text = rcpt_reply(p, rcpt)
        assert code in (550, 554) and "5.7.1" in text, "%s RCPT %s: %s" % (p.role, rcpt, text)


# --- primary: aliases, catch-all ------------------------------------------------------------

def test_alias_to_one_user():
    p = primary(users=("alice",))
    p.cli("alias", "add", "bob@example.test", ALICE)
    p.start()
    assert send(p, ["bob@example.test"], b"Subject: via alias\r\n\r\nfor bob\r\n") == {}
    m = delivered(p, ALICE)
    settle(p)
    m = p.messages(ALICE)
    assert len(m) == 1, "alias delivered %d copies" % len(m)
    assert b"for bob" in m[0]
    assert p.maildir("bob@example.test") == [], "an alias got its own mailbox"
    p.stop()


def test_alias_to_two_users():
    p = primary(users=("alice", "carol"))
    p.cli("alias", "add", "team@example.test", ALICE, CAROL)
    p.start()
    assert send(p, ["team@example.test"], b"Subject: team\r\n\r\nfor the team\r\n") == {}
    for a in (ALICE, CAROL):
        delivered(p, a)
    settle(p)
    for a in (ALICE, CAROL):
        msgs = p.messages(a)
        assert len(msgs) == 1, (a, len(msgs))
        assert b"for the team" in msgs[0]
        assert msgs[0].startswith(b"Return-Path: <erin@example.org>\nDelivered-To: %s\n" % a.encode()), msgs[0][:100]
    p.stop()


def test_same_mailbox_twice_delivered_once():
    p = primary(users=("alice",))
    p.cli("alias", "add", "bob@example.test", ALICE)
    p.cli("alias", "add", "team@example.test", ALICE, "bob@example.test")
    p.start()
    refused = send(p, [ALICE, "bob@example.test", "team@example.test", "ALICE@example.test"],
                   b"Subject: dup\r\n\r\nonce only\r\n")
    assert refused == {}, refused
    delivered(p, ALICE)
    settle(p)
    msgs = p.messages(ALICE)
    assert len(msgs) == 1, "alice got %d copies of one message" % len(msgs)
    p.stop()


def test_catchall_delivers_unknown_local_part():
    p = primary(users=("alice",))
    p.cli("alias", "add", "@example.test", ALICE)
    p.start()
    assert send(p, ["unknown@example.test"], b"Subject: catch\r\n\r\ncaught\r\n") == {}
    msgs = delivered(p, ALICE)
    assert b"caught" in msgs[0]
    assert p.maildir("unknown@example.test") == []
    # foreign domains are still refused with a catch-all in place
    code, text = rcpt_reply(p, "unknown@example.org")
    assert code in (550, 554) and "5.7.1" in text, text
    p.stop()


def test_user_shadows_catchall():
    p = primary(users=("alice", "carol"))
    p.cli("alias", "add", "@example.test", ALICE)
    p.start()
    assert send(p, [CAROL], b"Subject: to carol\r\n\r\ncarol's own\r\n") == {}
    msgs = delivered(p, CAROL)
    assert b"carol's own" in msgs[0]
    settle(p)
    assert p.messages(ALICE) == [], "catch-all took mail for an existing user"
    assert len(p.messages(CAROL)) == 1
    p.stop()


def test_alias_shadows_catchall():
    p = primary(users=("alice", "carol"))
    p.cli("alias", "add", "@example.test", ALICE)
    p.cli("alias", "add", "sales@example.test", CAROL)
    p.start()
    assert send(p, ["sales@example.test"], b"Subject: sales\r\n\r\nfor sales\r\n") == {}
    delivered(p, CAROL)
    settle(p)
    assert p.messages(ALICE) == []
    p.stop()


def test_return_path_and_delivered_to():
    p = primary(users=("alice",))
    p.cli("alias", "add", "bob@example.test", ALICE)
    p.start()
    assert send(p, ["bob@example.test"], b"Subject: hdrs\r\n\r\nheaders\r\n",
                sender="Erin.Sender@Example.ORG") == {}
    m = delivered(p, ALICE)[0]
    hdr = m.split(b"\n\n", 1)[0].split(b"\n")
    # the local part keeps its case (RFC 5321 2.4); the domain's case does not matter
    assert hdr[0].startswith(b"Return-Path: <Erin.Sender@"), hdr[0]
    assert hdr[0].lower() == b"return-path: <erin.sender@example.org>", hdr[0]
    assert hdr[1] == b"Delivered-To: alice@example.test", hdr[1]
    assert hdr[2].startswith(b"Received: from client.example.org"), hdr[2]
    assert sum(1 for h in hdr if h.startswith(b"Return-Path:")) == 1
    # null sender
    assert send(p, [ALICE], b"Subject: bounce\r\n\r\nnull sender\r\n", sender="") == {}
    msgs = delivered(p, ALICE, 2)
    nulls = [x for x in msgs if b"null sender" in x]
    assert nulls and nulls[0].startswith(b"Return-Path: <>\nDelivered-To: alice@example.test\n"), msgs
    p.stop()


def test_unknown_user_without_catchall_550():
    p = primary(users=("alice",))
    p.start()
    code, text = rcpt_reply(p, "nobody@example.test")
    assert code == 550 and "5.1.1" in text, text
    # a mixed transaction: the known recipient gets it, the unknown is refused
    with smtplib.SMTP(p.ip, p.port, timeout=15) as c:
        c.ehlo("client.example.org")
        refused = c.sendmail("erin@example.org", [ALICE, "nobody@example.test"],
                             b"Subject: mixed\r\n\r\nmixed\r\n")
    assert list(refused) == ["nobody@example.test"], refused
    assert refused["nobody@example.test"][0] == 550
    delivered(p, ALICE)
    assert p.maildir("nobody@example.test") == []
    p.stop()


def test_primary_never_open_relay():
    p = primary(users=("alice",))
    p.cli("alias", "add", "@example.test", ALICE)
    # an alias may point outside, but that is the owner's choice, not relaying
    p.start()
    assert_foreign_refused(p)
    settle(p)
    assert p.queue_files() == []
    for e in queue_json(p):
        for r in e["recipients"]:
            assert r["address"].lower().endswith("@example.test"), e
    p.stop()


# --- backup ---------------------------------------------------------------------------------------

def dns_servfail():
    """The e2e resolver answers SERVFAIL at once: a backup's attempt to find
    its primary ends in a deferral now, not after a lookup's timeout."""
    return DnsRcode("127.0.0.1", DNS_PORT, rcode=2)


def test_backup_holds_mail_in_queue():
    dns_servfail()
    b = backup()
    b.start()
    refused = send(b, ["anyone@example.test", "alice@EXAMPLE.TEST"],
                   b"Subject: held\r\n\r\nkeep me\r\n", sender="erin@example.org")
    assert refused == {}, refused
    wait_for(lambda: b.queue_files(), timeout=5, what="a queue file in queue/active")
    settle(b)   # the scheduler has tried it (no primary found) and deferred it
    assert b.queued(), "the held message left the queue"
    q = queue_json(b)
    assert len(q) == 1, q
    e = q[0]
    assert e["sender"] == "erin@example.org", e
    rcpts = sorted(r["address"].lower() for r in e["recipients"])
    assert rcpts == ["alice@example.test", "anyone@example.test"], e
    assert not any(r["done"] for r in e["recipients"]), e
    assert all_mailboxes(b) == [], "a backup delivered locally"
    # the message and its story are on disk and in the log
    assert "event=queued" in b.log() and e["id"] in b.log()
    show = b.cli("queue", "show", e["id"]).stdout
    assert "erin@example.org" in show and "anyone@example.test" in show, show
    b.stop()


def test_backup_refuses_other_domains():
    b = backup()
    b.start()
    for rcpt in ("bob@example.org", "alice@other.test"):
        code, text = rcpt_reply(b, rcpt)
        assert code == 554 and "5.7.1" in text, "RCPT %s: %s" % (rcpt, text)
    assert_foreign_refused(b)
    settle(b)
    assert b.queue_files() == [] and queue_json(b) == []
    b.stop()


def test_backup_several_relay_domains():
    b = backup(domains=("example.test", "example.net"))
    b.start()
    assert send(b, ["a@example.test", "b@example.net"]) == {}
    code, text = rcpt_reply(b, "c@example.com")
    assert code == 554 and "5.7.1" in text, text
    wait_for(lambda: queue_json(b), timeout=5, what="queued message")
    q = queue_json(b)
    assert sorted(r["address"] for r in q[0]["recipients"]) == ["a@example.test", "b@example.net"]
    b.stop()


def test_backup_recipient_list():
    b = backup()
    lst = os.path.join(b.tmp, "recipients.txt")
    with open(lst, "w") as f:
        f.write("alice@example.test\nbob@example.test\n")
    b.cli("recipients", "load", "example.test", lst)
    b.start()
    for rcpt in ("alice@example.test", "bob@example.test", "alice@EXAMPLE.test"):
        code, text = rcpt_reply(b, rcpt)
        assert code == 250, "listed %s: %s" % (rcpt, text)
    code, text = rcpt_reply(b, "mallory@example.test")
    assert code == 550 and "5.1.1" in text, "unlisted: %s" % text
    code, text = rcpt_reply(b, "bob@example.org")
    assert code == 554 and "5.7.1" in text, text
    assert send(b, ["alice@example.test"], b"Subject: listed\r\n\r\nlisted\r\n") == {}
    wait_for(lambda: queue_json(b), timeout=5, what="queued message")
    q = queue_json(b)
    assert [r["address"] for r in q[0]["recipients"]] == ["alice@example.test"], q
    b.stop()


def test_backup_recipient_list_reload_while_running():
    b = backup()
    lst = os.path.join(b.tmp, "recipients.txt")
    with open(lst, "w") as f:
        f.write("alice@example.test\n")
    b.cli("recipients", "load", "example.test", lst)
    b.start()
    assert rcpt_reply(b, "carol@example.test")[0] == 550
    with open(lst, "w") as f:
        f.write("alice@example.test\ncarol@example.test\n")
    b.cli("recipients", "load", "example.test", lst)
    code, text = wait_for(lambda: (lambda r: r if r[0] == 250 else None)(rcpt_reply(b, CAROL)),
                          timeout=5, what="reloaded list to admit carol")
    assert code == 250, text
    b.stop()


def test_backup_never_open_relay_with_recipient_list():
    b = backup()
    lst = os.path.join(b.tmp, "recipients.txt")
    with open(lst, "w") as f:
        f.write("alice@example.test\n")
    b.cli("recipients", "load", "example.test", lst)
    b.start()
    assert_foreign_refused(b)
    for rcpt in ("alice%example.org@example.test", "\"alice@example.org\"@example.test"):
        code, text = rcpt_reply(b, rcpt)
        assert code in (501, 550, 553, 554), "RCPT %s: %s" % (rcpt, text)
    settle(b)
    assert queue_json(b) == []
    b.stop()


def test_primary_and_backup_side_by_side():
    """The MX pair on loopback: each role does its own job at the same time."""
    dns_servfail()
    p = primary(users=("alice",))
    b = backup()
    p.start()
    b.start()
    assert send(p, [ALICE], b"Subject: to mx1\r\n\r\nvia primary\r\n") == {}
    assert send(b, [ALICE], b"Subject: to mx2\r\n\r\nvia backup\r\n") == {}
    assert b"via primary" in delivered(p, ALICE)[0]
    wait_for(lambda: queue_json(b), timeout=5, what="backup queue")
    settle(p, b)
    assert len(p.messages(ALICE)) == 1
    assert len(queue_json(b)) == 1 and all_mailboxes(b) == []
    b.stop()
    p.stop()
