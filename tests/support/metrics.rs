//! Reading one value out of a Prometheus text exposition.

/// The value of the first sample named exactly `name` (no labels), if any.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unlabelled_sample_by_its_whole_name() {
        let text = "# HELP umbra_heap_allocated_bytes live heap\n\
                    umbra_heap_allocated_bytes_extra 1\n\
                    umbra_heap_allocated_bytes 2048\n";
        assert_eq!(
            metric_value(text, "umbra_heap_allocated_bytes"),
            Some(2048.0)
        );
        assert_eq!(metric_value(text, "umbra_heap"), None);
        assert_eq!(metric_value(text, "absent"), None);
    }
}
