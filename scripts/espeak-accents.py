#!/usr/bin/env python3
"""Synthetic English accents for espeak-ng: new phoneme tables whose vowels are re-drawn.

espeak-ng's eight English accents share one pronunciation dictionary: `espeak-ng -x` gives the
same phoneme string on all of them. They differ in how each vowel phoneme *sounds*, that is in
which recorded formant sequence (`FMT(vowel/ii_6)`) and which length each accent's phoneme
table gives it. A recogniser trained on six accents therefore meets the two held-out ones
(`en-us-nyc`, `en-gb-x-gbcwmd`) as new vowel sounds, and more speakers of the training accents
do not help (measured in models/zoo/rnnt-todm/README.md).

This script makes accents the way espeak-ng's own are made, at random. Each synthetic accent
starts from one training accent (its table and its voice file). Each of its vowel phonemes,
with probability --change, gets another formant sequence of the same vowel family from
espeak-ng's vowel library (`vowel/ii` -> `vowel/ii_4`, `vdiph/ai` -> `vwl_en_us/ai`; about a
third of the time any sequence of the same vowel letter, `vowel/a` -> `vowel/aa_5`) and a length
scaled by 0.8-1.25.

With --consonants R, each accent also gets on average R consonant rules in its voice file, the
way espeak-ng's own accents change consonants (`replace 00 D d` in en-029, `replace 03 N n` in
en-GB-x-gbclan): a random English consonant becomes, with one of espeak-ng's `replace` flags
(anywhere, word-final only, unstressed only, or both), either nothing (with probability --drop,
by default a quarter of the rules) or a consonant that differs from it in exactly one of place, manner and voicing (T -> t, T -> f,
s -> z). Every consonant is equally likely: the rules are not drawn from any accent's.

Nothing of the held-out accents is used: never their tables or voice files, never the
`vwl_en_us_nyc/` sequences, and never a sequence that, among the English tables, only the
held-out ones use.

    python3 scripts/espeak-accents.py PHSOURCE OUT [--accents 80] [--change 0.8] [--consonants 0]
        [--drop 0.25] [--seed 1]

PHSOURCE is the `phsource/` folder of the espeak-ng source (scripts/setup-accents.sh fetches
it). OUT gets a private copy of the system's espeak-ng-data, cut down to English, with the new
tables compiled in (`espeak-ng --path=OUT -v en-x-synth07 ...`); OUT/accents.txt lists the
voice names. Before OUT is written, every standard training voice must speak a check sentence
byte for byte as with the system's data, and every new accent must speak it at all. Same
arguments, same tables.
"""
import argparse
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Training accents: phoneme table -> (its phsource file, its voice file under lang/gmw/).
TRAINING = {
    "en": ("ph_english", "en"),
    "en-us": ("ph_english_us", "en-US"),
    "en-n": ("ph_english_n", "en-GB-x-gbclan"),
    "en-rp": ("ph_english_rp", "en-GB-x-rp"),
    "en-sc": ("ph_english_sc", "en-GB-scotland"),
    "en-wi": ("ph_english_wi", "en-029"),
}
TRAINING_VOICES = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029"]
HELD_OUT_TABLES = ["ph_english_us_nyc", "ph_english_wm"]
HELD_OUT_DIRS = {"vwl_en_us_nyc"}
# Vowel sequence folders. Plain vowels and diphthongs swap among these and the English
# `vwl_en*` ones; r-coloured and nasal vowels only among themselves.
VOWEL_DIRS = ("vowel", "vdiph", "vdiph2")
OWN_DIRS = ("vowelr", "vnasal")
WIDE = 0.35  # chance that a plain vowel draws from its whole vowel letter, not its family
CHECK = "don't count the pothole near the old bridge, where you heard my voice, at the curb " \
        "by the water tower: a loose manhole, severity three, nine or five."

# English consonants as espeak-ng names them, with (place, manner, voiced).
CONSONANTS = {
    "p": ("labial", "plosive", 0), "b": ("labial", "plosive", 1),
    "t": ("alveolar", "plosive", 0), "d": ("alveolar", "plosive", 1),
    "k": ("velar", "plosive", 0), "g": ("velar", "plosive", 1),
    "f": ("labiodental", "fricative", 0), "v": ("labiodental", "fricative", 1),
    "T": ("dental", "fricative", 0), "D": ("dental", "fricative", 1),
    "s": ("alveolar", "fricative", 0), "z": ("alveolar", "fricative", 1),
    "S": ("postalveolar", "fricative", 0), "Z": ("postalveolar", "fricative", 1),
    "tS": ("postalveolar", "affricate", 0), "dZ": ("postalveolar", "affricate", 1),
    "h": ("glottal", "fricative", 0),
    "m": ("labial", "nasal", 1), "n": ("alveolar", "nasal", 1), "N": ("velar", "nasal", 1),
    "l": ("alveolar", "lateral", 1), "r": ("alveolar", "approximant", 1),
    "w": ("labial", "approximant", 1), "j": ("palatal", "approximant", 1),
}

