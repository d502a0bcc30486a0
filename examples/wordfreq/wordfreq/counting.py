"""Counting words: runs inside multiprocessing pool workers."""

import collections
import os
import re

WORD = re.compile(r"[a-z']+")


def count_words(path):
    """Count the words of one file (called in a worker process)."""
    with open(path, encoding="utf-8") as f:
        text = f.read().lower()
    counts = collections.Counter(WORD.findall(text))
    return os.getpid(), counts


def merge(results):
    """Add up the per-file counters."""
    total = collections.Counter()
    for _pid, counts in results:
        total.update(counts)
    return total


def strip_stopwords(counts, stopwords):
    """Never called by the demo: shows up as missing in the report."""
    for word in stopwords:
        counts.pop(word, None)
    return counts
