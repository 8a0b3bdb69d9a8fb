"""`queue list` says why a destination is down: refused is not a timeout.

Two domains whose only MX gives no answer: one refuses the connection,
the other never completes it (a blackhole, given up after [queue]
connect_timeout). Both are marked down and probed; each message waits, and
`queue list` (text and JSON) names the real reason of each, as data.
"""
import json

from lib import wait_for
from test_outbound_faults import (DEAD_IP, Blackhole, Dns, Stack, mx, peer_ip, queued_for,
                                  send, sender)


def test_queue_list_tells_refused_from_timeout():
    st = Stack()
    try:
        st.add(Blackhole(peer_ip(5)))
        st.add(Dns(mx("refused.test", DEAD_IP, host="dead.test") +
                   mx("silent.test", peer_ip(5), host="hole.test")))
        s = st.add(sender(queue={"connect_timeout": "2s"}, relay={"probe_interval": "1h"}))
        s.start()
        send(s, "alice@refused.test", "to a host that refuses")
        send(s, "alice@silent.test", "to a host that never answers")

        def waiting_for(rcpt):
            m = queued_for(s, rcpt)
            return m if m and m.get("waiting") else None

        r = wait_for(lambda: waiting_for("alice@refused.test"), what="refused.test down")
        t = wait_for(lambda: waiting_for("alice@silent.test"), timeout=30, what="silent.test down")
        w = r["waiting"]
        assert (w["domain"], w["host"], w["addr"], w["port"]) == ("refused.test", "dead.test",
                                                                  DEAD_IP, 25), w
        assert "refused" in w["reason"].lower(), w
        assert w["probe_interval"] == 3600 and w["since"] > 0, w
        w = t["waiting"]
        assert (w["domain"], w["host"], w["addr"]) == ("silent.test", "hole.test", peer_ip(5)), w
        assert "timeout" in w["reason"] and "refused" not in w["reason"].lower(), w
        for m in (r, t):
            (rc,) = m["recipients"]
            assert rc["state"] == "waiting" and rc["waiting"]["domain"] == m["waiting"]["domain"], rc

        text = s.cli("queue", "list").stdout
        assert "waiting: refused.test is down since" in text, text
        assert "dead.test[%s]:25: cannot connect: Connection refused" % DEAD_IP in text, text
        assert "waiting: silent.test is down since" in text, text
        assert "hole.test[%s]:25: timeout after 2000 ms" % peer_ip(5) in text, text
        # and the log said it too, once, when the destination went down
        log = s.log()
        assert "event=probe domain=refused.test" in log and "Connection refused" in log
        json.loads(s.cli("queue", "list", "--json").stdout)   # still valid JSON
        s.stop()
    finally:
        st.stop()
