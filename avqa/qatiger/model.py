"""QA-TIGER: question-aware Gaussian experts for audio-visual question answering (Kim et al., CVPR 2025).

The equations, shapes and the differences from the public release are in docs/model.md (## QA-TIGER).
The figure, with B questions, T seconds, P tokens per second, L = 77 word positions and d = 512:

    question tokens [B,L] --quest_encoder (frozen CLIP text)--> sentence [B,E] --quest_proj--> q [B,d]
                                                            \\-> words [B,L,W] --words_proj--> w [B,L,d]
    audio [B,T,128] --audio_proj--+--crs_attn: self + cross-modal + word attention (one layer, both)--> a, v
    video [B,T,768] --video_proj--+
    patch [B,T,P,1024] --patch_proj--> patch_selecter (each second's tokens, queried by that second's v and a)
                                       --> pa, pv [B,T,d]
    at_aggregator: Gaussian experts over a            (q routes, places and sizes E Gaussians in time) --> ga
    vt_aggregator: Gaussian experts over v+pa and v+pv (one routing for both)                          --> gpa, gpv
    quest_grounding(q, [gpa, gpv]) -> f;  quest_grounding(q, [f, ga]) -> relu -> head -> logits [B, answers]

Parameter names are the release's state_dict keys (its ``best.pt`` loads strictly, the frozen text
encoder in OpenAI's CLIP key layout included). Where the release loops or recomputes, this file
computes once: audio and video go through the shared fusion layer as one batch, the second layer of
each expert is applied after the Gaussian pooling over time (it is linear), and the frozen text
encoder's output is kept per distinct question.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import LayerNorm, QuickGELU, Transformer

SIGMA = 9.0           # Gaussian widths are divided by this
MIN_WIDTH = 0.09      # ... after being raised to at least this


def kaiming_linears(module: nn.Module) -> None:
    """Every nn.Linear of ``module`` outside attention: Kaiming-normal weights, zero bias."""
    attention_parts = {id(m) for a in module.modules() if isinstance(a, nn.MultiheadAttention) for m in a.modules()}
    for m in module.modules():
        if isinstance(m, nn.Linear) and id(m) not in attention_parts:
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)


class TextEncoder(nn.Module):
    """CLIP's text tower (open_clip's blocks, OpenAI's key names), frozen: tokens [B,L] -> sentence [B,E],
    word states [B,L,W].

    The sentence vector is the final state at the end-of-text token (the largest id) times
    ``text_projection``; the word states are every position after ``ln_final``. Outputs are kept for
    up to ``cache`` distinct token rows (the weights never change; loading new ones empties it), and
    computed in float32 whatever autocast says.
    """

    def __init__(self, width: int = 768, layers: int = 12, heads: int = 12, embed_dim: int = 768,
                 vocab_size: int = 49408, context_length: int = 77, cache: int = 4096):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads, act_layer=QuickGELU, batch_first=True)
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]))            # unused; OpenAI's file carries it
        self.register_buffer("attn_mask", torch.full((context_length, context_length), float("-inf")).triu(1),
                             persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        self.requires_grad_(False)
        self.cache_size, self._cache = cache, OrderedDict()
        self.register_load_state_dict_post_hook(lambda module, _keys: module._cache.clear())

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [N, L] -> sentence [N, E], words [N, L, W], computed now."""
        x = self.token_embedding(tokens) + self.positional_embedding[:tokens.shape[1]]   # [N, L, W]
        x = self.ln_final(self.transformer(x, attn_mask=self.attn_mask[:tokens.shape[1], :tokens.shape[1]]))
        return x[torch.arange(len(x)), tokens.argmax(dim=-1)] @ self.text_projection, x

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(tokens.device.type, enabled=False):
            if not self.cache_size:
                return self.encode(tokens)
            rows, inverse = torch.unique(tokens, dim=0, return_inverse=True)
            keys = [bytes(r.cpu().numpy()) for r in rows]
            todo = [i for i, k in enumerate(keys) if k not in self._cache]
            if todo:
                sentence, words = self.encode(rows[todo])
                for j, i in enumerate(todo):
                    self._cache[keys[i]] = (sentence[j], words[j])
            for k in keys:
                self._cache.move_to_end(k)
            sentence = torch.stack([self._cache[k][0] for k in keys]).to(tokens.device)[inverse]
            words = torch.stack([self._cache[k][1] for k in keys]).to(tokens.device)[inverse]
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return sentence, words


