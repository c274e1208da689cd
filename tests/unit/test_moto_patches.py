"""Tripwires: each of local mode's moto patches corrects something moto 5.2 does (moto_patches.py
says what and what it cost). These fail when moto stops doing it: the patch can then go. What the
patches themselves do is tested where they are used (test_store.py, test_local_pipeline.py)."""

from __future__ import annotations

import inspect

from reelscope.local import moto_patches


def source(function) -> str:
    return inspect.getsource(function)


def test_moto_still_reads_every_item_for_a_query():
    from moto.dynamodb.models.table import Table

    moto_patches.install()
    assert "for item in self.all_items()" in source(Table.reelscope_unpatched_query), (
        "moto's Query no longer reads the whole table: index_moto_queries can go")


def test_moto_still_slices_a_range_out_of_the_whole_object():
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    moto_patches.install()
    assert "self._value_buffer.read()" in source(FakeKey.reelscope_unpatched_value.fget)  # the whole object, copied
    assert "response_content[begin : end + 1]" in source(S3Response._handle_range_header), (
        "moto no longer slices a range out of the whole value: ranged_moto_reads can go")


def test_moto_still_joins_a_multipart_upload_in_memory():
    from moto.s3.models import FakeMultipart

    moto_patches.install()
    joined = source(FakeMultipart.reelscope_unpatched_complete)
    assert "total = bytearray()" in joined and "bytes(total)" in joined, (
        "moto no longer joins the parts in memory: streamed_moto_uploads can go")
