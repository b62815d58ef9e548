//! VADER sentiment scoring (Hutto & Gilbert, ICWSM 2014), following the rules of the reference
//! implementation vaderSentiment 3.3.2 (MIT) so that scores match it.
//!
//! Written here rather than taken from the `vader_sentiment` crate: that crate's rules drift from
//! the reference (it matches booster words as substrings, so "handsome" counts as "so", and it
//! amplifies punctuation on neutral text); "VADER is very smart, handsome, and funny." scores
//! 0.8737 there against the reference's 0.8545. Its lexicon is used as is (see `lexicon`).

use crate::sentiment::lexicon::{
    C_INCR, N_SCALAR, NEGATE, booster, emoji_description, lexicon, special_case,
};

/// VADER's four scores for one text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Polarity {
    /// Share of negative words, 0..=1.
    pub neg: f64,
    /// Share of neutral words, 0..=1.
    pub neu: f64,
    /// Share of positive words, 0..=1.
    pub pos: f64,
    /// Normalised overall sentiment, -1 (most negative) ..= 1 (most positive).
    pub compound: f64,
}

/// VADER's scores for `text`, unrounded (the reference rounds compound to 4 decimals).
pub fn polarity_scores(text: &str) -> Polarity {
    let text = describe_emoji(text);
    let text = text.trim_matches(is_space);
    let words: Vec<&str> = text
        .split(is_space)
        .filter(|w| !w.is_empty())
        .map(strip_punctuation)
        .collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let cap_diff = mixed_caps(&words);
    let mut sentiments = Vec::with_capacity(words.len());
    for i in 0..words.len() {
        let kind_of = lower[i] == "kind" && lower.get(i + 1).is_some_and(|n| n == "of");
        if booster(&lower[i]).is_some() || kind_of {
            sentiments.push(0.0);
        } else {
            sentiments.push(valence(&words, &lower, i, cap_diff));
        }
    }
    but_check(&lower, &mut sentiments);
    score(&sentiments, text)
}

/// Whitespace as Python's `str.split()` sees it (it also splits on the ASCII separators
/// 0x1C-0x1F).
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Replaces each emoji by its description, spaced from the text before it.
fn describe_emoji(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_space = true;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        match emoji_description(c.encode_utf8(&mut buf)) {
            Some(description) => {
                if !prev_space {
                    out.push(' ');
                }
                out.push_str(description);
                prev_space = false;
            }
            None => {
                out.push(c);
                prev_space = c == ' ';
            }
        }
    }
    out
}

/// Strips leading and trailing ASCII punctuation, unless that leaves two characters or fewer
/// (then the token is likely an emoticon like `:)` and is kept whole).
fn strip_punctuation(token: &str) -> &str {
    let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().count() <= 2 {
        token
    } else {
        stripped
    }
}

/// Python's `str.isupper()`: has a cased letter and no lower-case one.
fn is_upper(word: &str) -> bool {
    word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase)
}

/// True when some but not all words are in ALL CAPS (then caps signal emphasis).
fn mixed_caps(words: &[&str]) -> bool {
    let caps = words.iter().filter(|w| is_upper(w)).count();
    caps > 0 && caps < words.len()
}

/// A word that negates what follows.
fn negated(word: &str) -> bool {
    NEGATE.contains(&word) || word.contains("n't")
}

