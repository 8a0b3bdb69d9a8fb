"""Durability (RELIABILITY.md "Durability"): what a crash, a full disk or a
repeated delivery attempt must never do -- lose a message that got 250,
answer 250 for a message that is not on disk, or deliver a message twice.

Every scenario drives the real server over loopback with raw sockets or
smtplib, kills it with SIGKILL where the case asks for a crash, and looks at
the queue and Maildir directories afterwards.
"""
import json
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time

import lib
from lib import Conn, Server, wait_for

# Own loopback addresses: scenarios of other files (or other checkouts)
# may be listening on the usual 127.0.0.10/20 at the same time.
PRIMARY_IP = "127.0.1.10"
BACKUP_IP = "127.0.1.20"

ALICE = "alice@example.test"
QID_RE = re.compile(r"queued as ([0-9A-F]{16})")


# --- helpers ----------------------------------------------------------------

def qdir(s, state):
    return os.path.join(s.data_dir, "queue", state)


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def queued_anywhere(s):
    """Every queue id in active/, deferred/ and hold/."""
    return sorted(set(s.queue_files("active") + s.queue_files("deferred") +
                      s.queue_files("hold")))


def queue_json(s):
    return json.loads(s.cli("queue", "list", "--json").stdout)


def send_one(s, subject, body=b"hello\r\n", rcpt=ALICE, sender="carol@example.org"):
    """Send one message with smtplib; returns the queue id from the 250 reply."""
    msg = ("Subject: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\n" % (subject, sender, rcpt)).encode() + body
    with smtplib.SMTP(s.ip, s.port, timeout=30) as c:
        c.ehlo("client.example.org")
        code, _ = c.mail(sender)
        assert code == 250, code
        code, _ = c.rcpt(rcpt)
        assert code == 250, code
        code, text = c.data(msg)
        assert code == 250, (code, text)
        m = QID_RE.search(text.decode())
        assert m, text
        return m.group(1)


def start_session(s, rcpt=ALICE, mail_args=""):
    """Raw connection through DATA's 354."""
    c = Conn(s.ip, s.port, timeout=30)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example.org")[0] == 250
    code, text = c.cmd("MAIL FROM:<carol@example.org>%s" % mail_args)
    assert code == 250, text
    code, text = c.cmd("RCPT TO:<%s>" % rcpt)
    assert code == 250, text
    code, text = c.cmd("DATA")
    assert code == 354, text
    return c


def mailbox_subjects(s, address=ALICE):
    out = []
    for m in s.messages(address):
        mm = re.search(rb"\nSubject: ([^\n]*)\n", m)
        out.append(mm.group(1).decode() if mm else None)
    return sorted(out)


def restart(s):
    """Start S again and wait until *this* process logs event=start: the log
    file is appended to across restarts, so an earlier start line must not
    count (lib.Server.start(wait=True) looks at the whole log)."""
    before = len(s.log())
    s.start(wait=False)
    wait_for(lambda: s.proc.poll() is not None or "event=start " in s.log()[before:],
             timeout=20, what="tandem to restart")
    assert s.proc.poll() is None, "tandem exited at restart:\n" + s.log()[before:]


def block_maildir(s, address=ALICE):
    """Make delivery to ADDRESS fail temporarily, even as root: the mailbox
    path is a plain file, so creating tmp/ in it fails with ENOTDIR."""
    local, domain = address.split("@")
    d = os.path.join(s.data_dir, "mail", domain)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, local)
    with open(path, "w") as f:
        f.write("not a maildir\n")
    return path


def unblock_maildir(path):
    os.unlink(path)


