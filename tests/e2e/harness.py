"""The shared harness of the e2e scenarios and the benchmarks (bench/ puts
this folder on sys.path): the things a scenario starts besides tandem.

  check_free(ip, port)  (lib's) says clearly when an address a run needs is taken
  dns_query, dns_answers  one DNS query over UDP
  Dns                   a private dnsmasq answering only for the records given
  DnsRcode              a UDP DNS server answering every query with one rcode
  Peer, Session, CLOSE, once   a scripted SMTP server, one thread a connection
  Sink                  Postfix's smtp-sink with its fault options
  Blackhole             an address where a TCP connection never completes
  Stack                 what a scenario started, stopped in reverse order
  Postfix               a private Postfix instance (own config, queue and data
                        directories; optionally its own mount namespace with
                        a private /etc/resolv.conf)

Everything here listens on loopback only. Every object registers with
lib.register() so the e2e runner stops it after each scenario whatever
happens; stop() may be called any number of times.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import lib
from lib import DNS_PORT, KEEP, AddressInUse, check_free, port_open, wait_for  # noqa: F401

DNSMASQ = "/usr/sbin/dnsmasq"
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
POSTMAP = "/usr/sbin/postmap"
POSTQUEUE = "/usr/sbin/postqueue"


class HarnessError(AssertionError):
    """Something the harness could not set up (a scenario fails with it;
    the benchmarks turn it into their own error message)."""


# --- DNS ------------------------------------------------------------------------

def dns_query(name, qtype, port=None, server="127.0.0.1", timeout=2.0):
    """One DNS query over UDP; returns (rcode, [(type, rdata)...]). Raises
    socket.timeout (OSError) when nothing answers."""
    port = DNS_PORT if port is None else port
    tid = int.from_bytes(os.urandom(2), "big")
    q = struct.pack(">HHHHHH", tid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, port))
        while True:
            d, _ = s.recvfrom(4096)
            if len(d) >= 12 and d[:2] == q[:2]:
                break
    rcode, nan = struct.unpack(">H", d[2:4])[0] & 0xF, struct.unpack(">H", d[6:8])[0]
    off = len(q)
    out = []
    for _ in range(nan):
        while d[off] != 0 and d[off] & 0xC0 != 0xC0:
            off += 1 + d[off]
        off += 2 if d[off] & 0xC0 == 0xC0 else 1
        t, _c, _ttl, rdl = struct.unpack(">HHIH", d[off:off + 10])
        off += 10
        out.append((t, d[off:off + rdl]))
        off += rdl
    return rcode, out


def dns_answers(server, port, name, qtype):
    """Number of answer records a DNS server gives for NAME/QTYPE (0 on no answer)."""
    try:
        return len(dns_query(name, qtype, port=port, server=server, timeout=0.3)[1])
    except OSError:
        return 0


def _output(f):
    f.seek(0)
    return f.read().decode("utf-8", "replace")


class Dns:
    """A private dnsmasq on listen:port (by default 127.0.0.1:DNS_PORT,
    where every tandem of the e2e scenarios sends its queries), serving
    the records given (dnsmasq options such as --mx-host=..., see mx())
    and nothing else: no upstream, the test's zones answered locally."""

    ZONES = ("test", "org", "net", "in-addr.arpa")

    def __init__(self, records, listen="127.0.0.1", port=None):
        if not os.access(DNSMASQ, os.X_OK):
            raise HarnessError("dnsmasq (Debian dnsmasq-base) is needed")
        self.listen, self.port = listen, DNS_PORT if port is None else port
        self.proc = None
        check_free(self.listen, self.port, udp=True)
        self.err = tempfile.TemporaryFile()
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=%s" % self.listen, "--bind-interfaces",
                "--port=%d" % self.port] + ["--local=/%s/" % z for z in self.ZONES] + list(records)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        lib.register(self)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError("dnsmasq on %s:%d exited: %s" % (
                    self.listen, self.port, _output(self.err)))
            try:
                return dns_query("ready.invalid.test", 1, port=self.port, server=self.listen,
                                 timeout=0.2)[0] == 3
            except OSError:
                return False
        try:
            wait_for(up, timeout=10, what="dnsmasq on %s:%d to answer" % (self.listen, self.port))
        except AssertionError:
            self.stop()
            raise

    def stderr(self):
        return _output(self.err)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.err.close()
        lib.unregister(self)


