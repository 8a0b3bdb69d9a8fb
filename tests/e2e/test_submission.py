"""Mail submission (issue 9): [listen] submission (STARTTLS) and
submissions (implicit TLS) with AUTH PLAIN and LOGIN through src/auth,
never AUTH on the MX port, no relay without AUTH, the [auth] plaintext
rule, the envelope sender and header From: the user owns (own address,
subaddress, aliases that lead to the mailbox, `user allow-from` grants;
never another user's, a foreign one, the null sender or a catch-all),
Date:/Message-ID: added, the Received: line without the client's address,
daily limits, a relayhost with STARTTLS and AUTH, and bad input: the AUTH
exchange, STARTTLS injection on 587, a 100 MB message. Clients: Python's
smtplib, swaks, neomutt."""
import base64
import re
import smtplib
import os
import ssl
import subprocess

import lib
from lib import rss_kib
from lib import Conn, Server

SUB_PORT = 1587
SUBS_PORT = 1465
PASSWORD = "secret"
ALICE = "alice@example.test"
BOB = "bob@example.test"


def sub_server(extra=None, users=("alice", "bob")):
    ex = {"listen": {}}
    for sec, kv in (extra or {}).items():
        ex.setdefault(sec, {}).update(kv)
    s = Server(role="primary", extra=ex)
    s.extra["listen"].update({"submission": "%s:%d" % (s.ip, SUB_PORT),
                              "submissions": "%s:%d" % (s.ip, SUBS_PORT)})
    s.write_config()
    s.setup_domain(users=users, password=PASSWORD)
    s.start()
    return s


def tls_context(s):
    ctx = ssl.create_default_context(cafile=s.data_dir + "/tls/cert.pem")
    ctx.check_hostname = False
    return ctx


def message(sender, to, subject):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@example.test>\r\n\r\nHello.\r\n" % (
                sender, to, subject, abs(hash(subject)))).encode()


def plain(user, password=PASSWORD):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def ehlo(c):
    c.send("EHLO client.example\r\n")
    return c.reply()


def test_auth_plain_and_login_over_starttls_then_local_and_remote_mail():
    s = sub_server()
    for mech in ("PLAIN", "LOGIN"):
        with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as c:
            c.ehlo("laptop.home.example")
            c.starttls(context=tls_context(s))
            c.ehlo("laptop.home.example")
            assert "PLAIN" in c.esmtp_features["auth"] and "LOGIN" in c.esmtp_features["auth"]
            c.user, c.password = ALICE, PASSWORD
            code, text = c.auth(mech, getattr(c, "auth_" + mech.lower()),
                                initial_response_ok=(mech == "PLAIN"))
            assert code == 235, (code, text)
            c.sendmail(ALICE, [BOB, "carol@example.org"],
                       message(ALICE, BOB, "by " + mech))
    log = s.settle()
    assert "event=login service=submission user=<alice@example.test>" in log
    assert "mech=PLAIN tls=yes" in log and "mech=LOGIN tls=yes" in log
    assert "user=<alice@example.test>" in log.split("event=queued", 1)[1]
    got = s.messages(BOB)
    assert len(got) == 2
    for m in got:
        head = m.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        # RFC 3848 ESMTPSA; the client's address and name are not there
        assert b"with ESMTPSA id" in head, head
        assert b"127.0.0.1" not in head and b"laptop.home.example" not in head, head
    # the foreign recipient waits in the queue for its MX (nothing answers
    # DNS here), it was not refused
    assert "carol@example.org" in s.cli("queue", "list").stdout
    s.stop()


def test_implicit_tls_on_submissions_and_hide_client_off():
    s = sub_server(extra={"submission": {"hide_client": "no"}})
    with smtplib.SMTP_SSL(s.ip, SUBS_PORT, context=tls_context(s), timeout=10) as c:
        c.login(ALICE, PASSWORD)
        c.sendmail(ALICE, [BOB], message(ALICE, BOB, "implicit"))
    s.settle()
    head = s.messages(BOB)[0].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    assert b"([127.0.0.1])" in head and b"with ESMTPSA" in head, head
    s.stop()


