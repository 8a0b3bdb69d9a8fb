"""Helpers for tandem's end-to-end scenarios.

A scenario starts real `tandem` processes on loopback addresses, drives them
with software nobody here wrote (smtplib, swaks, raw sockets), and looks at
what lands on disk. Nothing here talks to any address outside 127.0.0.0/8.
"""
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("TANDEM_BIN", "build/tandem")
ASAN = os.environ.get("TANDEM_ASAN") == "1"
# TANDEM_VALGRIND=1: every server runs under valgrind; an invalid access or a
# definite leak makes it exit 97, which stop() reports.
VALGRIND = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--error-exitcode=97"] if os.environ.get("TANDEM_VALGRIND") == "1" else []
KEEP = os.environ.get("TANDEM_KEEP") == "1"
# Second octet for every server address: lets two runs share a machine
# (TANDEM_E2E_NET=7 puts 127.0.0.10 at 127.7.0.10).
NET = os.environ.get("TANDEM_E2E_NET")
DNS_PORT = 5353 + int(NET or 0)


def addr(ip):
    if NET is None:
        return ip
    parts = ip.split(".")
    return "127.%s.%s.%s" % (NET, parts[2], parts[3])

QUEUED_RE = re.compile(r" ([0-9A-F]{16}): event=queued ")

_live = []      # every Server not yet cleaned up
_others = []    # anything else a scenario started (harness.py): has stop()


def register(obj):
    """Have cleanup_all() stop obj (anything with a stop() method) after the
    scenario, whatever happens; obj.stop() should call unregister(obj)."""
    if obj not in _others:
        _others.append(obj)


def unregister(obj):
    if obj in _others:
        _others.remove(obj)


class AddressInUse(AssertionError):
    pass


