"""Where a job's state lives: S3 objects and DynamoDB items (one table). See docs/STORAGE.md.

S3:        uploads/...                    inputs (the only prefix that starts jobs)
           jobs/{job_id}/{artifact path}  outputs, same layout as `reelscope analyze --out`
           jobs/{job_id}/records/{step}-outputs.json  what a step published (its record keeps the count)
DynamoDB:  PK = JOB#{job_id}, SK = JOB             the job: status, source, media facts, summary, error
                                                   (entity = JOB: the ByCreated index lists jobs by created_at)
           PK = JOB#{job_id}, SK = STEP#{step}     one per step: status, times, output count and key, summary, error,
                                                   the run it counts for, its fingerprint (reuse)
           PK = RATES, SK = RATES                  each step's average seconds per media second here (eta.py)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import itertools
import json
import threading
import time
from decimal import Decimal
from pathlib import Path, PurePosixPath

import boto3
from boto3.dynamodb.conditions import Attr, ConditionExpressionBuilder, Key
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from reelscope.definition import BY_CASE, BY_CREATED
from reelscope.status import Status

JOB_TTL_DAYS = 365
LISTED = ("job_id", "case_id", "status", "source_file_name", "created_at", "finished_at", "media.duration_s", "manifest_key",
          "poster_key", "error", "speakers")
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".json": "application/json",
                 ".srt": "application/x-subrip", ".vtt": "text/vtt", ".csv": "text/csv", ".pdf": "application/pdf"}


def job_id_for(bucket: str, key: str, etag: str) -> str:
    """Same bytes at the same key -> same id (a duplicate event, or the same file uploaded again,
    starts nothing); other bytes -> a new id."""
    return hashlib.sha256(f"{bucket}\n{key}\n{etag}".encode()).hexdigest()[:32]


def artifact_key(job_id: str, relative: str) -> str:
    return f"jobs/{job_id}/{relative}"


def outputs_key(job_id: str, step: str) -> str:
    return f"jobs/{job_id}/records/{step}-outputs.json"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def to_dynamo(value):
    """DynamoDB numbers are Decimals; JSON round-trip converts nested floats."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value):
    return json.loads(json.dumps(value, default=lambda d: int(d) if d == d.to_integral_value() else float(d)))


class _ChunkReader:
    """A file-like view of an iterator of byte chunks, for upload_fileobj."""

    def __init__(self, chunks):
        self._chunks, self._buffer, self.total = iter(chunks), b"", 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
            self.total += len(chunk)
        data, self._buffer = (self._buffer, b"") if size < 0 else (self._buffer[:size], self._buffer[size:])
        return data


