"""
benchlib: shared pieces of tandem's benchmarks (bench/smtp-accept, bench/idle-conns,
bench/drain, and under bench/maillib.py bench/imap and bench/pop3).

Everything here runs on loopback only. Each server under test gets a fresh private
instance in its own temporary directory:

  PostfixInstance  a private Postfix (tests/e2e/harness.py's Postfix: own
                   config_directory, queue_directory and data_directory)
                   configured as a backup MX for example.test whose
                   primary, [127.0.0.42]:2599, never answers, so mail stays queued.
  TandemInstance   `tandem -c CONF serve` in the backup role for example.test, with
                   the same unreachable primary and a DNS resolver on loopback where
                   nothing listens, so it never talks to the outside either.
  SinkInstance     Postfix's smtp-sink on a loopback address, counting the
                   messages it takes: the "primary" a backup drains into
                   (bench/drain). Both instances above take primary=(addr, port)
                   to point their relay at it.

For the reports: tree_pids and pss_sum (the Pss of a process tree),
OtherLoad (CPU others took while a server was measured), cpu_model.

The instances register themselves in LIVE; cleanup() (installed by install_cleanup) stops
whatever is still running and removes the temporary directories on any exit.
Only processes started here are ever signalled, always by pid.
"""

import atexit
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The shared harness of the e2e tests (tests/e2e/harness.py): one Postfix setup.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402

# Addresses and names shared by the benchmarks. All in 127.0.0.0/8.
RELAY_DOMAIN = "example.test"
SENDER = "sender@example.org"
RECIPIENT = "rcpt@" + RELAY_DOMAIN
HELO = "mx2.example.test"
TANDEM_ADDR = "127.0.0.40"
POSTFIX_ADDR = "127.0.0.41"
DEAD_PRIMARY = ("127.0.0.42", 2599)     # nothing listens here: the primary is "down"
DEAD_RESOLVER = ("127.0.0.43", 5353)    # nothing listens here: DNS never leaves loopback

LIVE = []           # instances still running or with a directory on disk
VERBOSE = False
KEEP = False        # keep the temporary directories (logs, queues) for inspection


def log(msg):
    """Progress messages go to stderr so stdout holds only the results."""
    print(msg, file=sys.stderr, flush=True)


def vlog(msg):
    if VERBOSE:
        log(msg)


def die(msg, code=1):
    log("error: " + msg)
    sys.exit(code)


def require_loopback(addr):
    """Refuse any address outside 127.0.0.0/8: these benchmarks never leave the host."""
    if not addr.startswith("127."):
        die("refusing non-loopback address %s" % addr)


def wait_port(addr, port, timeout, proc_alive=None, interval=0.1):
    """Poll (every interval seconds) until addr:port accepts a TCP connection
    and sends a 220 greeting. Bounded by timeout seconds; proc_alive()
    returning False stops early."""
    require_loopback(addr)
    return harness.wait_smtp(addr, port, timeout, alive=proc_alive, interval=interval)


def ensure_port_free(addr, port):
    """Die if something already holds addr:port: the benchmark would measure
    that other server instead of the one it starts (harness.check_free)."""
    require_loopback(addr)
    try:
        harness.check_free(addr, port)
    except harness.AddressInUse as e:
        die("%s; stop that server or pick another --port" % e)
    try:   # a listener on the wildcard address would answer too
        with socket.create_connection((addr, port), timeout=2):
            pass
    except OSError:
        return
    die("%s:%d is already in use by another process (it answers); stop that server or "
        "pick another --port" % (addr, port))


pid_alive = harness.pid_alive
children_of = harness.children_of   # direct children, from /proc


