"""The models follow SPEC layer by layer and load original-format checkpoints."""
import pytest
import torch
import torchvision

import spec_reference as ref
from avqa.models import AVST, BASELINE_UNUSED, AudioVisualGrounding, Baseline, transfer_grounding
from avqa.train import load_trained_state

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


# Modules the original builds but whose forward never uses (SPEC), at the original's shapes.
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


def assert_baseline_follows_spec(sd, audio, visual, question, logits):
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


def test_avst_matches_spec_equations():
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


def test_baseline_matches_spec_equations():
    model = _randomise(Baseline(), seed=3).eval()
    audio, visual, question = _inputs(seed=4)
    with torch.no_grad():
        logits = model(audio, visual, None, question)[0]
    assert_baseline_follows_spec(model.state_dict(), audio, visual, question, logits)


def test_original_checkpoint_loads_and_reproduces_spec(tmp_path):
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


def test_original_baseline_checkpoint_loads_and_reproduces_spec(tmp_path):
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
    assert_baseline_follows_spec(source.state_dict(), audio, visual, question, logits)
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


def test_grounding_model_matches_spec():
    model = _randomise(AudioVisualGrounding(), seed=8).eval()
    audio, visual, _ = _inputs(B=1, T=2, seed=9)
    with torch.no_grad():
        logits, att = model(audio, visual, return_attention=True)
    sd = model.state_dict()
    a = ref.audio_vector(sd, audio[0, 1])
    g, expect_att = ref.grounded_visual(sd, a, visual[0, 1])
    torch.testing.assert_close(att[1], expect_att, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(logits[1], ref.match_logits(sd, a, g), rtol=1e-4, atol=1e-4)
