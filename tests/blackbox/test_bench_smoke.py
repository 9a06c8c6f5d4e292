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
