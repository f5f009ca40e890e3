"""The ToMe token extractor: timm ViT weights read from files in timm's published formats (made here
from tiny random ViTs), token merging pinned to a per-example reference, and the script end to end."""
import json
import socket

import numpy as np
import pytest
import timm
import torch

from avqa.features.inputs import load_frames
from avqa.features.tokens import extract_tokens, merge_plan
from avqa.features.tome import TokenMerging, bipartite_soft_matching, merge_layers, token_counts
from avqa.features.vit import build_vit, frame_spec
from avqa.tspm.model import token_seconds
from avqa.utils import metadata_path
from conftest import run
from tome_reference import merged_tokens

SCRIPT = "feat_script/extract_ToMe/extract_tome14.py"
# a tiny ViT of the published layout: 32x32 images in 8x8 patches (17 tokens), width 128 (2 heads of 64)
TINY = dict(img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=2)


def tiny_vit(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    vit = timm.create_model("vit_base_patch16_224", pretrained=False, **TINY).eval()
    with torch.no_grad():  # timm's init leaves biases and norms at 0 and 1: give every tensor a value
        for p in vit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return vit


def to_npz(vit, path) -> None:
    """A timm ViT's tensors under the names and layouts of Google's original JAX .npz files."""
    sd = {k: v.detach().numpy() for k, v in vit.state_dict().items()}
    heads, width = vit.blocks[0].attn.num_heads, vit.embed_dim
    w = {"embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
         "embedding/bias": sd["patch_embed.proj.bias"], "cls": sd["cls_token"],
         "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
         "Transformer/encoder_norm/scale": sd["norm.weight"], "Transformer/encoder_norm/bias": sd["norm.bias"],
         "head/kernel": sd["head.weight"].T, "head/bias": sd["head.bias"]}
    for i in range(len(vit.blocks)):
        b, jb = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        att = jb + "MultiHeadDotProductAttention_1/"
        for j, n in enumerate(("query", "key", "value")):
            rows = slice(j * width, (j + 1) * width)
            w[att + n + "/kernel"] = sd[b + "attn.qkv.weight"][rows].T.reshape(width, heads, -1)
            w[att + n + "/bias"] = sd[b + "attn.qkv.bias"][rows].reshape(heads, -1)
        w[att + "out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(heads, -1, width)
        w[att + "out/bias"] = sd[b + "attn.proj.bias"]
        for jn, tn in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            w[f"{jb}{jn}/scale"], w[f"{jb}{jn}/bias"] = sd[b + tn + ".weight"], sd[b + tn + ".bias"]
        for r in (0, 1):
            w[f"{jb}MlpBlock_3/Dense_{r}/kernel"] = sd[f"{b}mlp.fc{r + 1}.weight"].T
            w[f"{jb}MlpBlock_3/Dense_{r}/bias"] = sd[f"{b}mlp.fc{r + 1}.bias"]
    np.savez(path, **w)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The same tiny ViT as model.safetensors, pytorch_model.bin and the original .npz."""
    from safetensors.torch import save_file
    out = tmp_path_factory.mktemp("vit")
    vit = tiny_vit(0)
    save_file(vit.state_dict(), str(out / "model.safetensors"))
    torch.save(vit.state_dict(), out / "pytorch_model.bin")
    to_npz(vit, out / "original.npz")
    return out


@pytest.fixture
def offline(monkeypatch):
    """Any network connection is an error."""
    def refuse(*_a, **_k):
        raise AssertionError("a network connection was attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_release_setting_merges_577_tokens_to_14_in_23_blocks():
    assert merge_layers(577, 14, 25, 24) == 23
    counts = token_counts(577, [25] * 23 + [0])
    assert counts[:2] == [552, 527] and counts[-4:] == [52, 27, 14, 14]  # the cap: 13 of 27, not 25
    assert merge_plan(577, 14, 25, 24, None) == 23
    with pytest.raises(SystemExit, match="--layers 22 with --r 25 leaves 27"):
        merge_plan(577, 14, 25, 24, 22)
    with pytest.raises(ValueError, match="r = 53 does"):  # a 12-block ViT needs a larger r
        merge_layers(577, 14, 25, 12)
    assert 14 in token_counts(577, [53] * 12) and not any(14 in token_counts(577, [r] * 12) for r in range(1, 53))


def test_merging_equals_the_per_example_reference():
    vit = tiny_vit(1)
    images = torch.randn(4, 3, 32, 32)
    for r in (2, 4, 7):
        schedule = [r] * merge_layers(17, token_counts(17, [r] * 4)[-1], r, 4)
        with torch.no_grad():
            ours = TokenMerging(vit, schedule)(images)
        reference = torch.stack([merged_tokens(vit, x, schedule) for x in images])
        assert ours.shape == reference.shape == (4, token_counts(17, schedule)[-1], 128)
        torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_the_class_token_is_never_merged_and_sizes_weigh_the_mean():
    keys = torch.tensor([[[1.0, 0], [1, 0], [0, 1], [0, 1], [1, 0.1]]])  # token 0 matches token 1 best
    merge = bipartite_soft_matching(keys, 2)
    x = torch.arange(5.0).reshape(1, 5, 1)
    # A = 0, 2, 4; B = 1, 3. Tokens 2 and 4 move (to 3 and 1), the class token stays first
    assert merge(x)[0, :, 0].tolist() == [0.0, 1 + 4, 3 + 2]


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin", "original.npz"])
def test_loader_gives_timms_own_output(weights, name, offline):
    """The reference: timm's own pretrained-file loading of the same ViT (for the .npz, its state_dict
    twin: the .npz route must give the network that was exported)."""
    path = weights / name
    twin = weights / ("model.safetensors" if name.endswith(".npz") else name)
    reference = timm.create_model("vit_base_patch16_224", pretrained=True, num_classes=0, **TINY,
                                  pretrained_cfg_overlay={"file": str(twin)}).eval()
    if name.endswith(".npz"):  # the .npz is read into --model_name's architecture
        vit, info = build_vit_npz(path)
    else:  # the architecture comes from the file's shapes, whatever --model_name says
        vit, info = build_vit("vit_large_patch16_384", path)
        assert info["architecture"] == {**TINY, "mlp_ratio": 4.0, "class_token": True}
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(TokenMerging(vit, [])(images), reference.forward_features(images),
                                   atol=1e-5, rtol=1e-5)
    assert info["init"] == "pretrained" and len(info["sha256"]) == 64


def build_vit_npz(path):
    """The tiny architecture registered under a name, as --model_name would give it for a .npz."""
    from timm.models import register_model
    from timm.models.vision_transformer import _create_vision_transformer
    if "vit_tiny_test_npz" not in timm.list_models("vit_tiny_test_npz"):
        @register_model
        def vit_tiny_test_npz(pretrained=False, **kwargs):
            return _create_vision_transformer("vit_base_patch16_224", pretrained=pretrained, **dict(TINY, **kwargs))
    return build_vit("vit_tiny_test_npz", path)


def test_random_init_is_seeded_and_weights_that_do_not_fit_are_refused(tmp_path, offline):
    a, info = build_vit("vit_tiny_patch16_384", None, seed=4)
    b, _ = build_vit("vit_tiny_patch16_384", None, seed=4)
    c, _ = build_vit("vit_tiny_patch16_384", None, seed=5)
    assert info["init"] == "random, seed 4" and info["architecture"]["embed_dim"] == 192
    assert torch.equal(a.blocks[0].attn.qkv.weight, b.blocks[0].attn.qkv.weight)
    assert not torch.equal(a.blocks[0].attn.qkv.weight, c.blocks[0].attn.qkv.weight)
    bad = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a timm ViT state_dict"):
        build_vit(weights=bad)
    with pytest.raises(FileNotFoundError, match="missing.safetensors not found"):
        build_vit(weights=tmp_path / "missing.safetensors")


@pytest.mark.e2e
def test_extractor_end_to_end(tiny_set, weights, tmp_path):
    out = tmp_path / "tome14"
    flags = ["--video_path", str(tiny_set / "videos"), "--output_dir", str(out), "--weights",
             str(weights / "model.safetensors"), "--tokens", "3", "--r", "4", "--sample_frames", "3"]
    run(SCRIPT, *flags, env={"HF_HUB_OFFLINE": "1"})
    files = sorted(out.glob("*.npy"))
    assert len(files) == 14
    meta = json.loads(metadata_path(out).read_text())
    seconds = token_seconds(4, 3).tolist()
    assert meta["token_seconds"] == seconds and meta["shape_per_video"] == [3, 3, 128]
    assert meta["merging"]["layers"] == 4 and meta["merging"]["tokens_after_each_block"] == [13, 9, 5, 3]
    assert meta["weights_sha256"] and meta["init"] == "pretrained"
    # frame j is the frame of second token_seconds[j], in time order, preprocessed as the release does
    vit, _ = build_vit(weights=weights / "model.safetensors")
    spec = frame_spec(vit, (3, 128), "")
    video = sorted((tiny_set / "videos").iterdir())[0]
    frames, _ = load_frames(video, 4, spec, None, seconds)
    x = (frames.float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        expected = TokenMerging(vit, [4] * 4)(x).numpy()
    np.testing.assert_allclose(np.load(out / f"{video.stem}.npy"), expected, atol=1e-5)
    # resume: nothing to do; other merge settings in the same folder are refused, nothing written
    again = extract_tokens(tiny_set / "videos", out, 4, 3, 3, 4, weights=str(weights / "model.safetensors"))
    assert (again.done, again.skipped) == (0, 14)
    before = {f: f.stat().st_mtime_ns for f in files}
    with pytest.raises(SystemExit, match="other settings .*merging"):
        extract_tokens(tiny_set / "videos", out, 4, 3, 3, 5, weights=str(weights / "model.safetensors"))
    assert {f: f.stat().st_mtime_ns for f in files} == before
    with pytest.raises(SystemExit, match="--sample_frames 5"):
        extract_tokens(tiny_set / "videos", tmp_path / "other", 4, 5, 3, 4, weights=str(weights / "model.safetensors"))


@pytest.mark.e2e
def test_a_frame_folder_with_a_numbering_gap_is_refused_naming_the_second(weights, tmp_path, capsys):
    """Frames are read by their number: files 1, 2, 4, 5 never give second 2 the frame of second 3."""
    from PIL import Image
    frames = tmp_path / "frames"
    for vid, numbers in (("a", [1, 2, 3, 4]), ("b", [1, 2, 4, 5])):
        (frames / vid).mkdir(parents=True)
        for n in numbers:
            Image.fromarray(np.full((32, 32, 3), 40 * n, np.uint8)).save(frames / vid / f"{n:08d}.jpg", quality=95)
    report = extract_tokens(frames, tmp_path / "tome", 4, 4, 3, 4, weights=str(weights / "model.safetensors"))
    assert report.exit_code() == 1 and len(report.failed) == 1
    assert f"{frames / 'b'}: no frame numbered 3, the frame of second 2" in report.failed[0]
    assert sorted(p.name for p in (tmp_path / "tome").glob("*.npy")) == ["a.npy"]


def test_per_second_layout_takes_one_frame_a_second_and_its_own_folder():
    from avqa.features.tokens import DEFAULT_OUT, PER_SECOND_OUT, frame_count, tokens_parser
    assert frame_count("per_second", 60, None) == 60 and frame_count("sampled", 60, None) == 10
    assert frame_count("sampled", 4, None) == 4 and frame_count("sampled", 60, 7) == 7
    with pytest.raises(SystemExit, match="--sample_frames 10 with --frames per_second: .* each of the 60 seconds"):
        frame_count("per_second", 60, 10)
    assert tokens_parser("").parse_args([]).output_dir is None  # then DEFAULT_OUT, or PER_SECOND_OUT
    assert (DEFAULT_OUT, PER_SECOND_OUT) == ("./data/feats/ToMe_feat/tome14", "./data/feats/visual_tome14")


@pytest.mark.e2e
def test_per_second_tokens_end_to_end(tiny_set, weights, tmp_path):
    """--frames per_second: [T, tokens, width] per video, frame t the merged tokens of second t's frame."""
    from conftest import run_here
    out = tmp_path / "visual_tome14"
    flags = ["--video_path", str(tiny_set / "videos"), "--output_dir", str(out), "--weights",
             str(weights / "model.safetensors"), "--tokens", "3", "--r", "4"]
    r = run_here(SCRIPT, *flags, "--frames", "per_second", "--sample_frames", "3", check=False)
    assert r.returncode == 1 and "--sample_frames 3 with --frames per_second" in r.stderr and not out.exists()
    run_here(SCRIPT, *flags, "--frames", "per_second")
    meta = json.loads(metadata_path(out).read_text())
    assert meta["token_seconds"] == [0, 1, 2, 3] and meta["shape_per_video"] == [4, 3, 128]
    vit, _ = build_vit(weights=weights / "model.safetensors")
    spec = frame_spec(vit, (3, 128), "")
    video = sorted((tiny_set / "videos").iterdir())[1]
    got = np.load(out / f"{video.stem}.npy")
    assert got.shape == (4, 3, 128)
    for t in range(4):  # second t's frame alone through the network
        frame, _ = load_frames(video, 4, spec, None, [t])
        with torch.no_grad():
            expected = TokenMerging(vit, [4] * 4)((frame.float() / 255 - 0.5) / 0.5).numpy()[0]
        np.testing.assert_allclose(got[t], expected, atol=1e-5)
    assert not np.allclose(got[0], got[3])  # the seconds differ (the clip moves), so the order is tested
