"""ResNet-18 14x14 features: data/videos -> data/feats/res18_14x14/<id>.npy [T, 512, 14, 14].

ResNet-18 with layer4 at stride 1, frames resized to 224x224 (no crop). Official weights:
--weights resnet18-5c106cde.pth (torchvision, ImageNet).
"""
import sys

from avqa.features.cli import visual_main

if __name__ == "__main__":
    sys.exit(visual_main("res18_14x14", "resnet18", "./data/feats/res18_14x14/", __doc__))
