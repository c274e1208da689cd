"""Search across videos processed in local mode (keyword, semantic, hybrid): speech and labels we know."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import requests

from reelscope import synth
from reelscope.local.cloud import LocalCloud
from reelscope.local.names import TABLE
from reelscope.search.index import MIN_SIMILARITY, terms

from ..conftest import SENTENCES
from .test_api import call, request

HARBOR = ["The harbor crane was repaired yesterday afternoon.", "Three cargo ships arrived before sunrise."]
CAPTION = "Free coffee at the front desk"  # drawn on the harbor video: on-screen text
CLOCK_EPOCH = 1700000000  # and a burned-in clock: 2023-11-14 22:13:20 at its first frame


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, speech_video, people_video, model_dir, fall_weights):
    """Three jobs: the speech fixture, a second narration with a caption, and the people video (no speech)."""
    env = pytest.MonkeyPatch()
    env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
    env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
    folder = tmp_path_factory.mktemp("harbor")
    spoken = synth.speech_track(HARBOR, folder / "harbor.wav", lead_s=0.5, gap_s=1.0)
    plain = synth.slideshow(folder / "plain.mp4", [("color:navy", round(spoken[-1].end + 1, 1))], audio=folder / "harbor.wav")
    harbor = synth.captioned(plain, folder / "harbor.mp4", [(CAPTION, 0.5, 4.0, 100, 600, 48),
                                                            (synth.clock(CLOCK_EPOCH), 0, 60, 760, 40, 36)])
    with LocalCloud(tmp_path_factory.mktemp("state")) as cloud:
        jobs = {}
        for name, path in (("speech", speech_video[0]), ("harbor", harbor), ("people", people_video)):
            result = cloud.upload(path, f"uploads/{name}.mp4")
            assert cloud.wait(result["job_id"], timeout_s=600)["status"] == "SUCCEEDED"
            jobs[name] = result["job_id"]
        yield cloud, jobs, speech_video[1]
    env.undo()


def words(text: str) -> list[str]:
    """What the known text and a transcript must share: the words, not Whisper's punctuation."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def search(cloud, **params) -> tuple[int, dict]:
    event = request("GET", "/search")
    event["queryStringParameters"] = params
    return call(cloud, event)


def test_a_phrase_finds_its_segment_first(indexed):
    cloud, jobs, spoken = indexed
    status, body = search(cloud, q="kitchen window")
    assert status == 200
    best = body["hits"][0]
    assert (best["job_id"], best["kind"]) == (jobs["speech"], "transcript")
    assert words(best["snippet"]) == words(SENTENCES[1]) and sorted(best["matched"]) == ["kitchen", "window"]
    assert best["start"] == pytest.approx(spoken[1].start, abs=0.5)
    assert best["link"] == f"/jobs/{jobs['speech']}/report#t={best['start']:.2f}"

    status, body = search(cloud, q="Cargo SHIPS!")
    # The second sentence's segment (whatever Whisper made of "Three"), not the crane sentence.
    assert body["hits"][0]["job_id"] == jobs["harbor"] and "cargo ship" in body["hits"][0]["snippet"].lower()
    assert all(hit["job_id"] == jobs["harbor"] for hit in body["hits"])


def test_labels_are_searchable_and_filters_apply(indexed):
    cloud, jobs, _ = indexed
    status, body = search(cloud, q="person")
    # The people video: people on the bus photo (2-3 s), then a hard cut to zidane.jpg (3-4 s): two ranges
    assert [(h["job_id"], h["kind"], h["label"]) for h in body["hits"]] == [(jobs["people"], "entity", "person")] * 2
    hit = min(body["hits"], key=lambda h: h["start"])
    assert hit["start"] == pytest.approx(2.0, abs=1.0) and hit["evidence"].startswith("evidence/")
    evidence = requests.get(hit["evidence_url"], timeout=30).content  # the frame itself, presigned
    (listed,) = [a for a in cloud.store.get_json(f"jobs/{jobs['people']}/manifest.json")["artifacts"]
                 if a["path"] == hit["evidence"]]
    assert hashlib.sha256(evidence).hexdigest() == listed["sha256"] and evidence[:2] == b"\xff\xd8"
    assert search(cloud, q="normal", label="Fall")[1]["hits"] == []
    assert search(cloud, q="window", job=jobs["harbor"])[1]["hits"] == []
    assert search(cloud, q="window", job=jobs["speech"])[1]["hits"][0]["job_id"] == jobs["speech"]


