"""make check: every benchmark script once at a tiny size (bench/run --smoke)."""
import os
import shutil
import subprocess
import sys

import pytest

SRCDIR = os.environ.get("SMTPGATE_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("SMTPGATE_BUILDDIR") or SRCDIR


def _have(prog):
    return shutil.which(prog) or os.path.exists("/usr/sbin/" + prog)


@pytest.mark.skipif(not _have("smtp-source") or not _have("smtp-sink"),
                    reason="postfix's smtp-source/smtp-sink not installed (contrib/install-deps)")
def test_bench_smoke():
    r = subprocess.run([sys.executable, os.path.join(SRCDIR, "bench", "run"), "--smoke",
                        "--builddir", BUILDDIR], capture_output=True, text=True, timeout=600)
    print(r.stdout)
    print(r.stderr)
    assert r.returncode == 0


def test_dkim_bench_smoke():
    """bench/dkim-bench once at a tiny size: every cell it can measure gets a
    figure (the figures themselves belong to bench/README.md)."""
    binary = os.path.join(BUILDDIR, "bench", "dkim-sign-bench")
    if not os.access(binary, os.X_OK):
        pytest.skip("bench/dkim-sign-bench not built")
    r = subprocess.run([sys.executable, os.path.join(SRCDIR, "bench", "dkim-bench"),
                        "--builddir", BUILDDIR, "-n", "3", "--runs", "1"],
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    print(r.stderr)
    assert r.returncode == 0
    rows = {ln[:12].strip(): ln[12:] for ln in r.stdout.splitlines()[2:]}
    for key in ("rsa PEM", "rsa DER", "ed25519 PEM"):
        assert key in rows and rows[key].rstrip().endswith("x"), r.stdout
    assert "ed25519 DER" in rows, r.stdout     # n/a with libopendkim 2.11
