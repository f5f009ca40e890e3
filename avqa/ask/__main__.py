"""``python -m avqa.ask``: see avqa/ask/cli.py."""
import sys

from .cli import main

sys.exit(main())
