"""TSPM as the public release (GeWu-Lab/TSPM, nets/net.py) computes it, patched only where it cannot run.

The tests and benchmarks/bench_tspm.py compare avqa.tspm.model.TSPM with this. It keeps the
release's structure wherever numerics or speed depend on it: sequence-first nn.MultiheadAttention
(inputs permuted to [L, B, C]), attention weights returned, the temporal module's feed-forward
block computed and then discarded, every token frame projected, and per-element Python loops that
copy the kept seconds and the first k token frames into zero tensors. Parameters carry the
release's names, so ``{"module." + k: v for k, v in ReleaseTSPM(...).state_dict().items()}`` is a
checkpoint in the release's format (its trainer saves an nn.DataParallel wrapper's state_dict).

Patches, each the least that lets the release run:
1. the model builds ``TemporalPerception`` (the release asks for the undefined ``TemporalPerceptionModule``);
2. the token-frame copy returns the tensor it fills (the release returns the undefined ``avisual_patch_select``);
3. zero tensors are made on the input's device (the release calls ``.cuda()``);
4. the settings come from a plain namespace (``release_args``) instead of the release's command-line parser.

The plain equations at the end (``attention``, ``layer_norm``, ...) work from a state_dict, one
example at a time, for pinning each module to docs/model.md (## TSPM).
"""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F


def release_args(top_k: int = 10) -> SimpleNamespace:
    """The release's model settings at their defaults (every module on)."""
    return SimpleNamespace(top_k=top_k, Temp_Selection=True, Spatio_Perception=True, AV_Attn_Module=True,
                           Temp_QTGM=True)


