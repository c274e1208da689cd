"""Where jobs live: the media bucket (and the bucket of its access logs), the jobs table, the queue
of events no function could take, and the key of the alert topic."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from reelscope.definition import BY_CREATED, BY_CREATED_KEY, TABLE_KEY


class Storage(Construct):
    """Data at rest uses service-managed keys (S3, DynamoDB, SQS); the alert topic, which must name a
    KMS key, gets its own."""

    def __init__(self, scope: Construct, construct_id: str, *, retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(self, "AlertsKey", enable_key_rotation=True, description="reelscope alert topic")
        access_logs = s3.Bucket(self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                                lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(retention_days * 3))])
        self.bucket = s3.Bucket(
            self, "Media", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True, versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            server_access_logs_bucket=access_logs, server_access_logs_prefix="media/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="uploads", prefix="uploads/", expiration=Duration.days(retention_days)),
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
        # Events no function could take: S3 notifications ingest failed on, execution ends mark_failed missed.
        self.dlq = sqs.Queue(self, "UndeliveredEvents", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                             retention_period=Duration.days(14))
        Validations.of(self.dlq).acknowledge(Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason="This queue is the dead-letter queue of the ingest function and of the execution-ended rule."))
