"""DKIM signing (issue 9): `tandem domain add` makes the domain's key
(RSA-2048, mode 0600) and prints its DNS record, `tandem dkim show`
prints the published selectors as zone-file lines, `tandem dkim rotate`
signs with a new selector and keeps the old one listed for
[dkim] rotate_grace. Mail leaving for another domain is signed; the
signatures are checked by dkimpy (python3-dkim) against the records
`dkim show` printed, on mail from submission, sendmail (LF input, an
8-bit body) and a forward of foreign mail (signed for [server] origin)."""
import os
import smtplib
import ssl
import subprocess

import lib
from lib import Server

SUB_PORT = 1587
PASSWORD = "secret"
ALICE = "alice@example.test"
HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY = os.path.join(HERE, "..", "unit", "dkim_verify.py")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else "python3"


def pair(tmp_path, extra=None):
    """A receiving server for isp.test (the primary's relayhost) and the
    primary for example.test whose mail leaves through it."""
    isp = Server(role="primary", ip="127.0.0.60", hostname="smtp.isp.test",
                 extra={"listen": {"submission": "%s:%d" % (lib.addr("127.0.0.60"), SUB_PORT)}})
    isp.setup_domain(domain="isp.test", users=("relay", "bob"), password="isp-secret")
    isp.cli("user", "allow-from", "relay@isp.test", "@example.test")
    isp.cli("user", "allow-from", "relay@isp.test", "@elsewhere.test")
    isp.start()
    auth = tmp_path / "relay-auth"
    auth.write_text("relay@isp.test:isp-secret\n")
    os.chmod(str(auth), 0o600)
    ex = {"queue": {"relayhost": "%s:%d" % (isp.ip, SUB_PORT),
                    "relayhost_auth_file": str(auth)},
          "server": {"origin": "example.test"},
          "listen": {}}
    for sec, kv in (extra or {}).items():
        ex.setdefault(sec, {}).update(kv)
    p = Server(role="primary", extra=ex)
    p.extra["listen"]["submission"] = "%s:%d" % (p.ip, SUB_PORT)
    p.write_config()
    p.setup_domain(users=("alice",), password=PASSWORD)
    return isp, p


