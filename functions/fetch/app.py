"""Fetch: stream a URL's video into uploads/ (invoked asynchronously by POST /ingest)."""

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("fetch")
def handler(event, settings):
    return jobs.fetch_url(event["fetch_id"], event["url"], event["key"], settings)