def test_on_screen_text_is_found_by_its_words_and_by_a_paraphrase(indexed):
    import jiwer

    cloud, jobs, _ = indexed
    (hit,) = search(cloud, q="coffee desk")[1]["hits"]
    assert (hit["job_id"], hit["kind"]) == (jobs["harbor"], "text")
    assert jiwer.cer(CAPTION, hit["snippet"]) <= 0.1 and sorted(hit["matched"]) == ["coffee", "desk"]
    assert hit["start"] == pytest.approx(0.5, abs=1.0) and hit["evidence"].startswith("text/")
    best = search(cloud, q="no-cost caffeine at the lobby counter", mode="semantic")[1]["hits"][0]  # no word shared
    assert (best["job_id"], best["kind"], best["doc_id"]) == (jobs["harbor"], "text", hit["doc_id"])
    assert best["similarity"] >= MIN_SIMILARITY["transcript"]  # a caption of six words: a sentence's floor


def test_bad_queries_name_the_field(indexed):
    cloud, _, _ = indexed
    assert search(cloud, q="") == (422, {"message": "q: String should have at least 1 character"})
    assert search(cloud) == (422, {"message": "q: Field required"})
    assert search(cloud, q="the of and") == (422, {"message": "q: no searchable words (only stop words or punctuation)"})
    assert search(cloud, q="ship", mode="fuzzy", limit="0") == (422, {
        "message": "mode: Input should be 'keyword', 'semantic' or 'hybrid'; limit: Input should be greater than or equal to 1"})
    assert search(cloud, q="ship", job="x") == (422, {"message": "job: String should match pattern '^[0-9a-f]{32}$'"})
    pasted = " ".join(f"word{n}" for n in range(40)) + " word1 word2"  # one DynamoDB query a term: bounded
    assert search(cloud, q=pasted) == (422, {"message": "q: 40 distinct searchable words; at most 32"})
    assert search(cloud, q=" ".join(f"word{n}" for n in range(32)))[0] == 200


# Paraphrases sharing no searchable word with the sentence they should find.
PARAPHRASES = {"a sibling purchased an automobile": ("speech", 2),
               "it is freezing and blustery outside": ("speech", 0),
               "vessels carrying freight reached port at dawn": ("harbor", 1)}


def test_a_paraphrase_finds_its_segment_first(indexed):
    cloud, jobs, spoken = indexed
    for query, (video, sentence) in PARAPHRASES.items():
        assert search(cloud, q=query)[1]["hits"] == [], query  # keyword search cannot find these
        for mode in ("semantic", "hybrid"):
            status, body = search(cloud, q=query, mode=mode)
            assert status == 200 and body["mode"] == mode
            best = body["hits"][0]
            assert (best["job_id"], best["kind"]) == (jobs[video], "transcript"), (query, mode, best)
            if video == "speech":
                assert words(best["snippet"]) == words(SENTENCES[sentence])
                assert best["start"] == pytest.approx(spoken[sentence].start, abs=0.5)
            else:
                assert "cargo" in best["snippet"].lower()
            assert best["similarity"] >= MIN_SIMILARITY["transcript"]
            assert best["link"].startswith(f"/jobs/{jobs[video]}/report#t=")
            assert all(h["score"] <= best["score"] for h in body["hits"])


