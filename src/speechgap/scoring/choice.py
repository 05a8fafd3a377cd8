"""Multiple-choice answer extraction: which option letter did the model choose?

Three protocols, chosen by name and recorded next to every score:

``"speechgap"`` (default, :func:`parse_choice`)
    Honest extraction: it reads what a careful person reads, and refuses to guess. It reads answer
    statements in many phrasings ("The answer is B", "My choice is C", "It has to be D", "That leaves B",
    "B is correct", "C it is", "\\boxed{\\text{A}}", "Final answer: (B)") and languages ("la respuesta es
    C", "die Antwort ist B", "a resposta é D", "la risposta è A", "ответ: B", "正解はB", "答案是C"); a
    closing letter ("... iron. C."); an opening letter ("B) Mars"); a single letter marked as an option
    ("option b", "(C)"); and, when the option texts are known, a restated option ("I think it's Mars").
    The last statement decides, so chains of thought that weigh several letters before concluding are
    read by their conclusion. Ruled-out options are not answers ("not A", "neither A nor B", "A is
    wrong", "it isn't B, it's C" is C), and a restated list of all options is not a choice. A hedge
    ("B or D", "C and D are both correct", "I'm torn between B and C"), a refusal, a response naming a
    letter beyond the options, or one it cannot read gives ``None``, which scores as wrong and is counted
    in the parse-failure rate under an informative ``rule``. Single-letter English words ("A planet…",
    "I think…") are never read as options unless they are marked as one ("A)", "(a)", "option a", "a."
    at the end of an answer, "It's A because…").

``"speechmmlu"`` (:func:`extract_choice_speechmmlu`)
    SpeechMMLU's strict rule: the first match of ``option\\s*([abcd])`` in the lower-cased response;
    no match is wrong (methods.md §5).

``"voicebench"`` (:func:`extract_choice_voicebench`), **compatibility mode only**
    Reproduces VoiceBench's published mcq evaluator (its ordered substring templates, then the bare
    letter and letter-plus-punctuation checks) *including* its random fallback: a response it cannot
    read gets a random letter from A–D. Here the draw comes from a seeded generator so the number is
    reproducible; the reference draws from Python's unseeded global ``random``. Use it only to compare
    with the VoiceBench leaderboard, never as the headline number.
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from speechgap.errors import ConfigError

PROTOCOLS = ("speechgap", "speechmmlu", "voicebench")
"""Names accepted by ``protocol=`` arguments and ``--mcq-protocol``."""

_WORD_LETTERS = frozenset("AI")
"""Letters that are also English words ("a", "I"): read as an option only when marked as one."""


@dataclass(frozen=True)
class ChoiceParse:
    """The outcome of reading one response.

    Attributes:
        letter: the chosen option letter ("A", "B", ...), or None when nothing could be read. In VoiceBench
            compatibility mode a failed parse still carries the randomly drawn letter.
        rule: the rule that decided: ``"bare_letter"``, ``"answer_statement"``, ``"closing_letter"``
            ("... iron. C."), ``"listed_choice"`` (a label repeated after restating all options),
            ``"leading_letter"``, ``"marked_letter"``, ``"option_text"``, ``"speechmmlu_pattern"``,
            ``"voicebench_template"``, ``"voicebench_prefix"``; or, for a failure, ``"empty"``,
            ``"out_of_range"``, ``"ambiguous"`` (a hedge, or several options named without a decision),
            ``"refusal"`` (declines or says it does not know), ``"no_match"``, ``"random_fallback"``.
        parsed: True when the letter was read from the response (False for every failure, including the
            compatibility mode's random fallback).
        protocol: the protocol that produced this parse.
    """

    letter: str | None
    rule: str
    parsed: bool
    protocol: str = "speechgap"


# ---------------------------------------------------------------------------------------------------
# The honest extractor
# ---------------------------------------------------------------------------------------------------
#
# A response is read as a sequence of events, each at a position: answer statements ("the answer is B",
# "B is correct", "It's D", "答案是C"), hedges ("B or D", "C and D are both correct") and a closing letter
# ("... iron. C."). The last event decides: a letter, or no single answer when a hedge comes last. Only
# when there is no event at all do the weaker readings apply, in order: an opening letter ("B) Mars"), a
# single letter marked as an option anywhere ("option b", "(C)"), and restated option text.

# A letter token: optionally bracketed, not glued to a word on the right ("I'm", "Mars", "a-priori").
_LETTER = (
    r"(?P<open>[\(\[（【\"'“‘「]?)\s*(?P<letter>[A-Za-z])\s*(?P<close>[\)\]）】\"'”’」]?)"
    r"(?![A-Za-z0-9'’])"
)
_NOT = r"(?!\s*(?:not|n't|never)\b)"
_ADVERBS = (
    r"(?:\s+(?:clearly|definitely|certainly|probably|likely|most\s+likely|obviously|surely|indeed|therefore"
    r"|thus|then|actually|undoubtedly|still|in\s+fact|simply|just|really))*"
)
_VERB = (
    r"(?:is|are|was|'s|would\s+be|should\s+be|will\s+be|must\s+be|has\s+to\s+be|seems\s+to\s+be"
    rf"|appears\s+to\s+be){_ADVERBS}"
)
# An optional article and option word between a cue and its letter, in the languages models answer in:
# "the letter C", "la B", "a letra B", "option (D)", "选项C".
_MARK = (
    r"(?:(?:the|la|el|lo|il|die|der|le|l'|a|o)\s+)?"
    r"(?P<mark>(?:option|choice|letter|answer|alternative|alternativa|opci[oó]n|op[cç][aã]o|opzione|variante"
    r"|lettera|letra|buchstabe|вариант|選択肢|选项)\s*)?"
)
_NEGATION_WORDS = (
    r"(?:\bnot|n't|\bnever|\bneither|\bnor|\bnone\s+of|\brule\s+out|\bruled\s+out|\beliminate|\bexclude"
    r"|\bexcept|\bagainst|\bwithout|\binstead\s+of|\brather\s+than|\bother\s+than|\bunlike|\bif|\bwhether"
    r"|\bunless|\bkein|\bnicht|\bno\s+es|\bnão|\bnon\s+è|不是|不)"
)
_NEGATION_BEFORE = re.compile(_NEGATION_WORDS + r"\s*(?:\w+\s+){0,2}$", re.IGNORECASE)
_NEGATION_AFTER = re.compile(
    r"^\s*(?:is|are|was|were|seems|seem|would\s+be)\s+(?:also\s+|clearly\s+|definitely\s+|both\s+|all\s+)?"
    r"(?:wrong|incorrect|not|false|out|ruled\s+out|eliminated|unlikely|impossible|a\s+distractor)\b"
    r"|^\s*(?:isn't|aren't|wasn't|can't|cannot|doesn't|don't)\b"
    r"|^\s*(?:can\s+be|is\s+to\s+be|are\s+to\s+be)\s+(?:ruled\s+out|eliminated|excluded)"
    r"|^\W*(?:but\s+)?(?:it|that|this)\s+(?:isn't|is\s+not|'s\s+not|is\s+wrong|is\s+incorrect)",
    re.IGNORECASE,
)

# Cues after which a letter is the stated answer. Strong cues read any letter that is not an English word
# ("The answer is b because…"); "a" and "I" need marking ("The answer is a." yes, "The answer is a planet" no).
_STRONG_CUES = [
    # "The (final/correct) answer (to the question) is B", "My choice is C", "Answer: (C)", "answer - b"
    r"\b(?:(?:final|correct|right|best|true|proper|only|likely|most\s+\w+|my|the|your|our)\s+)*"
    r"(?:answer|response|option|choice|pick|selection|guess|solution|fit|match|bet|vote|money)s?"
    r"(?:\s+(?:to|for)\s+(?:the|this)\s+(?:question|problem)|\s+(?:here|then|overall))?"
    rf"\s*(?:{_VERB}{_NOT}\s*[:：]?|goes\s+to|is\s+on|[:：=\-–—])\s*",
    # "The correct one is C"
    rf"\b(?:correct|right|best|true|only\s+correct)\s+one(?:\s+(?:here|then|overall))?\s*(?:{_VERB}{_NOT}|[:：])\s*",
    # "I choose B", "I'd go with option C", "I'm going with C", "I will pick (a)", "I'd say C"
    r"\b(?:i|we)(?:'d|'ll|'m|\s+would|\s+will|\s+am|\s+shall)?"
    r"(?:\s+(?:going\s+to|gonna|have\s+to|must|definitely|probably|still|now|then|also|just|ultimately))*"
    r"\s+(?:choose|chose|pick|picked|select|go(?:ing)?\s+(?:with|for)|say|answer|opt(?:ing)?\s+for"
    r"|vote\s+for|lean(?:ing)?\s+(?:towards?|to)|guess|settle\s+on|stick\s+with|mark)\s*[:,]?\s*",
    # "Correct: C", "Final: D", "Verdict: B"
    r"\b(?:correct|final|verdict|conclusion|result|selected)\s*[:：]\s*",
    # "\boxed{B}" (LaTeX \text{} wrappers are removed before reading)
    r"\\boxed\s*\{\s*",
    # Spanish, Portuguese, Italian, French, German
    r"\b(?:respuesta|opci[oó]n|alternativa)(?:\s+(?:correcta|final|adecuada))?\s*(?:es|ser[ií]a|[:：])\s*",
    r"\b(?:resposta|alternativa|op[cç][aã]o)(?:\s+(?:correta|certa|final))?\s*(?:é|seria|[:：])\s*",
    r"\b(?:risposta|opzione)(?:\s+(?:corretta|giusta|esatta|finale))?\s*(?:è|e'|sarebbe|[:：])\s*",
    r"\b(?:r[ée]ponse|option)(?:\s+(?:correcte|finale|juste))?\s*(?:est|serait|[:：])\s*",
    r"\b(?:antwort|lösung|option)\s*(?:ist|lautet|wäre|[:：])\s*",
    r"\b(?:elijo|escolho|scelgo|je\s+choisis|ich\s+(?:wähle|nehme))\s*",
    # Russian
    r"(?:ответ|вариант)\s*(?:[:：—–-]|это|будет)\s*",
    # Japanese, Korean
    r"(?:正解|答え|解答|回答)\s*(?:は|[:：])\s*",
    r"(?:정답|답)\s*(?:은|는|[:：])\s*",
    # Chinese: "答案是B", "答案：B", "答案为选项C", "正确答案是D", "选B", "选择D"
    r"答案\s*(?:应该|应|就)?\s*(?:是|为|选)?\s*[:：]?\s*",
    r"(?:选择|选)\s*",
]
# Weak cues read only a letter that is upper-case or marked as an option, and that ends a phrase:
# "It's D", "Definitely C.", "That leaves B.", "So C." — never "it's a good question".
_WEAK_CUES = [
    r"\b(?:it'?s|it\s+is|it(?:\s+(?:would|will|must|should|could\s+only|can\s+only)|'d)?"
    r"(?:\s+(?:have|has|had)\s+to)?\s+be|(?:it'?s\s+)?(?:gotta|got\s+to)\s+be|(?:going\s+to|gonna)\s+(?:say|go\s+with|pick|choose)|that'?s|that\s+is|that\s+would\s+be|this\s+is|(?:that|which|this)\s+leaves"
    r"(?:\s+(?:us\s+with|only))?|leaving(?:\s+(?:us\s+with|only))?|so|thus|hence|therefore|definitely"
    r"|clearly|certainly|surely|obviously|probably|likely|must\s+be|has\s+to\s+be|should\s+be|go(?:ing)?"
    rf"\s+with|pick|choose|select|answer|then){_ADVERBS}\s*[:,]?\s*",
    r"(?:->|=>|→|⇒|⟹)\s*",
]
_STRONG_RE = [re.compile(cue + _MARK + _LETTER, re.IGNORECASE) for cue in _STRONG_CUES]
_WEAK_RE = [re.compile(cue + _MARK + _LETTER, re.IGNORECASE) for cue in _WEAK_CUES]

# A letter followed by its verdict: "B is correct", "Option (D) is the correct answer", "C it is",
# "C: correct", "Bが正解", "B是正确的".
_LETTER_THEN_CUE_RE = re.compile(
    r"(?P<kw>\b(?:option|choice|answer|letter)\s*)?" + _LETTER + r"(?:"
    r"\s*[:\-–—]\s*(?:correct|right|true)\b"
    r"|\s+(?:is|'s|would\s+be|should\s+be|must\s+be|seems|seems\s+to\s+be|looks|sounds|appears"
    r"|appears\s+to\s+be)" + _ADVERBS + r"\s+(?:(?:the|my|our)\s+)?(?:final\s+|most\s+|only\s+)*"
    r"(?:correct|right|best|true|accurate|appropriate|suitable|answer|choice|pick|guess)\b"
    r"(?!\s*(?:-|\s)?\s*(?:sounding|looking))"
    r"|\s+(?:it\s+is|for\s+sure|fits|works|remains|matches|makes\s+(?:the\s+most\s+)?sense)\b"
    r"|\s*(?:が|は|是|为)?\s*(?:正解|正しい|正确|对)"
    r")",
    re.IGNORECASE,
)
# What may stand right before an unmarked letter in "B is correct": a sentence boundary or a linking word,
# so that "Vitamin C is the best answer" and "Plan B is right" are not read as options.
_BEFORE_LETTER_OK = re.compile(
    r"(?:^|[^\w\s]|\b(?:so|thus|therefore|hence|then|and|but|because|think|believe|guess|say|clearly"
    r"|definitely|obviously|only|that|since|now|here|sure))\s*$",
    re.IGNORECASE,
)

# A closing letter on its own: "... so it rusts. C.", "...\n\nB", "Therefore, (D)".
_CLOSING_RE = re.compile(r"(?:^|[.!?;:。！？]\s+|\n\s*)" + _LETTER + r"\s*[.!。]?\s*$")

# Hedges: two or more options joined by "or"/"and"/"/" and not ruled out ("B or D", "both A and C").
_HEDGE_LETTER = (
    r"(?:(?:options?|choices?|letters?)\s*)?(?:[\(\[]\s*[A-Za-z]\s*[\)\]]|(?<![A-Za-z0-9])(?-i:[A-Z]))"
    r"(?![A-Za-z0-9'’])"
)
_OR_JOIN = (
    r"\s*[,;]?\s*(?:or\s+)?(?:maybe|perhaps|possibly|probably)\s+|\s*,?\s*(?:or|oder|ou|o|или|either)\s+"
    r"|\s*/\s*|\s*(?:或者|或|还是|か)\s*|\s+(?:vs\.?|versus)\s+"
)
_AND_JOIN = r"\s*,\s*(?:and\s+)?|\s+(?:and|und|y|e|et|и)\s+|\s*&\s*|\s*(?:和|与|と)\s*"
_HEDGE_RE = re.compile(rf"{_HEDGE_LETTER}(?:(?:{_OR_JOIN}|{_AND_JOIN}){_HEDGE_LETTER})+", re.IGNORECASE)
_HEDGE_PART_RE = re.compile(rf"(?P<option>{_HEDGE_LETTER})(?P<join>{_OR_JOIN}|{_AND_JOIN})?", re.IGNORECASE)
_OR_JOIN_RE = re.compile(rf"^(?:{_OR_JOIN})$", re.IGNORECASE)
_HEDGE_CONTEXT_BEFORE = re.compile(
    r"(?:\banswers?\s+(?:is|are|would\s+be)|\bbetween|\bboth|\beither|\bcould\s+be|\bmight\s+be|\bmay\s+be"
    r"|\bmaybe|\bperhaps|\bpossibly|\bit'?s|\bit\s+is|\bsay|\bchoose|\bpick|\bselect|\bgo\s+with|\bis|\bare"
    r"|\bes|\bist|é|è|是|为|[:：])\s*$",
    re.IGNORECASE,
)
_HEDGE_POSITIVE_AFTER = re.compile(
    r"^\s*(?:(?:are|were|both|all|seem|seems|look|looks|appear|sound|could|might|may|would|be|equally"
    r"|also|to\s+me)\s+)+(?:correct|right|possible|plausible|valid|true|acceptable|good|fine|reasonable"
    r"|likely|work|fit|apply)\b",
    re.IGNORECASE,
)
# A second candidate added after the first: "C is also possible", "D could also be right", ". Or D."
_ALSO_RE = re.compile(
    _HEDGE_LETTER + r"\s+(?:is|could|might|may|would)\s+(?:also|equally)\s+(?:be\s+)?(?:possible|plausible"
    r"|correct|right|valid|true|acceptable|an?\s+option|good|likely)"
    r"|\b(?:could|might|may)\s+(?:also|equally)\s+be\s+"
    + _HEDGE_LETTER
    + r"|(?:^|[.!?;]\s*)or\s+(?:maybe\s+|perhaps\s+|possibly\s+)?"
    + _HEDGE_LETTER,
    re.IGNORECASE,
)

# A response that opens with a letter: "B) Mars", "(b) Mars", "B. Mars", "C: …", "D - …", "B".
_LEADING_RE = re.compile(r"^\s*(?:answer\s*[:：]?\s*)?" + _LETTER, re.IGNORECASE)

# Option labels in a restated list: "A) Six", "(B) 4", "C. Canberra", "D: 8", "A - Venus".
_LIST_LABEL_RE = re.compile(
    r"(?<![^\s,;:])(?:[\(\[](?P<bracketed>[A-Za-z])[\)\]]|(?P<plain>[A-Z])(?:[).:]|\s*[-–])|(?P<lower>[a-z])\))"
    r"(?=\s*[^\s.,;])"
)
# Lines that open like an option listing: "A) Venus", "B. Mars".
_LINE_OPTION_RE = re.compile(r"^\s*[\(\[]?([A-Za-z])[\)\].:]\s+\S", re.MULTILINE)

# Letters marked as options anywhere: "option b", "choice (C)", "(B)".
_MARKED_RE = re.compile(
    r"\b(?:option|choice|letter)\s*" + _LETTER + r"|[\(\[（](?P<bare>[A-Za-z])[\)\]）]", re.IGNORECASE
)

# Phrases after which a restated option text is the answer ("I think it's Mars").
_TEXT_CUE_RE = re.compile(
    r"(?:answer\s*(?:is|would\s+be|should\s+be|:)|it'?s|it\s+is|that'?s|that\s+is|i\s+think|i\s+believe|"
    r"i'?d\s+say|would\s+be|should\s+be|must\s+be|correct\s+(?:option|choice)\s+is|choose|pick|go\s+with|"
    r"\bso\b|therefore)",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"[.!?;。！？\n]")

# Responses that decline to answer; used only to name the failure.
_REFUSAL_RE = re.compile(
    r"\b(?:i\s+(?:can(?:'|no)t|cannot|am\s+unable|'m\s+unable|am\s+not\s+able|'m\s+not\s+able|won't|don't"
    r"\s+know|do\s+not\s+know|'m\s+not\s+sure|am\s+not\s+sure|'d\s+rather\s+not)|not\s+sure|none\s+of\s+(?:the|these)"
    r"|no\s+correct\s+(?:answer|option)|no\s+idea|(?:not|n't\s+feel)\s+comfortable|sorry|as\s+an\s+ai)|不知道|无法|不确定|weiß\s+(?:es\s+)?nicht|no\s+lo\s+sé",
    re.IGNORECASE,
)

_MARKDOWN_RE = re.compile(r"(\*\*|__|\*|`|~~|^#+\s*)", re.MULTILINE)
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_LATEX_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textrm|textit|mathrm|mathbf|mathit|mbox)\s*\{([^{}]*)\}")
_LATEX_DELIMITER_RE = re.compile(r"\\[()\[\]]|\$+")
_ARTICLES = frozenset({"a", "an", "the"})
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
        " sixteen seventeen eighteen nineteen twenty".split()
    )
}


def _letters(n_choices: int) -> str:
    if not 2 <= n_choices <= 26:
        raise ConfigError(f"argument 'n_choices' must be between 2 and 26, got {n_choices}")
    return string.ascii_uppercase[:n_choices]


def _clean(text: str) -> str:
    """Unicode-normalise; drop reasoning blocks, VoiceBench turn markers, LaTeX wrappers and markdown."""
    text = unicodedata.normalize("NFKC", text)
    text = _THINK_RE.sub(" ", text)
    text = re.sub(r"^<[123]>", "", text.strip())
    text = text.replace("<|turn_end|>", " ").replace("<|user|>", " ")
    previous = None
    while previous != text:  # \text{\textbf{B}} unwraps from the inside out
        previous, text = text, _LATEX_WRAPPER_RE.sub(r"\1", text)
    text = _LATEX_DELIMITER_RE.sub(" ", text)
    text = _MARKDOWN_RE.sub("", text)
    return text.strip()


def _is_negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 40) : start]
    after = text[end : end + 40]
    return bool(_NEGATION_BEFORE.search(before) or _NEGATION_AFTER.match(after))


_END_OF_PHRASE = re.compile(r"\s*(?:$|[.:,;!?。，；：！？)\]}\n]|[-–—]\s|[^\x00-\x7f\s])")
_LINKING_WORD = re.compile(
    r"\s+(?:because|since|as|for|given|due|here|then|though|but|which|with|rather|instead|over|and\s+not"
    r"|on\s+this)\b",
    re.IGNORECASE,
)


def _accept_letter(match: re.Match[str], text: str, *, strong: bool) -> bool:
    """Whether the letter a cue points at is an option and not an English word ("a planet", "I think").

    Marked letters (bracketed, quoted, or after "option") always count. After a strong cue, any letter
    that is not itself an English word counts; after a weak cue the letter must be upper-case. "a"/"A"
    and "I" must end a phrase ("…is a.", "It's A because…"); "I" must be followed by punctuation.
    """
    letter = match.group("letter")
    marked = bool(match.group("open") or match.group("close") or match.groupdict().get("mark"))
    if marked:
        return True
    rest = text[match.end() :]
    ends_phrase = bool(_END_OF_PHRASE.match(rest))
    if letter.upper() in _WORD_LETTERS:
        if letter == "A" and _LINKING_WORD.match(rest):
            return True
        return ends_phrase
    if strong:
        return True
    return letter.isupper() and (ends_phrase or bool(_LINKING_WORD.match(rest)))


def _statements(text: str, letters: str) -> list[tuple[int, str | None, str]]:
    """Answer statements, hedges and a closing letter, as ``(position, letter or None, rule)``."""
    events: list[tuple[int, str | None, str]] = []
    for patterns, strong in ((_STRONG_RE, True), (_WEAK_RE, False)):
        for pattern in patterns:
            for match in pattern.finditer(text):
                if not _accept_letter(match, text, strong=strong):
                    continue
                letter = match.group("letter").upper()
                if not strong and letter not in letters:
                    continue  # "It's E=mc²": a weak cue does not make an out-of-range letter an answer
                if _is_negated(text, match.start(), match.start()):
                    continue  # "I wouldn't pick A"
                if _NEGATION_AFTER.match(text[match.end() : match.end() + 40]):
                    continue
                events.append((match.start("letter"), letter, "answer_statement"))
    for match in _LETTER_THEN_CUE_RE.finditer(text):
        letter = match.group("letter")
        marked = bool(match.group("kw") or match.group("open") or match.group("close"))
        if not marked and (
            not letter.isupper() or not _BEFORE_LETTER_OK.search(text[: match.start("letter")])
        ):
            continue
        if _is_negated(text, match.start(), match.start()):
            continue  # "Neither A nor B is correct"
        events.append((match.start("letter"), letter.upper(), "answer_statement"))
    closing = _CLOSING_RE.search(text)
    if closing and (closing.group("letter").isupper() or closing.group("open")):
        letter = closing.group("letter").upper()
        if letter in letters and not _is_negated(text, closing.start("letter"), closing.end("letter")):
            events.append((closing.start("letter"), letter, "closing_letter"))
    for position in _hedges(text):
        events.append((position, None, "ambiguous"))
    return events


def _hedges(text: str) -> list[int]:
    """End positions of hedges: options offered together as the answer ("B or D", "both A and C")."""
    positions = []
    for match in _HEDGE_RE.finditer(text):
        parts = list(_HEDGE_PART_RE.finditer(match.group(0)))
        if len({re.sub(r"[^A-Za-z]", "", part.group("option"))[-1].upper() for part in parts}) < 2:
            continue  # "B or B"
        before = text[max(0, match.start() - 40) : match.start()]
        after = text[match.end() : match.end() + 60]
        if _NEGATION_AFTER.match(after):
            continue  # "A and B are both wrong"
        offered_as_alternatives = any(_OR_JOIN_RE.match(part.group("join") or "") for part in parts)
        if _HEDGE_CONTEXT_BEFORE.search(before):
            positions.append(match.end() - 1)
        elif _NEGATION_BEFORE.search(before):
            continue  # "not A or B", "It can't be A or B"
        elif offered_as_alternatives or _HEDGE_POSITIVE_AFTER.match(after):
            positions.append(match.end() - 1)
    for match in _ALSO_RE.finditer(text):
        positions.append(match.end() - 1)
    return positions


def _option_listing(text: str) -> tuple[list[tuple[int, int, str]], list[tuple[int, str]]]:
    """A restated list of options ("A) Six B) Four C) Ten D) Eight") and any label repeated after it.

    Returns the listed labels as ``(start, end, letter)`` — ``end`` is where the next label starts, or the
    end of the line or sentence for the last — and the repeated labels as ``(start, letter)``: after
    "A) Venus\\nB) Mars\\nC) Jupiter\\nD) Saturn", a final "B) Mars" is the model's pick.
    """
    labels = []
    for match in _LIST_LABEL_RE.finditer(text):
        letter = (match.group("bracketed") or match.group("plain") or match.group("lower")).upper()
        labels.append((match.start(), match.end(), letter))
    chain: list[tuple[int, int, str]] = []
    repeats: list[tuple[int, str]] = []
    for start, end, letter in labels:
        if letter == string.ascii_uppercase[len(chain)]:
            chain.append((start, end, letter))
        elif len(chain) >= 2 and letter in {item[2] for item in chain}:
            repeats.append((start, letter))
    if len(chain) < 2:
        return [], []
    spans = []
    for index, (start, _, letter) in enumerate(chain):
        if index + 1 < len(chain):
            stop = chain[index + 1][0]
        else:
            label_end = chain[index][1]
            boundary = _SENTENCE_END_RE.search(text, label_end)
            stop = boundary.start() if boundary else len(text)
        spans.append((start, stop, letter))
    return spans, repeats


def _normalise_word(word: str) -> str:
    return _NUMBER_WORDS.get(word, word)


def _option_pattern(option: str) -> re.Pattern[str] | None:
    """A pattern for one option text: its words in order, articles and punctuation free between them."""
    words = [
        _normalise_word(word)
        for word in re.findall(r"\w+", unicodedata.normalize("NFKC", option).lower())
        if word not in _ARTICLES
    ]
    if not words:
        return None
    parts = []
    for word in words:
        # Number words and digits are the same option ("Eight legs" names "8"; "seven apples" names "7 apples").
        names = [re.escape(word)] + [name for name, digit in _NUMBER_WORDS.items() if digit == word]
        parts.append(f"(?:{'|'.join(names)})")
    between = r"[\W_]+(?:(?:a|an|the)[\W_]+)*"
    left = r"(?<![^\W_])" if words[0][0].isascii() else ""
    right = r"(?![^\W_])" if words[-1][-1].isascii() else ""
    return re.compile(left + between.join(parts) + right, re.IGNORECASE)


def _match_option_text(text: str, choices: Sequence[str], letters: str) -> tuple[str | None, str]:
    """Read the answer from restated option text: one option named and not ruled out, or the one a cue
    points at ("Venus is too hot, so it's Mars"). Two options named without a decision are ambiguous."""
    mentions: list[tuple[int, int, int]] = []
    for index, choice in enumerate(choices):
        pattern = _option_pattern(choice)
        if pattern is not None:
            mentions.extend((match.start(), match.end(), index) for match in pattern.finditer(text))
    # A mention inside a longer one ("Mars" in "Mars and Venus") does not name its option.
    mentions = [
        (start, end, index)
        for start, end, index in mentions
        if not any(
            other_start <= start and end <= other_end and (other_end - other_start) > (end - start)
            for other_start, other_end, _ in mentions
        )
    ]
    affirmed = [(start, end, index) for start, end, index in mentions if not _is_negated(text, start, end)]
    named = {index for _, _, index in affirmed}
    if len(named) == 1:
        return letters[named.pop()], "option_text"
    if not named:
        return None, "no_match"
    # Several named: the sentence after the last decisive cue must name exactly one.
    for cue in reversed(list(_TEXT_CUE_RE.finditer(text))):
        boundary = _SENTENCE_END_RE.search(text, cue.end())
        stop = boundary.start() if boundary else len(text)
        in_sentence = {index for start, _, index in affirmed if cue.end() <= start < stop}
        if len(in_sentence) == 1:
            return letters[in_sentence.pop()], "option_text"
        if in_sentence:
            break
    return None, "ambiguous"


def _without_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    pieces, cursor = [], 0
    for start, stop, _ in spans:
        pieces.append(text[cursor:start])
        pieces.append(" ")
        cursor = stop
    pieces.append(text[cursor:])
    return "".join(pieces)


def parse_choice(
    text: str | None,
    n_choices: int = 4,
    choices: Sequence[str] | None = None,
    *,
    protocol: str = "speechgap",
    seed: int = 0,
) -> ChoiceParse:
    """Read the option letter a response chose.

    Args:
        text: the model's response.
        n_choices: number of options; valid letters are the first ``n_choices`` of A–Z.
        choices: the option texts in letter order, when known; lets a response that restates an option
            ("I think it's Mars") be read. Must have ``n_choices`` entries.
        protocol: ``"speechgap"`` (honest, default), ``"speechmmlu"`` (strict pattern), or
            ``"voicebench"`` (compatibility mode with a seeded random fallback; 4 options only).
        seed: seed of the random fallback, used only by ``protocol="voicebench"``.

    Returns:
        A :class:`ChoiceParse`. ``letter`` is None whenever the response could not be read (except in
        VoiceBench compatibility mode, which draws a letter and sets ``parsed=False``).
    """
    if protocol == "speechmmlu":
        return extract_choice_speechmmlu(text)
    if protocol == "voicebench":
        return extract_choice_voicebench(text, seed=seed)
    if protocol != "speechgap":
        raise ConfigError(f"argument 'protocol' must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    letters = _letters(n_choices)
    if choices is not None and len(choices) != n_choices:
        raise ConfigError(
            f"argument 'choices' has {len(choices)} entries but argument 'n_choices' is {n_choices}"
        )
    if text is None or not text.strip():
        return ChoiceParse(None, "empty", False)
    clean = _clean(text)
    if not clean:
        return ChoiceParse(None, "empty", False)

    def verdict(letter: str, rule: str) -> ChoiceParse:
        upper = letter.upper()
        if upper in letters:
            return ChoiceParse(upper, rule, True)
        return ChoiceParse(None, "out_of_range", False)

    # 1. The whole response is a letter: "B", "(b)", "b.", "[C]".
    whole = re.fullmatch(r"[\(\[（]?\s*([A-Za-z])\s*[\)\]）]?\s*[.:)!]?", clean)
    if whole:
        return verdict(whole.group(1), "bare_letter")

    # 2. Statements, hedges and a closing letter: the last one decides ("A is wrong, B is wrong, the answer
    #    is C"; "The answer is B or D" is a hedge). A label repeated after a restated list is a pick.
    listing, repeats = _option_listing(clean)
    events = _statements(clean, letters)
    events.extend((start, letter, "listed_choice") for start, letter in repeats)
    if events:
        _, letter, rule = max(events, key=lambda event: (event[0], event[1] is None))
        if letter is None:
            return ChoiceParse(None, "ambiguous", False)
        return verdict(letter, rule)

    # 3. The response opens with a letter that is not the first label of a restated list: "B) Mars".
    #    A lower-case opening letter must be marked by punctuation: "b) Mars" yes, "c mars" no.
    leading = _LEADING_RE.match(clean)
    line_letters = {m.group(1).upper() for m in _LINE_OPTION_RE.finditer(clean)}
    if leading and not listing and len(line_letters) <= 1:
        letter = leading.group("letter")
        rest = clean[leading.end() :]
        bracketed = bool(leading.group("open") or leading.group("close"))
        punctuated = bool(re.match(r"\s*[.:)\-]", rest))
        if (
            (letter.upper() not in _WORD_LETTERS or bracketed or _END_OF_PHRASE.match(rest))
            and (letter.isupper() or bracketed or punctuated)
            and not _NEGATION_AFTER.match(rest)  # "B is wrong."
        ):
            return verdict(letter, "leading_letter")

    # 4. Letters marked as options anywhere, outside a restated list, not ruled out; one letter only.
    marked: list[str] = []
    for match in _MARKED_RE.finditer(clean):
        letter = (match.group("letter") or match.group("bare")).upper()
        if letter not in letters or any(start <= match.start() < stop for start, stop, _ in listing):
            continue
        if _is_negated(clean, match.start(), match.end()):
            continue
        marked.append(letter)
    if len(line_letters) == 1 and not listing:
        marked.extend(letter for letter in line_letters if letter in letters)
    if len(set(marked)) == 1:
        return ChoiceParse(marked[0], "marked_letter", True)

    # 5. Restated option text, when the options are known (a restated list of all options names none).
    if choices is not None:
        letter, rule = _match_option_text(_without_spans(clean, listing), choices, letters)
        if letter is not None:
            return ChoiceParse(letter, rule, True)
        if rule == "ambiguous":
            return ChoiceParse(None, "ambiguous", False)
    if len(set(marked)) > 1:
        return ChoiceParse(None, "ambiguous", False)
    if _REFUSAL_RE.search(clean):
        return ChoiceParse(None, "refusal", False)
    return ChoiceParse(None, "no_match", False)


def extract_choice(text: str | None, n_choices: int = 4, choices: Sequence[str] | None = None) -> str | None:
    """The option letter a response chose, or None when it cannot be read (honest protocol).

    See :func:`parse_choice` for the rule that fired and the other protocols.

    >>> extract_choice("The answer is (C).")
    'C'
    >>> extract_choice("A planet is a large body.") is None
    True
    >>> extract_choice("I think it's Mars", choices=["Venus", "Mars", "Jupiter", "Saturn"])
    'B'
    """
    return parse_choice(text, n_choices=n_choices, choices=choices).letter


# ---------------------------------------------------------------------------------------------------
# SpeechMMLU's strict pattern
# ---------------------------------------------------------------------------------------------------

_SPEECHMMLU_RE = re.compile(r"option\s*([abcd])")


def extract_choice_speechmmlu(text: str | None) -> ChoiceParse:
    """SpeechMMLU's rule: first ``option\\s*([abcd])`` in the lower-cased response; no match is wrong."""
    if text is None or not text.strip():
        return ChoiceParse(None, "empty", False, "speechmmlu")
    match = _SPEECHMMLU_RE.search(text.lower())
    if match is None:
        return ChoiceParse(None, "no_match", False, "speechmmlu")
    return ChoiceParse(match.group(1).upper(), "speechmmlu_pattern", True, "speechmmlu")


# ---------------------------------------------------------------------------------------------------
# VoiceBench compatibility mode
# ---------------------------------------------------------------------------------------------------

# VoiceBench's mcq evaluator tries these substring templates in this order on the lower-cased response,
# and for each template the letters a, b, c, d in turn; the first hit decides. "{}" stands for the letter.
# The order is part of the behaviour being reproduced ("is {}," before " {}." and so on).
_VB_TEMPLATES: tuple[str, ...] = (
    "答案是{}",
    "答案是 {}",
    "答案是选项{}",
    "答案应该是{}",
    "答案应该是 {}",
    "答案就是选项{}",
    "答案是‘{}",
    "是{}：",
    "答案选{}",
    "{}是正确",
    "选项{}是最合适的",
    "answer is: **{}",
    "answer is **{}",
    "the answer to the question is: **{}",
    "the answer to the multiple-choice question is **{}",
    "the answer is '{}'",
    "{} is the best answer",
    "the answer is {}",
    "the correct answer is {}",
    "would select {}",
    "would choose {}",
    "would select option {}",
    "would choose option {}",
    'is "{}"',
    'is "{}.',
    "is: **{})",
    "is **{},",
    "is **{}:",
    "is **{})",
    "is: **{}.",
    "is: **{}:",
    "is **{}.",
    "be **{},",
    "is: **{}**",
    "is therefore option **{}:",
    "is: \n\n**{})",
    "as **{}:",
    "be **{})",
    "be **{}:",
    "is: \n\n**{}**",
    "suggests **{})",
    "be option **{}:",
    "with **{})",
    'is typically "{})',
    "be to **{})",
    "is: \n\n{})",
    "is likely to be: **{}.",
    "is **{} (",
    "is option **{}**",
    "is likely **{}**",
    "is:\n**{}.",
    "is:\n\n**{}.",
    "would be {}",
    "would be option {}",
    "would be ({})",
    "would be option ({})",
    "is {},",
    "is typically {},",
    "is typically {}.",
    "i'd say {}.",
    "option {}.",
    "option {}:",
    "option {},",
    "the answer is:\n**{}",
    "is {}:",
    "is {}.",
    "is {},",
    "is: {}.",
    "is ({})",
    "is:\n**{})",
    "is likely **{}:",
    "is the **{})",
    ":\n{}.",
    ":\n{})",
    ":\n{},",
    ": \n{}.",
    ":  \n{}.",
    ":\n\n{}.",
    ":\n\n{})",
    "is most likely **{}:",
    ":\n\n{},",
    ": \n\n{}.",
    "is option {},",
    "({}) would be",
    "is ({}).",
    "is {})",
    "is: {})",
    "is:\n\n{}:",
    "is: **{},",
    "(option {})",
    "answer is ({})",
    'select option "{}"',
    "is: {}",
    "is typically **{},",
    "is **{}**",
    "is likely '{}'",
    "is option '{}'",
    "is:\n**{}:",
    "is \\( \\boxed{{} ",
    "would be '{}'",
    "is the **{}** ",
    "question is {} (",
    "is:\n\n**{})",
    "closest to option **{}**",
    "is most likely **{})",
    "the answer to the question is '{}'",
    "question is **{}**",
    "known as '{}'",
    "is '{})",
    "is typically **{}:",
    "is \\( \\boxed{\\text{{}}} \\)",
    "is \\( \\text{{}) }",
    "is \\( \\text{{}} \\)",
    "is \\( \\text{{}:",
    "is \\( \\text{{})",
    "is \\(\\text{{}.",
    "is:\n\n**{}",
    "is \\( \\text{{}.}",
    "is \\( \\text{{}.",
    "is \\( \\boxed{{}}",
    "is:\n\\[ \\boxed{\\text{{}}}",
    "is:\n\\[ \\text{{})",
    "is:\n\n\\[ \\text{{})",
    "is \\( \\textbf{{})",
    "is \\( \\text{{}}",
    "is: \\( \\text{{}.",
    "corresponds to:\n- **{}:",
    "would be: **{}**.",
    "is \\( {} \\)",
    "is:\n**{} ",
    "corresponds to option **{}**",
    "be **{}**",
    "be: \n\n{})",
    "is:\n\\[ \\boxed{{}}",
    "is:  \n**{}:",
    "is: \\( \\text{{})",
    "is likely: **{},",
    "is } \\mathbf{{}.",
    "is \\( \\boxed{{})",
    "is \\( \\textbf{{}}",
    "is \\({}\\)",
    "is:\n  \n**{}:",
    "is option **{} ",
    "is:\n\\( \\textbf{{}.",
    "is \\( \\mathbf{{}}",
    "was option **{}**",
    'is likely "{})',
    "option **{}:",
    'is "{})',
    "is most likely **{},",
    "is often **{}:",
    "is:  \n{})",
    " {}.",
    " {},",
    " {}:",
    " {})",
    "**{}.",
    "**{})",
    '"{}.',
    '"{},',
    '"{}:',
    "({})",
    '"{}"',
)
# The templates hold literal braces (LaTeX); "{}" is the only placeholder, so substitute by replace().
_VB_PLACEHOLDER = "{}"


def _vb_fill(template: str, letter: str) -> str:
    # The first "{}" is always the placeholder: a literal "{" is followed by the placeholder or text.
    index = template.find(_VB_PLACEHOLDER)
    return template[:index] + letter + template[index + len(_VB_PLACEHOLDER) :]


def _vb_read(text: str) -> tuple[str | None, str]:
    response = text.lower()
    if response.startswith(("<1>", "<2>", "<3>")):
        response = response[3:].strip()
    for template in _VB_TEMPLATES:
        for letter in "abcd":
            if _vb_fill(template, letter) in response:
                return letter.upper(), "voicebench_template"
    for letter in "abcd":
        if response == letter or any(response.startswith(letter + mark) for mark in ".,:)"):
            return letter.upper(), "voicebench_prefix"
    for phrase in (
        "would be a.",
        'would be "a.',
        "the best option from the given choices would be a scorpion (a)",
    ):
        if phrase in response:
            return "A", "voicebench_template"
    return None, "random_fallback"


def extract_choice_voicebench(
    text: str | None, *, seed: int = 0, rng: random.Random | None = None
) -> ChoiceParse:
    """VoiceBench compatibility mode: its published extractor, with a random letter when it fails.

    **Not an honest score.** A response the reference extractor cannot read gets a letter drawn uniformly
    from A–D (``parsed=False``, ``rule="random_fallback"``). To reproduce a whole run, pass one shared
    ``rng`` for all responses in order (see :func:`voicebench_mcq_accuracy`); ``seed`` is used only when
    no ``rng`` is given.
    """
    letter, rule = _vb_read(text or "")
    if letter is not None:
        return ChoiceParse(letter, rule, True, "voicebench")
    generator = rng if rng is not None else random.Random(seed)
    return ChoiceParse(generator.choice("ABCD"), "random_fallback", False, "voicebench")


@dataclass(frozen=True)
class VoiceBenchMCQResult:
    """VoiceBench's mcq figures, computed as the reference does (compatibility mode).

    Attributes:
        acc: accuracy in percent, random fallbacks included.
        fail: percent of responses the extractor could not read (each given a random letter).
        seed: seed of the fallback generator.
        parses: one :class:`ChoiceParse` per response.
    """

    acc: float
    fail: float
    seed: int
    parses: list[ChoiceParse]


def voicebench_mcq_accuracy(
    responses: Sequence[str], references: Sequence[str], *, seed: int = 0
) -> VoiceBenchMCQResult:
    """VoiceBench's mcq ``acc`` and ``fail`` (percent), with one seeded generator drawn in response order."""
    if len(responses) != len(references):
        raise ConfigError(
            f"argument 'responses' has {len(responses)} entries but argument 'references' has {len(references)}"
        )
    if not responses:
        raise ConfigError("argument 'responses' is empty: no responses to score")
    rng = random.Random(seed)
    parses = [extract_choice_voicebench(response, rng=rng) for response in responses]
    correct = sum(
        parse.letter == str(reference).strip().upper()
        for parse, reference in zip(parses, references, strict=True)
    )
    failed = sum(not parse.parsed for parse in parses)
    return VoiceBenchMCQResult(
        acc=100.0 * correct / len(responses), fail=100.0 * failed / len(responses), seed=seed, parses=parses
    )
