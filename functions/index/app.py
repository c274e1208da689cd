"""Index: step outcomes -> manifest.json and the job summary; returns SUCCEEDED or PARTIAL."""

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("index")
def handler(event, settings):
    return jobs.index_job(event["job_id"], event["branches"], settings)