def test_semantic_and_hybrid_filters_and_blend(indexed):
    cloud, jobs, _ = indexed
    # Unrelated to everything indexed: under the similarity floors, so no hits rather than noise. One
    # word against one-word labels: "car" scores 0.40 against "person", over the sentences' floor;
    # it finds the sentence about a car only.
    for unrelated in ("lattice quantum chromodynamics", "zebra"):
        assert search(cloud, q=unrelated, mode="semantic")[1]["hits"] == [], unrelated
    (car,) = search(cloud, q="car", mode="semantic")[1]["hits"]
    assert (car["kind"], words(car["snippet"])) == ("transcript", words(SENTENCES[2]))
    normal = search(cloud, q="someone", mode="semantic")[1]["hits"]  # no shared word, the same meaning (0.85)
    assert [(h["job_id"], h["label"]) for h in normal] == [(jobs["people"], "person")] * 2
    assert all(h["similarity"] >= MIN_SIMILARITY["entity"] for h in normal)
    only_speech = search(cloud, q="vessels carrying freight reached port at dawn", mode="semantic", job=jobs["speech"])[1]
    assert all(hit["job_id"] == jobs["speech"] for hit in only_speech["hits"])
    # Hybrid keeps what keywords find: the exact phrase first, its matched words listed.
    best = search(cloud, q="kitchen window", mode="hybrid")[1]["hits"][0]
    assert words(best["snippet"]) == words(SENTENCES[1]) and sorted(best["matched"]) == ["kitchen", "window"]
    entities = search(cloud, q="person", mode="hybrid", label="person")[1]["hits"]
    assert [(e["job_id"], e["kind"]) for e in entities] == [(jobs["people"], "entity")] * 2
    assert search(cloud, q="person", mode="semantic", label="Fall")[1]["hits"] == []


def test_a_wall_clock_time_finds_the_moment_the_burned_in_clock_showed_it(indexed):
    cloud, jobs, _ = indexed
    report = cloud.store.get_json(f"jobs/{jobs['harbor']}/report.json")
    assert report["wall_clock"]["start"] == "2023-11-14T22:13:20"
    assert [e["kind"] for e in report["entities"]].count("overlay") == 1
    assert all("2023" not in e.get("text", "") for e in report["entities"] if e["kind"] == "text")
    status, body = search(cloud, q="2023-11-14 22:13:23")
    assert status == 200
    (moment,) = [hit for hit in body["hits"] if hit["kind"] == "moment"]
    assert (moment["job_id"], moment["start"], moment["wall_time"]) == (jobs["harbor"], 3.0, "2023-11-14T22:13:23")
    assert body["hits"][0] == moment and moment["link"].endswith("#t=3.00")
    assert [hit["start"] for hit in search(cloud, q="22:13:25")[1]["hits"] if hit["kind"] == "moment"] == [5.0]
    assert not [hit for hit in search(cloud, q="2023-11-15 22:13:23")[1]["hits"] if hit["kind"] == "moment"]
    assert search(cloud, q="22:13")[1]["hits"][0]["start"] == 0.0  # the minute began before the video
    for job in (jobs["speech"], jobs["people"]):  # no clock: no wall-clock anywhere
        assert cloud.store.get_json(f"jobs/{job}/report.json")["wall_clock"] is None


def test_indexing_a_job_again_replaces_its_documents(indexed, tmp_path):
    from reelscope.search import engine
    from reelscope.search import index as search_module

    cloud, jobs, _ = indexed
    job = cloud.store.job(jobs["speech"])
    rows = engine.open_table(engine.DOCUMENTS).count_rows()
    report = cloud.store.get_json(f"jobs/{jobs['speech']}/report.json")
    changed = {**report, "transcript": [{**report["transcript"][0], "text": "Zeppelins hover above the orchard."}]}
    try:  # a rerun that heard something else: its old words and documents are gone, the new ones found
        assert search_module.index_documents(jobs["speech"], changed, tmp_path / "changed", job["created_at"], "default")[0] == 1
        assert search(cloud, q="kitchen window")[1]["hits"] == []
        (hit,) = search(cloud, q="zeppelin orchard")[1]["hits"]
        assert (hit["job_id"], hit["snippet"]) == (jobs["speech"], "Zeppelins hover above the orchard.")
        assert engine.open_table(engine.DOCUMENTS).count_rows() == rows - 2
        airships = {"q": "airships floating over fruit trees", "mode": "semantic", "job": jobs["speech"]}
        assert search(cloud, **airships)[1]["hits"][0]["snippet"] == "Zeppelins hover above the orchard."
    finally:
        indexed = search_module.index_documents(jobs["speech"], report, tmp_path, job["created_at"], "default")
        assert indexed == (3, "search/vectors.json")
    assert engine.open_table(engine.DOCUMENTS).count_rows() == rows  # a redrive counts nothing twice
    assert words(search(cloud, q="kitchen window")[1]["hits"][0]["snippet"]) == words(SENTENCES[1])
    assert search(cloud, q="zeppelin orchard")[1]["hits"] == []
    assert all("Zeppelin" not in hit["snippet"] for hit in search(cloud, **airships)[1]["hits"])


