"""The REST API in front of the api function."""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct


class ApiFront(Construct):
    """REST API, IAM-authorized (SigV4): callers are IAM principals of the account, e.g. an app's
    Cognito identity pool role or a backend; throttled; no CORS (the report pages are served
    by the API itself, same origin: no other site's page may call it); access logs."""

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.Function,
                 retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        self.rest_api = apigw.LambdaRestApi(
            self, "Rest", handler=handler, proxy=False, cloud_watch_role=True,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name="v1", throttling_rate_limit=20, throttling_burst_limit=40, tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=True)))
        validator = self.rest_api.add_request_validator("Validator", validate_request_body=True,
                                                        validate_request_parameters=True)
        self.rest_api.root.add_method("GET", request_validator=validator)  # the library page
        uploads = self.rest_api.root.add_resource("uploads")
        uploads.add_method("POST", request_validator=validator)
        # q is not required here: `like` searches without it (the handler answers 422 when neither is given)
        self.rest_api.root.add_resource("search").add_method("GET", request_validator=validator, request_parameters={
            f"method.request.querystring.{name}": False for name in (
                "q", "mode", "label", "speaker", "kind", "language", "job", "file", "uploaded_after", "uploaded_before",
                "from", "to", "like", "next", "limit")})
        self.rest_api.root.add_resource("openapi.json").add_method("GET", request_validator=validator)
        ingest = self.rest_api.root.add_resource("ingest")
        ingest.add_method("POST", request_validator=validator)
        ingest.add_resource("{fetch_id}").add_method("GET", request_validator=validator)
        jobs = self.rest_api.root.add_resource("jobs")
        jobs.add_method("GET", request_validator=validator, request_parameters={
            f"method.request.querystring.{name}": False for name in ("status", "limit", "next")})
        job = jobs.add_resource("{job_id}")
        job.add_method("GET", request_validator=validator, request_parameters={"method.request.path.job_id": True})
        job.add_resource("report").add_method("GET", request_validator=validator)
        job.add_resource("artifacts").add_method("GET", request_validator=validator, request_parameters={
            f"method.request.querystring.{name}": name == "kind" for name in ("kind", "limit", "next")})
        job.add_resource("runs").add_method("POST", request_validator=validator)
        job.add_resource("speakers").add_method("PUT", request_validator=validator)
        shares = job.add_resource("shares")
        shares.add_method("POST", request_validator=validator)
        shares.add_resource("{token}").add_method("DELETE", request_validator=validator)
        # A share link is opened by someone without AWS credentials: the 192-bit token is the credential,
        # and the route can only read the one report it names.
        shared = self.rest_api.root.add_resource("s").add_resource("{token}")
        for resource in (shared, shared.add_resource("report.json")):  # the report's page, and its JSON
            resource.add_method("GET", authorization_type=apigw.AuthorizationType.NONE, request_validator=validator,
                                request_parameters={"method.request.path.token": True})
        for construct, rule, reason in (
            (self, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
             "The AWS policy made for API Gateway's account-level CloudWatch Logs role."),
            (self.rest_api, "AwsSolutions::AwsSolutions-APIG3", "IAM-authorized API for the account's own principals; "
             "attach a WAF web ACL before exposing it publicly (README)."),
            (self.rest_api, "AwsSolutions::AwsSolutions-COG4", "Authorization is IAM (SigV4), not a Cognito user pool."),
            (self.rest_api, "AwsSolutions::AwsSolutions-APIG4", "Only GET /s/{token}(/report.json) is open: share links are "
             "opened without AWS credentials; the random 192-bit token is the credential and reads one report only."),
        ):
            Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
