//! The text side of the speech data: what a road inspector says into a headset while driving
//! a survey (defect reports with lane, position, size and severity; recorder commands; short
//! remarks), expanded from templates by a seeded generator.
//!
//! The corpus is small on purpose (about 250 words, see [`vocabulary`]) so that a
//! microcontroller-sized recogniser can learn it, yet its templates combine into far more
//! distinct sentences than any data set draws, so a model has to spell, not memorise.
//!
//! Splits are made on the sentence, not the utterance: a stable hash of the text puts every
//! possible sentence in exactly one of train, val or test ([`bucket`]), so no test sentence is
//! ever heard in training, whatever the seeds and counts. Every word of every template slot
//! occurs in many sentences of every bucket, so val and test use only words that training
//! also sees (the tests check both properties by sampling).

use super::Split;
use crate::datagen::rng::{mix, Rng};

/// A template is text with `{slot}` references; a slot expands to one of its phrases, which
/// may hold slots themselves. `{n}` (a number 1 to 99), `{sev}` (one to five), `{digit}`
/// (zero to nine) and `{big}` (a number 100 to 990) are spoken numbers made by [`spoken`].
const SLOTS: &[(&str, &[&str])] = &[
    (
        "damage",
        &[
            "pothole",
            "small pothole",
            "deep pothole",
            "longitudinal crack",
            "transverse crack",
            "alligator crack",
            "block crack",
            "edge crack",
            "hairline crack",
            "rutting",
            "ravelling",
            "bleeding",
            "shoving",
            "depression",
            "bump",
            "sinkhole",
            "repair patch",
            "failed patch",
            "faded line",
            "faded marking",
            "worn crosswalk",
            "broken curb",
            "loose manhole",
            "sunken manhole",
            "raised manhole",
            "blocked drain",
            "broken drain cover",
            "missing sign",
            "loose gravel",
            "standing water",
        ],
    ),
    (
        "position",
        &[
            "left lane",
            "right lane",
            "center lane",
            "middle lane",
            "inner lane",
            "outer lane",
            "bus lane",
            "bike lane",
            "turning lane",
            "on the shoulder",
            "at the curb",
            "in the wheel path",
            "between the wheel paths",
            "near the center line",
            "on the driver's side",
            "on the passenger's side",
            "across both lanes",
            "across the whole road",
        ],
    ),
    (
        "feature",
        &[
            "curb",
            "drain",
            "manhole",
            "crosswalk",
            "intersection",
            "bridge",
            "bus stop",
            "traffic light",
            "junction",
            "roundabout",
            "gutter",
            "median",
            "speed bump",
            "driveway",
            "school",
            "stop line",
        ],
    ),
    (
        "direction",
        &[
            "north",
            "south",
            "east",
            "west",
            "northbound",
            "southbound",
            "eastbound",
            "westbound",
        ],
    ),
    (
        "road",
        &[
            "main street",
            "oak avenue",
            "station road",
            "church street",
            "high street",
            "park road",
            "bridge street",
            "route {n}",
            "highway {n}",
        ],
    ),
    (
        "condition",
        &[
            "dry", "wet", "icy", "dusty", "muddy", "flooded", "slippery", "uneven",
        ],
    ),
    (
        "size",
        &[
            "small", "medium", "large", "huge", "deep", "shallow", "long", "short", "wide",
            "narrow",
        ],
    ),
    (
        "dimension",
        &["long", "wide", "deep", "across", "in diameter"],
    ),
    (
        "measure",
        &[
            "{n} centimeters",
            "{n} millimeters",
            "{n} meters",
            "{n} inches",
            "{n} feet",
            "one meter",
            "half a meter",
            "{n} point {digit} meters",
        ],
    ),
    (
        "distance",
        &[
            "{n} meters",
            "{big} meters",
            "{n} point {digit} kilometers",
            "kilometer {n} point {digit}",
            "chainage {big}",
            "station {n} plus {n}",
            "the next pole",
            "the last marker",
        ],
    ),
    (
        "command",
        &[
            "start recording",
            "stop recording",
            "pause recording",
            "resume recording",
            "start a new section",
            "end of section",
            "next section",
            "previous section",
            "take a photo",
            "take another photo",
            "undo the last entry",
            "delete the last mark",
            "cancel that",
            "confirm",
            "repeat that",
            "save the report",
            "send the report",
            "begin a new inspection",
            "mark this location",
            "zoom in",
            "zoom out",
            "read back the last entry",
        ],
    ),
    (
        "lead",
        &["okay", "now", "right", "alright", "and", "also", "then"],
    ),
    ("tail", &["please", "now", "thanks", "again", "for me"]),
    (
        "remark",
        &[
            "water is pooling near the {feature}",
            "heavy traffic {direction} of the {feature}",
            "the road surface is {condition}",
            "the surface is {condition} {position}",
            "the marking is faded {position}",
            "the manhole cover is loose",
            "the curb is broken near the {feature}",
            "a sign is missing at the {feature}",
            "we're on {road} heading {direction}",
            "i'm at {road} near the {feature}",
            "it's raining and the road is {condition}",
            "it's getting dark",
            "don't count that one",
            "that's a repair patch not a {damage}",
            "that's the same {damage} as before",
            "can't see the lane markings",
            "let's move to the next block",
            "there's no damage on this section",
            "this section looks good",
            "the {damage} is getting worse",
            "the {damage} has been repaired",
            "the {damage} was reported last year",
            "traffic is {size} and slow",
            "we need a crew here this week",
            "the {feature} needs cleaning",
            "there's debris on the {position}",
            "vehicles are swerving around the {damage}",
            "check this one again next month",
        ],
    ),
    (
        "report",
        &[
            "{damage} {position} severity {sev}",
            "{damage} {position}",
            "{lead} {damage} {position} severity {sev}",
            "mark {damage} at {distance}",
            "mark {damage} {position} at {distance}",
            "{damage} near the {feature}",
            "{damage} near the {feature} {position}",
            "{damage} at the {feature} severity {sev}",
            "log {damage} {position} at {distance}",
            "there's a {damage} {position}",
            "there's a {size} {damage} near the {feature}",
            "found a {damage} {direction} of the {feature}",
            "{damage} about {measure} {dimension}",
            "{size} {damage} about {measure} {dimension}",
            "{damage} width {n} centimeters depth {n} centimeters",
            "{damage} length {measure}",
            "at {distance} {damage} {position}",
            "{road} {direction} {damage} {position}",
            "{road} {damage} near the {feature}",
            "severity {sev} {damage}",
            "severity {sev} {damage} {position}",
            "the {damage} is {size}",
            "the {damage} is about {measure} {dimension}",
            "{damage} every {n} meters",
            "{damage} from {distance} to {distance}",
            "{damage} and {damage} {position}",
            "{condition} surface {position}",
            "change severity to {sev}",
            "make that severity {sev}",
            "severity {sev}",
        ],
    ),
    (
        "sentence",
        &[
            "{report}",
            "{report}",
            "{report}",
            "{report}",
            "{report}",
            "{report}",
            "{command}",
            "{command} {tail}",
            "{lead} {command}",
            "{remark}",
            "{lead} {remark}",
        ],
    ),
];

