//! Reads Prosody configuration files the way Prosody runs them, as far as the TURN settings
//! need: Lua parsed by full_moon (a complete, lossless Lua 5.1–5.4 parser), then a small
//! evaluator for what a Prosody config does with it.
//!
//! full_moon replaces a hand-written tokenizer and parser that knew only literals: it accepts
//! every piece of Lua syntax, so nothing is misread, and gives line numbers for syntax errors,
//! which Prosody would refuse the file for. What this module adds is Prosody's meaning:
//! - `name = value` sets an option in the current section; `VirtualHost "host"` (also `Host`)
//!   and `Component "host" "module"` start a section, and an options table after them
//!   (`Component "x" "muc" { ... }`) sets options there and returns to the global section;
//! - values: strings (escapes decoded), numbers, booleans, `nil`, tables, string concatenation
//!   `..`, arithmetic on numbers, parentheses and `local` variables;
//! - `Include "file"` and `Include "dir/*.cfg.lua"` (`*` and `?` in the last part), relative to
//!   the directory of the file that includes, the included file starting in the global
//!   section; a missing file is an error, as in Prosody.
//!
//! This is Prosody 0.12's meaning (Debian stable's). There, an option's name is not a
//! variable: `host = turn_host` reads `nil` even after `turn_host = "..."` (Prosody 13 reads
//! the option back); the reader does the same and says so in a note.
//! Function calls (`os.getenv(...)`, `FileContents(...)`), `ENV_*` variables and any other
//! statement are reported as notes and never guessed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use full_moon::ast::{
    BinOp, Call, Expression, Field, FunctionArgs, FunctionCall, Prefix, Stmt, Suffix,
    TableConstructor, UnOp, Var,
};
use full_moon::node::Node;
use full_moon::tokenizer::{Symbol, TokenReference, TokenType};

/// A value as read.
#[derive(Debug, Clone, PartialEq)]
pub enum LuaValue {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// A table: named fields in order, and positional ones.
    Table {
        /// `name = value` and `["name"] = value` fields.
        fields: Vec<(String, LuaValue)>,
        /// Positional fields.
        items: Vec<LuaValue>,
    },
    /// Something this reader does not evaluate; the text says what it is.
    Unknown(String),
}

