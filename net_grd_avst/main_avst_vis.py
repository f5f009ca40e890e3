"""Show where AVST looks and listens for a question: one sheet per question.

    python net_grd_avst/main_avst_vis.py                          # 6 test questions of different templates
    python net_grd_avst/main_avst_vis.py --question_ids 3071 3090

Each sampled frame carries the sound-guided 14x14 attention as a heatmap; under it, the
question's temporal attention on that second for sound (a) and vision (v). The header holds the
question, the predicted and the true answer. Sheets go to net_grd_avst/avst_vis/.
"""
import sys

from avqa.visualize import main

if __name__ == "__main__":
    sys.exit(main(grounding=False, description=__doc__))
