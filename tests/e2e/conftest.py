"""pytest glue for tandem's end-to-end scenarios (run them with
scripts/run-e2e, which gives them a private network namespace).

Options: --binary PATH (the tandem under test, default build/tandem),
--asan (sanitizer build: TANDEM_ASAN=1), --limit SECONDS (per scenario,
default 300). TANDEM_VALGRIND=1 and TANDEM_KEEP=1 work as lib.py says.

Fixtures: every scenario is followed by lib.cleanup_all() (each server
killed, each dnsmasq, peer, sink or Postfix stopped); when it fails, the
tail of each live server's log is added to its report. Factories for new
scenarios: server(...) (a lib.Server), dns(records), peer(ip, script),
sink(ip, *options), postfix(ip, ...): each cleaned up afterwards.

Under pytest-xdist each worker gets its own TANDEM_E2E_NET (its own
127.N.0.0/16 addresses and DNS port). A scenario marked `serial` runs
while no other scenario runs, on any worker.
"""
import fcntl
import os
import shutil
import signal
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

LOCK_ENV = "TANDEM_E2E_LOCKDIR"


def pytest_addoption(parser):
    g = parser.getgroup("tandem")
    g.addoption("--binary", default=os.environ.get("TANDEM_BIN", "build/tandem"),
                help="the tandem binary under test (default build/tandem)")
    g.addoption("--asan", action="store_true", help="the binary is a sanitizer build")
    g.addoption("--limit", type=int, default=300, help="seconds per scenario (default 300)")


def worker_index():
    """0, 1, ... for xdist workers gw0, gw1, ...; None outside xdist."""
    w = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(w[2:]) if w.startswith("gw") and w[2:].isdigit() else None


def pytest_configure(config):
    # Before lib is imported anywhere: it reads these once.
    os.environ["TANDEM_BIN"] = os.path.abspath(config.getoption("--binary"))
    if config.getoption("--asan"):
        os.environ["TANDEM_ASAN"] = "1"
    k = worker_index()
    if k is not None:
        # One second octet per worker: 127.N.x.y and DNS port 5353+N never
        # collide between workers (base: the TANDEM_E2E_NET of the run).
        base = int(os.environ.get("TANDEM_E2E_NET") or 0)
        os.environ["TANDEM_E2E_NET"] = str((base + 1 + k) % 250 or 250)
    elif not hasattr(config, "workerinput") and LOCK_ENV not in os.environ:
        # the controller (or a run without xdist): the lock file of `serial`,
        # inherited by the workers it starts
        os.environ[LOCK_ENV] = tempfile.mkdtemp(prefix="tandem-e2e-run-")
        config._tandem_lockdir = os.environ[LOCK_ENV]
    config.addinivalue_line("markers", "serial: runs while no other scenario runs "
                                       "(it loads the machine, or is timing-sensitive)")
    import lib  # noqa: F401  (now, with the settings above)
    if not os.access(os.environ["TANDEM_BIN"], os.X_OK):
        raise pytest.UsageError("tandem binary %s not found (make first, or --binary)"
                                % os.environ["TANDEM_BIN"])
    if not hasattr(config, "workerinput"):
        check_addresses(config)


def planned_nets(config):
    """The TANDEM_E2E_NET of each process that will run scenarios."""
    base = int(os.environ.get("TANDEM_E2E_NET") or 0)
    n = getattr(config.option, "numprocesses", None)
    if getattr(config.option, "dist", "no") != "no" and isinstance(n, int) and n > 0:
        return [(base + 1 + k) % 250 or 250 for k in range(n)]
    return [base]


def check_addresses(config):
    """Before any scenario: the DNS port and the usual server addresses of
    every worker are free, or the run stops saying which one is taken (a
    scenario would otherwise fail in a way that looks unrelated)."""
    import lib
    for net in planned_nets(config):
        where = [("127.0.0.1", 5353 + net, True)] + [
            ("127.%d.%s" % (net, ip.split(".", 2)[2]), port, False)
            for ip, port in (("127.0.0.10", 2525), ("127.0.0.20", 2525), ("127.0.8.10", 25))]
        for ip, port, udp in where:
            try:
                lib.check_free(ip, port, udp=udp)
            except lib.AddressInUse as e:
                raise pytest.UsageError(
                    "%s: the e2e run needs it (TANDEM_E2E_NET=%d). scripts/run-e2e runs the "
                    "suite in its own network namespace, where nothing else listens." % (e, net))