/// The words of numbers.
const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// `n` (0..=999) as spoken American English without "and": `125` → "one hundred twenty five".
pub fn spoken(n: u32) -> String {
    let mut words = Vec::new();
    if n >= 100 {
        words.push(ONES[(n / 100) as usize % 10]);
        words.push("hundred");
    }
    let rest = (n % 100) as usize;
    if rest >= 20 {
        words.push(TENS[rest / 10]);
        if !rest.is_multiple_of(10) {
            words.push(ONES[rest % 10]);
        }
    } else if rest > 0 || n == 0 {
        words.push(ONES[rest]);
    }
    words.join(" ")
}

/// The phrases of slot `name`; templates only name slots in [`SLOTS`].
fn phrases(name: &str) -> &'static [&'static str] {
    SLOTS
        .iter()
        .find(|(slot, _)| *slot == name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("template names an unknown slot {{{name}}}"))
}

/// Expands one slot (recursively) and appends its words to `out`.
fn expand(name: &str, rng: &mut Rng, out: &mut Vec<String>) {
    let number = match name {
        "n" => Some(1 + rng.below(99) as u32),
        "sev" => Some(1 + rng.below(5) as u32),
        "digit" => Some(rng.below(10) as u32),
        "big" => Some(10 * (10 + rng.below(90) as u32)),
        _ => None,
    };
    if let Some(n) = number {
        out.extend(spoken(n).split(' ').map(str::to_owned));
        return;
    }
    let options = phrases(name);
    let phrase = options[rng.below(options.len())];
    for word in phrase.split(' ') {
        match word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(slot) => expand(slot, rng, out),
            None => out.push(word.to_owned()),
        }
    }
}

/// One sentence drawn from all templates: lowercase words of `a`-`z` and `'`, single spaces.
/// "a" before a vowel becomes "an".
pub fn draw_sentence(rng: &mut Rng) -> String {
    let mut words = Vec::new();
    expand("sentence", rng, &mut words);
    for i in 0..words.len().saturating_sub(1) {
        if words[i] == "a" && words[i + 1].starts_with(['a', 'e', 'i', 'o', 'u']) {
            words[i] = "an".to_owned();
        }
    }
    words.join(" ")
}

/// The split a sentence belongs to: a stable 64-bit hash of its bytes (FNV-1a, then mixed),
/// 80% train, 10% val, 10% test.
pub fn bucket(sentence: &str) -> Split {
    let fnv = sentence.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    match mix(fnv) % 10 {
        0 => Split::Val,
        1 => Split::Test,
        _ => Split::Train,
    }
}

/// Draws sentences until one falls in `split`'s bucket (on average 1.25 draws for train, 10
/// for val and test).
pub fn sentence_for(split: Split, rng: &mut Rng) -> String {
    loop {
        let sentence = draw_sentence(rng);
        if bucket(&sentence) == split {
            return sentence;
        }
    }
}

