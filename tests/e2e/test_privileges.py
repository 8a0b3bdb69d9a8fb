"""Root and the service user: `[server] user` set, tandem started as root.

data_dir belongs to the service user, so whoever holds that account can put
symbolic links there and write any pid into tandem.pid. These scenarios play
that compromised user and check that root, restarting the server or running
the CLI, never writes through a planted link nor signals a planted pid; and
that mail root submits is the server's to deliver.

They need root (as CI runs them); as anyone else they only say so.
"""
import os
import pwd
import signal
import smtplib
import ssl
import subprocess
import sys

from lib import BIN, Server, wait_for

SERVICE_USER = "tandem-e2e"
IP = "127.0.14.10"
ALICE = "alice@example.test"


def service_user():
    """The test's service user, created once (idempotent, races tolerated)."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", SERVICE_USER], capture_output=True, text=True)
        if r.returncode not in (0, 9):   # 9: created meanwhile by another run
            raise AssertionError("useradd %s: %s" % (SERVICE_USER, r.stderr))
        return pwd.getpwnam(SERVICE_USER)


def need_root():
    if os.geteuid() != 0:
        print("  (skipped: needs root)")
        return False
    service_user()
    return True


def as_user(*argv, **kw):
    """Run argv as the service user: the attacker's account."""
    pw = service_user()
    cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups",
           "--"] + list(argv)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True, **kw)


def service_server():
    s = Server(role="primary", ip=IP, extra={"server": {"user": SERVICE_USER}})
    os.chmod(s.tmp, 0o755)   # the service user must reach data_dir inside it
    return s


def root_file(s, name, text="precious root data\n"):
    path = os.path.join(s.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def untouched(path, text="precious root data\n"):
    st = os.stat(path)
    with open(path) as f:
        return f.read() == text and st.st_uid == 0 and (st.st_mode & 0o777) == 0o644


def start_refused(s):
    """Start as root and expect a refusal; returns the log."""
    mark = len(s.log())
    s.start(wait=False)
    wait_for(lambda: s.proc.poll() is not None or "event=start " in s.log()[mark:],
             timeout=20, what="tandem to refuse or start")
    log = s.log()[mark:]
    assert "event=start " not in log, "started:\n" + log
    assert s.proc.wait() != 0, log
    s.proc = None
    s.logf.close()
    return log


def fresh(s):
    """A first start and stop: data_dir, queue/ and tls/ exist, as the user."""
    s.setup_domain(users=("alice", "bob"))
    s.start()
    s.stop()


def test_start_gives_the_service_user_only_what_tandem_creates():
    if not need_root():
        return
    pw = service_user()
    s = service_server()
    s.setup_domain(users=("alice",))
    # The directory commands run by root write as the server's user: a
    # directory.db owned by root would be one the server cannot open.
    assert os.stat(os.path.join(s.data_dir, "directory.db")).st_uid == pw.pw_uid
    s.start()
    s.stop()
    for rel in ("", "queue", "queue/active", "queue/hold", "tls", "tls/key.pem",
                "tls/cert.pem", "tandem.pid", "directory.db"):
        st = os.lstat(os.path.join(s.data_dir, rel))
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), rel
    # No walk of the mailboxes at each start: a file there stays as it is.
    box = os.path.join(s.data_dir, "mail", "example.test", "alice")
    os.makedirs(box, exist_ok=True)
    mine = os.path.join(box, "left-by-root")
    open(mine, "w").close()
    s.start()
    s.stop()
    assert os.stat(mine).st_uid == 0


def test_dkim_keys_belong_to_the_service_user():
    """Keys root made before [server] user was set are given to the user at
    start (the server signs with them); a domain added afterwards gets its
    key written as the user."""
    if not need_root():
        return
    pw = service_user()
    s = Server(role="primary", ip=IP)
    os.chmod(s.tmp, 0o755)
    s.cli("domain", "add", "example.test")
    kdir = os.path.join(s.data_dir, "dkim", "example.test")
    names = os.listdir(kdir)
    assert "selectors" in names and any(n.endswith(".key") for n in names), names
    assert all(os.stat(os.path.join(kdir, n)).st_uid == 0 for n in names)
    s.extra.setdefault("server", {})["user"] = SERVICE_USER
    s.write_config()
    s.start()
    s.stop()
    for rel in ["dkim", "dkim/example.test"] + ["dkim/example.test/" + n for n in names]:
        st = os.lstat(os.path.join(s.data_dir, rel))
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), rel
        if rel.endswith(".key"):
            assert st.st_mode & 0o777 == 0o600, rel
    s.cli("domain", "add", "other.test")
    odir = os.path.join(s.data_dir, "dkim", "other.test")
    assert all(os.stat(os.path.join(odir, n)).st_uid == pw.pw_uid for n in os.listdir(odir))
    assert s.cli("dkim", "show", "other.test").stdout.startswith("t")


def test_planted_pid_file_link_is_refused():
    if not need_root():
        return
    s = service_server()
    fresh(s)
    victim = root_file(s, "victim-pid")
    pidfile = os.path.join(s.data_dir, "tandem.pid")
    as_user("ln", "-sfn", victim, pidfile)
    log = start_refused(s)
    assert "tandem.pid is a symbolic link" in log, log
    assert untouched(victim)
    # Once the link is gone the server starts again.
    os.unlink(pidfile)
    s.start()
    s.stop()
    assert untouched(victim)


