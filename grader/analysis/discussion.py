"""Find the discussion, a markdown cell that talks about the results in the student's own words,
and read what it claims: which model is better, and which factors it credits. The student's own
words are the sentences that do not speak to the reader (an order, "your ...", a question): a
prompt's text above or around the answer is not the discussion.

The reading is deliberately literal: a sentence that compares the two models ("X outperforms Y",
"Y performs worse than X", "the proposed model is better", "did not outperform") names a winner;
a word of a factor's vocabulary (FACTOR_WORDS) names that factor. Each claim keeps the sentence it
was read from, so a student sees what the grader read.

What is read is bounded (grader/analysis/limits.py): a markdown cell's first MAX_MARKDOWN_CHARS
characters, its first MAX_SENTENCES sentences, each sentence's first MAX_SENTENCE_CHARS, and the
cells looked at until the reading's deadline; every pattern here is linear in what it reads.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, replace
from itertools import chain
from typing import Literal

from grader.analysis.architecture import Factor
from grader.analysis.limits import MAX_MARKDOWN_CHARS, MAX_SENTENCE_CHARS, MAX_SENTENCES, Deadline, cells_named
from grader.notebook import Notebook

MIN_WORDS = 20
MIN_HEADED_WORDS = 10
"""Under a heading that names it ("## Conclusion", "**Key findings**"), a sentence is a discussion."""
# The optional "(" and its spaces go together: a leading `\s*` that may match nothing is tried from
# every space of a run, which is quadratic in the run.
_PLACEHOLDER = re.compile(r"(?:\(\s*+)?add (your )?(text|answer|discussion) here(?:\s*+\))?", re.I)
_COMPARISON = re.compile(
    r"\b(better|worse|best|outperform\w*|higher|lower|improv\w*|compar\w*|superior|overfit\w*|underfit\w*|"
    r"beats?|gain\w*|increase\w*|decrease\w*|reduc\w*|generaliz\w*|because|due to)\b",
    re.I,
)
# Spans cut by a scan (`_cut_spans`), not a lazy `.*?`: a regex tries every opener that never closes
# all the way to the end (quadratic); the scan stops at the first one.
_SPANS = (("<!--", "-->"), ("```", "```"))  # commented-out drafts and code do not count
# Each class stops at the next opener, so that a run of openers that never close is read once.
_STRIP = [
    re.compile(r"data:[\w/+.-]++;base64,[A-Za-z0-9+/=\s]++"),
    re.compile(r"!\[[^\[\]]*+\]\((?:[^()]++|\([^()]*+\))*+\)"),  # an image, its link with one level of ( )
    re.compile(r"<[^<>]++>"),
    re.compile(r"^[ \t]*+#[^\n]*+", re.M),  # headings alone are not a discussion
]


# A heading that names the discussion: the word, after a number and one word at most ("6. Key
# Observations", "Results and discussion"), on a heading line or in bold.
_NAMING = (r"(?:[\d.)]++[ \t]*+)?(?:(?:key|final|overall|general|main|brief|short|my|our)[ \t]++)?"
           r"(?:discussion|conclusions?|summary|results?|observations?|findings|takeaways?|analysis|remarks)\b")
_DISCUSSION_HEADING = re.compile(rf"^[ \t]*+(?:#++[ \t]*+{_NAMING}[^\n]{{0,30}}+$|\*\*[ \t]*+{_NAMING}[^*\n]{{0,30}}+\*\*)",
                                 re.I | re.M)
# Sentences that speak to the reader are a prompt's, not the student's discussion: an order ("Train
# your network ...", after a list mark or "Next,"), words to the reader ("your model", "you will";
# not "as you can see", nor a link's words), a question.
_ORDERS = frozenset("""build implement create analyze analyse compare develop extend write describe explain discuss modify
    try make add define choose answer comment evaluate include show provide save load consider remember submit complete
    fill give summarize summarise tune repeat select replace remove print plot visualize visualise calculate compute measure
    look check find apply take incorporate convert download upload adjust follow keep do don't perform identify justify
    determine investigate read go ensure rerun instantiate construct verify be see observe list let's lets""".split())
_OPENERS = frozenset("next now then also finally first second third here lastly again please".split())
_OPENING_CHARS = 80
_WORD = re.compile(r"[A-Za-z][A-Za-z']*+")
_TO_THE_READER = re.compile(r"\byour\b|\byou(?:'ll|[ \t]++(?:will|are[ \t]++going|have[ \t]++to|need|should|must|may|might|"
                            r"want|can(?![ \t]++(?:see|notice|observe)\b)))\b", re.I)
_LINK = re.compile(r"\[[^\[\]]*+\]\([^()]*+\)")