def test_the_engine_lives_in_the_state_folder_and_the_table_holds_no_search_item(indexed):
    cloud, jobs, _ = indexed
    assert (cloud.state_dir / "search" / "documents.lance").is_dir()
    kinds = {item["PK"]["S"].split("#")[0] for item in cloud.dynamodb.scan(TableName=TABLE)["Items"]}
    assert not kinds & {"TERM", "DOC", "VECTORS", "SEARCH", "CLOCK"}, kinds


def test_filters_pages_and_facets_through_the_api(indexed):
    cloud, jobs, _ = indexed
    status, body = search(cloud, q="person", kind="entity")
    assert status == 200 and {h["kind"] for h in body["hits"]} == {"entity"}
    assert [(f["value"], f["hits"]) for f in body["facets"]["kind"]] == [("entity", 2)]
    assert [(f["value"], f["hits"], f["file_name"]) for f in body["facets"]["job"]] == [(jobs["people"], 2, "people.mp4")]
    first = search(cloud, q="window cargo ships person coffee", limit="2")[1]
    second = search(cloud, q="window cargo ships person coffee", limit="2", next=first["next"])[1]
    assert first["next"] and second["facets"] is None
    seen = [(h["job_id"], h["doc_id"]) for h in first["hits"] + second["hits"]]
    assert len(set(seen)) == 4
    whole = search(cloud, q="window cargo ships person coffee", limit="4")[1]["hits"]
    assert seen == [(h["job_id"], h["doc_id"]) for h in whole]
    assert search(cloud, q="cargo", file="harbor.mp4")[1]["hits"][0]["job_id"] == jobs["harbor"]
    assert search(cloud, q="cargo", file="speech.mp4")[1]["hits"] == []
    assert search(cloud, q="cargo", uploaded_after="2999-01-01")[1]["hits"] == []
    assert search(cloud, q="coffee", **{"from": "2023-11-14T22:13:20"})[1]["hits"][0]["kind"] == "text"
    assert search(cloud, q="coffee", to="2023-11-14T22:00:00")[1]["hits"] == []
    like = search(cloud, like=f"{jobs['harbor']}#seg-1")[1]
    assert like["mode"] == "semantic" and all(h["doc_id"] != "seg-1" or h["job_id"] != jobs["harbor"] for h in like["hits"])
    assert search(cloud, q="cargo", kind="frames") == (422, {
        "message": "kind: frames is not a kind; kinds: transcript, translation, entity, text, overlay, moment"})
    assert search(cloud, q="cargo", uploaded_before="soon")[0] == 422
    assert search(cloud, q="cargo", **{"from": "noon"}) == (422, {
        "message": "from: 'noon' is not a date and time as the clock shows it (2023-11-14T22:13:20, no zone)"})
    assert search(cloud, q="cargo", next="garbage") == (422, {"message": "next: not a cursor this search gave"})
    assert search(cloud, q="ships", next=first["next"]) == (422, {
        "message": "next: the cursor of another search (query, mode or filters changed)"})
    assert search(cloud, like="nothing") == (422, {"message": "like: a hit's job_id#doc_id, as a hit gives them"})
    assert search(cloud, language="english", q="x")[0] == 422


SUITE_QUERIES = [({"q": "kitchen window"}, ), ({"q": "cargo ships", "mode": "hybrid"},), ({"q": "person", "label": "person"},),
                 ({"q": "vessels carrying freight reached port at dawn", "mode": "semantic"},), ({"q": "2023-11-14 22:13:23"},),
                 ({"q": "coffee desk"},), ({"q": "someone", "mode": "semantic"},)]


