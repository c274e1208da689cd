"""AWS Batch job: `transcribe | detect | ocr | downscale --job-id ID --key KEY` (transcribe also finds
the speakers and translates, on the same download; detect runs the vision branch).

Reads the upload and earlier artifacts from S3, writes its artifacts to S3 and its step records
to DynamoDB (REELSCOPE_BUCKET, REELSCOPE_TABLE). Exit status 1 on a failure that a retry cannot
fix (the job definition's retry strategy retries host and Spot failures, not these).
"""

from __future__ import annotations

import argparse
import sys
import threading

from reelscope import heap
from reelscope.analysis.pipeline import BRANCHES
from reelscope.analysis.warmup import warm_models
from reelscope.cloud.jobs import run_steps
from reelscope.errors import error_message
from reelscope.settings import Settings

COMMANDS = {"transcribe": ["transcribe", "speakers", "translate"], "detect": list(BRANCHES["vision"]), "ocr": ["ocr"],
            "downscale": ["downscale"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reelscope-batch")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    heap.settle()  # the download, the warm-up and the step's threads allocate at once
    settings = Settings.from_env()
    warming = threading.Thread(target=warm_models, args=(settings, COMMANDS[args.command]))
    warming.start()  # loads while the video downloads
    try:
        run_steps(COMMANDS[args.command], args.job_id, args.key, settings)
    except Exception as err:
        print(f"reelscope {args.command}: {error_message(err)}", file=sys.stderr)
        return 1
    finally:
        warming.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
