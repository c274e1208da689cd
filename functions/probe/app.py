"""Probe: media facts of the upload (refuses bad input) and where its renditions will be made."""

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("probe")
def handler(event, settings):
    return jobs.probe_job(event["job_id"], event["key"], settings)
