"""IMAP as everyday clients use it (issue 8, item 4): the capabilities, the
login forms, folders with their special use, SELECT's responses, FETCH of
every item from the index and from the file, SEARCH, STORE, COPY/MOVE with
UIDPLUS, EXPUNGE, APPEND, QUOTA, IDLE pushed by a delivery, TLS both ways,
and curl's imap:// URLs. The clients are Python's imaplib and curl."""
import base64
import os
import imaplib
import re
import ssl
import subprocess
import time

from imap_util import (ALICE, BOB, IMAP_PORT, IMAPS_PORT, PASSWORD, Raw, deliver, imap_server,
                       login, raw_login, tls_context, wait_for)

CAPS = ("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN "
        "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED QUOTA").split()


def test_capabilities_login_forms_and_the_login_log_line():
    s = imap_server()
    m = imaplib.IMAP4(s.ip, IMAP_PORT)
    caps = m.capabilities
    for c in CAPS + ["STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN"]:
        assert c.upper() in caps, (c, caps)
    typ, data = m.xatom("ID", "NIL")
    assert typ == "OK" and b'"name" "tandem"' in m.untagged_responses["ID"][0]
    # AUTHENTICATE PLAIN with SASL-IR in one line
    r = Raw(s.ip)
    r.line()
    ir = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PASSWORD.encode()).decode()
    out = r.cmd("a", "AUTHENTICATE PLAIN " + ir)
    assert out[-1].startswith("a OK [CAPABILITY"), out
    assert "STARTTLS" not in out[-1] and "AUTH=" not in out[-1]
    r.close()
    # AUTHENTICATE LOGIN, a challenge each
    answers = iter([BOB.encode(), PASSWORD.encode()])
    m.authenticate("LOGIN", lambda challenge: next(answers))
    assert m.state == "AUTH"
    m.logout()
    # a wrong password: NO [AUTHENTICATIONFAILED]
    r = Raw(s.ip)
    r.line()
    out = r.cmd("b", "LOGIN %s wrong" % ALICE)
    assert out[-1].startswith("b NO [AUTHENTICATIONFAILED]"), out
    # commands of the wrong state are BAD
    assert r.cmd("c", "SELECT INBOX")[-1].startswith("c BAD")
    r.close()
    log = s.log()
    assert re.search(r"event=login service=imap user=<alice@example.test> client=\[[0-9.]+\] "
                     r"session=S\w+ mech=PLAIN tls=no", log), log
    wait_for(lambda: "event=logout service=imap user=<bob@example.test>" in s.log(),
             what="the logout line")
    s.stop()


def test_plaintext_never_means_logindisabled_until_tls():
    s = imap_server(extra={"auth": {"plaintext": "never"}})
    r = Raw(s.ip)
    greet = r.line()
    assert "LOGINDISABLED" in greet and "STARTTLS" in greet and "AUTH=PLAIN" not in greet
    out = r.cmd("a", "LOGIN %s %s" % (ALICE, PASSWORD))
    assert out[-1].startswith("a NO [PRIVACYREQUIRED]"), out
    out = r.cmd("b", "AUTHENTICATE PLAIN")
    assert out[-1].startswith("b NO [PRIVACYREQUIRED]"), out
    r.close()
    # STARTTLS, then the login works
    m = imaplib.IMAP4(s.ip, IMAP_PORT)
    m.starttls(ssl_context=tls_context(s))
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
    assert m.login(ALICE, PASSWORD)[0] == "OK"
    m.logout()
    # implicit TLS on imaps
    m = imaplib.IMAP4_SSL(s.ip, IMAPS_PORT, ssl_context=tls_context(s))
    assert "STARTTLS" not in m.capabilities
    assert m.login(ALICE, PASSWORD)[0] == "OK"
    m.logout()
    assert re.search(r"event=login service=imap user=<alice@example.test> .* tls=yes", s.log())
    s.stop()


