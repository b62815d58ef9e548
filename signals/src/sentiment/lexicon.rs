//! VADER's word lists: the valence lexicon (taken from the `vader_sentiment` crate, which embeds
//! the MIT-licensed lexicon of vaderSentiment) and the small rule tables of vaderSentiment 3.3.2.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Boost of an intensifier ("very"); negative for a dampener ("slightly").
pub(crate) const B_INCR: f64 = 0.293;
/// Dampener counterpart of [`B_INCR`].
pub(crate) const B_DECR: f64 = -0.293;
/// Extra weight of a word in ALL CAPS among mixed-case words.
pub(crate) const C_INCR: f64 = 0.733;
/// Factor applied to a negated word's valence.
pub(crate) const N_SCALAR: f64 = -0.74;

/// The word → valence table, keyed by lower-case word.
///
/// The `vader_sentiment` crate keys its table case-insensitively, which merges entries that the
/// reference keeps apart, and its copy lacks two words. The reference looks words up in lower
/// case, so its effective table is reproduced here: keys lower-cased, then the five entries
/// where the two differ set as the reference has them.
pub(crate) fn lexicon() -> &'static HashMap<String, f64> {
    static TABLE: OnceLock<HashMap<String, f64>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: HashMap<String, f64> = vader_sentiment::LEXICON
            .iter()
            .map(|(word, valence)| (AsRef::<str>::as_ref(word).to_lowercase(), *valence))
            .collect();
        // Only reachable in the reference through its lower-case spelling.
        table.insert(":p".into(), 1.0);
        // Upper-case-only entries, which the reference's lower-case lookup never finds.
        table.remove(":-þ");
        table.remove(":þ");
        // Missing from the crate's copy of the lexicon.
        table.insert("heart".into(), 3.2);
        table.insert("hearts".into(), 3.3);
        table
    })
}

/// Emoji → description; emoji are replaced by their description before scoring.
pub(crate) fn emoji_description(emoji: &str) -> Option<&'static str> {
    vader_sentiment::EMOJI_LEXICON.get(emoji).copied()
}

/// Words that negate the sentiment that follows them.
pub(crate) const NEGATE: [&str; 59] = [
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

/// Degree adverbs: intensifiers (+) and dampeners (−), including the two-word ones.
pub(crate) fn booster(word: &str) -> Option<f64> {
    const INCR: &[&str] = &[
        "absolutely",
        "amazingly",
        "awfully",
        "completely",
        "considerable",
        "considerably",
        "decidedly",
        "deeply",
        "effing",
        "enormous",
        "enormously",
        "entirely",
        "especially",
        "exceptional",
        "exceptionally",
        "extreme",
        "extremely",
        "fabulously",
        "flipping",
        "flippin",
        "frackin",
        "fracking",
        "fricking",
        "frickin",
        "frigging",
        "friggin",
        "fully",
        "fuckin",
        "fucking",
        "fuggin",
        "fugging",
        "greatly",
        "hella",
        "highly",
        "hugely",
        "incredible",
        "incredibly",
        "intensely",
        "major",
        "majorly",
        "more",
        "most",
        "particularly",
        "purely",
        "quite",
        "really",
        "remarkably",
        "so",
        "substantially",
        "thoroughly",
        "total",
        "totally",
        "tremendous",
        "tremendously",
        "uber",
        "unbelievably",
        "unusually",
        "utter",
        "utterly",
        "very",
    ];
    const DECR: &[&str] = &[
        "almost",
        "barely",
        "hardly",
        "just enough",
        "kind of",
        "kinda",
        "kindof",
        "kind-of",
        "less",
        "little",
        "marginal",
        "marginally",
        "occasional",
        "occasionally",
        "partly",
        "scarce",
        "scarcely",
        "slight",
        "slightly",
        "somewhat",
        "sort of",
        "sorta",
        "sortof",
        "sort-of",
    ];
    if INCR.contains(&word) {
        Some(B_INCR)
    } else if DECR.contains(&word) {
        Some(B_DECR)
    } else {
        None
    }
}

/// Idioms whose valence replaces that of the words in them.
pub(crate) fn special_case(phrase: &str) -> Option<f64> {
    const CASES: [(&str, f64); 9] = [
        ("the shit", 3.0),
        ("the bomb", 3.0),
        ("bad ass", 1.5),
        ("badass", 1.5),
        ("bus stop", 0.0),
        ("yeah right", -2.0),
        ("kiss of death", -1.5),
        ("to die for", 3.0),
        ("beating heart", 3.5),
    ];
    CASES.iter().find(|(p, _)| *p == phrase).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_matches_the_reference_where_the_crate_differs() {
        let lex = lexicon();
        assert_eq!(lex.get("good"), Some(&1.9));
        assert_eq!(lex.get(":p"), Some(&1.0));
        assert_eq!(lex.get(":d"), Some(&2.3));
        assert_eq!(lex.get("xd"), Some(&2.8));
        assert_eq!(lex.get("heart"), Some(&3.2));
        assert_eq!(lex.get(":þ"), None);
        // The reference's lexicon has 7,506 distinct entries, 7,492 of them in lower case: the
        // only ones its lower-case lookup can reach.
        assert_eq!(lex.len(), 7_492);
    }
}