@dataclass(frozen=True)
class Discussion:
    present: bool
    cell: int | None
    """The cell that holds the discussion (the longest qualifying one)."""
    words: int = 0
    winner: Literal["baseline", "proposed"] | None = None
    """The model the discussion says performs better; None when it names none (or both equally often)."""
    winner_evidence: str = ""
    """The sentence that says so."""
    factors: tuple["NamedFactor", ...] = ()
    """The factors it credits, in the order it first names them."""


ClaimedFactor = Factor | Literal["augmentation"]
"""An architectural factor, or data augmentation: a training choice the grader's fixed config makes
the same for both models, so crediting it for the difference is a claim worth a look."""


@dataclass(frozen=True)
class NamedFactor:
    """A factor the discussion names, with the words and the sentence it was found in."""

    factor: ClaimedFactor
    words: str
    sentence: str


_NOT_DATA = r"(?<!data )(?<!input )(?<!image )(?<!pixel )"
FACTOR_WORDS: dict[ClaimedFactor, re.Pattern[str]] = {
    "normalization": re.compile(r"\bbatch[\s-]?norm\w*|\b(group|layer|instance)[\s-]?norm\w*|\bBN\b|"
                                rf"{_NOT_DATA}\bnormali[sz]ation\b", re.I),
    "residual": re.compile(r"\bresidual\w*|\bskip[\s-]?connections?\b|\bshort[\s-]?cuts?\b|\bidentity mapping", re.I),
    "dropout": re.compile(r"\bdrop[\s-]?out\w*", re.I),
    "depth": re.compile(r"\bdeeper\b(?!\s+(stages?|layers?|features?|blocks?|levels?|parts?|networks|models|architectures)\b)|\bdepth\b|\b(more|additional|extra|fewer|number of) (\w+ )?layers\b|\bshallower\b", re.I),
    "width": re.compile(r"\bwider\b|\bwidth\b|\b(more|additional|fewer|number of) (\w+ )?(filters|channels|kernels|feature maps)\b|"
                        r"(?<!3 )(?<!three )(?<!rgb )(?<!color )(?<!colour )\bchannels\b", re.I),
    "pooling": re.compile(r"\bpool(ing|s)?\b|\b(max|avg|average)[\s-]?pool\w*", re.I),
    "activation": re.compile(r"\b(leaky[\s-]?)?relu\b|\bgelu\b|\bs?elu\b|\bsilu\b|\bswish\b|\bmish\b|\btanh\b|"
                             r"\bactivation( functions?)?\b", re.I),
    "size": re.compile(r"\b(more|fewer|larger|greater|higher|number of|trainable) (number of )?parameters\b|\bcapacity\b|"
                       r"\b(larger|bigger|smaller) (model|network)\b|\bmodel size\b", re.I),
    "augmentation": re.compile(r"\b(data )?augment\w*|\brandom(ly)? (crop|flip)\w*|\bhorizontal flip\w*", re.I),
}
"""Each factor's vocabulary (README "The discussion checks")."""


def find_discussion(notebook: Notebook, after_cell: int,
                    deadline: Deadline | None = None) -> tuple[Discussion, tuple[str, ...]]:
    """The markdown cell after `after_cell` that discusses the results in the student's own words
    (one under a heading that names it first, else the longest), among those read before `deadline`
    (default: the static reading's own); and a warning naming those left unread.

    Its words are the sentences it says (`statements`): MIN_WORDS of them that compare, or
    MIN_HEADED_WORDS under a heading that names the discussion."""
    deadline = deadline or Deadline.after()
    best: Discussion = Discussion(False, None)
    best_headed = False
    unread: list[int] = []
    for cell in notebook.markdown_cells:
        if cell.index <= after_cell:
            continue
        if unread or deadline.passed:
            unread.append(cell.index)
            continue
        said = " ".join(statements(prose(cell.source)))
        words = len(re.findall(r"[A-Za-z]{2,}", said))
        headed = _headed(notebook, cell.index)
        if not (headed and words >= MIN_HEADED_WORDS or words >= MIN_WORDS and _COMPARISON.search(said)):
            continue
        if (headed, words) > (best_headed, best.words):
            best, best_headed = Discussion(True, cell.index, words), headed
    return best, (deadline.skipped(f"markdown {cells_named(unread)}"),) if unread else ()


def _headed(notebook: Notebook, index: int) -> bool:
    """Whether the markdown cell at `index`, or a heading cell right above it, has a heading that names
    the discussion."""
    above = notebook.cells[index - 1] if index > 0 else None
    return bool(_DISCUSSION_HEADING.search(notebook.cells[index].source[:MAX_MARKDOWN_CHARS])) or (
        above is not None and above.kind == "markdown" and not prose(above.source).strip()
        and bool(_DISCUSSION_HEADING.search(above.source[:MAX_MARKDOWN_CHARS])))


