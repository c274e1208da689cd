"""The user pool's access tokens, verified as API Gateway's Cognito authorizer would: RS256 under
a key of the pool's JWKS, issued by the pool, token_use "access", for the app client, unexpired.
joserfc (a maintained JOSE library, already a dependency of the AWS mock) does the cryptography
and the standard claims; the JWKS is read once per process, and again when a token names a key
it does not hold (the pool rotated its keys), at most once a minute."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from reelscope.access.roles import Caller, from_groups
from reelscope.settings import Settings

JWKS_REFRESH_S = 60.0
_jwks: dict[str, tuple[float, KeySet]] = {}
_jwks_lock = threading.Lock()


class BadToken(Exception):
    """A token that does not sign anyone in; the message says why (for the log, not the client)."""


def issuer(settings: Settings) -> str:
    region = settings.user_pool_id.split("_", 1)[0]  # a pool id starts with its region: us-east-1_AbC
    return f"https://cognito-idp.{region}.amazonaws.com/{settings.user_pool_id}"


def _keys(settings: Settings, refresh: bool = False) -> KeySet:
    url = settings.jwks_url or f"{issuer(settings)}/.well-known/jwks.json"
    with _jwks_lock:
        held = _jwks.get(url)
        if held and (not refresh or time.monotonic() - held[0] < JWKS_REFRESH_S):
            return held[1]
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the pool's own https URL
            keys = KeySet.import_key_set(json.loads(answer.read()))
        _jwks[url] = (time.monotonic(), keys)
        return keys


def verify(token: str, settings: Settings) -> Caller:
    """The caller a pool access token signs in, or BadToken."""
    if not token or len(token) > 8192:
        raise BadToken("no token")
    try:
        try:
            decoded = jwt.decode(token, _keys(settings), algorithms=["RS256"])
        except InvalidKeyIdError:
            decoded = jwt.decode(token, _keys(settings, refresh=True), algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer(settings)},
            token_use={"essential": True, "value": "access"},
            client_id={"essential": True, "value": settings.user_pool_client_id},
            exp={"essential": True}, username={"essential": True}).validate(decoded.claims)
    except (JoseError, ValueError) as err:
        raise BadToken(f"{type(err).__name__}: {err}") from None
    caller = from_groups(decoded.claims["username"], decoded.claims.get("cognito:groups") or [])
    if caller is None:
        raise BadToken(f"user {decoded.claims['username']} is in no role's group")
    return caller
