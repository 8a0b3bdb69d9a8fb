"""The SMTP server speaks RFC 5321 and its extensions correctly.

Driven by smtplib, swaks and raw sockets (lib.Conn) where every byte counts.
Every scenario ends with Server.stop(), which asserts a clean exit.
"""
import re
import smtplib
import socket
import ssl
import subprocess
import time

from lib import Conn, Server, wait_for

DOM = "example.test"
ALICE = "alice@example.test"
SWAKS_TIMEOUT = 60


def primary(users=("alice",), extra=None):
    p = Server(role="primary", extra=extra)
    p.setup_domain(users=users)
    return p.start()


def greeted(p, ehlo="client.example.org"):
    """A raw connection past the greeting (and EHLO when ehlo is set)."""
    c = Conn(p.ip, p.port)
    code, text = c.reply()
    assert code == 220, text
    if ehlo:
        code, text = c.cmd("EHLO " + ehlo)
        assert code == 250, text
    return c


def smtp(p, timeout=15):
    return smtplib.SMTP(p.ip, p.port, timeout=timeout)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def delivered(p, addr, n=1, timeout=10):
    """Wait until addr's mailbox holds n messages; return them."""
    return wait_for(lambda: len(p.messages(addr)) >= n and p.messages(addr),
                    timeout=timeout, what="%d message(s) for %s" % (n, addr))


def settle(p):
    """The server done with what it accepted (lib.Server.settle): the
    positive end marker before a test asserts that something did not
    happen (a wrong or a second delivery)."""
    p.settle()


def received_header(msg):
    """The first Received: header (unfolded) of a delivered message."""
    m = re.search(rb"^Received:.*?(?=^\S)", msg, re.M | re.S)
    assert m, msg
    return re.sub(rb"\s+", b" ", m.group(0)).decode("utf-8", "replace")


def queued_id(text):
    m = re.search(r"queued as (\S+)", text)
    assert m, "no queue id in %r" % text
    return m.group(1)


def swaks(p, *args):
    cmd = ["swaks", "--server", "%s:%d" % (p.ip, p.port), "--timeout", "15",
           "--helo", "swaks.example.org"] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=SWAKS_TIMEOUT)
    return r


# --- greeting, EHLO and the simple commands -------------------------------------

def test_ehlo_advertises_extensions():
    p = primary()
    with smtp(p) as c:
        code, msg = c.ehlo("client.example.org")
        assert code == 250, msg
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "starttls", "smtputf8"):
            assert c.has_extn(ext), "EHLO does not advertise %s: %r" % (ext, msg)
        assert c.esmtp_features["size"].strip().isdigit(), c.esmtp_features["size"]
        assert msg.decode().splitlines()[0].startswith("mx1.example.test"), msg
    p.stop()


def test_helo_works_and_delivers():
    p = primary()
    with smtp(p) as c:
        code, msg = c.helo("client.example.org")
        assert code == 250, msg
        # plain SMTP: no extensions; smtplib falls back to the basic dialogue
        c.sendmail("carol@example.org", [ALICE], b"Subject: helo\r\n\r\nvia HELO\r\n")
    m = delivered(p, ALICE)[0]
    assert b"via HELO" in m
    assert " with SMTP id " in received_header(m), received_header(m)
    p.stop()


def test_vrfy_help_noop_rset_quit():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("VRFY alice")
    assert code == 252, text
    code, text = c.cmd("VRFY <nobody@example.test>")
    assert code == 252, text    # never reveals whether a user exists
    code, text = c.cmd("HELP")
    assert code == 214, text
    code, text = c.cmd("NOOP")
    assert code == 250, text
    code, text = c.cmd("MAIL FROM:<carol@example.org>")
    assert code == 250, text
    code, text = c.cmd("RSET")
    assert code == 250, text
    # after RSET the transaction is gone: RCPT needs a new MAIL
    code, text = c.cmd("RCPT TO:<%s>" % ALICE)
    assert code == 503, text
    code, text = c.cmd("QUIT")
    assert code == 221, text
    assert c.closed(), "connection still open after QUIT"
    c.close()
    p.stop()


