"""QA-TIGER on the engine: train and test run from the scripts and python -m avqa.evaluate scores the report;
the release's config is read as data; bad inputs stop with one sentence, exit 1 and nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import qatiger_reference as ref
from avqa.qatiger.release_config import flag_defaults, read_config
from avqa.qatiger.run import parse
from avqa.tspm.model import TSPM
from conftest import e2e_fixture, run_here

TRAIN, TEST = "net_qatiger/main_train.py", "net_qatiger/main_test.py"
STANDIN_CLIP = Path(__file__).resolve().parents[1] / "feat_script" / "weights" / "clip_synthetic.pt"
WIDTH = 16            # --video_dim and --patch_dim of the tiny set
TEMPLATES = [("How many instruments are sounding in the video?", "[]", '["Audio", "Counting"]', ("one", "two")),
             ("Is the <Object> in the video always playing?", '["cello"]', '["Audio-Visual", "Existential"]',
              ("yes", "no")),
             ("Where is the <FL> sounding <Object>?", '["first", "piano"]', '["Audio-Visual", "Location"]',
              ("left", "right"))]


def rows(videos: list[str], start: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for v in videos:
        for q, values, kind, answers in TEMPLATES:
            out.append({"video_id": v, "question_id": start + len(out), "type": kind, "question_content": q,
                        "templ_values": values, "question_deleted": 0, "anser": answers[rng.integers(2)]})
    return out


def make_set(root: Path, seconds: int = 60, token_frames: int | None = None) -> dict[str, Path]:
    """Annotations (train 4 clips, val 2, test 2) and features of width WIDTH; returns the folders and files."""
    g = torch.Generator().manual_seed(0)
    paths = {k: root / k for k in ("audio", "video", "patch")}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    splits = {"train": [f"v{i}" for i in range(4)], "val": ["v4", "v5"], "test": ["v6", "v7"]}
    for i, (split, videos) in enumerate(splits.items()):
        (root / f"avqa-{split}.json").write_text(json.dumps(rows(videos, 1000 * i, i)))
        paths[split] = root / f"avqa-{split}.json"
        for v in videos:
            np.save(paths["audio"] / f"{v}.npy", torch.randn(seconds, 128, generator=g).numpy())
            np.save(paths["video"] / f"{v}.npy", torch.randn(seconds, WIDTH, generator=g).numpy())
            np.save(paths["patch"] / f"{v}.npy",
                    torch.randn(token_frames or seconds, 14, WIDTH, generator=g).numpy().astype(np.float16))
    return paths


def flags(paths: dict[str, Path], out: Path) -> list[str]:
    return ["--audio_feat", str(paths["audio"]), "--video_feat", str(paths["video"]), "--patch_feat",
            str(paths["patch"]), "--label_train", str(paths["train"]), "--label_val", str(paths["val"]),
            "--label_test", str(paths["test"]), "--video_dim", str(WIDTH), "--patch_dim", str(WIDTH),
            "--d_model", "32", "--clip_weights", str(STANDIN_CLIP), "--model_save_dir", str(out), "--quiet",
            "--tensorboard_dir", "", "--batch-size", "8", "--eval_batch_size", "8", "--epochs", "1"]


RELEASE_CONFIG = '''config = dict(
    type='qa-tiger', seed=713, epochs=15, num_labels=42,
    data=dict(root='./data', batch_size=32, eval_batch_size=32,
              train_annot='./annots/music_avqa/music_avqa_train.json', ans_quelen='./annots/music_avqa/answer2idx.json',
              audio_feat='./feats/vggish', video_feat='./feats/frame_ViT-L14@336px', patch_feat='./feats/visual_tome14',
              quest_feat=None),
    hyper_params=dict(model=dict(d_model=512, video_dim=768, patch_dim=1024, quest_dim=512, topK=7, num_experts=7,
                                 encoder_type='ViT-L/14@336px'),
                      optim=dict(lr=1e-4, encoder_lr=None, min_lr=1e-7, weight_decay=0, betas=(0.95, 0.999)),
                      sched=dict(name='StepLR', gamma=0.1, step_size=8)))
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return make_set(tmp_path_factory.mktemp("qatiger_set"))


@e2e_fixture(scope="module")
def trained(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qatiger_run")
    proc = run_here(TRAIN, *flags(tiny, out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_defaults_are_the_release_recipe():
    cfg = parse([], "train")
    assert (cfg.seed, cfg.epochs, cfg.batch_size, cfg.eval_batch_size, cfg.lr, cfg.betas, cfg.lr_step,
            cfg.lr_gamma) == (713, 15, 32, 32, 1e-4, (0.95, 0.999), 8, 0.1)
    assert (cfg.d_model, cfg.video_dim, cfg.patch_dim, cfg.topK, cfg.num_experts) == (512, 768, 1024, 7, 7)


def test_release_config_is_read_as_data_and_flags_win(tmp_path):
    path = tmp_path / "vitl14.py"
    path.write_text(RELEASE_CONFIG.replace("seed=713", "seed=5").replace("topK=7", "topK=3"))
    cfg = parse(["--config", str(path), "--epochs", "2"], "train")
    assert (cfg.seed, cfg.topK, cfg.epochs, cfg.betas) == (5, 3, 2, (0.95, 0.999))
    assert cfg.audio_feat == "data/feats/vggish" and cfg.answer2idx == "data/annots/music_avqa/answer2idx.json"
    path.write_text(RELEASE_CONFIG + "import os\nos.system('touch ran')\n")
    assert flag_defaults(read_config(path), path)["seed"] == 713 and not Path("ran").exists()


def test_release_config_with_code_in_its_values_is_refused(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("config = dict(seed=__import__('os').getpid())\n")
    with pytest.raises(SystemExit, match="not a literal"):
        read_config(path)


@pytest.mark.e2e
def test_train_and_test_from_the_scripts_and_the_scorer_reads_the_report(tiny, trained):
    ckpt = torch.load(trained / "qa-tiger.pt", weights_only=False)
    assert ckpt["model"] == "qatiger" and any(k.startswith("quest_encoder.") for k in ckpt["state_dict"])
    assert tuple(ckpt["args"]["betas"]) == (0.95, 0.999)
    last = torch.load(trained / "qa-tiger_last.pt", weights_only=False)
    assert tuple(last["optimizer"]["param_groups"][0]["betas"]) == (0.95, 0.999)      # the engine's Adam took them
    proc = run_here(TEST, *flags(tiny, trained))
    assert proc.returncode == 0, proc.stderr
    report = trained / "qa-tiger_avqa-test.json"
    assert len(json.loads(report.read_text())["predictions"]) == 6
    scored = run_here("-m", "avqa.evaluate", str(report), "--annotations", str(tiny["test"]), "--out",
                      str(trained / "scored"))
    assert scored.returncode == 0, scored.stderr
    assert "Overall" in scored.stdout


def refused(args: list[str], folder: Path, *words: str) -> str:
    """The run stops with exit 1, one line on stderr holding ``words``, and writes nothing into ``folder``."""
    before = sorted(folder.rglob("*")) if folder.exists() else []
    proc = run_here(*args, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    for w in words:
        assert w in message, message
    assert (sorted(folder.rglob("*")) if folder.exists() else []) == before
    return message


def release_best(folder: Path, answers: int, text: bool = True) -> Path:
    """A random release-format best.pt of the tiny set's widths (with or without the text tower)."""
    torch.manual_seed(0)
    model = ref.RefQATiger(answers, d=32, video_dim=16, patch_dim=16, text=dict(width=64, layers=4, heads=1,
                                                                                 embed_dim=768))
    state = {k: v for k, v in model.state_dict().items() if text or not k.startswith("quest_encoder.")}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "best.pt")
    return folder / "best.pt"


