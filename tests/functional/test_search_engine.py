"""The search engine's tables on a temporary folder and on moto's S3 server: reports made here, so
every filter, page and facet has a known answer."""

from __future__ import annotations

import threading

import pytest

from reelscope.errors import BadQuery
from reelscope.search import engine
from reelscope.search import index as search

UPLOADED = {"a": "2026-03-01T10:00:00.000+00:00", "b": "2026-03-05T10:00:00.000+00:00"}
SENTENCES = {  # job -> (speaker, language, text) per segment
    "a": [("S1", "en", "The harbor crane was repaired yesterday afternoon."),
          ("S2", "en", "Three cargo ships arrived before sunrise."),
          ("S1", "fr", "Le chat dort sur la table de la cuisine.")],
    "b": [("S1", "en", "A red car waited at the harbor gate."),
          ("S1", "en", "The night guard walked along the fence.")],
}


def job_id(name: str) -> str:
    return name * 32


def report(name: str, extra_segments: int = 0) -> dict:
    said = SENTENCES[name] + [("S1", "en", f"Routine line number {n} about the weather.") for n in range(extra_segments)]
    transcript = [{"id": i, "start": 10.0 * i, "end": 10.0 * i + 4, "text": text, "speaker": who, "language": lang}
                  for i, (who, lang, text) in enumerate(said)]
    entities = [{"id": 0, "kind": "object", "label": "car" if name == "b" else "boat", "animal": False, "start": 2.0,
                 "end": 8.0, "peak_confidence": 0.9, "evidence": {"path": "evidence/0.jpg"}},
                {"id": 1, "kind": "text", "label": "text", "animal": False, "text": "Free coffee at the front desk",
                 "start": 1.0, "end": 5.0, "peak_confidence": 0.95, "evidence": {"path": "text/1.jpg"}}]
    clock = {"pieces": [{"video_start": 0.0, "video_end": 600.0, "wall_start": "2023-11-14T22:13:20"}]} if name == "a" else None
    return {"source": {"job_id": job_id(name), "file_name": f"{name} camera.mp4"}, "transcript": transcript,
            "entities": entities, "thumbnails": [{"t": 0.0, "path": "thumbnails/1.jpg"}], "wall_clock": clock,
            "speakers": [{"id": "S1", "name": "Inspector Lee"}, {"id": "S2", "name": "S2"}] if name == "a" else []}


@pytest.fixture()
def uri(tmp_path, monkeypatch):
    monkeypatch.setenv("REELSCOPE_SEARCH_URI", str(tmp_path / "search"))
    return str(tmp_path / "search")


def index(name: str, tmp_path, case: str = "default", **kwargs) -> int:
    return search.index_documents(job_id(name), report(name, **kwargs), tmp_path / name, UPLOADED[name], case)[0]


def uids(found: dict) -> list[str]:
    return [f"{hit['job_id'][0]}:{hit['doc_id']}" for hit in found["hits"]]