FMT = re.compile(r"FMT\(([^/),\s]+)/([^),\s]+)")
LENGTH = re.compile(r"^(\s*length\s+)(\d+)", re.M)
BLOCK = re.compile(r"^phoneme\s+(\S+).*?^endphoneme\s*$", re.M | re.S)


def is_vowel_dir(d):
    return d in VOWEL_DIRS or d in OWN_DIRS or d.startswith("vwl_")


def blocks(path):
    """Phoneme name -> its `phoneme ... endphoneme` text, for one phsource file."""
    return {m.group(1): m.group(0) for m in BLOCK.finditer(path.read_text(errors="replace"))}


def fmts(path):
    return {m.groups() for m in FMT.finditer(path.read_text(errors="replace"))}


def family(name):
    """`ii_6` -> `ii`, `a#_3` -> `a#`, `3_us2` -> `3`: the vowel a sequence realises."""
    return name.split("_")[0]


def letter(fam):
    """`aa#` -> `a`: the coarser family of an occasional jump to a neighbouring vowel."""
    return fam.replace("#", "")[:1]


def library(phsource, excluded):
    """Every usable vowel sequence as (folder, name)."""
    out = []
    for d in sorted(p for p in phsource.iterdir() if p.is_dir()):
        usable = d.name in VOWEL_DIRS or d.name in OWN_DIRS or d.name.startswith("vwl_en")
        if usable and d.name not in HELD_OUT_DIRS:
            out += [(d.name, f.name) for f in sorted(d.iterdir())
                    if f.is_file() and (d.name, f.name) not in excluded]
    return out


def candidates(lib, d, name, wide):
    """The sequences that may stand in for `d/name`."""
    fam = family(name)
    out = []
    for dd, nn in lib:
        same_kind = dd == d if d in OWN_DIRS else dd not in OWN_DIRS
        related = family(nn) == fam or (wide and d == dd == "vowel" and letter(family(nn)) == letter(fam))
        if same_kind and related:
            out.append(f"{dd}/{nn}")
    return out


def perturb(block, lib, rng, change):
    """One vowel phoneme's block with its formant sequences re-drawn and its length scaled,
    with probability `change` (else None)."""
    def pick(m):
        d, name = m.groups()
        if not is_vowel_dir(d):
            return m.group(0)
        pool = candidates(lib, d, name, wide=rng.random() < WIDE)
        return "FMT(" + (rng.choice(pool) if pool else f"{d}/{name}")

    if rng.random() >= change:
        return None
    new = FMT.sub(pick, block)
    scale = rng.uniform(0.8, 1.25)
    return LENGTH.sub(lambda m: m.group(1) + str(max(40, round(int(m.group(2)) * scale))), new)


def neighbours(c):
    """The consonants that differ from `c` in exactly one feature."""
    return [o for o, f in sorted(CONSONANTS.items())
            if sum(a != b for a, b in zip(f, CONSONANTS[c])) == 1]


def consonant_rules(rng, mean, drop):
    """About `mean` random `replace` lines for a voice file, one consonant at most once; each
    deletes its consonant with probability `drop`."""
    count = sum(rng.random() < mean / 4 for _ in range(4)) if mean > 0 else 0
    out = []
    for c in rng.sample(sorted(CONSONANTS), count):
        to = "NULL" if rng.random() < drop else rng.choice(neighbours(c))
        out.append(f"replace {rng.choice(['00', '01', '02', '03'])} {c} {to}")
    return out


def english_only(master):
    """The master `phonemes` file with only the tables English voices need: espeak-ng holds at
    most 150 tables and ships 133, so there is no room for new ones beside all of them."""
    head, *sections = re.split(r"^(?=phonemetable\s)", master, flags=re.M)
    parents = {sec.split()[1]: sec.split()[2] for sec in sections}
    keep = set()
    for name in parents:
        if name == "en" or name.startswith("en-"):
            while name in parents and name not in keep:
                keep.add(name)
                name = parents[name]
    return head + "".join(sec for sec in sections if sec.split()[1] in keep)


