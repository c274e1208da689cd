"""Least privilege, proven by the calls the code makes: every AWS call each Lambda function and the
Batch jobs made in local mode (reelscope.local.calls), judged against the policies of their roles
in the synthesized template (infra/permissions.py). Recorded here: an upload through the state
machine, a presigned POST of a file probe refuses, a rerun, naming speakers, a share link, search,
the job pages, and a URL ingest. No network, no AWS credentials."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import requests

from reelscope.local.calls import CallRecorder
from reelscope.local.cloud import LocalCloud

from ..conftest import MAN, WOMAN, alternating, talk
from .test_api import call, fetch_outcome, get, request, serving_videos

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))

# (The authorizer is not among them: it makes no AWS call, and its role grants none.)
PRINCIPALS = ("ingest", "probe", "downscale", "subtitles", "index", "mark_failed", "api", "fetch", "batch_job")
# Statements no recorded call needs, and why they are granted all the same.
NOT_CALLED_BY_THE_CODE = {
    "logs:CreateLogStream": "the Lambda runtime writes the function's log",
    "xray:PutTraceSegments": "the Lambda runtime sends the function's traces (tracing is on)",
    "sqs:SendMessage": "Lambda sends an event ingest failed on to the dead-letter queue",
}


@pytest.fixture(scope="module")
def template():
    import app as infra_app
    import aws_cdk as cdk
    import permissions

    cdk_app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    return permissions.Template(cdk.assertions.Template.from_stack(infra_app.build(cdk_app)).to_json())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, media_dir, model_dir, fall_weights) -> set:
    video, _ = talk(media_dir, "permissions-turns", alternating([MAN, WOMAN]))
    with (pytest.MonkeyPatch.context() as env, serving_videos() as video_server, CallRecorder() as recorder,
          LocalCloud(tmp_path_factory.mktemp("state")) as cloud):
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        env.setenv("REELSCOPE_FETCH_ALLOW_LOOPBACK", "true")
        job_id = cloud.upload(video, "uploads/turns.mp4")["job_id"]
        assert cloud.wait(job_id, timeout_s=300)["status"] == "SUCCEEDED"
        # the same file again, asking for a rerun (ingest reads the finished job and the upload's metadata)
        assert cloud.upload(video, "uploads/turns.mp4", rerun=True)["job_id"] == job_id
        assert cloud.wait(job_id, timeout_s=300)["status"] == "SUCCEEDED"
        params = {"job_id": job_id}
        # a browser's upload: a presigned POST, of a file probe refuses (mark_failed runs)
        status, form = call(cloud, request("POST", "/uploads", {"file_name": "broken.mp4", "content_type": "video/mp4"}))
        assert requests.post(form["url"], data=form["fields"], files={"file": ("broken.mp4", b"no video")},
                             timeout=30).status_code in (200, 204)
        (refused,) = [r for r in cloud.deliver_uploads() if r["key"] == form["key"]]
        assert cloud.wait(refused["job_id"], timeout_s=120)["status"] == "FAILED"
        # naming speakers runs the job again (every step reused); a rerun asked for
        assert call(cloud, request("PUT", f"/jobs/{job_id}/speakers", {"names": {"S2": "Lee"}},
                                   "/jobs/{job_id}/speakers", params))[0] == 200
        assert cloud.wait(job_id, timeout_s=300)["status"] == "SUCCEEDED"
        assert call(cloud, request("POST", f"/jobs/{job_id}/runs", None, "/jobs/{job_id}/runs", params))[0] == 202
        assert cloud.wait(job_id, timeout_s=300)["status"] == "SUCCEEDED"
        # a share link, opened and revoked; search; the pages and the job
        status, share = call(cloud, request("POST", f"/jobs/{job_id}/shares", {}, "/jobs/{job_id}/shares", params))
        assert get(cloud, f"/s/{share['token']}/report.json", "/s/{token}/report.json", {"token": share["token"]})[0] == 200
        revoked = cloud.api(request("DELETE", f"/jobs/{job_id}/shares/{share['token']}", None,
                                                        "/jobs/{job_id}/shares/{token}", {**params, "token": share["token"]}))
        assert revoked["statusCode"] == 204
        for mode in ("keyword", "semantic"):
            assert get(cloud, "/search", query={"q": "second unit", "mode": mode, "speaker": "Lee"})[0] == 200
        assert get(cloud, "/jobs")[0] == get(cloud, f"/jobs/{job_id}", "/jobs/{job_id}", params)[0] == 200
        assert get(cloud, f"/jobs/{job_id}/artifacts", "/jobs/{job_id}/artifacts", params, {"kind": "thumbnail"})[0] == 200
        assert cloud.api(request("GET", f"/jobs/{job_id}/report", None, "/jobs/{job_id}/report", params))["statusCode"] == 200
        # a URL fetched into uploads/ (the api invokes the fetch function), which starts a job
        status, accepted = call(cloud, request("POST", "/ingest", {"url": f"{video_server}/clip.mp4"}))
        assert fetch_outcome(cloud, accepted)["status"] == "SUCCEEDED"
        (fetched,) = [r for r in cloud.deliver_uploads() if r["key"] == accepted["key"]]
        cloud.wait(fetched["job_id"], timeout_s=120)
        # an export downloaded, the trail read, a case held and released, the signing key, a job deleted
        assert cloud.api(request("GET", f"/jobs/{job_id}/exports/report.json"))["statusCode"] == 302
        assert call(cloud, request("GET", f"/jobs/{job_id}/audit"))[0] == 200
        assert call(cloud, request("PUT", "/cases/default", {"held": True}))[0] == 200
        assert call(cloud, request("PUT", "/cases/default", {"held": False}))[0] == 200
        assert call(cloud, request("GET", "/signing-key"))[0] == 200
        # the jobs of a viewer's cases (the ByCase index), as API Gateway hands on the authorizer's caller
        viewer = request("GET", "/jobs")
        viewer["requestContext"]["authorizer"] = {"user": "val", "role": "viewer", "cases": "default"}
        listed, error = cloud.runner.invoke("api", viewer)
        assert error is None and listed["statusCode"] == 200 and json.loads(listed["body"])["jobs"]
        assert call(cloud, request("DELETE", f"/jobs/{job_id}"))[0] == 200
    return recorder.calls


def engine_grant(principal: str, statement) -> bool:
    """A grant for the search engine's own S3 client (infra/access.py SEARCH_ACCESS): not boto3, so
    not recorded here; tests/functional/test_search_engine.py runs it against moto's S3 server."""
    from access import SEARCH_ACCESS

    return principal in SEARCH_ACCESS and (all(r.endswith("/search/*") for r in statement.resources)
                                           or statement.actions == ("s3:ListBucket",))


