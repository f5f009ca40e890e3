"""Show where the grounding model hears each second's sound: one sheet per clip.

    python grounding_gen/main_grd_gen_vis.py                       # first 6 test clips
    python grounding_gen/main_grd_gen_vis.py --video_ids 90000012   # chosen clips

Each sampled frame carries the sound-guided 14x14 attention as a heatmap, with the probability
that the second's sound belongs to the frame. Sheets go to grounding_gen/models_grd_vis/.
"""
import sys

from avqa.visualize import main

if __name__ == "__main__":
    sys.exit(main(grounding=True, description=__doc__))
