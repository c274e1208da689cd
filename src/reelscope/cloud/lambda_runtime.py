"""Powertools around every Lambda handler: structured logs carrying the Lambda context, X-Ray
tracing, and a Succeeded/Failed metric per invocation. Configured by the usual POWERTOOLS_*
variables; the handler itself receives the event and the Settings."""

from __future__ import annotations

import functools
from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from reelscope.settings import Settings


def lambda_handler(name: str, with_context: bool = False, refusals: tuple[type[Exception], ...] = ()) -> Callable:
    """Wrap `function(event, settings)` (with `context` too when asked) as a Lambda handler.
    `refusals`: exceptions that answer a caller (the authorizer's 401), counted, not logged as failures."""
    service = f"reelscope-{name}"
    logger, tracer, metrics = Logger(service=service), Tracer(service=service), Metrics(namespace="reelscope", service=service)

    # Local mode sets POWERTOOLS_METRICS_DISABLED: then nothing is collected and nothing flushed. (Disabled
    # Powertools metrics still pile up in a buffer shared by every handler of the process, and print
    # themselves at the 100th value.)
    metered = not is_metrics_disabled()

    def count(outcome: str) -> None:
        if metered:
            metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)

    def wrap(function: Callable[..., dict]) -> Callable[[dict, object], dict]:
        @functools.wraps(function)
        def handler(event: dict, context: object) -> dict:
            try:
                settings = Settings.from_env()
                result = function(event, settings, context) if with_context else function(event, settings)
            except refusals:
                count("Refused")
                raise
            except Exception:
                count("Failed")
                logger.exception(f"{name} failed")
                raise
            count("Succeeded")
            logger.info(f"{name} done", extra={"result": result})
            return result

        traced = logger.inject_lambda_context(clear_state=True)(tracer.capture_lambda_handler(handler))
        return metrics.log_metrics(traced) if metered else traced

    return wrap
