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
