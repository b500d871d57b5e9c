"""A real IMAP server on loopback: Debian's dovecot, run in the foreground from a config
written to a temporary directory (its own base_dir, state, log and maildirs), with one
passwd-file user and plaintext login allowed (loopback only, no TLS). `make test`
installs dovecot-imapd when it is missing; without it the fixture fails saying so.

    with Dovecot() as server:
        server.append(b"From: a@b\\r\\n...")   # deliver a mail the way an MDA would
"""

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.smtp_sink import free_port

DOVECOT = os.environ.get("MAILROOM_DOVECOT", "/usr/sbin/dovecot")
USER = "inbox@mailroom.test"
PASSWORD = "imap-test-pass"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""


def dovecot_binary() -> str:
    """The dovecot executable, or a failure that says how to get it."""
    found = DOVECOT if os.access(DOVECOT, os.X_OK) else shutil.which("dovecot")
    if not found or not os.access("/usr/lib/dovecot/imap", os.X_OK):  # dovecot-core alone serves no IMAP
        raise RuntimeError(
            "dovecot is not installed: the IMAP inbox tests run a real IMAP server. "
            "Run `make test` (it installs dovecot-imapd) or `apt-get install dovecot-imapd`."
        )
    return found


class Dovecot:
    def __init__(self, *, user: str = USER, password: str = PASSWORD):
        # Its own directory under /tmp, not pytest's tmp_path: as root, dovecot's processes
        # run as other users, who cannot enter pytest's private (0700) directories.
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
        self.user, self.password = user, password
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Dovecot":
        binary = dovecot_binary()
        for folder in ("run", "state", "mail", "home"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        account = pwd.getpwuid(os.getuid())
        login_user, internal_user, mail_user = _service_users(account.pw_name)
        mail_account = pwd.getpwnam(mail_user)
        self.root.chmod(0o755)
        for folder in ("mail", "home"):
            os.chown(self.root / folder, mail_account.pw_uid, mail_account.pw_gid)
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        conf = self.root / "dovecot.conf"
        conf.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                login_user=login_user,
                internal_user=internal_user,
                uid=mail_account.pw_uid,
                gid=mail_account.pw_gid,
            )
        )
        self.process = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_until_listening()
        except BaseException:
            self.__exit__()  # a server that never came up is stopped, not left behind
            raise
        return self

    def _wait_until_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited ({self.process.returncode}): {self.process.stderr.read().decode()} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                    if probe.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{self.port}: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- as a mail client / MDA ---------------------------------------------------------------
    def client(self) -> imaplib.IMAP4:
        connection = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        connection.login(self.user, self.password)
        return connection

    def append(self, raw: bytes, *, folder: str = "INBOX", flags: str = "") -> None:
        """Deliver one mail into the mailbox (IMAP APPEND), as a delivery agent would."""
        with self.client() as connection:
            status, detail = connection.append(folder, flags or None, None, raw)
            assert status == "OK", detail

    def flags(self, *, folder: str = "INBOX") -> list[str]:
        """The flags of every mail in the folder, in order (e.g. to see \\Seen)."""
        with self.client() as connection:
            connection.select(folder, readonly=True)
            _status, data = connection.fetch("1:*", "(FLAGS)")
            return [] if data == [None] else [line.decode() for line in data]

    def count(self, *, folder: str = "INBOX") -> int:
        with self.client() as connection:
            _status, data = connection.select(folder, readonly=True)
            return int(data[0])


def _service_users(me: str) -> tuple[str, str, str]:
    """(login user, internal user, mail user). Unprivileged, dovecot runs everything as
    whoever started it; as root it refuses root for its login, internal and mail processes:
    Debian's `dovenull` and `dovecot` users, and `nobody` for the mail."""
    if os.getuid() != 0:
        return me, me, me
    known = {entry.pw_name for entry in pwd.getpwall()}
    return ("dovenull" if "dovenull" in known else "nobody"), ("dovecot" if "dovecot" in known else "nobody"), "nobody"