def test_planted_tls_temp_links_are_not_followed():
    if not need_root():
        return
    pw = service_user()
    s = service_server()
    fresh(s)
    tls = os.path.join(s.data_dir, "tls")
    victim_key, victim_cert = root_file(s, "victim-key"), root_file(s, "victim-cert")
    # Make the next start generate a new pair, with the temp names it
    # writes first pointing at root's files.
    as_user("rm", "-f", os.path.join(tls, "key.pem"), os.path.join(tls, "cert.pem"))
    as_user("ln", "-s", victim_key, os.path.join(tls, "key.pem.tmp"))
    as_user("ln", "-s", victim_cert, os.path.join(tls, "cert.pem.tmp"))
    s.start()
    assert untouched(victim_key) and untouched(victim_cert)
    for name in ("key.pem", "cert.pem"):
        st = os.lstat(os.path.join(tls, name))
        assert st.st_uid == pw.pw_uid and os.path.isfile(os.path.join(tls, name)), name
        assert not os.path.islink(os.path.join(tls, name)), name
    assert os.stat(os.path.join(tls, "key.pem")).st_mode & 0o077 == 0
    # ...and the pair it generated is the one the server offers.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(s.ip, s.port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.starttls(context=ctx)[0] == 220
        c.ehlo("client.test")
        with open(os.path.join(tls, "cert.pem")) as f:
            mine = ssl.PEM_cert_to_DER_cert(f.read())
        assert c.sock.getpeercert(binary_form=True) == mine
    s.stop()


def test_planted_tls_directory_link_is_refused():
    if not need_root():
        return
    s = service_server()
    fresh(s)
    rootdir = os.path.join(s.tmp, "root-only")
    os.mkdir(rootdir, 0o755)
    tls = os.path.join(s.data_dir, "tls")
    as_user("mv", tls, tls + ".old")
    as_user("ln", "-s", rootdir, tls)
    log = start_refused(s)
    assert "tls is a symbolic link" in log, log
    assert os.listdir(rootdir) == []


VICTIM = r"""
import signal, sys
sigs = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
print("ready", flush=True)
while True:
    print(signal.sigwaitinfo(sigs).si_signo, flush=True)
"""

HOLDER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
fcntl.lockf(fd, fcntl.LOCK_EX)
os.write(fd, (sys.argv[2] + "\n").encode())
print("locked", flush=True)
sys.stdin.read()
"""


def test_flush_does_not_signal_a_pid_planted_in_the_pid_file():
    if not need_root():
        return
    pw = service_user()
    s = service_server()
    fresh(s)
    # Root's process, which the attacker would like to see killed: it
    # reports every signal it gets, SIGRTMIN being our end marker.
    victim = subprocess.Popen([sys.executable, "-c", VICTIM], stdout=subprocess.PIPE, text=True)
    holder = None
    try:
        assert victim.stdout.readline() == "ready\n"
        # The attacker writes the victim's pid into tandem.pid and holds
        # both kinds of lock on the file, as a running server would.
        holder = subprocess.Popen(
            ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups",
             "--", sys.executable, "-c", HOLDER, os.path.join(s.data_dir, "tandem.pid"),
             str(victim.pid)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline() == "locked\n"
        r = s.cli("queue", "flush", check=False)
        # A signal sent before the marker is taken before it (standard
        # signals are dequeued before real-time ones).
        os.kill(victim.pid, signal.SIGRTMIN)
        got = []
        while not got or got[-1] != int(signal.SIGRTMIN):
            got.append(int(victim.stdout.readline()))
        assert got == [int(signal.SIGRTMIN)], got
        assert victim.poll() is None
        assert r.returncode == 0 and "no server is running" in r.stdout, r
    finally:
        if holder is not None:
            holder.stdin.close()
            holder.wait(timeout=30)
        victim.kill()
        victim.wait()


def sendmail(s, args, message):
    return subprocess.run([BIN, "-c", s.conf, "sendmail"] + args, input=message,
                          capture_output=True, text=True, timeout=30)


def test_root_sendmail_is_delivered_by_the_service_user_server():
    if not need_root():
        return
    s = service_server()
    s.setup_domain(users=("alice",))
    s.start()
    r = sendmail(s, ["-f", "cron@example.test", ALICE], "Subject: from root\n\nhello\n")
    assert r.returncode == 0, r.stderr
    m = wait_for(lambda: s.messages(ALICE), what="delivery of root's message")[0]
    assert b"Subject: from root" in m and b"(tandem sendmail, uid 0)" in m
    assert s.queue_files("hold") == []
    # A user added by root while the server runs is one the server sees.
    s.cli("user", "add", "bob@example.test", input="secret\n")
    r = sendmail(s, ["bob@example.test"], "Subject: to bob\n\nhi\n")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: s.messages("bob@example.test"), what="delivery to bob")
    assert s.queue_files("hold") == []
    s.stop()


def test_sendmail_by_another_user_fails_with_tempfail():
    if not need_root():
        return
    s = service_server()
    fresh(s)
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                        BIN, "-c", s.conf, "sendmail", ALICE], input="Subject: x\n\nx\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 75 and "cannot queue" in r.stderr, r
    assert s.queued() == [] and s.queue_files("hold") == []