class Tmpfs:
    """A small tmpfs (we run as root) used as a data_dir; always unmounted."""

    def __init__(self, size):
        self.dir = tempfile.mkdtemp(prefix="tandem-tmpfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", self.dir],
                       check=True, capture_output=True)

    def free(self):
        st = os.statvfs(self.dir)
        return st.f_bavail * st.f_frsize

    def close(self):
        for _ in range(50):
            if subprocess.run(["umount", self.dir], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


# --- kill -9 while DATA streams in -----------------------------------------

def tmp_files(s):
    d = qdir(s, "tmp")
    return [(n, os.path.getsize(os.path.join(d, n))) for n in listdir(d)]


def test_kill_during_data_partial_removed():
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice",))
    restart(p)
    # Two clients in the middle of DATA: one has sent a few lines (the
    # server may keep them in memory), the other 1 MB (more than any
    # in-memory buffer: it streams to queue/tmp/).
    small = start_session(p)
    small.send("Subject: partial-small\r\n\r\nline 1\r\nline 2\r\n")
    big = start_session(p)
    big.send("Subject: partial-big\r\n\r\n" + ("x" * 70 + "\r\n") * 14000)
    wait_for(lambda: any(size >= 200 * 1024 for _, size in tmp_files(p)),
             what="a partial message being written to queue/tmp")
    time.sleep(0.2)
    partials = len(tmp_files(p))
    assert 1 <= partials <= 2, tmp_files(p)
    p.kill()
    # No reply at all after 354 (in particular no 250) on either connection.
    for c in (small, big):
        assert c.closed(timeout=5)
        assert c.buf == b"", "server sent %r after 354 before dying" % c.buf
        c.close()
    assert len(tmp_files(p)) == partials
    assert queued_anywhere(p) == []

    restart(p)
    # the first process logged a queue load too: wait for the second one's
    wait_for(lambda: p.log().count("event=queue_loaded messages=0") >= 2,
             what="queue load after restart")
    assert "event=recovery removed_partials=%d" % partials in p.log(), p.log()
    assert tmp_files(p) == []
    assert queued_anywhere(p) == []
    assert "queue is empty" in p.cli("queue", "list").stdout
    # The server works, and only the new message is ever delivered.
    send_one(p, "after-restart")
    wait_for(lambda: p.messages(ALICE), what="delivery after restart")
    p.settle()   # every message it ever queued delivered: nothing else can come
    assert mailbox_subjects(p) == ["after-restart"]
    p.stop()


def test_kill_before_final_dot_never_delivered():
    """The body is complete but the final CRLF.CRLF has not arrived (only
    "CRLF." of it): no 250, nothing queued or delivered after a restart --
    for a message kept in memory and for one streamed to queue/tmp."""
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice",))
    restart(p)
    small = start_session(p)
    small.send("Subject: no-dot-small\r\n\r\nlast line\r\n.")
    big = start_session(p)
    big.send("Subject: no-dot-big\r\n\r\n" + ("y" * 70 + "\r\n") * 8000 + "last line\r\n.")
    wait_for(lambda: any(size >= 200 * 1024 for _, size in tmp_files(p)),
             what="the big message streaming to queue/tmp")
    time.sleep(0.3)
    p.kill()
    for c in (small, big):
        assert c.closed(timeout=5) and c.buf == b"", c.buf
        c.close()
    restart(p)
    wait_for(lambda: p.log().count("event=queue_loaded") >= 2, what="the restarted queue load")
    assert tmp_files(p) == [] and queued_anywhere(p) == []
    p.settle()   # (it never queued anything: no 250 was given)
    assert p.messages(ALICE) == []
    p.stop()


# --- kill -9 right after 250 -----------------------------------------------

def test_kill_after_250_backup_keeps_message():
    b = Server(role="backup", ip=BACKUP_IP, relay_domains=["example.test"])
    restart(b)
    qids = [send_one(b, "held-%d" % i) for i in range(3)]
    b.kill()   # immediately after the last 250
    for q in qids:
        assert os.path.exists(os.path.join(qdir(b, "active"), q)), (q, queued_anywhere(b))
    assert listdir(qdir(b, "tmp")) == []

    restart(b)
    wait_for(lambda: "event=queue_loaded messages=3" in b.log(), what="3 messages reloaded")
    assert b.queue_files("active") == sorted(qids)
    entries = {e["id"]: e for e in queue_json(b)}
    assert sorted(entries) == sorted(qids)
    for q in qids:
        assert entries[q]["state"] == "active"
        assert entries[q]["sender"] == "carol@example.org"
        assert [r["address"] for r in entries[q]["recipients"]] == [ALICE]
    text = b.cli("queue", "list").stdout
    for q in qids:
        assert q in text
    assert "Subject: held-2" in b.cli("queue", "show", qids[2]).stdout
    b.stop()


def test_kill_after_250_primary_delivers_after_restart():
    """Kill the primary the moment each 250 arrives (delivery may or may not
    have happened yet), restart, repeat: every message ends up in the
    mailbox exactly once."""
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice",))
    restart(p)
    subjects = []
    for i in range(15):
        subj = "kill-after-250-%d" % i
        send_one(p, subj)
        subjects.append(subj)
        p.kill()
        restart(p)
    wait_for(lambda: len(p.messages(ALICE)) >= len(subjects) and not queued_anywhere(p),
             timeout=30, what="all 15 messages delivered")
    p.settle()   # each message it queued removed: no late duplicate can come
    assert mailbox_subjects(p) == sorted(subjects), mailbox_subjects(p)
    p.stop()


def test_kill_after_250_primary_blocked_delivery():
    """Delivery cannot happen before the kill (the mailbox is blocked): the
    message is in the queue when the server dies, and is delivered once the
    server is back and the mailbox is usable."""
    p = Server(role="primary", ip=PRIMARY_IP, extra={"queue": {"retry_min": "1s", "retry_max": "2s"}})
    p.setup_domain(users=("alice",))
    blocker = block_maildir(p)
    restart(p)
    qid = send_one(p, "blocked-then-killed")
    p.kill()
    assert queued_anywhere(p) == [qid], (queued_anywhere(p), p.log())
    unblock_maildir(blocker)
    restart(p)
    wait_for(lambda: p.messages(ALICE) and not queued_anywhere(p), timeout=20,
             what="delivery after restart")
    assert mailbox_subjects(p) == ["blocked-then-killed"]
    name = os.path.basename(p.maildir(ALICE)[0])
    assert qid in name, name
    p.stop()


# --- disk full --------------------------------------------------------------

def test_disk_full_451_at_end_of_data():
    fs = Tmpfs("4m")
    try:
        p = Server(role="primary", ip=PRIMARY_IP, data_dir=fs.dir, extra={"queue": {"min_free": "1M"}})
        p.setup_domain(users=("alice",))
        restart(p)
        free0 = fs.free()
        assert free0 > 2 << 20, free0
        # More than the free space, no SIZE declared: MAIL is accepted, the
        # writes fail with ENOSPC while DATA streams, the end of data gets 451.
        c = start_session(p)
        line = ("z" * 998 + "\r\n").encode()
        big = b"Subject: too-big\r\n\r\n" + line * ((free0 + (1 << 20)) // len(line))
        c.send(big)
        c.send(".\r\n")
        code, text = c.reply()
        assert code == 451 and text.startswith("451 4.3.0"), text
        # The partial is gone, the space is back, nothing was queued.
        assert listdir(qdir(p, "tmp")) == [] and queued_anywhere(p) == []
        assert fs.free() >= free0 - (256 << 10), (fs.free(), free0)
        # The same session and a new one keep working.
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, text = c.cmd("Subject: small-same-session\r\n\r\nfits\r\n.")
        assert code == 250, text
        c.cmd("QUIT")
        c.close()
        send_one(p, "small-new-session")
        wait_for(lambda: len(p.messages(ALICE)) == 2, what="both small messages delivered")
        assert mailbox_subjects(p) == ["small-new-session", "small-same-session"]
        assert re.search(r"event=reject stage=data .*code=451", p.log()), p.log()
        assert "too-big" not in "".join(m.decode("latin-1") for m in p.messages(ALICE))
        p.stop()
    finally:
        for s in list(lib._live):
            if s.data_dir == fs.dir:
                s.kill()
        fs.close()


def test_disk_full_452_at_mail_for_declared_size():
    fs = Tmpfs("4m")
    try:
        p = Server(role="primary", ip=PRIMARY_IP, data_dir=fs.dir, extra={"queue": {"min_free": "1M"}})
        p.setup_domain(users=("alice",))
        restart(p)
        free = fs.free()
        c = Conn(p.ip, p.port)
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.example.org")[0] == 250
        # needs min_free + 1.5 * SIZE: refused up front
        code, text = c.cmd("MAIL FROM:<carol@example.org> SIZE=%d" % free)
        assert text.startswith("452 4.3.1"), text
        code, text = c.cmd("RCPT TO:<%s>" % ALICE)
        assert code == 503, text   # no MAIL transaction was opened
        # a size that fits is accepted on the same connection
        code, text = c.cmd("MAIL FROM:<carol@example.org> SIZE=1000")
        assert code == 250, text
        assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, text = c.cmd("Subject: declared-small\r\n\r\nok\r\n.")
        assert code == 250, text
        c.cmd("QUIT")
        c.close()
        # A client that lies about SIZE still never gets a false 250.
        c = start_session(p, mail_args=" SIZE=1000")
        line = ("q" * 998 + "\r\n").encode()
        c.send(b"Subject: liar\r\n\r\n" + line * ((fs.free() + (1 << 20)) // len(line)) + b".\r\n")
        code, text = c.reply()
        assert text.startswith("451 4.3.0"), text
        c.close()
        wait_for(lambda: p.messages(ALICE), what="delivery")
        p.settle()
        assert mailbox_subjects(p) == ["declared-small"]
        assert queued_anywhere(p) == [] and listdir(qdir(p, "tmp")) == []
        p.stop()
    finally:
        for s in list(lib._live):
            if s.data_dir == fs.dir:
                s.kill()
        fs.close()


def test_disk_nearly_full_small_message_fits():
    """Fill the filesystem until a message cannot be stored but a small one
    can: 451 for the first, 250 for the second. Both ways a message can
    fail to fit are covered: a 1 MB one (written while DATA streams in) and
    a 150 KB one (small enough to be written only at the commit)."""
    fs = Tmpfs("4m")
    try:
        p = Server(role="backup", ip=BACKUP_IP, data_dir=fs.dir,
                   relay_domains=["example.test"], extra={"queue": {"min_free": "16k"}})
        restart(p)
        filler = os.path.join(fs.dir, "filler")
        line = ("w" * 998 + "\r\n").encode()
        qids = []
        for room, lines in ((400, 1050), (64, 150)):
            with open(filler, "ab") as f:
                f.write(b"\0" * max(0, fs.free() - (room << 10)))
            assert fs.free() < (room + 200) << 10, (room, fs.free())
            c = start_session(p)
            c.send(b"Subject: too-big-%d\r\n\r\n" % lines + line * lines + b".\r\n")
            code, text = c.reply()
            assert text.startswith("451 4.3.0"), (lines, text)
            assert listdir(qdir(p, "tmp")) == []
            assert c.cmd("MAIL FROM:<carol@example.org>")[0] == 250
            assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 250
            assert c.cmd("DATA")[0] == 354
            code, text = c.cmd("Subject: tiny\r\n\r\nfits\r\n.")
            assert code == 250, (lines, text)
            qids.append(QID_RE.search(text).group(1))
            c.close()
            assert p.queue_files("active") == sorted(qids)
            assert listdir(qdir(p, "tmp")) == []
        # Free space again: large mail is accepted once more.
        os.unlink(filler)
        c = start_session(p)
        c.send(b"Subject: one-mega-again\r\n\r\n" + line * 1050 + b".\r\n")
        code, text = c.reply()
        assert code == 250, text
        c.close()
        assert len(p.queue_files("active")) == 3
        for q in qids:
            assert "Subject: tiny" in p.cli("queue", "show", q).stdout
        p.stop()
    finally:
        for s in list(lib._live):
            if s.data_dir == fs.dir:
                s.kill()
        fs.close()


def test_min_free_452_at_mail():
    fs = Tmpfs("4m")
    try:
        p = Server(role="primary", ip=PRIMARY_IP, data_dir=fs.dir, extra={"queue": {"min_free": "8M"}})
        p.setup_domain(users=("alice",))
        restart(p)
        c = Conn(p.ip, p.port)
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.example.org")[0] == 250
        code, text = c.cmd("MAIL FROM:<carol@example.org>")
        assert text.startswith("452 4.3.1"), text
        assert c.cmd("NOOP")[0] == 250          # the session goes on
        code, text = c.cmd("MAIL FROM:<carol@example.org>")
        assert text.startswith("452 4.3.1"), text
        assert c.cmd("QUIT")[0] == 221
        c.close()
        with smtplib.SMTP(p.ip, p.port) as s:
            try:
                s.sendmail("carol@example.org", [ALICE], b"Subject: x\r\n\r\nx\r\n")
                raise AssertionError("sendmail succeeded with too little space")
            except smtplib.SMTPSenderRefused as e:
                assert e.smtp_code == 452, e
        assert "452" in p.log() or "4.3.1" in p.log(), p.log()
        assert queued_anywhere(p) == [] and p.messages(ALICE) == []
        p.stop()
    finally:
        for s in list(lib._live):
            if s.data_dir == fs.dir:
                s.kill()
        fs.close()


# --- a message delivered but not dequeued is not delivered twice ----------

def test_stale_queue_file_not_delivered_twice():
    p = Server(role="primary", ip=PRIMARY_IP)
    p.setup_domain(users=("alice",))
    blocker = block_maildir(p)
    restart(p)
    qid = send_one(p, "stale-copy")
    # Delivery fails (mailbox blocked): the message is deferred.
    wait_for(lambda: p.queue_files("deferred") == [qid], what="message deferred")
    saved = os.path.join(p.tmp, "saved-" + qid)
    shutil.copy2(os.path.join(qdir(p, "deferred"), qid), saved)
    unblock_maildir(blocker)
    p.cli("queue", "flush")
    wait_for(lambda: p.messages(ALICE) and not queued_anywhere(p), what="delivery after flush")
    assert len(p.messages(ALICE)) == 1
    # The state after a crash between writing the mailbox and removing the
    # queue file: the queue file is back in active/.
    shutil.copy2(saved, os.path.join(qdir(p, "active"), qid))
    p.cli("queue", "flush")
    wait_for(lambda: "duplicate=avoided" in p.log() and not queued_anywhere(p),
             what="second attempt to find the delivered copy")
    assert len(p.messages(ALICE)) == 1, p.maildir(ALICE)
    # The same across a restart (the scan at start schedules it).
    shutil.copy2(saved, os.path.join(qdir(p, "active"), qid))
    p.kill()
    restart(p)
    wait_for(lambda: p.log().count("duplicate=avoided") >= 2 and not queued_anywhere(p),
             what="attempt after restart")
    assert len(p.messages(ALICE)) == 1, p.maildir(ALICE)
    assert mailbox_subjects(p) == ["stale-copy"]
    p.stop()
