//! Plain-text tables with aligned columns.

/// Renders `rows` under `headers`, columns left-aligned and two spaces apart; the last
/// column is not padded, so long text there does not widen the table.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        out.push_str(&render_row(row, &widths));
        out.push('\n');
    }
    out
}

/// One line of the table.
fn render_row(row: &[String], widths: &[usize]) -> String {
    let last = row.len().saturating_sub(1);
    let cells: Vec<String> = row
        .iter()
        .enumerate()
        .map(|(i, cell)| if i == last { cell.clone() } else { format!("{cell:<width$}", width = widths[i]) })
        .collect();
    cells.join("  ").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn columns_line_up() {
        let rows = vec![vec!["1".into(), "complete".into()], vec!["12".into(), "damaged: x".into()]];
        assert_eq!(render(&["ID", "STATUS"], &rows), "ID  STATUS\n1   complete\n12  damaged: x\n");
    }
}
