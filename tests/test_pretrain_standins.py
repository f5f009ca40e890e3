"""The synthetic-world stand-ins for TSPM's CLIP and ToMe ViT: their recipes write files that the
official loaders read, with records; the shipped files are the ones recorded and give TSPM's shapes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avqa.features import backbones as B
from avqa.features.clip import build_clip, load_clip, tokenize
from avqa.features.corpus import fresh_scene
from avqa.features.pretrain import DEFAULT_OUT, main
from avqa.features.standins import IN_VIEW, captions, named, positives, scene_sentences
from avqa.features.tokens import extract_tokens
from avqa.features.vit import build_vit
from avqa.utils import sha256
from conftest import ROOT

SHIPPED = {name: ROOT / DEFAULT_OUT[name] for name in ("clip", "vit")}
RECORD_FIELDS = {"backbone", "file", "sha256", "bytes", "trained_on", "recipe", "command", "seconds", "torch",
                 "heldout", "architecture", "stored"}
TINY = ["--size", "8", "--heldout", "4", "--epochs", "1", "--batch", "4", "--workers", "1"]


def _clip_features(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    model = load_clip(path)
    with torch.no_grad():
        image = model.encode_image(torch.zeros(2, 3, 224, 224))
        return image, model.encode_text(tokenize(["The cello is in this video."]))


def _frame_folder(root: Path, seconds: int) -> Path:
    """One video as a folder of 1 fps JPEG frames of a corpus scene (the release's frame layout)."""
    from avqa.synthetic.render import background, compose_frame
    _, scene = fresh_scene(7, 0)
    folder = root / "frames" / "90000001"
    folder.mkdir(parents=True)
    bg = background(scene, 320, 240)
    for t in range(seconds):
        Image.fromarray(compose_frame(scene, bg, float(t), with_boxes=False)[0]).save(folder / f"{t + 1:06d}.jpg")
    return folder.parent


def _check_record(path: Path, backbone: str) -> dict:
    record = json.loads(B.record_path(path).read_text())
    assert RECORD_FIELDS <= set(record), RECORD_FIELDS - set(record)
    assert record["backbone"] == backbone and record["sha256"] == sha256(path)
    assert record["bytes"] == path.stat().st_size and len(record["heldout"]) == 2
    return record


def test_clip_recipe_writes_an_openai_layout_file_that_the_extractors_read(tmp_path):
    out = tmp_path / "clip_synthetic.pt"
    assert main(["clip", "--out", str(out), *TINY]) == 0
    record = _check_record(out, "clip")
    assert record["recipe"]["size"] == 8 and "sentences about its scene" in record["trained_on"]
    for figures in record["heldout"].values():
        assert {"caption_retrieval_top1", "zero_shot_instrument_top1"} <= set(figures) and figures["scenes"] == 4
    state = torch.load(out, weights_only=True)
    assert {"visual.proj", "visual.conv1.weight", "text_projection", "token_embedding.weight"} <= set(state)
    assert {v.dtype for v in state.values()} == {torch.float16}
    image, text = _clip_features(out)
    assert image.shape == (2, 768) and text.shape == (1, 768)      # TSPM's published CLIP width
    _, info = build_clip(out)                                        # what the three CLIP extractors build
    assert info["trained_on"] == record["trained_on"] and info["architecture"] == "standin"


def test_vit_recipe_writes_timm_weights_whose_merged_tokens_are_14_per_frame(tmp_path):
    out = tmp_path / "vit_tokens_synthetic.safetensors"
    assert main(["vit", "--out", str(out), *TINY]) == 0
    record = _check_record(out, "vit")
    assert set(record["heldout"]["trained (its own head)"]) >= {"mAP", "exact_set", "place_accuracy"}
    vit, info = build_vit(weights=out)
    assert info["trained_on"] == record["trained_on"]
    assert (info["architecture"]["embed_dim"], info["architecture"]["depth"]) == (192, 4)
    # the extractor, without --r, finds the merge that leaves 14 of 197 tokens in 4 blocks
    folder = _frame_folder(tmp_path, 4)
    report = extract_tokens(folder, tmp_path / "tome14", 4, 3, weights=str(out))
    assert report.done == 1
    tokens = np.load(tmp_path / "tome14" / "90000001.npy")
    assert tokens.shape == (3, 14, 192) and np.isfinite(tokens).all()
    meta = json.loads((tmp_path / "tome14.json").read_text())
    assert meta["trained_on"] == record["trained_on"]
    assert meta["merging"]["tokens_after_each_block"] == [105, 53, 27, 14] and meta["merging"]["r"] == 92


def test_captions_name_the_classes_left_to_right():
    _, scene = fresh_scene(3, 5)
    order = [i.cls for i in sorted(scene.instances, key=lambda i: i.slot)]
    first = captions(scene)[0]
    assert [first.index(c) for c in order] == sorted(first.index(c) for c in order)
    assert all(f"The {c} is in this video." in captions(scene) for c in scene.classes_seen())


def test_clip_sentences_name_only_classes_in_view_and_true_sentences_are_positives():
    scenes = [fresh_scene(3, i)[1] for i in range(30)]
    for i, scene in enumerate(scenes):
        caps, asked = scene_sentences(3, i)
        assert all(named(t) <= set(scene.classes_seen()) for t in caps + asked)
    a, b = next((a, b) for a in scenes for b in scenes if set(a.classes_seen()).isdisjoint(b.classes_seen()))
    cls = a.classes_seen()[0]
    texts = [IN_VIEW.format(cls), "There are musical instruments playing in the video.", IN_VIEW.format(cls)]
    seen = [set(a.classes_seen()), set(b.classes_seen()), set(b.classes_seen())]
    assert positives(texts, seen).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


@pytest.mark.parametrize("name", ["clip", "vit"])
def test_shipped_standins_match_their_records_and_beat_the_untrained(name):
    path = SHIPPED[name]
    record = _check_record(path, name)
    trained, untrained = record["heldout"].values()
    if name == "clip":
        image, text = _clip_features(path)
        assert image.shape == (2, 768) and text.shape == (1, 768)
        assert trained["zero_shot_instrument_top1"] > untrained["zero_shot_instrument_top1"] + 40
        assert trained["caption_retrieval_top1"] > untrained["caption_retrieval_top1"] + 5
        # and on frames it has never seen, it names an instrument in view far above chance (about 11%)
        from avqa.features.standins import clip_example, clip_figures
        frames = torch.from_numpy(np.stack([clip_example(99, i)[0] for i in range(24)]))
        scenes = [fresh_scene(99, i)[1] for i in range(24)]
        fresh = clip_figures(load_clip(path), frames, [captions(s)[0] for s in scenes],
                             [s.classes_seen() for s in scenes], torch.device("cpu"))
        assert fresh["zero_shot_instrument_top1"] > 40, fresh
    else:
        vit, _ = build_vit(weights=path)
        assert vit.embed_dim == 192
        assert trained["mAP"] > untrained["mAP"] + 30 and trained["place_accuracy"] > untrained["place_accuracy"] + 5
    assert sum(p.stat().st_size for p in SHIPPED.values()) <= 25 * 2**20
