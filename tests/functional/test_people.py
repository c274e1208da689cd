"""The door for people as the deployment has it: moto's Cognito user pool (real RS256 tokens, its
JWKS served by moto's server), the authorizer in front of the API, two cases. Every route of the
OpenAPI document, for every kind of caller, answers as docs/SECURITY.md's table says; a viewer of
one case never sees the other; the audit trail records who did what; a deleted job leaves nothing
but its trail; an exported folder is checked against its signed manifest."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from moto.utilities.utils import load_resource

from reelscope import integrity
from reelscope.local.cloud import LocalCloud
from reelscope.search import engine

from ..localmode import run

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Real-pass-12345!"
# Who calls: user -> the pool groups they are in. ann and val work in case alpha, bob in bravo.
PEOPLE = {"ada": ["admin"], "ann": ["analyst", "case:alpha"], "val": ["viewer", "case:alpha"],
          "bob": ["analyst", "case:bravo"], "nobody": []}
# What each role may do, as docs/SECURITY.md's "who" column says it: needs -> roles (in the job's case).
MAY = {"any user": {"admin", "analyst", "viewer"}, "viewer, analyst of the case; admin": {"admin", "analyst", "viewer"},
       "analyst of the case; admin": {"admin", "analyst"}, "admin": {"admin"}}
ROLE = {"ada": "admin", "ann": "analyst", "val": "viewer", "bob": "analyst"}
CASES = {"ann": {"alpha"}, "val": {"alpha"}, "bob": {"bravo"}}


@dataclass
class Door:
    cloud: LocalCloud
    jobs: dict[str, str]
    tokens: dict[str, str]
    pool: str
    client: str


def event(method: str, path: str, token: str | None = None, body=None, query: dict | None = None, cookie: bool = False):
    headers = {"Host": "example.execute-api.us-east-1.amazonaws.com"}
    if token and cookie:
        headers["Cookie"] = f"reelscope_session={token}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    return {"httpMethod": method, "path": path, "resource": path, "pathParameters": None, "headers": headers,
            "queryStringParameters": query, "body": json.dumps(body) if body is not None else None,
            "isBase64Encoded": False, "requestContext": {"stage": "v1", "path": f"/v1{path}", "httpMethod": method,
                                                         "requestId": "test", "identity": {"sourceIp": "203.0.113.9"}}}


def answer(door: Door, *args, **kwargs) -> tuple[int, dict | str, dict]:
    result = door.cloud.api(event(*args, **kwargs))
    headers = {**(result.get("headers") or {}), **{k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}}
    try:
        body = json.loads(result["body"]) if result.get("body") else {}
    except ValueError:
        body = result["body"]
    return result["statusCode"], body, headers


def pool_token(claims: dict, key) -> str:
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key)


@pytest.fixture(scope="module")
def door(tmp_path_factory, speech_video, people_video, model_dir, fall_weights):
    video, _ = speech_video
    with pytest.MonkeyPatch.context() as env, LocalCloud(tmp_path_factory.mktemp("state")) as cloud:
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        ran = {case: run(cloud, video, f"uploads/{case}/speech.mp4") for case in ("alpha", "bravo")}
        ran["doomed"] = run(cloud, people_video, "uploads/alpha/doomed.mp4")
        assert {job["status"] for _, job in ran.values()} == {"SUCCEEDED"}, ran
        jobs = {name: job_id for name, (job_id, _) in ran.items()}
        idp = boto3.client("cognito-idp")
        pool = idp.create_user_pool(PoolName="reelscope")["UserPool"]["Id"]
        client = idp.create_user_pool_client(UserPoolId=pool, ClientName="pages",
                                             ExplicitAuthFlows=["USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
        for group in ("admin", "analyst", "viewer", "case:alpha", "case:bravo"):
            idp.create_group(GroupName=group, UserPoolId=pool)
        tokens = {}
        for name, groups in PEOPLE.items():
            idp.admin_create_user(UserPoolId=pool, Username=name, TemporaryPassword="Temp-pass-123!")
            idp.admin_set_user_password(UserPoolId=pool, Username=name, Password=PASSWORD, Permanent=True)
            for group in groups:
                idp.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName=group)
            tokens[name] = idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
                "USERNAME": name, "PASSWORD": PASSWORD})["AuthenticationResult"]["AccessToken"]
        # tokens that must not sign anyone in: another pool's, an expired one, one signed by another key
        other = idp.create_user_pool(PoolName="elsewhere")["UserPool"]["Id"]
        other_client = idp.create_user_pool_client(UserPoolId=other, ClientName="x")["UserPoolClient"]["ClientId"]
        idp.create_group(GroupName="admin", UserPoolId=other)
        idp.admin_create_user(UserPoolId=other, Username="eve", TemporaryPassword="Temp-pass-123!")
        idp.admin_set_user_password(UserPoolId=other, Username="eve", Password=PASSWORD, Permanent=True)
        idp.admin_add_user_to_group(UserPoolId=other, Username="eve", GroupName="admin")
        tokens["other pool"] = idp.initiate_auth(ClientId=other_client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
            "USERNAME": "eve", "PASSWORD": PASSWORD})["AuthenticationResult"]["AccessToken"]
        moto_key = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))  # the mock pool's own key
        genuine = jwt.decode(tokens["ada"], moto_key).claims
        tokens["expired"] = pool_token({**genuine, "exp": int(time.time()) - 60, "iat": int(time.time()) - 3660}, moto_key)
        tokens["forged"] = pool_token({**genuine, "exp": int(time.time()) + 3600}, RSAKey.generate_key(2048))
        env.setenv("REELSCOPE_USER_POOL_ID", pool)
        env.setenv("REELSCOPE_USER_POOL_CLIENT_ID", client)
        env.setenv("REELSCOPE_JWKS_URL", f"{cloud.endpoint}/{pool}/.well-known/jwks.json")
        yield Door(cloud, jobs, tokens, pool, client)


def security_table() -> dict[tuple[str, str], str]:
    """docs/SECURITY.md's table: (method, path) -> who may call it."""
    text = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    return {(m[1], m[2]): m[3] for m in re.finditer(r"^\| `(\w+) ([^`]+)` \| [^|]+ \| ([^|]+) \|$", text, re.M)}


