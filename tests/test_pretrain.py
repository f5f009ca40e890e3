"""Backbones taught the synthetic world: the bundled ResNet-18, the VGGish the main job makes, and their use."""
import json

import numpy as np
import pytest
import torch

from avqa.annotations import INSTRUMENTS
from avqa.features import backbones as B
from avqa.features.corpus import heldout_figures, mean_average_precision
from avqa.features.pretrain import frame_example, sound_examples
from avqa.utils import sha256
from conftest import GRD, SYNTHETIC_RES18, VGG, data_flags, e2e_fixture, extract_taught, run_here


def test_mean_average_precision_on_hand_made_scores():
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    perfect = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.3], [0.1, 0.2]])
    assert mean_average_precision(perfect, labels) == 1.0
    # class 0 ranked: 1st a positive, 2nd a negative, 3rd a positive -> AP (1 + 2/3) / 2; class 1 perfect
    mixed = np.array([[0.9, 0.1], [0.5, 0.8], [0.4, 0.3], [0.1, 0.2]])
    assert np.isclose(mean_average_precision(mixed, labels), ((1 + 2 / 3) / 2 + 1) / 2)
    assert heldout_figures(perfect - 0.5, labels)["exact_set"] == 100.0


def test_corpus_examples_are_seeded_and_labelled_from_the_scene():
    image, classes = frame_example(7, 3)
    again, _ = frame_example(7, 3)
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8 and np.array_equal(image, again)
    assert classes.shape == (len(INSTRUMENTS),) and 1 <= classes.sum() <= 4
    sounds, playing = sound_examples(7, 3)
    assert sounds.shape == (10, 96, 64) and playing.shape == (10, len(INSTRUMENTS))
    assert not np.array_equal(frame_example(8, 3)[0], image)


def test_bundled_resnet_matches_its_record_and_loads_as_the_official_file():
    record = json.loads(B.record_path(SYNTHETIC_RES18).read_text())
    assert sha256(SYNTHETIC_RES18) == record["sha256"], "the bundled weights differ from their record"
    assert SYNTHETIC_RES18.stat().st_size < 25 * 2**20
    state = torch.load(SYNTHETIC_RES18, weights_only=True)
    # torchvision's ResNet-18 state_dict (without its classifier): the official file's names and shapes
    official = {k: v.shape for k, v in B.ResNet18Features(pooled=True).net.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in state.items()} == official
    model, info = B.build("res18_14x14", SYNTHETIC_RES18)
    assert info["init"] == "pretrained" and info["trained_on"].startswith("synthetic world")
    assert record["heldout"]["trained (its own head)"]["mAP"] > record["heldout"]["seeded random init (linear probe)"]["mAP"] + 20


@torch.no_grad()
def test_bundled_resnet_tells_the_classes_apart_where_the_random_init_does_not():
    """Frames that share a class get closer pooled features than frames that share none, by a wide margin."""
    frames, classes = zip(*(frame_example(5, i) for i in range(24)))
    x = B.normalise(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2), B.BACKBONES["res18"])
    shared = np.array([[a @ b > 0 for b in classes] for a in classes])
    np.fill_diagonal(shared, False)
    disjoint = np.array([[a @ b == 0 for b in classes] for a in classes])
    assert shared.any() and disjoint.any()
    margins = {}
    for name, weights in (("trained", SYNTHETIC_RES18), ("random", None)):
        f = torch.nn.functional.normalize(B.build("res18", weights, 0)[0](x), dim=1)
        sim = (f @ f.T).numpy()
        margins[name] = sim[shared].mean() - sim[disjoint].mean()
    assert margins["trained"] > 0.1 and margins["trained"] > 3 * margins["random"], margins