def statements(text: str) -> list[str]:
    """The sentences of `text` (prose) that the student says, each on one line: none in a cell that
    introduces what follows it (it ends with ':') or in a prompt (half its sentences or more speak to
    the reader); in others, all but those."""
    if text.rstrip().endswith(":"):
        return []
    sentences = [" ".join(s.split()) for s in _sentences(text)]
    sentences = [s for s in sentences if re.search(r"[A-Za-z]{2,}", s)]
    said = [s for s in sentences if not _to_the_reader(s)]
    return said if 2 * len(said) > len(sentences) else []


def _to_the_reader(sentence: str) -> bool:
    """An order, words to the reader or a question (`_ORDERS`, `_TO_THE_READER`)."""
    if sentence.endswith("?") or _TO_THE_READER.search(_LINK.sub(" ", sentence)):
        return True
    for m in _WORD.finditer(sentence[:_OPENING_CHARS]):
        word = m.group(0).lower()
        if (len(word) == 1 and sentence[m.end():m.end() + 1] in (".", ")")) or word in _OPENERS:
            continue  # a list letter ("a. Build ...") or an opening word ("Next, train ...")
        return word in _ORDERS
    return False


def prose(markdown: str) -> str:
    """The words of a markdown cell (its first MAX_MARKDOWN_CHARS characters): no comments, code,
    images, HTML tags, headings or placeholder."""
    text = markdown[:MAX_MARKDOWN_CHARS]
    for opener, closer in _SPANS:
        text = _cut_spans(text, opener, closer)
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    return _PLACEHOLDER.sub(" ", text)


def _sentences(text: str) -> list[str]:
    """The first MAX_SENTENCES sentences of `text` that hold anything, each cut to MAX_SENTENCE_CHARS."""
    found: list[str] = []
    at = 0
    for end in chain(_SENTENCE.finditer(text), [None]):
        if len(found) == MAX_SENTENCES:
            break
        stop = end.start() if end else len(text)
        piece = text[at:min(stop, at + MAX_SENTENCE_CHARS)]
        if piece.strip():
            found.append(piece)
        at = end.end() if end else stop
    return found


def _cut_spans(text: str, opener: str, closer: str) -> str:
    """`text` with each span from `opener` to the next `closer` made a space, as `opener.*?closer`
    would; an opener that is never closed, and all that follows it, is kept."""
    kept, at = [], 0
    while (start := text.find(opener, at)) >= 0:
        end = text.find(closer, start + len(opener))
        if end < 0:
            break  # no closer after this opener: none after any later one either
        kept += [text[at:start], " "]
        at = end + len(closer)
    return "".join(kept) + text[at:]


Side = Literal["baseline", "proposed"]
_BASELINE_WORDS = r"baseline|lenet[\s-]?5?|base model|original model"
_PROPOSED_WORDS = r"proposed|my model|our model|new model|improved model|my network|our network"
# A comparison: what it says of the model before it (its subject). Passive forms ("outperformed
# by") and comparisons that speak of loss or error ("lower loss") are turned around below.
_BETTER = re.compile(r"\b(outperform\w*|beats?|beaten|better|superior|surpass\w*|exceed\w*|best|more accurate|"
                     r"(higher|greater)( \w+){0,3} (accuracy|acc)|(lower|smaller|less)( \w+){0,3} (loss|error))\b", re.I)
_WORSE = re.compile(r"\b(worse|worst|underperform\w*|inferior|less accurate|"
                    r"(lower|smaller|less)( \w+){0,3} (accuracy|acc)|(higher|greater)( \w+){0,3} (loss|error))\b", re.I)
_PASSIVE = re.compile(r"(?<!\s)\s*+by\b", re.I)  # matched where a comparison ends (a word, not a space)
_THAN = re.compile(r"\bthan\b", re.I)
_NEGATION = re.compile(r"\b(not|never|failed|fails|unable|cannot)\b|n't\b|\bno$", re.I)
# Sentences end at . ! ? or a paragraph; a list item starts one. A single line break is a wrapped line.
_SENTENCE = re.compile(r"(?<=[.!?])\s++|\n\s*\n|\n(?=\s*+(?:[-*+]|\d++[.)])\s)")


def read_claims(discussion: Discussion, notebook: Notebook, baseline: str | None, proposed: str | None) -> Discussion:
    """`discussion` with the winner and the factors its cell claims."""
    if discussion.cell is None:
        return discussion
    sentences = statements(prose(next(c.source for c in notebook.cells if c.index == discussion.cell)))
    claims = [(side, s) for s in sentences if (side := claimed_winner(s, baseline, proposed))]
    votes = Counter(side for side, _ in claims).most_common()
    winner: Side | None = votes[0][0] if votes and (len(votes) == 1 or votes[0][1] > votes[1][1]) else None
    evidence = next((s for side, s in claims if side == winner), "")
    return replace(discussion, winner=winner, winner_evidence=evidence, factors=named_factors(sentences))


