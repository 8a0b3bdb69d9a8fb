"""Real POP3 clients against tandem (issue 8 item 6): fetchmail and getmail6
with and without keep (a second run fetches nothing new), and curl's POP3
URLs — plain on loopback, over STLS and over implicit TLS with the
generated certificate.
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import lib
from lib import wait_for
from test_pop3 import (ALICE, PASSWORD, POP3_PORT, POP3S_PORT, cert_path, deliver, login,
                       mailbox_files, pop3_server)

HOST = "mx1.example.test"   # the name in the generated certificate


def messages(n, tag):
    return ["Subject: %s %d\r\nFrom: carol@example.org\r\n\r\nbody of %s %d\r\n.dot line\r\n"
            % (tag, i, tag, i) for i in range(n)]


class Fetchmail:
    """fetchmail with its own rcfile, id file and an mda that appends
    every message to one file."""

    def __init__(self, p, port, tls=None, keep=True):
        self.dir = tempfile.mkdtemp(prefix="fetchmail-", dir=p.tmp)
        self.out = os.path.join(self.dir, "mbox")
        self.rc = os.path.join(self.dir, "fetchmailrc")
        opts = []
        if tls == "stls":
            opts.append("sslproto 'tls1.2+' sslcertck sslcertfile '%s' sslcommonname '%s'"
                        % (cert_path(p), HOST))
        elif tls == "implicit":
            opts.append("ssl sslcertck sslcertfile '%s' sslcommonname '%s'" % (cert_path(p), HOST))
        else:
            opts.append("sslproto ''")
        with open(self.rc, "w") as f:
            f.write("set no bouncemail\n")
            f.write("poll %s service %d protocol pop3 uidl auth password\n" % (p.ip, port))
            f.write('  user "%s" password "%s" is root here\n' % (ALICE, PASSWORD))
            f.write('  mda "/bin/sh -c \'cat >> %s; echo ==END== >> %s\'"\n' % (self.out, self.out))
            f.write("  %s %s\n" % ("keep" if keep else "nokeep", " ".join(opts)))
        os.chmod(self.rc, 0o600)

    def run(self):
        env = dict(os.environ, HOME=self.dir)
        p = subprocess.run(["fetchmail", "-f", self.rc, "--nodetach", "--nosyslog", "-v",
                            "--idfile", os.path.join(self.dir, "fetchids"),
                            "--pidfile", os.path.join(self.dir, "pid")],
                           capture_output=True, text=True, timeout=120, env=env)
        # 0: mail retrieved; 1: no mail
        assert p.returncode in (0, 1), "fetchmail exited %d:\n%s%s" % (
            p.returncode, p.stdout, p.stderr)
        return p

    def fetched(self):
        try:
            with open(self.out, "rb") as f:
                return f.read().count(b"==END==")
        except FileNotFoundError:
            return 0


def fetchmail_scenario(tls, port):
    p = pop3_server()
    for m in messages(2, "fm"):
        deliver(p, ALICE, m)
    fm = Fetchmail(p, port, tls=tls, keep=True)
    fm.run()
    assert fm.fetched() == 2
    with open(fm.out, "rb") as f:
        data = f.read()
    assert b"Subject: fm 0" in data and b"Subject: fm 1" in data and b"\n.dot line" in data
    # keep: still there, and the next run fetches nothing new
    assert len(mailbox_files(p, ALICE)) == 2
    fm.run()
    assert fm.fetched() == 2
    deliver(p, ALICE, messages(1, "later")[0])
    fm.run()
    assert fm.fetched() == 3
    # without keep: fetched and deleted
    gone = Fetchmail(p, port, tls=tls, keep=False)
    gone.run()
    assert gone.fetched() == 3
    wait_for(lambda: "expunged=3" in p.log(), what="the deletions at QUIT")
    assert mailbox_files(p, ALICE) == []
    logins = [ln for ln in p.log().splitlines() if "event=login service=pop3" in ln]
    assert len(logins) == 4
    want_tls = "tls=yes" if tls else "tls=no"
    assert all(want_tls in ln for ln in logins), logins
    p.stop()


def test_fetchmail_plain_on_loopback():
    fetchmail_scenario(None, POP3_PORT)


def test_fetchmail_over_stls():
    fetchmail_scenario("stls", POP3_PORT)


def test_fetchmail_over_pop3s():
    fetchmail_scenario("implicit", POP3S_PORT)


class Getmail:
    """getmail6 with its own getmail directory (the oldmail file) and a
    Maildir destination. getmail will not deliver as root: under root it
    runs as nobody, in a directory of its own."""

    def __init__(self, p, ssl=False, delete=False):
        self.dir = tempfile.mkdtemp(prefix="getmail-", dir=p.tmp)
        self.maildir = os.path.join(self.dir, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        self.rc = os.path.join(self.dir, "getmailrc")
        cert = os.path.join(self.dir, "cert.pem")
        shutil.copy(cert_path(p), cert)
        with open(self.rc, "w") as f:
            f.write("[retriever]\n")
            if ssl:
                f.write("type = SimplePOP3SSLRetriever\nport = %d\n" % POP3S_PORT)
                f.write("ca_certs = %s\nssl_cert_hostname = %s\n" % (cert, HOST))
            else:
                f.write("type = SimplePOP3Retriever\nport = %d\n" % POP3_PORT)
            f.write("server = %s\nusername = %s\npassword = %s\n" % (p.ip, ALICE, PASSWORD))
            f.write("[destination]\ntype = Maildir\npath = %s/\n" % self.maildir)
            f.write("[options]\nread_all = false\ndelete = %s\nverbose = 2\n"
                    % ("true" if delete else "false"))

        self.prefix = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chmod(p.tmp, 0o755)
            for root, dirs, files in os.walk(self.dir):
                for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                    os.chown(n, nobody.pw_uid, nobody.pw_gid)
            self.prefix = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                           "--clear-groups", "--"]

    def run(self):
        p = subprocess.run(self.prefix + ["getmail", "--getmaildir", self.dir, "--rcfile", self.rc],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, HOME=self.dir))
        assert p.returncode == 0, "getmail exited %d:\n%s%s" % (p.returncode, p.stdout, p.stderr)
        return p

    def fetched(self):
        return len(os.listdir(os.path.join(self.maildir, "new")))


def getmail_scenario(ssl):
    p = pop3_server()
    for m in messages(2, "gm"):
        deliver(p, ALICE, m)
    g = Getmail(p, ssl=ssl, delete=False)
    g.run()
    assert g.fetched() == 2
    # the oldmail file remembers the UIDLs: nothing new the second time
    g.run()
    assert g.fetched() == 2
    deliver(p, ALICE, messages(1, "later")[0])
    g.run()
    assert g.fetched() == 3
    assert len(mailbox_files(p, ALICE)) == 3
    d = Getmail(p, ssl=ssl, delete=True)
    d.run()
    assert d.fetched() == 3
    wait_for(lambda: "expunged=3" in p.log(), what="the deletions at QUIT")
    assert mailbox_files(p, ALICE) == []
    for name in os.listdir(os.path.join(d.maildir, "new")):
        with open(os.path.join(d.maildir, "new", name), "rb") as f:
            data = f.read()
        assert b"\n.dot line\n" in data and b"\r" not in data, data
    p.stop()


def test_getmail_plain_on_loopback():
    getmail_scenario(False)


def test_getmail_over_pop3s():
    getmail_scenario(True)


def curl(p, url, *args, tls=False, port=POP3_PORT):
    cmd = ["curl", "-sS", "--max-time", "60", "-u", "%s:%s" % (ALICE, PASSWORD)]
    if tls:
        cmd += ["--cacert", cert_path(p), "--resolve", "%s:%d:%s" % (HOST, port, p.ip)]
        host = HOST
    else:
        host = p.ip
    cmd += list(args) + [url % ("%s:%d" % (host, port))]
    r = subprocess.run(cmd, capture_output=True, timeout=90)
    assert r.returncode == 0, "curl %s: %d %s" % (cmd, r.returncode, r.stderr)
    return r.stdout


def curl_scenario(tls, port, scheme="pop3", extra=()):
    p = pop3_server()
    for m in messages(2, "curl"):
        deliver(p, ALICE, m)
    c = login(p)
    sizes = {int(a): int(b) for a, b in (ln.split() for ln in c.list()[1])}
    c.quit()
    wait_for(lambda: "event=logout" in p.log(), what="logout")
    listing = curl(p, scheme + "://%s/", *extra, tls=tls, port=port)
    assert listing.split(b"\r\n")[:2] == [b"1 %d" % sizes[1], b"2 %d" % sizes[2]], listing
    msg = curl(p, scheme + "://%s/2", *extra, tls=tls, port=port)
    assert len(msg) == sizes[2] and b"Subject: curl 1" in msg and b"\r\n.dot line\r\n" in msg, msg
    uidl = curl(p, scheme + "://%s/", "-X", "UIDL", *extra, tls=tls, port=port)
    assert len(uidl.strip().split(b"\r\n")) == 2, uidl
    curl(p, scheme + "://%s/", "-X", "DELE 1", "-I", *extra, tls=tls, port=port)
    wait_for(lambda: "expunged=1" in p.log(), what="curl's DELE at QUIT")
    assert len(mailbox_files(p, ALICE)) == 1
    logins = [ln for ln in p.log().splitlines() if "event=login service=pop3" in ln]
    assert all(("tls=yes" if tls else "tls=no") in ln for ln in logins[1:]), logins
    p.stop()


def test_curl_plain_on_loopback():
    curl_scenario(False, POP3_PORT)


def test_curl_over_stls():
    curl_scenario(True, POP3_PORT, extra=("--ssl-reqd",))


def test_curl_over_pop3s():
    curl_scenario(True, POP3S_PORT, scheme="pop3s")
