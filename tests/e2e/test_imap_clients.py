"""Real IMAP clients nobody here wrote read, flag, move and delete mail on
tandem (issue 8, item 6): mbsync (isync), offlineimap3, neomutt (driven in
tmux) and curl. Each runs plain on loopback (allowed by [auth] plaintext =
loopback, the default), with STARTTLS on the imap port (not offlineimap:
see there), and with implicit TLS on the imaps port, trusting the
certificate tandem makes in data_dir/tls/: curl checks it and its name
(--cacert, and --resolve of the name to the address); mbsync takes it as a
host certificate (matched exactly, no name check); offlineimap pins its
SHA-256; neomutt trusts it as a CA without the name check (the clients
connect to an address). Every effect is checked on the server through
imaplib, never by the client's own word.

neomutt runs with -n (no system rc), not -R: a read-only folder could not
be flagged or expunged.

TANDEM_E2E_PEER=dovecot runs the same scenarios against a private
Dovecot 2.3 instead (dovecot-imapd, not installed by `make test`): it
proves the scenarios themselves, so that a failure against tandem is
tandem's. Clients run with their protocol trace on (mbsync -Dn,
offlineimap -d imap, curl -v); a failure message carries its tail.
"""
import hashlib
import os
import shutil
import ssl
import tempfile

import pytest

import lib
import mailclients as mc
from mailclients import flags_of, maildir_files, maildir_find, state, subjects

MODES = ("plain", "starttls", "imaps")


def client_dir():
    d = tempfile.mkdtemp(prefix="tandem-e2e-client-")
    if not lib.KEEP:
        class Rm:
            def stop(self):
                lib.unregister(self)
                shutil.rmtree(d, ignore_errors=True)
        lib.register(Rm())
    return d


def local_tree(d):
    """Every message file under d/mail (its name carries its flags)."""
    out = []
    for top, dirs, files in os.walk(os.path.join(d, "mail")):
        if os.path.basename(top) in ("cur", "new"):
            out += [os.path.join(top, f) for f in files]
    return sorted(out)


@pytest.fixture
def peer():
    return mc.make_peer(users=("alice",))


# --- curl -------------------------------------------------------------------------

def curl(peer, mode, path, *extra, check=True):
    """curl URL for path on the peer in mode; returns the CompletedProcess."""
    a = peer.accounts[0]
    if mode == "plain":
        url = "imap://%s:%d/%s" % (peer.ip, peer.imap_port, path)
        tls = []
    else:
        port = peer.imap_port if mode == "starttls" else peer.imaps_port
        scheme = "imap" if mode == "starttls" else "imaps"
        url = "%s://%s:%d/%s" % (scheme, peer.tls_name, port, path)
        # the certificate's name, resolved to the peer: a real hostname check
        tls = ["--cacert", peer.cafile, "--resolve", "%s:%d:%s" % (peer.tls_name, port, peer.ip)]
        if mode == "starttls":
            tls.append("--ssl-reqd")
    return mc.run(["curl", "-sS", "-v", "--max-time", "30", "--user",
                   "%s:%s" % (a.address, a.password)] + tls + list(extra) + [url],
                  check=check, timeout=60)


@pytest.mark.parametrize("mode", MODES)
def test_curl_lists_fetches_searches_and_flags(peer, mode):
    a = peer.accounts[0]
    peer.deliver(a, "curl first", "the body of the first\r\n")
    peer.deliver(a, "curl second", "the body of the second\r\n")
    p = curl(peer, mode, "")
    names = [line.rsplit(" ", 1)[-1].strip('"') for line in p.stdout.splitlines()
             if line.startswith("* LIST ")]
    assert "INBOX" in names, p.stdout + p.stderr
    if mode != "plain":
        assert "SSL connection using TLS" in p.stderr, p.stderr
    uids = {s: u for u, s, _ in mc.messages(peer, a, "INBOX")}
    p = curl(peer, mode, "INBOX;UID=%d" % uids["curl second"])
    assert "Subject: curl second" in p.stdout and "the body of the second" in p.stdout, \
        p.stdout + p.stderr[-4000:]
    assert "curl first" not in p.stdout
    # a search through the URL's query part: message 1 (curl's SEARCH
    # gives sequence numbers; the first delivered is the first)
    p = curl(peer, mode, "INBOX?SUBJECT%20first")
    found = [line.split()[2:] for line in p.stdout.splitlines() if line.startswith("* SEARCH")]
    assert found == [["1"]], p.stdout + p.stderr[-4000:]
    # a command of the client's own on the selected folder: flag one message
    p = curl(peer, mode, "INBOX", "-X", "UID STORE %d +FLAGS (\\Flagged)" % uids["curl first"])
    assert "\\Flagged" in flags_of(peer, a, "INBOX", "curl first"), p.stdout + p.stderr
    assert "\\Flagged" not in flags_of(peer, a, "INBOX", "curl second")
    # fetching by UID read the message: \Seen (curl's FETCH is not a PEEK)
    assert "\\Seen" in flags_of(peer, a, "INBOX", "curl second")
    assert (peer.tls_sessions() > 0) == (mode != "plain")
    peer.stop()


