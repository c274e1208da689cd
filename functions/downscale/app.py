"""Downscale: renditions, poster and thumbnails of media short enough for Lambda."""

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("downscale")
def handler(event, settings):
    return {"steps": jobs.run_steps(["downscale"], event["job_id"], event["key"], settings)}
