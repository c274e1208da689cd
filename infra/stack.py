"""The reelscope stack: media bucket, jobs table, Lambda functions, Batch GPU/CPU queues, the state
machine from statemachine/pipeline.asl.json, the API, and alarms. Sizes and choices are explained
where they are made; configuration comes from CDK context (see infra/app.py and the README)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    BundlingOptions,
    CfnOutput,
    DockerImage,
    Duration,
    RemovalPolicy,
    Size,
    Stack,
    Validations,
)
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from bundling import BASE, EMBEDDER, FFMPEG, CoreBundle
from constructs import Construct

from reelscope.definition import (
    BATCH_PLACEHOLDERS,
    BY_CREATED,
    BY_CREATED_KEY,
    DEFINITION,
    LAMBDA_PLACEHOLDERS,
    TABLE_KEY,
    TABLE_PLACEHOLDER,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    """CDK context values (cdk.json, or `cdk synth -c key=value`)."""

    stage: str = "dev"
    gpu_instance_types: tuple[str, ...] = ("g4dn.xlarge", "g5.xlarge")
    gpu_max_vcpus: int = 16
    cpu_max_vcpus: int = 16
    use_spot: bool = True
    # The GPU job's Whisper: "" the bundled base; a name (large-v3, medium...) with the URL of a .tar
    # of its CTranslate2 folder and that archive's sha256, fetched at image build, never at run time
    # (containers/gpu-batch/Dockerfile). A model named small or larger translates (translate.py).
    whisper_model: str = ""
    whisper_model_url: str = ""
    whisper_model_sha256: str = ""
    yolo_weights: str = "yolov8n.pt"
    # When containers/gpu-batch/models/ lacks that file, the image build fetches it from here and
    # checks it against this sha256 (never at run time; a mismatch fails the build). The default is
    # pinned: yolov8n.pt of that release, 6,549,796 bytes; another checkpoint needs its own checksum.
    yolo_weights_url: str = "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt"
    yolo_weights_sha256: str = "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"
    retention_days: int = 30
    alarm_email: str = ""

    def __post_init__(self) -> None:
        if self.whisper_model and not (self.whisper_model_url and self.whisper_model_sha256):
            raise ValueError(f"context whisperModel={self.whisper_model!r} needs whisperModelUrl (a .tar of its CTranslate2 "
                             "folder) and whisperModelSha256: the image fetches the weights at build, never at run time")

    @property
    def whisper_model_path(self) -> str:
        """REELSCOPE_WHISPER_MODEL everywhere (the same settings give the same step fingerprints)."""
        return f"/opt/reelscope/models/whisper-{self.whisper_model}" if self.whisper_model else ""

    @classmethod
    def from_context(cls, node) -> Config:
        def get(name, default):
            value = node.try_get_context(name)
            if value is None:
                return default
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() == "true"
            if isinstance(default, tuple):
                return tuple(value) if isinstance(value, list) else tuple(v.strip() for v in str(value).split(","))
            return type(default)(value)

        def camel(name: str) -> str:  # the context key: gpu_max_vcpus -> gpuMaxVcpus
            first, *rest = name.split("_")
            return first + "".join(part.capitalize() for part in rest)

        return cls(**{f.name: get(camel(f.name), f.default) for f in dataclasses.fields(cls)})


# Least privilege, by principal: S3 object prefixes it reads and writes, DynamoDB actions it needs
# on the table (and the indexes it queries). Nothing wider; explicit actions, no wildcards.
ITEMS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")
ACCESS = {
    # principal: (reads, writes, table actions, indexes)
    # ingest: + HEAD of the upload (its rerun metadata) and a rerun's job update
    "ingest": (("uploads/*",), (), ITEMS, ()),
    "probe": (("uploads/*", "jobs/*"), ("jobs/*",), ITEMS, ()),
    "downscale": (("uploads/*", "jobs/*"), ("jobs/*",), ITEMS, ()),
    "subtitles": (("jobs/*",), ("jobs/*",), ITEMS, ()),
    "index": (("jobs/*",), ("jobs/*",), ITEMS + ("dynamodb:BatchWriteItem",), ()),  # + the search terms
    "mark_failed": ((), (), ("dynamodb:UpdateItem",), ()),
    # api: + search hits read in one batch
    "api": (("jobs/*",), ("uploads/*",), ITEMS + ("dynamodb:BatchGetItem",), (BY_CREATED,)),
    "fetch": ((), ("uploads/*",), ("dynamodb:UpdateItem",), ()),
    "batch_job": (("uploads/*", "jobs/*"), ("jobs/*",), ITEMS, ()),
}


def grant_access(principal: iam.IGrantable, who: str, bucket: s3.IBucket, table: dynamodb.ITable) -> None:
    reads, writes, table_actions, indexes = ACCESS[who]
    statements = []
    if reads:
        statements.append(iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(p) for p in reads]))
    if writes:
        statements.append(iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                                              resources=[bucket.arn_for_objects(p) for p in writes]))
    if table_actions:
        statements.append(iam.PolicyStatement(actions=list(table_actions), resources=[table.table_arn] + [
            f"{table.table_arn}/index/{index}" for index in indexes]))
    for statement in statements:
        principal.grant_principal.add_to_principal_policy(statement)


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
}
BATCH_VCPUS = 4  # each Batch job's container


def vcpus(memory_mb: int) -> int:
    """A Lambda function's vCPUs: each job owns its cores, so ffmpeg may use them all
    (REELSCOPE_FFMPEG_THREADS; the default of a third of the cores is for local mode's shared machine)."""
    return min(6, -(-memory_mb // 1769))


# Every function has the base layer; these have more (see infra/bundling.py).
EXTRA_LAYERS = {"probe": ("ffmpeg",), "downscale": ("ffmpeg",), "index": ("embedder",), "api": ("embedder",)}


class ReelscopeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        prefix = f"reelscope-{config.stage}"
        retention = _retention(config.retention_days)

        # ---------------------------------------------------------------- storage
        # Data at rest uses service-managed keys (S3, DynamoDB, SQS); the alert topic, which must name a KMS
        # key, gets its own.
        self.key = kms.Key(self, "AlertsKey", enable_key_rotation=True, description="reelscope alert topic")
        access_logs = s3.Bucket(self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                                lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.retention_days * 3))])
        self.bucket = s3.Bucket(
            self, "Media", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True, versioned=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            server_access_logs_bucket=access_logs, server_access_logs_prefix="media/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="uploads", prefix="uploads/", expiration=Duration.days(config.retention_days)),
                s3.LifecycleRule(id="renditions-to-infrequent-access", prefix="jobs/", transitions=[
                    s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30))]),
                s3.LifecycleRule(id="noncurrent-versions", noncurrent_version_expiration=Duration.days(7),
                                 abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.POST], allowed_origins=["*"], allowed_headers=["*"],
                              max_age=3000)])
        self.table = dynamodb.Table(
            self, "Jobs", partition_key=dynamodb.Attribute(name=TABLE_KEY[0], type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=TABLE_KEY[1], type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST, time_to_live_attribute="ttl",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN)
        # GET /jobs: jobs newest first (job items carry entity = JOB; other items stay out of the index).
        self.table.add_global_secondary_index(
            index_name=BY_CREATED, partition_key=dynamodb.Attribute(name=BY_CREATED_KEY[0], type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=BY_CREATED_KEY[1], type=dynamodb.AttributeType.STRING))

        # ---------------------------------------------------------------- Lambda
        core = lambda_.Code.from_asset(str(ROOT), asset_hash_type=AssetHashType.OUTPUT, bundling=BundlingOptions(
            image=DockerImage.from_registry("unused-local-bundling"), local=CoreBundle()),
            exclude=[".venv*", "node_modules", "cdk.out", ".git", "out", "tests", "bench", "containers", "docs"])
        layers = {name: lambda_.LayerVersion(
            self, f"{name.title()}Layer", compatible_runtimes=[lambda_.Runtime.PYTHON_3_14], description=description,
            # The name in the options: CDK caches bundling by source and options, and the three share a source.
            code=lambda_.Code.from_asset(str(ROOT / "infra"), asset_hash_type=AssetHashType.OUTPUT, bundling=BundlingOptions(
                image=DockerImage.from_registry("unused-local-bundling"), local=bundle, environment={"LAYER": name})))
            for name, bundle, description in (
                ("base", BASE, "Powertools, pydantic, pillow, fpdf2; DejaVu Sans in /opt/fonts"),
                ("ffmpeg", FFMPEG, "static ffmpeg and ffprobe in /opt/bin"),
                ("embedder", EMBEDDER, "numpy, tokenizers, all-MiniLM-L6-v2 weights (semantic search)"))}
        # Events no function could take: S3 notifications ingest failed on, execution ends mark_failed missed.
        self.dlq = sqs.Queue(self, "UndeliveredEvents", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=Duration.days(14))
        environment = {
            "REELSCOPE_BUCKET": self.bucket.bucket_name, "REELSCOPE_TABLE": self.table.table_name,
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
            self.functions[name] = lambda_.Function(
                self, f"{name.title().replace('_', '')}Function", function_name=f"{prefix}-{name.replace('_', '-')}",
                description=f"reelscope {name}: {why}", runtime=lambda_.Runtime.PYTHON_3_14,
                architecture=lambda_.Architecture.X86_64, code=core, handler=f"functions.{name}.app.handler",
                layers=[layers["base"], *(layers[extra] for extra in EXTRA_LAYERS.get(name, ()))], memory_size=memory, timeout=timeout, ephemeral_storage_size=Size.mebibytes(tmp),
                environment={**environment, "POWERTOOLS_SERVICE_NAME": f"reelscope-{name}",
                             "REELSCOPE_FFMPEG_THREADS": str(vcpus(memory))},
                tracing=lambda_.Tracing.ACTIVE, log_group=log_group, role=role,
                **({"on_failure": destinations.SqsDestination(self.dlq), "retry_attempts": 2} if name == "ingest" else {}))
        fn = self.functions
        for name, function in fn.items():  # the API's uploads/* write signs the presigned POSTs
            grant_access(function, name, self.bucket, self.table)
        self.bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(fn["ingest"]),
                                           s3.NotificationKeyFilter(prefix="uploads/"))

        # ---------------------------------------------------------------- Batch
        self.batch = BatchPlatform(self, "Batch", config, self.bucket, self.table)

        # ---------------------------------------------------------------- state machine
        machine_logs = logs.LogGroup(self, "PipelineLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY,
                                     log_group_name=f"/aws/vendedlogs/states/{prefix}-pipeline")
        self.state_machine = sfn.StateMachine(
            self, "Pipeline", state_machine_name=f"{prefix}-pipeline",
            # Inlined (not DefinitionBody.from_file): cfn-lint then sees and checks the definition.
            definition_body=sfn.DefinitionBody.from_string(DEFINITION.read_text(encoding="utf-8")),
            definition_substitutions={
                TABLE_PLACEHOLDER: self.table.table_name,
                **{placeholder: fn[name].function_arn for placeholder, name in LAMBDA_PLACEHOLDERS.items()},
                **{placeholder: self.batch.arn(compute, kind) for placeholder, (compute, kind) in BATCH_PLACEHOLDERS.items()},
            },
            logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True, timeout=Duration.hours(6))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[
            fn[name].function_arn for name in ("probe", "downscale", "subtitles", "index", "mark_failed")]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:UpdateItem"],
                                                                  resources=[self.table.table_arn]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["batch:SubmitJob"], resources=[
            self.batch.gpu_queue.job_queue_arn, self.batch.cpu_queue.job_queue_arn,
            self.batch.gpu_job.job_definition_arn, self.batch.cpu_job.job_definition_arn]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["batch:DescribeJobs", "batch:TerminateJob"], resources=["*"]))  # no resource-level permissions
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[self.format_arn(service="events", resource="rule",
                                       resource_name="StepFunctionsGetEventsForBatchJobsRule")]))
        # An execution that ends without its Catch (an uncatchable error, the 6 h timeout, a StopExecution)
        # would leave its job RUNNING forever: its status change event marks it FAILED instead.
        events.Rule(self, "ExecutionEnded", description="reelscope: a failed, timed-out or aborted execution fails its job",
                    event_pattern=events.EventPattern(
                        source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                        detail={"status": ["FAILED", "TIMED_OUT", "ABORTED"],
                                "stateMachineArn": [self.state_machine.state_machine_arn]}),
                    targets=[targets.LambdaFunction(fn["mark_failed"], retry_attempts=4, dead_letter_queue=self.dlq)])
        fn["api"].add_environment("REELSCOPE_FETCH_FUNCTION", fn["fetch"].function_name)
        fn["api"].add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                         resources=[fn["fetch"].function_arn]))
        for starter in ("ingest", "api"):  # new uploads; reruns (POST /jobs/{id}/runs, the rerun metadata)
            fn[starter].add_environment("REELSCOPE_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
            self.state_machine.grant_start_execution(fn[starter])

        # ---------------------------------------------------------------- API
        self.api = ApiFront(self, "Api", fn["api"], retention)

        # ---------------------------------------------------------------- observability
        self.alarms = Observability(self, "Observability", config, self.state_machine, self.functions, self.dlq, self.key)

        CfnOutput(self, "MediaBucket", value=self.bucket.bucket_name)
        CfnOutput(self, "JobsTable", value=self.table.table_name)
        CfnOutput(self, "StateMachine", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url)
        _suppressions(self)


_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
              60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
              365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1827: "FIVE_YEARS",
              3653: "TEN_YEARS"}


