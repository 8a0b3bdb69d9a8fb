"""Failures the sender must hear about: one DSN (RFC 3464), never to <>.

Messages are handed in with `tandem sendmail` while the server is down, so
the directory can change before the first delivery attempt.
"""
import email
import os
import subprocess

from lib import BIN, Server, wait_for


def primary(**extra):
    p = Server(role="primary", ip="127.0.5.10", extra=extra)
    p.setup_domain(users=("alice", "bob"))
    return p


def queue_offline(p, sender, rcpt, body):
    r = subprocess.run([BIN, "-c", p.conf, "sendmail", "-f", sender, rcpt], input=body,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def report(raw):
    """The three parts of a DSN: text, delivery status, original headers."""
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report", raw[:400]
    assert m.get_param("report-type") == "delivery-status"
    text, status, headers = m.get_payload()
    assert [x.get_content_type() for x in (text, status, headers)] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    return m, status.as_string(), headers.get_payload()


def test_permanent_failure_sends_one_dsn_to_the_sender():
    p = primary()
    queue_offline(p, "bob@example.test", "alice@example.test", "Subject: the original\nX-Mark: 42\n\nbody\n")
    p.cli("user", "del", "alice@example.test")
    p.start()
    dsn = wait_for(lambda: p.messages("bob@example.test"), what="the DSN to bob")
    assert len(dsn) == 1
    assert dsn[0].startswith(b"Return-Path: <>\n")
    m, status, headers = report(dsn[0])
    assert m["To"] == "<bob@example.test>" and m["Auto-Submitted"] == "auto-replied"
    assert "Final-Recipient: rfc822; alice@example.test" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "X-Mark: 42" in headers and "Subject: the original" in headers
    assert "body" not in headers
    # The DSN is in bob's mailbox before its own queue entry goes: wait
    # for both removals (the original's and the DSN's).
    wait_for(lambda: p.log().count("event=removed") >= 2, what="the original and the DSN removed")
    assert p.queued() == []
    p.stop()


def test_expired_message_sends_one_dsn_and_is_removed():
    p = primary(queue={"lifetime": "1s", "retry_min": "1s", "retry_max": "1s"})
    # alice's mailbox path is a plain file: every attempt fails temporarily
    blocker = os.path.join(p.data_dir, "mail", "example.test", "alice")
    os.makedirs(os.path.dirname(blocker), exist_ok=True)
    with open(blocker, "w") as f:
        f.write("not a maildir\n")
    queue_offline(p, "bob@example.test", "alice@example.test", "Subject: far away\n\nx\n")
    p.start()
    dsn = wait_for(lambda: p.messages("bob@example.test"), timeout=20, what="the expiry DSN")
    m, status, headers = report(dsn[0])
    assert "Final-Recipient: rfc822; alice@example.test" in status
    assert "Status: 4.4.7" in status
    assert "event=expired" in p.log()
    wait_for(lambda: p.queued() == [],
             what="the expired message gone")
    assert len(p.messages("bob@example.test")) == 1
    p.stop()


def test_no_dsn_for_the_null_sender():
    p = primary()
    queue_offline(p, "<>", "alice@example.test", "Subject: a bounce itself\n\nx\n")
    p.cli("user", "del", "alice@example.test")
    p.start()
    wait_for(lambda: "event=removed" in p.log(), what="the message dropped")
    assert "dsn=none(null sender)" in p.log()
    assert p.messages("bob@example.test") == []
    assert p.queued() == []
    p.stop()
