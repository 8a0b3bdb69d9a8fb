#!/usr/bin/env python3
"""Kept for old habits: runs scripts/run-e2e (pytest in a private network
namespace) with the same arguments.

  python3 tests/e2e/run.py --binary build/tandem [-k PATTERN] [--asan] [pytest options]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "..", "..", "scripts", "run-e2e")

def translate(args):
    """run.py's -k matched "file::name" substrings: "a::b" becomes "a and b"."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a == "-k" and "::" in out[i + 1]:
            out[i + 1] = " and ".join(p for p in out[i + 1].split("::") if p)
    return out


if __name__ == "__main__":
    os.execv(RUNNER, [RUNNER] + translate(sys.argv[1:]))