impl LuaValue {
    /// The named field `key` of a table.
    pub fn field(&self, key: &str) -> Option<&LuaValue> {
        match self {
            LuaValue::Table { fields, .. } => {
                fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

/// One option as set.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The option's name.
    pub name: String,
    /// Its value.
    pub value: LuaValue,
    /// The `VirtualHost`/`Component` it was set under; `None` = global.
    pub section: Option<String>,
    /// 1-based line of the name.
    pub line: usize,
    /// The included file it was set in; `None` = the file read.
    pub file: Option<String>,
}

impl Setting {
    /// `line N`, or `FILE line N` for a setting from an included file.
    pub fn place(&self) -> String {
        place(self.file.as_deref(), self.line)
    }
}

fn place(file: Option<&str>, line: usize) -> String {
    match file {
        Some(f) => format!("{f} line {line}"),
        None => format!("line {line}"),
    }
}

/// What was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LuaConfig {
    /// Every setting, in the order Prosody applies them.
    pub settings: Vec<Setting>,
    /// What was skipped or not evaluated, with its place.
    pub notes: Vec<String>,
    /// What makes Prosody refuse the configuration: syntax errors, missing included files.
    pub errors: Vec<String>,
}

impl LuaConfig {
    /// The last setting named `name`, wherever it was set.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }
}

/// Names Lua's standard library defines; Prosody 0.12 lets a config read them.
const LUA_GLOBALS: [&str; 20] = [
    "_G",
    "_VERSION",
    "assert",
    "coroutine",
    "debug",
    "error",
    "io",
    "ipairs",
    "math",
    "next",
    "os",
    "package",
    "pairs",
    "print",
    "require",
    "select",
    "string",
    "table",
    "tonumber",
    "tostring",
];

/// Includes deeper than this are refused (a file including itself through a glob, say).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Expressions nested deeper than this are not evaluated.
const MAX_EXPR_DEPTH: usize = 64;
/// Brackets nested deeper than this are refused before parsing: the parser recurses per
/// level, and no configuration nests anywhere near this.
const MAX_NESTING: usize = 100;
/// Stack for the parser's thread: an unoptimised build takes about 20 KiB per nesting level,
/// so this covers MAX_NESTING many times over, whatever the caller's stack.
const PARSER_STACK: usize = 16 << 20;

/// Reads `text` as a configuration that is not in a file: `Include` is noted, not followed.
pub fn parse(text: &str) -> LuaConfig {
    let mut r = Reader::new(None);
    r.chunk(text);
    r.out
}

/// Reads the configuration file `path`, following its `Include`s.
pub fn parse_file(path: &Path) -> Result<LuaConfig, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut r = Reader::new(Some(dir));
    if let Ok(c) = path.canonicalize() {
        r.stack.push(c);
    }
    r.chunk(&String::from_utf8_lossy(&text));
    Ok(r.out)
}

struct Reader {
    out: LuaConfig,
    locals: HashMap<String, LuaValue>,
    section: Option<String>,
    /// Directory of the file being read, which its relative `Include`s start from.
    config_dir: Option<PathBuf>,
    /// The included file being read; `None` = the main one.
    file: Option<String>,
    /// Files being read, innermost last, to refuse cycles.
    stack: Vec<PathBuf>,
}

fn line_of(node: &impl Node) -> usize {
    node.start_position().map_or(0, |p| p.line())
}

fn deepest_nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' | b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The line of a backtick outside every string and comment, if there is one. Lua has no such
/// token, and full_moon 3.0 without its `cfxlua` feature reaches `unreachable!()` on it (found
/// by the `jitsi_lua` fuzz target), so such a file is refused before it gets there.
fn stray_backtick(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut i, mut line) = (0usize, 1usize);
    // `[[`, `[=[`, ... open a long bracket: its level, and the index after the opening.
    let long_open = |i: usize| -> Option<(usize, usize)> {
        if b.get(i) != Some(&b'[') {
            return None;
        }
        let mut j = i + 1;
        while b.get(j) == Some(&b'=') {
            j += 1;
        }
        (b.get(j) == Some(&b'[')).then_some((j - i - 1, j + 1))
    };
    // Skips to just after the long bracket of `level` that closes at or after `i`.
    let long_close = |mut i: usize, level: usize, line: &mut usize| -> usize {
        while i < b.len() {
            if b[i] == b'\n' {
                *line += 1;
            } else if b[i] == b']'
                && b.get(i + 1 + level) == Some(&b']')
                && b[i + 1..i + 1 + level].iter().all(|&c| c == b'=')
            {
                return i + level + 2;
            }
            i += 1;
        }
        i
    };
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'`' => return Some(line),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                if let Some((level, after)) = long_open(i + 2) {
                    i = long_close(after, level, &mut line);
                } else {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
            }
            b'[' => match long_open(i) {
                Some((level, after)) => i = long_close(after, level, &mut line),
                None => i += 1,
            },
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != quote && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

impl Reader {
    fn new(config_dir: Option<PathBuf>) -> Self {
        Reader {
            out: LuaConfig::default(),
            locals: HashMap::new(),
            section: None,
            config_dir,
            file: None,
            stack: Vec::new(),
        }
    }

    fn at(&self, line: usize) -> String {
        place(self.file.as_deref(), line)
    }

    fn note(&mut self, line: usize, what: impl std::fmt::Display) {
        let at = self.at(line);
        self.out.notes.push(format!("{at}: {what}"));
    }

    fn error(&mut self, line: usize, what: impl std::fmt::Display) {
        let at = self.at(line);
        self.out.errors.push(format!("{at}: {what}"));
    }

