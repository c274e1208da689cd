"""Local mode for a team: users added with `reelscope users add`, sign-in with a session cookie,
the wait that grows with wrong passwords, sign-out everywhere, the S3 endpoint closed to anyone
without the owner's keys or a presigned form, `serve --bind` refusing to open without users, and
the whole door in Chromium: sign in, open a report, search, sign out, refused after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from reelscope.access import sessions
from reelscope.local.cloud import LocalCloud
from reelscope.local.names import BUCKET
from reelscope.local.servers import ApiServer

from ..localmode import run

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"ada": "correct horse battery", "val": "viewer of alpha 1"}


def cli(*args: str, stdin: str = "", timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reelscope.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


@pytest.fixture(scope="module")
def team(tmp_path_factory, speech_video, model_dir, fall_weights):
    state = tmp_path_factory.mktemp("state")
    for name, role, cases in (("ada", "admin", []), ("val", "viewer", ["alpha"])):
        done = cli("users", "add", name, "--role", role, *(f"--case={c}" for c in cases), "--state-dir", str(state),
                   stdin=PASSWORDS[name] + "\n")
        assert done.returncode == 0, done.stderr
    video, _ = speech_video
    with pytest.MonkeyPatch.context() as env, LocalCloud(state) as cloud:
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        ran = {case: run(cloud, video, f"uploads/{case}/speech.mp4") for case in ("alpha", "bravo")}
        # the state machine's own calls (its DynamoDB states) pass the endpoint that now takes signatures only
        assert {job["status"] for _, job in ran.values()} == {"SUCCEEDED"}, ran
        jobs = {case: job_id for case, (job_id, _) in ran.items()}
        with ApiServer(cloud.runner) as api:
            cloud.page_origins.add(api.url)
            yield cloud, api, jobs, state


def test_users_are_listed_and_their_passwords_kept_as_scrypt_hashes(team):
    _, _, _, state = team
    listed = cli("users", "list", "--state-dir", str(state))
    assert listed.stdout.splitlines() == ["ada\tadmin\tevery case", "val\tviewer\talpha"]
    stored = json.loads((state / "users.json").read_text())
    assert stored["val"]["password"].startswith("scrypt$32768$8$") and PASSWORDS["val"] not in json.dumps(stored)
    assert oct((state / "users.json").stat().st_mode & 0o777) == "0o600"
    refused = cli("users", "add", "vic", "--role", "viewer", "--state-dir", str(state), stdin="long enough password\n")
    assert refused.returncode == 2 and "needs at least one --case" in refused.stderr


def test_serve_beyond_loopback_needs_users(tmp_path):
    done = cli("serve", "--bind", "0.0.0.0", "--port", "0", "--api-port", "0", "--state-dir", str(tmp_path), timeout=60)
    assert done.returncode == 2 and "local mode needs users" in done.stderr and "reelscope users add" in done.stderr


def test_sign_in_sign_out_and_the_wait_after_wrong_passwords(team):
    cloud, api, jobs, _ = team
    assert requests.get(f"{api.url}/jobs", timeout=30).status_code == 401
    page = requests.get(f"{api.url}/jobs/{jobs['alpha']}/report", allow_redirects=False, timeout=30)
    assert page.status_code == 302 and page.headers["Location"] == f"/auth/login?next=/jobs/{jobs['alpha']}/report"
    assert "Sign in" in requests.get(f"{api.url}/auth/login", timeout=30).text
    wrong = requests.post(f"{api.url}/auth/login", json={"user": "val", "password": "guess"}, timeout=30)
    assert wrong.status_code == 401 and wrong.headers["Retry-After"] == "1"
    too_soon = requests.post(f"{api.url}/auth/login", json={"user": "val", "password": PASSWORDS["val"]}, timeout=30)
    assert too_soon.status_code == 429 and int(too_soon.headers["Retry-After"]) >= 1
    cloud.store.table.delete_item(Key={"PK": "SIGNIN#val", "SK": "SIGNIN"})  # the second has passed
    browser = requests.Session()
    signed = browser.post(f"{api.url}/auth/login", json={"user": "val", "password": PASSWORDS["val"]}, timeout=30)
    assert signed.status_code == 200 and signed.json()["role"] == "viewer"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and sessions.COOKIE in browser.cookies
    assert {job["job_id"] for job in browser.get(f"{api.url}/jobs", timeout=30).json()["jobs"]} == {jobs["alpha"]}
    assert browser.get(f"{api.url}/jobs/{jobs['bravo']}", timeout=30).status_code == 404
    bearer = {"Authorization": f"Bearer {signed.json()['token']}"}  # an API client: the same session as a token
    assert requests.get(f"{api.url}/me", headers=bearer, timeout=30).json()["user"] == "val"
    assert browser.post(f"{api.url}/auth/logout", timeout=30).json()["signed_out"] is True
    assert requests.get(f"{api.url}/me", headers=bearer, timeout=30).status_code == 401  # ended everywhere


def test_with_users_the_s3_endpoint_takes_the_owners_keys_and_presigned_forms_only(team):
    cloud, api, jobs, _ = team
    key = f"jobs/{jobs['alpha']}/report.json"
    assert requests.get(f"{cloud.endpoint}/{BUCKET}/{key}", timeout=30).status_code == 403  # unsigned

    def client(secret: str):
        return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key=secret).client(
            "s3", endpoint_url=cloud.endpoint, region_name="us-east-1", config=Config(retries={"max_attempts": 1}))

    assert json.loads(client(cloud.secret).get_object(Bucket=BUCKET, Key=key)["Body"].read())["source"]["job_id"]
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        client("local").get_object(Bucket=BUCKET, Key=key)  # the old well-known secret opens nothing
    assert requests.get(cloud.store.presigned_get(key, 60), timeout=30).status_code == 200  # the pages' links
    ada = requests.post(f"{api.url}/auth/login", json={"user": "ada", "password": PASSWORDS["ada"]}, timeout=30).json()
    form = requests.post(f"{api.url}/uploads", json={"file_name": "x.mp4", "case": "alpha"}, timeout=30,
                         headers={"Authorization": f"Bearer {ada['token']}"}).json()
    assert form["key"].startswith("uploads/alpha/") and form["fields"]["x-amz-meta-uploaded-by"] == "ada"
    sent = requests.post(form["url"], data=form["fields"], files={"file": ("x.mp4", b"not a video")}, timeout=30)
    assert sent.status_code == 204
    cloud.deliver_uploads()
    forged = {**form["fields"], "x-amz-meta-uploaded-by": "val"}  # who uploaded is under the signature
    assert requests.post(form["url"], data=forged, files={"file": ("x.mp4", b"x")}, timeout=30).status_code == 403


def test_in_chromium_sign_in_open_a_report_search_sign_out_and_be_refused(team):
    from playwright.sync_api import sync_playwright

    _, api, jobs, _ = team
    shots = ROOT / "test-output"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(f"{api.url}/jobs/{jobs['alpha']}/report")
        assert "/auth/login" in page.url
        page.fill("#user", "val")
        page.fill("#password", "not it")
        page.click("#signin button")
        page.wait_for_function("document.getElementById('said').textContent.includes('wrong user or password')")
        page.wait_for_timeout(1100)  # the wait a wrong password set
        page.fill("#password", PASSWORDS["val"])
        page.click("#signin button")
        page.wait_for_url(f"{api.url}/jobs/{jobs['alpha']}/report")
        page.locator("#account button").wait_for()
        assert "val · viewer · alpha" in page.locator("#account").inner_text()
        assert page.locator("#trail").is_hidden()  # a viewer reads no trail
        page.fill("#q", "kitchen window")
        page.click("#search button")
        page.locator("#hits button .time").first.wait_for()
        assert "kitchen" in page.locator("#hits").inner_text().lower()
        page.screenshot(path=str(shots / "signed-in-report.png"), full_page=False)
        page.goto(f"{api.url}/")
        page.locator("#videos .card").first.wait_for()
        names = page.eval_on_selector_all("#videos .card .name", "cards => cards.map(c => c.textContent)")
        assert names.count("speech.mp4") == 1  # alpha's; bravo's is not listed
        page.click("#account button")
        page.wait_for_url(f"{api.url}/auth/login")
        page.goto(f"{api.url}/jobs/{jobs['alpha']}/report")
        assert "/auth/login" in page.url  # signed out: sent to sign in again
        assert page.request.get(f"{api.url}/jobs").status == 401
        browser.close()
