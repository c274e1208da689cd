"""The API's authorizer: who a request comes from, decided before the API sees it. In AWS it is an
API Gateway REQUEST authorizer (functions/authorizer) in front of every route but the share links
and signing in; in local mode the local API calls the same function before each request.

The credential is a bearer token (Authorization: Bearer ...) or the session cookie: a user pool
access token in AWS, a local session locally. A known caller goes on with their user, role and
cases as the authorizer's context; the API then judges each route (cloud/api.py). Without a
valid credential: the pages go on without a caller (the API sends the browser to sign in),
everything else is refused with 401."""

from __future__ import annotations

import logging
from pathlib import Path

from reelscope.access import sessions, tokens
from reelscope.access.roles import OPEN, PAGES, Caller, route_of
from reelscope.access.users import Users
from reelscope.settings import Settings
from reelscope.store import shared_store

LOCAL_OWNER = Caller("local", "admin")  # local mode on loopback with no users: whoever reaches it owns it
_users: dict[str, Users] = {}
log = logging.getLogger(__name__)


class Unauthorized(Exception):
    """API Gateway answers 401 when an authorizer raises exactly this message."""

    def __init__(self):
        super().__init__("Unauthorized")


def credential(headers: dict) -> str | None:
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "") or ""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return sessions.cookie_value(headers)


def local_users(settings: Settings) -> Users:
    return _users.setdefault(settings.state_dir, Users(Path(settings.state_dir)))


def caller_for(headers: dict, settings: Settings) -> Caller | None:
    token = credential(headers)
    if settings.user_pool_id:
        try:
            return tokens.verify(token, settings)
        except tokens.BadToken as err:
            if token:
                log.info("refused a token: %s", err)
            return None
    users = local_users(settings)
    if not users.any():
        return LOCAL_OWNER
    name = sessions.user_of(shared_store(settings.bucket, settings.table), token)
    user = users.get(name) if name else None
    return user.caller() if user else None


def authorize(event: dict, settings: Settings) -> dict:
    """The authorizer's answer: an Allow policy with the caller as context, or Unauthorized."""
    caller = caller_for(event.get("headers") or {}, settings)
    method = (event.get("httpMethod") or "").upper()
    route = route_of(method, event.get("path") or "")
    # pages (sent to sign in) and open routes (local mode asks of every request, API Gateway of the others only)
    if caller is None and not (route and ((method, route[0]) in PAGES or route[1] == OPEN)):
        raise Unauthorized()
    return {"principalId": caller.user if caller else "anonymous",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event.get("methodArn", "*")}]},
            "context": caller.context() if caller else {}}
