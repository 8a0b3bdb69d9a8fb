"""Outbound and failover faults (RELIABILITY.md): a tandem primary sends
through a private dnsmasq to scripted SMTP peers, Postfix's smtp-sink and
another tandem, and every fault of a sending server ends the way the table
says: delivered elsewhere, deferred, or bounced with one DSN to the sender.

Addresses are 127.0.7.x (TANDEM_E2E_NET moves them); MX delivery
always goes to port 25, so every peer listens on its own address's port 25.
The sender's local user carol@example.test gets the DSNs in her Maildir.
Needs dnsmasq (dnsmasq-base) and smtp-sink (postfix). About 75 s in all, 30
of them waiting out tandem's fixed 30 s connect timeout.
"""
import email
import json
import re
import smtplib
import socket
import subprocess

from harness import CLOSE, Blackhole, Dns, DnsRcode, Peer, Sink, Stack, dns_query, mx, once
from lib import BIN, DNS_PORT, Server, addr, wait_for

CAROL = "carol@example.test"
SENDER_IP = addr("127.0.7.10")        # the sending primary, port 2525
GOOD_IP = addr("127.0.7.20")          # a tandem primary taking mail on port 25
BACKUP_IP = addr("127.0.7.30")        # backups, port 25
BACKUP2_IP = addr("127.0.7.31")
DEAD_IP = addr("127.0.7.99")          # nothing ever listens here: refused
DNS_FWD_IP = addr("127.0.7.53")       # scripted DNS answers behind dnsmasq


def unsigned(msg):
    """The message without the DKIM-Signature each attempt puts first
    (its t= is the attempt's time)."""
    if msg.startswith(b"DKIM-Signature:"):
        lines = msg.split(b"\r\n")
        i = 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
        return b"\r\n".join(lines[i:])
    return msg


def peer_ip(n):
    return addr("127.0.7.%d" % (100 + n))


# --- the tandems ---------------------------------------------------------

def sender(hostname="out.example.test", **extra):
    """The sending primary: local domain example.test with user carol."""
    s = Server(role="primary", ip=SENDER_IP, port=2525, hostname=hostname, extra=extra)
    s.setup_domain("example.test", users=("carol",))
    return s


def good_primary(domains):
    """A tandem primary on GOOD_IP:25 taking mail for alice@ each domain."""
    g = Server(role="primary", ip=GOOD_IP, port=25, hostname="mx.good.test")
    for d in domains:
        g.setup_domain(d, users=("alice",))
    return g


def send(s, rcpts, subject, body="hello\n", mail_from=CAROL):
    """`tandem sendmail -f mail_from rcpts...` on the sender s."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    r = subprocess.run([BIN, "-c", s.conf, "sendmail", "-f", mail_from] + rcpts,
                       input="Subject: %s\n\n%s" % (subject, body), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def queue(s):
    return json.loads(s.cli("queue", "list", "--json").stdout or "[]")


def queued_for(s, rcpt):
    """The queue entry holding rcpt, or None."""
    for m in queue(s):
        if any(r["address"] == rcpt for r in m["recipients"]):
            return m
    return None


def qid_of(s, rcpt):
    m = re.search(r"(\w+): event=\w+ to=<%s>" % re.escape(rcpt), s.log())
    return m and m.group(1)


def events(s, rcpt):
    """The log lines of the message that went to rcpt."""
    qid = wait_for(lambda: qid_of(s, rcpt), what="a log line about %s" % rcpt)
    return [line for line in s.log().splitlines() if " %s: " % qid in line]


def deferred(s, rcpt, timeout=15, unless=None):
    """Wait until the message to rcpt is deferred; returns its queue entry.
    Fails at once when it is delivered or bounced instead, or when
    unless() says something else went wrong."""
    def check():
        log = s.log()
        for wrong in ("event=delivered to=<%s>" % rcpt, "event=bounced to=<%s>" % rcpt):
            assert wrong not in log, "%s instead of deferred:\n%s" % (
                wrong, "\n".join(events(s, rcpt)))
        if unless is not None:
            unless()
        if "event=deferred to=<%s>" % rcpt not in log:
            return None
        m = queued_for(s, rcpt)
        return m if m and m["state"] == "deferred" else None
    return wait_for(check, timeout=timeout, what="the message to %s deferred" % rcpt)


def waiting(s, rcpt, timeout=15):
    """Wait until the message to rcpt waits for its domain, marked down
    after no host answered; returns its queue entry."""
    def check():
        log = s.log()
        for wrong in ("event=delivered to=<%s>" % rcpt, "event=bounced to=<%s>" % rcpt):
            assert wrong not in log, "%s instead of waiting:\n%s" % (
                wrong, "\n".join(events(s, rcpt)))
        m = queued_for(s, rcpt)
        return m if m and m.get("waiting") else None
    return wait_for(check, timeout=timeout, what="the message to %s waiting" % rcpt)


def dsns(s):
    """Every message in carol's Maildir, each a DSN: (message, its
    delivery-status part as text, its original headers)."""
    out = []
    for raw in s.messages(CAROL):
        m = email.message_from_bytes(raw)
        assert m.get_content_type() == "multipart/report", raw[:400]
        assert raw.startswith(b"Return-Path: <>\n"), raw[:200]
        text, status, headers = m.get_payload()
        assert status.get_content_type() == "message/delivery-status"
        out.append((m, status.as_string(), headers.get_payload()))
    return out


def dsn_for(s, rcpt, timeout=15):
    """The one DSN that reports rcpt; asserts there is exactly one."""
    tag = "Final-Recipient: rfc822; %s" % rcpt
    wait_for(lambda: any(tag in st for _, st, _h in dsns(s)), timeout=timeout,
             what="a DSN for %s" % rcpt)
    found = [d for d in dsns(s) if tag in d[1]]
    assert len(found) == 1, "%d DSNs for %s" % (len(found), rcpt)
    return found[0]


def status_of(dsn_status_text, rcpt):
    """The Status: field of rcpt's block in a delivery-status part."""
    blocks = dsn_status_text.split("\n\n")
    for b in blocks:
        if "Final-Recipient: rfc822; %s" % rcpt in b:
            m = re.search(r"^Status: (\S+)", b, re.M)
            return m and m.group(1)
    return None


