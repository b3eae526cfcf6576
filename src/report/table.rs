//! Fixed-width text tables and their number cells, shared by the summary's sections
//! (`summary.rs` and the latency section in `latency.rs`), so each of them imports this file and
//! neither imports the other.

/// Column alignment.
#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Right,
}

/// A fixed-width table: columns as wide as their widest cell, two spaces apart, indented.
pub(super) fn table(indent: &str, headers: &[(&str, Align)], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = indent.to_string();
        for (i, cell) in cells.enumerate().take(widths.len()) {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            match headers[i].1 {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
                Align::Right => {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
        }
        line.trim_end().to_string()
    };
    let mut out = vec![render(&mut headers.iter().map(|(h, _)| *h))];
    out.extend(rows.iter().map(|r| render(&mut r.iter().map(String::as_str))));
    out
}

/// A figure with one decimal, as the tables print them.
pub(super) fn f1(v: f64) -> String {
    format!("{v:.1}")
}
