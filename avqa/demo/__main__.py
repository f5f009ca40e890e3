"""``python -m avqa.demo``: see avqa/demo/cli.py."""
import sys

from .cli import main

sys.exit(main())