def mx(domain, ip, pref=10, host=None):
    """dnsmasq options: domain MX pref host (mx.DOMAIN), host A ip."""
    host = host or "mx." + domain
    return ["--mx-host=%s,%s,%d" % (domain, host, pref), "--host-record=%s,%s" % (host, ip)]


class DnsRcode:
    """A UDP DNS server that answers every query with one rcode (SERVFAIL)."""

    def __init__(self, ip, port, rcode=2):
        check_free(ip, port, udp=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.1)
        self.rcode = rcode
        self.queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        lib.register(self)

    def run(self):
        while not self.stopping:
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 12:
                continue
            self.queries += 1
            flags = 0x8000 | (struct.unpack(">H", q[2:4])[0] & 0x0100) | 0x0080 | self.rcode
            self.sock.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0) + q[12:], peer)

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()
        lib.unregister(self)
        assert not self.thread.is_alive()


# --- scripted SMTP peers ----------------------------------------------------------

CLOSE = "<close>"      # a reply that is no reply: the peer drops the connection


class Session:
    """One connection to a Peer, as the peer's script sees it."""

    def __init__(self, peer, sock, n):
        self.peer, self.sock, self.n = peer, sock, n
        self.buf = b""
        self.commands = []
        self.messages = []        # (mail from, [rcpt], data)
        self.closed = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
            assert len(self.buf) < 100000, "a command line without end"
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def read_data(self, limit=None):
        """The message up to CRLF.CRLF: (data, True); (data, False) as soon
        as limit bytes came in without it; None if the client went away."""
        data = bytearray(b"\r\n")    # the DATA line's CRLF: an empty message is "."
        while True:
            start = max(0, len(data) - 4)
            data += self.buf
            self.buf = b""
            i = data.find(b"\r\n.\r\n", start)
            if i >= 0:
                self.buf = bytes(data[i + 5:])
                return bytes(data[2:i + 2]), True
            if limit is not None and len(data) - 2 >= limit:
                return bytes(data[2:]), False
            chunk = self.sock.recv(262144)
            if not chunk:
                return None
            self.buf = chunk

    def reply(self, r, *args):
        """Send a scripted reply: text (CRLF added), raw bytes, CLOSE, or a
        callable that does what it likes (and may return one of those)."""
        while callable(r):
            r = r(self, *args)
        if r is None:
            return True
        if r == CLOSE:
            self.close()
            return False
        self.send(r + "\r\n" if isinstance(r, str) else r)
        return True

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def converse(self, greeting="220 peer.test ESMTP scripted",
                 ext=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"),
                 mail="250 2.1.0 Ok", rcpt="250 2.1.5 Ok", data="354 End data with <CR><LF>.<CR><LF>",
                 dot="250 2.0.0 Ok: queued", starttls="454 4.7.0 TLS not available",
                 data_limit=None):
        """A plain SMTP server; every reply can be replaced by the script.
        rcpt may be a dict: address -> reply."""
        if not self.reply(greeting):
            return
        sender, rcpts = None, []
        while True:
            line = self.line()
            if line is None:
                return
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                if verb == "HELO" or not ext:
                    r = "250 peer.test"
                else:
                    r = "\r\n".join(["250-peer.test"] + ["250-" + e for e in ext[:-1]] +
                                    ["250 " + ext[-1]])
                if not self.reply(r):
                    return
            elif verb == "STARTTLS":
                if not self.reply(starttls):
                    return
            elif verb == "MAIL":
                sender, rcpts = re.search(r"<(.*?)>", line).group(1), []
                if not self.reply(mail):
                    return
            elif verb == "RCPT":
                a = re.search(r"<(.*?)>", line).group(1)
                r = rcpt.get(a, "250 2.1.5 Ok") if isinstance(rcpt, dict) else rcpt
                while callable(r) and r is not CLOSE:
                    r = r(self, a)
                if isinstance(r, str) and r.startswith("2"):
                    rcpts.append(a)
                if not self.reply(r):
                    return
            elif verb == "DATA":
                r = data if rcpts else "554 5.5.1 Error: no valid recipients"
                if not self.reply(r):
                    return
                if not (isinstance(r, str) and r.startswith("354")):
                    continue
                got = self.read_data(data_limit)
                if got is None:
                    return
                body, complete = got
                if not complete:
                    self.peer.partial.append(body)
                    self.close()
                    return
                self.messages.append((sender, list(rcpts), body))
                if not self.reply(dot):
                    return
            elif verb == "RSET":
                sender, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


