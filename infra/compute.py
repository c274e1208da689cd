"""Batch: GPU and CPU compute, their queues, and the job definitions of containers/gpu-batch."""

from __future__ import annotations

from access import grant_access
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Size, Validations
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from config import ROOT, Config, retention
from constructs import Construct

BATCH_VCPUS = 4  # each Batch job's container


class BatchPlatform(Construct):
    """GPU compute (g4dn/g5, Spot first, On-Demand fallback, scales to zero) for transcribe and
    detect; Fargate CPU compute for renditions of long media. Both run containers/gpu-batch."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, bucket: s3.Bucket,
                 table: dynamodb.Table) -> None:
        super().__init__(scope, construct_id)
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=retention(config.retention_days),
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
        for rule, reason in (
            ("AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/batch/job:*]",
             "Batch writes each job's log stream, named at run time, into the /aws/batch/job group."),
            ("AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
             "The AWS policy made for ECS container instances, which Batch's EC2 compute environments are."),
            ("AwsSolutions::AwsSolutions-IAM5[Resource::*]",
             "ecr:GetAuthorizationToken has no resource-level permissions (pulling the job image)."),
        ):
            Validations.of(self).acknowledge(Acknowledgment(id=rule, reason=reason))

    def arn(self, compute: str, kind: str) -> str:
        """The ARN of the gpu or cpu job queue or job definition (the definition's Batch placeholders)."""
        if kind == "queue":
            return (self.gpu_queue if compute == "gpu" else self.cpu_queue).job_queue_arn
        return (self.gpu_job if compute == "gpu" else self.cpu_job).job_definition_arn