/// A contiguous run of two or more words, but not all, of a training sentence, itself in
/// the training bucket. Fixed phrases ("don't count that one") are one sentence, in one
/// bucket: if that is val or test, training hears the phrase only after a lead word ("then
/// don't count that one"), and a recogniser learns that no utterance starts that way (the
/// RNN-T's predictor is a language model). Fragments start and end utterances on every
/// word; one whose text is a val or test sentence is never drawn.
pub fn training_fragment(rng: &mut Rng) -> String {
    loop {
        let sentence = sentence_for(Split::Train, rng);
        let words: Vec<&str> = sentence.split(' ').collect();
        if words.len() < 3 {
            continue;
        }
        let len = 2 + rng.below(words.len() - 2);
        let start = rng.below(words.len() - len + 1);
        let fragment = words[start..start + len].join(" ");
        if bucket(&fragment) == Split::Train {
            return fragment;
        }
    }
}

/// Every word any template can produce, sorted: the closed vocabulary of the corpus.
pub fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = SLOTS
        .iter()
        .flat_map(|(_, phrases)| phrases.iter().flat_map(|p| p.split(' ')))
        .filter(|w| !w.starts_with('{'))
        .map(str::to_owned)
        .chain(ONES.iter().chain(&TENS[2..]).map(|w| (*w).to_owned()))
        .chain(["hundred", "an"].map(str::to_owned))
        .collect();
    words.sort();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn numbers_are_spoken_like_an_inspector_reads_them() {
        assert_eq!(spoken(0), "zero");
        assert_eq!(spoken(7), "seven");
        assert_eq!(spoken(40), "forty");
        assert_eq!(spoken(42), "forty two");
        assert_eq!(spoken(100), "one hundred");
        assert_eq!(spoken(915), "nine hundred fifteen");
    }

    #[test]
    fn sentences_are_normalised_and_use_only_the_vocabulary() {
        let vocab: HashSet<String> = vocabulary().into_iter().collect();
        assert!((150..=300).contains(&vocab.len()), "{} words", vocab.len());
        let mut rng = Rng::new(3);
        for _ in 0..5000 {
            let s = draw_sentence(&mut rng);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b' ' || b == b'\''),
                "{s}"
            );
            assert!(!s.starts_with(' ') && !s.ends_with(' ') && !s.contains("  "));
            let words: Vec<&str> = s.split(' ').collect();
            for pair in words.windows(2) {
                let vowel = pair[1].starts_with(['a', 'e', 'i', 'o', 'u']);
                assert!(pair[0] != "a" || !vowel, "{s}");
                assert!(pair[0] != "an" || vowel, "{s}");
            }
            for w in s.split(' ') {
                assert!(vocab.contains(w), "{w} of {s:?} is not in the vocabulary");
            }
        }
    }

    #[test]
    fn fragments_are_proper_training_spans_and_start_on_many_words() {
        let mut rng = Rng::new(5);
        let mut firsts = HashSet::new();
        for _ in 0..3000 {
            let f = training_fragment(&mut rng);
            let words: Vec<&str> = f.split(' ').collect();
            assert!(words.len() >= 2, "{f}");
            assert_eq!(bucket(&f), Split::Train, "{f}");
            firsts.insert(words[0].to_owned());
        }
        // Whole sentences start on a few dozen words (leads, damages, commands); fragments
        // on most of the vocabulary.
        assert!(firsts.len() > vocabulary().len() / 2, "{}", firsts.len());
        assert!(
            firsts.contains("don't") && firsts.contains("centimeters"),
            "{firsts:?}"
        );
    }

    #[test]
    fn buckets_are_disjoint_and_proportioned_and_train_covers_every_word() {
        let mut rng = Rng::new(11);
        let mut seen: HashMap<String, Split> = HashMap::new();
        let mut counts = [0usize; 3];
        let mut train_words = HashSet::new();
        let mut other_words = HashSet::new();
        for _ in 0..60_000 {
            let s = draw_sentence(&mut rng);
            let split = bucket(&s);
            assert_eq!(*seen.entry(s.clone()).or_insert(split), split);
            counts[split as usize] += 1;
            let words = s.split(' ').map(str::to_owned);
            if split == Split::Train {
                train_words.extend(words);
            } else {
                other_words.extend(words);
            }
        }
        let total = counts.iter().sum::<usize>() as f64;
        for (count, expected) in counts.iter().zip([0.8, 0.1, 0.1]) {
            assert!(
                (*count as f64 / total - expected).abs() < 0.02,
                "{counts:?}"
            );
        }
        let missing: Vec<_> = other_words.difference(&train_words).collect();
        assert!(
            missing.is_empty(),
            "val/test words never in train: {missing:?}"
        );
        let vocab: HashSet<String> = vocabulary().into_iter().collect();
        let unused: Vec<_> = vocab.difference(&train_words).collect();
        assert!(
            unused.is_empty(),
            "words no train sentence uses: {unused:?}"
        );
        // Commands repeat (a few hundred forms, a quarter of all draws); reports rarely do.
        assert!(
            seen.len() > 20_000,
            "only {} distinct sentences",
            seen.len()
        );
    }
}
