"""Where jobs live: the media bucket (and the bucket of its access logs), the jobs table, the queue
of events no function could take, and the key of the alert topic."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from reelscope.access.audit import TRAIL_KEY
from reelscope.definition import BY_CASE, BY_CASE_KEY, BY_CREATED, BY_CREATED_KEY, TABLE_KEY


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
        # A viewer's or analyst's GET /jobs: the jobs of one case, newest first (one query per case of theirs).
        for index, (hash_key, range_key) in ((BY_CREATED, BY_CREATED_KEY), (BY_CASE, BY_CASE_KEY)):
            self.table.add_global_secondary_index(
                index_name=index, partition_key=dynamodb.Attribute(name=hash_key, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=range_key, type=dynamodb.AttributeType.STRING))
        # The audit trail (reelscope.access.audit): its own table, no TTL; the functions may only add and read.
        self.audit = dynamodb.Table(
            self, "Audit", partition_key=dynamodb.Attribute(name=TRAIL_KEY[0], type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=TRAIL_KEY[1], type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST, deletion_protection=True,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED, removal_policy=RemovalPolicy.RETAIN)
        # Signs every job's manifest (reelscope.integrity): ECDSA P-256; the private key never leaves KMS.
        self.signing_key = kms.Key(self, "ManifestSigning", key_spec=kms.KeySpec.ECC_NIST_P256,
                                   key_usage=kms.KeyUsage.SIGN_VERIFY, removal_policy=RemovalPolicy.RETAIN,
                                   description="reelscope: signs each job's manifest (verify with GET /signing-key)")
        # Events no function could take: S3 notifications ingest failed on, execution ends mark_failed missed.
        self.dlq = sqs.Queue(self, "UndeliveredEvents", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                             retention_period=Duration.days(14))
        Validations.of(self.dlq).acknowledge(Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason="This queue is the dead-letter queue of the ingest function and of the execution-ended rule."))