def check_free(ip, port, udp=False):
    """Raise AddressInUse, saying so, when another process already holds
    ip:port: a server that cannot bind, or a scenario that talks to a
    stranger, would fail in a way that looks unrelated."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    try:
        if not udp:
            # a connection of ours still in TIME_WAIT is no other process
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise AddressInUse("%s:%d%s is already in use by another process" % (
                ip, port, "/udp" if udp else "")) from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise AddressInUse("%s is not a local address here (is lo up?)" % ip) from None
        raise
    finally:
        s.close()


def wait_for(pred, timeout=10.0, step=0.05, what="condition"):
    """Poll pred() until it is true; bounded in time."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def rss_kib(pid):
    """The resident set size of pid in KiB (VmRSS of /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.recv(1)
            return True
    except OSError:
        return False


class Server:
    """One tandem instance with its own data_dir and config."""

    def __init__(self, role="primary", ip="127.0.0.10", port=2525, hostname=None,
                 relay_domains=None, extra=None, data_dir=None):
        self.role = role
        self.ip = addr(ip)
        self.port = port
        self.hostname = hostname or ("mx1.example.test" if role == "primary" else "mx2.example.test")
        self.tmp = tempfile.mkdtemp(prefix="tandem-e2e-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.conf = os.path.join(self.tmp, "tandem.conf")
        self.logfile = os.path.join(self.tmp, "serve.log")
        self.relay_domains = relay_domains
        self.extra = extra or {}
        self.proc = None
        self.write_config()
        _live.append(self)

    def write_config(self):
        sections = {
            "server": {"hostname": self.hostname, "role": self.role, "data_dir": self.data_dir},
            "listen": {"smtp": "%s:%d" % (self.ip, self.port)},
            # Never the system resolver: no test may query outside loopback.
            # Nothing answers here unless a scenario starts its own dnsmasq.
            "dns": {"resolver": "127.0.0.1@%d" % DNS_PORT},
        }
        if self.relay_domains:
            sections["relay"] = {"domains": ", ".join(self.relay_domains)}
        for sec, kv in self.extra.items():
            sections.setdefault(sec, {}).update(kv)
        with open(self.conf, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    def cli(self, *args, input=None, check=True):
        """Run `tandem -c CONF ARGS...`; returns CompletedProcess (text)."""
        p = subprocess.run([BIN, "-c", self.conf] + list(args), input=input,
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("tandem %s failed (%d): %s%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def start(self, wait=True):
        check_free(self.ip, self.port)
        self.logf = open(self.logfile, "ab")
        mark = len(self.log())   # look only at what this process writes
        self.proc = subprocess.Popen(VALGRIND + [BIN, "-c", self.conf, "serve"], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait:
            # Our own process must say it started: another server on the
            # same address would answer the port just as well.
            wait_for(lambda: self.proc.poll() is not None or "event=start " in self.log()[mark:],
                     timeout=20, what="tandem to start on %s:%d" % (self.ip, self.port))
            if self.proc.poll() is not None:
                raise AssertionError("tandem exited at start:\n" + self.log())
        return self

    def stop(self, timeout=30):
        """SIGTERM and wait; asserts a clean exit (and a clean sanitizer run)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("tandem did not stop on SIGTERM")
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        self.check_sanitizers()
        if rc != 0:
            raise AssertionError("tandem exited with %d:\n%s" % (rc, self.log()[-3000:]))

    def kill(self):
        """SIGKILL: the crash case."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.logf.close()
        self.proc = None

    def check_sanitizers(self):
        text = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                raise AssertionError("sanitizer report in server log:\n" + text[-5000:])

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def maildir(self, address, sub="new"):
        local, domain = address.split("@")
        d = os.path.join(self.data_dir, "mail", domain, local, sub)
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except FileNotFoundError:
            return []

    def messages(self, address):
        """Every message of the address's INBOX (new/ and cur/)."""
        out = []
        for p in self.maildir(address) + self.maildir(address, "cur"):
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def queue_files(self, state="active"):
        d = os.path.join(self.data_dir, "queue", state)
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []

    def queued(self):
        """The messages still to be delivered (active/ and deferred/)."""
        return self.queue_files("active") + self.queue_files("deferred")

    def settle(self, timeout=20):
        """Wait for the positive end of everything this server accepted:
        each message its log says it queued has been removed (delivered,
        bounced, forwarded) or parked (waiting for a destination that is
        down, deferred with a retry time, or held). Returns the log.

        Call it once the scenario has the replies it waits for (a message
        is logged as queued before its 250): after it, nothing accepted can
        still turn up in a mailbox, so what a test then finds absent is
        absent, with no sleep standing in for the proof."""
        def done():
            log = self.log()
            held = set(self.queue_files("hold"))
            for q in set(QUEUED_RE.findall(log)):
                if "%s: event=removed" % q in log or q in held:
                    continue
                if re.search(r"%s: event=(retry_at |outbound .*status=waiting)" % q, log):
                    continue
                return None
            return log or True
        return wait_for(done, timeout=timeout,
                        what="every message %s:%d queued to be removed or parked" % (
                            self.ip, self.port))

    def setup_domain(self, domain="example.test", users=("alice",), password="secret"):
        self.cli("domain", "add", domain)
        for u in users:
            self.cli("user", "add", "%s@%s" % (u, domain), input=password + "\n")

    def cleanup(self):
        if self.proc is not None:
            self.kill()
        if not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)


def cleanup_all():
    """Kill every server and remove its directory (unless TANDEM_KEEP=1),
    then stop whatever else was registered, newest first."""
    while _live:
        _live.pop().cleanup()
    while _others:
        obj = _others.pop()
        try:
            obj.stop()
        except Exception:  # noqa: B902 - clean up the rest whatever one says
            pass


class Conn:
    """A raw SMTP connection for tests that must control every byte."""

    def __init__(self, host, port, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def reply(self):
        """Read one complete (possibly multi-line) reply; returns (code, text)."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got %r" % (self.buf,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
