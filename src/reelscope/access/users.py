"""Local mode's users: STATE_DIR/users.json, each with a role, cases and a scrypt password hash.
Written whole under a lock (fcntl) and renamed into place, so `reelscope users add` may run while
`serve` reads the file; serve reads it again whenever it changed (a removed user is refused at
their next request)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from reelscope.access.roles import CASE_NAME, ROLES, Caller
from reelscope.artifacts import read_json, write_json
from reelscope.errors import ReelscopeError

USERS_FILE = "users.json"
USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
MIN_PASSWORD = 10
# scrypt at 2^15 x 8: 32 MiB and about 0.1 s a check on one core (OWASP's minimum is 2^17 x 8 x 1 or
# 2^15 x 8 x 3; this holds a sign-in under the API's one-request-at-a-time lock for less).
SCRYPT = {"n": 2**15, "r": 8, "p": 2}


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _hash(password, salt, **SCRYPT)
    return "scrypt${n}${r}${p}$".format(**SCRYPT) + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    return hmac.compare_digest(_hash(password, base64.b64decode(salt), int(n), int(r), int(p)), base64.b64decode(digest))


_DECOY = hash_password(secrets.token_hex(16))  # an unknown user costs a check too: no timing says who exists


@dataclass(frozen=True)
class User:
    name: str
    role: str
    cases: tuple[str, ...]

    def caller(self) -> Caller:
        return Caller(self.name, self.role, frozenset(self.cases))


class Users:
    """The users of one state folder."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / USERS_FILE
        self._cache: tuple[int, dict] | None = None
        self._lock = threading.Lock()

    def _read(self) -> dict:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._cache is None or self._cache[0] != stamp:
                self._cache = (stamp, read_json(self.path))
            return self._cache[1]

    @contextlib.contextmanager
    def _changing(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            users = read_json(self.path) if self.path.exists() else {}
            yield users
            write_json(self.path, users)
            os.chmod(self.path, 0o600)

    def any(self) -> bool:
        return bool(self._read())

    def list(self) -> list[User]:
        return [User(name, u["role"], tuple(u["cases"])) for name, u in sorted(self._read().items())]

    def get(self, name: str) -> User | None:
        found = self._read().get(name)
        return User(name, found["role"], tuple(found["cases"])) if found else None

    def add(self, name: str, role: str, cases: list[str], password: str) -> User:
        """Add a user, or change one's role, cases and password."""
        if not re.match(USER_NAME, name):
            raise ReelscopeError(f"user name {name[:80]!r}: letters, digits and . _ @ - only, 1-64 characters")
        if role not in ROLES:
            raise ReelscopeError(f"role {role!r}: one of {', '.join(ROLES)}")
        if bad := [c for c in cases if not re.match(CASE_NAME, c)]:
            raise ReelscopeError(f"case {bad[0][:80]!r}: letters, digits, _ and - only, 1-64 characters")
        if role != "admin" and not cases:
            raise ReelscopeError(f"a {role} needs at least one --case: they see the jobs of their cases only")
        if len(password) < MIN_PASSWORD:
            raise ReelscopeError(f"password: at least {MIN_PASSWORD} characters")
        with self._changing() as users:
            users[name] = {"role": role, "cases": sorted(set(cases)), "password": hash_password(password)}
        return User(name, role, tuple(sorted(set(cases))))

    def remove(self, name: str) -> None:
        with self._changing() as users:
            if users.pop(name, None) is None:
                raise ReelscopeError(f"user {name[:80]!r}: no such user in {self.path}")

    def check(self, name: str, password: str) -> User | None:
        """The user whose password this is, or None (the same work either way)."""
        found = self._read().get(name)
        matches = password_matches(password, found["password"] if found else _DECOY)
        return User(name, found["role"], tuple(found["cases"])) if found and matches else None
