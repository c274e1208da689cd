"""transcribe + subtitles on real speech (espeak-ng reading sentences we chose), real Whisper weights."""

from __future__ import annotations

import shutil

import jiwer
import pytest
import srt
import webvtt

from reelscope import synth
from reelscope.analysis import media, pipeline, transcribe, whisper_models
from reelscope.analysis import translate as translate_mod
from reelscope.artifacts import read_json
from reelscope.errors import ModelUnavailable
from reelscope.settings import Settings

from ..conftest import SENTENCES

# espeak-ng's voice is synthetic but clear; the bundled base model transcribes it with 0 errors
# here (measured). 10% leaves room for a different CPU's numerics flipping a word or two, while a
# broken model, a wrong weight mapping or a wrong language would score far above it.
MAX_WER = 0.10
# Subtitles must appear within half a second of the voice (measured on the signal).
TOLERANCE_S = 0.5

_normalize = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                            jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(reference, hypothesis, reference_transform=_normalize, hypothesis_transform=_normalize)


@pytest.fixture(scope="module", params=["ctranslate2", "openai-whisper"])
def transcribed(request, speech_video, tmp_path_factory, model_dir, fall_weights):
    """Both engines, held to the same truth."""
    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights), whisper_engine=request.param)
    video, spoken = speech_video
    out = tmp_path_factory.mktemp("speech-out")
    pipeline.probe(video, out, settings)
    pipeline.transcribe(video, out, settings)
    assert read_json(out / "transcript.raw.json")["windows"] == 1
    pipeline.make_subtitles(out / "transcript.raw.json", out, settings)
    return out, spoken


def test_transcript_words_and_language(transcribed):
    out, _ = transcribed
    transcript = read_json(out / "transcript.raw.json")
    assert transcript["engine"].split()[0] in ("ctranslate2", "openai-whisper")
    assert transcript["model"] == "bundled:whisper-base"
    assert transcript["language"] == "en"
    assert transcript["language_probability"] > 0.5
    assert wer(" ".join(SENTENCES), transcript["text"]) <= MAX_WER
    words = [w for segment in transcript["segments"] for w in segment["words"]]
    assert len(words) >= 20
    assert all(w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)


def test_word_times_match_the_voice(transcribed):
    """Each sentence's first word starts, and last word ends, where the signal says."""
    out, spoken = transcribed
    segments = read_json(out / "transcript.raw.json")["segments"]
    assert len(segments) == len(spoken)
    for segment, truth in zip(segments, spoken):
        assert wer(truth.text, segment["text"]) <= MAX_WER
        assert segment["words"][0]["start"] == pytest.approx(truth.start, abs=TOLERANCE_S)
        assert segment["words"][-1]["end"] == pytest.approx(truth.end, abs=TOLERANCE_S)


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 3)


def test_subtitles_parse_back_and_follow_the_voice(transcribed):
    out, spoken = transcribed
    srt_cues = list(srt.parse((out / "subtitles.srt").read_text(encoding="utf-8")))
    vtt_cues = webvtt.read(str(out / "subtitles.vtt")).captions
    assert len(srt_cues) == len(vtt_cues) >= len(spoken)
    srt_times = [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt_cues]
    vtt_times = [(_seconds(c.start), _seconds(c.end), c.text) for c in vtt_cues]
    assert [(start, end) for start, end, _ in srt_times] == [(start, end) for start, end, _ in vtt_times]
    assert [text for *_, text in srt_times] == [text for *_, text in vtt_times]
    for truth in spoken:
        near = " ".join(text.replace("\n", " ") for start, end, text in srt_times
                        if truth.start - TOLERANCE_S <= start and end <= truth.end + TOLERANCE_S)
        assert wer(truth.text, near) <= MAX_WER, f"cues around {truth.start}-{truth.end} s: {near!r}"


def test_video_without_audio_gets_an_empty_transcript(people_video, tmp_path, settings):
    pipeline.probe(people_video, tmp_path, settings)
    pipeline.transcribe(people_video, tmp_path, settings)
    transcript = read_json(tmp_path / "transcript.raw.json")
    assert transcript["segments"] == [] and transcript["skipped_reason"] == "no audio track"
    pipeline.make_subtitles(tmp_path / "transcript.raw.json", tmp_path, settings)
    assert (tmp_path / "subtitles.vtt").read_text() == "WEBVTT\n\n"
    assert list(srt.parse((tmp_path / "subtitles.srt").read_text())) == []