def test_folders_list_extended_special_use_and_mutf7():
    s = imap_server()
    m = login(s)
    typ, data = m.list()
    names = {d.decode() for d in data}
    assert '(\\HasNoChildren) "/" "INBOX"' in names, names
    for su, name in (("\\Drafts", "Drafts"), ("\\Sent", "Sent"), ("\\Trash", "Trash"),
                     ("\\Junk", "Junk"), ("\\Archive", "Archive")):
        assert any(su in d and d.endswith('"%s"' % name) for d in names), (su, names)
    assert m.create("Work/Projects")[0] == "OK"
    assert m.create("Caf&AOk-")[0] == "OK"                       # "Café"
    assert m.create("Work/Projects")[0] == "NO"                  # exists now
    typ, data = m._simple_command("CREATE", "Receipts", "(USE (\\Archive))")
    assert typ == "OK"
    names = [d.decode() for d in m.list('""', "*")[1]]
    assert '(\\HasChildren) "/" "Work"' in names or '(\\Noselect \\HasChildren) "/" "Work"' in names, names
    assert '(\\HasNoChildren) "/" "Work/Projects"' in names, names
    assert '(\\HasNoChildren) "/" "Caf&AOk-"' in names, names
    assert '(\\HasNoChildren \\Archive) "/" "Receipts"' in names, names
    # % stops at the separator
    top = [d.decode() for d in m.list('""', "%")[1]]
    assert not any("Work/Projects" in d for d in top), top
    assert [d.decode() for d in m.list("Work/", "%")[1]] == ['(\\HasNoChildren) "/" "Work/Projects"']
    # the delimiter query
    assert m.list('""', '""')[1] == [b'(\\Noselect) "/" ""']
    # the folder is UTF-8 on disk
    import os
    assert any("Caf\u00e9" in n for n in os.listdir(os.path.join(s.data_dir, "mail", "example.test",
                                                                 "alice"))), "utf-8 name on disk"
    # subscriptions, LSUB and LIST-EXTENDED
    assert m.subscribe("Work/Projects")[0] == "OK"
    lsub = [d.decode() for d in m.lsub()[1]]
    assert any(d.endswith('"Work/Projects"') for d in lsub) and any(d.endswith('"Sent"') for d in lsub)
    typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"*"',
                                  "RETURN", "(CHILDREN)")
    got = [d.decode() for d in m.untagged_responses.pop("LIST", [])]
    assert any('"Work" ("CHILDINFO" ("SUBSCRIBED"))' in d for d in got), got
    assert any("\\Subscribed" in d and d.endswith('"Work/Projects"') for d in got), got
    m._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
    got = [d.decode() for d in m.untagged_responses.pop("LIST", [])]
    assert len(got) == 6 and all(re.search(r"\\(Drafts|Sent|Trash|Junk|Archive)", d) for d in got), got
    m._simple_command("LIST", '""', '("INBOX" "Sent")', "RETURN", "(SUBSCRIBED SPECIAL-USE)")
    got = [d.decode() for d in m.untagged_responses.pop("LIST", [])]
    assert len(got) == 2 and any("\\Sent" in d and "\\Subscribed" in d for d in got), got
    # a subscription may name no folder (RFC 3501 §6.3.6)
    assert m.subscribe("Gone/Deep")[0] == "OK"
    lsub = [d.decode() for d in m.lsub('""', "*")[1]]
    assert any("\\Noselect" in d and d.endswith('"Gone/Deep"') for d in lsub), lsub
    m._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')
    got = [d.decode() for d in m.untagged_responses.pop("LIST", [])]
    assert any("\\NonExistent" in d and "\\Subscribed" in d and d.endswith('"Gone/Deep"')
               for d in got), got
    assert got[0].endswith('"INBOX"'), got
    assert m.unsubscribe("Gone/Deep")[0] == "OK"
    assert m.unsubscribe("Work/Projects")[0] == "OK"
    # RENAME and DELETE
    assert m.rename("Work/Projects", "Work/Done")[0] == "OK"
    assert m.delete("Work/Done")[0] == "OK"
    assert m.delete("INBOX")[0] == "NO"
    assert m.delete("Nope")[0] == "NO"
    typ, data = m.status("Nope", "(MESSAGES)")
    assert typ == "NO" and data[0].startswith(b"[NONEXISTENT]"), data
    typ, data = m._simple_command("GETQUOTAROOT", "Nope")
    assert typ == "NO" and data[0].startswith(b"[NONEXISTENT]"), data
    # NAMESPACE
    typ, data = m.namespace()
    assert data == [b'(("" "/")) NIL NIL'], data
    m.logout()
    s.stop()


