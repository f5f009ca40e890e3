"""python -m avqa.ask: the same answer as test mode on the extractor scripts' features, and bad input.

One synthetic clip of 10 s (the bundled checkpoint's T) is made, its features are extracted by the
feat_script tools, and test mode's prediction path (AVQADataset batches into predict_qa) is run on
them with the bundled checkpoint; avqa.ask, from the mp4 alone, must give the same answer and
probabilities. VGGish runs with the weights the bundled checkpoint was trained with when they are
here (data/weights/vggish_synthetic.pth is made by the main job), and always with a copy of the
bundled checkpoint whose record names the seeded VGGish init.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from avqa import ask
from avqa.ask import features as ask_features
from avqa.ask.trained import recorded_features
from avqa.annotations import TAG_VALUES, Vocab, template_tags, tokenize
from avqa.data import AUDIO_SHAPE, VISUAL_SHAPE, AVQADataset, FeatureStore, encode_split
from avqa.features.pretrain import DEFAULT_OUT
from avqa.models import AVST, QuestionOnly
from avqa.templates import TEMPLATES
from avqa.checkpoint import load_trained_state
from avqa.engine.runtime import Runtime, make_loader
from avqa.tasks.cli import build_parser
from avqa.tasks.qa import predict_qa
from avqa.visualize import sheet_size
from conftest import AUDIO, ROOT, VGG, X14, e2e_fixture, run_here

BUNDLED = ROOT / "net_grd_avst" / "avst_models"
RES18 = ROOT / DEFAULT_OUT["res18"]
VGGISH = ROOT / DEFAULT_OUT["vggish"]


def bundled_vocab() -> Vocab:
    obj = torch.load(BUNDLED / "avst.pt", weights_only=True)
    return Vocab(tuple(obj["question_vocab"]), tuple(obj["answer_vocab"]))


@e2e_fixture(scope="module")
def clip(tmp_path_factory):
    """One 10 s synthetic clip, its questions the bundled vocabulary can read, and its extracted features."""
    d = tmp_path_factory.mktemp("ask")
    run_here("-m", "avqa.synthetic", "--out", str(d), "--num_clips", "1", "--seconds", "10", "--seed", "4",
             "--width", "160", "--height", "120", "--fps", "12", "--sample_rate", "16000", "--split", "1,0,0",
             "--workers", "1")
    vocab = bundled_vocab()
    rows = [r for r in json.loads((d / "json" / "avqa-train.json").read_text())
            if set(tokenize(r)) <= set(vocab.questions) and r["anser"] in vocab.answers]
    video = next((d / "videos").glob("*.mp4"))
    assert rows, "the clip should have questions the bundled checkpoint can read"
    # the feature scripts, in the precision the bundled checkpoint's record names (avqa.ask follows it): the
    # sound as wav, VGGish with its seeded init and with the synthetic weights, and 14x14 with the bundled ResNet-18
    record = json.loads((BUNDLED / "avst_recorded.json").read_text())
    bf16 = {k: ["--bf16"] if str(f.get("precision", "")).startswith("bfloat16") else []
            for k, f in record["features"].items()}
    run_here(AUDIO, "--video_dir", d / "videos", "--audio_dir", d / "audio")
    run_here(VGG, "--audio_dir", d / "audio", "--save_dir", d / "feats" / "vggish_seeded", "--seconds", "10",
             *bf16["vggish"])
    if VGGISH.is_file():
        run_here(VGG, "--audio_dir", d / "audio", "--save_dir", d / "feats" / "vggish", "--checkpoint", VGGISH,
                 "--seconds", "10", *bf16["vggish"])
    run_here(X14, "--video_path", d / "videos", "--output_dir", d / "feats" / "res18_14x14", "--weights", RES18,
             "--seconds", "10", *bf16["res18_14x14"])
    # the bundled checkpoint with a record that names the seeded VGGish init (the extractor's default)
    seeded = d / "seeded_model"
    seeded.mkdir()
    shutil.copy(BUNDLED / "avst.pt", seeded / "avst.pt")
    record["features"]["vggish"].update(init="random, seed 0", weights_sha256=None, trained_on=None)
    (seeded / "avst_recorded.json").write_text(json.dumps(record))
    return {"dir": d, "video": video, "rows": [r for r in rows if r["video_id"] == video.stem], "seeded": seeded}


def ask_cli(*argv, capsys) -> tuple[int, str, str]:
    """avqa.ask in this process (the checkpoint, backbones and clip are still loaded afresh each call)."""
    code = ask.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def predicted_by_test_mode(clip, audio_dir: str, model_dir) -> tuple[list[str], torch.Tensor]:
    """Test mode's path on the extracted features: its predictions, and the probabilities behind them."""
    vocab = bundled_vocab()
    model = AVST(len(vocab.questions), len(vocab.answers))
    load_trained_state(model_dir / "avst.pt", "avst", model, vocab)
    split = encode_split(clip["rows"], vocab, "clip")
    dataset = AVQADataset(split, FeatureStore(clip["dir"] / "feats" / audio_dir, AUDIO_SHAPE),
                          FeatureStore(clip["dir"] / "feats" / "res18_14x14", VISUAL_SHAPE), 10, 10)
    rt = Runtime(build_parser("avst", "").parse_args(["--device", "cpu"]))
    out = predict_qa(model, make_loader(dataset, 64, False, rt, 0, 1), rt)
    with torch.no_grad():
        b = dataset.batch(range(len(dataset)))
        probs = torch.softmax(model(b["audio"], b["visual_posi"], None, b["question"])[0], dim=-1)
    assert torch.equal(probs.argmax(1), out["pred"])
    return [vocab.answers[i] for i in out["pred"]], probs


