//! Just enough of a Lua 5.1 reader (the dialect Redis runs) for the lint: a
//! tokenizer and a recursive-descent parser that keeps what the checks need —
//! every `redis.call`/`redis.pcall` with its arguments, every loop with its bound,
//! every value given to each name, and where `KEYS`/`ARGV` are read — and drops
//! the rest.
//!
//! Names are not scoped: every value ever given to a name, anywhere in the script,
//! counts for it. The checks built on that are conservative (a name is "from
//! KEYS" or "bounded" only when every value it is ever given is), so a shadowed
//! name can cause a finding but never hide one.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// A syntax error, or Lua the reader does not understand, at a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Keyword(&'static str),
    Number(f64),
    Str(String),
    Symbol(&'static str),
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    span: Range<usize>,
}

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local", "nil", "not", "or",
    "repeat", "return", "then", "true", "until", "while",
];

/// Longest first, so `...` is not read as `..` and `.`.
const SYMBOLS: &[&str] = &[
    "...", "..", "==", "~=", "<=", ">=", "+", "-", "*", "/", "%", "^", "#", "<", ">", "=", "(", ")", "{", "}", "[",
    "]", ";", ":", ",", ".",
];

fn tokenize(source: &str) -> Result<Vec<Token>, SyntaxError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Redis strips a `#!` first line before compiling; so do we.
    if bytes.starts_with(b"#!") {
        while i < bytes.len() && bytes[i] != b'\n' {
            i += 1;
        }
    }
    let error = |line: usize, message: &str| SyntaxError { line, message: message.to_owned() };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let start_line = line;
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if bytes[i..].starts_with(b"--") {
            i += 2;
            if let Some(level) = long_bracket_level(&bytes[i..]) {
                let (end, lines) =
                    long_bracket_end(bytes, i + level + 2, level).ok_or_else(|| error(line, "unfinished comment"))?;
                line += lines;
                i = end;
            } else {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
        } else if c == b'[' && long_bracket_level(&bytes[i..]).is_some() {
            let level = long_bracket_level(&bytes[i..]).unwrap_or(0);
            let body_start = i + level + 2;
            let (end, lines) =
                long_bracket_end(bytes, body_start, level).ok_or_else(|| error(line, "unfinished long string"))?;
            let mut body = &source[body_start..end - level - 2];
            // A newline right after the opening bracket is not part of the string.
            body = body.strip_prefix("\r\n").or_else(|| body.strip_prefix('\n')).unwrap_or(body);
            line += lines;
            i = end;
            tokens.push(Token { tok: Tok::Str(body.to_owned()), line: start_line, span: start..i });
        } else if c == b'"' || c == b'\'' {
            let (text, end) = quoted_string(source, i).ok_or_else(|| error(line, "unfinished string"))?;
            i = end;
            tokens.push(Token { tok: Tok::Str(text), line: start_line, span: start..i });
        } else if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (value, end) = number(source, i).ok_or_else(|| error(line, "malformed number"))?;
            i = end;
            tokens.push(Token { tok: Tok::Number(value), line, span: start..i });
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &source[start..i];
            let tok = match KEYWORDS.iter().find(|k| **k == word) {
                Some(keyword) => Tok::Keyword(keyword),
                None => Tok::Name(word.to_owned()),
            };
            tokens.push(Token { tok, line, span: start..i });
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| bytes[i..].starts_with(s.as_bytes())) {
            i += symbol.len();
            tokens.push(Token { tok: Tok::Symbol(symbol), line, span: start..i });
        } else {
            let shown = source[i..].chars().next().unwrap_or('?');
            return Err(error(line, &format!("unexpected character {shown:?}")));
        }
    }
    tokens.push(Token { tok: Tok::Eof, line, span: bytes.len()..bytes.len() });
    Ok(tokens)
}

/// `[[` is level 0, `[==[` level 2; anything else is not a long bracket.
fn long_bracket_level(bytes: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(b"[")?;
    let level = rest.iter().take_while(|&&b| b == b'=').count();
    (rest.get(level) == Some(&b'[')).then_some(level)
}