def calls_of(recorded: set, principal: str) -> list:
    return sorted((c for c in recorded if c.principal == principal), key=lambda c: (c.action, c.resource))


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_recorded_call_is_allowed(principal, recorded, template):
    import permissions

    made = calls_of(recorded, principal)
    assert made, f"{principal} made no AWS call in the recorded runs"
    statements = template.statements(template.role_of(principal))
    refused = [f"{principal}: {c.action} on {c.resource}" for c in made
               if not permissions.allowed(statements, c.action, c.resource)]
    assert refused == [], "calls the deployed role would refuse (AccessDenied):\n" + "\n".join(refused)


def test_every_statement_is_needed(recorded, template):
    """Each Allow statement of each role lets through at least one recorded call (or its actions
    are the runtime's, listed with the reason): a statement no call needs is a grant too many."""
    import permissions
    from access import UNCALLED

    idle = []
    for principal in PRINCIPALS:
        statements = template.statements(template.role_of(principal))
        made = calls_of(recorded, principal)
        for statement in statements:
            if statement.effect != "Allow" or set(statement.actions) & set(NOT_CALLED_BY_THE_CODE) or \
                    engine_grant(principal, statement) or all((principal, a) in UNCALLED for a in statement.actions):
                continue
            others = [s for s in statements if s != statement]
            if all(permissions.allowed(others, c.action, c.resource) for c in made):
                idle.append(f"{principal}: {statement}")
    assert idle == []


def test_unused_grants_each_have_a_reason(recorded, template):
    """Every action a role allows on each resource it names, that its principal never called
    there, has a reason beside the grant (infra/access.py UNCALLED): the report is otherwise empty."""
    import fnmatch

    from access import UNCALLED

    unused = set()
    for principal in PRINCIPALS:
        made = calls_of(recorded, principal)
        for statement in template.statements(template.role_of(principal)):
            if engine_grant(principal, statement):
                continue
            for action in statement.actions:
                if action.startswith(("logs:", "xray:", "sqs:")) or (principal, action) in UNCALLED:
                    continue  # the runtime's own calls; granted with a reason
                unused |= {(principal, action, pattern) for pattern in statement.resources
                           if not any(c.action == action and fnmatch.fnmatchcase(c.resource, pattern) for c in made)}
    assert sorted(unused) == [], json.dumps(sorted(unused), indent=1)


