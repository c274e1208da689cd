"""Subtitles: the job's transcript.json -> subtitles.srt and subtitles.vtt."""

from reelscope.cloud import jobs
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("subtitles")
def handler(event, settings):
    return {"steps": jobs.run_steps(["subtitles"], event["job_id"], event["key"], settings)}
