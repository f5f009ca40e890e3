"""ResNet-18 pooled features: data/videos -> data/feats/res18/<id>.npy [T, 512].

Resize the shorter side to 256, centre crop 224, ImageNet mean/std. Official weights:
--weights resnet18-5c106cde.pth (torchvision, ImageNet).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _visual import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("res18", "resnet18", "./data/feats/res18/", __doc__))
