//! Finds the line of a field in the config text, so validation errors can point at it.

use crate::error::{FieldPath, Segment};
use toml_edit::{ImDocument, Item};

/// The 1-based line of `field` in `text`: the deepest part of the path that exists (a key,
/// an array element, or the enclosing table), or line 1 when nothing matches.
pub(crate) fn line_of(text: &str, field: &FieldPath) -> usize {
    let offset = ImDocument::parse(text)
        .ok()
        .and_then(|doc| deepest_span(doc.as_item(), field.segments()));
    offset.map_or(1, |o| line_col(text, o).0)
}

fn deepest_span(root: &Item, path: &[Segment]) -> Option<usize> {
    let mut item = root;
    let mut best = None;
    for seg in path {
        match seg {
            Segment::Key(k) => {
                let Some((key, next)) = item.as_table_like().and_then(|t| t.get_key_value(k))
                else {
                    break;
                };
                best = key.span().map(|s| s.start).or(best);
                item = next;
            }
            Segment::Index(i) => {
                let Some(next) = item.get(*i) else { break };
                best = next.span().map(|s| s.start).or(best);
                item = next;
            }
        }
    }
    best
}

/// 1-based (line, column) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[proxy]\nlisten = \"x\"\n\n[[workloads]]\nname = \"a\"\n\n[[workloads]]\nname = \"b\"\nprimary = [\"1\", \"2\"]\n[workloads.guard]\nwindow = \"2s\"\n";

    #[test]
    fn finds_keys_in_arrays_of_tables() {
        let p = FieldPath::root("workloads")
            .index(1)
            .key("guard")
            .key("window");
        assert_eq!(line_of(TEXT, &p), 11);
        assert_eq!(
            line_of(TEXT, &FieldPath::root("workloads").index(1).key("name")),
            8
        );
        assert_eq!(line_of(TEXT, &FieldPath::root("proxy").key("listen")), 2);
    }

    #[test]
    fn missing_key_points_at_the_enclosing_table() {
        let p = FieldPath::root("workloads").index(0).key("primary");
        assert_eq!(line_of(TEXT, &p), 4);
    }

    #[test]
    fn array_elements() {
        let p = FieldPath::root("workloads")
            .index(1)
            .key("primary")
            .index(1);
        assert_eq!(line_of(TEXT, &p), 9);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
