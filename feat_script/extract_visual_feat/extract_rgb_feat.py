"""ResNet-18 pooled features: data/videos -> data/feats/res18/<id>.npy [T, 512].

Resize the shorter side to 256, centre crop 224, ImageNet mean/std. Official weights:
--weights resnet18-5c106cde.pth (torchvision, ImageNet).
"""
import sys

from avqa.features.cli import visual_main

if __name__ == "__main__":
    sys.exit(visual_main("res18", "resnet18", "./data/feats/res18/", __doc__))
