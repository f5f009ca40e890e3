"""TSPM's CLIP features: the OpenAI-format loader against open_clip's own model, OpenAI's preprocessing,
the QA-prompt builder on the real annotations, and the three extractors end to end on a tiny set."""
from __future__ import annotations

import json
import socket
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avqa.features import clip as C
from avqa.features.backbones import frames_to_tensor, normalise
from avqa.features.cli import clip_text_main
from avqa.features.inputs import load_frames
from avqa.features.prompts import PROMPTS, PromptError, qa_prompt, question_sentence
from conftest import REAL, needs_real, run_here

FRAMES = "feat_script/extract_clip_feat/extract_frames_ViT-L14@336px.py"
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 28, "layers": 2, "width": 64, "patch_size": 14},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2}}


def tiny_clip(seed: int = 0) -> torch.nn.Module:
    from open_clip.model import CLIP
    torch.manual_seed(seed)
    return CLIP(TINY["embed_dim"], vision_cfg=dict(TINY["vision_cfg"]), text_cfg=dict(TINY["text_cfg"]),
                quick_gelu=True).eval()


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> tuple[torch.nn.Module, Path, Path]:
    """A tiny random CLIP, saved as OpenAI publishes it (a traced TorchScript archive with its
    input_resolution, context_length and vocab_size) and as a plain state_dict in OpenAI's key layout."""
    d = tmp_path_factory.mktemp("clip")
    model = tiny_clip()
    torch.save(model.state_dict(), d / "tiny_state_dict.pt")
    traced = tiny_clip()
    for name, value in (("input_resolution", 28), ("context_length", 77), ("vocab_size", 49408)):
        traced.__dict__.pop(name, None)  # open_clip keeps two of them as plain attributes
        traced.register_buffer(name, torch.tensor(value))
    with torch.no_grad(), warnings.catch_warnings():  # tracing warns about TorchScript's deprecation
        warnings.simplefilter("ignore")
        archive = torch.jit.trace(traced, (torch.randn(1, 3, 28, 28), C.tokenize(["a cello"])), check_trace=False)
    archive.save(str(d / "tiny_torchscript.pt"))
    return model, d / "tiny_torchscript.pt", d / "tiny_state_dict.pt"


# ----------------------------------------------------------------------------- the loader


@pytest.mark.parametrize("kind", ["torchscript", "state_dict"])
def test_loader_gives_the_reference_features(tiny_files, kind):
    reference, archive, state_dict = tiny_files
    loaded = C.load_clip(archive if kind == "torchscript" else state_dict)
    images = torch.randn(3, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    tokens = C.tokenize(["How many cello are in the entire video?", "The cello is in this video."])
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(images), reference.encode_image(images), atol=1e-5, rtol=0)
        torch.testing.assert_close(loaded.encode_text(tokens), reference.encode_text(tokens), atol=1e-5, rtol=0)
    assert C.config_of(loaded) == TINY


def test_loader_refuses_other_files(tmp_path):
    (tmp_path / "resnet.pth").write_bytes(b"")
    torch.save({"conv1.weight": torch.zeros(2, 3, 3, 3)}, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="not a ViT CLIP in OpenAI's key layout"):
        C.load_clip(tmp_path / "resnet.pth")
    with pytest.raises(SystemExit, match="--weights: weights file .* not found"):
        C.checked_backbone("image", str(tmp_path / "ViT-L-14-336px.pt"), 0, None)


