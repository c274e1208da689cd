"""Local mode's names: the account, region, bucket, table, queue and state machine it makes, and
the definition's placeholders answered with them (the deployment answers them with its own)."""

from __future__ import annotations

from pathlib import Path

from reelscope.definition import BATCH_PLACEHOLDERS, LAMBDA_PLACEHOLDERS, TABLE_PLACEHOLDER

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = REPO / "functions"
BATCH_ENTRYPOINT = REPO / "containers" / "gpu-batch" / "entrypoint.py"
ACCOUNT, REGION = "123456789012", "us-east-1"
ACCESS_KEY = "local"  # local mode's AWS access key; its secret is the state folder's own (state.owner_secret)
BUCKET, TABLE, QUEUE, MACHINE = "reelscope-media", "reelscope-jobs", "reelscope-uploads", "reelscope-pipeline"
AUDIT_TABLE = "reelscope-audit"

# The definition's placeholders, answered with local names.
BATCH_RESOURCES = {placeholder: f"job-{kind}/reelscope-{compute}" + (":1" if kind == "definition" else "")
                   for placeholder, (compute, kind) in BATCH_PLACEHOLDERS.items()}
BATCH_DEFINITIONS = {f"arn:aws:batch:{REGION}:{ACCOUNT}:{BATCH_RESOURCES[k]}" for k, (_, kind) in BATCH_PLACEHOLDERS.items()
                     if kind == "definition"}


def substitutions() -> dict[str, str]:
    values = {TABLE_PLACEHOLDER: TABLE}
    values.update({k: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reelscope-{v}" for k, v in LAMBDA_PLACEHOLDERS.items()})
    values.update({k: f"arn:aws:batch:{REGION}:{ACCOUNT}:{v}" for k, v in BATCH_RESOURCES.items()})
    return values