def test_select_fetch_search_store_and_the_seen_flag():
    s = imap_server()
    deliver(s, subject="first", body="Alpha beta gamma.\r\n")
    deliver(s, subject="second =?utf-8?q?caf=C3=A9?=", body="Delta epsilon.\r\n")
    m = login(s)
    typ, data = m.select("INBOX")
    assert data == [b"2"], data
    u = m.untagged_responses
    assert u["FLAGS"] == [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft)"]
    assert u["PERMANENTFLAGS"] == [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)"]
    assert u["RECENT"] == [b"2"] and u["UNSEEN"] == [b"1"]
    assert "UIDVALIDITY" in u and u["UIDNEXT"] == [b"3"] and "READ-WRITE" in u
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert len(data) == 2 and b"UID 1 " in data[0] and b"\\Recent" in data[0], data
    size = int(re.search(rb"RFC822.SIZE (\d+)", data[0]).group(1))
    typ, data = m.fetch("1", "(ENVELOPE BODY BODYSTRUCTURE)")
    assert b'"first"' in data[0] and b'(("Carol" NIL "carol" "example.org"))' in data[0], data
    assert b'BODYSTRUCTURE ("TEXT" "PLAIN"' in data[0], data
    # macros
    for macro in ("ALL", "FAST", "FULL"):
        typ, data = m.fetch("1", macro)
        assert typ == "OK" and b"RFC822.SIZE" in data[0], (macro, data)
    # PEEK leaves \Seen alone; BODY[] sets it and says so
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert len(data[0][1]) == size and data[0][1].count(b"\r\n") == data[0][1].count(b"\n")
    assert b"\\Seen" not in m.fetch("1", "FLAGS")[1][0]
    typ, data = m.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)] BODY[TEXT] BODY[1] BODY[]<2.5>)")
    flat = b"".join(x if isinstance(x, bytes) else x[0] + x[1] for x in data)
    assert b"Subject: first\r\n\r\n" in flat and b"Alpha beta gamma.\r\n" in flat, flat
    assert b"BODY[]<2> {5}" in flat and b"FLAGS (\\Seen" in flat, flat
    assert b"\\Seen" in m.fetch("1", "FLAGS")[1][0]
    typ, data = m.fetch("2", "(RFC822.HEADER BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT DATE)] BODY.PEEK[1.MIME])")
    flat = b"".join(x if isinstance(x, bytes) else x[0] + x[1] for x in data)
    assert b"RFC822.HEADER" in flat and b"Message-ID" in flat, flat
    # SEARCH: flags, headers (MIME words decoded), body, dates, sizes, sets
    assert m.search(None, "SEEN")[1] == [b"1"]
    assert m.search(None, "UNSEEN")[1] == [b"2"]
    m.literal = "caf\u00e9".encode()
    assert m.search("UTF-8", "SUBJECT")[1] == [b"2"]
    assert m.search(None, "FROM", "carol")[1] == [b"1 2"]
    assert m.search(None, "BODY", "epsilon")[1] == [b"2"]
    assert m.search(None, "TEXT", "Alpha")[1] == [b"1"]
    assert m.search(None, "OR", "SEEN", "BODY", "delta")[1] == [b"1 2"]
    assert m.search(None, "NOT", "(SEEN)")[1] == [b"2"]
    assert m.search(None, "SENTON", "1-Dec-2026")[1] == [b"1 2"]
    assert m.search(None, "SENTBEFORE", "1-Dec-2026")[1] == [b""]
    assert m.search(None, "LARGER", "10", "SMALLER", "100000")[1] == [b"1 2"]
    assert m.search(None, "2:*")[1] == [b"2"]
    assert m.uid("SEARCH", "UID", "2")[1] == [b"2"]
    assert m.search(None, "HEADER", "Message-ID", "example.org")[1] == [b"1 2"]
    assert m.search(None, "NEW")[1] == [b"2"]
    typ, data = m._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0], data
    # STORE and keywords
    typ, data = m.store("2", "+FLAGS", "(\\Flagged $Important)")
    assert b"\\Flagged" in data[0] and b"$Important" in data[0], data
    assert m.search(None, "KEYWORD", "$Important")[1] == [b"2"]
    assert m.store("2", "-FLAGS.SILENT", "(\\Flagged)")[1] == [None]
    assert m.uid("STORE", "2", "FLAGS", "(\\Answered)")[0] == "OK"
    assert b"\\Answered" in m.fetch("2", "FLAGS")[1][0]
    # a bad sequence number is BAD, a bad item too
    r = raw_login(s)
    r.cmd("s", "SELECT INBOX")
    assert r.cmd("f", "FETCH 9 FLAGS")[-1].startswith("f BAD")
    assert r.cmd("g", "FETCH 1 NOSUCHITEM")[-1].startswith("g BAD")
    assert r.cmd("h", "STORE 1 +FLAGS (\\Bogus)")[-1].startswith("h BAD")
    r.close()
    # EXAMINE is read-only
    typ, data = m.select("INBOX", readonly=True)
    assert "READ-ONLY" in m.untagged_responses
    assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "NO"
    m.logout()
    s.stop()