def _retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs keeps only set periods: the shortest one that covers `days`."""
    return getattr(logs.RetentionDays, _RETENTION[min((d for d in _RETENTION if d >= days), default=3653)])


class BatchPlatform(Construct):
    """GPU compute (g4dn/g5, Spot first, On-Demand fallback, scales to zero) for transcribe and
    detect; Fargate CPU compute for renditions of long media. Both run containers/gpu-batch."""

    def __init__(self, scope: Construct, construct_id: str, config: Config, bucket: s3.Bucket,
                 table: dynamodb.Table) -> None:
        super().__init__(scope, construct_id)
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=_retention(config.retention_days),
                                  removal_policy=RemovalPolicy.DESTROY)
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=22)],
            flow_logs={"rejected": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.REJECT,
                                                      destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))})
        # No NAT gateway (cost): jobs reach S3 through a gateway endpoint, ECR/DynamoDB over public IPs.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.vpc.add_gateway_endpoint("DynamoDB", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)

        gpu_types = [ec2.InstanceType(t) for t in config.gpu_instance_types]
        environments = []
        if config.use_spot:
            environments.append(batch.ManagedEc2EcsComputeEnvironment(
                self, "GpuSpot", vpc=self.vpc, vpc_subnets=subnets, instance_types=gpu_types, use_optimal_instance_classes=False,
                spot=True, allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED,
                minv_cpus=0, maxv_cpus=config.gpu_max_vcpus))
        environments.append(batch.ManagedEc2EcsComputeEnvironment(
            self, "GpuOnDemand", vpc=self.vpc, vpc_subnets=subnets, instance_types=gpu_types, use_optimal_instance_classes=False,
            allocation_strategy=batch.AllocationStrategy.BEST_FIT_PROGRESSIVE, minv_cpus=0, maxv_cpus=config.gpu_max_vcpus))
        self.gpu_queue = batch.JobQueue(self, "GpuQueue", compute_environments=[
            batch.OrderedComputeEnvironment(compute_environment=env, order=i + 1) for i, env in enumerate(environments)])
        cpu_environment = batch.FargateComputeEnvironment(self, "Cpu", vpc=self.vpc, vpc_subnets=subnets,
                                                          maxv_cpus=config.cpu_max_vcpus, spot=config.use_spot)
        self.cpu_queue = batch.JobQueue(self, "CpuQueue", compute_environments=[
            batch.OrderedComputeEnvironment(compute_environment=cpu_environment, order=1)])

        image = ecs.ContainerImage.from_asset(
            str(ROOT), file="containers/gpu-batch/Dockerfile",
            exclude=[".venv*", "node_modules", "cdk.out", ".git", "out", "tests", "bench"],
            build_args={"YOLO_WEIGHTS": config.yolo_weights, "YOLO_WEIGHTS_URL": config.yolo_weights_url,
                        "YOLO_WEIGHTS_SHA256": config.yolo_weights_sha256, "WHISPER_MODEL": config.whisper_model,
                        "WHISPER_MODEL_URL": config.whisper_model_url, "WHISPER_MODEL_SHA256": config.whisper_model_sha256})
        self.job_role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        grant_access(self.job_role, "batch_job", bucket, table)
        environment = {"REELSCOPE_BUCKET": bucket.bucket_name, "REELSCOPE_TABLE": table.table_name,
                       "REELSCOPE_FFMPEG_THREADS": str(BATCH_VCPUS)}
        if config.whisper_model:
            environment["REELSCOPE_WHISPER_MODEL"] = config.whisper_model_path
        environment["REELSCOPE_YOLO_WEIGHTS"] = f"/opt/reelscope/models/{config.yolo_weights}"
        retry = [
            # Lost capacity is worth retrying (SPOT_INSTANCE_RECLAIMED is status reason "Host EC2*": a Spot
            # reclaim or a failed host); a non-zero exit is our code refusing the input: stop.
            batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
            batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
            batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_exit_code="*")),
        ]
        # 3 h a job: the slowest step measured, on-screen text, reads 0.21 s per second of media on
        # 2 cores sharing them with every other branch (docs/BENCHMARKS.md): 50 min for four hours,
        # the longest media probe allows. These jobs have 4 vCPUs to themselves.
        self.gpu_job = batch.EcsJobDefinition(self, "GpuJob", timeout=Duration.hours(3), retry_attempts=3,
                                              retry_strategies=retry, container=batch.EcsEc2ContainerDefinition(
            self, "GpuContainer", image=image, cpu=BATCH_VCPUS, memory=Size.gibibytes(14), gpu=1, job_role=self.job_role,
            environment=environment, command=["--help"]))
        self.cpu_job = batch.EcsJobDefinition(self, "CpuJob", timeout=Duration.hours(3), retry_attempts=3,
                                              retry_strategies=retry, container=batch.EcsFargateContainerDefinition(
            self, "CpuContainer", image=image, cpu=BATCH_VCPUS, memory=Size.gibibytes(8), job_role=self.job_role,
            environment=environment, command=["--help"], assign_public_ip=True,
            ephemeral_storage_size=Size.gibibytes(100)))

    def arn(self, compute: str, kind: str) -> str:
        """The ARN of the gpu or cpu job queue or job definition (the definition's Batch placeholders)."""
        if kind == "queue":
            return (self.gpu_queue if compute == "gpu" else self.cpu_queue).job_queue_arn
        return (self.gpu_job if compute == "gpu" else self.cpu_job).job_definition_arn


class ApiFront(Construct):
    """REST API, IAM-authorized (SigV4): callers are IAM principals of the account, e.g. an app's
    Cognito identity pool role or a backend; throttled; no CORS (the report pages are served
    by the API itself, same origin: no other site's page may call it); access logs."""

    def __init__(self, scope: Construct, construct_id: str, handler: lambda_.Function, retention) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        self.rest_api = apigw.LambdaRestApi(
            self, "Rest", handler=handler, proxy=False, cloud_watch_role=True,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name="v1", throttling_rate_limit=20, throttling_burst_limit=40, tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=True)))
        validator = self.rest_api.add_request_validator("Validator", validate_request_body=True,
                                                        validate_request_parameters=True)
        self.rest_api.root.add_method("GET", request_validator=validator)  # the library page
        uploads = self.rest_api.root.add_resource("uploads")
        uploads.add_method("POST", request_validator=validator)
        self.rest_api.root.add_resource("search").add_method("GET", request_validator=validator, request_parameters={
            "method.request.querystring.q": True, "method.request.querystring.mode": False,
            "method.request.querystring.label": False, "method.request.querystring.job": False,
            "method.request.querystring.limit": False})
        self.rest_api.root.add_resource("openapi.json").add_method("GET", request_validator=validator)
        ingest = self.rest_api.root.add_resource("ingest")
        ingest.add_method("POST", request_validator=validator)
        ingest.add_resource("{fetch_id}").add_method("GET", request_validator=validator)
        jobs = self.rest_api.root.add_resource("jobs")
        jobs.add_method("GET", request_validator=validator, request_parameters={
            f"method.request.querystring.{name}": False for name in ("status", "limit", "next")})
        job = jobs.add_resource("{job_id}")
        job.add_method("GET", request_validator=validator, request_parameters={"method.request.path.job_id": True})
        job.add_resource("report").add_method("GET", request_validator=validator)
        job.add_resource("artifacts").add_method("GET", request_validator=validator, request_parameters={
            f"method.request.querystring.{name}": name == "kind" for name in ("kind", "limit", "next")})
        job.add_resource("runs").add_method("POST", request_validator=validator)
        job.add_resource("speakers").add_method("PUT", request_validator=validator)
        shares = job.add_resource("shares")
        shares.add_method("POST", request_validator=validator)
        shares.add_resource("{token}").add_method("DELETE", request_validator=validator)
        # A share link is opened by someone without AWS credentials: the 192-bit token is the credential,
        # and the route can only read the one report it names.
        shared = self.rest_api.root.add_resource("s").add_resource("{token}")
        for resource in (shared, shared.add_resource("report.json")):  # the report's page, and its JSON
            resource.add_method("GET", authorization_type=apigw.AuthorizationType.NONE, request_validator=validator,
                                request_parameters={"method.request.path.token": True})