def test_lowercase_verbs_accepted():
    p = primary()
    c = greeted(p, ehlo=None)
    assert c.cmd("ehlo client.example.org")[0] == 250
    assert c.cmd("mail from:<carol@example.org>")[0] == 250
    assert c.cmd("rcpt to:<%s>" % ALICE)[0] == 250
    assert c.cmd("data")[0] == 354
    code, text = c.cmd("Subject: lc\r\n\r\nlower case verbs\r\n.")
    assert code == 250, text
    assert c.cmd("quit")[0] == 221
    c.close()
    assert b"lower case verbs" in delivered(p, ALICE)[0]
    p.stop()


# --- command sequencing ----------------------------------------------------------

def test_mail_before_ehlo_503():
    p = primary()
    c = greeted(p, ehlo=None)
    code, text = c.cmd("MAIL FROM:<carol@example.org>")
    assert code == 503, text
    # the session is still usable
    assert c.cmd("EHLO client.example.org")[0] == 250
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    c.close()
    p.stop()


def test_rcpt_before_mail_503():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("RCPT TO:<%s>" % ALICE)
    assert code == 503, text
    assert text.split()[1].startswith("5.5."), text
    c.close()
    p.stop()


def test_data_without_recipients_rejected():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("DATA")
    assert code == 503, "DATA before MAIL: %s" % text
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    code, text = c.cmd("DATA")
    assert code in (503, 554), "DATA with no recipients: %s" % text
    # not in DATA mode: a command is a command
    code, text = c.cmd("NOOP")
    assert code == 250, text
    c.close()
    settle(p)
    assert p.messages(ALICE) == []
    p.stop()


def test_nested_mail_503():
    p = primary()
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    code, text = c.cmd("MAIL FROM:<dave@example.org>")
    assert code == 503, text
    # the first transaction survives the refused nested MAIL
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, text = c.cmd("Subject: n\r\n\r\nnested\r\n.")
    assert code == 250, text
    c.close()
    m = delivered(p, ALICE)[0]
    assert m.startswith(b"Return-Path: <carol@example.org>\n"), m[:80]
    p.stop()


def test_unknown_command_500():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("FROBNICATE now")
    assert code in (500, 502), text
    assert c.cmd("NOOP")[0] == 250
    c.close()
    p.stop()


# --- STARTTLS ------------------------------------------------------------------------

def test_starttls_smtplib_delivers_esmtps():
    p = primary()
    with smtp(p) as c:
        c.ehlo("client.example.org")
        code, msg = c.starttls(context=tls_context())
        assert code == 220, msg
        assert isinstance(c.sock, ssl.SSLSocket)
        code, msg = c.ehlo("client.example.org")
        assert code == 250, msg
        assert not c.has_extn("starttls"), "STARTTLS offered again inside TLS: %r" % msg
        refused = c.sendmail("carol@example.org", [ALICE], b"Subject: tls\r\n\r\nover TLS\r\n")
        assert refused == {}
        code, msg = c.docmd("NOOP")
        assert code == 250, msg
    m = delivered(p, ALICE)[0]
    assert b"over TLS" in m
    assert " with ESMTPS id " in received_header(m), received_header(m)
    # the self-signed certificate was generated under data_dir/tls/
    import os
    assert os.listdir(os.path.join(p.data_dir, "tls")), "no certificate in data_dir/tls"
    p.stop()


def tls_session(p):
    """smtplib client past STARTTLS and the second EHLO."""
    c = smtp(p)
    c.ehlo("client.example.org")
    code, msg = c.starttls(context=tls_context())
    assert code == 220, msg
    code, msg = c.ehlo("client.example.org")
    assert code == 250, msg
    return c


def test_starttls_quit_gets_221():
    """The last reply of a TLS session (221 to QUIT) reaches the client before the close."""
    p = primary()
    for _ in range(3):
        c = tls_session(p)
        try:
            code, msg = c.docmd("QUIT")
        except smtplib.SMTPServerDisconnected as e:
            raise AssertionError("QUIT inside TLS: connection closed without 221 (%s)" % e)
        assert code == 221, msg
        c.close()
    p.stop()


def test_starttls_timeout_gets_421():
    p = primary(extra={"smtp": {"timeout": "2s"}})
    c = tls_session(p)
    try:
        code, msg = c.getreply()   # idle: wait for the server's timeout reply
    except smtplib.SMTPServerDisconnected as e:
        raise AssertionError("idle TLS session closed without 421 4.4.2 (%s)" % e)
    assert code == 421 and b"4.4.2" in msg, (code, msg)
    c.close()
    p.stop()


