"""Training and testing on MUSIC-AVQA v2.0's video ids: YouTube ids (one starting with '-'), a second
segment (``_#02``) and mirrored copies (``_flip``) that have no video of their own, made by the
extractors from the original video."""
import json
import shutil

import numpy as np
import pytest

from avqa.annotations import Vocab, question_key
from avqa.data import real_videos
from avqa.features import backbones as B
from avqa.features.network import Runner
from avqa.media import read_sampled_frames, read_wav
from conftest import AUDIO, AVST, GRD, VGG, X14, e2e_fixture, run_here

FRAMES = "feat_script/extract_visual_frames/extract_frames_adaptive_script.py"

# 90000001-2 are train videos, 90000004 a test video, 90000006 a val video
RENAME = {"90000001": "-1vnMOhaArA", "90000002": "Ab_cd-EF12g", "90000004": "Ab_cd-EF12g_#02",
          "90000006": "zZ9_-aaaaaa"}
FLIPPED = ["-1vnMOhaArA_flip", "Ab_cd-EF12g_#02_flip"]
SWAP = {"left": "right", "right": "left"}


def _mirror_row(row: dict, video_id: str) -> dict:
    """The row asked of the mirrored video: left and right swapped, no question_id (as in v2.0)."""
    values = [SWAP.get(v, v) for v in json.loads(row["templ_values"])]
    out = {k: v for k, v in row.items() if k != "question_id"}
    return {**out, "video_id": video_id, "templ_values": json.dumps(values), "anser": SWAP.get(row["anser"], row["anser"])}


@pytest.fixture(scope="module")
def v2_set(tiny_set, tmp_path_factory):
    """The tiny set renamed to v2.0's id forms, in a folder whose name holds '#'; the _flip videos'
    questions are in every split, and their videos are absent."""
    d = tmp_path_factory.mktemp("v2") / "music#v2"
    (d / "videos").mkdir(parents=True)
    for src in (tiny_set / "videos").glob("*.mp4"):
        shutil.copy(src, d / "videos" / f"{RENAME.get(src.stem, src.stem)}.mp4")
    shutil.copy(tiny_set / "synthetic.json", d / "synthetic.json")
    (d / "json").mkdir()
    for split in ("train", "val", "test"):
        rows = json.loads((tiny_set / "json" / f"avqa-{split}.json").read_text())
        out = []
        for i, row in enumerate(rows):
            row = {**row, "video_id": RENAME.get(row["video_id"], row["video_id"])}
            if i % 3 == 0:
                del row["question_id"]
            out.append(row)
        base = {f[:-len("_flip")]: f for f in FLIPPED}
        out += [_mirror_row(r, base[r["video_id"]]) for r in out if r["video_id"] in base][:8]
        (d / "json" / f"avqa-{split}.json").write_text(json.dumps(out))
    assert not list((d / "videos").glob("*_flip*"))
    return d


@e2e_fixture(scope="module")
def v2_features(v2_set):
    d, labels = v2_set, [str(v2_set / "json" / f"avqa-{s}.json") for s in ("train", "val", "test")]
    run_here(AUDIO, "--video_dir", str(d / "videos"), "--audio_dir", str(d / "audio"))  # no _flip sound yet
    run_here(VGG, "--audio_dir", str(d / "audio"), "--save_dir", str(d / "feats" / "vggish"), "--annotations",
             *labels)
    run_here(X14, "--video_path", str(d / "videos"), "--output_dir", str(d / "feats" / "res18_14x14"),
             "--annotations", *labels)
    return d


def test_recordings_of_every_id_form_are_real_and_composed_ones_are_not():
    ids = ["00005754", "sa00007079", "evv00001381", "-1vnMOhaArA", "6cjIJVzP6eI_#02", "6cjIJVzP6eI_#04_flip",
           "iveNvQ4jCis_flip", "va90000007", "not an id"]
    assert real_videos([{"video_id": v} for v in ids]) == ["00005754", "-1vnMOhaArA", "6cjIJVzP6eI_#02",
                                                           "6cjIJVzP6eI_#04_flip", "iveNvQ4jCis_flip"]


def test_vocabulary_from_a_v2_train_file(v2_set):
    path = v2_set / "json" / "avqa-train.json"
    rows = json.loads(path.read_text())
    vocab = Vocab.from_file(path)
    assert {r["anser"] for r in rows} <= set(vocab.answers)
    flipped = [r for r in rows if r["video_id"] in FLIPPED]
    assert flipped and all("question_id" not in r for r in flipped)
    questions, answers = vocab.encode(flipped, path)
    assert len(questions) == len(flipped) and [vocab.answers[a] for a in answers] == [r["anser"] for r in flipped]
    assert len({question_key(r) for r in rows}) == len(rows)


