"""Real IMAP clients (issue 8, item 6): mbsync (isync) syncing both ways —
new mail, flags, a new folder, a deletion — plain on loopback and over
implicit TLS with the generated certificate; offlineimap3 pulling a
mailbox over TLS; neomutt in tmux reading, flagging, saving to another
folder and deleting."""
import glob
import os
import re
import subprocess
import tempfile

from imap_util import ALICE, IMAP_PORT, IMAPS_PORT, PASSWORD, deliver, imap_server, login, wait_for


def mbsync_config(s, d, tls):
    rc = os.path.join(d, "mbsyncrc")
    local = os.path.join(d, "local") + "/"
    os.makedirs(local, exist_ok=True)
    with open(rc, "w") as f:
        f.write("IMAPAccount t\nHost %s\nPort %d\nUser %s\nPass %s\n" % (
            s.ip, IMAPS_PORT if tls else IMAP_PORT, ALICE, PASSWORD))
        if tls:
            f.write("SSLType IMAPS\nCertificateFile %s/tls/cert.pem\n" % s.data_dir)
        else:
            f.write("SSLType None\nAuthMechs LOGIN\n")
        f.write("\nIMAPStore remote\nAccount t\n\nMaildirStore local\nPath %s\nInbox %sINBOX\n"
                "SubFolders Verbatim\n\nChannel c\nFar :remote:\nNear :local:\nPatterns *\n"
                "Create Both\nExpunge Both\nSyncState *\n" % (local, local))
    return rc, local


def mbsync(rc):
    p = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def files(local, box):
    return sorted(glob.glob(os.path.join(local, box, "cur", "*")) +
                  glob.glob(os.path.join(local, box, "new", "*")))


def sync_both_ways(tls):
    s = imap_server()
    deliver(s, subject="one", body="first\r\n")
    deliver(s, subject="two", body="second\r\n")
    d = tempfile.mkdtemp(prefix="tandem-mbsync-")
    rc, local = mbsync_config(s, d, tls)
    mbsync(rc)
    inbox = files(local, "INBOX")
    assert len(inbox) == 2, inbox
    assert os.path.isdir(os.path.join(local, "Sent")), os.listdir(local)
    # near side: flag one, delete the other, a new folder with a message
    by_subject = {}
    for p in inbox:
        with open(p, "rb") as f:
            by_subject[b"Subject: one" in f.read()] = p
    one, two = by_subject[True], by_subject[False]
    base = one.split(":2,")[0]
    os.rename(one, os.path.join(local, "INBOX", "cur", os.path.basename(base) + ":2,FS"))
    os.unlink(two)
    os.makedirs(os.path.join(local, "Projects", "cur"))
    os.makedirs(os.path.join(local, "Projects", "new"))
    os.makedirs(os.path.join(local, "Projects", "tmp"))
    with open(os.path.join(local, "Projects", "new", "1700000000.1.near"), "w") as f:
        f.write("From: me@example.test\nSubject: written offline\n\nhello\n")
    mbsync(rc)
    m = login(s)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    heads = [x for x in data if isinstance(x, tuple)]
    assert len(heads) == 1 and b"Subject: one" in heads[0][1], data
    assert b"\\Flagged" in heads[0][0] and b"\\Seen" in heads[0][0], heads
    typ, data = m.select("Projects")
    assert typ == "OK" and data == [b"1"], data
    # far side: new mail and a flag change reach the near side
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Answered)")
    m.logout()
    deliver(s, subject="three", body="third\r\n")
    mbsync(rc)
    inbox = files(local, "INBOX")
    assert len(inbox) == 2, inbox
    assert any(p.endswith(",FRS") for p in inbox), inbox
    s.stop()


def test_mbsync_plain_on_loopback():
    sync_both_ways(tls=False)


def test_mbsync_over_tls():
    sync_both_ways(tls=True)


