"""CLIP QA-prompt features for TSPM: data/json/avqa-*.json -> data/feats/clip_feats/qaPrompt_ViT-L14@336px/<question_id>.npy [1, 768].

The declarative prompt TSPM builds from the question's template and values ("The cello is in this
video."; avqa.features.prompts), encoded by CLIP ViT-L/14@336px's text tower (open_clip), not
normalised. The sentence of every question id is kept in qaPrompt_ViT-L14@336px.sentences.json
beside the folder. --prompt release encodes the release's sentence instead ("e" for the three
templates its lookup misses).
Official weights: --weights ViT-L-14-336px.pt (OpenAI's published file; docs/tspm.md says where).
"""
import sys

from avqa.features.cli import clip_text_main

if __name__ == "__main__":
    sys.exit(clip_text_main("prompt", "./data/feats/clip_feats/qaPrompt_ViT-L14@336px", __doc__))
