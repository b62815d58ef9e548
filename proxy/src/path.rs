//! Request paths as servers will read them: percent-encoded unreserved characters decoded and
//! dot segments removed (RFC 3986 6.2.2), so a route is chosen on the path the upstream serves
//! (`/api/../admin` is `/admin`, not a request for the `/api` workload).

use std::borrow::Cow;

/// The normalized form of an origin-form path (no query); borrowed when already normal.
pub fn normalize(path: &str) -> Cow<'_, str> {
    // The common case, checked without allocating: no escape and no segment starting with a
    // dot (`/file.txt` is normal, `/./`, `/../` and `/.well-known` are looked at).
    if !path.contains('%') && !path.contains("/.") {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let out = remove_dot_segments(&decoded);
    if out == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(out)
    }
}

/// `%41` → `A`, `%2e` → `.`: only the unreserved set, whose encoded and plain forms mean the
/// same; `%2F` (a slash that is data) and the rest stay encoded.
fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = (h * 16 + l) as u8;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c as char);
                    i += 3;
                    continue;
                }
            }
        }
        // Not a decodable unreserved escape: copy this character as it is.
        let ch = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    Cow::Owned(out)
}

/// RFC 3986 5.2.4 on an absolute path: `.` segments dropped, `..` removes the segment before
/// it (never climbing above the root), a trailing `.`/`..` leaves a trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate().skip(1) {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_go() {
        assert_eq!(normalize("/api/../admin/x"), "/admin/x");
        assert_eq!(normalize("/api/./x"), "/api/x");
        assert_eq!(normalize("/a/b/../../c"), "/c");
        assert_eq!(normalize("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("/a/.."), "/");
        assert_eq!(normalize("/a/b/.."), "/a/");
        assert_eq!(normalize("/a/."), "/a/");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn encoded_dots_and_unreserved_are_decoded_the_rest_kept() {
        assert_eq!(normalize("/api/%2e%2e/admin"), "/admin");
        assert_eq!(normalize("/api/%2E%2E/admin"), "/admin");
        assert_eq!(normalize("/%7Euser/%41"), "/~user/A");
        assert_eq!(normalize("/a%2Fb"), "/a%2Fb", "an encoded slash is data");
        assert_eq!(normalize("/a%20b"), "/a%20b");
        assert_eq!(normalize("/bad%zz/%"), "/bad%zz/%");
        assert_eq!(normalize("/é/../x"), "/x");
    }

    #[test]
    fn normal_paths_are_borrowed() {
        assert!(matches!(normalize("/api/v1/items"), Cow::Borrowed(_)));
        assert!(matches!(normalize("/file.txt"), Cow::Borrowed(_)));
        assert!(
            matches!(normalize("/a//b"), Cow::Borrowed(_)),
            "double slashes are the upstream's to read"
        );
    }
}
