#!/usr/bin/env python3
"""Kept for old habits: runs scripts/run-e2e (pytest in a private network
namespace) with the same arguments.

  python3 tests/e2e/run.py --binary build/tandem [-k PATTERN] [--asan] [pytest options]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "..", "..", "scripts", "run-e2e")

if __name__ == "__main__":
    os.execv(RUNNER, [RUNNER] + sys.argv[1:])
