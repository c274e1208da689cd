"""The store's table over the low-level client, and local mode's indexed moto queries: the same
answers as DynamoDB gives (partitions, index order, paging, filters, projections, batches)."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from moto import mock_aws

from reelscope.definition import create_table_request
from reelscope.local.moto_patches import index_moto_queries
from reelscope.store import Table


@pytest.fixture
def table(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    index_moto_queries()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**create_table_request("t"))
        yield Table(client, "t")


def test_queries_read_their_partition_in_key_order(table):
    jobs = [{"PK": f"JOB#{n}", "SK": "JOB", "entity": "JOB", "created_at": f"2026-11-{n + 10}", "status": s,
             "media": {"duration_s": Decimal(n) + Decimal("0.5"), "codec": "h264"}}
            for n, s in enumerate(["SUCCEEDED", "FAILED"] * 5)]
    steps = [{"PK": "JOB#3", "SK": f"STEP#{name}", "n": n} for n, name in enumerate(["probe", "detect", "transcribe"])]
    terms = [{"PK": f"TERM#{w}", "SK": f"{j:02d}#seg-{j}", "tf": j % 3 + 1} for w in ("cat", "dog") for j in range(30)]
    table.write_batch(jobs + steps + terms)

    assert [i["SK"] for i in table.query_all(Key("PK").eq("JOB#3") & Key("SK").begins_with("STEP#"))] == \
           ["STEP#detect", "STEP#probe", "STEP#transcribe"]
    dogs = table.query_all(Key("PK").eq("TERM#dog"), fields=("SK", "tf"))
    assert [i["SK"] for i in dogs] == [f"{j:02d}#seg-{j}" for j in range(30)] and set(dogs[0]) == {"SK", "tf"}
    assert table.query_all(Key("PK").eq("TERM#cow")) == []

    pages, start = [], None  # the index, newest first, two a page, with a filter
    while True:
        page = table.query(Key("entity").eq("JOB"), IndexName="ByCreated", ScanIndexForward=False, Limit=2,
                           FilterExpression=Attr("status").eq("SUCCEEDED"), ExclusiveStartKey=start,
                           fields=("PK", "created_at", "media.duration_s"))
        pages += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        start = page["LastEvaluatedKey"]
    assert [i["PK"] for i in pages] == ["JOB#8", "JOB#6", "JOB#4", "JOB#2", "JOB#0"]
    assert pages[0] == {"PK": "JOB#8", "created_at": "2026-11-18", "media": {"duration_s": Decimal("8.5")}}

    found = table.get_batch([{"PK": "TERM#cat", "SK": f"{j:02d}#seg-{j}"} for j in range(0, 150, 5)])
    assert sorted(i["SK"] for i in found) == [f"{j:02d}#seg-{j}" for j in range(0, 30, 5)]
    table.write_batch(deletes=[{"PK": "JOB#3", "SK": s["SK"]} for s in steps])
    assert table.query_all(Key("PK").eq("JOB#3")) == [jobs[3]]


def test_every_attribute_type_reads_back_as_written(table):
    """Local mode hands moto's items out in their wire form as they are: each type must survive."""
    item = {"PK": "X", "SK": "Y", "s": "ünï", "n": Decimal("-1.25"), "b": b"\x00\xff", "yes": True, "none": None,
            "l": ["a", Decimal(2), [b"\x01"], {"k": False}], "m": {"deep": {"deeper": Decimal("1e-3")}},
            "ss": {"a", "b"}, "ns": {Decimal(1), Decimal("2.5")}, "bs": {b"x", b"y"}, "empty": {}}
    table.put_item(Item=item)
    assert table.get_item(Key={"PK": "X", "SK": "Y"})["Item"] == item
    assert table.query_all(Key("PK").eq("X")) == [item]
    assert table.query_all(Key("PK").eq("X"), fields=("m.deep", "b", "l")) == [{"m": item["m"], "b": item["b"], "l": item["l"]}]
