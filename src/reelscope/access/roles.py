"""Callers, roles and cases, and what each route needs (docs/SECURITY.md is made from NEEDS).

Every job belongs to a case. A viewer reads the jobs of their cases; an analyst also uploads,
runs, names and shares in them, and deletes their jobs; an admin does all of it in every case and
reads the audit trail. A job of a case the caller may not read is "not found" to them: its
existence is not confirmed."""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("admin", "analyst", "viewer")
DEFAULT_CASE = "default"  # the case of an upload that names none (uploads/VIDEO, jobs made before cases)
CASE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CASE_GROUP = "case:"  # a user pool group giving one case: case:harbour-2026

# What a route needs. OPEN: no sign-in (share links, signing in). SIGNED_IN: any user. READ: a
# viewer of the job's case (routes of no one job: of any case, and they show only the caller's
# cases). WRITE: an analyst of the job's case (or of the case the request names). ADMIN: an admin.
OPEN, SIGNED_IN, READ, WRITE, ADMIN = "open", "signed in", "read", "write", "admin"
NEEDS = {
    ("GET", "/"): READ,
    ("GET", "/openapi.json"): SIGNED_IN,
    ("GET", "/me"): SIGNED_IN,
    ("GET", "/signing-key"): SIGNED_IN,
    ("GET", "/auth/login"): OPEN,
    ("POST", "/auth/login"): OPEN,
    ("GET", "/auth/callback"): OPEN,
    ("POST", "/auth/logout"): OPEN,
    ("POST", "/uploads"): WRITE,
    ("POST", "/ingest"): WRITE,
    ("GET", "/ingest/{fetch_id}"): WRITE,
    ("GET", "/search"): READ,
    ("GET", "/jobs"): READ,
    ("GET", "/jobs/{job_id}"): READ,
    ("DELETE", "/jobs/{job_id}"): WRITE,
    ("GET", "/jobs/{job_id}/artifacts"): READ,
    ("GET", "/jobs/{job_id}/report"): READ,
    ("GET", "/jobs/{job_id}/exports/{name}"): READ,
    ("GET", "/jobs/{job_id}/audit"): ADMIN,
    ("POST", "/jobs/{job_id}/runs"): WRITE,
    ("PUT", "/jobs/{job_id}/speakers"): WRITE,
    ("POST", "/jobs/{job_id}/shares"): WRITE,
    ("DELETE", "/jobs/{job_id}/shares/{token}"): WRITE,
    ("GET", "/audit"): ADMIN,
    ("PUT", "/cases/{case}"): ADMIN,
    ("GET", "/s/{token}"): OPEN,
    ("GET", "/s/{token}/report.json"): OPEN,
}
PAGES = {("GET", "/"), ("GET", "/jobs/{job_id}/report")}  # a browser without a session is sent to sign in
_PATTERNS = [(method, path, re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"))
             for method, path in NEEDS]


def route_of(method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
    """(the route's path template, what it needs, its path parameters) of a request, or None."""
    for route_method, template, pattern in _PATTERNS:
        if route_method == method.upper() and (found := pattern.match(path)):
            return template, NEEDS[(route_method, template)], found.groupdict()
    return None


@dataclass(frozen=True)
class Caller:
    user: str
    role: str
    cases: frozenset[str] = frozenset()
    source_ip: str = ""
    user_agent: str = ""

    def readable(self) -> frozenset[str] | None:
        """The cases this caller reads; None: every case."""
        return None if self.role == "admin" else self.cases

    def may(self, need: str, case: str | None = None) -> bool:
        """Whether this caller may do what `need` asks, of a job of `case` (None: of no one job)."""
        if need in (OPEN, SIGNED_IN) or self.role == "admin":
            return True
        if need == ADMIN or (need == WRITE and self.role != "analyst"):
            return False
        return case is None or case in self.cases

    def context(self) -> dict[str, str]:
        """As an API Gateway authorizer hands it on: flat strings."""
        return {"user": self.user, "role": self.role, "cases": ",".join(sorted(self.cases))}


def caller_of(event: dict) -> Caller | None:
    """The caller an authorizer put into the request (requestContext.authorizer), or None."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    if not context.get("user") or context.get("role") not in ROLES:
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return Caller(context["user"], context["role"], frozenset(c for c in (context.get("cases") or "").split(",") if c),
                  ((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "",
                  (headers.get("user-agent") or "")[:200])


def from_groups(user: str, groups: list[str]) -> Caller | None:
    """A user pool user's caller: the highest role among their groups, a case per case: group."""
    role = next((r for r in ROLES if r in groups), None)
    cases = frozenset(g[len(CASE_GROUP):] for g in groups if g.startswith(CASE_GROUP)
                      and re.match(CASE_NAME, g[len(CASE_GROUP):]))
    return Caller(user, role, cases) if role else None


def case_of(job: dict) -> str:
    return job.get("case_id") or DEFAULT_CASE


def case_of_key(key: str) -> str:
    """The case an upload names: uploads/CASE/.../VIDEO; uploads/VIDEO is the default case."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 3 and re.match(CASE_NAME, parts[1]) else DEFAULT_CASE


def security_table() -> str:
    """docs/SECURITY.md's table of routes and who may call them (a test compares the two)."""
    who = {OPEN: "anyone", SIGNED_IN: "any user", READ: "viewer, analyst of the case; admin",
           WRITE: "analyst of the case; admin", ADMIN: "admin"}
    rows = ["| route | needs | who |", "|---|---|---|"]
    ordered = sorted(NEEDS.items(), key=lambda route: (route[0][1], route[0][0]))
    rows += [f"| `{method} {path}` | {need} | {who[need]} |" for (method, path), need in ordered]
    return "\n".join(rows) + "\n"
