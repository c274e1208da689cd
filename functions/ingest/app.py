"""Ingest: an S3 (or EventBridge) "object created" event -> one job and one execution per new upload."""

import boto3

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler

STEP_FUNCTIONS = boto3.client("stepfunctions")


@lambda_handler("ingest")
def handler(event, settings):
    return {"objects": jobs.ingest(event, settings, STEP_FUNCTIONS)}
