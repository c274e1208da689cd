"""What the synthesized template allows each function and the Batch jobs: their roles' policy
statements with CloudFormation's intrinsics resolved to local mode's names (Ref, Fn::GetAtt,
Fn::Join, Fn::Sub), so that a call recorded in local mode (reelscope.local.calls) can be judged
against the policy the deployment gives: actions and resources matched with IAM's wildcards, an
explicit Deny winning. AWS managed policies attached to a role are not read (none of the
recorded principals has one)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from reelscope.definition import BATCH_PLACEHOLDERS
from reelscope.local.names import ACCOUNT, AUDIT_TABLE, BATCH_RESOURCES, BUCKET, MACHINE, REGION, TABLE

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}


@dataclass(frozen=True)
class Statement:
    policy: str  # the policy's logical id
    index: int  # the statement's place in it
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def matches(self, action: str, resource: str) -> bool:
        return (any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions)
                and any(fnmatch.fnmatchcase(resource, r) for r in self.resources))

    def __str__(self) -> str:
        return f"{self.policy}[{self.index}] {self.effect} {', '.join(self.actions)} on {', '.join(self.resources)}"


class Template:
    def __init__(self, template: dict) -> None:
        self.resources = template["Resources"]

    # ------------------------------------------------------------ names
    def _batch_arn(self, logical: str) -> str:
        for placeholder, (compute, kind) in BATCH_PLACEHOLDERS.items():
            if f"{compute.title()}{'Queue' if kind == 'queue' else 'Job'}" in logical:
                return f"arn:aws:batch:{REGION}:{ACCOUNT}:{BATCH_RESOURCES[placeholder]}"
        return f"arn:aws:batch:{REGION}:{ACCOUNT}:{logical}"

    def function_name(self, logical: str) -> str:
        """A function's local name (reelscope-NAME, NAME its folder under functions/)."""
        properties = self.resources[logical]["Properties"]
        handler = properties.get("Handler") or properties.get("ImageConfig", {}).get("Command", [""])[0]
        match = re.fullmatch(r"functions\.(\w+)\.app\.handler", handler)
        return f"reelscope-{match.group(1)}" if match else logical

    def ref(self, logical: str) -> str:
        if logical in PSEUDO:
            return PSEUDO[logical]
        kind = self.resources[logical]["Type"]
        if kind == "AWS::S3::Bucket":
            return BUCKET if "Media" in logical else logical.lower()
        if kind == "AWS::DynamoDB::Table":
            return AUDIT_TABLE if "Audit" in logical else TABLE
        if kind == "AWS::Lambda::Function":
            return self.function_name(logical)
        if kind == "AWS::StepFunctions::StateMachine":
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"
        if kind in ("AWS::Batch::JobQueue", "AWS::Batch::JobDefinition"):
            return self._batch_arn(logical)
        return logical

    def attribute(self, logical: str, name: str) -> str:
        kind, ref = self.resources[logical]["Type"], self.ref(logical)
        if name != "Arn":
            return f"{logical}.{name}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{ref}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{ref}"
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ref}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*"
        if kind == "AWS::StepFunctions::StateMachine" or kind.startswith("AWS::Batch::"):
            return ref
        return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical}"

    def resolve(self, value):
        """A template value with its intrinsics worked out."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            return self.attribute(*value["Fn::GetAtt"])
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(p)) for p in parts)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return re.sub(r"\$\{([\w:]+)(?:\.(\w+))?\}",
                          lambda m: self.attribute(m[1], m[2]) if m[2] else self.ref(m[1]), text)
        return {k: self.resolve(v) for k, v in value.items()}

    # ------------------------------------------------------------ who may do what
    def role_of(self, principal: str) -> str:
        """The logical id of the role a principal acts with: a function's, or the Batch jobs'."""
        for logical, resource in self.resources.items():
            props = resource.get("Properties", {})
            if principal == "batch_job" and resource["Type"] == "AWS::Batch::JobDefinition":
                return props["ContainerProperties"]["JobRoleArn"]["Fn::GetAtt"][0]
            if resource["Type"] == "AWS::Lambda::Function" and self.function_name(logical) == f"reelscope-{principal}":
                return props["Role"]["Fn::GetAtt"][0]
        raise KeyError(f"no role for {principal!r} in the template")

    def statements(self, role: str) -> list[Statement]:
        """Every statement of the policies attached to `role` (its inline ones and AWS::IAM::Policy)."""
        documents = [(f"{role}.{p['PolicyName']}", p["PolicyDocument"])
                     for p in self.resources[role]["Properties"].get("Policies", [])]
        documents += [(logical, r["Properties"]["PolicyDocument"]) for logical, r in self.resources.items()
                      if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"].get("Roles", [])]
        found = []
        for name, document in documents:
            for i, statement in enumerate(document["Statement"]):
                found.append(Statement(name, i, statement["Effect"], tuple(_listed(statement["Action"])),
                                       tuple(str(self.resolve(r)) for r in _listed(statement["Resource"]))))
        return found


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[Statement], action: str, resource: str) -> bool:
    """IAM's rule within one identity: an explicit Deny wins, else an Allow is needed."""
    matching = [s for s in statements if s.matches(action, resource)]
    return any(s.effect == "Allow" for s in matching) and not any(s.effect == "Deny" for s in matching)