def test_audio_windows_end_in_the_quiet_and_lose_no_sample(speech_video):
    import numpy as np

    video, spoken = speech_video
    ((_, whole),) = transcribe.audio_windows(video, 600)
    windows = list(transcribe.audio_windows(video, 5.0))
    assert np.array_equal(np.concatenate([samples for _, samples in windows]), whole)
    starts = [start for start, _ in windows]
    assert starts == [0.0, *np.cumsum([len(s) / transcribe.SAMPLE_RATE for _, s in windows])[:-1]]
    for cut in starts[1:]:  # in a pause between two sentences, never inside one
        assert not any(truth.start < cut < truth.end for truth in spoken), (cut, spoken)


def test_audio_read_in_windows_keeps_every_word_at_its_time(speech_video, model_dir, tmp_path):
    """Hours of audio are transcribed a window at a time (600 s): here 8 s windows, so the cut falls
    after the second sentence. Every sentence keeps its place in time, the words after the cut are
    right. (The first sentence's two words can change with what else is in its window: Whisper
    decodes each 30 s of speech on its own, and a shorter one gives it less; at 600 s only the
    speech next to a cut is decoded differently.)"""
    video, spoken = speech_video
    settings = Settings(model_dir=str(model_dir), whisper_window_s=8.0)
    pipeline.probe(video, tmp_path, settings)
    pipeline.transcribe(video, tmp_path, settings)
    transcript = read_json(tmp_path / "transcript.raw.json")
    assert transcript["windows"] == 2 and transcript["language"] == "en"
    assert len(transcript["segments"]) == len(spoken)
    for segment, truth in zip(transcript["segments"], spoken):
        assert segment["words"][0]["start"] == pytest.approx(truth.start, abs=TOLERANCE_S)
        assert segment["words"][-1]["end"] == pytest.approx(truth.end, abs=TOLERANCE_S)
    assert wer(" ".join(SENTENCES[1:]), " ".join(s["text"] for s in transcript["segments"][1:])) <= MAX_WER


def test_converted_weights_agree_with_ctranslate2(speech_video, tmp_path, model_dir):
    """The same CTranslate2 weights through faster-whisper (CTranslate2 itself) and through our
    conversion into openai-whisper give the same words; a CT2 folder given by path works too."""
    from faster_whisper import WhisperModel

    config_dir, parts = whisper_models.bundled_model_parts()
    folder = tmp_path / "ct2-base"
    folder.mkdir()
    with open(folder / "model.bin", "wb") as joined:
        for part in parts:
            joined.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(config_dir / name, folder / name)

    video, _ = speech_video
    ((_, audio),) = transcribe.audio_windows(video, 600)
    reference, info = WhisperModel(str(folder), device="cpu", compute_type="float32").transcribe(
        audio, language="en", beam_size=1, condition_on_previous_text=False)
    reference_text = " ".join(segment.text.strip() for segment in reference)

    model = whisper_models.load_model(str(folder), str(model_dir))
    ours = model.transcribe(audio, language="en", fp16=False, condition_on_previous_text=False, temperature=0.0)
    assert wer(reference_text, ours["text"]) == 0.0
    assert wer(" ".join(SENTENCES), reference_text) <= MAX_WER


def test_converted_checkpoint_is_cached(model_dir):
    whisper_models.load_model("", str(model_dir))
    cached = list(model_dir.glob("whisper-ct2-*.pt"))
    assert len(cached) == 1 and cached[0].stat().st_size > 50_000_000


def test_unknown_model_spec_says_what_is_accepted(tmp_path):
    with pytest.raises(ModelUnavailable, match="neither a Whisper model name .* a .pt file nor a CTranslate2 folder"):
        whisper_models.load_model("no-such-model", str(tmp_path))


def test_quantized_ctranslate2_weights_are_refused_clearly(tmp_path):
    # A minimal model.bin header: version 6, WhisperSpec, one int8 matrix with its scale.
    import struct

    def string(text):
        return struct.pack("H", len(text) + 1) + text.encode() + b"\0"

    data = struct.pack("I", 6) + string("WhisperSpec") + struct.pack("I", 3) + struct.pack("I", 1)
    data += string("encoder/conv1/weight") + struct.pack("B", 2) + struct.pack("II", 2, 2) + struct.pack("B", 1)
    data += struct.pack("I", 4) + bytes(4) + struct.pack("I", 0)
    from reelscope.analysis.whisper_ct2 import read_model_bin

    with pytest.raises(ModelUnavailable, match="quantized weights .* --quantization float16"):
        read_model_bin(data, "int8-model")


