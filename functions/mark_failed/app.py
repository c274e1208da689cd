"""MarkFailed: a failed job -> FAILED with a readable cause. Called by the state machine's Catch
({job_id, error}), and by EventBridge when an execution itself ends FAILED, TIMED_OUT or ABORTED."""

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("mark_failed")
def handler(event, settings):
    if event.get("detail-type") == jobs.EXECUTION_STATUS_CHANGE:
        return jobs.execution_ended(event, settings)
    return jobs.mark_failed(event["job_id"], event["error"], settings)
