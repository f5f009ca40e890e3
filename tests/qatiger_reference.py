"""QA-TIGER computed the way its release computes it, written from the equations of docs/model.md (## QA-TIGER).

The tests compare avqa.qatiger.model.QATiger with this, and benchmarks/bench_qatiger.py times it as
the release's computation path. It keeps the release's shape where speed or numerics depend on it:
sequence-first attention (inputs [L, B, C]) that also returns its weights, the fusion layer run once
for audio and once for video, every expert's two-layer MLP applied to every second before the
experts are chosen, the Gaussian of each kept expert built one at a time (with its normalising
constant, then divided by its maximum), the chosen outputs pooled expert by expert, and the frozen
text encoder run on every batch. Its parameters carry the release's names, so its state_dict is a
``best.pt`` in the release's format.

The batch pairing of the experts is the release's: the outputs of every expert at every (item,
second) are laid out item-major, [B*T, E, C], and the routing order is read for row r from item
r mod B (the routing [B, K] tiled T times), so item b at second t uses the order routed for item
(b*T + t) mod B.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import LayerNorm, QuickGELU, Transformer


def mlp(d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d))


class Lin(nn.Module):
    """``proj``: the release wraps each input projection in a module of this one field."""

    def __init__(self, i: int, o: int):
        super().__init__()
        self.proj = nn.Linear(i, o)

    def forward(self, x):
        return self.proj(x)


class RefText(nn.Module):
    """CLIP's text tower, run on every call (sequence-first blocks, as OpenAI's code runs them)."""

    def __init__(self, width=768, layers=12, heads=12, embed_dim=768, vocab_size=49408, context_length=77):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.transformer = Transformer(width, layers, heads, act_layer=QuickGELU, batch_first=False)
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed_dim) * width ** -0.5)
        self.logit_scale = nn.Parameter(torch.ones([]))
        mask = torch.empty(context_length, context_length).fill_(float("-inf")).triu_(1)
        self.register_buffer("mask", mask, persistent=False)
        self.requires_grad_(False)

    def forward(self, tokens):
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.transformer(x, attn_mask=self.mask)      # open_clip's blocks run sequence-first inside
        x = self.ln_final(x)
        eot = tokens.argmax(-1)
        return torch.stack([x[i, eot[i]] for i in range(len(x))]) @ self.text_projection, x


class RefFusion(nn.Module):
    """a' = norm2(h + FFN(h)), h = norm1(a + SelfAttn(a) + CrossAttn(a; v) + WordAttn(a; words)); same for v."""

    def __init__(self, d=512, heads=8):
        super().__init__()
        for name in ("qst_attn", "crs_attn", "slf_attn"):
            setattr(self, name, nn.MultiheadAttention(d, heads, dropout=0.1))
        self.linear1, self.linear2 = nn.Linear(d, d), nn.Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(0.1)

    def one(self, x, other, words):
        x, other, words = x.transpose(0, 1), other.transpose(0, 1), words.transpose(0, 1)      # [L, B, d]
        w_att, _ = self.qst_attn(x, words, words)
        h = x + self.dropout(self.slf_attn(x, x, x)[0]) + self.dropout(self.crs_attn(x, other, other)[0]) \
            + self.dropout(w_att)
        h = self.norm1(h)
        h = self.norm2(h + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(h))))))
        return h.transpose(0, 1)

    def forward(self, a, v, words):
        return self.one(a, v, words), self.one(v, a, words)


class RefPatch(nn.Module):
    """Per second: tokens + SelfAttn(tokens); [video, audio] query them; MLP; audio and video summaries normed."""

    def __init__(self, d=512, heads=8):
        super().__init__()
        self.vnorm, self.anorm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(0.1)
        self.slf_attn = nn.MultiheadAttention(d, heads, dropout=0.1)
        self.crs_attn = nn.MultiheadAttention(d, heads, dropout=0.1)
        self.mlp = mlp(d)

    def forward(self, patch, a, v):
        B, T, P, d = patch.shape
        tokens = patch.reshape(B * T, P, d).transpose(0, 1)                                # [P, BT, d]
        tokens = tokens + self.slf_attn(tokens, tokens, tokens)[0]
        queries = torch.cat([v.reshape(1, B * T, d), a.reshape(1, B * T, d)], dim=0)         # [2, BT, d]
        out = self.mlp(self.dropout(self.crs_attn(queries, tokens, tokens)[0].transpose(0, 1)))
        return self.anorm(out[:, 1].reshape(B, T, d)), self.vnorm(out[:, 0].reshape(B, T, d))


def gaussian(t, centre, width):
    """N(t; centre, width) = exp(-(t - centre)^2 / (2 width^2)) / (width sqrt(2 pi))."""
    return torch.exp(-(t - centre) ** 2 / (2 * width ** 2)) / (width * math.sqrt(2 * math.pi))


