//! Plain-text tables: columns padded to their widest cell (counted in characters, so `μs`
//! lines up), two spaces between columns, no trailing spaces.

/// Formats `headers` and `rows` as a table, one line each, newline-terminated.
pub fn format(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0);
            line.extend(std::iter::repeat_n(
                ' ',
                pad.saturating_sub(cell.chars().count()),
            ));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_padded_by_characters() {
        let rows = vec![
            vec!["a".to_owned(), "1μs".to_owned(), "x".to_owned()],
            vec!["longer".to_owned(), "10ms".to_owned(), String::new()],
        ];
        assert_eq!(
            super::format(&["A", "LATENCY", "C"], &rows),
            "A       LATENCY  C\na       1μs      x\nlonger  10ms\n"
        );
    }
}
