"""The happy path: a primary takes mail for its users and delivers it."""
import smtplib

from lib import Server, wait_for


def test_primary_delivers_to_user():
    p = Server(role="primary")
    p.setup_domain(users=("alice",))
    p.start()
    with smtplib.SMTP(p.ip, p.port) as c:
        c.sendmail("carol@example.org", ["alice@example.test"],
                   b"Subject: hi\r\n\r\nhello alice\r\n")
    msgs = wait_for(lambda: p.messages("alice@example.test"), what="delivery")
    assert len(msgs) == 1
    m = msgs[0]
    assert m.startswith(b"Return-Path: <carol@example.org>\nDelivered-To: alice@example.test\n")
    assert b"Received: from" in m and b"hello alice\n" in m and b"\r\n" not in m
    p.stop()


def test_stale_maildir_tmp_cleaned_at_start():
    """A delivery cut short by a crash leaves a file in tmp/; start removes it."""
    import os
    p = Server(role="primary")
    p.setup_domain(users=("alice",))
    tmp = os.path.join(p.data_dir, "mail", "example.test", "alice", "tmp")
    os.makedirs(tmp)
    stale = os.path.join(tmp, "1700000000.0123456789ABCDEF.mx1.example.test")
    with open(stale, "w") as f:
        f.write("Subject: half\n")
    p.start()
    # (the clean-up is logged just after event=start)
    wait_for(lambda: "removed_maildir_tmp=1" in p.log(), what="event=recovery removed_maildir_tmp=1")
    assert not os.path.exists(stale)
    p.stop()
