"""Multiple-choice answer extraction: which option letter did the model choose?

Three protocols, chosen by name and recorded next to every score:

``"speechgap"`` (default, :func:`parse_choice`)
    Honest extraction. It reads the ways models really answer ("The answer is B", "B) Mars", "**B**",
    "option b", "Option (D) is correct", "答案是B", "I think it's Mars" when the option texts are known) and
    refuses to guess: a response it cannot read, one that names two different options with equal weight,
    or one that names a letter beyond the options gives ``None``, which scores as wrong and is counted in
    the parse-failure rate. Single-letter English words ("A planet…", "I think…") are never read as
    options unless they are marked as one ("A)", "(a)", "option a", "a." at the end of an answer).

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
        rule: the rule that decided: ``"bare_letter"``, ``"answer_statement"``, ``"leading_letter"``,
            ``"marked_letter"``, ``"option_text"``, ``"speechmmlu_pattern"``, ``"voicebench_template"``,
            ``"voicebench_prefix"``; or, for a failure, ``"empty"``, ``"out_of_range"``, ``"ambiguous"``,
            ``"no_match"``, ``"random_fallback"``.
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

# A letter token: optionally bracketed, not glued to a word on the right ("I'm", "Mars", "a-priori").
_LETTER = (
    r"(?P<open>[\(\[（【\"'“‘]?)\s*(?P<letter>[A-Za-z])\s*(?P<close>[\)\]）】\"'”’]?)"
    r"(?![A-Za-z0-9'’])"
)
_NOT = r"(?!\s*(?:not|n't|never)\b)"
_VERB = r"(?:is|was|would\s+be|should\s+be|will\s+be|must\s+be|'s|is\s+probably|is\s+likely|seems\s+to\s+be)"
_MARK = r"(?:option|choice|letter|answer)"

# Phrases after which the next letter token is the model's stated answer. Case-insensitive.
_ANSWER_CUES = [
    # "The (final/correct) answer (to the question) is B", "Answer: (C)", "answer - b"
    rf"\b(?:(?:final|correct|right|best|my|the)\s+)*answer(?:\s+(?:to|for)\s+(?:the|this)\s+question)?"
    rf"\s*(?:{_VERB}{_NOT}\s*[:：]?|[:：=\-–—])\s*(?:{_MARK}\s*)?",
    # "The correct option is B", "the best choice would be (C)"
    rf"\b(?:correct|right|best|true|only\s+correct)\s+(?:option|choice|letter|one)\s*(?:{_VERB}{_NOT}|[:：])"
    rf"\s*(?:{_MARK}\s*)?",
    # "I choose B", "I'd go with option C", "I will pick (a)", "I select b"
    r"\bi(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with|say)\s*:?\s*(?:option|choice|answer)?\s*",
    # "\boxed{B}"
    r"\\boxed\{\s*(?:\\text\{\s*)?",
    # "答案是B", "答案：B", "答案为选项C", "选B", "选择D"
    r"答案\s*(?:应该|就)?\s*(?:是|为|选)?\s*[:：]?\s*(?:选项)?\s*",
    r"(?:选择|选)\s*(?:选项)?\s*",
]
_ANSWER_CUE_RE = [re.compile(cue + _LETTER, re.IGNORECASE) for cue in _ANSWER_CUES]

# "B is correct", "Option (D) is the correct answer", "(C) is right" — the letter before the cue.
_LETTER_THEN_CUE_RE = re.compile(
    r"(?:\b(?:option|choice|answer)\s*)?" + _LETTER + r"\s*(?:is|would\s+be|seems)\s+(?:the\s+)?"
    r"(?:correct|right|best|true)\b(?!\s*(?:-|\s)?\s*(?:sounding|looking))",
    re.IGNORECASE,
)

# A response that opens with a letter: "B) Mars", "(b) Mars", "B. Mars", "C: …", "D - …", "B".
_LEADING_RE = re.compile(r"^\s*(?:answer\s*[:：]?\s*)?" + _LETTER, re.IGNORECASE)

# Lines that open like an option listing: "A) Venus", "B. Mars". Two or more distinct = restating options.
_LINE_OPTION_RE = re.compile(r"^\s*[\(\[]?([A-Za-z])[\)\].:]\s+\S", re.MULTILINE)

# Letters marked as options anywhere: "option b", "choice (C)", "(B)".
_MARKED_RE = re.compile(
    r"\b(?:option|choice|letter)\s*" + _LETTER + r"|[\(\[（](?P<bare>[A-Za-z])[\)\]）]", re.IGNORECASE
)

_NEGATION_BEFORE = re.compile(
    r"(?:\bnot|n't|\bnever|\brule\s+out|\bruled\s+out|\beliminate|\bexclude|\bexcept|\bagainst|\bwithout)"
    r"\s*(?:\w+\s+){0,2}$",
    re.IGNORECASE,
)
_NEGATION_AFTER = re.compile(
    r"^\s*(?:is|are|was|seems|would\s+be)\s+(?:also\s+|clearly\s+|definitely\s+)?"
    r"(?:wrong|incorrect|not|false|ruled\s+out|eliminated|unlikely|a\s+distractor)\b"
    r"|^\s*(?:isn't|can't|cannot)\b"
    r"|^\s*(?:can\s+be|is\s+to\s+be)\s+(?:ruled\s+out|eliminated|excluded)",
    re.IGNORECASE,
)

# Phrases after which a restated option text is the answer ("I think it's Mars").
_TEXT_CUE_RE = re.compile(
    r"(?:answer\s*(?:is|would\s+be|should\s+be|:)|it'?s|it\s+is|that'?s|that\s+is|i\s+think|i\s+believe|"
    r"i'?d\s+say|would\s+be|should\s+be|must\s+be|correct\s+(?:option|choice)\s+is|choose|pick|go\s+with)",
    re.IGNORECASE,
)

_MARKDOWN_RE = re.compile(r"(\*\*|__|\*|`|~~|^#+\s*)", re.MULTILINE)
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ARTICLES = frozenset({"a", "an", "the"})


def _letters(n_choices: int) -> str:
    if not 2 <= n_choices <= 26:
        raise ConfigError(f"argument 'n_choices' must be between 2 and 26, got {n_choices}")
    return string.ascii_uppercase[:n_choices]


def _clean(text: str) -> str:
    """Unicode-normalise, drop reasoning blocks, markdown emphasis and VoiceBench turn markers."""
    text = unicodedata.normalize("NFKC", text)
    text = _THINK_RE.sub(" ", text)
    text = re.sub(r"^<[123]>", "", text.strip())
    text = text.replace("<|turn_end|>", " ").replace("<|user|>", " ")
    text = _MARKDOWN_RE.sub("", text)
    return text.strip()


def _letter_is_marked(match: re.Match[str], text: str, *, keyword: bool) -> bool:
    """Whether a letter token is an option and not an English word ("A planet", "I think").

    Marked means: bracketed or quoted, introduced by option/choice/letter, followed by ``.:,;)-`` or the end
    of the text — or any letter that is not itself a word ("B because …" is B; "A good choice…" is not A).
    """
    letter = match.group("letter")
    if match.group("open") or match.group("close") or keyword:
        return True
    if letter.upper() not in _WORD_LETTERS:
        return True
    rest = text[match.end() :]
    return bool(re.match(r"\s*(?:$|[.:,;!?\-–—)\]]|\n)", rest))


def _is_negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 40) : start]
    after = text[end : end + 40]
    return bool(_NEGATION_BEFORE.search(before) or _NEGATION_AFTER.match(after))


def _normalise_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return [word for word in text.split() if word not in _ARTICLES]


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    width = len(needle)
    return any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))


def _match_option_text(text: str, choices: Sequence[str], letters: str) -> tuple[str | None, str]:
    """Read the answer from restated option text: exactly one option named (after the last cue if several)."""
    options = [_normalise_words(choice) for choice in choices]

    def named(segment: str) -> set[int]:
        words = _normalise_words(segment)
        hits = {i for i, option in enumerate(options) if _contains_words(words, option)}
        # An option whose words sit inside a longer named option ("Mars" in "Mars and Venus") is not named.
        return {
            i
            for i in hits
            if not any(
                j != i and len(options[j]) > len(options[i]) and _contains_words(options[j], options[i])
                for j in hits
            )
        }

    hits = named(text)
    if len(hits) == 1:
        return letters[hits.pop()], "option_text"
    if not hits:
        return None, "no_match"
    cues = list(_TEXT_CUE_RE.finditer(text))
    for cue in reversed(cues):
        tail_hits = named(text[cue.end() : cue.end() + 200])
        if len(tail_hits) == 1:
            index = tail_hits.pop()
            if not _is_option_negated(text[cue.end() :], choices[index]):
                return letters[index], "option_text"
    return None, "ambiguous"


def _is_option_negated(segment: str, option: str) -> bool:
    return bool(re.match(r"\s*(?:not|never)\b", segment, re.IGNORECASE)) and option.lower() not in segment[:4]


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

    # 2. An explicit answer statement; the last one wins ("A is wrong, B is wrong, the answer is C").
    statements: list[tuple[int, str]] = []
    for pattern in _ANSWER_CUE_RE:
        for match in pattern.finditer(clean):
            if _letter_is_marked(match, clean, keyword=False):
                statements.append((match.end(), match.group("letter")))
    for match in _LETTER_THEN_CUE_RE.finditer(clean):
        keyword = bool(re.match(r"(?:option|choice|answer)", match.group(0), re.IGNORECASE))
        if _is_negated(clean, match.start(), match.start()):
            continue
        if keyword or match.group("open") or match.group("close") or match.group("letter").isupper():
            if match.group("letter").upper() in _WORD_LETTERS and not (
                keyword or match.group("open") or match.group("close")
            ):
                # "A is correct" is fine, "I is correct" never happens; "a is right" is too risky.
                if (
                    match.group("letter") != "A"
                    or match.start() != 0
                    and clean[match.start() - 1] not in " \n"
                ):
                    continue
            statements.append((match.end(), match.group("letter")))
    if statements:
        statements.sort()
        return verdict(statements[-1][1], "answer_statement")

    # 3. The response opens with a letter: "B) Mars", "(C) …", "D: …", "b. Mars".
    leading = _LEADING_RE.match(clean)
    line_letters = {m.group(1).upper() for m in _LINE_OPTION_RE.finditer(clean)}
    if leading and len(line_letters) <= 1 and _letter_is_marked(leading, clean, keyword=False):
        letter = leading.group("letter")
        # A lower-case opening letter must be marked by punctuation: "b) Mars" yes, "c mars" no.
        rest = clean[leading.end() :]
        if (
            letter.isupper()
            or leading.group("open")
            or leading.group("close")
            or re.match(r"\s*[.:)\-]", rest)
        ):
            return verdict(letter, "leading_letter")

    # 4. Letters marked as options anywhere and not negated: "option b", "(C)". One letter only.
    marked: list[str] = []
    for match in _MARKED_RE.finditer(clean):
        letter = match.group("letter") or match.group("bare")
        if letter.upper() not in letters:
            continue
        if _is_negated(clean, match.start(), match.end()):
            continue
        marked.append(letter.upper())
    if len(line_letters) == 1:
        marked.extend(letter for letter in line_letters if letter in letters)
    if len(set(marked)) == 1:
        return ChoiceParse(marked[0], "marked_letter", True)

    # 5. Restated option text, when the options are known.
    if choices is not None:
        letter, rule = _match_option_text(clean, choices, letters)
        if letter is not None:
            return ChoiceParse(letter, rule, True)
        if rule == "ambiguous":
            return ChoiceParse(None, "ambiguous", False)
    if len(set(marked)) > 1:
        return ChoiceParse(None, "ambiguous", False)
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
    "答案是'{}",
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
