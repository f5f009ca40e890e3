"""R(2+1)D-18 features: data/videos -> data/feats/r2plus1d_18/<id>.npy [T, 512].

Each 1 fps frame is a 1-frame clip at 112x112. Official weights:
--weights r2plus1d_18-91a641e6.pth (torchvision, Kinetics-400).
"""
import sys

from avqa.features.cli import visual_main

if __name__ == "__main__":
    sys.exit(visual_main("r2plus1d_18", "r2plus1d_18", "./data/feats/r2plus1d_18/", __doc__))
