"""The REST API in front of the api function."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from reelscope.access.roles import NEEDS, OPEN

STAGE = "v1"
# Query parameters each GET takes (the request validator refuses others' absence only when required).
QUERIES = {
    "/search": ("q", "mode", "label", "speaker", "kind", "language", "job", "file", "uploaded_after", "uploaded_before",
                "from", "to", "like", "next", "limit"),
    "/jobs": ("status", "limit", "next"),
    "/jobs/{job_id}/artifacts": ("kind", "limit", "next"),
    "/jobs/{job_id}/audit": ("limit", "next", "format"),
    "/audit": ("day", "limit", "next", "format"),
    "/auth/login": ("next",),
    "/auth/callback": ("code", "state"),
}
REQUIRED = {"/jobs/{job_id}/artifacts": {"kind"}, "/audit": {"day"}, "/auth/callback": {"code", "state"}}


class ApiFront(Construct):
    """REST API, every route of access/roles.py's NEEDS: the authorizer function (a REQUEST
    authorizer: a user pool access token as a bearer token or the session cookie) in front of all
    but the open ones (share links, signing in); throttled; no CORS (the pages are served by the
    API itself, same origin: no other site's page may call it); access logs."""

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.Function, authorizer: lambda_.Function,
                 retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        self.rest_api = apigw.LambdaRestApi(
            self, "Rest", handler=handler, proxy=False, cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE, throttling_rate_limit=20, throttling_burst_limit=40, tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=True)))
        # The credential may come in either of two places (or neither, for a page sent to sign in): no
        # identity source can be required, so the request id is one (always there) and nothing is cached.
        self.authorizer = apigw.RequestAuthorizer(
            self, "People", handler=authorizer, identity_sources=[apigw.IdentitySource.context("requestId")],
            results_cache_ttl=Duration.seconds(0))
        validator = self.rest_api.add_request_validator("Validator", validate_request_body=True,
                                                        validate_request_parameters=True)
        for (method, path), need in sorted(NEEDS.items(), key=lambda route: route[0][1]):
            resource = self.rest_api.root.resource_for_path(path) if path != "/" else self.rest_api.root
            parameters = {f"method.request.path.{name}": True for name in _path_parameters(path)}
            if method == "GET":
                parameters |= {f"method.request.querystring.{name}": name in REQUIRED.get(path, ())
                               for name in QUERIES.get(path, ())}
            guarded = ({"authorization_type": apigw.AuthorizationType.NONE} if need == OPEN else
                       {"authorizer": self.authorizer, "authorization_type": apigw.AuthorizationType.CUSTOM})
            resource.add_method(method, request_validator=validator, request_parameters=parameters or None, **guarded)
        for construct, rule, reason in (
            (self, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
             "The AWS policy made for API Gateway's account-level CloudWatch Logs role."),
            (self.rest_api, "AwsSolutions::AwsSolutions-APIG3", "Attach a WAF web ACL before exposing the API "
             "publicly (docs/SECURITY.md); it is billed per web ACL, so the account decides."),
            (self.rest_api, "AwsSolutions::AwsSolutions-COG4", "The authorizer is a REQUEST authorizer that checks the "
             "user pool's access tokens (from a bearer header or the session cookie, which a Cognito authorizer cannot "
             "read); see docs/SECURITY.md."),
            (self.rest_api, "AwsSolutions::AwsSolutions-APIG4", "Open: GET /s/{token}(/report.json), whose random "
             "192-bit token is the credential and reads one report, and the sign-in routes (/auth/*)."),
        ):
            Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