class Observability(Construct):
    """An SNS topic for alerts; alarms on failed executions, Lambda errors and DLQ depth; a dashboard."""

    def __init__(self, scope: Construct, construct_id: str, config: Config, machine: sfn.StateMachine,
                 functions: dict[str, lambda_.Function], dlq: sqs.Queue, key: kms.Key) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Alerts", master_key=key, enforce_ssl=True)
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")  # alarms publish
        if config.alarm_email:
            sns.Subscription(self, "Email", topic=self.topic, protocol=sns.SubscriptionProtocol.EMAIL,
                             endpoint=config.alarm_email)
        action = cw_actions.SnsAction(self.topic)
        self.alarms = [
            machine.metric_failed(period=Duration.minutes(5)).create_alarm(
                self, "ExecutionsFailed", threshold=1, evaluation_periods=1,
                alarm_description="A reelscope execution failed (job FAILED): see the job item's error",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING),
            dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)).create_alarm(
                self, "IngestDlq", threshold=1, evaluation_periods=1,
                alarm_description="Uploads whose ingest failed after retries wait in the DLQ",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING),
        ] + [
            function.metric_errors(period=Duration.minutes(5)).create_alarm(
                self, f"{name}Errors", threshold=1, evaluation_periods=1,
                alarm_description=f"reelscope {name} Lambda errors", treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
            for name, function in functions.items()
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"reelscope-{config.stage}")
        dashboard.add_widgets(
            cw.GraphWidget(title="Executions", left=[machine.metric_started(), machine.metric_succeeded(),
                                                     machine.metric_failed()]),
            cw.GraphWidget(title="Lambda errors", left=[f.metric_errors() for f in functions.values()]),
            cw.GraphWidget(title="Lambda duration p90", left=[f.metric_duration(statistic="p90") for f in functions.values()]),
            cw.GraphWidget(title="Undelivered events (DLQ)", left=[dlq.metric_approximate_number_of_messages_visible()]))


def _suppressions(stack: ReelscopeStack) -> None:
    """cdk-nag AwsSolutions findings accepted on purpose, each with its reason. Everything else passes."""
    star = "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    accepted = [
        (stack, star, "Only actions that have no resource-level permissions: X-Ray PutTraceSegments/"
         "PutTelemetryRecords, batch:DescribeJobs/TerminateJob, ecr:GetAuthorizationToken, Step Functions' "
         "CloudWatch Logs delivery actions, and CDK's bucket-notification helper."),
        (stack, "AwsSolutions::AwsSolutions-IAM5[Resource::<MediaA721A567.Arn>/jobs/*]",
         "S3 objects are named by prefix: the job artifacts under jobs/."),
        (stack, "AwsSolutions::AwsSolutions-IAM5[Resource::<MediaA721A567.Arn>/uploads/*]",
         "S3 objects are named by prefix: the uploads under uploads/."),
        (stack.batch, "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/batch/job:*]",
         "Batch writes each job's log stream, named at run time, into the /aws/batch/job group."),
        (stack.batch, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
         "The AWS policy made for ECS container instances, which Batch's EC2 compute environments are."),
        (stack.api, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
         "The AWS policy made for API Gateway's account-level CloudWatch Logs role."),
        (stack.api.rest_api, "AwsSolutions::AwsSolutions-APIG3", "IAM-authorized API for the account's own principals; "
         "attach a WAF web ACL before exposing it publicly (README)."),
        (stack.api.rest_api, "AwsSolutions::AwsSolutions-COG4", "Authorization is IAM (SigV4), not a Cognito user pool."),
        (stack.api.rest_api, "AwsSolutions::AwsSolutions-APIG4", "Only GET /s/{token}(/report.json) is open: share links are opened "
         "without AWS credentials; the random 192-bit token is the credential and reads one report only."),
        (stack.dlq, "AwsSolutions::AwsSolutions-SQS3", "This queue is the dead-letter queue of the ingest function and of the execution-ended rule."),
    ]
    helper = stack.node.try_find_child("BucketNotificationsHandler050a0587b7544547bf325f094a3db834")
    if helper is not None:
        accepted.append((helper, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                         "CDK's own bucket-notification helper function."))
    for construct, rule, reason in accepted:
        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