    /// Runs one file's text.
    fn chunk(&mut self, text: &str) {
        if deepest_nesting(text) > MAX_NESTING {
            self.error(
                1,
                format!("brackets nested more than {MAX_NESTING} deep; not read"),
            );
            return;
        }
        if let Some(line) = stray_backtick(text) {
            self.error(
                line,
                "Lua syntax error, Prosody will not load this file: unexpected character `",
            );
            return;
        }
        let parsed = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("lua-parser".into())
                .stack_size(PARSER_STACK)
                .spawn_scoped(scope, || full_moon::parse(text))
                .map(|t| t.join())
        });
        let ast = match parsed {
            Ok(Ok(Ok(ast))) => ast,
            Ok(Err(_)) => {
                self.error(1, "the Lua parser failed on this file");
                return;
            }
            Err(e) => {
                self.error(1, format!("cannot start the Lua parser: {e}"));
                return;
            }
            Ok(Ok(Err(errors))) => {
                for e in errors {
                    let line = e.range().0.line();
                    self.error(
                        line,
                        format!(
                            "Lua syntax error, Prosody will not load this file: {}",
                            e.error_message()
                        ),
                    );
                }
                return;
            }
        };
        for stmt in ast.nodes().stmts() {
            self.statement(stmt);
        }
    }

    fn statement(&mut self, stmt: &Stmt) {
        let line = line_of(stmt);
        match stmt {
            Stmt::Assignment(a) => {
                let values: Vec<LuaValue> =
                    a.expressions().iter().map(|e| self.value(e, 0)).collect();
                for (i, var) in a.variables().iter().enumerate() {
                    let value = values.get(i).cloned().unwrap_or(LuaValue::Nil);
                    match var {
                        Var::Name(name) => self.set(name_of(name), value, line_of(var)),
                        other => self.note(
                            line_of(other),
                            format!(
                                "assignment to `{}` (not an option name) skipped",
                                other.to_string().trim()
                            ),
                        ),
                    }
                }
            }
            Stmt::LocalAssignment(l) => {
                let values: Vec<LuaValue> =
                    l.expressions().iter().map(|e| self.value(e, 0)).collect();
                for (i, name) in l.names().iter().enumerate() {
                    let value = values.get(i).cloned().unwrap_or(LuaValue::Nil);
                    self.locals.insert(name_of(name), value);
                }
            }
            Stmt::FunctionCall(call) => self.call_statement(call, line),
            other => {
                let first = other.to_string();
                let first = first.split_whitespace().next().unwrap_or("");
                self.note(
                    line,
                    format!("statement starting with `{first}` not understood; skipped"),
                );
            }
        }
    }

    fn set(&mut self, name: String, value: LuaValue, line: usize) {
        if let LuaValue::Unknown(what) = &value {
            self.note(
                line,
                format!("`{name}` is set to {what}, which this reader does not evaluate"),
            );
        }
        self.out.settings.push(Setting {
            name,
            value,
            section: self.section.clone(),
            line,
            file: self.file.clone(),
        });
    }

    /// `VirtualHost`, `Component`, `Include` and their chained calls.
    fn call_statement(&mut self, call: &FunctionCall, line: usize) {
        let name = match call.prefix() {
            Prefix::Name(n) => name_of(n),
            _ => String::new(),
        };
        let mut args = Vec::new();
        for suffix in call.suffixes() {
            match suffix {
                Suffix::Call(Call::AnonymousCall(a)) => args.push(self.argument(a)),
                _ => {
                    self.note(
                        line,
                        format!("call `{}` not understood; skipped", call.to_string().trim()),
                    );
                    return;
                }
            }
        }
        match name.as_str() {
            "VirtualHost" | "Host" | "host" | "Component" | "component" => {
                let Some(LuaValue::Str(host)) = args.first() else {
                    self.note(line, format!("{name} without a quoted name; skipped"));
                    return;
                };
                self.section = Some(host.clone());
                if let Some(options) = args
                    .iter()
                    .skip(1)
                    .find(|a| matches!(a, LuaValue::Table { .. }))
                {
                    // `Component "x" "mod" { ... }`: options for that host, then back to
                    // the global section.
                    if let LuaValue::Table { fields, .. } = options.clone() {
                        for (k, v) in fields {
                            self.set(k, v, line);
                        }
                    }
                    self.section = None;
                }
            }
            "Include" | "include" => match args.first() {
                Some(LuaValue::Str(file)) => {
                    let file = file.clone();
                    self.include(&file, line)
                }
                other => self.note(
                    line,
                    format!("Include of {other:?}, not a string this reader can evaluate; skipped"),
                ),
            },
            _ => self.note(
                line,
                format!("call `{}` not understood; skipped", call.to_string().trim()),
            ),
        }
    }

    fn argument(&mut self, args: &FunctionArgs) -> LuaValue {
        match args {
            FunctionArgs::String(s) => string_of(s),
            FunctionArgs::TableConstructor(t) => self.table(t, 0),
            FunctionArgs::Parentheses { arguments, .. } => arguments
                .iter()
                .next()
                .map_or(LuaValue::Nil, |e| self.value(e, 0)),
            other => LuaValue::Unknown(format!("arguments `{}`", other.to_string().trim())),
        }
    }

    fn include(&mut self, file: &str, line: usize) {
        let Some(dir) = self.config_dir.clone() else {
            self.note(
                line,
                format!("Include \"{file}\" not followed: the text was not read from a file"),
            );
            return;
        };
        let path = dir.join(file);
        let (parent, last) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) => (p.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => {
                self.error(line, format!("Include \"{file}\" names no file"));
                return;
            }
        };
        if last.contains(['*', '?']) {
            let mut found: Vec<PathBuf> = match std::fs::read_dir(&parent) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') && glob_match(&last, n))
                    .map(|n| parent.join(n))
                    .collect(),
                Err(e) => {
                    self.error(
                        line,
                        format!("Include \"{file}\": {}: {e}", parent.display()),
                    );
                    return;
                }
            };
            // Prosody takes the directory's order; sorted, the result does not depend on it.
            found.sort();
            if found.is_empty() {
                self.note(line, format!("Include \"{file}\" matches no file"));
            }
            for p in found {
                self.include_file(&p, line);
            }
        } else {
            self.include_file(&path, line);
        }
    }

    fn include_file(&mut self, path: &Path, line: usize) {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                self.error(
                    line,
                    format!(
                        "Include: {}: {e}; Prosody refuses to start without it",
                        path.display()
                    ),
                );
                return;
            }
        };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canonical) || self.stack.len() > MAX_INCLUDE_DEPTH {
            self.error(line, format!("Include: {} includes itself", path.display()));
            return;
        }
        let saved_section = self.section.take();
        let saved_locals = std::mem::take(&mut self.locals);
        let saved_file = self.file.replace(path.display().to_string());
        let saved_dir =
            std::mem::replace(&mut self.config_dir, path.parent().map(Path::to_path_buf));
        self.stack.push(canonical);
        self.chunk(&String::from_utf8_lossy(&text));
        self.stack.pop();
        self.config_dir = saved_dir;
        self.file = saved_file;
        self.locals = saved_locals;
        self.section = saved_section;
    }

    /// Where the option `name` was last set in the current or the global section.
    fn option_place(&self, name: &str) -> Option<String> {
        self.out
            .settings
            .iter()
            .rev()
            .find(|s| s.name == name && (s.section == self.section || s.section.is_none()))
            .map(Setting::place)
    }

    /// A bare name as Prosody 0.12 evaluates it: a local, else a Lua global, else `nil`.
    fn variable(&mut self, name: String, line: usize) -> LuaValue {
        if let Some(v) = self.locals.get(&name) {
            return v.clone();
        }
        if let Some(var) = name.strip_prefix("ENV_") {
            return LuaValue::Unknown(format!(
                "the environment variable {var} of Prosody's process"
            ));
        }
        if LUA_GLOBALS.contains(&name.as_str()) {
            return LuaValue::Unknown(format!("the Lua global `{name}`"));
        }
        let why = match self.option_place(&name) {
            Some(at) => format!(
                "`{name}` reads nil: options are not variables in Prosody 0.12 (Prosody 13 reads \
                 back the one set at {at}); use a `local`"
            ),
            None => format!("`{name}` is set nowhere, so it reads nil"),
        };
        self.note(line, why);
        LuaValue::Nil
    }

    fn value(&mut self, e: &Expression, depth: usize) -> LuaValue {
        if depth > MAX_EXPR_DEPTH {
            return LuaValue::Unknown("an expression nested too deep".into());
        }
        match e {
            Expression::String(s) => string_of(s),
            Expression::Number(n) => number_of(n),
            Expression::Symbol(s) => match s.token_type() {
                TokenType::Symbol {
                    symbol: Symbol::True,
                } => LuaValue::Bool(true),
                TokenType::Symbol {
                    symbol: Symbol::False,
                } => LuaValue::Bool(false),
                TokenType::Symbol {
                    symbol: Symbol::Nil,
                } => LuaValue::Nil,
                _ => LuaValue::Unknown(format!("`{}`", s.to_string().trim())),
            },
            Expression::TableConstructor(t) => self.table(t, depth + 1),
            Expression::Parentheses { expression, .. } => self.value(expression, depth + 1),
            Expression::UnaryOperator { unop, expression } => {
                match (unop, self.value(expression, depth + 1)) {
                    (UnOp::Minus(_), LuaValue::Num(n)) => LuaValue::Num(-n),
                    (UnOp::Not(_), LuaValue::Bool(b)) => LuaValue::Bool(!b),
                    (_, LuaValue::Unknown(what)) => LuaValue::Unknown(what),
                    _ => LuaValue::Unknown(format!("`{}`", e.to_string().trim())),
                }
            }
            Expression::BinaryOperator { lhs, binop, rhs } => {
                let (l, r) = (self.value(lhs, depth + 1), self.value(rhs, depth + 1));
                binary(binop, l, r, e).unwrap_or_else(|runtime_error| {
                    self.error(line_of(e), &runtime_error);
                    LuaValue::Unknown(runtime_error)
                })
            }
            Expression::Var(Var::Name(name)) => self.variable(name_of(name), line_of(e)),
            Expression::FunctionCall(call) => {
                LuaValue::Unknown(format!("a call, `{}`", call.to_string().trim()))
            }
            other => LuaValue::Unknown(format!("`{}`", other.to_string().trim())),
        }
    }

    fn table(&mut self, t: &TableConstructor, depth: usize) -> LuaValue {
        let mut fields = Vec::new();
        let mut items = Vec::new();
        for field in t.fields() {
            match field {
                Field::NameKey { key, value, .. } => {
                    let v = self.value(value, depth + 1);
                    fields.push((name_of(key), v));
                }
                Field::ExpressionKey { key, value, .. } => {
                    let v = self.value(value, depth + 1);
                    match self.value(key, depth + 1) {
                        LuaValue::Str(k) => fields.push((k, v)),
                        other => self.note(
                            line_of(field),
                            format!("table key {other:?} is not a string; field skipped"),
                        ),
                    }
                }
                Field::NoKey(value) => items.push(self.value(value, depth + 1)),
                other => self.note(
                    line_of(other),
                    format!("table field `{}` not understood", other.to_string().trim()),
                ),
            }
        }
        LuaValue::Table { fields, items }
    }
}

