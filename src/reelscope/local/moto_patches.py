"""Where local mode corrects moto 5.2's costs, each patch installed once per process by install().

Each patch keeps moto's answers as they are and changes what a request costs: a DynamoDB Query
that reads the whole table, a ranged S3 GET that reads the whole object, a multipart upload
joined in memory three times over. Each docstring says which moto code it corrects and what was
measured; a test of each (tests/unit/test_store.py, tests/functional/test_local_pipeline.py)
checks moto's answers and the cost.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import inspect
import os
import tempfile


def install() -> None:
    index_moto_queries()
    items_written_as_they_are()
    ranged_moto_reads()
    streamed_moto_uploads()
    interpreter_signs_as_the_owner()


def interpreter_signs_as_the_owner() -> None:
    """moto's Step Functions interpreter calls a task's service (the definition's DynamoDB
    UpdateItem states) with the fixed keys ak/sk on http://localhost:PORT
    (stepfunctions/parser/asl/utils/boto_client.py). Local mode with users takes only the owner's
    signature, and with --bind listens on another address: those calls failed (the execution:
    "States.Runtime: KeyError('RequestId')"). They now use the environment's credentials and
    endpoint, which local mode sets to the owner's. A dozen modules import the function by name,
    so its code is replaced in place (the globals it reads are its module's, given os)."""
    from moto.stepfunctions.parser.asl.utils import boto_client

    def boto_client_for(region: str, service: str, state_credentials=None):
        endpoint = {} if botocore_stubber.enabled else {  # noqa: F821 - boto_client's own globals
            "endpoint_url": os.environ.get("AWS_ENDPOINT_URL") or f"http://localhost:{moto_server_port()}"}  # noqa: F821
        return boto3.client(region_name=region, service_name=service, **endpoint, config=Config(  # noqa: F821
            parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,  # noqa: F821
            read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS))  # noqa: F821

    boto_client.os = os
    boto_client.boto_client_for.__code__ = boto_client_for.__code__


_candidates: contextvars.ContextVar = contextvars.ContextVar("reelscope_moto_query", default=None)


def index_moto_queries() -> None:
    """Make moto's DynamoDB Query look only at the items it can return. moto 5.2 answers every
    Query by sorting *all* the table's items, then filtering them (models/table.py: `for item in
    self.all_items()`), so each local read cost grew with the whole store: 0.25-0.5 s per Query on
    a 100-job store whose search terms fill the table. A base-table Query now gets its hash key's
    items (moto keeps them in a dict by hash key), an index Query the items whose index hash key
    matches, unsorted: moto sorts the candidates itself and applies every condition as before.
    And a projection converts each item to plain JSON once, not once per projected field (moto's
    Item.project did it per field: 7 times an item for a page of jobs)."""
    from botocore.utils import merge_dicts
    from moto.dynamodb.models.dynamo_type import Item, serializer
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.models.utilities import find_nested_key

    if getattr(Table, "reelscope_indexed", False):
        return
    query, all_items = Table.query, Table.all_items
    signature = inspect.signature(query)

    def candidates_query(self, *args, **kwargs):
        asked = signature.bind(self, *args, **kwargs).arguments
        if asked.get("index_name") is None:
            scope = ("base", asked["hash_key"]) if self.range_key_attr and asked["hash_key"] else None
        else:
            scope = ("index", tuple(asked.get("hash_key_conditions") or ()))
        token = _candidates.set((self, scope) if scope and scope[1] else None)
        try:
            return query(self, *args, **kwargs)
        finally:
            _candidates.reset(token)

    def candidate_items(self):
        asked = _candidates.get()
        if asked is None or asked[0] is not self:
            return all_items(self)
        kind, key = asked[1]
        if kind == "base":
            return list(self.items.get(key, {}).values())
        parts = self.items.values() if not self.range_key_attr else (i for p in self.items.values() for i in p.values())
        return [item for item in parts if all(name in item.attrs and item.attrs[name] == value for name, value in key)]

    def project(self, projection_expressions):
        plain, projected = self.to_regular_json(), {}
        for expression in projection_expressions:
            merge_dicts(projected, find_nested_key(expression, plain))
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=serializer.serialize(projected)["M"])

    Table.reelscope_unpatched_query = query  # tests/unit/test_moto_patches.py: is moto still so?
    Table.query, Table.all_items, Table.reelscope_indexed = candidates_query, candidate_items, True
    Item.project = project


def items_written_as_they_are() -> None:
    """Items, which moto already holds in DynamoDB's wire form ({"S": ...}), are written out as
    they are instead of walked member by member against the service model (half of a page of
    jobs' cost in moto 5.2)."""
    from moto.core.serialize import JSONSerializer

    if getattr(JSONSerializer, "reelscope_as_is", False):
        return
    serialize_map = JSONSerializer._serialize_type_map

    def wire(value: dict) -> dict:  # moto keeps binary as bytes: the wire has base64
        ((kind, inner),) = value.items()
        if kind == "B":
            return {"B": base64.b64encode(inner).decode()}
        if kind == "BS":
            return {"BS": [base64.b64encode(b).decode() for b in inner]}
        if kind == "L":
            return {"L": [wire(v) for v in inner]}
        if kind == "M":
            return {"M": {k: wire(v) for k, v in inner.items()}}
        return value

    def serialize_map_as_is(self, serialized, value, shape, key):
        if shape.value.name == "AttributeValue" and all(isinstance(v, dict) and len(v) == 1 for v in value.values()):
            serialized[self.get_serialized_name(shape, key)] = {k: wire(v) for k, v in value.items()}
        else:
            serialize_map(self, serialized, value, shape, key)

    JSONSerializer._serialize_type_map, JSONSerializer.reelscope_as_is = serialize_map_as_is, True