def test_starttls_requires_ehlo_and_no_args():
    p = primary()
    c = greeted(p, ehlo=None)
    code, text = c.cmd("STARTTLS")
    assert code == 503, "STARTTLS before EHLO: %s" % text
    assert c.cmd("EHLO client.example.org")[0] == 250
    code, text = c.cmd("STARTTLS now")
    assert code == 501, "STARTTLS with an argument: %s" % text
    c.close()
    p.stop()


def test_swaks_tls():
    p = primary()
    r = swaks(p, "--tls", "--from", "carol@example.org", "--to", ALICE,
              "--header", "Subject: swaks tls", "--body", "swaks over TLS")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  220" in r.stdout or "<~ 220" in r.stdout or "TLS started" in r.stdout, r.stdout
    m = delivered(p, ALICE)[0]
    assert b"swaks over TLS" in m
    assert " with ESMTPS id " in received_header(m), received_header(m)
    p.stop()


def test_swaks_pipeline_several_recipients():
    users = ("alice", "bob", "carol", "dave")
    p = primary(users=users)
    rcpts = ",".join("%s@%s" % (u, DOM) for u in users)
    r = swaks(p, "--pipeline", "--from", "erin@example.org", "--to", rcpts,
              "--header", "Subject: pipelined", "--body", "one message four mailboxes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PIPELINING" in r.stdout
    for u in users:
        msgs = delivered(p, "%s@%s" % (u, DOM))
        assert len(msgs) == 1, (u, msgs)
        assert b"one message four mailboxes" in msgs[0]
        assert msgs[0].startswith(b"Return-Path: <erin@example.org>\nDelivered-To: %s@%s\n"
                                  % (u.encode(), DOM.encode())), msgs[0][:120]
    settle(p)
    for u in users:
        assert len(p.messages("%s@%s" % (u, DOM))) == 1, "duplicate delivery to %s" % u
    p.stop()


def test_raw_pipelined_group_after_ehlo():
    """RFC 2920: MAIL, RCPT, RCPT, DATA in one packet, replies in order."""
    p = primary(users=("alice", "bob"))
    c = greeted(p)
    c.send("MAIL FROM:<carol@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354], codes
    code, text = c.cmd("Subject: group\r\n\r\npipelined group\r\n.")
    assert code == 250, text
    c.close()
    assert b"pipelined group" in delivered(p, ALICE)[0]
    assert b"pipelined group" in delivered(p, "bob@example.test")[0]
    p.stop()


# --- SIZE ---------------------------------------------------------------------------------

def test_size_param_too_big_552_at_mail():
    p = primary(extra={"smtp": {"max_message_size": "100k"}})
    c = greeted(p)
    code, text = c.cmd("MAIL FROM:<carol@example.org> SIZE=999999999999")
    assert code == 552, text
    assert "5.3.4" in text, text
    # a SIZE within the limit is fine
    code, text = c.cmd("MAIL FROM:<carol@example.org> SIZE=1000")
    assert code == 250, text
    c.close()
    p.stop()


def test_message_over_max_size_552_after_data():
    p = primary(extra={"smtp": {"max_message_size": "10k"}})
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250   # no SIZE declared
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    body = ("x" * 70 + "\r\n") * 400   # ~28 KiB
    c.send("Subject: big\r\n\r\n" + body)
    code, text = c.cmd(".")
    assert code == 552, text
    # the session is usable afterwards, and a small message goes through
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, text = c.cmd("Subject: small\r\n\r\nsmall one\r\n.")
    assert code == 250, text
    c.close()
    msgs = delivered(p, ALICE)
    settle(p)
    msgs = p.messages(ALICE)
    assert len(msgs) == 1 and b"small one" in msgs[0], msgs
    p.stop()


def test_smtplib_size_declared_too_big():
    """smtplib declares SIZE itself; the server refuses at MAIL."""
    p = primary(extra={"smtp": {"max_message_size": "10k"}})
    with smtp(p) as c:
        try:
            c.sendmail("carol@example.org", [ALICE], b"Subject: big\r\n\r\n" + b"y" * 20000 + b"\r\n")
            raise AssertionError("oversized message accepted")
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 552, e
    settle(p)
    assert p.messages(ALICE) == []
    p.stop()


# --- SMTPUTF8 and 8BITMIME ------------------------------------------------------------

def test_smtputf8_address_needs_param():
    p = primary()
    c = greeted(p)
    c.send("MAIL FROM:<j\u00f6rg@b\u00fccher.example>\r\n".encode("utf-8"))
    code, text = c.reply()
    assert code == 553, "UTF-8 sender without SMTPUTF8: %s" % text
    assert "5.6.7" in text, text
    c.send("MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8\r\n".encode("utf-8"))
    code, text = c.reply()
    assert code == 250, "UTF-8 sender with SMTPUTF8: %s" % text
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nGr\u00fc\u00dfe\r\n.\r\n".encode("utf-8"))
    code, text = c.reply()
    assert code == 250, text
    c.close()
    m = delivered(p, ALICE)[0]
    assert m.startswith("Return-Path: <j\u00f6rg@b\u00fccher.example>\n".encode("utf-8")), m[:80]
    assert "Gr\u00fc\u00dfe".encode("utf-8") in m
    assert "UTF8SMTP" in received_header(m), received_header(m)
    p.stop()


def test_smtputf8_recipient_needs_param():
    p = primary()
    p.cli("user", "add", "j\u00f6rg@example.test", input="secret\n")
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    c.send("RCPT TO:<j\u00f6rg@example.test>\r\n".encode("utf-8"))
    code, text = c.reply()
    assert code == 553 and "5.6.7" in text, "UTF-8 recipient in a non-SMTPUTF8 transaction: %s" % text
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<carol@example.org> SMTPUTF8")[0] == 250
    c.send("RCPT TO:<j\u00f6rg@example.test>\r\n".encode("utf-8"))
    code, text = c.reply()
    assert code == 250, text
    assert c.cmd("DATA")[0] == 354
    code, text = c.cmd("Subject: u\r\n\r\nfor j\u00f6rg\r\n.")
    assert code == 250, text
    c.close()
    m = delivered(p, "j\u00f6rg@example.test")[0]
    assert "for j\u00f6rg".encode("utf-8") in m
    p.stop()


def test_8bitmime_body():
    p = primary()
    body = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n" \
           "Content-Transfer-Encoding: 8bit\r\n\r\nna\u00efve caf\u00e9 \u00fcber \u2603\r\n"
    with smtp(p) as c:
        c.ehlo("client.example.org")
        assert c.has_extn("8bitmime")
        c.sendmail("carol@example.org", [ALICE], body.encode("utf-8"),
                   mail_options=["BODY=8BITMIME"])
    m = delivered(p, ALICE)[0]
    assert "na\u00efve caf\u00e9 \u00fcber \u2603\n".encode("utf-8") in m, m
    p.stop()


def test_body_param_unknown_value_refused():
    p = primary()
    c = greeted(p)
    code, text = c.cmd("MAIL FROM:<carol@example.org> BODY=9BIT")
    assert code in (501, 555), text
    code, text = c.cmd("MAIL FROM:<carol@example.org> FROBNICATE=1")
    assert code in (501, 555), text
    assert c.cmd("MAIL FROM:<carol@example.org> BODY=7BIT")[0] == 250
    c.close()
    p.stop()


# --- DATA ----------------------------------------------------------------------------------

def test_dot_unstuffing():
    p = primary()
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: dots\r\n\r\nfirst\r\n..x\r\n..\r\n...\r\n.. leading\r\nmid.dle\r\n.")
    code, text = c.cmd("")
    assert code == 250, text
    c.close()
    m = delivered(p, ALICE)[0]
    body = m.split(b"\n\n", 1)[1]
    assert body == b"first\n.x\n.\n..\n. leading\nmid.dle\n", body
    p.stop()


def test_several_messages_one_session():
    p = primary(users=("alice", "bob"))
    qids = []
    with smtp(p) as c:
        c.ehlo("client.example.org")
        for i in range(5):
            rcpt = ALICE if i % 2 == 0 else "bob@example.test"
            c.mail("sender%d@example.org" % i)
            c.rcpt(rcpt)
            code, msg = c.data(b"Subject: n%d\r\n\r\nmessage number %d\r\n" % (i, i))
            assert code == 250, msg
            qids.append(queued_id(msg.decode()))
    assert len(set(qids)) == 5, qids
    a = delivered(p, ALICE, 3)
    b = delivered(p, "bob@example.test", 2)
    settle(p)
    a, b = p.messages(ALICE), p.messages("bob@example.test")
    assert len(a) == 3 and len(b) == 2, (len(a), len(b))
    for i, m in enumerate(sorted(a + b, key=lambda m: int(re.search(rb"number (\d)", m).group(1)))):
        assert m.startswith(b"Return-Path: <sender%d@example.org>\n" % i), m[:60]
    p.stop()


def test_empty_message_and_null_sender():
    p = primary()
    c = greeted(p)
    assert c.cmd("MAIL FROM:<>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, text = c.cmd(".")
    assert code == 250, "empty message: %s" % text
    c.close()
    m = delivered(p, ALICE)[0]
    assert m.startswith(b"Return-Path: <>\nDelivered-To: alice@example.test\nReceived: "), m
    p.stop()


# --- resources: connection limit, timeouts ----------------------------------------------

def test_connection_limit():
    p = primary(extra={"smtp": {"max_connections": "2"}})
    a = greeted(p, ehlo=None)
    b = greeted(p, ehlo=None)
    c = Conn(p.ip, p.port)
    code, text = c.reply()
    assert code == 421, "third connection: %s" % text
    assert c.closed(), "server kept the refused connection open"
    c.close()
    # the two admitted sessions still work
    assert a.cmd("NOOP")[0] == 250 and b.cmd("NOOP")[0] == 250
    assert a.cmd("QUIT")[0] == 221
    a.close()

    def fresh():
        d = Conn(p.ip, p.port)
        try:
            code, _ = d.reply()
        except (EOFError, OSError):
            code = 0
        d.close()
        return code == 220
    wait_for(fresh, timeout=5, step=0.2, what="a slot to free after QUIT")
    b.close()
    p.stop()


def test_idle_timeout_421():
    p = primary(extra={"smtp": {"timeout": "2s"}})
    c = Conn(p.ip, p.port, timeout=10)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example.org")[0] == 250
    t0 = time.monotonic()
    code, text = c.reply()     # nothing sent: wait for the server to give up
    waited = time.monotonic() - t0
    assert code == 421, text
    assert "4.4.2" in text, text
    assert waited >= 1.0, "timeout after %.1fs, configured 2s" % waited
    assert c.closed(), "connection open after the timeout reply"
    c.close()
    assert "event=timeout" in p.log()
    p.stop()


def test_timeout_mid_data_nothing_delivered():
    p = primary(extra={"smtp": {"timeout": "2s"}})
    c = greeted(p)
    assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: stalled\r\n\r\nhalf a message\r\n")
    code, text = c.reply()
    assert code == 421, text
    assert c.closed()
    c.close()
    settle(p)
    assert p.messages(ALICE) == []
    assert p.queue_files() == []
    p.stop()


# --- queue id ---------------------------------------------------------------------------------

def test_queue_id_in_reply_header_and_log():
    p = primary()
    with smtp(p) as c:
        c.ehlo("client.example.org")
        c.mail("carol@example.org")
        c.rcpt(ALICE)
        code, msg = c.data(b"Subject: qid\r\n\r\nwhich id\r\n")
        assert code == 250, msg
    qid = queued_id(msg.decode())
    assert re.fullmatch(r"[A-Za-z0-9]+", qid), qid
    m = delivered(p, ALICE)[0]
    rh = received_header(m)
    assert " id %s" % qid in rh, (qid, rh)
    assert "for <alice@example.test>" in rh, rh
    wait_for(lambda: "event=delivered" in p.log(), timeout=5, what="delivery log line")
    lines = [ln for ln in p.log().splitlines() if re.search(r"tandem\[\d+\]: %s: " % re.escape(qid), ln)]
    events = " ".join(lines)
    assert "event=queued" in events and "from=<carol@example.org>" in events, lines
    assert "event=delivered" in events and "to=<alice@example.test>" in events, lines
    p.stop()