def terminate(proc, timeout):
    """SIGTERM a Popen still running, wait up to timeout, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def proc_status_kib(pid, field="VmRSS"):
    """A 'kB' field of /proc/PID/status (VmRSS by default), in KiB; None if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_pss_kib(pid, field="Pss"):
    """A field of pid's /proc/PID/smaps_rollup in KiB: "Pss", the
    proportional set size (shared pages divided among sharers), or one of its
    parts ("Pss_Anon", "Pss_File", "Pss_Shmem"); None if pid is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_snapshot():
    """(monotonic time, CPU seconds the machine spent in processes (user, nice,
    system), {pid: (ppid, CPU seconds of the process plus those of its children
    it has reaped)} of every process, CPU seconds stolen by the hypervisor). Two snapshots give how much CPU other
    work on the machine took meanwhile (other_cpu_seconds, steal_seconds)."""
    hz = os.sysconf("SC_CLK_TCK")
    t = time.monotonic()
    busy = steal = 0.0
    try:
        with open("/proc/stat") as f:
            cols = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...; interrupt time
        # (mostly our own loopback traffic) is charged to no process: left out
        busy = (cols[0] + cols[1] + cols[2]) / hz
        steal = cols[7] / hz
    except (OSError, ValueError, IndexError):
        pass
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            # utime stime cutime cstime: a Postfix smtp process that exits
            # after max_use deliveries is charged to master once reaped
            procs[int(name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]) / hz)
        except (OSError, IndexError, ValueError):
            continue
    return t, busy, procs, steal


def steal_seconds(before, after):
    """CPU seconds the hypervisor gave to others between two cpu_snapshot()s."""
    return max(0.0, after[3] - before[3])


def tree_cpu_seconds(before, after, roots):
    """CPU seconds the processes in roots and their descendants used between
    two cpu_snapshot()s. A descendant that exited in between is counted
    through its parent (reaped children's time), with its whole life (a
    slight overcount)."""
    ours = set(roots)
    for snap in (before[2], after[2]):
        kids = {}
        for pid, (ppid, _) in snap.items():
            kids.setdefault(ppid, []).append(pid)
        todo = list(ours)
        while todo:
            for k in kids.get(todo.pop(), ()):
                if k not in ours:
                    ours.add(k)
                    todo.append(k)
    used = 0.0
    for pid in ours:
        if pid in after[2]:
            used += after[2][pid][1] - (before[2][pid][1] if pid in before[2] else 0.0)
    return used


def other_cpu_seconds(before, after, roots):
    """CPU seconds between two cpu_snapshot()s that neither the processes in
    roots nor their descendants nor this process (and its children) used:
    the work of others on the machine."""
    used = tree_cpu_seconds(before, after, list(roots) + [os.getpid()])
    return max(0.0, (after[1] - before[1]) - used)


def tree_pids(root):
    """root and all its descendants, from /proc."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


_UNPINNED = None    # this process's CPUs before pin_apart


def pin_apart(pids):
    """The client (this process) on the last CPU, every thread of pids on
    the others: whether a server shares a core with its client moves an
    IMAP round trip by about 40 % here (cross-core wakeups are cheaper than
    taking turns on one core), and the scheduler decides that anew for each
    session, so unpinned runs of the same server differ by that much.
    Processes the servers start later inherit it (Dovecot's master forks
    its imap processes). Returns False (nothing pinned) on one CPU."""
    global _UNPINNED
    if _UNPINNED is None:
        _UNPINNED = os.sched_getaffinity(0)
    cpus = sorted(_UNPINNED)
    if len(cpus) < 2:
        return False
    os.sched_setaffinity(0, {cpus[-1]})
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), set(cpus[:-1]))
            except OSError:
                pass    # the thread ended meanwhile
    return True


def unpin():
    """This process back on the CPUs it had before pin_apart."""
    if _UNPINNED is not None:
        os.sched_setaffinity(0, _UNPINNED)


def pss_sum(pids, field="Pss"):
    """Sum of a Pss field (KiB, see proc_pss_kib) over pids; processes that
    vanished count nothing."""
    return sum(proc_pss_kib(p, field) or 0 for p in pids)


class OtherLoad:
    """CPU that other processes on the machine took while a server was
    measured (from /proc, as bench/drain reports it): with it the reader
    knows how quiet the machine was."""

    def __init__(self):
        self.spans = []     # (name, seconds, other CPU seconds, stolen seconds)

    def start(self):
        self.t0 = cpu_snapshot()

    def stop(self, name, roots):
        t1 = cpu_snapshot()
        secs = t1[0] - self.t0[0]
        self.spans.append((name, secs, other_cpu_seconds(self.t0, t1, roots),
                           steal_seconds(self.t0, t1)))

    def lines(self):
        out = []
        for name, secs, other, steal in self.spans:
            if secs > 0:
                out.append("load while measuring %s: other processes %.0f %% of one CPU, "
                           "stolen %.0f %% (over %.0f s)%s" % (
                               name, 100 * other / secs, 100 * steal / secs, secs,
                               "  (BUSY MACHINE: figures are noisy)"
                               if other / secs > 0.25 else ""))
        return out