# --- mbsync -----------------------------------------------------------------------

def mbsync_rc(peer, mode, d):
    a = peer.accounts[0]
    rc = os.path.join(d, "mbsyncrc")
    os.makedirs(os.path.join(d, "mail"), exist_ok=True)
    port = peer.imaps_port if mode == "imaps" else peer.imap_port
    tlstype = {"plain": "None", "starttls": "STARTTLS", "imaps": "IMAPS"}[mode]
    with open(rc, "w") as f:
        f.write("""\
IMAPAccount a
Host {ip}
Port {port}
User {user}
Pass {pw}
SSLType {tls}
CertificateFile {ca}
Timeout 30
SystemCertificates no

IMAPStore far
Account a

MaildirStore near
Path {d}/mail/
Inbox {d}/mail/INBOX
SubFolders Verbatim

Channel c
Far :far:
Near :near:
Patterns *
Create Both
Remove None
Expunge Both
Sync All
SyncState *
""".format(ip=peer.ip, port=port, user=a.address, pw=a.password, tls=tlstype, ca=peer.cafile,
           d=d))
    return rc


def mbsync(rc):
    return mc.run(["mbsync", "-c", rc, "-Dn", "-a"], timeout=90)


@pytest.mark.parametrize("mode", MODES)
def test_mbsync_syncs_both_ways(peer, mode):
    a = peer.accounts[0]
    d = client_dir()
    rc = mbsync_rc(peer, mode, d)
    inbox = os.path.join(d, "mail", "INBOX")
    peer.deliver(a, "mbsync one", "first\r\n")
    peer.deliver(a, "mbsync two", "second\r\n")
    out = mbsync(rc)
    assert sorted(s for _, s, _ in maildir_files(inbox)) == ["mbsync one", "mbsync two"], \
        out.stdout[-6000:]
    if mode == "starttls":
        assert ">>> 1 STARTTLS" in out.stdout, out.stdout[-6000:]
    # the special-use folders came down as well
    for name in ("Drafts", "Sent", "Trash"):
        assert os.path.isdir(os.path.join(d, "mail", name, "cur")), os.listdir(
            os.path.join(d, "mail"))

    # new mail down; a flag set here goes up; one set on the server comes down
    peer.deliver(a, "mbsync three", "third\r\n")
    p1, _ = maildir_find(inbox, "mbsync one")
    mc.maildir_set_flags(p1, "F")
    with mc.imap_session(peer, a) as m:
        m.select("INBOX")
        uid2 = next(u for u, s, _ in mc.messages(peer, a) if s == "mbsync two")
        assert m.uid("STORE", str(uid2), "+FLAGS", "(\\Seen)")[0] == "OK"
    out = mbsync(rc)
    log = out.stdout[-6000:]
    assert "mbsync three" in [s for _, s, _ in maildir_files(inbox)], log
    assert "\\Flagged" in flags_of(peer, a, "INBOX", "mbsync one"), log
    assert "S" in maildir_find(inbox, "mbsync two")[1], log

    # folders made here (one inside the other: the '/' hierarchy) appear on
    # the server with their messages; a message deleted here is expunged
    # there; one expunged there goes here
    mc.maildir_make(os.path.join(d, "mail", "Projects"), [("mbsync local", "made here\n")])
    mc.maildir_make(os.path.join(d, "mail", "Projects", "Q4"), [("mbsync nested", "deeper\n")])
    os.unlink(maildir_find(inbox, "mbsync three")[0])
    with mc.imap_session(peer, a) as m:
        m.select("INBOX")
        uid2 = next(u for u, s, _ in mc.messages(peer, a) if s == "mbsync two")
        assert m.uid("STORE", str(uid2), "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert m.expunge()[0] == "OK"
    out = mbsync(rc)
    log = out.stdout[-6000:]
    names = mc.folders(peer, a)
    assert "Projects" in names and "Projects/Q4" in names, (names, log)
    assert subjects(peer, a, "Projects") == ["mbsync local"], log
    assert subjects(peer, a, "Projects/Q4") == ["mbsync nested"], log
    assert subjects(peer, a, "INBOX") == ["mbsync one"], log
    assert [s for _, s, _ in maildir_files(inbox)] == ["mbsync one"], log

    # a second sync changes nothing, here or there
    before = (state(peer, a), local_tree(d))
    out = mbsync(rc)
    after = (state(peer, a), local_tree(d))
    assert before == after, out.stdout[-6000:]
    assert (peer.tls_sessions() > 0) == (mode != "plain")
    peer.stop()


# --- offlineimap --------------------------------------------------------------------

def offlineimap_rc(peer, mode, d):
    a = peer.accounts[0]
    rc = os.path.join(d, "offlineimaprc")
    port = peer.imaps_port if mode == "imaps" else peer.imap_port
    # offlineimap matches a CA's certificate against remotehost, here an
    # address: the certificate is pinned by its fingerprint instead
    with open(peer.cafile) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    pin = "cert_fingerprint = " + hashlib.sha256(der).hexdigest()
    with open(rc, "w") as f:
        f.write("""\
[general]
accounts = a
metadata = {d}/meta
ui = basic

[Account a]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = {d}/mail

[Repository far]
type = IMAP
remotehost = {ip}
remoteport = {port}
remoteuser = {user}
remotepass = {pw}
ssl = {ssl}
starttls = {starttls}
{pin}
holdconnectionopen = no
maxconnections = 1
""".format(d=d, ip=peer.ip, port=port, user=a.address, pw=a.password, pin=pin,
           ssl="yes" if mode == "imaps" else "no",
           starttls="no"))
    return rc


def offlineimap(rc):
    return mc.run(["offlineimap", "-c", rc, "-o", "-u", "basic", "-d", "imap"], timeout=120)


# Not STARTTLS: offlineimap's (imaplib2 3.05's) hangs now and then on its
# first command after the handshake, with no reply read, against Dovecot as
# against tandem (8 and 14 sessions in 300 of imaplib2's own starttls() here;
# offlineimap3 issue 253): its reader thread polls the socket while the reply
# waits in the TLS layer. Nor does it check the certificate there at all.
@pytest.mark.parametrize("mode", ("plain", "imaps"))
def test_offlineimap_full_sync_then_local_changes_go_up(peer, mode):
    a = peer.accounts[0]
    d = client_dir()
    rc = offlineimap_rc(peer, mode, d)
    inbox = os.path.join(d, "mail", "INBOX")
    for n in ("one", "two", "three"):
        peer.deliver(a, "offlineimap " + n, "body %s\r\n" % n)
    out = offlineimap(rc)
    log = (out.stdout + out.stderr)[-8000:]
    assert sorted(s for _, s, _ in maildir_files(inbox)) == [
        "offlineimap one", "offlineimap three", "offlineimap two"], log
    p, _ = maildir_find(inbox, "offlineimap one")
    mc.maildir_set_flags(p, "FS")
    os.unlink(maildir_find(inbox, "offlineimap two")[0])
    out = offlineimap(rc)
    log = (out.stdout + out.stderr)[-8000:]
    assert {"\\Flagged", "\\Seen"} <= flags_of(peer, a, "INBOX", "offlineimap one"), log
    assert sorted(subjects(peer, a, "INBOX")) == ["offlineimap one", "offlineimap three"], log
    # and once more: nothing changes
    before = (state(peer, a), local_tree(d))
    out = offlineimap(rc)
    assert (state(peer, a), local_tree(d)) == before, (out.stdout + out.stderr)[-8000:]
    assert (peer.tls_sessions() > 0) == (mode != "plain")
    peer.stop()


# --- neomutt ----------------------------------------------------------------------

def neomutt_rc(peer, mode, d):
    a = peer.accounts[0]
    rc = os.path.join(d, "neomuttrc")
    if mode == "imaps":
        folder = "imaps://%s:%d/" % (peer.ip, peer.imaps_port)
    else:
        folder = "imap://%s:%d/" % (peer.ip, peer.imap_port)
    with open(rc, "w") as f:
        f.write("""\
set folder = "{folder}"
set spoolfile = "+INBOX"
set imap_user = "{user}"
set imap_pass = "{pw}"
set imap_passive = no
set ssl_starttls = {starttls}
set ssl_force_tls = {force}
set ssl_ca_certificates_file = "{ca}"
set certificate_file = "{d}/certificates"
set ssl_verify_host = no
set header_cache = ""
set message_cachedir = ""
set record = ""
set postponed = ""
set sort = subject
set confirmappend = no
set confirmcreate = no
set delete = yes
set move = no
set mark_old = no
set quit = yes
set wait_key = no
set beep = no
set pager_stop = yes
set sleep_time = 0
set timeout = 5
set imap_keepalive = 60
set mail_check = 600
set index_format = "%4C %Z %-30.30s %-20.20n"
""".format(folder=folder, user=a.address, pw=a.password, ca=peer.cafile, d=d,
           starttls="yes" if mode == "starttls" else "no",
           force="no" if mode == "plain" else "yes"))
    return rc, folder


@pytest.mark.parametrize("mode", MODES)
def test_neomutt_reads_flags_moves_and_deletes(peer, mode):
    a = peer.accounts[0]
    d = client_dir()
    rc, folder = neomutt_rc(peer, mode, d)
    # sorted by subject: 1 = alpha, 2 = bravo, 3 = charlie
    peer.deliver(a, "neomutt alpha", "the text of alpha, to be read\r\n")
    peer.deliver(a, "neomutt bravo", "bravo goes to Projects\r\n")
    peer.deliver(a, "neomutt charlie", "charlie is deleted\r\n")
    # -d 3 -l FILE: neomutt's log with the IMAP exchange, shown on a failure
    t = mc.Tmux(["neomutt", "-n", "-F", rc, "-d", "3", "-l", os.path.join(d, "neomutt.log"),
                 "-f", folder + "INBOX"], env={"HOME": d}, log=os.path.join(d, "neomutt.log0"))
    t.wait(r"neomutt charlie", what="the INBOX on screen")
    screen = t.screen()
    assert screen.index("neomutt alpha") < screen.index("neomutt bravo"), screen
    # read alpha: its body on the screen
    t.keys("1", "Enter")
    t.keys("Enter")
    t.wait(r"the text of alpha, to be read", what="alpha's body in the pager")
    t.keys("q")
    t.wait(r"neomutt charlie", what="back in the index")
    # flag alpha
    t.keys("F")
    t.wait(r"\n\s*1 [^\n]*!", what="alpha flagged on screen")
    # save bravo to a new folder Projects: a copy there, deleted here
    t.keys("2", "Enter")
    t.keys("s")
    t.wait(r"Save to mailbox", what="the save prompt")
    t.keys("C-u", "=Projects", "Enter")
    t.wait(r"\n\s*2 [^\n]*D", what="bravo marked deleted after its save")
    # delete charlie; sync
    t.keys("3", "Enter")
    t.keys("d")
    t.wait(r"\n\s*3 [^\n]*D", what="charlie marked deleted")
    t.keys("$")
    t.wait(r"neomutt alpha(?![\s\S]*neomutt charlie)", what="the INBOX synced")
    t.keys("q")
    lib.wait_for(t.dead, timeout=30, what="neomutt to quit")

    inbox = mc.messages(peer, a, "INBOX")
    assert [s for _, s, _ in inbox] == ["neomutt alpha"], inbox
    assert {"\\Seen", "\\Flagged"} <= inbox[0][2], inbox
    assert subjects(peer, a, "Projects") == ["neomutt bravo"]
    assert (peer.tls_sessions() > 0) == (mode != "plain")
    t.stop()
    peer.stop()