/// Valence of word `i` with the rules for "no", caps, boosters, negation, idioms and "least".
fn valence(words: &[&str], lower: &[String], i: usize, cap_diff: bool) -> f64 {
    let lex = lexicon();
    let Some(&base) = lex.get(&lower[i]) else {
        return 0.0;
    };
    let mut v = base;
    let at = |k: usize| lower[k].as_str();
    // "no" before another lexicon word negates it instead of counting itself.
    if at(i) == "no" && i + 1 < lower.len() && lex.contains_key(&lower[i + 1]) {
        v = 0.0;
    }
    if (i > 0 && at(i - 1) == "no")
        || (i > 1 && at(i - 2) == "no")
        || (i > 2 && at(i - 3) == "no" && matches!(at(i - 1), "or" | "nor"))
    {
        v = base * N_SCALAR;
    }
    if is_upper(words[i]) && cap_diff {
        v += if v > 0.0 { C_INCR } else { -C_INCR };
    }
    for start_i in 0..3 {
        if i > start_i && !lex.contains_key(&lower[i - start_i - 1]) {
            let mut s = scalar_inc_dec(words[i - start_i - 1], v, cap_diff);
            if start_i == 1 && s != 0.0 {
                s *= 0.95;
            }
            if start_i == 2 && s != 0.0 {
                s *= 0.9;
            }
            v += s;
            v = negation_check(v, lower, start_i, i);
            if start_i == 2 {
                v = special_idioms_check(v, lower, i);
            }
        }
    }
    least_check(v, lower, i)
}

/// Boost from a degree adverb before a word, signed like the word's valence.
fn scalar_inc_dec(word: &str, v: f64, cap_diff: bool) -> f64 {
    let Some(mut scalar) = booster(&word.to_lowercase()) else {
        return 0.0;
    };
    if v < 0.0 {
        scalar = -scalar;
    }
    if is_upper(word) && cap_diff {
        scalar += if v > 0.0 { C_INCR } else { -C_INCR };
    }
    scalar
}

/// Negation by the word `start_i + 1` places back, with the reference's exceptions
/// ("never so", "without doubt").
fn negation_check(v: f64, lower: &[String], start_i: usize, i: usize) -> f64 {
    let at = |k: usize| lower[k].as_str();
    match start_i {
        0 if negated(at(i - 1)) => v * N_SCALAR,
        1 if at(i - 2) == "never" && matches!(at(i - 1), "so" | "this") => v * 1.25,
        1 if at(i - 2) == "without" && at(i - 1) == "doubt" => v,
        1 if negated(at(i - 2)) => v * N_SCALAR,
        // The reference's operator precedence makes a "so"/"this" right before the word enough.
        2 if (at(i - 3) == "never" && matches!(at(i - 2), "so" | "this"))
            || matches!(at(i - 1), "so" | "this") =>
        {
            v * 1.25
        }
        2 if at(i - 3) == "without" && (at(i - 2) == "doubt" || at(i - 1) == "doubt") => v,
        2 if negated(at(i - 3)) => v * N_SCALAR,
        _ => v,
    }
}

/// Idioms around word `i` (which is at least the fourth word) and two-word boosters before it.
fn special_idioms_check(v: f64, lower: &[String], i: usize) -> f64 {
    let at = |k: usize| lower[k].as_str();
    let one_zero = format!("{} {}", at(i - 1), at(i));
    let two_one_zero = format!("{} {} {}", at(i - 2), at(i - 1), at(i));
    let two_one = format!("{} {}", at(i - 2), at(i - 1));
    let three_two_one = format!("{} {} {}", at(i - 3), at(i - 2), at(i - 1));
    let three_two = format!("{} {}", at(i - 3), at(i - 2));
    let mut v = [
        &one_zero,
        &two_one_zero,
        &two_one,
        &three_two_one,
        &three_two,
    ]
    .iter()
    .find_map(|seq| special_case(seq))
    .unwrap_or(v);
    if lower.len() - 1 > i {
        if let Some(s) = special_case(&format!("{} {}", at(i), at(i + 1))) {
            v = s;
        }
    }
    if lower.len() - 1 > i + 1 {
        if let Some(s) = special_case(&format!("{} {} {}", at(i), at(i + 1), at(i + 2))) {
            v = s;
        }
    }
    for n_gram in [&three_two_one, &three_two, &two_one] {
        if let Some(b) = booster(n_gram) {
            v += b;
        }
    }
    v
}