def test_copy_move_expunge_uidplus_and_another_sessions_view():
    s = imap_server()
    for i in range(3):
        deliver(s, subject="m%d" % i)
    a = login(s)
    b = login(s)
    a.select("INBOX")
    b.select("INBOX")
    typ, data = a.copy("1:2", "Archive")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
    assert a.copy("1", "Nowhere")[1][0].startswith(b"[TRYCREATE]")
    typ, data = a.uid("MOVE", "3", "Trash")
    assert typ == "OK", data
    assert a.untagged_responses.pop("EXPUNGE", None) == [b"3"], a.untagged_responses
    # b hears of the move at its next command
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE", None) == [b"3"], b.untagged_responses
    # flags set by a reach b as FETCH FLAGS; expunges wait while b FETCHes
    a.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = a.expunge()
    assert data == [b"1"], data
    typ, data = b.fetch("1:*", "(FLAGS)")
    assert "EXPUNGE" not in b.untagged_responses, b.untagged_responses
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE", None) == [b"1"], b.untagged_responses
    assert a.status("INBOX", "(MESSAGES)")[1] == [b'"INBOX" (MESSAGES 1)']
    assert a.status("Archive", "(MESSAGES UIDNEXT UNSEEN)")[1] == [b'"Archive" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)']
    # UID EXPUNGE removes only the given UIDs
    a.select("Archive")
    a.store("1:2", "+FLAGS", "(\\Deleted)")
    typ, data = a.uid("EXPUNGE", "2")
    assert typ == "OK" and a.untagged_responses.pop("EXPUNGE", None) == [b"2"], a.untagged_responses
    # CLOSE expunges silently; UNSELECT does not
    a.close()
    assert a.status("Archive", "(MESSAGES)")[1] == [b'"Archive" (MESSAGES 0)']
    a.select("Trash")
    a.store("1", "+FLAGS", "(\\Deleted)")
    assert a._simple_command("UNSELECT")[0] == "OK"
    assert a.status("Trash", "(MESSAGES)")[1] == [b'"Trash" (MESSAGES 1)']
    a.logout()
    b.logout()
    s.stop()


def test_append_with_flags_and_date_quota_and_trycreate():
    s = imap_server()
    s.cli("user", "quota", ALICE, "10K")
    m = login(s)
    msg = b"From: a@example.test\r\nSubject: draft\r\n\r\n" + b"x" * 1000 + b"\r\n"
    typ, data = m.append("Drafts", "(\\Draft \\Seen)", '"05-Jan-2025 10:11:12 +0200"', msg)
    assert typ == "OK" and re.match(rb"\[APPENDUID \d+ 1\]", data[0]), data
    m.select("Drafts")
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    head = data[0][0]
    assert b"\\Draft" in head and b'"05-Jan-2025 10:11:12 +0200"' in head, head
    assert data[0][1] == msg
    typ, data = m.append("Nope", None, None, msg)
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), data
    typ, data = m.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"y" * 20000 + b"\r\n")
    assert typ == "NO" and b"OVERQUOTA" in data[0], data
    typ, data = m.getquotaroot("INBOX")
    assert data[0] == [b'"INBOX" ""'] and re.match(rb'"" \(STORAGE \d+ 10\)', data[1][0]), data
    assert m.getquota('""')[0] == "OK"
    assert m.setquota('""', "(STORAGE 100)")[0] == "NO"
    m.logout()
    s.stop()


