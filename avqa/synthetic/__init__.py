"""The embedded default: a synthetic MUSIC-AVQA-format dataset whose answers are known by construction."""
