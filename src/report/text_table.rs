//! A terminal table that fits a width. Each [`Column`] has a priority, a legend and
//! optionally a minimum width it may be cut to; every column starts at its natural width
//! (its widest cell). When the rows are too wide, the least important columns are narrowed
//! to their minimum (cells cut with `…`) or dropped, one at a time, until the rows fit.
//! Both terminal tables (connections, servers) are made of it: a new column is one entry in
//! a table's column list and one cell per row.

use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Columns of this priority are never dropped.
pub const ESSENTIAL: u8 = u8::MAX;

/// One column of a [`TextTable`].
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    /// What the column shows, for `--help` and the docs.
    pub legend: &'static str,
    pub align: Align,
    /// Higher is kept longer when the table must shrink; [`ESSENTIAL`] is never dropped.
    pub priority: u8,
    /// The narrowest the column may be cut to; `None`: never cut.
    pub min_width: Option<usize>,
}

impl Column {
    pub const fn new(header: &'static str, align: Align, priority: u8) -> Column {
        Column {
            header,
            legend: "",
            align,
            priority,
            min_width: None,
        }
    }

    pub const fn legend(mut self, legend: &'static str) -> Column {
        self.legend = legend;
        self
    }

    /// The column may be cut down to `width` characters.
    pub const fn cut_to(mut self, width: usize) -> Column {
        self.min_width = Some(width);
        self
    }
}

/// Width the legend is wrapped to.
const LEGEND_WIDTH: usize = 100;

/// The legend lines of a table's columns: `  header  legend`, the legend wrapped under
/// itself.
pub fn legend(title: &str, columns: &[Column]) -> String {
    let width = columns.iter().map(|c| c.header.len()).max().unwrap_or(0);
    let mut text = format!("{title}:\n");
    for column in columns {
        let first = format!("  {:<width$}  ", column.header);
        text.push_str(&wrap(&first, column.legend, LEGEND_WIDTH));
    }
    text
}

