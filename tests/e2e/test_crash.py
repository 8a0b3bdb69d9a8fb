"""The crash test (issue 2): mail arrives from several concurrent clients
while the server is killed with SIGKILL at random moments and restarted.
Every message that got a 250 must be delivered (primary) or still queued
(backup) afterwards -- zero loss -- and duplicates are counted.

Each message carries "X-Seq: N" (which message) and "X-Attempt: A" (which
try of it), so every copy found afterwards can be traced to the exact SMTP
transaction that produced it. A client whose connection breaks retries the
message later as a new attempt. An attempt is recorded as
  accepted   250 after the final dot
  refused    a 4xx/5xx reply anywhere: the server must never deliver it
  cut        the connection broke before the final dot was sent: never
             deliverable
  ambiguous  the final dot was sent but no reply came: the server may or may
             not have committed it (RFC 5321 6.1); a copy of it plus a copy of
             the retry is the one duplicate SMTP itself cannot prevent

Set TANDEM_CRASH_SEED to replay a run's kill timings.
"""
import collections
import json
import os
import random
import re
import smtplib
import threading
import time

from lib import Server, wait_for

# Own loopback addresses: scenarios of other files (or other checkouts)
# may be listening on the usual 127.0.0.10/20 at the same time.
PRIMARY_IP = "127.0.3.10"
BACKUP_IP = "127.0.3.20"

ALICE = "alice@example.test"
QID_RE = re.compile(rb"queued as ([0-9A-F]{16})")
SEQ_RE = re.compile(rb"^X-Seq: (\d+)\r?$", re.M)
ATT_RE = re.compile(rb"^X-Attempt: (\d+)\r?$", re.M)
BODY_LINES = 6


def body_line(seq, k):
    return "seq %d line %d %s" % (seq, k, "abcdefghij" * 3)


def build(seq, attempt):
    head = ("From: <sender%d@example.org>\r\nTo: <%s>\r\nSubject: crash test message %d\r\n"
            "Message-ID: <%d.%d@crash.example.org>\r\nX-Seq: %d\r\nX-Attempt: %d\r\n\r\n"
            % (seq, ALICE, seq, seq, attempt, seq, attempt))
    body = "".join(body_line(seq, k) + "\r\n" for k in range(BODY_LINES))
    return (head + body).encode()


def check_copy(data, seq):
    """A delivered/queued copy is the whole message, not a torn one."""
    text = data.replace(b"\r\n", b"\n")
    for k in range(BODY_LINES):
        if (body_line(seq, k) + "\n").encode() not in text:
            return False
    return True


class Ledger:
    """Which attempt of which message got what answer."""

    def __init__(self, n):
        self.n = n
        self.lock = threading.Lock()
        self.todo = collections.deque(range(n))
        self.attempts = collections.defaultdict(list)   # seq -> [outcome per attempt]
        self.qid = {}                                    # seq -> qid of the 250
        self.sent = 0

    def take(self):
        with self.lock:
            return self.todo.popleft() if self.todo else None

    def begin(self, seq):
        with self.lock:
            self.attempts[seq].append("cut")
            return len(self.attempts[seq])

    def end(self, seq, attempt, outcome, qid=None):
        with self.lock:
            self.attempts[seq][attempt - 1] = outcome
            if outcome == "accepted":
                self.qid[seq] = qid
            else:
                self.todo.append(seq)

    def pace(self, t0, rate):
        with self.lock:
            k = self.sent
            self.sent += 1
        delay = t0 + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def sender(s, ledger, t0, rate, deadline):
    conn = None
    while time.monotonic() < deadline:
        seq = ledger.take()
        if seq is None:
            # others may still fail and hand work back
            with ledger.lock:
                if len(ledger.qid) == ledger.n:
                    break
            time.sleep(0.05)
            continue
        ledger.pace(t0, rate)
        attempt = ledger.begin(seq)
        stage = "cut"
        try:
            if conn is None:
                conn = smtplib.SMTP(s.ip, s.port, timeout=15)
                conn.ehlo("client.example.org")
            code, _ = conn.mail("sender%d@example.org" % seq)
            if code != 250:
                raise smtplib.SMTPResponseException(code, b"MAIL")
            code, _ = conn.rcpt(ALICE)
            if code != 250:
                raise smtplib.SMTPResponseException(code, b"RCPT")
            conn.putcmd("data")
            code, _ = conn.getreply()
            if code != 354:
                raise smtplib.SMTPResponseException(code, b"DATA")
            conn.send(build(seq, attempt) + b".\r\n")
            stage = "ambiguous"
            code, text = conn.getreply()
            if code != 250:
                stage = "refused"
                raise smtplib.SMTPResponseException(code, text)
            m = QID_RE.search(text)
            ledger.end(seq, attempt, "accepted", m.group(1).decode() if m else repr(text))
        except smtplib.SMTPResponseException as e:
            ledger.end(seq, attempt, "refused" if e.smtp_code >= 400 else stage)
            conn = close(conn)
            time.sleep(0.02)
        except (smtplib.SMTPException, OSError):
            ledger.end(seq, attempt, stage)
            conn = close(conn)
            time.sleep(0.02)
    close(conn)