# --- DNS faults ------------------------------------------------------------

def test_dns_servfail_and_timeout_defer_without_a_fallback():
    """SERVFAIL and a lookup that times out: 4.4.3, deferred, and never the
    domain's A record instead (a peer listens there to catch it)."""
    st = Stack()
    try:
        st.add(DnsRcode(DNS_FWD_IP, DNS_PORT, rcode=2))
        traps = [st.add(Peer(peer_ip(1))), st.add(Peer(peer_ip(2)))]
        g = good_primary(["good.test"])
        st.add(g).start()
        st.add(Dns(["--server=/servfail.test/%s#%d" % (DNS_FWD_IP, DNS_PORT),
                    "--host-record=servfail.test,%s" % peer_ip(1),
                    # nothing answers on port 1: dnsmasq never replies
                    "--server=/timeout.test/127.0.0.1#1",
                    "--host-record=timeout.test,%s" % peer_ip(2),
                    "--mx-host=good.test,mx.good.test,10",
                    "--host-record=mx.good.test,%s" % GOOD_IP]))
        assert dns_query("servfail.test", 15)[0] == 2        # SERVFAIL
        assert dns_query("servfail.test", 1)[0] == 0         # while its A record is there
        s = st.add(sender())
        s.start()
        try:
            dns_query("timeout.test", 15, timeout=0.5)
            raise AssertionError("dnsmasq answered for timeout.test")
        except socket.timeout:
            pass
        send(s, "alice@servfail.test", "servfail")
        send(s, "alice@timeout.test", "timeout")

        def no_fallback():
            for t in traps:
                assert t.sessions == [], "fell back to the A record of %s" % t.ip
        # libunbound gives up on a forwarder that never answers after some
        # seconds and reports SERVFAIL; tandem's own bound on a lookup is 30 s
        for rcpt, why in (("alice@servfail.test", ("SERVFAIL",)),
                          ("alice@timeout.test", ("SERVFAIL", "timeout"))):
            m = deferred(s, rcpt, timeout=40, unless=no_fallback)
            assert m["last_error"].startswith("4.4.3 DNS lookup of %s failed" % rcpt.split("@")[1]), m
            assert any(w in m["last_error"] for w in why), m
        # the lookup that timed out did not poison the resolver for others
        send(s, "alice@good.test", "after the timeout")
        wait_for(lambda: g.messages("alice@good.test"), timeout=15, what="good.test delivered")
        for t in traps:
            assert t.sessions == [], "fell back to the A record"
        assert "event=smtp_connect" not in "\n".join(
            events(s, "alice@servfail.test") + events(s, "alice@timeout.test"))
        assert "event=bounced" not in s.log() and s.messages(CAROL) == []
        s.stop()
    finally:
        st.stop()


