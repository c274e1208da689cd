"""report.pdf: a briefing of a job's report, bounded in pages and pictures whatever the video's
length (report.json and the CSVs keep everything), the same bytes for the same report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reelscope import packaged
from reelscope.analysis import reports
from reelscope.status import Status

FIXED_DATE = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)  # PDFs carry a date; this one never changes


def _languages(report: dict) -> str:
    """The language, or with several each one's talk time ("fr 01:10.0, en 00:40.0")."""
    spoken = report.get("languages") or []
    if len(spoken) < 2:
        return report["language"] or "-"
    return ", ".join(f"{entry['language']} {_clock(entry['talk_time_s'])}" for entry in spoken)


def _entity_name(e: dict) -> str:
    if e["kind"] == "overlay":
        return f"overlay {reports.entity_text(e)[:60]}"
    return f'"{e["text"][:60]}"' if e["kind"] == "text" else e["label"] + (" (animal)" if e["animal"] else "")


def _wall_clock(iso: str) -> str:
    return iso.replace("T", " ")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


PDF_SPEAKERS = 20  # who talks most; noisy hours can cluster into dozens of voices

# report.pdf is a briefing, bounded whatever the video's length (the CSVs and report.json keep
# everything): per object label its longest ranges in the table and evidence frames of the first
# few, the same for on-screen text and overlays, keyframes of shots spread over the video.
PDF_RANGES_PER_LABEL = 8
PDF_FRAMES_PER_LABEL = 2
PDF_KEYFRAMES = 24


