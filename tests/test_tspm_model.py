"""TSPM: the project's model against the patched release (same checkpoint, same logits) and against
the equations of docs/model.md (## TSPM), module by module."""
import numpy as np
import pytest
import torch

import tspm_reference as ref
from avqa.tspm.model import TSPM, token_seconds

SWITCHES = ("av_attn", "temp_selection", "spatio_perception", "temp_qtgm")


def features(B, T=60, F=10, N=14, seed=0):
    """Random features at the published widths: audio, visual, visual tokens, question, prompt."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, 128, generator=g), torch.randn(B, T, 768, generator=g),
            torch.randn(B, F, N, 1024, generator=g), torch.randn(B, 1, 768, generator=g),
            torch.randn(B, 1, 768, generator=g))


def from_release(release, **kwargs):
    """The project's model loaded, strictly, from the release's checkpoint format."""
    state = {k.removeprefix("module."): v for k, v in ref.release_checkpoint(release).items()}
    model = TSPM(**kwargs)
    model.load_state_dict(state, strict=True)
    return model


@pytest.fixture(scope="module")
def release_pair():
    torch.manual_seed(0)
    release = ref.ReleaseTSPM().eval()
    return release, from_release(release, token_frames="release").eval()


@pytest.mark.e2e  # a full-size model, seconds
def test_same_answers_as_the_release_on_320_questions(release_pair):
    release, model = release_pair
    kept_by_release = []
    release.TemporalPerception.register_forward_hook(lambda m, i, out: kept_by_release.append(out[2][:, 0]))
    diffs, same = [], 0
    for seed in range(5):
        a, v, tok, q, p = features(64, seed=seed)
        with torch.no_grad():
            want = release(a, v, None, tok, q, p)
            got, kept = model(a, v, tok, q, p, return_kept=True)
        assert np.array_equal(kept.numpy(), kept_by_release[-1])
        diffs.append((got - want).abs().max().item())
        same += (got.argmax(1) == want.argmax(1)).sum().item()
        assert len(set(want.argmax(1).tolist())) > 3          # the answers vary, so the comparison can fail
    print(f"\nTSPM vs the patched release, 320 questions: same argmax {same}/320, max |logit diff| {max(diffs):.2e}")
    assert same == 320 and max(diffs) <= 1e-4


@pytest.mark.parametrize("B", [1, 7])
def test_any_batch_size_gives_the_release_answers(release_pair, B):
    release, model = release_pair
    a, v, tok, q, p = features(B, seed=10 + B)
    with torch.no_grad():
        want = release(a, v, None, tok, q, p)
        got = model(a, v, tok, q[:, 0], p[:, 0])              # [B, 768] works as [B, 1, 768] does
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


# ------------------------------------------------------------------ each module against its equation

@pytest.fixture(scope="module")
def small():
    torch.manual_seed(1)
    model = TSPM(top_k=3).eval()
    return model, model.state_dict()


def test_av_attention_matches_equation(small):
    model, sd = small
    a, v = torch.randn(2, 5, 512), torch.randn(2, 5, 512)
    with torch.no_grad():
        out_a, out_v = model.AV_Attn(a, v)
    for b in range(2):
        torch.testing.assert_close(out_a[b], ref.av_layer(sd, a[b], v[b]), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out_v[b], ref.av_layer(sd, v[b], a[b]), rtol=1e-4, atol=1e-4)


def test_temporal_selection_keeps_the_top_k_of_the_prompts_attention(small):
    model, sd = small
    p, v = torch.randn(4, 512), torch.randn(4, 9, 512)
    with torch.no_grad():
        weights = model.TemporalPerception.segment_weights(p, v)
        kept = model.TemporalPerception(p, v, 3)
    for b in range(4):
        w = ref.segment_weights(sd, p[b], v[b])
        torch.testing.assert_close(weights[b], w, rtol=1e-5, atol=1e-6)
        assert kept[b].tolist() == sorted(np.argsort(w.numpy())[-3:].tolist())


def test_spatial_perception_matches_equation(small):
    model, sd = small
    audio, tokens = torch.randn(2, 3, 512), torch.randn(2, 3, 6, 512)
    with torch.no_grad():
        out = model.SpatioPerception(audio, tokens)
    for b in range(2):
        for j in range(3):
            torch.testing.assert_close(out[b, j], ref.spatial(sd, audio[b, j], tokens[b, j]), rtol=1e-4, atol=1e-4)


def test_question_grounding_matches_equation(small):
    model, sd = small
    q, a, v = torch.randn(2, 512), torch.randn(2, 3, 512), torch.randn(2, 3, 512)
    with torch.no_grad():
        a_grd, v_grd = model.QstTempGrd_Module(q, a, v)
    for b in range(2):
        torch.testing.assert_close(a_grd[b], ref.query_block(sd, "QstTempGrd_Module", q[b], a[b]), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(v_grd[b], ref.query_block(sd, "QstTempGrd_Module", q[b], v[b]), rtol=1e-4, atol=1e-4)


def test_whole_model_matches_equations_in_paper_mode(small):
    model, sd = small
    a, v, tok, q, p = features(3, T=8, F=4, N=5, seed=2)
    with torch.no_grad():
        logits, kept = model(a, v, tok, q, p, return_kept=True)
    seconds = token_seconds(8, 4)
    for b in range(3):
        want, want_kept = ref.tspm_logits(sd, a[b], v[b], tok[b], q[b, 0], p[b, 0], 3, seconds)
        assert kept[b].tolist() == want_kept
        torch.testing.assert_close(logits[b], want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ which token frame each kept second reads

def test_token_seconds():
    assert token_seconds(60, 10).tolist() == [0, 6, 12, 19, 25, 32, 38, 45, 51, 58]
    assert token_seconds(7, 7).tolist() == list(range(7))
    with pytest.raises(ValueError, match="at most 5 token frames"):
        token_seconds(5, 6)


@pytest.mark.parametrize("T,F", [(60, 10), (10, 10), (13, 4)])
def test_paper_mode_reads_the_token_frame_nearest_each_kept_second(T, F):
    torch.manual_seed(3)
    model = TSPM(top_k=min(T, 5)).eval()
    a, v, _, q, p = features(4, T=T, F=F, N=3, seed=4)
    tokens = torch.arange(F, dtype=torch.float32).view(1, F, 1, 1).expand(4, F, 3, 1024).contiguous()
    read = []
    model.input_v_patch.register_forward_hook(lambda m, i, out: read.append(i[0][..., 0, 0]))   # [B, k]
    with torch.no_grad():
        _, kept = model(a, v, tokens, q, p, return_kept=True)
    seconds = token_seconds(T, F)
    want = [[ref.nearest_frame(seconds, t) for t in row] for row in kept.tolist()]
    assert read[0].long().tolist() == want
    if F < T:
        assert any(w != list(range(len(w))) for w in want)     # differs from the release's first k frames


def test_release_mode_reads_the_first_k_frames_whatever_was_kept():
    torch.manual_seed(3)
    model = TSPM(top_k=4, token_frames="release").eval()
    a, v, _, q, p = features(2, T=20, F=6, N=3, seed=5)
    tokens = torch.arange(6, dtype=torch.float32).view(1, 6, 1, 1).expand(2, 6, 3, 1024).contiguous()
    read = []
    model.input_v_patch.register_forward_hook(lambda m, i, out: read.append(i[0][..., 0, 0]))
    with torch.no_grad():
        model(a, v, tokens, q, p)
    assert read[0].long().tolist() == [[0, 1, 2, 3]] * 2


# ------------------------------------------------------------------ switches and refusals

@pytest.mark.parametrize("off", SWITCHES + ("all",))
def test_switches_off_build_run_and_keep_the_checkpoint_shapes(off):
    flags = {s: not (off == "all" or off == s) for s in SWITCHES}
    torch.manual_seed(4)
    model = TSPM(top_k=3, **flags).eval()
    full = TSPM(top_k=3)
    assert {k: t.shape for k, t in model.state_dict().items()} == {k: t.shape for k, t in full.state_dict().items()}
    a, v, tok, q, p = features(2, T=6, F=3, N=4, seed=6)
    with torch.no_grad():
        logits, kept = model(a, v, tok, q, p, return_kept=True)
        assert logits.shape == (2, 42) and torch.isfinite(logits).all()
        assert (kept is None) == (not flags["temp_selection"])
        if not flags["spatio_perception"]:                       # the tokens are not read at all
            torch.testing.assert_close(model(a, v, tok * 0 + 5, q, p), logits, rtol=0, atol=0)
        if not flags["av_attn"]:
            model.AV_Attn.layers[0].linear2.bias.add_(1.0)
            torch.testing.assert_close(model(a, v, tok, q, p), logits, rtol=0, atol=0)


def test_top_k_beyond_the_clip_is_refused():
    a, v, tok, q, p = features(1, T=5, F=3, N=2)
    with pytest.raises(ValueError, match=r"--top_k 10 is more than the 5 seconds.*--top_k 5 or less"):
        TSPM(top_k=10)(a, v, tok, q, p)


def test_release_token_frames_need_temporal_selection_and_enough_frames():
    with pytest.raises(ValueError, match="--token_frames release.*--no-Temp_Selection"):
        TSPM(token_frames="release", temp_selection=False)
    with pytest.raises(ValueError, match="--token_frames must be one of paper, release"):
        TSPM(token_frames="first")
    a, v, tok, q, p = features(1, T=12, F=3, N=2)
    with pytest.raises(ValueError, match="first --top_k 4 token frames, but the token files hold 3"):
        TSPM(top_k=4, token_frames="release")(a, v, tok, q, p)


# ------------------------------------------------------------------ training

def test_gradients_match_the_release_and_one_adam_step_trains_what_reaches_the_answer():
    torch.manual_seed(5)
    release = ref.ReleaseTSPM(ref.release_args(top_k=4)).eval()       # eval: no dropout, so gradients compare
    model = from_release(release, top_k=4, token_frames="release").eval()
    a, v, tok, q, p = features(3, T=12, F=5, N=6, seed=7)
    target = torch.tensor([1, 5, 9])
    torch.nn.functional.cross_entropy(release(a, v, None, tok, q, p), target).backward()
    torch.nn.functional.cross_entropy(model(a, v, tok, q, p), target).backward()
    grads = {n: t.grad for n, t in model.named_parameters()}
    release_grads = {n: t.grad for n, t in release.named_parameters()}
    no_grad = {n for n, g in grads.items() if g is None}
    assert no_grad == {n for n, g in release_grads.items() if g is None}
    # the prompt only steers the (index-valued) selection, so neither it nor the selection learns
    assert {n.split(".")[0] for n in no_grad} == {"TemporalPerception", "AV_Attn", "input_qst_prompt"}
    assert {n for n in no_grad if n.startswith("AV_Attn")} == {"AV_Attn.norm1.weight", "AV_Attn.norm1.bias",
                                                              "AV_Attn.norm2.weight", "AV_Attn.norm2.bias"}
    for n, g in grads.items():
        if g is not None:
            torch.testing.assert_close(g, release_grads[n], rtol=1e-3, atol=1e-5, msg=n)

    model.train()
    before = {n: t.detach().clone() for n, t in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(a, v, tok, q, p), target).backward()
    opt.step()
    for n, t in model.named_parameters():
        assert torch.equal(t, before[n]) == (n in no_grad), n


def test_bfloat16_autocast_runs():
    torch.manual_seed(6)
    model = TSPM(top_k=3).eval()
    a, v, tok, q, p = features(2, T=6, F=3, N=4, seed=8)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        logits = model(a, v, tok, q, p)
    assert logits.shape == (2, 42) and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("cross", [False, True])
def test_packed_attention_is_multihead_attention_to_the_last_bit(cross):
    """packed_attention differs from nn.MultiheadAttention only in how its backward assembles the packed
    projection's gradient: outputs and every gradient must be bit-identical while training (dropout on),
    or TSPM's weights would drift from its earlier runs."""
    from avqa.tspm.model import packed_attention
    torch.manual_seed(0)
    attn = torch.nn.MultiheadAttention(64, 4, dropout=0.1, batch_first=True).train()
    x, context = torch.randn(6, 5, 64), torch.randn(6, 7, 64)
    results = []
    for ours in (False, True):
        attn.zero_grad()
        xi, ci = x.clone().requires_grad_(), context.clone().requires_grad_()
        torch.manual_seed(1)                                        # the same dropout masks for both
        if ours:
            out = packed_attention(attn, xi, ci if cross else None)
        else:
            c = ci if cross else xi
            out = attn(xi, c, c, need_weights=False)[0]
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append([out, xi.grad, ci.grad if cross else xi.grad] + [p.grad.clone() for p in attn.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))
    assert results[0][1].abs().sum() > 0
