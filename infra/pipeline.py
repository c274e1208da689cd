"""The pipeline: the Lambda functions (one code asset and two layers, or the search image) and the state machine from
statemachine/pipeline.asl.json that runs them and the Batch jobs, with the rule that fails a job
whose execution ended without its Catch."""

from __future__ import annotations

from access import grant_access
from aws_cdk import Acknowledgment, AssetHashType, BundlingOptions, DockerImage, Duration, RemovalPolicy, Size, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_stepfunctions as sfn
from bundling import BASE, FFMPEG, SEARCH_IMAGE, CoreBundle
from compute import BatchPlatform
from config import ROOT, Config
from constructs import Construct
from storage import Storage

from reelscope.definition import BATCH_PLACEHOLDERS, DEFINITION, LAMBDA_PLACEHOLDERS, TABLE_PLACEHOLDER

# Lambda sizing (limits: 15 min, 10,240 MB memory and /tmp). Memory also buys CPU: about one vCPU
# per 1,769 MB, six at 10,240 MB. Steps that hold the video in /tmp get the full 10 GB of it.
FUNCTIONS = {
    # name: (memory MB, timeout, ephemeral /tmp MB, why)
    "ingest": (256, Duration.seconds(30), 512, "one conditional put and one StartExecution per object"),
    "probe": (2048, Duration.minutes(5), 10240, "downloads the upload (up to 10 GB) for ffprobe and a tail decode"),
    "downscale": (10240, Duration.minutes(15), 10240, "x264 uses all 6 vCPUs; media up to 10 min / 2 GiB only"),
    "subtitles": (512, Duration.minutes(1), 512, "JSON in, two text files out"),
    # index: an hour of 720p took 13.1 s and 151 MiB of Python allocations at the peak on 2 cores
    # (bench_long.py, docs/BENCHMARKS.md); four hours, the longest media probe allows: far inside both
    "index": (1769, Duration.minutes(5), 512, "exports, the search index: one vCPU embeds ~180 segments/s"),
    "mark_failed": (256, Duration.seconds(30), 512, "one UpdateItem"),
    "api": (1024, Duration.seconds(29), 512, "API Gateway's integration timeout is 29 s; holds the embedder"),
    "fetch": (1024, Duration.minutes(15), 512, "streams a URL into S3 (multipart, nothing on /tmp)"),
    "search_maintain": (1769, Duration.minutes(15), 2048, "hourly: compacts the search tables, refreshes their indexes"),
    "authorizer": (512, Duration.seconds(10), 512, "checks a token against the user pool's keys (read once per process)"),
}
# The functions that open the search engine's tables: a container image (functions/search.Dockerfile).
IMAGE_FUNCTIONS = ("index", "api", "search_maintain")
SEARCH_MAINTENANCE_EVERY = Duration.hours(1)


