//! How much of each grid interval a set of time intervals covers.

use crate::grid::Grid;

/// Adds `weight × (covered share of cell i)` to `out[i]` for the interval `[start, end)`.
pub(crate) fn add_coverage(grid: &Grid, start: i64, end: i64, weight: f64, out: &mut [f64]) {
    let (start, end) = (start.max(grid.start), end.min(grid.end()));
    if end <= start {
        return;
    }
    let step = grid.step;
    // In range: grid.start <= start < end <= grid.end().
    let first = ((start - grid.start) / step) as usize;
    let last = ((end - 1 - grid.start) / step) as usize;
    for (i, cell) in out.iter_mut().enumerate().take(last + 1).skip(first) {
        let cell_start = grid.time_at(i);
        let overlap = end.min(cell_start + step) - start.max(cell_start);
        *cell += weight * overlap as f64 / step as f64;
    }
}

/// Share of each cell covered by the union of `intervals` (overlaps count once), in 0..=1.
pub(crate) fn union_coverage(grid: &Grid, intervals: &mut Vec<(i64, i64)>) -> Vec<f64> {
    intervals.retain(|(s, e)| e > s);
    intervals.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for &(s, e) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = vec![0.0; grid.len];
    for (s, e) in merged {
        add_coverage(grid, s, e, 1.0, &mut out);
    }
    // Rounding can leave 1.0000000000000002 where pieces of one cell add up.
    out.iter_mut().for_each(|v| *v = v.min(1.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_cells_get_their_share() {
        let Ok(g) = Grid::new(0, 10, 4) else {
            panic!("grid")
        };
        let mut out = vec![0.0; 4];
        add_coverage(&g, 5, 25, 2.0, &mut out);
        assert_eq!(out, vec![1.0, 2.0, 1.0, 0.0]);
        add_coverage(&g, -100, 1_000, 1.0, &mut out);
        assert_eq!(out, vec![2.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn union_counts_overlaps_once() {
        let Ok(g) = Grid::new(0, 10, 3) else {
            panic!("grid")
        };
        let mut iv = vec![(0, 15), (5, 10), (12, 20), (40, 30)];
        assert_eq!(union_coverage(&g, &mut iv), vec![1.0, 1.0, 0.0]);
    }
}
