"""TSPM: temporal and spatial perception of the cues a question names (Li et al., ACM MM 2024).

The equations, shapes and the differences from the public release are in docs/model.md (## TSPM).
The figure, with B questions, T seconds, F token frames of N tokens each and k kept seconds:

    audio [B,T,128] --input_a---+--AV_Attn (self + cross attention)--> mean_t ------------------+
    visual [B,T,768] --input_v--+                                                               |
        |        prompt [B,768] --input_qst_prompt--> TemporalPerception: keep the top-k seconds |
        |                                                    | audio, visual of those seconds -> mean_t
    tokens [B,F,N,1024] --(each kept second's token frame)--input_v_patch--> SpatioPerception  |
                                   (tokens attend to each other, the kept second's sound queries them)
    question [B,768] --input_qst--> QstTempGrd_Module over the kept audio and the spatial output
                                    --> fusion of six 512-d vectors (av_fusion_fc) x question --> answer_pred_fc

Parameter names are the release's state_dict keys, including the parameters its forward never
uses (TemporalPerception's feed-forward block and norm, AV_Attn.norm1/norm2), so a release
checkpoint (nn.DataParallel keys, ``module.`` stripped) loads strictly. Only what reaches the
answer is computed: the temporal module needs its attention weights alone, and only the token
frames that are read are projected.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..features.seconds import token_seconds

TOKEN_FRAMES = ("paper", "release")


@lru_cache(maxsize=64)
def _nearest_token_frame(T: int, F: int) -> tuple[int, ...]:
    """For each second t < T, the token frame whose second is nearest t (ties: the earlier frame)."""
    seconds = token_seconds(T, F)
    return tuple(np.abs(seconds[None, :] - np.arange(T)[:, None]).argmin(axis=1).tolist())


def _one_vector(x: torch.Tensor, name: str) -> torch.Tensor:
    """[B, D] or [B, 1, D] (the release's feature files keep a leading 1) -> [B, D]."""
    if x.dim() == 3 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() == 2:
        return x
    raise ValueError(f"TSPM: {name} must be [B, D] or [B, 1, D], got {list(x.shape)}")


def packed_attention(attn: nn.MultiheadAttention, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """``attn(x, c, c, need_weights=False)[0]`` of a batch-first nn.MultiheadAttention (c = context, or x itself),
    the same operations in the same order, so the same bits, but cheaper to differentiate.

    nn.MultiheadAttention takes q, k and v from its packed projection by indexing ``proj[0]``, ``proj[1]``,
    ``proj[2]``; each index's backward fills a zero tensor the size of the whole projection, copies its
    gradient in, and the three are added. Here ``unbind`` takes the same views, and its backward writes the
    three gradients into one tensor: the same values (adding a zero is exact), without the fills and adds.
    x [S, L, C], context [S, L', C] -> [S, L, C].
    """
    E, H = attn.embed_dim, attn.num_heads
    x = x.transpose(0, 1)                                                                 # [L, S, C]
    L, S = x.shape[:2]
    if context is None:
        proj = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)                       # [L, S, 3C]
        q, k, v = proj.unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous().unbind(0)
    else:
        context = context.transpose(0, 1)                                                 # [L', S, C]
        w_q, w_kv = attn.in_proj_weight.split([E, E * 2])
        b_q, b_kv = attn.in_proj_bias.split([E, E * 2])
        q = F.linear(x, w_q, b_q)
        kv = F.linear(context, w_kv, b_kv)
        k, v = kv.unflatten(-1, (2, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous().unbind(0)
    Lk = k.shape[0]
    q = q.view(L, S * H, E // H).transpose(0, 1).view(S, H, L, E // H)
    k = k.view(Lk, S * H, E // H).transpose(0, 1).view(S, H, Lk, E // H)
    v = v.view(Lk, S * H, E // H).transpose(0, 1).view(S, H, Lk, E // H)
    out = F.scaled_dot_product_attention(q, k, v, None, attn.dropout if attn.training else 0.0, False)
    out = F.linear(out.permute(2, 0, 1, 3).reshape(S * L, E), attn.out_proj.weight, attn.out_proj.bias)
    return out.view(L, S, E).transpose(1, 0)


class AttentionLayer(nn.Module):
    """A post-norm transformer layer: x + self-attention (+ attention to a context) -> norm1 -> + FFN -> norm2.

    With ``cross`` it is the release's audio-visual layer (a sequence attends to itself and to the
    other modality); without, its token layer (a frame's tokens attend to each other).
    """

    def __init__(self, dim: int = 512, heads: int = 1, ffn: int = 512, dropout: float = 0.1, cross: bool = False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        if cross:
            self.cm_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x [S, L, C] (and context [S, L', C] with ``cross``) -> [S, L, C]."""
        h = x
        if context is not None:
            h = h + self.dropout(packed_attention(self.cm_attn, x, context))
        h = h + self.dropout(packed_attention(self.self_attn, x))
        h = self.norm1(h)
        return self.norm2(h + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(h))))))


class AVAttention(nn.Module):
    """Each modality attends to itself and to the other, through one shared layer.

    The shared layer runs once on audio and visual stacked along the batch. ``norm1``/``norm2``
    exist for the release's checkpoint; its forward never applies them.
    """

    def __init__(self, dim: int = 512):
        super().__init__()
        self.layers = nn.ModuleList([AttentionLayer(dim, heads=1, ffn=512, cross=True)])
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio, visual [B, T, C] -> the attended audio and visual [B, T, C]."""
        both = self.layers[0](torch.cat((audio, visual)), context=torch.cat((visual, audio)))   # [2B, T, C]
        return both.chunk(2)


class QueryAttention(nn.Module):
    """One vector queries a sequence (4 heads), then a residual feed-forward block and a norm.

    The release repeats this block in its temporal, spatial and grounding modules under the same names.
    """

    def __init__(self, dim: int = 512, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.attn_qst_query = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.qst_query_linear1 = nn.Linear(dim, dim)
        self.qst_query_linear2 = nn.Linear(dim, dim)
        self.qst_query_visual_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def head_weights(self, query: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        """query [S, C] over sequence [S, L, C] -> each head's attention weights [S, H, L].

        The scores are computed without projecting the sequence: q_h . (W_k,h x + b_k,h) equals
        (W_k,h^T q_h) . x plus a term constant over x, which the softmax ignores. As in
        nn.MultiheadAttention, the weights pass through attention dropout while training.
        """
        attn = self.attn_qst_query
        C, H = attn.embed_dim, attn.num_heads
        w_q, w_k = attn.in_proj_weight[:C], attn.in_proj_weight[C:2 * C]
        q = F.linear(query, w_q, attn.in_proj_bias[:C]).view(-1, H, C // H) * (C // H) ** -0.5   # [S, H, d]
        q_in = torch.einsum("shd,hdc->shc", q, w_k.view(H, C // H, C))                         # [S, H, C]
        weights = torch.softmax(torch.einsum("shc,slc->shl", q_in, sequence), dim=-1)          # [S, H, L]
        return F.dropout(weights, attn.dropout, self.training)

    def attend(self, query: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        """query [S, C], sequence [S, L, C] -> [S, C].

        Each head pools the raw sequence and projects the pooled vector once
        (sum_l w_l (W_v x_l + b_v) = W_v (sum_l w_l x_l) + b_v sum_l w_l), so no sequence element is projected.
        """
        attn = self.attn_qst_query
        C, H = attn.embed_dim, attn.num_heads
        weights = self.head_weights(query, sequence)                                            # [S, H, L]
        pooled = torch.einsum("shl,slc->shc", weights, sequence)                                # [S, H, C]
        w_v, b_v = attn.in_proj_weight[2 * C:].view(H, C // H, C), attn.in_proj_bias[2 * C:].view(H, C // H)
        heads = torch.einsum("shc,hdc->shd", pooled, w_v) + weights.sum(-1, keepdim=True) * b_v  # [S, H, d]
        x = attn.out_proj(heads.reshape(-1, C))                                                 # [S, C]
        ffn = self.dropout(self.qst_query_linear2(self.dropout(F.relu(self.qst_query_linear1(x)))))
        return self.qst_query_visual_norm(x + ffn)


class TemporalPerception(QueryAttention):
    """Which seconds does the question's prompt point at? The k seconds its attention weighs most.

    Only the attention weights are used (the release discards the attended vector and its
    feed-forward block; their parameters stay for loading).
    """

    def segment_weights(self, prompt: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """prompt [B, C], visual [B, T, C] -> the head-averaged attention weights [B, T]."""
        return self.head_weights(prompt, visual).mean(dim=1)

    def forward(self, prompt: torch.Tensor, visual: torch.Tensor, k: int) -> torch.Tensor:
        """prompt [B, C], visual [B, T, C] -> the kept seconds [B, k], ascending.

        Indices carry no gradient, so the weights are computed without building a graph.
        """
        with torch.no_grad():
            return self.segment_weights(prompt, visual).topk(k, dim=1).indices.sort(dim=1).values


class SpatioPerception(QueryAttention):
    """Where in each kept second's frame is the sound? Tokens attend to each other, then the sound queries them."""

    def __init__(self, dim: int = 512):
        super().__init__(dim)
        self.TokensAttn = AttentionLayer(dim, heads=1, ffn=512)

    def forward(self, audio: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """audio [B, k, C] of the kept seconds, tokens [B, k, N, C] of their frames -> [B, k, C]."""
        B, k, N, C = tokens.shape
        tokens = self.TokensAttn(tokens.reshape(B * k, N, C))                           # [B*k, N, C]
        return self.attend(audio.reshape(B * k, C), tokens).view(B, k, C)


class QuestionGrounding(QueryAttention):
    """The question queries the kept audio and the spatial output (one block, run on both at once)."""

    def forward(self, question: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor):
        """question [B, C], audio and visual [B, k, C] -> the grounded audio and visual [B, C]."""
        return self.attend(question.repeat(2, 1), torch.cat((audio, visual))).chunk(2)


class TSPM(nn.Module):
    """The TSPM answerer over pre-extracted CLIP, VGGish and ToMe-token features.

    Switches (each on in the paper): ``av_attn`` (AV_Attn; off: the projected features),
    ``temp_selection`` (keep the top_k seconds; off: all T), ``spatio_perception`` (off: the kept
    seconds' frame features), ``temp_qtgm`` (question grounding; off: the means over the kept
    seconds). Every module is built whatever the switches, so every variant has the release's
    state_dict. ``token_frames``: "paper" reads, for each kept second, the token frame nearest it
    (``token_seconds``); "release" reads token frames 0..k-1 whatever was kept, as the release does.
    """

    uses_audio = True
    uses_visual = True
    uses_negatives = False
    # the temporal module and the prompt's projection only choose indices: they never get a gradient
    unused_parameters = True

    def __init__(self, answer_count: int = 42, *, top_k: int = 10, temp_selection: bool = True,
                 spatio_perception: bool = True, av_attn: bool = True, temp_qtgm: bool = True,
                 token_frames: str = "paper", audio_dim: int = 128, visual_dim: int = 768,
                 token_dim: int = 1024, text_dim: int = 768, hidden: int = 512):
        super().__init__()
        if token_frames not in TOKEN_FRAMES:
            raise ValueError(f"--token_frames must be one of {', '.join(TOKEN_FRAMES)}, got {token_frames!r}")
        if token_frames == "release" and not temp_selection:
            raise ValueError("--token_frames release reads the first top_k token frames, which needs temporal "
                             "selection: drop --no-Temp_Selection or use --token_frames paper")
        if top_k < 1:
            raise ValueError(f"--top_k must be at least 1, got {top_k}")
        self.top_k, self.token_frames = top_k, token_frames
        self.temp_selection, self.spatio_perception = temp_selection, spatio_perception
        self.av_attn, self.temp_qtgm = av_attn, temp_qtgm

        self.input_a = nn.Linear(audio_dim, hidden)
        self.input_v = nn.Linear(visual_dim, hidden)
        self.input_v_patch = nn.Linear(token_dim, hidden)
        self.input_qst = nn.Linear(text_dim, hidden)
        self.input_qst_prompt = nn.Linear(text_dim, hidden)
        self.AV_Attn = AVAttention(hidden)
        self.TemporalPerception = TemporalPerception(hidden)
        self.SpatioPerception = SpatioPerception(hidden)
        self.QstTempGrd_Module = QuestionGrounding(hidden)
        self.av_fusion_fc = nn.Linear(6 * hidden, hidden)
        self.answer_pred_fc = nn.Linear(hidden, answer_count)

    def read_token_frames(self, tokens: torch.Tensor, kept: torch.Tensor | None, T: int) -> torch.Tensor:
        """tokens [B, F, N, D] -> the token frame each kept second reads, [B, k, N, D] (all T seconds when kept is None)."""
        B, F_ = tokens.shape[:2]
        if self.token_frames == "release":
            if F_ < self.top_k:
                raise ValueError(f"--token_frames release reads the first --top_k {self.top_k} token frames, "
                                 f"but the token files hold {F_}: lower --top_k or use --token_frames paper")
            return tokens[:, :self.top_k]
        nearest = torch.tensor(_nearest_token_frame(T, F_), device=tokens.device)      # [T]
        if kept is None:
            return tokens[:, nearest]
        return tokens[torch.arange(B, device=tokens.device)[:, None], nearest[kept]]

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, visual_tokens: torch.Tensor,
                question: torch.Tensor, prompt: torch.Tensor, return_kept: bool = False):
        """audio [B,T,128], visual [B,T,768], visual_tokens [B,F,N,1024], question and prompt [B,768] or [B,1,768].

        Returns answer logits [B, answer_count], and with ``return_kept`` also the kept seconds
        [B, k] in ascending order (None when temporal selection is off).
        """
        B, T = audio.shape[:2]
        if visual.shape[:2] != (B, T) or visual_tokens.dim() != 4 or visual_tokens.shape[0] != B:
            raise ValueError(f"TSPM: audio {list(audio.shape)}, visual {list(visual.shape)} and visual_tokens "
                             f"{list(visual_tokens.shape)} must be [B,T,.], [B,T,.] and [B,F,N,.]")
        a = self.input_a(audio)                                                  # [B, T, C]
        v = self.input_v(visual)                                                 # [B, T, C]
        q = self.input_qst(_one_vector(question, "question"))                    # [B, C]
        p = self.input_qst_prompt(_one_vector(prompt, "prompt"))                 # [B, C]

        a_av, v_av = self.AV_Attn(a, v) if self.av_attn else (a, v)              # [B, T, C] each

        kept = None
        a_kept, v_kept = a, v
        if self.temp_selection:
            if self.top_k > T:
                raise ValueError(f"--top_k {self.top_k} is more than the {T} seconds of each clip: "
                                 f"pass --top_k {T} or less")
            kept = self.TemporalPerception(p, v, self.top_k)                     # [B, k]
            index = kept.unsqueeze(-1).expand(-1, -1, a.shape[-1])
            a_kept, v_kept = a.gather(1, index), v.gather(1, index)              # [B, k, C] each

        if self.spatio_perception:
            tokens = self.input_v_patch(self.read_token_frames(visual_tokens, kept, T))   # [B, k, N, C]
            v_sp = self.SpatioPerception(a_kept, tokens)                         # [B, k, C]
        else:
            v_sp = v_kept

        if self.temp_qtgm:
            a_grd, v_grd = self.QstTempGrd_Module(q, a_kept, v_sp)               # [B, C] each
        else:
            a_grd, v_grd = a_kept.mean(dim=1), v_sp.mean(dim=1)

        fused = torch.cat((a_grd, a_av.mean(dim=1), a_kept.mean(dim=1),
                           v_grd, v_av.mean(dim=1), v_sp.mean(dim=1)), dim=-1)   # [B, 6C]
        logits = self.answer_pred_fc(torch.tanh(self.av_fusion_fc(torch.tanh(fused)) * q))
        return (logits, kept) if return_kept else logits