@pytest.mark.e2e
def test_vggish_pretraining_writes_port_weights_that_the_extractor_records(tmp_path):
    out = tmp_path / "weights" / "vggish_synthetic.pth"
    layer = tmp_path / "bundle" / "vggish_embedding.pth"
    text = run_here("-m", "avqa.features.pretrain", "vggish", "--out", str(out), "--size", "6", "--heldout", "2",
                    "--epochs", "2", "--bundle", str(layer)).stdout
    record = json.loads(B.record_path(out).read_text())
    assert record["sha256"] == sha256(out) and "held-out" in text
    assert set(record["heldout"]) == {"trained (its own head)", "seeded random init (linear probe)"}
    state = torch.load(out, weights_only=True)
    assert {k for k in state if k.startswith("embeddings")} == {f"embeddings.{i}.{p}" for i in (0, 2, 4)
                                                                 for p in ("weight", "bias")}
    # only the embedding layer was trained: the rest is the extractor's seeded random init
    random = B.build("vggish", None, 0)[0].state_dict()
    assert torch.equal(state["features.0.weight"], random["features.0.weight"])
    assert torch.equal(state["embeddings.2.weight"], random["embeddings.2.weight"])
    assert not torch.equal(state["embeddings.4.weight"], random["embeddings.4.weight"])
    wav_dir = tmp_path / "audio"
    wav_dir.mkdir()
    from avqa.media import write_wav
    sounds = (np.random.default_rng(0).standard_normal((16000 * 2, 1)) * 3000).astype(np.int16)
    write_wav(wav_dir / "90000001.wav", sounds, 16000)
    run_here(VGG, "--audio_dir", str(wav_dir), "--save_dir", str(tmp_path / "feats" / "vggish"), "--num_secs", "2",
             "--checkpoint", str(out))
    meta = json.loads((tmp_path / "feats" / "vggish.json").read_text())
    assert meta["init"] == "pretrained" and meta["weights_sha256"] == record["sha256"]
    assert meta["trained_on"] == record["trained_on"]
    # the bundle (the trained layer alone, float16) and the seed rebuild the same file, byte for byte
    assert set(torch.load(layer, weights_only=True)) == {"embeddings.4.weight", "embeddings.4.bias"}
    assert layer.stat().st_size < 1.1 * 2**20
    from avqa.features.pretrain import assemble_vggish
    again = assemble_vggish(layer, tmp_path / "again.pth")
    assert again["matches_bundle"] and sha256(tmp_path / "again.pth") == record["sha256"] == again["sha256"]


def test_the_shipped_vggish_bundle_assembles_into_the_weights_it_records(tmp_path):
    from avqa.features.pretrain import BUNDLED_VGGISH
    bundle = json.loads(B.record_path(BUNDLED_VGGISH).read_text())
    assert bundle["sha256"] == sha256(BUNDLED_VGGISH)  # the shipped file is the one recorded
    out = tmp_path / "vggish_synthetic.pth"
    run_here("-m", "avqa.features.pretrain", "vggish", "--assemble", "--out", str(out))
    record = json.loads(B.record_path(out).read_text())
    assert record["matches_bundle"] and sha256(out) == record["sha256"] == bundle["weights"]["sha256"]
    assert record["heldout"]["trained (its own head)"]["mAP"] > record["heldout"]["seeded random init (linear probe)"]["mAP"] + 20


@pytest.mark.parametrize("argv", [["res18", "--size", "0"], ["vggish", "--lr", "0"], ["alexnet"]])
def test_pretrain_refuses_bad_flags(argv):
    proc = run_here("-m", "avqa.features.pretrain", *argv, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# The grounding test's set and recipe; benchmarks/floor_spread.py measures its figures over seeds,
# threads and feature precisions, and docs/development.md keeps the spread its floors are set from.
SMALL_WORLD = ["--num_clips", "120", "--width", "160", "--height", "120", "--fps", "8", "--sample_rate", "16000",
               "--questions_per_clip", "3", "--split", "0.7,0.1,0.2", "--seed", "5"]
GROUNDING_RECIPE = ["--epochs", "8", "--batch-size", "16", "--lr", "1e-3", "--lr_step", "8"]


@e2e_fixture(scope="module")
def small_world(tmp_path_factory, synthetic_vggish):
    """120 small clips of 10 s, with features from the backbones taught the synthetic world (the bundled
    ResNet-18 and the shipped VGGish; training a VGGish is tested above)."""
    d = tmp_path_factory.mktemp("small_world")
    run_here("-m", "avqa.synthetic", "--out", str(d), *SMALL_WORLD)
    return extract_taught(d, synthetic_vggish)


def test_grounding_learns_the_match_on_features_of_the_synthetic_backbones(small_world, tmp_path):
    """On seeded random features this stays at ln 2 and 50%; on features of the taught backbones it learns."""
    flags = [*data_flags(small_world), "--model_save_dir", str(tmp_path), "--tensorboard_dir", ""]
    run_here(GRD, *flags, *GROUNDING_RECIPE)
    history = torch.load(tmp_path / "main_grounding_gen_last.pt", weights_only=True)["history"]
    assert history[0]["epoch"] == 0 and 35 <= history[0]["val_accuracy"] <= 65  # untrained: chance
    # floors from the spread over seeds, threads and feature precisions (docs/development.md#floors-of-the-learning-tests)
    assert min(h["loss"] for h in history[1:6]) < 0.62  # leaves ln 2 = 0.693 within 5 epochs
    run_here(GRD, *flags, "--mode", "test", "--results", str(tmp_path / "test.json"))
    report = json.loads((tmp_path / "test.json").read_text())
    assert max(h["val_accuracy"] for h in history[1:]) >= 60, history  # 180 pairs: a noisy best
    assert report["match_accuracy"] >= 58 and report["match_accuracy"] >= report["untrained_match_accuracy"] + 8, report
