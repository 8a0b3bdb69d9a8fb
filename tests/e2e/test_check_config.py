"""`tandem check-config` tells the truth: it accepts nothing `serve` refuses,
reads an inline comment as a comment, prints every key with `-v`, and warns
about a relay domain that the directory also holds as local; a backup
refuses `domain add` for one of its relay domains; `serve` stops at once on
a log file it cannot open.
"""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile

import lib
from lib import Server, wait_for

GOOD = ("[server]\n"
        "hostname = mx1.example.test\n"
        "data_dir = %(dir)s/data\n"
        "[listen]\n"
        "smtp = %(ip)s:2525\n"
        "[dns]\n"
        "resolver = 127.0.0.1@%(dns)d\n")


class TmpDir:
    """A scratch directory removed with the scenario's servers (run.py
    shows a failed scenario's servers: this one has no log)."""
    role, ip, port = "scratch", "-", 0

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="tandem-cc-")
        lib._live.append(self)

    def log(self):
        return ""

    def cleanup(self):
        if not lib.KEEP:
            shutil.rmtree(self.path, ignore_errors=True)


def write_conf(text):
    d = TmpDir().path
    path = os.path.join(d, "tandem.conf")
    with open(path, "w") as f:
        f.write(text % {"dir": d, "ip": lib.addr("127.0.0.30"), "dns": lib.DNS_PORT})
    return d, path


