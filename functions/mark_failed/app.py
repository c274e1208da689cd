"""MarkFailed: an uncaught error of the state machine -> job FAILED with a readable cause."""

from reelscope import jobs
from reelscope.lambda_runtime import lambda_handler


@lambda_handler("mark_failed")
def handler(event, settings):
    return jobs.mark_failed(event["job_id"], event["error"], settings)