def test_no_mail_without_auth_and_no_auth_on_the_mx_port():
    s = sub_server()
    c = Conn(s.ip, SUB_PORT)
    assert c.reply()[0] == 220
    ehlo(c)
    c.send("MAIL FROM:<alice@example.test>\r\n")
    assert c.reply() == (530, "530 5.7.0 Authentication required")
    c.send("RCPT TO:<carol@example.org>\r\n")
    assert c.reply()[0] == 503
    c.send("QUIT\r\n")
    c.reply()
    # port 25: no AUTH in EHLO, AUTH refused, relay refused
    c = Conn(s.ip, s.port)
    assert c.reply()[0] == 220
    code, text = ehlo(c)
    assert code == 250 and "AUTH" not in text
    c.send("AUTH PLAIN %s\r\n" % plain(ALICE))
    code, text = c.reply()
    assert code == 502 and text.startswith("502 5.5.1"), text
    c.send("MAIL FROM:<alice@example.test>\r\n")
    assert c.reply()[0] == 250
    c.send("RCPT TO:<carol@example.org>\r\n")
    assert c.reply()[0] == 554
    c.send("QUIT\r\n")
    s.stop()


def test_no_password_before_tls_where_plaintext_is_never():
    s = sub_server(extra={"auth": {"plaintext": "never"}})
    c = Conn(s.ip, SUB_PORT)
    assert c.reply()[0] == 220
    code, text = ehlo(c)
    assert "AUTH" not in text and "STARTTLS" in text
    c.send("AUTH PLAIN %s\r\n" % plain(ALICE))
    assert c.reply() == (538, "538 5.7.11 Encryption required for requested authentication mechanism")
    c.send("QUIT\r\n")
    # after STARTTLS it is offered and works
    with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as m:
        m.starttls(context=tls_context(s))
        m.ehlo()
        assert "auth" in m.esmtp_features
        m.login(ALICE, PASSWORD)
    assert "auth_failed" not in s.log()
    s.stop()


def test_the_envelope_sender_must_be_the_users_own():
    s = sub_server(users=("alice", "bob", "carla"))
    s.cli("alias", "add", "sales@example.test", ALICE)
    s.cli("alias", "add", "team@example.test", ALICE, BOB)
    s.cli("alias", "add", "boss@example.test", "carla@example.test")
    s.cli("alias", "add", "@example.test", ALICE)      # the catch-all
    with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as c:
        c.login(ALICE, PASSWORD)
        for sender, want in (("alice@example.test", 250),
                             ("Alice@Example.Test", 250),
                             ("alice+lists@example.test", 250),
                             ("sales@example.test", 250),
                             ("team@example.test", 250),
                             ("bob@example.test", 553),
                             ("boss@example.test", 553),
                             ("nobody-yet@example.test", 553),   # only the catch-all takes it
                             ("alice@example.org", 553),
                             ("", 553)):
            code, text = c.mail(sender)
            assert code == want, (sender, code, text)
            if code == 250:
                c.rset()
            else:
                assert text.startswith(b"5.7.1 Sender address rejected"), text
    log = s.log()
    assert "event=reject cmd=MAIL" in log and "code=553" in log
    s.stop()


