"""Failover end to end: the issue's scenario.

A private dnsmasq publishes

    example.test.      MX 10 mx1.example.test.   (the tandem primary, PRIMARY:25)
    example.test.      MX 20 mx2.example.test.   (the tandem backup,  BACKUP:25)
    example.org.       MX 10 mx.example.org.     (a third tandem, the sending server)

The backup has no [relay] primary: it finds the primary through the MX
records, dropping itself and every worse MX. Mail is handed to the sending
server with `tandem sendmail -f carol@example.org alice@example.test`, so
every message takes the road a real one would: DNS, MX 10, and MX 20 when
MX 10 does not answer.

  1   primary up: straight to the primary; the backup sees nothing
  2   primary down: the sender falls back to the backup in one attempt; the
      backup keeps the mail, never loops it back to itself, never bounces
  3a  primary back: the backup's probe drains it (how fast: bench/drain)
  3b  primary back: the primary's ETRN (RFC 1985) to its [server] backups
      drains it (probe and retries an hour away)
  3c  the primary retries the ETRN to a backup that was down when it started
      (a second backup that never answers keeps the time: its failures)
  4   flapping: 1,000 messages while the primary is SIGKILLed and restarted
      at random moments; every accepted message is delivered, duplicates
      counted (TANDEM_CRASH_STRICT=1 fails on them too)
  5   the backup with the primary's recipient list refuses unknown users at
      RCPT (550 5.1.1): the sender's DSN goes to carol, the rest is delivered
  6   no MX reachable at all: after the sender's lifetime, one DSN to carol,
      none for a message from the null sender
  7   a real Postfix as the sending server (own config, queue and a private
      mount namespace whose /etc/resolv.conf points at a dnsmasq on port 53)

Set TANDEM_FAILOVER_SEED to replay the kill timings of test 4.
"""
import collections
import datetime
import email
import json
import os
import random
import re
import smtplib
import subprocess
import threading
import time

from harness import Dns, Postfix
from lib import BIN, DNS_PORT, Server, addr, wait_for

# Own loopback addresses (remapped by TANDEM_E2E_NET like every address).
PRIMARY_IP = "127.0.8.10"
BACKUP_IP = "127.0.8.20"
SENDER_IP = "127.0.8.30"
POSTFIX_IP = "127.0.8.31"
DEAD_BACKUP_IP = "127.0.8.21"   # a backup that never answers (nothing listens)
RESOLVER_IP = "127.0.8.53"   # port 53: the resolver of the Postfix namespace

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.org"

ID_RE = re.compile(rb"^X-Failover-Id: (\S+)\r?$", re.M)
QUEUED_AS_RE = re.compile(r"event=delivered to=<[^>]*> relay=\S+ status=sent .*reply=\"[^\"]*queued as ([0-9A-F]{16})")


# --- DNS -----------------------------------------------------------------------

def records():
    return ["--mx-host=example.test,mx1.example.test,10",
            "--mx-host=example.test,mx2.example.test,20",
            "--host-record=mx1.example.test,%s" % addr(PRIMARY_IP),
            "--host-record=mx2.example.test,%s" % addr(BACKUP_IP),
            "--mx-host=example.org,mx.example.org,10",
            "--host-record=mx.example.org,%s" % addr(SENDER_IP)]


# --- the three servers ---------------------------------------------------------

def merged(base, more):
    out = {sec: dict(kv) for sec, kv in base.items()}
    for sec, kv in (more or {}).items():
        out.setdefault(sec, {}).update(kv)
    return out


class Site:
    """dnsmasq, the primary (mx1), the backup (mx2) and the sending server.
    Servers are created here and started by the test; `with Site() as st`
    stops dnsmasq however the test ends (conftest.py kills the servers)."""

    def __init__(self, primary=None, backup=None, sender=None, dns_listen="127.0.0.1",
                 dns_port=DNS_PORT):
        resolver = {"dns": {"resolver": "%s@%d" % (dns_listen, dns_port)}}
        self.dns_args = (dns_listen, dns_port)
        self.dns = None
        self.p = Server(role="primary", ip=PRIMARY_IP, port=25, hostname="mx1.example.test",
                        extra=merged(resolver, primary))
        self.p.setup_domain("example.test", users=("alice", "bob"))
        self.b = Server(role="backup", ip=BACKUP_IP, port=25, hostname="mx2.example.test",
                        relay_domains=["example.test"],
                        extra=merged(merged(resolver, {"queue": {"retry_min": "1s", "retry_max": "2s"},
                                                       "relay": {"probe_interval": "1s"}}), backup))
        self.s = Server(role="primary", ip=SENDER_IP, port=25, hostname="mx.example.org",
                        extra=merged(merged(resolver, {"queue": {"retry_min": "1s", "retry_max": "2s"}}),
                                     sender))
        self.s.setup_domain("example.org", users=("carol",))

    def __enter__(self):
        self.dns = Dns(records(), *self.dns_args)
        return self

    def __exit__(self, *exc):
        self.dns.stop()
        return False

    def stop_all(self):
        for srv in (self.s, self.b, self.p):
            srv.stop()


