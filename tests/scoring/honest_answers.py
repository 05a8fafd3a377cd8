"""A hand-written corpus of realistic multiple-choice answers, each labelled as a person would read it.

Used by ``tests/scoring/test_honest_answers.py`` and ``benchmarks/honest_extractor.py``. Each entry is the
response, the letter a careful reader takes from it (``None`` when it gives no single answer), a category,
the number of options and, for part of the corpus, the option texts.

``CORPUS`` was written first, to describe how speech LLMs answer; ``HELD_OUT`` was written after the
extraction rules, as fresh paraphrases, to check that the rules generalise rather than fit ``CORPUS``.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = (
    "clear_letter",
    "option_text",
    "hedge",
    "refusal",
    "chain_of_thought",
    "language",
    "negation",
    "latex",
    "lists_options_first",
    "no_answer",
)
"""Kinds of answer. Hedges and refusals must never be read as a letter."""

NO_LETTER_CATEGORIES = ("hedge", "refusal")


@dataclass(frozen=True)
class HonestAnswer:
    """One labelled response.

    Attributes:
        response: the model's free-text answer.
        expected: the letter a careful reader takes from it, or None when there is no single answer.
        category: one of :data:`CATEGORIES`.
        n_choices: number of options (letters A… onwards).
        choices: the option texts in letter order, when the scorer knows them.
    """

    response: str
    expected: str | None
    category: str
    n_choices: int = 4
    choices: tuple[str, ...] | None = None

    @property
    def carries_letter(self) -> bool:
        """True when the response states a letter clearly (option-text-only answers do not)."""
        return self.expected is not None and self.category != "option_text"


PLANETS = ("Venus", "Mars", "Jupiter", "Saturn")
CAPITALS = ("Sydney", "Melbourne", "Canberra", "Perth")
METALS = ("copper", "aluminium", "iron", "zinc")
LEGS = ("Six", "Four", "Ten", "Eight")
TRUE_FALSE = ("True", "False")
YES_NO = ("Yes", "No")
PRIMARY = ("red", "green", "blue")
CITIES = ("Paris", "London", "Berlin", "Madrid", "Rome")
ORGANS = ("the heart", "the liver", "the lungs", "the kidneys")
TEN = tuple(f"{n} apples" for n in range(1, 11))
WRITERS = ("Charles Dickens", "Jane Austen", "Mark Twain", "Leo Tolstoy")


def _a(response: str, expected: str | None, category: str, n: int = 4, choices=None) -> HonestAnswer:
    return HonestAnswer(response, expected, category, n, choices)


_CLEAR = [
    ("It's D", "D"),
    ("It's D.", "D"),
    ("My choice is C.", "C"),
    ("Definitely C.", "C"),
    ("It has to be D.", "D"),
    ("The correct response is B.", "B"),
    ("I believe it's C.", "C"),
    ("That leaves B.", "B"),
    ("The answer is B.", "B"),
    ("Answer: A", "A"),
    ("The correct answer is A because it is the only metal listed.", "A"),
    ("The answer is A because the others are gases.", "A"),
    ("B", "B"),
    ("C.", "C"),
    ("(D)", "D"),
    ("I'd go with B.", "B"),
    ("I'll go with option A.", "A"),
    ("I'm going with C.", "C"),
    ("I choose D.", "D"),
    ("I would pick B here.", "B"),
    ("My final answer is D.", "D"),
    ("My pick is A.", "A"),
    ("My guess would be C.", "C"),
    ("The best answer is D.", "D"),
    ("The right choice is B.", "B"),
    ("The correct option is (C).", "C"),
    ("Option C is correct.", "C"),
    ("B is the answer.", "B"),
    ("D is the correct one.", "D"),
    ("C it is.", "C"),
    ("B would be my answer.", "B"),
    ("So the answer is D.", "D"),
    ("The answer would be C, since water expands when it freezes.", "C"),
    ("The answer is clearly B.", "B"),
    ("The answer is most likely D.", "D"),
    ("It must be A.", "A"),
    ("It should be B.", "B"),
    ("Clearly B.", "B"),
    ("Probably C.", "C"),
    ("I'm fairly confident it's D.", "D"),
    ("I think the answer is B.", "B"),
    ("I'd say C.", "C"),
    ("Hmm, I'd say B.", "B"),
    ("Correct answer: D", "D"),
    ("Final answer: (B)", "B"),
    ("The answer is **B**.", "B"),
    ("**C**", "C"),
    ("**Answer: D**", "D"),
    ("Sure! The answer is A.", "A"),
    ("Good question! It's B.", "B"),
    ("I'm not completely sure, but I think it's C.", "C"),
    ("That would be B.", "B"),
    ("That's D.", "D"),
    ("The answer is A, the heart.", "A"),
    ("Answer B.", "B"),
    ("The answer is E.", "E", 5),
    ("The answer is (E).", "E", 5),
    ("I choose J.", "J", 10),
    ("The answer is H.", "H", 10),
    ("The answer is I.", "I", 10),
    ("The correct answer is G, seven apples.", "G", 10),
    ("A", "A", 2),
    ("The answer is B.", "B", 2),
    ("C is correct.", "C", 3),
    ("It's C.", "C", 3),
    ("The answer is C.", None, 2),
    ("Letter B.", "B"),
]

_OPTION_TEXT = [
    ("Mars", "B", PLANETS),
    ("I think it's Mars.", "B", PLANETS),
    ("The capital of Australia is Canberra.", "C", CAPITALS),
    ("Canberra, not Sydney.", "C", CAPITALS),
    ("It's Canberra. Many people think it's Sydney, but it isn't.", "C", CAPITALS),
    ("Not Sydney or Melbourne — it's Canberra.", "C", CAPITALS),
    ("Sydney or Melbourne, I'm not sure which.", None, CAPITALS),
    ("It's either Venus or Mars.", None, PLANETS),
    ("Iron is the metal that rusts.", "C", METALS),
    ("The answer is iron.", "C", METALS),
    ("Eight legs.", "D", LEGS),
    ("Spiders have eight legs.", "D", LEGS),
    ("True.", "A", TRUE_FALSE),
    ("That statement is false.", "B", TRUE_FALSE),
    ("Yes, it is.", "A", YES_NO),
    ("No.", "B", YES_NO),
    ("Blue.", "C", PRIMARY),
    ("The sky appears blue because of Rayleigh scattering.", "C", PRIMARY),
    ("Berlin is the capital of Germany.", "C", CITIES),
    ("The capital is Rome.", "E", CITIES),
    ("It's the liver.", "B", ORGANS),
    ("The liver detoxifies the blood.", "B", ORGANS),
    ("The lungs, not the heart.", "C", ORGANS),
    ("Jane Austen wrote Pride and Prejudice.", "B", WRITERS),
    ("It was written by Mark Twain.", "C", WRITERS),
    ("Either Charles Dickens or Jane Austen.", None, WRITERS),
    ("Venus is too hot, so it's Mars.", "B", PLANETS),
    ("Seven apples.", "G", TEN),
    ("Jupiter and Saturn are both gas giants.", None, PLANETS),
]

_HEDGE = [
    ("The answer is B or D.", None),
    ("C and D are both correct.", None),
    ("Either A or C.", None),
    ("I'm torn between B and C.", None),
    ("It could be A or B.", None),
    ("It's either B or C.", None),
    ("B or C.", None),
    ("Both A and D are correct.", None),
    ("I think B, but C is also possible.", None),
    ("The answer is A, B or C.", None),
    ("Options A and D are both plausible.", None),
    ("It might be B, or maybe D.", None),
    ("I'd say B or C, hard to tell.", None),
    ("The answers are B and C.", None),
    ("B/C", None),
    ("Possibly A; possibly C.", None),
    ("Probably B, but D could also be right.", None),
    ("I can't decide between option A and option B.", None),
    ("A and C both seem right to me.", None),
    ("The correct answers are A and D.", None),
    ("答案是B或C。", None),
    ("Die Antwort ist B oder C.", None),
    ("La respuesta es A o B.", None),
    ("Either C or D, I'm not sure.", None),
    ("It's B. Although C could also be correct.", None),
]

_REFUSAL = [
    ("I can't answer that.", None),
    ("I'm not sure.", None),
    ("None of the options is correct.", None),
    ("I'm sorry, but I can't help with that.", None),
    ("I don't know the answer to this question.", None),
    ("I am unable to determine the correct answer.", None),
    ("None of the above options are right.", None),
    ("I cannot answer this question without more context.", None),
    ("Sorry, I don't have enough information to choose.", None),
    ("I'm not able to pick one of these.", None),
    ("As an AI, I can't give an opinion on that.", None),
    ("I'd rather not guess.", None),
    ("我不知道。", None),
    ("Ich weiß es nicht.", None),
    ("No lo sé.", None),
    ("I'm not sure, none of A, B, C or D seems right.", None),
]

_COT = [
    (
        "Let's look at each option. A is too small, B is too large, and D is a gas. "
        "Therefore the answer is C.",
        "C",
    ),
    ("A is wrong because it rusts. B is wrong because it melts. So the answer is D.", "D"),
    (
        "First, consider option A: it is a mammal, so no. Option B is a reptile, also no. "
        "Option C is a bird, which fits the description. The correct answer is C.",
        "C",
    ),
    ("Option A can be eliminated. Option B doesn't fit. Option D is irrelevant. So C.", "C"),
    (
        "We need the largest planet. Venus and Mars are rocky and small. Saturn is big, but Jupiter is "
        "bigger. So the answer is C.",
        "C",
    ),
    (
        "Step 1: the reaction releases heat. Step 2: that means it's exothermic. "
        "Looking at the options, B matches. Final answer: B",
        "B",
    ),
    ("A: wrong. B: wrong. C: correct. D: wrong.", "C"),
    (
        "Let me think. Photosynthesis uses light, so A is out. Respiration releases energy, which is what "
        "the question asks. The answer is B.",
        "B",
    ),
    ("At first I thought A, but after checking the units, the answer is actually D.", "D"),
    ("Hmm. Sodium is a metal, chlorine is a gas, and argon is noble. That leaves B.", "B"),
    (
        "The question asks for a prime. 4 is even, 6 is even, 9 is 3 times 3, and 7 is prime. "
        "So the correct choice is D.",
        "D",
    ),
    (
        "Iron rusts because it reacts with oxygen and water. Copper doesn't rust, it tarnishes... iron. C.",
        "C",
    ),
    (
        "Let's compare A and B. A gives 12, B gives 14. The question says 14, so B is correct.",
        "B",
    ),
    (
        "Option A would need more energy, and option B has the wrong sign. Option C is the only one left, so C.",
        "C",
    ),
    (
        "Considering all four options carefully, the one that best fits is option D, because it is the "
        "only one that mentions the boiling point.",
        "D",
    ),
    (
        "If the object is in free fall, its acceleration is g. A says 0, B says g, C says 2g, D says g/2. "
        "Therefore B.",
        "B",
    ),
    ("Is it A or B? A is a herbivore, B is a carnivore. The question asks for a carnivore, so B.", "B"),
    (
        "<think>A seems plausible but B is stronger. Let me check C. No.</think>The answer is B.",
        "B",
    ),
    ("Working through it: 3 × 4 = 12, minus 2 is 10. Ten is option C. So the answer is C.", "C"),
    ("Neither A nor D makes sense here, and B contradicts the premise. The only remaining answer is C.", "C"),
    ("The first two options are clearly wrong. Between C and D, D is more precise. I'll go with D.", "D"),
]

_LANGUAGE = [
    ("La respuesta es C.", "C"),
    ("la respuesta es C", "C"),
    ("La respuesta correcta es la B.", "B"),
    ("Die Antwort ist B.", "B"),
    ("die Antwort ist B", "B"),
    ("Die richtige Antwort ist D.", "D"),
    ("A resposta é D.", "D"),
    ("a resposta é D", "D"),
    ("A resposta correta é a letra B.", "B"),
    ("La risposta è A.", "A"),
    ("la risposta è A", "A"),
    ("La risposta corretta è C.", "C"),
    ("Ответ: B", "B"),
    ("ответ: B", "B"),
    ("Правильный ответ — C.", "C"),
    ("正解はB", "B"),
    ("正解はBです。", "B"),
    ("答えはC です", "C"),
    ("答えはDです。", "D"),
    ("答案是C", "C"),
    ("答案是 B。", "B"),
    ("正确答案是D。", "D"),
    ("我选A。", "A"),
    ("La bonne réponse est B.", "B"),
    ("Je choisis C.", "C"),
    ("Réponse : D", "D"),
    ("정답은 B입니다.", "B"),
    ("La opción correcta es D.", "D"),
    ("Ich wähle A.", "A"),
    ("L'opzione corretta è B.", "B"),
]

_NEGATION = [
    ("Neither A nor B is correct; it's C.", "C"),
    ("The answer is not A. It is C.", "C"),
    ("It isn't B, it's C.", "C"),
    ("Not A.", None),
    ("not A", None),
    ("Neither A nor B.", None),
    ("A is wrong.", None),
    ("A is wrong, and so is B.", None),
    ("A is wrong. B is wrong. D is wrong. The answer is C.", "C"),
    ("It's not A, it's D.", "D"),
    ("Definitely not B. The answer is A.", "A"),
    ("The answer isn't C, it's B.", "B"),
    ("B is incorrect; C is correct.", "C"),
    ("Option A is incorrect, so option D.", "D"),
    ("It can't be A or B, so it must be C.", "C"),
    ("We can rule out A, B and D, leaving C.", "C"),
    ("Not B — the answer is D.", "D"),
    ("The answer is C, not A.", "C"),
    ("The answer is D rather than B.", "D"),
    ("Definitely not C.", None),
    ("I wouldn't pick A.", None),
    ("A and B are both wrong.", None),
]

_LATEX = [
    ("$\\boxed{\\text{A}}$", "A"),
    ("\\( \\text{B} \\)", "B"),
    ("\\boxed{C}", "C"),
    ("The answer is $\\boxed{D}$.", "D"),
    ("The answer is \\( \\boxed{B} \\).", "B"),
    ("\\[ \\boxed{\\textbf{C}} \\]", "C"),
    ("The correct option is \\(\\text{D}\\).", "D"),
    ("Final answer: $\\mathrm{A}$", "A"),
    ("$$\\boxed{(B)}$$", "B"),
    ("The answer is $C$.", "C"),
    ("Therefore, \\boxed{D}.", "D"),
    ("\\boxed{\\text{(C) Jupiter}}", "C"),
    ("The answer is \\( \\text{B} \\) or \\( \\text{C} \\).", None),
]

_LISTS = [
    ("A) Six B) Four C) Ten D) Eight -> D", "D", LEGS),
    ("A) Six B) Four C) Ten D) Eight -> D", "D", None),
    ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn\n\nThe answer is B.", "B", PLANETS),
    ("The options are A. Sydney, B. Melbourne, C. Canberra and D. Perth. The answer is C.", "C", CAPITALS),
    ("A. copper\nB. aluminium\nC. iron\nD. zinc\n\nAnswer: C", "C", None),
    ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn\n\nB) Mars", "B", PLANETS),
    ("A) Venus B) Mars C) Jupiter D) Saturn. Mars is the red planet.", "B", PLANETS),
    ("Options: (A) 2 (B) 4 (C) 6 (D) 8. I pick (C).", "C", None),
    ("A: 1, B: 2, C: 3, D: 4. Correct: B", "B", None),
    ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn", None, PLANETS),
    ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn", None, None),
    ("A. True\nB. False\n\nB", "B", TRUE_FALSE),
    ("A) red B) green C) blue => C", "C", PRIMARY),
    ("Your choices were A) Paris, B) London, C) Berlin, D) Madrid, E) Rome. I'd say E.", "E", CITIES),
    ("A) Six\nB) Four\nC) Ten\nD) Eight\nThe answer: D) Eight", "D", LEGS),
    ("(A) the heart (B) the liver (C) the lungs (D) the kidneys — the answer is (C).", "C", ORGANS),
    ("A - Venus, B - Mars, C - Jupiter, D - Saturn. Jupiter.", "C", PLANETS),
]

_NO_ANSWER = [
    ("A planet is a large body orbiting a star.", None),
    ("That's a great question about astronomy.", None),
    ("Sure, let me help you with that.", None),
    ("Could you repeat the question?", None),
    ("It depends on the temperature.", None),
    ("I think so.", None, 10),
    ("The question is about chemistry.", None),
    ("Hmm, let me think about this for a second.", None),
    ("A lot of people get this one wrong.", None),
    ("I believe the options are all plausible in some way.", None),
    ("This is a question about the solar system, which has eight planets.", None),
    ("It is a gas at room temperature.", None),
    ("Water boils at 100 degrees Celsius at sea level.", None),
    ("Vitamin C is found in oranges.", None),
    ("The capital of Australia is a planned city.", None, 4, CAPITALS),
    ("Let me know if you have other questions!", None),
]


def _build(rows, category: str) -> list[HonestAnswer]:
    built = []
    for row in rows:
        if category == "option_text":
            response, expected, choices = row
            built.append(_a(response, expected, category, len(choices), choices))
        elif category == "lists_options_first":
            response, expected, choices = row
            n = len(choices) if choices else 4
            built.append(_a(response, expected, category, n, choices))
        else:
            response, expected, *rest = row
            built.append(_a(response, expected, category, *rest))
    return built


CORPUS: list[HonestAnswer] = [
    *_build(_CLEAR, "clear_letter"),
    *_build(_OPTION_TEXT, "option_text"),
    *_build(_HEDGE, "hedge"),
    *_build(_REFUSAL, "refusal"),
    *_build(_COT, "chain_of_thought"),
    *_build(_LANGUAGE, "language"),
    *_build(_NEGATION, "negation"),
    *_build(_LATEX, "latex"),
    *_build(_LISTS, "lists_options_first"),
    *_build(_NO_ANSWER, "no_answer"),
]

# Written after the extraction rules, as fresh paraphrases: a check that the rules generalise.
_HELD_OUT_ROWS = [
    ("I'm pretty sure it's B.", "B", "clear_letter"),
    ("Going to say D on this one.", "D", "clear_letter"),
    ("Without a doubt, the answer is A.", "A", "clear_letter"),
    ("The most accurate option here is C.", "C", "clear_letter"),
    ("Answer is D.", "D", "clear_letter"),
    ("I'd choose C, since it matches the definition.", "C", "clear_letter"),
    ("Surely B.", "B", "clear_letter"),
    ("It would have to be C.", "C", "clear_letter"),
    ("The correct choice here would be option A.", "A", "clear_letter"),
    ("D, because the others are mammals.", "D", "clear_letter"),
    ("The best fit is B.", "B", "clear_letter"),
    ("I'll pick F.", "F", "clear_letter", 6),
    ("Could be B or could be C, honestly.", None, "hedge"),
    ("Maybe A, maybe D.", None, "hedge"),
    ("Both option B and option C look correct.", None, "hedge"),
    ("I'd narrow it down to A or D.", None, "hedge"),
    ("The answer is either B or D.", None, "hedge"),
    ("C or possibly D.", None, "hedge"),
    ("I honestly don't know.", None, "refusal"),
    ("I cannot determine which option is correct.", None, "refusal"),
    ("There is no correct answer among these options.", None, "refusal"),
    ("Sorry, I can't help with this one.", None, "refusal"),
    ("B can be ruled out immediately. A is too slow. D is too fast. So it's C.", "C", "chain_of_thought"),
    (
        "Option A doesn't work, option C is too broad, so option B is the right answer.",
        "B",
        "chain_of_thought",
    ),
    (
        "Checking each: A fails, B fails, C fails. Only D remains, so the answer must be D.",
        "D",
        "chain_of_thought",
    ),
    (
        "The reaction needs oxygen, which rules out A. Between B and C, C is faster. Answer: C.",
        "C",
        "chain_of_thought",
    ),
    ("Die korrekte Antwort ist C.", "C", "language"),
    ("La réponse est D.", "D", "language"),
    ("La respuesta sería B.", "B", "language"),
    ("答案应该是C。", "C", "language"),
    ("正解は A です。", "A", "language"),
    ("Ответ — D.", "D", "language"),
    ("It's not D; I'd go with B.", "B", "negation"),
    ("A can't be right. The answer is B.", "B", "negation"),
    ("Certainly not option C.", None, "negation"),
    ("Option D is wrong.", None, "negation"),
    ("\\(\\boxed{D}\\)", "D", "latex"),
    ("So the answer is $\\textbf{B}$.", "B", "latex"),
    ("Answer: \\( \\mathbf{C} \\)", "C", "latex"),
    ("That's the kind of question people argue about.", None, "no_answer"),
    ("Interesting, the planets differ a lot in size.", None, "no_answer"),
]
_HELD_OUT_TEXT = [
    ("Definitely Jupiter.", "C", PLANETS),
    ("Not Mars, it's Venus.", "A", PLANETS),
    ("I'd say Perth or Canberra.", None, CAPITALS),
    ("It's false.", "B", TRUE_FALSE),
    ("Pride and Prejudice was written by Jane Austen, so that's my answer.", "B", WRITERS),
    ("Zinc, I believe.", "D", METALS),
]
_HELD_OUT_LISTS = [
    ("A. Venus B. Mars C. Jupiter D. Saturn — my answer: C", "C", PLANETS),
    ("(A) Sydney\n(B) Melbourne\n(C) Canberra\n(D) Perth\n\nI choose (C).", "C", CAPITALS),
    ("a) copper b) aluminium c) iron d) zinc. The answer is c.", "C", METALS),
]

# A second fresh batch, written after the rules had been adjusted to the first.
_HELD_OUT_ROWS_2 = [
    ("Okay, so I would answer B.", "B", "clear_letter"),
    ("The right one here is D.", "D", "clear_letter"),
    ("My vote goes to C.", "C", "clear_letter"),
    ("I'm confident the correct answer is A.", "A", "clear_letter"),
    ("Answer — C", "C", "clear_letter"),
    ("It's gotta be B.", "B", "clear_letter"),
    ("Hmm, A or C... I can't really say.", None, "hedge"),
    ("Could be A. Could also be B.", None, "hedge"),
    ("Either of B and D would work.", None, "hedge"),
    ("I really have no idea which one is right.", None, "refusal"),
    ("I don't feel comfortable answering this.", None, "refusal"),
    (
        "First, A is impossible since it's negative. Second, B and D are too large. C is what's left, so C.",
        "C",
        "chain_of_thought",
    ),
    ("Looking at it again, option B fits best.", "B", "chain_of_thought"),
    ("Die Lösung ist D.", "D", "language"),
    ("Respuesta: B", "B", "language"),
    ("答案：选项A", "A", "language"),
    ("C, definitely not A.", "C", "negation"),
    ("Not option B.", None, "negation"),
    ("$\\text{(D)}$", "D", "latex"),
    ("Well, the weather today is nice.", None, "no_answer"),
]
_HELD_OUT_TEXT_2 = [
    ("Saturn, obviously.", "D", PLANETS),
    ("Melbourne isn't the capital; Canberra is.", "C", CAPITALS),
    ("Yes.", "A", YES_NO),
]

HELD_OUT: list[HonestAnswer] = [
    *(_a(row[0], row[1], row[2], *row[3:]) for row in _HELD_OUT_ROWS_2),
    *_build(_HELD_OUT_TEXT_2, "option_text"),
    *(_a(row[0], row[1], row[2], *row[3:]) for row in _HELD_OUT_ROWS),
    *_build(_HELD_OUT_TEXT, "option_text"),
    *_build(_HELD_OUT_LISTS, "lists_options_first"),
]