def test_wrong_passwords_bad_base64_and_cancelled_exchanges():
    s = sub_server()
    c = Conn(s.ip, SUB_PORT)
    assert c.reply()[0] == 220
    ehlo(c)
    c.send("AUTH PLAIN %s\r\n" % plain(ALICE, "wrong"))
    assert c.reply() == (535, "535 5.7.8 Authentication credentials invalid")
    c.send("AUTH PLAIN !!!notbase64\r\n")
    code, text = c.reply()
    assert code == 501 and text.startswith("501 5.5.2"), text
    c.send("AUTH LOGIN\r\n")
    assert c.reply() == (334, "334 VXNlcm5hbWU6")
    c.send("*\r\n")
    assert c.reply() == (501, "501 5.0.0 Authentication cancelled")
    c.send("AUTH CRAM-MD5\r\n")
    assert c.reply()[0] == 504
    c.send("AUTH PLAIN\r\n")
    assert c.reply() == (334, "334 ")
    c.send("%s\r\n" % ("A" * 3000))
    code, text = c.reply()
    assert code == 500, (code, text)
    # the session goes on, and a good login works after all that
    c.send("AUTH PLAIN %s\r\n" % plain(ALICE))
    assert c.reply()[0] == 235
    c.send("AUTH PLAIN %s\r\n" % plain(ALICE))
    assert c.reply()[0] == 503
    c.send("QUIT\r\n")
    log = s.log()
    assert "event=auth_failed service=submission user=<alice@example.test> client=[127.0.0.1]" in log
    assert "wrong" not in log and plain(ALICE, "wrong") not in log
    # ten errors in a row close the session, as on the MX port
    c = Conn(s.ip, SUB_PORT)
    c.reply()
    ehlo(c)
    closed = False
    for _ in range(12):
        try:
            c.send("AUTH LOGIN\r\n*\r\n")
            code, _ = c.reply()
            if code == 421:
                closed = True
                break
            c.reply()
        except (EOFError, OSError):
            closed = True
            break
    assert closed
    s.stop()


