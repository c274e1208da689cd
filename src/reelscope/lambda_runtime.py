"""Powertools around every Lambda handler: structured logs carrying the Lambda context, X-Ray
tracing, and a Succeeded/Failed metric per invocation. Configured by the usual POWERTOOLS_*
variables; the handler itself receives the event and the Settings."""

from __future__ import annotations

import functools
from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from .settings import Settings


def lambda_handler(name: str, with_context: bool = False) -> Callable:
    """Wrap `function(event, settings)` (with `context` too when asked) as a Lambda handler."""
    service = f"reelscope-{name}"
    logger, tracer, metrics = Logger(service=service), Tracer(service=service), Metrics(namespace="reelscope", service=service)

    def wrap(function: Callable[..., dict]) -> Callable[[dict, object], dict]:
        @logger.inject_lambda_context(clear_state=True)
        @tracer.capture_lambda_handler
        @metrics.log_metrics
        @functools.wraps(function)
        def handler(event: dict, context: object) -> dict:
            try:
                settings = Settings.from_env()
                result = function(event, settings, context) if with_context else function(event, settings)
            except Exception:
                metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
                logger.exception(f"{name} failed")
                raise
            metrics.add_metric(name="Succeeded", unit=MetricUnit.Count, value=1)
            logger.info(f"{name} done", extra={"result": result})
            return result

        return handler

    return wrap
