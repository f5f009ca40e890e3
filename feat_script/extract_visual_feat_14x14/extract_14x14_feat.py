"""ResNet-18 14x14 features: data/videos -> data/feats/res18_14x14/<id>.npy [T, 512, 14, 14].

ResNet-18 with layer4 at stride 1, frames resized to 224x224 (no crop). Official weights:
--weights resnet18-5c106cde.pth (torchvision, ImageNet).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _visual import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("res18_14x14", "resnet18", "./data/feats/res18_14x14/", __doc__))