def filled(path: str, door: Door) -> str:
    values = {"job_id": door.jobs["alpha"], "token": "A" * 32, "name": "report.json", "case": "alpha", "fetch_id": "0" * 32}
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


QUERIES = {"/jobs/{job_id}/artifacts": {"kind": "thumbnail"}, "/audit": {"day": "2026-01-01"},
           "/search": {"q": "kitchen"}, "/auth/callback": {"code": "abc", "state": "x"}}
# Allowed calls the matrix does not make: they would change what the other tests read (they have their own).
CHANGING = {("DELETE", "/jobs/{job_id}"), ("POST", "/jobs/{job_id}/runs")}


def test_every_route_answers_every_caller_as_the_security_table_says(door):
    table = security_table()
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    routes = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert set(table) == routes  # the table covers every route, and only routes
    seen = []
    for (method, path), who in sorted(table.items()):
        for caller in (*PEOPLE, "other pool", "expired", "forged", None):
            role = ROLE.get(caller)
            mine = path.startswith("/jobs/{job_id}")
            if who == "anyone":
                expected = "open"
            elif role is None:  # no one, or a token that signs no one in
                expected = "302" if (method, path) in {("GET", "/"), ("GET", "/jobs/{job_id}/report")} else "401"
            elif mine and role != "admin" and "alpha" not in CASES[caller]:
                expected = "404"  # a job of another case is not there for them
            else:
                expected = "pass" if role in MAY[who] else "403"
            if expected == "pass" and (method, path) in CHANGING:
                continue
            body = {} if method in ("POST", "PUT") else None
            status, said, headers = answer(door, method, filled(path, door), door.tokens.get(caller), body,
                                           QUERIES.get(path), cookie=caller == "val")
            where = f"{method} {path} as {caller}: {status} {str(said)[:120]}"
            if expected == "302":
                assert status == 302 and headers["Location"].startswith("/v1/auth/login?next=/v1"), where
            elif expected == "404":
                assert (status, said) == (404, {"message": f"job {door.jobs['alpha']} not found"}), where
            elif expected in ("401", "403"):
                assert status == int(expected), where
            else:  # past the door: whatever the route itself says of this request
                assert status not in (401, 403) and said != {"message": f"job {door.jobs['alpha']} not found"}, where
            seen.append(expected)
    assert {"open", "pass", "302", "401", "403", "404"} <= set(seen) and len(seen) > 200