/// `a .. b` on strings and numbers, arithmetic on numbers; `Err` for what Lua raises an error
/// on at run time (`..` or arithmetic with nil, a boolean or a table), which stops Prosody.
fn binary(op: &BinOp, l: LuaValue, r: LuaValue, whole: &Expression) -> Result<LuaValue, String> {
    if let LuaValue::Unknown(what) = &l {
        return Ok(LuaValue::Unknown(what.clone()));
    }
    if let LuaValue::Unknown(what) = &r {
        return Ok(LuaValue::Unknown(what.clone()));
    }
    let kind = |v: &LuaValue| match v {
        LuaValue::Nil => Some("a nil value"),
        LuaValue::Bool(_) => Some("a boolean value"),
        LuaValue::Table { .. } => Some("a table value"),
        _ => None,
    };
    let arithmetic = matches!(
        op,
        BinOp::Plus(_) | BinOp::Minus(_) | BinOp::Star(_) | BinOp::Slash(_) | BinOp::Caret(_)
    );
    if matches!(op, BinOp::TwoDots(_)) || arithmetic {
        if let Some(k) = kind(&l).or_else(|| kind(&r)) {
            let what = if arithmetic {
                "perform arithmetic on"
            } else {
                "concatenate"
            };
            return Err(format!(
                "`{}`: attempt to {what} {k}; Prosody stops loading the file here",
                whole.to_string().trim()
            ));
        }
    }
    Ok(match (op, &l, &r) {
        (BinOp::TwoDots(_), _, _) => match (concat_text(&l), concat_text(&r)) {
            (Some(a), Some(b)) => LuaValue::Str(a + &b),
            _ => LuaValue::Unknown(format!("the expression `{}`", whole.to_string().trim())),
        },
        (BinOp::Plus(_), LuaValue::Num(a), LuaValue::Num(b)) => LuaValue::Num(a + b),
        (BinOp::Minus(_), LuaValue::Num(a), LuaValue::Num(b)) => LuaValue::Num(a - b),
        (BinOp::Star(_), LuaValue::Num(a), LuaValue::Num(b)) => LuaValue::Num(a * b),
        (BinOp::Slash(_), LuaValue::Num(a), LuaValue::Num(b)) => LuaValue::Num(a / b),
        (BinOp::Caret(_), LuaValue::Num(a), LuaValue::Num(b)) => LuaValue::Num(a.powf(*b)),
        _ => LuaValue::Unknown(format!("the expression `{}`", whole.to_string().trim())),
    })
}

