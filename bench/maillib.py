"""
maillib: the pieces bench/imap and bench/pop3 share (the servers, the mailbox,
the clients), on top of benchlib.py (cleanup, /proc readers, logging).

  MailPrimary      a tandem primary for example.test on TANDEM_MAIL_ADDR with
                   [listen] smtp and the services asked for (imap, pop3); its
                   users created with `tandem domain add` / `user add`.
  generate_message the deterministic message number i of a seeded mailbox:
                   2-8 KiB, realistic headers, 3 % multipart/mixed with a
                   base64 attachment.
  deliver          sends count such messages through tandem's SMTP over
                   several parallel connections (processes), many messages
                   per connection, every one checked for its 250.
  DovecotInstance  a private Dovecot 2.3 (own config, base_dir, state_dir, log)
                   on DOVECOT_ADDR serving a copy of tandem's Maildir files.
  RawImap, RawPop3 socket clients that read every response byte and stop at
                   the tagged line (IMAP) or the final "." (POP3), so no
                   client-side parser is part of what is timed.
  login_check, imap_pass, pop3_pass, login_loop, pop3_login_loop, idle_memory
                   the measurements; each checks what the server answered
                   (counts of FETCH lines, EXISTS, UIDL lines) and raises
                   BenchError when it is wrong, so no row is ever a silent zero.
  machine_lines, fmt_secs, markdown_table
                   the report (benchlib has OtherLoad, tree_pids, pss_sum).

Loopback only; every wait and loop is bounded in count and time.
"""

import base64
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import time

import benchlib as bl

TANDEM_MAIL_ADDR = "127.0.0.46"
DOVECOT_ADDR = "127.0.0.47"
DOMAIN = bl.RELAY_DOMAIN
IMAP_USER = "bench@" + DOMAIN
POP3_USER = "pop@" + DOMAIN
PASSWORD = "bench-secret-1"
DOVECOT = "/usr/sbin/dovecot"
MAIL_UID = 65534      # Dovecot refuses uid 0 for mail access: its files belong to nobody


class BenchError(Exception):
    """A measurement could not be made or the server's answer was wrong."""


# --- the servers --------------------------------------------------------------