def test_swaks_submits_with_auth_plain_and_login_over_tls():
    s = sub_server()
    for mech, tls in (("PLAIN", "--tls"), ("LOGIN", "--tlsc")):
        port = SUB_PORT if tls == "--tls" else SUBS_PORT
        r = subprocess.run(["swaks", "--server", s.ip, "--port", str(port), tls,
                            "--auth", mech, "--auth-user", ALICE, "--auth-password", PASSWORD,
                            "--from", ALICE, "--to", BOB, "--header", "Subject: swaks " + mech,
                            "--timeout", "20"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "235 2.7.0" in r.stdout
    s.settle()
    subjects = b"".join(s.messages(BOB))
    assert b"Subject: swaks PLAIN" in subjects and b"Subject: swaks LOGIN" in subjects
    s.stop()


def submit_raw(s, sender, body, user=ALICE):
    """One message over a raw session after AUTH PLAIN: the reply to the
    end of DATA (code, text)."""
    c = Conn(s.ip, SUB_PORT)
    assert c.reply()[0] == 220
    ehlo(c)
    assert c.cmd("AUTH PLAIN %s" % plain(user))[0] == 235
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % BOB)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(body + ".\r\n")
    r = c.reply()
    c.send("QUIT\r\n")
    c.close()
    return r


def test_the_header_from_must_be_the_users_own_too():
    s = sub_server()
    s.cli("alias", "add", "sales@example.test", ALICE)
    for frm, want in (('"Doe, Alice" <alice@example.test>', 250),
                      ("sales@example.test (the sales desk)", 250),
                      ("Alice <alice@example.test>, Sales <sales@example.test>", 250),
                      ("bob@example.test", 550),
                      ("Alice <alice@example.test>, Mallory <mallory@example.org>", 550),
                      ('"alice@example.test" <mallory@example.org>', 550),
                      ("undisclosed-recipients:;", 550),
                      ("not an address", 550)):
        code, text = submit_raw(s, ALICE, "From: %s\r\nSubject: f\r\n\r\nhi\r\n" % frm)
        assert code == want, (frm, code, text)
        if code == 550:
            assert text.startswith("550 5.7.1") or text.startswith("550 5.6.0"), (frm, text)
    code, text = submit_raw(s, ALICE, "Subject: no from\r\n\r\nhi\r\n")
    assert text == "550 5.6.0 Message has no From: header field (RFC 5322 3.6)", text
    code, text = submit_raw(s, ALICE, "From: alice@example.test\r\nFrom: alice@example.test\r\n\r\n")
    assert code == 550 and "more than one From:" in text, text
    code, text = submit_raw(s, ALICE, "From: bob@example.test\r\n\r\n")
    assert text == "550 5.7.1 From: header address not owned by the authenticated user", text
    s.settle()
    assert len(s.messages(BOB)) == 3
    assert "event=reject stage=data" in s.log()
    s.stop()


def test_date_and_message_id_are_added_when_missing_and_kept_when_there():
    s = sub_server()
    assert submit_raw(s, ALICE, "From: alice@example.test\r\nSubject: bare\r\n\r\nbody\r\n")[0] == 250
    assert submit_raw(s, ALICE, "From: alice@example.test\r\nSubject: dressed\r\n"
                      "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <mine@example.test>\r\n"
                      "\r\nbody\r\n")[0] == 250
    # no body at all, not even the blank line
    assert submit_raw(s, ALICE, "From: alice@example.test\r\nSubject: headers only\r\n")[0] == 250
    s.settle()
    by = {}
    for m in s.messages(BOB):
        # Maildir files end their lines in LF
        head, _, body = m.replace(b"\r\n", b"\n").partition(b"\n\n")
        head = b"\n" + head
        subj = [ln for ln in head.split(b"\n") if ln.startswith(b"Subject: ")][0][9:]
        by[subj] = (head, body)
    head, body = by[b"bare"]
    assert body == b"body\n"
    assert head.count(b"\nDate: ") == 1 and head.count(b"\nMessage-ID: <") == 1, head
    assert b"@mx1.example.test>" in head
    head, body = by[b"dressed"]
    assert head.count(b"Date: ") == 1 and b"Message-ID: <mine@example.test>" in head, head
    assert head.count(b"Message-ID:") == 1
    head, body = by[b"headers only"]
    assert b"\nDate: " in head and b"\nMessage-ID: <" in head, head
    # the log line carries the Message-ID that was added
    assert re.search(r"event=queued .* message-id=\"?<[0-9A-F]{16}\.[0-9a-f]{16}@mx1\.example\.test>",
                     s.log())
    s.stop()


def test_addresses_granted_with_user_allow_from():
    s = sub_server()
    s.cli("user", "allow-from", ALICE, "info@example.org")
    s.cli("user", "allow-from", ALICE, "@example.net")
    out = s.cli("user", "show", ALICE).stdout
    assert "sends as: also @example.net, info@example.org" in out, out
    with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as c:
        c.login(ALICE, PASSWORD)
        for sender, want in (("info@example.org", 250), ("Info@Example.Org", 250),
                             ("anyone@example.net", 250), ("info2@example.org", 553),
                             ("x@sub.example.net", 553)):
            code, text = c.mail(sender)
            assert code == want, (sender, code, text)
            c.rset()
    # the header From: follows the same grants
    assert submit_raw(s, "info@example.org", "From: Info <info@example.org>\r\n\r\nx\r\n")[0] == 250
    s.cli("user", "disallow-from", ALICE, "info@example.org")
    assert submit_raw(s, ALICE, "From: Info <info@example.org>\r\n\r\nx\r\n")[0] == 550
    # bob has no grants of alice's
    with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as c:
        c.login(BOB, PASSWORD)
        assert c.mail("anyone@example.net")[0] == 553
    s.stop()


def test_daily_limits_per_user_answer_451_4_7_1():
    s = sub_server(extra={"submission": {"max_recipients_per_day": "3"}})
    s.cli("user", "limits", ALICE, "2", "default")
    with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as c:
        c.login(ALICE, PASSWORD)
        c.sendmail(ALICE, [BOB], message(ALICE, BOB, "one"))
        c.sendmail(ALICE, [BOB], message(ALICE, BOB, "two"))
        code, text = c.mail(ALICE)
        assert code == 451 and text.startswith(b"4.7.1 Daily limit of 2 messages"), text
    out = s.cli("user", "show", ALICE).stdout
    assert "sending: 2 messages and 3 (default) recipients a day; today 2 and 2" in out, out
    # bob has the default of 3 recipients a day
    c = Conn(s.ip, SUB_PORT)
    c.reply()
    ehlo(c)
    assert c.cmd("AUTH PLAIN %s" % plain(BOB))[0] == 235
    assert c.cmd("MAIL FROM:<%s>" % BOB)[0] == 250
    for i, want in ((1, 250), (2, 250), (3, 250), (4, 451)):
        code, text = c.cmd("RCPT TO:<r%d@example.org>" % i)
        assert code == want, (i, text)
    assert text == "451 4.7.1 Daily recipient limit reached, try again tomorrow"
    c.send("QUIT\r\n")
    s.cli("user", "limits", ALICE, "0", "0")
    with smtplib.SMTP(s.ip, SUB_PORT, timeout=10) as m:
        m.login(ALICE, PASSWORD)
        m.sendmail(ALICE, [BOB, "x@example.org", "y@example.org", "z@example.org"],
                   message(ALICE, BOB, "three"))
    s.stop()


def test_a_primary_sends_through_a_relayhost_with_starttls_and_auth(tmp_path):
    """[queue] relayhost: the primary hands every message for another domain
    to a smarthost (here another tandem's submission port), STARTTLS
    required, AUTH PLAIN from relayhost_auth_file; a refused login defers
    the mail, it does not bounce it. Outbound connections leave from the
    primary's own SMTP address ([queue] source_address by default)."""
    isp = Server(role="primary", ip="127.0.0.60", hostname="smtp.isp.test",
                 extra={"listen": {"submission": "%s:%d" % (lib.addr("127.0.0.60"), SUB_PORT)}})
    isp.setup_domain(domain="isp.test", users=("relay", "bob"), password="isp-secret")
    isp.cli("user", "allow-from", "relay@isp.test", "@example.test")
    isp.start()
    auth = tmp_path / "relay-auth"
    auth.write_text("relay@isp.test:isp-secret\n")
    os.chmod(str(auth), 0o600)
    p = Server(role="primary", extra={"queue": {"relayhost": "%s:%d" % (isp.ip, SUB_PORT),
                                                "relayhost_auth_file": str(auth)}})
    p.setup_domain(users=("alice",), password=PASSWORD)
    p.start()
    r = subprocess.run([lib.BIN, "-c", p.conf, "sendmail", "-f", ALICE, "bob@isp.test"],
                       input="Subject: via the smarthost\n\nhello\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    got = lib.wait_for(lambda: isp.messages("bob@isp.test"), timeout=20, what="bob on the ISP")
    assert b"Subject: via the smarthost" in got[0]
    assert b"with ESMTPSA" in got[0], got[0][:500]
    log = p.log()
    assert "event=smtp_tls" in log and "event=smtp_auth" in log and "user=<relay@isp.test>" in log
    assert "relay=%s[%s]:%d status=sent" % (isp.ip, isp.ip, SUB_PORT) in log, log
    ilog = isp.log()
    assert "event=login service=submission user=<relay@isp.test> client=[%s]" % p.ip in ilog, ilog
    p.stop()
    # a wrong password: deferred, never bounced
    auth.write_text("relay@isp.test:wrong\n")
    p.start()
    r = subprocess.run([lib.BIN, "-c", p.conf, "sendmail", "-f", ALICE, "bob@isp.test"],
                       input="Subject: refused\n\nhello\n", capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    lib.wait_for(lambda: "AUTH as relay@isp.test refused" in p.log(), timeout=20,
                 what="the refused AUTH")
    log = p.log()
    assert "status=bounced" not in log
    assert "wrong" not in log
    assert len(isp.messages("bob@isp.test")) == 1
    p.stop()
    isp.stop()


NEOMUTT_RC = """\
set from = "{user}"
set use_from = yes
set realname = "Alice"
set smtp_url = "{url}"
set smtp_pass = "{pw}"
set smtp_authenticators = "plain:login"
set ssl_starttls = yes
set ssl_force_tls = yes
set ssl_ca_certificates_file = "{ca}"
set certificate_file = "{d}/certificates"
set ssl_verify_host = no
set record = ""
set postponed = ""
set copy = no
"""


def test_neomutt_sends_over_starttls_and_implicit_tls(tmp_path):
    s = sub_server()
    for scheme, port in (("smtp", SUB_PORT), ("smtps", SUBS_PORT)):
        d = tmp_path / scheme
        d.mkdir()
        rc = d / "neomuttrc"
        rc.write_text(NEOMUTT_RC.format(
            user=ALICE, pw=PASSWORD, ca=s.data_dir + "/tls/cert.pem", d=str(d),
            url="%s://alice%%40example.test@%s:%d/" % (scheme, s.ip, port)))
        r = subprocess.run(["neomutt", "-n", "-F", str(rc), "-s", "neomutt " + scheme, BOB],
                           input="sent by neomutt over %s\n" % scheme, capture_output=True,
                           text=True, timeout=60, env={"HOME": str(d), "PATH": os.environ["PATH"]})
        assert r.returncode == 0, (scheme, r.stdout, r.stderr)
    lib.wait_for(lambda: len(s.messages(BOB)) == 2, timeout=20, what="both neomutt messages")
    got = b"".join(s.messages(BOB))
    assert b"Subject: neomutt smtp\n" in got and b"Subject: neomutt smtps\n" in got, got
    assert b"From: Alice <alice@example.test>" in got
    log = s.log()
    assert log.count("event=login service=submission user=<alice@example.test>") == 2, log
    s.stop()


def test_an_auth_injected_before_starttls_is_thrown_away():
    """CVE-2011-0411 on 587: whatever came behind STARTTLS in the clear,
    an AUTH with a good password included, is discarded, and a login made
    before STARTTLS does not survive it."""
    s = sub_server()
    c = Conn(s.ip, SUB_PORT)
    assert c.reply()[0] == 220
    ehlo(c)
    assert c.cmd("AUTH PLAIN %s" % plain(ALICE))[0] == 235     # loopback may, in the clear
    c.send("STARTTLS\r\nAUTH PLAIN %s\r\nMAIL FROM:<%s>\r\n" % (plain(BOB), BOB))
    code, text = c.reply()
    assert code == 220, text
    assert c.buf == b"", c.buf
    tls = tls_context(s).wrap_socket(c.s, server_hostname="mx1.example.test")
    tls.settimeout(10)
    c.s = tls
    code, text = c.cmd("EHLO client.example")
    assert code == 250 and "AUTH PLAIN LOGIN" in text, text    # not logged in any more
    assert c.cmd("MAIL FROM:<%s>" % ALICE) == (530, "530 5.7.0 Authentication required")
    c.send("QUIT\r\n")
    log = s.log()
    assert log.count("event=login service=submission") == 1, log
    assert "user=<bob@example.test>" not in log
    s.stop()



def test_a_100_mb_message_is_refused_with_552_and_memory_stays_bounded():
    s = sub_server()
    before = rss_kib(s.proc.pid)
    c = Conn(s.ip, SUB_PORT, timeout=60)
    assert c.reply()[0] == 220
    ehlo(c)
    assert c.cmd("AUTH PLAIN %s" % plain(ALICE))[0] == 235
    assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % BOB)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("From: alice@example.test\r\nSubject: big\r\n\r\n")
    line = ("x" * 998 + "\r\n").encode()
    chunk = line * 1024                     # 1 MiB
    peak = 0
    for i in range(100):
        c.send(chunk)
        if i % 10 == 0:
            peak = max(peak, rss_kib(s.proc.pid))
    c.send(".\r\n")
    code, text = c.reply()
    assert code == 552 and "5.3.4" in text, text
    # the message streamed through the filter: nothing near its size was
    # held (ASan keeps freed memory in quarantine: no bound to check there)
    if not lib.ASAN:
        assert peak - before < 30 * 1024, (before, peak)
    assert c.cmd("NOOP")[0] == 250
    c.send("QUIT\r\n")
    s.settle()
    assert s.messages(BOB) == []
    s.stop()


def test_postfix_relays_through_tandem_with_sasl():
    """A private Postfix (harness.Postfix) with relayhost = tandem's
    submission port, smtp_sasl_auth_enable and TLS required: Postfix's
    Cyrus SASL client logs in with PLAIN after STARTTLS and its mail arrives."""
    import harness
    assert os.geteuid() == 0, "the Postfix scenario needs root (postfix start)"
    s = sub_server()
    pf = harness.Postfix(lib.addr("127.0.0.61"), 25, prefix="tandem-e2e-postfix-",
                         comment="tests/e2e/test_submission.py", main={
                             "relayhost": "[%s]:%d" % (s.ip, SUB_PORT),
                             "smtp_sasl_auth_enable": "yes",
                             "smtp_sasl_password_maps": "static:%s:%s" % (ALICE, PASSWORD),
                             "smtp_sasl_security_options": "noanonymous",
                             "smtp_sasl_tls_security_options": "noanonymous",
                             "smtp_sasl_mechanism_filter": "plain, login",
                             "smtp_tls_security_level": "encrypt",
                             "smtpd_relay_restrictions": "permit_mynetworks, reject",
                             "smtp_bind_address": lib.addr("127.0.0.61"),
                             "queue_run_delay": "1s",
                             "minimal_backoff_time": "1s",
                             "maximal_backoff_time": "2s",
                             "smtpd_peername_lookup": "no",
                         })
    try:
        pf.start()
        with smtplib.SMTP(pf.ip, 25, timeout=30) as c:
            c.ehlo("client.example.net")
            c.sendmail(ALICE, [BOB], message(ALICE, BOB, "through postfix"))
        try:
            lib.wait_for(lambda: s.messages(BOB), timeout=30, what="Postfix's message")
        except AssertionError as e:
            raise AssertionError("%s\nPostfix's maillog:\n%s" % (e, pf.log()[-3000:]))
        assert b"Subject: through postfix" in s.messages(BOB)[0]
        log = s.log()
        assert re.search(r"event=login service=submission user=<alice@example\.test> "
                         r"client=\[%s\] session=\S+ mech=(PLAIN|LOGIN) tls=yes" %
                         re.escape(pf.ip), log), log
        assert re.search(r"relay=%s\[%s\]:%d.*status=sent" % (re.escape(s.ip), re.escape(s.ip),
                                                            SUB_PORT), pf.log()), pf.log()[-2000:]
    finally:
        left = pf.stop()
    assert not left, left
    s.stop()


def scram_client(c, user, password, proof_password=None, cancel_after_first=False,
                 mech="SCRAM-SHA-256", gs2="n,,", cbdata=b""):
    """SCRAM-SHA-256 (RFC 7677) from the client's side, by the RFC's
    formulas with hashlib and hmac, with channel binding cbdata under the
    gs2 header gs2 for -PLUS: returns the last reply (code, text)."""
    import hashlib
    import hmac
    b = base64.b64encode
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
    code, text = c.cmd("AUTH %s %s" % (mech, b((gs2 + first_bare).encode()).decode()))
    if code != 334:
        return code, text
    server_first = base64.b64decode(text[4:]).decode()
    if cancel_after_first:
        return c.cmd("*")
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha256", (proof_password or password).encode(),
                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(ckey).digest()
    final_wo = "c=%s,r=%s" % (b(gs2.encode() + cbdata).decode(), attrs["r"])
    auth_msg = ",".join((first_bare, server_first, final_wo)).encode()
    sig = hmac.new(stored, auth_msg, "sha256").digest()
    proof = bytes(x ^ y for x, y in zip(ckey, sig))
    code, text = c.cmd(b(("%s,p=%s" % (final_wo, b(proof).decode())).encode()).decode())
    if code != 334:
        return code, text
    skey = hmac.new(salted, b"Server Key", "sha256").digest()
    want = "v=" + b(hmac.new(skey, auth_msg, "sha256").digest()).decode()
    assert base64.b64decode(text[4:]).decode() == want, "the server's signature is wrong"
    return c.cmd("")


def test_scram_sha_256_by_the_rfc_formulas():
    s = sub_server()
    c = Conn(s.ip, SUB_PORT)
    assert c.reply()[0] == 220
    code, text = ehlo(c)
    assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in text, text
    assert scram_client(c, ALICE, PASSWORD, proof_password="wrong")[0] == 535
    assert scram_client(c, "nobody@example.test", PASSWORD)[0] == 535     # same answer
    assert scram_client(c, ALICE, PASSWORD, cancel_after_first=True)[0] == 501
    assert scram_client(c, ALICE, PASSWORD) == (235, "235 2.7.0 Authentication successful")
    assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
    c.send("QUIT\r\n")
    log = s.log()
    assert "mech=SCRAM-SHA-256" in log
    assert "event=auth_failed service=submission user=<alice@example.test>" in log and \
        "reason=password" in log
    assert "user=<nobody@example.test> client=[127.0.0.1] session=" in log and \
        "reason=unknown_user" in log
    s.stop()


def test_msmtp_submits_with_scram_sha_256(tmp_path):
    s = sub_server()
    rc = tmp_path / "msmtprc"
    rc.write_text("""account tandem
host {ip}
port {port}
from {user}
auth scram-sha-256
user {user}
password {pw}
tls on
tls_starttls on
tls_trust_file {ca}
tls_certcheck off
account default : tandem
""".format(ip=s.ip, port=SUB_PORT, user=ALICE, pw=PASSWORD, ca=s.data_dir + "/tls/cert.pem"))
    os.chmod(str(rc), 0o600)
    r = subprocess.run(["msmtp", "-C", str(rc), BOB],
                       input="From: alice@example.test\nSubject: msmtp scram\n\nhi\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lib.wait_for(lambda: s.messages(BOB), timeout=20, what="msmtp's message")
    assert b"Subject: msmtp scram" in s.messages(BOB)[0]
    assert "mech=SCRAM-SHA-256 tls=yes" in s.log()
    s.stop()


def test_scram_sha_256_plus_binds_to_the_tls_session():
    """Over TLS, EHLO offers SCRAM-SHA-256-PLUS: a client that binds to our
    certificate (tls-server-end-point, RFC 5929: SHA-256 of it) logs in; a
    binding to anything else, a "y" flag (a downgrade while -PLUS is
    offered) and -PLUS in the clear are refused. Simple clients (gsasl) may
    say STARTTLS before EHLO."""
    import hashlib
    s = sub_server()
    c = Conn(s.ip, SUB_PORT)
    c.reply()
    code, text = ehlo(c)
    assert "SCRAM-SHA-256" in text and "SCRAM-SHA-256-PLUS" not in text, text
    assert c.cmd("AUTH SCRAM-SHA-256-PLUS")[0] == 504
    c.send("QUIT\r\n")

    def tls_session():
        c = Conn(s.ip, SUB_PORT)
        c.reply()
        assert c.cmd("STARTTLS")[0] == 220          # before EHLO: taken on submission
        tls = tls_context(s).wrap_socket(c.s, server_hostname="mx1.example.test")
        tls.settimeout(10)
        c.s = tls
        code, text = ehlo(c)
        assert "SCRAM-SHA-256-PLUS" in text, text
        return c, hashlib.sha256(tls.getpeercert(binary_form=True)).digest()

    c, cert_hash = tls_session()
    assert scram_client(c, ALICE, PASSWORD, mech="SCRAM-SHA-256-PLUS",
                        gs2="p=tls-server-end-point,,", cbdata=cert_hash)[0] == 235
    c.send("QUIT\r\n")
    c, cert_hash = tls_session()
    code, text = scram_client(c, ALICE, PASSWORD, mech="SCRAM-SHA-256-PLUS",
                              gs2="p=tls-server-end-point,,", cbdata=b"\0" * 32)
    assert code == 501 and "channel binding" in text, text
    code, text = scram_client(c, ALICE, PASSWORD, mech="SCRAM-SHA-256", gs2="y,,")
    assert code == 501 and "offered" in text, text
    code, text = scram_client(c, ALICE, PASSWORD, mech="SCRAM-SHA-256-PLUS", gs2="n,,")
    assert code == 501, text
    # plain SCRAM-SHA-256 with "n" still works over TLS
    assert scram_client(c, ALICE, PASSWORD)[0] == 235
    c.send("QUIT\r\n")
    log = s.log()
    assert "mech=SCRAM-SHA-256-PLUS tls=yes" in log, log
    s.stop()