def test_two_jobs_indexed_at_once_lose_no_row_and_a_rerun_replaces(uri, tmp_path):
    threads = [threading.Thread(target=index, args=(name, tmp_path), kwargs={"extra_segments": 200}) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    table = engine.open_table(engine.DOCUMENTS)
    assert table.count_rows() == (3 + 200 + 2) + (2 + 200 + 2)
    assert index("a", tmp_path) == 5  # a rerun that found less: its other rows are gone, none twice
    table = engine.open_table(engine.DOCUMENTS)
    assert table.count_rows() == 5 + 204
    assert table.count_rows(f"job_id = '{job_id('a')}'") == 5
    engine.remove_job(job_id("b"))
    assert engine.open_table(engine.DOCUMENTS).count_rows() == 5
    assert search.search("weather")["hits"] == []


@pytest.fixture()
def both(uri, tmp_path):
    for name in "ab":
        index(name, tmp_path)


def test_a_caller_of_some_cases_reads_only_their_rows_inside_the_engine(uri, tmp_path):
    index("a", tmp_path, case="harbour")
    index("b", tmp_path, case="gate")
    everyone = search.search("harbor", "hybrid")
    assert {hit["job_id"] for hit in everyone["hits"]} == {job_id("a"), job_id("b")}
    harbour = search.Filters(cases=("harbour",))
    for mode in search.MODES:
        found = search.search("harbor gate car", mode, harbour)
        assert found["hits"] and {hit["job_id"] for hit in found["hits"]} == {job_id("a")}, mode
        assert {value["value"] for value in found["facets"]["job"]} == {job_id("a")}  # the facets count none of b
    assert search.search("harbor", "hybrid", search.Filters(cases=()))["hits"] == []  # a viewer of no case
    # the clock moments of job a (case harbour) only for harbour
    assert [hit["kind"] for hit in search.search("2023-11-14 22:15", filters=harbour)["hits"]][:1] == ["moment"]
    assert search.search("2023-11-14 22:15", filters=search.Filters(cases=("gate",)))["hits"] == []
    # "more like this" of another case's document: as if it did not exist
    with pytest.raises(BadQuery, match="no indexed document"):
        search.search(like=f"{job_id('b')}#seg-0", filters=harbour)
    assert all(hit["job_id"] == job_id("a") for hit in search.search(like=f"{job_id('a')}#seg-0", filters=harbour)["hits"])


def test_a_table_made_before_cases_gets_the_column_in_the_default_case(uri, tmp_path):
    index("a", tmp_path)
    table = engine.open_table(engine.DOCUMENTS)
    table.drop_columns(["case_id"])
    assert "case_id" not in engine.open_table(engine.DOCUMENTS).schema.names
    engine.upgraded(engine.open_table(engine.DOCUMENTS))
    assert engine.open_table(engine.DOCUMENTS).count_rows("case_id = 'default'") == 5
    assert search.search("cargo ships", filters=search.Filters(cases=("default",)))["hits"]


def test_keyword_semantic_and_hybrid_rank_the_right_document_first(both):
    assert uids(search.search("cargo ships"))[0] == "a:seg-1"
    assert search.search("cargo ships")["hits"][0]["matched"] == ["cargo", "ship"]
    semantic = search.search("vessels carrying freight reached port at dawn", "semantic")["hits"]
    assert (semantic[0]["doc_id"], semantic[0]["kind"]) == ("seg-1", "transcript") and semantic[0]["similarity"] > 0.3
    assert search.search("lattice quantum chromodynamics", "semantic")["hits"] == []  # under every floor
    assert uids(search.search("harbor", "hybrid"))[:2] == ["a:seg-0", "b:seg-0"]
    like = search.search(like=f"{job_id('a')}#seg-1")["hits"]
    assert f"{job_id('a')}#seg-1" not in {f"{h['job_id']}#{h['doc_id']}" for h in like}


def test_every_filter_keeps_exactly_its_documents(both):
    def found(**given) -> set[str]:
        return set(uids(search.search("harbor cat car coffee chat crane", filters=search.parse_filters(**given))))

    everything = found()
    assert everything == {"a:seg-0", "a:seg-2", "a:ent-1", "b:seg-0", "b:ent-0", "b:ent-1"}
    assert found(job=job_id("b")) == {"b:seg-0", "b:ent-0", "b:ent-1"}
    assert found(label="car") == {"b:ent-0"}
    assert found(kind="text,entity") == {"a:ent-1", "b:ent-0", "b:ent-1"}
    assert found(speaker="inspector lee") == {"a:seg-0", "a:seg-2"}
    assert found(speaker="s1") == {"a:seg-0", "a:seg-2", "b:seg-0"}  # b named no one: its S1 is "S1"
    assert found(language="fr") == {"a:seg-2"}
    assert found(file="b camera.mp4") == found(job=job_id("b"))
    assert found(uploaded_after="2026-03-02") == found(job=job_id("b"))
    assert found(uploaded_before="2026-03-01T11:00+00:00") == found(job=job_id("a"))
    # wall clock 22:13:20 at t=0: seg-0 (0-4 s) and ent-1 (1-5 s) before 22:13:26, seg-2 at 20-24 s after it
    assert found(wall_from="2023-11-14T22:13:30") == {"a:seg-2"}
    assert found(wall_to="2023-11-14 22:13:26") == {"a:seg-0", "a:ent-1"}


def test_pages_follow_the_ranking_with_no_hit_twice(uri, tmp_path):
    index("a", tmp_path, extra_segments=45)
    whole = uids(search.search("weather", limit=100))
    assert len(whole) == 45
    facets = search.search("weather cargo")["facets"]
    assert facets["kind"] == [{"value": "transcript", "hits": 46}] and facets["of"] == 46
    pages, cursor = [], None
    while True:
        found = search.search("weather", limit=10, cursor=cursor)
        pages += uids(found)
        cursor = found["next"]
        if cursor is None:
            break
        index("b", tmp_path, extra_segments=30)  # more weather indexed meanwhile: the pages keep their version
    assert pages == whole
    with pytest.raises(BadQuery, match="another search") as refused:
        search.search("cargo", limit=10, cursor=search.search("weather", limit=10)["next"])
    assert refused.value.field == "next"


def test_wall_clock_moments_come_first_and_keep_the_filters(both):
    hits = search.search("2023-11-14 22:13:23")["hits"]
    assert (hits[0]["kind"], hits[0]["start"], hits[0]["job_id"]) == ("moment", 3.0, job_id("a"))
    assert search.search("22:13:25")["hits"][0]["start"] == 5.0
    assert search.search("2023-11-15 22:13:23")["hits"] == []
    assert search.search("22:13:25", filters=search.parse_filters(job=job_id("b")))["hits"] == []


def test_maintenance_builds_every_index_and_the_ann_keeps_the_answers(uri, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "ANN_MIN_ROWS", 300)  # 100,000 in the deployment; 300 rows train it here
    index("a", tmp_path, extra_segments=300)
    before = uids(search.search("vessels carrying freight reached port at dawn", "semantic"))
    done = engine.maintain()
    table = engine.open_table(engine.DOCUMENTS)
    assert engine.has_ann(table) and done["documents"]["rows"] == 305
    indexed = {column for index in table.list_indices() for column in index.columns}
    assert indexed == {"text", "vector", *engine.BITMAP_COLUMNS, *engine.BTREE_COLUMNS}
    assert uids(search.search("vessels carrying freight reached port at dawn", "semantic"))[:1] == before[:1] == ["a:seg-1"]
    assert uids(search.search("cargo ships"))[0] == "a:seg-1"
    index("b", tmp_path)  # rows after the indexes were built are found too
    assert uids(search.search("red car gate"))[0] == "b:seg-0"


@pytest.mark.parametrize(("given", "field", "message"), [
    ({"kind": "frames"}, "kind", "frames is not a kind"),
    ({"uploaded_after": "yesterday"}, "uploaded_after", "not an ISO 8601 date"),
    ({"wall_from": "2023-11-14T22:13:20+01:00"}, "wall_from", "no zone"),
])
def test_a_bad_filter_names_its_parameter(given, field, message):
    with pytest.raises(BadQuery, match=message) as refused:
        search.parse_filters(**given)
    assert refused.value.field == field


def test_the_tables_on_s3_through_moto_server(tmp_path, monkeypatch):
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                            "AWS_DEFAULT_REGION": "us-east-1", "REELSCOPE_BUCKET": "media"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("REELSCOPE_SEARCH_URI", raising=False)
        boto3.client("s3").create_bucket(Bucket="media")
        threads = [threading.Thread(target=index, args=(name, tmp_path)) for name in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert engine.search_uri() == "s3://media/search"
        assert engine.open_table(engine.DOCUMENTS).count_rows() == 9
        assert uids(search.search("cargo ships"))[0] == "a:seg-1"
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="media", Prefix="search/")["Contents"]]
        assert any(key.startswith("search/documents.lance/") for key in keys)
        engine.maintain()
        assert uids(search.search("cargo ships"))[0] == "a:seg-1"
    finally:
        server.stop()
