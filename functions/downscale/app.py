"""Downscale: renditions, poster and thumbnails of media short enough for Lambda."""

from reelscope import jobs
from reelscope.lambda_runtime import lambda_handler


@lambda_handler("downscale")
def handler(event, settings):
    return {"steps": jobs.run_steps(["downscale"], event["job_id"], event["key"], settings)}
