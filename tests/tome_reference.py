"""A plain reading of token merging on a timm ViT, one image at a time with Python loops, to pin
avqa.features.tome to: tokens alternate between sets A and B, each A token picks its most similar B
token by the cosine of the head-averaged keys, the r best-matched A tokens (never the class token)
are averaged into their partners weighted by how many patches each holds, and attention adds the
log of those counts to the keys' scores."""
from __future__ import annotations

import math

import torch


def _attend(attn, x, sizes):
    """One image's attention [N, D] with log(size) on the keys' scores; also the mean key [N, head_dim]."""
    n = x.shape[0]
    qkv = attn.qkv(x).reshape(n, 3, attn.num_heads, attn.head_dim)
    heads, keys = [], []
    for h in range(attn.num_heads):
        q, k, v = qkv[:, 0, h], qkv[:, 1, h], qkv[:, 2, h]
        scores = (q @ k.T) / math.sqrt(attn.head_dim)
        scores = scores + torch.tensor([math.log(s) for s in sizes])[None, :]
        heads.append(scores.softmax(dim=-1) @ v)
        keys.append(k)
    out = torch.cat(heads, dim=-1)
    return attn.proj(out), sum(keys) / len(keys)


def _merge(x, sizes, keys, r):
    """One image's merge of r tokens: the new tokens and their sizes."""
    n = len(sizes)
    r = min(r, (n - 1) // 2)
    if r <= 0:
        return x, sizes
    a = list(range(0, n, 2))
    b = list(range(1, n, 2))
    unit = [keys[i] / keys[i].norm() for i in range(n)]
    best, partner = [], []
    for i in a:
        sims = [float(unit[i] @ unit[j]) for j in b]
        j = max(range(len(b)), key=lambda m: sims[m])
        best.append(-math.inf if i == 0 else sims[j])
        partner.append(j)
    ranked = sorted(range(len(a)), key=lambda m: -best[m])
    moved, kept = ranked[:r], sorted(ranked[r:])
    totals = [x[j] * sizes[j] for j in b]
    counts = [sizes[j] for j in b]
    for m in moved:
        i, j = a[m], partner[m]
        totals[j] = totals[j] + x[i] * sizes[i]
        counts[j] = counts[j] + sizes[i]
    rows = [x[a[m]] for m in kept] + [totals[j] / counts[j] for j in range(len(b))]
    return torch.stack(rows), [sizes[a[m]] for m in kept] + counts


@torch.no_grad()
def merged_tokens(vit, image: torch.Tensor, schedule: list[int]) -> torch.Tensor:
    """[3, S, S] -> [tokens, D]: the ViT's tokens after the final norm, merging schedule[i] in block i."""
    x = vit._pos_embed(vit.patch_embed(image[None]))[0]
    sizes = [1.0] * x.shape[0]
    for i, block in enumerate(vit.blocks):
        out, keys = _attend(block.attn, block.norm1(x), sizes)
        x = x + out
        r = schedule[i] if i < len(schedule) else 0
        x, sizes = _merge(x, sizes, keys, r)
        x = x + block.mlp(block.norm2(x))
    return vit.norm(x)
