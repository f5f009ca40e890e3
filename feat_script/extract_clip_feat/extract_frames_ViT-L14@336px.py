"""CLIP frame features for TSPM: data/videos -> data/feats/clip_feats/frame_1fps_ViT-L14@336px/<id>.npy [T, 768].

CLIP ViT-L/14@336px (open_clip), encode_image of each 1 fps frame, not normalised. OpenAI's
preprocessing: bicubic resize of the shorter side to 336, centre crop 336, CLIP mean and std.
Official weights: --weights ViT-L-14-336px.pt (OpenAI's published file; docs/tspm.md says where).
"""
import sys

from avqa.features.cli import clip_frames_main

if __name__ == "__main__":
    sys.exit(clip_frames_main(__doc__))
