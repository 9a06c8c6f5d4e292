"""spoolctl black-box tests: help that teaches. `spoolctl help CMD` and
`spoolctl CMD --help` print the command's usage, every option and an
example from one table; unknown words get the nearest command; errors end
with what to do next (spoolctl(8))."""
import os
import re
import subprocess

import pytest

import smtpgate

# Every command and sub-command with the options its getopt table accepts.
OPTIONS = {
    "account add": ["--password", "--password-file", "--no-password", "--ip",
                    "--sandbox", "--no-sandbox", "--callback-url",
                    "--callback-format", "--senders", "--update",
                    "--source-address", "--source-helo"],
    "account list": ["--json"], "account show": ["--json"], "account del": [],
    "account set": ["--source-address", "--source-helo", "--callback-secret",
                    "--callback-secret-file"],
    "sender add": ["--status"], "sender del": [], "sender list": ["--json"],
    "dkim add": ["--selector", "--key", "--default"], "dkim list": ["--json"],
    "dkim del": ["--selector"],
    "stoplist add": ["--file"], "stoplist del": [], "stoplist list": ["--json"],
    "stoplist show": ["--json"],
    "issue block": [], "issue unblock": [],
    "queue": ["--json", "--account", "--issue", "--state", "--domain", "--older-than"],
    "show": ["--json", "--body"], "retry": ["--all", "--domain", "--json"],
    "hold": ["--json"], "release": ["--json"], "delete": ["--json"],
    "issues": ["--date", "--account", "--category", "--json"],
    "bounces": ["--last", "--category", "--json"],
    "query": ["--json"],
    "pause": ["--domain", "--account", "--json"], "resume": ["--domain", "--account"],
    "cluster export": [],
    "cluster seal": [],
}
GROUPS = ("account", "sender", "dkim", "stoplist", "issue", "cluster")