_SAMENESS = re.compile(r"\b(same|identical|equal|similar|both|neither|nor|no|not|without|lacks?|unchanged)\b", re.I)
_BEFORE = 40
"""Characters before a factor's words searched for sameness ('the same number of parameters', 'no dropout')."""


def named_factors(sentences: list[str]) -> tuple[NamedFactor, ...]:
    """Each factor the sentences credit, with the first sentence that does, in the order named.

    Words that say the models share a component or lack it ('the same number of parameters',
    'neither uses dropout') name no difference, so they credit nothing."""
    found: dict[ClaimedFactor, NamedFactor] = {}
    for sentence in sentences:
        hits = sorted((m.start(), factor, m.group(0)) for factor, pattern in FACTOR_WORDS.items()
                      if factor not in found for m in pattern.finditer(sentence)
                      if not _says_same(sentence[max(0, m.start() - _BEFORE):m.start()]))
        for _, factor, words in hits:
            found.setdefault(factor, NamedFactor(factor, words, sentence))
    return tuple(found.values())


_EXCEPT = re.compile(r"\b(except|but|apart from|other than|besides|only|differ\w*|added|adds|with)\b", re.I)


def _says_same(before: str) -> bool:
    """The words before a factor say the models share or lack it, and no 'except' turns that around
    ('identical except for batch normalization' credits it)."""
    same = list(_SAMENESS.finditer(before))
    return bool(same) and not _EXCEPT.search(before[same[-1].end():])


_FEWER = re.compile(r"\b(shallower|fewer|smaller|narrower|less)\b", re.I)
_MORE = re.compile(r"\b(deeper|more|additional|extra|wider|larger|bigger|greater|higher)\b", re.I)


def claimed_direction(f: NamedFactor) -> int:
    """+1 when the words say the proposed model has more of a factor ('deeper', 'more filters'), -1 for
    less ('shallower', 'fewer parameters'), 0 when they say neither ('depth', 'batch norm')."""
    return -1 if _FEWER.search(f.words) else 1 if _MORE.search(f.words) else 0


def claimed_winner(sentence: str, baseline: str | None, proposed: str | None) -> Side | None:
    """The model a sentence says performs better, from its first comparison; None when it makes none.

    Each comparison costs a bisection, not a pass over the sentence: a sentence of many comparisons
    and few models is read in linear time."""
    mentions = _mentions(sentence, baseline, proposed)
    if not mentions:
        return None  # a comparison names its model before or after it
    starts = [start for start, _, _ in mentions]
    first_end = min(end for _, end, _ in mentions)
    thans = [m.start() for m in _THAN.finditer(sentence)]
    for match in sorted([*_BETTER.finditer(sentence), *_WORSE.finditer(sentence)], key=lambda m: m.start()):
        better = _BETTER.fullmatch(match.group(0)) is not None
        if _PASSIVE.match(sentence, match.end()):
            better = not better  # "the baseline was outperformed by ..."
        following = bisect_left(starts, match.end())
        if match.start() >= first_end:  # a model is named before the comparison: its subject
            _, end, side = [m for m in mentions if m[1] <= match.start()][-1]
            if _NEGATION.search(" ".join(sentence[end:match.start()].split()[-3:])):
                better = not better  # "X did not outperform Y" (the verb's own negation, not a clause's)
        elif following < len(mentions) and not _than_between(thans, match.end(), starts[following]):
            side = mentions[following][2]  # "the best model is X": the model after the comparison is its subject
            # ("... were worse than the baseline" compares something else with X: no claim about X)
        else:
            continue
        return side if better else _other(side)
    return None


def _than_between(thans: list[int], start: int, end: int) -> bool:
    """Whether a 'than' (of those starting at `thans`, in order) lies wholly within [start, end)."""
    i = bisect_left(thans, start)
    return i < len(thans) and thans[i] + len("than") <= end


def _mentions(sentence: str, baseline: str | None, proposed: str | None) -> list[tuple[int, int, Side]]:
    """(start, end, side) of each mention of either model, in order."""
    words: list[tuple[str, Side]] = [(_BASELINE_WORDS, "baseline"), (_PROPOSED_WORDS, "proposed")]
    words += [(re.escape(name), side) for name, side in ((baseline, "baseline"), (proposed, "proposed")) if name]
    found = [(m.start(), m.end(), side) for pattern, side in words for m in re.finditer(rf"\b(?:{pattern})\b", sentence, re.I)]
    return sorted(found)


def _other(side: Side) -> Side:
    return "proposed" if side == "baseline" else "baseline"