/// The index just past the closing bracket of `level`, and the newlines skipped.
fn long_bracket_end(bytes: &[u8], from: usize, level: usize) -> Option<(usize, usize)> {
    let mut closing = vec![b']'];
    closing.extend(std::iter::repeat_n(b'=', level));
    closing.push(b']');
    let offset = bytes[from..].windows(closing.len()).position(|w| w == closing.as_slice())?;
    let end = from + offset + closing.len();
    Some((end, bytes[from..end].iter().filter(|&&b| b == b'\n').count()))
}

/// A quoted string starting at `start`: its text (common escapes decoded) and the
/// index past the closing quote.
fn quoted_string(source: &str, start: usize) -> Option<(String, usize)> {
    let bytes = source.as_bytes();
    let quote = bytes[start];
    let mut text = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b if b == quote => return Some((String::from_utf8_lossy(&text).into_owned(), i + 1)),
            b'\n' => return None,
            b'\\' => {
                let escaped = *bytes.get(i + 1)?;
                i += 2;
                match escaped {
                    b'n' => text.push(b'\n'),
                    b't' => text.push(b'\t'),
                    b'r' => text.push(b'\r'),
                    b'0'..=b'9' => {
                        let digits = bytes[i - 1..].iter().take(3).take_while(|b| b.is_ascii_digit()).count();
                        let value: u32 = source[i - 1..i - 1 + digits].parse().ok()?;
                        text.push(u8::try_from(value).ok()?);
                        i += digits - 1;
                    }
                    other => text.push(other),
                }
            }
            b => {
                text.push(b);
                i += 1;
            }
        }
    }
    None
}

fn number(source: &str, start: usize) -> Option<(f64, usize)> {
    let bytes = source.as_bytes();
    let mut i = start;
    if bytes[i..].starts_with(b"0x") || bytes[i..].starts_with(b"0X") {
        i += 2;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        let value = u64::from_str_radix(&source[start + 2..i], 16).ok()?;
        // Lua numbers are doubles: the rounding is Lua's too.
        #[allow(clippy::cast_precision_loss)]
        return Some((value as f64, i));
    }
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some((source[start..i].parse().ok()?, i))
}

/// An expression, with where it is in the source.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) span: Range<usize>,
}

/// The shapes of expression the checks look at.
#[derive(Clone, Debug)]
pub(crate) enum ExprKind {
    /// `nil`, `true` or `false`.
    Constant,
    Number(f64),
    Str(String),
    /// `...`: several values.
    Vararg,
    /// A function literal: its body is read as statements of the chunk.
    Function,
    Name(String),
    /// `a[b]`, and `a.b` as `a["b"]`.
    Index(Box<Expr>, Box<Expr>),
    /// `f(args)`; `a:m(args)` is `a.m(a, args)`.
    Call(Box<Expr>, Vec<Expr>),
    Unary(&'static str, Box<Expr>),
    Binary(Box<Expr>, &'static str, Box<Expr>),
    /// A table constructor: its values, in order (keys of `[k] = v` dropped).
    Table(Vec<Expr>),
    Paren(Box<Expr>),
}

impl Expr {
    /// `redis.call` for `redis.call(...)`: the callee as a dotted name.
    pub(crate) fn dotted_name(&self) -> Option<String> {
        match &self.kind {
            ExprKind::Name(name) => Some(name.clone()),
            ExprKind::Index(base, key) => match &key.kind {
                ExprKind::Str(field) => Some(format!("{}.{field}", base.dotted_name()?)),
                _ => None,
            },
            _ => None,
        }
    }

    /// True when the expression may stand for several values (a call or `...` in
    /// the last place of an argument list).
    pub(crate) fn is_multi_valued(&self) -> bool {
        matches!(self.kind, ExprKind::Call(..) | ExprKind::Vararg)
    }
}

/// One `redis.call`/`redis.pcall`.
#[derive(Clone, Debug)]
pub(crate) struct RedisCall {
    pub(crate) line: usize,
    /// The command name first, then its arguments.
    pub(crate) args: Vec<Expr>,
}

/// A loop and what bounds it.
#[derive(Clone, Debug)]
pub(crate) enum LoopKind {
    /// `for v = start, limit[, step]`.
    Numeric { start: Expr, limit: Expr, step: Option<Expr> },
    /// `for a, b in explist`.
    Generic { iterators: Vec<Expr> },
    /// `while condition do`.
    While(Expr),
    /// `repeat ... until condition`.
    Repeat(Expr),
}

/// A loop statement at a line.
#[derive(Clone, Debug)]
pub(crate) struct Loop {
    pub(crate) line: usize,
    pub(crate) kind: LoopKind,
}

/// What the checks need to know about one script.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// Every `redis.call`/`redis.pcall`, in source order.
    pub(crate) calls: Vec<RedisCall>,
    /// Every loop.
    pub(crate) loops: Vec<Loop>,
    /// Every value given to each name (locals, globals, loop variables). A name
    /// declared without a value (a function parameter, `local x`) has an entry
    /// with no values.
    pub(crate) values: HashMap<String, Vec<Expr>>,
    /// Every call of a plain or dotted function name other than `redis.call`, by
    /// name, with its line (for forbidden functions such as `loadstring`).
    pub(crate) function_calls: Vec<(String, usize)>,
    /// `KEYS[n]` read with a literal `n`: the first line of each index.
    pub(crate) keys_read: BTreeMap<usize, usize>,
    /// `ARGV[n]` read with a literal `n`: the first line of each index.
    pub(crate) args_read: BTreeMap<usize, usize>,
    /// `KEYS` used otherwise (`#KEYS`, `KEYS[i]`, `unpack(KEYS)`).
    pub(crate) keys_dynamic: bool,
    /// `ARGV` used otherwise.
    pub(crate) args_dynamic: bool,
}

/// Reads a script (a `#!` first line is skipped).
pub(crate) fn parse(source: &str) -> Result<Chunk, SyntaxError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser { tokens, pos: 0, chunk: Chunk::default() };
    parser.block()?;
    if parser.peek() != &Tok::Eof {
        return Err(parser.unexpected("a statement"));
    }
    Ok(parser.chunk)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    chunk: Chunk,
}