def sendmail(srv, rcpts, ident, sender=CAROL, subject=None):
    """Hand one message to srv with `tandem sendmail`; asserts it was queued."""
    msg = "Subject: %s\nX-Failover-Id: %s\n\nmessage %s\n" % (subject or ident, ident, ident)
    r = subprocess.run([BIN, "-c", srv.conf, "sendmail", "-f", sender] + list(rcpts), input=msg,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "tandem sendmail %s exited %d: %s" % (ident, r.returncode, r.stderr)


def by_id(srv, address):
    """X-Failover-Id -> [(queue id of the delivering server, message bytes)]."""
    out = collections.defaultdict(list)
    for path in srv.maildir(address) + srv.maildir(address, "cur"):
        with open(path, "rb") as f:
            data = f.read()
        m = ID_RE.search(data)
        out[m.group(1).decode() if m else None].append((os.path.basename(path).split(".")[0], data))
    return out


def queued(srv):
    return srv.queue_files("active") + srv.queue_files("deferred") + srv.queue_files("hold")


def lines(text, event):
    return [l for l in text.splitlines() if re.search(r"event=%s(\s|$)" % re.escape(event), l)]


def mark(*servers):
    return {srv: len(srv.log()) for srv in servers}


def since(srv, m):
    return srv.log()[m[srv]:]


def dsn_parts(raw):
    """(message, delivery-status text, original headers) of an RFC 3464 DSN."""
    m = email.message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report", raw[:500]
    text, status, headers = m.get_payload()
    return m, status.as_string(), headers.get_payload()


def assert_no_bounce(*servers):
    for srv in servers:
        log = srv.log()
        bad = lines(log, "bounced") + lines(log, "failed") + lines(log, "expired") + \
            [l for l in log.splitlines() if "event=queued from=<>" in l or "loops back" in l]
        assert not bad, "%s (%s) bounced or failed mail:\n%s" % (srv.hostname, srv.ip, "\n".join(bad[:10]))


def came_through_backup(data):
    return b"by mx2.example.test (tandem)" in data


# --- 1. primary up -------------------------------------------------------------

def test_failover_1_primary_up_mail_goes_straight_to_the_primary():
    with Site() as st:
        p, b, s = st.p, st.b, st.s
        for srv in (p, b, s):
            srv.start()
        sendmail(s, [ALICE], "up-1")
        got = wait_for(lambda: by_id(p, ALICE).get("up-1"), timeout=15, what="delivery via MX 10")
        assert len(got) == 1, got
        data = got[0][1]
        assert b"Received: from mx.example.org (" in data and b"by mx1.example.test (tandem)" in data, data[:600]
        assert not came_through_backup(data), data[:600]
        wait_for(lambda: queued(s) == [], what="the sender's queue empty")
        sent = [l for l in lines(s.log(), "delivered") if "to=<alice@example.test>" in l]
        assert len(sent) == 1 and "relay=mx1.example.test[%s]:25 status=sent" % p.ip in sent[0], sent
        assert not lines(s.log(), "smtp_host_failed"), s.log()
        # The backup saw nothing: no connection, nothing queued. (The
        # sender is done with the message: nothing of it can come later.)
        wait_for(lambda: lines(s.log(), "removed"), what="the sender's event=removed")
        assert queued(b) == [], queued(b)
        assert not lines(b.log(), "connect") and not lines(b.log(), "queued"), b.log()
        assert s.messages(CAROL) == []
        st.stop_all()


# --- 2. primary down -------------------------------------------------------------

def hold_on_backup(st, idents, rcpts=(ALICE,)):
    """Primary down: hand idents to the sender and wait until the backup holds them."""
    s, b = st.s, st.b
    m = mark(s, b)
    for ident in idents:
        sendmail(s, list(rcpts), ident)
    wait_for(lambda: len(lines(since(b, m), "queued")) >= len(idents) and queued(s) == [],
             timeout=20, what="the backup holding %d message(s) and the sender's queue empty" % len(idents))
    return m


def test_failover_2_primary_down_the_backup_queues_without_loop_or_bounce():
    with Site() as st:
        p, b, s = st.p, st.b, st.s
        for srv in (p, b, s):
            srv.start()
        p.stop()
        idents = ["down-%d" % i for i in range(3)]
        m = hold_on_backup(st, idents)
        slog, blog = since(s, m), since(b, m)
        # The sender: one attempt each, MX 10 refused, MX 20 took it; no retry.
        failed = lines(slog, "smtp_host_failed")
        sent = [l for l in lines(slog, "delivered") if "to=<alice@example.test>" in l]
        # (mx1 refused, or was skipped if its address lookup failed for the moment)
        assert len(failed) <= 3 and all("relay=mx1.example.test[%s]:25" % p.ip in l for l in failed), slog
        assert len(sent) == 3 and all("relay=mx2.example.test[%s]:25 status=sent" % b.ip in l
                                      for l in sent), slog
        assert not lines(slog, "deferred") and not lines(slog, "retry_at"), slog
        # The backup keeps them: three queue files, each for alice, from carol.
        held = queued(b)
        assert len(held) == 3 and len(lines(blog, "queued")) == 3, (held, blog)
        assert all("from=<carol@example.org>" in l for l in lines(blog, "queued")), blog
        # Let it retry and probe for a while (retry 1-2s, probe 1s), then look
        # again: each message has been back twice to find the primary still down.
        wait_for(lambda: "status=down" in b.log(), what="the backup marking the primary down")
        qids = [l.split(": event=")[0].rsplit(" ", 1)[1] for l in lines(blog, "queued")]
        wait_for(lambda: all(b.log().count("%s: event=outbound domain=example.test status=waiting "
                                           "reason=\"4.4.1 example.test is down" % q) >= 2
                             for q in qids),
                 timeout=20, what="each held message waiting twice for the primary's probe")
        blog = b.log()
        assert len(queued(b)) == 3, queued(b)
        # Never to itself: its only next hop is mx1; it never connected to its own address.
        for l in lines(blog, "smtp_host_failed") + lines(blog, "smtp_connect") + lines(blog, "probe"):
            assert "mx2.example.test" not in l and "[%s]" % b.ip not in l, l
        assert not lines(blog, "delivered"), blog   # nothing was handed over to anyone
        assert lines(blog, "smtp_host_failed"), blog  # but it did try the primary
        # No DSN anywhere.
        assert_no_bounce(b, s)
        assert s.messages(CAROL) == [] and queued(s) == []
        listed = json.loads(b.cli("queue", "list", "--json").stdout)
        assert len(listed) == 3, listed
        for e in listed:
            assert e["sender"] == "carol@example.org", e
            assert [r["address"] for r in e["recipients"]] == [ALICE], e
        st.stop_all()


# --- 3. primary back -------------------------------------------------------------

def drain_after_restart(st, idents, timeout=15):
    """Start the primary; wait until every ident is in alice's mailbox (how
    fast a backup drains is a benchmark figure: bench/drain)."""
    p = st.p
    p.start()
    wait_for(lambda: all(i in by_id(p, ALICE) for i in idents), timeout=timeout, step=0.05,
             what="%d held messages in alice's mailbox (have %s)" % (
                 len(idents), sorted(k for k in by_id(p, ALICE) if k)))


def check_drained(st, idents):
    p, b, s = st.p, st.b, st.s
    got = by_id(p, ALICE)
    for i in idents:
        assert len(got[i]) == 1, (i, len(got[i]))
        assert came_through_backup(got[i][0][1]), got[i][0][1][:800]
    wait_for(lambda: queued(b) == [], timeout=10, what="the backup's queue empty")
    assert_no_bounce(b, s, p)
    assert s.messages(CAROL) == []


def test_failover_3a_the_backups_probe_drains_it_when_the_primary_returns():
    # Backup retries an hour away: only the probe (every 1s) can bring it back.
    with Site(backup={"relay": {"probe_interval": "1s"},
                      "queue": {"retry_min": "1h", "retry_max": "2h"}}) as st:
        p, b, s = st.p, st.b, st.s
        for srv in (p, b, s):
            srv.start()
        p.stop()
        idents = ["probe-%d" % i for i in range(5)]
        hold_on_backup(st, idents)
        wait_for(lambda: "status=down" in b.log(), what="the backup marking the primary down")
        time.sleep(1.5)   # a probe or two finds it still down
        assert len(queued(b)) == 5
        m = mark(b)
        drain_after_restart(st, idents)
        assert "status=up" in since(b, m), since(b, m)
        check_drained(st, idents)
        # The primary is back: new mail goes to MX 10 again, not through the backup.
        sendmail(s, [ALICE], "after-the-drain")
        got = wait_for(lambda: by_id(p, ALICE).get("after-the-drain"), what="new mail on the primary")
        assert len(got) == 1 and not came_through_backup(got[0][1]), got
        st.stop_all()


ETRN_OK = r'event=etrn host=%s:25 domain=example\.test reply="25[0-3]'


def test_failover_3b_the_primarys_etrn_drains_it_when_the_primary_returns():
    # Backup probe and retries an hour away: only ETRN from the primary can help.
    with Site(primary={"server": {"backups": "%s:25" % addr(BACKUP_IP)}},
              backup={"relay": {"probe_interval": "1h"},
                      "queue": {"retry_min": "1h", "retry_max": "2h"}}) as st:
        p, b, s = st.p, st.b, st.s
        for srv in (b, s, p):
            srv.start()
        p.stop()
        idents = ["etrn-%d" % i for i in range(5)]
        hold_on_backup(st, idents)
        wait_for(lambda: "status=down" in b.log(), what="the backup marking the primary down")
        m = mark(p, b)
        p.start()
        wait_for(lambda: re.search(ETRN_OK % re.escape(b.ip), since(p, m)), timeout=10,
                 what="the primary's log line event=etrn host=%s:25 domain=example.test "
                      "reply=\"250 ...\" ([server] backups: ETRN to the backups at start)" % b.ip)
        wait_for(lambda: all(i in by_id(p, ALICE) for i in idents), timeout=10,
                 what="the held mail in alice's mailbox after the ETRN")
        assert "event=etrn domain=example.test" in since(b, m), since(b, m)
        assert "event=etrn_failed" not in since(p, m), since(p, m)
        check_drained(st, idents)
        st.stop_all()


def test_failover_3c_the_primary_retries_etrn_until_the_backup_answers():
    # A second backup that never answers (nothing listens there): the
    # primary asks it again every second, and those failures are the clock
    # that shows the answered backup is not asked again.
    dead = addr(DEAD_BACKUP_IP)
    with Site(primary={"server": {"backups": "%s:25, %s:25" % (addr(BACKUP_IP), dead)},
                       "relay": {"probe_interval": "1s"}},
              backup={"relay": {"probe_interval": "1h"},
                      "queue": {"retry_min": "1h", "retry_max": "2h"}}) as st:
        p, b, s = st.p, st.b, st.s
        b.start()
        s.start()
        idents = ["retry-%d" % i for i in range(3)]
        hold_on_backup(st, idents)
        wait_for(lambda: "status=down" in b.log(), what="the backup marking the primary down")
        b.stop()
        m = mark(p)
        p.start()

        def failed(host, mk):
            return [l for l in lines(since(p, mk), "etrn_failed") if "host=%s:25 " % host in l]
        wait_for(lambda: failed(b.ip, m), timeout=10,
                 what="the primary's event=etrn_failed host=%s:25 (backup down at its start)" % b.ip)
        wait_for(lambda: len(failed(b.ip, m)) >= 2, timeout=10,
                 what="the primary asking the backup again (probe_interval 1s): %s" % since(p, m))
        mb = mark(p, b)
        b.start()
        # (The backup may also try what it holds by itself as it starts; what
        # is checked here is that the primary keeps asking until it answers.)
        wait_for(lambda: re.search(ETRN_OK % re.escape(b.ip), since(p, mb)), timeout=5,
                 what="the primary's retried ETRN answered by the backup")
        wait_for(lambda: all(i in by_id(p, ALICE) for i in idents), timeout=10,
                 what="the held mail in alice's mailbox")
        assert "event=etrn domain=example.test" in since(b, mb)
        check_drained(st, idents)
        # Answered once: no more ETRN to that backup, while the primary asked
        # the dead one twice more.
        ma = mark(p)
        wait_for(lambda: len(failed(dead, ma)) >= 2, timeout=10,
                 what="two more ETRN attempts to the backup that never answers (%s)" % dead)
        assert len(re.findall(ETRN_OK % re.escape(b.ip), since(p, mb))) == 1, since(p, mb)
        assert not failed(b.ip, mb), since(p, mb)
        assert not re.search(r"event=etrn\S* host=%s:25" % re.escape(b.ip), since(p, ma)), since(p, ma)
        st.stop_all()


# --- 4. flapping ---------------------------------------------------------------

LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z tandem\[(\d+)\]: (\S+): (.*)$")


def primary_commits(log):
    """queue id -> ms from its event=queued to the last line of the process
    that logged it, when that process was killed within a second of it (not
    stopped); None when the process lived on."""
    last, stopped, commit_at = {}, set(), {}
    for l in log.splitlines():
        m = LOG_RE.match(l)
        if not m:
            continue
        t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
        last[m.group(2)] = t
        if m.group(4).startswith("event=stopped"):
            stopped.add(m.group(2))
        elif m.group(4).startswith("event=queued "):
            commit_at[m.group(3)] = (m.group(2), t)
    out = {}
    for qid, (pid, t) in commit_at.items():
        gap = last[pid] - t
        out[qid] = int(gap * 1000) if pid not in stopped and gap < 1.0 else None
    return out


def stuck_story(srv, most=3):
    """What a server says about the messages still in its queue: the queue
    entry and the last log lines naming each."""
    out = []
    try:
        listed = json.loads(srv.cli("queue", "list", "--json").stdout or "[]")
    except (AssertionError, ValueError) as e:
        listed = [{"error": str(e)}]
    log = srv.log().splitlines()
    for e in listed[:most]:
        out.append("%s still queued: %s" % (srv.hostname, json.dumps(e)))
        qid = e.get("id")
        if qid:
            out += ["    " + l for l in [l for l in log if qid in l][-15:]]
    return out


class Flap:
    def __init__(self, n):
        self.n = n
        self.lock = threading.Lock()
        self.next = 0
        self.accepted = set()
        self.errors = []
        self.tempfails = []
        self.kills = []     # (seconds since start, messages handed in by then)


def flap_sender(st, f, t0, rate, deadline):
    while time.monotonic() < deadline:
        with f.lock:
            k = f.next
            f.next += 1
        if k >= f.n:
            return
        delay = t0 + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ident = "flap-%04d" % k
        msg = "Subject: flapping %s\nX-Failover-Id: %s\n\nmessage %s\n" % (ident, ident, ident)
        for _ in range(5):
            try:
                r = subprocess.run([BIN, "-c", st.s.conf, "sendmail", "-f", CAROL, ALICE], input=msg,
                                   capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as e:
                with f.lock:
                    f.errors.append("%s: %s" % (ident, e))
                break
            with f.lock:
                if r.returncode == 0:
                    f.accepted.add(ident)
                    break
                if r.returncode != 75:
                    f.errors.append("%s: exit %d %s" % (ident, r.returncode, r.stderr.strip()))
                    break
                # EX_TEMPFAIL: not accepted; a script tries again, and so do we
                f.tempfails.append("%s: exit 75 %s" % (ident, r.stderr.strip()))
        else:
            with f.lock:
                f.errors.append("%s: exit 75 five times" % ident)


def flap_killer(st, f, rng, t0, stop, kills, errors):
    p = st.p
    try:
        while len(f.kills) < kills and not stop.is_set():
            if stop.wait(rng.uniform(0.7, 2.5)):
                break
            p.kill()
            with f.lock:
                f.kills.append((time.monotonic() - t0, f.next))
            time.sleep(rng.uniform(0.2, 1.5))
            p.start()
    except BaseException as e:  # reported by the main thread
        errors.append(e)


def test_failover_4_flapping_primary_1000_messages():
    n = int(os.environ.get("TANDEM_FAILOVER_MESSAGES", "1000"))
    seed = int(os.environ.get("TANDEM_FAILOVER_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print("failover 4: seed %d" % seed)
    with Site() as st:
        p, b, s = st.p, st.b, st.s
        for srv in (p, b, s):
            srv.start()
        f = Flap(n)
        t0 = time.monotonic()
        stop = threading.Event()
        errors = []
        # ~15s of sending at a steady rate, with 5 kills at random moments in it
        rate = n / 15.0
        senders = [threading.Thread(target=flap_sender, args=(st, f, t0, rate, t0 + 120))
                   for _ in range(8)]
        killer = threading.Thread(target=flap_killer, args=(st, f, rng, t0, stop, 5, errors))
        for t in senders + [killer]:
            t.start()
        for t in senders:
            t.join(150)
        sent_at = time.monotonic() - t0
        killer.join(60)   # lets it finish its kills; at most 5
        stop.set()
        assert not killer.is_alive() and not any(t.is_alive() for t in senders), "threads hung"
        if errors:
            raise errors[0]
        if p.proc is None or p.proc.poll() is not None:
            p.start()
        kills_at = " ".join("%.1fs(after %d)" % k for k in f.kills)
        print("failover 4: %d handed in, %d accepted in %.1fs; %d kills at %s" %
              (n, len(f.accepted), sent_at, len(f.kills), kills_at))
        for t in f.tempfails:
            # the sender is never killed: a temporary failure here is worth a look
            print("failover 4: tandem sendmail temporary failure, handed in again: " + t)
        assert not f.errors, "seed %d: tandem sendmail failed %d times: %s" % (seed, len(f.errors), f.errors[:5])
        assert len(f.kills) >= 4, "seed %d: only %d kills" % (seed, len(f.kills))
        # The primary is up for good: everything drains into alice's mailbox.
        t1 = time.monotonic()
        try:
            # Every queue empty, the primary's too: nothing is left to
            # deliver, so no late duplicate can show up after this.
            wait_for(lambda: f.accepted <= set(by_id(p, ALICE)) and not queued(s) and not queued(b)
                     and not queued(p),
                     timeout=60, step=0.2, what="every accepted message delivered, all queues empty")
            stuck = None
        except AssertionError:
            stuck = "sender queue %d, backup queue %d, primary queue %d\n%s" % (
                len(queued(s)), len(queued(b)), len(queued(p)),
                "\n".join(stuck_story(s) + stuck_story(b) + stuck_story(p)))
        drain = time.monotonic() - t1
        got = by_id(p, ALICE)
        lost = sorted(f.accepted - set(got))
        unknown = sorted(k for k in got if k not in f.accepted)
        # Which copies did a client see acknowledged (250 ... queued as QID)?
        confirmed = set(QUEUED_AS_RE.findall(s.log())) | set(QUEUED_AS_RE.findall(b.log()))
        commits = primary_commits(p.log())
        dups, avoidable = [], []
        for ident, copies in sorted(got.items()):
            if ident is None or len(copies) < 2:
                continue
            qids = [q for q, _ in copies]
            acked = [q for q in qids if q in confirmed]
            paths, unexplained = [], False
            for q, d in copies:
                if q in confirmed:
                    how = "250 seen"
                elif q not in commits:
                    how = "250 lost: its process died before logging the commit"
                elif commits[q] is not None:
                    how = "250 lost: its process was SIGKILLed %dms after the commit" % commits[q]
                else:
                    how = "250 lost, yet the primary that committed it lived on"
                    unexplained = True
                paths.append("%s(%s, %s)" % (q, "via backup" if came_through_backup(d) else "direct", how))
            dups.append("%s: %d copies %s" % (ident, len(copies), "; ".join(paths)))
            # A copy whose 250 never reached its client because the primary
            # died right after committing it is RFC 5321 6.1; two acknowledged
            # copies, one queue id twice, or a lost 250 from a live primary are not.
            if len(acked) > 1 or len(set(qids)) < len(qids) or unexplained:
                avoidable.append(dups[-1])
        via_backup = sum(1 for cs in got.values() for _, d in cs if came_through_backup(d))
        possible = len(re.findall("possible_duplicate=yes", s.log() + b.log()))
        print("failover 4: seed %d: %d accepted, %d delivered (%d via the backup), %d lost, "
              "%d duplicates (%d not from a lost 250), %d possible_duplicate=yes logged by the "
              "clients; drained in %.1fs" % (seed, len(f.accepted), sum(len(c) for c in got.values()),
                                             via_backup, len(lost), len(dups), len(avoidable),
                                             possible, drain))
        for d in dups[:20]:
            print("failover 4: duplicate " + d)
        assert not lost, "seed %d: %d accepted messages never delivered: %s (%s)" % (
            seed, len(lost), lost[:20], stuck)
        assert not unknown, "seed %d: unknown or unparsable messages in the mailbox: %s" % (seed, unknown[:10])
        assert stuck is None, "seed %d: queues not empty after 60s: %s" % (seed, stuck)
        assert not avoidable, "seed %d: duplicates not explained by a lost reply:\n%s" % (
            seed, "\n".join(avoidable[:20]))
        if os.environ.get("TANDEM_CRASH_STRICT") == "1":
            assert not dups, "seed %d: %d duplicates:\n%s" % (seed, len(dups), "\n".join(dups[:20]))
        assert via_backup > 0, "seed %d: nothing went through the backup: the kills missed" % seed
        assert_no_bounce(b, s)
        assert s.messages(CAROL) == []
        assert b.queue_files("hold") == [] and s.queue_files("hold") == [] and p.queue_files("hold") == []
        st.stop_all()


# --- 5. the backup knows the valid recipients ----------------------------------

def test_failover_5_backup_with_recipient_list_rejects_unknown_users():
    with Site() as st:
        p, b, s = st.p, st.b, st.s
        rfile = os.path.join(b.tmp, "rcpts.txt")
        with open(rfile, "w") as fh:
            fh.write("# the primary's users\nalice@example.test\nbob@example.test\n")
        b.cli("recipients", "load", "example.test", rfile)
        for srv in (p, b, s):
            srv.start()
        p.stop()
        m = mark(s, b)
        sendmail(s, [ALICE, "nobody@example.test"], "known-and-unknown")
        sendmail(s, ["ghost@example.test"], "unknown-only")
        sendmail(s, [BOB], "bob-only")
        # Two DSNs to carol (one per message with an unknown recipient).
        dsns = wait_for(lambda: len(s.messages(CAROL)) >= 2 and s.messages(CAROL), timeout=20,
                        what="the sender's DSNs to carol")
        wait_for(lambda: queued(s) == [], what="the sender's queue empty")
        failed_to = []
        for raw in dsns:
            msg, status, headers = dsn_parts(raw)
            assert msg["To"] == "<carol@example.org>", msg["To"]
            assert "Action: failed" in status and "Status: 5.1.1" in status, status
            assert "alice@example.test" not in status and "bob@example.test" not in status, status
            failed_to += re.findall(r"Final-Recipient: rfc822; (\S+)", status)
            assert "mx2.example.test" in status, status   # the diagnostic names who refused
        assert sorted(failed_to) == ["ghost@example.test", "nobody@example.test"], failed_to
        blog = since(b, m)
        rej = [l for l in lines(blog, "reject") if "cmd=RCPT" in l and "code=550" in l]
        assert len(rej) == 2 and any("nobody@example.test" in l for l in rej) and \
            any("ghost@example.test" in l for l in rej), blog
        # The backup holds the known ones only.
        assert len(lines(blog, "queued")) == 2, blog
        assert len(queued(b)) == 2
        assert_no_bounce(b)
        drain_after_restart(st, ["known-and-unknown"])
        wait_for(lambda: "bob-only" in by_id(p, BOB), what="bob's message")
        assert len(by_id(p, ALICE)["known-and-unknown"]) == 1
        assert "unknown-only" not in by_id(p, ALICE)
        wait_for(lambda: queued(b) == [], what="the backup's queue empty")
        # the sender's queue empty: every DSN it made is in carol's mailbox
        wait_for(lambda: queued(s) == [], what="the sender's queue empty")
        assert len(s.messages(CAROL)) == 2
        st.stop_all()


# --- 6. lifetime expiry ----------------------------------------------------------

def test_failover_6_no_mx_reachable_lifetime_expiry_one_dsn_none_for_null_sender():
    with Site(sender={"queue": {"lifetime": "3s", "retry_min": "1s", "retry_max": "1s"},
                      "relay": {"probe_interval": "1s"}}) as st:
        s = st.s
        s.start()     # neither the primary nor the backup runs
        sendmail(s, [ALICE], "expire-carol")
        sendmail(s, [ALICE], "expire-null", sender="")
        wait_for(lambda: s.messages(CAROL), timeout=20, what="the expiry DSN to carol")
        # Both messages and the DSN gone from the queue: a second DSN, or one
        # for the null sender, would have been queued before its message was
        # removed, and delivered before it left the queue itself.
        wait_for(lambda: queued(s) == [] and len(lines(s.log(), "removed")) >= 3, timeout=20,
                 what="both messages and the DSN gone from the sender's queue")
        msgs = s.messages(CAROL)
        assert len(msgs) == 1, "%d DSNs to carol" % len(msgs)
        msg, status, headers = dsn_parts(msgs[0])
        assert msgs[0].startswith(b"Return-Path: <>\n"), msgs[0][:200]
        assert "Final-Recipient: rfc822; alice@example.test" in status, status
        assert "Status: 4.4.7" in status and "Action: failed" in status, status
        assert "X-Failover-Id: expire-carol" in headers, headers
        log = s.log()
        assert len(lines(log, "expired")) == 2, lines(log, "expired")
        bounced = lines(log, "bounced")
        assert len(bounced) == 2, bounced
        assert sum("dsn=none(null sender)" in l for l in bounced) == 1, bounced
        assert len([l for l in log.splitlines() if "event=queued from=<>" in l]) == 1, log
        # Both MX hosts were tried; nothing got through.
        assert any("mx1.example.test" in l for l in lines(log, "smtp_host_failed"))
        assert any("mx2.example.test" in l for l in lines(log, "smtp_host_failed"))
        remote = [l for l in lines(log, "delivered") if "relay=local" not in l]
        assert not remote, remote
        s.stop()


# --- 7. Postfix as the sending server -------------------------------------------

def sending_postfix(ip, resolver):
    """A private Postfix (harness.Postfix) as the sending server: relays for
    its loopback clients through DNS (resolver: its namespace's
    /etc/resolv.conf), from ip, so the tandems see where mail comes from."""
    assert os.geteuid() == 0, "the Postfix scenario needs root (postfix start, unshare -m, mount)"
    return Postfix(ip, 25, resolver=resolver, prefix="tandem-e2e-postfix-",
                   comment="tests/e2e/test_failover.py", main={
                       "smtp_bind_address": ip,
                       "smtpd_relay_restrictions": "permit_mynetworks, reject",
                       "smtp_host_lookup": "dns",
                       "disable_dns_lookups": "no",
                       "smtp_tls_security_level": "may",
                       "smtp_connect_timeout": "5s",
                       "queue_run_delay": "1s",
                       "minimal_backoff_time": "1s",
                       "maximal_backoff_time": "2s",
                       "smtpd_peername_lookup": "no",
                   })


def test_failover_7_postfix_as_the_sending_server():
    resolver = addr(RESOLVER_IP)
    # One dnsmasq on port 53 serves both the Postfix namespace and the tandems.
    pf = None
    with Site(dns_listen=resolver, dns_port=53) as st:
        p, b = st.p, st.b
        try:
            pf = sending_postfix(addr(POSTFIX_IP), resolver)
            p.start()
            b.start()
            pf.start()

            def inject(ident):
                with smtplib.SMTP(pf.ip, 25, timeout=30) as c:
                    c.ehlo("client.example.net")
                    c.sendmail("carol@example.net", [ALICE],
                               ("From: carol@example.net\r\nTo: alice@example.test\r\n"
                                "Subject: %s\r\nX-Failover-Id: %s\r\n\r\nvia Postfix\r\n"
                                % (ident, ident)).encode())
                pf.track()

            def pf_wait(pred, timeout, what):
                try:
                    return wait_for(pred, timeout=timeout, what=what)
                except AssertionError as e:
                    raise AssertionError("%s\nPostfix's maillog:\n%s" % (e, pf.log()[-3000:]))

            # Primary up: Postfix goes straight to MX 10.
            inject("pf-up")
            got = pf_wait(lambda: by_id(p, ALICE).get("pf-up"), 30, "Postfix's message on the primary")
            assert not came_through_backup(got[0][1])
            assert re.search(r"relay=mx1\.example\.test\[%s\]:25.*status=sent" % re.escape(p.ip), pf.log()), \
                pf.log()[-2000:]
            assert not lines(b.log(), "queued")
            # Primary down: Postfix falls back to MX 20, the tandem backup keeps it.
            p.stop()
            m = mark(b)
            inject("pf-down")
            pf_wait(lambda: lines(since(b, m), "queued"), 30, "the backup queueing Postfix's message")
            q = lines(since(b, m), "queued")
            assert len(q) == 1 and "from=<carol@example.net>" in q[0], q
            assert "client=[%s]" % pf.ip in q[0], q     # from Postfix (smtp_bind_address)
            pf_wait(lambda: re.search(r"relay=mx2\.example\.test\[%s\]:25.*status=sent" % re.escape(b.ip),
                                      pf.log()), 10, "Postfix logging the backup's 250")
            assert re.search(r"connect to mx1\.example\.test\[%s\]:25: Connection refused" %
                             re.escape(p.ip), pf.log()), pf.log()[-2000:]
            assert len(queued(b)) == 1
            # Primary back: the backup drains it.
            drain_after_restart(st, ["pf-down"])
            got = by_id(p, ALICE)["pf-down"]
            assert len(got) == 1 and came_through_backup(got[0][1]), got
            assert b"(Postfix)" in got[0][1], got[0][1][:800]
            wait_for(lambda: queued(b) == [], what="the backup's queue empty")
            assert_no_bounce(b, p)
            assert "status=bounced" not in pf.log(), pf.log()[-2000:]
        finally:
            left = pf.stop() if pf is not None else []
    assert not left, "Postfix processes still alive after postfix stop and SIGKILL: %s" % left
    b.stop()
    p.stop()