def speak(data, voice, text):
    """espeak-ng's WAV bytes for `text`, or None when it fails (it can crash on bad tables)."""
    args = ["espeak-ng"] + ([f"--path={data}"] if data else []) + ["-v", voice, "--stdout", text]
    res = subprocess.run(args, capture_output=True)
    return res.stdout if res.returncode == 0 and res.stdout else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phsource", type=Path, help="the phsource/ folder of the espeak-ng source")
    ap.add_argument("out", type=Path, help="folder to write (replaced)")
    ap.add_argument("--accents", type=int, default=80, help="how many accents (at most 130)")
    ap.add_argument("--change", type=float, default=0.8, help="chance that a vowel is re-drawn")
    ap.add_argument("--consonants", type=float, default=0.0,
                    help="mean number of random consonant rules per accent (0 to 4)")
    ap.add_argument("--drop", type=float, default=0.25,
                    help="chance that a consonant rule deletes its consonant (0 to 1)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    ph = args.phsource
    if not (ph / "phonemes").is_file() or not (ph / "ph_english").is_file():
        sys.exit(f"{ph} is not an espeak-ng phsource folder (no phonemes / ph_english)")
    if not 1 <= args.accents <= 130:
        sys.exit("--accents must be 1 to 130 (espeak-ng holds at most 150 phoneme tables)")
    if not 0 <= args.consonants <= 4:
        sys.exit("--consonants must be 0 to 4")
    if not 0 <= args.drop <= 1:
        sys.exit("--drop must be 0 to 1")

    training = set().union(*(fmts(ph / src) for src, _ in TRAINING.values()))
    held_out = set().union(*(fmts(ph / src) for src in HELD_OUT_TABLES))
    excluded = held_out - training
    lib = library(ph, excluded)
    base = blocks(ph / "ph_english")
    own = {t: blocks(ph / src) for t, (src, _) in TRAINING.items()}

    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    system = Path(version.split("Data at:")[1].strip())
    work = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    data = work / "espeak-ng-data"
    shutil.copytree(system, data)
    # espeak-ng lists at most 349 voices: keep only the English ones (variants stay).
    for f in sorted((data / "lang").rglob("*")):
        if f.is_file() and not (f.parent.name == "gmw" and f.name.startswith("en")):
            f.unlink()
    src = work / "phsource"
    shutil.copytree(ph, src)

    rng = random.Random(args.seed)
    names, tables = [], []
    for k in range(args.accents):
        parent = rng.choice(sorted(TRAINING))
        effective = {**base, **own[parent]}
        vowels = [b for _, b in sorted(effective.items())
                  if "FMT(" in b and re.search(r"^\s*vwl\b", b, re.M)]
        changed = [new for b in vowels if (new := perturb(b, lib, rng, args.change)) not in (None, b)]
        (src / f"ph_english_synth{k:02d}").write_text("\n\n".join(changed) + "\n")
        tables.append(f"\nphonemetable en-synth{k:02d} {parent}\ninclude ph_english_synth{k:02d}\n")
        voice = (system / "lang" / "gmw" / TRAINING[parent][1]).read_text().splitlines()
        settings = [ln for ln in voice if not ln.startswith(("name ", "language ", "phonemes ",
                                                            "maintainer ", "status "))]
        rules = consonant_rules(rng, args.consonants, args.drop)
        name = f"en-x-synth{k:02d}"
        (data / "lang" / "gmw" / name).write_text(
            f"name English (synthetic accent {k:02d}, from {parent})\nlanguage {name}\n"
            f"phonemes en-synth{k:02d}\n" + "\n".join(settings + rules) + "\n")
        names.append(name)
        said = "".join(f", {r[8:]}" for r in rules)
        print(f"{name}: from {parent}, {len(changed)} vowels re-drawn{said}", flush=True)
    (src / "phonemes").write_text(english_only((src / "phonemes").read_text()) + "".join(tables))
    res = subprocess.run(["espeak-ng", f"--path={work}", f"--compile-phonemes={src}"],
                         capture_output=True, text=True)
    if res.returncode != 0 or " 0 errors" not in res.stdout + res.stderr:
        sys.exit(f"espeak-ng could not compile the tables:\n{res.stdout}{res.stderr}")
    shutil.rmtree(src)

    for voice in TRAINING_VOICES:
        if speak(work, voice, CHECK) != speak(None, voice, CHECK):
            sys.exit(f"{voice} speaks differently with the compiled tables than with {system}")
    for name in names:
        if speak(work, name, CHECK) is None:
            sys.exit(f"espeak-ng fails to speak with {name}: try another --seed")
    (work / "accents.txt").write_text("\n".join(names) + "\n")
    shutil.rmtree(args.out, ignore_errors=True)
    work.rename(args.out)
    print(f"{len(names)} accents compiled into {args.out}/espeak-ng-data ({len(lib)} vowel "
          f"sequences to draw from, {len(excluded)} used only by held-out accents left out)")


if __name__ == "__main__":
    main()
