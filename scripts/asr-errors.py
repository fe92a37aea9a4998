#!/usr/bin/env python3
"""Where a recogniser's word errors are: by base voice, by kind (substitution, deletion,
insertion), the most frequent confusions, and how many hypothesis words lie outside the
training vocabulary (what snapping words to a lexicon could at most fix).

    edgetrim eval-asr MODEL_DIR --data data/speech/test --json > asr.json
    python3 scripts/asr-errors.py asr.json data/speech/test data/speech/train
"""
import collections
import json
import sys


def align(ref, hyp):
    """Levenshtein alignment of two word lists: (kind, ref word, hyp word) per error."""
    n, m = len(ref), len(hyp)
    d = [[i + j if i * j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops, i, j = [], n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] != hyp[j - 1]:
                ops.append(("S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            ops.append(("D", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
    return ops


def transcripts(folder):
    with open(f"{folder}/transcripts.tsv") as f:
        return {p[0]: (p[1], p[2]) for p in (line.rstrip("\n").split("\t") for line in f)}


def main(asr_json, test_dir, train_dir):
    result = json.load(open(asr_json))
    refs = transcripts(test_dir)
    vocab = {w for _, text in transcripts(train_dir).values() for w in text.split()}
    kinds, confusions, by_voice = collections.Counter(), collections.Counter(), collections.Counter()
    words = oov = 0
    for u in result["hypotheses"]:
        voice, ref = refs[u["id"]]
        hyp = u["text"].split()
        words += len(hyp)
        oov += sum(w not in vocab for w in hyp)
        for kind, r, h in align(ref.split(), hyp):
            kinds[kind] += 1
            by_voice[voice.split("+")[0]] += 1
            if kind == "S":
                confusions[(r, h)] += 1
    print(f"word errors {sum(kinds.values())}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("by base voice: " + ", ".join(f"{v} {n}" for v, n in by_voice.most_common()))
    print("top confusions: " + ", ".join(f"{r}->{h} {n}" for (r, h), n in confusions.most_common(10)))
    print(f"hypothesis words outside the training vocabulary: {oov} of {words}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
