"""Signing in and out, who the caller is, cases on hold, the archive's audit trail, the signing key.

In AWS people sign in at the user pool's managed login (OAuth 2.0 authorization code with PKCE):
GET /auth/login sends the browser there, GET /auth/callback takes the code back, trades it for
tokens at the pool and keeps the access token in the session cookie. Locally GET /auth/login is
a sign-in page and POST /auth/login checks a local user's password (access/users.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
import urllib.request
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from reelscope import integrity
from reelscope.access import audit, authorizer, sessions
from reelscope.access.roles import CASE_NAME
from reelscope.cloud.responses import (
    ERROR_BODY,
    HTML,
    NOT_FOUND,
    caller_scope,
    error,
    error_page,
    html_page,
    ok,
    request_scope,
    stage_prefix,
)
from reelscope.cloud.routes.jobs import TRAIL, audit_page
from reelscope.cloud.schemas import (
    Caller,
    CaseHoldRequest,
    CaseState,
    SignedIn,
    SignInRequest,
    answer,
)

LOGIN_COOKIE = "reelscope_login"  # the PKCE verifier, state and page to return to, while the browser signs in
LOGIN_TTL_S = 600
TOKEN_TIMEOUT_S = 10


def _safe_next(value: str | None, base: str) -> str:
    """Where to go after signing in: a path of this API only (no open redirect)."""
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else base + "/"


def _to_the_pool(settings, redirect_uri: str, target: str) -> Response:
    """The browser sent to the pool's login with a PKCE challenge; the verifier, state and page to
    return to kept in a short-lived cookie for the callback."""
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = urllib.parse.urlencode({"response_type": "code", "client_id": settings.user_pool_client_id,
                                    "redirect_uri": redirect_uri, "scope": "openid email profile",
                                    "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
    kept = base64.urlsafe_b64encode(json.dumps([state, verifier, target]).encode()).decode()
    return Response(status_code=302, content_type=HTML, body="", headers={
        "Location": f"{settings.user_pool_domain}/oauth2/authorize?{query}",
        "Set-Cookie": sessions.set_cookie(kept, LOGIN_TTL_S, secure=True, name=LOGIN_COOKIE)})


def _trade(settings, code: str, verifier: str, redirect_uri: str) -> dict:
    """The pool's tokens for an authorization code (its token endpoint, with the PKCE verifier)."""
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": settings.user_pool_client_id,
                                   "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}).encode()
    request = urllib.request.Request(f"{settings.user_pool_domain}/oauth2/token", data=form,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=TOKEN_TIMEOUT_S) as answered:  # noqa: S310 - the pool's own domain
        return json.loads(answered.read())


class _Request:
    """What the sign-in routes read of the request being served."""

    def __init__(self, router: Router):
        self.router = router

    def base(self) -> str:
        return stage_prefix(self.router.current_event.raw_event)

    def headers(self) -> dict:
        return dict(self.router.current_event.headers or {})

    def source(self) -> dict:
        identity = self.router.current_event.request_context.identity
        return {"source_ip": identity.source_ip or "", "user_agent": (identity.user_agent or "")[:200]}

    def callback_url(self) -> str:
        headers = self.headers()
        return f"https://{headers.get('Host') or headers.get('host')}{self.base()}/auth/callback"


