"""Proposing pals across the two libraries of a partnership (pure).

Who is matched: the active participants of the partnership's two libraries who have no pal
yet, in order of id, so the same store gives the same proposal (no randomness anywhere).

How: two participants may be pals when their ages (`relay.consent.youngest_age`: the year of
birth, or the lowest age of the age band) are at most `[matching] max_age_gap` years apart,
or when neither has an age recorded. Each possible pair has a score: the same language (4)
or one learning the other's (3: an interest such as "learning fr" or "french"), 2 for each
shared interest (up to three), and the closeness of their ages (`max_age_gap` minus the
difference, 1 more for the same age band). An assignment (the Hungarian method, cost model
O(n³) for n participants: a class of 30 against 27 is instant) first gives a pal to as many
participants as possible, then takes the highest total score. Only then, under
`uneven = "two-pals"`, those still without a pal get a second assignment among the
participants of the other library who have exactly one pal in the proposal, so everyone
has a pal before anyone has two; under "leave-out" they wait for the next enrolment. Under
"together", each one left over is teamed with a participant of their own library who has a
pal in the proposal (a second assignment, scored like pals: same language, shared
interests, closest age; the pal must be within the age gap of both), and the two write
together to that pal: the pal gets both as pals, each teammate has one pal, and a letter
the pal writes to either reaches both (`Participant.writes_with`, relay.letters.delivering).
No one is in more than one team. Every participant left without a pal is listed with the
reason.

Groups (classes and clubs, `Participant.is_group`) are matched only with groups, and people
only with people: the two are proposed apart, each as above, and a group and a person are
never pals. A group's age is its age band's.

Each pair carries its reasons as data (`Reasons`) and in English words (`explain`), for
staff to read before they accept the proposal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from relay.config import MatchingSettings, Partnership
from relay.consent import youngest_age
from relay.store.records import ACTIVE, Participant

# What an interest may say to mean "I am learning this language" (lower-cased, as kept).
LANGUAGE_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("english", "inglés", "ingles", "anglais"),
    "es": ("spanish", "español", "espanol", "espagnol"),
    "fr": ("french", "francés", "frances", "français", "francais"),
}
SHARED_INTERESTS_COUNTED = 3

UnmatchedReason = Literal["age-gap", "no-age", "waiting", "not-chosen"]


@dataclass(frozen=True)
class Reasons:
    """Why two participants make good pals."""

    ages: tuple[int | None, int | None]
    same_band: str  # the age band both are in, "" otherwise
    language: str  # the language both write in, "" otherwise
    learner: str  # the id of the one learning the other's language, "" for none
    interests: tuple[str, ...]  # shared, in the first one's order


@dataclass(frozen=True)
class ProposedPair:
    first: Participant  # of the partnership's first library
    second: Participant
    reasons: Reasons
    # Under "two-pals": the id of the one who gets this as a second pal ("" for none).
    writes_to_two: str = ""
    # Under "together": who of the pal's library writes together with the other one.
    teammate: Participant | None = None


@dataclass(frozen=True)
class Unmatched:
    participant: Participant
    reason: UnmatchedReason
    age: int | None
    other_library: str


@dataclass(frozen=True)
class Proposal:
    partnership: str
    settings: MatchingSettings
    pairs: tuple[ProposedPair, ...]
    unmatched: tuple[Unmatched, ...]


def waiting_for_a_pal(
    everyone: Iterable[Participant], libraries: Sequence[str]
) -> dict[str, list[Participant]]:
    """The active participants without a pal, per library, in order of id."""
    found: dict[str, list[Participant]] = {library: [] for library in libraries}
    for participant in sorted(everyone, key=lambda p: (p.number, p.id)):
        if participant.library in found and participant.status == ACTIVE and not participant.pals:
            found[participant.library].append(participant)
    return found


def propose(
    partnership: Partnership,
    everyone: Iterable[Participant],
    settings: MatchingSettings,
    today: date,
) -> Proposal:
    """Pairs across the partnership's first two libraries, and who is left without a pal:
    people with people and groups with groups."""
    left_id, right_id = partnership.libraries[0], partnership.libraries[1]
    waiting = waiting_for_a_pal(everyone, (left_id, right_id))
    pairs: list[ProposedPair] = []
    unmatched: list[Unmatched] = []
    for groups in (False, True):
        left = [p for p in waiting[left_id] if p.is_group == groups]
        right = [p for p in waiting[right_id] if p.is_group == groups]
        found, alone = _propose_among(left, right, (left_id, right_id), settings, today)
        pairs += found
        unmatched += alone
    pairs.sort(key=lambda pair: (pair.first.number, pair.second.number))
    unmatched.sort(key=lambda one: (one.participant.library != left_id, one.participant.number))
    return Proposal(partnership.id, settings, tuple(pairs), tuple(unmatched))


def _propose_among(
    left: list[Participant],
    right: list[Participant],
    library_ids: tuple[str, str],
    settings: MatchingSettings,
    today: date,
) -> tuple[list[ProposedPair], list[Unmatched]]:
    """Pairs between participants of one kind, and who of them is left without a pal."""
    left_id, right_id = library_ids
    ages = {p.id: youngest_age(p.birth_year, p.age_band, today) for p in left + right}

    def score(a: Participant, b: Participant) -> int | None:
        return _score(a, b, ages[a.id], ages[b.id], settings.max_age_gap)

    pairs = [(left[i], right[j], "") for i, j in _assign(left, right, score)]
    if settings.uneven == "two-pals":
        paired = {p.id for pair in pairs for p in pair[:2]}
        lone_left = [p for p in left if p.id not in paired]
        lone_right = [p for p in right if p.id not in paired]
        once_left = [p for p in left if p.id in paired]
        once_right = [p for p in right if p.id in paired]
        for i, j in _assign(lone_left, once_right, score):
            pairs.append((lone_left[i], once_right[j], once_right[j].id))
        for i, j in _assign(once_left, lone_right, score):
            pairs.append((once_left[i], lone_right[j], once_left[i].id))
    teams = _teams(left, right, pairs, score) if settings.uneven == "together" else {}
    proposed = [
        ProposedPair(
            a, b, _reasons(a, b, ages[a.id], ages[b.id]), two, teams.get(a.id) or teams.get(b.id)
        )
        for a, b, two in pairs
    ]
    matched = {p.id for pair in proposed for p in (pair.first, pair.second)}
    unmatched = [
        _why_not(p, ages, others, other_id, settings.max_age_gap)
        for side, others, other_id in ((left, right, right_id), (right, left, left_id))
        for p in side
        if p.id not in matched
    ]
    return proposed, unmatched


def _teams(
    left: list[Participant],
    right: list[Participant],
    pairs: list[tuple[Participant, Participant, str]],
    score: Callable[[Participant, Participant], int | None],
) -> dict[str, Participant]:
    """Under "together": each one left over, teamed with someone of their own library who has
    a pal (`pairs` gets the one left over and that pal); {id of the one left over: teammate}."""
    pal_of = {a.id: b for a, b, _ in pairs} | {b.id: a for a, b, _ in pairs}
    teams: dict[str, Participant] = {}
    for side in (left, right):
        lone = [p for p in side if p.id not in pal_of]
        # No one is in two teams: not as the one left over, the teammate or their pal.
        taken = {p for one, mate in teams.items() for p in (one, mate.id, pal_of[one].id)}
        once = [p for p in side if p.id in pal_of and not {p.id, pal_of[p.id].id} & taken]

        def with_mate(one: Participant, mate: Participant) -> int | None:
            return None if score(one, pal_of[mate.id]) is None else score(one, mate)

        for i, j in _assign(lone, once, with_mate):
            one, mate = lone[i], once[j]
            teams[one.id], pal_of[one.id] = mate, pal_of[mate.id]
            pairs.append((one, pal_of[one.id], "") if side is left else (pal_of[one.id], one, ""))
    return teams


def within_gap(age: int | None, other: int | None, gap: int) -> bool:
    """Whether two ages may be pals' (both unknown counts as close, one unknown does not)."""
    if age is None or other is None:
        return age is None and other is None
    return abs(age - other) <= gap


