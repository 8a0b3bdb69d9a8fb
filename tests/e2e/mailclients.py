"""Helpers for the real-IMAP-client scenarios (test_imap_clients.py).

  Account               one user's address and password
  TandemPeer            a tandem primary serving SMTP, IMAP and IMAPS
  DovecotPeer           a private Dovecot 2.3 with the same shape (only when
                        TANDEM_E2E_PEER=dovecot: proves a scenario against a
                        server nobody here wrote; `make test` never uses it)
  make_peer(users)      the peer of this run (tandem unless TANDEM_E2E_PEER)
  imap_session(peer, account)           imaplib, logged in, plain on loopback
  folders(peer, account), messages(...), state(...)   the server's view
  maildir_files(dir), maildir_set_flags(path, flags)  a local Maildir
  run(argv, ...)        a client process, bounded in time, output kept
  Tmux                  a terminal (private tmux server) for neomutt

A peer has .ip, .imap_port (plain, STARTTLS), .imaps_port (implicit TLS),
.tls_name (the name in its certificate), .cafile (that certificate, which
the clients are told to trust), deliver(account, subject, body), which
returns once the message is in the account's INBOX (a fact the server says),
and tls_sessions(), the number of TLS handshakes it has completed (the
scenarios' own sessions are plain: a client's TLS shows there).
"""
import imaplib
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time

import lib
from lib import wait_for

PASSWORD = "secret"
IMAP_PORT = 1143
IMAPS_PORT = 1993
DOVECOT = "/usr/sbin/dovecot"


class Account:
    def __init__(self, address, password=PASSWORD):
        self.address = address
        self.password = password

    def __repr__(self):
        return "Account(%s)" % self.address


# --- peers -------------------------------------------------------------------------

class TandemPeer:
    """A tandem primary for example.test with IMAP on IP:1143 (STARTTLS)
    and IP:1993 (implicit TLS); its certificate is the self-signed one it
    makes in data_dir/tls/."""

    name = "tandem"

    def __init__(self, users=("alice",), ip="127.0.0.10"):
        self.server = lib.Server(role="primary", ip=ip, extra={"listen": {
            "imap": "%s:%d" % (lib.addr(ip), IMAP_PORT),
            "imaps": "%s:%d" % (lib.addr(ip), IMAPS_PORT)}})
        self.ip = self.server.ip
        self.imap_port, self.imaps_port = IMAP_PORT, IMAPS_PORT
        self.tls_name = self.server.hostname
        self.accounts = [Account("%s@example.test" % u) for u in users]
        self.server.setup_domain(users=users, password=PASSWORD)
        self.server.start()
        self.cafile = os.path.join(self.server.data_dir, "tls", "cert.pem")
        wait_for(lambda: os.path.exists(self.cafile), what="tandem's certificate")
        wait_for(lambda: lib.port_open(self.ip, self.imap_port), what="tandem's IMAP port")

    def deliver(self, account, subject, body="hello\r\n"):
        msg = ("From: bob@example.org\r\nTo: %s\r\nSubject: %s\r\n"
               "Message-ID: <%s@example.org>\r\n\r\n%s" % (
                   account.address, subject, re.sub(r"\W", ".", subject), body))
        with smtplib.SMTP(self.ip, self.server.port, local_hostname="client.example.org",
                          timeout=20) as s:
            s.sendmail("bob@example.org", [account.address], msg.encode())
        wait_for(lambda: subject in subjects(self, account, "INBOX"), timeout=20,
                 what="%r in the INBOX of %s" % (subject, account.address))

    def log(self):
        return self.server.log()

    def tls_sessions(self):
        """How many TLS handshakes the server completed."""
        return self.log().count(" event=tls client=")

    def stop(self):
        self.server.stop()


DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {ip}
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = yes
login_trusted_networks = 127.0.0.0/8
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
  mailbox Drafts {{
    auto = subscribe
    special_use = \\Drafts
  }}
  mailbox Sent {{
    auto = subscribe
    special_use = \\Sent
  }}
  mailbox Trash {{
    auto = subscribe
    special_use = \\Trash
  }}
  mailbox Junk {{
    auto = subscribe
    special_use = \\Junk
  }}
  mailbox Archive {{
    auto = subscribe
    special_use = \\Archive
  }}
}}
protocol imap {{
  mail_plugins =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


class DovecotPeer:
    """A private Dovecot on the address tandem would use, with a
    self-signed certificate for the same name; mail is put in through IMAP
    APPEND. Only for proving a scenario (TANDEM_E2E_PEER=dovecot)."""

    name = "dovecot"