def raw(*args, input=None):
    """spoolctl with a configuration file that does not exist: help and
    usage errors must not need one."""
    return subprocess.run([smtpgate.binary("spoolctl"), "-c", "/nonexistent.conf"] +
                          list(args), input=input, capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def g():
    gw = smtpgate.Gateway(tls=False, port_tls="none")
    gw.add_account("one", password="pw1")
    yield gw
    gw.close()


@pytest.mark.parametrize("cmd", sorted(OPTIONS))
def test_help_command(cmd):
    r = raw("help", *cmd.split())
    assert r.returncode == 0 and r.stderr == "", r
    assert r.stdout.startswith("usage: spoolctl %s" % cmd), r.stdout
    for opt in OPTIONS[cmd]:
        assert re.search(r"^  %s\b" % re.escape(opt), r.stdout, re.M), (opt, r.stdout)
    examples = re.findall(r"^example: spoolctl (.*)$", r.stdout, re.M)
    assert len(examples) == 1 and (examples[0] + " ").startswith(cmd + " "), r.stdout


@pytest.mark.parametrize("group", GROUPS)
def test_help_group_lists_subcommands(group):
    r = raw("help", group)
    assert r.returncode == 0, r
    subs = [c for c in OPTIONS if c.startswith(group + " ")]
    assert re.findall(r"^usage: spoolctl (\S+ \S+)", r.stdout, re.M) == subs
    assert len(re.findall(r"^example: ", r.stdout, re.M)) == len(subs)


@pytest.mark.parametrize("cmd", sorted(OPTIONS) + list(GROUPS))
def test_dash_help_is_help(cmd):
    want = raw("help", *cmd.split())
    for flag in ("--help", "-h"):
        r = raw(*cmd.split(), flag)
        assert (r.returncode, r.stdout, r.stderr) == (0, want.stdout, ""), (flag, r)
    # after operands and options too
    if cmd not in GROUPS:
        r = raw(*cmd.split(), "x", "--json", "--help")
        assert (r.returncode, r.stdout) == (0, want.stdout), r
    # but not after "--": then it is an operand
    assert raw(*cmd.split(), "--", "--help").stdout != want.stdout


def test_overview():
    r = raw("help")
    assert r.returncode == 0
    for cmd in OPTIONS:
        assert "\n  %s " % cmd in r.stdout, cmd
    assert "spoolctl help COMMAND" in r.stdout
    assert raw("-h").stdout == r.stdout
    r = raw()
    assert r.returncode == 2 and r.stdout == "" and "usage: spoolctl" in r.stderr


@pytest.mark.parametrize("args,line", [
    (["queu"], 'spoolctl: unknown command "queu"; did you mean "queue"? (spoolctl help)'),
    (["bounce"], 'spoolctl: unknown command "bounce"; did you mean "bounces"? (spoolctl help)'),
    (["reelase", "X"], 'spoolctl: unknown command "reelase"; did you mean "release"? '
     '(spoolctl help)'),
    (["help", "shwo"], 'spoolctl: unknown command "shwo"; did you mean "show"? (spoolctl help)'),
    (["frobnicate"], 'spoolctl: unknown command "frobnicate" (spoolctl help lists them)'),
    (["account", "lst"], 'spoolctl: account: unknown subcommand "lst"; did you mean "list"? '
     '(spoolctl help account)'),
    (["dkim", "ad", "one"], 'spoolctl: dkim: unknown subcommand "ad"; did you mean "add"? '
     '(spoolctl help dkim)'),
    (["help", "issue", "blok"], 'spoolctl: issue: unknown subcommand "blok"; did you mean '
     '"block"? (spoolctl help issue)'),
    (["stoplist"], 'spoolctl: usage: spoolctl stoplist add|del|list|show ... '
     '(spoolctl help stoplist)'),
])
def test_unknown_suggests(args, line):
    assert smtpgate.one_line_error(raw(*args), 2) == line


def test_every_listed_option_is_accepted(g):
    """The other direction: no option in the help that getopt refuses."""
    for cmd in OPTIONS:
        out = g.spoolctl("help", *cmd.split()).stdout
        for opt in re.findall(r"^  (--[a-z-]+)", out, re.M):
            r = g.spoolctl(*cmd.split(), opt, input="", check=False)
            assert "unknown option" not in r.stderr, (cmd, opt, r.stderr)


def test_errors_name_the_next_step(g):
    cases = [
        (["show", "0123456789ABCDEF0123"], 1, "(spoolctl queue --state all lists them)"),
        (["hold", "nonsense"], 1, "spoolctl queue lists them)"),
        (["account", "show", "nobody"], 1, "(spoolctl account list shows them)"),
        (["sender", "list", "nobody"], 1, "(spoolctl account list shows them)"),
        (["sender", "del", "one", "a@example.com"], 1, "(spoolctl sender list one shows them)"),
        (["dkim", "del", "one", "example.com"], 1, "(spoolctl dkim list one shows them)"),
        (["stoplist", "del", "one", "a@example.com"], 1,
         "(spoolctl stoplist list one shows it)"),
        (["issue", "block", "424242"], 1, "(spoolctl issues lists them)"),
        (["queue", "--bogus"], 2, "queue: unknown option --bogus (spoolctl help queue)"),
        (["account", "add", "x", "--frob"], 2,
         "account add: unknown option --frob (spoolctl help account add)"),
        (["bounces", "--last"], 2, "needs a value (spoolctl help bounces)"),
        (["account", "del"], 2, "usage: spoolctl account del LOGIN (spoolctl help account del)"),
        (["queue", "--state", "nope"], 2, "(spoolctl help queue)"),
        (["-x", "queue"], 2, "unknown option -x (spoolctl help)"),
        (["dkim", "add", "one", "example.com", "--selector", "s", "--key", "/nonexistent"],
         1, "No such file or directory (check the path)"),
        (["stoplist", "add", "one", "--file", "/nonexistent"], 1, "(check the path)"),
    ]
    for args, code, tail in cases:
        line = smtpgate.one_line_error(g.spoolctl(*args, check=False), code)
        assert line.endswith(tail), (args, line)


def test_permission_denied_names_the_group(g):
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")
    g.spoolctl("queue")
    os.chmod(g.conf_path, 0o644)
    r = smtpgate.run_as("nobody", [smtpgate.binary("spoolctl"), "-c", g.conf_path,
                                   "account", "list"])
    line = smtpgate.one_line_error(r, 1)
    assert line.endswith("(run as root or as a member of group %s)"
                         % g.conf.get("group", "smtpgate")), line