def cpu_model():
    """The CPU's model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def count_files(dirs):
    n = 0
    for d in dirs:
        for _root, _dirs, files in os.walk(d):
            n += len(files)
    return n


def settle_count(counter, expected, timeout=30.0):
    """Count the queue until it reads expected twice in a row, or the same number
    four times in a row, 0.5 s apart (queue managers move files between
    directories while we count). Bounded by timeout seconds."""
    deadline = time.monotonic() + timeout
    seen = [counter()]
    while time.monotonic() < deadline:
        if seen[-2:] == [expected, expected]:
            break
        if len(seen) >= 4 and len(set(seen[-4:])) == 1:
            break
        time.sleep(0.5)
        seen.append(counter())
    return seen[-1]


def machine_info(path):
    """nproc, kernel and the filesystem holding path (type and device, from df -T)."""
    fs = "unknown"
    try:
        out = subprocess.run(["df", "-T", path], capture_output=True, text=True,
                             timeout=10).stdout.splitlines()
        if len(out) >= 2:
            cols = out[1].split()
            fs = "%s (%s, mounted on %s)" % (cols[1], cols[0], cols[-1])
    except (OSError, subprocess.SubprocessError):
        pass
    return "nproc %d, kernel %s, temp dir %s on %s" % (
        os.cpu_count() or 0, platform.release(), path, fs)


class Workdir:
    """A temporary directory for one server instance, removed by cleanup()
    (path: one made already, e.g. by harness.Postfix)."""

    def __init__(self, base, prefix="tmp-", path=None):
        if path is None:
            os.makedirs(base, exist_ok=True)
            path = tempfile.mkdtemp(prefix=prefix, dir=base)
        self.path = path
        # Postfix daemons run as user postfix and must reach their directories.
        os.chmod(self.path, 0o755)

    def remove(self):
        """Removal waits for the end of the whole benchmark: deleting thousands
        of queue files makes ext4 slow at creating new inodes for a while
        (it avoids reusing recently deleted ones), which would penalise
        whichever server runs next."""
        if KEEP and self.path:
            log("kept %s" % self.path)
        elif self.path and os.path.isdir(self.path):
            TO_REMOVE.append(self.path)
        self.path = None


TO_REMOVE = []
STAMP = ".tandem-bench-removed"   # in the base directory: when we last removed
SETTLE_SECS = 90


def remove_workdirs():
    bases = set()
    while TO_REMOVE:
        path = TO_REMOVE.pop()
        shutil.rmtree(path, ignore_errors=True)
        bases.add(os.path.dirname(path))
    for base in bases:
        try:
            with open(os.path.join(base, STAMP), "w") as f:
                f.write("%d\n" % time.time())
        except OSError:
            pass


def settle_filesystem(base):
    """ext4 without a journal skips inodes deleted in the last 60 s (longer while
    their inode table block is dirty) when it allocates a new one, scanning
    past each of them: right after the previous benchmark removed its queues,
    every file creation costs more, and by how much depends on how long ago.
    Flush, and wait until that window has passed, so each run starts alike."""
    try:
        with open(os.path.join(base, STAMP)) as f:
            removed = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    wait = removed + SETTLE_SECS - time.time()
    if wait > 0:
        log("waiting %.0f s: the last benchmark deleted its queues here %.0f s ago, "
            "and ext4 creates files slowly for a while after many deletions"
            % (wait, time.time() - removed))
        os.sync()
        time.sleep(wait)


class PostfixInstance:
    """A private Postfix acting as backup MX for example.test on POSTFIX_ADDR:port:
    the shared harness.Postfix (tests/e2e/harness.py, the one Postfix setup of
    the e2e scenarios and the benchmarks) with the backup-MX settings below."""

    def __init__(self, base, port=2525, process_limit=100, recipients=(RECIPIENT,),
                 primary=DEAD_PRIMARY, extra_main_cf=()):
        require_loopback(POSTFIX_ADDR)
        require_loopback(primary[0])
        self.port = port
        self.process_limit = process_limit
        self.recipients = recipients
        self.primary = primary
        self.extra_main_cf = list(extra_main_cf)   # "key = value" lines, appended
        self.master_pid = None
        self.name = "postfix"
        # The backup-MX part of main.cf: relay for example.test only, to recipients
        # in relay_recipient_maps, towards the primary (by default one that never
        # answers; bench/drain passes an smtp-sink that it starts later).
        # default_transport=error makes sure nothing (not even a bounce) ever
        # goes anywhere else. Postfix's default of fsyncing the queue file before
        # the 250 reply is kept.
        try:
            self.pf = harness.Postfix(
                POSTFIX_ADDR, port, hostname="mx2p." + RELAY_DOMAIN, domain=RELAY_DOMAIN,
                base=base, prefix="pf-", smtpd_max=str(process_limit), recipients=recipients,
                extra_main_cf=self.extra_main_cf, comment="bench/benchlib.py",
                main={
                    "myorigin": "$myhostname",
                    "relay_domains": RELAY_DOMAIN,
                    "relay_transport": "smtp:[%s]:%d" % primary,
                    "default_transport": "error:benchmark instance sends no mail",
                    "smtpd_relay_restrictions": "permit_auth_destination, reject",
                    "smtpd_recipient_restrictions": "permit_auth_destination, reject",
                    "smtpd_client_connection_count_limit": "0",
                    "smtpd_client_connection_rate_limit": "0",
                    "smtpd_client_message_rate_limit": "0",
                    "default_process_limit": str(process_limit),
                })
        except harness.HarnessError as e:
            die("cannot set up the Postfix instance: %s" % e)
        harness.lib.unregister(self.pf)    # LIVE and cleanup() below look after it
        self.wd = Workdir(base, path=self.pf.dir)
        self.etc, self.spool, self.maillog = self.pf.etc, self.pf.spool, self.pf.maillog
        LIVE.append(self)

    def start(self):
        ensure_port_free(POSTFIX_ADDR, self.port)
        try:
            self.pf.start()
        except harness.HarnessError as e:
            die("cannot start the Postfix instance in %s: %s" % (self.wd.path, e))
        self.master_pid = self.pf.master_pid
        vlog("postfix master pid %d on %s:%d, dir %s" % (
            self.master_pid, POSTFIX_ADDR, self.port, self.wd.path))

    def address(self):
        return "%s:%d" % (POSTFIX_ADDR, self.port)

    def pids(self):
        """master and its children (the smtpd, cleanup, qmgr... processes)."""
        return self.pf.live_pids()

    def queued(self):
        """Messages in the queue: one queue file each, wherever qmgr has put it."""
        return sum(self.pf.queue_counts().values())

    def queue_detail(self):
        return " ".join("%s=%d" % (d, count_files([os.path.join(self.spool, d)]))
                        for d in ("incoming", "active", "deferred", "hold", "corrupt"))

    def queue_counts(self):
        """Files per queue directory, as a dict."""
        return self.pf.queue_counts()

    def flush_queue(self, timeout=60):
        """`postqueue -c DIR -f`: qmgr forgets its dead destinations and attempts
        every deferred message now. Returns (exit status, output)."""
        return self.pf.flush_queue(timeout)

    def stop(self):
        """postfix stop, then wait (bounded) for master and its children to exit;
        any straggler of this instance gets SIGKILL by pid. Then remove the dir
        (at the end of the whole benchmark: Workdir.remove)."""
        if self.wd.path is None:
            return
        self.pf.stop(remove=False)
        self.master_pid = None
        self.wd.remove()
        if self in LIVE:
            LIVE.remove(self)


class TandemInstance:
    """`tandem -c CONF serve` as a backup MX for example.test on TANDEM_ADDR:port."""

    def __init__(self, binary, base, port=2525, max_connections=2000,
                 recipients=(RECIPIENT,), primary=DEAD_PRIMARY, probe_interval=None):
        require_loopback(TANDEM_ADDR)
        require_loopback(primary[0])
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            die("tandem binary %s not found or not executable (run make first)" % binary)
        self.port = port
        self.max_connections = max_connections
        self.recipients = recipients
        self.primary = primary
        self.probe_interval = probe_interval   # e.g. "1s"; None: tandem's default
        self.wd = Workdir(base, "tandem-")
        self.data = os.path.join(self.wd.path, "data")
        self.conf = os.path.join(self.wd.path, "tandem.conf")
        self.logfile = os.path.join(self.wd.path, "tandem.log")
        self.proc = None
        self.pid = None
        self.name = "tandem"
        self.recipients_loaded = False
        LIVE.append(self)

    def _write_config(self):
        os.makedirs(self.data)
        # The primary is down (nothing listens on DEAD_PRIMARY, or on the address
        # of bench/drain's smtp-sink until it starts it) and DNS goes to a
        # loopback address where nothing listens, so mail stays queued and no
        # packet ever leaves the machine.
        conf = """\
