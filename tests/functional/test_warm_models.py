"""Models loaded ahead of a job (warmup.warm_models) are the ones its steps then use."""

from __future__ import annotations

import dataclasses

import pytest

from reelscope import models
from reelscope.analysis import detect, ocr, warmup, whisper_models


def test_warmed_models_are_the_ones_the_steps_take(settings, monkeypatch):
    monkeypatch.setattr(models, "_slots", {})  # nothing loaded by earlier tests
    loads = []
    for module, name in ((detect, "load_detector"), (whisper_models, "load_ct2_model"), (ocr, "load_reader")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, _real=real, _name=name: loads.append(_name) or _real(*args))
    warmup.warm_models(settings)
    assert sorted(loads) == ["load_ct2_model", "load_detector", "load_reader"]
    with detect.detector(settings) as (yolo, _), whisper_models.whisper_model(settings) as whisper, \
            ocr.reader(settings) as reader:
        assert yolo.predictor is not None  # compiled by a first prediction
        assert whisper is not None and reader is not None
    assert len(loads) == 3  # the steps' own keys found them loaded


def test_a_model_that_cannot_load_is_left_to_its_step(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(models, "_slots", {})
    broken = dataclasses.replace(settings, yolo_weights=str(tmp_path / "missing.pt"))
    warmup.warm_models(broken, ["detect"])  # no exception: the detect step reports it, with its reason
    with pytest.raises(detect.ModelUnavailable, match="missing.pt"), detect.detector(broken):
        pass
