"""The Powertools wrapper: one metric per invocation in Lambda (EMF on stdout), none in local mode."""

import json
import warnings

import pytest

from reelscope.cloud.lambda_runtime import lambda_handler
from reelscope.local.tasks import LambdaContext

CONTEXT = LambdaContext("reelscope-probe", "arn:aws:lambda:us-east-1:123456789012:function:reelscope-probe")


def emitted(capsys) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_a_metric_per_invocation(monkeypatch, capsys):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    @lambda_handler("probe")
    def handler(event, settings):
        if event.get("fail"):
            raise ValueError("refused")
        return {"ok": True}

    assert handler({}, CONTEXT) == {"ok": True}
    with pytest.raises(ValueError):
        handler({"fail": True}, CONTEXT)
    (succeeded, failed) = emitted(capsys)
    assert (succeeded["Succeeded"], failed["Failed"]) == ([1.0], [1.0])
    assert succeeded["service"] == "reelscope-probe"
    assert succeeded["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "reelscope"


def test_local_mode_collects_nothing(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    @lambda_handler("probe")
    def handler(event, settings):
        return {}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No application metrics to publish" would fail here
        for _ in range(150):  # past Powertools' 100-value buffer, which prints itself when full
            handler({}, CONTEXT)
    assert emitted(capsys) == []