/// `text` after `first`, wrapped at spaces to `width` characters, the following lines
/// indented as far as `first`; each line ends with a newline.
fn wrap(first: &str, text: &str, width: usize) -> String {
    let indent = chars(first);
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ') {
        if !empty && chars(&line) + 1 + chars(word) > width {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Rows of cells under a list of columns.
pub struct TextTable {
    columns: &'static [Column],
    rows: Vec<Vec<String>>,
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

impl TextTable {
    pub fn new(columns: &'static [Column]) -> TextTable {
        TextTable {
            columns,
            rows: Vec::new(),
        }
    }

    /// A row: one cell per column, in the columns' order.
    pub fn push(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// Which columns to show and how wide, to fit `width` characters (`None`: all, each at
    /// its natural width).
    fn layout(&self, width: Option<usize>) -> Vec<(usize, usize)> {
        let natural: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                self.rows
                    .iter()
                    .map(|row| chars(&row[i]))
                    .fold(chars(column.header), usize::max)
            })
            .collect();
        let mut shown: Vec<(usize, usize)> = natural.iter().copied().enumerate().collect();
        let Some(width) = width else {
            return shown;
        };
        let total = |shown: &[(usize, usize)]| {
            shown.iter().map(|(_, w)| w).sum::<usize>() + shown.len().saturating_sub(1)
        };
        // Least important first; among equals, the rightmost first. Cutting a column comes
        // at its priority, dropping a cut column only after every other could go.
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by_key(|&i| (self.columns[i].priority, std::cmp::Reverse(i)));
        for cut_columns in [false, true] {
            for &i in &order {
                let excess = total(&shown).saturating_sub(width);
                let column = &self.columns[i];
                let Some(at) = shown.iter().position(|(c, _)| *c == i) else {
                    continue;
                };
                if excess == 0 {
                    break;
                }
                match (column.min_width, cut_columns) {
                    (Some(min), false) => {
                        let min = min.max(chars(column.header));
                        shown[at].1 -= excess.min(shown[at].1.saturating_sub(min));
                    }
                    (None, false) | (Some(_), true) if column.priority != ESSENTIAL => {
                        shown.remove(at);
                    }
                    _ => {}
                }
            }
        }
        // Space freed by later drops goes back to the cut columns, most important first.
        for &i in order.iter().rev() {
            let spare = width.saturating_sub(total(&shown));
            if let Some(at) = shown.iter().position(|(c, _)| *c == i) {
                shown[at].1 += spare.min(natural[i] - shown[at].1);
            }
        }
        shown
    }

    /// Writes the table to fit `width`; returns the headers of the columns left out.
    pub fn write(
        &self,
        out: &mut dyn Write,
        width: Option<usize>,
    ) -> io::Result<Vec<&'static str>> {
        let shown = self.layout(width);
        let header: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (n, &(i, width)) in shown.iter().enumerate() {
                let last = n + 1 == shown.len();
                if n > 0 {
                    line.push(' ');
                }
                let cell = fit(&row[i], width);
                let pad = width.saturating_sub(chars(&cell));
                match self.columns[i].align {
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(&cell);
                    }
                    Align::Left => {
                        line.push_str(&cell);
                        if !last {
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
            }
            writeln!(out, "{line}")?;
        }
        Ok((0..self.columns.len())
            .filter(|i| !shown.iter().any(|(c, _)| c == i))
            .map(|i| self.columns[i].header)
            .collect())
    }
}

/// `text` cut to `width` characters, the last one `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if chars(text) <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The note under a table that lost columns to the width, wrapped to it (lines end with
/// a newline).
pub fn hidden_note(hidden: &[&str], width: Option<usize>) -> Option<String> {
    let width = width?;
    (!hidden.is_empty()).then(|| {
        let text = format!(
            "(hidden to fit {width} columns: {}; --wide shows them)",
            hidden.join(", ")
        );
        wrap("", &text, width)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[
        Column::new("id", Align::Right, ESSENTIAL),
        Column::new("minor", Align::Right, 1),
        Column::new("name", Align::Left, 5),
        Column::new("notes", Align::Left, 3).cut_to(6),
    ];

    fn render(width: Option<usize>) -> (String, Vec<&'static str>) {
        let mut table = TextTable::new(COLUMNS);
        table.push(vec![
            "1".into(),
            "12345".into(),
            "alpha".into(),
            "a long note".into(),
        ]);
        table.push(vec!["22".into(), "6".into(), "b".into(), "-".into()]);
        let mut out = Vec::new();
        let hidden = table.write(&mut out, width).unwrap();
        (String::from_utf8(out).unwrap(), hidden)
    }

    #[test]
    fn natural_widths_without_a_limit() {
        let (text, hidden) = render(None);
        assert_eq!(
            text,
            "id minor name  notes\n 1 12345 alpha a long note\n22     6 b     -\n"
        );
        assert!(hidden.is_empty());
    }

    #[test]
    fn narrows_then_drops_the_least_important() {
        // 26 wide. At 20, "minor" (priority 1) goes and the rest fits.
        let (text, hidden) = render(Some(20));
        assert_eq!(hidden, vec!["minor"]);
        assert!(
            text.lines().all(|line| line.chars().count() <= 20),
            "{text}"
        );
        assert!(text.contains("a long note"), "{text}");
        // At 12: the notes are cut (priority 3), "name" (5) dropped, and the notes get the
        // space back.
        let (text, hidden) = render(Some(12));
        assert_eq!(hidden, vec!["minor", "name"]);
        assert_eq!(text, "id notes\n 1 a long n…\n22 -\n");
        // Too narrow for the essential columns: they stay.
        let (text, _) = render(Some(1));
        assert!(
            text.lines()
                .all(|line| line.starts_with([' ', '1', '2', 'i']))
        );
    }
}