def test_nxdomain_bounces_5_1_2():
    """A domain that does not exist: one DSN (5.1.2) to the sender."""
    st = Stack()
    try:
        st.add(Dns([]))          # nothing under .test exists
        s = st.add(sender())
        s.start()
        send(s, "alice@nowhere.test", "to nowhere")
        m, status, headers = dsn_for(s, "alice@nowhere.test")
        assert status_of(status, "alice@nowhere.test") == "5.1.2", status
        assert "Action: failed" in status and "Subject: to nowhere" in headers
        assert m["To"] == "<%s>" % CAROL
        wait_for(lambda: queue(s) == [], what="the message removed")
        assert len(s.messages(CAROL)) == 1
        s.stop()
    finally:
        st.stop()


def test_null_mx_bounces_5_1_10():
    """RFC 7505 "MX 0 ." (dnsmasq serves it with --mx-host=DOMAIN,.,0): a
    bounce, and the domain's A record is never tried."""
    st = Stack()
    try:
        trap = st.add(Peer(peer_ip(1)))
        st.add(Dns(["--mx-host=nullmx.test,.,0", "--host-record=nullmx.test,%s" % peer_ip(1)]))
        rcode, ans = dns_query("nullmx.test", 15)
        assert rcode == 0 and ans == [(15, b"\x00\x00\x00")], ans     # MX 0 "."
        s = st.add(sender())
        s.start()
        send(s, "alice@nullmx.test", "to a null MX")
        m, status, headers = dsn_for(s, "alice@nullmx.test")
        assert status_of(status, "alice@nullmx.test") == "5.1.10", status
        wait_for(lambda: queue(s) == [], what="the message removed")
        assert trap.sessions == []
        assert len(s.messages(CAROL)) == 1
        s.stop()
    finally:
        st.stop()


# --- our own host in the MX list ---------------------------------------------

def test_own_host_as_best_mx_is_a_loop_bounce():
    """The sender's hostname, or a name with its listening address, as the
    best MX: 5.4.6. With a better host, ourselves and the worse are dropped."""
    st = Stack()
    try:
        trap = st.add(Peer(peer_ip(1)))
        st.add(Dns(["--mx-host=byname.test,out.example.test,10",
                    "--mx-host=byname.test,worse.trap.test,20",
                    "--host-record=out.example.test,%s" % SENDER_IP,
                    "--mx-host=byaddr.test,other-name.test,10",
                    "--host-record=other-name.test,%s" % SENDER_IP,
                    # better host refusing, then us, then a worse one
                    "--mx-host=middle.test,dead.test,10",
                    "--mx-host=middle.test,out.example.test,20",
                    "--mx-host=middle.test,worse.trap.test,30",
                    "--host-record=dead.test,%s" % DEAD_IP,
                    "--host-record=worse.trap.test,%s" % peer_ip(1)]))
        s = st.add(sender())
        s.start()
        send(s, "alice@byname.test", "loop by name")
        send(s, "alice@byaddr.test", "loop by address")
        send(s, "alice@middle.test", "better host down")
        for rcpt in ("alice@byname.test", "alice@byaddr.test"):
            m, status, headers = dsn_for(s, rcpt)
            assert status_of(status, rcpt) == "5.4.6", status
            assert "loops back to myself" in status
        # nobody answered: the domain is down, probed, and the message waits
        m = waiting(s, "alice@middle.test")
        assert m["waiting"]["domain"] == "middle.test" and m["waiting"]["addr"] == DEAD_IP, m
        wait_for(lambda: len(queue(s)) == 1, what="the two loops removed")
        assert trap.sessions == [], "a worse MX than ourselves was tried"
        assert len(s.messages(CAROL)) == 2
        s.stop()
    finally:
        st.stop()


def test_backup_as_its_own_best_mx_relays_to_the_primary_or_defers():
    """A backup that finds only itself (and worse) in the MX list: with
    [relay] primary it hands the mail there, without it defers (4.4.4)."""
    st = Stack()
    try:
        trap = st.add(Peer(peer_ip(1)))
        g = st.add(good_primary(["bk1.test"]))
        g.start()
        st.add(Dns(["--mx-host=bk1.test,mx.bk.test,10", "--mx-host=bk1.test,worse.trap.test,20",
                    "--mx-host=bk2.test,mx.bk2.test,10", "--mx-host=bk2.test,worse.trap.test,20",
                    "--host-record=mx.bk.test,%s" % BACKUP_IP,
                    "--host-record=mx.bk2.test,%s" % BACKUP2_IP,
                    "--host-record=worse.trap.test,%s" % peer_ip(1)]))
        b1 = st.add(Server(role="backup", ip=BACKUP_IP, port=25, hostname="mx.bk.test",
                           relay_domains=["bk1.test"],
                           extra={"relay": {"primary": "%s:25" % GOOD_IP}}))
        # known by its address only: its name is not in the MX list
        b2 = st.add(Server(role="backup", ip=BACKUP2_IP, port=25, hostname="backup2.example.test",
                           relay_domains=["bk2.test"]))
        b1.start()
        b2.start()
        for b, rcpt in ((b1, "alice@bk1.test"), (b2, "alice@bk2.test")):
            with smtplib.SMTP(b.ip, 25, timeout=15) as c:
                c.sendmail("erin@example.org", [rcpt], "Subject: via %s\r\n\r\nx\r\n" % b.ip)
        m = wait_for(lambda: g.messages("alice@bk1.test"), what="bk1.test relayed to the primary")
        assert b"Subject: via %s" % b1.ip.encode() in m[0]
        m = deferred(b2, "alice@bk2.test")
        assert m["last_error"].startswith("4.4.4 no MX host of bk2.test better than myself"), m
        assert "event=bounced" not in b2.log()
        assert trap.sessions == []
        b1.stop()
        b2.stop()
    finally:
        st.stop()