def answer2idx(path: Path, answers: list[str]) -> Path:
    path.write_text(json.dumps({"ans2ix": {a: i for i, a in enumerate(answers)}, "max_que_len": 24}))
    return path


ANSWERS = ["one", "two", "yes", "no", "left", "right"]


def test_a_best_pt_of_another_model_is_refused_naming_its_keys(tiny, tmp_path):
    torch.save(TSPM().state_dict(), tmp_path / "best.pt")
    msg = refused([TEST, *flags(tiny, tmp_path), "--checkpoint", "best", "--answer2idx",
                   str(answer2idx(tmp_path / "a.json", ANSWERS))], tmp_path, "missing keys", "unexpected keys",
                  "head.weight", "answer_pred_fc.weight")
    assert msg.count(",") > 50          # every key is named, not the first few


def test_release_best_pt_loads_with_the_text_from_the_clip_file(tiny, tmp_path):
    release_best(tmp_path, len(ANSWERS), text=False)
    proc = run_here(TEST, *flags(tiny, tmp_path), "--checkpoint", "best", "--answer2idx",
                    str(answer2idx(tmp_path / "a.json", ANSWERS)))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "best_avqa-test.json").is_file()


def test_release_best_pt_needs_its_answer_order(tiny, tmp_path):
    release_best(tmp_path, len(ANSWERS))
    refused([TEST, *flags(tiny, tmp_path), "--checkpoint", "best"], tmp_path, "--answer2idx")


def test_answer2idx_that_misses_test_answers_is_refused(tiny, tmp_path):
    release_best(tmp_path, 4)
    refused([TEST, *flags(tiny, tmp_path), "--checkpoint", "best", "--answer2idx",
             str(answer2idx(tmp_path / "a.json", ["one", "two", "yes", "no"]))], tmp_path, "does not cover",
            "'left'", "--label_test")


def test_clip_file_of_another_size_is_refused(tiny, tmp_path):
    release_best(tmp_path, len(ANSWERS), text=False)
    from open_clip.model import CLIP
    other = CLIP(512, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
                 text_cfg=dict(context_length=77, vocab_size=49408, width=128, heads=2, layers=1), quick_gelu=True)
    torch.save({k: v for k, v in other.state_dict().items() if k != "attn_mask"}, tmp_path / "clip.pt")
    refused([TEST, *flags(tiny, tmp_path), "--checkpoint", "best", "--answer2idx",
             str(answer2idx(tmp_path / "a.json", ANSWERS)), "--clip_weights", str(tmp_path / "clip.pt")],
            tmp_path, "--clip_weights", "width 128")


def test_token_file_of_10_frames_is_refused(tmp_path):
    short = make_set(tmp_path / "set", token_frames=10)
    out = tmp_path / "models"
    release_best(out, len(ANSWERS))
    refused([TEST, *flags(short, out), "--checkpoint", "best", "--answer2idx",
             str(answer2idx(tmp_path / "a.json", ANSWERS))], out, "--patch_feat", "10 token frames", "T=60")
    refused([TRAIN, *flags(short, out / "train")], out / "train", "--patch_feat", "10 token frames")
