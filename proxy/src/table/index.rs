//! Where the route table finds a request's route without scanning every route: a hash lookup
//! by host (exact, then each parent domain for wildcards), then by each path prefix the
//! request path could match, longest first.
//!
//! It answers exactly what the scan in most-specific-first order would answer: the lowest
//! position among the matching routes (positions are indices into that order).

use std::hash::{BuildHasherDefault, Hasher};

/// The keys come from the config and requests only look them up, so no request can fill a map
/// with colliding keys (the attack a keyed hash defends against): an unkeyed word-at-a-time
/// hash is safe here and several times cheaper than SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// FxHash's mixing step (rustc's hasher), over 8 bytes at a time.
#[derive(Default, Clone, Copy)]
struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        // The tail in 4-, 2- and 1-byte loads: a variable-length copy into a word would be a
        // `memcpy` call per key.
        let mut rest = chunks.remainder();
        if let Some((word, tail)) = rest.split_first_chunk::<4>() {
            self.add(u64::from(u32::from_le_bytes(*word)));
            rest = tail;
        }
        if let Some((word, tail)) = rest.split_first_chunk::<2>() {
            self.add(u64::from(u16::from_le_bytes(*word)));
            rest = tail;
        }
        if let Some(&b) = rest.first() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Route positions by host pattern, then by path prefix.
#[derive(Default)]
pub(super) struct RouteIndex {
    /// Exact hosts (lowercase).
    exact: HashMap<Box<str>, PrefixIndex>,
    /// Wildcard suffixes (`*.example.com` is `example.com`, lowercase).
    subdomains: HashMap<Box<str>, PrefixIndex>,
    /// The lengths of those suffixes, so that a host's parent domains of other lengths are not
    /// hashed.
    suffix_lengths: Lengths,
    /// Routes for any host.
    any: PrefixIndex,
}

/// Which host patterns a route answers to.
pub(super) enum HostKey<'a> {
    /// No host given: any host.
    Any,
    /// This host only.
    Exact(&'a str),
    /// Subdomains of this suffix.
    Subdomains(&'a str),
}

impl RouteIndex {
    /// Adds the route at `position`; routes must be added in ascending position.
    pub(super) fn add(&mut self, host: HostKey<'_>, prefix: &str, position: u32) {
        let bucket = match host {
            HostKey::Any => &mut self.any,
            HostKey::Exact(h) => self.exact.entry(h.into()).or_default(),
            HostKey::Subdomains(s) => {
                self.suffix_lengths.insert(s.len());
                self.subdomains.entry(s.into()).or_default()
            }
        };
        bucket.add(prefix, position);
    }

    /// The lowest position whose route matches (`host` without port or trailing dot, any case).
    pub(super) fn find(&self, host: &str, path: &str) -> Option<u32> {
        if !host.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.find_lowercase(host, path);
        }
        let mut lower = [0u8; 256];
        if let Some(buf) = lower.get_mut(..host.len()) {
            buf.copy_from_slice(host.as_bytes());
            buf.make_ascii_lowercase();
            // ASCII case changes keep UTF-8 valid; the fallback is never taken.
            return self.find_lowercase(std::str::from_utf8(buf).unwrap_or(host), path);
        }
        // Longer than any valid host name; matched all the same, at the cost of a copy.
        self.find_lowercase(&host.to_ascii_lowercase(), path)
    }

    /// [`Self::find`] for a lowercase host.
    fn find_lowercase(&self, host: &str, path: &str) -> Option<u32> {
        // Every exact-host route sorts before every wildcard one, and those before any-host ones.
        if let Some(p) = self.exact.get(host).and_then(|b| b.find(path)) {
            return Some(p);
        }
        if !self.subdomains.is_empty() {
            // `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
            let best = host
                .bytes()
                .enumerate()
                .skip(1)
                .filter(|&(i, b)| b == b'.' && self.suffix_lengths.contains(host.len() - i - 1))
                .filter_map(|(i, _)| self.subdomains.get(&host[i + 1..]))
                .filter_map(|b| b.find(path))
                .min();
            if best.is_some() {
                return best;
            }
        }
        self.any.find(path)
    }
}

/// Route positions by path prefix, for one host pattern.
#[derive(Default)]
struct PrefixIndex {
    /// The first (lowest) position of each prefix.
    by_prefix: HashMap<Box<str>, u32>,
    /// The lengths of those prefixes, so that lengths no prefix has are not hashed.
    lengths: Lengths,
}

/// A set of key lengths: bit `n` for `n` bytes, the last bit for all lengths from 255 up.
#[derive(Default)]
struct Lengths([u64; 4]);

impl Lengths {
    fn insert(&mut self, n: usize) {
        let n = n.min(255);
        self.0[n / 64] |= 1 << (n % 64);
    }

    fn contains(&self, n: usize) -> bool {
        let n = n.min(255);
        self.0[n / 64] & (1 << (n % 64)) != 0
    }
}

impl PrefixIndex {
    fn add(&mut self, prefix: &str, position: u32) {
        self.by_prefix.entry(prefix.into()).or_insert(position);
        self.lengths.insert(prefix.len());
    }

    /// The route for the longest prefix `path` matches segment-wise: the whole path, up to and
    /// including a `/` (a prefix ending in `/` matches plainly), or up to a `/` (`/api` matches
    /// `/api/x`). Positions sort longer prefixes first, so the longest hit is the answer.
    fn find(&self, path: &str) -> Option<u32> {
        if self.by_prefix.is_empty() {
            return None;
        }
        let probe = |n: usize| {
            self.lengths
                .contains(n)
                .then(|| self.by_prefix.get(&path[..n]).copied())
                .flatten()
        };
        if let Some(p) = probe(path.len()) {
            return Some(p);
        }
        for (i, _) in path.bytes().enumerate().rev().filter(|&(_, b)| b == b'/') {
            if i + 1 < path.len()
                && let Some(p) = probe(i + 1)
            {
                return Some(p);
            }
            if let Some(p) = probe(i) {
                return Some(p);
            }
        }
        None
    }
}