_ranged_get: contextvars.ContextVar = contextvars.ContextVar("reelscope_moto_ranged_get", default=False)


class _ObjectBytes:
    """An object's bytes as a ranged GET reads them: its length, and the slice asked for, read
    from moto's spooled file alone."""

    def __init__(self, key):
        self.key = key

    def __len__(self) -> int:
        return self.key.contentsize

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(len(self))
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return self.key._value_buffer.read(max(0, stop - start))


def ranged_moto_reads() -> None:
    """Make moto's S3 answer a ranged GET by reading that range only. moto 5.2 reads the whole
    object into memory for every GET (FakeKey.value), then slices the range out of it
    (S3Response._handle_range_header). boto3 downloads anything over 8 MiB as ranged GETs of
    8 MiB, 10 at a time, so every branch's download of a 400 MB video read 20 GB and held up to
    4 GB at once: measured, a 400 MB download took 21 s, and memory grew with the video's length.
    During a GET with a Range header, an object's value is an _ObjectBytes; whatever moto does not
    slice is made whole bytes again before it leaves."""
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    if getattr(S3Response, "reelscope_ranged", False):
        return
    whole, key_response = FakeKey.value, S3Response.key_response

    def value(self):
        return _ObjectBytes(self) if _ranged_get.get() else whole.fget(self)

    def ranged_key_response(self, request, full_url, headers):
        token = _ranged_get.set(request.method == "GET" and bool(request.headers.get("range")))
        try:
            status, response_headers, content = key_response(self, request, full_url, headers)
        finally:
            _ranged_get.reset(token)
        if isinstance(content, _ObjectBytes):  # a range moto did not take (several, or unreadable): all of it
            content = content[:]
        return status, response_headers, content

    FakeKey.reelscope_unpatched_value = whole  # tests/unit/test_moto_patches.py
    FakeKey.value = property(value, whole.fset)
    S3Response.key_response, S3Response.reelscope_ranged = ranged_key_response, True


class OnDisk:
    """An object's bytes in a file (a completed multipart upload's parts joined, a POST upload's
    file part), which the new key takes as its buffer: written to its end, never read into memory."""

    def __init__(self, file=None):
        self.file = file or tempfile.TemporaryFile()

    def __len__(self) -> int:
        return self.file.tell()


def put_posted_object(account: str, bucket: str, key: str, file, fields: dict[str, str]):
    """What moto does with a browser-based upload (POST Object) once its form is read: the object,
    its "ObjectCreated:Post" notification, its metadata from the form's fields, but from `file`
    (positioned at its end) as it is, where moto would parse the whole request body in memory."""
    from moto.s3.models import s3_backends
    from moto.s3.utils import metadata_from_headers

    stored = s3_backends[account]["aws"].put_object(bucket, key, OnDisk(file), request_method="POST")
    stored.set_metadata(metadata_from_headers(fields))
    return stored


def streamed_moto_uploads() -> None:
    """Make moto's S3 keep an upload on disk rather than in memory. moto 5.2 writes a value into a
    SpooledTemporaryFile that holds it in a BytesIO before rolling it to disk, and completes a
    multipart upload by joining its parts in a bytearray, then copying that to bytes: measured, a
    300 MiB upload raised RSS by 1,080 MiB at its peak and left 360-480 MiB behind, so `process`
    grew by three times the size of the video and of its renditions. Here a value larger than the spool
    goes to disk at once, and the parts are joined in a temporary file that becomes the key's
    buffer. A full-object checksum (asked for by name; boto3 asks for CRC32 per part) is computed
    over the joined bytes, which moto needs in memory: that case keeps moto's way."""
    from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
    from moto.s3.models import S3_UPLOAD_PART_MIN_SIZE, FakeKey, FakeMultipart, MultipartChecksumBuilder

    if getattr(FakeMultipart, "reelscope_streamed", False):
        return
    value, joined_in_memory = FakeKey.value, FakeMultipart.complete

    def store(self, new_value) -> None:
        if isinstance(new_value, OnDisk):
            self._value_buffer.close()
            self._value_buffer, self.contentsize = new_value.file, len(new_value)
            return
        if len(new_value) > self._max_buffer_size:
            self._value_buffer.rollover()
        value.fset(self, new_value)

    def complete(self, body):
        checksum = MultipartChecksumBuilder(self.metadata.get("x-amz-checksum-algorithm"),
                                            self.metadata.get("x-amz-checksum-type"))
        if checksum.checksum_type != "COMPOSITE":
            return joined_in_memory(self, body)
        joined, md5s, sizes, last = OnDisk(), bytearray(), [], None
        for number, etag in body:
            part = self.parts.get(number)
            if part is None or part.etag.strip('"') != etag.strip('"'):
                raise InvalidPart()
            if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            data = part.value
            joined.file.write(data)
            checksum.addPart(data)
            md5s += bytes.fromhex(part.etag.strip('"'))
            sizes.append(part.size)
            last = part
        if last is None:
            raise MalformedXML
        self.completed_part_sizes = sizes
        return joined, f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(sizes)}", checksum.build()

    FakeKey.value = property(value.fget, store)
    FakeMultipart.reelscope_unpatched_complete = joined_in_memory  # tests/unit/test_moto_patches.py
    FakeMultipart.complete, FakeMultipart.reelscope_streamed = complete, True