def test_a_viewer_of_one_case_never_sees_the_other(door):
    alpha, bravo = door.jobs["alpha"], door.jobs["bravo"]
    listed = {name: {job["job_id"] for job in answer(door, "GET", "/jobs", door.tokens[name])[1]["jobs"]}
              for name in ("ada", "val", "bob")}
    assert listed == {"ada": {alpha, bravo, door.jobs["doomed"]}, "val": {alpha, door.jobs["doomed"]}, "bob": {bravo}}
    # one job a page: the cursor of a caller of one case goes on in that case only
    status, first, _ = answer(door, "GET", "/jobs", door.tokens["val"], query={"limit": "1"})
    status, second, _ = answer(door, "GET", "/jobs", door.tokens["val"], query={"limit": "1", "next": first["next"]})
    assert {first["jobs"][0]["job_id"], second["jobs"][0]["job_id"]} == {alpha, door.jobs["doomed"]} and second["next"] is None
    assert answer(door, "GET", "/jobs", door.tokens["ada"], query={"next": first["next"]})[0] == 422
    for mode in ("keyword", "semantic", "hybrid"):
        hits = {name: {hit["job_id"] for hit in answer(door, "GET", "/search", door.tokens[name],
                                                       query={"q": "open the kitchen window", "mode": mode})[1]["hits"]}
                for name in ("ada", "val", "bob")}
        assert hits == {"ada": {alpha, bravo}, "val": {alpha}, "bob": {bravo}}, mode
    for path in (f"/jobs/{bravo}", f"/jobs/{bravo}/report", f"/jobs/{bravo}/exports/report.json",
                 f"/jobs/{bravo}/artifacts"):
        assert answer(door, "GET", path, door.tokens["val"], query={"kind": "evidence"})[:2] == (
            404, {"message": f"job {bravo} not found"}), path
    # a share: an analyst of the case makes one; the viewer may not; the other case's analyst cannot even find the job
    status, share, _ = answer(door, "POST", f"/jobs/{alpha}/shares", door.tokens["ann"], {})
    assert status == 201
    assert answer(door, "POST", f"/jobs/{alpha}/shares", door.tokens["val"], {})[0] == 403
    assert answer(door, "DELETE", f"/jobs/{alpha}/shares/{share['token']}", door.tokens["bob"])[0] == 404
    opened = requests.get  # the share page needs no sign-in: through the gateway it is an open route
    assert opened and answer(door, "GET", f"/s/{share['token']}/report.json")[0] == 200
    # an export goes through the API (recorded), then on to the file
    status, _, headers = answer(door, "GET", f"/jobs/{alpha}/exports/report.json", door.tokens["val"], cookie=True)
    assert status == 302 and requests.get(headers["Location"], timeout=30).json()["source"]["job_id"] == alpha


