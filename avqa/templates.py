"""The 33 MUSIC-AVQA question templates as data: each one's question_content (with its <placeholders>, spelled
exactly as the annotation files spell it, trailing space and full-width question mark included), its modality and
its kind, in the order the synthetic generator draws them from (avqa.synthetic.questions, which answers each from a
scene) and avqa.ask lists them."""
from __future__ import annotations

TEMPLATES: tuple[tuple[str, str, str], ...] = (
    # Audio
    ("Is there a <Object> sound?", "Audio", "Counting"),
    ("Are there <Object> and <Object> sound? ", "Audio", "Counting"),
    ("How many musical instruments were heard throughout the video?", "Audio", "Counting"),
    ("Is the <Object> more rhythmic than the <Object>?", "Audio", "Comparative"),
    ("Is the <Object> louder than the <Object>?", "Audio", "Comparative"),
    ("Is the <Object> playing longer than the <Object>?", "Audio", "Comparative"),
    # Visual
    ("Is there a <Object> in the entire video?", "Visual", "Counting"),
    ("Are there <Object> and <Object> instruments in the video?", "Visual", "Counting"),
    ("How many types of musical instruments appeared in the entire video?", "Visual", "Counting"),
    ("How many <Object> are in the entire video?", "Visual", "Counting"),
    ("What kind of musical instrument is it?", "Visual", "Location"),
    ("What kind of instrument is the <LRer> instrument? ", "Visual", "Location"),
    ("Where is the performance?", "Visual", "Location"),
    ("What is the instrument on the <LR> of <Object>?", "Visual", "Location"),
    # Audio-Visual
    ("Is this sound from the instrument in the video?", "Audio-Visual", "Existential"),
    ("Is the <Object> in the video always playing?", "Audio-Visual", "Existential"),
    ("Is there a voiceover?", "Audio-Visual", "Existential"),
    ("How many instruments are sounding in the video?", "Audio-Visual", "Counting"),
    ("How many types of musical instruments sound in the video?", "Audio-Visual", "Counting"),
    ("How many instruments in the video did not sound from beginning to end?", "Audio-Visual", "Counting"),
    ("How many sounding <Object> in the video？", "Audio-Visual", "Counting"),
    ("Where is the <LL> instrument?", "Audio-Visual", "Location"),
    ("Is the <FL> sound coming from the <LR> instrument?", "Audio-Visual", "Location"),
    ("What is the <LR> instrument of the <FL> sounding instrument?", "Audio-Visual", "Location"),
    ("Which is the musical instrument that sounds at the same time as the <Object>?", "Audio-Visual", "Location"),
    ("Is the <Object> on the <LR> louder than the <Object> on the <LR>?", "Audio-Visual", "Comparative"),
    ("Is the instrument on the <LR> louder than the instrument on the <LR>?", "Audio-Visual", "Comparative"),
    ("Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?", "Audio-Visual", "Comparative"),
    ("Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?", "Audio-Visual", "Comparative"),
    ("Where is the <FL> sounding instrument?", "Audio-Visual", "Temporal"),
    ("Which <Object> makes the sound <FL>?", "Audio-Visual", "Temporal"),
    ("What is the <TH> instrument that comes in?", "Audio-Visual", "Temporal"),
    ("Which instrument makes sounds <BA> the <Object>?", "Audio-Visual", "Temporal"),
)
