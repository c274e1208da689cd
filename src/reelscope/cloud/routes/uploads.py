"""POST /uploads, POST /ingest, GET /ingest/{id}: videos in."""

from __future__ import annotations

import json
import uuid
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import unquote, urlsplit

from aws_lambda_powertools.event_handler import (
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from reelscope.cloud.jobs import UPLOADED_BY
from reelscope.cloud.responses import (
    HEX_ID,
    NOT_FOUND,
    caller_scope,
    case_for,
    error,
    ok,
    request_scope,
    upload_key,
)
from reelscope.cloud.schemas import (
    FetchQueued,
    FetchRecord,
    IngestRequest,
    UploadForm,
    UploadRequest,
    answer,
)
from reelscope.status import Status


def router(client) -> Router:
    """POST /uploads, POST /ingest, GET /ingest/{id}."""
    router = Router()
    settings_, store_ = request_scope(router)
    caller_ = caller_scope(router)

    @router.post("/uploads", summary="A presigned POST for uploading a video under uploads/",
              responses={201: ok("url and fields for a multipart/form-data POST to S3", UploadForm)})
    def create_upload(upload: Annotated[UploadRequest, Body()]):
        settings, caller = settings_(), caller_()
        case = case_for(caller, upload.case)
        if isinstance(case, Response):
            return case
        key = upload_key(upload.file_name, case)
        # Who uploads goes with the object, under the signature: ingest writes it into the job's trail.
        fields = {"Content-Type": upload.content_type, UPLOADED_BY: caller.user}
        post = store_().s3.generate_presigned_post(  # the store's client signs with SigV4
            Bucket=settings.bucket, Key=key, Fields=fields,
            Conditions=[["content-length-range", 1, settings.max_bytes], *(["eq", f"${k}", v] for k, v in fields.items())],
            ExpiresIn=settings.upload_expiry_s)
        return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                        body=answer(UploadForm, {"key": key, "case": case, "url": post["url"], "fields": post["fields"],
                                                 "expires_in": settings.upload_expiry_s, "max_bytes": settings.max_bytes}))

    @router.post("/ingest", summary="Fetch a video from an http(s) URL into uploads/ (which starts a job)",
              responses={202: ok("queued: poll status_path", FetchQueued)})
    def ingest_url(request: Annotated[IngestRequest, Body()]):
        settings = settings_()
        case = case_for(caller_(), request.case)
        if isinstance(case, Response):
            return case
        url = request.url.strip()
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - parsed on access: a port out of range raises here
        except ValueError as err:  # "http://[::1/", "http://[zz]/", "http://host:99999/"
            return error(422, f"url: {err}")
        if not parts.hostname:
            return error(422, "url: an http or https URL with a host")
        fetch_id = uuid.uuid4().hex
        key = upload_key(unquote(PurePosixPath(parts.path).name) or "video.mp4", case)
        store_().put_fetch(fetch_id, url, key)
        client("lambda").invoke(FunctionName=settings.fetch_function, InvocationType="Event",
                             Payload=json.dumps({"fetch_id": fetch_id, "url": url, "key": key}).encode())
        return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=answer(FetchQueued, {
            "fetch_id": fetch_id, "key": key, "status": Status.QUEUED, "status_path": f"/ingest/{fetch_id}"}))

    @router.get("/ingest/<fetch_id>", summary="How a URL fetch went", responses={200: ok("the fetch", FetchRecord), **NOT_FOUND})
    def ingest_status(fetch_id: Annotated[str, Path(pattern=HEX_ID)]):
        record = store_().fetch_record(fetch_id)
        if record is None:
            return error(404, f"fetch {fetch_id} not found")
        return answer(FetchRecord, {k: v for k, v in record.items() if k not in ("PK", "SK", "ttl")})

    return router