def test_two_models_transcribing_at_once_give_their_solo_results(speech_video, model_dir, monkeypatch):
    """openai-whisper's word alignment switches a class attribute off and on: two transcriptions at
    once, even on two model objects, could crash ("'NoneType' object is not subscriptable"), so
    they take turns: never two in whisper's transcribe at once, each with its solo result."""
    import threading

    from whisper.model import Whisper

    video, _ = speech_video
    one = Settings(model_dir=str(model_dir), whisper_engine="openai-whisper")
    two = Settings(model_dir=str(model_dir) + "/", whisper_engine="openai-whisper")  # a second model object
    facts = media.probe(video, one)
    alone = transcribe.transcribe(video, facts, one)
    inside, most, count_lock = [0], [0], threading.Lock()
    original = Whisper.transcribe

    def counted(self, *args, **kwargs):
        with count_lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            return original(self, *args, **kwargs)
        finally:
            with count_lock:
                inside[0] -= 1

    monkeypatch.setattr(Whisper, "transcribe", counted)
    results: list = [None, None]

    def run(index: int, settings: Settings) -> None:
        results[index] = transcribe.transcribe(video, facts, settings)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate((one, two))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [alone, alone] and most[0] == 1


def test_ctranslate2_batched_decoding_gives_the_sequential_transcript(speech_video, model_dir):
    """The GPU's batched path (VAD chunks decoded side by side), run here on CPU: same words, and
    each sentence's first word where the voice starts (its segments are longer: one per chunk)."""
    video, spoken = speech_video
    facts = media.probe(video, Settings())
    sequential = transcribe.transcribe(video, facts, Settings(model_dir=str(model_dir), whisper_engine="ctranslate2"))
    batched = transcribe.transcribe(video, facts, Settings(model_dir=str(model_dir), whisper_engine="ctranslate2",
                                                           whisper_batch_size=4))
    assert wer(" ".join(SENTENCES), batched["text"]) <= MAX_WER
    assert wer(sequential["text"], batched["text"]) <= MAX_WER
    assert batched["engine"] == sequential["engine"] == "ctranslate2 int8 on cpu"
    words = [word for segment in batched["segments"] for word in segment["words"]]
    for truth in spoken:
        first = truth.text.split()[0].strip(".,").lower()
        starts = [word["start"] for word in words if word["word"].strip(".,").lower() == first]
        assert min(abs(start - truth.start) for start in starts) <= TOLERANCE_S, (truth, starts)


def test_ctranslate2_skips_music_and_silence(tmp_path, model_dir):
    """The VAD finds no speech in a chord and silence: nothing is decoded, nothing transcribed."""
    import subprocess

    clip = tmp_path / "music.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=12",
                    "-f", "lavfi", "-i", "sine=frequency=554:duration=12", "-f", "lavfi", "-i", "anullsrc=d=8",
                    "-filter_complex", "[0][1]amix=inputs=2[chord];[chord][2]concat=n=2:v=0:a=1", "-c:a", "aac",
                    str(clip)], check=True)
    result = transcribe.transcribe(clip, {"has_audio": True, "duration_s": 20.0}, Settings(model_dir=str(model_dir),
                                                                        whisper_engine="ctranslate2"))
    assert result["segments"] == [] and result["text"] == ""


def test_the_bundled_model_is_joined_once_and_folders_are_checked(tmp_path, model_dir):
    first = whisper_models.ct2_folder("", str(tmp_path))
    joined = (first / "model.bin").stat()
    assert whisper_models.ct2_folder("", str(tmp_path)) == first and (first / "model.bin").stat().st_mtime == joined.st_mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no partial folder left behind
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelUnavailable, match="the folder has no tokenizer.json"):
        whisper_models.ct2_folder(str(bare), str(tmp_path))
    with pytest.raises(ModelUnavailable, match="choose one of auto, ctranslate2, openai-whisper"):
        whisper_models.engine_for(Settings(whisper_engine="fast"))
    assert whisper_models.engine_for(Settings()) == "ctranslate2"
    assert whisper_models.engine_for(Settings(whisper_model=str(tmp_path / "x.pt"))) == "openai-whisper"


