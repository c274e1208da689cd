"""The reelscope stack: one construct per concern, wired together. Storage (bucket, table, the
dead-letter queue), Batch (GPU and CPU compute for the containers), the pipeline (the functions and
the state machine from statemachine/pipeline.asl.json), the API, and observability. Sizes and
choices are explained where they are made; configuration comes from CDK context (config.py, the
README); each cdk-nag finding accepted on purpose is acknowledged, with its reason, beside the
construct it concerns."""

from __future__ import annotations

from api_front import STAGE, ApiFront
from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from compute import BatchPlatform
from config import Config, retention
from constructs import Construct
from observability import Observability
from people import People
from pipeline import Pipeline
from storage import Storage


class ReelscopeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        kept = retention(config.retention_days)
        self.storage = Storage(self, "Storage", retention_days=config.retention_days)
        self.batch = BatchPlatform(self, "Batch", config=config, bucket=self.storage.bucket, table=self.storage.table)
        self.pipeline = Pipeline(self, "Pipeline", config=config, storage=self.storage, batch_jobs=self.batch, retention=kept)
        functions = self.pipeline.functions
        self.people = People(self, "People", stage=config.stage)
        self.api = ApiFront(self, "Api", handler=functions["api"], authorizer=functions["authorizer"], retention=kept)
        client = self.people.add_client(self.api.rest_api, STAGE)
        pool = {"REELSCOPE_USER_POOL_ID": self.people.pool.user_pool_id,
                "REELSCOPE_USER_POOL_CLIENT_ID": client.user_pool_client_id,
                "REELSCOPE_USER_POOL_DOMAIN": self.people.login_url}
        for name in ("api", "authorizer"):  # both read tokens; the api also sends browsers to the login
            for variable, value in pool.items():
                functions[name].add_environment(variable, value)
        self.alarms = Observability(self, "Observability", config=config, machine=self.pipeline.state_machine,
                                    functions=self.pipeline.functions, dlq=self.storage.dlq, key=self.storage.key)
        CfnOutput(self, "MediaBucket", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "JobsTable", value=self.storage.table.table_name)
        CfnOutput(self, "StateMachine", value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url)
        CfnOutput(self, "UserPool", value=self.people.pool.user_pool_id)
        CfnOutput(self, "SignIn", value=f"{self.api.rest_api.url}auth/login")
        # CDK's own bucket-notification helper, a child of the stack itself.
        helper = self.node.try_find_child("BucketNotificationsHandler050a0587b7544547bf325f094a3db834")
        if helper is not None:
            for rule, reason in (
                ("AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                 "CDK's own bucket-notification helper function."),
                ("AwsSolutions::AwsSolutions-IAM5[Resource::*]", "CDK's bucket-notification helper sets the bucket's "
                 "notification configuration, an action on the bucket it is given at deploy time."),
            ):
                Validations.of(helper).acknowledge(Acknowledgment(id=rule, reason=reason))