class MailPrimary:
    """`tandem -c CONF serve` as the primary for example.test, delivering into
    data_dir/mail/<domain>/<local>/ and serving services ("imap", "pop3")."""

    def __init__(self, binary, base, ports, users, services=("imap", "pop3")):
        bl.require_loopback(TANDEM_MAIL_ADDR)
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            bl.die("tandem binary %s not found or not executable (run make first)" % binary)
        self.ports = ports            # {"smtp": p, "imap": p, "pop3": p}
        self.services = tuple(services)
        self.name = "tandem"
        self.proc = None
        self.wd = bl.Workdir(base, "tandem-mail-")
        self.data = os.path.join(self.wd.path, "data")
        self.conf = os.path.join(self.wd.path, "tandem.conf")
        self.logfile = os.path.join(self.wd.path, "tandem.log")
        bl.LIVE.append(self)
        os.makedirs(self.data)
        listen = "smtp = %s:%d\n" % (TANDEM_MAIL_ADDR, ports["smtp"])
        for svc in self.services:
            listen += "%s = %s:%d\n" % (svc, TANDEM_MAIL_ADDR, ports[svc])
        # No per-client or per-user limits: the benchmark opens 100+ sessions
        # from one address. DNS goes to a loopback address where nothing listens.
        with open(self.conf, "w") as f:
            f.write("""\
# Benchmark instance written by bench/maillib.py; loopback only.
[server]
hostname = mx1.{dom}
role = primary
data_dir = {data}
log_file = {log}
max_connections_per_client = 0
max_connections_per_net = 0

[listen]
{listen}
[dns]
resolver = {ra}@{rp}

[smtp]
max_connections = 2000
""".format(dom=DOMAIN, data=self.data, log=self.logfile, listen=listen,
           ra=bl.DEAD_RESOLVER[0], rp=bl.DEAD_RESOLVER[1]))
            for svc in self.services:
                f.write("\n[%s]\nmax_connections = 2000\nmax_connections_per_user_ip = 1000\n"
                        % svc)
        self._cli(["check-config"], what="check-config rejects %s" % self.conf)
        self._cli(["domain", "add", DOMAIN])
        for u in users:
            self._cli(["user", "add", u], stdin=PASSWORD + "\n")

    def _cli(self, argv, stdin=None, what=None, timeout=120):
        full = [self.binary, "-c", self.conf] + argv
        bl.vlog("  $ " + " ".join(full))
        try:
            r = subprocess.run(full, input=stdin, capture_output=True, text=True,
                               timeout=timeout)
        except (OSError, subprocess.SubprocessError) as e:
            bl.die("tandem %s: %s" % (" ".join(argv), e))
        if r.returncode != 0:
            bl.die("tandem %s (exit %d):\n%s" % (
                what or " ".join(argv), r.returncode, (r.stdout + r.stderr).strip()))
        return r.stdout

    def start(self):
        for svc in ("smtp",) + self.services:
            bl.ensure_port_free(TANDEM_MAIL_ADDR, self.ports[svc])
        out = open(self.logfile + ".stderr", "a")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "serve"],
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.wd.path)
        out.close()
        alive = lambda: self.proc.poll() is None
        if not bl.wait_port(TANDEM_MAIL_ADDR, self.ports["smtp"], 30, alive):
            self.show_log()
            bl.die("tandem does not answer SMTP on %s:%d (exit status %s)" % (
                TANDEM_MAIL_ADDR, self.ports["smtp"], self.proc.poll()))
        for svc in self.services:
            greet = b"* OK" if svc == "imap" else b"+OK"
            if not wait_greeting(TANDEM_MAIL_ADDR, self.ports[svc], greet, 30, alive):
                self.show_log()
                bl.die("tandem does not greet on %s %s:%d" % (
                    svc, TANDEM_MAIL_ADDR, self.ports[svc]))
        bl.vlog("tandem pid %d on %s, dir %s" % (self.proc.pid, TANDEM_MAIL_ADDR, self.wd.path))

    def show_log(self):
        for p in (self.logfile + ".stderr", self.logfile):
            try:
                with open(p, errors="replace") as f:
                    bl.log("last lines of %s:\n%s" % (p, "".join(f.readlines()[-15:])))
            except OSError:
                pass

    def account_dir(self, address):
        local, domain = address.split("@")
        return os.path.join(self.data, "mail", domain, local)

    def delivered(self, address):
        """Message files in the account's INBOX (new/ and cur/)."""
        d = self.account_dir(address)
        return bl.count_files([os.path.join(d, "new"), os.path.join(d, "cur")])

    def queued(self):
        """Messages in tandem's queue (`queue list --json`; the queue's files
        when the command gives nothing usable)."""
        try:
            r = subprocess.run([self.binary, "-c", self.conf, "queue", "list", "--json"],
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                doc = json.loads(r.stdout)
                if isinstance(doc, list):
                    return len(doc)
                if isinstance(doc, dict):
                    for v in doc.values():
                        if isinstance(v, list):
                            return len(v)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
        q = os.path.join(self.data, "queue")
        return bl.count_files([os.path.join(q, d) for d in ("active", "deferred", "hold")])

    def pids(self):
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def stop(self, remove=True):
        """SIGTERM by pid, bounded wait, then SIGKILL; the directory goes at the
        end of the benchmark (unless remove is False: a restart follows)."""
        bl.terminate(self.proc, 30)
        self.proc = None
        if remove:
            if self.wd.path is not None:
                self.wd.remove()
            if self in bl.LIVE:
                bl.LIVE.remove(self)


class DovecotInstance:
    """A private Dovecot: `dovecot -c CONF -F` with everything (base_dir,
    state_dir, log, passwd-file, mail) in its temporary directory; IMAP and
    POP3 on DOVECOT_ADDR, plaintext LOGIN without TLS, the users' mail in
    mail/<domain>/<local>/ (Maildir, owned by MAIL_UID)."""

    def __init__(self, base, ports, users, sessions=100):
        bl.require_loopback(DOVECOT_ADDR)
        if not os.access(DOVECOT, os.X_OK):
            bl.die("%s not found: install the Debian packages dovecot-imapd dovecot-pop3d"
                   % DOVECOT)
        self.ports = ports
        self.name = "dovecot"
        self.proc = None
        self.wd = bl.Workdir(base, "dovecot-")
        d = self.wd.path
        self.conf = os.path.join(d, "dovecot.conf")
        self.logfile = os.path.join(d, "dovecot.log")
        self.mail = os.path.join(d, "mail")
        bl.LIVE.append(self)
        for sub in ("run", "state", "home", "mail"):
            os.makedirs(os.path.join(d, sub))
        os.chown(os.path.join(d, "home"), MAIL_UID, MAIL_UID)
        os.chown(self.mail, MAIL_UID, MAIL_UID)
        with open(os.path.join(d, "passwd"), "w") as f:
            for u in users:
                f.write("%s:{PLAIN}%s\n" % (u, PASSWORD))
        limit = max(300, sessions * 2 + 50)
        # Everything else is Dovecot's default: high-security login processes
        # (one imap-login per connection), one imap process per session,
        # indexes inside the Maildir, mail_fsync = optimized.
        with open(self.conf, "w") as f:
            f.write("""\
# Benchmark instance written by bench/maillib.py; loopback only.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = {addr}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:{d}/mail/%d/%n
default_process_limit = {limit}
default_client_limit = {climit}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/home/%d/%n
}}
protocol imap {{
  mail_max_userip_connections = {limit}
}}
protocol pop3 {{
  mail_max_userip_connections = {limit}
}}
service imap-login {{
  inet_listener imap {{
    address = {addr}
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {addr}
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""".format(d=d, addr=DOVECOT_ADDR, uid=MAIL_UID, limit=limit, climit=limit * 4,
           imap=ports["imap"], pop3=ports["pop3"]))

    def copy_maildir(self, address, src_account):
        """Copy tandem's INBOX files (cur/ and new/, nothing else: no index)
        into a fresh Maildir for address. Returns the number of files."""
        local, domain = address.split("@")
        dst = os.path.join(self.mail, domain, local)
        n = 0
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dst, sub), exist_ok=True)
        for sub in ("cur", "new"):
            s = os.path.join(src_account, sub)
            if not os.path.isdir(s):
                continue
            for name in os.listdir(s):
                shutil.copyfile(os.path.join(s, name), os.path.join(dst, sub, name))
                n += 1
        for root, dirs, files in os.walk(os.path.join(self.mail, domain)):
            os.chown(root, MAIL_UID, MAIL_UID)
            for x in files:
                os.chown(os.path.join(root, x), MAIL_UID, MAIL_UID)
        os.chown(os.path.join(self.mail, domain), MAIL_UID, MAIL_UID)
        return n

    def start(self):
        for svc in ("imap", "pop3"):
            bl.ensure_port_free(DOVECOT_ADDR, self.ports[svc])
        out = open(os.path.join(self.wd.path, "dovecot.stderr"), "w")
        self.proc = subprocess.Popen([DOVECOT, "-c", self.conf, "-F"], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT)
        out.close()
        alive = lambda: self.proc.poll() is None
        for svc, greet in (("imap", b"* OK"), ("pop3", b"+OK")):
            if not wait_greeting(DOVECOT_ADDR, self.ports[svc], greet, 30, alive):
                self.show_log()
                bl.die("Dovecot does not greet on %s %s:%d (exit status %s)" % (
                    svc, DOVECOT_ADDR, self.ports[svc], self.proc.poll()))
        bl.vlog("dovecot master pid %d on %s, dir %s" % (self.proc.pid, DOVECOT_ADDR,
                                                         self.wd.path))

    def show_log(self):
        for p in (os.path.join(self.wd.path, "dovecot.stderr"), self.logfile):
            try:
                with open(p, errors="replace") as f:
                    bl.log("last lines of %s:\n%s" % (p, "".join(f.readlines()[-15:])))
            except OSError:
                pass

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return bl.tree_pids(self.proc.pid)

    def stop(self):
        """SIGTERM to the master, bounded wait; any process of this instance
        still there gets SIGKILL by pid."""
        if self.proc is not None:
            kids = bl.tree_pids(self.proc.pid)
            bl.terminate(self.proc, 15)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(bl.pid_alive(p) for p in kids):
                time.sleep(0.1)
            for p in kids:
                if bl.pid_alive(p):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            self.proc = None
        if self.wd.path is not None:
            self.wd.remove()
        if self in bl.LIVE:
            bl.LIVE.remove(self)