def test_reindex_rebuilds_the_tables_from_the_artifacts_with_the_same_hits(indexed):
    """An archive indexed before the engine: its tables gone, its jobs table holding the old index's
    items, one job's vectors file in the old form (a snippet, not the text). `reindex` gives the same
    hits, embeds nothing it had, and deletes the old items."""
    import shutil

    from reelscope.search import migrate

    cloud, jobs, _ = indexed

    def hits() -> list:
        return [[(h["job_id"], h["doc_id"], h["kind"]) for h in search(cloud, **query)[1]["hits"]] for (query,) in SUITE_QUERIES]

    before = hits()
    assert all(before[:3]) and all(before[4:])
    key = f"jobs/{jobs['harbor']}/search/vectors.json"
    old_form = cloud.store.get_json(key)
    old_form["documents"] = [{**{k: v for k, v in d.items() if k != "text"}, "snippet": d["text"][:200]}
                             for d in old_form["documents"]]
    cloud.store.put_json(key, json.dumps(old_form))
    legacy = [{"PK": "TERM#kitchen", "SK": jobs["speech"], "postings": "seg-1\t1\t2.0\t\t\t"},
              {"PK": "VECTORS", "SK": jobs["speech"], "key": "x"}, {"PK": "SEARCH", "SK": "STATS", "documents": 9}]
    cloud.store.table.write_batch(legacy)
    shutil.rmtree(cloud.state_dir / "search")
    cloud.store.update_job(jobs["speech"], remove=("case_id",))  # a job made before cases
    assert all(found == [] for found in hits())
    counts = migrate.reindex(cloud.store, say=lambda line: None)
    documents = sum(cloud.store.job(job)["search_documents"] for job in jobs.values())
    assert counts == {"jobs": 3, "documents": documents, "embedded": 0, "reused": documents, "legacy_items_deleted": 3,
                      "cases_given": 1}
    assert cloud.store.job(jobs["speech"])["case_id"] == "default"
    assert hits() == before
    assert "text" in cloud.store.get_json(key)["documents"][0]  # the vectors file in today's form


def test_normalization():
    # lower case, accents folded, punctuation and stop words dropped, plural s trimmed (not "ss")
    assert terms("Ships, the CAFÉ's Glass: 3 dogs!") == ["ship", "cafe", "s", "glass", "3", "dog"]


