"""Tests for wenet_llm.score.hallucination: the repetition-loop detector and the hallucination metrics."""

import pytest

from wenet_llm.score.hallucination import (
    Loop, find_repetition_loop, hallucination_stats, has_repetition_loop, trim_loop, utterance_flags,
)
from wenet_llm.score.wer import score


def _loop(text, **kw):
    return find_repetition_loop(text.split(), **kw)


# ----------------------------------------------------------------------------- loop detector


@pytest.mark.parametrize("text", [
    "", "A", "对 对 对", "NO NO NO NO", "THANK YOU THANK YOU THANK YOU",  # natural repetition: too short
    "A B C A B C A B",  # 8 tokens but only 2 full copies of the trigram
    "哈 哈 哈 哈 哈 哈 哈",  # 7 < min_tokens
    "THE CAT SAT ON THE MAT AND THE DOG SAT ON THE LOG",
])
def test_not_a_loop(text):
    assert _loop(text) is None
    assert _loop(text, at_end=True) is None


def test_unigram_loop_needs_min_tokens():
    assert _loop("哈 " * 8) == Loop(start=0, period=1, end=8)
    assert _loop("我 说 " + "哈 " * 9 + "好") == Loop(start=2, period=1, end=11)


def test_phrase_loop_with_partial_copy_and_smallest_period():
    # "I DON'T KNOW" three times and a partial fourth: start 2, period 3, end 13 (11 tokens, 3 full copies).
    seq = "SO YES I DON'T KNOW I DON'T KNOW I DON'T KNOW I DON'T".split()
    loop = find_repetition_loop(seq)
    assert loop == Loop(start=2, period=3, end=13) and loop.repeats == 3
    assert trim_loop(seq, loop) == "SO YES I DON'T KNOW".split()
    # "A B" x 4 also has period 4 (2 copies): the smallest period is reported.
    assert _loop("A B A B A B A B") == Loop(0, 2, 8)


def test_first_loop_wins_and_parameters():
    seq = ("X " * 8 + "Y Z " * 5 + "W " * 10).split()  # X at 0-7, Y Z at 8-17, W at 18-27
    assert find_repetition_loop(seq) == Loop(0, 1, 8)
    assert find_repetition_loop(seq, at_end=True) == Loop(18, 1, 28)  # only the loop reaching the end
    assert find_repetition_loop(seq, min_tokens=9) == Loop(8, 2, 18)  # X x8 no longer qualifies
    assert find_repetition_loop(seq, min_tokens=9, min_repeats=6) == Loop(18, 1, 28)  # nor Y Z x5
    assert find_repetition_loop("A B C D A B C D A B C D".split(), max_ngram=3) is None
    assert find_repetition_loop("A B C D A B C D A B C D".split(), max_ngram=4) == Loop(0, 4, 12)
    with pytest.raises(ValueError, match="min_repeats >= 2"):
        find_repetition_loop([1, 1], min_repeats=1)


def test_at_end_tracks_a_decoder_step_by_step():
    # Token ids as a decoder sees them: the guard fires on the first step at which the tail is a loop.
    ids = [5, 6, 7, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]
    fired = [t for t in range(1, len(ids) + 1) if has_repetition_loop(ids[:t], at_end=True)]
    assert fired[0] == 11  # 3..10 is "1 2" x 4 = 8 items, 4 >= 3 copies
    assert find_repetition_loop(ids[:11], at_end=True) == Loop(3, 2, 11)
    assert trim_loop(ids[:11], Loop(3, 2, 11)) == [5, 6, 7, 1, 2]
    assert find_repetition_loop(ids + [9], at_end=True) is None  # a loop that is not the tail
    assert find_repetition_loop(ids + [9]) == Loop(3, 2, 13)


# ----------------------------------------------------------------------------- metrics


