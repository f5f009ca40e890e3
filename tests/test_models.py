"""The models follow docs/model.md layer by layer and load original-format checkpoints."""
import pytest
import torch
import torchvision

import model_reference as ref
from avqa.models import AVST, BASELINE_UNUSED, LADDER, QA_MODELS, AudioVisualGrounding, Baseline, rung_doc, transfer_grounding
from avqa.checkpoint import load_trained_state

AVST_KEYS = {"fc_a1", "fc_a2", "fc_gl", "fc1", "fc2", "fc3", "fc4", "attn_a", "attn_v", "linear11", "linear12",
             "linear21", "linear22", "norm1", "norm2", "fc_fusion", "fc_ans", "question_encoder"}


def _randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def _inputs(B=2, T=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    audio = torch.rand(B, T, 128, generator=g) * 3
    visual = torch.rand(B, T, 512, 14, 14, generator=g) * 2
    question = torch.randint(1, 93, (B, 14), generator=g)
    question[:, 10:] = 0
    return audio, visual, question


# Modules the original builds but whose forward never uses, at the original's shapes
# (docs/model.md, Parameter names and checkpoint formats).
ORIGINAL_EXTRAS = {
    "fc_a1_pure": lambda: torch.nn.Linear(128, 512), "fc_a2_pure": lambda: torch.nn.Linear(512, 512),
    "fc_v": lambda: torch.nn.Linear(2048, 512), "fc_st": lambda: torch.nn.Linear(512, 512),
    "fc": lambda: torch.nn.Linear(1024, 512), "fc_aq": lambda: torch.nn.Linear(512, 512),
    "fc_vq": lambda: torch.nn.Linear(512, 512), "norm3": lambda: torch.nn.LayerNorm(512),
    "fc_gl": lambda: torch.nn.Linear(1024, 512), "fc1": lambda: torch.nn.Linear(1024, 512),
    "fc2": lambda: torch.nn.Linear(512, 256), "fc3": lambda: torch.nn.Linear(256, 128),
    "fc4": lambda: torch.nn.Linear(128, 2),
}
AVST_EXTRAS = ("fc_a1_pure", "fc_a2_pure", "fc_v", "fc_st", "fc", "fc_aq", "fc_vq", "norm3")
BASELINE_EXTRAS = ("fc_v", "fc_st", "fc", "fc_aq", "fc_vq", "norm3", "fc_gl", "fc1", "fc2", "fc3", "fc4")


def original_state(model, extras):
    """What the original saves: DataParallel keys, plus the modules its forward never used."""
    sd = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    for name in extras:
        sd.update({f"module.{name}.{k}": v for k, v in ORIGINAL_EXTRAS[name]().state_dict().items()})
    resnet = torchvision.models.resnet18().state_dict()
    sd.update({f"module.visual_net.{k}": v for k, v in resnet.items()})
    sd["module.visual_net.conv1_a.weight"] = torch.randn(64, 1, 7, 7)
    return sd


def assert_baseline_follows_equations(sd, audio, visual, question, logits):
    for b in range(len(logits)):
        torch.testing.assert_close(logits[b], ref.baseline_answer_logits(sd, audio[b], visual[b], question[b].tolist()),
                                   rtol=1e-4, atol=1e-4)


def test_parameter_names_are_the_originals():
    names = {k.split(".")[0] for k in AVST().state_dict()}
    assert names == AVST_KEYS
    sd = AVST().state_dict()
    assert sd["question_encoder.word2vec.weight"].shape == (93, 512)
    assert sd["question_encoder.lstm.weight_ih_l0"].shape == (2048, 512)
    assert sd["fc_ans.weight"].shape == (42, 512) and sd["fc_gl.weight"].shape == (512, 1024)


def test_avst_matches_equations():
    model = _randomise(AVST()).eval()
    audio, visual, question = _inputs()
    with torch.no_grad():
        logits, match_pos, _ = model(audio, visual, None, question)
    sd = model.state_dict()
    for b in range(2):
        expect = ref.avst_answer_logits(sd, audio[b], visual[b], question[b].tolist())
        torch.testing.assert_close(logits[b], expect, rtol=1e-4, atol=1e-4)
    a0 = ref.audio_vector(sd, audio[0, 1])
    g0, att0 = ref.grounded_visual(sd, a0, visual[0, 1])
    torch.testing.assert_close(match_pos[1], ref.match_logits(sd, a0, g0), rtol=1e-4, atol=1e-4)


def test_baseline_matches_equations():
    model = _randomise(Baseline(), seed=3).eval()
    audio, visual, question = _inputs(seed=4)
    with torch.no_grad():
        logits = model(audio, visual, None, question)[0]
    assert_baseline_follows_equations(model.state_dict(), audio, visual, question, logits)


def test_original_checkpoint_loads_and_reproduces_equations(tmp_path):
    source = _randomise(AVST(), seed=5)
    path = tmp_path / "avst.pt"
    torch.save(original_state(source, AVST_EXTRAS), path)
    model = AVST()
    load_trained_state(path, "avst", model, None)
    model.eval()
    audio, visual, question = _inputs(seed=6)
    with torch.no_grad():
        logits = model(audio, visual, None, question)[0]
    torch.testing.assert_close(logits[0], ref.avst_answer_logits(source.state_dict(), audio[0], visual[0],
                                                                 question[0].tolist()), rtol=1e-4, atol=1e-4)


def test_original_baseline_checkpoint_loads_and_reproduces_equations(tmp_path):
    source = _randomise(Baseline(), seed=11)
    assert {f"{n}." for n in BASELINE_EXTRAS} | {"visual_net."} == set(BASELINE_UNUSED)
    sd = original_state(source, BASELINE_EXTRAS)
    torch.save(sd, tmp_path / "baseline.pt")
    model = Baseline()
    load_trained_state(tmp_path / "baseline.pt", "baseline", model, None)
    model.eval()
    audio, visual, question = _inputs(seed=12)
    with torch.no_grad():
        logits = model(audio, visual, None, question)[0]
    assert_baseline_follows_equations(source.state_dict(), audio, visual, question, logits)
    torch.save(dict(sd, **{"module.fc_extra.weight": torch.zeros(2, 2)}), tmp_path / "stray.pt")
    with pytest.raises(ValueError, match="unexpected.*fc_extra"):
        load_trained_state(tmp_path / "stray.pt", "baseline", Baseline(), None)


def test_only_the_known_unused_modules_are_ignored(tmp_path):
    sd = original_state(AVST(), AVST_EXTRAS)
    stray = dict(sd, **{"module.fc_extra.weight": torch.zeros(2, 2)})
    torch.save(stray, tmp_path / "stray.pt")
    with pytest.raises(ValueError, match="unexpected.*fc_extra"):
        load_trained_state(tmp_path / "stray.pt", "avst", AVST(), None)
    lacking = {k: v for k, v in sd.items() if not k.startswith("module.attn_v.")}
    torch.save(lacking, tmp_path / "lacking.pt")
    with pytest.raises(ValueError, match="missing.*attn_v"):
        load_trained_state(tmp_path / "lacking.pt", "avst", AVST(), None)


def test_vocabulary_size_mismatch_is_explained(tmp_path):
    torch.save(original_state(AVST(), AVST_EXTRAS), tmp_path / "avst.pt")
    with pytest.raises(ValueError, match="question vocabulary of 93 entries but --label_train gives 80"):
        load_trained_state(tmp_path / "avst.pt", "avst", AVST(vocab_size=80), None)


def test_grounding_checkpoint_and_transfer(tmp_path):
    g = _randomise(AudioVisualGrounding(), seed=7)
    sd = {f"module.{k}": v for k, v in g.state_dict().items()}
    sd.update({f"module.visual_net.{k}": v for k, v in torchvision.models.resnet18().state_dict().items()})
    torch.save(sd, tmp_path / "grd.pt")
    loaded = AudioVisualGrounding()
    load_trained_state(tmp_path / "grd.pt", "grounding", loaded, None)
    audio, visual, _ = _inputs(B=1, T=2, seed=13)
    with torch.no_grad():
        logits, _ = loaded.eval()(audio, visual, return_attention=True)
    a = ref.audio_vector(g.state_dict(), audio[0, 0])
    torch.testing.assert_close(logits[0], ref.match_logits(g.state_dict(), a, ref.grounded_visual(g.state_dict(), a,
                                                                                                   visual[0, 0])[0]),
                               rtol=1e-4, atol=1e-4)
    avst = AVST()
    copied = transfer_grounding(avst, loaded.state_dict())
    assert {k.split(".")[0] for k in copied} == {"fc_a1", "fc_a2", "fc_gl", "fc1", "fc2", "fc3", "fc4"}
    torch.testing.assert_close(avst.fc_gl.weight, g.fc_gl.weight)
    with pytest.raises(ValueError, match="not a 'avst' checkpoint"):
        load_trained_state(tmp_path / "grd.pt", "avst", AVST(), None)


def test_grounding_model_matches_equations():
    model = _randomise(AudioVisualGrounding(), seed=8).eval()
    audio, visual, _ = _inputs(B=1, T=2, seed=9)
    with torch.no_grad():
        logits, att = model(audio, visual, return_attention=True)
    sd = model.state_dict()
    a = ref.audio_vector(sd, audio[0, 1])
    g, expect_att = ref.grounded_visual(sd, a, visual[0, 1])
    torch.testing.assert_close(att[1], expect_att, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(logits[1], ref.match_logits(sd, a, g), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- the ablation ladder

# what each rung builds: AVST's parts, by original name (AVST itself is the top rung, +SG)
RUNG_KEYS = {
    "question_only": {"question_encoder", "fc_ans"},
    "aq": {"question_encoder", "fc_a1", "fc_a2", "fc_fusion", "fc_ans"},
    "vq": {"question_encoder", "fc_fusion", "fc_ans"},
    "avq": {"question_encoder", "fc_a1", "fc_a2", "fc_fusion", "fc_ans"},
    "avq_tg": {"question_encoder", "fc_a1", "fc_a2", "attn_a", "attn_v", "linear11", "linear12", "linear21",
               "linear22", "norm1", "norm2", "fc_fusion", "fc_ans"},
    "avst": AVST_KEYS,
}
RUNG_EQUATIONS = {  # each rung's equation (docs/model.md), written out in model_reference (audio, visual, words)
    "question_only": lambda sd, a, v, w: ref.question_only_logits(sd, w),
    "aq": lambda sd, a, v, w: ref.audio_question_logits(sd, a, w),
    "vq": lambda sd, a, v, w: ref.visual_question_logits(sd, v, w),
    "avq": lambda sd, a, v, w: ref.audio_visual_question_logits(sd, a, v, w),
    "avq_tg": lambda sd, a, v, w: ref.temporal_grounding_logits(sd, a, v, w),
    "avst": lambda sd, a, v, w: ref.avst_answer_logits(sd, a, v, w),
}


def test_the_ladder_is_the_papers_in_order():
    assert [label for label, _ in LADDER.values()] == ["Q", "A+Q", "V+Q", "A+V+Q", "+TG", "+SG"]
    assert LADDER["avst"][1] is AVST and QA_MODELS["question_only"] is LADDER["question_only"][1]
    assert list(RUNG_KEYS) == list(LADDER)


@pytest.mark.parametrize("rung", list(LADDER))
def test_each_rung_is_avst_with_parts_switched_off(rung):
    """A rung's parameters are AVST's, by name and shape: exactly the parts it keeps."""
    cls = LADDER[rung][1]
    full = AVST().state_dict()
    sd = cls().state_dict()
    assert {k.split(".")[0] for k in sd} == RUNG_KEYS[rung]
    assert all(k in full and full[k].shape == v.shape for k, v in sd.items())
    assert (cls.uses_audio, cls.uses_visual) == ("fc_a1" in RUNG_KEYS[rung], rung not in ("question_only", "aq"))
    assert cls.uses_negatives == (rung == "avst")  # the match loss comes with the spatial grounding only
    # main_avst.py --help says what it computes, in the two lines its docstring gives
    from avqa.tasks.cli import build_parser
    doc = rung_doc(rung)
    assert len(doc.splitlines()) == 2
    assert " ".join(f"{rung} ({LADDER[rung][0]}): {doc}".split()) in " ".join(build_parser("avst", "").format_help().split())


@pytest.mark.parametrize("rung", list(LADDER))
def test_each_rung_matches_its_equation(rung):
    """Pinned to docs/model.md, Question-only and the ablation rungs (tests/model_reference.py)."""
    cls = LADDER[rung][1]
    model = _randomise(cls(), seed=21).eval()
    audio, visual, question = _inputs(seed=22)
    sd = model.state_dict()
    with torch.no_grad():  # what a rung does not use, it is not given (the loop loads no such features)
        logits, match_pos, match_neg, maps = model(audio if cls.uses_audio else None,
                                                   visual if cls.uses_visual else None, None, question,
                                                   return_attention=True)
    for b in range(len(logits)):
        torch.testing.assert_close(logits[b], RUNG_EQUATIONS[rung](sd, audio[b], visual[b], question[b].tolist()),
                                   rtol=1e-4, atol=1e-4)
    assert (match_pos is not None) == (rung == "avst") and match_neg is None
    assert set(maps) == ({"spatial"} if rung == "avst" else set()) | (
        {"temporal_audio", "temporal_visual"} if rung in ("avq_tg", "avst") else set())


def test_rungs_differ_where_their_parts_differ():
    """Switching a part off changes the answer (the rungs are not one model under six names)."""
    audio, visual, question = _inputs(seed=23)
    torch.manual_seed(0)
    full = _randomise(AVST(), seed=24).eval()
    out = {}
    for rung, (_, cls) in LADDER.items():
        model = cls().eval()
        model.load_state_dict({k: v for k, v in full.state_dict().items() if k in model.state_dict()})
        with torch.no_grad():
            out[rung] = model(audio, visual, None, question)[0]
    for a, b in zip(list(LADDER), list(LADDER)[1:]):
        assert not torch.allclose(out[a], out[b], atol=1e-3), (a, b)
    # A+Q ignores the pictures, V+Q the sound
    with torch.no_grad():
        aq = LADDER["aq"][1]().eval()
        aq.load_state_dict({k: v for k, v in full.state_dict().items() if k in aq.state_dict()})
        torch.testing.assert_close(aq(audio, visual * 0 + 5, None, question)[0], out["aq"])
        vq = LADDER["vq"][1]().eval()
        vq.load_state_dict({k: v for k, v in full.state_dict().items() if k in vq.state_dict()})
        torch.testing.assert_close(vq(audio * 0 - 3, visual, None, question)[0], out["vq"])


def test_a_rungs_checkpoint_is_not_another_rungs(tmp_path):
    from avqa.checkpoint import FORMAT as CHECKPOINT_FORMAT
    model = LADDER["aq"][1]()
    torch.save({"format": CHECKPOINT_FORMAT, "model": "aq", "state_dict": model.state_dict()}, tmp_path / "aq.pt")
    load_trained_state(tmp_path / "aq.pt", "aq", LADDER["aq"][1](), None)
    with pytest.raises(ValueError, match="holds a 'aq' model, not 'avq'"):
        load_trained_state(tmp_path / "aq.pt", "avq", LADDER["avq"][1](), None)
    # an original AVST state_dict is no rung's: its extra parts are named, not dropped
    torch.save(original_state(AVST(), AVST_EXTRAS), tmp_path / "avst.pt")
    with pytest.raises(ValueError, match="unexpected"):
        load_trained_state(tmp_path / "avst.pt", "avq_tg", LADDER["avq_tg"][1](), None)