class QuestionAwareFusion(nn.Module):
    """Audio and video each attend to themselves, to the other modality and to the question's words
    (one layer, shared by both): x + drop(self) + drop(cross) + drop(words) -> norm1 -> + FFN -> norm2.

    ``words=False`` drops the word term (the "no question-aware fusion" rung); its weights stay.
    """

    def __init__(self, d: int = 512, heads: int = 8, dropout: float = 0.1, words: bool = True):
        super().__init__()
        self.qst_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.crs_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.slf_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d, d)
        self.linear2 = nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.words = words

    def forward(self, audio: torch.Tensor, video: torch.Tensor, words: torch.Tensor):
        """audio, video [B,T,d], words [B,L,d] -> the fused audio and video [B,T,d]."""
        x, other = torch.cat((audio, video)), torch.cat((video, audio))                    # [2B, T, d]
        h = x + self.dropout(self_attention(self.slf_attn, x)) \
              + self.dropout(self.crs_attn(x, other, other, need_weights=False)[0])
        if self.words:
            w = words.repeat(2, 1, 1)                                                        # [2B, L, d]
            h = h + self.dropout(self.qst_attn(x, w, w, need_weights=False)[0])
        h = self.norm1(h)
        h = self.norm2(h + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(h))))))
        return h.chunk(2)