# --- the next MX host, and after the last one ---------------------------------

def test_refused_timeout_and_4xx_greeting_go_to_the_next_mx():
    """MX 10 refuses, never completes the connection (given up after
    [queue] connect_timeout, 3 s here), or greets with 450 (smtp-sink -r
    CONNECT): MX 20, a tandem primary, gets the message."""
    st = Stack()
    try:
        st.add(Blackhole(peer_ip(2)))
        st.add(Sink(peer_ip(3), "-r", "CONNECT"))
        domains = ["refused.test", "timeout.test", "greet4xx.test"]
        g = st.add(good_primary(domains))
        g.start()
        st.add(Dns(mx("refused.test", DEAD_IP, host="dead.test") +
                   mx("timeout.test", peer_ip(2), host="hole.test") +
                   mx("greet4xx.test", peer_ip(3), host="sink.test") +
                   ["--mx-host=%s,mx.good.test,20" % d for d in domains] +
                   ["--host-record=mx.good.test,%s" % GOOD_IP]))
        s = st.add(sender(queue={"connect_timeout": "3s"}))
        s.start()
        for d in domains:
            send(s, "alice@" + d, "to " + d)
        for d in ("refused.test", "greet4xx.test"):
            m = wait_for(lambda: g.messages("alice@" + d), what="%s via MX 20" % d)
            assert len(m) == 1 and ("Subject: to " + d).encode() in m[0]
        ev = "\n".join(events(s, "alice@refused.test"))
        assert "relay=dead.test[%s]:25 stage=connect" % DEAD_IP in ev, ev
        ev = "\n".join(events(s, "alice@greet4xx.test"))
        assert "relay=sink.test[%s]:25 stage=greeting" % peer_ip(3) in ev and "450" in ev, ev
        m = wait_for(lambda: g.messages("alice@timeout.test"), timeout=45,
                     what="timeout.test via MX 20 once the connect timed out")
        assert len(m) == 1
        ev = "\n".join(events(s, "alice@timeout.test"))
        assert re.search(r"relay=hole.test\[%s\]:25 stage=connect reason=\".*timeout after 3000 ms" %
                         re.escape(peer_ip(2)), ev), ev
        for d in domains:
            assert "event=delivered to=<alice@%s> relay=mx.good.test[%s]:25 status=sent" % (d, GOOD_IP) \
                in s.log()
        wait_for(lambda: queue(s) == [], what="the sender's queue empty")
        assert s.messages(CAROL) == []
        s.stop()
        g.stop()
    finally:
        st.stop()


def every_host_failing(st):
    """alldown.test: MX 10 refuses, MX 20 (a scripted peer) greets with 421
    until state["open"]. Returns the peer, its state and the sender."""
    state = {"open": False}
    peer = st.add(Peer(peer_ip(1), lambda s: s.converse(
        greeting="220 peer.test ESMTP" if state["open"] else "421 4.3.2 Service not available")))
    st.add(Dns(mx("alldown.test", DEAD_IP, 10, "dead.test") +
               mx("alldown.test", peer_ip(1), 20, "mx20.test")))
    s = st.add(sender(queue={"retry_min": "1s", "retry_max": "2s"}, relay={"probe_interval": "1s"}))
    s.start()
    send(s, "alice@alldown.test", "every host fails")
    return peer, state, s