def _learns(participant: Participant, language: str) -> bool:
    """Whether an interest says the participant is learning this language."""
    words = {language, *LANGUAGE_NAMES.get(language, ())}
    return any(
        interest.removeprefix("learning ").strip() in words for interest in participant.interests
    )


def _score(
    a: Participant, b: Participant, age: int | None, other: int | None, gap: int
) -> int | None:
    """The pair's score, or None when they may not be pals."""
    if not within_gap(age, other, gap):
        return None
    total = 0
    if a.language == b.language:
        total += 4
    elif _learns(a, b.language) or _learns(b, a.language):
        total += 3
    shared = [interest for interest in a.interests if interest in b.interests]
    total += 2 * min(len(shared), SHARED_INTERESTS_COUNTED)
    if age is not None and other is not None:
        total += gap - abs(age - other)
    if a.age_band and a.age_band == b.age_band:
        total += 1
    return total


def _reasons(a: Participant, b: Participant, age: int | None, other: int | None) -> Reasons:
    learner = ""
    if a.language != b.language:
        learner = a.id if _learns(a, b.language) else b.id if _learns(b, a.language) else ""
    return Reasons(
        ages=(age, other),
        same_band=a.age_band if a.age_band and a.age_band == b.age_band else "",
        language=a.language if a.language == b.language else "",
        learner=learner,
        interests=tuple(interest for interest in a.interests if interest in b.interests),
    )