def test_idle_gets_new_mail_at_once():
    s = imap_server()
    r = raw_login(s)
    r.cmd("s", "SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line().startswith("+ ")
    deliver(s, subject="while idling")
    assert r.until("* 1 EXISTS")[-1] == "* 1 EXISTS"
    r.send("DONE\r\n")
    assert r.until("i ")[-1].startswith("i OK")
    r.cmd("z", "LOGOUT")
    s.stop()


def test_curl_imap_urls():
    s = imap_server()
    deliver(s, subject="for curl", body="Curl reads this.\r\n")
    base = "imap://%s:%d" % (s.ip, IMAP_PORT)
    out = subprocess.run(["curl", "-sS", "--user", "%s:%s" % (ALICE, PASSWORD), base + "/"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and '"INBOX"' in out.stdout, out
    out = subprocess.run(["curl", "-sS", "--user", "%s:%s" % (ALICE, PASSWORD),
                          base + "/INBOX;UID=1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Curl reads this." in out.stdout, out
    out = subprocess.run(["curl", "-sS", "--user", "%s:%s" % (ALICE, PASSWORD),
                          base + "/INBOX?SUBJECT%20curl"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "SEARCH 1" in out.stdout, out
    out = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", s.data_dir + "/tls/cert.pem",
                          "-k", "--user", "%s:%s" % (ALICE, PASSWORD), base + "/INBOX;UID=1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Curl reads this." in out.stdout, out
    s.stop()


def test_shutdown_says_bye():
    s = imap_server()
    r = raw_login(s)
    s.proc.send_signal(15)
    assert r.until("* BYE")[-1].startswith("* BYE")
    assert s.proc.wait(timeout=30) == 0
    s.proc = None


def test_a_long_fetch_streams_and_never_blocks_another_session():
    s = imap_server()
    # files that appear in the Maildir from elsewhere get UIDs at the next open
    new = os.path.join(s.data_dir, "mail", "example.test", "alice", "new")
    login(s).logout()          # the account exists now
    n = 1500
    body = ("Line of text number %d, long enough to fill the output.\n" * 40)
    for i in range(n):
        with open(os.path.join(new, "1700000000.M%dP1.test" % i), "w") as f:
            f.write("From: x@example.org\nSubject: bulk %d\n\n%s" % (i, body % tuple([i] * 40)))
    a = raw_login(s)
    out = a.cmd("s", "SELECT INBOX")
    assert "* %d EXISTS" % n in out, out[:5]
    # a's answer is megabytes: a does not read it yet
    a.send("f FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])\r\n")
    b = raw_login(s)
    assert b.cmd("n", "NOOP")[-1].startswith("n OK")       # served meanwhile
    b.cmd("s", "EXAMINE INBOX")
    out = b.cmd("u", "UID FETCH 1:* (UID FLAGS)")
    assert len(out) == n + 1 and out[-1].startswith("u OK"), out[-3:]
    b.close()
    got = 0
    while True:
        ln = a.line()
        if ln.startswith("f "):
            assert ln.startswith("f OK"), ln
            break
        m = re.match(r"\* \d+ FETCH .*BODY\[\] \{(\d+)\}$", ln)
        if m:
            size = int(m.group(1))
            while len(a.buf) < size:
                a.buf += a.s.recv(65536)
            data, a.buf = a.buf[:size], a.buf[size:]
            assert data.count(b"\r\n") == data.count(b"\n")
            got += 1
    assert got == n
    out = a.cmd("x", "SEARCH SUBJECT \"bulk 1499\"")
    assert re.match(r"\* SEARCH \d+$", out[0]), out    # one match among 1500
    seq = out[0].split()[-1]
    out = a.cmd("y", "FETCH %s (BODY.PEEK[HEADER.FIELDS (SUBJECT)])" % seq)
    assert out[1] == "Subject: bulk 1499", out
    a.close()
    s.stop()


def test_idle_sees_another_sessions_flags_and_expunge():
    s = imap_server()
    deliver(s, subject="a")
    deliver(s, subject="b")
    r = raw_login(s)
    r.cmd("s", "SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line().startswith("+ ")
    m = login(s)
    m.select("INBOX")
    m.store("2", "+FLAGS", "(\\Flagged)")
    ln = r.until("* 2 FETCH")[-1]
    assert "\\Flagged" in ln, ln
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    assert r.until("* 1 EXPUNGE")[-1] == "* 1 EXPUNGE"
    r.send("DONE\r\n")
    assert r.until("i ")[-1].startswith("i OK")
    out = r.cmd("f", "FETCH 1 (UID FLAGS)")
    assert out[0].startswith("* 1 FETCH (UID 2 FLAGS (") and "\\Flagged" in out[0], out
    m.logout()
    r.close()
    s.stop()


def test_a_large_message_goes_out_in_pieces_with_its_exact_size():
    s = imap_server()
    m = login(s)
    lines = b"".join(b"line %07d of a large message, with some text on it\r\n" % i
                     for i in range(60000))
    msg = b"From: big@example.org\r\nSubject: large\r\n\r\n" + lines
    assert len(msg) > 3 * 1024 * 1024
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "OK", data
    m.append("INBOX", None, None, b"Subject: small\r\n\r\nafter the large one\r\n")
    m.select("INBOX")
    typ, data = m.fetch("1:2", "(RFC822.SIZE BODY.PEEK[])")
    assert data[0][1] == msg and b"RFC822.SIZE %d" % len(msg) in data[0][0], data[0][0]
    assert data[2][1] == b"Subject: small\r\n\r\nafter the large one\r\n", data[2]
    typ, data = m.fetch("1", "(BODY[]<1000000.70>)")
    assert data[0][1] == msg[1000000:1000070], data
    assert b"\\Seen" in m.fetch("1", "FLAGS")[1][0]
    m.logout()
    s.stop()


def test_scattered_expunges_are_told_in_order_and_wait_out_a_fetch():
    """Sessions share one map of a folder's UIDs; each still hears every
    change as RFC 3501 wants it: expunges by the number the message has when
    the response is read, never while a FETCH answers (the new mail waits
    with them), new mail alone during a FETCH as EXISTS."""
    s = imap_server()
    for i in range(10):
        deliver(s, subject="n%d" % i)
    r = raw_login(s)
    out = r.cmd("s", "SELECT INBOX")
    assert "* 10 EXISTS" in out, out
    m = login(s)
    m.select("INBOX")
    m.store("2,3,5,9", "+FLAGS", "(\\Deleted)")
    m.expunge()
    deliver(s, subject="late")
    # a FETCH by sequence number: neither the expunges nor the new message
    out = r.cmd("f", "FETCH 1:* (UID)")
    assert not [x for x in out if "EXPUNGE" in x or "EXISTS" in x], out
    assert len([x for x in out if " FETCH (" in x]) == 6, out
    # the next NOOP: 2, 2, 3, 6 (each number after the ones before), then 7
    out = r.cmd("n", "NOOP")
    assert [x for x in out if "EXPUNGE" in x] == ["* 2 EXPUNGE", "* 2 EXPUNGE", "* 3 EXPUNGE",
                                                  "* 6 EXPUNGE"], out
    assert "* 7 EXISTS" in out, out
    out = r.cmd("u", "FETCH 1:* (UID)")
    uids = [int(re.search(r"UID (\d+)", x).group(1)) for x in out if " FETCH (" in x]
    assert uids == [1, 4, 6, 7, 8, 10, 11], out
    # new mail alone may be told during a FETCH
    deliver(s, subject="later")
    out = r.cmd("g", "FETCH 1 (UID)")
    assert "* 8 EXISTS" in out, out
    # the other session's view moved too, and its own EXPUNGE numbers agree
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    assert data == [b"1"], data
    out = r.cmd("z", "NOOP")
    assert "* 1 EXPUNGE" in out, out
    m.logout()
    r.close()
    s.stop()


def test_idle_keepalive_and_the_idle_limit():
    """IDLE gets "* OK Still here" every [imap] idle_keepalive, and the
    session's [imap] timeout (60 s here, the least allowed) still ends an
    IDLE the client never ends, with a BYE."""
    s = imap_server(extra={"imap": {"idle_keepalive": "10s", "timeout": "60s"}})
    r = raw_login(s)
    r.cmd("s", "SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line().startswith("+ ")
    r.s.settimeout(30)        # the default keepalive (2 minutes) would not come
    assert r.line() == "* OK Still here"
    r.s.settimeout(120)
    lines = []
    try:
        while True:
            lines.append(r.line())
    except EOFError:
        pass
    assert lines and lines[-1].startswith("* BYE"), lines
    assert set(lines[:-1]) <= {"* OK Still here"} and len(lines) >= 3, lines
    r.close()
    s.stop()
