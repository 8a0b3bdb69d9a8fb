"""SMTP details an administrator relies on (issue 7, item 6): RCPT
TO:<postmaster> without a domain, subaddressing with the configured
delimiter, an alias loop answered at RCPT instead of 250 and a bounce, and
well-formed UTF-8 only under SMTPUTF8. The RCPT lookups run on the worker
pool with the session paused.
"""
import sqlite3

from lib import Conn, Server, wait_for


def session(p, ehlo="client.example.org"):
    c = Conn(p.ip, p.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + ehlo)[0] == 250
    return c


def send(p, rcpts, body="Subject: t\r\n\r\nhello\r\n"):
    c = session(p)
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    codes = [c.cmd("RCPT TO:<%s>" % r)[0] if not r.startswith("<") else c.cmd("RCPT TO:" + r)[0]
             for r in rcpts]
    qid = None
    if 250 in codes:
        assert c.cmd("DATA")[0] == 354
        c.send(body + ".\r\n")
        code, text = c.reply()
        assert code == 250, text
        qid = text.split()[-1]
    c.cmd("QUIT")
    c.close()
    return codes, qid


def test_postmaster_without_a_domain_reaches_the_postmaster():
    p = Server(role="primary", hostname="mx1.example.test")
    p.setup_domain(users=("alice",))
    p.cli("alias", "add", "postmaster@example.test", "alice@example.test")
    p.start()
    codes, qid = send(p, ["<postmaster>", "<PostMaster>"])
    assert codes == [250, 250], codes
    wait_for(lambda: "%s: event=removed" % qid in p.log(), what="delivery")
    msgs = p.messages("alice@example.test")
    assert len(msgs) == 1 and b"for <postmaster@example.test>" in msgs[0], msgs
    p.stop()


def test_subaddress_with_the_configured_delimiter():
    p = Server(role="primary", extra={"server": {"recipient_delimiter": "-"}})
    p.setup_domain(users=("alice",))
    p.start()
    codes, qid = send(p, ["alice-lists@example.test", "alice+x@example.test"])
    assert codes == [250, 550], codes
    wait_for(lambda: "%s: event=removed" % qid in p.log(), what="delivery")
    msgs = p.messages("alice@example.test")
    assert len(msgs) == 1 and b"Delivered-To: alice-lists@example.test" in msgs[0], msgs
    p.stop()


def test_an_old_alias_loop_is_answered_at_rcpt_not_bounced():
    p = Server(role="primary")
    p.setup_domain(users=("alice",))
    p.cli("alias", "add", "a@example.test", "b@example.test")
    # a loop left by an older version: `alias add` refuses to make one now
    db = sqlite3.connect(p.data_dir + "/directory.db")
    cols = [r[1] for r in db.execute("PRAGMA table_info(aliases)")]
    assert {"alias", "domain", "target"} <= set(cols), cols
    db.execute("INSERT INTO aliases(alias, domain, target) "
               "VALUES ('b@example.test', 'example.test', 'a@example.test')")
    db.commit()
    db.close()
    p.start()
    codes, qid = send(p, ["a@example.test"])
    assert codes == [451], codes
    assert qid is None
    assert "4.4.6" in p.log() or "loop" in p.log()
    p.stop()


def test_badly_formed_utf8_under_smtputf8_gets_553():
    p = Server(role="primary")
    p.setup_domain(users=("alice",))
    p.start()
    c = session(p)
    # an overlong encoding of '/', a lone surrogate, a cut-off sequence
    for bad in (b"\xc0\xafx@example.test", b"\xed\xa0\x80@example.test", b"\xe2\x82@example.test"):
        c.send(b"MAIL FROM:<" + bad + b"> SMTPUTF8\r\n")
        code, text = c.reply()
        assert code == 553 and "5.6.7" in text, (bad, text)
    assert c.cmd("MAIL FROM:<b\u00f6b@example.org> SMTPUTF8")[0] == 250
    c.send(b"RCPT TO:<al\xc3ice@example.test>\r\n")
    code, text = c.reply()
    assert code == 553, text
    c.cmd("QUIT")
    p.stop()
