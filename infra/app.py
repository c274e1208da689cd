"""The CDK app: `cdk synth` (cdk.json runs this file) builds the reelscope stack and checks it
with cdk-nag's AwsSolutions rules; an unsuppressed finding fails the synthesis."""

import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # this machine's Node 20
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from stack import Config, ReelscopeStack  # noqa: E402


def build(app: cdk.App) -> ReelscopeStack:
    # Access logs delivered through a bucket policy, not the legacy LogDeliveryWrite ACL.
    app.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    config = Config.from_context(app.node)
    stack = ReelscopeStack(app, f"reelscope-{config.stage}", config=config,
                           description="reelscope: serverless video intelligence (S3, Step Functions, Lambda, Batch)")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    app = cdk.App()
    build(app)
    app.synth()
