"""Pre-train sound-guided spatial grounding: does this second of sound belong to this frame?

    python grounding_gen/main_grd_gen.py                 # writes models_grounding_gen/main_grounding_gen_best.pt
    python grounding_gen/main_grd_gen.py --mode test     # match accuracy on the test videos

One sample per (video, second) of the first 10 seconds of each real train video: the sound of
second s with its own frame (positive) and with one of the first 10 frames of another video
(negative). The ResNet is frozen in the original, so its 14x14 features are read from
--video_res14x14_dir instead of running it on frames. Validation uses the val videos (the
original reused the train list). Defaults: Adam 1e-4, batch 64, 30 epochs, StepLR(8, 0.1).
"""
import sys

from avqa.tasks.grounding import run_grounding

if __name__ == "__main__":
    sys.exit(run_grounding(description=__doc__))