def wait_greeting(addr, port, prefix, timeout, alive=None):
    """Poll until addr:port sends a greeting starting with prefix; bounded."""
    bl.require_loopback(addr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection((addr, port), timeout=5) as s:
                s.settimeout(5)
                if s.recv(512).startswith(prefix):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


# --- the mailbox --------------------------------------------------------------

WORDS = ("the of and to in is that for it as was with be by on not he this are or his "
         "from at which but have an they you were her she there been one all we their "
         "meeting report budget quarter invoice project review schedule draft update "
         "server release customer contract delivery question thanks attached please "
         "regards tomorrow monday friday agenda minutes travel expense approval team "
         "office network backup storage archive mailbox message folder client").split()
NAMES = ("Alice Martin|Bob Dupont|Carol Nguyen|David Schmidt|Eve Rossi|Frank Novak|"
         "Grace Kim|Henri Lefebvre|Ines Garcia|Jan Kowalski|Kenji Sato|Lena Berg").split("|")
SUBJECT_WORDS = WORDS[20:]
_TEXT = {}


def _text_pool(seed):
    """~256 KiB of word lines (LF), made once per seed: message bodies are
    slices of it, so generating 50,000 messages costs little."""
    if seed not in _TEXT:
        r = random.Random(seed)
        lines, size = [], 0
        while size < 256 * 1024:
            words, n = [], 0
            while n < 60:
                w = r.choice(WORDS)
                words.append(w)
                n += len(w) + 1
            line = " ".join(words).capitalize() + "."
            lines.append(line)
            size += len(line) + 2
        _TEXT[seed] = lines
    return _TEXT[seed]


def generate_message(seed, i, rcpt):
    """Message number i (0-based) of the mailbox made with seed, as bytes with
    CRLF line ends: 2-8 KiB in all, 3 % multipart/mixed with a base64
    attachment. Same seed and i, same bytes."""
    r = random.Random(seed * 1000003 + i)
    target = r.randint(2048, 8100)     # the last line may overshoot by < 80
    name = r.choice(NAMES)
    frm = "%s <%s@example.org>" % (name, name.split()[0].lower())
    when = 1764547200 - r.randint(0, 365 * 86400)     # within the year before 2025-12-01
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    subject = " ".join(r.choice(SUBJECT_WORDS) for _ in range(r.randint(2, 7))).capitalize()
    head = ["From: " + frm, "To: Bench User <%s>" % rcpt, "Subject: " + subject,
            "Date: " + date, "Message-ID: <%d.%d.%08x@bench.example.org>" % (seed, i, when),
            "MIME-Version: 1.0"]
    pool = _text_pool(seed)
    attach = r.random() < 0.03
    boundary = "=_bench_%d_%d" % (seed, i)
    out = []
    if attach:
        head.append('Content-Type: multipart/mixed; boundary="%s"' % boundary)
        out += ["This is a multi-part message in MIME format.", "", "--" + boundary,
                "Content-Type: text/plain; charset=us-ascii", ""]
    else:
        head.append("Content-Type: text/plain; charset=us-ascii")
    size = sum(len(x) + 2 for x in head) + 2 + sum(len(x) + 2 for x in out)
    if attach:
        # about half of what is left is the attachment (base64: 4/3 growth)
        blob_len = max(300, (target - size) // 2 * 3 // 4)
        text_goal = target - size - blob_len * 4 // 3 - 300
    else:
        text_goal = target - size
    k = r.randrange(len(pool))
    while text_goal > 0:
        line = pool[k % len(pool)]
        out.append(line)
        text_goal -= len(line) + 2
        k += 1
    if attach:
        blob = r.getrandbits(blob_len * 8).to_bytes(blob_len, "little")
        b64 = base64.b64encode(blob).decode()
        out += ["", "--" + boundary,
                'Content-Type: application/octet-stream; name="data-%d.bin"' % i,
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="data-%d.bin"' % i, ""]
        out += [b64[j:j + 76] for j in range(0, len(b64), 76)]
        out += ["--" + boundary + "--", ""]
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(out) + "\r\n").encode()


def _deliver_worker(job):
    """One SMTP client process: messages k, k+conns, ... over one connection
    at a time, a new one every per_conn messages. Returns (sent, error)."""
    addr, port, rcpt, seed, count, conns, k, per_conn = job
    sent = 0
    try:
        idx = list(range(k, count, conns))
        for start in range(0, len(idx), per_conn):
            with smtplib.SMTP(addr, port, local_hostname="client.example.org",
                              timeout=120) as s:
                s.ehlo()
                for i in idx[start:start + per_conn]:
                    refused = s.sendmail("sender@example.org", [rcpt],
                                         generate_message(seed, i, rcpt))
                    if refused:
                        return sent, "refused: %r" % refused
                    sent += 1
    except (smtplib.SMTPException, OSError) as e:
        return sent, "%s: %s" % (type(e).__name__, e)
    return sent, None


def _worker_init():
    # Ctrl-C and SIGTERM are for the parent, which stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def deliver(addr, port, rcpt, count, seed, conns=6, per_conn=1000, timeout=1800):
    """Send count messages to rcpt through SMTP at addr:port with conns
    parallel client processes. Dies unless every message got its 250.
    Returns the seconds it took."""
    bl.require_loopback(addr)
    conns = max(1, min(conns, count))
    jobs = [(addr, port, rcpt, seed, count, conns, k, per_conn) for k in range(conns)]
    t0 = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(conns, initializer=_worker_init) as pool:
        try:
            res = pool.map_async(_deliver_worker, jobs).get(timeout)
        except multiprocessing.TimeoutError:
            bl.die("delivery of %d messages to %s did not end within %d s" % (
                count, rcpt, timeout))
    secs = time.monotonic() - t0
    errors = [e for _, e in res if e]
    sent = sum(n for n, _ in res)
    if errors or sent != count:
        bl.die("SMTP delivery to %s: %d of %d sent; %s" % (rcpt, sent, count,
                                                           "; ".join(errors[:3])))
    return secs


def wait_delivered(primary, address, count, timeout):
    """Wait until the account's INBOX holds count files and the queue is empty."""
    deadline = time.monotonic() + timeout
    n = q = None
    while time.monotonic() < deadline:
        n = primary.delivered(address)
        if n >= count:
            q = primary.queued()
            if q == 0:
                break
        time.sleep(0.5)
    if n != count or q != 0:
        primary.show_log()
        bl.die("%s: %s of %d messages in the mailbox, %s still queued after %d s" % (
            address, n, count, q, timeout))


# --- the clients --------------------------------------------------------------

class RawImap:
    """An IMAP client on a plain socket. command() sends one tagged command
    and returns every byte up to and including its tagged completion; it
    finds that line with a byte search (the benchmark's mailbox has no
    line in a literal that starts with a tag), so the client's own cost
    stays small. Raises BenchError on anything but a tagged OK."""

    def __init__(self, addr, port, timeout=300, limit=900):
        bl.require_loopback(addr)
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.limit = limit          # seconds one command may take in all
        self.deadline = time.monotonic() + limit
        self.n = 0
        self.buf = bytearray()
        greet = self._line()
        if not greet.startswith(b"* OK"):
            raise BenchError("IMAP greeting: %r" % greet[:200])

    def _line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        i = self.buf.index(b"\r\n") + 2
        line = bytes(self.buf[:i])
        del self.buf[:i]
        return line

    def _recv(self):
        if time.monotonic() > self.deadline:
            raise BenchError("no complete IMAP answer within %d s" % self.limit)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise BenchError("the IMAP server closed the connection")
        self.buf += chunk

    def command(self, line):
        self.deadline = time.monotonic() + self.limit
        self.n += 1
        tag = b"b%04d" % self.n
        self.sock.sendall(tag + b" " + line + b"\r\n")
        needle = b"\r\n" + tag + b" "
        start = 0
        while True:
            # the buffer always begins at the start of a line
            if self.buf.startswith(tag + b" "):
                pos = -2
                break
            pos = self.buf.find(needle, start)
            if pos >= 0:
                break
            start = max(0, len(self.buf) - len(needle))
            self._recv()
        end = self.buf.find(b"\r\n", pos + 2)
        while end < 0:
            self._recv()
            end = self.buf.find(b"\r\n", pos + 2)
        data = bytes(self.buf[:end + 2])
        del self.buf[:end + 2]
        status = data[pos + 2:]
        if not status.startswith(tag + b" OK"):
            raise BenchError("%s -> %r" % (line[:60].decode(errors="replace"),
                                          status[:300]))
        return data

    def login(self, user, password):
        return self.command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawPop3:
    """A POP3 client on a plain socket; multi-line answers are read up to
    their final "." line with a byte search."""

    def __init__(self, addr, port, timeout=300, limit=900):
        bl.require_loopback(addr)
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.limit = limit          # seconds one command may take in all
        self.deadline = time.monotonic() + limit
        self.buf = bytearray()
        greet = self._line()
        if not greet.startswith(b"+OK"):
            raise BenchError("POP3 greeting: %r" % greet[:200])

    def _recv(self):
        if time.monotonic() > self.deadline:
            raise BenchError("no complete POP3 answer within %d s" % self.limit)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise BenchError("the POP3 server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        i = self.buf.index(b"\r\n") + 2
        line = bytes(self.buf[:i])
        del self.buf[:i]
        return line

    def command(self, line, multi=False):
        self.deadline = time.monotonic() + self.limit
        self.sock.sendall(line + b"\r\n")
        first = self._line()
        if not first.startswith(b"+OK"):
            raise BenchError("POP3 %s -> %r" % (line.split()[0].decode(), first[:200]))
        if not multi:
            return first
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                body, cut = b"", 3
                break
            pos = self.buf.find(b"\r\n.\r\n", start)
            if pos >= 0:
                body, cut = bytes(self.buf[:pos + 2]), pos + 5
                break
            start = max(0, len(self.buf) - 4)
            self._recv()
        del self.buf[:cut]
        return first, body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- the measurements ----------------------------------------------------------

def login_check(server, addr, port, users):
    """One IMAP LOGIN + LOGOUT per user before anything is timed: the server
    must accept the password. LOGIN does not select INBOX, so the first pass
    after it is still cold. On both servers, so that neither pays for a
    first password check in a timed row (tandem caches successful checks of
    its yescrypt hashes; Dovecot's {PLAIN} passwords cost nothing)."""
    for user in users:
        c = RawImap(addr, port)
        try:
            c.login(user, PASSWORD)
            c.command(b"LOGOUT")
        except BenchError as e:
            server.show_log()
            bl.die("%s refuses LOGIN of %s: %s" % (server.name, user, e))
        finally:
            c.close()


def spread(count, n=1000):
    """n message numbers spread evenly over 1..count."""
    return [1 + (k * count) // n for k in range(n)]


SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


def imap_pass(addr, port, user, count, ns):
    """One session: LOGIN + SELECT, the 1:* size fetch, the header fetch of
    1:200 and one BODYSTRUCTURE fetch per entry of ns, each timed and
    checked. Returns {row: seconds} and the sum of RFC822.SIZE."""
    t = {}
    t0 = time.perf_counter()
    c = RawImap(addr, port)
    try:
        c.login(user, PASSWORD)
        data = c.command(b"SELECT INBOX")
        t["select"] = time.perf_counter() - t0
        m = re.search(rb"\* (\d+) EXISTS", data)
        if not m or int(m.group(1)) != count:
            raise BenchError("SELECT INBOX: %s messages, expected %d" % (
                m.group(1).decode() if m else "no EXISTS,", count))

        t0 = time.perf_counter()
        data = c.command(b"UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
        t["fetch_all"] = time.perf_counter() - t0
        n = data.count(b" FETCH (")
        if n != count:
            raise BenchError("UID FETCH 1:*: %d FETCH lines, expected %d" % (n, count))
        total = sum(int(x) for x in SIZE_RE.findall(data))

        hi = min(200, count)
        t0 = time.perf_counter()
        data = c.command(b"FETCH 1:%d (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])" % hi)
        t["headers"] = time.perf_counter() - t0
        n = data.count(b" FETCH (")
        subj = data.lower().count(b"\nsubject:")
        if n != hi or subj != hi:
            raise BenchError("FETCH 1:%d header fields: %d FETCH lines, %d Subject lines" % (
                hi, n, subj))

        mixed = 0
        t0 = time.perf_counter()
        for k in ns:
            data = c.command(b"FETCH %d BODYSTRUCTURE" % k)
            if b"BODYSTRUCTURE (" not in data:
                raise BenchError("FETCH %d BODYSTRUCTURE: %r" % (k, data[:200]))
            mixed += b'"MIXED"' in data.upper()
        t["bodystructure"] = time.perf_counter() - t0
        if count >= 1000 and mixed == 0:
            raise BenchError("no multipart/mixed among %d BODYSTRUCTUREs" % len(ns))
        c.command(b"LOGOUT")
    finally:
        c.close()
    return t, total


def pop3_pass(addr, port, user, count):
    """connect, USER/PASS, STAT, UIDL up to its final line: seconds."""
    t0 = time.perf_counter()
    c = RawPop3(addr, port)
    try:
        c.command(b"USER " + user.encode())
        c.command(b"PASS " + PASSWORD.encode())
        st = c.command(b"STAT").split()
        _, body = c.command(b"UIDL", multi=True)
        secs = time.perf_counter() - t0
        if len(st) < 3 or int(st[1]) != count:
            raise BenchError("POP3 STAT: %r, expected %d messages" % (b" ".join(st), count))
        lines = body.count(b"\r\n")
        if lines != count:
            raise BenchError("POP3 UIDL: %d lines, expected %d" % (lines, count))
        c.command(b"QUIT")
    finally:
        c.close()
    return secs


def pop3_login_loop(addr, port, user, n, deadline_s=300):
    """n times connect + USER/PASS + STAT + QUIT (until the server's +OK of
    QUIT): the median seconds. Bounded by deadline_s."""
    times = []
    stop = time.monotonic() + deadline_s
    for _ in range(n):
        if time.monotonic() > stop:
            raise BenchError("POP3 login loop: only %d of %d rounds in %d s" % (
                len(times), n, deadline_s))
        t0 = time.perf_counter()
        c = RawPop3(addr, port)
        try:
            c.command(b"USER " + user.encode())
            c.command(b"PASS " + PASSWORD.encode())
            c.command(b"STAT")
            c.command(b"QUIT")
        finally:
            c.close()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def login_loop(addr, port, user, n, deadline_s=300):
    """n times connect + LOGIN + SELECT INBOX + LOGOUT (until the server's
    tagged OK of LOGOUT): the median seconds. Bounded by deadline_s."""
    times = []
    stop = time.monotonic() + deadline_s
    for _ in range(n):
        if time.monotonic() > stop:
            raise BenchError("login loop: only %d of %d rounds in %d s" % (
                len(times), n, deadline_s))
        t0 = time.perf_counter()
        c = RawImap(addr, port)
        try:
            c.login(user, PASSWORD)
            c.command(b"SELECT INBOX")
            c.command(b"LOGOUT")
        finally:
            c.close()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def taking_turns(servers, port, user, count, ns, turns):
    """Both servers warm and running: each turn, each server (in an order
    that alternates) gets one session timing len(ns) NOOPs, then one
    BODYSTRUCTURE fetch per entry of ns, then 20 rounds of connect + LOGIN +
    SELECT + LOGOUT. Returns {name: {"noop" | "bodystructure" | "login":
    median seconds over the turns}}."""
    got = {name: {"noop": [], "bodystructure": [], "login": []} for name, _ in servers}
    for turn in range(turns):
        for name, addr in (servers if turn % 2 == 0 else servers[::-1]):
            c = RawImap(addr, port)
            try:
                c.login(user, PASSWORD)
                data = c.command(b"SELECT INBOX")
                if b"* %d EXISTS" % count not in data:
                    raise BenchError("%s: SELECT INBOX does not show %d messages" % (name, count))
                t0 = time.perf_counter()
                for _ in ns:
                    c.command(b"NOOP")
                got[name]["noop"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for k in ns:
                    if b"BODYSTRUCTURE (" not in c.command(b"FETCH %d BODYSTRUCTURE" % k):
                        raise BenchError("%s: FETCH %d BODYSTRUCTURE failed" % (name, k))
                got[name]["bodystructure"].append(time.perf_counter() - t0)
                c.command(b"LOGOUT")
            finally:
                c.close()
            got[name]["login"].append(login_loop(addr, port, user, 20))
        bl.vlog("  turn %d: %s" % (turn + 1, "; ".join(
            "%s %s" % (name, ", ".join("%s %s" % (k, fmt_secs(v[-1])) for k, v in rows.items()))
            for name, rows in got.items())))
    return {name: {k: statistics.median(v) for k, v in rows.items()}
            for name, rows in got.items()}


def idle_memory(addr, port, user, server, n, settle=1.0):
    """Growth per idle session (KiB) of the anonymous memory (Pss_Anon +
    Pss_Shmem) of server.pids(): heap, stacks and shared memory, what
    sessions can cost. One session is open (LOGIN + SELECT INBOX) for the
    baseline, so the one-time cost of opening the mailbox is not counted per
    session, then n more are held open.

    File-backed pages are left out: they are the page cache of libraries
    and index files the processes map, which sessions do not allocate and
    the kernel can drop. They also move by tens of MB with no session
    involved: SQLite unmaps a connection's whole mapping of an index when
    another connection wrote to it (tandem's background check of a
    folder's files records its result), and the pages come back one fault
    at a time. The verbose log shows the whole Pss as well."""
    sessions = []

    def sample():
        pids = server.pids()
        return (len(pids), bl.pss_sum(pids, "Pss_Anon") + bl.pss_sum(pids, "Pss_Shmem"),
                bl.pss_sum(pids))
    try:
        def open_one():
            c = RawImap(addr, port, timeout=60)
            sessions.append(c)
            c.login(user, PASSWORD)
            c.command(b"SELECT INBOX")
        open_one()
        # what a server does once after the first opens (tandem checks a
        # folder's files 3 s after it was opened on marks it only inferred)
        # is over before the baseline
        time.sleep(max(settle, 5.0))
        nproc0, anon0, pss0 = sample()
        deadline = time.monotonic() + 300
        for _ in range(n):
            if time.monotonic() > deadline:
                raise BenchError("opening %d sessions took more than 300 s" % n)
            open_one()
        time.sleep(settle)
        nproc1, anon1, pss1 = sample()
        bl.vlog("  %s: %d sessions: anonymous %d -> %d KiB, all Pss %d -> %d KiB, "
                "%d -> %d processes" % (server.name, n, anon0, anon1, pss0, pss1,
                                        nproc0, nproc1))
        if pss0 <= 0 or pss1 <= 0:
            raise BenchError("could not read Pss of %s's processes" % server.name)
        return (anon1 - anon0) / n
    finally:
        for c in sessions:
            c.close()


# --- the report ---------------------------------------------------------------

def fmt_secs(s):
    if s is None:
        return "–"
    if s >= 1:
        return "%.2f s" % s
    if s >= 0.1:
        return "%.0f ms" % (s * 1000)
    if s >= 0.01:
        return "%.1f ms" % (s * 1000)
    return "%.2f ms" % (s * 1000)


def fmt_kib(k):
    return "–" if k is None else "%.0f KiB" % k


def ratio(other, ours):
    if other is None or ours is None or ours <= 0:
        return "–"
    r = other / ours
    return "%.0f×" % r if r >= 10 else "%.1f×" % r


def markdown_table(rows):
    """rows: (label, tandem, dovecot cold, dovecot warm, formatter)."""
    out = ["| row | tandem | Dovecot cold | Dovecot warm | cold / tandem | warm / tandem |",
           "|---|---|---|---|---|---|"]
    for label, t, dc, dw, f in rows:
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            label, f(t), f(dc), f(dw), ratio(dc, t), ratio(dw, t)))
    return "\n".join(out)


def turns_table(rows):
    """rows: (label, tandem, dovecot warm, formatter)."""
    out = ["| row | tandem | Dovecot warm | warm / tandem |", "|---|---|---|---|"]
    for label, t, dw, f in rows:
        out.append("| %s | %s | %s | %s |" % (label, f(t), f(dw), ratio(dw, t)))
    return "\n".join(out)


def machine_lines(tmpdir, binary=None):
    lines = ["machine: %s, %d cores, kernel %s, Python %s" % (
        bl.cpu_model(), os.cpu_count() or 0, platform.release(), platform.python_version())]
    lines.append("disk: " + bl.machine_info(tmpdir).split("temp dir ", 1)[-1])
    try:
        v = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True,
                           timeout=10).stdout.strip()
        lines.append("Dovecot: " + v)
    except (OSError, subprocess.SubprocessError):
        pass
    if binary:
        try:
            rev = subprocess.run(["git", "-C", os.path.dirname(binary), "describe",
                                  "--always", "--dirty"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            rev = ""
        lines.append("tandem: %s%s" % (binary, " (source %s)" % rev if rev else ""))
    return lines
