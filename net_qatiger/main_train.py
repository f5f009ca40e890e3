"""Train QA-TIGER (CVPR 2025) on this project's engine, with the release config's values as flags and defaults.

    python net_qatiger/main_train.py --audio_feat data/feats/vggish \
        --video_feat data/feats/frame_ViT-L14@336px --patch_feat data/feats/visual_tome14 \
        --clip_weights ~/.cache/clip/ViT-L-14-336px.pt --checkpoint qa-tiger

Writes <model_save_dir>/<checkpoint>.pt (best on --label_val), <checkpoint>_last.pt (--resume) and
<checkpoint>.log. --config configs/qa-tiger/vitl14.py takes the release config's values. Every
feature file is checked before the first step. See docs/qatiger.md. Several GPUs:
torchrun --nproc_per_node=N net_qatiger/main_train.py ...
"""
import sys

from avqa.qatiger.run import main

if __name__ == "__main__":
    sys.exit(main("train", description=__doc__))