def _why_not(
    participant: Participant,
    ages: dict[str, int | None],
    others: list[Participant],
    other_library: str,
    gap: int,
) -> Unmatched:
    age = ages[participant.id]
    if any(within_gap(age, ages[other.id], gap) for other in others):
        reason: UnmatchedReason = "waiting"
    else:
        reason = "no-age" if age is None else "age-gap"
    return Unmatched(participant, reason, age, other_library)


# --- words ---------------------------------------------------------------------------------


def explain(pair: ProposedPair) -> str:
    """The pair's reasons in words: "ages 10 and 11; both write in English; both like football";
    a team first: "Maya and Leo write together to Tomás; ages 10 and 11; ..."; for two
    groups, first "two classes or clubs: Class 4B and Dragon Readers"."""
    reasons, first, second = pair.reasons, pair.first, pair.second
    age, other = reasons.ages
    parts = [f"two classes or clubs: {first.name} and {second.name}"] if first.is_group else []
    if reasons.same_band:
        parts.append(f"same age band {reasons.same_band}")
    elif age is None or other is None:
        parts.append("no ages recorded")
    else:
        parts.append(f"both {age}" if age == other else f"ages {age} and {other}")
    if reasons.language:
        parts.append(f"both write in {_language_name(reasons.language)}")
    elif reasons.learner:
        learner, pal = (first, second) if reasons.learner == first.id else (second, first)
        parts.append(f"{learner.name} is learning {_language_name(pal.language)}")
    parts.append(
        f"both like {_listed(reasons.interests)}" if reasons.interests else "no shared interests"
    )
    if pair.writes_to_two:
        two = first if pair.writes_to_two == first.id else second
        parts.append(f"{two.name} writes to two")
    if pair.teammate is not None:
        one, pal = (first, second) if first.library == pair.teammate.library else (second, first)
        parts.insert(0, f"{one.name} and {pair.teammate.name} write together to {pal.name}")
    return "; ".join(parts)


def why_not(unmatched: Unmatched, gap: int) -> str:
    """Why a participant has no pal in the proposal, in words (a group's pal is a group)."""
    other = unmatched.other_library
    group = unmatched.participant.is_group
    everyone, no_one = ("every group", "no group") if group else ("everyone", "no one")
    if unmatched.reason == "no-age":
        return f"no age recorded, and {everyone} at {other} has one"
    if unmatched.reason == "age-gap":
        return f"{no_one} at {other} within {gap} years of age {unmatched.age}"
    if unmatched.reason == "not-chosen":
        free = "a group" if group else "someone"
        return (
            f"left without a pal in this proposal, though {free} at {other} "
            "within the age gap is free"
        )
    return f"{everyone} at {other} within the age gap already has a pal; waits for the next match"


