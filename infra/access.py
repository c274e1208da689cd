"""Least privilege, by principal: what each function and the Batch jobs may read and write of the
bucket and the table, granted in one place; the cdk-nag finding those prefixes raise is
acknowledged beside each grant."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from reelscope.definition import BY_CASE, BY_CREATED

# Least privilege, by principal: S3 object prefixes it reads and writes, DynamoDB actions it needs
# on the table (and the indexes it queries). Nothing wider; explicit actions, no wildcards. Each
# grant is what the code was seen to call (tests/functional/test_permissions.py records the calls
# and fails on a call refused or a grant unused).
ITEMS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")
ACCESS = {
    # principal: (reads, writes, table actions, indexes)
    # ingest: + HEAD of the upload (its rerun metadata) and a rerun's job update
    "ingest": (("uploads/*",), (), ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), ()),
    "probe": (("uploads/*",), ("jobs/*",), ITEMS, ()),
    "downscale": (("uploads/*", "jobs/*"), ("jobs/*",), ITEMS, ()),
    "subtitles": (("jobs/*",), ("jobs/*",), ITEMS, ()),
    "index": (("jobs/*",), ("jobs/*",), ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"), ()),
    # mark_failed: + the job read when an execution ended without its Catch (execution_ended)
    "mark_failed": ((), (), ("dynamodb:GetItem", "dynamodb:UpdateItem"), ()),
    # api: + deleting a job (its items, a session's), reading its cases' jobs
    "api": (("jobs/*",), ("uploads/*",), (*ITEMS, "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"), (BY_CREATED, BY_CASE)),
    "authorizer": ((), (), (), ()),  # the token is checked against the pool's public keys: no AWS call
    "search_maintain": ((), (), (), ()),
    "fetch": ((), ("uploads/*",), ("dynamodb:UpdateItem",), ()),
    "batch_job": (("uploads/*", "jobs/*"), ("jobs/*",), ITEMS, ()),
}


PREFIXES = {"uploads/*": "the uploads", "jobs/*": "the job artifacts", "search/*": "the search engine's tables"}
# The search engine's tables (s3://BUCKET/search/, reelscope.search.engine), by principal: what
# LanceDB's own S3 client calls. It is not boto3, so test_permissions.py cannot record it; the
# same code runs against moto's S3 server in tests/functional/test_search_engine.py. Writers
# commit by conditional PUT; only the maintenance deletes (old versions, compacted files).
SEARCH_ACCESS = {
    "index": ("s3:GetObject", "s3:PutObject"),
    "api": ("s3:GetObject", "s3:PutObject"),  # deleting a job's rows commits a new version
    "search_maintain": ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
}


# The audit trail's table: who may add records (never change or remove one: no UpdateItem, DeleteItem or
# BatchWriteItem), and who may read them.
AUDIT_ACCESS = {"api": ("dynamodb:PutItem", "dynamodb:Query"), "ingest": ("dynamodb:PutItem",)}
# The manifest signing key: the index step signs; the API shows the public key (GET /signing-key).
SIGNING_ACCESS = {"index": ("kms:Sign", "kms:GetPublicKey"), "api": ("kms:GetPublicKey",)}
# Deleting a job (DELETE /jobs/{id}): every version of its objects, found by listing the versions.
DELETE_ACCESS = {"api": ("jobs/*", "uploads/*")}


def grant_access(principal: iam.IGrantable, who: str, bucket: s3.IBucket, table: dynamodb.ITable,
                 audit: dynamodb.ITable | None = None, signing_key=None) -> None:
    reads, writes, table_actions, indexes = ACCESS[who]
    statements = []
    if who in AUDIT_ACCESS and audit is not None:
        statements.append(iam.PolicyStatement(actions=list(AUDIT_ACCESS[who]), resources=[audit.table_arn]))
    if who in SIGNING_ACCESS and signing_key is not None:
        statements.append(iam.PolicyStatement(actions=list(SIGNING_ACCESS[who]), resources=[signing_key.key_arn]))
    if who in DELETE_ACCESS:
        statements += [iam.PolicyStatement(actions=["s3:DeleteObjectVersion"],
                                           resources=[bucket.arn_for_objects(p) for p in DELETE_ACCESS[who]]),
                       iam.PolicyStatement(actions=["s3:ListBucketVersions"], resources=[bucket.bucket_arn],
                                           conditions={"StringLike": {"s3:prefix": list(DELETE_ACCESS[who])}})]
    if reads:
        statements.append(iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(p) for p in reads]))
    if writes:
        statements.append(iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                                              resources=[bucket.arn_for_objects(p) for p in writes]))
    if table_actions:
        statements.append(iam.PolicyStatement(actions=list(table_actions), resources=[table.table_arn]))
    if indexes:  # an index is only queried
        statements.append(iam.PolicyStatement(actions=["dynamodb:Query"],
                                              resources=[f"{table.table_arn}/index/{index}" for index in indexes]))
    if who in SEARCH_ACCESS:
        statements += [iam.PolicyStatement(actions=list(SEARCH_ACCESS[who]), resources=[bucket.arn_for_objects("search/*")]),
                       iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                                           conditions={"StringLike": {"s3:prefix": ["search/*"]}})]
    for statement in statements:
        principal.grant_principal.add_to_principal_policy(statement)
    bucket_arn = f"<{Stack.of(bucket).get_logical_id(bucket.node.default_child)}.Arn>"
    for prefix in sorted(set(reads + writes + (("search/*",) if who in SEARCH_ACCESS else ()))):
        Validations.of(principal.grant_principal).acknowledge(Acknowledgment(
            id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}]",
            reason=f"S3 objects are named by prefix: {prefix.rstrip('/*')}/ holds {PREFIXES[prefix]}."))



# Actions a role allows that its code never calls in the recorded runs
# (tests/functional/test_permissions.py), each with why: (principal, action) -> reason.
ABORT = "boto3 aborts a multipart upload that fails part-way: never called when uploads succeed"
UNCALLED: dict[tuple[str, str], str] = {
    **{(who, "s3:AbortMultipartUpload"): ABORT for who in ("api", "batch_job", "downscale", "fetch", "index", "probe",
                                                         "subtitles")},
    **{(who, action): "local mode signs with the state folder's key (reelscope.integrity.LocalSigner), not KMS"
       for who, actions in SIGNING_ACCESS.items() for action in actions},
}