def test_nothing_downloads(tiny_files, monkeypatch):
    """Building from a local file or at random never opens a connection (open_clip could fetch weights)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a network access was attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    _, archive, _ = tiny_files
    assert C.build_clip(archive)[1]["architecture"] == C.arch_name(TINY)
    model, info = C.build_clip(None, seed=5, arch="standin")
    assert info == {"weights": None, "init": "random, seed 5", "architecture": "standin"}
    again, _ = C.build_clip(None, seed=5, arch="standin")
    assert torch.equal(model.visual.proj, again.visual.proj)


def test_preprocessing_is_openais():
    """Resize, crop and normalisation equal open_clip's transform for OpenAI's models (PIL bicubic)."""
    from open_clip.transform import image_transform
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    spec = C.backbone("image", None, 0, "standin")
    ours = normalise(frames_to_tensor([frame], spec), spec)
    theirs = image_transform(224, is_train=False, mean=C.OPENAI_MEAN, std=C.OPENAI_STD)(Image.fromarray(frame))
    torch.testing.assert_close(ours[0], theirs, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- the prompts


RELEASE_SPOT_CHECKS = [  # (question_content, templ_values, the sentence TSPM's builder writes)
    ("Is the <Object> in the video always playing?", '["cello"]', "The cello is not playing in this video."),
    ("What is the <LR> instrument of the <FL> sounding instrument?", '["left", "first"]',
     "There are musical instruments on the first that are not being played."),
    ("Is the <Object> on the <LR> louder than the <Object> on the <LR>?", '["piano", "left", "violin", "right"]',
     "The piano on the left and the violin on the right produce different volumes of sound."),
    ("Which instrument makes sounds <BA> the <Object>?", '["before", "flute"]', "The flute is playing in this video."),
    ("What is the instrument on the <LR> of <Object>?", '["right", "acoustic_guitar"]',
     "There is a musical instrument on the right side of the acoustic_guitar."),
    ("Are there <Object> and <Object> sound? ", '["banjo", "ukulele"]',
     "There are sounds of instruments other than the banjo or the ukulele in the video."),
    ("Where is the performance?", "[]", "There are musical instruments playing in the video."),
]


@pytest.mark.parametrize("content,values,sentence", RELEASE_SPOT_CHECKS)
def test_prompt_spot_checks(content, values, sentence):
    assert qa_prompt({"question_content": content, "templ_values": values}) == sentence


def test_unknown_template_is_named():
    with pytest.raises(PromptError, match=r"q\.json: question 7: template 'Who plays\?' is none of the 33"):
        qa_prompt({"question_id": 7, "question_content": "Who plays?", "templ_values": "[]"}, "q.json")


@needs_real
def test_every_real_question_gets_one_prompt():
    """Each real question's template is one of the 33 (all used), with the fillers its prompt takes; the
    fillers read as TSPM reads the templ_values string; questions end in one '?'."""
    from avqa.annotations import load_annotations
    used = set()
    files = sorted(REAL.glob("json*/avqa-*.json"))
    assert files
    for f in files:
        for row in load_annotations(f, check=False):
            prompt = qa_prompt(row, f)
            assert prompt.endswith(".") and "{" not in prompt and "<" not in prompt
            naive = row["templ_values"].replace('"', "").replace("[", "").replace("]", "").replace(" ", "").split(",")
            pattern, positions = PROMPTS[row["question_content"].rstrip().replace("？", "?")]
            assert prompt == pattern.format(*(naive[i] for i in positions))
            used.add(pattern)
            q = question_sentence(row)
            assert q.endswith("?") and not q.endswith("??") and "<" not in q
    assert len(PROMPTS) == 33 and used == {p for p, _ in PROMPTS.values()}


# ----------------------------------------------------------------------------- the extractors


def test_text_extractors(tiny_set, tiny_files, tmp_path, capsys):
    """One [1, D] file per question id, the sentences kept, equal sentences give equal vectors, a rerun
    skips everything, and the vectors are the loaded model's encode_text."""
    _, archive, _ = tiny_files
    ann = [str(tiny_set / "json" / f"avqa-{s}.json") for s in ("train", "val", "test")]
    rows = [r for f in ann for r in json.loads(Path(f).read_text())]
    ids = {str(r["question_id"]) for r in rows}
    for kind in ("question", "prompt"):
        out = tmp_path / kind
        argv = ["--annotations", *ann, "--output_dir", str(out), "--weights", str(archive)]
        assert clip_text_main(kind, str(out), "", argv) == 0
        assert {p.stem for p in out.glob("*.npy")} == ids
        book = json.loads((tmp_path / f"{kind}.sentences.json").read_text())
        build = qa_prompt if kind == "prompt" else question_sentence
        assert book == {str(r["question_id"]): build(r) for r in rows}
        meta = json.loads((tmp_path / f"{kind}.json").read_text())
        assert meta["init"] == "pretrained" and meta["sentences_file"] == f"{kind}.sentences.json"
        vec = {k: np.load(out / f"{k}.npy") for k in ids}
        assert all(v.shape == (1, 32) and v.dtype == np.float32 for v in vec.values())
        first, *others = sorted(ids, key=int)
        same = [k for k in others if book[k] == book[first]]
        assert all(np.array_equal(vec[k], vec[first]) for k in same)
        with torch.no_grad():
            want = C.load_clip(archive).encode_text(C.tokenize([book[first]]))
        np.testing.assert_allclose(vec[first], want.numpy(), atol=1e-5)
        assert clip_text_main(kind, str(out), "", argv) == 0
        assert f"0 written, {len(ids)} already complete" in capsys.readouterr().out
    assert len(set(book.values())) < len(ids)  # prompts repeat: the case the dedup is for