@pytest.mark.e2e
def test_flipped_sound_is_the_original_sound(v2_set, tmp_path):
    out = tmp_path / "audio"
    labels = [str(v2_set / "json" / "avqa-test.json"), str(v2_set / "json" / "avqa-train.json")]
    printed = run_here(AUDIO, "--video_dir", str(v2_set / "videos"), "--audio_dir", str(out), "--annotations",
                       *labels).stdout
    assert "16 written" in printed  # 14 videos and 2 mirrored copies
    for flip in FLIPPED:
        a, b = read_wav(out / f"{flip}.wav"), read_wav(out / f"{flip[:-len('_flip')]}.wav")
        assert a[1] == b[1] and np.array_equal(a[0], b[0])


@pytest.mark.e2e
def test_flipped_frames_are_the_original_frames_mirrored(v2_set, tmp_path):
    out = tmp_path / "frames"
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(FLIPPED + ["Ab_cd-EF12g"]) + "\n")
    run_here(FRAMES, "--dir_path", str(v2_set / "videos"), "--dst_path", str(out), "--annotations", str(ids))
    from PIL import Image
    for flip in FLIPPED:
        frames = sorted((out / flip).glob("*.jpg"))
        assert len(frames) == 4
        for f in frames:
            mine = np.asarray(Image.open(f), dtype=np.float32)
            original = np.asarray(Image.open(out / flip[:-len("_flip")] / f.name), dtype=np.float32)
            assert np.abs(mine - original[:, ::-1]).mean() < 2.0 < np.abs(mine - original).mean()


def test_flipped_features_are_those_of_the_mirrored_frames_with_the_original_sound(v2_features):
    feats = v2_features / "feats"
    for flip in FLIPPED:
        source = flip[:-len("_flip")]
        np.testing.assert_allclose(np.load(feats / "vggish" / f"{flip}.npy"),
                                   np.load(feats / "vggish" / f"{source}.npy"), rtol=1e-5, atol=1e-6)
        frames, _ = read_sampled_frames(v2_features / "videos" / f"{source}.mp4", 4)
        runner = Runner("res18_14x14", None, 0, "cpu", False)
        mirrored = runner(B.frames_to_tensor([np.ascontiguousarray(f[:, ::-1]) for f in frames], runner.spec))
        mine = np.load(feats / "res18_14x14" / f"{flip}.npy")
        np.testing.assert_allclose(mine, mirrored, rtol=1e-4, atol=1e-5)
        assert not np.allclose(mine, np.load(feats / "res18_14x14" / f"{source}.npy"), atol=1e-3)
    meta = json.loads((feats / "res18_14x14.json").read_text())
    assert meta["flipped"] == {f: f"{f[:-len('_flip')]}.mp4" for f in FLIPPED} and "mirrored" in meta["flipped_from"]
    assert json.loads((feats / "vggish.json").read_text())["flipped"] == {f: f"{f[:-5]}.wav" for f in FLIPPED}


def test_a_flip_without_its_original_fails_naming_it(v2_set, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("Zz_zzzzzzzz_flip\n")
    proc = run_here(AUDIO, "--video_dir", str(v2_set / "videos"), "--audio_dir", str(tmp_path / "a"),
                    "--annotations", str(ids), check=False)
    assert proc.returncode == 1 and "Zz_zzzzzzzz_flip" in proc.stdout and "Zz_zzzzzzzz to mirror" in proc.stdout


def test_grounding_and_avst_train_and_test_on_v2_ids(v2_features, tmp_path):
    d = v2_features
    flags = ["--audio_dir", str(d / "feats" / "vggish"), "--video_res14x14_dir", str(d / "feats" / "res18_14x14"),
             "--label_train", str(d / "json" / "avqa-train.json"), "--label_val", str(d / "json" / "avqa-val.json"),
             "--label_test", str(d / "json" / "avqa-test.json"), "--quiet", "--tensorboard_dir", ""]
    run_here(GRD, *flags, "--model_save_dir", str(tmp_path / "grd"), "--epochs", "1", "--batch-size", "16")
    log = (tmp_path / "grd" / "main_grounding_gen.log").read_text()
    train_rows = json.loads((d / "json" / "avqa-train.json").read_text())
    val_rows = json.loads((d / "json" / "avqa-val.json").read_text())
    assert f"grounding: {len(real_videos(train_rows))} train / {len(real_videos(val_rows))} val videos" in log
    assert "-1vnMOhaArA_flip" in real_videos(train_rows) and "zZ9_-aaaaaa" in real_videos(val_rows)
    run_here(AVST, *flags, "--model_save_dir", str(tmp_path / "avst"), "--epochs", "1", "--batch-size", "16",
             "--pretrained_grounding", str(tmp_path / "grd" / "main_grounding_gen_best.pt"))
    results = tmp_path / "test.json"
    out = run_here(AVST, *flags, "--mode", "test", "--model_save_dir", str(tmp_path / "avst"), "--results",
                   str(results)).stdout
    assert "Overall" in out
    rows = json.loads((d / "json" / "avqa-test.json").read_text())
    preds = json.loads(results.read_text())["predictions"]
    assert [p["key"] for p in preds] == [question_key(r) for r in rows]
    assert {"Ab_cd-EF12g_#02", "Ab_cd-EF12g_#02_flip"} <= {p["video_id"] for p in preds}