/// "least" before a word negates it, except in "at least" and "very least".
fn least_check(v: f64, lower: &[String], i: usize) -> f64 {
    let lex = lexicon();
    let least_before = i > 0 && lower[i - 1] == "least" && !lex.contains_key(&lower[i - 1]);
    if !least_before {
        return v;
    }
    if i > 1 && matches!(lower[i - 2].as_str(), "at" | "very") {
        v
    } else {
        v * N_SCALAR
    }
}

/// "but" halves what comes before it and weighs what follows by 1.5.
///
/// Reproduces the reference exactly, including its quirk of locating each value by its first
/// equal value in the list (`list.index`), so that equal scores on both sides of "but" are
/// weighted as the reference weighs them.
fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let s = sentiments[k];
        let si = sentiments.iter().position(|&x| x == s).unwrap_or(k);
        if si < bi {
            sentiments[si] = s * 0.5;
        } else if si > bi {
            sentiments[si] = s * 1.5;
        }
    }
}

/// Sums the word valences into the four scores, with emphasis from `!` and `?`.
fn score(sentiments: &[f64], text: &str) -> Polarity {
    if sentiments.is_empty() {
        return Polarity::default();
    }
    let emphasis = punctuation_emphasis(text);
    let mut sum: f64 = sentiments.iter().sum();
    if sum > 0.0 {
        sum += emphasis;
    } else if sum < 0.0 {
        sum -= emphasis;
    }
    let compound = (sum / (sum * sum + 15.0).sqrt()).clamp(-1.0, 1.0);
    let (mut pos_sum, mut neg_sum, mut neu_count) = (0.0f64, 0.0f64, 0.0f64);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu_count += 1.0;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += emphasis;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= emphasis;
    }
    let total = pos_sum + neg_sum.abs() + neu_count;
    Polarity {
        neg: (neg_sum / total).abs(),
        neu: (neu_count / total).abs(),
        pos: (pos_sum / total).abs(),
        compound,
    }
}

/// Emphasis from up to four `!` and from two or more `?`.
fn punctuation_emphasis(text: &str) -> f64 {
    let exclamations = text.matches('!').count().min(4) as f64;
    let questions = text.matches('?').count();
    let question_emphasis = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f64 * 0.18,
        _ => 0.96,
    };
    exclamations * 0.292 + question_emphasis
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples from the reference's README, with its (rounded) compound scores.
    #[test]
    fn readme_examples_match_the_reference() {
        let cases = [
            ("VADER is smart, handsome, and funny.", 0.8316),
            ("VADER is smart, handsome, and funny!", 0.8439),
            ("VADER is very smart, handsome, and funny.", 0.8545),
            ("VADER is VERY SMART, handsome, and FUNNY.", 0.9227),
            ("VADER is VERY SMART, handsome, and FUNNY!!!", 0.9342),
            (
                "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
                0.9469,
            ),
            ("VADER is not smart, handsome, nor funny.", -0.7424),
            ("The book was good.", 0.4404),
            ("At least it isn't a horrible book.", 0.431),
            ("The book was only kind of good.", 0.3832),
            (
                "The plot was good, but the characters are uncompelling and the dialog is not great.",
                -0.7042,
            ),
            ("Today SUX!", -0.5461),
            ("Today only kinda sux! But I'll get by, lol", 0.5249),
            ("Make sure you :) or :D today!", 0.8633),
            ("Not bad at all", 0.431),
            ("", 0.0),
        ];
        for (text, want) in cases {
            let got = polarity_scores(text).compound;
            assert!((got - want).abs() < 5e-5, "{text:?}: {got} vs {want}");
        }
    }

    #[test]
    fn shares_match_the_reference() {
        let p = polarity_scores("VADER is smart, handsome, and funny.");
        assert!((p.pos - 0.746).abs() < 5e-4 && (p.neu - 0.254).abs() < 5e-4 && p.neg == 0.0);
    }
}