class RefExperts(nn.Module):
    """Route with the question, place a Gaussian per kept expert, pool each kept expert's MLP output by it."""

    def __init__(self, d=512, heads=8, top_k=7, n=7, two=False):
        super().__init__()
        self.k, self.n = top_k, n
        if two:
            self.anorm, self.vnorm = nn.LayerNorm(d), nn.LayerNorm(d)
        else:
            self.norm = nn.LayerNorm(d)
        self.qst_attn = nn.MultiheadAttention(d, heads, dropout=0.1)
        self.gauss_pred = nn.Sequential(nn.Linear(d, 2 * n))
        self.router = nn.Sequential(nn.Linear(d, n))
        self.experts = nn.ModuleList(mlp(d) for _ in range(n))

    def weights(self, question, data):
        B, T, _ = data.shape
        seq = data.transpose(0, 1)
        guide = self.qst_attn(question[None], seq, seq)[0][0]                                # [B, d]
        probs = F.softmax(self.router(guide), dim=-1)
        top_p, top_i = torch.topk(probs, self.k, dim=-1)
        top_p = top_p / top_p.sum(-1, keepdim=True)
        raw = self.gauss_pred(guide).view(B, self.n, 2)
        margin = 1 / (2 * self.n)
        centres = torch.linspace(margin, 1 - margin, self.n, device=raw.device) + torch.tanh(raw[..., 0]) * margin
        widths = torch.sigmoid(raw[..., 1])
        t = torch.linspace(0, 1, T, device=data.device)
        curves = []
        for j in range(self.k):
            c = centres.gather(1, top_i[:, j:j + 1]).clamp(0, 1)
            w = widths.gather(1, top_i[:, j:j + 1]).clamp(min=0.09) / 9
            g = gaussian(t[None], c, w)                                                     # [B, T]
            curves.append(g / g.max(-1, keepdim=True).values)
        return top_p, top_i, torch.stack(curves, 1)                                         # [B,K], [B,K], [B,K,T]

    def pool(self, x, top_p, top_i, curves):
        B, T, d = x.shape
        every = torch.stack([e(x) for e in self.experts], dim=2).reshape(B * T, self.n, d)   # [BT, E, d]
        order = top_i.repeat(T, 1)                                                          # row r: item r mod B
        picked = every.gather(1, order[..., None].expand(-1, -1, d)).reshape(B, T, self.k, d)
        per_expert = torch.cat([curves[:, j:j + 1] @ picked[:, :, j] for j in range(self.k)], 1)   # [B, K, d]
        return top_p[:, None] @ per_expert                                                  # [B, 1, d]

    def forward(self, question, data, streams=None):
        p, i, g = self.weights(question, data)
        if streams is None:
            return self.norm(self.pool(data, p, i, g))
        return self.anorm(self.pool(streams[0], p, i, g)), self.vnorm(self.pool(streams[1], p, i, g))


class RefGrounding(nn.Module):
    """f = norm(mean(parts) + MLP(Attn(q; parts)))."""

    def __init__(self, d=512, heads=8):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=0.1)
        self.mlp = mlp(d)
        self.dropout = nn.Dropout(0.1)

    def forward(self, q, parts):
        data = torch.cat([p.transpose(0, 1) for p in parts], 0)                           # [N, B, d]
        att = self.attn(q[None], data, data)[0][0]
        return self.norm(data.mean(0) + self.dropout(self.mlp(att)))


class RefQATiger(nn.Module):
    """The whole answerer; ``state_dict()`` is a release-format best.pt (42 answers in the release)."""

    def __init__(self, answers=42, d=512, video_dim=768, patch_dim=1024, audio_dim=128, text=None, top_k=7, n=7):
        super().__init__()
        self.quest_encoder = RefText(**(text or {}))
        words_dim, sentence_dim = self.quest_encoder.text_projection.shape
        self.audio_proj, self.video_proj = Lin(audio_dim, d), Lin(video_dim, d)
        self.patch_proj, self.words_proj, self.quest_proj = Lin(patch_dim, d), Lin(words_dim, d), Lin(sentence_dim, d)
        self.crs_attn = RefFusion(d)
        self.patch_selecter = RefPatch(d)
        self.quest_grounding = RefGrounding(d)
        self.at_aggregator = RefExperts(d, top_k=top_k, n=n)
        self.vt_aggregator = RefExperts(d, top_k=top_k, n=n, two=True)
        self.head = nn.Linear(d, answers)

    def forward(self, audio, video, patch, tokens):
        sentence, words = self.quest_encoder(tokens)
        q, w = self.quest_proj(sentence), self.words_proj(words)
        a, v = self.crs_attn(self.audio_proj(audio), self.video_proj(video), w)
        pa, pv = self.patch_selecter(self.patch_proj(patch), a, v)
        ga = self.at_aggregator(q, a)
        gpa, gpv = self.vt_aggregator(q, v, [v + pa, v + pv])
        f = self.quest_grounding(q, [gpa, gpv])
        f = self.quest_grounding(q, [f[:, None], ga])
        return self.head(F.relu(f))
