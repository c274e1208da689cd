"""The audit trail: one record per thing a person did (signed in, uploaded, viewed a report,
downloaded an export, searched, shared, named, ran again, deleted): who, when, what, from where.

Records live in a table of their own, which the API may add to and read but not change: its role
has PutItem and Query on it and nothing else (infra/access.py), and each record's key is new (a
conditional put). A job's records are keyed by the job (its trail outlives the job: deleting a
job keeps them), the rest by day."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from boto3.dynamodb.conditions import Key

from reelscope.access.roles import Caller
from reelscope.settings import Settings
from reelscope.store import Table, shared_store

DETAIL_MAX = 2000  # characters of a record's detail (a search's query and filters, a share's expiry)
TRAIL_KEY = ("trail", "at")


def _table(settings: Settings) -> Table:
    return Table(shared_store(settings.bucket, settings.table).table.client, settings.audit_table)


def trail_of(job_id: str | None, day: str) -> str:
    return f"JOB#{job_id}" if job_id else f"DAY#{day}"


def _bounded(detail: dict) -> str:
    text = json.dumps(detail, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= DETAIL_MAX else json.dumps({"cut": text[:DETAIL_MAX]}, ensure_ascii=False)


def record(settings: Settings, action: str, who: Caller | str, *, job_id: str | None = None, case: str | None = None,
           detail: dict | None = None, source_ip: str = "", user_agent: str = "") -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    at = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
    caller = who if isinstance(who, Caller) else None
    item = {"trail": trail_of(job_id, at[:10]), "at": f"{at}#{uuid.uuid4().hex[:8]}", "action": action,
            "user": caller.user if caller else who, "role": caller.role if caller else "",
            "source_ip": (caller.source_ip if caller else "") or source_ip,
            "user_agent": ((caller.user_agent if caller else "") or user_agent)[:200],
            "detail": _bounded(detail or {})}
    if job_id:
        item["job_id"] = job_id
    if case:
        item["case_id"] = case
    _table(settings).put_item(Item=item, ConditionExpression="attribute_not_exists(trail)")
    return item


def read(settings: Settings, job_id: str | None = None, day: str = "", limit: int = 100,
         start: dict | None = None) -> tuple[list[dict], dict | None]:
    """One page of a trail, oldest first: (records, the key to go on from or None)."""
    kwargs = {"KeyConditionExpression": Key("trail").eq(trail_of(job_id, day)), "Limit": limit}
    if start:
        kwargs["ExclusiveStartKey"] = start
    page = _table(settings).query(**kwargs)
    records = [{**item, "detail": json.loads(item["detail"]), "at": item["at"].split("#")[0]} for item in page["Items"]]
    return records, page.get("LastEvaluatedKey")


def create_table_request(name: str) -> dict:
    """The audit table's CreateTable parameters (local mode, tests); the CDK app declares the same keys."""
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": TRAIL_KEY[0], "KeyType": "HASH"},
                          {"AttributeName": TRAIL_KEY[1], "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in TRAIL_KEY]}