def pytest_unconfigure(config):
    d = getattr(config, "_tandem_lockdir", None)
    if d:
        shutil.rmtree(d, ignore_errors=True)


def pytest_report_header(config):
    import lib
    nets = planned_nets(config)
    return "tandem: %s%s%s, addresses %s, DNS ports %s%s" % (
        lib.BIN, " (asan)" if os.environ.get("TANDEM_ASAN") == "1" else "",
        " (valgrind)" if lib.VALGRIND else "", ", ".join("127.%d.x.y" % n for n in nets),
        ", ".join(str(5353 + n) for n in nets),
        ", private network namespace" if os.environ.get("TANDEM_E2E_NETNS") == "1" else "")


# --- time limit ------------------------------------------------------------------

def pytest_collection_modifyitems(config, items):
    limit = config.getoption("--limit")
    if config.pluginmanager.hasplugin("timeout"):
        for item in items:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(limit))


class ScenarioTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Without pytest-timeout: SIGALRM bounds the scenario itself."""
    if item.config.pluginmanager.hasplugin("timeout"):
        yield
        return
    limit = item.config.getoption("--limit")

    def on_alarm(signum, frame):
        raise ScenarioTimeout("scenario took longer than its time limit (%ds)" % limit)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- serial scenarios ----------------------------------------------------------------

class RunLock:
    """A readers-writer lock across the worker processes of one run: every
    scenario holds it shared, a `serial` one exclusive. The turnstile makes
    a waiting serial scenario stop new ones from starting (no starvation)."""

    def __init__(self, d):
        self.turn = open(os.path.join(d, "turnstile"), "a")
        self.main = open(os.path.join(d, "main"), "a")

    def acquire(self, exclusive):
        fcntl.flock(self.turn, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(self.turn, fcntl.LOCK_UN)

    def release(self):
        fcntl.flock(self.main, fcntl.LOCK_UN)


_run_lock = None


@pytest.fixture(autouse=True)
def _e2e_run_lock(request):
    global _run_lock
    d = os.environ.get(LOCK_ENV)
    if worker_index() is None or not d or not os.path.isdir(d):
        yield
        return
    if _run_lock is None:
        _run_lock = RunLock(d)
    _run_lock.acquire(request.node.get_closest_marker("serial") is not None)
    try:
        yield
    finally:
        _run_lock.release()


# --- cleanup and the logs of a failure -------------------------------------------------

def live_logs(tail=4000):
    import lib
    out = []
    for s in list(lib._live):
        if not hasattr(s, "role"):
            continue     # a scenario's directory, not a server
        out.append("--- log of %s (%s:%d, %s) ---\n%s" % (s.role, s.ip, s.port, s.tmp,
                                                       s.log()[-tail:]))
    for o in list(lib._others):
        log = getattr(o, "log", None)
        if callable(log):
            out.append("--- log of %s (%s) ---\n%s" % (type(o).__name__,
                                                     getattr(o, "dir", ""), log()[-tail:]))
    return "\n".join(out)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        logs = live_logs()
        if logs:
            rep.sections.append(("tandem server logs", logs))


@pytest.fixture(autouse=True)
def _e2e_cleanup(_e2e_run_lock):
    """After each scenario: what it left running is stopped, its
    directories removed (TANDEM_KEEP=1 keeps them)."""
    import lib
    yield
    lib.cleanup_all()


# --- factories for scenarios -------------------------------------------------------------

@pytest.fixture
def server():
    """server(role=..., ip=..., ...) -> a lib.Server (not started)."""
    import lib
    return lib.Server


@pytest.fixture
def dns():
    """dns(records, listen=..., port=...) -> a started harness.Dns."""
    import harness
    return harness.Dns


@pytest.fixture
def peer():
    import harness
    return harness.Peer


@pytest.fixture
def sink():
    import harness
    return harness.Sink


@pytest.fixture
def postfix():
    import harness
    return harness.Postfix