class ReleaseAVLayer(nn.Module):
    """Cross- and self-attention of one modality (one head), post-norm, then a feed-forward block."""

    def __init__(self, d_model=512, nhead=1, dim_feedforward=512, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.cm_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop_ffn, self.drop_cm, self.drop_self, self.drop_out = (nn.Dropout(dropout) for _ in range(4))

    def forward(self, query, other):
        q_seq = query.permute(1, 0, 2)                                  # [T, B, C]
        o_seq = other.permute(1, 0, 2)
        cross = self.cm_attn(q_seq, o_seq, o_seq)[0]
        own = self.self_attn(q_seq, q_seq, q_seq)[0]
        x = self.norm1(q_seq + self.drop_cm(cross) + self.drop_self(own))
        x = self.norm2(x + self.drop_out(self.linear2(self.drop_ffn(F.relu(self.linear1(x))))))
        return x.permute(1, 0, 2)


class ReleaseAVAttn(nn.Module):
    def __init__(self, layer, num_layers=1):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm1 = nn.LayerNorm(512)          # built, never applied (the release passes norm=None)
        self.norm2 = nn.LayerNorm(512)

    def forward(self, audio, visual):
        out_a, out_v = audio, visual
        for layer in self.layers:               # each layer reads the inputs, not the previous layer's output
            out_a = layer(audio, visual)
            out_v = layer(visual, audio)
        return out_a, out_v


class ReleaseQueryBlock(nn.Module):
    """A query vector over a sequence (4 heads) + residual feed-forward + norm, sequence-first."""

    def __init__(self):
        super().__init__()
        self.attn_qst_query = nn.MultiheadAttention(512, 4, dropout=0.1)
        self.qst_query_linear1 = nn.Linear(512, 512)
        self.qst_query_linear2 = nn.Linear(512, 512)
        self.qst_query_visual_norm = nn.LayerNorm(512)
        self.drop1, self.drop2 = nn.Dropout(0.1), nn.Dropout(0.1)

    def block(self, query, key_seq, value_seq):
        """query [B, C] (or [1, S, C] already sequence-first), key/value [S, L, C] sequence-first."""
        q = query.unsqueeze(0) if query.dim() == 2 else query
        attended, weights = self.attn_qst_query(q, key_seq, value_seq)
        attended = attended.squeeze(0) if query.dim() == 2 else attended
        ffn = self.drop2(self.qst_query_linear2(self.drop1(F.relu(self.qst_query_linear1(attended)))))
        return self.qst_query_visual_norm(attended + ffn), weights


class ReleaseTemporalPerception(ReleaseQueryBlock):
    def __init__(self, args):
        super().__init__()
        self.args = args

    def forward(self, audio, visual, prompt):
        B, T, C = audio.shape
        _discarded, weights = self.block(prompt, visual.permute(1, 0, 2), visual.permute(1, 0, 2))  # weights [B, 1, T]
        order = torch.argsort(weights, dim=-1)
        kept = torch.sort(order[:, :, -self.args.top_k:]).values.cpu().numpy()          # [B, 1, k]
        sel_a = torch.zeros(B, self.args.top_k, C, device=audio.device)                 # patch 3
        sel_v = torch.zeros(B, self.args.top_k, C, device=audio.device)
        for b in range(B):
            for slot, t in enumerate(kept.tolist()[b][0]):
                sel_a[b, slot, :] = audio[b, t, :]
                sel_v[b, slot, :] = visual[b, t, :]
        return sel_a, sel_v, kept


class ReleaseGrounding(ReleaseQueryBlock):
    def forward(self, question, audio, visual):
        a = self.block(question, audio.permute(1, 0, 2), audio.permute(1, 0, 2))[0]
        v = self.block(question, visual.permute(1, 0, 2), visual.permute(1, 0, 2))[0]
        return a, v


class ReleaseTokensAttn(nn.Module):
    def __init__(self, d_model=512, nhead=1, dim_feedforward=512, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop_ffn, self.drop_self, self.drop_out = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, tokens):
        x = tokens.permute(1, 0, 2)                                     # [N, B*k, C]
        x = self.norm1(x + self.drop_self(self.self_attn(x, x, x)[0]))
        x = self.norm2(x + self.drop_out(self.linear2(self.drop_ffn(F.relu(self.linear1(x))))))
        return x.permute(1, 0, 2)


class ReleaseSpatio(ReleaseQueryBlock):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.TokensAttn = ReleaseTokensAttn()

    def first_token_frames(self, tokens):
        B, _, N, C = tokens.shape
        picked = torch.zeros(B, self.args.top_k, N, C, device=tokens.device)            # patch 3
        for b in range(B):
            for j in range(self.args.top_k):
                picked[b, j, :, :] = tokens[b, j, :, :]
        return picked                                                                    # patch 2

    def forward(self, audio, tokens, prompt, kept):
        frames = self.first_token_frames(tokens)                        # [B, k, N, C]; kept is not read
        B, K, N, C = frames.shape
        attended = self.TokensAttn(frames.view(B * K, N, C))
        out = self.block(audio.view(B * K, 1, C).permute(1, 0, 2), attended.permute(1, 0, 2),
                         attended.permute(1, 0, 2))[0]                  # [1, B*k, C]
        return out.view(B, K, C)


class ReleaseTSPM(nn.Module):
    def __init__(self, args=None, answer_count=42):
        super().__init__()
        self.args = args or release_args()
        self.input_a = nn.Linear(128, 512)
        self.input_v = nn.Linear(768, 512)
        self.input_v_patch = nn.Linear(1024, 512)
        self.input_qst = nn.Linear(768, 512)
        self.input_qst_prompt = nn.Linear(768, 512)
        self.AV_Attn = ReleaseAVAttn(ReleaseAVLayer(), num_layers=1)
        self.TemporalPerception = ReleaseTemporalPerception(self.args)                   # patch 1
        self.SpatioPerception = ReleaseSpatio(self.args)
        self.QstTempGrd_Module = ReleaseGrounding()
        self.av_fusion_fc = nn.Linear(3072, 512)
        self.answer_pred_fc = nn.Linear(512, answer_count)

    def forward(self, audio, visual, audio_tokens, visual_tokens, question, prompt):
        """audio_tokens is accepted and ignored, as in the release; question/prompt are [B, 1, 768]."""
        a = self.input_a(audio)
        v = self.input_v(visual)
        tokens = self.input_v_patch(visual_tokens)                      # every token frame
        q = self.input_qst(question).squeeze(-2)
        p = self.input_qst_prompt(prompt).squeeze(-2)
        a_av, v_av = self.AV_Attn(a, v)
        a_sel, v_sel, kept = self.TemporalPerception(a, v, p)
        v_sp = self.SpatioPerception(a_sel, tokens, p, kept)
        a_grd, v_grd = self.QstTempGrd_Module(q, a_sel, v_sp)
        fused = torch.tanh(torch.cat([a_grd, a_av.mean(dim=-2), a_sel.mean(dim=-2),
                                      v_grd, v_av.mean(dim=-2), v_sp.mean(dim=-2)], dim=-1))
        return self.answer_pred_fc(torch.tanh(torch.mul(self.av_fusion_fc(fused), q)))


def release_checkpoint(model: ReleaseTSPM) -> dict[str, torch.Tensor]:
    """What the release's trainer saves: the state_dict of nn.DataParallel(model), keys prefixed ``module.``."""
    return {k: v.clone() for k, v in nn.DataParallel(model).state_dict().items()}


# ----------------------------------------------------------------------------- plain equations
# One example at a time from a state_dict (no nn modules): docs/model.md, ## TSPM.

def linear(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def layer_norm(x, sd, name, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def attention(sd, name, queries, keys, heads):
    """Multi-head attention, eval mode: queries [L, C] over keys = values [S, C] -> ([L, C], weights [heads, L, S])."""
    C = queries.shape[-1]
    d = C // heads
    W, bias = sd[f"{name}.in_proj_weight"], sd[f"{name}.in_proj_bias"]
    q = queries @ W[:C].T + bias[:C]
    k = keys @ W[C:2 * C].T + bias[C:2 * C]
    v = keys @ W[2 * C:].T + bias[2 * C:]
    outs, weights = [], []
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        w = torch.softmax(q[:, cols] @ k[:, cols].T / math.sqrt(d), dim=-1)        # [L, S]
        weights.append(w)
        outs.append(w @ v[:, cols])
    return linear(torch.cat(outs, dim=-1), sd, f"{name}.out_proj"), torch.stack(weights)


def ffn_norm(x, sd, prefix, first, second, norm):
    """norm(x + second(relu(first(x)))): the residual feed-forward block."""
    return layer_norm(x + linear(torch.relu(linear(x, sd, f"{prefix}.{first}")), sd, f"{prefix}.{second}"),
                      sd, f"{prefix}.{norm}")


def av_layer(sd, x, other):
    """x, other [T, C]: norm1(x + cross(x over other) + self(x over x)), then the feed-forward block."""
    p = "AV_Attn.layers.0"
    h = x + attention(sd, f"{p}.cm_attn", x, other, 1)[0] + attention(sd, f"{p}.self_attn", x, x, 1)[0]
    return ffn_norm(layer_norm(h, sd, f"{p}.norm1"), sd, p, "linear1", "linear2", "norm2")


def query_block(sd, prefix, query, sequence):
    """query [C] over sequence [L, C] (4 heads), then the residual feed-forward block -> [C]."""
    x = attention(sd, f"{prefix}.attn_qst_query", query[None], sequence, 4)[0][0]
    return ffn_norm(x, sd, prefix, "qst_query_linear1", "qst_query_linear2", "qst_query_visual_norm")


def segment_weights(sd, prompt, visual):
    """prompt [C], visual [T, C] -> the 4 heads' attention weights averaged, [T]."""
    return attention(sd, "TemporalPerception.attn_qst_query", prompt[None], visual, 4)[1].mean(0)[0]


def spatial(sd, audio_t, tokens):
    """audio_t [C] of one kept second, tokens [N, C] of its frame (projected) -> [C]."""
    p = "SpatioPerception.TokensAttn"
    x = layer_norm(tokens + attention(sd, f"{p}.self_attn", tokens, tokens, 1)[0], sd, f"{p}.norm1")
    x = ffn_norm(x, sd, p, "linear1", "linear2", "norm2")
    return query_block(sd, "SpatioPerception", audio_t, x)


def answer(sd, six, q):
    """The six 512-d vectors [a_grd, a_av, a_kept, v_grd, v_av, v_sp] and the question -> logits."""
    fused = linear(torch.tanh(torch.cat(six)), sd, "av_fusion_fc")
    return linear(torch.tanh(fused * q), sd, "answer_pred_fc")


def nearest_frame(seconds, t):
    """The token frame whose second is nearest t; the earlier frame on a tie."""
    return min(range(len(seconds)), key=lambda j: (abs(int(seconds[j]) - t), j))


def tspm_logits(sd, audio, visual, tokens, question, prompt, k, seconds):
    """One question, paper reading, eval mode: audio [T,128], visual [T,768], tokens [F,N,1024],
    question and prompt [768], ``seconds`` the second each token frame shows -> (logits, kept seconds)."""
    a = linear(audio, sd, "input_a")
    v = linear(visual, sd, "input_v")
    q = linear(question, sd, "input_qst")
    p = linear(prompt, sd, "input_qst_prompt")
    a_av, v_av = av_layer(sd, a, v), av_layer(sd, v, a)
    w = segment_weights(sd, p, v)
    kept = sorted(torch.argsort(w)[-k:].tolist())
    a_kept = a[kept]
    v_sp = torch.stack([spatial(sd, a[t], linear(tokens[nearest_frame(seconds, t)], sd, "input_v_patch"))
                        for t in kept])
    a_grd = query_block(sd, "QstTempGrd_Module", q, a_kept)
    v_grd = query_block(sd, "QstTempGrd_Module", q, v_sp)
    six = [a_grd, a_av.mean(0), a_kept.mean(0), v_grd, v_av.mean(0), v_sp.mean(0)]
    return answer(sd, six, q), kept