def close(conn):
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass
    return None


def restart(s):
    """Start S and wait until *this* process logs event=start (the log file
    is appended to across restarts, so an earlier start line must not
    count)."""
    before = len(s.log())
    s.start(wait=False)
    wait_for(lambda: s.proc.poll() is not None or "event=start " in s.log()[before:],
             timeout=20, what="tandem to restart")
    assert s.proc.poll() is None, "tandem exited at restart:\n" + s.log()[before:]


def killer(s, rng, stop, kills, max_kills, lo, hi, errors):
    try:
        while kills[0] < max_kills and not stop.is_set():
            if stop.wait(rng.uniform(lo, hi)):
                break
            s.kill()
            kills[0] += 1
            restart(s)
    except BaseException as e:  # reported by the main thread
        errors.append(e)


def run_crash(s, n, threads, max_kills, rate, lo, hi, budget):
    seed = int(os.environ.get("TANDEM_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    ledger = Ledger(n)
    t0 = time.monotonic()
    deadline = t0 + budget
    stop = threading.Event()
    kills, errors = [0], []
    k = threading.Thread(target=killer, args=(s, rng, stop, kills, max_kills, lo, hi, errors))
    ws = [threading.Thread(target=sender, args=(s, ledger, t0, rate, deadline)) for _ in range(threads)]
    k.start()
    for w in ws:
        w.start()
    for w in ws:
        w.join(budget + 30)
    stop.set()
    k.join(60)
    assert not k.is_alive() and not any(w.is_alive() for w in ws), "crash test threads hung"
    if errors:
        raise errors[0]
    elapsed = time.monotonic() - t0
    missing = [q for q in range(n) if q not in ledger.qid]
    assert not missing, ("seed %d: %d messages never got a 250 within %ds (kills %d): %s" %
                         (seed, len(missing), budget, kills[0], missing[:20]))
    # the final restart
    s.kill()
    restart(s)
    return ledger, kills[0], seed, elapsed


def audit(ledger, copies, n, where):
    """copies: seq -> [(attempt, qid) of each copy found].

    Returns (outcomes, dup_seqs, lost_reply_dups, problems). A duplicate is
    explained ("lost reply") when every copy comes from a different attempt,
    one of them the accepted one and the others ambiguous: the server
    committed a try whose 250 never reached the client, which retried.
    Anything else -- a lost 250'd message, a copy of a try that never
    completed or was refused, one transaction stored twice -- is a problem.
    """
    problems = []
    outcomes = collections.Counter()
    dup_seqs, lost_reply = [], []
    for seq in range(n):
        atts = ledger.attempts[seq]
        outcomes.update(atts)
        found = [a for a, _ in copies.get(seq, [])]
        for i, o in enumerate(atts):
            if o == "accepted" and i + 1 not in found:
                problems.append("LOST: seq %d attempt %d got 250 (queue id %s) but is not %s"
                                % (seq, i + 1, ledger.qid[seq], where))
        for a in sorted(set(found)):
            if not 1 <= a <= len(atts):
                problems.append("seq %d: a copy of attempt %d, which was never made" % (seq, a))
                continue
            if atts[a - 1] in ("cut", "refused"):
                problems.append("seq %d attempt %d was %s, yet a copy is %s"
                                % (seq, a, atts[a - 1], where))
            if found.count(a) > 1:
                problems.append("seq %d attempt %d (one SMTP transaction) is %s %d times: %s"
                                % (seq, a, where, found.count(a), copies[seq]))
        if len(found) > 1:
            dup_seqs.append(seq)
            if len(set(found)) == len(found) and all(
                    1 <= a <= len(atts) and atts[a - 1] in ("accepted", "ambiguous") for a in found):
                lost_reply.append(seq)
            else:
                problems.append("seq %d: duplicate not explained by a lost reply: copies %s, "
                                "attempts %s" % (seq, copies[seq], atts))
    for seq in copies:
        if not 0 <= seq < n:
            problems.append("a copy with unknown X-Seq %d" % seq)
    return outcomes, dup_seqs, lost_reply, problems


def describe_dups(s, ledger, copies, dup_seqs):
    """One paragraph per duplicate: the attempts, the copies and, for each
    copy, the server's log line committing it and that process's last line."""
    log = s.log().splitlines()
    out = []
    for q in dup_seqs[:10]:
        out.append("seq %d: attempts %s; copies (attempt, queue id) %s" %
                   (q, ledger.attempts[q], sorted(copies[q])))
        for a, qid in sorted(copies[q]):
            idx = next((i for i, l in enumerate(log) if "%s: event=queued" % qid in l), None)
            if idx is None:
                out.append("    %s: no event=queued line in the log" % qid)
                continue
            m = re.search(r"tandem\[(\d+)\]", log[idx])
            mine = [i for i, l in enumerate(log) if m and "tandem[%s]" % m.group(1) in l]
            out.append("    " + log[idx])
            if mine and mine[-1] != idx:
                out.append("    ... last line of that process (%d lines later): %s"
                           % (mine[-1] - idx, log[mine[-1]]))
            else:
                out.append("    ... the last line that process wrote (killed)")
    return out


def report(label, s, ledger, copies, dup_seqs, lost_reply, outcomes, kills, seed, elapsed, stored):
    print("crash test%s: %d accepted, %d %s, %d duplicates, %d kills" %
          (label, outcomes["accepted"], stored, "delivered" if not label else "queued",
           len(dup_seqs), kills))
    print("crash test%s: seed %d, %.1fs, attempts %s; %d duplicates from a committed try whose "
          "250 never reached the client (RFC 5321 6.1)" %
          (label, seed, elapsed, dict(outcomes), len(lost_reply)))
    for line in describe_dups(s, ledger, copies, dup_seqs):
        print("crash test%s: duplicate %s" % (label, line))


def check_duplicates(seed, s, ledger, copies, dup_seqs, lost_reply):
    """Zero duplicates the server could have avoided. Duplicates of a try the
    server committed but died before answering are inherent to SMTP; they are
    reported above, and fail the test too with TANDEM_CRASH_STRICT=1."""
    avoidable = [q for q in dup_seqs if q not in lost_reply]
    assert not avoidable, "seed %d: %d duplicates:\n%s" % (
        seed, len(avoidable), "\n".join(describe_dups(s, ledger, copies, avoidable)))
    if os.environ.get("TANDEM_CRASH_STRICT") == "1":
        assert not dup_seqs, "seed %d: %d duplicates:\n%s" % (
            seed, len(dup_seqs), "\n".join(describe_dups(s, ledger, copies, dup_seqs)))


def read_maildir(s, address):
    copies = collections.defaultdict(list)
    torn = []
    for path in s.maildir(address) + s.maildir(address, "cur"):
        with open(path, "rb") as f:
            data = f.read()
        sm, am = SEQ_RE.search(data), ATT_RE.search(data)
        if not sm or not am:
            torn.append(path)
            continue
        seq = int(sm.group(1))
        # file name: <QID>.Q.<hostname>[:2,FLAGS]
        copies[seq].append((int(am.group(1)), os.path.basename(path).split(".")[0]))
        if not check_copy(data, seq):
            torn.append(path)
    return copies, torn


# --- primary: every 250 is delivered ------------------------------------------

def test_crash_primary_2000_messages():
    n = 2000
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice",))
    restart(p)
    ledger, kills, seed, elapsed = run_crash(p, n, threads=6, max_kills=10, rate=200,
                                             lo=0.3, hi=1.0, budget=100)
    # wait for the queue to drain (bounded)
    try:
        wait_for(lambda: not (p.queue_files("active") or p.queue_files("deferred")),
                 timeout=60, step=0.2, what="the queue to drain after the crash test")
        stuck = None
    except AssertionError:   # audit first: which messages are missing says more
        stuck = (p.queue_files("active"), p.queue_files("deferred"))
    copies, torn = read_maildir(p, ALICE)
    outcomes, dup_seqs, lost_reply, problems = audit(ledger, copies, n, "in the mailbox")
    delivered = sum(len(v) for v in copies.values())
    report("", p, ledger, copies, dup_seqs, lost_reply, outcomes, kills, seed, elapsed, delivered)
    assert not torn, "torn or unparsable messages in the mailbox: %s" % torn[:10]
    assert not problems, "seed %d:\n%s" % (seed, "\n".join(problems[:30]))
    assert stuck is None, "seed %d: the queue did not drain in 60s: %d active, %d deferred" % (
        seed, len(stuck[0]), len(stuck[1]))
    assert kills >= 5, "only %d kills happened" % kills
    assert p.queue_files("hold") == [], p.queue_files("hold")
    assert os.listdir(os.path.join(p.data_dir, "queue", "tmp")) == []
    check_duplicates(seed, p, ledger, copies, dup_seqs, lost_reply)
    extra = sum(len(copies[q]) - 1 for q in lost_reply)
    assert outcomes["accepted"] == n and delivered == n + extra, (outcomes, delivered, extra)
    p.stop()


# --- backup: every 250 stays queued, once ---------------------------------

def parse_queue_file(data):
    """TQ1 queue file: typed, length-prefixed records up to "M0:\\n", then
    the message. Returns (records, message)."""
    assert data.startswith(b"TQ1\n"), data[:16]
    i, recs = 4, []
    while True:
        colon = data.index(b":", i)
        t, ln = data[i:i + 1], int(data[i + 1:colon])
        val = data[colon + 1:colon + 1 + ln]
        assert data[colon + 1 + ln:colon + 2 + ln] == b"\n", (i, data[i:i + 40])
        i = colon + 2 + ln
        recs.append((t, val))
        if t == b"M":
            return recs, data[i:]


def test_crash_backup_500_messages():
    n = 500
    b = Server(role="backup", ip=BACKUP_IP, relay_domains=["example.test"])
    restart(b)
    ledger, kills, seed, elapsed = run_crash(b, n, threads=4, max_kills=6, rate=100,
                                             lo=0.3, hi=0.8, budget=60)
    # the last start has cleaned queue/tmp and loaded the queue
    wait_for(lambda: "event=queue_loaded" in b.log()[b.log().rindex("event=start "):],
             what="the queue loaded after the last restart")
    qdir = os.path.join(b.data_dir, "queue")
    assert os.listdir(os.path.join(qdir, "tmp")) == []
    assert b.queue_files("deferred") == [] and b.queue_files("hold") == []
    copies = collections.defaultdict(list)
    torn, by_qid = [], {}
    for qid in b.queue_files("active"):
        with open(os.path.join(qdir, "active", qid), "rb") as f:
            data = f.read()
        try:
            recs, msg = parse_queue_file(data)
        except (AssertionError, ValueError) as e:
            torn.append("%s: %s" % (qid, e))
            continue
        assert (b"I", qid.encode()) in recs, (qid, recs)
        assert (b"R", ALICE.encode()) in recs, (qid, recs)
        sm, am = SEQ_RE.search(msg), ATT_RE.search(msg)
        if not sm or not am or not check_copy(msg, int(sm.group(1))):
            torn.append(qid)
            continue
        copies[int(sm.group(1))].append((int(am.group(1)), qid))
        by_qid[qid] = int(sm.group(1))
    outcomes, dup_seqs, lost_reply, problems = audit(ledger, copies, n, "in queue/active")
    for seq, qid in ledger.qid.items():
        if by_qid.get(qid) != seq:
            problems.append("seq %d: 250 named queue id %s, which is not in queue/active "
                            "holding that message" % (seq, qid))
    queued = sum(len(v) for v in copies.values())
    report(" (backup)", b, ledger, copies, dup_seqs, lost_reply, outcomes, kills, seed, elapsed,
           queued)
    assert not torn, torn[:10]
    assert not problems, "seed %d:\n%s" % (seed, "\n".join(problems[:30]))
    assert kills >= 3, kills
    check_duplicates(seed, b, ledger, copies, dup_seqs, lost_reply)
    extra = sum(len(copies[q]) - 1 for q in lost_reply)
    assert outcomes["accepted"] == n and queued == n + extra, (outcomes, queued, extra)
    assert len(json.loads(b.cli("queue", "list", "--json").stdout)) == queued
    b.stop()