def briefing(entities: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the table's entities in time order, those whose evidence frame is shown): of each object
    label, of on-screen text and of overlays, the longest (then surest) PDF_RANGES_PER_LABEL ranges,
    and of those the first PDF_FRAMES_PER_LABEL."""
    groups: dict[str, list[dict]] = {}
    for e in entities:
        groups.setdefault(e["label"] if e["kind"] == "object" else e["kind"], []).append(e)
    table, frames = [], []
    for _, members in sorted(groups.items()):
        longest = sorted(members, key=lambda e: (-e["duration"], -e["peak_confidence"], e["start"]))[:PDF_RANGES_PER_LABEL]
        table += longest
        frames += longest[:PDF_FRAMES_PER_LABEL]
    by_time = lambda e: (e["start"], e["id"])  # noqa: E731
    return sorted(table, key=by_time), sorted(frames, key=by_time)


def spread(items: list, most: int) -> list:
    """At most `most` of items, evenly spread over them (first and last kept)."""
    if len(items) <= most:
        return items
    return [items[round(i * (len(items) - 1) / (most - 1))] for i in range(most)]


def pdf_pictures(report: dict) -> list[str]:
    """The relative paths of the pictures report.pdf shows: evidence frames and keyframes."""
    return ([e["evidence"]["path"] for e in briefing(report["entities"])[1]]
            + [shot["keyframe"]["path"] for shot in spread(report["shots"], PDF_KEYFRAMES)])


def report_pdf(report: dict, out_dir: Path) -> bytes:
    """Title, media facts, entity table, a timeline (the shots, then one lane per label shaded by
    peak confidence), evidence frames, the shots' keyframes, talk time per speaker, transcript: a
    briefing bounded in pages and pictures (briefing(), spread()), the transcript whole. With a
    burned-in clock, wall time beside video time. Every page names the file and the job and says
    which page of how many it is; no heading ends a page and no page holds a transcript's lone last
    line. The same report gives the same bytes (a fixed creation date)."""
    return _Briefing(report, Path(out_dir)).render()


class _Briefing:
    """report.pdf, a section a method."""

    def __init__(self, report: dict, out_dir: Path) -> None:
        from fpdf import FPDF

        self.report, self.out_dir = report, out_dir
        font = packaged.dejavu_sans()
        self.family = family = "body" if font else "helvetica"
        source = report["source"]

        class Pages(FPDF):
            def footer(inner) -> None:
                inner.set_y(-12)
                inner.set_font(family, size=8)
                inner.set_text_color(110)
                inner.cell(w=inner.epw * 0.8, h=5, text=self.about)
                inner.cell(w=0, h=5, text=f"page {inner.page_no()} of {{nb}}", align="R")
                inner.set_text_color(0)

        self.pdf = pdf = Pages(format="A4")
        if font:
            pdf.add_font("body", fname=str(font))
        self.drawn = pdf.fonts["body"].cmap if font else range(256)  # code points it has glyphs for; the core font: latin-1
        self.about = self.text(f"{source['file_name']} \u00b7 " + (f"job {source['job_id']}" if source.get("job_id")
                                                                   else f"sha256 {source['sha256'][:16]}"))
        pdf.set_creation_date(FIXED_DATE)
        pdf.set_producer("reelscope")
        pdf.set_title(self.text(f"reelscope report: {source['file_name']}"))
        pdf.set_subject(self.about)
        pdf.set_author("reelscope")
        pdf.set_auto_page_break(auto=True, margin=18)

    def text(self, value: str) -> str:
        """A character the font has no glyph for (the text reader also reads Chinese, and misreads as
        it) is printed "?": a blank would hide that something was there; report.json and the CSVs
        keep it."""
        return "".join(c if ord(c) in self.drawn else "?" for c in value)

    def room_for(self, height: float) -> None:
        if self.pdf.get_y() + height > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def heading(self, title: str, keep: float = 15) -> None:
        self.room_for(4 + 7 + keep)  # a heading stays with what it heads: three lines, or `keep` mm of it
        self.pdf.ln(4)
        self.pdf.set_font(self.family, size=13)
        self.pdf.cell(text=self.text(title), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(self.family, size=9)

    def line(self, value: str) -> None:
        self.pdf.multi_cell(w=0, h=5, new_x="LMARGIN", new_y="NEXT", text=self.text(value))

    def render(self) -> bytes:
        self.pdf.add_page()
        self.pdf.set_font(self.family, size=18)
        self.pdf.cell(text=self.text(f"reelscope report: {self.report['source']['file_name']}"), new_x="LMARGIN", new_y="NEXT")
        self.media()
        framed = self.entities()
        self.heading("Timeline", keep=(len({e["label"] for e in self.report["entities"]}) + 2) * 6 + 10)
        _timeline(self.pdf, self.report, self.text)
        self.evidence(framed)
        self.shots()
        self.speakers()
        self.transcript()
        return bytes(self.pdf.output())

    def media(self) -> None:
        report, pdf = self.report, self.pdf
        media, video, source = report["media"], report["media"]["video"], report["source"]
        self.heading("Media")
        audio = f"{media['audio']['codec']} {media['audio']['sample_rate']} Hz" if media["has_audio"] else "none"
        facts = [("Status", report["status"]), ("Duration", f"{media['duration_s']:.1f} s"),
                 ("Video", f"{video['display_width']}x{video['display_height']} {video['codec']} {video['fps']:g} fps"),
                 ("Audio", audio), ("Language", _languages(report)), ("Size", f"{media['size_bytes']} bytes"),
                 ("SHA-256", source["sha256"])] + ([("Job", source["job_id"])] if source.get("job_id") else [])
        if clock := report.get("wall_clock"):
            pieces = len(clock["pieces"])
            jumps = f"; it jumps: {pieces} pieces" if pieces > 1 else ""
            facts.append(("Wall clock", f"{_wall_clock(clock['start'])} at the first frame, read from the burned-in clock "
                                        f"({clock['source']['fitted']} readings{jumps})"))
        for name, value in facts + [(f"Step {k}", v["status"] + (f": {v['error']}" if v.get("error") else ""))
                                    for k, v in report["steps"].items() if v["status"] != Status.SUCCEEDED]:
            pdf.cell(w=30, h=5, text=self.text(name))
            self.line(str(value))

    def entities(self) -> list[dict]:
        """The entity table; returns the entities whose evidence frames are shown."""
        from fpdf.fonts import FontFace

        report, clock = self.report, self.report.get("wall_clock")
        self.heading("Entities")
        if report["labels"]:
            self.line("Distinct objects (tracks): " + ", ".join(f"{c['label']} {c['unique_count']}" for c in report["labels"]))
            self.pdf.ln(1)
        shown, framed = briefing(report["entities"])
        if len(shown) < len(report["entities"]):
            self.line(f"The {len(shown)} longest of {len(report['entities'])} ranges ({PDF_RANGES_PER_LABEL} at most of each "
                      "label, on-screen text and overlays); entities.csv and report.json list them all.")
            self.pdf.ln(1)
        widths = (40, 22, 22) + ((36,) if clock else ()) + (16, 16, 16, 16)
        with self.pdf.table(col_widths=widths, text_align="LEFT", line_height=5,
                            headings_style=FontFace(emphasis="", fill_color=(230, 230, 230))) as table:
            table.row(["label", "start", "end"] + (["wall clock at start"] if clock else [])
                      + ["peak", "mean", "frames", "tracks"])
            for e in shown:
                table.row([self.text(_entity_name(e)), _clock(e["start"]), _clock(e["end"])]
                          + [_wall_clock(wall) for wall in reports.wall_times(report, e["start"])]
                          + [f"{e['peak_confidence']:.2f}", f"{e['mean_confidence']:.2f}", str(e["frame_count"]),
                             str(len(e.get("track_ids", []))) if report["labels"] else "-"])
        return framed

    def evidence(self, framed: list[dict]) -> None:
        if not framed:
            return
        self.heading("Evidence frames")
        for e in framed:
            frame = self.out_dir / e["evidence"]["path"]
            self.room_for(5 + (110 * 9 / 16 if frame.exists() else 0) + 2)
            wall = "".join(f", {_wall_clock(w)}" for w in reports.wall_times(self.report, e["evidence"]["t"]))
            self.pdf.cell(text=self.text(f"{_entity_name(e)} at {_clock(e['evidence']['t'])}{wall} "
                                         f"(confidence {e['evidence']['confidence']:.2f})"),
                          new_x="LMARGIN", new_y="NEXT")
            if frame.exists():
                self.pdf.image(str(frame), w=110)
            self.pdf.ln(2)

    def shots(self) -> None:
        pdf, video = self.pdf, self.report["media"]["video"]
        keyframes = [(shot, self.out_dir / shot["keyframe"]["path"]) for shot in spread(self.report["shots"], PDF_KEYFRAMES)]
        if not keyframes:
            return
        self.heading("Shots", keep=40)
        if len(keyframes) < len(self.report["shots"]):
            self.line(f"{len(keyframes)} of {len(self.report['shots'])} shots, spread over the video.")
        per_row, gap = 4, 3
        width = (pdf.epw - gap * (per_row - 1)) / per_row
        height = width * video["display_height"] / max(video["display_width"], 1)
        for row in range(0, len(keyframes), per_row):
            self.room_for(height + 6)
            top = pdf.get_y()
            for column, (shot, frame) in enumerate(keyframes[row: row + per_row]):
                x = pdf.l_margin + column * (width + gap)
                if frame.exists():
                    pdf.image(str(frame), x=x, y=top, w=width, h=height)
                pdf.set_xy(x, top + height)
                pdf.cell(w=width, h=5, text=f"{shot['index'] + 1}  {_clock(shot['start'])}-{_clock(shot['end'])}")
            pdf.set_xy(pdf.l_margin, top + height + 6)

    def speakers(self) -> None:
        voices = self.report.get("speakers", [])
        if len(voices) < 2:
            return
        self.heading("Speakers")
        talkers = sorted(voices, key=lambda v: -v["talk_time_s"])[:PDF_SPEAKERS]
        for v in talkers:
            self.pdf.cell(w=50, h=5, text=self.text(v["name"][:40]))
            self.pdf.cell(text=f"{_clock(v['talk_time_s'])} of talk in {v['turns']} turns, first at {_clock(v['first_s'])}",
                          new_x="LMARGIN", new_y="NEXT")
        if len(voices) > len(talkers):
            self.pdf.cell(text=f"and {len(voices) - len(talkers)} more (report.json and transcript.csv list them all)",
                          new_x="LMARGIN", new_y="NEXT")

    def transcript(self) -> None:
        from fpdf.enums import MethodReturnValue

        report, pdf = self.report, self.pdf
        self.heading("Transcript")
        names = reports.speaker_names(report) if len(report.get("speakers", [])) > 1 else {}  # one voice: no one to tell apart
        lines = [self.text(f"[{_clock(s['start'])}-{_clock(s['end'])}"
                           + "".join(f" | {_wall_clock(w)}" for w in reports.wall_times(report, s["start"]))
                           + "] " + (f"{names[s['speaker']]}: " if s.get("speaker") in names else "") + s["text"])
                 for s in report["transcript"]]
        heights = [pdf.multi_cell(w=0, h=5, text=line, dry_run=True, output=MethodReturnValue.HEIGHT) for line in lines]
        for i, line in enumerate(lines):
            # A segment is not split across pages, and the last two travel together: no lone last line.
            self.room_for(sum(heights[i:]) if i == len(lines) - 2 else heights[i])
            pdf.multi_cell(w=0, h=5, text=line, new_x="LMARGIN", new_y="NEXT")
        if not lines:
            pdf.cell(text="(no speech)", new_x="LMARGIN", new_y="NEXT")


def _timeline(pdf, report: dict, text) -> None:
    shots = report["shots"] if len(report["shots"]) > 1 else []
    texts = [e for e in report["entities"] if e["kind"] == "text"]
    labels = sorted({e["label"] for e in report["entities"] if e["kind"] != "text"})
    duration = max(report["media"]["duration_s"], 0.001)
    left, width, lane = pdf.l_margin + 35, pdf.epw - 35, 6
    top = pdf.get_y() + 2

    def lane_at(row: int, name: str) -> float:
        y = top + row * lane
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(w=34, h=lane - 1, text=text(name))
        pdf.set_fill_color(235, 235, 235)
        pdf.rect(left, y, width, lane - 1, style="F")
        return y

    def span(start: float, end: float, y: float, height: float) -> None:  # at least 0.5 mm: a short range stays visible
        pdf.rect(left + width * start / duration, y, max(0.5, width * (end - start) / duration), height, style="F")

    if shots:  # shots in alternating greys: where each cut or fade falls
        y = lane_at(0, "shots")
        for shot in shots:
            pdf.set_fill_color(*((150,) * 3 if shot["index"] % 2 == 0 else (200,) * 3))
            pdf.rect(left + width * shot["start"] / duration, y, width * (shot["end"] - shot["start"]) / duration,
                     lane - 1, style="F")
    if texts:
        y = lane_at(bool(shots), "on-screen text")
        pdf.set_fill_color(190, 120, 210)
        for e in texts:
            span(e["start"], e["end"], y, lane - 1)
    for row, label in enumerate(labels, start=bool(shots) + bool(texts)):
        y = lane_at(row, label)
        ranges = [e for e in report["entities"] if e["label"] == label and e["kind"] != "text"]
        for e in ranges:
            shade = int(220 - 180 * e["peak_confidence"])  # darker = more confident
            pdf.set_fill_color(shade, shade, 255)
            span(e["start"], e["end"], y, lane - 1)
        # the tracks its kept ranges hold, in the rows report.json gives them (the page draws the same)
        pdf.set_fill_color(40, 40, 40)
        for track in report["tracks"]:
            if track["label"] == label and track.get("row") is not None:
                span(track["start"], track["end"], y + lane - 2.2 - track["row"] * 1.3, 0.8)
    axis = top + (len(labels) + bool(shots) + bool(texts)) * lane + 1
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600) if duration / s <= 10)
    label_w = 12
    for tick in range(0, int(duration) + 1, step):
        x = left + width * tick / duration
        pdf.line(x, axis, x, axis + 1.5)
        pdf.set_xy(min(max(x - label_w / 2, left), left + width - label_w), axis + 1.5)  # within the track's width
        pdf.cell(w=label_w, h=4, text=_clock(tick), align="C")
    pdf.set_xy(pdf.l_margin, axis + 7)
