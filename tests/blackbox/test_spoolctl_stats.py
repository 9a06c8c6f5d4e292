"""spoolctl black-box tests: issues, bounces and the seed's stat.uni query,
over a delivery log filled by the real pipeline (remote 550s from an aiosmtpd
relayhost, policy bounces from spoold) and by tests/tools/spoolctl-gen; policy
changes (stoplist, issue block) take effect on the next message.
"""
import json
import os
import smtplib
import subprocess

import pytest

import peers
import smtpgate

SEED = smtpgate.SEED_QUERY


def ctl(g, *args, input=None):
    return g.spoolctl(*args, input=input, check=False)


def query(g, req):
    text = req if isinstance(req, str) else json.dumps(req)
    return json.loads(g.spoolctl("query", input=text).stdout)


@pytest.fixture
def live():
    mx = peers.Mx().start()
    try:
        g = smtpgate.relaying_gateway(mx.port)
    except BaseException:
        mx.stop()
        raise
    try:
        yield g, mx
    finally:
        g.close()
        mx.stop()


def final_events(g, n):
    return smtpgate.wait_for(
        lambda: (lambda ev: ev if len(ev) >= n else None)(
            [e for e in g.events() if e["event"] in ("delivered", "bounced")]),
        30, what="%d final events" % n)


def test_pipeline_bounces_query_issues(live):
    g, mx = live
    for i in range(3):
        mx.rules["gone%d@example.net" % i] = ["550 5.1.1 no such user %d" % i]
    smtpgate.smtp_send(g, ["gone0@example.net", "ok0@example.net"],
         headers={"X-Campaign-Id": "spring-sale", "X-Letter-Id": "L-1"})
    final_events(g, 2)
    smtpgate.smtp_send(g, ["gone1@example.net"], headers={"X-Campaign-Id": "spring-sale"})
    final_events(g, 3)
    smtpgate.smtp_send(g, ["nosubj@example.net"], omit=("Subject",))
    final_events(g, 4)
    smtpgate.smtp_send(g, ["gone2@example.net", "ok1@example.net"])
    ev = final_events(g, 6)

    bounced = [e for e in ev if e["event"] == "bounced"]
    assert len(bounced) == 4
    # bounces: newest first, exactly the log's bounced events reversed
    b = g.spoolctl_json("bounces", "--last", "3")
    assert [(x["to"], x["dt"], x["msg"]) for x in b] == \
        [(e["to"], e["dt"], e["msg"]) for e in reversed(bounced)][:3]
    text = g.spoolctl("bounces").stdout
    assert "635 6.7.8 no Subject:" in text and "550 5.1.1 no such user 0" in text

    # the seed's request: the same rows, newest first
    rows = query(g, SEED)["list"]
    assert rows == [[e["to"], e["dt"], e["msg"]] for e in reversed(bounced)]
    # source as a number, first/skip, other fields
    req = dict(SEED, first=1, skip=1)
    req["filter"] = [{"a": "delivstream.source", "op": "==", "v": 1},
                     {"a": "delivstream.status", "op": "==", "v": "bounced"}]
    assert query(g, req)["list"] == rows[1:2]
    named = query(g, {"filter": [{"a": "issue.name", "op": "==", "v": "spring-sale"}],
                      "select": ["delivstream.to", "delivstream.status", "gate.uniq",
                                 "issue.id"],
                      "order": ["delivstream.to"]})["list"]
    assert [r[:3] for r in named] == [["gone0@example.net", "bounced", "L-1"],
                                      ["gone1@example.net", "bounced", None],
                                      ["ok0@example.net", "delivered", "L-1"]]
    spring_id = named[0][3]
    assert query(g, {"filter": [{"a": "issue.id", "op": "!=", "v": spring_id},
                                {"a": "delivstream.status", "op": "==",
                                 "v": "delivered"}],
                     "select": ["delivstream.to"]})["list"] == [["ok1@example.net"]]

    iss = g.spoolctl_json("issues", "--account", "acc")
    spring = [i for i in iss if i["name"] == "spring-sale"][0]
    assert spring["id"] == spring_id and spring["messages"] == 2
    assert spring["delivered"] == 1 and spring["bounced"]["remote"] == 2
    plain = [i for i in iss if i["name"] is None][0]
    assert plain["bounced"]["policy"] == 1 and plain["bounced"]["remote"] == 1
    assert plain["delivered"] == 1
    assert "spring-sale" in g.spoolctl("issues").stdout
    assert g.spoolctl_json("issues", "--date", "2000-01-01") == []


