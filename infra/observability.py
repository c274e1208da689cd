"""Alarms, their topic and a dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from config import Config
from constructs import Construct


class Observability(Construct):
    """An SNS topic for alerts; alarms on failed executions, Lambda errors and DLQ depth; a dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, machine: sfn.StateMachine,
                 functions: dict[str, lambda_.Function], dlq: sqs.Queue, key: kms.Key) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Alerts", master_key=key, enforce_ssl=True)
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")  # alarms publish
        if config.alarm_email:
            sns.Subscription(self, "Email", topic=self.topic, protocol=sns.SubscriptionProtocol.EMAIL,
                             endpoint=config.alarm_email)
        action = cw_actions.SnsAction(self.topic)
        self.alarms = [
            machine.metric_failed(period=Duration.minutes(5)).create_alarm(
                self, "ExecutionsFailed", threshold=1, evaluation_periods=1,
                alarm_description="A reelscope execution failed (job FAILED): see the job item's error",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING),
            dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)).create_alarm(
                self, "IngestDlq", threshold=1, evaluation_periods=1,
                alarm_description="Uploads whose ingest failed after retries wait in the DLQ",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING),
        ] + [
            function.metric_errors(period=Duration.minutes(5)).create_alarm(
                self, f"{name}Errors", threshold=1, evaluation_periods=1,
                alarm_description=f"reelscope {name} Lambda errors", treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
            for name, function in functions.items()
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"reelscope-{config.stage}")
        dashboard.add_widgets(
            cw.GraphWidget(title="Executions", left=[machine.metric_started(), machine.metric_succeeded(),
                                                     machine.metric_failed()]),
            cw.GraphWidget(title="Lambda errors", left=[f.metric_errors() for f in functions.values()]),
            cw.GraphWidget(title="Lambda duration p90", left=[f.metric_duration(statistic="p90") for f in functions.values()]),
            cw.GraphWidget(title="Undelivered events (DLQ)", left=[dlq.metric_approximate_number_of_messages_visible()]))
