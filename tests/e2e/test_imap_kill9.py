"""kill -9 of `tandem serve` while an IMAP client works (issue 8, item 1:
crash safe at any moment of APPEND, COPY, MOVE, STORE, EXPUNGE and
RENAME). Each round a client runs those commands as fast as it can, the
server is killed at a random moment of it, and started again; then:

- `tandem mailbox verify` finds index and files in agreement;
- nothing is lost: every message delivered or whose APPEND was answered OK
  is in some folder, unless the client had asked for it to be expunged;
- nothing is doubled: no folder holds one message twice;
- nothing is renumbered: a UID the client saw in a folder, when it is
  still there, is still the same message (UIDVALIDITY unchanged);
- a folder renamed back and forth exists under exactly one of its names,
  with all of its messages.

Every round is bounded (a few seconds of commands, a kill within 1.5 s).
"""
import imaplib
import random
import re
import smtplib
import threading
import time

from imap_util import ALICE, IMAP_PORT, PASSWORD, imap_server

ROUNDS = 6
FOLDERS = ("INBOX", "Archive", "Trash", "Work", "Work2")


def xid(n):
    return "<k%05d@example.test>" % n


def message(n):
    return ("From: Carol <carol@example.org>\r\nTo: %s\r\nSubject: k%d\r\n"
            "Message-ID: %s\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n"
            "body %d\r\n" % (ALICE, n, xid(n), n)).encode()


class State:
    """What the client knows for certain, across rounds."""

    def __init__(self):
        self.must_exist = set()    # Message-IDs delivered or APPENDed with OK
        self.doomed = set()        # asked to be expunged (may be gone)
        self.copied = set()        # COPY tried once: never twice (no legitimate doubles)
        self.seen_uids = {}        # (folder, uidvalidity, uid) -> Message-ID
        self.next = 1000
        self.lock = threading.Lock()


def folder_contents(m, folder):
    """{uid: Message-ID} of folder, with its UIDVALIDITY, or None when it
    does not exist."""
    typ, data = m.select('"%s"' % folder)
    if typ != "OK":
        return None, None
    uv = int(m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1])
    out = {}
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    for item in data or []:
        if not isinstance(item, tuple):
            continue
        u = re.search(rb"UID (\d+)", item[0])
        mid = re.search(rb"<[^>]+>", item[1])
        if u and mid:
            out[int(u.group(1))] = mid.group(0).decode()
    return uv, out


def worker(st, stop, ip):
    """Random commands until the connection dies or stop is set."""
    rnd = random.Random()
    try:
        m = imaplib.IMAP4(ip, IMAP_PORT, timeout=10)
        m.login(ALICE, PASSWORD)
        while not stop.is_set():
            op = rnd.choice(("append", "append", "copy", "move", "store", "expunge", "rename"))
            if op == "append":
                with st.lock:
                    n = st.next
                    st.next += 1
                typ, _ = m.append("INBOX", "(\\Seen)" if n % 2 else None, None, message(n))
                if typ == "OK":
                    with st.lock:
                        st.must_exist.add(xid(n))
                continue
            if op == "rename":
                src, dst = ("Work", "Work2") if m.status("Work", "(MESSAGES)")[0] == "OK" \
                    else ("Work2", "Work")
                m.rename(src, dst)
                continue
            folder = "Trash" if op == "expunge" else "INBOX"
            uv, have = folder_contents(m, folder)
            if not have:
                continue
            with st.lock:
                for u, mid in have.items():
                    st.seen_uids[(folder, uv, u)] = mid
            uid = rnd.choice(sorted(have))
            mid = have[uid]
            if op == "copy":
                with st.lock:
                    if mid in st.copied:
                        continue
                    st.copied.add(mid)
                m.uid("COPY", str(uid), "Archive")
            elif op == "move":
                m.uid("MOVE", str(uid), "Trash")
            elif op == "store":
                m.uid("STORE", str(uid), rnd.choice(("+FLAGS", "-FLAGS")), "(\\Flagged)")
            elif op == "expunge":
                with st.lock:
                    st.doomed.add(mid)
                m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
                m.expunge()
    except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error, EOFError):
        pass   # the kill


def check(s, st):
    # the sessions' opens first: they finish what the kill interrupted
    m = imaplib.IMAP4(s.ip, IMAP_PORT, timeout=30)
    m.login(ALICE, PASSWORD)
    where = {}
    for folder in FOLDERS:
        uv, have = folder_contents(m, folder)
        if have is None:
            continue
        mids = list(have.values())
        assert len(mids) == len(set(mids)), (folder, sorted(mids))
        for u, mid in have.items():
            where.setdefault(mid, []).append(folder)
        for (f, suv, u), mid in st.seen_uids.items():
            if f == folder and suv == uv and u in have:
                assert have[u] == mid, (folder, u, have[u], mid)
    works = [f for f in ("Work", "Work2") if m.status(f, "(MESSAGES)")[0] == "OK"]
    assert len(works) == 1, works
    m.logout()
    lost = {x for x in st.must_exist - st.doomed if x not in where}
    assert not lost, sorted(lost)
    p = s.cli("mailbox", "verify", ALICE, check=False)
    assert p.returncode == 0 and "agree" in p.stdout, p.stdout + p.stderr


def test_kill9_during_imap_commands_loses_doubles_and_renumbers_nothing():
    s = imap_server()
    st = State()
    for n in range(12):
        with smtplib.SMTP(s.ip, s.port) as c:
            c.sendmail("carol@example.org", [ALICE], message(n))
        st.must_exist.add(xid(n))
    s.settle()
    m = imaplib.IMAP4(s.ip, IMAP_PORT)
    m.login(ALICE, PASSWORD)
    assert m.create("Work")[0] == "OK"
    for n in range(100, 104):
        assert m.append("Work", None, None, message(n))[0] == "OK"
        st.must_exist.add(xid(n))
    m.logout()
    rnd = random.Random(9)
    for r in range(ROUNDS):
        stop = threading.Event()
        t = threading.Thread(target=worker, args=(st, stop, s.ip))
        t.start()
        time.sleep(rnd.uniform(0.2, 1.5))
        s.kill()
        stop.set()
        t.join(30)
        assert not t.is_alive()
        s.start()
        check(s, st)
    print("kill9: %d messages that must exist, %d doomed, %d UIDs watched" % (
        len(st.must_exist), len(st.doomed), len(st.seen_uids)))
    assert len(st.must_exist) > 16 and st.seen_uids, "the client did too little to test"
    s.stop()