def test_every_host_failing_defers_with_backoff():
    """After the last MX host: deferred, with the last host's reply, and a
    retry time from [queue] retry_min."""
    st = Stack()
    try:
        peer, state, s = every_host_failing(st)
        m = deferred(s, "alice@alldown.test")
        assert m["attempts"] == 1 and "421 Service not available" in m["last_error"], m
        assert "mx20.test[%s]" % peer_ip(1) in m["last_error"], m
        assert 1 <= m["next_attempt"] - m["arrival"] <= 5, m      # retry_min 1s after the attempt
        # retry_at is logged just after the deferral: wait for it, not a race
        ev = wait_for(lambda: (lambda e: e if "event=retry_at" in e else None)(
            "\n".join(events(s, "alice@alldown.test"))), what="the retry_at line")
        assert "relay=dead.test[%s]:25 stage=connect" % DEAD_IP in ev, ev
        assert "relay=mx20.test[%s]:25 stage=greeting" % peer_ip(1) in ev, ev
        # delay: whole seconds from now to the retry, 1 or, across a second's end, 0
        assert re.search(r"event=retry_at retry_in=[01]s attempts=1", ev), ev
        assert peer.messages == [] and len(peer.sessions) >= 1
        assert "event=bounced" not in s.log() and s.messages(CAROL) == []
        s.stop()
    finally:
        st.stop()


def test_deferred_mail_reaches_the_second_mx_once_it_answers():
    """The same, then MX 20 takes mail again: the deferred message, and a
    new one for the domain, arrive there (retry_max 2s, probe_interval 1s),
    though MX 10 still refuses."""
    st = Stack()
    try:
        peer, state, s = every_host_failing(st)
        deferred(s, "alice@alldown.test")
        state["open"] = True
        send(s, "bob@alldown.test", "sent once MX 20 is back")
        m = wait_for(lambda: len(peer.messages) == 2 and peer.messages, timeout=15,
                     what="the deferred message and a new one on MX 20, which takes mail again")
        assert sorted(r for _f, rr, _b in m for r in rr) == ["alice@alldown.test", "bob@alldown.test"]
        wait_for(lambda: queue(s) == [], what="the sender's queue empty")
        assert s.messages(CAROL) == []
        s.stop()
    finally:
        st.stop()


def test_expired_message_one_dsn_none_for_the_null_sender():
    """A host that keeps answering 450 to RCPT (smtp-sink -r RCPT) past the
    lifetime: one DSN (4.4.7) to the sender, none for a message from <>."""
    st = Stack()
    try:
        st.add(Sink(peer_ip(1), "-r", "RCPT"))
        st.add(Dns(mx("busy.test", peer_ip(1))))
        s = st.add(sender(queue={"retry_min": "1s", "retry_max": "1s", "lifetime": "2s"}))
        s.start()
        send(s, "alice@busy.test", "never taken")
        send(s, "bob@busy.test", "a bounce itself", mail_from="<>")
        m, status, headers = dsn_for(s, "alice@busy.test", timeout=20)
        assert status_of(status, "alice@busy.test") == "4.4.7", status
        assert "Diagnostic-Code: smtp; 450 " in status and "Subject: never taken" in headers
        wait_for(lambda: queue(s) == [], timeout=20, what="both messages removed")
        assert "event=expired" in s.log()
        assert re.search(r"event=bounced to=<bob@busy.test> dsn=none\(null sender\)", s.log())
        assert len(s.messages(CAROL)) == 1
        s.stop()
    finally:
        st.stop()


# --- replies at each stage ------------------------------------------------------

def test_4xx_and_5xx_at_mail_rcpt_data_and_dot():
    """smtp-sink -r (450) or -f (500) at MAIL, RCPT, DATA and after the final
    dot: a 4xx defers (no DSN), a 5xx bounces (one DSN each, 5.3.0)."""
    stages = [("mail", "MAIL"), ("rcpt", "RCPT"), ("data", "DATA"), ("dot", ".")]
    st = Stack()
    try:
        records, ips = [], {}
        for name, cmd in stages:
            for kind, opt in (("soft", "-r"), ("hard", "-f")):
                d = "%s-%s.test" % (name, kind)
                ips[d] = peer_ip(len(ips) + 1)
                st.add(Sink(ips[d], opt, cmd))
                records += mx(d, ips[d])
        st.add(Dns(records))
        s = st.add(sender())
        s.start()
        for name, _ in stages:
            for kind in ("soft", "hard"):
                send(s, "alice@%s-%s.test" % (name, kind), "%s at %s" % (kind, name))
        for name, _ in stages:
            rcpt = "alice@%s-hard.test" % name
            m, status, headers = dsn_for(s, rcpt)
            assert status_of(status, rcpt) == "5.3.0", status
            assert "Subject: hard at %s" % name in headers
            assert ("Remote-MTA: dns; mx.%s-hard.test\r\nDiagnostic-Code: smtp; 500 Error: "
                    "command failed" % name) in status.replace("\r\n", "\n").replace("\n", "\r\n"), status
        for name, _ in stages:
            rcpt = "alice@%s-soft.test" % name
            m = deferred(s, rcpt)
            assert "450" in m["last_error"] and "4.3.0" in m["last_error"], m
        wait_for(lambda: len(queue(s)) == 4, what="the hard failures removed")
        assert sorted(r["address"] for m in queue(s) for r in m["recipients"]) == sorted(
            "alice@%s-soft.test" % name for name, _ in stages)
        assert len(s.messages(CAROL)) == 4
        assert not re.search(r"to=<alice@\S*> .*status=sent", s.log())
        s.stop()
    finally:
        st.stop()


