"""Token merging (ToMe, Bolya et al., ICLR 2023) on a timm ViT: the [F, 14, 1024] token features TSPM
reads (docs/tspm.md, "The ToMe token extractor").

In every block, between attention and MLP, ``r`` tokens of one half of the sequence are averaged into
their most similar token of the other half (bipartite soft matching):

- the tokens alternate between set A (even positions) and set B (odd positions); each A token's
  partner is the B token whose key is most similar (cosine of the keys averaged over the heads);
- the ``r`` A tokens with the most similar partners are merged into them; the class token (position
  0) is never merged, and ``r`` is capped at half of the other tokens;
- a merged token is the size-weighted mean of what it holds (its size counts the patches in it), and
  attention adds log(size) to every key's score (proportional attention), so a merged token weighs
  as the patches it stands for;
- the sequence after a merge is the unmerged A tokens in their order, then every B token.

The model returns the final norm's output for every remaining token (head and pooling removed).
With ``r = 25`` on the first 23 of ViT-L/16@384's 24 blocks, 577 tokens become 14 (merge_layers).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def token_counts(tokens: int, schedule: Sequence[int], class_token: bool = True) -> list[int]:
    """The number of tokens after each block when block i merges ``schedule[i]`` (before the cap)."""
    counts = []
    for r in schedule:
        tokens -= max(0, min(r, (tokens - int(class_token)) // 2))
        counts.append(tokens)
    return counts


def merge_layers(tokens: int, keep: int, r: int, depth: int, class_token: bool = True) -> int:
    """The number of leading blocks that merge ``r`` tokens each so that exactly ``keep`` of ``tokens``
    remain: the fewest that get there, the later blocks merge none.

    ValueError, with the ``r`` that would work, when no number of the ``depth`` blocks does.
    """
    counts = token_counts(tokens, [r] * depth, class_token)
    if keep in counts:
        return counts.index(keep) + 1
    if keep == tokens:
        return 0
    working = working_r(tokens, keep, depth, class_token)
    hint = f"; r = {working[0]} does" if working else "; no r does"
    raise ValueError(f"merging r = {r} tokens per block never leaves exactly {keep} of {tokens} tokens in "
                     f"{depth} blocks (it leaves {counts[-1] if counts else tokens} after all){hint}")


def working_r(tokens: int, keep: int, depth: int, class_token: bool = True) -> list[int]:
    """Every ``r`` with which some number of the ``depth`` blocks leaves exactly ``keep`` of ``tokens``."""
    return [q for q in range(1, tokens) if keep in token_counts(tokens, [q] * depth, class_token)]


def bipartite_soft_matching(metric: torch.Tensor, r: int, class_token: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """The merge that ``metric`` [B, N, C] (the keys) decides: a function [B, N, D] -> [B, N - r', D]
    that sums each merged A token into its B partner (r' = r capped at half the unprotected tokens)."""
    n_tokens = metric.shape[1]
    r = min(r, (n_tokens - int(class_token)) // 2)
    if r <= 0:
        return lambda x: x
    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        scores = metric[:, ::2] @ metric[:, 1::2].transpose(-1, -2)   # [B, |A|, |B|]
        if class_token:
            scores[:, 0, :] = -torch.inf
        best, partner = scores.max(dim=-1)
        order = best.argsort(dim=-1, descending=True, stable=True)
        moved = order[:, :r]
        kept = order[:, r:].sort(dim=-1).values
        into = partner.gather(1, moved)

    def merge(x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, ::2], x[:, 1::2]
        batch, _, width = x.shape
        stay = a.gather(1, kept[..., None].expand(batch, -1, width))
        go = a.gather(1, moved[..., None].expand(batch, r, width))
        b = b.scatter_add(1, into[..., None].expand(batch, r, width), go)
        return torch.cat([stay, b], dim=1)

    return merge


def _attention(attn: nn.Module, x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's Attention on ``x`` with log(size) added to every key's score; also the keys averaged
    over the heads [B, N, head_dim], the similarity the merge uses."""
    batch, n, _ = x.shape
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    qkv = attn.qkv(x).reshape(batch, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    bias = None if size is None else size.log()[:, None, None, :, 0].to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = attn.norm(out.transpose(1, 2).reshape(batch, n, attn.attn_dim))
    if gate is not None:
        out = out * gate
    return attn.proj(out), k.mean(1)


class TokenMerging(nn.Module):
    """A timm VisionTransformer that merges ``schedule[i]`` tokens in block i and returns every
    remaining token after the final norm: [B, 3, S, S] -> [B, tokens, width]."""

    def __init__(self, vit: nn.Module, schedule: Sequence[int], proportional_attention: bool = True):
        super().__init__()
        if getattr(vit, "num_prefix_tokens", 1) != int(vit.cls_token is not None):
            raise ValueError("token merging protects only a class token; this ViT has other prefix tokens")
        if len(schedule) > len(vit.blocks):
            raise ValueError(f"a merge schedule of {len(schedule)} blocks for a ViT of {len(vit.blocks)}")
        self.vit = vit
        self.schedule = list(schedule) + [0] * (len(vit.blocks) - len(schedule))
        self.proportional_attention = proportional_attention
        self.class_token = vit.cls_token is not None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        vit = self.vit
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        size = None
        for block, r in zip(vit.blocks, self.schedule):
            out, keys = _attention(block.attn, block.norm1(x), size if self.proportional_attention else None)
            x = x + block.drop_path1(block.ls1(out))
            if r > 0:
                merge = bipartite_soft_matching(keys, r, self.class_token)
                size = torch.ones_like(x[..., :1], dtype=torch.float32) if size is None else size
                weighted = merge(x * size.to(x.dtype))
                size = merge(size)
                x = weighted / size.to(x.dtype)
            x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
        return vit.norm(x)
