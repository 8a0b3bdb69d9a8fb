"""The directory as an administrator meets it: `tandem alias add` refuses an
alias that would make a loop (so no mail is ever accepted and then bounced
for it), and the addresses users give out reach their mailbox:
alice+tag@ (subaddressing) and "alice"@ (a quoted local part that needs no
quotes) are alice's.
"""
import smtplib

from lib import Server, wait_for

# Own loopback address: other files' scenarios may run at the same time.
IP = "127.0.9.10"
ALICE = "alice@example.test"


def fails(s, *args, err):
    p = s.cli(*args, check=False)
    assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
    assert err in p.stderr, (args, p.stderr)
    return p


def aliases(s):
    return s.cli("alias", "list").stdout.splitlines()


def test_alias_loops_refused():
    s = Server(role="primary", ip=IP)
    s.setup_domain(users=("alice",))
    s.cli("alias", "add", "a@example.test", "b@example.test")
    before = aliases(s)

    fails(s, "alias", "add", "a@example.test", "A@Example.test",
          err="tandem: alias a@example.test cannot point to itself")
    fails(s, "alias", "add", "b@example.test", "a@example.test",
          err="tandem: alias b@example.test would make a loop: "
              "b@example.test -> a@example.test -> b@example.test")
    # A good target beside the loop does not save it, and nothing of the
    # refused command is kept.
    s.cli("alias", "add", "b@example.test", "c@example.test")
    fails(s, "alias", "add", "c@example.test", ALICE, "a@example.test",
          err="c@example.test -> a@example.test -> b@example.test -> c@example.test")
    # Through the catch-all: a target nobody has falls back to it.
    fails(s, "alias", "add", "@example.test", "nobody@example.test",
          err="alias @example.test would make a loop: "
              "@example.test -> nobody@example.test -> @example.test")
    # Through subaddressing: a+x@ is a's.
    fails(s, "alias", "add", "c@example.test", "a+x@example.test",
          err="-> a+x@example.test -> a@example.test")
    assert aliases(s) == before + ["b@example.test -> c@example.test"], aliases(s)

    # What is no loop is taken: a diamond, a catch-all to a user.
    s.cli("alias", "add", "c@example.test", ALICE)
    s.cli("alias", "add", "d@example.test", "b@example.test", "c@example.test")
    s.cli("alias", "add", "@example.test", ALICE)
    assert "@example.test -> alice@example.test" in aliases(s)


def test_subaddress_and_quoted_local_part_delivered():
    s = Server(role="primary", ip=IP)
    s.setup_domain(users=("alice",))
    s.cli("alias", "add", "team@example.test", "alice+team@example.test")
    s.start()
    with smtplib.SMTP(s.ip, s.port, timeout=30) as c:
        c.ehlo("client.example.org")
        # One message each: a message's copies to one mailbox are one.
        for rcpt in ("alice+Tag@example.test", '"alice"@example.test', "team+x@example.test"):
            assert c.mail("carol@example.org")[0] == 250
            code, text = c.rcpt(rcpt)
            assert code == 250, (rcpt, code, text)
            code, text = c.data(b"Subject: tags\r\n\r\nhello\r\n")
            assert code == 250, (code, text)
        assert c.mail("carol@example.org")[0] == 250
        code, text = c.rcpt("nobody+alice@example.test")
        assert code == 550, (code, text)
    # Each names in Delivered-To the address that reached the mailbox.
    msgs = wait_for(lambda: len(s.messages(ALICE)) >= 3 and s.messages(ALICE),
                    what="three deliveries to alice")
    assert s.maildir("alice+tag@example.test") == []
    heads = sorted(m.split(b"\n")[1] for m in msgs)
    assert heads == [b"Delivered-To: alice+Tag@example.test",
                     b"Delivered-To: alice+team@example.test",
                     b"Delivered-To: alice@example.test"], heads
    # The quoted form was logged, queued and looked up as the plain one.
    assert 'to=<"alice"@' not in s.log()
    s.stop()