def test_5xx_to_one_rcpt_bounces_only_that_recipient():
    """550 to one RCPT: that recipient alone is in the DSN; a 450 to another
    is retried alone; the accepted one is delivered once."""
    st = Stack()
    try:
        later = once("450 4.2.1 mailbox busy", "250 2.1.5 Ok")
        peer = st.add(Peer(peer_ip(1), lambda s: s.converse(rcpt={
            "bad@mixed.test": "550 5.1.1 <bad@mixed.test>: no such user",
            "later@mixed.test": later})))
        st.add(Dns(mx("mixed.test", peer_ip(1))))
        s = st.add(sender(queue={"retry_min": "1s", "retry_max": "2s"}))
        s.start()
        rcpts = ["ok@mixed.test", "bad@mixed.test", "later@mixed.test"]
        send(s, rcpts, "three recipients")
        m, status, headers = dsn_for(s, "bad@mixed.test")
        assert status_of(status, "bad@mixed.test") == "5.1.1", status
        assert "no such user" in status
        assert "ok@mixed.test" not in status and "later@mixed.test" not in status
        wait_for(lambda: len(peer.messages) == 2, timeout=15, what="the retry for later@")
        wait_for(lambda: queue(s) == [], what="the message removed")
        (f1, r1, b1), (f2, r2, b2) = peer.messages
        assert (f1, r1) == (CAROL, ["ok@mixed.test"]) and (f2, r2) == (CAROL, ["later@mixed.test"])
        assert b"Subject: three recipients" in b1 and unsigned(b1) == unsigned(b2)
        rcpt_cmds = [c for c in peer.commands if c.startswith("RCPT")]
        assert rcpt_cmds == ["RCPT TO:<ok@mixed.test>", "RCPT TO:<bad@mixed.test>",
                             "RCPT TO:<later@mixed.test>", "RCPT TO:<later@mixed.test>"], rcpt_cmds
        assert len(s.messages(CAROL)) == 1
        s.stop()
    finally:
        st.stop()


# --- the connection drops ---------------------------------------------------------

# Bigger than what the kernel buffers between the two (tcp_wmem's 4 MB
# and the peer's receive buffer): the drop finds tandem still writing.
BIG_BODY = "".join("%06d %s\n" % (i, "x" * 90) for i in range(80000))    # 7.8 MB


def test_connection_drops_mid_data_or_after_the_dot_defer():
    """Dropped while the message streams: deferred, no duplicate claimed.
    Dropped after the final dot without a reply (a scripted peer, and
    smtp-sink -q .): deferred, possible_duplicate=yes. The retries deliver."""
    st = Stack()
    try:
        # the first message is cut off after 64 KiB, later ones are taken
        mid = st.add(Peer(peer_ip(1), lambda s: s.converse(
            data_limit=None if mid.partial else 65536)))
        # the first final dot is answered by hanging up, later ones with 250
        after_dot = once(CLOSE, "250 2.0.0 Ok: queued")
        dot = st.add(Peer(peer_ip(2), lambda s: s.converse(dot=after_dot)))
        st.add(Sink(peer_ip(3), "-q", "."))
        st.add(Dns(mx("middata.test", peer_ip(1)) + mx("afterdot.test", peer_ip(2)) +
                   mx("sinkdot.test", peer_ip(3))))
        s = st.add(sender(queue={"retry_min": "1s", "retry_max": "2s"}))
        s.start()
        send(s, "alice@middata.test", "big", BIG_BODY)
        send(s, "alice@afterdot.test", "dropped after the dot")
        send(s, "alice@sinkdot.test", "smtp-sink drops after the dot")
        ev = lambda r: "\n".join(events(s, r))     # noqa: E731
        wait_for(lambda: "event=deferred to=<alice@middata.test>" in s.log(), what="middata deferred")
        assert mid.partial and len(mid.partial[0]) < len(BIG_BODY)
        assert "possible_duplicate" not in ev("alice@middata.test")
        assert re.search(r"event=smtp_fail stage=data .*while sending the message",
                         ev("alice@middata.test"))
        for r in ("alice@afterdot.test", "alice@sinkdot.test"):
            wait_for(lambda: "event=deferred to=<%s>" % r in s.log(), what="%s deferred" % r)
            assert re.search(r"event=deferred to=<%s> .*status=deferred .*possible_duplicate=yes" % r,
                             ev(r)), ev(r)
        # the retries: the peers now take it
        m = wait_for(lambda: mid.messages, timeout=15, what="the big message on the retry")
        body = m[0][2].replace(b"\r\n", b"\n")
        assert body.endswith(BIG_BODY.encode()), "the body arrived damaged"
        wait_for(lambda: len(dot.messages) == 2, timeout=15, what="the retry after the dot")
        # the duplicate the log warned of
        assert unsigned(dot.messages[0][2]) == unsigned(dot.messages[1][2])
        assert re.search(r"event=delivered to=<alice@afterdot.test> .*status=sent",
                         ev("alice@afterdot.test"))
        for r in ("alice@middata.test", "alice@afterdot.test"):
            wait_for(lambda: queued_for(s, r) is None, what="%s removed from the queue" % r)
        assert queued_for(s, "alice@sinkdot.test")["state"] == "deferred"
        assert "event=bounced" not in s.log() and s.messages(CAROL) == []
        s.stop()
    finally:
        st.stop()