/// Binary operators with their left and right priorities (Lua 5.1's table).
fn binary_priority(tok: &Tok) -> Option<(&'static str, u8, u8)> {
    let op = match tok {
        Tok::Keyword(k @ ("and" | "or")) => *k,
        Tok::Symbol(s) => *s,
        _ => return None,
    };
    let (left, right) = match op {
        "or" => (1, 1),
        "and" => (2, 2),
        "<" | ">" | "<=" | ">=" | "~=" | "==" => (3, 3),
        ".." => (5, 4), // right associative
        "+" | "-" => (6, 6),
        "*" | "/" | "%" => (7, 7),
        "^" => (10, 9), // right associative
        _ => return None,
    };
    Some((op, left, right))
}

const UNARY_PRIORITY: u8 = 8;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }

    fn peek_at(&self, offset: usize) -> &Tok {
        let index = (self.pos + offset).min(self.tokens.len() - 1);
        &self.tokens[index].tok
    }

    fn line(&self) -> usize {
        self.tokens[self.pos].line
    }

    fn start(&self) -> usize {
        self.tokens[self.pos].span.start
    }

    /// The end of the last token taken.
    fn end(&self) -> usize {
        self.tokens[self.pos.saturating_sub(1)].span.end
    }

    fn advance(&mut self) -> Tok {
        let tok = self.tokens[self.pos].tok.clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        tok
    }

    fn check_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Tok::Symbol(s) if *s == symbol)
    }

    fn check_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Tok::Keyword(k) if *k == keyword)
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.check_symbol(symbol);
        if found {
            self.advance();
        }
        found
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.check_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), SyntaxError> {
        if self.eat_symbol(symbol) { Ok(()) } else { Err(self.unexpected(&format!("'{symbol}'"))) }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SyntaxError> {
        if self.eat_keyword(keyword) { Ok(()) } else { Err(self.unexpected(&format!("'{keyword}'"))) }
    }

    fn expect_name(&mut self) -> Result<String, SyntaxError> {
        match self.peek().clone() {
            Tok::Name(name) => {
                self.advance();
                Ok(name)
            }
            _ => Err(self.unexpected("a name")),
        }
    }

    fn unexpected(&self, wanted: &str) -> SyntaxError {
        let found = match self.peek() {
            Tok::Name(name) => format!("name '{name}'"),
            Tok::Keyword(k) => format!("'{k}'"),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Symbol(s) => format!("'{s}'"),
            Tok::Eof => "the end of the script".to_owned(),
        };
        SyntaxError { line: self.line(), message: format!("expected {wanted}, found {found}") }
    }

    fn declare(&mut self, name: String, value: Option<Expr>) {
        let values = self.chunk.values.entry(name).or_default();
        values.extend(value);
    }

    fn block_ends(&self) -> bool {
        matches!(self.peek(), Tok::Eof | Tok::Keyword("end" | "else" | "elseif" | "until"))
    }

    fn block(&mut self) -> Result<(), SyntaxError> {
        while !self.block_ends() {
            if self.check_keyword("return") {
                self.advance();
                if !self.block_ends() && !self.check_symbol(";") {
                    self.expression_list()?;
                }
                self.eat_symbol(";");
                if !self.block_ends() {
                    return Err(self.unexpected("the end of the block after 'return'"));
                }
                break;
            }
            self.statement()?;
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<(), SyntaxError> {
        let line = self.line();
        match self.peek().clone() {
            Tok::Symbol(";") => {
                self.advance();
            }
            Tok::Keyword("if") => {
                self.advance();
                self.expression()?;
                self.expect_keyword("then")?;
                self.block()?;
                loop {
                    if self.eat_keyword("elseif") {
                        self.expression()?;
                        self.expect_keyword("then")?;
                        self.block()?;
                    } else if self.eat_keyword("else") {
                        self.block()?;
                    } else {
                        break;
                    }
                }
                self.expect_keyword("end")?;
            }
            Tok::Keyword("while") => {
                self.advance();
                let condition = self.expression()?;
                self.expect_keyword("do")?;
                self.chunk.loops.push(Loop { line, kind: LoopKind::While(condition) });
                self.block()?;
                self.expect_keyword("end")?;
            }
            Tok::Keyword("do") => {
                self.advance();
                self.block()?;
                self.expect_keyword("end")?;
            }
            Tok::Keyword("for") => {
                self.advance();
                let first = self.expect_name()?;
                if self.eat_symbol("=") {
                    let start = self.expression()?;
                    self.expect_symbol(",")?;
                    let limit = self.expression()?;
                    let step = if self.eat_symbol(",") { Some(self.expression()?) } else { None };
                    // The loop variable runs from start to limit.
                    self.declare(first.clone(), Some(start.clone()));
                    self.declare(first, Some(limit.clone()));
                    self.chunk.loops.push(Loop { line, kind: LoopKind::Numeric { start, limit, step } });
                } else {
                    let mut names = vec![first];
                    while self.eat_symbol(",") {
                        names.push(self.expect_name()?);
                    }
                    self.expect_keyword("in")?;
                    let iterators = self.expression_list()?;
                    self.declare_iteration_variables(names, &iterators);
                    self.chunk.loops.push(Loop { line, kind: LoopKind::Generic { iterators } });
                }
                self.expect_keyword("do")?;
                self.block()?;
                self.expect_keyword("end")?;
            }
            Tok::Keyword("repeat") => {
                self.advance();
                self.block()?;
                self.expect_keyword("until")?;
                let condition = self.expression()?;
                self.chunk.loops.push(Loop { line, kind: LoopKind::Repeat(condition) });
            }
            Tok::Keyword("function") => {
                self.advance();
                let mut name = self.expect_name()?;
                while self.eat_symbol(".") || self.eat_symbol(":") {
                    name = self.expect_name()?;
                }
                let start = self.start();
                self.function_body()?;
                let body = Expr { kind: ExprKind::Function, span: start..self.end() };
                self.declare(name, Some(body));
            }
            Tok::Keyword("local") => {
                self.advance();
                if self.eat_keyword("function") {
                    let name = self.expect_name()?;
                    let start = self.start();
                    self.function_body()?;
                    let body = Expr { kind: ExprKind::Function, span: start..self.end() };
                    self.declare(name, Some(body));
                } else {
                    let mut names = vec![self.expect_name()?];
                    while self.eat_symbol(",") {
                        names.push(self.expect_name()?);
                    }
                    let values = if self.eat_symbol("=") { self.expression_list()? } else { Vec::new() };
                    self.assign_names(names, values);
                }
            }
            Tok::Keyword("break") => {
                self.advance();
            }
            _ => self.expression_statement()?,
        }
        Ok(())
    }

    /// `for k, v in ipairs(t)`: `v` is an element of `t`, `k` a position in it;
    /// other iterators give values the reader cannot name.
    fn declare_iteration_variables(&mut self, names: Vec<String>, iterators: &[Expr]) {
        let iterated = match iterators.first().map(|e| &e.kind) {
            Some(ExprKind::Call(callee, args))
                if matches!(callee.dotted_name().as_deref(), Some("ipairs" | "pairs")) && !args.is_empty() =>
            {
                Some(args[0].clone())
            }
            _ => None,
        };
        for (position, name) in names.into_iter().enumerate() {
            let value = iterated.as_ref().map(|table| {
                let span = table.span.clone();
                if position == 0 {
                    // A position in a table: as bounded as the table's size.
                    Expr { kind: ExprKind::Unary("#", Box::new(table.clone())), span }
                } else {
                    let unknown_index = Expr { kind: ExprKind::Vararg, span: span.clone() };
                    Expr { kind: ExprKind::Index(Box::new(table.clone()), Box::new(unknown_index)), span }
                }
            });
            self.declare(name, value);
        }
    }

    /// `a, b = x, f()`: a name past the values listed takes an unknown value
    /// (an extra result of the last call), which makes it neither from KEYS nor
    /// bounded.
    fn assign_names(&mut self, names: Vec<String>, values: Vec<Expr>) {
        let count = values.len();
        let mut values = values.into_iter();
        for (position, name) in names.into_iter().enumerate() {
            match values.next() {
                Some(value) => self.declare(name, Some(value)),
                None if count > 0 && position >= count => {
                    let unknown = Expr { kind: ExprKind::Function, span: 0..0 };
                    self.declare(name, Some(unknown));
                }
                None => self.declare(name, None),
            }
        }
    }

    fn expression_statement(&mut self) -> Result<(), SyntaxError> {
        let first = self.suffixed_expression()?;
        if self.check_symbol("=") || self.check_symbol(",") {
            let mut targets = vec![first];
            while self.eat_symbol(",") {
                targets.push(self.suffixed_expression()?);
            }
            self.expect_symbol("=")?;
            let values = self.expression_list()?;
            // Only assignments to plain names matter: `t[k] = v` grows a table,
            // which is bounded as long as every loop is.
            let names: Vec<String> = targets
                .iter()
                .map(|target| match &target.kind {
                    ExprKind::Name(name) => name.clone(),
                    _ => String::new(),
                })
                .collect();
            let mut values = values.into_iter();
            for name in names {
                let value = values.next();
                if !name.is_empty() {
                    let value = value.unwrap_or(Expr { kind: ExprKind::Function, span: 0..0 });
                    self.declare(name, Some(value));
                }
            }
            Ok(())
        } else if matches!(first.kind, ExprKind::Call(..)) {
            Ok(())
        } else {
            Err(SyntaxError { line: self.line(), message: "a statement must be a call or an assignment".into() })
        }
    }

    fn function_body(&mut self) -> Result<(), SyntaxError> {
        self.expect_symbol("(")?;
        if !self.check_symbol(")") {
            loop {
                if self.eat_symbol("...") {
                    break;
                }
                let parameter = self.expect_name()?;
                self.declare(parameter, None);
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.expect_symbol(")")?;
        self.block()?;
        self.expect_keyword("end")
    }

    fn expression_list(&mut self) -> Result<Vec<Expr>, SyntaxError> {
        let mut list = vec![self.expression()?];
        while self.eat_symbol(",") {
            list.push(self.expression()?);
        }
        Ok(list)
    }

    fn expression(&mut self) -> Result<Expr, SyntaxError> {
        self.sub_expression(0)
    }

    fn sub_expression(&mut self, limit: u8) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let mut left = match self.peek().clone() {
            Tok::Keyword("not") | Tok::Symbol("-" | "#") => {
                let op = match self.advance() {
                    Tok::Keyword(k) => k,
                    Tok::Symbol(s) => s,
                    _ => "not",
                };
                let operand = self.sub_expression(UNARY_PRIORITY)?;
                Expr { kind: ExprKind::Unary(op, Box::new(operand)), span: start..self.end() }
            }
            _ => self.simple_expression()?,
        };
        while let Some((op, left_priority, right_priority)) = binary_priority(self.peek()) {
            if left_priority <= limit {
                break;
            }
            self.advance();
            let right = self.sub_expression(right_priority)?;
            left = Expr { kind: ExprKind::Binary(Box::new(left), op, Box::new(right)), span: start..self.end() };
        }
        Ok(left)
    }

    fn simple_expression(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let kind = match self.peek().clone() {
            Tok::Number(n) => ExprKind::Number(n),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::Keyword("nil" | "true" | "false") => ExprKind::Constant,
            Tok::Symbol("...") => ExprKind::Vararg,
            Tok::Symbol("{") => return self.table(),
            Tok::Keyword("function") => {
                self.advance();
                self.function_body()?;
                return Ok(Expr { kind: ExprKind::Function, span: start..self.end() });
            }
            _ => return self.suffixed_expression(),
        };
        self.advance();
        Ok(Expr { kind, span: start..self.end() })
    }

    fn table(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        self.expect_symbol("{")?;
        let mut values = Vec::new();
        while !self.check_symbol("}") {
            if self.eat_symbol("[") {
                self.expression()?;
                self.expect_symbol("]")?;
                self.expect_symbol("=")?;
            } else if matches!(self.peek(), Tok::Name(_)) && matches!(self.peek_at(1), Tok::Symbol("=")) {
                self.advance();
                self.advance();
            }
            values.push(self.expression()?);
            if !self.eat_symbol(",") && !self.eat_symbol(";") {
                break;
            }
        }
        self.expect_symbol("}")?;
        Ok(Expr { kind: ExprKind::Table(values), span: start..self.end() })
    }

    fn primary_expression(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        match self.peek().clone() {
            Tok::Name(name) => {
                self.advance();
                if name == "KEYS" || name == "ARGV" {
                    self.note_script_input(&name);
                }
                Ok(Expr { kind: ExprKind::Name(name), span: start..self.end() })
            }
            Tok::Symbol("(") => {
                self.advance();
                let inner = self.expression()?;
                self.expect_symbol(")")?;
                Ok(Expr { kind: ExprKind::Paren(Box::new(inner)), span: start..self.end() })
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// Records a read of `KEYS`/`ARGV` (just taken): `KEYS[2]` with a literal
    /// index, or any other use.
    fn note_script_input(&mut self, name: &str) {
        let literal_index = match (self.peek(), self.peek_at(1), self.peek_at(2)) {
            (Tok::Symbol("["), Tok::Number(n), Tok::Symbol("]")) if n.fract() == 0.0 && *n >= 1.0 => {
                // Whole and at least 1: the conversion is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(*n as usize)
            }
            _ => None,
        };
        let line = self.line();
        let (read, dynamic) = if name == "KEYS" {
            (&mut self.chunk.keys_read, &mut self.chunk.keys_dynamic)
        } else {
            (&mut self.chunk.args_read, &mut self.chunk.args_dynamic)
        };
        match literal_index {
            Some(index) => {
                read.entry(index).or_insert(line);
            }
            None => *dynamic = true,
        }
    }

    fn suffixed_expression(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let mut expr = self.primary_expression()?;
        loop {
            match self.peek().clone() {
                Tok::Symbol(".") => {
                    self.advance();
                    let field_start = self.start();
                    let field = self.expect_name()?;
                    let key = Expr { kind: ExprKind::Str(field), span: field_start..self.end() };
                    expr = Expr { kind: ExprKind::Index(Box::new(expr), Box::new(key)), span: start..self.end() };
                }
                Tok::Symbol("[") => {
                    self.advance();
                    let key = self.expression()?;
                    self.expect_symbol("]")?;
                    expr = Expr { kind: ExprKind::Index(Box::new(expr), Box::new(key)), span: start..self.end() };
                }
                Tok::Symbol(":") => {
                    self.advance();
                    let method_start = self.start();
                    let method = self.expect_name()?;
                    let key = Expr { kind: ExprKind::Str(method), span: method_start..self.end() };
                    let callee =
                        Expr { kind: ExprKind::Index(Box::new(expr.clone()), Box::new(key)), span: start..self.end() };
                    let mut args = vec![expr];
                    args.extend(self.call_arguments()?);
                    expr = self.call(callee, args, start);
                }
                Tok::Symbol("(" | "{") | Tok::Str(_) => {
                    let line = self.line();
                    let args = self.call_arguments()?;
                    // A call's line is where its arguments open: the line a
                    // reader looks at for `redis.call(`.
                    let call = self.call(expr, args, start);
                    self.record_call(&call, line);
                    expr = call;
                }
                _ => return Ok(expr),
            }
        }
    }

    fn call(&self, callee: Expr, args: Vec<Expr>, start: usize) -> Expr {
        Expr { kind: ExprKind::Call(Box::new(callee), args), span: start..self.end() }
    }

    fn record_call(&mut self, call: &Expr, line: usize) {
        let ExprKind::Call(callee, args) = &call.kind else { return };
        match callee.dotted_name().as_deref() {
            Some("redis.call" | "redis.pcall") => self.chunk.calls.push(RedisCall { line, args: args.clone() }),
            Some(name) => self.chunk.function_calls.push((name.to_owned(), line)),
            None => {}
        }
    }

    fn call_arguments(&mut self) -> Result<Vec<Expr>, SyntaxError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                let start = self.start();
                self.advance();
                Ok(vec![Expr { kind: ExprKind::Str(s), span: start..self.end() }])
            }
            Tok::Symbol("{") => Ok(vec![self.table()?]),
            _ => {
                self.expect_symbol("(")?;
                if self.eat_symbol(")") {
                    return Ok(Vec::new());
                }
                let args = self.expression_list()?;
                self.expect_symbol(")")?;
                Ok(args)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_calls_loops_and_script_inputs() {
        let source = "#!lua\n--[[ a/b\n  x ]]\nlocal n = tonumber(ARGV[2])\n\
                      for i = 1, n do\n  redis.call('DEL', KEYS[i])\nend\n\
                      local t = redis.call(\"ZRANGE\", KEYS[1], 0, -1)\n\
                      while #t > 0 do t = {} end\nrepeat local x = 1 until x > 0\n\
                      return redis.pcall('GET', KEYS[1]) .. [[long\nstring]]\n";
        let chunk = parse(source).unwrap();
        let lines: Vec<usize> = chunk.calls.iter().map(|c| c.line).collect();
        assert_eq!(lines, vec![6, 8, 11]);
        assert!(matches!(&chunk.calls[1].args[0].kind, ExprKind::Str(s) if s == "ZRANGE"));
        assert_eq!(chunk.calls[1].args.len(), 4);
        assert_eq!(chunk.loops.len(), 3);
        assert_eq!(chunk.loops[0].line, 5);
        assert!(chunk.keys_dynamic, "KEYS[i] is a dynamic read");
        assert_eq!(chunk.keys_read.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(chunk.args_read.get(&2), Some(&4));
        assert!(!chunk.args_dynamic);
        assert_eq!(chunk.values["t"].len(), 2);
        assert_eq!(chunk.function_calls, vec![("tonumber".to_owned(), 4)]);
    }

    #[test]
    fn operator_priorities_follow_lua() {
        let chunk = parse("local x = 1 + 2 * 3 .. 'a' .. 'b' < 4 and not y or z").unwrap();
        let value = &chunk.values["x"][0];
        let ExprKind::Binary(_, "or", _) = &value.kind else { panic!("or binds loosest: {value:?}") };
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let error = parse("local x = 1\nlocal = 2\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("expected a name"), "{}", error.message);
        assert_eq!(parse("x = 'unfinished\n").unwrap_err().line, 1);
        assert_eq!(parse("\n\n--[[ never closed\n").unwrap_err().line, 3);
        assert!(parse("x + 1\n").is_err());
    }
}