def _language_name(code: str) -> str:
    """ "English" for "en"; a code with no known name stays the code."""
    names = LANGUAGE_NAMES.get(code)
    return names[0].capitalize() if names else code


def _listed(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


# --- the assignment ------------------------------------------------------------------------


def _assign(
    rows: Sequence[Participant],
    columns: Sequence[Participant],
    score: Callable[[Participant, Participant], int | None],
) -> list[tuple[int, int]]:
    """(row, column) index pairs: as many pairs as possible, then the highest total score;
    a pair scored None is never made. Deterministic for the same order of rows and columns."""
    if not rows or not columns:
        return []
    weights = [[score(a, b) for b in columns] for a in rows]
    # A pair made outweighs any sum of scores, so the count of pairs comes first.
    most = max((w for line in weights for w in line if w is not None), default=0)
    weight_of_a_pair = (most + 1) * (min(len(rows), len(columns)) + 1)
    cost = [[-(weight_of_a_pair + w) if w is not None else 0 for w in line] for line in weights]
    if len(rows) <= len(columns):
        chosen = _hungarian(cost)
    else:
        transposed = [list(line) for line in zip(*cost, strict=True)]
        chosen = [(i, j) for j, i in _hungarian(transposed)]
    return sorted((i, j) for i, j in chosen if weights[i][j] is not None)


def _hungarian(cost: list[list[int]]) -> list[tuple[int, int]]:
    """The least-cost assignment of every row to a distinct column (rows <= columns)."""
    n, m = len(cost), len(cost[0])
    infinity = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: the row (from 1) holding column j
    for row in range(1, n + 1):
        owner[0], column = row, 0
        least, used = [infinity] * (m + 1), [False] * (m + 1)
        while owner[column]:
            used[column] = True
            here, delta, next_column = owner[column], infinity, 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = cost[here - 1][j - 1] - u[here] - v[j]
                    if reduced < least[j]:
                        least[j], way[j] = reduced, column
                    if least[j] < delta:
                        delta, next_column = least[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            column = next_column
        while column:
            previous = way[column]
            owner[column] = owner[previous]
            column = previous
    return [(owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j]]


# --- a proposal as staff edited it ---------------------------------------------------------

# "not-waiting" covers every id that is not of a participant waiting for a pal at one of the
# two libraries (unknown, of another library, paused, left, paired): staff of one library
# learn nothing of the others' patrons from it.
EditProblem = Literal[
    "same-library", "group-and-person", "not-waiting", "age-gap", "twice", "too-many"
]


@dataclass(frozen=True)
class PairProblem:
    """A pair staff asked for that cannot be made, and why."""

    first: str  # the ids as asked
    second: str
    problem: EditProblem


def most_pals(settings: MatchingSettings) -> int:
    """How many pals one participant may get from a match: two when a pal writes to two, or
    to two children writing together."""
    return 1 if settings.uneven == "leave-out" else 2


def edit(
    partnership: Partnership,
    everyone: Iterable[Participant],
    settings: MatchingSettings,
    today: date,
    asked: Sequence[tuple[str, str]],
    *,
    override_age_gap: bool = False,
) -> tuple[Proposal, tuple[PairProblem, ...]]:
    """The proposal made of the pairs staff asked for (ids, in either order), checked again
    as if nothing had been checked before: both waiting for a pal (active, no pal yet), one
    at each of the partnership's two libraries, within `max_age_gap` unless staff override
    it, each pair once, nobody given more pals than `uneven` allows (`most_pals`). Pairs
    that pass make the proposal; the others are returned with their problem."""
    left_id, right_id = partnership.libraries[0], partnership.libraries[1]
    waiting = waiting_for_a_pal(everyone, (left_id, right_id))
    free = {p.id: p for side in waiting.values() for p in side}
    ages = {p.id: youngest_age(p.birth_year, p.age_band, today) for p in free.values()}
    gap, limit = settings.max_age_gap, most_pals(settings)
    counts: dict[str, int] = {}
    partners: dict[str, list[str]] = {}
    chosen: list[tuple[Participant, Participant]] = []
    problems: list[PairProblem] = []
    for one_id, other_id in asked:
        one, other = free.get(one_id), free.get(other_id)
        problem: EditProblem | None = None
        if one is None or other is None:
            problem = "not-waiting"
        elif one.library == other.library:
            problem = "same-library"
        elif one.is_group != other.is_group:
            problem = "group-and-person"
        elif not override_age_gap and not within_gap(ages[one.id], ages[other.id], gap):
            problem = "age-gap"
        elif any({a.id, b.id} == {one.id, other.id} for a, b in chosen):
            problem = "twice"
        elif _too_many(counts, partners, one.id, other.id, limit):
            problem = "too-many"
        if problem is not None or one is None or other is None:
            problems.append(PairProblem(one_id, other_id, problem or "not-waiting"))
            continue
        first, second = (one, other) if one.library == left_id else (other, one)
        chosen.append((first, second))
        counts[first.id] = counts.get(first.id, 0) + 1
        counts[second.id] = counts.get(second.id, 0) + 1
        partners.setdefault(first.id, []).append(second.id)
        partners.setdefault(second.id, []).append(first.id)
    chosen.sort(key=lambda pair: (pair[0].number, pair[1].number))
    together = settings.uneven == "together"
    pairs = tuple(
        ProposedPair(
            a,
            b,
            _reasons(a, b, ages[a.id], ages[b.id]),
            "" if together else a.id if counts[a.id] > 1 else b.id if counts[b.id] > 1 else "",
            _teammate(a, b, partners, free) if together else None,
        )
        for a, b in chosen
    )
    return Proposal(partnership.id, settings, pairs, _left_over(waiting, counts, ages, gap)), tuple(
        problems
    )


def _teammate(
    a: Participant, b: Participant, partners: dict[str, list[str]], known: dict[str, Participant]
) -> Participant | None:
    """Under "together", of two writing to one pal, the one with the higher id is teamed
    with the other (who writes to that pal in a pair of their own)."""
    for one, pal in ((a, b), (b, a)):
        mates = [known[i] for i in partners[pal.id] if i != one.id]
        if mates and mates[0].number < one.number:
            return mates[0]
    return None


def _too_many(
    counts: dict[str, int], partners: dict[str, list[str]], one: str, other: str, limit: int
) -> bool:
    """A pair would give one of the two more pals than allowed, or make a pair of two who
    both write to two (here, or with a pal one of them has already)."""
    after = {one: counts.get(one, 0) + 1, other: counts.get(other, 0) + 1}
    if max(after.values()) > limit or min(after.values()) > 1:
        return True
    return any(
        after[who] > 1 and any(counts[pal] > 1 for pal in partners.get(who, ())) for who in after
    )


def _left_over(
    waiting: dict[str, list[Participant]],
    counts: dict[str, int],
    ages: dict[str, int | None],
    gap: int,
) -> tuple[Unmatched, ...]:
    """Who has no pal in an edited proposal: "not-chosen" when someone of the other library
    and the same kind within the age gap has none either (staff left the two apart),
    otherwise as `propose` says."""
    (left_id, left), (right_id, right) = waiting.items()
    found = []
    for side, others, other_id in ((left, right, right_id), (right, left, left_id)):
        for participant in side:
            if participant.id in counts:
                continue
            age, kind = ages[participant.id], participant.is_group
            alike = [o for o in others if o.is_group == kind]
            if any(o.id not in counts and within_gap(age, ages[o.id], gap) for o in alike):
                found.append(Unmatched(participant, "not-chosen", age, other_id))
            else:
                found.append(_why_not(participant, ages, alike, other_id, gap))
    return tuple(found)