def run(path, *args, timeout=60):
    return subprocess.run([lib.BIN, "-c", path] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def test_check_config_refuses_what_serve_refuses():
    # (what is added to a good config, the key named, words the error must say)
    cases = [
        ("[server]\nuser = no-such-user-tandem\n", r"\[server\] user", "no such user"),
        ("[listen]\nsmtp = localhost:25\n", r"\[listen\] smtp", "numeric address"),
        ("[dns]\nresolver = 127.0.0.1:53\n", r"\[dns\] resolver", "HOST@PORT"),
        ("[relay]\ndomains = example.test, exa_mple.test\n", r"\[relay\] domains",
         "not a valid domain"),
        ("[server]\nhostname = mx_1.example.test\n", r"\[server\] hostname",
         "not a valid domain"),
        ("[server]\nlog_file = %(dir)s/no/such/dir/tandem.log\n", r"\[server\] log_file",
         "does not exist"),
        ("[relay]\netrn_clients = 10.1.0.0/8\n", r"\[relay\] etrn_clients", "10.1.0.0/8"),
        ("[server]\nrecipient_delimiter = ++\n", r"\[server\] recipient_delimiter", "one of"),
        ("[smtp]\nmax_errors = 0\n", r"\[smtp\] max_errors", "1"),
        ("[listen]\nhttp = %(ip)s:8080\n", r"\[listen\] http", "not built in this version"),
    ]
    for extra, key, words in cases:
        d, path = write_conf(GOOD + extra)
        p = run(path, "check-config")
        assert p.returncode == 1, (extra, p.returncode, p.stdout, p.stderr)
        assert re.search(r"^%s(:\d+)?: %s: .*%s" % (re.escape(path), key, re.escape(words)),
                         p.stderr, re.M), (extra, p.stderr)
        assert "ok" not in p.stdout, (extra, p.stdout)
        # and serve refuses the same file, before it listens
        s = run(path, "serve", timeout=60)
        assert s.returncode != 0, (extra, s.stdout, s.stderr)


def test_inline_comments_are_comments():
    d, path = write_conf("[server]\n"
                         "hostname = mx1.example.test   # the name in EHLO\n"
                         "data_dir = %(dir)s/data ; where it all goes\n"
                         "[listen]\n"
                         "smtp = %(ip)s:2525  # loopback only\n"
                         "[dns]\n"
                         "resolver = 127.0.0.1@%(dns)d # the test DNS\n")
    p = run(path, "check-config", "-v")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert re.search(r"^hostname = mx1\.example\.test +# restart$", p.stdout, re.M), p.stdout
    assert re.search(r"^smtp = %s:2525 +# restart$" % re.escape(lib.addr("127.0.0.30")),
                     p.stdout, re.M), p.stdout
    # the server takes the same values: it greets with the name, on the address
    s = Server(role="primary", ip="127.0.0.30")
    s.conf = path
    s.data_dir = os.path.join(d, "data")
    s.start()
    with smtplib.SMTP(s.ip, 2525, timeout=15) as c:
        code, msg = c.ehlo("client.example.org")
        assert code == 250 and msg.split(b"\n")[0].split()[0] == b"mx1.example.test", msg
    s.stop()


def test_check_config_v_prints_every_key():
    d, path = write_conf(GOOD + "[smtp]\nmax_recipients = 7\n[relay]\netrn_clients = 192.0.2.0/24\n")
    doc = run(path, "check-config", "--doc")
    assert doc.returncode == 0, doc.stderr
    keys = re.findall(r"^\| (\w+) \| `(\w+)` \|", doc.stdout, re.M)
    assert len(keys) > 30, doc.stdout
    p = run(path, "check-config", "-v")
    assert p.returncode == 0, (p.stdout, p.stderr)
    section = None
    printed = set()
    for line in p.stdout.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#? ?(\w+) =.*# (reload|restart)", line)
        if m:
            printed.add((section, m.group(1)))
    assert printed == set(keys), (set(keys) - printed, printed - set(keys))
    assert re.search(r"^max_recipients = 7 +# reload$", p.stdout, re.M), p.stdout
    assert re.search(r"^etrn_clients = 192\.0\.2\.0/24 +# reload$", p.stdout, re.M), p.stdout
    assert re.search(r"^max_connections_per_client = 20 +# reload$", p.stdout, re.M), p.stdout
    assert re.search(r"^data_dir = .* +# restart$", p.stdout, re.M), p.stdout
    # the output is a config file that loads again
    again = os.path.join(d, "again.conf")
    with open(again, "w") as f:
        f.write("".join(l for l in p.stdout.splitlines(True) if not l.startswith(path)))
    q = run(again, "check-config", "-v")
    assert q.returncode == 0, q.stderr
    assert q.stdout.replace(again, path) == p.stdout


def test_doc_needs_no_config_file():
    p = subprocess.run([lib.BIN, "-c", "/nonexistent/tandem.conf", "check-config", "--doc"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("| section | key |"), p.stdout


def test_backup_refuses_domain_add_of_a_relay_domain():
    b = Server(role="backup", ip="127.0.0.20", relay_domains=["example.test", "other.test"])
    r = b.cli("domain", "add", "Example.TEST", check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "relay domain" in r.stderr and "recipients load" in r.stderr, r.stderr
    assert b.cli("domain", "list").stdout.strip() == ""
    # a domain it is not backup for is the admin's business
    assert b.cli("domain", "add", "third.test", check=False).returncode == 0


def test_relay_domain_also_local_is_warned_at_check_and_start():
    # the directory got the domain while the host was a primary ...
    b = Server(role="primary", ip="127.0.0.20")
    b.cli("domain", "add", "example.test")
    # ... and the host became the backup for it
    b.role = "backup"
    b.relay_domains = ["example.test"]
    b.write_config()
    p = b.cli("check-config")
    assert "warning: [relay] domains: example.test is also a local domain" in p.stderr, p.stderr
    assert "tandem domain del example.test" in p.stderr and "recipients load" in p.stderr
    b.start()
    wait_for(lambda: "event=config_warning key=relay.domains domain=\"example.test\"" in b.log(),
             what="the start-up warning")
    b.stop()
    # without the conflict, neither says anything
    b.cli("domain", "del", "example.test")
    assert "warning" not in b.cli("check-config").stderr


def test_serve_fails_on_a_log_file_it_cannot_open():
    d, path = write_conf(GOOD + "[server]\nlog_file = %(dir)s/missing/tandem.log\n")
    # check-config says so ...
    p = run(path, "check-config")
    assert p.returncode == 1 and "[server] log_file" in p.stderr, (p.stdout, p.stderr)
    # ... and serve, run anyway, exits 1 with the reason instead of logging to stderr
    s = run(path, "serve", timeout=60)
    assert s.returncode == 1, (s.returncode, s.stderr)
    assert "log_file" in s.stderr and "No such file or directory" in s.stderr, s.stderr
    assert "event=start" not in s.stderr