# What sticks out on the right: the elements to blame when a page is wider than the screen.
WIDER_THAN_THE_SCREEN = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.scroll')).slice(0, 5)
  .map(e => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def test_report_and_library_pages_on_a_phone(indexed):
    """390x844: one column, the player the page's width (it was a 19x11 px box), nothing wider than
    the screen, the timeline's ranges tall enough to tap; the library two cards a row. Screenshots
    are kept."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from reelscope.local.servers import ApiServer

    cloud, jobs, _ = indexed
    shots = Path(__file__).resolve().parents[2] / "test-output"
    shots.mkdir(exist_ok=True)
    with ApiServer(cloud.runner) as api, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(f"{api.url}/jobs/{jobs['people']}/report")
        page.locator(".range").first.wait_for()
        player = page.locator("#player").bounding_box()
        assert player["width"] >= 360 and player["height"] >= 150, player
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, page.evaluate(WIDER_THAN_THE_SCREEN)
        assert page.locator(".range").first.bounding_box()["height"] >= 30
        # every time on the axis whole: the last one near the end was cut by the axis's edge
        cut = page.evaluate("""[...document.querySelectorAll('.tick span')].filter(s =>
            s.getBoundingClientRect().right > document.getElementById('axis').getBoundingClientRect().right)
            .map(s => s.textContent)""")
        assert cut == []
        page.screenshot(path=str(shots / "report-phone.png"), full_page=True)

        page.goto(f"{api.url}/")
        page.wait_for_function("document.querySelectorAll('#videos .card img').length === 3")
        cards = [page.locator("#videos .card").nth(i).bounding_box() for i in range(3)]
        assert cards[0]["y"] == cards[1]["y"] < cards[2]["y"]  # two a row
        assert not page.locator("#more").is_visible()  # three videos: nothing more to show
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, page.evaluate(WIDER_THAN_THE_SCREEN)
        page.screenshot(path=str(shots / "library-phone.png"), full_page=True)
        browser.close()


def test_library_and_report_pages_in_a_browser(indexed):
    """Headless Debian chromium through Playwright, 1366x900. The library lists every video with
    its poster and duration; a search hit shows its moment's picture and opens the report there.
    The report page plays the job's own subtitles, draws a time axis, a speech lane and a lane per
    label, zooms, and seeks where a range, a transcript line or a hit of its own search is clicked."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from reelscope.local.servers import ApiServer

    cloud, jobs, spoken = indexed
    shots = Path(__file__).resolve().parents[2] / "test-output"
    shots.mkdir(exist_ok=True)
    current_time = "document.getElementById('player').currentTime"
    with ApiServer(cloud.runner) as api, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        response = page.goto(f"{api.url}/")
        assert response.status == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
        page.wait_for_function("[...document.querySelectorAll('#videos .card img')].filter(i => i.naturalWidth > 0).length === 3")
        names = page.locator("#videos .name").all_inner_texts()
        assert names == ["people.mp4", "harbor.mp4", "speech.mp4"]  # newest first
        assert page.locator("#videos .card .at").first.inner_text() == "00:06"  # the people video's 6 s
        assert page.locator("#videos .status").all_inner_texts() == ["succeeded"] * 3
        page.screenshot(path=str(shots / "library.png"), full_page=True)

        page.fill("#q", "kitchen window")
        page.click("#search button")
        first_hit = page.locator("#hits .card").first
        first_hit.wait_for()
        assert " ".join(words(SENTENCES[1])) in " ".join(words(first_hit.inner_text()))
        page.wait_for_function("document.querySelector('#hits .card img')?.naturalWidth > 0")  # the moment's thumbnail
        first_hit.click()
        page.wait_for_url(f"**/jobs/{jobs['speech']}/report#t=*")
        page.wait_for_function(f"Math.abs({current_time} - {spoken[1].start}) < 0.6")

        # Subtitles: the job's own cues, on the player.
        page.wait_for_function("document.getElementById('player').textTracks[0]?.cues?.length > 0")
        cues = page.evaluate("[...document.getElementById('player').textTracks[0].cues].map(c => c.text).join(' ')")
        assert all(" ".join(words(sentence)) in " ".join(words(cues)) for sentence in SENTENCES)
        assert page.locator("a[download='subtitles.vtt']").count() == 1
        # The timeline: an axis, one speech range per segment, zoom that widens every lane together.
        assert page.locator(".range.speech").count() == page.locator(".segment").count() == len(SENTENCES)
        assert page.locator(".tick").count() >= 3
        assert page.evaluate("document.getElementById('scroll').scrollWidth <= document.getElementById('scroll').clientWidth + 1")
        page.click("#zoom-in")
        assert page.evaluate("document.getElementById('scroll').scrollWidth") == pytest.approx(
            2 * page.evaluate("document.getElementById('scroll').clientWidth"), abs=2)
        page.locator(".segment").nth(2).click()
        assert page.evaluate(current_time) == pytest.approx(spoken[2].start, abs=0.6)
        page.fill("#q", "kitchen")  # search within this video: the hit seeks here
        page.click("#search button")
        page.locator("#hits button").first.wait_for()
        page.locator("#hits button").first.click()
        assert page.evaluate(current_time) == pytest.approx(spoken[1].start, abs=0.6)
        page.screenshot(path=str(shots / "report-page.png"), full_page=True)

        page.goto(f"{api.url}/jobs/{jobs['people']}/report")
        normal = page.locator(".range[data-label='person']").first
        normal.wait_for()
        start = float(normal.get_attribute("data-start"))
        normal.click()
        assert page.evaluate(current_time) == pytest.approx(start, abs=0.05)
        assert page.url.endswith(f"#t={start:.2f}")
        # both people ranges, then what ocr read on the bus ("cero emisiones"): objects first
        assert page.locator("#gallery figcaption b").all_inner_texts()[:2] == ["person", "person"]
        # the cut between the two photos, as a shot band with its keyframe; the people's tracks as bars
        assert page.locator(".range.shot").count() == 4  # black, bus, zidane, black
        page.wait_for_function("[...document.querySelectorAll('#shots img')].every(i => i.naturalWidth > 0)")
        assert page.locator(".track .bar").count() >= 2 and "person ×" in page.locator("#names").inner_text()
        browser.close()


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, {"width": 390, "height": 844}], ids=["desktop", "phone"])
def test_the_pages_search_with_filters_facets_pages_and_more_like_this(indexed, viewport):
    """The library: the filters narrow a search, a facet chip picks a video, pages of 2 (the
    request's limit changed on its way) follow each other with no hit twice, "more like this" runs
    a search of its own. The report page: its kinds narrow its search. Screenshots are kept."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from reelscope.local.servers import ApiServer

    cloud, jobs, _ = indexed
    shots = Path(__file__).resolve().parents[2] / "test-output"
    shots.mkdir(exist_ok=True)
    size = "phone" if viewport["width"] < 500 else "desktop"
    query = "window cargo ships person coffee"
    with ApiServer(cloud.runner) as api, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=viewport)
        page.goto(f"{api.url}/")
        page.fill("#q", query)
        page.select_option("#mode", "keyword")
        page.click("summary")
        page.select_option("#f-kind", "text")
        page.click("#search button")
        page.wait_for_function("document.querySelectorAll('#hits .card').length > 0")
        assert page.locator("#hits .name").all_inner_texts() == ["harbor.mp4"]  # the caption only
        page.select_option("#f-kind", "")
        page.click("#search button")
        page.wait_for_function("document.querySelectorAll('#facets button').length > 0")
        expected = [h["file_name"] for h in search(cloud, q=query, mode="keyword", limit="24")[1]["hits"]]
        page.wait_for_function(f"document.querySelectorAll('#hits .card').length === {len(expected)}")
        chip = page.locator("#facets button", has_text="people.mp4")
        chip.click()
        page.wait_for_function("document.querySelector('#facets button.on')?.textContent.startsWith('people.mp4')")
        assert set(page.locator("#hits .name").all_inner_texts()) == {"people.mp4"}
        if size == "phone":
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, page.evaluate(WIDER_THAN_THE_SCREEN)
        page.screenshot(path=str(shots / f"library-search-{size}.png"), full_page=True)
        chip = page.locator("#facets button.on")
        chip.click()  # dropped: every video again
        page.wait_for_function(f"document.querySelectorAll('#hits .card').length === {len(expected)}")

        page.route("**/search?*", lambda route: route.continue_(url=route.request.url.replace("limit=24", "limit=2")))
        page.click("#search button")
        for shown in range(2, len(expected) + 1, 2):
            page.wait_for_function(f"document.querySelectorAll('#hits .card').length === {shown}")
            if shown < len(expected):
                page.click("#more-hits")
        page.wait_for_function(f"document.querySelectorAll('#hits .card').length === {len(expected)}")
        assert page.locator("#hits .name").all_inner_texts() == expected and not page.locator("#more-hits").is_visible()
        page.unroute("**/search?*")
        page.locator("#hits .similar").first.click()
        page.wait_for_function("document.getElementById('results-title').textContent.includes('Like the hit')")

        page.goto(f"{api.url}/jobs/{jobs['harbor']}/report")
        page.fill("#q", "cargo coffee crane")
        page.click("#search button")
        page.locator("#hits .kinds button").first.wait_for()
        everything = page.locator("#hits > button").count()
        page.locator("#hits .kinds button", has_text="text").click()
        page.wait_for_function("document.querySelector('#hits .kinds button.on') !== null")
        assert page.locator("#hits > button").count() == 1 < everything
        assert "coffee" in page.locator("#hits > button").first.inner_text().lower()
        page.screenshot(path=str(shots / f"report-search-{size}.png"), full_page=True)
        browser.close()


def test_share_page_is_read_only_and_escaped(indexed):
    cloud, jobs, _ = indexed
    from reelscope.cloud.responses import html_page

    response = html_page("report.html", "</script><b>x __DATA__", {"name": "</script><b>x __TITLE__"})
    assert "<title>reelscope: &lt;/script&gt;&lt;b&gt;x __DATA__</title>" in response.body  # placeholders stay text
    assert '{"name": "<\\/script><b>x __TITLE__"}' in response.body
    status, share = call(cloud, request("POST", f"/jobs/{jobs['people']}/shares", {}, "/jobs/{job_id}/shares",
                                        {"job_id": jobs["people"]}))
    page = request("GET", f"/s/{share['token']}", resource="/s/{token}", params={"token": share["token"]})
    result = cloud.api(page)
    assert result["statusCode"] == 200 and '"api_base": null' in result["body"]
    assert result["multiValueHeaders"]["Content-Type"] == ["text/html; charset=utf-8"]
    assert "WEBVTT" in result["body"]  # the subtitles, inlined for the player's track
