#!/usr/bin/env python3
"""dkim_verify MSG ZONELINE: verify the first DKIM-Signature of MSG with
dkimpy (python3-dkim), the key taken from a zone-file line as
`tandem dkim show` prints it. Exit 0 when it verifies, 1 when not."""
import re
import sys

import dkim


def main():
    msg = open(sys.argv[1], "rb").read()
    line = open(sys.argv[2]).read()
    txt = "".join(re.findall(r'"([^"]*)"', line)).encode()
    name = line.split()[0].rstrip(".").encode()

    def dns(qname, timeout=5):
        return txt if qname.rstrip(b".") == name else None

    return 0 if dkim.verify(msg, dnsfunc=dns) else 1


sys.exit(main())
