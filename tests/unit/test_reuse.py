"""When a step of an earlier run is reused: its fingerprint follows the code, the settings the
step depends on and the steps that fed it, and nothing else."""

from __future__ import annotations

import dataclasses

from reelscope.analysis import pipeline
from reelscope.settings import PLACE_AND_PACE, Settings


def changed_steps(**changes) -> set[str]:
    before, after = Settings(), dataclasses.replace(Settings(), **changes)
    return {name for name in pipeline.STEP_ORDER
            if pipeline.step_fingerprint(name, before) != pipeline.step_fingerprint(name, after)}


def test_every_setting_that_can_change_a_result_belongs_to_a_step():
    for field in dataclasses.fields(Settings):
        if field.name not in PLACE_AND_PACE:
            assert any(field.name in pipeline.step_settings(name, Settings()) for name in pipeline.STEP_ORDER), field.name


def test_a_setting_changes_its_step_and_the_steps_it_feeds():
    assert changed_steps(detect_min_confidence=0.4) == {"detect", "shots", "tracks", "entities"}
    assert changed_steps(whisper_beam_size=3) == {"transcribe", "speakers", "translate", "subtitles"}
    assert changed_steps(translate_models=("large-v3",)) == {"translate"}
    assert changed_steps(speaker_threshold=0.4) == {"speakers", "translate", "subtitles"}
    assert changed_steps(track_gap_s=3.0) == {"tracks", "entities"}
    assert changed_steps(clock_min_readings=7) == {"ocr"}
    assert changed_steps(entity_gap_s=2.0) == {"entities", "ocr"}
    assert changed_steps(ladder=(480,)) == {"downscale"}


def test_where_and_how_fast_change_nothing():
    assert changed_steps(whisper_threads=1, ffmpeg_threads=1, model_dir="/elsewhere", bucket="b", table="t",
                         state_dir="/s", state_save_every_s=5.0) == set()


def test_entities_made_without_cuts_are_not_reused_once_shots_succeed():
    """A run where shots failed made entities from detect alone: a run with shots makes them again."""
    assert pipeline.step_fingerprint("entities", Settings(), ("detect",)) != pipeline.step_fingerprint("entities", Settings())
    assert pipeline.step_fingerprint("entities", Settings(), ("detect", "shots", "tracks")) == \
        pipeline.step_fingerprint("entities", Settings())