def verify(tmp_path, msg, zone, name="m"):
    mp, zp = tmp_path / (name + ".eml"), tmp_path / (name + ".zone")
    # as it was on the wire: the mailbox keeps LF line ends
    mp.write_bytes(msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    zp.write_text(zone)
    return subprocess.run([PY, VERIFY, str(mp), str(zp)], capture_output=True, text=True,
                          timeout=60).returncode


def selector_of(msg):
    head = msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
    sig = head.split("DKIM-Signature:", 1)[1]
    return sig.split("s=", 1)[1].split(";", 1)[0].strip()


def zone_line(zone, selector):
    lines = [ln for ln in zone.splitlines() if ln.startswith(selector + "._domainkey.")]
    assert len(lines) == 1, zone
    return lines[0]


def sendmail(p, *args, data):
    r = subprocess.run([lib.BIN, "-c", p.conf, "sendmail"] + list(args), input=data,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_domain_add_makes_a_key_and_dkim_show_prints_its_record():
    s = Server(role="primary")
    r = s.cli("domain", "add", "Example.TEST")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("t") and "._domainkey.example.test. IN TXT " in line, r.stdout
    assert '"v=DKIM1; k=rsa; " "p=' in line
    strings = line.split('"')[1::2]
    assert all(len(x) <= 255 for x in strings) and len("".join(strings)) > 300
    sel = line.split("._domainkey.", 1)[0]
    key = os.path.join(s.data_dir, "dkim", "example.test", sel + ".key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    show = s.cli("dkim", "show", "example.test")
    assert show.returncode == 0 and show.stdout.strip() == line
    # added again: refused by the directory, the key stays
    assert s.cli("domain", "add", "example.test", check=False).returncode == 1
    assert s.cli("dkim", "show", "example.test").stdout.strip() == line
    bad = s.cli("dkim", "show", "other.test", check=False)
    assert bad.returncode == 1 and "not a local domain" in bad.stderr
    assert s.cli("dkim", "show", "../../etc", check=False).returncode != 0
    assert s.cli("dkim", "frobnicate", "example.test", check=False).returncode == 2


def test_mail_to_another_domain_is_signed_and_verifies(tmp_path):
    isp, p = pair(tmp_path)
    p.start()
    zone = p.cli("dkim", "show", "example.test").stdout
    # submission, CRLF, folded header
    ctx = ssl.create_default_context(cafile=p.data_dir + "/tls/cert.pem")
    ctx.check_hostname = False
    with smtplib.SMTP(p.ip, SUB_PORT, timeout=10) as c:
        c.starttls(context=ctx)
        c.login(ALICE, PASSWORD)
        c.sendmail(ALICE, ["bob@isp.test"],
                   b"From: Alice <alice@example.test>\r\nTo: bob@isp.test,\r\n\tcarol@isp.test"
                   b"\r\nSubject: submitted\r\n\r\nHello   Bob  \r\n\r\n\r\n")
    # sendmail: LF line ends, an 8-bit body, no Date or Message-ID
    sendmail(p, "-f", ALICE, "bob@isp.test",
             data="From: alice@example.test\nSubject: caf\u00e9\n\nGr\u00fc\u00dfe\n".encode())
    # an empty body
    sendmail(p, "-f", ALICE, "bob@isp.test", data=b"From: alice@example.test\nSubject: empty\n\n")
    got = lib.wait_for(lambda: len(isp.messages("bob@isp.test")) >= 3 and
                       isp.messages("bob@isp.test"), timeout=30, what="three at the ISP")
    for i, m in enumerate(got):
        assert b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;" in m, m
        assert verify(tmp_path, m, zone, "m%d" % i) == 0, m
        # and a changed subject no longer verifies
        bad = m.replace(b"Subject: ", b"Subject: Re: ", 1)
        assert verify(tmp_path, bad, zone, "b%d" % i) == 1
    # mail between local users is not signed
    sendmail(p, "-f", ALICE, ALICE, data=b"From: alice@example.test\nSubject: local\n\nx\n")
    local = lib.wait_for(lambda: p.messages(ALICE), timeout=20, what="the local one")
    assert b"DKIM-Signature" not in local[0]
    p.stop()
    isp.stop()


def test_foreign_mail_forwarded_is_signed_for_the_origin(tmp_path):
    isp, p = pair(tmp_path)
    p.cli("alias", "add", "fwd@example.test", "bob@isp.test")
    p.start()
    zone = p.cli("dkim", "show", "example.test").stdout
    with smtplib.SMTP(p.ip, p.port, timeout=10) as c:
        c.sendmail("someone@elsewhere.test", ["fwd@example.test"],
                   b"From: someone@elsewhere.test\r\nSubject: forwarded\r\n"
                   b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
                   b"Message-ID: <fwd1@elsewhere.test>\r\n\r\nhi\r\n")
    got = lib.wait_for(lambda: isp.messages("bob@isp.test"), timeout=30, what="the forward")
    assert b"d=example.test;" in got[0]
    assert verify(tmp_path, got[0], zone) == 0
    p.stop()
    isp.stop()


def test_rotate_signs_with_a_new_selector_and_keeps_the_old_listed(tmp_path):
    isp, p = pair(tmp_path)
    p.start()
    old = p.cli("dkim", "show", "example.test").stdout
    r = p.cli("dkim", "rotate", "example.test")
    assert r.returncode == 0, r.stderr
    both = p.cli("dkim", "show", "example.test").stdout
    assert len(both.splitlines()) == 2 and old.strip() in both
    new_sel = r.stdout.split("._domainkey.", 1)[0]
    assert new_sel != old.split("._domainkey.", 1)[0]
    sendmail(p, "-f", ALICE, "bob@isp.test", data=b"From: alice@example.test\nSubject: r\n\nx\n")
    got = lib.wait_for(lambda: isp.messages("bob@isp.test"), timeout=30, what="the message")
    assert selector_of(got[0]) == new_sel
    assert verify(tmp_path, got[0], zone_line(both, new_sel)) == 0
    assert verify(tmp_path, got[0], old) == 1   # not the old key's
    p.stop()
    # with no grace left the old selector is no longer listed
    p.extra.setdefault("dkim", {})["rotate_grace"] = "0"
    p.write_config()
    assert p.cli("dkim", "show", "example.test").stdout.strip() == zone_line(both, new_sel)
    isp.stop()
