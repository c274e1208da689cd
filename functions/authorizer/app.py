"""Authorizer: who an API request comes from (API Gateway REQUEST authorizer; local mode's API
asks it too). A user pool access token or local session -> the caller as context; else 401."""

from reelscope.access.authorizer import Unauthorized, authorize
from reelscope.cloud.lambda_runtime import lambda_handler


@lambda_handler("authorizer", refusals=(Unauthorized,))
def handler(event, settings):
    return authorize(event, settings)
