"""The one definition: valid ASL, every task runnable locally, every placeholder filled."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from reelscope.definition import LAMBDA_PLACEHOLDERS, render
from reelscope.local import names as local

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachine" / "pipeline.asl.json"


def _states(definition: dict):
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)


def test_asl_validator_accepts_the_definition():
    validator = ROOT / "node_modules" / ".bin" / "asl-validator"
    proc = subprocess.run([str(validator), "--json-path", str(DEFINITION)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is valid" in proc.stdout


def test_asl_validator_would_catch_a_broken_definition(tmp_path):
    broken = json.loads(DEFINITION.read_text())
    broken["States"]["Probe"]["Next"] = "NoSuchState"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    proc = subprocess.run([str(ROOT / "node_modules" / ".bin" / "asl-validator"), "--json-path",
                           str(tmp_path / "broken.json")], capture_output=True, text=True)
    assert proc.returncode != 0


def test_every_task_has_a_local_runner():
    definition = json.loads(DEFINITION.read_text())
    tasks = {name: state for name, state in _states(definition) if state["Type"] == "Task"}
    assert tasks
    for name, state in tasks.items():
        resource, parameters = state["Resource"], state["Parameters"]
        if resource == "arn:aws:states:::lambda:invoke":
            placeholder = re.fullmatch(r"\$\{(\w+)\}", parameters["FunctionName"]).group(1)
            function = LAMBDA_PLACEHOLDERS[placeholder]
            assert (ROOT / "functions" / function / "app.py").is_file(), name
        elif resource.startswith("arn:aws:states:::batch:submitJob"):
            definition_arn = local.substitutions()[re.fullmatch(r"\$\{(\w+)\}", parameters["JobDefinition"]).group(1)]
            assert definition_arn in local.BATCH_DEFINITIONS, name
        else:  # native integrations that moto executes itself
            assert resource.startswith("arn:aws:states:::dynamodb:"), f"{name}: no local runner for {resource}"


def test_every_placeholder_is_filled_and_no_data_crosses_states():
    rendered = json.loads(render(local.substitutions()))
    for name, state in _states(rendered):
        if state["Type"] == "Task" and "Payload" in state["Parameters"]:
            # States hand each other ids and keys; artifacts travel through S3.
            assert set(state["Parameters"]["Payload"]) <= {"job_id.$", "bucket.$", "key.$", "branches.$", "error.$"}, name


def test_each_branch_catches_its_own_failure():
    definition = json.loads(DEFINITION.read_text())
    for branch in definition["States"]["Analyze"]["Branches"]:
        for name, state in branch["States"].items():
            if state["Type"] == "Task":
                assert [c["ErrorEquals"] for c in state["Catch"]] == [["States.ALL"]], name
                assert branch["States"][state["Catch"][0]["Next"]]["Parameters"]["status"] == "FAILED"