def question_of(row: dict) -> str:
    return " ".join(tokenize(row)) + "?"


@pytest.fixture(scope="module")
def seeded_answer(clip, tmp_path_factory) -> tuple[dict, Path]:
    """avqa.ask's JSON and sheet for the clip's last question, from the seeded-VGGish copy of the bundled checkpoint."""
    out = tmp_path_factory.mktemp("seeded_answer")
    argv = [clip["video"], question_of(clip["rows"][-1]), "--model_save_dir", clip["seeded"], "--json",
            out / "a.json", "--sheet", out / "sheet.png"]
    code = ask.main([str(a) for a in argv])
    assert code == 0
    return json.loads((out / "a.json").read_text()), out / "sheet.png"


@pytest.mark.parametrize("vggish", ["seeded init", "synthetic weights"])
def test_same_answer_and_probabilities_as_test_mode(clip, vggish, seeded_answer, tmp_path, capsys):
    if vggish == "synthetic weights" and not VGGISH.is_file():
        pytest.skip(f"{DEFAULT_OUT['vggish']} is not here (python -m avqa.features.pretrain vggish makes it)")
    vocab = bundled_vocab()
    k = len(clip["rows"]) - 1
    if vggish == "seeded init":
        preds, probs = predicted_by_test_mode(clip, "vggish_seeded", clip["seeded"])
        got, sheet = seeded_answer
        with Image.open(sheet) as im:
            assert im.size == sheet_size(10, 160, 120)
    else:  # the bundled checkpoint as it is, and the first question
        preds, probs = predicted_by_test_mode(clip, "vggish", BUNDLED)
        k = 0
        code, out, err = ask_cli(clip["video"], question_of(clip["rows"][k]), "--json", tmp_path / "a.json",
                                 capsys=capsys)
        assert code == 0, err
        assert f"answer: {preds[k]}" in out and "question type: " in out and "top 5:" in out
        got = json.loads((tmp_path / "a.json").read_text())
    assert got["answer"] == preds[k]
    mine = torch.tensor([got["probabilities"][a] for a in vocab.answers], dtype=probs.dtype)
    assert torch.allclose(mine, probs[k], rtol=0, atol=1e-5), (mine - probs[k]).abs().max()
    assert [t["answer"] for t in got["top"]] == [vocab.answers[i] for i in probs[k].argsort(descending=True)[:5]]
    assert got["seconds"] == list(range(10)) and len(got["temporal_attention"]["sound"]) == 10
    assert np.isclose(sum(got["temporal_attention"]["vision"]), 1.0, atol=1e-5)
    assert got["question_type"] == json.loads(clip["rows"][k]["type"]) and got["template_matched"]
    assert got["notes"] == []  # the features are made as the checkpoint's were: nothing to say


