"""ToMe token features for TSPM: data/videos -> data/feats/ToMe_feat/tome14/<id>.npy [F, 14, 1024].

timm's ViT-L/16 at 384x384 with token merging (r = 25 tokens in each of the first 23 blocks: 577
tokens become 14), on F = 10 frames per video at the seconds avqa.tspm.model.token_seconds(T, F),
in time order. Official weights: --weights model.safetensors from the Hugging Face repository
timm/vit_large_patch16_384.augreg_in21k_ft_in1k (or its pytorch_model.bin, or Google's original
.npz). With --frames per_second, QA-TIGER's layout instead: one token frame for every second,
data/feats/visual_tome14/<id>.npy [T, 14, 1024]. See docs/tspm.md, "The ToMe token extractor".
"""
import sys

from avqa.features.tokens import tokens_main

if __name__ == "__main__":
    sys.exit(tokens_main(__doc__))
