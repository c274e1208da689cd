"""The door for people: a Cognito user pool with its managed login, a group per role, and the
app client of the pages and API clients (authorization code with PKCE, no client secret: the
pages' callback runs in the API, and a secret in a browser or a CLI is no secret)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from reelscope.access.roles import ROLES


class People(Construct):
    """The pool (sign-in by user name or e-mail; no self sign-up: an admin invites people; MFA
    optional, TOTP), its groups admin, analyst and viewer (case:NAME groups give cases: an admin
    makes them as cases begin), and its managed login's domain."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str) -> None:
        super().__init__(scope, construct_id)
        self.pool = cognito.UserPool(
            self, "Pool", user_pool_name=f"reelscope-{stage}", self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True), sign_in_case_sensitive=False,
            mfa=cognito.Mfa.OPTIONAL, mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(min_length=12, require_lowercase=True, require_uppercase=True,
                                                   require_digits=True, require_symbols=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY, feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=True, removal_policy=RemovalPolicy.RETAIN)
        for role in ROLES:
            cognito.CfnUserPoolGroup(self, f"{role.title()}Group", user_pool_id=self.pool.user_pool_id, group_name=role,
                                     description=f"reelscope {role}s (docs/SECURITY.md)")
        prefix = f"reelscope-{stage}-{Stack.of(self).account}"
        # The classic hosted login: the newer one needs a branding style made per client before it shows a page.
        self.domain = self.pool.add_domain("Login", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix))
        for rule, reason in (
            ("AwsSolutions::AwsSolutions-COG2", "MFA is optional (TOTP), as docs/SECURITY.md says; make it required "
             "in the console for a deployment that needs it."),
            ("AwsSolutions::AwsSolutions-COG8", "Threat protection is a Plus-plan feature, billed per user; the "
             "Essentials plan is used (docs/DEPLOY.md says how to change it)."),
        ):
            Validations.of(self.pool).acknowledge(Acknowledgment(id=rule, reason=reason))

    def add_client(self, api: apigw.RestApi, stage_name: str) -> cognito.UserPoolClient:
        """The app client, its callback the API's own /auth/callback (named from the API's id, not its
        stage, so that the stage's deployment may depend on the authorizer that reads this client)."""
        base = f"https://{api.rest_api_id}.execute-api.{Stack.of(self).region}.{Stack.of(self).url_suffix}/{stage_name}"
        self.client = self.pool.add_client(
            "Pages", generate_secret=False, prevent_user_existence_errors=True,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(flows=cognito.OAuthFlows(authorization_code_grant=True),
                                         scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL,
                                                 cognito.OAuthScope.PROFILE],
                                         callback_urls=[f"{base}/auth/callback"], logout_urls=[f"{base}/auth/login"]),
            access_token_validity=Duration.hours(1), id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(1), enable_token_revocation=True)
        return self.client

    @property
    def login_url(self) -> str:
        return self.domain.base_url()