def vcpus(memory_mb: int) -> int:
    """A Lambda function's vCPUs: each job owns its cores, so ffmpeg may use them all
    (REELSCOPE_FFMPEG_THREADS; the default of a third of the cores is for local mode's shared machine)."""
    return min(6, -(-memory_mb // 1769))


# Every function has the base layer; these have more (see infra/bundling.py).
EXTRA_LAYERS = {"probe": ("ffmpeg",), "downscale": ("ffmpeg",)}


class Pipeline(Construct):
    """The functions, each with its own role and log group and the grants ACCESS gives it; the
    state machine and what its role may call; the execution-ended rule."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, storage: Storage, batch_jobs: BatchPlatform,
                 retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        prefix = f"reelscope-{config.stage}"
        core = lambda_.Code.from_asset(str(ROOT), asset_hash_type=AssetHashType.OUTPUT, bundling=BundlingOptions(
            image=DockerImage.from_registry("unused-local-bundling"), local=CoreBundle()),
            exclude=[".venv*", "node_modules", "cdk.out", ".git", "out", "tests", "bench", "containers", "docs"])
        layers = {name: lambda_.LayerVersion(
            self, f"{name.title()}Layer", compatible_runtimes=[lambda_.Runtime.PYTHON_3_14], description=description,
            # The name in the options: CDK caches bundling by source and options, and the three share a source.
            code=lambda_.Code.from_asset(str(ROOT / "infra"), asset_hash_type=AssetHashType.OUTPUT, bundling=BundlingOptions(
                image=DockerImage.from_registry("unused-local-bundling"), local=bundle, environment={"LAYER": name})))
            for name, bundle, description in (
                ("base", BASE, "Powertools, pydantic, pillow, fpdf2, joserfc, cryptography; DejaVu Sans in /opt/fonts"),
                ("ffmpeg", FFMPEG, "static ffmpeg and ffprobe in /opt/bin"))}
        search_image = dict(directory=str(ROOT), file="functions/search.Dockerfile", build_args=SEARCH_IMAGE,
                            exclude=[".venv*", "node_modules", "cdk.out", ".git", "out", "tests", "bench", "containers", "docs"])
        environment = {
            "REELSCOPE_BUCKET": storage.bucket.bucket_name, "REELSCOPE_TABLE": storage.table.table_name,
            "REELSCOPE_AUDIT_TABLE": storage.audit.table_name, "REELSCOPE_SIGNING_KEY_ID": storage.signing_key.key_arn,
            "REELSCOPE_SEARCH_URI": f"s3://{storage.bucket.bucket_name}/search",
            "REELSCOPE_WHISPER_MODEL": config.whisper_model_path, "REELSCOPE_YOLO_WEIGHTS": config.yolo_weights,
            "POWERTOOLS_METRICS_NAMESPACE": "reelscope", "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.functions: dict[str, lambda_.Function] = {}
        for name, (memory, timeout, tmp, why) in FUNCTIONS.items():
            log_group = logs.LogGroup(self, f"{name}Logs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
            # An own role: writing to its own log group replaces the managed basic-execution policy.
            role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
            role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                                   resources=[log_group.log_group_arn]))
            handler = f"functions.{name}.app.handler"
            if name in IMAGE_FUNCTIONS:
                packaged = {"code": lambda_.Code.from_asset_image(**search_image, cmd=[handler]),
                            "handler": lambda_.Handler.FROM_IMAGE, "runtime": lambda_.Runtime.FROM_IMAGE}
            else:
                packaged = {"code": core, "handler": handler, "runtime": lambda_.Runtime.PYTHON_3_14,
                            "layers": [layers["base"], *(layers[extra] for extra in EXTRA_LAYERS.get(name, ()))]}
            self.functions[name] = lambda_.Function(
                self, f"{name.title().replace('_', '')}Function", function_name=f"{prefix}-{name.replace('_', '-')}",
                description=f"reelscope {name}: {why}", architecture=lambda_.Architecture.X86_64, **packaged,
                memory_size=memory, timeout=timeout, ephemeral_storage_size=Size.mebibytes(tmp),
                environment={**environment, "POWERTOOLS_SERVICE_NAME": f"reelscope-{name}",
                             "REELSCOPE_FFMPEG_THREADS": str(vcpus(memory))},
                tracing=lambda_.Tracing.ACTIVE, log_group=log_group, role=role,
                **({"on_failure": destinations.SqsDestination(storage.dlq), "retry_attempts": 2} if name == "ingest" else {}))
        fn = self.functions
        for name, function in fn.items():  # the API's uploads/* write signs the presigned POSTs
            grant_access(function, name, storage.bucket, storage.table, storage.audit, storage.signing_key)
        storage.bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(fn["ingest"]),
                                           s3.NotificationKeyFilter(prefix="uploads/"))


        machine_logs = logs.LogGroup(self, "PipelineLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY,
                                     log_group_name=f"/aws/vendedlogs/states/{prefix}-pipeline")
        self.state_machine = sfn.StateMachine(
            self, "Pipeline", state_machine_name=f"{prefix}-pipeline",
            # Inlined (not DefinitionBody.from_file): cfn-lint then sees and checks the definition.
            definition_body=sfn.DefinitionBody.from_string(DEFINITION.read_text(encoding="utf-8")),
            definition_substitutions={
                TABLE_PLACEHOLDER: storage.table.table_name,
                **{placeholder: fn[name].function_arn for placeholder, name in LAMBDA_PLACEHOLDERS.items()},
                **{placeholder: batch_jobs.arn(compute, kind) for placeholder, (compute, kind) in BATCH_PLACEHOLDERS.items()},
            },
            logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True, timeout=Duration.hours(6))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[
            fn[name].function_arn for name in ("probe", "downscale", "subtitles", "index", "mark_failed")]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:UpdateItem"],
                                                                  resources=[storage.table.table_arn]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["batch:SubmitJob"], resources=[
            batch_jobs.gpu_queue.job_queue_arn, batch_jobs.cpu_queue.job_queue_arn,
            batch_jobs.gpu_job.job_definition_arn, batch_jobs.cpu_job.job_definition_arn]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["batch:DescribeJobs", "batch:TerminateJob"], resources=["*"]))  # no resource-level permissions
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[Stack.of(self).format_arn(service="events", resource="rule",
                                       resource_name="StepFunctionsGetEventsForBatchJobsRule")]))
        # An execution that ends without its Catch (an uncatchable error, the 6 h timeout, a StopExecution)
        # would leave its job RUNNING forever: its status change event marks it FAILED instead.
        events.Rule(self, "ExecutionEnded", description="reelscope: a failed, timed-out or aborted execution fails its job",
                    event_pattern=events.EventPattern(
                        source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                        detail={"status": ["FAILED", "TIMED_OUT", "ABORTED"],
                                "stateMachineArn": [self.state_machine.state_machine_arn]}),
                    targets=[targets.LambdaFunction(fn["mark_failed"], retry_attempts=4, dead_letter_queue=storage.dlq)])
        events.Rule(self, "SearchMaintenance", description="reelscope: compact the search tables, refresh their indexes",
                    schedule=events.Schedule.rate(SEARCH_MAINTENANCE_EVERY),
                    targets=[targets.LambdaFunction(fn["search_maintain"], retry_attempts=2)])
        fn["api"].add_environment("REELSCOPE_FETCH_FUNCTION", fn["fetch"].function_name)
        fn["api"].add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                         resources=[fn["fetch"].function_arn]))
        for starter in ("ingest", "api"):  # new uploads; reruns (POST /jobs/{id}/runs, the rerun metadata)
            fn[starter].add_environment("REELSCOPE_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
            self.state_machine.grant_start_execution(fn[starter])
        Validations.of(self).acknowledge(Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            reason="Only actions that have no resource-level permissions: X-Ray PutTraceSegments/PutTelemetryRecords "
                   "(tracing), batch:DescribeJobs/TerminateJob, and Step Functions' CloudWatch Logs delivery actions."))
