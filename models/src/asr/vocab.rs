//! Token ids to text, from a model folder's `tokens.txt` (one token per line in id order;
//! `<blank>` renders as nothing, `<space>` as a space, anything else as itself).
//!
//! The file's text is borrowed, not parsed into a table, so the same code renders a
//! transcript on a device (`include_str!`) and on a host; looking a token up walks the lines,
//! which is nothing next to running the joiner that produced it.

use crate::Error;
use core::fmt;

/// A borrowed `tokens.txt`.
#[derive(Clone, Copy, Debug)]
pub struct Vocab<'t> {
    text: &'t str,
    len: usize,
}

impl<'t> Vocab<'t> {
    /// Reads `tokens.txt`; refuses an empty file or an empty line (a token must be visible).
    ///
    /// ```
    /// use edgetrim_models::asr::Vocab;
    /// let vocab = Vocab::new("<blank>\n<space>\n'\na\nb\n").unwrap();
    /// let mut text = heapless::String::<16>::new();
    /// vocab.write(&[3, 4, 1, 2, 0, 4], &mut text).unwrap();
    /// assert_eq!(text, "ab 'b");
    /// ```
    pub fn new(text: &'t str) -> Result<Vocab<'t>, Error> {
        let mut len = 0;
        for line in text.lines() {
            if line.trim().is_empty() {
                return Err(Error::Invalid("tokens.txt has an empty line"));
            }
            len += 1;
        }
        if len == 0 {
            return Err(Error::Invalid("tokens.txt is empty"));
        }
        Ok(Vocab { text, len })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no tokens (never, for a `Vocab` that was created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text of token `id` (`None` past the end).
    pub fn token(&self, id: u16) -> Option<&'t str> {
        let line = self.text.lines().nth(usize::from(id))?.trim();
        Some(match line {
            "<blank>" => "",
            "<space>" => " ",
            other => other,
        })
    }

    /// Writes the text of `ids`; an id past the vocabulary is written as `<id>`.
    pub fn write(&self, ids: &[u16], out: &mut impl fmt::Write) -> fmt::Result {
        for &id in ids {
            match self.token(id) {
                Some(t) => out.write_str(t)?,
                None => write!(out, "<{id}>")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_agreed_vocabulary() {
        let mut text = std::string::String::from("<blank>\n<space>\n'\n");
        for c in 'a'..='z' {
            text.push(c);
            text.push('\n');
        }
        let v = Vocab::new(&text).unwrap();
        assert_eq!(v.len(), 29);
        assert_eq!(
            (v.token(0), v.token(1), v.token(2)),
            (Some(""), Some(" "), Some("'"))
        );
        assert_eq!(
            (v.token(3), v.token(28), v.token(29)),
            (Some("a"), Some("z"), None)
        );
        let mut s = std::string::String::new();
        // "pothole left" with a blank and an out-of-range id
        v.write(&[18, 17, 22, 10, 17, 14, 7, 0, 1, 14, 7, 8, 22, 40], &mut s)
            .unwrap();
        assert_eq!(s, "pothole left<40>");
    }

    #[test]
    fn refuses_empty_files_and_lines() {
        assert!(Vocab::new("").is_err());
        assert!(Vocab::new("<blank>\n\na\n").is_err());
    }
}
