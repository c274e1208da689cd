"""The deployment's shape that the CDK app (infra/) and local mode (local/) share,
written once: the state machine definition with its placeholders, and the jobs table's keys."""

from __future__ import annotations

import json
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
BY_CASE = "ByCase"  # global secondary index over job items by case, newest first (what a viewer lists)
BY_CASE_KEY = ("case_id", "created_at")


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
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"}
                                     for n in dict.fromkeys((*TABLE_KEY, *BY_CREATED_KEY, *BY_CASE_KEY))],
            "GlobalSecondaryIndexes": [{"IndexName": index, "KeySchema": keys(*key), "Projection": {"ProjectionType": "ALL"}}
                                       for index, key in ((BY_CREATED, BY_CREATED_KEY), (BY_CASE, BY_CASE_KEY))]}


# ---------------------------------------------------------------- the drawing in docs/ARCHITECTURE.md


def _label(name: str, state: dict) -> str:
    """What a state does, in a few words: which function, job queue and command, or service call."""
    params, resource = state.get("Parameters", {}), state.get("Resource", "")
    if resource.endswith("lambda:invoke"):
        return f"{name}<br/>Lambda {LAMBDA_PLACEHOLDERS[params['FunctionName'][2:-1]]}"
    if ":batch:submitJob" in resource:
        compute = BATCH_PLACEHOLDERS[params["JobQueue"][2:-1]][0].upper()
        command = re.search(r"States\.Array\('(\w+)'", params["ContainerOverrides"]["Command.$"]).group(1)
        return f"{name}<br/>Batch {compute}: {command}"
    if ":dynamodb:" in resource:
        return f"{name}<br/>DynamoDB {resource.rsplit(':', 1)[1]}"
    return name


def _draw(states: dict, lines: list[str], indent: str) -> None:
    shapes = {"Choice": '{{"{}"}}', "Fail": '(["{}"])', "Pass": '(["{}"])'}
    for name, state in states.items():
        if state["Type"] == "Parallel":
            lines.append(f'{indent}subgraph {name}["{name}: branches side by side"]')
            for i, branch in enumerate(state["Branches"]):
                lines.append(f'{indent}  subgraph {name}_{i}[" "]')
                _draw(branch["States"], lines, indent + "    ")
                lines.append(f"{indent}  end")
            lines.append(f"{indent}end")
        else:
            lines.append(f"{indent}{name}" + shapes.get(state["Type"], '["{}"]').format(_label(name, state)))
    for name, state in states.items():
        for choice in state.get("Choices", []):
            test = next(f"{k} {v}" for k, v in choice.items() if k not in ("Variable", "Next"))
            lines.append(f'{indent}{name} -->|"{choice["Variable"]} {test}"| {choice["Next"]}')
        if "Default" in state:
            lines.append(f"{indent}{name} -->|otherwise| {state['Default']}")
        if "Next" in state:
            lines.append(f"{indent}{name} --> {state['Next']}")
        for catch in state.get("Catch", []):
            lines.append(f'{indent}{name} -.->|"{"/".join(catch["ErrorEquals"])}"| {catch["Next"]}')


def mermaid() -> str:
    """The state machine as a Mermaid flowchart, drawn from statemachine/pipeline.asl.json: every
    state with what it runs, every transition, each Catch as a dotted arrow."""
    asl = json.loads(DEFINITION.read_text(encoding="utf-8"))
    lines = ["flowchart TB", f"  start([upload]) --> {asl['StartAt']}"]
    _draw(asl["States"], lines, "  ")
    return "\n".join(lines) + "\n"