class Table:
    """One DynamoDB table over the low-level client, taking and giving plain Python values (numbers
    as Decimal) like boto3's Table resource. Why not the resource: boto3 documents resources as not
    thread-safe, and one Store serves every thread of a process (API requests, local mode's jobs);
    clients are thread-safe."""

    def __init__(self, client, name: str):
        self.client, self.name = client, name
        self.exceptions = client.exceptions
        self._serializer, self._deserializer = TypeSerializer(), TypeDeserializer()

    def _in(self, item: dict) -> dict:
        return {k: self._serializer.serialize(v) for k, v in item.items()}

    def _out(self, item: dict) -> dict:
        return {k: self._deserializer.deserialize(v) for k, v in item.items()}

    def _call(self, operation: str, values: dict | None = None, **kwargs) -> dict:
        if values:
            kwargs["ExpressionAttributeValues"] = self._in(values)
        return getattr(self.client, operation)(TableName=self.name, **kwargs)

    def put_item(self, Item: dict, **kwargs) -> dict:  # noqa: N803 - the resource's argument names
        answer = self._call("put_item", Item=self._in(Item), **kwargs)
        return {"Attributes": self._out(answer["Attributes"])} if "Attributes" in answer else {}

    def get_item(self, Key: dict) -> dict:  # noqa: N803
        answer = self._call("get_item", Key=self._in(Key))
        return {"Item": self._out(answer["Item"])} if "Item" in answer else {}

    def delete_item(self, Key: dict) -> None:  # noqa: N803
        self._call("delete_item", Key=self._in(Key))

    def update_item(self, Key: dict, ExpressionAttributeValues: dict | None = None, **kwargs) -> None:  # noqa: N803
        self._call("update_item", ExpressionAttributeValues, Key=self._in(Key), **kwargs)

    def query(self, KeyConditionExpression, FilterExpression=None, ExclusiveStartKey: dict | None = None,  # noqa: N803
              fields: tuple[str, ...] = (), **kwargs) -> dict:
        """One page; the conditions are boto3.dynamodb.conditions objects, as the resource takes them.
        `fields`: read only these attributes."""
        builder = ConditionExpressionBuilder()  # one builder: the two expressions' placeholders differ
        key = builder.build_expression(KeyConditionExpression, is_key_condition=True)
        names, values = dict(key.attribute_name_placeholders), dict(key.attribute_value_placeholders)
        if fields:  # a name with dots is a path into a map ("media.duration_s")
            paths = [[f"#f{i}_{j}" for j, _ in enumerate(name.split("."))] for i, name in enumerate(fields)]
            names |= {alias: part for path, name in zip(paths, fields) for alias, part in zip(path, name.split("."))}
            kwargs["ProjectionExpression"] = ", ".join(".".join(path) for path in paths)
        kwargs["KeyConditionExpression"] = key.condition_expression
        if FilterExpression is not None:
            built = builder.build_expression(FilterExpression)
            kwargs["FilterExpression"] = built.condition_expression
            names |= built.attribute_name_placeholders
            values |= built.attribute_value_placeholders
        if ExclusiveStartKey:
            kwargs["ExclusiveStartKey"] = self._in(ExclusiveStartKey)
        answer = self._call("query", values, ExpressionAttributeNames=names, **kwargs)
        page = {"Items": [self._out(item) for item in answer["Items"]]}
        if "LastEvaluatedKey" in answer:
            page["LastEvaluatedKey"] = self._out(answer["LastEvaluatedKey"])
        return page

    def query_all(self, condition, fields: tuple[str, ...] = ()) -> list[dict]:
        items, kwargs = [], {"fields": fields}
        while True:
            page = self.query(condition, **kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_batch(self, keys: list[dict]) -> list[dict]:
        """The items of these keys that exist (in no particular order), 100 keys a request."""
        items = []
        for start in range(0, len(keys), 100):
            pending = {self.name: {"Keys": [self._in(k) for k in keys[start:start + 100]]}}
            for attempt in range(8):
                answer = self.client.batch_get_item(RequestItems=pending)
                items += [self._out(item) for item in answer["Responses"].get(self.name, [])]
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.name]['Keys'])} reads unprocessed after 8 tries")
        return items

    def write_batch(self, puts: list[dict] = (), deletes: list[dict] = ()) -> None:
        """Put and delete items (keys) in batches of 25, resending what DynamoDB left unprocessed."""
        requests = [{"PutRequest": {"Item": self._in(i)}} for i in puts] + \
                   [{"DeleteRequest": {"Key": self._in(k)}} for k in deletes]
        for start in range(0, len(requests), 25):
            pending = {self.name: requests[start:start + 25]}
            for attempt in range(8):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.name])} writes unprocessed after 8 tries")


