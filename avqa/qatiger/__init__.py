"""QA-TIGER, the third model family: question-aware Gaussian experts over VGGish, CLIP-frame and ToMe-token
features, with a frozen CLIP text encoder inside the model."""
from avqa.qatiger.model import QATiger

__all__ = ["QATiger"]
