//! Word and character error rates, corpus-level, as `models/train/rnnt/decode.py` computes
//! them: the Levenshtein distances of all utterances summed and divided by the reference's
//! words (or characters) summed — not a mean of per-utterance rates, which would weigh a
//! two-word command like a twelve-word sentence.

/// Minimum number of substitutions, insertions and deletions turning `a` into `b`.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: std::vec::Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(x != y);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j + 1] + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// Error counts over a set of (reference, hypothesis) transcripts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorRates {
    /// Utterances added.
    pub utterances: usize,
    /// Utterances transcribed exactly.
    pub exact: usize,
    /// Word-level edit distance, summed.
    pub word_errors: usize,
    /// Reference words, summed.
    pub words: usize,
    /// Character-level edit distance (spaces included), summed.
    pub char_errors: usize,
    /// Reference characters, summed.
    pub chars: usize,
}

impl ErrorRates {
    /// Adds one utterance (words are split on whitespace).
    pub fn add(&mut self, reference: &str, hypothesis: &str) {
        let (r, h): (std::vec::Vec<&str>, std::vec::Vec<&str>) = (
            reference.split_whitespace().collect(),
            hypothesis.split_whitespace().collect(),
        );
        self.word_errors += edit_distance(&r, &h);
        self.words += r.len();
        let (r, h): (std::vec::Vec<char>, std::vec::Vec<char>) =
            (reference.chars().collect(), hypothesis.chars().collect());
        self.char_errors += edit_distance(&r, &h);
        self.chars += r.len();
        self.utterances += 1;
        self.exact += usize::from(reference == hypothesis);
    }

    /// Word error rate (0 with no reference words).
    pub fn wer(&self) -> f64 {
        self.word_errors as f64 / self.words.max(1) as f64
    }

    /// Character error rate.
    pub fn cer(&self) -> f64 {
        self.char_errors as f64 / self.chars.max(1) as f64
    }

    /// Fraction of utterances transcribed exactly.
    pub fn exact_match(&self) -> f64 {
        self.exact as f64 / self.utterances.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_each_kind_of_edit() {
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
        assert_eq!(edit_distance(b"", b"abc"), 3);
        assert_eq!(edit_distance(b"abc", b""), 3);
        assert_eq!(edit_distance(b"abc", b"abc"), 0);
        assert_eq!(edit_distance(b"ab", b"ba"), 2);
    }

    #[test]
    fn rates_are_corpus_level() {
        let mut r = ErrorRates::default();
        r.add("pothole left lane", "pothole left line");
        r.add("crack", "crack");
        // One word wrong of four, one character of 22; one exact utterance of two.
        assert_eq!(
            (r.word_errors, r.words, r.char_errors, r.chars),
            (1, 4, 1, 22)
        );
        assert_eq!(r.wer(), 0.25);
        assert_eq!(r.exact_match(), 0.5);
        r.add("severity three", "");
        assert_eq!((r.word_errors, r.words), (3, 6));
        assert!((r.cer() - 15.0 / 36.0).abs() < 1e-12);
    }
}