FRENCH = ["Bonjour à tous, la réunion commence maintenant.", "Nous allons parler du budget de l'année prochaine.",
          "Le directeur arrivera dans quelques minutes."]
ENGLISH = ["Thank you, let us continue in English now.", "The budget for next year is ready for review.",
           "Please send your questions before Friday."]


@pytest.fixture(scope="module")
def switching(media_dir):
    """(video, spoken): French then English, one voice each, in one Whisper window."""
    wav = media_dir / "switch.wav"
    spoken = synth.speech_track(FRENCH + ENGLISH, wav, gap_s=0.8, voice=["fr"] * 3 + ["en-us"] * 3)
    video = synth.slideshow(media_dir / "switch.mp4", [("color:black", round(spoken[-1].end + 1.5, 1))], (320, 240), 10,
                            audio=wav)
    return video, spoken


def test_a_video_that_switches_language_gets_each_segments_language(switching, tmp_path, model_dir):
    """French then English in one window (Whisper names one language for it): each segment's own."""
    video, spoken = switching
    settings = Settings(model_dir=str(model_dir))
    pipeline.probe(video, tmp_path, settings)
    pipeline.transcribe(video, tmp_path, settings)
    transcript = read_json(tmp_path / "transcript.raw.json")
    assert transcript["windows"] == 1
    for segment in transcript["segments"]:
        middle = (segment["start"] + segment["end"]) / 2
        truth = "fr" if middle < (spoken[2].end + spoken[3].start) / 2 else "en"
        assert segment["language"] == truth, segment
    assert [entry["language"] for entry in transcript["languages"]] == ["en", "fr"]  # English talks a little longer
    assert sum(entry["segments"] for entry in transcript["languages"]) == len(transcript["segments"])
    pinned = Settings(model_dir=str(model_dir), whisper_language="en")  # a pinned language is every segment's
    pipeline.transcribe(video, tmp_path, pinned)
    assert {s["language"] for s in read_json(tmp_path / "transcript.raw.json")["segments"]} == {"en"}


def test_translation_is_skipped_with_the_bundled_model_and_its_plumbing_works(switching, tmp_path, model_dir, fall_weights):
    """With base the step is SKIPPED, saying why, and the job is not PARTIAL for it. Allowed to
    run (base named a translator here, for the plumbing only), it translates the French run alone,
    on the French run's times; and the translate task on English speech gives back its words."""
    video, spoken = switching
    out = tmp_path / "skipped"
    result = pipeline.analyze(video, out, Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights)))
    manifest = result["manifest"]
    assert manifest["steps"]["translate"]["status"] == "SKIPPED"
    assert "'base' translates into nonsense" in manifest["steps"]["translate"]["error"]
    assert manifest["status"] == "SUCCEEDED" and not (out / "transcript.en.json").exists()

    allowed = Settings(model_dir=str(model_dir), translate_models=("base",))
    out = tmp_path / "allowed"
    pipeline.probe(video, out, allowed)
    pipeline.transcribe(video, out, allowed)
    published = pipeline.translate(video, out, allowed)
    assert sorted(published) == ["subtitles.en.srt", "subtitles.en.vtt", "transcript.en.json"]
    english = read_json(out / "transcript.en.json")
    assert english["translated_runs"] == 1 and english["segments"]
    assert all(s["source_language"] == "fr" and spoken[0].start - 0.5 <= s["start"] and s["end"] <= spoken[2].end + 0.5
               for s in english["segments"])
    assert len(list(webvtt.read(str(out / "subtitles.en.vtt")))) >= 1

    english_only = synth.speech_track(ENGLISH, tmp_path / "english.wav")
    audio = next(transcribe.audio_windows(tmp_path / "english.wav", 600))[1]
    run = transcribe.engine_run(allowed)
    _, _, found, _ = run(audio, Settings(model_dir=str(model_dir), whisper_language="en"), 0.0, 20.0, "translate")
    assert wer(" ".join(s.text for s in english_only), " ".join(seg["text"] for seg in found)) <= MAX_WER


@pytest.mark.parametrize(("model", "allowed"), [("", False), ("/models/faster-whisper-large-v3", True),
                                                 ("/models/whisper-small-ct2", True), ("/models/small.en", False),
                                                 ("/models/large-v3-turbo", False), ("medium.pt", True)])
def test_which_models_may_translate(model, allowed):
    assert (translate_mod.why_not(Settings(whisper_model=model)) is None) == allowed