def test_release_sentences_switch(tiny_files, tmp_path):
    """--prompt release encodes 'e' for a template spelt with a trailing space, --question release the
    characters of the values text; the default folder's sentences are refused for the other variant."""
    _, archive, _ = tiny_files
    rows = [{"video_id": "00000001", "question_id": 1, "type": '["Audio-Visual", "Existential"]',
             "question_content": "Are there <Object> and <Object> sound? ", "templ_values": '["cello", "flute"]',
             "question_deleted": 0, "anser": "yes"},
            {"video_id": "00000001", "question_id": 2, "type": '["Visual", "Counting"]',
             "question_content": "How many <Object> are in the entire video?", "templ_values": '["cello"]',
             "question_deleted": 0, "anser": "one"}]
    ann = tmp_path / "avqa-test.json"
    ann.write_text(json.dumps(rows))
    for kind, want in (("prompt", {"1": "e", "2": "The cello is in this video."}),
                       ("question", {"1": 'Are there [ and " sound?', "2": "How many [ are in the entire video?"})):
        out = tmp_path / kind
        argv = ["--annotations", str(ann), "--output_dir", str(out), "--weights", str(archive)]
        assert clip_text_main(kind, str(out), "", [*argv, f"--{kind}", "release"]) == 0
        assert json.loads((tmp_path / f"{kind}.sentences.json").read_text()) == want
        with torch.no_grad():
            vector = C.load_clip(archive).encode_text(C.tokenize([want["1"]])).numpy()
        np.testing.assert_allclose(np.load(out / "1.npy"), vector, atol=1e-5)
        with pytest.raises(SystemExit, match="other settings .*sentence.*--overwrite"):
            clip_text_main(kind, str(out), "", argv)
        assert clip_text_main(kind, str(out), "", [*argv, "--overwrite"]) == 0
        assert json.loads((tmp_path / f"{kind}.sentences.json").read_text())["1"] != want["1"]


@pytest.mark.e2e
def test_frame_extractor_end_to_end(tiny_set, tiny_files, tmp_path):
    """[T, D] per video from the mp4, equal to the loaded model on the same frames; a second run with
    other settings is refused and leaves the folder as it was."""
    _, _, state_dict = tiny_files
    out = tmp_path / "frames"
    def run(*flags):
        return run_here(FRAMES, "--video_path", tiny_set / "videos", "--output_dir", out, *flags, check=False)
    r = run("--weights", str(state_dict))
    assert r.returncode == 0, r.stderr
    videos = sorted(p.stem for p in (tiny_set / "videos").iterdir())
    assert sorted(p.stem for p in out.glob("*.npy")) == videos
    meta = json.loads((tmp_path / "frames.json").read_text())
    assert meta["backbone"] == f"clip_image_{C.arch_name(TINY)}" and meta["seconds"] == 4
    assert "bicubic resize of the shorter side to 28, centre crop 28" in meta["preprocessing"]
    got = np.load(out / f"{videos[0]}.npy")
    spec = C.backbone("image", state_dict, 0, None)
    frames, _ = load_frames(tiny_set / "videos" / f"{videos[0]}.mp4", 4, spec, None)
    with torch.no_grad():
        want = C.load_clip(state_dict).encode_image(normalise(frames, spec)).numpy()
    assert got.shape == (4, 32)
    np.testing.assert_allclose(got, want, atol=1e-4)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run("--arch", "standin")
    assert r.returncode != 0 and "holds features made with other settings" in r.stderr and "--overwrite" in r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def _frame_folders(root: Path, gapped: str = "b") -> Path:
    """Two 4-second clips as 1 fps frame folders; ``gapped`` has the files 1, 2, 4, 5 (second 2 missing)."""
    for vid, numbers in (("a", [1, 2, 3, 4]), (gapped, [1, 2, 4, 5])):
        (root / vid).mkdir(parents=True)
        for n in numbers:
            Image.fromarray(np.full((32, 32, 3), 40 * n, np.uint8)).save(root / vid / f"{n:08d}.jpg", quality=95)
    return root


@pytest.mark.e2e
def test_a_frame_folder_with_a_numbering_gap_is_refused_naming_the_second(tiny_files, tmp_path):
    """Frames are read by their number: files 1, 2, 4, 5 never give second 2 the frame of second 3."""
    _, _, state_dict = tiny_files
    frames, out = _frame_folders(tmp_path / "frames"), tmp_path / "clip"
    r = run_here(FRAMES, "--video_path", frames, "--output_dir", out, "--seconds", "4", "--weights", state_dict,
                 check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{frames / 'b'}: no frame numbered 3, the frame of second 2" in r.stderr
    assert sorted(p.name for p in out.glob("*.npy")) == ["a.npy"]
