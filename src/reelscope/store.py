"""Where a job's state lives: S3 objects and DynamoDB items (one table). See docs/STORAGE.md.

S3:        uploads/...                    inputs (the only prefix that starts jobs)
           jobs/{job_id}/{artifact path}  outputs, same layout as `reelscope analyze --out`
DynamoDB:  PK = JOB#{job_id}, SK = JOB             the job: status, source, media facts, summary, error
                                                   (entity = JOB: the ByCreated index lists jobs by created_at)
           PK = JOB#{job_id}, SK = STEP#{step}     one per step: status, times, outputs, error
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from decimal import Decimal
from pathlib import Path, PurePosixPath

import boto3
from boto3.dynamodb.conditions import Attr, Key

JOB_TTL_DAYS = 365
BY_CREATED = "ByCreated"  # global secondary index: entity (HASH), created_at (RANGE)
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".json": "application/json",
                 ".srt": "application/x-subrip", ".vtt": "text/vtt", ".csv": "text/csv", ".pdf": "application/pdf"}


def job_id_for(bucket: str, key: str, version: str) -> str:
    """Same object version -> same id (a duplicate event starts nothing); a re-upload -> a new id."""
    return hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()[:32]


def artifact_key(job_id: str, relative: str) -> str:
    return f"jobs/{job_id}/{relative}"


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


class Store:
    def __init__(self, bucket: str, table: str):
        self.bucket = bucket
        self.s3 = boto3.client("s3")
        self.table = boto3.resource("dynamodb").Table(table)

    # ------------------------------------------------------------ jobs
    def create_job(self, job_id: str, source: dict, execution_name: str) -> bool:
        """Conditional put: False when the job already exists (a duplicate delivery)."""
        item = {"PK": f"JOB#{job_id}", "SK": "JOB", "entity": "JOB", "job_id": job_id, "status": "QUEUED", "source": source,
                "execution_name": execution_name, "created_at": now(),
                "ttl": int(time.time()) + JOB_TTL_DAYS * 86400}
        try:
            self.table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(PK)")
            return True
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False

    def _set(self, pk: str, sk: str, fields: dict, only_if_status: tuple[str, ...] = ()) -> bool:
        """SET each field of one item (names aliased: status, error... are reserved words); with
        only_if_status, only while the item's status is one of those. Returns whether it was set."""
        names, values = {f"#{k}": k for k in fields}, {f":{k}": v for k, v in to_dynamo(fields).items()}
        condition = {}
        if only_if_status:
            names["#status"] = "status"
            values |= {f":was{i}": status for i, status in enumerate(only_if_status)}
            condition = {"ConditionExpression": f"#status IN ({', '.join(f':was{i}' for i in range(len(only_if_status)))})"}
        kwargs = {"Key": {"PK": pk, "SK": sk}, "UpdateExpression": "SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, **condition}
        try:
            self.table.update_item(**kwargs)
            return True
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False

    def _get(self, pk: str, sk: str) -> dict | None:
        item = self.table.get_item(Key={"PK": pk, "SK": sk}).get("Item")
        return from_dynamo(item) if item else None

    def update_job(self, job_id: str, only_if_status: tuple[str, ...] = (), **fields) -> bool:
        return self._set(f"JOB#{job_id}", "JOB", fields, only_if_status)

    def job(self, job_id: str) -> dict | None:
        return self._get(f"JOB#{job_id}", "JOB")

    def list_jobs(self, limit: int, status: str | None = None, start: dict | None = None) -> tuple[list[dict], dict | None]:
        """Newest first, one page: (jobs, the key to continue from, or None at the end)."""
        kwargs = {"IndexName": BY_CREATED, "KeyConditionExpression": Key("entity").eq("JOB"), "ScanIndexForward": False,
                  "Limit": limit}
        if status:
            kwargs["FilterExpression"] = Attr("status").eq(status)
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self.table.query(**kwargs)
        return [from_dynamo(item) for item in page["Items"]], page.get("LastEvaluatedKey")

    def steps(self, job_id: str) -> dict[str, dict]:
        items = self.table.query(KeyConditionExpression=Key("PK").eq(f"JOB#{job_id}") & Key("SK").begins_with("STEP#"))
        return {item["step"]: from_dynamo(item) for item in items["Items"]}

    # ------------------------------------------------------------ share links
    def put_share(self, token_hash: str, job_id: str, expires_at: int) -> None:
        """One item per link, keyed by the token's hash: the table never holds a usable token."""
        self.table.put_item(Item={"PK": f"SHARE#{token_hash}", "SK": "SHARE", "job_id": job_id, "created_at": now(),
                                  "expires_at": expires_at, "revoked": False, "ttl": expires_at + 30 * 86400})

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
                                  "status": "QUEUED", "created_at": now(), "ttl": int(time.time()) + 30 * 86400})

    def end_fetch(self, fetch_id: str, error: str | None = None, size_bytes: int = 0) -> None:
        self._set(f"FETCH#{fetch_id}", "FETCH", {"status": "FAILED" if error else "SUCCEEDED", "ended_at": now(),
                                                 "error": error or "", "size_bytes": size_bytes})

    def fetch_record(self, fetch_id: str) -> dict | None:
        return self._get(f"FETCH#{fetch_id}", "FETCH")

    def upload_stream(self, chunks, key: str, content_type: str) -> int:
        """Multipart upload from an iterator of bytes; an exception aborts it (no partial object)."""
        reader = _ChunkReader(chunks)
        self.s3.upload_fileobj(reader, self.bucket, key, ExtraArgs={"ContentType": content_type})
        return reader.total

    # ------------------------------------------------------------ steps
    def start_step(self, job_id: str, step: str) -> None:
        self.table.put_item(Item={"PK": f"JOB#{job_id}", "SK": f"STEP#{step}", "job_id": job_id, "step": step,
                                  "status": "RUNNING", "started_at": now()})

    def end_step(self, job_id: str, step: str, seconds: float, outputs: list[dict] | None = None,
                 error: str | None = None) -> None:
        fields = {"status": "FAILED" if error else "SUCCEEDED", "ended_at": now(), "duration_s": round(seconds, 3),
                  "outputs": outputs or []}
        if error:
            fields["error"] = error
        self._set(f"JOB#{job_id}", f"STEP#{step}", fields)

    # ------------------------------------------------------------ objects
    def download(self, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(self.bucket, key, str(path))
        return path

    def upload(self, path: Path, key: str) -> None:
        content_type = CONTENT_TYPES.get(PurePosixPath(key).suffix, "application/octet-stream")
        self.s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def put_json(self, key: str, text: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json")

    def get_json(self, key: str):
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
