//! Printing: tables for people, tab-separated rows and JSON for programs.

use std::io::{IsTerminal, Write};

use clap::{Args, ValueEnum};

use crate::Failure;

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns on a terminal, tab-separated rows otherwise.
    Auto,
    /// Aligned columns.
    Table,
    /// Tab-separated rows with a header row, for `cut` and `awk`.
    Tsv,
    /// JSON.
    Json,
}

/// The `--format`/`--json` options of a listing.
#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// How to print: aligned columns on a terminal and tab-separated rows when
    /// piped (auto), or always table, tsv or json.
    #[arg(long, value_enum, default_value_t = Format::Auto, verbatim_doc_comment)]
    format: Format,
    /// Print JSON (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl FormatArgs {
    /// The format to use, `auto` resolved against standard output.
    pub(crate) fn resolve(&self) -> Format {
        match (self.json, self.format) {
            (true, _) => Format::Json,
            (false, Format::Auto) if std::io::stdout().is_terminal() => Format::Table,
            (false, Format::Auto) => Format::Tsv,
            (false, format) => format,
        }
    }
}

/// Renders rows under a header, as aligned columns (two spaces apart) or as
/// tab-separated values.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], format: Format) -> String {
    let header: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    let all_rows: Vec<&Vec<String>> = std::iter::once(&header).chain(rows).collect();
    let mut text = String::new();
    if format == Format::Tsv {
        for row in all_rows {
            text.push_str(&row.join("\t"));
            text.push('\n');
        }
        return text;
    }
    let mut widths = vec![0; header.len()];
    for row in &all_rows {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in all_rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Pretty JSON with a final newline.
pub(crate) fn json(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes to standard output. A reader that went away (`| head`) is not an
/// error: there is nobody left to tell.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::usage(format!("cannot write to standard output: {error}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_tsv_uses_tabs() {
        let rows = vec![vec!["counter/get".to_owned(), "1".to_owned()], vec!["k".to_owned(), "12".to_owned()]];
        assert_eq!(
            table(&["NAME", "KEYS"], &rows, Format::Table),
            "NAME         KEYS\ncounter/get  1\nk            12\n"
        );
        assert_eq!(table(&["NAME", "KEYS"], &rows, Format::Tsv), "NAME\tKEYS\ncounter/get\t1\nk\t12\n");
    }
}
