"""API: presigned uploads and job status (API Gateway REST; the authorizer says who calls, the API what they may do)."""

from reelscope.cloud.api import build_app, resolve
from reelscope.cloud.lambda_runtime import lambda_handler

APP = build_app()


@lambda_handler("api", with_context=True)
def handler(event, settings, context):
    return resolve(APP, event, context, settings)
