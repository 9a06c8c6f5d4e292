"""A private PostgreSQL for the black-box tests (issue 19, cluster mode).

PG() runs initdb and pg_ctl (Debian: /usr/lib/postgresql/<N>/bin, else
PATH) into a temporary directory, as an unprivileged user when the tests run
as root (PostgreSQL refuses to run as root): `postgres` if that user exists,
else `nobody`. It listens on a unix socket in that directory only (no TCP),
with trust authentication, and holds one database `smtpgate`.

    with pg.PG() as db:
        g = Gateway(extra={"cluster_dsn": db.dsn})
        db.stop(); ...; db.start()        # PostgreSQL away for a while
        db.query("SELECT count(*) FROM smtpgate.events")  # -> [["12"]]

Every wait is bounded; close() stops the server (fast, then immediate) and
removes the directory. pytest.skip() (with the reason) only when the
binaries are missing.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

IS_ROOT = os.geteuid() == 0
PORT = 5432  # names the socket file only: there is no TCP listener
DBNAME = "smtpgate"
SUPERUSER = "postgres"


def bindir():
    """The directory holding initdb and pg_ctl, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0,
                  reverse=True)
    for d in dirs:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and \
                os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and os.path.dirname(initdb) == os.path.dirname(pg_ctl):
        return os.path.dirname(initdb)
    return None


def psql_path(bd):
    p = os.path.join(bd, "psql")
    return p if os.access(p, os.X_OK) else shutil.which("psql")


def run_user():
    """(uid, gid) the server runs as: ourselves unless we are root."""
    if not IS_ROOT:
        return os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
    pytest.skip("PostgreSQL for the tests: no unprivileged user (postgres or nobody) "
                "to run it as")


class PG:
    """One private PostgreSQL server in a temporary directory."""

    def __init__(self, start=True):
        bd = bindir()
        if bd is None or psql_path(bd) is None:
            pytest.skip("PostgreSQL binaries (initdb, pg_ctl, psql) not found in "
                        "/usr/lib/postgresql/*/bin or PATH: install the Debian package "
                        "postgresql (contrib/install-deps)")
        self.bindir = bd
        self.psql = psql_path(bd)
        self.uid, self.gid = run_user()
        self.dir = tempfile.mkdtemp(prefix="sgpg-")
        os.chmod(self.dir, 0o755)  # the socket must be reachable by every test user
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        os.chown(self.dir, self.uid, self.gid)
        self.running = False
        self.dsn = "host=%s port=%d dbname=%s user=%s" % (self.dir, PORT, DBNAME,
                                                           SUPERUSER)
        self.initdb()
        if start:
            self.start()
            self.createdb()

    # ---- server
    def _run(self, argv, timeout=60, check=True):
        kw = {"user": self.uid, "group": self.gid, "extra_groups": []} if IS_ROOT else {}
        r = subprocess.run(argv, cwd=self.dir, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d: %s%s\n%s" % (
                " ".join(argv), r.returncode, r.stdout, r.stderr, self.log()))
        return r

    def initdb(self):
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U",
                   SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8",
                   "--locale=C"], timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# tests/blackbox/lib/pg.py\n"
                    "listen_addresses = ''\n"
                    "port = %d\n"
                    "unix_socket_directories = '%s'\n"
                    "unix_socket_permissions = 0777\n"
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "max_connections = 50\n"
                    "shared_buffers = 32MB\n"
                    "timezone = 'UTC'\n" % (PORT, self.dir))

    def start(self, timeout=60):
        """Starts the server and waits (bounded) until it accepts connections."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l",
                   self.logfile, "-w", "-t", str(timeout), "start"], timeout=timeout + 10)
        self.running = True

    def stop(self, mode="fast", timeout=30):
        """Stops the server: mode fast (clients disconnected), or immediate
        (as a crash: no shutdown checkpoint)."""
        if not self.running:
            return
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", mode,
                   "-w", "-t", str(timeout), "stop"], timeout=timeout + 10)
        self.running = False

    def restart(self):
        self.stop()
        self.start()

    def createdb(self):
        self.query("CREATE DATABASE %s" % DBNAME, db="postgres")

    # ---- client
    def query(self, sql, db=None, timeout=30):
        """Runs sql with psql (ON_ERROR_STOP); returns the rows of its last
        statement as lists of strings (NULL is "")."""
        dsn = self.dsn if db is None else self.dsn.replace("dbname=%s" % DBNAME,
                                                           "dbname=%s" % db)
        r = subprocess.run([self.psql, "-X", "-q", "-A", "-t", "-F", "\t", "-v",
                            "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError("psql %r: exit %d: %s" % (sql, r.returncode, r.stderr))
        return [line.split("\t") for line in r.stdout.split("\n") if line != ""]

    def scalar(self, sql, **kw):
        rows = self.query(sql, **kw)
        return rows[0][0] if rows else None

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # ---- lifetime
    def close(self):
        try:
            self.stop()
        except Exception:
            try:
                self.stop(mode="immediate", timeout=10)
            except Exception:
                pass
        if os.environ.get("SMTPGATE_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def db():
    """A private PostgreSQL for one test (skips without clusterd or the
    PostgreSQL binaries). A test module takes it with `from pg import db`."""
    import smtpgate
    if not os.path.exists(smtpgate.binary("clusterd")):
        pytest.skip("clusterd not built")
    d = PG()
    try:
        yield d
    finally:
        d.close()