class Store:
    """A job store: the bucket, the table, their clients. One per process (`shared_store`):
    building boto3 clients costs more than most requests."""

    def __init__(self, bucket: str, table: str):
        self.bucket = bucket
        session = boto3.session.Session()  # sessions are not thread-safe: each Store makes its own clients once
        # SigV4 for presigned URLs too (boto3's S3 default signs them SigV2); enough pooled
        # connections for the API's concurrent requests.
        config = Config(signature_version="s3v4", max_pool_connections=64)
        self.s3 = session.client("s3", config=config)
        self.table = Table(session.client("dynamodb", config=Config(max_pool_connections=64)), table)

    # ------------------------------------------------------------ jobs
    def create_job(self, job_id: str, source: dict, execution_name: str, case: str) -> bool:
        """Conditional put: False when the job already exists (a duplicate delivery)."""
        item = {"PK": f"JOB#{job_id}", "SK": "JOB", "entity": "JOB", "job_id": job_id, "case_id": case,
                "status": Status.QUEUED, "source": source,
                "source_file_name": PurePosixPath(source["key"]).name,  # named in lists even if probe refuses it
                "execution_name": execution_name, "created_at": now(),
                "ttl": int(time.time()) + JOB_TTL_DAYS * 86400}
        try:
            self.table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(PK)")
            return True
        except self.table.exceptions.ConditionalCheckFailedException:
            return False

    def _set(self, pk: str, sk: str, fields: dict, only_if_status: tuple[str, ...] = (),
             remove: tuple[str, ...] = ()) -> bool:
        """SET each field of one item and REMOVE those named (names aliased: status, error... are
        reserved words); with only_if_status, only while the item's status is one of those.
        Returns whether it was set."""
        names = {f"#{k}": k for k in (*fields, *remove)}
        values = {f":{k}": v for k, v in to_dynamo(fields).items()}
        condition = {}
        if only_if_status:
            names["#status"] = "status"
            values |= {f":was{i}": status for i, status in enumerate(only_if_status)}
            condition = {"ConditionExpression": f"#status IN ({', '.join(f':was{i}' for i in range(len(only_if_status)))})"}
        update = " ".join(part for part in ("SET " + ", ".join(f"#{k} = :{k}" for k in fields) if fields else "",
                                            "REMOVE " + ", ".join(f"#{k}" for k in remove) if remove else "") if part)
        kwargs = {"Key": {"PK": pk, "SK": sk}, "UpdateExpression": update,
                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, **condition}
        try:
            self.table.update_item(**kwargs)
            return True
        except self.table.exceptions.ConditionalCheckFailedException:
            return False

    def _get(self, pk: str, sk: str) -> dict | None:
        item = self.table.get_item(Key={"PK": pk, "SK": sk}).get("Item")
        return from_dynamo(item) if item else None

    def update_job(self, job_id: str, only_if_status: tuple[str, ...] = (), remove: tuple[str, ...] = (),
                   **fields) -> bool:
        return self._set(f"JOB#{job_id}", "JOB", fields, only_if_status, remove)

    def job(self, job_id: str) -> dict | None:
        return self._get(f"JOB#{job_id}", "JOB")

    def list_jobs(self, limit: int, status: str | None = None, start: dict | None = None,
                  cases: frozenset[str] | None = None) -> tuple[list[dict], dict | None]:
        """Newest first, one page of LISTED fields: (jobs, the key to continue from, or None at the end).
        `cases`: only jobs of these cases (None: every case), read from the ByCase index, one
        query per case merged by time; the key to continue from holds each case's own."""
        if cases is None:
            page = self._newest(BY_CREATED, Key("entity").eq("JOB"), limit, status, start)
            return page["Items"], page.get("LastEvaluatedKey")
        starts = (start or {}).get("by_case", {})
        pages = {case: self._newest(BY_CASE, Key("case_id").eq(case), limit, status, starts.get(case))
                 for case in sorted(cases) if starts.get(case) != "done"}
        # each case's page keeps its own order: what is taken of it is always its first items
        merged = list(itertools.islice(heapq.merge(*([(job, case) for job in page["Items"]] for case, page in pages.items()),
                                                   key=lambda pair: pair[0]["created_at"], reverse=True), limit))
        following = {case: key for case, key in starts.items() if case not in pages}
        for case, page in pages.items():
            taken = [job for job, of in merged if of == case]
            if len(taken) == len(page["Items"]):  # the case's page is used up: go on after it
                following[case] = page.get("LastEvaluatedKey") or "done"
            elif taken:
                last = taken[-1]
                following[case] = {"PK": f"JOB#{last['job_id']}", "SK": "JOB", "case_id": case, "created_at": last["created_at"]}
            elif case in starts:
                following[case] = starts[case]
        more = any(value != "done" for value in following.values())
        return [job for job, _ in merged], {"by_case": following} if more else None

    def _newest(self, index: str, condition, limit: int, status: str | None, start: dict | None) -> dict:
        kwargs = {"IndexName": index, "KeyConditionExpression": condition, "ScanIndexForward": False,
                  "Limit": limit, "fields": LISTED}
        if status:
            kwargs["FilterExpression"] = Attr("status").eq(status)
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self.table.query(**kwargs)
        return {**page, "Items": [from_dynamo(item) for item in page["Items"]]}

    def steps(self, job_id: str, run: int | None = None) -> dict[str, dict]:
        """The job's step records; with `run`, only those that count for that run (made or reused in it:
        a rerun keeps the earlier run's records until each step runs again or is reused)."""
        items = self.table.query_all(Key("PK").eq(f"JOB#{job_id}") & Key("SK").begins_with("STEP#"))
        records = {item["step"]: from_dynamo(item) for item in items}
        return {name: r for name, r in records.items() if run is None or r.get("run", 1) == run}

    def delete_job_records(self, job_id: str) -> int:
        """Every item of a job (its steps, its share links' own items, the job last); returns how many."""
        items = self.table.query_all(Key("PK").eq(f"JOB#{job_id}"), fields=("PK", "SK"))
        shares = [{"PK": f"SHARE#{item['SK'].split('#', 1)[1]}", "SK": "SHARE"} for item in items
                  if item["SK"].startswith("SHARE#")]
        others = [{"PK": item["PK"], "SK": item["SK"]} for item in items if item["SK"] != "JOB"]
        self.table.write_batch(deletes=shares + others)
        self.table.delete_item(Key={"PK": f"JOB#{job_id}", "SK": "JOB"})  # last: a delete cut short can be asked again
        return len(shares) + len(others) + 1

    def delete_objects(self, prefix: str, version: str | None = None) -> int:
        """Every version of every object under `prefix` (with `version`, a version id or an ETag as
        ingest records it: only that object's versions of those bytes); the bucket is versioned, so
        deleting the current version alone would keep the bytes."""
        doomed = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            doomed += [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])
                       if version is None or (v["Key"] == prefix and version in (v["VersionId"], v["ETag"].strip('"')))]
            doomed += [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])
                       if version is None]
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes 1,000 keys a call
            answer = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RuntimeError(f"S3 kept {len(answer['Errors'])} objects, e.g. {first['Key']}: {first['Message']}")
        return len(doomed)

    # ------------------------------------------------------------ cases
    def case(self, case: str) -> dict:
        return self._get(f"CASE#{case}", "CASE") or {"case_id": case, "held": False}

    def hold_case(self, case: str, held: bool, by: str) -> dict:
        item = {"PK": f"CASE#{case}", "SK": "CASE", "case_id": case, "held": held, "changed_by": by, "changed_at": now()}
        self.table.put_item(Item=item)
        return item

    # ------------------------------------------------------------ share links
    def put_share(self, token_hash: str, job_id: str, expires_at: int) -> None:
        """One item per link, keyed by the token's hash: the table never holds a usable token. The
        job keeps a marker of it, so that deleting the job finds its links."""
        self.table.put_item(Item={"PK": f"SHARE#{token_hash}", "SK": "SHARE", "job_id": job_id, "created_at": now(),
                                  "expires_at": expires_at, "revoked": False, "ttl": expires_at + 30 * 86400})
        self.table.put_item(Item={"PK": f"JOB#{job_id}", "SK": f"SHARE#{token_hash}", "ttl": expires_at + 30 * 86400})

    def share(self, token_hash: str) -> dict | None:
        return self._get(f"SHARE#{token_hash}", "SHARE")

    def revoke_share(self, token_hash: str) -> None:
        self._set(f"SHARE#{token_hash}", "SHARE", {"revoked": True})

    def presigned_get(self, key: str, expires_in: int) -> str:
        return self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                              ExpiresIn=expires_in)

    # ------------------------------------------------------------ URL fetches
    def put_fetch(self, fetch_id: str, url: str, key: str) -> None:
        self.table.put_item(Item={"PK": f"FETCH#{fetch_id}", "SK": "FETCH", "url": url[:2048], "key": key,
                                  "status": Status.QUEUED, "created_at": now(), "ttl": int(time.time()) + 30 * 86400})

    def end_fetch(self, fetch_id: str, error: str | None = None, size_bytes: int = 0) -> None:
        self._set(f"FETCH#{fetch_id}", "FETCH", {"status": Status.FAILED if error else Status.SUCCEEDED, "ended_at": now(),
                                                 "error": error or "", "size_bytes": size_bytes})

    def fetch_record(self, fetch_id: str) -> dict | None:
        return self._get(f"FETCH#{fetch_id}", "FETCH")

    def upload_stream(self, chunks, key: str, content_type: str) -> int:
        """Multipart upload from an iterator of bytes; an exception aborts it (no partial object)."""
        reader = _ChunkReader(chunks)
        self.s3.upload_fileobj(reader, self.bucket, key, ExtraArgs={"ContentType": content_type})
        return reader.total

    # ------------------------------------------------------------ steps
    def start_step(self, job_id: str, step: str, run: int) -> None:
        self.table.put_item(Item={"PK": f"JOB#{job_id}", "SK": f"STEP#{step}", "job_id": job_id, "step": step,
                                  "status": Status.RUNNING, "started_at": now(), "run": run})

    def end_step(self, job_id: str, step: str, seconds: float, outputs: list[dict] | None = None,
                 error: str | None = None, summary: dict | None = None, fingerprint: str = "",
                 skipped: bool = False) -> None:
        """Record a step's end. Its outputs (one per file: thousands for hours of video) go to S3 as
        a list; the item keeps their count, total size and key, so it stays the same size whatever
        the video's length (an item holds at most 400 KB). A success keeps the step's fingerprint:
        a later run of the job with the same one reuses it (reuse_step). `skipped`: the step chose
        not to run, and `error` says why."""
        outputs = outputs or []
        fields = {"status": Status.SKIPPED if skipped else Status.FAILED if error else Status.SUCCEEDED,
                  "ended_at": now(), "duration_s": round(seconds, 3),
                  "output_count": len(outputs), "output_bytes": sum(o["size_bytes"] for o in outputs)}
        if fingerprint and (skipped or not error):  # a success, or a choice not to run: the same again
            fields["fingerprint"] = fingerprint
        if outputs:
            fields["outputs_key"] = outputs_key(job_id, step)
            self.put_json(fields["outputs_key"], json.dumps(outputs, sort_keys=True))
        if error:
            fields["error"] = error
        if summary:
            fields["summary"] = summary
        self._set(f"JOB#{job_id}", f"STEP#{step}", fields)

    def step_rates(self) -> dict:
        """Each step's average seconds per second of media here (cloud/eta.py), or {} before any job ended."""
        return (self._get("RATES", "RATES") or {}).get("rates", {})

    def put_step_rates(self, rates: dict) -> None:
        """One item; two jobs ending at once may each write theirs: an average losing one measurement is harmless."""
        self._set("RATES", "RATES", {"rates": rates, "updated_at": now()})

    def reuse_step(self, job_id: str, step: str, run: int) -> None:
        """An earlier run's success counts for this run too (its outputs are in place)."""
        self._set(f"JOB#{job_id}", f"STEP#{step}", {"run": run, "reused": True})

    def step_outputs(self, record: dict) -> list[dict]:
        """The outputs a step record names (end_step)."""
        return self.get_json(record["outputs_key"]) if record.get("outputs_key") else []

    # ------------------------------------------------------------ objects
    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(self.bucket, key, str(path))
        return path

    def upload(self, path: Path, key: str) -> None:
        content_type = CONTENT_TYPES.get(PurePosixPath(key).suffix, "application/octet-stream")
        self.s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def object_metadata(self, key: str) -> dict[str, str]:
        """An object's user metadata (x-amz-meta-*, names lower case)."""
        return self.s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})

    def put_json(self, key: str, text: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json")

    def get_json(self, key: str):
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


_shared: dict[tuple[str, str], Store] = {}
_shared_lock = threading.Lock()


def shared_store(bucket: str, table: str) -> Store:
    """The process's Store for this bucket and table, made at first use."""
    with _shared_lock:
        if (bucket, table) not in _shared:
            _shared[(bucket, table)] = Store(bucket, table)
        return _shared[(bucket, table)]


def forget_shared_stores() -> None:
    """Local mode moves the endpoints (a new port each start): clients made before must go."""
    with _shared_lock:
        _shared.clear()
