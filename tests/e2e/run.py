#!/usr/bin/env python3
"""Runs tandem's end-to-end scenarios: every test_* function in
tests/e2e/test_*.py, one after another, each bounded in time. Ends with
the line "e2e: N passed, N failed" and a non-zero exit on any failure.

  python3 tests/e2e/run.py --binary build/tandem [-k PATTERN] [--asan]
"""
import argparse
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("scenario took longer than its time limit")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/tandem")
    ap.add_argument("-k", default="")
    ap.add_argument("--asan", action="store_true")
    ap.add_argument("--limit", type=int, default=300, help="seconds per scenario")
    args = ap.parse_args()
    os.environ["TANDEM_BIN"] = os.path.abspath(args.binary)
    if args.asan:
        os.environ["TANDEM_ASAN"] = "1"
    sys.path.insert(0, HERE)
    import lib

    signal.signal(signal.SIGALRM, on_alarm)
    passed = failed = 0
    failures = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(fn[:-3], os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            full = "%s::%s" % (fn[:-3], name)
            if args.k and args.k not in full:
                continue
            t0 = time.monotonic()
            signal.alarm(args.limit)
            try:
                getattr(mod, name)()
                signal.alarm(0)
                lib.cleanup_all()
                passed += 1
                print("PASS %s (%.1fs)" % (full, time.monotonic() - t0), flush=True)
            except BaseException as e:  # noqa: B902 - a scenario may raise anything
                signal.alarm(0)
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed += 1
                failures.append(full)
                print("FAIL %s (%.1fs)" % (full, time.monotonic() - t0), flush=True)
                traceback.print_exc()
                for s in list(lib._live):
                    print("--- log of %s (%s:%d) ---" % (s.role, s.ip, s.port))
                    print(s.log()[-4000:])
                lib.cleanup_all()
    for f in failures:
        print("failed: " + f)
    print("e2e: %d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
