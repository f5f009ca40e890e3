"""CLIP question features for TSPM: data/json/avqa-*.json -> data/feats/clip_feats/qst_ViT-L14@336px/<question_id>.npy [1, 768].

The question with its template values in place ("How many cello are in the entire video?"), encoded
by CLIP ViT-L/14@336px's text tower (open_clip), not normalised. The sentence of every question id
is kept in qst_ViT-L14@336px.sentences.json beside the folder. --question release encodes the
release's sentence instead ("How many [ are in the entire video?": its values text read character by
character).
Official weights: --weights ViT-L-14-336px.pt (OpenAI's published file; docs/tspm.md says where).
"""
import sys

from avqa.features.cli import clip_text_main

if __name__ == "__main__":
    sys.exit(clip_text_main("question", "./data/feats/clip_feats/qst_ViT-L14@336px", __doc__))
