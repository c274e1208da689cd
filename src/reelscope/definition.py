"""The deployment's shape that the CDK app (infra/stack.py) and local mode (local/cloud.py) share,
written once: the state machine definition with its placeholders, and the jobs table's keys."""

from __future__ import annotations

import re
from pathlib import Path

from reelscope.errors import ReelscopeError

DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "pipeline.asl.json"
# ${Placeholder} -> the Lambda function (functions/{name}/app.py) whose ARN fills it
LAMBDA_PLACEHOLDERS = {"ProbeFunctionArn": "probe", "DownscaleFunctionArn": "downscale",
                       "SubtitlesFunctionArn": "subtitles", "IndexFunctionArn": "index",
                       "MarkFailedFunctionArn": "mark_failed"}
# ${Placeholder} -> (compute, resource) of the Batch job queue or job definition that fills it
BATCH_PLACEHOLDERS = {"GpuJobQueueArn": ("gpu", "queue"), "GpuJobDefinitionArn": ("gpu", "definition"),
                      "CpuJobQueueArn": ("cpu", "queue"), "CpuJobDefinitionArn": ("cpu", "definition")}
TABLE_PLACEHOLDER = "TableName"

TABLE_KEY = ("PK", "SK")  # HASH, RANGE: every item
BY_CREATED = "ByCreated"  # global secondary index over job items (entity = JOB), newest first
BY_CREATED_KEY = ("entity", "created_at")


def render(values: dict[str, str]) -> str:
    """The ASL with its ${Name} placeholders filled; a placeholder left unfilled is an error."""
    if not DEFINITION.is_file():
        raise ReelscopeError(f"local mode runs from a reelscope checkout: {DEFINITION} not found")
    text = DEFINITION.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    if missing := sorted(set(re.findall(r"\$\{(\w+)\}", text))):
        raise ReelscopeError(f"{DEFINITION.name}: no value for {', '.join(missing)}")
    return text


def create_table_request(name: str) -> dict:
    """DynamoDB CreateTable parameters of the jobs table (local mode, tests, benchmarks); the CDK app
    declares the same keys from the names above."""
    def keys(hash_key: str, range_key: str) -> list[dict]:
        return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]

    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST", "KeySchema": keys(*TABLE_KEY),
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in (*TABLE_KEY, *BY_CREATED_KEY)],
            "GlobalSecondaryIndexes": [{"IndexName": BY_CREATED, "KeySchema": keys(*BY_CREATED_KEY),
                                        "Projection": {"ProjectionType": "ALL"}}]}
