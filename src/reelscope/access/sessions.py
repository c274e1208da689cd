"""Local mode's sessions and the sign-in throttle, kept as items of the jobs table (saved with the
state folder, so a restart keeps people signed in).

A session is a random 256-bit token in an HttpOnly cookie; the table holds its hash only, so a
copy of the table signs no one in. Signing out deletes the item: the cookie is dead everywhere.
Each wrong password doubles the wait before the next try for that user (1 s, 2 s ... 5 min);
a try inside the wait is refused unchecked."""

from __future__ import annotations

import hashlib
import secrets
import time
from http.cookies import CookieError, SimpleCookie

from reelscope.store import Store

COOKIE = "reelscope_session"
SESSION_TTL_S = 12 * 3600
MAX_WAIT_S = 300.0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_value(headers: dict, name: str = COOKIE) -> str | None:
    """A cookie of the request (headers with any case), or None."""
    raw = next((v for k, v in headers.items() if k.lower() == "cookie"), None)
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    return jar[name].value if name in jar else None


def set_cookie(value: str, max_age: int, secure: bool, path: str = "/", name: str = COOKIE) -> str:
    """A Set-Cookie value: HttpOnly (no script reads it), SameSite=Lax (sent when a link or the sign-in
    redirect opens a page, not with another site's requests), Secure over HTTPS."""
    return f"{name}={value}; Max-Age={max_age}; Path={path}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def start(store: Store, user: str) -> str:
    token = secrets.token_urlsafe(32)
    expires_at = int(time.time()) + SESSION_TTL_S
    store.table.put_item(Item={"PK": f"SESSION#{_hash(token)}", "SK": "SESSION", "user": user,
                               "expires_at": expires_at, "ttl": expires_at})
    return token


def user_of(store: Store, token: str | None) -> str | None:
    if not token or len(token) > 100:
        return None
    item = store.table.get_item(Key={"PK": f"SESSION#{_hash(token)}", "SK": "SESSION"}).get("Item")
    return item["user"] if item and item["expires_at"] > time.time() else None


def end(store: Store, token: str | None) -> None:
    if token and len(token) <= 100:
        store.table.delete_item(Key={"PK": f"SESSION#{_hash(token)}", "SK": "SESSION"})


def wait_before_try(store: Store, user: str) -> float:
    """Seconds before `user` may try a password again (0: now)."""
    item = store.table.get_item(Key={"PK": f"SIGNIN#{user}", "SK": "SIGNIN"}).get("Item")
    return max(0.0, float(item["next_try_at"]) - time.time()) if item else 0.0


def tried(store: Store, user: str, succeeded: bool) -> float:
    """Count a try; returns the wait it sets (0 after a right password)."""
    key = {"PK": f"SIGNIN#{user}", "SK": "SIGNIN"}
    if succeeded:
        store.table.delete_item(Key=key)
        return 0.0
    item = store.table.get_item(Key=key).get("Item") or {}
    failures = int(item.get("failures", 0)) + 1
    wait = min(MAX_WAIT_S, 2.0 ** (failures - 1))
    store.table.put_item(Item={**key, "failures": failures, "next_try_at": str(time.time() + wait),
                               "ttl": int(time.time()) + 86400})
    return wait