def fingerprint(s):
    """SHA-256 of the generated certificate (the name in it is the server's
    hostname, not the loopback address offlineimap connects to)."""
    import hashlib
    import ssl
    with open(s.data_dir + "/tls/cert.pem") as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def test_offlineimap_pulls_the_mailbox():
    s = imap_server()
    deliver(s, subject="for offlineimap", body="pulled\r\n")
    d = tempfile.mkdtemp(prefix="tandem-offlineimap-")
    rc = os.path.join(d, "offlineimaprc")
    with open(rc, "w") as f:
        f.write("[general]\naccounts = t\nmetadata = %s/meta\n\n[Account t]\nlocalrepository = L\n"
                "remoterepository = R\n\n[Repository L]\ntype = Maildir\nlocalfolders = %s/mail\n\n"
                "[Repository R]\ntype = IMAP\nremotehost = %s\nremoteport = %d\nremoteuser = %s\n"
                "remotepass = %s\nssl = yes\ncert_fingerprint = %s\nstarttls = no\n" % (
                    d, d, s.ip, IMAPS_PORT, ALICE, PASSWORD, fingerprint(s)))
    p = subprocess.run(["offlineimap", "-c", rc, "-o", "-u", "basic"], capture_output=True,
                       text=True, timeout=180)
    got = glob.glob(os.path.join(d, "mail", "INBOX", "*", "*"))
    assert p.returncode == 0 and len(got) == 1, (p.stdout[-2000:], p.stderr[-2000:], got)
    s.stop()


# A tmux server of our own (-L): one already running elsewhere would start
# neomutt outside this scenario's network namespace.
TMUX = ["tmux", "-L", "tandem-e2e-%d" % os.getpid()]


def tmux(*args):
    return subprocess.run(TMUX + list(args), capture_output=True, text=True, timeout=30)


def pane(name):
    return tmux("capture-pane", "-t", name, "-p").stdout


def messages_in(s, folder):
    m = login(s)
    try:
        typ, data = m.status(folder, "(MESSAGES)")
        return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
    finally:
        m.logout()


def test_neomutt_reads_flags_moves_and_deletes():
    s = imap_server()
    deliver(s, subject="read me", body="The first message.\r\n")
    deliver(s, subject="delete me", body="The second message.\r\n")
    d = tempfile.mkdtemp(prefix="tandem-neomutt-")
    rc = os.path.join(d, "muttrc")
    with open(rc, "w") as f:
        f.write('set imap_user = "%s"\nset imap_pass = "%s"\nset folder = "imap://%s:%d/"\n'
                'set spoolfile = "+INBOX"\nset ssl_starttls = no\nset ssl_force_tls = no\n'
                'set confirmappend = no\nset delete = yes\nset move = no\nset sort = reverse-subject\n'
                'set header_cache = ""\nset message_cachedir = ""\nset pager_stop = yes\n'
                'set wait_key = no\nset resolve = no\n' % (ALICE, PASSWORD, s.ip, IMAP_PORT))
    name = "tandem-nm-%d" % os.getpid()
    tmux("kill-session", "-t", name)
    env = dict(os.environ, TERM="xterm")
    subprocess.run(TMUX + ["new-session", "-d", "-s", name, "-x", "160", "-y", "40",
                           "neomutt -n -F %s" % rc], env=env, check=True, timeout=30)
    try:
        try:
            wait_for(lambda: "delete me" in pane(name) and "read me" in pane(name), timeout=30,
                     what="neomutt's index")
        except AssertionError:
            raise AssertionError("neomutt did not show the index: %r" % [
                ln for ln in pane(name).splitlines() if ln.strip()])
        # read the first ("read me": reverse subject order), back to the index
        tmux("send-keys", "-t", name, "Enter")
        wait_for(lambda: "The first message." in pane(name), timeout=30, what="the pager")
        tmux("send-keys", "-t", name, "i")
        wait_for(lambda: "read me" in pane(name) and "The first message." not in pane(name),
                 timeout=30, what="the index again")
        # flag it and save it to Archive (neomutt marks it deleted here)
        tmux("send-keys", "-t", name, "F")
        tmux("send-keys", "-t", name, "s")
        wait_for(lambda: "Save to mailbox" in pane(name) or "Move to mailbox" in pane(name),
                 timeout=30, what="the save prompt")
        tmux("send-keys", "-t", name, "C-u", "=Archive", "Enter")
        wait_for(lambda: messages_in(s, "Archive") == 1, timeout=60, what="the save on the server")
        # the other one ($resolve is off: the cursor stays): delete it, sync
        # (expunge), quit
        tmux("send-keys", "-t", name, "j")
        tmux("send-keys", "-t", name, "d")
        tmux("send-keys", "-t", name, "$")
        tmux("send-keys", "-t", name, "q")
        wait_for(lambda: tmux("has-session", "-t", name).returncode != 0, timeout=30,
                 what="neomutt to quit")
    finally:
        tmux("kill-session", "-t", name)
        tmux("kill-server")
    m = login(s)
    n = m.select("INBOX")[1]
    assert n == [b"0"], m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert m.select("Archive")[1] == [b"1"]
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: read me" in data[0][1] and b"\\Flagged" in data[0][0] and \
        b"\\Seen" in data[0][0], data
    m.logout()
    s.stop()
