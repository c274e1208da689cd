"""Who may do what: callers, roles and cases (roles.py), local mode's users and sessions (users.py,
sessions.py), the user pool's tokens (tokens.py), the authorizer that turns a request into a
caller in AWS and locally (authorizer.py), and the append-only audit trail (audit.py)."""