def test_hallucination_stats_hand_computed():
    refs = {
        "a": "one two three four",  # hyp 7 tokens > 1.5 x 4 = 6: overlong
        "b": "one two",  # hyp 3 tokens = 1.5 x 2: not overlong
        "c": "好",  # hyp: 哈 x 8, overlong and a loop
        "d": "",  # noise-only: hyp of 2 tokens
        "e": "",  # noise-only: empty hyp
        "f": "",  # noise-only: missing hyp counts as empty
    }
    hyps = {"a": "one two three four five six seven", "b": "one two two", "c": "哈" * 8, "d": "UH HUH", "e": ""}
    r = score(refs, hyps, char_mode=True)
    # N = 4 + 2 + 1 = 7; insertions: 3 (a) + 1 (b) + 7 (c: one 哈 substitutes 好) + 2 (d) = 13.
    assert (r.total.n, r.total.i) == (7, 13)
    h = hallucination_stats(r)
    assert h.insertions == 13 and h.insertion_rate == pytest.approx(100 * 13 / 7)
    assert (h.overlong_utts, h.overlong_rate) == (2, pytest.approx(100 * 2 / 3))
    assert (h.loop_utts, h.loop_rate) == (1, pytest.approx(100 / 6))
    assert (h.empty_ref_utts, h.empty_ref_nonempty_utts) == (3, 1)
    assert h.empty_ref_nonempty_rate == pytest.approx(100 / 3)
    assert h.empty_ref_mean_tokens == pytest.approx(2 / 3)
    flags = utterance_flags(r.utts[2])
    assert (flags.ref_tokens, flags.hyp_tokens, flags.overlong, flags.loop) == (1, 8, True, Loop(0, 1, 8))
    assert utterance_flags(r.utts[3]).overlong is None
    # A stricter ratio and detector change the counts as expected.
    h2 = hallucination_stats(r, overlong_ratio=1.4, min_tokens=9)
    assert (h2.overlong_utts, h2.loop_utts) == (3, 0)


def test_hallucination_stats_undefined_rates_are_none():
    h = hallucination_stats(score({"a": "x y"}, {"a": "x y"}))
    assert (h.insertion_rate, h.overlong_rate, h.loop_rate) == (0.0, 0.0, 0.0)
    assert h.empty_ref_nonempty_rate is None and h.empty_ref_mean_tokens is None
    h = hallucination_stats(score({}, {}))
    assert h.insertion_rate is None and h.loop_rate is None and h.utts == 0
    with pytest.raises(ValueError, match="overlong_ratio"):
        hallucination_stats(score({}, {}), overlong_ratio=0)


def _brute_force_loop(seq, max_ngram, min_repeats, min_tokens, at_end=False):
    # The module docstring's definition, spelled out over every span and period.
    found = []
    for n in range(1, max_ngram + 1):
        for s in range(len(seq)):
            for e in range(s + 1, len(seq) + 1):
                periodic = all(seq[i] == seq[i - n] for i in range(s + n, e))
                left_max = s == 0 or s - 1 + n >= len(seq) or seq[s - 1] != seq[s - 1 + n]
                right_max = e == len(seq) or e - n < 0 or seq[e] != seq[e - n]
                long_enough = e - s >= max(min_repeats * n, min_tokens)
                if periodic and left_max and right_max and long_enough and (not at_end or e == len(seq)):
                    found.append((s, n, e))
    return Loop(*min(found)) if found else None  # (start, period, end): first start, then smallest period


def test_detector_matches_its_definition_by_brute_force():
    import random

    rng = random.Random(3)
    for trial in range(400):
        seq = [rng.choice("ab" if trial % 2 else "abc") for _ in range(rng.randint(0, 16))]
        kw = dict(max_ngram=rng.randint(1, 4), min_repeats=rng.randint(2, 4), min_tokens=rng.randint(2, 6))
        for at_end in (False, True):
            assert find_repetition_loop(seq, **kw, at_end=at_end) == _brute_force_loop(seq, **kw, at_end=at_end), \
                (seq, kw, at_end)
