"""The free-text normaliser on hand-written answers, each mapped as a person reading it would.

``None`` as the family: the text alone decides. A family (yes/no, number, place, scene, instrument) is
the kind of answer the question asks for, which avqa.evaluate takes from the question's gold answer.
``None`` as the expected answer: a person could not tell which of the 42 answers is meant.
"""
import pytest

from avqa.annotations import ANSWERS, INSTRUMENTS
from avqa.evaluate import FAMILIES, normalise

CASES = [
    # yes / no, with punctuation and the usual forms
    ("yes", None, "yes"), ("Yes", None, "yes"), ("Yes.", None, "yes"), ("YES!", None, "yes"), (" yes ", None, "yes"),
    ("Yes, it is.", None, "yes"), ("yes it is", None, "yes"), ("Yeah.", None, "yes"), ("yep", None, "yes"),
    ("Yup!", None, "yes"), ("\"yes\"", None, "yes"), ("'Yes'", None, "yes"), ("Yes...", None, "yes"),
    ("Answer: yes", None, "yes"), ("The answer is yes.", None, "yes"), ("Of course.", None, "yes"),
    ("True", None, "yes"), ("Correct.", None, "yes"), ("Indeed.", "yes/no", "yes"),
    ("Yes, the piano is louder.", "yes/no", "yes"), ("Yes, the piano is louder.", None, "yes"),
    ("That's right.", "yes/no", "yes"), ("yes, it's on the right", "yes/no", "yes"),
    ("no", None, "no"), ("No", None, "no"), ("No.", None, "no"), ("NO!", None, "no"), ("No, it isn't.", None, "no"),
    ("no it is not", None, "no"), ("Nope.", None, "no"), ("False", None, "no"), ("Incorrect", None, "no"),
    ("It is not.", "yes/no", "no"), ("It isn't.", "yes/no", "no"), ("They aren't.", "yes/no", "no"),
    ("It doesn't.", "yes/no", "no"), ("The violin didn't play longer.", "yes/no", "no"),
    ("No, the guitar is louder.", "yes/no", "no"), ("No, the guitar is louder.", None, "no"),
    ("Neither.", "yes/no", "no"), ("Answer: no", None, "no"), ("\"No\"", None, "no"),
    ("No, it is on the left.", "yes/no", "no"), ("There is no voiceover.", "yes/no", "no"),
    # numbers in words and in digits
    ("zero", None, "zero"), ("0", None, "zero"), ("Zero.", None, "zero"), ("none", None, "zero"),
    ("None.", "number", "zero"), ("There are none.", "number", "zero"), ("no instruments", "number", "zero"),
    ("There are no sounding instruments.", "number", "zero"), ("Nothing is playing.", "number", "zero"),
    ("one", None, "one"), ("1", None, "one"), ("One.", None, "one"), ("Only one.", "number", "one"),
    ("There is one.", None, "one"), ("There is only one instrument.", "number", "one"),
    ("A single violin.", "number", "one"), ("1 instrument", "number", "one"), ("just 1", "number", "one"),
    ("two", None, "two"), ("2", None, "two"), ("Two.", None, "two"), ("There are two.", None, "two"),
    ("There are 2.", None, "two"), ("two instruments", "number", "two"), ("2 violins", "number", "two"),
    ("Two violins are playing.", "number", "two"), ("I count two.", "number", "two"),
    ("three", None, "three"), ("3", None, "three"), ("Three!", None, "three"), ("3 instruments", "number", "three"),
    ("There are three pianos.", "number", "three"),
    ("four", None, "four"), ("4", None, "four"), ("Four.", None, "four"), ("four of them", "number", "four"),
    ("five", None, "five"), ("5", None, "five"), ("5.", None, "five"), ("There are five players.", "number", "five"),
    ("six", None, "six"), ("6", None, "six"), ("Six instruments", "number", "six"),
    ("seven", None, "seven"), ("7", None, "seven"), ("Seven.", None, "seven"),
    ("eight", None, "eight"), ("8", None, "eight"), ("8 people play.", "number", "eight"),
    ("nine", None, "nine"), ("9", None, "nine"), ("Nine.", None, "nine"),
    ("ten", None, "ten"), ("10", None, "ten"), ("Ten.", None, "ten"), ("There are 10.", None, "ten"),
    ("more than ten", None, "more than ten"), ("More than ten.", None, "more than ten"),
    ("more than 10", None, "more than ten"), ("More than 10 instruments", "number", "more than ten"),
    ("over ten", None, "more than ten"), ("over 10", None, "more than ten"), ("above ten", None, "more than ten"),
    ("greater than ten", None, "more than ten"), ("10+", None, "more than ten"), ("11", None, "more than ten"),
    ("12", None, "more than ten"), ("twelve", None, "more than ten"), ("eleven", None, "more than ten"),
    ("There are 15.", None, "more than ten"), ("about twenty", "number", "more than ten"),
    ("A dozen.", "number", "more than ten"), ("dozens of them", "number", "more than ten"),
    ("100", None, "more than ten"),
    # left / right / middle
    ("left", None, "left"), ("Left.", None, "left"), ("the left one", None, "left"), ("The left one.", None, "left"),
    ("on the left", None, "left"), ("On the left side.", None, "left"), ("left side", None, "left"),
    ("the leftmost one", None, "left"), ("Leftmost.", None, "left"), ("left-hand side", None, "left"),
    ("The one on the left.", None, "left"), ("It is on the left.", "place", "left"),
    ("The violin on the left", "place", "left"),
    ("right", None, "right"), ("Right.", None, "right"), ("the right one", None, "right"),
    ("on the right", None, "right"), ("Right side.", None, "right"), ("rightmost", None, "right"),
    ("The one on the right!", None, "right"), ("right-hand side", None, "right"),
    ("It's on the right.", "place", "right"), ("the piano on the right", "place", "right"),
    ("middle", None, "middle"), ("Middle.", None, "middle"), ("in the middle", None, "middle"),
    ("The middle one.", None, "middle"), ("center", None, "middle"), ("Centre.", None, "middle"),
    ("in the center", None, "middle"), ("the central one", None, "middle"), ("in between", None, "middle"),
    ("It is in the middle.", "place", "middle"),
    ("simultaneously", None, "simultaneously"), ("Simultaneously.", None, "simultaneously"),
    ("at the same time", None, "simultaneously"), ("They start at the same time.", "place", "simultaneously"),
    ("together", None, "simultaneously"), ("Both play simultaneously.", "place", "simultaneously"),
    # indoor / outdoor
    ("indoor", None, "indoor"), ("Indoor.", None, "indoor"), ("indoors", None, "indoor"), ("Inside.", None, "indoor"),
    ("It is indoors.", "scene", "indoor"), ("in a room", None, "indoor"), ("It was filmed inside.", "scene", "indoor"),
    ("outdoor", None, "outdoor"), ("Outdoor.", None, "outdoor"), ("outdoors", None, "outdoor"),
    ("Outside.", None, "outdoor"), ("It is outdoors.", "scene", "outdoor"), ("in the open air", None, "outdoor"),
    # instruments with and without underscores, plural, capitals, common names
    ("acoustic_guitar", None, "acoustic_guitar"), ("acoustic guitar", None, "acoustic_guitar"),
    ("Acoustic Guitar", None, "acoustic_guitar"), ("acoustic-guitar", None, "acoustic_guitar"),
    ("The acoustic guitar.", None, "acoustic_guitar"), ("guitar", None, "acoustic_guitar"),
    ("the guitar", None, "acoustic_guitar"), ("acoustic guitars", None, "acoustic_guitar"),
    ("electric_bass", None, "electric_bass"), ("electric bass", None, "electric_bass"),
    ("Electric Bass.", None, "electric_bass"), ("the bass", None, "electric_bass"),
    ("bass guitar", None, "electric_bass"),
    ("piano", None, "piano"), ("Piano.", None, "piano"), ("The piano.", None, "piano"), ("pianos", None, "piano"),
    ("It's the piano.", None, "piano"), ("The piano is louder.", "instrument", "piano"),
    ("violin", None, "violin"), ("Violin!", None, "violin"), ("the violins", None, "violin"), ("fiddle", None, "violin"),
    ("cello", None, "cello"), ("The cello.", None, "cello"), ("cellos", None, "cello"),
    ("flute", None, "flute"), ("a flute", None, "flute"), ("clarinet", None, "clarinet"),
    ("The clarinet plays first.", "instrument", "clarinet"), ("trumpet", None, "trumpet"),
    ("Trumpets.", None, "trumpet"), ("tuba", None, "tuba"), ("saxophone", None, "saxophone"),
    ("sax", None, "saxophone"), ("the saxophone", None, "saxophone"),
    ("drum", None, "drum"), ("drums", None, "drum"), ("The drums.", None, "drum"), ("drum kit", None, "drum"),
    ("congas", None, "congas"), ("conga", None, "congas"), ("Conga drums", None, "congas"),
    ("bagpipe", None, "bagpipe"), ("bagpipes", None, "bagpipe"), ("banjo", None, "banjo"), ("Banjo.", None, "banjo"),
    ("bassoon", None, "bassoon"), ("the bassoon", None, "bassoon"), ("accordion", None, "accordion"),
    ("An accordion.", None, "accordion"), ("erhu", None, "erhu"), ("Erhu.", None, "erhu"),
    ("guzheng", None, "guzheng"), ("the guzheng", None, "guzheng"), ("pipa", None, "pipa"), ("Pipa", None, "pipa"),
    ("suona", None, "suona"), ("ukulele", None, "ukulele"), ("uke", None, "ukulele"),
    ("xylophone", None, "xylophone"), ("Xylophone.", None, "xylophone"),
    ("The first one is the cello.", "instrument", "cello"), ("I think it is the erhu.", "instrument", "erhu"),
    # a valid answer of another kind is that answer (and wrong), not unmapped
    ("yes", "number", "yes"), ("two", "yes/no", "two"), ("piano", "place", "piano"),
    # texts that name no answer, or several without a question to choose among them
    ("", None, None), ("I don't know.", "instrument", None), ("maybe", None, None), ("unclear", "number", None),
    ("many", "number", None), ("Two violins.", None, None), ("the piano on the left", None, None),
    ("Both the piano and the violin.", None, None), ("some instruments", "number", None),
    ("keyboard", "instrument", None), ("It is loud.", "yes/no", None), ("several", None, None),
]


def test_there_are_at_least_200_hand_written_answers():
    assert len(CASES) >= 200
    assert len({(t, f) for t, f, _ in CASES}) == len(CASES), "each case once"
    assert all(e is None or e in ANSWERS for _, _, e in CASES)
    assert all(f is None or f in FAMILIES for _, f, _ in CASES)
    covered = {e for _, _, e in CASES}
    assert set(INSTRUMENTS) <= covered and {"yes", "no", "left", "right", "middle", "more than ten"} <= covered


@pytest.mark.parametrize("text, family, expected", CASES)
def test_each_answer_is_mapped_as_a_person_would(text, family, expected):
    assert normalise(text, family) == expected