def test_original_format_checkpoint_with_label_train(clip, seeded_answer, tmp_path, capsys):
    """The bundled weights as the original code saved them (DataParallel names, no vocabulary): the
    vocabulary comes from --label_train, as in main_avst.py, and the answer is the bundled one's."""
    obj = torch.load(BUNDLED / "avst.pt", weights_only=True)
    torch.save({f"module.{k}": v.float() for k, v in obj["state_dict"].items()}, tmp_path / "original.pt")
    rows = []  # a train file whose vocabularies are the checkpoint's, in its order
    words, answers = obj["question_vocab"][1:], obj["answer_vocab"]
    for i in range(max(-(-len(words) // 10), len(answers))):
        chunk = words[10 * i:10 * i + 10] or ["the"]
        rows.append({"video_id": "1", "question_id": i, "type": '["Audio", "Counting"]', "templ_values": "[]",
                     "question_content": " ".join(chunk) + "?", "anser": answers[min(i, len(answers) - 1)]})
    (tmp_path / "train.json").write_text(json.dumps(rows))
    common = [clip["video"], question_of(clip["rows"][-1]), "--seconds", "10", "--json", tmp_path / "o.json"]
    code, _, err = ask_cli(*common, "--checkpoint", tmp_path / "original.pt", capsys=capsys)
    assert code == 2 and "--label_train" in err and "original-format" in err
    code, _, err = ask_cli(*common, "--checkpoint", tmp_path / "original.pt", "--label_train", tmp_path / "train.json",
                           "--res18_weights", RES18, capsys=capsys)
    assert code == 0, err
    assert "no record of the VGGish features" in err  # original checkpoints record nothing: it says what it used
    original, bundled = json.loads((tmp_path / "o.json").read_text()), seeded_answer[0]
    assert original["answer"] == bundled["answer"]
    # with no record, the features are computed in float32; the bundle's record may name bfloat16 ones,
    # which move the probabilities by about 1e-4
    features = json.loads((BUNDLED / "avst_recorded.json").read_text())["features"]
    same_precision = not any(str(f.get("precision", "")).startswith("bfloat16") for f in features.values())
    for a, p in bundled["probabilities"].items():
        assert abs(original["probabilities"][a] - p) < (1e-6 if same_precision else 1e-3)


def test_one_answerer_answers_many_questions_as_the_command_line_does(clip, tmp_path, capsys, monkeypatch):
    """Loaded once, two questions about two videos (the second cut short, so that it has notes of its own):
    the backbones are built once, and each answer, its attention and notes are those of a run of the
    command line on the same pair."""
    built = []

    class CountingRunner(ask_features.Runner):
        def __init__(self, name, *args, **kwargs):
            built.append(name)
            super().__init__(name, *args, **kwargs)

    monkeypatch.setattr(ask_features, "Runner", CountingRunner)
    _remux(clip["video"], tmp_path / "short.mp4", seconds=6)
    pairs = [(clip["video"], question_of(clip["rows"][-1])), (tmp_path / "short.mp4", question_of(clip["rows"][0]))]
    answerer = ask.load_answerer(clip["seeded"] / "avst.pt")
    results = [answerer.answer(video, question) for video, question in pairs]
    assert sorted(built) == ["res18_14x14", "vggish"]
    assert results[0].notes == [] and any("padded with silence" in n for n in results[1].notes)
    for i, ((video, question), result) in enumerate(zip(pairs, results)):
        code, out, err = ask_cli(video, question, "--model_save_dir", clip["seeded"], "--json", tmp_path / f"{i}.json",
                                 capsys=capsys)
        assert code == 0, err
        assert json.loads((tmp_path / f"{i}.json").read_text()) == json.loads(json.dumps(result.as_dict()))
        assert err.splitlines() == [f"note: {n}" for n in result.notes]
        assert out.startswith(f"answer: {result.answer}   (probability {result.probability:.4f})")


def _remux(src, dst, seconds=None, sound=True):
    """A copy of a video, cut to ``seconds`` and/or without its sound track (no re-encoding)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        keep = {s.index: out.add_stream_from_template(s) for s in inp.streams
                if s.type == "video" or (sound and s.type == "audio")}
        for pkt in inp.demux():
            if pkt.dts is None or pkt.stream.index not in keep:
                continue
            if seconds is not None and pkt.pts * pkt.time_base >= seconds:
                continue
            pkt.stream = keep[pkt.stream.index]
            out.mux(pkt)


def test_short_video_is_padded_and_said(clip, tmp_path, capsys):
    _remux(clip["video"], tmp_path / "short.mp4", seconds=4)
    code, out, err = ask_cli(tmp_path / "short.mp4", "Is there a voiceover?", "--model_save_dir", clip["seeded"],
                             capsys=capsys)
    assert code == 0 and "answer:" in out
    assert "short.mp4: 4.1 s long, the last second is repeated to fill 10 s" in err
    assert "s of sound for 10 s; padded with silence" in err


def test_bad_input_is_one_sentence_exit_2_for_the_question_1_for_files(clip, tmp_path, capsys):
    video = clip["video"]
    # a word outside the vocabulary, named with the closest known words
    code, out, err = ask_cli(video, "Is the violn louder than the piano?", capsys=capsys)
    assert code == 2 and "'violn' (closest known: violin" in err and "--template" in err and not out
    # forgiven: no '?', lower case, an instrument typed with a space
    assert ask.read_question("is the acoustic guitar louder than the piano", bundled_vocab()) == \
        "Is the acoustic_guitar louder than the piano".split()
    # a video without sound, a file that is not a video, a file that is not there
    _remux(video, tmp_path / "silent.mp4", sound=False)
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "test.json").write_text(json.dumps([{"video_id": "00000001", "anser": "two"}]))  # FFmpeg opens it
    (tmp_path / "clips").mkdir()
    for path, why in ((tmp_path / "silent.mp4", "no audio track"), (tmp_path / "notes.txt", "not a readable video"),
                      (tmp_path / "gone.mp4", "no such file"),
                      (tmp_path / "test.json", "not a readable video or audio file: it is a JSON file"),
                      (tmp_path / "clips", "is a folder, not a video: give one video file")):
        code, out, err = ask_cli(path, "Is there a voiceover?", "--model_save_dir", clip["seeded"], capsys=capsys)
        assert code == 1 and why in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_other_model_or_vocabulary_is_refused(clip, tmp_path, capsys):
    vocab = bundled_vocab()
    other = QuestionOnly(len(vocab.questions), len(vocab.answers))
    torch.save({"format": "avqa/1", "model": "question_only", "state_dict": other.state_dict(),
                "question_vocab": list(vocab.questions), "answer_vocab": list(vocab.answers)}, tmp_path / "q.pt")
    code, _, err = ask_cli(clip["video"], "Is there a voiceover?", "--checkpoint", tmp_path / "q.pt", capsys=capsys)
    assert code == 1 and "holds a 'question_only' model, not AVST" in err
    # our checkpoint against another train file's vocabulary
    train = clip["dir"] / "json" / "avqa-train.json"
    code, _, err = ask_cli(clip["video"], "Is there a voiceover?", "--label_train", train, capsys=capsys)
    assert code == 1 and "another question vocabulary" in err
    # VGGish weights of a sha256 no command here makes: the file and hash it needs, and that none rebuilds it
    record = json.loads((BUNDLED / "avst_recorded.json").read_text())
    record["features"]["vggish"]["weights_sha256"] = "0" * 64
    (tmp_path / "avst_recorded.json").write_text(json.dumps(record))
    shutil.copy(BUNDLED / "avst.pt", tmp_path / "avst.pt")
    code, _, err = ask_cli(clip["video"], "Is there a voiceover?", "--model_save_dir", tmp_path, capsys=capsys)
    assert code == 1 and f"{DEFAULT_OUT['vggish']}, sha256 {'0' * 64} (recorded in {tmp_path / 'avst_recorded.json'})" \
        in err and "no command here rebuilds a file of that sha256" in err


def test_moved_vggish_weights_name_the_recorded_file_what_is_there_and_the_exact_rebuild(clip, tmp_path, capsys):
    record = json.loads((BUNDLED / "avst_recorded.json").read_text())
    wanted = record["features"]["vggish"]["weights_sha256"]
    if VGGISH.is_file() and ask_features.weights_sha256(VGGISH) == wanted:
        pytest.skip(f"{VGGISH} holds the weights the record names, so they are found and nothing is missing")
    other = tmp_path / "vggish_synthetic.pth"
    other.write_bytes(b"other weights")  # a file of the recorded name, of another sha256
    record["features"]["vggish"]["weights"] = str(other)
    (tmp_path / "avst_recorded.json").write_text(json.dumps(record))
    shutil.copy(BUNDLED / "avst.pt", tmp_path / "avst.pt")
    code, out, err = ask_cli(clip["video"], "Is there a voiceover?", "--model_save_dir", tmp_path, capsys=capsys)
    assert code == 1 and not out and "Traceback" not in err
    assert f"{other}, sha256 {wanted} (recorded in {tmp_path / 'avst_recorded.json'})" in err
    assert f"found instead: {other} (sha256 {hashlib.sha256(b'other weights').hexdigest()})" in err
    assert "`python -m avqa.features.pretrain vggish --assemble` rebuilds exactly that file" in err
    assert "is missing" not in err


def test_output_paths_are_checked_before_the_work_and_named_as_typed(clip, tmp_path, capsys):
    for flag in ("--sheet", "--json"):
        code, out, err = ask_cli(clip["video"], "Is there a voiceover?", "--model_save_dir", clip["seeded"], flag,
                                 tmp_path, capsys=capsys)
        assert code == 1 and not out and f"{flag} {tmp_path} is a folder: give a file name" in err, err
        assert ".tmp" not in err and "answer:" not in out


def test_a_text_file_given_as_a_checkpoint_says_what_it_is_and_what_a_checkpoint_is(clip, tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("best val accuracy 61.2\n")
    code, _, err = ask_cli(clip["video"], "Is there a voiceover?", "--checkpoint", tmp_path / "notes.pt", capsys=capsys)
    assert code == 1 and "a text file (it begins: 'best val accuracy 61.2')" in err
    assert "a checkpoint of this project is" in err


def test_templates_and_question_types(capsys):
    code, out, _ = ask_cli("--template", capsys=capsys)
    assert code == 0
    for text, modality, kind in TEMPLATES:
        assert text.rstrip() in out
        # the template filled with the last word of each placeholder is read as its own type
        filled = " ".join(tokenize({"question_content": text,
                                    "templ_values": [TAG_VALUES[t][-1] for t in template_tags(text)]}))
        assert ask.infer_template(filled.split())[1:] == ((modality, kind), True), text
    assert "<Object>  accordion, acoustic_guitar" in out and "(unknown: fourth, fifth)" in out
    template, qtype, exact = ask.infer_template("Is the piano louder".split())
    assert not exact and qtype == ("Audio", "Comparative")


def test_features_of_a_training_run_are_found_by_their_metadata(tmp_path):
    """A checkpoint without a record beside it: the metadata of the feature folders its run read, while
    they are still the files the run recorded (by sha256)."""
    from avqa.utils import sha256
    metas = {}
    for name, folder in (("vggish", "vggish"), ("res18_14x14", "res18_14x14")):
        metas[name] = tmp_path / f"{folder}.json"
        metas[name].write_text(json.dumps({"backbone": name, "init": "random, seed 3", "seconds": 10}))
    meta = {"args": {"audio_dir": str(tmp_path / "vggish"), "video_res14x14_dir": str(tmp_path / "res18_14x14")},
            "run": {"features_metadata_sha256": [sha256(metas["vggish"]), sha256(metas["res18_14x14"])]}}
    found = recorded_features(tmp_path / "mine.pt", meta)
    assert {k: v[0]["init"] for k, v in found.items()} == {"vggish": "random, seed 3", "res18_14x14": "random, seed 3"}
    assert ask_features.backbone_setting("vggish", None, found).seed == 3
    metas["vggish"].write_text(json.dumps({"backbone": "vggish", "init": "random, seed 4", "seconds": 10}))
    assert set(recorded_features(tmp_path / "mine.pt", meta)) == {"res18_14x14"}  # extracted again since
