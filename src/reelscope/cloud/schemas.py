"""The API's bodies, both ways, as pydantic models: requests are validated against them (a misspelt
field is a 422, not ignored); answers are passed through them, so that what a client gets is what
docs/openapi.json says (times as floats, timestamps in one format) whatever DynamoDB made of a
number or Step Functions of a time."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from reelscope.access.roles import CASE_NAME, DEFAULT_CASE
from reelscope.status import Status

CaseName = Annotated[str, Field(pattern=CASE_NAME, description="a case: letters, digits, _ and -, 1-64 characters")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # what a step stored beyond the declared fields is shown too


def _utc_milliseconds(value: Any) -> Any:
    """ISO 8601 in UTC to the millisecond, as the store writes it: Step Functions' $$.State.EnteredTime
    (the job's finished_at) comes with microseconds or a "Z"."""
    if not isinstance(value, str):
        return value
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


Timestamp = Annotated[str, BeforeValidator(_utc_milliseconds),
                      Field(description="ISO 8601, UTC, milliseconds", examples=["2026-11-30T06:01:02.123+00:00"])]


# ------------------------------------------------------------------ requests
class UploadRequest(Strict):
    file_name: str = Field(min_length=1, max_length=1024, pattern=r"\S",
                           description="the file's name; the server makes it safe and chooses the folder")
    content_type: str = Field("video/mp4", pattern=r"^video/[A-Za-z0-9.+-]+$", max_length=100,
                              description="the upload must be sent with this Content-Type")
    case: CaseName | None = Field(None, description="the case the video belongs to; default: the caller's only case")


class IngestRequest(Strict):
    url: str = Field(max_length=2048, pattern=r"^\s*[hH][tT][tT][pP][sS]?://[^/?#\s]+",
                     description="an http or https URL of a video; private and metadata addresses are refused")
    case: CaseName | None = Field(None, description="the case the video belongs to; default: the caller's only case")


SpeakerId = Annotated[str, Field(pattern=r"^S[1-9][0-9]{0,3}$")]
SpeakerName = Annotated[str, Field(max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")]


class SpeakerNamesRequest(Strict):
    names: dict[SpeakerId, SpeakerName] = Field(min_length=1, max_length=100, description=(
        "speaker id (S1, S2... as the job found them) -> the name to show; an empty name gives the id back"))


class ShareRequest(Strict):
    expires_in_s: int | None = Field(None, ge=60, description="the link's life in seconds, at most "
                                     "REELSCOPE_SHARE_MAX_S (30 days by default); default REELSCOPE_SHARE_DEFAULT_S")


# ------------------------------------------------------------------ answers
class UploadForm(BaseModel):
    key: str = Field(description="where the upload lands under uploads/")
    case: str = Field(description="the case the video goes into")
    url: str = Field(description="POST the form here")
    fields: dict[str, str] = Field(description="form fields to send before the file, as they are")
    expires_in: int = Field(description="seconds the form stays valid")
    max_bytes: int


class FetchQueued(BaseModel):
    fetch_id: str
    key: str
    status: Status
    status_path: str


class FetchRecord(BaseModel):
    url: str
    key: str
    status: Status
    created_at: Timestamp
    ended_at: Timestamp | None = None
    error: str | None = Field(None, description="why the fetch failed; empty when it did not")
    size_bytes: int | None = None


class SpeakersNamed(BaseModel):
    job_id: str
    speaker_names: dict[str, str] = Field(description="every name the job's speakers have now")
    run: int | None = Field(description="the run that puts the names into the exports and search; null when the "
                                        "job is still running (its index step reads them)")


class ListedSpeaker(BaseModel):
    id: str
    name: str
    talk_time_s: float


class ListedJob(BaseModel):
    job_id: str
    case_id: str = DEFAULT_CASE
    status: Status
    file_name: str | None
    created_at: Timestamp
    finished_at: Timestamp | None
    duration_s: float | None
    report_path: str | None = Field(description="the report page, once the job has one")
    poster_url: str | None = Field(description="the poster frame, presigned, once the job has one")
    error: str | None = Field(description="why the job failed, when it did")
    speakers: list[ListedSpeaker] = Field(description="who talks most, at most LISTED_SPEAKERS of them, with talk time")


class JobsPage(BaseModel):
    jobs: list[ListedJob]
    next: str | None = Field(description="pass as ?next= for the following page; null on the last")
    links_expire_in: int


class Output(BaseModel):
    path: str
    kind: str
    sha256: str
    size_bytes: int


class StepRecord(BaseModel):
    step: str
    status: Status
    started_at: Timestamp
    ended_at: Timestamp | None = None
    duration_s: float | None = None
    output_count: int = Field(0, description="files the step published (listed by GET /jobs/{id}/artifacts)")
    output_bytes: int = 0
    summary: dict[str, Any] | None = Field(None, description="what the step found, in brief (ocr: texts, overlays, "
                                                             "the wall clock or why none)")
    error: str | None = None
    run: int = Field(1, description="the run of the job this record counts for")
    reused: bool = Field(False, description="made by an earlier run with the same code and settings, not run again")


class VideoFacts(Open):
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    display_width: int | None = None
    display_height: int | None = None
    fps: float | None = None


class MediaFacts(Open):
    """What probe found (media.json). Declared to give each number its form; a job stored by an
    older version with fewer facts is shown as it is."""
    file_name: str | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    has_audio: bool | None = None
    video: VideoFacts | None = None
    audio: dict[str, Any] | None = None


class JobRecord(Open):
    """The job item; media facts and the summary are shown as the steps wrote them."""
    job_id: str
    case_id: str = DEFAULT_CASE
    status: Status
    source: dict[str, Any] = Field(description="bucket, key, size and version of the upload")
    source_sha256: str | None = Field(None, description="the original's SHA-256, as probe read it")
    source_file_name: str
    created_at: Timestamp
    finished_at: Timestamp | None = None
    error: str | None = None
    media: MediaFacts | None = None


class ArtifactKind(BaseModel):
    count: int
    size_bytes: int


class JobProgress(BaseModel):
    steps_ended: int
    steps: int
    eta_s: int = Field(description="seconds until the job ends, estimated from each step's rate per second of media")
    rates: str = Field(description="where the rates come from: measured here (earlier jobs), or the defaults")


class JobDetail(BaseModel):
    job: JobRecord
    steps: dict[str, StepRecord]
    progress: JobProgress | None = Field(None, description="while the job is queued or running and its length is known")
    artifacts: dict[str, ArtifactKind] = Field(description="artifact kind -> how many files, how many bytes")
    links: dict[str, str] = Field(description="artifact path -> presigned URL, for every kind but those listed page "
                                              "by page at GET /jobs/{id}/artifacts?kind= (evidence, keyframe, "
                                              "thumbnail, search-index)")
    links_expire_in: int


class Artifact(Output):
    url: str


class ArtifactsPage(BaseModel):
    artifacts: list[Artifact]
    next: str | None = Field(description="pass as ?next= for the following page; null on the last")
    links_expire_in: int


class RunQueued(BaseModel):
    job_id: str
    run: int
    execution_name: str
    status: Status
    status_path: str


class Hit(BaseModel):
    job_id: str
    file_name: str
    doc_id: str
    kind: str = Field(description="transcript, translation (English for speech in another language), "
                                  "entity (an object's range), text (on-screen text), overlay (a burned-in "
                                  "clock, a logo's text) or moment (where a burned-in clock showed the time searched for)")
    start: float
    end: float
    snippet: str
    score: float
    link: str = Field(description="the report page at this moment")
    matched: list[str] | None = Field(None, description="the query's terms the document holds (keyword and hybrid)")
    similarity: float | None = Field(None, description="cosine similarity to the query (semantic and hybrid)")
    label: str | None = None
    speaker: str | None = Field(None, description="a transcript segment's speaker id (S1, S2...)")
    speaker_name: str | None = Field(None, description="the name that speaker had when the job was indexed")
    language: str | None = Field(None, description="a transcript segment's language (ISO 639-1)")
    source_language: str | None = Field(None, description="a translation's language of the speech")
    confidence: float | None = None
    evidence: str | None = None
    evidence_url: str | None = None
    thumbnail: str | None = None
    thumbnail_url: str | None = Field(None, description="a picture of the moment, presigned")
    wall_time: str | None = Field(None, description="a moment's time on the burned-in clock (ISO 8601, the clock's own zone)")
    wall_start: str | None = Field(None, description="what the burned-in clock showed at the start (videos with a dated clock)")
    wall_end: str | None = None


class FacetValue(BaseModel):
    value: str
    hits: int
    file_name: str | None = Field(None, description="a job's file name")


class Facets(BaseModel):
    of: int = Field(description="the facets count the best this many hits (at most 1,000)")
    kind: list[FacetValue]
    job: list[FacetValue]
    label: list[FacetValue]


class SearchAnswer(BaseModel):
    query: str
    mode: str
    hits: list[Hit]
    next: str | None = Field(description="pass as ?next= (with the same query and filters) for the following page; "
                                         "null on the last")
    facets: Facets | None = Field(description="hits per kind, job and label, for the filter controls (first page only)")
    links_expire_in: int


class ShareCreated(BaseModel):
    token: str = Field(description="shown once: the table keeps its hash only")
    path: str
    job_id: str
    expires_at: int = Field(description="epoch seconds")


class SharedReport(BaseModel):
    report: dict[str, Any] = Field(description="the job's report.json")
    links: dict[str, str]
    links_expire_in: int


class SignInRequest(Strict):
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Caller(BaseModel):
    user: str
    role: str = Field(description="admin, analyst or viewer")
    cases: list[str] = Field(description="the cases the caller reads (an admin: every case)")
    signed_in: bool = Field(description="false: local mode with no users, whoever reaches it on this machine")


class SignedIn(Caller):
    token: str = Field(description="the session, for API clients (Authorization: Bearer); browsers keep the cookie")
    expires_in: int


class JobDeleted(BaseModel):
    job_id: str
    case_id: str
    objects_deleted: int = Field(description="object versions removed: artifacts, renditions, the upload")
    items_deleted: int


class AuditRecord(BaseModel):
    at: str = Field(description="ISO 8601, UTC, microseconds")
    action: str
    user: str
    role: str
    job_id: str | None = None
    case_id: str | None = None
    detail: dict[str, Any]
    source_ip: str
    user_agent: str


class AuditPage(BaseModel):
    records: list[AuditRecord] = Field(description="oldest first")
    next: str | None


class CaseHoldRequest(Strict):
    held: bool = Field(description="true: no job of the case may be deleted")


class CaseState(BaseModel):
    case_id: str
    held: bool
    changed_by: str | None = None
    changed_at: Timestamp | None = None


def answer(model: type[BaseModel], value: dict) -> dict:
    """`value` as `model` says it is: numbers and times in their declared form, absent fields absent."""
    return model.model_validate(value).model_dump(mode="json", exclude_unset=True)
