"""Every SMTP verb in every session state (issue 20 item 3): the replies
smtpd gives, compared with smtpd_states.json, a table captured from the
binary before the verb table got its allowed-states column. Each cell is a
fresh session brought into the state, then one command; the whole reply
(code and text) must be what it was.

Regenerate (only for an intended change of behaviour):
SMTPD_STATES_CAPTURE=1 pytest test_smtpd_states.py"""
import base64
import json
import os

import pytest

import smtpgate
from smtpgate import Gateway, Raw

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "smtpd_states.json")
LOGIN = "demo.demo@smtpgate"
PASSWORD = "demo"
PINNED_IP = "127.0.0.2"
AUTH = "AUTH PLAIN " + base64.b64encode(
    b"\0" + LOGIN.encode() + b"\0" + PASSWORD.encode()).decode()

VERBS = {
    "HELO": "HELO client.test", "EHLO": "EHLO client.test",
    "MAIL": "MAIL FROM:<a@b.example>", "RCPT": "RCPT TO:<r@example.net>",
    "DATA": "DATA", "BDAT": None, "RSET": "RSET", "NOOP": "NOOP",
    "QUIT": "QUIT", "VRFY": "VRFY x", "EXPN": "EXPN x", "HELP": "HELP",
    "STARTTLS": "STARTTLS", "AUTH": AUTH, "ETRN": "ETRN x", "TURN": "TURN",
}

# state: (port kind, source address, commands that lead there)
STATES = {
    "plain-greeted": ("plain", None, []),
    "plain-helo": ("plain", None, ["EHLO client.test"]),
    "tls-greeted": ("tls", None, []),
    "tls-helo": ("tls", None, ["EHLO client.test"]),
    "tls-authed": ("tls", None, ["EHLO client.test", AUTH]),
    "tls-mail": ("tls", None, ["EHLO client.test", AUTH,
                               "MAIL FROM:<a@b.example>"]),
    "tls-rcpt": ("tls", None, ["EHLO client.test", AUTH,
                               "MAIL FROM:<a@b.example>",
                               "RCPT TO:<r@example.net>"]),
    "tls-bdat": ("tls", None, ["EHLO client.test", AUTH,
                               "MAIL FROM:<a@b.example>",
                               "RCPT TO:<r@example.net>", "BDAT"]),
    "pinned-helo": ("plain", PINNED_IP, ["EHLO client.test"]),
    "pinned-mail": ("plain", PINNED_IP, ["EHLO client.test",
                                         "MAIL FROM:<a@b.example>"]),
    "pinned-rcpt": ("plain", PINNED_IP, ["EHLO client.test",
                                         "MAIL FROM:<a@b.example>",
                                         "RCPT TO:<r@example.net>"]),
    "pinned-bdat": ("plain", PINNED_IP, ["EHLO client.test",
                                         "MAIL FROM:<a@b.example>",
                                         "RCPT TO:<r@example.net>", "BDAT"]),
}


@pytest.fixture(scope="module")
def gw():
    g = smtpgate.smtpd_gateway(LOGIN, PASSWORD, PINNED_IP, smtpd_workers="1")
    yield g
    g.close()


def send(r, line):
    """One command; BDAT sends a 3-octet chunk (not LAST)."""
    if line is None or line == "BDAT":
        r.send(b"BDAT 3\r\nabc")
        return r.reply()
    return r.cmd(line)


def cell(g, state, verb):
    kind, source, path = STATES[state]
    port = g.port_implicit if kind == "tls" else g.port
    r = Raw(port, source=source, tls=kind == "tls")
    try:
        assert r.reply()[0] == 220
        for line in path:
            code, text = send(r, line)
            assert code < 400, (state, line, text)
        return send(r, VERBS[verb])[1]
    finally:
        r.close()


def walk(g):
    return {s: {v: cell(g, s, v) for v in VERBS} for s in STATES}


def test_every_verb_in_every_state(gw):
    got = walk(gw)
    if os.environ.get("SMTPD_STATES_CAPTURE"):
        with open(TABLE, "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
            f.write("\n")
    with open(TABLE) as f:
        want = json.load(f)
    diff = ["%s %s: was %r, now %r" % (s, v, want[s][v], got[s][v])
            for s in want for v in want[s] if want[s][v] != got[s][v]]
    assert not diff, "\n".join(diff)
    assert set(got) == set(want)


def test_state_changes_logged_by_name():
    """smtpd -v logs each change of ss_state by name (smtpd_strstate)."""
    import subprocess
    import smtpgate
    with Gateway(tls=False) as g:
        log = os.path.join(g.dir, "smtpd-v.log")
        with open(log, "ab") as logf:
            p = subprocess.Popen([smtpgate.binary("smtpd"), "-v", "-c",
                                  g.conf_path], stdout=logf,
                                 stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        try:
            smtpgate.wait_port(g.port, timeout=15)
            r = Raw(g.port)
            assert r.reply()[0] == 220
            assert r.cmd("MAIL FROM:<a@b.example>")[1] == \
                "503 5.5.1 Error: send HELO/EHLO first"
            assert r.cmd("QUIT")[0] == 221
            assert r.closed()
            r.close()
            smtpgate.wait_for(lambda: "state closing -> dead" in open(log).read(),
                              timeout=15, what="state log lines")
            text = open(log).read()
            assert "state new -> cmd" in text
            assert "state cmd -> closing" in text
            assert "MAIL refused in phase greeted" in text
        finally:
            p.terminate()
            p.wait(timeout=30)
