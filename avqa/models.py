"""The models: grounding pre-training, AVST, the baseline, and a question-only reference.

Parameter names are those of the original code (checkpoints saved from DataParallel add a
``module.`` prefix), so original checkpoints load unchanged. The structure follows the paper's
figure:

    audio  [B,T,128] --fc_a1,fc_a2-------------------------------+----------------+
    visual [B,T,512,14,14] --spatial grounding (audio-guided)----+--> match head  |
    question [B,14] --question_encoder --> query of the temporal grounding <------+
                                           (attn_a over audio, attn_v over grounded visual)
                                           --> fusion (fc_fusion, x question) --> fc_ans

The paper's ablation ladder (Q, A+Q, V+Q, A+V+Q, +temporal grounding, +spatial grounding = AVST)
is AVST with parts of this figure switched off (``LADDER`` at the end): a part switched off is not
built, so every rung's parameter names are a subset of AVST's.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Modules the original AVST checkpoint carries but whose forward never uses (loading ignores them).
AVST_UNUSED = ("fc_a1_pure.", "fc_a2_pure.", "fc_v.", "fc_st.", "fc.", "fc_aq.", "fc_vq.", "norm3.", "visual_net.")
BASELINE_UNUSED = ("fc_v.", "fc_st.", "fc.", "fc_aq.", "fc_vq.", "norm3.", "visual_net.", "fc_gl.",
                   "fc1.", "fc2.", "fc3.", "fc4.")
GROUNDING_UNUSED = ("visual_net.",)


class QuestionEncoder(nn.Module):
    """Words -> tanh(embedding) -> one-layer LSTM -> tanh([h; c]) -> fc: a 512-d question vector."""

    def __init__(self, vocab_size: int, dim: int = 512):
        super().__init__()
        self.word2vec = nn.Embedding(vocab_size, dim)
        self.lstm = nn.LSTM(dim, dim, 1)
        self.fc = nn.Linear(2 * dim, dim)

    def forward(self, question: torch.Tensor) -> torch.Tensor:   # [B, L] word ids
        x = torch.tanh(self.word2vec(question)).transpose(0, 1)     # [L, B, 512]
        _, (h, c) = self.lstm(x)                                    # [1, B, 512] each
        return self.fc(torch.tanh(torch.cat((h, c), dim=2)[0]))     # [B, 512]


class AudioVisualGrounding(nn.Module):
    """Audio encoder, sound-guided spatial grounding and the audio-visual match head.

    This is the whole grounding pre-training model (grounding_gen); AVST starts from its weights.
    """

    unused_keys = GROUNDING_UNUSED

    def __init__(self, audio: bool = True, spatial: bool = True):
        """``audio``: the audio encoder; ``spatial``: the grounding and the match head (AVST's rungs leave them out)."""
        super().__init__()
        if audio:
            self.fc_a1 = nn.Linear(128, 512)
            self.fc_a2 = nn.Linear(512, 512)
        if spatial:
            self.fc_gl = nn.Linear(1024, 512)
            self.fc1 = nn.Linear(1024, 512)
            self.fc2 = nn.Linear(512, 256)
            self.fc3 = nn.Linear(256, 128)
            self.fc4 = nn.Linear(128, 2)

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:     # [..., 128] -> [..., 512]
        return self.fc_a2(F.relu(self.fc_a1(audio)))

    def spatial_grounding(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where in the frame is the sound? audio [N,512], visual [N,512,14,14] -> ([N,512], [N,196]).

        Attention is a softmax over the 196 positions of the cosine between each position and the
        sound; the grounded vector is the attention-weighted sum of the L2-normalised positions,
        concatenated with the frame average and projected by fc_gl. Normalising, and the average, are
        folded into two matrix products instead of materialising a normalised copy of the map (the map
        may be stored channels-last, which makes both products read it contiguously).
        """
        v = visual.flatten(2)                                           # [N, C, P]
        inv_norm = torch.linalg.vector_norm(v, dim=1).clamp_min(1e-12).reciprocal()   # [N, P]
        a = F.normalize(audio, dim=-1)                                  # [N, C]
        logits = torch.bmm(a.unsqueeze(1), v).squeeze(1) * inv_norm     # [N, P] cosine similarities
        attention = torch.softmax(logits, dim=-1)
        weights = torch.stack((torch.full_like(attention, 1.0 / v.shape[2]), attention * inv_norm), dim=2)
        # v @ weights, written as (weights^T @ v^T)^T: the same sums to the last bit, forward and backward, but a
        # product with 2 rows runs faster on the CPU than one with 2 columns (docs/speed.md, The main job)
        average, grounded = torch.bmm(weights.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2).unbind(dim=2)
        return self.fc_gl(torch.tanh(torch.cat((average, grounded), dim=-1))), attention

    def match(self, audio: torch.Tensor, grounded: torch.Tensor) -> torch.Tensor:
        """Does this sound belong to this frame? [N,512] x2 -> logits [N,2] (1 = yes)."""
        x = torch.cat((audio, grounded), dim=-1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return self.fc4(x)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, return_attention: bool = False):
        """audio [B,T,128], visual [B,T,512,14,14] -> match logits [B*T, 2] (grounding pre-training)."""
        a = self.encode_audio(audio).flatten(0, 1)
        grounded, attention = self.spatial_grounding(a, visual.flatten(0, 1))
        logits = self.match(a, grounded)
        return (logits, attention) if return_attention else logits


class TemporalGroundingMixin:
    """Question encoder, question-guided temporal attention over audio and visual, and the answer head."""

    def _build_temporal(self, vocab_size: int, num_answers: int, dropout: float, attention: bool = True,
                        fusion: bool = True) -> None:
        """``attention``: the temporal grounding; ``fusion``: fc_fusion (AVST's rungs leave them out)."""
        self.question_encoder = QuestionEncoder(vocab_size)
        if attention:
            self.attn_a = nn.MultiheadAttention(512, 4, dropout=dropout)
            self.attn_v = nn.MultiheadAttention(512, 4, dropout=dropout)
            self.linear11, self.linear12 = nn.Linear(512, 512), nn.Linear(512, 512)
            self.linear21, self.linear22 = nn.Linear(512, 512), nn.Linear(512, 512)
            self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
            self.dropout3, self.dropout4 = nn.Dropout(dropout), nn.Dropout(dropout)
            self.norm1, self.norm2 = nn.LayerNorm(512), nn.LayerNorm(512)
        if fusion:
            self.fc_fusion = nn.Linear(1024, 512)
        self.fc_ans = nn.Linear(512, num_answers)

    def temporal_grounding(self, question: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor):
        """Which seconds matter for this question? question [B,512], audio/visual [B,T,512].

        Returns the attended audio and visual vectors [B,512] and the attention weights [B,T] of each.
        """
        q = question.unsqueeze(0)                                   # [1, B, 512]: the query
        v = visual.transpose(0, 1)                                  # [T, B, 512]
        v_att, v_w = self.attn_v(q, v, v)
        v_att = v_att.squeeze(0)
        v_att = self.norm1(v_att + self.dropout2(self.linear12(self.dropout1(F.relu(self.linear11(v_att))))))
        a = audio.transpose(0, 1)
        a_att, a_w = self.attn_a(q, a, a)
        a_att = a_att.squeeze(0)
        a_att = self.norm2(a_att + self.dropout4(self.linear22(self.dropout3(F.relu(self.linear21(a_att))))))
        return a_att, v_att, a_w.squeeze(1), v_w.squeeze(1)

    def answer(self, fused: torch.Tensor | None, question: torch.Tensor) -> torch.Tensor:
        """fc_fusion output x question vector -> tanh -> answer logits (nothing fused: tanh(question) -> fc_ans)."""
        return self.fc_ans(torch.tanh(question if fused is None else self.fc_fusion(fused) * question))


class AVST(AudioVisualGrounding, TemporalGroundingMixin):
    """The audio-visual spatial-temporal model (AVQA_Fusion_Net in the original).

    Four switches name the parts of the paper's figure; the ablation rungs (below) turn some off,
    and a part turned off is neither built nor computed: ``uses_audio`` (the audio encoder),
    ``uses_visual`` (the 14x14 maps), ``temporal`` (question-guided temporal grounding) and
    ``spatial`` (sound-guided spatial grounding, its match head and match loss).
    """

    uses_audio, uses_visual, temporal, spatial = True, True, True, True
    uses_negatives = True                   # the match loss's negative frames: they come with ``spatial``
    unused_keys = AVST_UNUSED

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.uses_negatives = cls.spatial
        if (cls.temporal or cls.spatial) and not (cls.uses_audio and cls.uses_visual):
            raise TypeError(f"{cls.__name__}: temporal and spatial grounding need both audio and visual")

    def __init__(self, vocab_size: int = 93, num_answers: int = 42, dropout: float = 0.1):
        super().__init__(audio=self.uses_audio, spatial=self.spatial)
        self._build_temporal(vocab_size, num_answers, dropout, attention=self.temporal,
                             fusion=self.uses_audio or self.uses_visual)

    def ground(self, a: torch.Tensor, visual_posi: torch.Tensor, visual_nega: torch.Tensor | None):
        """Spatial grounding of each sampled second, and the match logits of its positive and negative frames.

        a [B,T,512], visual_posi/nega [B,T,512,14,14] -> grounded visual [B,T,512], attention [B,T,196],
        match logits [B*T,2] of the positive and (None without negatives) the negative frames.
        """
        B, T = a.shape[:2]
        a_flat = a.flatten(0, 1)
        v_pos, spatial = self.spatial_grounding(a_flat, visual_posi.flatten(0, 1))
        match_pos = self.match(a_flat, v_pos)
        match_neg = None
        if visual_nega is not None:
            v_neg, _ = self.spatial_grounding(a_flat, visual_nega.flatten(0, 1))
            match_neg = self.match(a_flat, v_neg)
        return v_pos.view(B, T, -1), spatial.view(B, T, -1), match_pos, match_neg

    @staticmethod
    def fuse(a: torch.Tensor | None, v: torch.Tensor | None, a_att: torch.Tensor | None,
             v_att: torch.Tensor | None) -> torch.Tensor | None:
        """tanh([a_att + mean_t(a); v_att + mean_t(v)]) [B,1024], fc_fusion's input.

        Without temporal grounding (a_att, v_att None) the means alone; a modality switched off gives
        its half as zeros; with neither, None (the question alone is answered).
        """
        present = next((x for x in (a, v) if x is not None), None)
        if present is None:
            return None
        halves = []
        for x, att in ((a, a_att), (v, v_att)):
            if x is None:
                halves.append(present.new_zeros(present.shape[0], present.shape[2]))
            else:
                halves.append(x.mean(dim=1) if att is None else att + x.mean(dim=1))
        return torch.tanh(torch.cat(halves, dim=-1))

    def forward(self, audio, visual_posi, visual_nega, question, return_attention: bool = False):
        """audio [B,T,128]; visual_posi/nega [B,T,512,14,14] (nega may be None); question [B,14].

        Returns answer logits [B,A], match logits of the positive and negative frames [B*T,2]
        (None without negatives, or without spatial grounding), and with ``return_attention`` a dict
        of attention maps.
        """
        q = self.question_encoder(question)
        maps = {}
        a = self.encode_audio(audio) if self.uses_audio else None             # [B, T, 512]
        v = match_pos = match_neg = None
        if self.spatial:                                                     # sound-guided, per second
            v, maps["spatial"], match_pos, match_neg = self.ground(a, visual_posi, visual_nega)
        elif self.uses_visual:                                               # the frame average, per second
            v = visual_posi.mean(dim=(3, 4))
        a_att = v_att = None
        if self.temporal:
            a_att, v_att, maps["temporal_audio"], maps["temporal_visual"] = self.temporal_grounding(q, a, v)
        logits = self.answer(self.fuse(a, v, a_att, v_att), q)
        if return_attention:
            return logits, match_pos, match_neg, maps
        return logits, match_pos, match_neg


class Baseline(nn.Module, TemporalGroundingMixin):
    """The baseline: average-pooled frames and audio straight into the temporal attention."""

    uses_audio, uses_visual, uses_negatives = True, True, False
    unused_keys = BASELINE_UNUSED

    def __init__(self, vocab_size: int = 93, num_answers: int = 42, dropout: float = 0.1):
        super().__init__()
        self.fc_a1 = nn.Linear(128, 512)
        self.fc_a2 = nn.Linear(512, 512)
        self._build_temporal(vocab_size, num_answers, dropout)

    def forward(self, audio, visual_posi, visual_nega, question, return_attention: bool = False):
        q = self.question_encoder(question)
        a = self.fc_a2(F.relu(self.fc_a1(audio)))                           # [B, T, 512]
        v = visual_posi.mean(dim=(3, 4))                                    # [B, T, 512]
        a_att, v_att, a_w, v_w = self.temporal_grounding(q, a, v)
        logits = self.answer(torch.tanh(torch.cat((a_att, v_att), dim=-1)), q)
        if return_attention:
            return logits, None, None, {"temporal_audio": a_w, "temporal_visual": v_w}
        return logits, None, None


# ----------------------------------------------------------------------------- the ablation ladder
# Each rung is AVST with parts switched off. Its docstring's first two lines say what it computes
# (the --model help and the README show them); its equation is in docs/model.md and pinned in tests/model_reference.py.


class QuestionOnly(AVST):
    """Q: q = question_encoder(words); answer = fc_ans(tanh(q)).
    No audio, no visual, no fusion: what the question alone tells."""

    uses_audio, uses_visual, temporal, spatial = False, False, False, False
    unused_keys: tuple[str, ...] = ()


class AudioQuestion(AVST):
    """A+Q: a = mean over the T sampled seconds of fc_a2(relu(fc_a1(vggish))); nothing visual;
    answer = fc_ans(tanh(fc_fusion(tanh([a; 0])) * q)), AVST's fusion with the visual half zero."""

    uses_audio, uses_visual, temporal, spatial = True, False, False, False


class VisualQuestion(AVST):
    """V+Q: v = mean over the T seconds and the 14x14 positions of the ResNet-18 map; nothing heard;
    answer = fc_ans(tanh(fc_fusion(tanh([0; v])) * q)), AVST's fusion with the audio half zero."""

    uses_audio, uses_visual, temporal, spatial = False, True, False, False


class AudioVisualQuestion(AVST):
    """A+V+Q: a and v pooled over the T seconds as in A+Q and V+Q, no grounding of either;
    answer = fc_ans(tanh(fc_fusion(tanh([a; v])) * q))."""

    uses_audio, uses_visual, temporal, spatial = True, True, False, False


class TemporalGrounding(AVST):
    """+TG: attn_a over the T audio vectors and attn_v over the T frame averages, the question as query;
    answer from tanh([a_att + mean a; v_att + mean v]) as AVST; no spatial grounding, no match loss."""

    uses_audio, uses_visual, temporal, spatial = True, True, True, False


# --model name -> (the paper's label, the model), bottom to top; the top rung is the full AVST
# (+SG: each second's frame grounded by its sound)
LADDER = {
    "question_only": ("Q", QuestionOnly),
    "aq": ("A+Q", AudioQuestion),
    "vq": ("V+Q", VisualQuestion),
    "avq": ("A+V+Q", AudioVisualQuestion),
    "avq_tg": ("+TG", TemporalGrounding),
    "avst": ("+SG", AVST),
}
AVST_RUNG_DOC = """+SG: the full AVST; each second's frame is grounded by its sound, fc_gl(tanh([avg; grd])),
before the temporal attention; loss + 0.5 CE(match); starts from the grounding checkpoint."""


def rung_doc(name: str) -> str:
    """The two lines that say what a rung computes (its docstring's, without the leading label)."""
    label, cls = LADDER[name]
    doc = AVST_RUNG_DOC if cls is AVST else cls.__doc__
    lines = [line.strip() for line in doc.strip().splitlines()[:2]]
    return "\n".join([lines[0].removeprefix(f"{label}: "), *lines[1:]])


QA_MODELS = {"baseline": Baseline, **{name: cls for name, (_, cls) in LADDER.items()}}
GROUNDING_TRANSFER = ("fc_a1.", "fc_a2.", "fc_gl.", "fc1.", "fc2.", "fc3.", "fc4.")


def transfer_grounding(avst: AVST, grounding_state: dict[str, torch.Tensor]) -> list[str]:
    """Start AVST from the grounding model: copy fc_a1, fc_a2, fc_gl and fc1..fc4; returns the keys copied."""
    state = {k.removeprefix("module."): v for k, v in grounding_state.items()}
    picked = {k: v for k, v in state.items() if k.startswith(GROUNDING_TRANSFER)}
    missing = [p for p in GROUNDING_TRANSFER if not any(k.startswith(p) for k in picked)]
    if missing:
        raise ValueError(f"the grounding checkpoint lacks {', '.join(m.rstrip('.') for m in missing)}")
    avst.load_state_dict(picked, strict=False)
    return sorted(picked)