def test_policy_changes_take_effect_without_restart(live):
    g, mx = live
    smtpgate.smtp_send(g, ["first@example.net"], headers={"X-Campaign-Id": "camp"})
    ev = g.wait_events(lambda e: e.get("to") == "first@example.net", what="first")[0]
    issue = ev["issue"]["id"]
    assert "blocked" in g.spoolctl("issue", "block", str(issue)).stdout
    g.spoolctl("stoplist", "add", "acc", "stopped@example.net")
    smtpgate.smtp_send(g, ["second@example.net"], headers={"X-Campaign-Id": "camp"})
    smtpgate.smtp_send(g, ["stopped@example.net"])
    e2 = g.wait_events(lambda e: e.get("to") == "second@example.net", what="second")[0]
    e3 = g.wait_events(lambda e: e.get("to") == "stopped@example.net", what="stopped")[0]
    assert e2["event"] == "bounced" and e2["msg"] == "635 6.7.8 issue is blocked"
    assert e3["event"] == "bounced" and e3["msg"] == "550 5.0.0 Email is in the account stoplist"
    assert g.spoolctl_json("issues")[0]["blocked"] is True
    g.spoolctl("issue", "unblock", str(issue))
    smtpgate.smtp_send(g, ["third@example.net"], headers={"X-Campaign-Id": "camp"})
    e4 = g.wait_events(lambda e: e.get("to") == "third@example.net", what="third")[0]
    assert e4["event"] == "delivered"


@pytest.fixture
def g():
    gw = smtpgate.Gateway(tls=False, port_tls="none")
    yield gw
    gw.close()