def once(first, then):
    """A reply that is first the first time (across every session of the
    peer), then then."""
    used = []

    def go(s, *args):
        used.append(1)
        return first if len(used) == 1 else then
    return go


class Peer:
    """A scripted SMTP server on IP:port (25), one thread per connection.
    script(s) runs each session; s.n is the connection's number, from 1."""

    def __init__(self, ip, script=None, port=25):
        self.ip, self.port = ip, port
        self.script = script or (lambda s: s.converse())
        self.sessions = []
        self.partial = []
        self.threads = []
        self.lock = threading.Lock()
        self.stopping = False
        check_free(ip, port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((ip, port))
        self.lsock.listen(16)
        self.lsock.settimeout(0.1)
        self.acceptor = threading.Thread(target=self.accept_loop, daemon=True)
        self.acceptor.start()
        lib.register(self)

    def accept_loop(self):
        while not self.stopping:
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(10)
            with self.lock:
                s = Session(self, sock, len(self.sessions) + 1)
                self.sessions.append(s)
            t = threading.Thread(target=self.run, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def run(self, s):
        try:
            self.script(s)
        except (OSError, AssertionError):
            pass
        finally:
            s.close()

    @property
    def messages(self):
        with self.lock:
            return [m for s in self.sessions for m in s.messages]

    @property
    def commands(self):
        with self.lock:
            return [c for s in self.sessions for c in s.commands]

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        self.acceptor.join(timeout=5)
        self.lsock.close()
        with self.lock:
            for s in self.sessions:
                s.close()
        for t in self.threads:
            t.join(timeout=5)
        lib.unregister(self)
        assert not self.acceptor.is_alive() and not any(t.is_alive() for t in self.threads), \
            "a peer thread did not stop"


class Sink:
    """Postfix's smtp-sink on IP:25 with its fault options."""

    def __init__(self, ip, *options, port=25):
        if not os.access(SMTP_SINK, os.X_OK):
            raise HarnessError("smtp-sink (Debian postfix) is needed")
        self.ip, self.port = ip, port
        self.proc = None
        check_free(ip, port)
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody"] + list(options) + ["%s:%d" % (ip, port), "16"],
            stdout=subprocess.DEVNULL, stderr=self.err)
        lib.register(self)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError("smtp-sink: %s" % _output(self.err))
            try:
                socket.create_connection((ip, port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for(up, timeout=10, what="smtp-sink on %s:%d" % (ip, port))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None
        self.err.close()
        lib.unregister(self)


class Blackhole:
    """IP:25 where a connection never completes: a listener that never
    accepts, its one-place backlog kept full, so the kernel drops SYNs."""

    def __init__(self, ip, port=25):
        check_free(ip, port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((ip, port))
        self.lsock.listen(0)
        self.fill = []
        lib.register(self)
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex((ip, port))
            self.fill.append(c)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect((ip, port))
            raise AssertionError("the blackhole on %s accepts connections" % ip)
        except socket.timeout:
            pass
        finally:
            probe.close()

    def stop(self):
        for c in self.fill:
            c.close()
        self.fill = []
        self.lsock.close()
        lib.unregister(self)


class Stack:
    """What a scenario started, stopped in reverse order whatever happens."""

    def __init__(self):
        self.items = []

    def add(self, x):
        self.items.append(x)
        return x

    def stop(self):
        errors = []
        while self.items:
            x = self.items.pop()
            try:
                x.stop()
            except Exception as e:   # noqa: B902 - stop the others, then report
                errors.append(e)
        if errors:
            raise errors[0]


# --- a private Postfix --------------------------------------------------------------

def children_of(pid):
    """Direct children of pid, from /proc (Postfix daemons are children of master)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as fh:
                # field 4 (ppid) comes after the parenthesised command name
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(name))
    return kids


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# Debian's services, no chroot; smtpd only on the instance's own address.
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{ip}:{port} inet n   -       n       -       {smtpd_max}  smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix on ip:port: own config_directory, queue_directory
    and data_directory in a fresh directory under base, no chroot, nothing
    of the machine's own Postfix touched. What every instance shares is
    here; a role (sending server, backup MX) adds its main.cf settings as
    `main` (an ordered dict) and `extra_main_cf` ("key = value" lines,
    appended last: Postfix uses the last setting of a parameter).

    With resolver=IP, start() runs Postfix in its own mount namespace whose
    /etc/resolv.conf is a bind-mounted file naming that resolver, so its
    DNS lookups go to a test's dnsmasq on IP:53."""

    QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

    def __init__(self, ip, port=25, hostname="mx.example.net", domain="example.net",
                 main=None, extra_main_cf=(), smtpd_max="-", resolver=None, base=None,
                 prefix="tandem-postfix-", recipients=None, comment="tandem's test harness"):
        if not ip.startswith("127."):
            raise HarnessError("refusing non-loopback address %s" % ip)
        for tool in (POSTFIX, POSTMAP):
            if not os.access(tool, os.X_OK):
                raise HarnessError("%s not found: install the Debian package postfix "
                                   "(scripts/install-deps)" % tool)
        try:
            pw = pwd.getpwnam("postfix")
        except KeyError:
            raise HarnessError("user postfix does not exist: is the postfix package installed?")
        self.ip, self.port, self.resolver = ip, port, resolver
        if base:
            os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=base)
        os.chmod(self.dir, 0o755)   # Postfix's daemons run as user postfix
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.maillog = os.path.join(self.dir, "maillog")
        self.resolv = os.path.join(self.dir, "resolv.conf")
        self.master_pid = None
        self.mntns = None     # with resolver: Postfix's mount namespace, all of it ours
        self.pids = set()
        self.removed = False
        for d in (self.etc, self.spool, self.data):
            os.makedirs(d)
        os.chown(self.data, pw.pw_uid, pw.pw_gid)   # master.lock lives here
        conf = [
            ("compatibility_level", "3.6"),
            ("queue_directory", self.spool),
            ("data_directory", self.data),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("myhostname", hostname),
            ("mydomain", domain),
            ("myorigin", domain),
            # Postfix accepts only addresses configured on an interface here,
            # and lo carries 127.0.0.1/8 alone: the smtpd listener in
            # master.cf binds ip:port itself.
            ("inet_interfaces", "loopback-only"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            ("mydestination", ""),
            ("local_recipient_maps", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("relay_domains", ""),
            ("maillog_file", self.maillog),
            ("maillog_file_prefixes", self.dir),
        ]
        merged = dict(conf)
        if recipients is not None:
            # relay_recipient_maps: only these recipients are accepted for relay
            merged["relay_recipient_maps"] = self.relay_recipients_map()
        merged.update(main or {})
        text = "# Private instance written by %s; loopback only.\n" % comment
        text += "".join(("%s = %s" % (k, v)).rstrip() + "\n" for k, v in merged.items())
        if extra_main_cf:
            text += "# given on the command line\n" + "".join(l + "\n" for l in extra_main_cf)
        with open(os.path.join(self.etc, "main.cf"), "w") as fh:
            fh.write(text)
        with open(os.path.join(self.etc, "master.cf"), "w") as fh:
            fh.write(MASTER_CF.format(ip=ip, port=port, smtpd_max=smtpd_max))
        if recipients is not None:
            path = os.path.join(self.etc, "relay_recipients")
            with open(path, "w") as fh:
                for r in recipients:
                    fh.write("%s OK\n" % r)
            self._run([POSTMAP, "-c", self.etc, "hash:" + path], "postmap")
        if resolver:
            with open(self.resolv, "w") as fh:
                fh.write("# tandem e2e: the Postfix namespace's resolver\n"
                         "nameserver %s\noptions timeout:1 attempts:2\n" % resolver)
        lib.register(self)

    def relay_recipients_map(self):
        return "hash:" + os.path.join(self.etc, "relay_recipients")

    def log(self):
        try:
            with open(self.maillog, errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def _why(self):
        """postfix(1) tells why on a terminal only (else syslog): ask again on a pty."""
        if not shutil.which("script"):
            return ""
        try:
            return subprocess.run(["script", "-qec", "%s -c %s check" % (POSTFIX, self.etc),
                                   "/dev/null"], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    def _run(self, argv, what, timeout=60):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise HarnessError("%s failed (exit %d): %s%s\npostfix check: %s\nmaillog:\n%s" % (
                what, r.returncode, r.stdout, r.stderr, self._why(), self.log()[-3000:]))
        return r

    def start(self):
        check_free(self.ip, self.port)
        if self.resolver:
            if not shutil.which("unshare"):
                raise HarnessError("unshare(1) (util-linux) is needed")
            script = 'mount --bind "$1" /etc/resolv.conf && exec %s -c "$2" start' % POSTFIX
            self._run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                       self.resolv, self.etc],
                      "postfix start in a private mount namespace (unshare -m, bind mount of "
                      "/etc/resolv.conf, postfix -c %s start)" % self.etc)
        else:
            self._run([POSTFIX, "-c", self.etc, "start"], "postfix -c %s start" % self.etc)
        try:
            self.master_pid = wait_for(self.read_master_pid, timeout=20, what="Postfix's master.pid")
        except AssertionError as e:
            raise HarnessError("%s\nmaillog:\n%s" % (e, self.log()[-3000:]))
        self.pids.add(self.master_pid)
        if not wait_smtp(self.ip, self.port, 30, lambda: pid_alive(self.master_pid)):
            raise HarnessError("Postfix does not answer on %s:%d\nmaillog:\n%s" % (
                self.ip, self.port, self.log()[-3000:]))
        if self.resolver:
            # The master (and so every Postfix process) sees the private
            # resolv.conf; the machine's own is untouched.
            with open("/proc/%d/root/etc/resolv.conf" % self.master_pid) as fh:
                seen = fh.read()
            assert "nameserver %s" % self.resolver in seen, "Postfix's namespace sees:\n" + seen
            with open("/etc/resolv.conf") as fh:
                assert "tandem e2e" not in fh.read(), "the bind mount leaked out of the namespace"
            self.mntns = os.readlink("/proc/%d/ns/mnt" % self.master_pid)
            assert self.mntns != os.readlink("/proc/self/ns/mnt"), \
                "Postfix runs in our mount namespace"

    def read_master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as fh:
                return int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def mine(self, pid):
        """pid is alive and one of this instance's processes (in its own mount
        namespace, when it has one)."""
        if self.mntns is None:
            return pid_alive(pid)
        try:
            return os.readlink("/proc/%d/ns/mnt" % pid) == self.mntns
        except OSError:
            return False

    def track(self):
        """Note the master's current children: stop() checks every one ends."""
        if self.master_pid and pid_alive(self.master_pid):
            self.pids.update(children_of(self.master_pid))

    def live_pids(self):
        """master and its children (the smtpd, cleanup, qmgr... processes)."""
        if self.master_pid is None or not pid_alive(self.master_pid):
            return []
        return [self.master_pid] + children_of(self.master_pid)

    def queue_counts(self):
        """Files per queue directory, as a dict."""
        out = {}
        for d in self.QUEUES:
            n = 0
            for _root, _dirs, files in os.walk(os.path.join(self.spool, d)):
                n += len(files)
            out[d] = n
        return out

    def flush_queue(self, timeout=60):
        """`postqueue -c DIR -f`: qmgr forgets its dead destinations and attempts
        every deferred message now. Returns (exit status, output)."""
        r = subprocess.run([POSTQUEUE, "-c", self.etc, "-f"], capture_output=True,
                           text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()

    def stop(self, remove=True):
        """postfix stop; then wait (bounded) for master and children, SIGKILL
        stragglers by pid. Returns the pids still alive after that."""
        self.master_pid = self.master_pid or self.read_master_pid()
        if self.master_pid:
            self.pids.add(self.master_pid)
        self.track()
        if self.master_pid:
            try:
                subprocess.run([POSTFIX, "-c", self.etc, "stop"], capture_output=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass
            end = time.monotonic() + 15
            while time.monotonic() < end and any(pid_alive(x) for x in self.pids):
                time.sleep(0.1)
            for x in self.pids:
                if self.mine(x):
                    try:
                        os.kill(x, signal.SIGKILL)
                    except OSError:
                        pass
        left = [x for x in self.pids if self.mine(x)]
        self.master_pid = None
        self.pids = set()
        if remove and not KEEP and not self.removed:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.removed = True
        lib.unregister(self)
        return left


def wait_smtp(ip, port, timeout, alive=None, interval=0.1):
    """Poll until ip:port accepts a connection and greets with 220; False
    after timeout seconds, or as soon as alive() says the server died."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection((ip, port), timeout=2) as s:
                s.settimeout(5)
                banner = s.recv(512)
                s.sendall(b"QUIT\r\n")
                if banner.startswith(b"220"):
                    return True
        except OSError:
            pass
        time.sleep(interval)
    return False


__all__ = ["HarnessError", "AddressInUse", "check_free", "dns_query", "dns_answers", "Dns", "mx", "DnsRcode",
           "CLOSE", "Session", "once", "Peer", "Sink", "Blackhole", "Stack", "Postfix",
           "children_of", "pid_alive", "wait_smtp", "port_open"]