# Actions IAM gives no resource-level permissions: the only ones a "*" resource may carry.
NO_RESOURCE_LEVEL = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
                     "batch:DescribeJobs", "batch:TerminateJob",
                     "ecr:GetAuthorizationToken", "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                     "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"}


def test_no_action_has_every_resource_where_it_could_name_one(template):
    starred = set()
    for logical, resource in template.resources.items():
        if resource["Type"] != "AWS::IAM::Policy" or logical.startswith("BucketNotificationsHandler"):
            continue  # CDK's own helper: acknowledged beside it in the stack
        for role in resource["Properties"]["Roles"]:
            for statement in template.statements(role["Ref"]):
                if "*" in statement.resources:
                    starred |= set(statement.actions) - NO_RESOURCE_LEVEL
    assert starred == set()


def test_the_state_machine_may_call_what_its_definition_calls(template):
    """Each Task of the ASL, with the template's substitutions: its service integration's actions
    on its resources, allowed by the state machine's role."""
    import permissions

    (machine,) = [(k, r) for k, r in template.resources.items() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    props = machine[1]["Properties"]
    definition = template.resolve(props["DefinitionString"])
    for name, value in template.resolve(props["DefinitionSubstitutions"]).items():
        definition = definition.replace("${" + name + "}", str(value))
    statements = template.statements(props["RoleArn"]["Fn::GetAtt"][0])
    needed = set()

    def tasks(states: dict):
        for state in states.values():
            yield from (t for branch in state.get("Branches", []) for t in tasks(branch["States"]))
            if state["Type"] == "Task":
                yield state

    for task in tasks(json.loads(definition)["States"]):
        resource, parameters = task["Resource"], task["Parameters"]
        if resource.endswith("lambda:invoke"):
            needed.add(("lambda:InvokeFunction", parameters["FunctionName"]))
        elif resource.endswith("batch:submitJob.sync"):
            needed |= {("batch:SubmitJob", parameters["JobQueue"]), ("batch:SubmitJob", parameters["JobDefinition"]),
                       ("events:PutRule", "arn:aws:events:us-east-1:123456789012:rule/StepFunctionsGetEventsForBatchJobsRule")}
        elif resource.endswith("dynamodb:updateItem"):
            needed.add(("dynamodb:UpdateItem", f"arn:aws:dynamodb:us-east-1:123456789012:table/{parameters['TableName']}"))
    assert len(needed) > 8
    assert [n for n in sorted(needed) if not permissions.allowed(statements, *n)] == []


DEPLOY = ROOT / "docs" / "DEPLOY.md"
TABLE_START = "<!-- the table below is made by tests/functional/test_permissions.py from the recorded calls -->\n"
TABLE_END = "<!-- end of the table -->\n"


def permissions_table(recorded: set) -> str:
    """Per principal, each action and the resources it touched: S3 keys by their first folder."""
    def shown(resource: str) -> str:
        if resource.startswith("arn:aws:s3:::") and "/" in resource:
            bucket, key = resource.removeprefix("arn:aws:s3:::").split("/", 1)
            return f"arn:aws:s3:::{bucket}/{key.split('/')[0]}/*"
        return resource

    rows = {}
    for c in recorded:
        rows.setdefault((c.principal, c.action), set()).add(shown(c.resource))
    lines = ["| function | action | resources |", "|---|---|---|"]
    lines += [f"| {who} | `{action}` | {', '.join(f'`{r}`' for r in sorted(found))} |"
              for (who, action), found in sorted(rows.items(), key=lambda kv: (PRINCIPALS.index(kv[0][0]), kv[0][1]))]
    return "\n".join(lines) + "\n"


def test_the_table_in_deploy_md_is_what_was_recorded(recorded):
    import os

    text = DEPLOY.read_text(encoding="utf-8")
    start = text.index(TABLE_START) + len(TABLE_START)
    written, made = text[start:text.index(TABLE_END, start)], permissions_table(recorded)
    if os.environ.get("REELSCOPE_WRITE_DOCS") == "1":
        DEPLOY.write_text(text[:start] + made + text[start + len(written):], encoding="utf-8")
        written = made
    assert written == made, "docs/DEPLOY.md's table is stale: REELSCOPE_WRITE_DOCS=1 scripts/test -k permissions"