def gen(g, *args):
    r = subprocess.run([os.path.join(smtpgate.BUILDDIR, "tests", "tools", "spoolctl-gen"),
                        "-c", g.conf_path] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_query_errors_and_empty_log(g):
    g.add_account("acc", password="pw1")
    assert query(g, SEED) == {"list": []}
    assert g.spoolctl_json("bounces") == []
    assert "no bounces" in g.spoolctl("bounces").stdout
    assert g.spoolctl_json("issues") == []
    assert "bad JSON" in smtpgate.one_line_error(ctl(g, "query", input='{"filter": ['), 2)
    assert "bad JSON" in smtpgate.one_line_error(ctl(g, "query", input=""), 2)
    err = smtpgate.one_line_error(ctl(g, "query", input=json.dumps(
        {"filter": [{"a": "delivstream.nope", "op": "==", "v": 1}]})), 2)
    assert 'unknown field "delivstream.nope"' in err
    err = smtpgate.one_line_error(ctl(g, "query", input=json.dumps(
        {"filter": [{"a": "delivstream.to", "op": "~=", "v": "x"}]})), 2)
    assert 'unknown operator "~="' in err
    err = smtpgate.one_line_error(ctl(g, "query", input=json.dumps(
        {"select": ["delivstream.to", "issue.bogus"]})), 2)
    assert '"issue.bogus"' in err
    smtpgate.one_line_error(ctl(g, "query", input=json.dumps({"action": "stat.other"})), 2)
    smtpgate.one_line_error(ctl(g, "bounces", "--last", "zero"), 2)
    smtpgate.one_line_error(ctl(g, "issues", "--date", "29.11.2026"), 2)


def test_generated_log_order_and_limits(g):
    g.add_account("acc", password="pw1")
    gen(g, "-n", 30, "-r", 4, "-a", "acc", "-e", "-i", "bulk")
    bounced = [e for e in g.events() if e["event"] == "bounced"]
    assert len(bounced) == 30
    b = g.spoolctl_json("bounces", "--last", "5")
    assert [x["to"] for x in b] == [e["to"] for e in reversed(bounced)][:5]
    rows = query(g, SEED)["list"]
    assert [r[0] for r in rows] == [e["to"] for e in reversed(bounced)]
    asc = query(g, {"filter": [{"a": "delivstream.status", "op": "==", "v": "deferred"}],
                    "select": ["delivstream.to"], "order": ["delivstream.to"], "first": 3})
    assert asc["list"] == [["rcpt0.1@example.net"], ["rcpt1.1@example.net"],
                           ["rcpt10.1@example.net"]]
    uniq = query(g, {"filter": [{"a": "gate.uniq", "op": "==", "v": "L7"}],
                     "select": ["delivstream.status"]})["list"]
    assert sorted(r[0] for r in uniq) == ["bounced", "deferred", "delivered"]
    day = bounced[0]["dt"][:10]
    assert len(query(g, {"filter": [{"a": "delivstream.dt", "op": "==", "v": day}],
                         "select": ["delivstream.to"]})["list"]) == 90
    assert query(g, {"filter": [{"a": "delivstream.dt", "op": "<", "v": day}]})["list"] == []
    iss = g.spoolctl_json("issues")
    assert len(iss) == 1 and iss[0]["name"] == "bulk" and iss[0]["messages"] == 30
    assert iss[0]["recipients"] == 120 and iss[0]["delivered"] == 30
    assert iss[0]["deferred"] == 30 and iss[0]["bounced"]["remote"] == 30


def test_policy_senders_and_dkim_from_spoolctl(live, tmp_path):
    """Sender statuses and DKIM keys installed by spoolctl are used by the
    pipeline at once; the TXT record spoolctl prints verifies the signature."""
    import dkim

    g, mx = live
    g.spoolctl("account", "add", "acc", "--update", "--senders", "registered")
    g.spoolctl("sender", "add", "acc", "@signed.example", "--status", "approved")
    g.spoolctl("sender", "add", "acc", "bad@signed.example", "--status", "prohibited")
    records = {}
    for alg, sel in (("RSA", "r1"), ("ED25519", "e1")):
        pem = str(tmp_path / ("%s.pem" % sel))
        cmd = ["openssl", "genpkey", "-algorithm", alg, "-out", pem]
        if alg == "RSA":
            cmd += ["-pkeyopt", "rsa_keygen_bits:2048"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        out = g.spoolctl("dkim", "add", "acc", "signed.example", "--selector", sel,
                         "--key", pem).stdout
        line = [l for l in out.splitlines() if "._domainkey." in l][0]
        records[line.split()[0].rstrip(".")] = "".join(line.split('"')[1::2])

    s = smtplib.SMTP("127.0.0.1", g.port, timeout=15)
    s.sendmail("news@signed.example", ["r1@example.net"],
               smtpgate.message(frm="news@signed.example", to="r1@example.net"))
    s.sendmail("bad@signed.example", ["r2@example.net"],
               smtpgate.message(frm="bad@signed.example", to="r2@example.net"))
    s.sendmail("x@unsigned.example", ["r3@example.net"],
               smtpgate.message(frm="x@unsigned.example", to="r3@example.net"))
    s.quit()
    e2 = g.wait_events(lambda e: e.get("to") == "r2@example.net", what="r2")[0]
    e3 = g.wait_events(lambda e: e.get("to") == "r3@example.net", what="r3")[0]
    assert e2["event"] == "bounced" and e2["msg"] == "635 6.7.8 error/sender/prohibited"
    assert e3["event"] == "bounced" and e3["msg"] == "635 6.7.8 error/sender/unknown"
    got = mx.wait_received(1, rcpt="r1@example.net")[0]["data"]

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        v = records.get(name.rstrip("."))
        return v.encode() if v else None

    nsig = got.count(b"DKIM-Signature:")
    assert nsig >= 1, got[:500]
    assert all(dkim.DKIM(got).verify(idx=i, dnsfunc=dnsfunc) for i in range(nsig))
