"""TSPM, the second model family: temporal and spatial perception over CLIP, VGGish and ToMe-token features."""
from avqa.tspm.model import TSPM, token_seconds

__all__ = ["TSPM", "token_seconds"]
