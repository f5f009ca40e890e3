"""Test a QA-TIGER checkpoint: the per-type table and the JSON report with every prediction.

    python net_qatiger/main_test.py --model_save_dir path/to/run --checkpoint best \
        --answer2idx path/to/answer2idx.json --label_test data/json_update/avqa-test.json

Reads <model_save_dir>/<checkpoint>.pt: this project's checkpoint, or the release's best.pt (a plain
state_dict; its classes in the order of --answer2idx; its text encoder from the file, or from
--clip_weights where the file holds none). Writes <model_save_dir>/<checkpoint>_<split>.json, which
python -m avqa.evaluate scores. See docs/qatiger.md.
"""
import sys

from avqa.qatiger.run import main

if __name__ == "__main__":
    sys.exit(main("test", description=__doc__))
