"""Unique integers below a size, drawn as ``random.Random(seed).sample(range(size), n)`` draws them.

A sampled sweep is a sample of its configurations' indices. A resumed
sampled sweep finds its experiments by their configurations, so the same seed
must give the same integers in every version: these functions repeat
CPython's ``random.sample`` (since 3.2) draw for draw, in less memory (no list
of the whole population) and less time (its ``_randbelow`` inlined).
"""
from __future__ import annotations

import math
import random
import sys
from array import array
from typing import Iterator, List, Sequence, Tuple

__all__ = ["sample_indices"]


def sample_indices(size: int, n: int, rng: random.Random) -> Sequence[int]:
    """n unique integers from range(size), without a rejection loop near exhaustion.

    The very integers ``rng.sample(range(size), n)`` draws, kept as an
    ``array('q')`` (8 bytes each) instead of a list.
    """
    if size <= sys.maxsize:
        return _sample_like_random_sample(size, n, rng)
    # range() cannot be sampled beyond sys.maxsize; there n is tiny next to
    # size, so drawing until n distinct values is fast and unbiased.
    chosen: dict = {}
    while len(chosen) < n:
        chosen.setdefault(rng.randrange(size), None)
    return list(chosen)


def _sample_like_random_sample(size: int, k: int, rng: random.Random) -> Sequence[int]:
    """``rng.sample(range(size), k)``, step for step, into an array.

    Where random.sample shuffles a list of the whole population, this keeps
    that pool as an array (8 bytes an item) or, for a sample much smaller than
    the population, only the pool's moved items in a dict.
    """
    setsize = 21  # size of a small set minus size of an empty list
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))  # table size for big sets
    if size > setsize:
        return _draw_unseen(size, k, rng)
    if k <= size // 8:
        return _draw_from_moved(size, k, rng)
    return _draw_from_pool(size, k, rng)


def _shrinking_draws(size: int, k: int) -> Iterator[Tuple[int, range]]:
    """The draws of a shuffle of ``range(size)``'s first ``k`` places, in runs of the same number of random bits.

    Draw ``i`` picks one of the ``size - i`` items left: ``_randbelow(size - i)``,
    which asks ``getrandbits((size - i).bit_length())`` until the bits are
    below ``size - i``. Each run is ``(bits, lasts)``: ``lasts`` the positions
    ``size - i - 1`` of its draws (the pool's last item left, which fills the
    place of the one picked), every draw of the run asking for ``bits`` bits.
    """
    i = 0
    while i < k:
        bits = (size - i).bit_length()
        end = min(k, size - (1 << (bits - 1)) + 1)  # size - i keeps this bit length while i < end
        yield bits, range(size - i - 1, size - end - 1, -1)
        i = end


def _draw_from_moved(size: int, k: int, rng: random.Random) -> "array[int]":
    """The pool's shuffle, keeping only the pool's items that are no longer at their own position."""
    getrandbits = rng.getrandbits  # what random.sample's _randbelow draws with: the same calls, the same integers
    picked: List[int] = []  # a list while drawing (appending to it is the quickest), then an array
    append = picked.append
    moved: dict = {}
    moved_get = moved.get
    for bits, lasts in _shrinking_draws(size, k):
        for last in lasts:
            j = getrandbits(bits)
            while j > last:
                j = getrandbits(bits)
            append(moved_get(j, j))
            moved[j] = moved_get(last, last)  # move the item not selected into the vacancy
    return array("q", picked)


def _draw_from_pool(size: int, k: int, rng: random.Random) -> "array[int]":
    """The pool's shuffle, on the whole pool kept as an array (a sample of more than an eighth of it)."""
    getrandbits = rng.getrandbits
    picked = array("q")
    append = picked.append
    pool = array("q", range(size))
    for bits, lasts in _shrinking_draws(size, k):
        for last in lasts:
            j = getrandbits(bits)
            while j > last:
                j = getrandbits(bits)
            append(pool[j])
            pool[j] = pool[last]  # move the item not selected into the vacancy
    return picked


def _draw_unseen(size: int, k: int, rng: random.Random) -> "array[int]":
    """Draw ``k`` distinct integers below ``size``, as random.sample does for a large population.

    random.sample remembers its picks in a set (about 64 bytes each); where a
    bitmap of the population is smaller (a million picks of 10^8: 12 MB
    instead of 64 MB), the picks are remembered there.
    """
    getrandbits, bits = rng.getrandbits, size.bit_length()
    picked = array("q")
    append = picked.append
    if size // 8 < 64 * k:
        seen = bytearray(size // 8 + 1)
        for _ in range(k):
            j = getrandbits(bits)
            while j >= size or seen[j >> 3] & (1 << (j & 7)):
                j = getrandbits(bits)
            seen[j >> 3] |= 1 << (j & 7)
            append(j)
        return picked
    selected: set = set()
    selected_add = selected.add
    for _ in range(k):
        j = getrandbits(bits)
        while j >= size or j in selected:
            j = getrandbits(bits)
        selected_add(j)
        append(j)
    return picked
