"""The models: grounding pre-training, AVST, the baseline, and a question-only reference.

Parameter names are those of the original code (checkpoints saved from DataParallel add a
``module.`` prefix), so original checkpoints load unchanged. The structure follows the paper's
figure:

    audio  [B,T,128] --fc_a1,fc_a2-------------------------------+----------------+
    visual [B,T,512,14,14] --spatial grounding (audio-guided)----+--> match head  |
    question [B,14] --question_encoder --> query of the temporal grounding <------+
                                           (attn_a over audio, attn_v over grounded visual)
                                           --> fusion (fc_fusion, x question) --> fc_ans
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

    def __init__(self):
        super().__init__()
        self.fc_a1 = nn.Linear(128, 512)
        self.fc_a2 = nn.Linear(512, 512)
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
        average, grounded = torch.bmm(v, weights).unbind(dim=2)         # [N, C] each, one pass over v
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

    def _build_temporal(self, vocab_size: int, num_answers: int, dropout: float) -> None:
        self.question_encoder = QuestionEncoder(vocab_size)
        self.attn_a = nn.MultiheadAttention(512, 4, dropout=dropout)
        self.attn_v = nn.MultiheadAttention(512, 4, dropout=dropout)
        self.linear11, self.linear12 = nn.Linear(512, 512), nn.Linear(512, 512)
        self.linear21, self.linear22 = nn.Linear(512, 512), nn.Linear(512, 512)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.dropout3, self.dropout4 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.norm1, self.norm2 = nn.LayerNorm(512), nn.LayerNorm(512)
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

    def answer(self, fused: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        """fc_fusion output x question vector -> tanh -> answer logits."""
        return self.fc_ans(torch.tanh(self.fc_fusion(fused) * question))


class AVST(AudioVisualGrounding, TemporalGroundingMixin):
    """The audio-visual spatial-temporal model (AVQA_Fusion_Net in the original)."""

    uses_visual, uses_negatives = True, True
    unused_keys = AVST_UNUSED

    def __init__(self, vocab_size: int = 93, num_answers: int = 42, dropout: float = 0.1):
        super().__init__()
        self._build_temporal(vocab_size, num_answers, dropout)

    def forward(self, audio, visual_posi, visual_nega, question, return_attention: bool = False):
        """audio [B,T,128]; visual_posi/nega [B,T,512,14,14] (nega may be None); question [B,14].

        Returns answer logits [B,A], match logits of the positive and negative frames [B*T,2]
        (None without negatives), and with ``return_attention`` a dict of attention maps.
        """
        B, T = audio.shape[:2]
        q = self.question_encoder(question)
        a = self.encode_audio(audio)                                        # [B, T, 512]
        a_flat = a.flatten(0, 1)
        v_pos, spatial = self.spatial_grounding(a_flat, visual_posi.flatten(0, 1))
        match_pos = self.match(a_flat, v_pos)
        match_neg = None
        if visual_nega is not None:
            v_neg, _ = self.spatial_grounding(a_flat, visual_nega.flatten(0, 1))
            match_neg = self.match(a_flat, v_neg)
        v_pos = v_pos.view(B, T, -1)
        a_att, v_att, a_w, v_w = self.temporal_grounding(q, a, v_pos)
        fused = torch.tanh(torch.cat((a_att + a.mean(dim=1), v_att + v_pos.mean(dim=1)), dim=-1))
        logits = self.answer(fused, q)
        if return_attention:
            return logits, match_pos, match_neg, {"spatial": spatial.view(B, T, -1), "temporal_audio": a_w,
                                                  "temporal_visual": v_w}
        return logits, match_pos, match_neg


class Baseline(nn.Module, TemporalGroundingMixin):
    """The baseline: average-pooled frames and audio straight into the temporal attention."""

    uses_visual, uses_negatives = True, False
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


class QuestionOnly(nn.Module):
    """The 'question only' reference: what can be answered without looking or listening."""

    uses_visual, uses_negatives = False, False
    unused_keys: tuple[str, ...] = ()

    def __init__(self, vocab_size: int = 93, num_answers: int = 42, dropout: float = 0.1):
        super().__init__()
        self.question_encoder = QuestionEncoder(vocab_size)
        self.fc_ans = nn.Linear(512, num_answers)

    def forward(self, audio, visual_posi, visual_nega, question, return_attention: bool = False):
        logits = self.fc_ans(torch.tanh(self.question_encoder(question)))
        return (logits, None, None, {}) if return_attention else (logits, None, None)


QA_MODELS = {"avst": AVST, "baseline": Baseline, "question_only": QuestionOnly}
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