# --- replies the client must not misparse ----------------------------------------

def endless(line):
    """A reply that never ends: continuation lines until the client hangs
    up (bounded: 100,000 lines)."""
    def go(s, *args):
        try:
            for _ in range(1000):
                s.send(line * 100)
        except OSError:
            pass
        return CLOSE
    return go


def then_close(text):
    def go(s, *args):
        s.send(text)
        return CLOSE
    return go


BAD_REPLIES = [
    # name, reply, what tandem's parser calls it
    ("short", lambda code: code[:2].encode() + b"\r\n", "malformed reply code"),
    ("long", lambda code: code.encode() + b" " + b"x" * 2500 + b"\r\n", "reply line too long"),
    ("endless", lambda code: endless(code.encode() + b"-and more\r\n"), "too many reply lines"),
    ("nocrlf", lambda code: then_close(code.encode() + b" 2.0.0 no line end"),
     "connection closed by the server while waiting for the reply to"),
]


def test_short_long_endless_and_unterminated_replies_are_temporary():
    """After the final dot (as if 250) and to RCPT (as if 550): a reply
    of "25", a 2,500-octet line, continuation lines without end, or a line
    without CRLF and then the close: each a temporary failure, never a
    delivery, never a bounce."""
    st = Stack()
    try:
        records, peers = [], {}
        n = 0
        for name, make, _why in BAD_REPLIES:
            for stage, code in (("dot", "250"), ("rcpt", "550")):
                n += 1
                d = "%s-%s.test" % (name, stage)
                kw = {"dot": make(code)} if stage == "dot" else {"rcpt": make(code)}
                peers[d] = st.add(Peer(peer_ip(n), lambda s, kw=kw: s.converse(**kw)))
                records += mx(d, peer_ip(n))
        st.add(Dns(records))
        s = st.add(sender())
        s.start()
        for d in peers:
            send(s, "alice@" + d, "bad reply " + d)
        for name, _make, why in BAD_REPLIES:
            for stage in ("dot", "rcpt"):
                d = "%s-%s.test" % (name, stage)
                rcpt = "alice@" + d
                m = deferred(s, rcpt)
                assert m["last_error"].startswith("4."), m
                ev = "\n".join(events(s, rcpt))
                assert why in ev, ev
                assert re.search(r"event=deferred to=<%s> .*status=deferred" % re.escape(rcpt), ev), ev
                if stage == "dot":
                    assert len(peers[d].messages) == 1      # the message was there...
                    assert "possible_duplicate=yes" in ev   # ...and maybe taken
                else:
                    assert peers[d].messages == []
        log = s.log()
        assert "event=bounced" not in log and s.messages(CAROL) == []
        assert "status=sent" not in log
        assert len(queue(s)) == len(peers)
        s.stop()
    finally:
        st.stop()


# --- TLS ---------------------------------------------------------------------------------

def tls_garbage(hellos):
    """220 to STARTTLS, then garbage where the server's handshake belongs."""
    def go(s, *args):
        s.send("220 2.0.0 Ready to start TLS\r\n")
        hellos.append(s.sock.recv(65536))         # the client's ClientHello
        s.send(b"this is not TLS\r\n" * 20)
        try:
            while s.sock.recv(65536):            # until the client gives up
                pass
        except OSError:
            pass
        return CLOSE
    return go


def tls_peer(st, ip):
    hellos = []
    peer = st.add(Peer(ip, lambda s: s.converse(
        ext=("PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"), starttls=tls_garbage(hellos))))
    return peer, hellos