/// What `..` makes of a value: strings as they are, numbers as Lua prints them.
fn concat_text(v: &LuaValue) -> Option<String> {
    match v {
        LuaValue::Str(s) => Some(s.clone()),
        LuaValue::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
        LuaValue::Num(n) => Some(format!("{n}")),
        _ => None,
    }
}

fn name_of(t: &TokenReference) -> String {
    match t.token_type() {
        TokenType::Identifier { identifier } => identifier.to_string(),
        _ => t.to_string().trim().to_string(),
    }
}

fn number_of(t: &TokenReference) -> LuaValue {
    let TokenType::Number { text } = t.token_type() else {
        return LuaValue::Unknown(format!("`{}`", t.to_string().trim()));
    };
    let text = text.to_string();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => text.parse::<f64>().ok(),
    };
    parsed.map_or_else(
        || LuaValue::Unknown(format!("the number `{text}`")),
        LuaValue::Num,
    )
}

fn string_of(t: &TokenReference) -> LuaValue {
    match t.token_type() {
        TokenType::StringLiteral {
            literal,
            multi_line_depth,
            quote_type,
        } => {
            let raw = literal.to_string();
            if *quote_type == full_moon::tokenizer::StringLiteralQuoteType::Brackets {
                let _ = multi_line_depth;
                // A long string drops a newline right after its opening bracket.
                let body = raw
                    .strip_prefix("\r\n")
                    .or_else(|| raw.strip_prefix('\n'))
                    .unwrap_or(&raw);
                LuaValue::Str(body.to_string())
            } else {
                LuaValue::Str(unescape(&raw))
            }
        }
        _ => LuaValue::Unknown(format!("`{}`", t.to_string().trim())),
    }
}

/// Lua's escapes in a quoted string: `\n \t \\ \" \'`, `\ddd`, `\xXX`, `\z`, `\u{XXX}`, and a
/// backslash before a line break.
fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        match e {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' | b'\n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'z' => {
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            b'x' => {
                let hex = raw
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.extend_from_slice(b"\\x"),
                }
            }
            b'u' if b.get(i) == Some(&b'{') => {
                let end = raw[i..].find('}').map(|e| i + e);
                let c = end
                    .and_then(|end| u32::from_str_radix(&raw[i + 1..end], 16).ok())
                    .and_then(char::from_u32);
                match (c, end) {
                    (Some(c), Some(end)) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i = end + 1;
                    }
                    _ => out.extend_from_slice(b"\\u"),
                }
            }
            d if d.is_ascii_digit() => {
                let mut v = u32::from(d - b'0');
                let mut n = 1;
                while n < 3 && i < b.len() && b[i].is_ascii_digit() {
                    v = v * 10 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(u8::try_from(v).unwrap_or(b'?'));
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prosody's Include wildcards: `*` any run of characters, `?` one character.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