def self_attention(attn: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """``attn(x, x, x, need_weights=False)[0]`` of a batch-first nn.MultiheadAttention, without its training
    path's copies: it takes q, k and v apart by indexing a [3, L, N, E] projection, and each index's backward
    fills and adds a tensor of the whole projection. Here one product over the batch's rows feeds
    scaled_dot_product_attention as views. x [N, L, E] -> [N, L, E]."""
    E, h = attn.embed_dim, attn.num_heads
    N, L = x.shape[:2]
    q, k, v = F.linear(x.reshape(N * L, E), attn.in_proj_weight, attn.in_proj_bias) \
        .view(N, L, 3, h, E // h).permute(2, 0, 3, 1, 4)                                   # 3 x [N, h, L, E/h]
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.dropout if attn.training else 0.0)
    return attn.out_proj(out.transpose(1, 2).reshape(N * L, E)).view(N, L, E)


def few_query_attention(attn: nn.MultiheadAttention, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``attn(query, keys, keys, need_weights=False)[0]`` of a batch-first nn.MultiheadAttention with few queries
    and more keys, computed without projecting the keys.

    Per head h, a query's score of key j is q_h . (Wk_h k_j + bk_h) = (Wk_h^T q_h) . k_j + a constant that
    softmax drops; its output is sum_j a_j (Wv_h k_j + bv_h) = Wv_h (sum_j a_j k_j) + bv_h sum_j a_j. So the
    key-side products act on Lq x heads vectors instead of Lk keys: the patch selector's 2 queries over 14
    tokens a second take a sixth of the products of projecting the tokens (the same function; only the
    rounding differs). Attention dropout as the module's.

    query [N, Lq, E], keys [N, Lk, E] -> [N, Lq, E]."""
    E, h = attn.embed_dim, attn.num_heads
    (wq, wk, wv), (bq, _, bv) = attn.in_proj_weight.chunk(3), attn.in_proj_bias.chunk(3)
    N, Lq = query.shape[:2]
    q = F.linear(query, wq, bq).view(N, Lq, h, E // h)                                     # [N, Lq, h, E/h]
    qk = torch.einsum("nqhc,hce->nqhe", q, wk.view(h, E // h, E))                           # [N, Lq, h, E]
    scores = torch.einsum("nqhe,nke->nhqk", qk, keys) * (E // h) ** -0.5                     # [N, h, Lq, Lk]
    weights = F.dropout(scores.softmax(-1), attn.dropout, attn.training)
    pooled = torch.einsum("nhqk,nke->nqhe", weights, keys)                                   # [N, Lq, h, E]
    out = torch.einsum("nqhe,hce->nqhc", pooled, wv.view(h, E // h, E)) \
        + weights.sum(-1).transpose(1, 2)[..., None] * bv.view(h, E // h)                    # [N, Lq, h, E/h]
    return attn.out_proj(out.reshape(N, Lq, E))


class PatchSelector(nn.Module):
    """Each second's tokens attend to each other; that second's video and audio vectors then query them.

    Returns the audio-guided and the video-guided summaries [B,T,d] (in that order, each normed).
    """

    def __init__(self, d: int = 512, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        self.vnorm = nn.LayerNorm(d)
        self.anorm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        self.slf_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.crs_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d))

    def forward(self, patch: torch.Tensor, audio: torch.Tensor, video: torch.Tensor):
        """patch [B,T,P,d], audio and video [B,T,d] -> audio-guided, video-guided [B,T,d]."""
        B, T, P, d = patch.shape
        p = patch.reshape(B * T, P, d)
        p = p + self_attention(self.slf_attn, p)                                            # [BT, P, d]
        query = torch.stack((video, audio), dim=2).reshape(B * T, 2, d)                      # [BT, 2, d]
        out = self.mlp(self.dropout(few_query_attention(self.crs_attn, query, p)))           # [BT, 2, d]
        v, a = out.view(B, T, 2, d).unbind(2)
        return self.anorm(a), self.vnorm(v)


class GaussianExperts(nn.Module):
    """Temporal Gaussian experts: the question routes over E experts (top-K kept, renormalised), and
    places expert e's Gaussian over normalised time t in [0, 1] at centre c_e + tanh(.)/(2E) with width
    sigmoid(.); each kept expert's MLP output is pooled over time by its Gaussian.

    ``streams`` sequences share one routing (the video branch: video + audio-guided patches and video +
    video-guided patches); each gets its own norm (``norm``, or ``anorm``/``vnorm``).
    ``release_pairing``: the release picks, for item b at second t, the experts in the order routed for
    item (b*T + t) mod B of the batch (a gather over a flattened [B*T] axis indexed as if it were [T*B]);
    True reproduces that, so its checkpoints give its answers; False pairs each item with its own routing.
    ``pool="mean"``: the "mean pooling" rung, the streams' means over time (the experts unused).
    """

    def __init__(self, d: int = 512, heads: int = 8, top_k: int = 7, experts: int = 7, streams: int = 1,
                 dropout: float = 0.1, pool: str = "experts", release_pairing: bool = True):
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"QA-TIGER: --topK must be between 1 and --num_experts {experts}, got {top_k}")
        self.top_k, self.n_experts, self.pool, self.release_pairing = top_k, experts, pool, release_pairing
        if streams == 2:
            self.anorm, self.vnorm = nn.LayerNorm(d), nn.LayerNorm(d)
        else:
            self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        self.qst_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.gauss_pred = nn.Sequential(nn.Linear(d, 2 * experts))
        self.router = nn.Sequential(nn.Linear(d, experts))
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d))
                                     for _ in range(experts))
        self.margin = 1 / (2 * experts)
        self.register_buffer("center", torch.linspace(self.margin, 1 - self.margin, experts), persistent=False)

    def norms(self) -> list[nn.LayerNorm]:
        return [self.anorm, self.vnorm] if hasattr(self, "anorm") else [self.norm]

    def route(self, question: torch.Tensor, data: torch.Tensor):
        """question [B,d] over data [B,T,d] -> kept experts [B,K], their weights [B,K], Gaussians [B,K,T]."""
        B, T, _ = data.shape
        guide = self.qst_attn(question[:, None], data, data, need_weights=False)[0][:, 0]    # [B, d]
        probs, kept = self.router(guide).softmax(-1).topk(self.top_k, dim=-1)                # [B, K]
        probs = probs / probs.sum(-1, keepdim=True)
        cw = self.gauss_pred(guide).view(B, self.n_experts, 2)
        centre = (self.center + torch.tanh(cw[..., 0]) * self.margin).gather(1, kept).clamp(0, 1)   # [B, K]
        width = torch.sigmoid(cw[..., 1]).gather(1, kept).clamp(min=MIN_WIDTH) / SIGMA              # [B, K]
        t = torch.linspace(0, 1, T, device=data.device, dtype=data.dtype)                           # [T]
        g = torch.exp(-(t - centre[..., None]) ** 2 / (2 * width[..., None] ** 2))                 # [B, K, T]
        return kept, probs, g / g.amax(-1, keepdim=True)

    def forward(self, question: torch.Tensor, data: torch.Tensor, streams: list[torch.Tensor] | None = None):
        """question [B,d], data [B,T,d] (routes), streams: the sequences pooled ([data] when None).

        Returns the pooled streams, each [B,1,d], and the weight each second gets [B,T] (sum_k p_k g_k(t),
        summing to 1 over t; None with ``pool="mean"``).
        """
        streams = [data] if streams is None else streams
        if self.pool == "mean":
            return [n(s.mean(1, keepdim=True)) for n, s in zip(self.norms(), streams)], None
        B, T, d = data.shape
        kept, probs, g = self.route(question, data)
        owner = torch.arange(B * T, device=data.device).view(B, T) % B if self.release_pairing else \
            torch.arange(B, device=data.device)[:, None].expand(B, T)                       # [B, T]
        chosen = kept[owner]                                                                # [B, T, K]
        # coef[b,t,e]: the weight expert e's output at (b, t) gets in item b's pooled vector
        coef = torch.zeros(B, T, self.n_experts, device=data.device, dtype=g.dtype)
        coef.scatter_add_(2, chosen, (probs[:, :, None] * g).transpose(1, 2))
        w1 = torch.stack([e[0].weight for e in self.experts])                               # [E, d/2, d]
        b1 = torch.stack([e[0].bias for e in self.experts])                                 # [E, d/2]
        w2 = torch.stack([e[2].weight for e in self.experts])                               # [E, d, d/2]
        b2 = torch.stack([e[2].bias for e in self.experts])                                 # [E, d]
        out = []
        for norm, s in zip(self.norms(), streams):
            h = F.relu(torch.einsum("btc,ehc->bteh", s, w1) + b1)                           # [B, T, E, d/2]
            pooled = torch.einsum("bte,bteh->beh", coef.to(h.dtype), h)                      # [B, E, d/2]
            y = torch.einsum("beh,ech->bc", pooled, w2) + coef.sum(1).to(h.dtype) @ b2       # [B, d]
            out.append(norm(y[:, None]))
        weights = (probs[:, :, None] * g).sum(1)
        return out, weights / weights.sum(-1, keepdim=True)


class QuestionGrounding(nn.Module):
    """The question queries a few vectors: norm(mean of them + drop(MLP(attention)))."""

    def __init__(self, d: int = 512, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        self.act = nn.ReLU()                                       # unused, as in the release
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, d))
        self.dropout = nn.Dropout(dropout)

    def forward(self, question: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
        """question [B,d], parts each [B,n,d] -> [B,d]."""
        data = torch.cat(parts, dim=1)                                                       # [B, N, d]
        attended = self.attn(question[:, None], data, data, need_weights=False)[0][:, 0]    # [B, d]
        return self.norm(data.mean(1) + self.dropout(self.mlp(attended)))


class Projection(nn.Module):
    """One linear map to the model width (the release's wrapper, kept for its key names)."""

    def __init__(self, inp: int, d: int):
        super().__init__()
        self.proj = nn.Linear(inp, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class QATiger(nn.Module):
    """The QA-TIGER answerer over pre-extracted VGGish, CLIP-frame and ToMe-token features and CLIP tokens.

    Widths: ``audio_dim``, ``video_dim``, ``patch_dim`` of the features; the text encoder's ``text``
    settings (TextEncoder's arguments: width, layers, heads, embed_dim, ...), whose ``width`` the word
    states and whose ``embed_dim`` the sentence vector have (ViT-L/14@336px: 768 and 768).
    Switches (each on in the paper): ``question_fusion`` (the word term of the fusion layer),
    ``patch_selector`` (off: each second's tokens averaged), ``pool`` ("experts" or "mean"); ``num_experts``
    and ``topK``. ``release_pairing``: GaussianExperts' batch pairing as the release computes it.
    """

    uses_audio = True
    uses_visual = True
    uses_negatives = False
    unused_parameters = True       # the text encoder is frozen; rungs leave some modules out

    def __init__(self, answer_count: int = 42, *, d_model: int = 512, video_dim: int = 768, patch_dim: int = 1024,
                 audio_dim: int = 128, text: dict | None = None, topK: int = 7, num_experts: int = 7,
                 heads: int = 8, question_fusion: bool = True, patch_selector: bool = True, pool: str = "experts",
                 release_pairing: bool = True):
        super().__init__()
        if pool not in ("experts", "mean"):
            raise ValueError(f"QA-TIGER: pool must be 'experts' or 'mean', got {pool!r}")
        self.quest_encoder = TextEncoder(**(text or {}))
        words_dim, sentence_dim = self.quest_encoder.text_projection.shape
        self.patch_selector = patch_selector
        self.audio_proj = Projection(audio_dim, d_model)
        self.video_proj = Projection(video_dim, d_model)
        self.patch_proj = Projection(patch_dim, d_model)
        self.words_proj = Projection(words_dim, d_model)
        self.quest_proj = Projection(sentence_dim, d_model)
        self.crs_attn = QuestionAwareFusion(d_model, heads, words=question_fusion)
        self.patch_selecter = PatchSelector(d_model, heads)
        self.quest_grounding = QuestionGrounding(d_model, heads)
        experts = dict(heads=heads, top_k=topK, experts=num_experts, pool=pool, release_pairing=release_pairing)
        self.at_aggregator = GaussianExperts(d_model, streams=1, **experts)
        self.vt_aggregator = GaussianExperts(d_model, streams=2, **experts)
        self.head = nn.Linear(d_model, answer_count)
        for name, child in self.named_children():
            if name != "quest_encoder":
                kaiming_linears(child)

    def forward(self, audio: torch.Tensor, video: torch.Tensor, patch: torch.Tensor, question: torch.Tensor,
                return_weights: bool = False):
        """audio [B,T,128], video [B,T,768], patch [B,T,P,1024], question: CLIP token ids [B,77].

        Returns logits [B, answer_count]; with ``return_weights`` also the weight each second gets from
        the audio and the video experts, {"audio": [B,T], "video": [B,T]} (None with pool="mean").
        """
        B, T = audio.shape[:2]
        if video.shape[:2] != (B, T) or patch.dim() != 4 or patch.shape[:2] != (B, T):
            raise ValueError(f"QA-TIGER: audio {list(audio.shape)}, video {list(video.shape)} and patch "
                             f"{list(patch.shape)} must be [B,T,.], [B,T,.] and [B,T,P,.]")
        sentence, words = self.quest_encoder(question)                  # [B, E], [B, L, W]
        q = self.quest_proj(sentence)                                   # [B, d]
        w = self.words_proj(words)                                      # [B, L, d]
        a, v = self.crs_attn(self.audio_proj(audio), self.video_proj(video), w)    # [B, T, d] each
        p = self.patch_proj(patch)                                      # [B, T, P, d]
        if self.patch_selector:
            pa, pv = self.patch_selecter(p, a, v)                       # [B, T, d] each
        else:
            pa = pv = p.mean(2)
        (ga,), audio_weights = self.at_aggregator(q, a)                 # [B, 1, d]
        (gpa, gpv), video_weights = self.vt_aggregator(q, v, [v + pa, v + pv])
        fused = self.quest_grounding(q, [gpa, gpv])                     # [B, d]
        fused = self.quest_grounding(q, [fused[:, None], ga])           # [B, d]
        logits = self.head(F.relu(fused))
        if return_weights:
            return logits, {"audio": audio_weights, "video": video_weights}
        return logits