    def __init__(self, users=("alice",), ip="127.0.0.10"):
        self.ip = lib.addr(ip)
        self.imap_port, self.imaps_port = IMAP_PORT, IMAPS_PORT
        self.tls_name = "mx1.example.test"
        self.accounts = [Account("%s@example.test" % u) for u in users]
        self.dir = tempfile.mkdtemp(prefix="tandem-e2e-dovecot-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        if os.getuid() == 0:
            pw = pwd.getpwnam("dovecot")
            uid, gid = pw.pw_uid, pw.pw_gid
        else:
            uid, gid = os.getuid(), os.getgid()
        for sub in ("run", "state", "mail", "home"):
            os.mkdir(os.path.join(d, sub))
        for sub in ("mail", "home"):
            os.chown(os.path.join(d, sub), uid, gid)
        self.cafile = os.path.join(d, "cert.pem")
        # shaped like tandem's own: self-signed, no CA basic constraint
        with open(os.path.join(d, "req.cnf"), "w") as f:
            f.write("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n"
                    % self.tls_name)
        subprocess.run(["openssl", "req", "-x509", "-config", os.path.join(d, "req.cnf"),
                        "-newkey", "rsa:2048", "-nodes",
                        "-keyout", os.path.join(d, "key.pem"), "-out", self.cafile,
                        "-days", "2", "-addext", "subjectAltName=DNS:" + self.tls_name],
                       check=True, capture_output=True, timeout=60)
        with open(os.path.join(d, "passwd"), "w") as f:
            for a in self.accounts:
                f.write("%s:{PLAIN}%s\n" % (a.address, a.password))
        self.conf = os.path.join(d, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=d, ip=self.ip, uid=uid, gid=gid,
                                        imap=self.imap_port, imaps=self.imaps_port))
        self.proc = subprocess.Popen([DOVECOT, "-c", self.conf, "-F"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        lib.register(self)
        wait_for(lambda: self.proc.poll() is not None or lib.port_open(self.ip, self.imap_port),
                 what="dovecot to listen")
        if self.proc.poll() is not None:
            raise AssertionError("dovecot exited:\n" + self.log())

    def deliver(self, account, subject, body="hello\r\n"):
        msg = ("From: bob@example.org\r\nTo: %s\r\nSubject: %s\r\n"
               "Message-ID: <%s@example.org>\r\n\r\n%s" % (
                   account.address, subject, re.sub(r"\W", ".", subject), body))
        with imap_session(self, account) as m:
            typ, data = m.append("INBOX", None, None, msg.encode())
            assert typ == "OK", data
        wait_for(lambda: subject in subjects(self, account, "INBOX"),
                 what="%r in the INBOX" % subject)

    def tls_sessions(self):
        return len(re.findall(r"imap-login: Info: Login: .*, TLS", self.log()))

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        lib.unregister(self)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if not lib.KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def make_peer(users=("alice",)):
    """The server the scenarios run against: tandem, or Dovecot when
    TANDEM_E2E_PEER=dovecot (a private check of the scenarios themselves)."""
    if os.environ.get("TANDEM_E2E_PEER") == "dovecot":
        return DovecotPeer(users)
    return TandemPeer(users)


# --- the server's view, through imaplib ------------------------------------------------

def imap_session(peer, account):
    m = imaplib.IMAP4(peer.ip, peer.imap_port, timeout=20)
    m.login(account.address, account.password)
    return m


LIST_RE = re.compile(r'^\((?P<attrs>[^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (?P<name>.*)$')


def unquote(s):
    if s.startswith('"') and s.endswith('"'):
        return re.sub(r'\\(.)', r'\1', s[1:-1])
    return s


def folders(peer, account):
    """{name: set of attributes} of LIST "" "*"."""
    with imap_session(peer, account) as m:
        typ, data = m.list('""', '"*"')
        assert typ == "OK", data
    out = {}
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):     # a name sent as a literal
            attrs = LIST_RE.match(line[0].decode().rsplit(" ", 1)[0] + " x").group("attrs")
            out[line[1].decode()] = set(attrs.split())
            continue
        mm = LIST_RE.match(line.decode())
        assert mm, line
        out[unquote(mm.group("name"))] = set(mm.group("attrs").split())
    return out


def quote(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def messages(peer, account, folder="INBOX"):
    """[(uid, subject, set of flags)] of a folder, in UID order; None when
    the folder cannot be selected."""
    with imap_session(peer, account) as m:
        typ, data = m.select(quote(folder), readonly=True)
        if typ != "OK":
            return None
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
    recs = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            recs.append([item[0], item[1]])
        elif recs:
            recs[-1][0] += b" " + item
        else:
            recs.append([item, b""])
    out = []
    for head, lit in recs:
        h = head.decode("utf-8", "replace")
        uid = re.search(r"\bUID (\d+)", h)
        fl = re.search(r"\bFLAGS \(([^)]*)\)", h)
        subj = re.search(rb"(?im)^Subject: *(.*?)\r?$", lit)
        assert uid and fl, head
        out.append((int(uid.group(1)), subj.group(1).decode() if subj else "",
                    set(fl.group(1).split())))
    return sorted(out)


def subjects(peer, account, folder="INBOX"):
    return [s for _, s, _ in messages(peer, account, folder) or []]


def flags_of(peer, account, folder, subject):
    for _, s, f in messages(peer, account, folder) or []:
        if s == subject:
            return f
    raise AssertionError("no %r in %s: %r" % (subject, folder,
                                              messages(peer, account, folder)))


def state(peer, account):
    """Everything a sync may change on the server: each folder's
    UIDVALIDITY and its messages with their UIDs and flags."""
    out = {}
    for name, attrs in sorted(folders(peer, account).items()):
        if "\\Noselect" in attrs or "\\NonExistent" in attrs:
            continue
        with imap_session(peer, account) as m:
            typ, data = m.status(quote(name), "(UIDVALIDITY MESSAGES)")
            assert typ == "OK", data
        out[name] = (data[0].decode().split("(", 1)[1],
                     [(u, s, sorted(f - {"\\Recent"})) for u, s, f in
                      messages(peer, account, name)])
    return out


# --- a local Maildir -------------------------------------------------------------------

def maildir_files(d):
    """[(path, subject, flags)] of the messages of Maildir d (new/ and cur/)."""
    out = []
    for sub in ("new", "cur"):
        try:
            names = sorted(os.listdir(os.path.join(d, sub)))
        except FileNotFoundError:
            continue
        for n in names:
            p = os.path.join(d, sub, n)
            with open(p, "rb") as f:
                head = f.read().split(b"\n\n", 1)[0].replace(b"\r\n\r\n", b"\n\n")
            mm = re.search(rb"(?im)^Subject: *(.*?)\r?$", head)
            flags = n.split(":2,", 1)[1] if ":2," in n else ""
            out.append((p, mm.group(1).decode() if mm else "", flags))
    return out


def maildir_find(d, subject):
    for p, s, f in maildir_files(d):
        if s == subject:
            return p, f
    raise AssertionError("no %r in the Maildir %s: %r" % (subject, d, maildir_files(d)))


def maildir_set_flags(path, flags):
    """Give a message file the Maildir flags (letters) given, as a mail
    reader does: moved to cur/ with ':2,FLAGS' (sorted)."""
    d, name = os.path.split(path)
    base = name.split(":2,", 1)[0]
    new = os.path.join(os.path.dirname(d), "cur", base + ":2," + "".join(sorted(flags)))
    os.rename(path, new)
    return new


def maildir_make(d, messages_=()):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for i, (subject, body) in enumerate(messages_):
        name = "%d.%d_%d.local" % (int(time.time()), os.getpid(), i)
        with open(os.path.join(d, "tmp", name), "w") as f:
            f.write("From: alice@example.test\nTo: alice@example.test\nSubject: %s\n"
                    "Message-ID: <local.%d.%d@example.test>\n\n%s" % (
                        subject, os.getpid(), i, body))
        os.rename(os.path.join(d, "tmp", name), os.path.join(d, "new", name))


# --- client processes ---------------------------------------------------------------

class ClientFailed(AssertionError):
    pass


def run(argv, timeout=60, env=None, check=True, cwd=None, tail=12000):
    """Run a client; its output (with the protocol trace its debug option
    gives) goes into the assertion message when it fails."""
    e = dict(os.environ)
    e.update(env or {})
    try:
        p = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                           timeout=timeout, env=e, cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as ex:
        out = (ex.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        raise ClientFailed("%s did not finish in %ds:\n%s" % (argv[0], timeout, out[-tail:]))
    if check and p.returncode != 0:
        raise ClientFailed("%s exited %d:\n%s\n%s" % (" ".join(argv), p.returncode,
                                                     p.stdout[-tail:], p.stderr[-tail:]))
    return p


class Tmux:
    """A terminal for a full-screen client: a private tmux server (its own
    socket) running one command in a window of a fixed size."""

    def __init__(self, argv, env=None, width=160, height=45, log=None):
        self.logfile = log  # the client's own log, shown when a scenario fails
        self.dir = tempfile.mkdtemp(prefix="tandem-e2e-tmux-")
        self.sock = os.path.join(self.dir, "sock")
        e = dict(os.environ)
        e.update(env or {})
        e.pop("TMUX", None)
        e["TERM"] = "xterm"
        self.env = e
        self.tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                  "--", *argv)
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on", check=False)
        lib.register(self)

    def tmux(self, *args, check=True):
        p = subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null"] + list(args),
                           capture_output=True, text=True, timeout=20, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError("tmux %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t", check=False)

    def keys(self, *keys):
        """tmux key names (Enter, Escape, C-g) or literal text."""
        for k in keys:
            if re.fullmatch(r"Enter|Escape|Up|Down|Tab|BSpace|C-.|M-.", k):
                self.tmux("send-keys", "-t", "t", k)
            else:
                self.tmux("send-keys", "-t", "t", "-l", k)

    def wait(self, pattern, timeout=30, what=None):
        """Wait until the screen matches pattern (a regex); returns it."""
        last = [""]

        def seen():
            last[0] = self.screen()
            return re.search(pattern, last[0])
        try:
            wait_for(seen, timeout=timeout, what=what or repr(pattern))
        except AssertionError as e:
            raise AssertionError("%s; the screen:\n%s" % (e, last[0])) from None
        return last[0]

    def log(self):
        """The client's log (the e2e runner shows it when a scenario fails)."""
        if not self.logfile:
            return ""
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def dead(self):
        out = self.tmux("list-panes", "-t", "t", "-F", "#{pane_dead}", check=False)
        return out.strip() in ("1", "")

    def stop(self):
        lib.unregister(self)
        self.tmux("kill-server", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