def test_tls_handshake_failure_may_retries_in_plaintext():
    """[tls] outbound = may: the handshake fails, the same host is tried
    again in plaintext and takes the message."""
    st = Stack()
    try:
        peer, hellos = tls_peer(st, peer_ip(1))
        st.add(Dns(mx("tls.test", peer_ip(1))))
        s = st.add(sender(tls={"outbound": "may"}))
        s.start()
        send(s, "alice@tls.test", "after a failed handshake")
        m = wait_for(lambda: peer.messages, what="the message in plaintext")
        assert m[0][1] == ["alice@tls.test"] and b"Subject: after a failed handshake" in m[0][2]
        assert hellos and hellos[0][:1] == b"\x16", hellos      # a TLS handshake record
        first, last = peer.sessions[0], peer.sessions[-1]
        assert "STARTTLS" in first.commands and not any(c.startswith("MAIL") for c in first.commands)
        assert "STARTTLS" not in last.commands and any(c.startswith("MAIL") for c in last.commands)
        ev = "\n".join(events(s, "alice@tls.test"))
        assert re.search(r"event=smtp_host_failed relay=mx.tls.test\[%s\]:25 stage=tls .*4\.7\.5"
                         % re.escape(peer_ip(1)), ev), ev
        assert "status=sent" in ev
        wait_for(lambda: queue(s) == [], what="the sender's queue empty")
        s.stop()
    finally:
        st.stop()


def test_tls_handshake_failure_encrypt_defers():
    """[tls] outbound = encrypt: the handshake fails, the message is
    deferred and never sent in the clear."""
    st = Stack()
    try:
        peer, hellos = tls_peer(st, peer_ip(1))
        st.add(Dns(mx("tls.test", peer_ip(1))))
        s = st.add(sender(tls={"outbound": "encrypt"}))
        s.start()
        send(s, "alice@tls.test", "TLS or nothing")
        m = deferred(s, "alice@tls.test")
        assert "4.7.0" in m["last_error"] and "TLS required" in m["last_error"], m
        assert hellos and hellos[0][:1] == b"\x16", hellos
        assert not any(c.startswith(("MAIL", "RCPT", "DATA")) for c in peer.commands), peer.commands
        assert peer.messages == []
        assert "status=sent" not in s.log() and "event=bounced" not in s.log()
        s.stop()
    finally:
        st.stop()


def test_tls_encrypt_failure_waits_for_its_backoff():
    """[tls] outbound = encrypt and a host whose TLS fails: the message
    waits for its retry (retry_min 5m), and so does an unrelated deferred
    one (a tandem answering 452 at MAIL), whatever answers meanwhile (a
    probe every second here: a third domain is down, its host comes up, the
    probe wakes what waits for it)."""
    st = Stack()
    try:
        peer, hellos = tls_peer(st, peer_ip(1))
        g = st.add(Server(role="primary", ip=GOOD_IP, port=25, hostname="mx.good.test",
                          extra={"queue": {"min_free": "1000G"}}))   # 452 4.3.1 at MAIL
        g.setup_domain("full.test", users=("alice",))
        g.start()
        st.add(Dns(mx("tls.test", peer_ip(1)) + mx("full.test", GOOD_IP) +
                   mx("later.test", peer_ip(2))))
        s = st.add(sender(tls={"outbound": "encrypt"}, relay={"probe_interval": "1s"}))
        s.start()
        send(s, "alice@full.test", "to a full disk")
        assert "452" in deferred(s, "alice@full.test")["last_error"]
        send(s, "alice@tls.test", "TLS or nothing")
        deferred(s, "alice@tls.test")
        # later.test: nothing listens on its host yet, so it is marked down
        # and probed; once a peer answers there, the probe wakes its message,
        # which is tried (and deferred: that peer offers no TLS). That attempt
        # is the end marker: by then a probe answered and woke the queue, and
        # neither deferred message may have been tried again.
        send(s, "alice@later.test", "once its host answers")
        waiting(s, "alice@later.test")
        st.add(Peer(peer_ip(2)))
        wait_for(lambda: "event=deferred to=<alice@later.test>" in s.log(),
                 what="later.test tried once its probe answered")
        assert re.search(r"event=probe domain=later\.test .*status=up", s.log()), s.log()
        assert "event=wake" in s.log(), s.log()
        tries = [x for x in peer.sessions if "STARTTLS" in x.commands]
        attempts = {r: queued_for(s, r)["attempts"] for r in ("alice@tls.test", "alice@full.test")}
        assert len(tries) == 1 and attempts == {"alice@tls.test": 1, "alice@full.test": 1}, \
            "with retry_min 5m, after a probe woke later.test: %d TLS attempts, " \
            "queue attempts %s" % (len(tries), attempts)
        assert peer.messages == []
        s.stop()
    finally:
        st.stop()