# Benchmark instance written by bench/benchlib.py; loopback only.
[server]
hostname = {helo}
role = backup
data_dir = {data}
log_file = {logfile}
# the load comes from one address: no per-client limit
max_connections_per_client = 0
max_connections_per_net = 0

[listen]
smtp = {addr}:{port}

[dns]
resolver = {ra}@{rp}

[relay]
domains = {dom}
primary = {pa}:{pp}
{probe}
[smtp]
max_connections = {maxc}
""".format(helo=HELO, data=self.data, logfile=self.logfile, addr=TANDEM_ADDR,
           port=self.port, ra=DEAD_RESOLVER[0], rp=DEAD_RESOLVER[1], dom=RELAY_DOMAIN,
           pa=self.primary[0], pp=self.primary[1], maxc=self.max_connections,
           probe=("probe_interval = %s\n" % self.probe_interval
                  if self.probe_interval else ""))
        with open(self.conf, "w") as f:
            f.write(conf)

    def _load_recipients(self):
        """Tell the backup which recipients are valid, as relay_recipient_maps does
        for Postfix. Best effort: a tandem without the command accepts or rejects
        on its own terms, which the smoke test before timing will show."""
        path = os.path.join(self.wd.path, "recipients")
        with open(path, "w") as f:
            for r in self.recipients:
                f.write(r + "\n")
        try:
            r = subprocess.run([self.binary, "-c", self.conf, "recipients", "load",
                                RELAY_DOMAIN, path], capture_output=True, text=True,
                               timeout=60)
            self.recipients_loaded = r.returncode == 0
            if r.returncode != 0:
                vlog("tandem recipients load failed (exit %d): %s" % (
                    r.returncode, (r.stdout + r.stderr).strip()))
        except (OSError, subprocess.SubprocessError) as e:
            vlog("tandem recipients load failed: %s" % e)

    def start(self):
        ensure_port_free(TANDEM_ADDR, self.port)
        self._write_config()
        # A config tandem rejects is reported with tandem's own words.
        try:
            r = subprocess.run([self.binary, "-c", self.conf, "check-config"],
                               capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            die("tandem check-config: %s" % e)
        if r.returncode != 0:
            die("tandem check-config rejects %s (exit %d):\n%s" % (
                self.conf, r.returncode, (r.stdout + r.stderr).strip()))
        self._load_recipients()
        out = open(self.logfile + ".stderr", "w")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "serve"],
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.wd.path)
        out.close()
        self.pid = self.proc.pid
        if not wait_port(TANDEM_ADDR, self.port, 30, lambda: self.proc.poll() is None):
            self._show_log()
            die("tandem does not answer on %s:%d (exit status %s)" % (
                TANDEM_ADDR, self.port, self.proc.poll()))
        vlog("tandem pid %d on %s:%d, dir %s" % (self.pid, TANDEM_ADDR, self.port,
                                                 self.wd.path))

    def _show_log(self):
        for p in (self.logfile + ".stderr", self.logfile):
            try:
                with open(p) as f:
                    tail = f.readlines()[-15:]
                log("last lines of %s:\n%s" % (p, "".join(tail)))
            except OSError:
                pass

    def address(self):
        return "%s:%d" % (TANDEM_ADDR, self.port)

    def pids(self):
        return [self.pid] if self.proc is not None and self.proc.poll() is None else []

    def queued_files(self):
        """One file per message in active/, deferred/ or hold/ (meta/ holds only
        per-message state and tmp/ uncommitted partials: not counted)."""
        q = os.path.join(self.data, "queue")
        return count_files([os.path.join(q, d) for d in ("active", "deferred", "hold")])

    def queued_cli(self):
        """Messages per `tandem queue list --json`; None when that does not work."""
        try:
            r = subprocess.run([self.binary, "-c", self.conf, "queue", "list", "--json"],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                return None
            doc = json.loads(r.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        if isinstance(doc, list):
            return len(doc)
        if isinstance(doc, dict):
            for v in doc.values():
                if isinstance(v, list):
                    return len(v)
        return None

    def queued(self):
        n = self.queued_cli()
        return self.queued_files() if n is None else n

    def flush_queue(self, timeout=60):
        """`tandem -c CONF queue flush`: forgets down marks and attempts every
        queued message now (nudges the server). Returns (exit status, output)."""
        r = subprocess.run([self.binary, "-c", self.conf, "queue", "flush"],
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()

    def queue_detail(self):
        q = os.path.join(self.data, "queue")
        parts = []
        if os.path.isdir(q):
            for d in sorted(os.listdir(q)):
                if os.path.isdir(os.path.join(q, d)):
                    parts.append("%s=%d" % (d, count_files([os.path.join(q, d)])))
        parts.append("queue-list=%s" % self.queued_cli())
        return " ".join(parts)

    def stop(self):
        """SIGTERM by pid, bounded wait, then SIGKILL; then remove the dir."""
        terminate(self.proc, 15)
        self.proc = None
        if self.wd.path is not None:
            self.wd.remove()
        if self in LIVE:
            LIVE.remove(self)


class SinkInstance:
    """Postfix's smtp-sink on addr:port: takes every message with 250 and throws
    it away, the stand-in for a primary that is back (bench/drain). Started with
    -c, it prints its running counters ("sess=S quit=Q mesg=M", CR-separated)
    after every session end, QUIT and end of DATA; a reader thread timestamps
    (monotonic clock) every new message count, so arrival times cost smtp-sink
    one small write and nothing else (no dump files, no disk).
    -m raises its limit of simultaneous connections from 256 to 1000 and the
    listen backlog is 1000, so neither limits a client with 20 sessions."""

    SMTP_SINK = "/usr/sbin/smtp-sink"

    def __init__(self, addr, port, max_conns=1000, backlog=1000, user="nobody"):
        require_loopback(addr)
        if not os.access(self.SMTP_SINK, os.X_OK):
            die("%s not found: install the Debian package postfix" % self.SMTP_SINK)
        self.addr = addr
        self.port = port
        self.max_conns = max_conns
        self.backlog = backlog
        self.user = user          # smtp-sink refuses to run as root without -u
        self.proc = None
        self.name = "smtp-sink"
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.mesg = 0             # messages taken so far
        self.sess = 0             # sessions ended so far
        self.arrivals = []        # monotonic time of each message, in order
        self.t_spawn = None
        self.errf = None
        self.eof = False
        self.reader = None
        LIVE.append(self)

    def start(self):
        """Spawn smtp-sink and return the monotonic time just before the spawn
        (the moment the primary "returns"); then wait, bounded, until it answers
        (that probe connection counts a session, never a message)."""
        ensure_port_free(self.addr, self.port)
        argv = [self.SMTP_SINK, "-c", "-u", self.user, "-m", str(self.max_conns),
                "%s:%d" % (self.addr, self.port), str(self.backlog)]
        vlog("  $ " + " ".join(argv))
        self.t_spawn = time.monotonic()
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.errf)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not wait_port(self.addr, self.port, 10, lambda: self.proc.poll() is None,
                         interval=0.005):
            err = b""
            try:
                self.errf.seek(0)
                err = self.errf.read(2000)
            except OSError:
                pass
            die("smtp-sink does not answer on %s:%d (exit %s) %s" % (
                self.addr, self.port, self.proc.poll(), err.decode(errors="replace")))
        return self.t_spawn

    def _read(self):
        fd = self.proc.stdout.fileno()
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if not chunk:
                break
            pending += chunk
            *records, pending = pending.split(b"\r")
            mesg = sess = None
            for rec in records:
                for field in rec.split():
                    k, _, v = field.partition(b"=")
                    if k == b"mesg" and v.isdigit():
                        mesg = int(v)
                    elif k == b"sess" and v.isdigit():
                        sess = int(v)
            with self.cond:
                if sess is not None:
                    self.sess = sess
                if mesg is not None and mesg > self.mesg:
                    # one timestamp per message; messages counted within one
                    # read share it (reads are far apart only when idle)
                    self.arrivals.extend([now] * (mesg - self.mesg))
                    self.mesg = mesg
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_count(self, n, deadline):
        """Wait until n messages arrived or time.monotonic() passes deadline.
        Returns the count reached."""
        with self.cond:
            while self.mesg < n and not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 1.0))
            return self.mesg

    def snapshot(self):
        """(messages, sessions, arrival times) so far."""
        with self.cond:
            return self.mesg, self.sess, list(self.arrivals)

    def pids(self):
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def stop(self):
        """SIGTERM by pid, bounded wait, then SIGKILL."""
        terminate(self.proc, 10)
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.errf is not None:
            self.errf.close()
            self.errf = None
        self.proc = None
        if self in LIVE:
            LIVE.remove(self)


class TandemPrimary:
    """A real tandem primary on addr:port delivering example.test's mail into
    Maildir (fsync'd, as always): bench/drain --primary tandem. Same interface
    as SinkInstance; arrivals are files appearing in the recipient's new/,
    polled every 5 ms and timestamped when seen; sessions are the primary's
    event=connect log lines."""

    def __init__(self, binary, base, addr, port):
        require_loopback(addr)
        self.binary = os.path.abspath(binary)
        self.addr = addr
        self.port = port
        self.name = "tandem primary"
        self.wd = Workdir(base, "tandem-primary-")
        self.data = os.path.join(self.wd.path, "data")
        self.conf = os.path.join(self.wd.path, "tandem.conf")
        self.logfile = os.path.join(self.wd.path, "tandem.log")
        local, domain = RECIPIENT.split("@")
        self.newdir = os.path.join(self.data, "mail", domain, local, "new")
        self.proc = None
        self.lock = threading.Lock()
        self.seen = set()
        self.arrivals = []
        self.poller = None
        self.stopping = False
        os.makedirs(self.data)
        with open(self.conf, "w") as f:
            f.write("""\
# Benchmark instance written by bench/benchlib.py; loopback only.
[server]
hostname = mx1.example.test
role = primary
data_dir = {data}
log_file = {log}
max_connections_per_client = 0
max_connections_per_net = 0

[listen]
smtp = {addr}:{port}

[dns]
resolver = {ra}@{rp}

[smtp]
max_connections = 2000
""".format(data=self.data, log=self.logfile, addr=addr, port=port, ra=DEAD_RESOLVER[0],
           rp=DEAD_RESOLVER[1]))
        for argv in (["domain", "add", domain], ["user", "add", RECIPIENT]):
            subprocess.run([self.binary, "-c", self.conf] + argv, input=b"secret\n",
                           check=True, capture_output=True, timeout=60)
        LIVE.append(self)

    def start(self):
        ensure_port_free(self.addr, self.port)
        vlog("  $ %s -c %s serve" % (self.binary, self.conf))
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "serve"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()
        if not wait_port(self.addr, self.port, 20, lambda: self.proc.poll() is None,
                         interval=0.005):
            die("the tandem primary does not answer on %s:%d" % (self.addr, self.port))
        return t0

    def _poll(self):
        while not self.stopping:
            try:
                names = os.listdir(self.newdir)
            except FileNotFoundError:
                names = []
            now = time.monotonic()
            with self.lock:
                for n in names:
                    if n not in self.seen:
                        self.seen.add(n)
                        self.arrivals.append(now)
            time.sleep(0.005)

    def wait_count(self, n, deadline):
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrivals) >= n:
                    break
            time.sleep(0.01)
        with self.lock:
            return len(self.arrivals)

    def snapshot(self):
        try:
            with open(self.logfile, errors="replace") as f:
                sess = f.read().count("event=connect ")
        except OSError:
            sess = 0
        with self.lock:
            return len(self.arrivals), sess, list(self.arrivals)

    def pids(self):
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def stop(self):
        terminate(self.proc, 30)
        self.proc = None
        self.stopping = True
        if self.poller is not None:
            self.poller.join(timeout=5)
            self.poller = None
        if not KEEP:
            self.wd.remove()
        if self in LIVE:
            LIVE.remove(self)


def cleanup():
    for inst in list(LIVE):
        try:
            inst.stop()
        except Exception as e:  # keep cleaning up the others
            log("cleanup of %s failed: %s" % (inst.name, e))
    remove_workdirs()


def install_cleanup():
    """Stop servers and remove temp dirs on normal exit, errors and signals."""
    atexit.register(cleanup)

    def on_signal(signum, _frame):
        log("interrupted by signal %d, cleaning up" % signum)
        sys.exit(128 + signum)   # raises SystemExit, so atexit handlers run

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


def require_root():
    if os.geteuid() != 0:
        die("run as root: Postfix instances and tandem's serve need it")
