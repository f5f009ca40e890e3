"""Where the synthetic world's backbone weights are: the file python -m avqa.features.pretrain writes for
each backbone by default (relative to the repository root), the shipped VGGish embedding layer, and the
recipe each is taught with. What the extractors, avqa.ask and the main job's stages read, without the
training command line."""
from __future__ import annotations

from pathlib import Path

DEFAULT_OUT = {"res18": "feat_script/weights/resnet18_synthetic.pth", "vggish": "data/weights/vggish_synthetic.pth",
               "clip": "feat_script/weights/clip_synthetic.pt",
               "vit": "feat_script/weights/vit_tokens_synthetic.safetensors"}
BUNDLED_VGGISH = Path(__file__).resolve().parents[2] / "feat_script" / "weights" / "vggish_synthetic_embedding.pth"
RECIPES = {  # the defaults of each backbone's flags
    "res18": dict(size=8000, heldout=500, epochs=3, lr=2e-3, batch=64, seed=20221),
    "vggish": dict(size=2000, heldout=60, epochs=20, lr=3e-3, batch=64, seed=20222),
    "clip": dict(size=3000, heldout=300, epochs=3, lr=3e-4, batch=32, seed=20223),
    "vit": dict(size=6000, heldout=300, epochs=6, lr=2e-3, batch=64, seed=20224),
}