def sign_in_router() -> Router:
    """GET and POST /auth/login, GET /auth/callback."""
    router = Router()
    settings_, store_ = request_scope(router)
    current = _Request(router)
    base, headers, source, callback_url = current.base, current.headers, current.source, current.callback_url

    @router.get("/auth/login", summary="Sign in: the user pool's managed login (AWS) or the sign-in page (local mode)",
                responses={200: {"description": "the sign-in page", "content": {"text/html": {}}},
                           302: {"description": "to the user pool's login"}})
    def sign_in_page(next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None):
        settings, target = settings_(), _safe_next(next_, base())
        if not settings.user_pool_id:
            return html_page("signin.html", "Sign in", {"api_base": base(), "next": target})
        return _to_the_pool(settings, callback_url(), target)

    @router.get("/auth/callback", summary="Where the user pool's login returns: the code traded for a session",
                responses={302: {"description": "to the page that asked for sign-in, with the session cookie"},
                           400: {"description": "a callback this browser did not start", "content": {"text/html": {}}},
                           404: {"description": "local mode (it signs in at /auth/login)", "content": {"text/html": {}}}})
    def signed_in_at_the_pool(code: Annotated[str, Query(max_length=2000, pattern=r"^[A-Za-z0-9._~-]+$")],
                              state: Annotated[str, Query(max_length=200)]):
        settings = settings_()
        if not settings.user_pool_id:
            return error_page(404, "local mode signs in at /auth/login")
        try:
            expected, verifier, target = json.loads(base64.urlsafe_b64decode(
                sessions.cookie_value(headers(), LOGIN_COOKIE) or ""))
            assert all(isinstance(value, str) for value in (expected, verifier, target))
        except (ValueError, TypeError, AssertionError):
            return error_page(400, "this sign-in was not started here (or took over 10 minutes): sign in again")
        if not secrets.compare_digest(expected.encode(), state.encode()):
            return error_page(400, "the sign-in's state does not match: sign in again")
        try:
            tokens_ = _trade(settings, code, verifier, callback_url())
            caller = authorizer.tokens.verify(tokens_["access_token"], settings)
        except (OSError, ValueError, KeyError, authorizer.tokens.BadToken):
            return error_page(400, "the user pool did not accept this sign-in: sign in again")
        audit.record(settings, "sign-in", caller.user, **source())
        return Response(status_code=302, content_type=HTML, body="", headers={
            "Location": _safe_next(target, base()), "Set-Cookie": [
                sessions.set_cookie(tokens_["access_token"], int(tokens_.get("expires_in", 3600)), secure=True),
                sessions.set_cookie("", 0, secure=True, name=LOGIN_COOKIE)]})

    @router.post("/auth/login", summary="Sign in with a local user's password (local mode): the session cookie, "
                 "and the token for API clients", responses={200: ok("signed in", SignedIn), **NOT_FOUND,
                 401: {"description": "wrong user or password", "content": ERROR_BODY},
                 429: {"description": "too soon after a wrong password (Retry-After)", "content": ERROR_BODY}})
    def sign_in(request: Annotated[SignInRequest, Body()]):
        settings, store = settings_(), store_()
        if settings.user_pool_id:
            return error(404, "this deployment signs in at the user pool: GET /auth/login")
        wait = sessions.wait_before_try(store, request.user)
        if wait > 0:
            return Response(status_code=429, content_type=content_types.APPLICATION_JSON,
                            headers={"Retry-After": str(int(wait) + 1)},
                            body={"message": f"too many wrong passwords for {request.user[:64]}: try again in {wait:.0f} s"})
        user = authorizer.local_users(settings).check(request.user, request.password)
        if user is None:
            wait = sessions.tried(store, request.user, succeeded=False)
            audit.record(settings, "sign-in-refused", request.user[:64], **source())
            return Response(status_code=401, content_type=content_types.APPLICATION_JSON,
                            headers={"Retry-After": str(int(wait))},
                            body={"message": f"wrong user or password; the next try waits {wait:.0f} s"})
        sessions.tried(store, user.name, succeeded=True)
        token = sessions.start(store, user.name)
        audit.record(settings, "sign-in", user.caller(), **source())
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        headers={"Set-Cookie": sessions.set_cookie(token, sessions.SESSION_TTL_S, secure=False)},
                        body=answer(SignedIn, {"user": user.name, "role": user.role, "cases": list(user.cases),
                                               "signed_in": True, "token": token, "expires_in": sessions.SESSION_TTL_S}))

    return router


def router() -> Router:
    """POST /auth/logout, GET /me, GET /signing-key, PUT /cases/{case}, GET /audit."""
    router = Router()
    settings_, store_ = request_scope(router)
    caller_ = caller_scope(router)
    current = _Request(router)
    base, headers, source, callback_url = current.base, current.headers, current.source, current.callback_url

    @router.post("/auth/logout", summary="Sign out: the session ends (locally: everywhere it was used)",
                 responses={200: {"description": "signed out; `next`: where the browser goes", "content": {
                     "application/json": {}}}})
    def sign_out():
        settings = settings_()
        caller = authorizer.caller_for(headers(), settings)
        if not settings.user_pool_id:
            sessions.end(store_(), authorizer.credential(headers()))
        if caller is not None:
            audit.record(settings, "sign-out", caller.user, **source())
        target = f"{base()}/auth/login"
        if settings.user_pool_id:  # the pool's own session ends too, or its login would sign the browser straight back in
            target = f"{settings.user_pool_domain}/logout?" + urllib.parse.urlencode(
                {"client_id": settings.user_pool_client_id, "logout_uri": callback_url().replace("/callback", "/login")})
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body={"signed_out": True, "next": target},
                        headers={"Set-Cookie": sessions.set_cookie("", 0, secure=bool(settings.user_pool_id))})


    @router.get("/me", summary="Who the caller is: user, role and cases", responses={200: ok("the caller", Caller)})
    def who_am_i():
        caller = caller_()
        return answer(Caller, {"user": caller.user, "role": caller.role, "cases": sorted(caller.cases),
                               "signed_in": caller != authorizer.LOCAL_OWNER})

    @router.get("/signing-key", summary="The public key that signs every job's manifest (PEM) and its fingerprint",
                responses={200: {"description": "the key", "content": {"application/json": {}}}})
    def signing_key():
        signer = integrity.signer(settings_())
        return {"key_id": signer.key_id, "pem": signer.public_pem.decode(),
                "fingerprint": integrity.fingerprint(signer.public_pem)}

    @router.put("/cases/<case>", summary="Put a case on hold, or release it (admins): a held case's jobs cannot be deleted",
                responses={200: ok("the case", CaseState), **NOT_FOUND})
    def hold_case(case: Annotated[str, Path(pattern=CASE_NAME)], request: Annotated[CaseHoldRequest, Body()]):
        return answer(CaseState, store_().hold_case(case, request.held, caller_().user))

    @router.get("/audit", summary="The archive's audit trail of one day (sign-ins, searches, uploads), oldest first "
                "(admins)", responses={200: TRAIL})
    def archive_audit(day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                      page: Annotated[str | None, Query(alias="next", max_length=500)] = None,
                      form: Annotated[Literal["json", "csv"], Query(alias="format")] = "json"):
        return audit_page(settings_(), page, limit, form, day=day)

    return router