def test_the_audit_trail_says_who_did_what_and_only_admins_read_it(door):
    alpha = door.jobs["alpha"]
    assert answer(door, "GET", f"/jobs/{alpha}/report", door.tokens["val"], cookie=True)[0] == 200
    assert answer(door, "GET", "/search", door.tokens["val"], query={"q": "windy weather"})[0] == 200
    assert answer(door, "GET", f"/jobs/{alpha}/audit", door.tokens["ann"])[0] == 403
    status, trail, _ = answer(door, "GET", f"/jobs/{alpha}/audit", door.tokens["ada"])
    assert status == 200
    done = [(r["action"], r["user"]) for r in trail["records"]]
    assert done[0] == ("job-created", "s3")  # dropped straight into the bucket: no uploader's name
    assert {("report-view", "val"), ("export-download", "val"), ("share-create", "ann")} <= set(done)
    view = next(r for r in trail["records"] if r["action"] == "report-view" and r["user"] == "val")
    assert (view["role"], view["case_id"], view["source_ip"]) == ("viewer", "alpha", "203.0.113.9")
    share = next(r for r in trail["records"] if r["action"] == "share-create" and r["user"] == "ann")
    assert "token" not in share["detail"] and len(share["detail"].get("expires_at", 0).__str__()) == 10
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    status, archive, _ = answer(door, "GET", "/audit", door.tokens["ada"], query={"day": day})
    searches = [r for r in archive["records"] if r["action"] == "search" and r["user"] == "val"]
    assert any(r["detail"]["query"]["q"] == "windy weather" for r in searches)
    status, csv_text, headers = answer(door, "GET", f"/jobs/{alpha}/audit", door.tokens["ada"], query={"format": "csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv") and "report-view,val,viewer" in csv_text
    # the API may add records, never change one: a record's key is new or the put fails
    records = boto3.client("dynamodb").scan(TableName="reelscope-audit")["Items"]
    assert len({(r["trail"]["S"], r["at"]["S"]) for r in records}) == len(records) > 5


def test_a_deleted_job_leaves_nothing_but_its_trail_and_a_held_case_keeps_it(door):
    doomed, cloud = door.jobs["doomed"], door.cloud
    status, share, _ = answer(door, "POST", f"/jobs/{doomed}/shares", door.tokens["ann"], {})
    assert status == 201
    assert answer(door, "PUT", "/cases/alpha", door.tokens["ann"], {"held": True})[0] == 403
    assert answer(door, "PUT", "/cases/alpha", door.tokens["ada"], {"held": True})[1]["held"] is True
    status, said, _ = answer(door, "DELETE", f"/jobs/{doomed}", door.tokens["ann"])
    assert status == 409 and "case alpha is on hold" in said["message"]
    assert answer(door, "DELETE", f"/jobs/{doomed}", door.tokens["val"])[0] == 403
    assert answer(door, "DELETE", f"/jobs/{doomed}", door.tokens["bob"])[0] == 404
    assert answer(door, "PUT", "/cases/alpha", door.tokens["ada"], {"held": False})[0] == 200
    assert engine.open_table(engine.DOCUMENTS).count_rows(f"job_id = '{doomed}'") > 0
    status, deleted, _ = answer(door, "DELETE", f"/jobs/{doomed}", door.tokens["ann"])
    assert status == 200 and deleted["objects_deleted"] > 10, deleted
    s3 = boto3.client("s3")
    assert "Versions" not in s3.list_object_versions(Bucket=cloud.store.bucket, Prefix=f"jobs/{doomed}/")
    assert "Versions" not in s3.list_object_versions(Bucket=cloud.store.bucket, Prefix="uploads/alpha/doomed.mp4")
    assert boto3.client("dynamodb").query(TableName="reelscope-jobs", KeyConditionExpression="PK = :pk",
                                          ExpressionAttributeValues={":pk": {"S": f"JOB#{doomed}"}})["Count"] == 0
    assert engine.open_table(engine.DOCUMENTS).count_rows(f"job_id = '{doomed}'") == 0
    assert answer(door, "GET", f"/s/{share['token']}/report.json")[0] == 404
    assert answer(door, "GET", f"/jobs/{doomed}", door.tokens["ada"])[0] == 404
    assert answer(door, "DELETE", f"/jobs/{doomed}", door.tokens["ada"])[0] == 404
    trail = answer(door, "GET", f"/jobs/{doomed}/audit", door.tokens["ada"])[1]["records"]
    assert [r["action"] for r in trail][-1] == "delete" and trail[-1]["user"] == "ann" and trail[-1]["case_id"] == "alpha"
    assert door.jobs["alpha"] in {j["job_id"] for j in answer(door, "GET", "/jobs", door.tokens["ann"])[1]["jobs"]}


def test_an_exported_folder_is_checked_against_its_signed_manifest(door, tmp_path):
    folder = door.cloud.export(door.jobs["bravo"], tmp_path)
    verdict = integrity.verify_folder(folder)
    assert verdict.ok and verdict.checked > 10, verdict.problems
    key = answer(door, "GET", "/signing-key", door.tokens["val"])[1]
    assert key["fingerprint"] == verdict.key_fingerprint
    signed = json.loads((folder / integrity.SIGNATURE).read_text())
    report = json.loads((folder / "report.json").read_text())
    assert signed["statement"]["source_sha256"] == report["source"]["sha256"] == answer(
        door, "GET", f"/jobs/{door.jobs['bravo']}", door.tokens["bob"])[1]["job"]["source_sha256"]
    command = [sys.executable, "-m", "reelscope.cli", "verify", str(folder)]
    assert subprocess.run(command, capture_output=True, text=True, timeout=60).returncode == 0
    (folder / "subtitles.vtt").write_bytes((folder / "subtitles.vtt").read_bytes().replace(b"kitchen", b"kitchan"))
    (folder / "transcript.csv").unlink()
    (folder / "extra.txt").write_text("planted")
    verdict = integrity.verify_folder(folder)
    assert verdict.problems == ["subtitles.vtt: changed", "transcript.csv: missing", "extra.txt: added (not in the manifest)"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "subtitles.vtt: changed" in done.stdout and "NOT intact: 3 problems" in done.stdout
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"status": "SUCCEEDED"', '"status": "SUCCEEDED" '))
    assert integrity.verify_folder(folder).problems == ["manifest.json: changed (its SHA-256 is not the signed one)"]


def test_the_pools_login_returns_through_the_callback_with_pkce(door, monkeypatch):
    """GET /auth/login sends the browser to the pool with a PKCE challenge; GET /auth/callback trades
    the code and the verifier at the pool's token endpoint (a stand-in here, which checks the
    verifier against the challenge, as the pool does) and sets the session cookie."""
    sent = {}

    class TokenEndpoint(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the handler's name
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            digest = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).decode().rstrip("=")
            good = (digest, form["code"], form["redirect_uri"]) == (sent["code_challenge"], "the-code", sent["redirect_uri"])
            body = json.dumps({"access_token": door.tokens["val"], "expires_in": 3600} if good else {"error": "invalid_grant"})
            self.send_response(200 if good else 400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REELSCOPE_USER_POOL_DOMAIN", f"http://127.0.0.1:{server.server_port}")
    try:
        status, _, headers = answer(door, "GET", "/auth/login", query={"next": "/v1/jobs"})
        assert status == 302 and headers["Location"].startswith(f"http://127.0.0.1:{server.server_port}/oauth2/authorize?")
        sent.update({k: v[0] for k, v in parse_qs(urlsplit(headers["Location"]).query).items()})
        assert sent["client_id"] == door.client and sent["code_challenge_method"] == "S256"
        assert sent["redirect_uri"] == "https://example.execute-api.us-east-1.amazonaws.com/v1/auth/callback"
        login = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"] and "Secure" in headers["Set-Cookie"]

        def back(state: str, cookie: str | None) -> dict:
            returned = event("GET", "/auth/callback", query={"code": "the-code", "state": state})
            if cookie:
                returned["headers"]["Cookie"] = cookie
            return door.cloud.api(returned)

        assert back("not the state", login)["statusCode"] == 400
        assert back(sent["state"], None)["statusCode"] == 400  # a callback this browser did not start
        result = back(sent["state"], login)
        assert result["statusCode"] == 302 and result["multiValueHeaders"]["Location"] == ["/v1/jobs"]
        cookies = result["multiValueHeaders"]["Set-Cookie"]
        assert cookies[0].startswith(f"reelscope_session={door.tokens['val']};") and "Secure" in cookies[0]
        assert cookies[1].startswith("reelscope_login=;")  # the verifier is gone
        session = cookies[0].split(";")[0].split("=", 1)[1]
        assert answer(door, "GET", "/me", session, cookie=True)[1]["user"] == "val"
    finally:
        server.shutdown()
