//! The header comment every bundled script opens with: the one statement of its
//! contract. The build script reads it with this same code (`build.rs` includes
//! this file), so the Rust calls it generates and the header the crate parses at
//! run time cannot disagree. It therefore uses nothing but `std`.
//!
//! ```text
//! --[[ pool/checkout
//!   Summary sentence(s).
//!   KEYS[1]  idle    description (the name, then two spaces or more)
//!   KEYS[2]  leased  description
//!   ARGV[1]  lease_ms  description
//!   ARGV[2..]  values  description (any number of arguments from here on)
//!   Returns  description
//!   Worst case  description
//! ]]
//! ```

/// A script's header comment, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The name on the opening line (`--[[ pool/checkout`).
    pub name: String,
    /// The summary lines, joined with spaces.
    pub summary: String,
    /// The `KEYS[i]` lines, in the order written.
    pub keys: Vec<Param>,
    /// The `ARGV[i]` lines, in the order written.
    pub args: Vec<Param>,
    /// The `Returns` line.
    pub returns: String,
    /// The `Worst case` line.
    pub worst_case: String,
    /// The line number (1-based) of each labelled entry (`KEYS[1]`, `Returns`), for
    /// lint messages.
    pub lines: Vec<(String, usize)>,
}

/// One `KEYS[i]` or `ARGV[i]` line: `KEYS[2]  leased  zset (member -> deadline)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Param {
    /// The position, from 1.
    pub index: usize,
    /// The snake_case name word: the field of the generated Rust call.
    pub name: String,
    /// What the key holds or the argument means.
    pub description: String,
    /// `KEYS[i..]` / `ARGV[i..]`: any number of them from `index` on (the last line only).
    pub variadic: bool,
}

impl Param {
    /// The line's label as written: `KEYS[2]`, `ARGV[3..]`.
    pub fn label(&self, table: &str) -> String {
        format!("{table}[{}{}]", self.index, if self.variadic { ".." } else { "" })
    }
}

impl Header {
    /// Parses the header comment of a script's source. Missing parts stay empty; a
    /// `KEYS`/`ARGV` line without a name word gets an empty name (the lint and the
    /// build script refuse it).
    pub fn parse(source: &str) -> Header {
        let mut header = Header::default();
        let mut lines = source.lines().enumerate().skip_while(|(_, line)| !line.trim_start().starts_with("--[["));
        let Some((_, opening)) = lines.next() else { return header };
        header.name = opening.trim_start().trim_start_matches("--[[").trim().to_owned();
        let mut last: Option<&mut String> = None;
        let mut summary = Vec::new();
        for (index, raw) in lines {
            let line = raw.trim();
            if line.starts_with("]]") {
                break;
            }
            let number = index + 1;
            if let Some(param) = Param::parse(line, "KEYS[") {
                header.lines.push((param.label("KEYS"), number));
                header.keys.push(param);
                last = header.keys.last_mut().map(|param| &mut param.description);
            } else if let Some(param) = Param::parse(line, "ARGV[") {
                header.lines.push((param.label("ARGV"), number));
                header.args.push(param);
                last = header.args.last_mut().map(|param| &mut param.description);
            } else if let Some(text) = line.strip_prefix("Returns") {
                header.returns = text.trim().to_owned();
                header.lines.push(("Returns".to_owned(), number));
                last = Some(&mut header.returns);
            } else if let Some(text) = line.strip_prefix("Worst case") {
                header.worst_case = text.trim().to_owned();
                header.lines.push(("Worst case".to_owned(), number));
                last = Some(&mut header.worst_case);
            } else if let Some(text) = last.as_deref_mut() {
                // A continuation line of the entry above.
                text.push(' ');
                text.push_str(line);
            } else if !line.is_empty() {
                summary.push(line);
            }
        }
        header.summary = summary.join(" ");
        header
    }
}

impl Param {
    /// Parses `KEYS[3]  name  text` (or `KEYS[3..]  name  text`).
    fn parse(line: &str, prefix: &str) -> Option<Param> {
        let rest = line.strip_prefix(prefix)?;
        let (number, text) = rest.split_once(']')?;
        let (number, variadic) = match number.strip_suffix("..") {
            Some(number) => (number, true),
            None => (number, false),
        };
        // The name is one word, set off from the description by two spaces or more,
        // so that a description starting with a plain word is not taken for a name.
        let text = text.trim();
        let (name, description) = match text.split_once("  ") {
            Some((word, description)) if is_name(word) => (word.to_owned(), description.trim().to_owned()),
            _ if is_name(text) => (text.to_owned(), String::new()),
            _ => (String::new(), text.to_owned()),
        };
        Some(Param { index: number.parse().ok()?, name, description, variadic })
    }
}

/// A snake_case name word: lowercase ASCII letters, digits and `_`, starting with a letter.
pub fn is_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
